import Foundation
import NVMeGate
import NVMeSpec
import Testing

/// `policy check`, `policy explain` and the device commands' `--audit` under a policy with
/// tenants (`Policies/tenants.toml`), run as the built binary.
@Suite("nvmegate tenants (CLI)")
struct CLITenantTests {
    static let tenants = Toolchain.packageRoot.appendingPathComponent("Policies/tenants.toml").path

    static func name(_ queue: Queue, _ opcode: UInt8) -> String { CLIPolicyTests.name(queue, opcode) }

    @Test("JSONL: the caller resolves to its tenant, which owns namespaces, LBA ranges and partitions")
    func checkTenants() throws {
        func line(_ handle: String, _ caller: String, _ cmd: String) -> String {
            #"{"ioctl":"io","handle":{\#(handle)},"caller":{\#(caller)},"cmd":{\#(cmd)}}"#
        }
        let ns1 = #""kind":"namespace","nsid":1,"write":true"#, ns2 = #""kind":"namespace","nsid":2,"write":true"#
        let part = #""kind":"partition","nsid":2,"write":true"#
        let extent = #","partition":{"start":0,"blocks":2048}"#
        let db = #""uid":1001"#, scratch = #""uid":1002"#, auditor = #""uid":5,"gid":4"#
        let input = [
            line(ns1, db, #""opcode":1,"nsid":1,"data_len":512"#),
            line(ns2, db, #""opcode":1,"nsid":2,"data_len":512"#),
            line(ns2, scratch, #""opcode":1,"nsid":2,"cdw10":1048575,"data_len":512"#),
            line(ns2, scratch, #""opcode":1,"nsid":2,"cdw10":1048575,"cdw12":1,"data_len":1024"#),
            line(ns2, scratch, #""opcode":9,"nsid":2,"data_len":16"#),
            line(part + extent, scratch, #""opcode":2,"nsid":2,"cdw10":10,"data_len":512"#),
            line(part + extent, scratch, #""opcode":2,"nsid":2,"cdw10":2048,"data_len":512"#),
            line(part, scratch, #""opcode":2,"nsid":2,"cdw10":10,"data_len":512"#),
            line(ns1, auditor, #""opcode":2,"nsid":1,"data_len":512"#),
            line(ns1, auditor, #""opcode":1,"nsid":1,"data_len":512"#),
            line(ns1, #""uid":1000"#, #""opcode":2,"nsid":1,"data_len":512"#),
            line(ns2, #""uid":0,"caps":["CAP_SYS_ADMIN"]"#, #""opcode":1,"nsid":2,"data_len":512"#),
        ]
        let result = try NVMeGateCLI.run(["policy", "check", "--policy", Self.tenants, "--target", "emulated", "--jsonl"],
                                         input: input.joined(separator: "\n") + "\n")
        #expect(result.status == 0 && result.stderr == "")
        let read = Self.name(.io, 0x02), write = Self.name(.io, 0x01), dsm = Self.name(.io, 0x09)
        let expected = [
            CLIPolicyTests.verdict(.allowedAndAudited, "\(write) is allowed by the policy, which audits commands of its class"),
            CLIPolicyTests.verdict(.namespaceNotOwned, #"\#(write) addresses namespace 2, which tenant \"db\" does not own"#),
            CLIPolicyTests.verdict(.allowed, "\(write) is allowed by the policy"),
            CLIPolicyTests.verdict(.lbaRangeNotOwned, #"\#(write) reaches logical blocks outside what tenant \"scratch\" owns of namespace 2"#),
            CLIPolicyTests.verdict(.rangeListUnchecked, "\(dsm) carries its LBA ranges in the data buffer, which deciding without the buffer cannot check; send it through the ioctl, which checks a copy of the ranges"),
            CLIPolicyTests.verdict(.allowed, "\(read) is allowed by the policy"),
            CLIPolicyTests.verdict(.lbaRangeNotOwned, #"\#(read) reaches logical blocks outside what tenant \"scratch\" owns of namespace 2"#),
            CLIPolicyTests.verdict(.partition, "\(read) is refused through a partition node: passthrough there reaches the whole namespace"),
            CLIPolicyTests.verdict(.allowed, "\(read) is allowed by the policy"),
            CLIPolicyTests.verdict(.namespaceReadOnly, #"\#(write) changes namespace 1, which tenant \"auditor\" owns for reading only"#),
            CLIPolicyTests.verdict(.ioCommandNotAllowed, "\(read) is not among the I/O commands the policy allows"),
            CLIPolicyTests.verdict(.privilegedBypass, "\(write) is allowed because the caller holds CAP_SYS_ADMIN, which bypasses the policy's rules"),
        ]
        #expect(result.stdout.split(separator: "\n").map(String.init) == expected)
    }

    @Test("JSONL: --partition gives the partition's blocks when the line does not; caller names match tenants")
    func partitionFlagAndCallerNames() throws {
        let inside = #"{"ioctl":"io","handle":{"kind":"partition","nsid":2},"caller":{"uid":1002},"cmd":{"opcode":2,"nsid":2,"cdw10":10}}"#
        let outside = #"{"ioctl":"io","handle":{"kind":"partition","nsid":2},"caller":{"uid":1002},"cmd":{"opcode":2,"nsid":2,"cdw10":4096}}"#
        let flagged = try NVMeGateCLI.run(["policy", "check", "--policy", Self.tenants, "--target", "emulated",
                                           "--partition", "0:0x1000", "--jsonl"], input: inside + "\n" + outside + "\n")
        let verdicts = flagged.stdout.split(separator: "\n")
        #expect(verdicts.count == 2)
        #expect(verdicts.first?.hasPrefix(#"{"allow":true,"#) == true)
        #expect(verdicts.last?.hasPrefix(#"{"allow":false,"errno":13,"reason":"lba-range-not-owned","#) == true)
        #expect(try NVMeGateCLI.run(["policy", "check", "--partition", "7", "--jsonl"]).status == 64)

        let files = try CLIScratchDirectory()
        let policy = try files.write("named.toml", Array("""
            [default.io]
            commands = "none"
            [[tenant]]
            name = "backup"
            callers = ["backup-agent"]
            rules = "kernel"
            read_only_namespaces = [1]
            """.utf8))
        let read = #"{"ioctl":"io","handle":{"kind":"namespace","nsid":1},"caller":{"uid":1000,"name":"backup-agent"},"cmd":{"opcode":2,"nsid":1}}"#
        let anonymous = #"{"ioctl":"io","handle":{"kind":"namespace","nsid":1},"caller":{"uid":1000},"cmd":{"opcode":2,"nsid":1}}"#
        let named = try NVMeGateCLI.run(["policy", "check", "--policy", policy, "--target", "emulated", "--jsonl"],
                                        input: read + "\n" + anonymous + "\n")
        let lines = named.stdout.split(separator: "\n")
        #expect(lines.first?.hasPrefix(#"{"allow":true,"errno":0,"reason":"allowed","#) == true)
        #expect(lines.last?.hasPrefix(#"{"allow":false,"errno":13,"reason":"io-command-not-allowed","#) == true)

        let explained = try NVMeGateCLI.run(["policy", "explain", "--policy", policy, "--target", "emulated", "--queue", "io",
                                             "-o", "2", "-n", "1", "--caller-name", "backup-agent"])
        #expect(explained.stdout.contains("Tenant:   \"backup\" (matched by caller name \"backup-agent\"); owns namespace 1 (read)\n"))
        #expect(explained.stdout.contains(#"uid 1000, gid 1000, name "backup-agent", capabilities: none"#))
    }

    @Test("explain: the tenant is named, with what matched it and what it owns, and the rule is the tenant's")
    func explainTenant() throws {
        let result = try NVMeGateCLI.run(["policy", "explain", "--policy", Self.tenants, "--target", "emulated",
                                          "-o", "0x80", "-n", "2", "--uid", "1001"])
        #expect(result.status == 0)
        #expect(result.stdout.contains("Reason:   namespace-not-owned\n"))
        #expect(result.stdout.contains(#"Detail:   \#(Self.name(.admin, 0x80)) addresses namespace 2, which tenant "db" does not own"#))
        #expect(result.stdout.contains("Tenant:   \"db\" (matched by uid 1001); owns namespace 1\n"))
        #expect(result.stdout.contains("Rule:     [[tenant]] name = \"db\": owns namespace 1\n"))

        let json = try NVMeGateCLI.run(["policy", "explain", "--policy", Self.tenants, "--target", "emulated", "--queue", "io",
                                        "-o", "2", "-n", "1", "--uid", "5", "--gid", "4", "--output-format", "json"])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect(object["tenant"] as? String == "auditor")
        #expect(object["reason"] as? String == "allowed")
        #expect((object["rule"] as? String)?.hasPrefix(#"[[tenant]] name = "auditor": [tenant.io] commands = "supported""#) == true)

        let nobody = try NVMeGateCLI.run(["policy", "explain", "--policy", Self.tenants, "-o", "6", "-4", "1", "--output-format", "json"])
        let none = try #require(try JSONSerialization.jsonObject(with: Data(nobody.stdout.utf8)) as? [String: Any])
        #expect(none["tenant"] is NSNull)
        let text = try NVMeGateCLI.run(["policy", "explain", "--policy", Self.tenants, "-o", "6", "-4", "1"])
        #expect(text.stdout.contains("Tenant:   none: the caller matches no tenant, so the [default] rules apply\n"))
        #expect(text.stdout.contains("Rule:     [default.admin] identify_cns = [0x01]\n"))

        let partition = try NVMeGateCLI.run(["policy", "explain", "--policy", Self.tenants, "--target", "emulated", "--queue", "io",
                                             "--node", "nvme0n2p1", "-o", "2", "-n", "2", "--uid", "1002"])
        #expect(partition.stdout.contains("Reason:   partition\n"))
        #expect(partition.stdout.contains("Handle:   nvme0n2p1 (partition 1 of namespace 2, blocks not given), opened read-only"))
        #expect(partition.stdout.contains(#"Rule:     [[tenant]] name = "scratch": [tenant] partitions = "confined", but the partition's blocks are not known: give --partition START:BLOCKS"#))
    }

    @Test("--audit: refusals and audited writes are appended as JSON lines")
    func auditFile() throws {
        let files = try CLIScratchDirectory()
        let policy = try files.write("audited.toml", Array("""
            [default.io]
            commands = "none"
            [[tenant]]
            name = "writer"
            uids = [1000]
            rules = "kernel"
            namespaces = [1]
            audit_allowed = ["writes"]
            """.utf8))
        let audit = files.path("audit.jsonl")
        let common = ["--target", "emulated", "--policy", policy, "--as", "1000", "--audit", audit]
        let write = try NVMeGateCLI.run(["write", "nvme0n1", "-s", "3", "-z", "512"] + common, input: String(repeating: "x", count: 512))
        #expect(write.status == 0, "\(write.stderr)")
        let refused = try NVMeGateCLI.run(["smart-log", "nvme0"] + common)
        #expect(refused.status == 1)
        let lines = String(decoding: try files.read("audit.jsonl"), as: UTF8.self).split(separator: "\n")
        try #require(lines.count == 2)
        let events = try lines.map { try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
        #expect(events[0]["reason"] as? String == "allowed-audited")
        #expect(events[0]["tenant"] as? String == "writer")
        #expect(events[0]["opcode"] as? Int == 1 && events[0]["queue"] as? String == "io" && events[0]["nsid"] as? Int == 1)
        #expect(events[1]["reason"] as? String == "admin-command-not-allowed")
        #expect(events[1]["errno"] as? Int == 13 && events[1]["uid"] as? Int == 1000)
        #expect(events[1]["message"] as? String == "\(Self.name(.admin, 0x02)) is an admin command the policy does not allow")
        #expect(lines[1].hasPrefix(#"{"time":""#) && lines[1].contains(#""level":"notice""#))

        let unwritable = try NVMeGateCLI.run(["id-ctrl", "nvme0", "--target", "emulated", "--audit", files.path("no/such/dir/a.jsonl")])
        #expect(unwritable.status == 1)
        #expect(unwritable.stderr.contains("no/such/dir/a.jsonl: cannot open the audit log"))
    }
}
