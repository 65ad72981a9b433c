#if canImport(Glibc)
import Glibc
#endif
import NVMeEmulator
import NVMeGate
import NVMeSpec

/// `emulator`: the emulated controller driven by a random sequence of admin and I/O
/// commands, some sent to it directly with buffers of any size (each allocated exactly, so
/// AddressSanitizer reports any byte it touches outside them), some through a gate as root
/// or as one of two tenants.
///
/// What must hold: a command the gate refuses, and a command the controller fails, change
/// nothing a host can see (namespaces, their formats and data, reservations, features,
/// firmware slots); a tenant's allowed command changes no block, namespace or reservation
/// the tenant does not own for writing.
enum EmulatorTarget {
    static let policy: Policy = {
        let text = """
            version = 1
            name = "fuzz-emulator"
            [default.io]
            commands = "none"

            [[tenant]]
            name = "owner"
            uids = [1001]
            rules = "kernel"
            namespaces = [1]
            [tenant.admin]
            commands = ["Format NVM", "Set Features", "Get Features", "Get Log Page", "Device Self-test"]
            identify_cns = [0x00, 0x01, 0x02, 0x03, 0x05, 0x06, 0x08, 0x10, 0x11]

            [[tenant]]
            name = "slice"
            uids = [1002]
            rules = "kernel"
            [tenant.admin]
            identify_cns = [0x00, 0x01]
            log_pages = [0x02, 0x03]
            [tenant.io]
            fused_compare_write = true
            [[tenant.lba_range]]
            nsid = 2
            start = 16
            blocks = 16
            [[tenant.lba_range]]
            nsid = 2
            start = 32
            blocks = 16
            access = "read"
            """
        do { return try Policy.parse(text, file: "fuzz-emulator.toml") } catch { finding("fixture policy: \(error)") }
    }()

    static let adminOpcodes: [UInt8] = [0x02, 0x06, 0x09, 0x0A, 0x0C, 0x0D, 0x10, 0x11, 0x14, 0x15, 0x18, 0x08, 0x80, 0x84]
    static let ioOpcodes: [UInt8] = [0x00, 0x01, 0x02, 0x04, 0x05, 0x08, 0x09, 0x0C, 0x0D, 0x0E, 0x11, 0x15, 0x19]

