// The decision path, measured: Linux's passthrough rules deciding a 4096-entry I/O ring, in
// Swift (a `Decider`, the per-handle form of `CompiledPolicy.decide`), in plain C
// (`CKernelRules`, the reference), through the gate's batch API and through the C ABI's
// `nvmegate_check_batch`; and one Read through `Gate.ioctl` on the loopback controller.
//
// Each ring benchmark's scaled iteration decides the whole ring (4096 entries): divide the
// reported time by 4096 for ns per entry. Each ioctl benchmark's scaled iteration is one call.
// See README.md for how to run, the figures and the allocation thresholds.
//
// Names use `_` where one would write `/` or a space: package-benchmark 1.38.1 writes threshold
// files under the name with `/` and ` ` replaced by `_`, but `thresholds check` looks them up
// under the raw name, so any other name can never be checked.

import Benchmark
import CKernelRules
import CNVMeGate
import NVMeEmulator
import NVMeGate
import NVMeSpec

#if canImport(Glibc)
import Glibc
#endif

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        timeUnits: .nanoseconds,
        warmupIterations: 3,
        scalingFactor: .kilo,
        maxDuration: .seconds(3),
        maxIterations: 100_000,
        // CI checks allocations, never time (this VM is noisy). No tolerance: a changed
        // count either way fails `thresholds check` until Thresholds/ is updated.
        thresholds: [.mallocCountTotal: .init(relative: [.p90: 0], absolute: [.p90: 0])])

    // MARK: The ring, decided three ways

    Benchmark("Decide_kernel_policy_4096_ring_(Swift_Decider)") { benchmark in
        let f = Fixture.shared
        for _ in benchmark.scaledIterations {
            blackHole(swiftDecideRing(f.policy, f.ring, handle: f.context, verdicts: f.verdicts))
        }
    } setup: { _ = Fixture.shared }

    Benchmark("Decide_kernel_policy_4096_ring_(plain_C)") { benchmark in
        let f = Fixture.shared
        for _ in benchmark.scaledIterations {
            blackHole(ckr_decide_ring(f.ring.baseAddress, f.ringCount, 1, f.cEffects, f.cHandle, f.verdicts))
        }
    } setup: { _ = Fixture.shared }

    Benchmark("Decide_kernel_policy_4096_ring_(plain_C_rules_inlined)") { benchmark in
        let f = Fixture.shared
        for _ in benchmark.scaledIterations {
            blackHole(ckr_decide_ring_inline(f.ring.baseAddress, f.ringCount, 1, f.cEffects, f.cHandle, f.verdicts))
        }
    } setup: { _ = Fixture.shared }

    Benchmark("Decide_tenant_policy_4096_ring_(Swift_Decider)") { benchmark in
        let f = Fixture.shared
        for _ in benchmark.scaledIterations {
            blackHole(swiftDecideRing(f.tenantPolicy, f.ring, handle: f.tenantContext, verdicts: f.verdicts))
        }
    } setup: { _ = Fixture.shared }

    Benchmark("Decide_kernel_policy_4096_ring_(Gate.checkBatch)") { benchmark in
        let f = Fixture.shared
        for i in benchmark.scaledIterations {
            blackHole(gateCheckBatch(f.gate, f.gateHandle, f.ring, verdicts: f.verdicts))
            blackHole(f.verdicts[i & (Fixture.entries - 1)])
        }
    } setup: { _ = Fixture.shared }

    Benchmark("Decide_kernel_policy_4096_ring_(nvmegate_check_batch)") { benchmark in
        let f = Fixture.shared
        for _ in benchmark.scaledIterations {
            blackHole(abiCheckBatch(f.abiGate, f.abiHandle, f.ring, verdicts: f.verdicts))
        }
    } setup: { _ = Fixture.shared }

    // MARK: One command through the ioctl front end

    for is64 in [false, true] {
        Benchmark("ioctl_loopback_Read_\(is64 ? 80 : 72)-byte") { benchmark in
            let f = Fixture.shared
            let request = is64 ? IoctlRequest.io64Command.rawValue : IoctlRequest.ioCommand.rawValue
            let command = is64 ? f.read80 : f.read72
            for _ in benchmark.scaledIterations {
                blackHole(f.gate.ioctl(f.gateHandle, request: request, argument: command))
            }
        } setup: { _ = Fixture.shared }
    }
}

// MARK: The measured loops (out of line, so `objdump` can find them; see README.md)

