import Foundation
import Testing

/// A C program from Tests/CABI, compiled with gcc against nvmegate.h and the built
/// libNVMeGateABI.so as a C user builds one: -std=c11 -Wall -Wextra -Werror.
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
        let compile = try Toolchain.run("/usr/bin/gcc", [
            "-std=c11", "-Wall", "-Wextra", "-Werror", "-D_GNU_SOURCE", "-pthread",
            "-I", "\(root)/Sources/CNVMeGate/include", "\(root)/Tests/CABI/\(source)", "-o", path,
            "-L", lib, "-lNVMeGateABI", "-Wl,-rpath,\(lib)", "-Wl,-rpath,\(Toolchain.swiftRuntimeDirectory)",
        ])
        try #require(compile.status == 0, "gcc \(source): \(compile.stderr)")
    }

    /// Runs the program to completion: exit status, standard output as text, standard error.
    func run(_ arguments: [String] = []) throws -> (status: Int32, stdout: String, stderr: String) {
        let r = try Toolchain.run(path, arguments)
        return (r.status, String(decoding: r.stdout, as: UTF8.self), r.stderr)
    }
}
