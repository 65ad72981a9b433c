#if canImport(Glibc)
import Glibc
#endif
import NVMeEmulator
import NVMeGate
import NVMeSpec
import Synchronization
import Testing

/// `Gate.submitBatch`: every command of a batch returns what its own NVME_IOCTL_IO64_CMD /
/// NVME_IOCTL_ADMIN64_CMD returns, refused ones never reach the controller, results are
/// written back, and the controller sees the allowed ones in order, in one call per 32.
@Suite("Batch submission")
struct BatchSubmitTests {
    /// The fields of one `struct nvme_passthru_cmd64` in a test.
    struct Command64 {
        var opcode: UInt8
        var flags: UInt8 = 0
        var nsid: UInt32 = 1
        var cdw10: UInt32 = 0
        var cdw11: UInt32 = 0
        var cdw12: UInt32 = 0
        var dataLength = 0
        var nullData = false
        /// What the data buffer holds before the command (what a write sends).
        var fill: UInt8 = 0

        /// The same command as the tests' ioctl helper lays it out.
        func passthru() -> PassthruBuffer {
            let p = PassthruBuffer(is64: true, opcode: opcode, flags: flags, nsid: nsid, cdw10: cdw10, cdw11: cdw11,
                                   cdw12: cdw12, dataLength: dataLength, nullData: nullData)
            p.data.initializeMemory(as: UInt8.self, repeating: fill)
            p.raw.storeBytes(of: BatchSubmitTests.sentinel, toByteOffset: 72, as: UInt64.self)
            return p
        }
    }

    /// What a result field holds before the command: a refused command leaves it so.
    static let sentinel: UInt64 = 0xDEAD_BEEF_0BAD_F00D

    /// `count` structs back to back, each with its own data buffer, and the returns array.
    final class Batch {
        let commands: [Command64]
        let raw: UnsafeMutableRawPointer
        let buffers: [UnsafeMutableRawBufferPointer]
        let returns: UnsafeMutablePointer<Int32>

        init(_ commands: [Command64]) {
            self.commands = commands
            raw = .allocate(byteCount: max(1, commands.count) * 80, alignment: 8)
            raw.initializeMemory(as: UInt8.self, repeating: 0, count: max(1, commands.count) * 80)
            buffers = commands.map { c in
                let b = UnsafeMutableRawBufferPointer.allocate(byteCount: max(c.dataLength, 1), alignment: 4096)
                b.initializeMemory(as: UInt8.self, repeating: c.fill)
                return b
            }
            returns = .allocate(capacity: max(1, commands.count))
            returns.initialize(repeating: 0x7777, count: max(1, commands.count))
            for (i, c) in commands.enumerated() {
                let p = raw + i * 80
                p.storeBytes(of: c.opcode, toByteOffset: 0, as: UInt8.self)
                p.storeBytes(of: c.flags, toByteOffset: 1, as: UInt8.self)
                p.storeBytes(of: c.nsid.littleEndian, toByteOffset: 4, as: UInt32.self)
                let address = c.nullData ? 0 : UInt64(UInt(bitPattern: buffers[i].baseAddress))
                p.storeBytes(of: address.littleEndian, toByteOffset: 24, as: UInt64.self)
                p.storeBytes(of: UInt32(c.dataLength).littleEndian, toByteOffset: 36, as: UInt32.self)
                p.storeBytes(of: c.cdw10.littleEndian, toByteOffset: 40, as: UInt32.self)
                p.storeBytes(of: c.cdw11.littleEndian, toByteOffset: 44, as: UInt32.self)
                p.storeBytes(of: c.cdw12.littleEndian, toByteOffset: 48, as: UInt32.self)
                p.storeBytes(of: BatchSubmitTests.sentinel.littleEndian, toByteOffset: 72, as: UInt64.self)
            }
        }

        deinit {
            raw.deallocate()
            buffers.forEach { $0.deallocate() }
            returns.deallocate()
        }

        func submit(_ gate: Gate, _ handle: Int32, queue: Queue = .io) -> Int {
            gate.submitBatch(handle, queue: queue, commands: raw, count: commands.count, returns: returns)
        }