/// Decides every entry of `ring` with `policy`, as `handle` would; writes the verdicts (0 or
/// errno) and returns their sum, so no call can be hoisted out of the timing loop.
@inline(never)
func swiftDecideRing(_ policy: CompiledPolicy, _ ring: UnsafeRawBufferPointer, handle: HandleContext,
                     verdicts: UnsafeMutablePointer<UInt8>) -> UInt64 {
    let span = RawSpan(_unsafeBytes: ring)
    let decider = Decider(policy, handle: handle, queue: .io)
    var sum: UInt64 = 0
    for i in 0..<SubmissionEntry.count(in: span) {
        let v = UInt8(truncatingIfNeeded: decider.decide(SubmissionEntry(span, index: i)).errno)
        verdicts[i] = v
        sum &+= UInt64(v)
    }
    return sum
}

@inline(never)
func gateCheckBatch(_ gate: Gate, _ handle: Int32, _ ring: UnsafeRawBufferPointer,
                    verdicts: UnsafeMutablePointer<UInt8>) -> Int {
    gate.checkBatch(handle, queue: .io, entries: RawSpan(_unsafeBytes: ring), verdicts: verdicts)
}

/// The ring through the exported C function, as a C caller of libNVMeGateABI.so calls it.
@inline(never)
func abiCheckBatch(_ gate: OpaquePointer, _ handle: Int32, _ ring: UnsafeRawBufferPointer,
                   verdicts: UnsafeMutablePointer<UInt8>) -> Int {
    nvmegate_check_batch(gate, handle, Int32(NVMEGATE_QUEUE_IO), ring.baseAddress, ring.count / 64, verdicts)
}

// MARK: Fixture

/// Everything the benchmarks share, built once (outside the measured region) and checked:
/// the three ring deciders must agree entry by entry before anything is timed.
final class Fixture: @unchecked Sendable {
    static let shared = Fixture()
    static let entries = 4096

    /// The I/O ring: 64-byte entries, page aligned.
    let ring: UnsafeRawBufferPointer
    var ringCount: Int { Self.entries }
    let verdicts: UnsafeMutablePointer<UInt8>

    /// The kernel policy compiled against a QEMU-like effects log.
    let policy: CompiledPolicy
    /// A namespace handle (nvme0n1, NSID 1) opened read-write by an unprivileged caller.
    let context = HandleContext(kind: .namespace, writable: true, commandSet: .nvm, nsid: 1)
    /// A policy of 8 tenants on Linux's rules; the measured one (uid 1000, the last to
    /// match) owns namespace 1 as two LBA ranges that cover what the ring addresses, so
    /// every LBA-addressed entry is range-checked (against one or two grants) and passes, as
    /// a tenant's own I/O does; DSM, whose ranges are in the data buffer, is refused on a
    /// ring (`range-list-unchecked`).
    let tenantPolicy: CompiledPolicy
    let tenantContext: HandleContext
    let cEffects: UnsafeMutablePointer<UInt32>
    let cHandle: UnsafeMutablePointer<ckr_handle>

    /// A gate over a loopback controller (its own effects log), with nvme0n1 opened read-write.
    let gate: Gate
    let gateHandle: Int32
    /// The same through the C ABI: `nvmegate_create(NULL, "loopback", …)` (the built-in kernel
    /// policy), nvme0n1 opened O_RDWR by uid 1000 without capabilities.
    let abiGate: OpaquePointer
    let abiHandle: Int32
    /// `nvme_passthru_cmd` / `nvme_passthru_cmd64`: Read of 1 block at LBA 8 into `dataBuffer`.
    let read72: UnsafeMutableRawPointer
    let read80: UnsafeMutableRawPointer
    let dataBuffer: UnsafeMutableRawPointer

    /// QEMU's NVM I/O effects (hw/nvme/ctrl.c `nvme_cse_iocs_nvm`): Read, Compare, Verify
    /// CSUPP; Flush, Write, Write Zeroes, DSM, Copy CSUPP|LBCC.
    static func qemuEffectsLog() -> CommandEffectsLog {
        var log = CommandEffectsLog()
        for op: UInt8 in [0x02, 0x06, 0x09, 0x0A, 0x0C, 0x0D, 0x12, 0x15, 0x18] { log[.admin, op] = .supported }
        let csupp = CommandEffects.supported
        let lbcc = CommandEffects(supported: true, logicalBlockContentChange: true)
        for op: UInt8 in [0x02, 0x05, 0x0C] { log[.io, op] = csupp }
        for op: UInt8 in [0x00, 0x01, 0x08, 0x09, 0x19] { log[.io, op] = lbcc }
        return log
    }

