#if canImport(Glibc)
import Glibc
#endif
import NVMeSpec

/// Queue depth for callers with their own rings (a storage daemon): many commands per call,
/// each decided and executed exactly as its own NVME_IOCTL_IO64_CMD / NVME_IOCTL_ADMIN64_CMD
/// would be, with the per-call costs paid once per batch.
extension Gate {
    /// How many commands of a batch go to the controller in one `Controller.submitBatch`
    /// call: the gate copies that many 64-byte entries into scratch on its stack.
    public static var batchChunk: Int { 32 }

    /// Executes `count` `struct nvme_passthru_cmd64` (80 bytes each, back to back at
    /// `commands`) through `handle` on `queue`, each as NVME_IOCTL_IO64_CMD (`.io`) or
    /// NVME_IOCTL_ADMIN64_CMD (`.admin`) would: the same envelope checks, decision on a copy,
    /// buffer checks, counters and audit, and the result written back into its struct.
    /// `returns[i]` gets what that ioctl returns: 0, the positive NVMe status, or -errno.
    /// A refused command is not executed; the others are, in order.
    ///
    /// The handle is looked up and the policy snapshot loaded once per batch, and the
    /// controller is called once per `batchChunk` commands. Returns `count`, -EBADF when the
    /// handle is not open, -EINVAL for a negative count. Safe from many threads at once.
    public func submitBatch(_ handle: Int32, queue: Queue, commands: UnsafeMutableRawPointer, count: Int,
                            returns: UnsafeMutablePointer<Int32>) -> Int {
        guard let raw = handles.read(handle) else { return -Int(EBADF) }
        guard count > 0 else { return count == 0 ? 0 : -Int(EINVAL) }
        let (snapshot, pin) = pinSnapshot(handle)
        defer { epochs.unpin(pin) }
        let state = snapshot._withUnsafeGuaranteedRef { $0.resolve(raw, handle) }
        if queue == .io && state.context.kind == .controller {
            // As `ioctl`: NVME_IOCTL_IO64_CMD on a controller node is ENOTTY.
            returns.initialize(repeating: -ENOTTY, count: count)
            return count
        }
        if queue == .io && state.namespaceGone {
            for i in 0..<count {
                returns[i] = gone(state, PassthruCommand(commands + i &* PassthruCommand.size64, is64: true).opcode)
            }
            return count
        }
        var done = 0
        while done < count {
            let n = min(Self.batchChunk, count - done)
            if queue == .io {
                submitChunk(state, snapshot, queue: .io, commands + done &* PassthruCommand.size64, count: n, returns: returns + done)
            } else {
                submitChunk(state, snapshot, queue: .admin, commands + done &* PassthruCommand.size64, count: n,
                            returns: returns + done)
            }
            done &+= n
        }
        // As `execute`: the namespaces are read again after a command that changes them (on the
        // I/O queue usually none can, and the commands are not looked at again).
        let changed = snapshot._withUnsafeGuaranteedRef { s in
            let commandSet = state.context.commandSet
            return s.compiled.anyChangesNamespaces(queue: queue, commandSet: commandSet) && (0..<count).contains { i in
                returns[i] >= 0 && s.compiled.changesNamespaces(
                    queue: queue, commandSet: commandSet,
                    opcode: PassthruCommand(commands + i &* PassthruCommand.size64, is64: true).opcode)
            }
        }
        if changed { rescanNamespaces() }
        return count
    }

