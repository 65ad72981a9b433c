import Foundation
import Testing

/// The built `nvmegate` binary, run as a user would.
enum NVMeGateCLI {
    struct Result {
        var status: Int32
        /// Standard output, byte for byte (for `-b` raw binary output).
        var stdoutBytes: [UInt8]
        var stderr: String
        /// Standard output as text.
        var stdout: String { String(decoding: stdoutBytes, as: UTF8.self) }
    }

    /// The binary: SwiftPM links it into the same directory as the test bundle
    /// (`.build/<triple>/debug`).
    static let executable: URL? = {
        let bundles = [URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath(),
                       URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath(),
                       Bundle.main.bundleURL]
        return bundles.map { $0.deletingLastPathComponent().appendingPathComponent("nvmegate") }
            .first { FileManager.default.isExecutableFile(atPath: $0.path) }
    }()

    /// Runs `nvmegate arguments…` with `input` on standard input and `environment` added to
    /// this process's environment.
    static func run(_ arguments: [String], input: String = "", environment: [String: String] = [:]) throws -> Result {
        try run(arguments, inputBytes: Array(input.utf8), environment: environment)
    }

    static func run(_ arguments: [String], inputBytes: [UInt8], environment: [String: String] = [:]) throws -> Result {
        let executable = try #require(executable, "the nvmegate binary beside the test bundle")
        let r = try Toolchain.run(executable.path, arguments, input: inputBytes, environment: environment)
        return Result(status: r.status, stdoutBytes: r.stdout, stderr: r.stderr)
    }
}

/// A temporary directory removed when the value goes.
final class CLIScratchDirectory {
    let directory: URL

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("nvmegate-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: directory) }

    /// Writes `bytes` to `name` in the directory; returns its path.
    func write(_ name: String, _ bytes: [UInt8]) throws -> String {
        let url = directory.appendingPathComponent(name)
        try Data(bytes).write(to: url)
        return url.path
    }

    /// The path of `name` in the directory (not created).
    func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    /// The bytes of `name` in the directory.
    func read(_ name: String) throws -> [UInt8] {
        Array(try Data(contentsOf: directory.appendingPathComponent(name)))
    }
}
