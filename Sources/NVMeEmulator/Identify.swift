import NVMeSpec

// Identify (06h) and the data structures it returns. Offsets are those of libnvme 1.3's
// `struct nvme_id_ctrl`, `struct nvme_id_ns` and `struct nvme_id_independent_id_ns`.

extension EmulatedController {
    func identify(_ cmd: Command, _ data: UnsafeMutableRawBufferPointer) -> NVMeStatus {
        guard data.count >= 4096 else { return .dataTransferError.withDoNotRetry }
        let cns = IdentifyCNS(rawValue: UInt8(truncatingIfNeeded: cmd.cdw10))
        let csi = UInt8(truncatingIfNeeded: cmd.cdw11 >> 24)
        let nsid = cmd.nsid
        let nsScoped: Set<IdentifyCNS> = [.namespace, .namespaceIdentificationDescriptorList, .ioCommandSetSpecificNamespace,
                                    .ioCommandSetIndependentNamespace, .allocatedNamespace, .namespaceAttachedControllerList]
        if nsScoped.contains(cns) {
            let broadcastAllowed = cns == .namespace || cns == .ioCommandSetSpecificNamespace
            if !(isValidNSID(nsid) || (broadcastAllowed && nsid == 0xFFFF_FFFF)) {
                return .invalidNamespaceOrFormat.withDoNotRetry
            }
        }
        var page = Page(size: 4096)
        switch cns {
        case .controller:
            page = identifyController()
        case .namespace:
            if nsid == 0xFFFF_FFFF { page = commonNamespace() }
            else if let ns = activeNamespace(nsid) { page = ns.state.withLock { identifyNamespace($0) } }
            // A valid but inactive NSID: a zero-filled structure, success.
        case .allocatedNamespace:
            if let ns = subsystem.state.withLock({ $0.namespaces[nsid] }) {
                page = ns.state.withLock { identifyNamespace($0) }
            }
        case .ioCommandSetSpecificNamespace:
            guard csi == CommandSet.nvm.rawValue else { return .invalidField.withDoNotRetry }
            // NVM Command Set Identify Namespace: no PI, no storage tags, no extended formats.
        case .ioCommandSetSpecificController:
            guard csi == CommandSet.nvm.rawValue else { return .invalidField.withDoNotRetry }
            page.u8(0, Limits.vsl)          // VSL
            page.u8(1, 0)                   // WZSL: no limit
            page.u8(2, 0)                   // WUSL: no limit
            page.u8(3, Limits.dmrl)         // DMRL
            page.u32(4, 0)                  // DMRSL: no limit
            page.u64(8, 0)                  // DMSL: no limit
        case .activeNamespaceIDList, .ioCommandSetActiveNamespaceIDList:
            if cns == .ioCommandSetActiveNamespaceIDList && csi != CommandSet.nvm.rawValue { return .invalidField.withDoNotRetry }
            guard nsid < 0xFFFF_FFFE else { return .invalidNamespaceOrFormat.withDoNotRetry }
            page = nsidList(after: nsid, activeOnly: true)
        case .allocatedNamespaceIDList:
            guard nsid < 0xFFFF_FFFE else { return .invalidNamespaceOrFormat.withDoNotRetry }
            page = nsidList(after: nsid, activeOnly: false)
        case .namespaceIdentificationDescriptorList:
            guard let ns = activeNamespace(nsid) else { return .invalidField.withDoNotRetry }   // as QEMU
            let nguid = ns.state.withLock { $0.nguid }
            var o = 0
            page.u8(o, 1); page.u8(o + 1, 8); page.raw(o + 4, eui64(nguid)); o += 12          // EUI-64
            page.u8(o, 2); page.u8(o + 1, 16); page.raw(o + 4, nguid); o += 20                // NGUID
            page.u8(o, 3); page.u8(o + 1, 16); page.raw(o + 4, uuid(nguid)); o += 20          // UUID
            page.u8(o, 4); page.u8(o + 1, 1); page.u8(o + 4, CommandSet.nvm.rawValue)        // CSI
        case .ioCommandSetIndependentNamespace:
            if let ns = activeNamespace(nsid) {
                page.u8(1, 1)            // NMIC: may be attached to two or more controllers
                page.u8(2, 0xFF)         // RESCAP
                page.u8(14, 1)           // NSTAT: namespace ready
                _ = ns
            }
        case .namespaceAttachedControllerList:
            let start = UInt16(truncatingIfNeeded: cmd.cdw10 >> 16)
            var ids: [UInt16] = []
            if let ns = subsystem.state.withLock({ $0.namespaces[nsid] }) {
                ids = ns.state.withLock { $0.attached.sorted() }
            }
            page = controllerList(ids.filter { $0 >= start })
        case .controllerList:
            let start = UInt16(truncatingIfNeeded: cmd.cdw10 >> 16)
            let ids = subsystem.state.withLock { $0.knownControllers.sorted() }
            page = controllerList(ids.filter { $0 >= start })
        default:
            return .invalidField.withDoNotRetry
        }
        copyOut(page.bytes, length: 4096, to: data)
        return .success
    }

