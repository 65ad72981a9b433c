import NVMeGate
import NVMeSpec

// The NVM command set: Flush, Write, Read, Write Uncorrectable, Compare, Write Zeroes,
// Dataset Management, Verify, Copy, and the reservation commands (Reservations.swift).
//
// Validation order follows QEMU's `nvme_io_cmd`: Flush first (broadcast NSID allowed), the
// NSID, the namespace being attached, FUSE, the opcode, then per command: reservation,
// transfer size (MDTS), LBA range, the caller's buffer, media state.
//
// The path of a Read or Write takes no subsystem lock and makes no allocation: the namespace
// is found in the published index, the write cache setting is read from atomics, and the
// namespace's own lock is the only one held (shared by Read, Compare and Verify).

/// The SMART counters one or more commands moved, added to the subsystem's atomics once.
struct IOTally {
    var reads: UInt64 = 0
    var unitsRead: UInt64 = 0
    var writes: UInt64 = 0
    var unitsWritten: UInt64 = 0
    var mediaErrors: UInt64 = 0

    func add(to counters: borrowing SmartCounters) {
        if reads != 0 {
            counters.hostReads.add(reads, ordering: .relaxed)
            counters.unitsRead.add(unitsRead, ordering: .relaxed)
        }
        if writes != 0 { counters.hostWrites.add(writes, ordering: .relaxed) }
        if unitsWritten != 0 { counters.unitsWritten.add(unitsWritten, ordering: .relaxed) }
        if mediaErrors != 0 { counters.mediaErrors.add(mediaErrors, ordering: .relaxed) }
    }
}

/// Where an I/O command goes after the checks that need no namespace lock.
enum IORoute {
    /// Completed already (an invalid or unallocated NSID, or a Flush to every namespace).
    case completed(Completion)
    /// To execute on this active namespace (unretained: namespaces live as long as the subsystem).
    case namespace(Unmanaged<Namespace>)
}

extension EmulatedController {
    func io(_ cmd: Command, _ data: UnsafeMutableRawBufferPointer) -> Completion {
        switch route(cmd) {
        case .completed(let completion):
            return completion
        case .namespace(let ns):
            var tally = IOTally()
            var saveAfter = false
            let completion = ns._withUnsafeGuaranteedRef { ns in
                if Self.onlyReads(cmd.opcode) {
                    return ns.state.withSharedLock { n in
                        if let refused = refusal(cmd, n) { return refused }
                        return executeReading(cmd, data, n, &tally)
                    }
                }
                return ns.state.withLock { n in
                    if let refused = refusal(cmd, n) { return refused }
                    return execute(cmd, data, &n, &tally, saveAfter: &saveAfter)
                }
            }
            tally.add(to: subsystem.counters)
            if saveAfter { _ = subsystem.state.withLock { subsystem.save(&$0) } }
            return completion
        }
    }

    /// The checks before the namespace lock: a Flush to every namespace runs here; then the
    /// NSID must be valid and allocated.
    @inline(__always)
    func route(_ cmd: Command) -> IORoute {
        if cmd.opcode == IOOpcode.flush.rawValue && cmd.nsid == 0xFFFF_FFFF {
            guard cmd.fuse == 0 else { return .completed(Completion(status: .invalidField)) }
            return .completed(Completion(status: flushAll() ? .success : NVMeStatus.writeFault))
        }
        guard isValidNSID(cmd.nsid), let ns = subsystem.namespace(cmd.nsid) else {
            return .completed(Completion(status: .invalidNamespaceOrFormat.withDoNotRetry))
        }
        return .namespace(ns)
    }

    /// The checks under the namespace lock, in QEMU's order: the namespace attached to this
    /// controller (an allocated but detached namespace is inactive for it: QEMU answers Invalid
    /// Field, the spec's inactive-NSID answer is Invalid Namespace or Format), FUSE, the
    /// opcode, PSDT. Nil when the command may run.
    @inline(__always)
    func refusal(_ cmd: Command, _ n: borrowing NamespaceState) -> Completion? {
        guard n.isActive(for: controllerID) else {
            return Completion(status: .invalidNamespaceOrFormat.withDoNotRetry)
        }
        if cmd.fuse != 0 { return Completion(status: .invalidField) }
        if !implementsIO(cmd.opcode) { return Completion(status: .invalidOpcode.withDoNotRetry) }
        if cmd.psdt != 0 { return Completion(status: .invalidField.withDoNotRetry) }
        return nil
    }

