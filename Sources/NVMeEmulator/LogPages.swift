import NVMeSpec

// Get Log Page (02h): supported log pages, error information, SMART / health, firmware
// slot, changed namespace list, commands supported and effects, device self-test and
// sanitize status. Offsets are those of libnvme 1.3's log page structs.

extension EmulatedController {
    func getLogPage(_ cmd: Command, _ data: UnsafeMutableRawBufferPointer) -> NVMeStatus {
        let lid = LogPageID(rawValue: UInt8(truncatingIfNeeded: cmd.cdw10))
        let rae = cmd.cdw10 & 0x8000 != 0
        let numd = UInt64(cmd.cdw11 & 0xFFFF) << 16 | UInt64(cmd.cdw10 >> 16)
        let length = (numd + 1) * 4
        let offset = UInt64(cmd.cdw13) << 32 | UInt64(cmd.cdw12)
        // Checks in QEMU's order: offset alignment, MDTS, then the page.
        guard offset & 3 == 0 else { return .invalidField.withDoNotRetry }
        guard length <= UInt64(Limits.maxTransfer) else { return .invalidField.withDoNotRetry }
        guard cmd.cdw14 & (1 << 23) == 0 else { return .invalidField.withDoNotRetry }   // Offset Type: index (LPA IOS clear)
        guard cmd.cdw14 & 0x7F == 0 else { return .invalidField.withDoNotRetry }        // UUID Index: no UUID list
        let page: [UInt8]
        switch lid {
        case .supportedLogPages:
            var p = Page(size: 1024)
            for l in [LogPageID.supportedLogPages, .errorInformation, .smartHealthInformation, .firmwareSlotInformation,
                      .changedNamespaceList, .commandsSupportedAndEffects, .deviceSelfTest,
                      .sanitizeStatus] { p.u32(4 * Int(l.rawValue), 1) }   // LSUPP
            page = p.bytes
        case .errorInformation:
            page = errorLog()
        case .smartHealthInformation:
            // LPA bit 0 is clear: SMART is kept for the controller, not per namespace.
            guard cmd.nsid == 0 || cmd.nsid == 0xFFFF_FFFF else { return .invalidField.withDoNotRetry }
            page = smartLog()
        case .firmwareSlotInformation:
            page = subsystem.state.withLock { s in
                var p = Page(size: 512)
                p.u8(0, UInt8(s.firmware.active) | UInt8(s.firmware.next ?? 0) << 4)   // AFI
                for (i, slot) in s.firmware.slots.enumerated() { if let slot { p.ascii(8 + 8 * i, width: 8, slot) } }
                return p.bytes
            }
        case .changedNamespaceList:
            page = subsystem.state.withLock { s in
                var p = Page(size: 4096)
                for (i, nsid) in (s.changedNamespaces[controllerID] ?? []).prefix(1024).enumerated() { p.u32(4 * i, nsid) }
                if !rae {
                    s.changedNamespaces[controllerID] = nil
                    s.pendingEvents[controllerID]?.removeAll { $0 >> 16 & 0xFF == UInt32(LogPageID.changedNamespaceList.rawValue) }
                }
                return p.bytes
            }
        case .commandsSupportedAndEffects:
            page = Self.effectsLog(CommandSet(rawValue: UInt8(truncatingIfNeeded: cmd.cdw14 >> 24))).bytes
        case .deviceSelfTest:
            page = selfTestLog()
        case .sanitizeStatus:
            page = subsystem.state.withLock { s in
                var p = Page(size: 512)
                p.u16(0, s.sanitizeProgress)    // SPROG
                p.u16(2, s.sanitizeStatus)      // SSTAT
                p.u32(4, s.sanitizeCDW10)       // SCDW10
                p.u32(8, 0xFFFF_FFFF)           // estimated times: not reported
                p.u32(12, 0xFFFF_FFFF)
                p.u32(16, 0xFFFF_FFFF)
                return p.bytes
            }
        default:
            return .invalidLogPage.withDoNotRetry
        }
        guard offset < UInt64(page.count) else { return .invalidField.withDoNotRetry }
        guard UInt64(data.count) >= length else { return .dataTransferError.withDoNotRetry }
        copyOut(page, offset: Int(offset), length: Int(length), to: data)
        if lid == .changedNamespaceList && !rae { _ = subsystem.state.withLock { subsystem.save(&$0) } }
        return .success
    }

