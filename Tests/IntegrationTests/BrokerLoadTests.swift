import Foundation
import Testing

/// The broker under load and faults (issue 9, "Measure and prove"), each test against a fresh
/// `nvmegate serve` under Tests/Broker/load-test.toml, driven by two C programs through the C
/// ABI's "unix:PATH" target (Tests/CABI/broker_clients.h has the callers, the command mix and
/// the checks they share):
///
/// - broker_load_test.c `load`: 32 client processes, each dropped to a uid of its own (four
///   LBA-range tenants, a monitoring tenant, a caller matching none), 10,000 mixed commands each;
///   every ret, errno and result must be what an in-process gate gives the same command for the
///   same uid, every Read of a client's own blocks what it last wrote there, nothing lost; it
///   prints throughput and latency percentiles. `hop`: one client, the same commands through the
///   broker and through an in-process gate, alternating: the socket hop's cost per command.
/// - broker_fault_test.c `kill`: clients killed with SIGKILL mid-request while 4 others verify
///   every reply; then no connection or handle is left behind. `reload`: SIGHUP with the policy
///   file rewritten between two versions under load: every verdict one of the two.
///   `write`/`verify`: a file-backed broker stopped with SIGTERM, then killed with SIGKILL,
///   keeps what was flushed; Tests/Broker/sync_log.c, preloaded into the broker, shows each
///   Flush reached fdatasync on the namespace's file.
///
/// The clients drop privileges, so the tests need root (as CI runs them). Under a sanitizer
/// build (`swift test --sanitize=…`: the load ran at 7,500 commands/s under AddressSanitizer
/// and 1,100 under ThreadSanitizer, against 15,000 to 22,000 in a plain debug build) the load
/// test sends 500 commands a client instead of 10,000, the hop and each reload client 1,000,
/// and the restart test does not preload sync_log.c. The figures lines go to standard output,
/// for CI's log.
@Suite("Broker under load and faults", .serialized,
       .enabled(if: getuid() == 0, "the clients drop to uids of their own, which needs root (CI runs as root)"))
struct BrokerLoadTests {
    static func path(_ relative: String) -> String { Toolchain.packageRoot.appendingPathComponent(relative).path }
    static var policy: String { path("Tests/Broker/load-test.toml") }
    static var readOnlyPolicy: String { path("Tests/Broker/load-test-read-only.toml") }

    /// Whether this test bundle (and so the broker and the C programs) runs under
    /// AddressSanitizer or ThreadSanitizer.
    static var sanitized: Bool { Toolchain.sanitizer != nil }

    /// Runs `program arguments…` to completion, prints its lines that start with one of
    /// `figures` and how long it took, and returns its outcome.
    static func run(_ program: CProgram, _ arguments: [String], figures: [String]) throws
        -> (status: Int32, stdout: String, stderr: String, lines: [String]) {
        let started = ContinuousClock.now
        let r = try program.run(arguments)
        let took = ContinuousClock.now - started
        let lines = r.stdout.split(separator: "\n").map(String.init).filter { line in figures.contains { line.hasPrefix($0) } }
        for line in lines { print(line) }
        let seconds = Double(took.components.seconds) + Double(took.components.attoseconds) / 1e18
        print("\((program.path as NSString).lastPathComponent) \(arguments.first ?? ""): \(String(format: "%.1f", seconds)) s")
        return (r.status, r.stdout, r.stderr, lines)
    }

    @Test("32 clients x 10,000 mixed commands: no reply lost or misrouted, every verdict the in-process gate's")
    func load() throws {
        let broker = try BrokerProcess(policy: Self.policy)
        let program = try CProgram("broker_load_test.c")
        let commands = Self.sanitized ? 500 : 10_000
        let r = try Self.run(program, ["load", broker.socket, Self.policy, "32", "\(commands)", "240"], figures: ["broker-load:"])
        #expect(r.status == 0, "broker_load_test load: \(r.stdout) \(r.stderr) broker: \(broker.stderr)")
        #expect(r.lines.first?.hasPrefix("broker-load: clients 32, commands \(32 * commands),") == true, "\(r.stdout)")
        #expect(r.lines.first?.hasSuffix("mismatches 0, lost 0") == true, "\(r.stdout) \(r.stderr)")
        #expect(r.lines.dropFirst().first?.hasPrefix("broker-load: 32 of 32 clients set up and reported") == true, "\(r.stdout)")
    }

