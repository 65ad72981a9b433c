import Foundation
import Testing

/// The C ABI from C programs: each compiles against nvmegate.h, links the built
/// libNVMeGateABI.so, runs, and must report every check passed.
@Suite("C ABI from C")
struct CABITests {
    @Test("abi_test.c compiles against nvmegate.h, links libNVMeGateABI.so and passes")
    func cProgram() throws {
        let run = try CProgram("abi_test.c").run()
        #expect(run.status == 0, "abi_test: \(run.stdout) \(run.stderr)")
        #expect(run.stdout.contains(" passed, 0 failed"), "\(run.stdout)")
    }

    @Test("abi_emulated_test.c: every command family on the emulated controller, 72- and 80-byte structs, and the policy")
    func emulatedController() throws {
        let scratch = try CLIScratchDirectory()
        let run = try CProgram("abi_emulated_test.c").run([scratch.directory.path])
        #expect(run.status == 0, "abi_emulated_test: \(run.stdout) \(run.stderr)")
        #expect(run.stdout.contains(" passed, 0 failed"), "\(run.stdout)")
    }

    @Test("stress_test.c: 8 threads submit while the policy is reloaded; every outcome equals a one-at-a-time replay under the policy in force")
    func stress() throws {
        let scratch = try CLIScratchDirectory()
        let run = try CProgram("stress_test.c").run([scratch.directory.path])
        #expect(run.status == 0, "stress_test: \(run.stdout) \(run.stderr)")
        #expect(run.stdout.contains(" passed, 0 failed"), "\(run.stdout)")
    }

    @Test("abi_tenants_test.c: tenant policies on the emulated controller, range lists rewritten mid-command, nvmegate_reload racing 8 threads")
    func tenants() throws {
        let scratch = try CLIScratchDirectory()
        let run = try CProgram("abi_tenants_test.c").run([scratch.directory.path])
        #expect(run.status == 0, "abi_tenants_test: \(run.stdout) \(run.stderr)")
        #expect(run.stdout.contains(" passed, 0 failed"), "\(run.stdout)")
    }
}
