#if canImport(Glibc)
import Glibc
#endif
import NVMeGate
import NVMeSpec

/// `ioctl`: the ioctl front end with arbitrary requests and passthru structs (72 and 80
/// bytes, and `nvme_user_io`), whose data and metadata pointers stay inside a buffer the
/// harness owns (or are NULL), against a `RecordingController`, under the kernel policy or
/// the tenant policy, with handles closed and the policy reloaded between commands.
///
/// What must hold: a command reaches the controller only if `ReferenceModel` allows it and
/// its buffers hold what it transfers; the controller is handed the caller's own buffers
/// (or, for a checked range list, the gate's copy, whose ranges the model allows); a
/// refused command changes nothing, in the controller or in the caller's struct; an
/// executed one writes back exactly the result its struct has room for, and nothing else;
/// every refusal is the model's errno or a buffer's (EINVAL, EFAULT).
enum IoctlTarget {
    static let arenaSize = 1 << 16

    static func run(_ data: UnsafeRawBufferPointer) {
        var input = FuzzInput(data)
        var policy = input.bool() ? Policy.kernel : Fixture.tenantPolicy
        let controller = RecordingController(logs: Fixture.effectsLogs(&input), onlyFirst: input.u8() % 4 == 0)
        let gate = Gate(controller: controller, policy: policy)
        var model = ReferenceModel(policy: policy, logs: controller.logs, identity: Fixture.identity,
                                   namespaces: controller.namespaceList)
        let arena = Arena(count: arenaSize, fill: 0xA5)
        for i in 0..<arenaSize where i % 7 == 0 { arena.buffer[i] = UInt8(truncatingIfNeeded: i >> 3) }

        var handles: [(number: Int32, model: ReferenceModel.Handle, open: Bool)] = []
        for _ in 0...Int(input.u8() % 3) {
            let node = input.pick(Fixture.nodes), writable = input.bool()
            var caller = input.pick(Fixture.callers)
            caller.capabilities = input.pick(Fixture.capabilitySets)
            let number = gate.open(node: node, writable: writable, caller: caller)
            if let h = model.open(node, writable: writable, caller: caller) {
                require(number >= 0, "open \(node): \(number)")
                handles.append((number, h, true))
            } else {
                require(number == -ENOENT, "open \(node), which does not exist: \(number)")
            }
        }
        guard !handles.isEmpty else { return }

        for _ in 0..<24 where !input.isEmpty {
            let which = Int(input.u8()) % handles.count
            switch input.u8() % 32 {
            case 0:
                let closed = gate.close(handles[which].number)
                require(closed == (handles[which].open ? 0 : -EBADF), "close: \(closed)")
                handles[which].open = false
                continue
            case 1:
                policy = policy == .kernel ? Fixture.tenantPolicy : .kernel
                gate.reload(policy)
                model = ReferenceModel(policy: policy, logs: controller.logs, identity: Fixture.identity,
                                       namespaces: controller.namespaceList)
                continue
            default:
                break
            }
            let h = handles[which]
            let request = input.pick([IoctlRequest.adminCommand, .admin64Command, .ioCommand, .io64Command, .adminCommand,
                                      .ioCommand, .io64Command, .submitIO, .id, .reset, .subsystemReset, .rescan,
                                      IoctlRequest(rawValue: UInt(input.u32()))])
            controller.completion = Completion(status: NVMeStatus(rawValue: input.u8() % 4 == 0 ? input.u16() : 0),
                                               dw0: input.u32(), dw1: input.u32())
            controller.throwing = input.u8() % 16 == 0 ? EIO : 0
            let before = controller.reached
            let outcome: IoctlOutcome
            switch request {
            case .adminCommand, .admin64Command, .ioCommand, .io64Command:
                outcome = passthru(gate, controller, model, arena, h.number, h.model, request, &input)
            case .submitIO:
                outcome = submitIO(gate, controller, model, arena, h.number, h.model, &input)
            default:
                outcome = gate.ioctl(h.number, request: request.rawValue, argument: nil)
                require(controller.reached == before, "\(request.name) reached the controller")
                let want: Int32 = switch request {
                case _ where !h.open: -EBADF
                case .id: h.model.kind == .controller ? -ENOTTY : Int32(bitPattern: h.model.nsid)
                case .reset, .subsystemReset, .rescan:
                    h.model.kind != .controller ? -ENOTTY
                        : h.model.caller.capabilities.isDisjoint(with: policy.managementCapabilities) ? -EACCES : 0
                default: -ENOTTY
                }
                require(value(outcome) == want, "\(request.name) on \(h.model.kind): \(value(outcome)), expected \(want)")
                continue
            }
            if !h.open { require(value(outcome) == -EBADF && controller.reached == before, "a closed handle: \(outcome)") }
        }
    }