    static func run(_ data: UnsafeRawBufferPointer) {
        var input = FuzzInput(data)
        let controller = EmulatedController.inMemory(EmulatorConfiguration(
            namespaceCount: 2, namespaceSize: 64 * 512, totalCapacity: 512 << 10, maxNamespaces: 4,
            extendedSelfTestMilliseconds: 0))
        let gate = Gate(controller: controller, policy: policy)
        let root = Caller(uid: 0, gid: 0, capabilities: .sysAdmin)
        let owner = Caller(uid: 1001, gid: 1001), slice = Caller(uid: 1002, gid: 1002)
        let handles: [(number: Int32, caller: Caller)] = [
            (gate.open(node: "nvme0", writable: true, caller: root), root),
            (gate.open(node: "nvme0n1", writable: true, caller: root), root),
            (gate.open(node: "nvme0", writable: true, caller: owner), owner),
            (gate.open(node: "nvme0n1", writable: true, caller: owner), owner),
            (gate.open(node: "nvme0", writable: false, caller: slice), slice),
            (gate.open(node: "nvme0n2", writable: true, caller: slice), slice),
        ]
        var state = Snapshot(controller)
        for _ in 0..<12 where !input.isEmpty {
            let route = input.u8()
            let queue: Queue = route & 1 == 0 ? .admin : .io
            let opcode = route & 0x80 == 0 ? input.pick(queue == .admin ? adminOpcodes : ioOpcodes) : input.u8()
            let flags: UInt8 = input.u8() % 16 == 0 ? input.u8() : 0
            let nsid: UInt32 = input.pick([1, 1, 2, 2, 0, 3, 4, 0xFFFF_FFFF, input.u32()])
            var entry = SubmissionQueueEntry(opcode: opcode, flags: flags, nsid: nsid)
            if queue == .io && input.bool() {
                let slba = input.u8() % 4 == 0 ? input.u64() : UInt64(input.u8() % 72)
                entry[cdw: 0] = UInt32(truncatingIfNeeded: slba)
                entry[cdw: 1] = UInt32(truncatingIfNeeded: slba >> 32)
                entry[cdw: 2] = UInt32(input.u8() % 16) | UInt32(input.u8() & 0xC0) << 24
            } else {
                for i in 0..<3 { entry[cdw: i] = input.u8() % 2 == 0 ? UInt32(input.u8()) : input.u32() }
            }
            for i in 3..<6 where input.u8() % 4 == 0 { entry[cdw: i] = input.u32() }
            let count = input.u8() % 4 == 0 ? Int(input.u16() % 16384) : input.pick([0, 8, 16, 32, 64, 512, 1024, 4096, 8192])
            let buffer = Arena(count: max(count, 1))
            let content = input.take(count)
            content.withUnsafeBytes { buffer.buffer.copyMemory(from: $0) }
            let dataBuffer = UnsafeMutableRawBufferPointer(start: count == 0 ? nil : buffer.base, count: count)

            let via = route >> 1 & 7
            if via >= UInt8(handles.count) {
                let completion: Completion
                do {
                    completion = try entry.withEntry { e throws(ControllerError) in
                        try controller.submit(e, queue: queue, data: dataBuffer, metadata: UnsafeMutableRawBufferPointer(start: nil, count: 0))
                    }
                } catch {
                    finding("the emulator threw \(error.errno) for \(DecideTarget.describe(entry))")
                }
                let after = Snapshot(controller)
                if !completion.status.isSuccess {
                    require(after == state, "\(queue) \(DecideTarget.describe(entry)) failed with status " +
                            "\(hex(completion.status.rawValue)) yet changed \(state.difference(after))")
                }
                state = after
                continue
            }
            let (handle, caller) = handles[Int(via)]
            let cmd = Arena(count: PassthruCommand.size32)
            // CDW0 to CDW3 and CDW10 to CDW15 sit where a submission entry has them.
            for i in [0, 1, 2, 3, 10, 11, 12, 13, 14, 15] {
                cmd.base.storeBytes(of: entry.dwords[i].littleEndian, toByteOffset: 4 * i, as: UInt32.self)
            }
            cmd.base.storeBytes(of: (count == 0 ? 0 : buffer.address).littleEndian, toByteOffset: 24, as: UInt64.self)
            cmd.base.storeBytes(of: UInt32(count).littleEndian, toByteOffset: 36, as: UInt32.self)
            let request = queue == .admin ? IoctlRequest.adminCommand : .ioCommand
            let outcome = gate.ioctl(handle, request: request.rawValue, argument: cmd.base)
            let after = Snapshot(controller)
            switch outcome {
            case .failed(let e):
                require(after == state, "a command the gate refused (errno \(e)) changed \(state.difference(after))")
            case .returned(let status) where status != 0:
                require(after == state, "\(DecideTarget.describe(entry)) failed (\(hex(UInt16(status)))) through the gate " +
                        "yet changed \(state.difference(after))")
            case .returned:
                if caller == owner {
                    // Namespace 1 is its own, and it may set controller features.
                    let changed = state.difference(after, owned: [1], mayWrite: { _, _ in false }, featuresMayChange: true)
                    require(changed.isEmpty, "tenant \"owner\" (namespace 1) changed \(changed) with \(DecideTarget.describe(entry))")
                } else if caller == slice {
                    let changed = state.difference(after, owned: [], mayWrite: { nsid, lba in nsid == 2 && (16..<32).contains(lba) })
                    require(changed.isEmpty, "tenant \"slice\" (LBAs 16-31 of namespace 2) changed \(changed) with " +
                            DecideTarget.describe(entry))
                }
            }
            state = after
        }
    }

    static func hex(_ v: UInt16) -> String { "0x" + String(v, radix: 16) }
}

/// What a host can see of an emulated controller's state, read with commands that change
/// nothing: the active and allocated namespaces with their formats, every block (an
/// unreadable one as its status), each namespace's reservation report, the current value of
/// every feature, and the firmware slots. Counters, logs of past events and clocks are left out.
struct Snapshot: Equatable {
    var namespaces: [NamespaceInfo] = []
    var allocated: [UInt8] = []
    var blocks: [UInt32: [[UInt8]]] = [:]
    var reservations: [UInt32: [UInt8]] = [:]
    var features: [UInt64] = []
    var firmware: [UInt8] = []

