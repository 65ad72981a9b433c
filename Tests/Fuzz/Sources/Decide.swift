#if canImport(Glibc)
import Glibc
#endif
import NVMeGate
import NVMeSpec

/// `decide`: submission entries decoded in place and decided under the kernel policy or a
/// tenant policy, against an effects log the input rewrites (lies included), through a
/// handle the input opens. For every entry, `CompiledPolicy.decide`, a `Decider` made for
/// the handle (the ring loop's form, with its owned-block windows) and `Gate.checkBatch`
/// (the ring itself, fused pairs included) must all give the verdict `ReferenceModel`
/// gives.
///
/// Input: the policy, the effects log rewrites, one namespace or five, a node, open mode,
/// caller and capabilities, the queue, then entries to the end.
enum DecideTarget {
    static func run(_ data: UnsafeRawBufferPointer) {
        var input = FuzzInput(data)
        let policy = input.bool() ? Policy.kernel : Fixture.tenantPolicy
        let controller = RecordingController(logs: Fixture.effectsLogs(&input), onlyFirst: input.u8() % 4 == 0)
        let gate = Gate(controller: controller, policy: policy)
        let model = ReferenceModel(policy: policy, logs: controller.logs, identity: Fixture.identity,
                                   namespaces: controller.namespaceList)
        let node = input.pick(Fixture.nodes)
        let writable = input.bool()
        var caller = input.pick(Fixture.callers)
        caller.capabilities = input.pick(Fixture.capabilitySets)
        let queue: Queue = input.bool() ? .io : .admin
        let handle = gate.open(node: node, writable: writable, caller: caller)
        guard let expected = model.open(node, writable: writable, caller: caller) else {
            require(handle == -ENOENT, "\(node) does not exist, yet open gave \(handle)")
            return
        }
        require(handle >= 0, "open \(node) failed: \(handle)")
        let context = gate.handleState(handle)!.context
        require(context.kind == expected.kind && context.nsid == expected.nsid && context.commandSet == expected.commandSet
                && context.partition == expected.partition && context.writable == writable,
                "open \(node): context \(context), expected \(expected)")

        var ring: [SubmissionQueueEntry] = []
        while !input.isEmpty && ring.count < 64 { ring.append(entry(&input, near: expected)) }
        let compiled = gate.policy
        let decider = Decider(compiled, handle: context, queue: queue)
        for e in ring {
            let single = e.withEntry { compiled.decide($0, queue: queue, handle: context) }
            let looped = e.withEntry { decider.decide($0) }
            require(single == looped, "CompiledPolicy.decide \(single) but Decider \(looped) for \(describe(e)) on \(node)")
            let want = model.errno(e, queue: queue, handle: expected)
            require(single.errno == want,
                    "\(describe(e)) on \(queue) from \(node) (\(writable ? "rw" : "ro")) as \(caller) under \(policy.name): " +
                    "gate \(single.code) (\(single.errno)), model \(want)")
        }
        var bytes: [UInt8] = []
        for e in ring { for i in 0..<16 { withUnsafeBytes(of: e.dwords[i].littleEndian) { bytes += $0 } } }
        var verdicts = [UInt8](repeating: 0xEE, count: ring.count + 1)
        let count = bytes.withUnsafeBytes { raw in
            verdicts.withUnsafeMutableBufferPointer {
                gate.checkBatch(handle, queue: queue, entries: RawSpan(_unsafeBytes: raw), verdicts: $0.baseAddress!)
            }
        }
        require(count == ring.count && verdicts[ring.count] == 0xEE, "checkBatch returned \(count) for \(ring.count) entries")
        let want = model.ringErrnos(ring, queue: queue, handle: expected)
        for i in ring.indices where Int32(verdicts[i]) != want[i] {
            finding("checkBatch entry \(i) of \(ring.count), \(describe(ring[i])) on \(queue) from \(node) as \(caller): " +
                    "\(verdicts[i]), model \(want[i])")
        }
    }

    /// A submission entry: opcode, flags, NSID and command dwords from the input, with
    /// NSIDs and LBAs biased towards the handle's namespace and the edges of grants.
    static func entry(_ input: inout FuzzInput, near handle: ReferenceModel.Handle) -> SubmissionQueueEntry {
        let kind = input.u8()
        let opcode: UInt8 = kind & 0x80 == 0
            ? input.pick([0x00, 0x01, 0x02, 0x04, 0x05, 0x06, 0x08, 0x09, 0x0A, 0x0C, 0x0D, 0x0E, 0x10, 0x14, 0x15,
                          0x19, 0x7A, 0x7D, 0x7F, 0x80, 0x84, 0xC1, 0xC2, 0xC5, 0xC6])
            : input.u8()
        let flags: UInt8 = kind & 0x60 == 0 ? input.u8() : 0
        let nsid: UInt32 = switch input.u8() % 6 {
        case 0: 0
        case 1: 0xFFFF_FFFF
        case 2: input.u32()
        case 3: UInt32(input.u8() % 6)
        default: handle.nsid
        }
        let slba = input.edgy(near: input.pick([1000, 1100, 1200, 1300, 1400, 1024, 2048, 0, 64, 512]))
        var e = SubmissionQueueEntry(opcode: opcode, flags: flags, nsid: nsid,
                                     cdw10: UInt32(truncatingIfNeeded: slba), cdw11: UInt32(truncatingIfNeeded: slba >> 32))
        e[cdw: 2] = kind & 0x10 == 0 ? UInt32(input.u8()) : input.u32()
        if kind & 0x08 == 0 { e[cdw: 0] = input.u32() }
        for i in 3...5 where input.bool() { e[cdw: i] = input.u32() }
        return e
    }

    static func describe(_ e: SubmissionQueueEntry) -> String {
        "opcode \(hexByte(e.opcode)) flags \(hexByte(e.flags)) nsid \(e.nsid) cdw10 \(e[cdw: 0]) cdw11 \(e[cdw: 1]) cdw12 \(e[cdw: 2])"
    }
}
