import NVMeSpec

// Namespace Management (0Dh), Namespace Attachment (15h), Format NVM (80h), Sanitize (84h),
// Firmware Image Download (11h), Firmware Commit (10h), Device Self-test (14h) and
// Asynchronous Event Request (0Ch).

extension EmulatedController {
    // MARK: Namespace Management

    func namespaceManagement(_ cmd: Command, _ data: UnsafeMutableRawBufferPointer) -> Completion {
        switch cmd.cdw10 & 0xF {
        case 0: return createNamespace(cmd, data)
        case 1: return Completion(status: deleteNamespace(cmd.nsid))
        default: return Completion(status: .invalidField.withDoNotRetry)
        }
    }

    private func createNamespace(_ cmd: Command, _ data: UnsafeMutableRawBufferPointer) -> Completion {
        guard cmd.nsid == 0 else { return Completion(status: .invalidField.withDoNotRetry) }
        guard cmd.cdw11 >> 24 == UInt32(CommandSet.nvm.rawValue) else {
            return Completion(status: .ioCommandSetNotSupported.withDoNotRetry)
        }
        guard data.count >= 4096 else { return Completion(status: .dataTransferError.withDoNotRetry) }
        let nsze = data.le64(0), ncap = data.le64(8)
        let flbas = data.load(fromByteOffset: 26, as: UInt8.self)
        let dps = data.load(fromByteOffset: 29, as: UInt8.self)
        let format = flbas & 0xF | (flbas >> 5 & 0x3) << 4
        guard format < Limits.lbaFormats.count else { return Completion(status: .invalidFormat.withDoNotRetry) }
        guard dps == 0 else { return Completion(status: .invalidField.withDoNotRetry) }           // no protection information
        guard nsze != 0, ncap == nsze else { return Completion(status: .invalidField.withDoNotRetry) }   // no thin provisioning
        let (bytes, overflow) = nsze.multipliedReportingOverflow(by: UInt64(Limits.lbaFormats[Int(format)]))
        guard !overflow else { return Completion(status: .namespaceInsufficientCapacity.withDoNotRetry) }
        return subsystem.state.withLock { s in
            guard bytes <= s.totalCapacity &- min(s.totalCapacity, s.allocatedBytes) else {
                return Completion(status: .namespaceInsufficientCapacity.withDoNotRetry)
            }
            guard let nsid = (1...s.maxNamespaces).first(where: { s.namespaces[$0] == nil }) else {
                return Completion(status: .namespaceIdentifierUnavailable.withDoNotRetry)
            }
            let store: NamespaceStore
            if let dir = subsystem.directory {
                do { store = .file(try FileStore(path: EmulatedSubsystem.dataPath(dir, nsid), size: bytes)) }
                catch { return Completion(status: .internalError) }
            } else {
                store = .memory(MemoryStore(size: bytes))
            }
            let salt = UInt64(bitPattern: wallSeconds()) &* 31 &+ monotonicMilliseconds()
            s.namespaces[nsid] = Namespace(nsid: nsid, state: NamespaceState(
                formatIndex: format, sizeBytes: bytes, store: store, attached: [],
                nguid: makeNGUID(serial: s.serialNumber, nsid: nsid, salt: salt)))
            subsystem.publishNamespaces(&s)
            subsystem.save(&s)
            return Completion(dw0: nsid)
        }
    }

    private func deleteNamespace(_ nsid: UInt32) -> NVMeStatus {
        subsystem.state.withLock { s in
            let targets: [UInt32]
            if nsid == 0xFFFF_FFFF { targets = Array(s.namespaces.keys) }
            else {
                guard nsid != 0, nsid <= s.maxNamespaces, s.namespaces[nsid] != nil else {
                    return .invalidNamespaceOrFormat.withDoNotRetry
                }
                targets = [nsid]
            }
            for id in targets {
                guard let ns = s.namespaces.removeValue(forKey: id) else { continue }
                let attached = ns.state.withLock { n in
                    n.deleted = true
                    n.store.destroy()
                    return n.attached
                }
                s.noteChangedNamespace(id, controllers: attached)
            }
            subsystem.publishNamespaces(&s)
            subsystem.save(&s)
            return .success
        }
    }

