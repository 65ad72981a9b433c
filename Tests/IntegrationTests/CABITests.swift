import Foundation
import Testing

/// The C ABI from a C program: compile Tests/CABI/abi_test.c with gcc against nvmegate.h and
/// the built libNVMeGateABI.so, run it, and require every check to pass.
@Suite("C ABI from C")
struct CABITests {
    @Test("abi_test.c compiles against nvmegate.h, links libNVMeGateABI.so and passes")
    func cProgram() throws {
        let root = Toolchain.packageRoot.path
        let lib = Toolchain.productsDirectory.path
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("nvmegate-abi-test-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: output) }
        let compile = try Toolchain.run("/usr/bin/gcc", [
            "-std=c11", "-Wall", "-Wextra", "-Werror", "-D_GNU_SOURCE", "-pthread",
            "-I", "\(root)/Sources/CNVMeGate/include", "\(root)/Tests/CABI/abi_test.c", "-o", output,
            "-L", lib, "-lNVMeGateABI", "-Wl,-rpath,\(lib)", "-Wl,-rpath,\(Toolchain.swiftRuntimeDirectory)",
        ])
        #expect(compile.status == 0, "gcc: \(compile.stderr)")
        guard compile.status == 0 else { return }
        let run = try Toolchain.run(output, [])
        let stdout = String(decoding: run.stdout, as: UTF8.self)
        #expect(run.status == 0, "abi_test: \(stdout) \(run.stderr)")
        #expect(stdout.contains(" passed, 0 failed"), "\(stdout)")
    }
}
