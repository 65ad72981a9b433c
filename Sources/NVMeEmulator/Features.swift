import NVMeSpec

// Get Features (0Ah) and Set Features (09h). Every feature here is changeable; the saveable
// ones keep a saved value per controller (in the state file when file-backed) that returns
// after a reset; Select 3 reports the capabilities (bit 0 saveable, 1 namespace specific,
// 2 changeable).

struct FeatureTraits {
    var saveable: Bool
    var namespaceSpecific: Bool
}

extension EmulatedController {
    static let features: [FeatureID: FeatureTraits] = [
        .arbitration: FeatureTraits(saveable: true, namespaceSpecific: false),
        .powerManagement: FeatureTraits(saveable: true, namespaceSpecific: false),
        .temperatureThreshold: FeatureTraits(saveable: true, namespaceSpecific: false),
        .errorRecovery: FeatureTraits(saveable: true, namespaceSpecific: true),
        .volatileWriteCache: FeatureTraits(saveable: true, namespaceSpecific: false),
        .numberOfQueues: FeatureTraits(saveable: false, namespaceSpecific: false),
        .interruptCoalescing: FeatureTraits(saveable: true, namespaceSpecific: false),
        .asynchronousEventConfiguration: FeatureTraits(saveable: true, namespaceSpecific: false),
        .timestamp: FeatureTraits(saveable: false, namespaceSpecific: false),
        .keepAliveTimer: FeatureTraits(saveable: false, namespaceSpecific: false),
        .hostIdentifier: FeatureTraits(saveable: false, namespaceSpecific: false),
    ]

    /// Number of Queues: 64 submission and 64 completion queues (0's based).
    static let queuesAllocated: UInt32 = 0x003F_003F

    static func defaultFeature(_ key: UInt64) -> UInt32 {
        let fid = FeatureID(rawValue: UInt8(truncatingIfNeeded: key)), selector = UInt8(truncatingIfNeeded: key >> 8)
        switch fid {
        case .arbitration: return 0x7                   // Arbitration Burst: no limit
        case .temperatureThreshold: return selector == 0 ? 0x157 : 0   // over: WCTEMP, under: 0 K
        case .volatileWriteCache: return 1              // WCE
        case .numberOfQueues: return queuesAllocated
        default: return 0
        }
    }

    /// The current value: set since the last reset, else saved, else the default.
    func currentFeature(_ key: UInt64) -> UInt32 {
        if let v = local.withLock({ $0.features[key] }) { return v }
        return savedFeature(key)
    }

    func savedFeature(_ key: UInt64) -> UInt32 {
        subsystem.state.withLock { $0.savedFeatures[controllerID]?[key] } ?? Self.defaultFeature(key)
    }

    /// Volatile Write Cache on (WCE): read without a lock, for the write path.
    var volatileWriteCacheEnabled: Bool { writeCache.enabled }

    func getFeatures(_ cmd: Command, _ data: UnsafeMutableRawBufferPointer) -> Completion {
        let fid = FeatureID(rawValue: UInt8(truncatingIfNeeded: cmd.cdw10))
        let select = UInt8(truncatingIfNeeded: cmd.cdw10 >> 8) & 0x7
        guard let traits = Self.features[fid] else { return Completion(status: .invalidField.withDoNotRetry) }
        guard select <= 3 else { return Completion(status: .invalidField.withDoNotRetry) }
        if select == 3 {
            let caps: UInt32 = (traits.saveable ? 1 : 0) | (traits.namespaceSpecific ? 2 : 0) | 4
            return Completion(dw0: caps)
        }
        var nsid: UInt32 = 0
        if traits.namespaceSpecific {
            guard activeNamespace(cmd.nsid) != nil else { return Completion(status: .invalidNamespaceOrFormat.withDoNotRetry) }
            nsid = cmd.nsid
        }
        var selector: UInt8 = 0
        if fid == .temperatureThreshold {
            guard (cmd.cdw11 >> 16) & 0xF == 0 else { return Completion(status: .invalidField.withDoNotRetry) }  // TMPSEL: composite only
            selector = UInt8((cmd.cdw11 >> 20) & 0x3)
            guard selector <= 1 else { return Completion(status: .invalidField.withDoNotRetry) }
        }
        let key = featureKey(fid, selector: selector, nsid: nsid)
        switch fid {
        case .timestamp:
            guard data.count >= 8 else { return Completion(status: .dataTransferError.withDoNotRetry) }
            var p = Page(size: 8)
            let now = monotonicMilliseconds()
            if select == 0, let ts = local.withLock({ $0.timestamp }) {
                p.u64(0, (ts.value &+ (now - ts.setAt)) & 0xFFFF_FFFF_FFFF)
                p.u8(6, 0x1 << 1)           // Timestamp Origin 001b: set by a host; Synch 0
            } else {
                p.u64(0, (now - startedAt) & 0xFFFF_FFFF_FFFF)   // origin 000b: since reset
            }
            copyOut(p.bytes, length: 8, to: data)
            return Completion()
        case .hostIdentifier:
            let extended = cmd.cdw11 & 1 != 0
            let size = extended ? 16 : 8
            guard data.count >= size else { return Completion(status: .dataTransferError.withDoNotRetry) }
            let id = select == 0 ? local.withLock { $0.hostID } : []
            copyOut(id, length: size, to: data)
            return Completion(dw0: extended ? 1 : 0)
        default:
            let value: UInt32 = switch select {
            case 0: currentFeature(key)
            case 1: Self.defaultFeature(key)
            default: traits.saveable ? savedFeature(key) : Self.defaultFeature(key)
            }
            return Completion(dw0: value)
        }
    }