    // MARK: Namespace Attachment

    func namespaceAttachment(_ cmd: Command, _ data: UnsafeMutableRawBufferPointer) -> NVMeStatus {
        let select = cmd.cdw10 & 0xF
        guard select <= 1 else { return .invalidField.withDoNotRetry }
        // As QEMU: an invalid NSID (0, above NN, broadcast) is Invalid Namespace or Format, a
        // valid but unallocated one Invalid Field.
        guard isValidNSID(cmd.nsid) else { return .invalidNamespaceOrFormat.withDoNotRetry }
        guard data.count >= 2 else { return .dataTransferError.withDoNotRetry }
        let count = Int(data.le16(0))
        guard data.count >= 2 + 2 * count else { return .dataTransferError.withDoNotRetry }
        let ids = (0..<count).map { data.le16(2 + 2 * $0) }
        return subsystem.state.withLock { s in
            guard let ns = s.namespaces[cmd.nsid] else { return .invalidField.withDoNotRetry }
            guard !ids.isEmpty, ids.allSatisfy({ s.knownControllers.contains($0) }) else {
                return .controllerListInvalid.withDoNotRetry
            }
            let status: NVMeStatus = ns.state.withLock { n in
                if select == 0 {
                    if ids.contains(where: { n.attached.contains($0) }) { return .namespaceAlreadyAttached.withDoNotRetry }
                    n.attached.formUnion(ids)
                } else {
                    if ids.contains(where: { !n.attached.contains($0) }) { return .namespaceNotAttached.withDoNotRetry }
                    n.attached.subtract(ids)
                }
                return .success
            }
            guard status.isSuccess else { return status }
            s.noteChangedNamespace(cmd.nsid, controllers: Set(ids))
            subsystem.save(&s)
            return .success
        }
    }

    // MARK: Format NVM

    func formatNVM(_ cmd: Command) -> NVMeStatus {
        let lbaf = UInt8(cmd.cdw10 & 0xF) | UInt8((cmd.cdw10 >> 12) & 0x3) << 4
        let pi = (cmd.cdw10 >> 5) & 0x7
        let ses = (cmd.cdw10 >> 9) & 0x7
        let targets: [Namespace]
        if cmd.nsid == 0xFFFF_FFFF {
            targets = namespaces().compactMap { info in subsystem.state.withLock { $0.namespaces[info.nsid] } }
        } else {
            guard let ns = activeNamespace(cmd.nsid) else { return .invalidNamespaceOrFormat.withDoNotRetry }
            targets = [ns]
        }
        guard lbaf < Limits.lbaFormats.count, pi == 0 else { return .invalidFormat.withDoNotRetry }
        guard ses <= 2 else { return .invalidField.withDoNotRetry }   // 0 none, 1 user data erase, 2 cryptographic erase
        return subsystem.state.withLock { s in
            var failed = false
            for ns in targets {
                let attached: Set<UInt16> = ns.state.withLock { n in
                    // Every SES erases: user data after a format reads as zeroes. The erase is
                    // durable before completion (as for Sanitize): the state file saved below
                    // records the new format, and old data must not return under it.
                    do { try n.store.eraseAll(pattern: 0); try n.store.sync() } catch { failed = true }
                    n.formatIndex = lbaf
                    n.uncorrectable.removeAll()
                    return n.attached
                }
                s.noteChangedNamespace(ns.nsid, controllers: attached)
            }
            subsystem.save(&s)
            return failed ? NVMeStatus.internalError : .success
        }
    }

    // MARK: Sanitize

