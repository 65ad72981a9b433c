import NVMeSpec

// Reservation Register (0Dh), Reservation Report (0Eh), Reservation Acquire (11h) and
// Reservation Release (15h), NVMe Base 2.x §7 and §8 "Reservations".
//
// A host is named by its Host Identifier (Set Features 81h); a controller whose host never
// set one is a host of its own. Every controller of an `EmulatedSubsystem` shares the
// namespace's reservation, so two controllers with different host identifiers are two hosts.
// Reservations survive a reopen of a file-backed subsystem only with Persist Through Power
// Loss (CPTPL = 11b), as the spec says for power loss.

extension EmulatedController {
    func reservationCommand(_ cmd: Command, _ data: UnsafeMutableRawBufferPointer,
                            _ n: inout NamespaceState, host: HostKey) -> NVMeStatus {
        let action = cmd.cdw10 & 0x7
        let ignoreExistingKey = cmd.cdw10 & 0x8 != 0
        let needed = IOOpcode(rawValue: cmd.opcode) == .reservationRelease ? 8 : 16
        guard data.count >= needed else { return .dataTransferError.withDoNotRetry }
        let currentKey = data.le64(0)
        let otherKey = needed == 16 ? data.le64(8) : 0
        var r = n.reservation
        let me = r.registrant(host)
        func keyMatches() -> Bool { ignoreExistingKey || me?.key == currentKey }

        switch IOOpcode(rawValue: cmd.opcode) {
        case .reservationRegister:
            let cptpl = cmd.cdw10 >> 30
            guard action <= 2, cptpl != 1 else { return .invalidField.withDoNotRetry }
            let newKey = otherKey
            switch action {
            case 0:   // Register
                if let me { return me.key == newKey ? .success : NVMeStatus.reservationConflict.withDoNotRetry }
                r.registrants.append(Registrant(host: host, controllerID: controllerID, key: newKey))
            case 1:   // Unregister
                guard me != nil, keyMatches() else { return .reservationConflict.withDoNotRetry }
                r.removeRegistrants { $0.host == host }
            default:  // Replace
                if me != nil {
                    guard keyMatches() else { return .reservationConflict.withDoNotRetry }
                    if let i = r.registrants.firstIndex(where: { $0.host == host }) { r.registrants[i].key = newKey }
                } else {
                    guard ignoreExistingKey else { return .reservationConflict.withDoNotRetry }
                    r.registrants.append(Registrant(host: host, controllerID: controllerID, key: newKey))
                }
            }
            if cptpl == 2 { r.persistThroughPowerLoss = false }
            if cptpl == 3 { r.persistThroughPowerLoss = true }
            r.generation &+= 1

        case .reservationAcquire:
            let type = UInt8(truncatingIfNeeded: cmd.cdw10 >> 8)
            guard action <= 2, (1...6).contains(type) else { return .invalidField.withDoNotRetry }
            guard me != nil, keyMatches() else { return .reservationConflict.withDoNotRetry }
            let preemptKey = otherKey
            if action == 0 {   // Acquire
                if r.type == 0 { r.type = type; r.holder = host }
                else if !(r.holds(host) && r.type == type) { return .reservationConflict.withDoNotRetry }
                break
            }
            // Preempt, and Preempt and Abort (commands complete synchronously: nothing to abort).
            if r.type == 0 {
                guard r.registrants.contains(where: { $0.key == preemptKey && $0.host != host }) else {
                    return .reservationConflict.withDoNotRetry
                }
                r.removeRegistrants { $0.key == preemptKey && $0.host != host }
            } else if r.isAllRegistrants {
                if preemptKey == 0 {
                    r.registrants.removeAll { $0.host != host }
                    r.type = type; r.holder = host
                } else {
                    guard r.registrants.contains(where: { $0.key == preemptKey && $0.host != host }) else {
                        return .reservationConflict.withDoNotRetry
                    }
                    r.removeRegistrants { $0.key == preemptKey && $0.host != host }
                }
            } else {
                let holderKey = r.holder.flatMap { r.registrant($0)?.key }
                if preemptKey == holderKey {
                    r.registrants.removeAll { $0.key == preemptKey && $0.host != host }
                    r.type = type; r.holder = host
                } else {
                    guard preemptKey != 0 else { return .invalidField.withDoNotRetry }
                    guard r.registrants.contains(where: { $0.key == preemptKey && $0.host != host }) else {
                        return .reservationConflict.withDoNotRetry
                    }
                    r.removeRegistrants { $0.key == preemptKey && $0.host != host }
                }
            }
            r.generation &+= 1

        default:   // Reservation Release
            let type = UInt8(truncatingIfNeeded: cmd.cdw10 >> 8)
            guard action <= 1 else { return .invalidField.withDoNotRetry }
            guard me != nil, keyMatches() else { return .reservationConflict.withDoNotRetry }
            if action == 0 {   // Release
                guard r.type != 0, r.holds(host) else { return .success }   // nothing held by this host
                guard r.type == type else { return .invalidField.withDoNotRetry }
                r.type = 0; r.holder = nil
            } else {           // Clear
                r.registrants.removeAll()
                r.type = 0; r.holder = nil
                r.generation &+= 1
            }
        }
        n.reservation = r
        return .success
    }

    /// Reservation Report: a 24-byte header and 24-byte registered controller entries, or with
    /// EDS (CDW11 bit 0) a 64-byte header and 64-byte entries carrying 128-bit host identifiers.
    func reservationReport(_ cmd: Command, _ data: UnsafeMutableRawBufferPointer, _ n: NamespaceState) -> NVMeStatus {
        let length = (UInt64(cmd.cdw10) + 1) * 4
        guard length <= UInt64(Limits.maxTransfer) else { return .invalidField.withDoNotRetry }
        guard UInt64(data.count) >= length else { return .dataTransferError.withDoNotRetry }
        let extended = cmd.cdw11 & 1 != 0
        let r = n.reservation
        let header = extended ? 64 : 24, entry = extended ? 64 : 24
        var p = Page(size: header + entry * r.registrants.count)
        p.u32(0, r.generation)                              // GEN
        p.u8(4, r.type)                                     // RTYPE
        p.u16(5, UInt16(r.registrants.count))               // REGCTL
        p.u8(9, r.persistThroughPowerLoss ? 1 : 0)          // PTPLS
        for (i, reg) in r.registrants.enumerated() {
            let o = header + entry * i
            p.u16(o, reg.controllerID)                      // CNTLID
            p.u8(o + 2, r.holds(reg.host) ? 1 : 0)          // RCSTS: holds the reservation
            let id = reg.host.hostID
            if extended {
                p.u64(o + 8, reg.key)                       // RKEY
                if id.count == 16 { p.raw(o + 16, id) }     // HOSTID (128-bit)
            } else {
                if id.count == 8 { p.raw(o + 8, id) }       // HOSTID (64-bit)
                p.u64(o + 16, reg.key)                      // RKEY
            }
        }
        copyOut(p.bytes, length: Int(length), to: data)
        return .success
    }
}
