import NVMeGate
import NVMeSpec
import Testing

/// The linter as a library: `lint_accept`, findings placed on their lines, and the locator
/// that also points loader errors into the right `[[tenant]]`.
@Suite("Policy lint")
struct PolicyLintTests {
    static let text = """
        lint_accept = ["grant-never-passes"]
        [default.io]
        commands = "none"

        [[tenant]]
        name = "a"
        uids = [1]
        namespaces = [1]

        [[tenant]]
        name = "b"
        uids = [2]
        namespaces = [2]
        [tenant.admin]
        commands = ["Sanitize", "Set Features"]
        [[tenant.lba_range]]
        nsid = 3
        start = 0
        blocks = 4096
        """

    @Test("lint_accept is loaded; findings carry their code, line and key; accepted ones are marked")
    func findings() throws {
        let policy = try Policy.parse(Self.text, file: "t.toml")
        #expect(policy.lintAccept == [.grantNeverPasses])
        let compiled = CompiledPolicy(policy: policy, effectsLogs: [:])
        let linter = PolicyLinter(compiled, namespaces: [NamespaceInfo(nsid: 1, blockCount: 100), NamespaceInfo(nsid: 3, blockCount: 100)],
                                  locator: PolicyLocator(file: "t.toml", text: Self.text))
        let found = linter.findings.map { "\($0.code.rawValue) \($0.line) \($0.key) \($0.accepted)" }
        // Errors first, then warnings in the order of the file.
        #expect(found == [
            "lba-range-beyond-namespace 16 tenant.lba_range false",
            "namespace-not-on-target 13 tenant.namespaces false",
            "set-features-controller-scope 15 tenant.admin.commands false",
            "grant-never-passes 15 tenant.admin.commands true",
        ])
        #expect(linter.findings.first?.description.hasPrefix("t.toml:16: [[tenant]] name = \"b\": LBAs 0-4095 of namespace 3") == true)
    }

    @Test("a loader error in the second tenant points at the second tenant's line")
    func loaderLines() {
        let text = "[default]\n[[tenant]]\nname = \"x\"\nuids = [1]\n[[tenant]]\nname = \"x\"\nuids = [2]\n"
        #expect(throws: PolicyError.self) { try Policy.parse(text) }
        do { _ = try Policy.parse(text, file: "t.toml") } catch {
            #expect(error.line == 6 && error.key == "tenant.name")
        }
        let locator = PolicyLocator(file: "t.toml", text: Self.text)
        #expect(locator.line(of: "tenant.uids", tenant: 1) == 12)
        #expect(locator.line(of: "tenant.io.commands", tenant: 0) == 5)   // not written: the tenant's header
        #expect(locator.line(of: "default.io.commands") == 3)
        #expect(locator.line(of: "privileges.bypass") == 0)
    }

    @Test("lint_accept names warning codes only", arguments: [
        ("lint_accept = [\"no-such-code\"]\n[default]\n", "unknown lint code"),
        ("lint_accept = [\"shared-writable-namespace\"]\n[default]\n", "cannot be accepted"),
        ("lint_accept = \"partitions-unconfined\"\n[default]\n", "list of strings"),
    ])
    func lintAcceptErrors(text: String, words: String) {
        do {
            _ = try Policy.parse(text, file: "t.toml")
            Issue.record("accepted \(text)")
        } catch {
            #expect(error.key == "lint_accept" && error.line == 1)
            #expect(error.message.contains(words), "\(error)")
        }
    }
}