    func errorLog() -> [UInt8] {
        subsystem.state.withLock { s in
            var p = Page(size: 64 * Limits.errorLogEntries)
            for (i, e) in s.errorLog.enumerated() {
                let o = 64 * i
                p.u64(o, e.count)                 // Error Count
                p.u16(o + 8, e.sqid)              // Submission Queue ID
                p.u16(o + 10, e.cid)              // Command ID
                p.u16(o + 12, e.status << 1)      // Status Field (bit 0: phase tag)
                p.u16(o + 14, 0xFFFF)             // Parameter Error Location: not specific
                p.u64(o + 16, e.lba)              // LBA
                p.u32(o + 24, e.nsid)             // Namespace
            }
            return p.bytes
        }
    }

    func smartLog() -> [UInt8] {
        let overThreshold = currentFeature(featureKey(.temperatureThreshold, selector: 0))
        let underThreshold = currentFeature(featureKey(.temperatureThreshold, selector: 1))
        let temperature: UInt16 = 0x143   // 323 K
        return subsystem.state.withLock { s in
            var p = Page(size: 512)
            var warning: UInt8 = 0
            if UInt32(temperature) >= overThreshold & 0xFFFF || UInt32(temperature) < underThreshold & 0xFFFF {
                warning |= 0x02             // temperature threshold condition
            }
            p.u8(0, warning)                            // Critical Warning
            p.u16(1, temperature)                       // Composite Temperature
            p.u8(3, 100)                                // Available Spare
            p.u8(4, 10)                                 // Available Spare Threshold
            p.u8(5, 0)                                  // Percentage Used
            // Data units: thousands of 512-byte units, rounded up.
            p.u128(32, (subsystem.counters.unitsRead.load(ordering: .relaxed) + 999) / 1000)
            p.u128(48, (subsystem.counters.unitsWritten.load(ordering: .relaxed) + 999) / 1000)
            p.u128(64, subsystem.counters.hostReads.load(ordering: .relaxed))          // Host Read Commands
            p.u128(80, subsystem.counters.hostWrites.load(ordering: .relaxed))         // Host Write Commands
            p.u128(112, s.powerCycles)                                // Power Cycles
            p.u128(128, s.powerOnHours)                               // Power On Hours
            p.u128(144, s.unsafeShutdowns)                            // Unsafe Shutdowns
            p.u128(160, subsystem.counters.mediaErrors.load(ordering: .relaxed))       // Media and Data Integrity Errors
            p.u128(176, s.errorCount)                                 // Number of Error Information Log Entries
            p.u16(200, temperature)                                   // Temperature Sensor 1
            return p.bytes
        }
    }

    func selfTestLog() -> [UInt8] {
        subsystem.state.withLock { s in
            s.settleSelfTest()
            var p = Page(size: 564)
            if let run = s.runningSelfTest {
                p.u8(0, run.code)       // Current Device Self-Test Operation
                let elapsed = monotonicMilliseconds() - run.startMilliseconds
                p.u8(1, UInt8(min(99, elapsed * 100 / max(1, run.durationMilliseconds))))   // Completion
            }
            for i in 0..<Limits.selfTestResults {
                let o = 4 + 28 * i
                guard i < s.selfTestResults.count else { p.u8(o, 0x0F); continue }   // entry not used
                let r = s.selfTestResults[i]
                p.u8(o, r.code << 4 | r.result)           // Device Self-test Status
                p.u8(o + 2, r.nsid != 0 ? 0x01 : 0)       // Valid Diagnostic Information: NSID valid
                p.u64(o + 4, r.powerOnHours)              // Power On Hours
                p.u32(o + 12, r.nsid)                     // Namespace Identifier
            }
            return p.bytes
        }
    }
}