    /// The mix (of 4096): 2457 Read, 1024 Write, 205 Flush, 164 Write Zeroes, 123 DSM,
    /// 41 Compare, 41 vendor-specific C1h, 41 malformed (odd: PSDT set in flags; even:
    /// NSID 2 on the NSID 1 handle). Shuffled with a fixed seed.
    static func makeRing(_ ring: UnsafeMutableRawBufferPointer) {
        enum Kind { case read, write, flush, writeZeroes, dsm, compare, vendor, malformed }
        var kinds: [Kind] = []
        for (kind, n) in [(Kind.read, 2457), (.write, 1024), (.flush, 205), (.writeZeroes, 164), (.dsm, 123),
                          (.compare, 41), (.vendor, 41), (.malformed, 41)] {
            kinds += Array(repeating: kind, count: n)
        }
        precondition(kinds.count == entries)
        var rng = SplitMix64(seed: 0x6E766D65_67617465)
        kinds.shuffle(using: &rng)
        var malformed = 0
        for (i, kind) in kinds.enumerated() {
            let lba = rng.next() % (1 << 20)
            let blocks = UInt32(rng.next() % 8)  // NLB, 0's based
            var sqe = SubmissionQueueEntry(opcode: 0x02, commandID: UInt16(truncatingIfNeeded: i), nsid: 1,
                                           cdw10: UInt32(truncatingIfNeeded: lba), cdw11: UInt32(truncatingIfNeeded: lba >> 32),
                                           cdw12: blocks)
            switch kind {
            case .read: break
            case .write: sqe.opcode = 0x01
            case .flush: sqe.opcode = 0x00; sqe[cdw: 0] = 0; sqe[cdw: 2] = 0
            case .writeZeroes: sqe.opcode = 0x08
            case .dsm: sqe.opcode = 0x09; sqe[cdw: 0] = 0; sqe[cdw: 1] = 0x4; sqe[cdw: 2] = 0  // 1 range, deallocate
            case .compare: sqe.opcode = 0x05
            case .vendor: sqe.opcode = 0xC1
            case .malformed:
                malformed += 1
                if malformed & 1 == 1 { sqe.flags = 0x40 } else { sqe.nsid = 2 }
            }
            sqe.dwords[6] = 0x1000_0000 &+ UInt32(i) &* 0x1000  // PRP1, never read by the rules
            for d in 0..<16 { ring.storeBytes(of: sqe.dwords[d].littleEndian, toByteOffset: i * 64 + d * 4, as: UInt32.self) }
        }
    }

    private init() {
        let raw = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.entries * 64, alignment: 4096)
        Self.makeRing(raw)
        ring = UnsafeRawBufferPointer(raw)
        verdicts = .allocate(capacity: Self.entries)
        verdicts.initialize(repeating: 0xFF, count: Self.entries)

        let log = Self.qemuEffectsLog()
        policy = CompiledPolicy(policy: .kernel, effectsLogs: [.nvm: log])
        var tenants = (0..<7).map { i in
            Tenant(name: "other\(i)", uids: [UInt32(2000 + i)], ownership: .grants([NamespaceGrant(nsid: UInt32(2 + i))]),
                   rules: Policy.kernel.defaultRules)
        }
        tenants.append(Tenant(name: "ranged", uids: [1000],
                              ownership: .grants([NamespaceGrant(nsid: 1, range: LBARange(start: 0, count: 1 << 19)),
                                                  NamespaceGrant(nsid: 1, range: LBARange(start: 1 << 19, count: (1 << 19) + 8))]),
                              rules: Policy.kernel.defaultRules))
        tenantPolicy = CompiledPolicy(policy: Policy(name: "tenants", defaultRules: Policy.kernel.defaultRules, tenants: tenants),
                                      effectsLogs: [.nvm: log])
        let (profile, tenant) = tenantPolicy.assignment(for: Caller(uid: 1000, gid: 1000))
        tenantContext = HandleContext(kind: .namespace, writable: true, commandSet: .nvm, nsid: 1, profile: profile, tenant: tenant)
        let rawIOCS = UnsafeMutablePointer<UInt32>.allocate(capacity: 256)
        for op in 0..<256 { rawIOCS[op] = log[.io, UInt8(op)].rawValue }
        cEffects = .allocate(capacity: 256)
        ckr_prepare_io_effects(rawIOCS, cEffects)
        rawIOCS.deallocate()
        cHandle = .allocate(capacity: 1)
        cHandle.initialize(to: ckr_handle(nsid: 1, is_namespace: 1, is_partition: 0, writable: 1, cap_sys_admin: 0))