    /// Commands that only read the namespace, which run under its shared lock: Read (02h),
    /// Compare (05h) and Verify (0Ch).
    @inline(__always)
    static func onlyReads(_ opcode: UInt8) -> Bool {
        opcode == 0x02 || opcode == 0x05 || opcode == 0x0C
    }

    /// Whether a reservation check treats `opcode` as a write-type (true) or read-type (false)
    /// command, nil for neither (NVMe Base 2.x, Figure "Command Behavior in the Presence of a
    /// Reservation").
    static func reservationWrites(_ opcode: IOOpcode) -> Bool? {
        switch opcode {
        case .read, .compare, .verify: false
        case .write, .writeUncorrectable, .writeZeroes, .datasetManagement, .copy, .flush: true
        default: nil
        }
    }

    /// Whether a reservation on the namespace keeps this controller's host from `cmd`.
    @inline(__always)
    func reservationConflict(_ cmd: Command, _ n: borrowing NamespaceState) -> Bool {
        guard n.reservation.type != 0, let write = Self.reservationWrites(IOOpcode(rawValue: cmd.opcode)) else { return false }
        return n.reservation.conflicts(host: hostKey, write: write)
    }

    /// Read, Compare and Verify, the namespace lock held (shared or alone).
    @inline(__always)
    func executeReading(_ cmd: Command, _ data: UnsafeMutableRawBufferPointer, _ n: borrowing NamespaceState,
                        _ tally: inout IOTally) -> Completion {
        if reservationConflict(cmd, n) { return Completion(status: .reservationConflict.withDoNotRetry) }
        if cmd.opcode == 0x0C {   // Verify
            guard cmd.blocks * UInt64(n.lbaSize) <= UInt64(Limits.maxVerify) else {
                return Completion(status: .invalidField.withDoNotRetry)
            }
            if let bad = checkRange(cmd.slba, cmd.blocks, n) { return Completion(status: bad) }
            if n.uncorrectable.intersects(start: cmd.slba, end: cmd.slba + cmd.blocks) {
                tally.mediaErrors &+= 1
                return Completion(status: .unrecoveredReadError.withDoNotRetry)
            }
            tally.reads &+= 1
            return Completion()
        }
        let size = UInt64(n.lbaSize)
        let bytes = cmd.blocks * size
        guard bytes <= UInt64(Limits.maxTransfer) else { return Completion(status: .invalidField.withDoNotRetry) }   // MDTS
        if let bad = checkRange(cmd.slba, cmd.blocks, n) { return Completion(status: bad) }
        guard UInt64(data.count) >= bytes else { return Completion(status: .dataTransferError.withDoNotRetry) }
        if n.uncorrectable.intersects(start: cmd.slba, end: cmd.slba + cmd.blocks) {
            tally.mediaErrors &+= 1
            return Completion(status: .unrecoveredReadError.withDoNotRetry)
        }
        let buffer = UnsafeMutableRawBufferPointer(rebasing: data[0..<Int(bytes)])
        let offset = cmd.slba * size
        if cmd.opcode == 0x02 {   // Read
            do { try n.store.read(at: offset, into: buffer) } catch { return Completion(status: .unrecoveredReadError.withDoNotRetry) }
            tally.reads &+= 1
            tally.unitsRead &+= bytes / 512
            return Completion()
        }
        // Compare
        var stored = [UInt8](repeating: 0, count: Int(bytes))
        let failed = stored.withUnsafeMutableBytes { s -> Bool in
            do { try n.store.read(at: offset, into: s); return false } catch { return true }
        }
        if failed { return Completion(status: .unrecoveredReadError.withDoNotRetry) }
        tally.reads &+= 1
        tally.unitsRead &+= bytes / 512
        let same = stored.withUnsafeBytes { s in s.elementsEqual(UnsafeRawBufferPointer(buffer)) }
        return Completion(status: same ? .success : NVMeStatus.compareFailure.withDoNotRetry)
    }