    /// Up to `batchChunk` commands: each is copied into a stack ring and decided; the allowed
    /// ones are compacted to the ring's front and go to the controller in one call. A
    /// range-checked command (`Admission.checkRanges`) first sends those before it, then
    /// runs alone, so the order is kept.
    @inline(__always)
    func submitChunk(_ state: HandleState, _ snapshot: Unmanaged<PolicySnapshot>, queue: Queue,
                     _ commands: UnsafeMutableRawPointer, count: Int, returns: UnsafeMutablePointer<Int32>) {
        var ring = InlineArray<256, UInt64>(repeating: 0)         // 32 entries of 64 bytes
        var buffers = InlineArray<32, CommandBuffers>(repeating: CommandBuffers())
        var origin = InlineArray<32, Int>(repeating: 0)           // pending slot -> command index
        withUnsafeMutableBytes(of: &ring) { ringBytes in
            let base = ringBytes.baseAddress!
            for i in 0..<count {
                Self.copyEntry(from: commands + i &* PassthruCommand.size64, to: base + i &* SubmissionEntry.size)
            }
            withUnsafeMutablePointer(to: &buffers) { buffersTuple in
                let pendingBuffers = UnsafeMutableRawPointer(buffersTuple).assumingMemoryBound(to: CommandBuffers.self)
                var pending = 0
                for i in 0..<count {
                    let command = PassthruCommand(commands + i &* PassthruCommand.size64, is64: true)
                    let ringSpan = RawSpan(_unsafeStart: base, byteCount: count &* SubmissionEntry.size)
                    let admission = admit(SubmissionEntry(ringSpan, index: i), queue: queue, state: state, snapshot: snapshot,
                                          data: (command.addr, UInt64(command.dataLength)),
                                          metadata: (command.metadata, UInt64(command.metadataLength)))
                    switch admission {
                    case .refused(let errno):
                        returns[i] = -errno
                    case .run(let b):
                        if pending != i {
                            (base + pending &* SubmissionEntry.size).copyMemory(from: base + i &* SubmissionEntry.size,
                                                                               byteCount: SubmissionEntry.size)
                        }
                        pendingBuffers[pending] = b
                        origin[pending] = i
                        pending &+= 1
                    case .checkRanges(let b):
                        flush(queue: queue, ring: base, pending: pending, buffers: pendingBuffers, origin: origin,
                              commands: commands, returns: returns)
                        pending = 0
                        let entry = RawSpan(_unsafeStart: base + i &* SubmissionEntry.size, byteCount: SubmissionEntry.size)
                        returns[i] = snapshot._withUnsafeGuaranteedRef { s in
                            submitCheckedRanges(SubmissionEntry(entry), queue: queue, state: state, policy: s.compiled,
                                                data: b.data, metadata: b.metadata, writeResult: { command.writeResult($0) })
                        }
                    }
                }
                flush(queue: queue, ring: base, pending: pending, buffers: pendingBuffers, origin: origin,
                      commands: commands, returns: returns)
            }
        }
    }

    /// Sends the `pending` allowed entries at the front of `ring` to the controller in one
    /// call, then writes each one's result into its struct and its return value, as
    /// `submit` does for one.
    @inline(__always)
    func flush(queue: Queue, ring: UnsafeMutableRawPointer, pending: Int, buffers: UnsafeMutablePointer<CommandBuffers>,
               origin: InlineArray<32, Int>, commands: UnsafeMutableRawPointer, returns: UnsafeMutablePointer<Int32>) {
        guard pending > 0 else { return }
        var outcomes = InlineArray<32, Result<Completion, ControllerError>>(repeating: .success(Completion()))
        withUnsafeMutablePointer(to: &outcomes) { tuple in
            let results = UnsafeMutableRawPointer(tuple).assumingMemoryBound(to: Result<Completion, ControllerError>.self)
            controller.submitBatch(RawSpan(_unsafeStart: ring, byteCount: pending &* SubmissionEntry.size), queue: queue,
                                   buffers: buffers, outcomes: results)
            for p in 0..<pending {
                let i = origin[p]
                switch results[p] {
                case .success(let completion):
                    PassthruCommand(commands + i &* PassthruCommand.size64, is64: true).writeResult(completion)
                    returns[i] = Int32(completion.status.rawValue)
                case .failure(let error):
                    returns[i] = -error.errno
                }
            }
        }
    }

    /// The submission entry Linux builds from a `struct nvme_passthru_cmd64`
    /// (`PassthruCommand.submissionQueueEntry`), written to `entry`: opcode, flags, NSID,
    /// CDW2/3 and CDW10–15 from the caller; command identifier and pointers zero.
    @inline(__always)
    static func copyEntry(from passthru: UnsafeMutableRawPointer, to entry: UnsafeMutableRawPointer) {
        func word(_ offset: Int) -> UInt64 { UInt64(littleEndian: passthru.loadUnaligned(fromByteOffset: offset, as: UInt64.self)) }
        func put(_ offset: Int, _ value: UInt64) { entry.storeBytes(of: value.littleEndian, toByteOffset: offset, as: UInt64.self) }
        put(0, word(0) & 0xFFFF_FFFF_0000_FFFF)   // opcode, flags, (reserved -> CID 0), NSID
        put(8, word(8))                            // CDW2, CDW3
        put(16, 0); put(24, 0); put(32, 0)         // MPTR, DPTR
        put(40, word(40)); put(48, word(48)); put(56, word(56))   // CDW10–CDW15
    }
}
