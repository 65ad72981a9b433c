import NVMeSpec

// The NVM command set: Flush, Write, Read, Write Uncorrectable, Compare, Write Zeroes,
// Dataset Management, Verify, Copy, and the reservation commands (Reservations.swift).
//
// Validation order follows QEMU's `nvme_io_cmd`: Flush first (broadcast NSID allowed), the
// NSID, the namespace being attached, FUSE, the opcode, then per command: reservation,
// transfer size (MDTS), LBA range, the caller's buffer, media state.

/// Read-type and write-type commands for reservation checks (NVMe Base 2.x, Figure
/// "Command Behavior in the Presence of a Reservation").
private let readCommands: Set<IOOpcode> = [.read, .compare, .verify]
private let writeCommands: Set<IOOpcode> = [.write, .writeUncorrectable, .writeZeroes,
                                         .datasetManagement, .copy, .flush]

extension EmulatedController {
    func io(_ cmd: Command, _ data: UnsafeMutableRawBufferPointer) -> Completion {
        let opcode = IOOpcode(rawValue: cmd.opcode)
        if opcode == .flush && cmd.nsid == 0xFFFF_FFFF {
            guard cmd.fuse == 0 else { return Completion(status: .invalidField) }
            return Completion(status: flushAll() ? .success : NVMeStatus.writeFault)
        }
        guard isValidNSID(cmd.nsid) else { return Completion(status: .invalidNamespaceOrFormat.withDoNotRetry) }
        // An allocated but detached namespace is inactive for this controller (QEMU answers
        // Invalid Field here; the spec's inactive-NSID answer is Invalid Namespace or Format).
        guard let ns = activeNamespace(cmd.nsid) else { return Completion(status: .invalidNamespaceOrFormat.withDoNotRetry) }
        guard cmd.fuse == 0 else { return Completion(status: .invalidField) }
        guard Self.ioEffects[opcode] != nil else { return Completion(status: .invalidOpcode.withDoNotRetry) }
        guard cmd.psdt == 0 else { return Completion(status: .invalidField.withDoNotRetry) }
        let host = hostKey
        let writeThrough = !volatileWriteCacheEnabled
        var saveAfter = false
        let completion = ns.state.withLock { (n) -> Completion in
            guard !n.deleted, n.attached.contains(controllerID) else {
                return Completion(status: .invalidNamespaceOrFormat.withDoNotRetry)
            }
            if readCommands.contains(opcode) || writeCommands.contains(opcode),
               n.reservation.conflicts(host: host, write: writeCommands.contains(opcode)) {
                return Completion(status: .reservationConflict.withDoNotRetry)
            }
            // A FUA or write-through command that rewrites uncorrectable blocks is durable only
            // once the state file stops listing them, else they fail again after a crash.
            let uncorrectable = n.uncorrectable
            defer {
                if (cmd.fua || writeThrough) && n.uncorrectable != uncorrectable {
                    saveAfter = subsystem.directory != nil
                }
            }
            switch opcode {
            case .flush:
                do { try n.store.sync() } catch { return Completion(status: .writeFault) }
                saveAfter = true
                return Completion()
            case .read, .write, .compare:
                return transfer(cmd, data, &n, writeThrough: writeThrough)
            case .writeZeroes:
                if let bad = checkRange(cmd.slba, cmd.blocks, n) { return Completion(status: bad) }
                let size = UInt64(n.lbaSize)
                do {
                    try n.store.zero(at: cmd.slba * size, count: cmd.blocks * size)
                    if cmd.fua || writeThrough { try n.store.sync() }
                } catch { return Completion(status: .writeFault) }
                n.uncorrectable.remove(start: cmd.slba, end: cmd.slba + cmd.blocks)
                subsystem.counters.hostWrites.add(1, ordering: .relaxed)
                return Completion()
            case .writeUncorrectable:
                if let bad = checkRange(cmd.slba, cmd.blocks, n) { return Completion(status: bad) }
                n.uncorrectable.insert(start: cmd.slba, end: cmd.slba + cmd.blocks)
                subsystem.counters.hostWrites.add(1, ordering: .relaxed)
                saveAfter = subsystem.directory != nil
                return Completion()
            case .verify:
                guard cmd.blocks * UInt64(n.lbaSize) <= UInt64(Limits.maxVerify) else {
                    return Completion(status: .invalidField.withDoNotRetry)
                }
                if let bad = checkRange(cmd.slba, cmd.blocks, n) { return Completion(status: bad) }
                if n.uncorrectable.intersects(start: cmd.slba, end: cmd.slba + cmd.blocks) {
                    subsystem.counters.mediaErrors.add(1, ordering: .relaxed)
                    return Completion(status: .unrecoveredReadError.withDoNotRetry)
                }
                subsystem.counters.hostReads.add(1, ordering: .relaxed)
                return Completion()
            case .datasetManagement:
                let status = datasetManagement(cmd, data, &n)
                if status.isSuccess && !n.uncorrectable.isEmpty { saveAfter = subsystem.directory != nil }
                return Completion(status: status)
            case .copy:
                return Completion(status: copy(cmd, data, &n, writeThrough: writeThrough))
            case .reservationRegister, .reservationAcquire, .reservationRelease:
                let status = reservationCommand(cmd, data, &n, host: host)
                saveAfter = status.isSuccess && subsystem.directory != nil
                return Completion(status: status)
            case .reservationReport:
                return Completion(status: reservationReport(cmd, data, n))
            default:
                return Completion(status: .invalidOpcode.withDoNotRetry)
            }
        }
        if saveAfter { _ = subsystem.state.withLock { subsystem.save(&$0) } }
        return completion
    }

