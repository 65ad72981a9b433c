import Foundation

/// Where the package, its build products and the Swift runtime are, for tests that run
/// the built binaries or compile C programs against the built library.
enum Toolchain {
    /// The package root (two folders above this file's folder).
    static let packageRoot: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    /// The build products folder: where this test executable lives (.build/<config>).
    static let productsDirectory: URL = {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var url = URL(fileURLWithPath: exe).deletingLastPathComponent()
        while url.path != "/" && !FileManager.default.fileExists(atPath: url.appendingPathComponent("nvmegate").path) {
            url = url.deletingLastPathComponent()
        }
        return url
    }()

    /// The folder holding libswiftCore.so that this process loaded.
    static let swiftRuntimeDirectory: String = {
        let maps = (try? String(contentsOfFile: "/proc/self/maps", encoding: .utf8)) ?? ""
        for line in maps.split(separator: "\n") {
            if let range = line.range(of: "/"), line.hasSuffix("libswiftCore.so") {
                return URL(fileURLWithPath: String(line[range.lowerBound...])).deletingLastPathComponent().path
            }
        }
        return "/opt/swift/usr/lib/swift/linux"
    }()

    /// The sanitizer this test process was built with ("address" or "thread", from
    /// `swift test --sanitize=…`), found by its runtime's entry point; nil for none. The
    /// library built beside it is instrumented the same way, so C programs linking it must be too.
    static let sanitizer: String? = {
        guard let process = dlopen(nil, RTLD_NOW) else { return nil }
        defer { dlclose(process) }
        if dlsym(process, "__asan_init") != nil { return "address" }
        if dlsym(process, "__tsan_init") != nil { return "thread" }
        return nil
    }()

    /// Runs `executable` with `arguments`, `input` on standard input; output goes through
    /// files, so neither side can block on a full pipe.
    static func run(_ executable: String, _ arguments: [String], input: [UInt8] = [],
                    environment: [String: String] = [:]) throws
        -> (status: Int32, stdout: [UInt8], stderr: String) {
        let files = try CLIScratchDirectory()
        let inputFile = try files.write("stdin", input)
        let stdoutFile = try files.write("stdout", [])
        let stderrFile = try files.write("stderr", [])
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        process.standardInput = try FileHandle(forReadingFrom: URL(fileURLWithPath: inputFile))
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: stdoutFile))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: stderrFile))
        try process.run()
        process.waitUntilExit()
        return (process.terminationStatus, Array(try Data(contentsOf: URL(fileURLWithPath: stdoutFile))),
                try String(contentsOfFile: stderrFile, encoding: .utf8))
    }
}
