// Policy loading and reloading, measured: a policy of 1,000 tenants parsed and validated
// from its TOML text, compiled against the loopback controller's effects log, both, and
// swapped into a gate with `Gate.reload`, on an idle gate and while 8 threads submit mixed
// commands through `Gate.ioctl`.
//
// One iteration is one load, compile or reload (`scalingFactor: .one`): the tables show time
// per operation. See README.md for the figures and the allocation thresholds.

import Benchmark
import NVMeEmulator
import NVMeGate
import NVMeSpec
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .mallocCountTotal],
        timeUnits: .microseconds,
        warmupIterations: 2,
        scalingFactor: .one,
        maxDuration: .seconds(3),
        // A load compiles about 10 ms: 200 fit the 3 seconds.
        maxIterations: 200,
        // CI checks allocations, never time: no tolerance, as in DecisionBenchmarks.
        thresholds: [.mallocCountTotal: .init(relative: [.p90: 0], absolute: [.p90: 0])])

    Benchmark("Load_1000_tenants_(parse_and_validate)") { benchmark in
        let f = PolicyFixture.shared
        for _ in benchmark.scaledIterations { blackHole(try Policy.parse(f.texts[0])) }
    } setup: { _ = PolicyFixture.shared }

    Benchmark("Load_1000_tenants_(compile)") { benchmark in
        let f = PolicyFixture.shared
        for _ in benchmark.scaledIterations { blackHole(CompiledPolicy(policy: f.policies[0], effectsLogs: f.logs)) }
    } setup: { _ = PolicyFixture.shared }

    Benchmark("Load_1000_tenants_(parse_and_compile)") { benchmark in
        let f = PolicyFixture.shared
        for _ in benchmark.scaledIterations {
            blackHole(CompiledPolicy(policy: try Policy.parse(f.texts[0]), effectsLogs: f.logs))
        }
    } setup: { _ = PolicyFixture.shared }

    Benchmark("Reload_1000_tenants_(Gate.reload_idle)") { benchmark, reloader in
        for _ in benchmark.scaledIterations { reloader.reloadNext() }
    } setup: {
        Reloader(PolicyFixture.shared.gateWithTenantHandles().gate)
    }

    // The allocation count is process-wide; the submitters allocate nothing, so it is the
    // reload's own, the same as the idle reload's. Their throughput is printed at the end.
    let underLoad = ReloadUnderLoad()
    Benchmark("Reload_1000_tenants_(Gate.reload_8_threads_submitting)") { benchmark in
        for _ in benchmark.scaledIterations { underLoad.reloader.reloadNext() }
    } setup: {
        underLoad.start()
    } teardown: {
        underLoad.stopAndCheck()
    }
}

// MARK: Fixture

/// The two policies (text, parsed) and the effects log they are compiled against, built and
/// checked once, outside the measured region.
final class PolicyFixture: Sendable {
    static let shared = PolicyFixture()
    static let tenants = 1000
    /// The tenants whose callers submit in the reload benchmark: each owns an LBA range of
    /// namespace 1; spread over the file.
    static let submitters = [6, 127, 256, 387, 516, 647, 737, 996]

    /// Variant 0 (LBA ranges read-write) and 1 (read-only): the policies a reload alternates.
    let texts: [String]
    let policies: [Policy]
    /// The loopback controller's effects log, which `Gate.reload` compiles against.
    let logs: [CommandSet: CommandEffectsLog]

    private init() {
        texts = [0, 1].map { TenantPolicyText.make(tenants: Self.tenants, variant: $0) }
        do {
            policies = try texts.map { text throws(PolicyError) in try Policy.parse(text, file: "tenants-1000.toml") }
        } catch {
            fatalError("the generated policy does not load: \(error)")
        }
        let loopback = LoopbackController()
        logs = [.nvm: loopback.effectsLog(for: .nvm)!]
        verify()
    }