    func setFeatures(_ cmd: Command, _ data: UnsafeMutableRawBufferPointer) -> Completion {
        let fid = FeatureID(rawValue: UInt8(truncatingIfNeeded: cmd.cdw10))
        let save = cmd.cdw10 & 0x8000_0000 != 0
        guard let traits = Self.features[fid] else { return Completion(status: .invalidField.withDoNotRetry) }
        if save && !traits.saveable { return Completion(status: .featureNotSaveable.withDoNotRetry) }
        var nsids: [UInt32] = [0]
        if traits.namespaceSpecific {
            if cmd.nsid == 0xFFFF_FFFF {
                nsids = namespaces().map(\.nsid)
            } else {
                guard activeNamespace(cmd.nsid) != nil else { return Completion(status: .invalidNamespaceOrFormat.withDoNotRetry) }
                nsids = [cmd.nsid]
            }
        } else if cmd.nsid != 0 && cmd.nsid != 0xFFFF_FFFF {
            return Completion(status: .featureNotNamespaceSpecific.withDoNotRetry)
        }
        var selector: UInt8 = 0
        var value = cmd.cdw11
        let dw0: UInt32 = 0
        switch fid {
        case .powerManagement:
            guard value & 0x1F == 0 else { return Completion(status: .invalidField.withDoNotRetry) }   // PS > NPSS
            value &= 0xFF
        case .temperatureThreshold:
            guard (cmd.cdw11 >> 16) & 0xF == 0 else { return Completion(status: .invalidField.withDoNotRetry) }
            selector = UInt8((cmd.cdw11 >> 20) & 0x3)
            guard selector <= 1 else { return Completion(status: .invalidField.withDoNotRetry) }
            value &= 0xFFFF
        case .errorRecovery:
            guard value & (1 << 16) == 0 else { return Completion(status: .invalidField.withDoNotRetry) }  // DULBE unsupported
            value &= 0xFFFF
        case .volatileWriteCache:
            value &= 1
            if value == 0 { flushAll() }     // turning the cache off writes it back
        case .numberOfQueues:
            // The host driver created its I/O queues before any passthrough command could
            // arrive (the emulator serves I/O), and Number of Queues may be set only before
            // that: Command Sequence Error, as the specification and QEMU's controller say.
            return Completion(status: .commandSequenceError.withDoNotRetry)
        case .interruptCoalescing:
            value &= 0xFFFF
        case .asynchronousEventConfiguration:
            value &= 0x3FF
        case .timestamp:
            guard data.count >= 8 else { return Completion(status: .dataTransferError.withDoNotRetry) }
            let ts = data.le64(0) & 0xFFFF_FFFF_FFFF
            let now = monotonicMilliseconds()
            local.withLock { $0.timestamp = (ts, now) }
            return Completion()
        case .hostIdentifier:
            let extended = cmd.cdw11 & 1 != 0
            let size = extended ? 16 : 8
            guard data.count >= size else { return Completion(status: .dataTransferError.withDoNotRetry) }
            let id = Array(UnsafeRawBufferPointer(rebasing: data[0..<size]))
            // Changing the identifier of a host that holds registrations would orphan them.
            let old = hostKey
            let registered = subsystem.state.withLock { s in
                s.namespaces.values.contains { ns in ns.state.withLock { $0.reservation.registrant(old) != nil } }
            }
            if registered && HostKey(hostID: id, controllerID: controllerID) != old {
                return Completion(status: .commandSequenceError.withDoNotRetry)
            }
            local.withLock { $0.setHostID(id) }
            return Completion(dw0: extended ? 1 : 0)
        default:
            break
        }
        local.withLock { c in
            for n in nsids { c.features[featureKey(fid, selector: selector, nsid: n)] = value }
            if fid == .volatileWriteCache { writeCache.current.store(UInt8(value), ordering: .relaxed) }
        }
        if save {
            subsystem.state.withLock { s in
                for n in nsids { s.savedFeatures[controllerID, default: [:]][featureKey(fid, selector: selector, nsid: n)] = value }
                if fid == .volatileWriteCache { writeCache.saved.store(UInt8(value), ordering: .relaxed) }
                subsystem.save(&s)
            }
        }
        return Completion(dw0: dw0)
    }

    /// Writes back every namespace (Flush to all namespaces).
    @discardableResult
    func flushAll() -> Bool {
        let all = subsystem.state.withLock { Array($0.namespaces.values) }
        var ok = true
        for ns in all { ns.state.withLock { n in do { try n.store.sync() } catch { ok = false } } }
        _ = subsystem.state.withLock { subsystem.save(&$0) }
        return ok
    }
}