        gate = Gate(controller: LoopbackController())
        gateHandle = gate.open(node: "nvme0n1", writable: true, caller: Caller(uid: 1000, gid: 1000))
        precondition(gateHandle >= 0, "open nvme0n1: \(gateHandle)")
        var message = [CChar](repeating: 0, count: 256)
        guard let created = nvmegate_create(nil, "loopback", &message, message.count) else {
            fatalError("nvmegate_create: \(String(decoding: message.prefix { $0 != 0 }.map(UInt8.init(bitPattern:)), as: UTF8.self))")
        }
        abiGate = created
        var caller = nvmegate_caller(uid: 1000, gid: 1000, capabilities: 0)
        abiHandle = nvmegate_open(abiGate, "nvme0n1", O_RDWR, &caller)
        precondition(abiHandle >= 0, "nvmegate_open nvme0n1: errno \(errno)")

        dataBuffer = .allocate(byteCount: 512, alignment: 4096)
        read72 = Self.passthruRead(size: PassthruCommand.size32, data: dataBuffer)
        read80 = Self.passthruRead(size: PassthruCommand.size64, data: dataBuffer)

        verify()
    }

    /// `struct nvme_passthru_cmd(64)` for Read (02h) of 1 block at LBA 8 on NSID 1.
    static func passthruRead(size: Int, data: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer {
        let p = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 8)
        p.initializeMemory(as: UInt8.self, repeating: 0, count: size)
        p.storeBytes(of: 0x02, toByteOffset: 0, as: UInt8.self)                         // opcode
        p.storeBytes(of: UInt32(1).littleEndian, toByteOffset: 4, as: UInt32.self)       // nsid
        p.storeBytes(of: UInt64(UInt(bitPattern: data)).littleEndian, toByteOffset: 24, as: UInt64.self)  // addr
        p.storeBytes(of: UInt32(512).littleEndian, toByteOffset: 36, as: UInt32.self)    // data_len
        p.storeBytes(of: UInt32(8).littleEndian, toByteOffset: 40, as: UInt32.self)      // cdw10: SLBA
        return p                                                                         // cdw12 NLB 0: 1 block
    }

    /// Swift, C (both loops), the gate and the C ABI must give the same verdicts; the ioctls
    /// must succeed.
    func verify() {
        func run(_ body: () -> Void) -> [UInt8] {
            verdicts.update(repeating: 0xFF, count: Self.entries)
            body()
            return Array(UnsafeBufferPointer(start: verdicts, count: Self.entries))
        }
        let swift = run { _ = swiftDecideRing(policy, ring, handle: context, verdicts: verdicts) }
        let c = run { _ = ckr_decide_ring(ring.baseAddress, Self.entries, 1, cEffects, cHandle, verdicts) }
        let cInline = run { _ = ckr_decide_ring_inline(ring.baseAddress, Self.entries, 1, cEffects, cHandle, verdicts) }
        let batch = run { _ = gateCheckBatch(gate, gateHandle, ring, verdicts: verdicts) }
        let abi = run { precondition(abiCheckBatch(abiGate, abiHandle, ring, verdicts: verdicts) == Self.entries, "nvmegate_check_batch: errno \(errno)") }
        for i in 0..<Self.entries where swift[i] != c[i] || c[i] != cInline[i] || c[i] != batch[i] || c[i] != abi[i] {
            fatalError("verdicts differ at entry \(i): Swift \(swift[i]), C \(c[i]), C inline \(cInline[i]), checkBatch \(batch[i]), nvmegate_check_batch \(abi[i])")
        }
        let allowed = c.filter { $0 == 0 }.count
        let einval = c.filter { $0 == EINVAL }.count
        let eacces = c.filter { $0 == EACCES }.count
        precondition(allowed == Self.entries - 82 && einval == 41 && eacces == 41,
                     "unexpected verdict mix: \(allowed) allowed, \(einval) EINVAL, \(eacces) EACCES")
        // The tenant policy: what the kernel allows, minus DSM (its ranges are not on the ring).
        let tenant = run { _ = swiftDecideRing(tenantPolicy, ring, handle: tenantContext, verdicts: verdicts) }
        let refusedMore = (0..<Self.entries).filter { c[$0] == 0 && tenant[$0] == EACCES }.count
        precondition((0..<Self.entries).allSatisfy { c[$0] != 0 ? tenant[$0] == c[$0] : tenant[$0] == 0 || tenant[$0] == EACCES }
                     && refusedMore == 123, "unexpected tenant verdicts: \(refusedMore) refused beyond the kernel's")
        for (name, request, command) in [("72", IoctlRequest.ioCommand, read72), ("80", IoctlRequest.io64Command, read80)] {
            let outcome = gate.ioctl(gateHandle, request: request.rawValue, argument: command)
            precondition(outcome == .returned(0), "\(name)-byte Read: \(outcome)")
        }
    }
}

/// A small deterministic generator (SplitMix64), so the ring is the same on every run.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