    /// LBA Out of Range when [slba, slba + blocks) is not inside the namespace (overflow safe).
    func checkRange(_ slba: UInt64, _ blocks: UInt64, _ n: NamespaceState) -> NVMeStatus? {
        let nsze = n.blockCount
        return slba <= nsze && blocks <= nsze - slba ? nil : NVMeStatus.lbaOutOfRange.withDoNotRetry
    }

    /// Read, Write and Compare: data moves between the caller's buffer and the namespace.
    private func transfer(_ cmd: Command, _ data: UnsafeMutableRawBufferPointer, _ n: inout NamespaceState,
                          writeThrough: Bool) -> Completion {
        let size = UInt64(n.lbaSize)
        let bytes = cmd.blocks * size
        guard bytes <= UInt64(Limits.maxTransfer) else { return Completion(status: .invalidField.withDoNotRetry) }   // MDTS
        if let bad = checkRange(cmd.slba, cmd.blocks, n) { return Completion(status: bad) }
        guard UInt64(data.count) >= bytes else { return Completion(status: .dataTransferError.withDoNotRetry) }
        let buffer = UnsafeMutableRawBufferPointer(rebasing: data[0..<Int(bytes)])
        let offset = cmd.slba * size
        let counters = subsystem.counters
        switch IOOpcode(rawValue: cmd.opcode) {
        case .write:
            do {
                try n.store.write(at: offset, from: UnsafeRawBufferPointer(buffer))
                if cmd.fua || writeThrough { try n.store.sync() }
            } catch { return Completion(status: .writeFault) }
            n.uncorrectable.remove(start: cmd.slba, end: cmd.slba + cmd.blocks)
            counters.hostWrites.add(1, ordering: .relaxed)
            counters.unitsWritten.add(bytes / 512, ordering: .relaxed)
            return Completion()
        case .read:
            if n.uncorrectable.intersects(start: cmd.slba, end: cmd.slba + cmd.blocks) {
                counters.mediaErrors.add(1, ordering: .relaxed)
                return Completion(status: .unrecoveredReadError.withDoNotRetry)
            }
            do { try n.store.read(at: offset, into: buffer) } catch { return Completion(status: .unrecoveredReadError.withDoNotRetry) }
            counters.hostReads.add(1, ordering: .relaxed)
            counters.unitsRead.add(bytes / 512, ordering: .relaxed)
            return Completion()
        default:   // Compare
            if n.uncorrectable.intersects(start: cmd.slba, end: cmd.slba + cmd.blocks) {
                counters.mediaErrors.add(1, ordering: .relaxed)
                return Completion(status: .unrecoveredReadError.withDoNotRetry)
            }
            var stored = [UInt8](repeating: 0, count: Int(bytes))
            let failed = stored.withUnsafeMutableBytes { s -> Bool in
                do { try n.store.read(at: offset, into: s); return false } catch { return true }
            }
            if failed { return Completion(status: .unrecoveredReadError.withDoNotRetry) }
            counters.hostReads.add(1, ordering: .relaxed)
            counters.unitsRead.add(bytes / 512, ordering: .relaxed)
            let same = stored.withUnsafeBytes { s in s.elementsEqual(UnsafeRawBufferPointer(buffer)) }
            return Completion(status: same ? .success : NVMeStatus.compareFailure.withDoNotRetry)
        }
    }

