import Foundation
import Testing

/// "emulated:DIR" across real processes, through the C ABI (Tests/CABI/durability_test.c):
/// a process killed with SIGKILL right after a completed Flush loses nothing, and while one
/// process holds a directory a second is refused with EBUSY and a message naming the holder.
///
/// What this proves: the Flush, each FUA write and Format NVM issue fdatasync on the
/// namespace file before they complete (the C program counts the calls by interposing
/// fdatasync and fsync), plain writes do not, the state file is fsynced at the Flush and
/// when a FUA write rewrites an uncorrectable block, and everything flushed or written with
/// FUA is read back, byte for byte, by the next process. What it cannot prove: SIGKILL leaves the page cache in place,
/// so the read-back alone would pass without any sync, and nothing here cuts the power
/// under the kernel, file system or disk.
@Suite("C ABI across processes")
struct CABIProcessTests {
    @Test("killed after a Flush: nothing lost; a second process is refused while the first holds DIR")
    func killAfterFlush() throws {
        let program = try CProgram("durability_test.c")
        let scratch = try CLIScratchDirectory()
        let dir = scratch.path("emulated")
        let writer = try ChildProcess(program.path, ["write", dir], stderr: scratch.path("writer.stderr"))
        let line = writer.readLine(timeoutSeconds: 30)
        let writerErrors = { (try? String(contentsOfFile: scratch.path("writer.stderr"), encoding: .utf8)) ?? "" }
        #expect(line?.hasPrefix("flushed: ") == true && line?.hasSuffix(" 0 failed") == true,
                "writer: \(line ?? "no line") \(writerErrors())")

        let second = try program.run(["second", dir, "\(writer.pid)"])
        #expect(second.status == 0 && second.stdout.contains(" passed, 0 failed"), "second: \(second.stdout) \(second.stderr)")

        #expect(writer.kill() == SIGKILL, "the writer was still waiting when killed")
        let verify = try program.run(["verify", dir])
        #expect(verify.status == 0 && verify.stdout.contains(" passed, 0 failed"), "verify: \(verify.stdout) \(verify.stderr)")
    }
}

/// A child process whose standard output is read line by line; killed with SIGKILL at the
/// latest when the value goes, so a failing test leaves nothing running.
final class ChildProcess {
    private let process = Process()
    private let output = Pipe()
    private var pending: [UInt8] = []

    var pid: Int32 { process.processIdentifier }

    /// Starts `executable arguments…`, its standard error into the file `stderr`, with
    /// `environment` added to this process's environment.
    init(_ executable: String, _ arguments: [String], stderr: String, environment: [String: String] = [:]) throws {
        _ = FileManager.default.createFile(atPath: stderr, contents: nil)
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = output
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: stderr))
        try process.run()
    }

    deinit { _ = kill() }

    /// The next line of standard output without its newline; nil at end of output or when
    /// none arrives within the timeout.
    func readLine(timeoutSeconds: Int) -> String? {
        let fd = output.fileHandleForReading.fileDescriptor
        let deadline = Date().addingTimeInterval(TimeInterval(timeoutSeconds))
        while !pending.contains(10) {
            let left = Int32(max(0, deadline.timeIntervalSinceNow * 1000))
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard left > 0, poll(&poller, 1, left) == 1 else { return nil }
            var chunk = [UInt8](repeating: 0, count: 256)
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            guard n > 0 else { return nil }
            pending += chunk[0..<n]
        }
        let end = pending.firstIndex(of: 10)!
        defer { pending.removeSubrange(0...end) }
        return String(decoding: pending[0..<end], as: UTF8.self)
    }

    /// Sends SIGKILL if the child still runs and waits for it: the signal that ended it, or
    /// 0 when it had exited by itself.
    @discardableResult
    func kill() -> Int32 {
        if process.isRunning { Glibc.kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        return process.terminationReason == .uncaughtSignal ? process.terminationStatus : 0
    }

    /// Sends SIGTERM and waits up to `timeoutSeconds` for the child to end: its exit status
    /// when it exited, nil when a signal ended it or it had to be killed (SIGKILL) at the end
    /// of the wait.
    func terminate(timeoutSeconds: Double) -> Int32? {
        if process.isRunning { Glibc.kill(process.processIdentifier, SIGTERM) }
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        guard !process.isRunning else {
            kill()
            return nil
        }
        process.waitUntilExit()
        return process.terminationReason == .exit ? process.terminationStatus : nil
    }
}
