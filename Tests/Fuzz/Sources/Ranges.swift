#if canImport(Glibc)
import Glibc
#endif
import NVMeEmulator
import NVMeGate
import NVMeSpec
import Synchronization

/// `ranges`: Dataset Management and Copy range lists from a tenant whose LBA ranges the
/// input draws (and, through a partition node, a partition it draws too), sent through the
/// gate to the emulated controller, whose every block holds a pattern of its own. When the
/// command reaches the controller, a hostile thread's move is played: the caller's list is
/// rewritten to aim at blocks the tenant does not own.
///
/// What must hold: afterwards, every block that changed is one the tenant may write (inside
/// its writable ranges and the partition); a refused command changed nothing; the list the
/// controller acted on is the one the gate checked, not the rewritten one.
enum RangesTarget {
    static let blocks: UInt64 = 160

    static func run(_ data: UnsafeRawBufferPointer) {
        var input = FuzzInput(data)
        let emulated = EmulatedController.inMemory(EmulatorConfiguration(namespaceCount: 2, namespaceSize: blocks * 512))
        for nsid: UInt32 in [1, 2] { fill(emulated, nsid: nsid) }
        var grants: [NamespaceGrant] = []
        for _ in 0...Int(input.u8() % 4) {
            let start = UInt64(input.u8() % UInt8(blocks)), count = UInt64(input.u8() % 64) + 1
            grants.append(NamespaceGrant(nsid: input.u8() % 4 == 0 ? 2 : 1, range: LBARange(start: start, count: count),
                                         writable: input.u8() % 4 != 0))
        }
        var rules = Policy.kernel.defaultRules
        rules.partitions = input.bool() ? .confined : .refuse
        let policy = Policy(name: "fuzz-ranges", defaultRules: rules,
                            tenants: [Tenant(name: "t", uids: [1000], ownership: .grants(grants), rules: rules)])
        let onPartition = input.u8() % 3 == 0
        let partition = LBARange(start: UInt64(input.u8() % 96) + 1, count: UInt64(input.u8() % 64) + 1)
        if onPartition { writeMBR(emulated, partition) }
        let racer = RewritingController(emulated, rewrite: input.take(64))
        let gate = Gate(controller: racer, policy: policy)
        let handle = gate.open(node: onPartition ? "nvme0n1p1" : "nvme0n\(input.u8() % 4 == 0 ? 2 : 1)", writable: true,
                               caller: Caller(uid: 1000, gid: 1000))
        require(handle >= 0, "open: \(handle)")
        let context = gate.handleState(handle)!.context

        let isDSM = input.bool()
        let count = Int(input.u8() % 8) + 1
        let format = isDSM ? 0 : Int(input.u8() % 8 == 0 ? input.u8() % 4 : 0)
        let size = isDSM ? 16 : (format == 1 ? 40 : 32)
        let length = input.u8() % 16 == 0 ? Int(input.u8()) : count * size
        let list = Arena(count: max(length, 1))
        let edges = grants.flatMap { [$0.range!.start, $0.range!.start + $0.range!.count] } + [partition.start, partition.start + partition.count]
        for i in 0..<count where (i + 1) * size <= length {
            let slba = input.edgy(near: edges.isEmpty ? 0 : input.pick(edges))
            list.base.storeBytes(of: slba.littleEndian, toByteOffset: i * size + 8, as: UInt64.self)
            if isDSM {
                list.base.storeBytes(of: UInt32(input.u8() % 80).littleEndian, toByteOffset: i * size + 4, as: UInt32.self)
            } else {
                list.base.storeBytes(of: UInt16(input.u8() % 80).littleEndian, toByteOffset: i * size + 16, as: UInt16.self)
            }
        }
        let destination = input.edgy(near: edges.isEmpty ? 0 : input.pick(edges))
        let nsid = context.nsid
        let cmd = Arena(count: PassthruCommand.size32)
        cmd.base.storeBytes(of: isDSM ? UInt8(0x09) : 0x19, toByteOffset: 0, as: UInt8.self)
        cmd.base.storeBytes(of: nsid.littleEndian, toByteOffset: 4, as: UInt32.self)
        cmd.base.storeBytes(of: list.address.littleEndian, toByteOffset: 24, as: UInt64.self)
        cmd.base.storeBytes(of: UInt32(length).littleEndian, toByteOffset: 36, as: UInt32.self)
        let cdw10 = isDSM ? UInt32(count - 1) : UInt32(truncatingIfNeeded: destination)
        let cdw11 = isDSM ? UInt32(1 << 2) : UInt32(truncatingIfNeeded: destination >> 32)
        let cdw12 = isDSM ? 0 : UInt32(count - 1) | UInt32(format) << 8
        for (i, v) in [cdw10, cdw11, cdw12].enumerated() { cmd.base.storeBytes(of: v.littleEndian, toByteOffset: 40 + 4 * i, as: UInt32.self) }
        racer.callerList = list

        let before = [UInt32(1), 2].map { read(emulated, nsid: $0) }
        let outcome = gate.ioctl(handle, request: IoctlRequest.ioCommand.rawValue, argument: cmd.base)
        let after = [UInt32(1), 2].map { read(emulated, nsid: $0) }
        let confined = onPartition && rules.partitions == .confined
        for (index, n) in [UInt32(1), 2].enumerated() where before[index] != after[index] {
            for lba in 0..<Int(blocks) where before[index][lba * 512..<(lba + 1) * 512] != after[index][lba * 512..<(lba + 1) * 512] {
                if case .failed(let e) = outcome { finding("refused (\(e)), yet block \(lba) of namespace \(n) changed") }
                let owned = grants.contains { $0.nsid == n && $0.writable && $0.range!.contains(slba: UInt64(lba), blocks: 1) }
                let inside = !confined || (n == 1 && partition.contains(slba: UInt64(lba), blocks: 1))
                require(owned && inside, "\(isDSM ? "Dataset Management" : "Copy") from a tenant owning \(grants) " +
                        "\(confined ? "through partition \(partition) " : "")changed block \(lba) of namespace \(n)")
            }
        }
        require(!racer.actedOnRewrittenList, "the controller was handed the caller's list, which was rewritten after the check")
    }