    /// Where a buffer of the caller's points: NULL, or `count` bytes inside the arena.
    static func buffer(_ input: inout FuzzInput, _ arena: Arena, sizes: [Int]) -> (address: UInt64, count: Int) {
        let choice = input.u8()
        let wanted = choice & 0x80 == 0 ? input.pick(sizes) : Int(input.u16())
        if choice % 8 == 0 { return (0, choice & 0x40 == 0 ? 0 : wanted) }       // NULL, with or without a length
        let offset = Int(input.u16()) % arenaSize
        return (arena.address + UInt64(offset), min(wanted, arenaSize - offset))
    }

    /// One NVME_IOCTL_ADMIN_CMD / _IO_CMD (72-byte struct) or _ADMIN64_CMD / _IO64_CMD (80-byte).
    static func passthru(_ gate: Gate, _ controller: RecordingController, _ model: ReferenceModel, _ arena: Arena,
                         _ number: Int32, _ handle: ReferenceModel.Handle, _ request: IoctlRequest,
                         _ input: inout FuzzInput) -> IoctlOutcome {
        let is64 = request == .admin64Command || request == .io64Command
        let queue: Queue = request == .adminCommand || request == .admin64Command ? .admin : .io
        var entry = DecideTarget.entry(&input, near: handle)
        if input.u8() % 4 == 0 { (entry.dwords[2], entry.dwords[3]) = (input.u32(), input.u32()) }
        let data = buffer(&input, arena, sizes: [0, 16, 32, 40, 64, 512, 1024, 4096, 8192, 4095, 511])
        let metadata = input.u8() % 4 == 0 ? buffer(&input, arena, sizes: [0, 8, 16, 64, 512]) : (0, 0)
        let size = is64 ? PassthruCommand.size64 : PassthruCommand.size32
        let cmd = Arena(count: size)
        let raw = cmd.base
        raw.storeBytes(of: entry.opcode, toByteOffset: 0, as: UInt8.self)
        raw.storeBytes(of: entry.flags, toByteOffset: 1, as: UInt8.self)
        raw.storeBytes(of: entry.nsid.littleEndian, toByteOffset: 4, as: UInt32.self)
        raw.storeBytes(of: entry.dwords[2].littleEndian, toByteOffset: 8, as: UInt32.self)
        raw.storeBytes(of: entry.dwords[3].littleEndian, toByteOffset: 12, as: UInt32.self)
        raw.storeBytes(of: metadata.0.littleEndian, toByteOffset: 16, as: UInt64.self)
        raw.storeBytes(of: data.address.littleEndian, toByteOffset: 24, as: UInt64.self)
        raw.storeBytes(of: UInt32(metadata.1).littleEndian, toByteOffset: 32, as: UInt32.self)
        raw.storeBytes(of: UInt32(data.count).littleEndian, toByteOffset: 36, as: UInt32.self)
        for i in 0..<6 { raw.storeBytes(of: entry[cdw: i].littleEndian, toByteOffset: 40 + 4 * i, as: UInt32.self) }
        for i in 64..<size { raw.storeBytes(of: input.u8(), toByteOffset: i, as: UInt8.self) }   // timeout, result: preset junk
        let sent = cmd.bytes
        let callerData = UnsafeRawBufferPointer(start: UnsafeRawPointer(bitPattern: UInt(data.address)), count: data.count)
        let target = targetNamespace(model, handle, queue)
        // NVME_IOCTL_IO64_CMD exists on namespace nodes only (Linux: ENOTTY on the controller).
        let decision = request == .io64Command && handle.kind == .controller ? ENOTTY
            : model.ioctlErrno(entry, queue: queue, handle: handle, list: data.address == 0 ? nil : callerData)
        let problem = bufferProblem(entry, queue: queue, namespace: target, data: data, metadata: metadata)

        controller.inspect = { e, q, d, m in
            require(q == queue && SubmissionQueueEntry(e) == entry, "the controller got another command than the caller's")
            require(decision == 0, "refused command reached the controller: \(DecideTarget.describe(entry)) on \(queue), " +
                    "model errno \(decision), from \(handle.kind) nsid \(handle.nsid) as \(handle.caller)")
            require(problem == nil, "a command with a bad buffer reached the controller (\(problem ?? "")): " +
                    DecideTarget.describe(entry))
            if arena.contains(d.baseAddress, count: d.count) {
                require(UInt64(UInt(bitPattern: d.baseAddress)) == data.address && d.count == data.count,
                        "the data buffer handed over is not the caller's: \(String(describing: d.baseAddress)) \(d.count) for \(data) arena \(arena.address)")
            } else {
                // Only a checked range list travels in the gate's own copy; it must be the caller's list.
                require(queue == .io && (entry.opcode == 0x09 || entry.opcode == 0x19) && d.count <= data.count
                        && Array(UnsafeRawBufferPointer(d)) == Array(callerData[0..<d.count]),
                        "the controller got memory that is neither the caller's buffer nor a copy of its range list")
                require(model.ioctlErrno(entry, queue: queue, handle: handle, list: UnsafeRawBufferPointer(d)) == 0,
                        "the range list handed over reaches blocks the caller does not own")
            }
            require(m.count == 0 || (UInt64(UInt(bitPattern: m.baseAddress)) == metadata.0 && m.count == metadata.1),
                    "the metadata buffer handed over is not the caller's")
            touch(d, fill: DataDirection(opcode: entry.opcode) == .controllerToHost)
            touch(m, fill: true)
        }
        defer { controller.inspect = { _, _, _, _ in } }
        let before = controller.reached
        let outcome = gate.ioctl(number, request: request.rawValue, argument: raw)
        let reached = controller.reached - before
        let after = cmd.bytes
        switch outcome {
        case .returned(let status):
            require(reached == 1, "returned \(status) without reaching the controller")
            require(status == Int32(controller.completion.status.rawValue), "returned \(status), the controller said \(controller.completion.status.rawValue)")
            var expected = sent
            let result = is64 ? controller.completion.result64 : UInt64(controller.completion.dw0)
            for i in 0..<(is64 ? 8 : 4) { expected[(is64 ? 72 : 68) + i] = UInt8(truncatingIfNeeded: result >> (8 * UInt64(i))) }
            require(after == expected, "the \(size)-byte struct after the command is not the struct with its result written back")
        case .failed(let e):
            require(after == sent, "a failed command (errno \(e)) changed the caller's struct")
            if reached == 1 {
                require(e == EIO && controller.throwing == EIO, "errno \(e) after reaching the controller")
                return outcome
            }
            require(reached == 0, "reached the controller \(reached) times")
            if e == EBADF { return outcome }
            if let problem {
                require(e == decision || e == EINVAL || e == EFAULT,
                        "errno \(e) for \(DecideTarget.describe(entry)) with a bad buffer (\(problem)), model \(decision)")
            } else {
                require(decision != 0 && e == decision || decision == 0 && e == EINVAL,
                        "errno \(e) for \(DecideTarget.describe(entry)) on \(queue) from \(handle.kind) nsid \(handle.nsid) " +
                        "as \(handle.caller), model \(decision)")
            }
        }
        return outcome
    }