    /// Any I/O command, the namespace lock held alone. `saveAfter` is set when the state
    /// file must be written once the lock is released.
    func execute(_ cmd: Command, _ data: UnsafeMutableRawBufferPointer, _ n: inout NamespaceState, _ tally: inout IOTally,
                 saveAfter: inout Bool) -> Completion {
        let opcode = IOOpcode(rawValue: cmd.opcode)
        if Self.onlyReads(cmd.opcode) { return executeReading(cmd, data, n, &tally) }
        if reservationConflict(cmd, n) { return Completion(status: .reservationConflict.withDoNotRetry) }
        let writeThrough = !volatileWriteCacheEnabled
        // A FUA or write-through command that rewrites uncorrectable blocks is durable only
        // once the state file stops listing them, else they fail again after a crash.
        let uncorrectable: IntervalSet? = (cmd.fua || writeThrough) && !n.uncorrectable.isEmpty && subsystem.directory != nil
            ? n.uncorrectable : nil
        defer {
            if let uncorrectable, n.uncorrectable != uncorrectable { saveAfter = true }
        }
        switch opcode {
        case .flush:
            do { try n.store.sync() } catch { return Completion(status: .writeFault) }
            saveAfter = true
            return Completion()
        case .write:
            let size = UInt64(n.lbaSize)
            let bytes = cmd.blocks * size
            guard bytes <= UInt64(Limits.maxTransfer) else { return Completion(status: .invalidField.withDoNotRetry) }   // MDTS
            if let bad = checkRange(cmd.slba, cmd.blocks, n) { return Completion(status: bad) }
            guard UInt64(data.count) >= bytes else { return Completion(status: .dataTransferError.withDoNotRetry) }
            do {
                try n.store.write(at: cmd.slba * size, from: UnsafeRawBufferPointer(rebasing: data[0..<Int(bytes)]))
                if cmd.fua || writeThrough { try n.store.sync() }
            } catch { return Completion(status: .writeFault) }
            n.uncorrectable.remove(start: cmd.slba, end: cmd.slba + cmd.blocks)
            tally.writes &+= 1
            tally.unitsWritten &+= bytes / 512
            return Completion()
        case .writeZeroes:
            if let bad = checkRange(cmd.slba, cmd.blocks, n) { return Completion(status: bad) }
            let size = UInt64(n.lbaSize)
            do {
                try n.store.zero(at: cmd.slba * size, count: cmd.blocks * size)
                if cmd.fua || writeThrough { try n.store.sync() }
            } catch { return Completion(status: .writeFault) }
            n.uncorrectable.remove(start: cmd.slba, end: cmd.slba + cmd.blocks)
            tally.writes &+= 1
            return Completion()
        case .writeUncorrectable:
            if let bad = checkRange(cmd.slba, cmd.blocks, n) { return Completion(status: bad) }
            n.uncorrectable.insert(start: cmd.slba, end: cmd.slba + cmd.blocks)
            tally.writes &+= 1
            saveAfter = saveAfter || subsystem.directory != nil
            return Completion()
        case .datasetManagement:
            let status = datasetManagement(cmd, data, &n)
            if status.isSuccess && !n.uncorrectable.isEmpty && subsystem.directory != nil { saveAfter = true }
            return Completion(status: status)
        case .copy:
            return Completion(status: copy(cmd, data, &n, writeThrough: writeThrough, &tally))
        case .reservationRegister, .reservationAcquire, .reservationRelease:
            let status = reservationCommand(cmd, data, &n, host: hostKey)
            if status.isSuccess && subsystem.directory != nil { saveAfter = true }
            return Completion(status: status)
        case .reservationReport:
            return Completion(status: reservationReport(cmd, data, n))
        default:
            return Completion(status: .invalidOpcode.withDoNotRetry)
        }
    }

    /// LBA Out of Range when [slba, slba + blocks) is not inside the namespace (overflow safe).
    @inline(__always)
    func checkRange(_ slba: UInt64, _ blocks: UInt64, _ n: borrowing NamespaceState) -> NVMeStatus? {
        let nsze = n.blockCount
        return slba <= nsze && blocks <= nsze - slba ? nil : NVMeStatus.lbaOutOfRange.withDoNotRetry
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
                      writeThrough: Bool, _ tally: inout IOTally) -> NVMeStatus {
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
            tally.mediaErrors &+= 1
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
        tally.writes &+= 1
        return .success
    }
}