        func result(_ i: Int) -> UInt64 { UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: i * 80 + 72, as: UInt64.self)) }
        func data(_ i: Int) -> [UInt8] { Array(buffers[i]) }
    }

    /// Sends each command of `batch` with its own ioctl through `reference`, the whole batch
    /// through `gate`, and expects the same return, result and data for every command.
    static func expectSameAsIoctls(_ batch: Batch, gate: Gate, handle: Int32, reference: Gate, referenceHandle: Int32,
                                   queue: Queue = .io, sourceLocation: SourceLocation = #_sourceLocation) {
        let request = queue == .io ? IoctlRequest.io64Command : .admin64Command
        let expected = batch.commands.map { c -> (Int32, UInt64, [UInt8]) in
            let p = c.passthru()
            let value: Int32 = switch reference.ioctl(referenceHandle, request: request.rawValue, argument: p.raw) {
            case .returned(let v): v
            case .failed(let e): -e
            }
            return (value, p.result64, Array(p.data))
        }
        #expect(batch.submit(gate, handle, queue: queue) == batch.commands.count, sourceLocation: sourceLocation)
        for (i, (value, result, data)) in expected.enumerated() {
            #expect(batch.returns[i] == value, "command \(i) (opcode \(batch.commands[i].opcode))", sourceLocation: sourceLocation)
            #expect(batch.result(i) == result, "result of command \(i)", sourceLocation: sourceLocation)
            #expect(batch.data(i) == data, "data of command \(i)", sourceLocation: sourceLocation)
        }
    }

    /// QEMU-like effects, one namespace; records every command that reaches it, and each
    /// `submitBatch` call. Completes with DW0 = CDW10 and DW1 = the opcode, so the result
    /// written back names the command; a command with CDW10 = BADh fails with LBA Out of Range.
    final class RecordingController: Controller, @unchecked Sendable {
        let identity = ControllerIdentity(model: "recording", firmwareRevision: "1", serialNumber: "R1")
        let log = ScriptedController.qemuLikeLog()
        let reached = Mutex<[(queue: Queue, opcode: UInt8, cdw10: UInt32)]>([])
        let batchCalls = Atomic<Int>(0)

        func namespaces() -> [NamespaceInfo] { [ScriptedController.namespace1] }
        func effectsLog(for commandSet: CommandSet) -> CommandEffectsLog? { commandSet == .nvm ? log : nil }
        func submit(_ command: borrowing SubmissionEntry, queue: Queue, data: UnsafeMutableRawBufferPointer,
                    metadata: UnsafeMutableRawBufferPointer) throws(ControllerError) -> Completion {
            let (opcode, cdw10) = (command.opcode, command.cdw10)
            reached.withLock { $0.append((queue, opcode, cdw10)) }
            if cdw10 == 0xBAD { return Completion(status: NVMeStatus.lbaOutOfRange.withDoNotRetry) }
            return Completion(dw0: cdw10, dw1: UInt32(opcode))
        }
        func submitBatch(_ entries: RawSpan, queue: Queue, buffers: UnsafePointer<CommandBuffers>,
                         outcomes: UnsafeMutablePointer<Result<Completion, ControllerError>>) {
            batchCalls.add(1, ordering: .relaxed)
            for i in 0..<SubmissionEntry.count(in: entries) {
                let outcome: Result<Completion, ControllerError>
                do throws(ControllerError) {
                    outcome = .success(try submit(SubmissionEntry(entries, index: i), queue: queue, data: buffers[i].data,
                                                  metadata: buffers[i].metadata))
                } catch { outcome = .failure(error) }
                (outcomes + i).initialize(to: outcome)
            }
        }
        func reset() throws(ControllerError) {}
        func subsystemReset() throws(ControllerError) {}
        func rescan() throws(ControllerError) {}

        var reachedOps: [UInt8] { reached.withLock { $0.map(\.opcode) } }
        var reachedCDW10: [UInt32] { reached.withLock { $0.map(\.cdw10) } }
    }

    /// A mix for an unprivileged caller under Linux's rules on a read-only nvme0n1 handle:
    /// allowed Reads (one the controller fails) and refusals of every kind between them.
    static let mix: [Command64] = [
        Command64(opcode: 0x02, cdw10: 8, dataLength: 512),                       // Read: 0
        Command64(opcode: 0x01, cdw10: 9, dataLength: 512, fill: 0x11),          // Write on a read-only handle: EACCES
        Command64(opcode: 0xC1, cdw10: 10),                                       // vendor specific: EACCES
        Command64(opcode: 0x02, flags: 0x40, cdw10: 11, dataLength: 512),         // PSDT set: EINVAL
        Command64(opcode: 0x02, nsid: 2, cdw10: 12, dataLength: 512),             // another NSID: EINVAL
        Command64(opcode: 0x02, cdw10: 0xBAD, dataLength: 512),                   // Read the controller fails: its status
        Command64(opcode: 0x02, cdw10: 14, cdw12: 7, dataLength: 512),            // 8 blocks, a 512-byte buffer: EINVAL
        Command64(opcode: 0x02, cdw10: 15, dataLength: 512, nullData: true),      // no buffer: EFAULT
        Command64(opcode: 0x00, cdw10: 0),                                        // Flush (LBCC here): EACCES
        Command64(opcode: 0x02, cdw10: 16, dataLength: 512),                      // Read: 0
    ]

    @Test("every return and result equals the IO64 ioctl's; refused commands never reach the controller")
    func sameAsIoctl() {
        let (reference, controller) = (RecordingController(), RecordingController())
        let referenceGate = Gate(controller: reference), gate = Gate(controller: controller)
        let caller = Caller(uid: 1000, gid: 1000)
        let referenceHandle = referenceGate.open(node: "nvme0n1", writable: false, caller: caller)
        let handle = gate.open(node: "nvme0n1", writable: false, caller: caller)
        let batch = Batch(Self.mix)
        Self.expectSameAsIoctls(batch, gate: gate, handle: handle, reference: referenceGate, referenceHandle: referenceHandle)
        #expect((0..<Self.mix.count).map { batch.returns[$0] }
                == [0, -EACCES, -EACCES, -EINVAL, -EINVAL, Int32(NVMeStatus.lbaOutOfRange.withDoNotRetry.rawValue),
                    -EINVAL, -EFAULT, -EACCES, 0])
        // The allowed commands, in order, in one call; the refused ones kept their result field.
        #expect(controller.reachedCDW10 == [8, 0xBAD, 16] && controller.reachedOps == reference.reachedOps)
        #expect(controller.batchCalls.load(ordering: .relaxed) == 1)
        #expect(batch.result(0) == 8 | 0x02 << 32 && batch.result(9) == 16 | 0x02 << 32)
        #expect([1, 2, 3, 4, 6, 7, 8].allSatisfy { batch.result($0) == Self.sentinel })
        // Counted by reason, as the ioctls were.
        for reason in [Reason.needsWriteOpen, .vendorSpecific, .flagsNotZero, .nsidMismatch, .bufferTooShort, .badAddress] {
            #expect(gate.count(of: reason) == referenceGate.count(of: reason) && gate.count(of: reason) >= 1, "\(reason.code)")
        }
    }

    @Test("a batch larger than a chunk goes to the controller 32 commands a call, order kept across chunks")
    func chunks() {
        let (reference, controller) = (RecordingController(), RecordingController())
        let referenceGate = Gate(controller: reference), gate = Gate(controller: controller)
        let caller = Caller(uid: 1000, gid: 1000)
        let commands = (0..<70).map { i in
            i % 7 == 3 ? Command64(opcode: 0xC1, cdw10: UInt32(i)) : Command64(opcode: 0x02, cdw10: UInt32(i), dataLength: 512)
        }
        let batch = Batch(commands)
        Self.expectSameAsIoctls(batch, gate: gate, handle: gate.open(node: "nvme0n1", writable: false, caller: caller),
                                reference: referenceGate,
                                referenceHandle: referenceGate.open(node: "nvme0n1", writable: false, caller: caller))
        #expect(controller.reachedCDW10 == (0..<70).filter { $0 % 7 != 3 }.map(UInt32.init))
        #expect(controller.batchCalls.load(ordering: .relaxed) == 3)
    }

    @Test("EBADF for a handle not open, EINVAL for a negative count, ENOTTY for I/O on a controller node, admin as ADMIN64")
    func envelope() {
        let controller = RecordingController()
        let gate = Gate(controller: controller)
        let caller = Caller(uid: 1000, gid: 1000)
        let batch = Batch([Command64(opcode: 0x02, dataLength: 512)])
        #expect(batch.submit(gate, 7) == -Int(EBADF))
        let handle = gate.open(node: "nvme0n1", writable: false, caller: caller)
        #expect(gate.close(handle) == 0)
        #expect(batch.submit(gate, handle) == -Int(EBADF))
        let open = gate.open(node: "nvme0n1", writable: false, caller: caller)
        #expect(gate.submitBatch(open, queue: .io, commands: batch.raw, count: -1, returns: batch.returns) == -Int(EINVAL))
        #expect(gate.submitBatch(open, queue: .io, commands: batch.raw, count: 0, returns: batch.returns) == 0)
        #expect(controller.reachedOps.isEmpty && batch.returns[0] == 0x7777)

        // NVME_IOCTL_IO64_CMD on a controller node: ENOTTY for each, nothing sent.
        let reference = Gate(controller: RecordingController())
        let referenceController = reference.open(node: "nvme0", writable: false, caller: caller)
        let ctrl = gate.open(node: "nvme0", writable: false, caller: caller)
        let reads = Batch([Command64(opcode: 0x02, dataLength: 512), Command64(opcode: 0x02, cdw10: 1, dataLength: 512)])
        Self.expectSameAsIoctls(reads, gate: gate, handle: ctrl, reference: reference, referenceHandle: referenceController)
        #expect(reads.returns[0] == -ENOTTY && reads.returns[1] == -ENOTTY && controller.reachedOps.isEmpty)

        // The admin queue: Identify Controller passes, Format NVM is refused, as ADMIN64 gives.
        let admin = Batch([Command64(opcode: 0x06, nsid: 0, cdw10: 0x01, dataLength: 4096),
                           Command64(opcode: 0x80, nsid: 1),
                           Command64(opcode: 0x06, nsid: 1, cdw10: 0x00, dataLength: 4096)])
        Self.expectSameAsIoctls(admin, gate: gate, handle: ctrl, reference: reference, referenceHandle: referenceController,
                                queue: .admin)
        #expect(admin.returns[0] == 0 && admin.returns[1] == -EACCES && admin.returns[2] == 0)
        #expect(controller.reached.withLock { $0.map { "\($0.queue) \($0.opcode)" } } == ["admin 6", "admin 6"])
    }

    @Test("a range-checked Dataset Management between allowed commands runs in its place, its copy checked")
    func rangeCheckedInOrder() throws {
        let policy = try Policy.parse("""
            [default]
            partitions = false
            [default.io]
            commands = "none"

            [[tenant]]
            name = "ranged"
            uids = [1000]
            rules = "kernel"
            [[tenant.lba_range]]
            nsid = 1
            start = 0
            blocks = 1024
            """, file: "ranged.toml")
        let (reference, controller) = (RecordingController(), RecordingController())
        let referenceGate = Gate(controller: reference, policy: policy), gate = Gate(controller: controller, policy: policy)
        let caller = Caller(uid: 1000, gid: 1000)
        // Deallocate, one range each: blocks 100-107 (owned), then blocks 2000-2007 (not owned).
        let dsm = Command64(opcode: 0x09, cdw10: 0, cdw11: 0x4, dataLength: 16)
        let commands = [Command64(opcode: 0x01, cdw10: 1, dataLength: 512, fill: 7), dsm,
                        Command64(opcode: 0x02, cdw10: 2, dataLength: 512), dsm, Command64(opcode: 0x02, cdw10: 3, dataLength: 512)]
        let batch = Batch(commands)
        for (i, slba) in [(1, UInt64(100)), (3, UInt64(2000))] {
            batch.buffers[i].storeBytes(of: UInt32(8).littleEndian, toByteOffset: 4, as: UInt32.self)
            batch.buffers[i].storeBytes(of: slba.littleEndian, toByteOffset: 8, as: UInt64.self)
        }
        // The reference sends the same bytes one ioctl at a time.
        var expected: [Int32] = []
        for (i, c) in commands.enumerated() {
            let p = c.passthru()
            p.data.copyMemory(from: UnsafeRawBufferPointer(batch.buffers[i]))
            let handle = referenceGate.open(node: "nvme0n1", writable: true, caller: caller)
            let value: Int32 = switch referenceGate.ioctl(handle, request: IoctlRequest.io64Command.rawValue, argument: p.raw) {
            case .returned(let v): v
            case .failed(let e): -e
            }
            expected.append(value)
        }
        #expect(batch.submit(gate, gate.open(node: "nvme0n1", writable: true, caller: caller)) == commands.count)
        #expect((0..<commands.count).map { batch.returns[$0] } == expected)
        #expect(expected == [0, 0, 0, -EACCES, 0])
        #expect(controller.reachedOps == [0x01, 0x09, 0x02, 0x02] && controller.reachedOps == reference.reachedOps)
        #expect(gate.count(of: .lbaRangeNotOwned) == 1)
    }

    // MARK: The emulated controller's batches

    @Test("on the emulated controller a batch moves the same data, statuses, counters and error log as ioctls")
    func emulatedSameAsIoctls() {
        let configuration = EmulatorConfiguration(namespaceSize: 4096 * 512)
        let (referenceController, controller) = (EmulatedController.inMemory(configuration), EmulatedController.inMemory(configuration))
        let referenceGate = Gate(controller: referenceController), gate = Gate(controller: controller)
        let caller = Caller(uid: 1000, gid: 1000)
        let referenceHandle = referenceGate.open(node: "nvme0n1", writable: true, caller: caller)
        let handle = gate.open(node: "nvme0n1", writable: true, caller: caller)
        var commands: [Command64] = []
        for i in 0..<40 {
            let lba = UInt32(i * 37 % 4000)
            switch i % 8 {
            case 0, 3: commands.append(Command64(opcode: 0x01, cdw10: lba, cdw12: 1, dataLength: 1024, fill: UInt8(i)))
            case 1, 4, 6: commands.append(Command64(opcode: 0x02, cdw10: UInt32(i / 2 * 37 % 4000), cdw12: 1, dataLength: 1024))
            case 2: commands.append(Command64(opcode: 0x05, cdw10: lba, dataLength: 512, fill: i % 16 == 2 ? 0xEE : 0))   // 0xEE: a mismatch
            case 5: commands.append(Command64(opcode: 0x02, cdw10: 4095, cdw12: 1, dataLength: 1024))              // LBA Out of Range
            default: commands.append(Command64(opcode: 0x08, cdw10: lba, cdw12: 3))                              // Write Zeroes
            }
        }
        commands.insert(Command64(opcode: 0x00, nsid: 1), at: 17)    // Flush
        let batch = Batch(commands)
        // Depth 8, as a storage daemon with a ring of 8 would send them.
        var expected: [(Int32, [UInt8])] = []
        for c in commands {
            let p = c.passthru()
            let value: Int32 = switch referenceGate.ioctl(referenceHandle, request: IoctlRequest.io64Command.rawValue, argument: p.raw) {
            case .returned(let v): v
            case .failed(let e): -e
            }
            expected.append((value, Array(p.data)))
        }
        var done = 0
        while done < commands.count {
            let n = min(8, commands.count - done)
            #expect(gate.submitBatch(handle, queue: .io, commands: batch.raw + done * 80, count: n, returns: batch.returns + done) == n)
            done += n
        }
        for i in 0..<commands.count {
            #expect(batch.returns[i] == expected[i].0, "command \(i)")
            #expect(batch.data(i) == expected[i].1, "data of command \(i)")
        }
        #expect((0..<commands.count).contains { batch.returns[$0] == Int32(NVMeStatus.lbaOutOfRange.withDoNotRetry.rawValue) })
        #expect((0..<commands.count).contains { batch.returns[$0] == Int32(NVMeStatus.compareFailure.withDoNotRetry.rawValue) })
        // SMART (host commands, data units) and the Error Information log agree.
        for (lid, length) in [(UInt8(0x02), 512), (UInt8(0x01), 4096)] {
            let pages = [(referenceGate, referenceController), (gate, controller)].map { g, _ -> [UInt8] in
                let p = Command64(opcode: 0x02, nsid: 0xFFFF_FFFF, cdw10: UInt32(lid) | UInt32(length / 4 - 1) << 16,
                                  dataLength: length).passthru()
                let root = g.open(node: "nvme0", writable: false, caller: Caller(uid: 0, gid: 0, capabilities: .sysAdmin))
                _ = g.ioctl(root, request: IoctlRequest.adminCommand.rawValue, argument: p.raw)
                return Array(p.data)
            }
            #expect(lid == 0x02 ? pages[0][32..<96] == pages[1][32..<96] : pages[0] == pages[1], "log page \(lid)")
        }
    }

    @Test("the emulated controller's batch runs across namespaces, broadcast Flush and invalid NSIDs as submit does")
    func emulatedRunsAcrossNamespaces() {
        let configuration = EmulatorConfiguration(namespaceCount: 2, namespaceSize: 1024 * 512)
        let (one, batched) = (EmulatedController.inMemory(configuration), EmulatedController.inMemory(configuration))
        var entries: [SubmissionQueueEntry] = []
        var sizes: [Int] = []
        for i in 0..<24 {
            let nsid: UInt32 = i == 11 ? 9 : (i / 4 % 2 == 0 ? 1 : 2)   // runs of 4 per namespace, one invalid NSID
            let opcode: UInt8 = i == 14 ? 0x00 : (i % 3 == 0 ? 0x01 : 0x02)
            entries.append(SubmissionQueueEntry(opcode: opcode, nsid: i == 14 ? 0xFFFF_FFFF : nsid, cdw10: UInt32(i % 5)))
            sizes.append(opcode == 0x00 ? 0 : 512)
        }
        let buffers = sizes.enumerated().map { i, size in
            let b = UnsafeMutableRawBufferPointer.allocate(byteCount: max(size, 1), alignment: 16)
            b.initializeMemory(as: UInt8.self, repeating: UInt8(i))
            return UnsafeMutableRawBufferPointer(rebasing: b[0..<size])
        }
        let copies = buffers.map { b in
            let c = UnsafeMutableRawBufferPointer.allocate(byteCount: max(b.count, 1), alignment: 16)
            c.copyMemory(from: UnsafeRawBufferPointer(b))
            return UnsafeMutableRawBufferPointer(rebasing: c[0..<b.count])
        }
        let expected = entries.enumerated().map { i, e in
            e.withEntry { try! one.submit($0, queue: .io, data: copies[i], metadata: .init(start: nil, count: 0)) }
        }
        var ring = [UInt8](repeating: 0, count: entries.count * 64)
        ring.withUnsafeMutableBytes { raw in
            for (i, e) in entries.enumerated() {
                for d in 0..<16 { raw.storeBytes(of: e.dwords[d].littleEndian, toByteOffset: i * 64 + d * 4, as: UInt32.self) }
            }
        }
        let commandBuffers = buffers.map { CommandBuffers(data: $0) }
        let outcomes = UnsafeMutablePointer<Result<Completion, ControllerError>>.allocate(capacity: entries.count)
        ring.withUnsafeBytes { raw in
            commandBuffers.withUnsafeBufferPointer { b in
                batched.submitBatch(RawSpan(_unsafeBytes: raw), queue: .io, buffers: b.baseAddress!, outcomes: outcomes)
            }
        }
        for i in 0..<entries.count {
            #expect(try! outcomes[i].get() == expected[i], "command \(i)")
            #expect(Array(buffers[i]) == Array(copies[i]), "data of command \(i)")
        }
        #expect(expected[11].status == NVMeStatus.invalidNamespaceOrFormat.withDoNotRetry)
        outcomes.deallocate()
        for b in buffers + copies { UnsafeMutableRawBufferPointer(start: b.baseAddress, count: max(b.count, 1)).deallocate() }
    }
}