    /// The generated policy means what the generator says: 1,000 tenants, each submitter's
    /// uid assigned to its own tenant, its range writable in variant 0 only.
    func verify() {
        require(policies.allSatisfy { $0.tenants.count == Self.tenants }, "expected \(Self.tenants) tenants")
        for variant in 0...1 {
            let compiled = CompiledPolicy(policy: policies[variant], effectsLogs: logs)
            for i in Self.submitters {
                let (_, tenant) = compiled.assignment(for: Caller(uid: TenantPolicyText.uid(i), gid: 1))
                let range = LBARange(start: TenantPolicyText.rangeStart(i), count: TenantPolicyText.blocksPerRange)
                require(compiled.tenant(at: tenant)?.ownership == .grants([NamespaceGrant(nsid: 1, range: range, writable: variant == 0)]),
                        "tenant-\(i) in variant \(variant): \(String(describing: compiled.tenant(at: tenant)))")
            }
        }
    }

    /// A gate over a loopback controller under variant 0, with nvme0n1 opened read-write by
    /// every tenant's caller (a reload matches each of them to the new policy's tenants);
    /// the submitters' handles.
    func gateWithTenantHandles() -> (gate: Gate, submitterHandles: [Int32]) {
        let gate = Gate(controller: LoopbackController(), policy: policies[0])
        let handles = (0..<Self.tenants).map { i in
            gate.open(node: "nvme0n1", writable: true, caller: Caller(uid: TenantPolicyText.uid(i), gid: 1))
        }
        require(handles.allSatisfy { $0 >= 0 }, "open nvme0n1: \(handles.filter { $0 < 0 })")
        return (gate, Self.submitters.map { handles[$0] })
    }
}

// MARK: Reloads

/// A gate whose policy each `reloadNext` replaces with the other variant (the harness calls
/// the benchmark closure once per iteration, so the alternation is kept here).
final class Reloader: @unchecked Sendable {
    let gate: Gate
    private(set) var reloads = 0

    init(_ gate: Gate) { self.gate = gate }

    func reloadNext() {
        reloads += 1
        gate.reload(PolicyFixture.shared.policies[reloads & 1])
    }
}

/// Eight threads, one per submitter tenant, each sending a fixed mix of commands through
/// `Gate.ioctl` on its own nvme0n1 handle until stopped, and counting what came back; the
/// benchmark reloads the gate's policy meanwhile.
final class ReloadUnderLoad: @unchecked Sendable {
    private(set) var reloader: Reloader!
    private var threads: [Submitter] = []
    /// The submitters' commands per millisecond in the second before the first reload.
    private var quietThroughput = 0.0
    /// When the reloads began, and the commands done by then.
    private var mark = (time: ContinuousClock.now, submitted: UInt64(0))

    /// Opens the handles, learns what each command returns under either policy, and starts
    /// the threads with the gate under variant 0.
    func start() {
        let f = PolicyFixture.shared
        let (gate, handles) = f.gateWithTenantHandles()
        reloader = Reloader(gate)
        threads = zip(PolicyFixture.submitters, handles).map { Submitter(gate: gate, handle: $1, tenant: $0) }
        for variant in [1, 0] {
            gate.reload(f.policies[variant])
            for s in threads { s.learn(variant: variant) }
        }
        require(threads.allSatisfy { s in s.commands.contains { $0.expected.0 != $0.expected.1 } },
                "the two policies give the same verdicts: a reload would go unnoticed")
        let started = ContinuousClock.now
        for s in threads { s.start() }
        usleep(1_000_000)
        mark = (ContinuousClock.now, submitted())
        quietThroughput = Double(mark.submitted) / ((mark.time - started) / .milliseconds(1))
    }

    /// Commands completed by all threads so far (published every 256 per thread).
    func submitted() -> UInt64 {
        threads.reduce(0) { $0 + $1.published.load(ordering: .relaxed) }
    }