    /// NVME_IOCTL_SUBMIT_IO: a 48-byte `nvme_user_io` whose buffers, sized by the gate from
    /// the namespace's format, lie inside the arena.
    static func submitIO(_ gate: Gate, _ controller: RecordingController, _ model: ReferenceModel, _ arena: Arena,
                         _ number: Int32, _ handle: ReferenceModel.Handle, _ input: inout FuzzInput) -> IoctlOutcome {
        let io = Arena(count: UserIO.size)
        let opcode = input.pick([0x01, 0x02, 0x05, 0x08, 0x00, input.u8()] as [UInt8])
        let flags: UInt8 = input.u8() % 8 == 0 ? input.u8() : 0
        let namespace = model.namespaces.first { $0.nsid == handle.nsid }
        let lba = Int(namespace?.lbaDataSize ?? 512), ms = Int(namespace?.metadataSize ?? 0)
        let offset = Int(input.u16()) % arenaSize
        var nblocks = Int(input.u8())
        nblocks = min(nblocks, (arenaSize - offset) / (lba + ms) - 1)
        let withMetadata = ms > 0 && input.bool()
        let address = nblocks < 0 ? 0 : arena.address + UInt64(offset)
        nblocks = max(nblocks, 0)
        let slba = input.edgy(near: 1000)
        io.base.storeBytes(of: opcode, toByteOffset: 0, as: UInt8.self)
        io.base.storeBytes(of: flags, toByteOffset: 1, as: UInt8.self)
        io.base.storeBytes(of: input.u16().littleEndian, toByteOffset: 2, as: UInt16.self)
        io.base.storeBytes(of: UInt16(nblocks).littleEndian, toByteOffset: 4, as: UInt16.self)
        let metadataAddress = withMetadata && address != 0 ? address + UInt64((nblocks + 1) * lba) : 0
        io.base.storeBytes(of: metadataAddress.littleEndian, toByteOffset: 8, as: UInt64.self)
        io.base.storeBytes(of: address.littleEndian, toByteOffset: 16, as: UInt64.self)
        io.base.storeBytes(of: slba.littleEndian, toByteOffset: 24, as: UInt64.self)
        for o in stride(from: 32, to: 44, by: 4) { io.base.storeBytes(of: input.u32().littleEndian, toByteOffset: o, as: UInt32.self) }
        let view = UserIO(UnsafeRawPointer(io.base))
        let entry = view.submissionQueueEntry(nsid: handle.nsid)
        let dataCount = (nblocks + 1) * lba
        let problem = bufferProblem(entry, queue: .io, namespace: namespace, data: (address, dataCount),
                                    metadata: (metadataAddress, metadataAddress == 0 ? 0 : (nblocks + 1) * ms))
        let want: Int32 = handle.kind == .controller ? ENOTTY
            : flags != 0 || ![0x01, 0x02, 0x05].contains(opcode) ? EINVAL
            : model.errno(entry, queue: .io, handle: handle)
        controller.inspect = { e, q, d, m in
            require(want == 0 && problem == nil && SubmissionQueueEntry(e) == entry && q == .io,
                    "SUBMIT_IO reached the controller: model \(want), buffers \(problem ?? "fine"), \(DecideTarget.describe(entry))")
            require(arena.contains(d.baseAddress, count: d.count) && arena.contains(m.baseAddress, count: m.count),
                    "SUBMIT_IO handed over memory outside the caller's buffers")
            touch(d, fill: opcode == 0x02)
            touch(m, fill: opcode == 0x02)
        }
        defer { controller.inspect = { _, _, _, _ in } }
        let sent = io.bytes, before = controller.reached
        let outcome = gate.ioctl(number, request: IoctlRequest.submitIO.rawValue, argument: io.base)
        require(io.bytes == sent, "SUBMIT_IO wrote into the caller's nvme_user_io")
        switch outcome {
        case .returned: require(controller.reached == before + 1, "SUBMIT_IO returned without reaching the controller")
        case .failed(let e):
            if e == EBADF || (e == EIO && controller.throwing == EIO) { break }
            require(controller.reached == before, "SUBMIT_IO failed (\(e)) after reaching the controller")
            require(e == want || (want == 0 && problem != nil && (e == EINVAL || e == EFAULT)),
                    "SUBMIT_IO errno \(e), model \(want), buffers \(problem ?? "fine")")
        }
        return outcome
    }