    func sanitize(_ cmd: Command) -> NVMeStatus {
        let action = cmd.cdw10 & 0x7
        let passes = (cmd.cdw10 >> 4) & 0xF == 0 ? 16 : (cmd.cdw10 >> 4) & 0xF
        let invert = cmd.cdw10 & (1 << 8) != 0
        var pattern: UInt32 = 0
        switch action {
        case 1: return .success                 // Exit Failure Mode: never in failure mode
        case 2, 4: pattern = 0                  // Block Erase, Crypto Erase
        case 3: pattern = invert && passes % 2 == 0 ? ~cmd.cdw11 : cmd.cdw11   // Overwrite: the last pass stays
        default: return .invalidField.withDoNotRetry
        }
        return subsystem.state.withLock { s in
            s.sanitizeProgress = 0
            var failed = false
            for ns in s.namespaces.values {
                ns.state.withLock { n in
                    do { try n.store.eraseAll(pattern: pattern); try n.store.sync() } catch { failed = true }
                    n.uncorrectable.removeAll()
                }
            }
            s.sanitizeProgress = 0xFFFF
            s.sanitizeCDW10 = cmd.cdw10
            // SSTAT: 001b completed successfully (011b failed), passes completed, Global Data Erased.
            s.sanitizeStatus = (failed ? 3 : 1) | (action == 3 ? UInt16(passes) << 3 : 0) | (failed ? 0 : 1 << 8)
            subsystem.save(&s)
            return failed ? NVMeStatus.internalError : .success
        }
    }

    // MARK: Firmware

    func firmwareImageDownload(_ cmd: Command, _ data: UnsafeMutableRawBufferPointer) -> NVMeStatus {
        let length = (UInt64(cmd.cdw10) + 1) * 4
        let offset = UInt64(cmd.cdw11) * 4
        guard length <= UInt64(Limits.maxTransfer) else { return .invalidField.withDoNotRetry }
        guard offset + length <= UInt64(Limits.maxFirmwareImage) else { return .invalidField.withDoNotRetry }
        guard UInt64(data.count) >= length else { return .dataTransferError.withDoNotRetry }
        let piece = Array(UnsafeRawBufferPointer(rebasing: data[0..<Int(length)]))
        // The image so far lives with the subsystem, so a download spread over several
        // processes (one nvme-cli command each) reaches the Firmware Commit that follows.
        return subsystem.state.withLock { s in
            var image = offset == 0 ? [] : s.pendingFirmware[controllerID] ?? []
            guard Int(offset) >= image.count else { return .overlappingRange.withDoNotRetry }
            image += [UInt8](repeating: 0, count: Int(offset) - image.count)
            image += piece
            s.pendingFirmware[controllerID] = image
            return .success
        }
    }

    func firmwareCommit(_ cmd: Command) -> NVMeStatus {
        let slot = Int(cmd.cdw10 & 0x7)
        let action = (cmd.cdw10 >> 3) & 0x7
        guard slot <= Limits.firmwareSlots else { return .invalidFirmwareSlot.withDoNotRetry }
        guard action <= 3, cmd.cdw10 & (1 << 31) == 0 else { return .invalidField.withDoNotRetry }   // no boot partitions
        let image = action == 2 ? [] : subsystem.state.withLock { $0.pendingFirmware[controllerID] ?? [] }
        if action != 2 && image.isEmpty { return .invalidFirmwareImage.withDoNotRetry }
        return subsystem.state.withLock { s in
            var target = slot
            if action == 2 {
                guard slot != 0 else { return .invalidFirmwareSlot.withDoNotRetry }
                guard s.firmware.slots[slot - 1] != nil else { return .invalidFirmwareImage.withDoNotRetry }
            } else {
                if target == 0 {   // the controller chooses: an empty slot, else the lowest inactive one
                    target = (s.firmware.slots.firstIndex { $0 == nil }
                              ?? s.firmware.slots.indices.first { $0 + 1 != s.firmware.active } ?? 0) + 1
                }
                s.firmware.slots[target - 1] = firmwareRevision(of: image)
            }
            switch action {
            case 1, 2: s.firmware.next = target
            case 3:
                s.firmware.active = target
                s.firmware.next = nil
                // Notice: Firmware Activation Starting (type 2, info 01h, log page 03h) to every controller.
                for c in s.openControllers {
                    s.pendingEvents[c, default: []].append(0x02 | 0x01 << 8 | UInt32(LogPageID.firmwareSlotInformation.rawValue) << 16)
                }
            default: break
            }
            if action != 2 { s.pendingFirmware[controllerID] = nil }
            subsystem.save(&s)
            return .success
        }
    }

