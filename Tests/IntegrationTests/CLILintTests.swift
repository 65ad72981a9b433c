import Foundation
import NVMeGate
import NVMeSpec
import Testing

/// `nvmegate policy lint`, run as the built binary: every shipped policy is clean, every
/// warning and error fires where it should, on its line, with its code.
@Suite("nvmegate policy lint (CLI)")
struct CLILintTests {
    static let policies = Toolchain.packageRoot.appendingPathComponent("Policies")

    static var shippedPolicies: [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: policies.path)) ?? []
        return names.filter { $0.hasSuffix(".toml") }.sorted()
    }

    /// The effects log fixture of the policy tests, with admin 0Dh marked NIC and Write
    /// reaching the controller scope: for the checks that need effects.
    static let richLog: CommandEffectsLog = {
        var log = CLIPolicyTests.effectsLog
        log[.admin, 0x0D] = CommandEffects(supported: true, namespaceInventoryChange: true)
        log[.io, 0x01] = CommandEffects(supported: true, logicalBlockContentChange: true, scope: .controller)
        return log
    }()

    @Test("every policy in Policies/ lints clean, with --strict: alone, with an effects log, against the emulated target")
    func shippedPoliciesAreClean() throws {
        let files = try CLIScratchDirectory()
        let log = try files.write("effects.log", CLIPolicyTests.effectsLog.bytes)
        let names = Self.shippedPolicies
        #expect(names.count >= 5)
        for name in names {
            let path = Self.policies.appendingPathComponent(name).path
            var runs = [["--strict", path], ["--strict", "--effects-log", log, path]]
            // tenants.toml is written for a controller with two namespaces; the emulated one has one.
            if name != "tenants.toml" { runs.append(["--strict", "--target", "emulated", path]) }
            for arguments in runs {
                let result = try NVMeGateCLI.run(["policy", "lint"] + arguments)
                #expect(result.status == 0, "\(arguments): \(result.stdout)\(result.stderr)")
                #expect(!result.stdout.contains("warning:") && !result.stdout.contains("error:"), "\(result.stdout)")
                #expect(result.stdout.split(separator: "\n").last?.hasPrefix("\(path): ok") == true, "\(result.stdout)")
            }
        }
    }

    @Test("lab.toml's deliberate grants are printed as accepted, each with its code")
    func labAccepts() throws {
        let path = Self.policies.appendingPathComponent("lab.toml").path
        let result = try NVMeGateCLI.run(["policy", "lint", "--strict", "--target", "emulated", path])
        #expect(result.status == 0)
        let accepted = result.stdout.split(separator: "\n").filter { $0.hasPrefix("accepted: \(path):") }
        for code in ["partitions-unconfined", "far-reaching-admin-command", "inventory-or-capability-change",
                     "log-page-side-effects", "vendor-not-in-effects-log", "io-effect-permitted",
                     "write-access-without-data", "write-access-without-lbcc"] {
            #expect(accepted.contains { $0.hasSuffix(" [\(code)]") }, "\(code)")
        }
        #expect(result.stdout.hasSuffix("\(path): ok (\(accepted.count) accepted)\n"))
    }

    /// (code, policy text, extra arguments: "LOG" is the rich effects log, line the finding points at, a fragment)
    static let cases: [(LintCode, String, [String], Int, String)] = [
        (.bypassCapability, "[privileges]\nbypass = [\"CAP_SYS_ADMIN\", \"CAP_SYS_RAWIO\"]\n[default]\n", [], 2,
         "[privileges] bypass includes CAP_SYS_RAWIO"),
        (.managementCapability, "[privileges]\nmanagement = [\"CAP_SYS_RAWIO\"]\n[default]\n", [], 2,
         "[privileges] management includes CAP_SYS_RAWIO"),
        (.linuxKnownEffectsOff, "[effects]\nlinux_known_effects = false\n[default]\n", [], 2,
         "[effects] linux_known_effects = false"),
        (.partitionsUnconfined, "[default]\npartitions = true\n", [], 2, "[default] partitions = true"),
        (.farReachingAdminCommand, "[default.admin]\ncommands = [\"Firmware Commit\"]\n", [], 2,
         "[default.admin] commands grants Firmware Commit (10h): it activates firmware"),
        (.ioEffectPermitted, "[default.io]\npermitted_effects = [\"NIC\"]\n", [], 2, "[default.io] permitted_effects includes NIC"),
        (.writeAccessWithoutData, "[default.io]\nwrite_access = [\"LBCC\"]\n", [], 2, "write_access lacks \"data-to-controller\""),
        (.writeAccessWithoutLBCC, "[default.io]\nwrite_access = [\"data-to-controller\"]\n", [], 2, "write_access lacks \"LBCC\""),
        (.logPageSideEffects, "[default.admin]\nlog_pages = [0x02, 0x07]\n", [], 2,
         "log_pages grants Telemetry Host-Initiated (07h) and no log_page_lsp limits LSP"),
        (.vendorNotInEffectsLog, "[default.io]\nvendor_commands = [0xC1, 0xC2, 0xC4]\n", ["--effects-log", "LOG"], 2,
         "[default.io] vendor_commands grants C1h-C2h, C4h, which the effects log does not mark supported"),
        (.cseAnyNamespace, tenant("namespaces = [1]\n[tenant.admin]\ncommands = [\"Format NVM\"]"), [], 9,
         "[[tenant]] name = \"t\": [tenant.admin] commands grants Format NVM (80h), whose effects say CSE=7"),
        (.scopeBeyondNamespace, tenant("rules = \"kernel\"\nnamespaces = [1]"), ["--effects-log", "LOG"], 4,
         "[[tenant]] name = \"t\": [tenant.io] commands grants Write (01h), whose effects reach the controller scope"),
        (.inventoryOrCapabilityChange, "[default.admin]\ncommands = [\"Namespace Management\"]\n", ["--effects-log", "LOG"], 2,
         "[default.admin] commands grants Namespace Management (0Dh), whose effects include NIC"),
        (.setFeaturesControllerScope, tenant("namespaces = [1]\n[tenant.admin]\ncommands = [\"Set Features\"]"), [], 9,
         "[[tenant]] name = \"t\": [tenant.admin] commands grants Set Features (09h): controller-scoped features"),
        (.defaultReachesTenantNamespace, "[default.io]\ncommands = \"supported\"\n[[tenant]]\nname = \"t\"\nuids = [7]\nnamespaces = [1]\n",
         [], 2, "[default.io] commands = \"supported\": callers that match no tenant may send I/O to any namespace"),
        (.grantNeverPasses, tenant("namespaces = [1]\n[tenant.admin]\ncommands = [\"Sanitize\"]"), [], 9,
         "commands grants Sanitize (84h), which reaches every namespace: always refused"),
        (.idsShadowed, tenant("namespaces = [1]") + "[[tenant]]\nname = \"u\"\nuids = [7, 8]\n", [], 9,
         "[[tenant]] name = \"u\": some of its callers are matched first by an earlier tenant and never get these rules: uid 7 (tenant \"t\")"),
        (.namespaceNotOnTarget, tenant("read_only_namespaces = [5]"), ["--target", "loopback"], 7,
         "[[tenant]] name = \"t\" owns namespace 5, which the controller does not have (its namespaces: 1)"),
        (.sharedWritableNamespace, tenant("namespaces = [1]") + "[[tenant]]\nname = \"u\"\nuids = [8]\n[[tenant.lba_range]]\nnsid = 1\nstart = 0\nblocks = 8\n",
         [], 11, "[[tenant]] name = \"u\": namespace 1 is writable by tenant \"t\" (whole) and by tenant \"u\" (LBAs 0-7)"),
        (.lbaRangeBeyondNamespace, tenant("[[tenant.lba_range]]\nnsid = 1\nstart = 2097100\nblocks = 100"), ["--target", "loopback"], 7,
         "[[tenant]] name = \"t\": LBAs 2097100-2097199 of namespace 1 end beyond the namespace, which has 2097152 blocks"),
        (.tenantNeverMatches, tenant("namespaces = [1]") + "[[tenant]]\nname = \"u\"\nuids = [7]\n", [], 9,
         "[[tenant]] name = \"u\" can never match: every caller it names is matched first by an earlier tenant: uid 7 (tenant \"t\")"),
    ]

    /// A policy whose default rules send no I/O, and one tenant "t" (uid 7) with `body`;
    /// its `[[tenant]]` header is line 4.
    static func tenant(_ body: String) -> String {
        "[default.io]\ncommands = \"none\"\n\n[[tenant]]\nname = \"t\"\nuids = [7]\n" + body + "\n"
    }

    @Test("every lint code has a case below")
    func everyCodeHasACase() {
        #expect(Set(Self.cases.map(\.0)) == Set(LintCode.allCases))
    }

    @Test("each warning and error fires, on its line, with its code", arguments: cases)
    func fires(code: LintCode, text: String, arguments: [String], line: Int, fragment: String) throws {
        let files = try CLIScratchDirectory()
        let log = try files.write("effects.log", Self.richLog.bytes)
        let policy = try files.write("p.toml", Array(text.utf8))
        let result = try NVMeGateCLI.run(["policy", "lint"] + arguments.map { $0 == "LOG" ? log : $0 } + [policy])
        let prefix = code.severity == .error ? "error: " : "warning: "
        let lines = result.stdout.split(separator: "\n").map(String.init)
        let found = lines.filter { $0.hasPrefix(prefix + "\(policy):\(line): ") && $0.hasSuffix(" [\(code.rawValue)]") }
        #expect(found.contains { $0.contains(fragment) }, "\(result.stdout)")
        #expect(result.status == (code.severity == .error ? 1 : 0), "\(result.stdout)\(result.stderr)")
        if code.severity == .warning {
            #expect(try NVMeGateCLI.run(["policy", "lint", "--strict"] + arguments.map { $0 == "LOG" ? log : $0 } + [policy]).status == 2)
        }
    }

    @Test("lint_accept: accepted warnings are printed as such and the policy is clean; errors cannot be accepted")
    func lintAccept() throws {
        let files = try CLIScratchDirectory()
        let text = "lint_accept = [\"set-features-controller-scope\"]\n"
            + Self.tenant("namespaces = [1]\n[tenant.admin]\ncommands = [\"Set Features\"]")
        let policy = try files.write("p.toml", Array(text.utf8))
        let result = try NVMeGateCLI.run(["policy", "lint", "--strict", policy])
        #expect(result.status == 0)
        #expect(result.stdout.hasPrefix("accepted: \(policy):10: [[tenant]] name = \"t\": [tenant.admin] commands grants Set Features (09h)"))
        #expect(result.stdout.hasSuffix(" [set-features-controller-scope]\n\(policy): ok (1 accepted)\n"))

        let unknown = try files.write("unknown.toml", Array("lint_accept = [\"too-clever\"]\n[default]\n".utf8))
        let refused = try NVMeGateCLI.run(["policy", "lint", unknown])
        #expect(refused.status == 1)
        #expect(refused.stderr.hasPrefix("nvmegate: \(unknown):1: lint_accept: unknown lint code \"too-clever\""))
        let error = try files.write("error.toml", Array("lint_accept = [\"tenant-never-matches\"]\n[default]\n".utf8))
        #expect(try NVMeGateCLI.run(["policy", "lint", error]).stderr.contains("cannot be accepted"))
    }

    @Test("errors come first and fail the run; the summary counts both")
    func errorsAndWarnings() throws {
        let files = try CLIScratchDirectory()
        let text = Self.tenant("namespaces = [1]\n[tenant.admin]\ncommands = [\"Sanitize\"]") + "[[tenant]]\nname = \"u\"\nuids = [7]\nnamespaces = [1]\n"
        let policy = try files.write("p.toml", Array(text.utf8))
        let result = try NVMeGateCLI.run(["policy", "lint", policy])
        #expect(result.status == 1)
        let lines = result.stdout.split(separator: "\n")
        try #require(lines.count == 4, "\(result.stdout)")
        #expect(lines[0].hasPrefix("error: \(policy):11: ") && lines[0].hasSuffix("[tenant-never-matches]"))
        #expect(lines[1].hasPrefix("error: \(policy):13: ") && lines[1].hasSuffix("[shared-writable-namespace]"))
        #expect(lines[2].hasPrefix("warning: \(policy):9: ") && lines[2].hasSuffix("[grant-never-passes]"))
        #expect(lines[3] == "\(policy): 2 errors, 1 warning")
    }
}