    /// The namespace an I/O command on `handle` goes to (the only one, through a controller node).
    static func targetNamespace(_ model: ReferenceModel, _ handle: ReferenceModel.Handle, _ queue: Queue) -> NamespaceInfo? {
        guard queue == .io else { return nil }
        if handle.kind == .controller { return model.namespaces.count == 1 ? model.namespaces[0] : nil }
        return model.namespaces.first { $0.nsid == handle.nsid }
    }

    /// What is wrong with a command's buffers, read from the spec's lengths for the commands
    /// whose transfer the command itself says (CVE-2023-6238: a device writes what the
    /// command says, whatever the buffer), or nil.
    static func bufferProblem(_ e: SubmissionQueueEntry, queue: Queue, namespace: NamespaceInfo?,
                              data: (address: UInt64, count: Int), metadata: (address: UInt64, count: Int)) -> String? {
        if data.address == 0 && data.count > 0 { return "NULL data with a length" }
        if metadata.address == 0 && metadata.count > 0 { return "NULL metadata with a length" }
        var needed: UInt64?, neededMetadata: UInt64 = 0
        let cdw10 = UInt64(e[cdw: 0]), cdw11 = UInt64(e[cdw: 1]), cdw12 = UInt64(e[cdw: 2])
        if queue == .admin {
            switch e.opcode {
            case 0x06: needed = 4096                                               // Identify
            case 0x02: needed = ((cdw11 & 0xFFFF) << 16 | cdw10 >> 16) * 4 + 4     // Get Log Page: NUMD
            default: break
            }
        } else if let namespace {
            let blocks = (cdw12 & 0xFFFF) + 1
            if metadata.count > 0 && namespace.metadataSize == 0 { return "metadata on a format without it" }
            switch (namespace.commandSet, e.opcode) {
            case (.nvm, 0x01), (.nvm, 0x02), (.nvm, 0x05), (.zoned, 0x01), (.zoned, 0x02), (.zoned, 0x05), (.zoned, 0x7D):
                needed = blocks * UInt64(namespace.lbaDataSize)
                neededMetadata = blocks * UInt64(namespace.metadataSize)
            case (.nvm, 0x09), (.zoned, 0x09): needed = ((cdw10 & 0xFF) + 1) * 16
            case (.nvm, 0x19), (.zoned, 0x19):
                switch cdw12 >> 8 & 0xF {
                case 0: needed = ((cdw12 & 0xFF) + 1) * 32
                case 1: needed = ((cdw12 & 0xFF) + 1) * 40
                default: break
                }
            default: break
            }
        }
        if let needed, UInt64(data.count) < needed { return "\(data.count) data bytes for a \(needed)-byte transfer" }
        if UInt64(metadata.count) < neededMetadata { return "\(metadata.count) metadata bytes for \(neededMetadata)" }
        return nil
    }

    /// Reads every byte of `buffer` and, for a transfer to the host, writes every one, as a
    /// device's DMA would: AddressSanitizer reports a buffer the gate sized wrongly.
    static func touch(_ buffer: UnsafeMutableRawBufferPointer, fill: Bool) {
        var sum: UInt8 = 0
        for b in buffer { sum &+= b }
        if fill { buffer.initializeMemory(as: UInt8.self, repeating: sum | 1) }
    }
}