    /// An image's revision: its first 8 bytes when they are printable ASCII (trailing spaces
    /// and NULs trimmed), else "F" and 7 hex digits of a checksum of the image.
    func firmwareRevision(of image: [UInt8]) -> String {
        var head = Array(image.prefix(8))
        while let last = head.last, last == 0 || last == 0x20 { head.removeLast() }
        if !head.isEmpty, head.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) { return String(decoding: head, as: UTF8.self) }
        var h: UInt32 = 0x811C_9DC5
        for b in image { h = (h ^ UInt32(b)) &* 0x0100_0193 }
        let digits = Array("0123456789ABCDEF")
        return "F" + String((0..<7).map { digits[Int(h >> (4 * UInt32(6 - $0)) & 0xF)] })
    }

    // MARK: Device Self-test

    func deviceSelfTest(_ cmd: Command) -> NVMeStatus {
        let code = UInt8(cmd.cdw10 & 0xF)
        if cmd.nsid != 0 && cmd.nsid != 0xFFFF_FFFF && activeNamespace(cmd.nsid) == nil {
            return .invalidNamespaceOrFormat.withDoNotRetry
        }
        return subsystem.state.withLock { s in
            s.settleSelfTest()
            switch code {
            case 1, 2:
                guard s.runningSelfTest == nil else { return .deviceSelfTestInProgress }
                if code == 1 || s.extendedSelfTestMilliseconds == 0 {
                    s.addSelfTestResult(SelfTestResult(code: code, result: 0, powerOnHours: s.powerOnHours, nsid: cmd.nsid))
                } else {
                    s.runningSelfTest = RunningSelfTest(code: code, nsid: cmd.nsid,
                                                        startMilliseconds: monotonicMilliseconds(),
                                                        durationMilliseconds: s.extendedSelfTestMilliseconds)
                }
            case 0xF:
                if let run = s.runningSelfTest {
                    s.addSelfTestResult(SelfTestResult(code: run.code, result: 1, powerOnHours: s.powerOnHours, nsid: run.nsid))
                    s.runningSelfTest = nil
                }
            default:
                return .invalidField.withDoNotRetry
            }
            subsystem.save(&s)
            return .success
        }
    }

    // MARK: Asynchronous Event Request

    /// Completes at once with the oldest pending event this controller has enabled
    /// (Asynchronous Event Configuration bits 8 and 9); with none pending there is nothing
    /// to wait for in a synchronous ioctl model, so it returns Asynchronous Event Request
    /// Limit Exceeded instead of blocking forever.
    func asyncEventRequest() -> Completion {
        let config = currentFeature(featureKey(.asynchronousEventConfiguration))
        return subsystem.state.withLock { s in
            var events = s.pendingEvents[controllerID] ?? []
            let enabled: (UInt32) -> Bool = { e in
                let info = e >> 8 & 0xFF
                return e & 0x7 == 2 && ((info == 0 && config & (1 << 8) != 0) || (info == 1 && config & (1 << 9) != 0))
            }
            guard let i = events.firstIndex(where: enabled) else {
                return Completion(status: .asynchronousEventRequestLimitExceeded.withDoNotRetry)
            }
            let event = events.remove(at: i)
            s.pendingEvents[controllerID] = events
            return Completion(dw0: event)
        }
    }
}