    func identifyController() -> Page {
        var p = Page(size: 4096)
        let s = subsystem.state.withLock { s in
            (s.vendorID, s.subsystemVendorID, s.serialNumber, s.modelNumber,
             s.firmware.slots[s.firmware.active - 1] ?? "", s.maxNamespaces, s.totalCapacity,
             s.totalCapacity &- min(s.totalCapacity, s.allocatedBytes), s.extendedSelfTestMilliseconds, s.subsystemNQN)
        }
        p.u16(0, s.0)                       // VID
        p.u16(2, s.1)                       // SSVID
        p.ascii(4, width: 20, s.2)          // SN
        p.ascii(24, width: 40, s.3)         // MN
        p.ascii(64, width: 8, s.4)          // FR
        p.u8(76, 0x02)                      // CMIC: two or more controllers
        p.u8(77, Limits.mdts)               // MDTS
        p.u16(78, controllerID)             // CNTLID
        p.u32(80, 0x0002_0000)              // VER 2.0
        p.u32(92, 0x300)                    // OAES: namespace attribute and firmware activation notices
        p.u8(111, 1)                        // CNTRLTYPE: I/O controller
        p.u16(256, 0x1E)                    // OACS: Format NVM, Firmware, NS Management, Device Self-test
        p.u8(258, 3)                        // ACL: 4 Abort commands
        p.u8(259, 0)                        // AERL: 1 outstanding Asynchronous Event Request
        p.u8(260, UInt8(Limits.firmwareSlots << 1) | 0x10)   // FRMW: 3 slots, activation without reset
        p.u8(261, 0x06)                     // LPA: effects log, extended data (LPO, NUMDU)
        p.u8(262, UInt8(Limits.errorLogEntries - 1))         // ELPE
        p.u16(266, 0x157)                   // WCTEMP
        p.u16(268, 0x175)                   // CCTEMP
        p.u128(280, s.6)                    // TNVMCAP
        p.u128(296, s.7)                    // UNVMCAP
        p.u16(316, UInt16(clamping: max(1, (s.8 + 59_999) / 60_000)))  // EDSTT, minutes
        p.u8(318, 0x01)                     // DSTO: one self-test at a time, subsystem-wide
        p.u8(319, 0xFF)                     // FWUG: no granularity restriction
        p.u16(320, 10)                      // KAS: 1 s granularity
        p.u32(328, 0x7)                     // SANICAP: crypto erase, block erase, overwrite
        p.u8(512, 0x66)                     // SQES
        p.u8(513, 0x44)                     // CQES
        p.u32(516, s.5)                     // NN
        p.u16(520, 0x1FF)                   // ONCS: Compare, WU, DSM, WZ, Save/Select, Reservations, Timestamp, Verify, Copy
        p.u8(524, 0x04)                     // FNA: crypto erase supported, per-namespace format and erase
        p.u8(525, 0x07)                     // VWC: present, Flush with broadcast NSID supported
        p.u16(534, 0x1)                     // OCFS: Copy descriptor format 0
        p.u32(536, 0)                       // SGLS: not supported
        p.ascii(768, width: 256, s.9, pad: 0)   // SUBNQN
        p.u16(2048, 2500)                   // PSD0 MP: 25.00 W
        return p
    }

    func identifyNamespace(_ n: NamespaceState) -> Page {
        var p = commonNamespace()
        p.u64(0, n.blockCount)              // NSZE
        p.u64(8, n.blockCount)              // NCAP
        p.u64(16, n.blockCount)             // NUSE (no thin provisioning)
        p.u8(26, n.formatIndex)             // FLBAS
        p.u128(48, n.sizeBytes)             // NVMCAP
        p.u16(74, Limits.mssrl)             // MSSRL
        p.u32(76, Limits.mcl)               // MCL
        p.u8(80, Limits.msrc)               // MSRC
        p.raw(104, n.nguid)                 // NGUID
        p.raw(120, eui64(n.nguid))          // EUI64
        return p
    }

    /// The fields common to all namespaces (Identify Namespace with NSID FFFFFFFFh).
    func commonNamespace() -> Page {
        var p = Page(size: 4096)
        p.u8(25, UInt8(Limits.lbaFormats.count - 1))   // NLBAF (0's based)
        p.u8(30, 1)                         // NMIC: shareable
        p.u8(31, 0xFF)                      // RESCAP: PTPL, types 1-6, IEKEY
        p.u8(33, 0x09)                      // DLFEAT: deallocated blocks read zeroes; Write Zeroes DEAC
        for (i, size) in Limits.lbaFormats.enumerated() {
            p.u16(128 + 4 * i, 0)           // MS: no metadata
            p.u8(130 + 4 * i, UInt8(size.trailingZeroBitCount))   // LBADS
            p.u8(131 + 4 * i, size == 4096 ? 0 : 2)               // RP: best / good
        }
        return p
    }

    func nsidList(after nsid: UInt32, activeOnly: Bool) -> Page {
        var p = Page(size: 4096)
        let all = subsystem.state.withLock { s in s.namespaces.keys.sorted().compactMap { s.namespaces[$0] } }
        var i = 0
        for ns in all where ns.nsid > nsid && i < 1024 {
            if activeOnly && !ns.state.withLock({ $0.attached.contains(controllerID) }) { continue }
            p.u32(4 * i, ns.nsid)
            i += 1
        }
        return p
    }

    func controllerList(_ ids: [UInt16]) -> Page {
        var p = Page(size: 4096)
        let list = ids.prefix(2047)
        p.u16(0, UInt16(list.count))
        for (i, id) in list.enumerated() { p.u16(2 + 2 * i, id) }
        return p
    }
}

func eui64(_ nguid: [UInt8]) -> [UInt8] { Array(nguid.suffix(8)) }

/// A UUID (RFC 9562 layout, version 8: custom) derived from the NGUID.
func uuid(_ nguid: [UInt8]) -> [UInt8] {
    var u = nguid.reversed().map { $0 ^ 0x5A }
    guard u.count == 16 else { return [UInt8](repeating: 0, count: 16) }
    u[6] = u[6] & 0x0F | 0x80
    u[8] = u[8] & 0x3F | 0x80
    return u
}
