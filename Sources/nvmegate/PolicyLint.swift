import ArgumentParser
import NVMeGate
import NVMeSpec
import NVMeTargets

/// `nvmegate policy lint FILE`: loads a policy, warns about grants that reach further than
/// they seem to, and fails on contradictions.
struct PolicyLint: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lint",
        abstract: "Check a policy file: warn about grants that reach further than intended, fail on contradictions.",
        discussion: """
            Each finding is one line, "warning: " or "error: ", then FILE:LINE, what is granted \
            and what it lets a caller do, and its code in brackets. Warnings whose code the \
            policy's top-level lint_accept lists are printed as "accepted: " and do not count.
            Exit status: 0 when the policy loads without errors (warnings or not), 2 with --strict \
            and warnings, 1 when it does not load or has errors.
            Codes:
            \(LintCode.allCases.map { "  \($0.rawValue) (\($0.severity.rawValue)): \($0.meaning)" }.joined(separator: "\n"))
            """)

    @Argument(help: ArgumentHelp("The policy file (TOML).", valueName: "file"))
    var file: String

    @Option(help: ArgumentHelp("The controller's Commands Supported and Effects log (a raw 4096-byte page), to judge the effects of the commands granted.",
                               valueName: "file"))
    var effectsLog: String?

    @Option(help: ArgumentHelp(
        "Judge against this target's controller (\"loopback\", \"emulated\", \"emulated:DIR\", a device path such as /dev/nvme0): its effects logs, and its namespaces for the LBA ranges tenants own.",
        valueName: "target"))
    var target: String?

    @Flag(help: "Exit with status 2 when there are warnings.")
    var strict = false

    func validate() throws {
        if effectsLog != nil && target != nil { throw ValidationError("give --effects-log or --target, not both") }
    }

    func run() throws {
        var findings: [LintFinding] = []
        try reportingFailures {
            let text = String(decoding: try readFile(file), as: UTF8.self)
            let policy = try Policy.parse(text, file: file)
            let locator = PolicyLocator(file: file, text: text)
            if let target {
                let controller: any Controller
                do throws(Target.SpecError) { controller = try Target.open(target) } catch { throw CLIError(error.description) }
                findings = PolicyLinter(Gate.compile(policy, for: controller), namespaces: controller.namespaces(),
                                        locator: locator).findings
            } else {
                let compiled = CompiledPolicy(policy: policy, effectsLogs: try loadEffectsLogs(effectsLog))
                findings = PolicyLinter(compiled, locator: locator).findings
            }
        }
        let errors = findings.filter { $0.severity == .error }
        let warnings = findings.filter { $0.severity == .warning && !$0.accepted }
        let accepted = findings.filter(\.accepted)
        var out = ""
        for finding in errors { out += "error: \(finding)\n" }
        for finding in warnings { out += "warning: \(finding)\n" }
        for finding in accepted { out += "accepted: \(finding)\n" }
        var counts: [String] = []
        if !errors.isEmpty { counts.append(Self.count(errors.count, "error")) }
        if !warnings.isEmpty { counts.append(Self.count(warnings.count, "warning")) }
        let summary = counts.isEmpty ? "ok" : counts.joined(separator: ", ")
        out += "\(file): \(summary)" + (accepted.isEmpty ? "" : " (\(accepted.count) accepted)") + "\n"
        print(out, terminator: "")
        if !errors.isEmpty { throw ExitCode.failure }
        if strict && !warnings.isEmpty { throw ExitCode(2) }
    }

    /// "1 warning", "3 errors".
    static func count(_ n: Int, _ noun: String) -> String { "\(n) \(noun)\(n == 1 ? "" : "s")" }
}
