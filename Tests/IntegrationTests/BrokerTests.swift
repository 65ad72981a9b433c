import Foundation
import Testing

/// The C ABI's "unix:PATH" target against the real broker: Tests/CABI/broker_test.c, run as
/// an unprivileged user against `nvmegate serve --policy Tests/Broker/broker-test.toml
/// --target emulated`. It checks Write/Read round trips, refusals leaving buffers and results
/// untouched, 32- and 64-bit result write-back, EBADF, check_batch across several frames, 4
/// threads on one connection, the C client against a fake broker breaking the wire format one
/// way per connection, and, once this test kills the broker, EIO instead of a crash.
@Suite("Broker from C: the unix: target")
struct BrokerTests {
    @Test("broker_test.c against nvmegate serve, as an unprivileged user, then with the broker killed")
    func cProgram() throws {
        let broker = try BrokerProcess(policy: Toolchain.packageRoot.appendingPathComponent("Tests/Broker/broker-test.toml").path)
        let program = try CProgram("broker_test.c")
        try Unprivileged.letEveryoneReach(program.path)
        let scratch = try CLIScratchDirectory()
        let errors = scratch.path("broker_test.stderr")
        let (executable, arguments) = Unprivileged.command(program.path, [broker.socket])
        let child = try ChildProcess(executable, arguments, stderr: errors)
        var lines: [String] = []
        while let line = child.readLine(timeoutSeconds: 120) {
            lines.append(line)
            if line == "kill the broker now" { break }
        }
        let stderr = { (try? String(contentsOfFile: errors, encoding: .utf8)) ?? "" }
        try #require(lines.last == "kill the broker now", "broker_test: \(lines) \(stderr()) broker: \(broker.stderr)")
        #expect(lines.dropLast().last?.hasSuffix(" passed, 0 failed") == true, "\(lines) \(stderr())")

        #expect(broker.kill() == SIGKILL, "the broker was running until killed")
        while let line = child.readLine(timeoutSeconds: 60) { lines.append(line) }
        #expect(child.kill() == 0, "broker_test ended by itself, not by a signal: \(stderr())")
        #expect(lines.last?.hasSuffix(" passed, 0 failed") == true, "\(lines) \(stderr())")
    }
}

/// `nvmegate serve` on the emulated target (or `target`) with `policy`, its socket in a scratch
/// directory that anyone may reach (--socket-mode 0666), for the length of a test: killed when
/// the value goes.
final class BrokerProcess {
    let socket: String
    /// The audit trail (--audit): one JSON object a line per refusal.
    let audit: String
    private let scratch: CLIScratchDirectory
    private let child: ChildProcess

    /// Starts the broker and waits for its "listening" line. `arguments` are added to `serve`'s
    /// (limits, say), and `environment` to the broker's environment.
    init(policy: String, target: String = "emulated", arguments: [String] = [], environment: [String: String] = [:]) throws {
        scratch = try CLIScratchDirectory()
        try Unprivileged.letEveryoneReach(scratch.path("broker.sock"))
        socket = scratch.path("broker.sock")
        audit = scratch.path("audit.jsonl")
        let executable = try #require(NVMeGateCLI.executable, "the nvmegate binary beside the test bundle")
        child = try ChildProcess(executable.path, [
            "serve", "--policy", policy, "--target", target, "--socket", socket, "--socket-mode", "0666", "--audit", audit,
        ] + arguments, stderr: scratch.path("serve.stderr"), environment: environment)
        let line = child.readLine(timeoutSeconds: 60)
        try #require(line?.contains("listening on \(socket)") == true, "nvmegate serve: \(line ?? "no line") \(stderr)")
    }

    /// What the broker wrote on standard error (its log).
    var stderr: String { (try? String(contentsOfFile: scratch.path("serve.stderr"), encoding: .utf8)) ?? "" }

    /// The audit trail's lines so far.
    var auditLines: [String] {
        ((try? String(contentsOfFile: audit, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    /// The broker's counters (`nvmegate metrics`, run as this process: root or the broker's user).
    func metrics() throws -> String {
        let r = try NVMeGateCLI.run(["metrics", "--socket", socket])
        try #require(r.status == 0, "nvmegate metrics: \(r.stderr)")
        return r.stdout
    }

    /// Kills the broker (SIGKILL, as a crash would): the signal that ended it.
    func kill() -> Int32 { child.kill() }

    /// The broker's process ID (for SIGHUP).
    var pid: Int32 { child.pid }

    /// Stops the broker as a service manager would (SIGTERM) and waits for it: its exit status,
    /// nil when it did not exit by itself within 30 s.
    func terminate() -> Int32? { child.terminate(timeoutSeconds: 30) }
}

/// Runs programs as an unprivileged user: nobody (uid and gid 65534, no groups) through
/// setpriv when this process is root, as CI is; as this process's own user otherwise.
enum Unprivileged {
    static let nobody = "65534"

    /// The executable and arguments that run `executable arguments…` unprivileged.
    static func command(_ executable: String, _ arguments: [String]) -> (String, [String]) {
        guard getuid() == 0 else { return (executable, arguments) }
        return ("/usr/bin/setpriv", ["--reuid=\(nobody)", "--regid=\(nobody)", "--clear-groups", executable] + arguments)
    }

    /// Opens the folder holding `path` to everyone (0755), so an unprivileged program can run
    /// a file in it or connect to a socket there (a scratch folder follows the umask).
    static func letEveryoneReach(_ path: String) throws {
        let folder = (path as NSString).deletingLastPathComponent
        try #require(chmod(folder, 0o755) == 0, "chmod 755 \(folder): \(String(cString: strerror(errno)))")
    }
}