    init(_ controller: EmulatedController) {
        namespaces = controller.namespaces()
        allocated = Self.run(controller, .admin, SubmissionQueueEntry(opcode: 0x06, cdw10: 0x10), bytes: 4096).data
        for ns in namespaces {
            let size = Int(ns.lbaDataSize)
            let whole = Self.run(controller, .io, SubmissionQueueEntry(opcode: 0x02, nsid: ns.nsid, cdw12: UInt32(ns.blockCount - 1)),
                                 bytes: size * Int(ns.blockCount))
            if whole.status == 0 {
                blocks[ns.nsid] = (0..<Int(ns.blockCount)).map { Array(whole.data[$0 * size..<($0 + 1) * size]) }
            } else {
                blocks[ns.nsid] = (0..<UInt32(ns.blockCount)).map { lba in
                    let read = Self.run(controller, .io, SubmissionQueueEntry(opcode: 0x02, nsid: ns.nsid, cdw10: lba), bytes: size)
                    return read.status == 0 ? read.data : [UInt8(truncatingIfNeeded: read.status), UInt8(read.status >> 8)]
                }
            }
            let report = Self.run(controller, .io, SubmissionQueueEntry(opcode: 0x0E, nsid: ns.nsid, cdw10: 1023, cdw11: 1),
                                  bytes: 4096)
            reservations[ns.nsid] = report.data + [UInt8(truncatingIfNeeded: report.status)]
        }
        let probes: [(UInt32, UInt32, UInt32)] = [(0x01, 0, 0), (0x02, 0, 0), (0x04, 0, 0), (0x04, 0, 1 << 20), (0x05, 1, 0),
                                                  (0x05, 2, 0), (0x06, 0, 0), (0x07, 0, 0), (0x08, 0, 0), (0x0B, 0, 0), (0x0F, 0, 0)]
        for (fid, nsid, cdw11) in probes {
            let got = Self.run(controller, .admin, SubmissionQueueEntry(opcode: 0x0A, nsid: nsid, cdw10: fid, cdw11: cdw11), bytes: 4096)
            features.append(UInt64(got.status) << 32 | UInt64(got.dw0))
        }
        let host = Self.run(controller, .admin, SubmissionQueueEntry(opcode: 0x0A, cdw10: 0x81, cdw11: 1), bytes: 16)
        features.append(UInt64(host.status))
        firmware = Self.run(controller, .admin, SubmissionQueueEntry(opcode: 0x02, cdw10: 0x03 | 127 << 16), bytes: 512).data + host.data
    }

    static func run(_ controller: EmulatedController, _ queue: Queue, _ entry: SubmissionQueueEntry, bytes: Int)
        -> (status: UInt16, dw0: UInt32, data: [UInt8]) {
        var data = [UInt8](repeating: 0, count: bytes)
        let completion = data.withUnsafeMutableBytes { buffer in
            entry.withEntry { e in
                try? controller.submit(e, queue: queue, data: buffer, metadata: UnsafeMutableRawBufferPointer(start: nil, count: 0))
            }
        }
        guard let completion else { finding("the emulator threw on a snapshot command") }
        return (completion.status.rawValue, completion.dw0, data)
    }

    /// What differs from `other`, in words, leaving out what a caller may change: the
    /// `owned` namespaces (format, blocks, reservations), the blocks `mayWrite` names, and
    /// features when `featuresMayChange`; empty when nothing else differs.
    func difference(_ other: Snapshot, owned: Set<UInt32> = [], mayWrite: (UInt32, UInt64) -> Bool = { _, _ in false },
                    featuresMayChange: Bool = false) -> String {
        var out: [String] = []
        let mine = namespaces.filter { !owned.contains($0.nsid) }, theirs = other.namespaces.filter { !owned.contains($0.nsid) }
        if mine != theirs || namespaces.map(\.nsid) != other.namespaces.map(\.nsid) {
            out.append("the namespaces (\(namespaces.map(\.nsid)) → \(other.namespaces.map(\.nsid)))")
        }
        if allocated != other.allocated { out.append("the allocated namespace list") }
        for (nsid, list) in blocks where !owned.contains(nsid) {
            guard let new = other.blocks[nsid], new.count == list.count else { continue }
            let changed = list.indices.filter { list[$0] != new[$0] && !mayWrite(nsid, UInt64($0)) }
            if !changed.isEmpty { out.append("namespace \(nsid) blocks \(changed.prefix(8))") }
        }
        for (nsid, report) in reservations where !owned.contains(nsid) && other.reservations[nsid] != nil
            && other.reservations[nsid] != report {
            out.append("namespace \(nsid)'s reservations")
        }
        if features != other.features && !featuresMayChange { out.append("features") }
        if firmware != other.firmware { out.append("the firmware slots or host identifier") }
        return out.joined(separator: ", ")
    }
}
