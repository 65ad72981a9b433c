import Foundation
import Testing

/// `nvmegate policy stats`: an audit trail written by the device commands' `--audit`,
/// counted by reason, tenant and command.
@Suite("nvmegate policy stats (CLI)")
struct CLIStatsTests {
    @Test("refusals audited by three runs are counted by reason, tenant and command")
    func countsAnAuditTrail() throws {
        let files = try CLIScratchDirectory()
        let audit = files.path("audit.jsonl")
        let target = "emulated:" + files.path("device")
        let common = ["--target", target, "--as", "1000", "--audit", audit]
        #expect(try NVMeGateCLI.run(["smart-log", "nvme0"] + common).status == 1)
        #expect(try NVMeGateCLI.run(["smart-log", "nvme0"] + common).status == 1)
        #expect(try NVMeGateCLI.run(["list-ns", "nvme0"] + common).status == 1)
        #expect(try NVMeGateCLI.run(["id-ctrl", "nvme0"] + common).status == 0)   // allowed: not audited
        let trail = try String(contentsOfFile: audit, encoding: .utf8)
        #expect(trail.split(separator: "\n").count == 3)
        #expect(trail.contains("with CNS 02h"))

        let text = try NVMeGateCLI.run(["policy", "stats", audit])
        #expect(text.status == 0, "\(text.stderr)")
        #expect(text.stdout.hasPrefix("3 audit events\n"))
        #expect(text.stdout.contains("admin-command-not-allowed              13        2"))
        #expect(text.stdout.contains("identify-cns-not-allowed               13        1"))
        #expect(text.stdout.contains("Get Log Page (02h)                                2"))

        let json = try NVMeGateCLI.run(["policy", "stats", "-o", "json"], input: trail + "not an event\n")
        #expect(json.status == 0)
        #expect(json.stderr == "nvmegate: line 4 is not an audit event; skipped\n")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdoutBytes)) as? [String: Any])
        #expect(object["events"] as? Int == 3)
        let reasons = try #require(object["reasons"] as? [[String: Any]])
        #expect(reasons.first?["reason"] as? String == "admin-command-not-allowed")
        #expect(reasons.first?["count"] as? Int == 2)
        let tenants = try #require(object["tenants"] as? [String: [String: Int]])
        #expect(tenants[""]?["identify-cns-not-allowed"] == 1)
    }

    @Test("a missing file is an error naming it")
    func missingFile() throws {
        let r = try NVMeGateCLI.run(["policy", "stats", "/nonexistent/audit.jsonl"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("/nonexistent/audit.jsonl: cannot open"))
    }
}
