import Foundation
import Testing

/// A C program from Tests/CABI, compiled with gcc against nvmegate.h and the built
/// libNVMeGateABI.so as a C user builds one: -std=c11 -Wall -Wextra -Werror. Under
/// `swift test --sanitize=…` the toolchain's clang compiles it with the same sanitizer, so
/// the program carries the runtime the instrumented library calls into.
struct CProgram {
    let path: String
    /// Holds the executable; removed with the value.
    private let scratch: CLIScratchDirectory

    /// Compiles `source` (a file name in Tests/CABI); throws, with gcc's messages recorded,
    /// when it does not compile cleanly.
    init(_ source: String) throws {
        let root = Toolchain.packageRoot.path
        let lib = Toolchain.productsDirectory.path
        scratch = try CLIScratchDirectory()
        path = scratch.path((source as NSString).deletingPathExtension)
        let compiler: String, sanitize: [String]
        if let sanitizer = Toolchain.sanitizer {
            compiler = URL(fileURLWithPath: Toolchain.swiftRuntimeDirectory)
                .appendingPathComponent("../../../bin/clang").standardized.path
            sanitize = ["-fsanitize=\(sanitizer)", "-g"]
                // The toolchain's ThreadSanitizer runtime intercepts libdispatch, Swift's own.
                + (sanitizer == "thread" ? ["-L", Toolchain.swiftRuntimeDirectory, "-ldispatch", "-lBlocksRuntime"] : [])
        } else {
            (compiler, sanitize) = ("/usr/bin/gcc", [])
        }
        let compile = try Toolchain.run(compiler, sanitize + [
            "-std=c11", "-Wall", "-Wextra", "-Werror", "-D_GNU_SOURCE", "-pthread",
            "-I", "\(root)/Sources/CNVMeGate/include", "\(root)/Tests/CABI/\(source)", "-o", path,
            "-L", lib, "-lNVMeGateABI", "-Wl,-rpath,\(lib)", "-Wl,-rpath,\(Toolchain.swiftRuntimeDirectory)",
        ])
        try #require(compile.status == 0, "\(compiler) \(source): \(compile.stderr)")
    }

    /// Runs the program to completion: exit status, standard output as text, standard error.
    func run(_ arguments: [String] = []) throws -> (status: Int32, stdout: String, stderr: String) {
        let r = try Toolchain.run(path, arguments)
        return (r.status, String(decoding: r.stdout, as: UTF8.self), r.stderr)
    }
}