    /// Dataset Management: 16-byte ranges (context attributes, length in blocks, SLBA).
    /// Only Deallocate (AD) changes anything: deallocated blocks read as zeroes (DLFEAT).
    /// All ranges are checked before any is applied.
    private func datasetManagement(_ cmd: Command, _ data: UnsafeMutableRawBufferPointer,
                                   _ n: inout NamespaceState) -> NVMeStatus {
        let count = Int(cmd.cdw10 & 0xFF) + 1
        guard data.count >= count * 16 else { return .dataTransferError.withDoNotRetry }
        guard cmd.cdw11 & 0x4 != 0 else { return .success }      // IDR / IDW hints only
        var ranges: [(UInt64, UInt64)] = []
        for i in 0..<count {
            let blocks = UInt64(data.le32(16 * i + 4)), slba = data.le64(16 * i + 8)
            if blocks == 0 { continue }
            if let bad = checkRange(slba, blocks, n) { return bad }
            ranges.append((slba, blocks))
        }
        let size = UInt64(n.lbaSize)
        for (slba, blocks) in ranges {
            do { try n.store.zero(at: slba * size, count: blocks * size) } catch { return .writeFault }
            n.uncorrectable.remove(start: slba, end: slba + blocks)
        }
        return .success
    }

    /// Copy with source range descriptor format 0 (32 bytes: SLBA at 8, NLB at 16).
    private func copy(_ cmd: Command, _ data: UnsafeMutableRawBufferPointer, _ n: inout NamespaceState,
                      writeThrough: Bool) -> NVMeStatus {
        let sdlba = cmd.slba
        let count = Int(cmd.cdw12 & 0xFF) + 1
        guard (cmd.cdw12 >> 8) & 0xF == 0 else { return .invalidField.withDoNotRetry }   // OCFS: format 0 only
        guard count <= Int(Limits.msrc) + 1 else { return .commandSizeLimitExceeded.withDoNotRetry }
        guard data.count >= count * 32 else { return .dataTransferError.withDoNotRetry }
        var ranges: [(UInt64, UInt64)] = []
        var total: UInt64 = 0
        for i in 0..<count {
            let slba = data.le64(32 * i + 8), blocks = UInt64(data.le16(32 * i + 16)) + 1
            guard blocks <= UInt64(Limits.mssrl) else { return .commandSizeLimitExceeded.withDoNotRetry }
            total += blocks
            guard total <= UInt64(Limits.mcl) else { return .commandSizeLimitExceeded.withDoNotRetry }
            if let bad = checkRange(slba, blocks, n) { return bad }
            ranges.append((slba, blocks))
        }
        if let bad = checkRange(sdlba, total, n) { return bad }
        for (slba, blocks) in ranges where n.uncorrectable.intersects(start: slba, end: slba + blocks) {
            subsystem.counters.mediaErrors.add(1, ordering: .relaxed)
            return .unrecoveredReadError.withDoNotRetry
        }
        let size = UInt64(n.lbaSize)
        var buffer = [UInt8](repeating: 0, count: Int(total * size))
        let status = buffer.withUnsafeMutableBytes { b -> NVMeStatus in
            var at = 0
            for (slba, blocks) in ranges {
                let len = Int(blocks * size)
                do { try n.store.read(at: slba * size, into: UnsafeMutableRawBufferPointer(rebasing: b[at..<(at + len)])) }
                catch { return .unrecoveredReadError.withDoNotRetry }
                at += len
            }
            do {
                try n.store.write(at: sdlba * size, from: UnsafeRawBufferPointer(b))
                if cmd.fua || writeThrough { try n.store.sync() }
            } catch { return .writeFault }
            return .success
        }
        guard status.isSuccess else { return status }
        n.uncorrectable.remove(start: sdlba, end: sdlba + total)
        subsystem.counters.hostWrites.add(1, ordering: .relaxed)
        return .success
    }
}