    /// Every block of namespace `nsid` gets bytes of its own (root, straight to the controller).
    static func fill(_ controller: EmulatedController, nsid: UInt32) {
        var data = [UInt8](repeating: 0, count: Int(blocks) * 512)
        for i in data.indices { data[i] = UInt8(truncatingIfNeeded: i / 512 &* 37 &+ Int(nsid) &* 101 &+ i % 7) }
        let status = data.withUnsafeMutableBytes { buffer in
            SubmissionQueueEntry(opcode: 0x01, nsid: nsid, cdw12: UInt32(blocks - 1)).withEntry { e in
                (try? controller.submit(e, queue: .io, data: buffer, metadata: UnsafeMutableRawBufferPointer(start: nil, count: 0)))?.status
            }
        }
        require(status == .success, "filling namespace \(nsid): \(String(describing: status))")
    }

    /// An MBR in block 0 of namespace 1 with one partition, so `nvme0n1p1` exists.
    static func writeMBR(_ controller: EmulatedController, _ partition: LBARange) {
        var sector = [UInt8](repeating: 0, count: 512)
        sector[446 + 4] = 0x83
        for i in 0..<4 {
            sector[446 + 8 + i] = UInt8(truncatingIfNeeded: partition.start >> (8 * UInt64(i)))
            sector[446 + 12 + i] = UInt8(truncatingIfNeeded: partition.count >> (8 * UInt64(i)))
        }
        sector[510] = 0x55
        sector[511] = 0xAA
        _ = sector.withUnsafeMutableBytes { buffer in
            SubmissionQueueEntry(opcode: 0x01, nsid: 1).withEntry { e in
                try? controller.submit(e, queue: .io, data: buffer, metadata: UnsafeMutableRawBufferPointer(start: nil, count: 0))
            }
        }
    }

    /// Every block of namespace `nsid`, back to back.
    static func read(_ controller: EmulatedController, nsid: UInt32) -> [UInt8] {
        var data = [UInt8](repeating: 0, count: Int(blocks) * 512)
        _ = data.withUnsafeMutableBytes { buffer in
            SubmissionQueueEntry(opcode: 0x02, nsid: nsid, cdw12: UInt32(blocks - 1)).withEntry { e in
                try? controller.submit(e, queue: .io, data: buffer, metadata: UnsafeMutableRawBufferPointer(start: nil, count: 0))
            }
        }
        return data
    }
}

/// Forwards to the emulated controller; when a range list command arrives, first plays the
/// hostile caller: rewrites the caller's list (every range's SLBA and length) with bytes the
/// input chose, as another thread of the caller's would right after the gate's check.
final class RewritingController: Controller, @unchecked Sendable {
    let inner: EmulatedController
    let rewrite: [UInt8]
    var callerList: Arena?
    private(set) var actedOnRewrittenList = false

    init(_ inner: EmulatedController, rewrite: [UInt8]) { self.inner = inner; self.rewrite = rewrite }

    var identity: ControllerIdentity { inner.identity }
    func namespaces() -> [NamespaceInfo] { inner.namespaces() }
    func effectsLog(for commandSet: CommandSet) -> CommandEffectsLog? { inner.effectsLog(for: commandSet) }
    func submit(_ command: borrowing SubmissionEntry, queue: Queue, data: UnsafeMutableRawBufferPointer,
                metadata: UnsafeMutableRawBufferPointer) throws(ControllerError) -> Completion {
        if let list = callerList, !rewrite.isEmpty {
            for i in 0..<list.buffer.count where i % 16 >= 4 { list.buffer[i] = rewrite[i % rewrite.count] }
            // The tenant owns LBA ranges only, so every list it sends must be checked on a copy.
            actedOnRewrittenList = actedOnRewrittenList || data.baseAddress == list.base
        }
        return try inner.submit(command, queue: queue, data: data, metadata: metadata)
    }
    func reset() throws(ControllerError) { try inner.reset() }
    func subsystemReset() throws(ControllerError) { try inner.subsystemReset() }
    func rescan() throws(ControllerError) { try inner.rescan() }
}