    /// Stops and joins the threads; stops the process if any saw an outcome neither policy
    /// gives, or never saw a verdict that only one of them gives. Prints the submitters'
    /// throughput while the reloads ran, against before.
    func stopAndCheck() {
        let end = (time: ContinuousClock.now, submitted: submitted())
        for s in threads { s.stop.store(true, ordering: .relaxed) }
        for s in threads { s.join() }
        for s in threads {
            for (c, command) in s.commands.enumerated() {
                require(s.unexpected[c] == 0,
                        "tenant-\(s.tenant) \(command.name): \(s.unexpected[c]) outcomes neither policy gives (last \(s.lastUnexpected[c]), expected \(command.expected))")
                require(command.expected.0 == command.expected.1 || (s.seen[c].0 > 0 && s.seen[c].1 > 0),
                        "tenant-\(s.tenant) \(command.name): saw \(s.seen[c]) of the two policies' verdicts \(command.expected): no reload was noticed")
            }
        }
        let throughput = Double(end.submitted - mark.submitted) / ((end.time - mark.time) / .milliseconds(1))
        print("8 submitters: \(Int(throughput)) commands/ms during \(reloader.reloads) reloads, \(Int(quietThroughput)) before "
              + "(\(Int((throughput / quietThroughput * 100).rounded()))%); every outcome one the two policies give")
        threads = []
        reloader = nil
    }
}

/// One submitting thread: its commands (`nvme_passthru_cmd` structs it owns), the outcome
/// each gets under variant 0 and 1, and what it saw.
final class Submitter: @unchecked Sendable {
    struct Command {
        let name: String
        let request: UInt
        let argument: UnsafeMutableRawPointer
        /// The outcome (value, or -errno) under variant 0 and under variant 1.
        var expected: (Int32, Int32) = (0, 0)
    }

    let gate: Gate
    let handle: Int32
    let tenant: Int
    private(set) var commands: [Command] = []
    let stop = Atomic<Bool>(false)
    let published = Atomic<UInt64>(0)
    /// Per command, after `join`: outcomes equal to variant 0's and 1's verdicts, and others.
    private(set) var seen: [(Int, Int)] = []
    private(set) var unexpected: [Int] = []
    private(set) var lastUnexpected: [Int32] = []
    private let data: UnsafeMutableRawPointer
    private var thread = pthread_t()

    /// The mix for tenant `tenant` (owning `rangeStart(tenant)` and on, 2048 blocks): reads
    /// and writes inside its range, a read of another tenant's range, Flush, Write Zeroes, a
    /// SMART log read (refused: Linux's rules), a vendor command. No Identify: the loopback
    /// controller builds its data in a new buffer, an allocation per command that the
    /// process-wide allocation count of the benchmark would add.
    init(gate: Gate, handle: Int32, tenant: Int) {
        self.gate = gate; self.handle = handle; self.tenant = tenant
        data = .allocate(byteCount: 4096, alignment: 4096)
        let start = TenantPolicyText.rangeStart(tenant)
        let io = IoctlRequest.ioCommand.rawValue, admin = IoctlRequest.adminCommand.rawValue
        func add(_ name: String, _ request: UInt, opcode: UInt8, cdw10: UInt32 = 0, cdw12: UInt32 = 0, length: UInt32 = 0,
                 nsid: UInt32 = 1) {
            commands.append(Command(name: name, request: request,
                                    argument: Self.passthru(opcode: opcode, nsid: nsid, cdw10: cdw10, cdw12: cdw12,
                                                            data: data, length: length)))
        }
        for k: UInt32 in 0..<3 { add("Read +\(k * 64)", io, opcode: 0x02, cdw10: UInt32(start) + k * 64, cdw12: 7, length: 4096) }
        add("Write", io, opcode: 0x01, cdw10: UInt32(start) + 8, cdw12: 7, length: 4096)
        add("Read of another tenant's range", io, opcode: 0x02, cdw10: UInt32(start + TenantPolicyText.blocksPerRange), length: 512)
        add("Flush", io, opcode: 0x00)
        add("Write Zeroes", io, opcode: 0x08, cdw10: UInt32(start) + 16, cdw12: 7)
        add("Get Log Page SMART", admin, opcode: 0x02, cdw10: 0x02 | (127 << 16), length: 512, nsid: 0xFFFF_FFFF)
        add("vendor-specific C1h", io, opcode: 0xC1)
        seen = Array(repeating: (0, 0), count: commands.count)
        unexpected = Array(repeating: 0, count: commands.count)
        lastUnexpected = Array(repeating: 0, count: commands.count)
    }