    @Test("1 client: the socket hop's cost next to the in-process C ABI, same commands")
    func hop() throws {
        let broker = try BrokerProcess(policy: Self.policy)
        let program = try CProgram("broker_load_test.c")
        let r = try Self.run(program, ["hop", broker.socket, Self.policy, Self.sanitized ? "1000" : "10000", "240"],
                             figures: ["broker-hop:"])
        #expect(r.status == 0, "broker_load_test hop: \(r.stdout) \(r.stderr) broker: \(broker.stderr)")
        #expect(r.lines.first?.hasSuffix("mismatches 0, lost 0") == true, "\(r.stdout) \(r.stderr)")
    }

    @Test("clients SIGKILLed mid-request while 4 others verify every reply; no connection or handle left behind")
    func killedClients() throws {
        // A gate of 16 connections x 4 handles: what one killed client left behind would make
        // the test's filling of it afterwards fail.
        let broker = try BrokerProcess(policy: Self.policy,
                                       arguments: ["--max-connections", "16", "--max-handles-per-connection", "4"])
        let program = try CProgram("broker_fault_test.c")
        let r = try Self.run(program, ["kill", broker.socket, Self.policy, "60", "16", "4"], figures: ["broker-kill:"])
        #expect(r.status == 0 && r.stdout.contains(" passed, 0 failed"), "broker_fault_test kill: \(r.stdout) \(r.stderr) broker: \(broker.stderr)")
    }

    @Test("SIGHUP under load, the policy file rewritten between A and B: every verdict A's or B's, both seen, nothing lost")
    func reloadUnderLoad() throws {
        let scratch = try CLIScratchDirectory()
        let policyFile = try scratch.write("policy.toml", Array(try Data(contentsOf: URL(fileURLWithPath: Self.policy))))
        let broker = try BrokerProcess(policy: policyFile)
        let program = try CProgram("broker_fault_test.c")
        let r = try Self.run(program, ["reload", broker.socket, policyFile, "\(broker.pid)", Self.policy, Self.readOnlyPolicy,
                                       "8", Self.sanitized ? "1000" : "3000"], figures: ["broker-reload:"])
        #expect(r.status == 0 && r.stdout.contains(" passed, 0 failed"), "broker_fault_test reload: \(r.stdout) \(r.stderr) broker: \(broker.stderr)")
    }

    @Test("a file-backed broker stopped (SIGTERM), then killed (SIGKILL): what was flushed before is there after")
    func restart() throws {
        let scratch = try CLIScratchDirectory()
        let program = try CProgram("broker_fault_test.c")
        let directory = scratch.path("emulated")
        let target = "emulated:\(directory)"
        // Each fsync and fdatasync the broker makes, written down (not under a sanitizer, whose
        // runtime wants to come first in the process).
        var environment: [String: String] = [:]
        var syncLog = "-"
        if !Self.sanitized {
            let library = scratch.path("sync_log.so")
            let compile = try Toolchain.run("/usr/bin/gcc", ["-std=c11", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC",
                                                             Self.path("Tests/Broker/sync_log.c"), "-o", library])
            try #require(compile.status == 0, "gcc sync_log.c: \(compile.stderr)")
            syncLog = scratch.path("sync.log")
            environment = ["LD_PRELOAD": library, "NVMEGATE_SYNC_LOG": syncLog]
        }
        func step(_ broker: BrokerProcess, _ arguments: [String], expecting prefix: String) throws {
            let r = try Self.run(program, [arguments[0], broker.socket] + arguments.dropFirst(), figures: [prefix])
            #expect(r.status == 0 && r.stdout.contains(" passed, 0 failed") && r.lines.count == 1,
                    "broker_fault_test \(arguments): \(r.stdout) \(r.stderr) broker: \(broker.stderr)")
        }

        let first = try BrokerProcess(policy: Self.policy, target: target, environment: environment)
        try step(first, ["write", "1", syncLog], expecting: "written:")
        #expect(first.terminate() == 0, "SIGTERM: the broker stops and exits 0: \(first.stderr)")

        let second = try BrokerProcess(policy: Self.policy, target: target, environment: environment)
        try step(second, ["verify", "1"], expecting: "verified:")
        try step(second, ["write", "2", syncLog], expecting: "written:")
        #expect(second.kill() == SIGKILL, "the broker was running until killed")

        let third = try BrokerProcess(policy: Self.policy, target: target, environment: environment)
        try step(third, ["verify", "2"], expecting: "verified:")
        if syncLog != "-" {
            let log = (try? String(contentsOfFile: syncLog, encoding: .utf8)) ?? ""
            print("sync log: \(log.split(separator: "\n").filter { $0.hasSuffix(" ns-1.img") }.count) fdatasync/fsync of ns-1.img")
        }
    }
}
