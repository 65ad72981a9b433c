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

    /// Runs `executable` with `arguments`, feeding `input`; returns status, stdout, stderr.
    @discardableResult
    static func run(_ executable: String, _ arguments: [String], input: Data? = nil,
                    environment: [String: String]? = nil) throws -> (status: Int32, stdout: String, stderr: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        let out = Pipe(), err = Pipe(), inp = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = inp
        try process.run()
        if let input { inp.fileHandleForWriting.write(input) }
        try inp.fileHandleForWriting.close()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self))
    }
}