    deinit {
        for c in commands { c.argument.deallocate() }
        data.deallocate()
    }

    /// An `nvme_passthru_cmd` (72 bytes, linux/nvme_ioctl.h) for one command.
    static func passthru(opcode: UInt8, nsid: UInt32, cdw10: UInt32, cdw12: UInt32, data: UnsafeMutableRawPointer,
                         length: UInt32) -> UnsafeMutableRawPointer {
        let p = UnsafeMutableRawPointer.allocate(byteCount: PassthruCommand.size32, alignment: 8)
        p.initializeMemory(as: UInt8.self, repeating: 0, count: PassthruCommand.size32)
        p.storeBytes(of: opcode, toByteOffset: 0, as: UInt8.self)
        p.storeBytes(of: nsid.littleEndian, toByteOffset: 4, as: UInt32.self)
        if length > 0 { p.storeBytes(of: UInt64(UInt(bitPattern: data)).littleEndian, toByteOffset: 24, as: UInt64.self) }
        p.storeBytes(of: length.littleEndian, toByteOffset: 36, as: UInt32.self)
        p.storeBytes(of: cdw10.littleEndian, toByteOffset: 40, as: UInt32.self)
        p.storeBytes(of: cdw12.littleEndian, toByteOffset: 48, as: UInt32.self)
        return p
    }

    /// `command` through the gate: the value returned, or -errno.
    func send(_ command: Command) -> Int32 {
        switch gate.ioctl(handle, request: command.request, argument: command.argument) {
        case .returned(let value): value
        case .failed(let errno): -errno
        }
    }

    /// Records what every command returns under the policy in force, as variant `variant`'s.
    func learn(variant: Int) {
        for c in commands.indices {
            let outcome = send(commands[c])
            if variant == 0 { commands[c].expected.0 = outcome } else { commands[c].expected.1 = outcome }
        }
    }

    func start() {
        let context = Unmanaged.passRetained(self).toOpaque()
        let created = pthread_create(&thread, nil, { context in
            Unmanaged<Submitter>.fromOpaque(context!).takeRetainedValue().run()
            return nil
        }, context)
        require(created == 0, "pthread_create: \(created)")
    }

    func join() { pthread_join(thread, nil) }

    /// The thread: the mix in a loop until `stop`; tallies kept in locals, published at the end.
    private func run() {
        let commands = self.commands
        var seen = self.seen, unexpected = self.unexpected, last = self.lastUnexpected
        var done: UInt64 = 0
        var c = 0
        while true {
            let outcome = send(commands[c])
            let expected = commands[c].expected
            if outcome == expected.0 { seen[c].0 += 1 }
            else if outcome == expected.1 { seen[c].1 += 1 }
            else { unexpected[c] += 1; last[c] = outcome }
            c = c + 1 == commands.count ? 0 : c + 1
            done &+= 1
            if done & 255 == 0 {
                published.store(done, ordering: .relaxed)
                if stop.load(ordering: .relaxed) { break }
            }
        }
        self.seen = seen; self.unexpected = unexpected; self.lastUnexpected = last
    }
}

/// Stops the process with `message` unless `condition` holds (a failed `precondition` prints
/// no message in a release build).
func require(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError(message()) }
}
