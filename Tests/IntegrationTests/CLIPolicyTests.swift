import Foundation
import NVMeGate
import NVMeSpec
import Testing

/// The `nvmegate policy` commands, run as the built binary: `check --jsonl` (the interface
/// other programs rely on), `explain` and `lint`.
@Suite("nvmegate policy (CLI)")
struct CLIPolicyTests {
    // MARK: Fixtures

    /// An effects log with Read and Write Zeroes (CSUPP), Write and Flush (CSUPP, LBCC), and
    /// Identify and Get Log Page on the admin side.
    static let effectsLog: CommandEffectsLog = {
        var log = CommandEffectsLog()
        log[.io, 0x02] = CommandEffects(supported: true)
        log[.io, 0x01] = CommandEffects(supported: true, logicalBlockContentChange: true)
        log[.io, 0x00] = CommandEffects(supported: true, logicalBlockContentChange: true)
        log[.io, 0x08] = CommandEffects(supported: true)
        log[.admin, 0x06] = CommandEffects(supported: true)
        log[.admin, 0x02] = CommandEffects(supported: true)
        return log
    }()

    /// Linux's rules as a policy file, in the schema `Policy.load` reads.
    static let kernelPolicy = """
        version = 1
        name = "kernel"
        description = "Linux's unprivileged NVMe passthrough rules (6.2 and later)"

        [privileges]
        bypass = ["CAP_SYS_ADMIN"]
        management = ["CAP_SYS_ADMIN"]

        [effects]
        linux_known_effects = true
        ignore_io_cse = true

        [default]
        partitions = false

        [default.admin]
        identify_cns = [0x00, 0x01, 0x05, 0x06, 0x08]

        [default.io]
        commands = "supported"
        permitted_effects = ["LBCC", "USS", "CSP"]
        write_access = ["data-to-controller", "LBCC"]
        """

    /// A policy whose grants reach further than they seem to.
    static let loosePolicy = """
        version = 1
        name = "loose"

        [privileges]
        bypass = ["CAP_SYS_ADMIN", "CAP_SYS_RAWIO"]

        [default]
        partitions = true

        [default.admin]
        commands = [0x80, 0x84, 0x0D, 0x15, 0x10, 0x09]

        [default.io]
        commands = "supported"
        permitted_effects = ["LBCC", "NCC", "NIC", "CCC", "CSE", "CSER"]
        write_access = ["data-to-controller"]
        """

    // MARK: policy check --jsonl

    @Test("JSONL: every verdict line exactly, in order, malformed lines included")
    func jsonlVerdicts() throws {
        let files = try CLIScratchDirectory()
        let log = try files.write("effects.log", Self.effectsLog.bytes)
        let ns = #""handle":{"kind":"namespace","nsid":1,"write":false},"caller":{"uid":1000,"caps":[]}"#
        let nsRW = #""handle":{"kind":"namespace","nsid":1,"write":true},"caller":{"uid":1000,"caps":[]}"#
        let ctrl = #""handle":{"kind":"controller","write":false},"caller":{"uid":1000,"caps":[]}"#
        let lines = [
            #"{"ioctl":"io",\#(ns),"cmd":{"opcode":2,"nsid":1,"cdw10":0,"cdw12":7,"data_len":4096,"metadata_len":0}}"#,
            #"{"ioctl":"io",\#(ns),"cmd":{"opcode":1,"nsid":1,"cdw12":7,"data_len":4096}}"#,
            #"{"ioctl":"io",\#(ns),"cmd":{"opcode":8,"nsid":1}}"#,
            #"{"ioctl":"io",\#(nsRW),"cmd":{"opcode":2,"flags":1,"nsid":1}}"#,
            #"{"ioctl":"io",\#(nsRW),"cmd":{"opcode":2,"nsid":2}}"#,
            #"{"ioctl":"admin",\#(ctrl),"cmd":{"opcode":6,"cdw10":1,"data_len":4096}}"#,
            #"{"ioctl":"admin",\#(ctrl),"cmd":{"opcode":"0x06","cdw10":"0x02","data_len":4096}}"#,
            "this is not JSON",
            #"{"ioctl":"admin",\#(ctrl),"cmd":{"opcode":2,"nsid":4294967295,"cdw10":"0x03FF0005","data_len":4096}}"#,
            #"{"ioctl":"admin","handle":{"kind":"controller"},"caller":{"uid":0,"caps":["CAP_SYS_ADMIN"]},"cmd":{"opcode":2,"cdw10":"0x03FF0005","data_len":4096}}"#,
            #"{"ioctl":"io64","handle":{"kind":"partition","nsid":1,"write":true},"cmd":{"opcode":2,"nsid":1}}"#,
            #"{"ioctl":"admin64",\#(ctrl),"cmd":{"opcode":192}}"#,
            #"{"ioctl":"io",\#(nsRW),"cmd":{"opcode":"0x81","nsid":1}}"#,
            #"{"ioctl":"io",\#(ns),"cmd":{"nsid":1}}"#,
            #"{"ioctl":"io",\#(ctrl),"cmd":{"opcode":2,"nsid":1,"cdw12":7,"data_len":4096}}"#,
            #"{"ioctl":"io64",\#(ctrl),"cmd":{"opcode":2,"nsid":1}}"#,
            #"{"ioctl":"io",\#(ns),"cmd":{"opcode":2,"nsid":1,"cdw12":7,"data_len":2048}}"#,
            #"{"ioctl":"io","handle":{"kind":"generic","nsid":1},"cmd":{"opcode":2,"nsid":1,"metadata_len":8}}"#,
            #"{"ioctl":"admin","handle":{"kind":"controller"},"caller":{"caps":[21]},"cmd":{"opcode":2}}"#,
        ]
        let result = try NVMeGateCLI.run(["policy", "check", "--effects-log", log, "--jsonl"],
                                         input: lines.joined(separator: "\n") + "\n")
        #expect(result.status == 0)
        #expect(result.stderr == "")

        let read = Self.name(.io, 0x02), write = Self.name(.io, 0x01), writeZeroes = Self.name(.io, 0x08)
        let identify = Self.name(.admin, 0x06), getLogPage = Self.name(.admin, 0x02)
        let expected = [
            Self.verdict(.allowed, "\(read) is allowed by the policy"),
            Self.verdict(.needsWriteOpen, "\(write) needs a handle opened for writing: it transfers data to the controller"),
            Self.verdict(.needsWriteOpen, "\(writeZeroes) needs a handle opened for writing: its effects include LBCC (it changes logical block content)"),
            Self.verdict(.flagsNotZero, "\(read) has non-zero flags (FUSE/PSDT); Linux refuses passthrough flags with EINVAL"),
            Self.verdict(.nsidMismatch, "\(read) names NSID 2 but the handle is namespace 1; an I/O command must address the handle's namespace"),
            Self.verdict(.allowed, "\(identify) is allowed by the policy"),
            Self.verdict(.identifyCNSNotAllowed, "\(identify) with CNS 02h is not among the Identify CNS values the policy allows"),
            #"{"allow":false,"errno":22,"reason":"malformed-input","detail":"line 8: not JSON: expected a value (an object, a list, a string, a number, true, false or null) (column 1)"}"#,
            Self.verdict(.adminCommandNotAllowed, "\(getLogPage) is an admin command the policy does not allow"),
            Self.verdict(.privilegedBypass, "\(getLogPage) is allowed because the caller holds CAP_SYS_ADMIN, which bypasses the policy's rules"),
            Self.verdict(.partition, "\(read) is refused through a partition node: passthrough there reaches the whole namespace"),
            Self.verdict(.vendorSpecific, "\(Self.name(.admin, 0xC0)) is refused: admin opcodes C0h and above are vendor specific, and the policy does not allow this one"),
            Self.verdict(.vendorSpecific, "\(Self.name(.io, 0x81)) is refused: I/O opcodes 80h and above are vendor specific, and the policy does not allow this one"),
            #"{"allow":false,"errno":22,"reason":"malformed-input","detail":"line 14: missing cmd.opcode"}"#,
            Self.verdict(.allowed, "\(read) is allowed by the policy"),
            Self.verdict(.notForThisNode, "the ioctl request is not defined on this kind of node"),
            Self.verdict(.bufferTooShort, "\(read) transfers more data than its buffer holds; refused before it reaches the controller (CVE-2023-6238)"),
            Self.verdict(.metadataNotSupported, "\(read) gives a metadata buffer but the namespace format has no separate metadata"),
            Self.verdict(.privilegedBypass, "\(getLogPage) is allowed because the caller holds CAP_SYS_ADMIN, which bypasses the policy's rules"),
        ]
        let output = result.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(output.count == expected.count + 1 && output.last == "", "one line out per line in, newline-terminated")
        for (index, line) in expected.enumerated() where index < output.count {
            #expect(output[index] == line, "line \(index + 1)")
        }
        // The first line, spelled out: the interface's exact key order and literals.
        #expect(output.first == #"{"allow":true,"errno":0,"reason":"allowed","detail":"\#(read) is allowed by the policy"}"#)
    }

    @Test("JSONL: malformed lines name what is wrong and the run goes on", arguments: [
        (#"{"ioctl":"iox","handle":{"kind":"controller"},"cmd":{"opcode":6}}"#, #"ioctl: expected \"admin\", \"io\", \"admin64\" or \"io64\", got \"iox\""#),
        (#"{"ioctl":"admin","handle":{"kind":"disk"},"cmd":{"opcode":6}}"#, #"handle.kind: expected \"controller\", \"namespace\", \"generic\" or \"partition\", got \"disk\""#),
        (#"{"ioctl":"admin","handle":{"kind":"controller"},"cmd":{"opcode":256}}"#, #"cmd.opcode: expected an integer from 0 to 255 (or a string such as \"0x1F\"), got 256"#),
        (#"{"ioctl":"admin","handle":{"kind":"controller"},"cmd":{"opcode":"six"}}"#, #"cmd.opcode: expected an integer from 0 to 255 (or a string such as \"0x1F\"), got \"six\""#),
        (#"{"ioctl":"admin","handle":{"kind":"controller"},"cmd":{"opcode":6,"cdw10":-1}}"#, #"cmd.cdw10: expected an integer from 0 to 4294967295 (or a string such as \"0x1F\"), got -1"#),
        (#"{"ioctl":"admin","handle":{"kind":"controller"},"cmd":{"opcode":6,"cdw1O":1}}"#, "cmd.cdw1O: unknown key; expected opcode, flags, nsid, cdw2, cdw3, cdw10 to cdw15, data_len or metadata_len"),
        (#"{"ioctl":"io","handle":{"kind":"namespace"},"cmd":{"opcode":2}}"#, "handle.nsid: a namespace handle needs its namespace's NSID (1 or more)"),
        (#"{"ioctl":"io","handle":{"kind":"namespace","nsid":1,"write":"yes"},"cmd":{"opcode":2}}"#, #"handle.write: expected true or false, got \"yes\""#),
        (#"{"ioctl":"admin","handle":{"kind":"controller"},"caller":{"caps":["CAP_NOPE"]},"cmd":{"opcode":6}}"#, #"caller.caps: \"CAP_NOPE\" is not a Linux capability name (CAP_SYS_ADMIN) or number (0 to 63)"#),
        (#"{"ioctl":"admin","handle":{"kind":"controller"}}"#, "missing cmd"),
        (#"["admin"]"#, "expected a JSON object, got a list"),
        (#"{"ioctl":"admin","#, "not JSON: expected a key in quotes (column 18)"),
    ])
    func malformedLines(line: String, detail: String) throws {
        let valid = #"{"ioctl":"admin","handle":{"kind":"controller"},"cmd":{"opcode":6,"cdw10":1}}"#
        let result = try NVMeGateCLI.run(["policy", "check", "--jsonl"], input: "\(valid)\n\(line)\n\(valid)\n")
        #expect(result.status == 0)
        let output = result.stdout.split(separator: "\n").map(String.init)
        try #require(output.count == 3)
        #expect(output[1] == #"{"allow":false,"errno":22,"reason":"malformed-input","detail":"line 2: \#(detail)"}"#)
        #expect(output[0].hasPrefix(#"{"allow":true,"#) && output[2].hasPrefix(#"{"allow":true,"#))
    }

    @Test("JSONL: NVME_IOCTL_IO_CMD on a controller node follows the namespace count")
    func ioCommandOnController() throws {
        let line = #"{"ioctl":"io","handle":{"kind":"controller"},"cmd":{"opcode":0,"nsid":1}}"# + "\n"
        let none = try NVMeGateCLI.run(["policy", "check", "--jsonl", "--namespaces", "0"], input: line)
        #expect(none.stdout.hasPrefix(#"{"allow":false,"errno":25,"reason":"no-namespace","#))
        let several = try NVMeGateCLI.run(["policy", "check", "--jsonl", "--namespaces", "2"], input: line)
        #expect(several.stdout.hasPrefix(#"{"allow":false,"errno":22,"reason":"multiple-namespaces","#))
    }

    @Test("JSONL: the kernel policy file decides as the built-in policy does")
    func kernelFileMatchesBuiltIn() throws {
        let files = try CLIScratchDirectory()
        let log = try files.write("effects.log", Self.effectsLog.bytes)
        let policy = try files.write("kernel.toml", Array(Self.kernelPolicy.utf8))
        let input = Self.generatedRequests(count: 2000)
        let builtIn = try NVMeGateCLI.run(["policy", "check", "--effects-log", log, "--jsonl"], input: input)
        let fromFile = try NVMeGateCLI.run(["policy", "check", "--policy", policy, "--effects-log", log, "--jsonl"], input: input)
        #expect(builtIn.status == 0 && fromFile.status == 0)
        #expect(builtIn.stdout == fromFile.stdout)
    }

    @Test("JSONL: 20,000 lines take well under ten seconds")
    func twentyThousandLines() throws {
        let files = try CLIScratchDirectory()
        let log = try files.write("effects.log", Self.effectsLog.bytes)
        let input = Self.generatedRequests(count: 20_000)
        let clock = ContinuousClock()
        var result: NVMeGateCLI.Result?
        let elapsed = try clock.measure {
            result = try NVMeGateCLI.run(["policy", "check", "--effects-log", log, "--jsonl"], input: input)
        }
        let output = try #require(result)
        #expect(output.status == 0)
        #expect(output.stdout.split(separator: "\n").count == 20_000)
        #expect(elapsed < .seconds(10), "20,000 lines took \(elapsed)")
        print("policy check: 20,000 lines in \(elapsed)")
    }

    // MARK: Errors

    @Test("An effects log of the wrong size: exit 1, naming the file and its size")
    func effectsLogOfWrongSize() throws {
        let files = try CLIScratchDirectory()
        let log = try files.write("short.log", [UInt8](repeating: 1, count: 100))
        let result = try NVMeGateCLI.run(["policy", "check", "--effects-log", log, "--jsonl"], input: "")
        #expect(result.status == 1)
        #expect(result.stdout == "")
        #expect(result.stderr.hasPrefix("nvmegate: \(log): "))
        #expect(result.stderr.contains("4096-byte") && result.stderr.contains("this file has 100 bytes"))
    }

    @Test("A broken policy file: exit 1 with file, line and key")
    func policyError() throws {
        let files = try CLIScratchDirectory()
        let policy = try files.write("broken.toml", Array("version = 1\nname = \"x\"\n[default]\npartitions = \"yes\"\n".utf8))
        let check = try NVMeGateCLI.run(["policy", "check", "--policy", policy, "--jsonl"], input: "")
        #expect(check.status == 1)
        #expect(check.stderr.hasPrefix("nvmegate: \(policy):4: default.partitions: "))
        let lint = try NVMeGateCLI.run(["policy", "lint", policy])
        #expect(lint.status == 1)
        #expect(lint.stderr == check.stderr)
    }

    // MARK: policy explain

    @Test("explain: a Write through a read-only namespace, in words")
    func explainHuman() throws {
        let files = try CLIScratchDirectory()
        let log = try files.write("effects.log", Self.effectsLog.bytes)
        let result = try NVMeGateCLI.run([
            "policy", "explain", "--effects-log", log, "--queue", "io", "--node", "nvme0n1",
            "-o", "0x01", "-n", "1", "-6", "7", "--data-len", "4096",
        ])
        #expect(result.status == 0)
        let write = Self.name(.io, 0x01)
        #expect(result.stdout == """
            Verdict:  refused (EACCES, errno 13)
            Reason:   needs-write-open
            Detail:   \(write) needs a handle opened for writing: it transfers data to the controller
            Command:  \(write) on the I/O queue, NVM Command Set, NSID 1, data length 4096 bytes, through NVME_IOCTL_IO_CMD
            Handle:   nvme0n1 (namespace 1), opened read-only, uid 1000, gid 1000, capabilities: none
            Effects:  CSUPP LBCC (from the effects log \(log))
            Rule:     [default.io] write_access = ["data-to-controller", "LBCC"]
            Policy:   kernel (built in)

            """)
    }

    @Test("explain: nvme-cli's flags, an Identify CNS refused, the rule named")
    func explainIdentify() throws {
        let result = try NVMeGateCLI.run(["policy", "explain", "--opcode=0x06", "--cdw10=2", "-l", "4096"])
        #expect(result.status == 0)
        #expect(result.stdout.contains("Reason:   identify-cns-not-allowed\n"))
        #expect(result.stdout.contains("Rule:     [default.admin] identify_cns = [0x00, 0x01, 0x05, 0x06, 0x08]\n"))
        #expect(result.stdout.contains("Effects:  none (no effects log supplied: Linux's known effects only)\n"))
    }

    @Test("explain -o json: the same fields as one JSON object")
    func explainJSON() throws {
        let files = try CLIScratchDirectory()
        let log = try files.write("effects.log", Self.effectsLog.bytes)
        let result = try NVMeGateCLI.run([
            "policy", "explain", "--effects-log", log, "--output-format", "json", "-o", "2", "-4", "0x03FF0005",
            "--caps", "CAP_SYS_ADMIN", "--uid", "0",
        ])
        #expect(result.status == 0)
        #expect(result.stdout.hasPrefix(#"{"allow":true,"errno":0,"reason":"privileged-bypass","detail":"#))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect(object["verdict"] as? String == "allowed")
        #expect(object["effects"] as? [String] == ["CSUPP"])
        let rule = try #require(object["rule"] as? String)
        #expect(rule.hasPrefix(#"[privileges] bypass = ["CAP_SYS_ADMIN"]; without it: admin-command-not-allowed"#))
        #expect((object["handle"] as? String)?.contains("uid 0, gid 1000, capabilities: CAP_SYS_ADMIN") == true)
        #expect(object["policy"] as? String == "kernel (built in)")
    }

    @Test("explain: bad flags are usage errors")
    func explainUsageErrors() throws {
        #expect(try NVMeGateCLI.run(["policy", "explain", "-o", "0x100"]).status == 64)
        #expect(try NVMeGateCLI.run(["policy", "explain", "-o", "2", "--node", "sda"]).status == 64)
        #expect(try NVMeGateCLI.run(["policy", "explain", "-o", "2", "--queue", "admin", "--ioctl", "io"]).status == 64)
    }

    // MARK: policy lint

    @Test("lint: the kernel policy is clean")
    func lintKernel() throws {
        let files = try CLIScratchDirectory()
        let policy = try files.write("kernel.toml", Array(Self.kernelPolicy.utf8))
        let log = try files.write("effects.log", Self.effectsLog.bytes)
        let result = try NVMeGateCLI.run(["policy", "lint", "--strict", "--effects-log", log, policy])
        #expect(result.status == 0)
        #expect(result.stdout == "\(policy): ok\n")
    }

    @Test("lint: grants that reach too far are named; --strict exits 2")
    func lintLoose() throws {
        let files = try CLIScratchDirectory()
        let policy = try files.write("loose.toml", Array(Self.loosePolicy.utf8))
        let result = try NVMeGateCLI.run(["policy", "lint", policy])
        #expect(result.status == 0)
        let warnings = result.stdout.split(separator: "\n").filter { $0.hasPrefix("warning: ") }
        let expectedFragments = [
            "[privileges] bypass includes CAP_SYS_RAWIO",
            "[default] partitions = true: passthrough through a partition reaches the whole namespace",
            "[default.admin] commands grants \(Self.name(.admin, 0x80)): it erases or reformats a namespace; its effects include LBCC, NCC",
            "[default.admin] commands grants \(Self.name(.admin, 0x84))",
            "[default.admin] commands grants \(Self.name(.admin, 0x0D))",
            "[default.admin] commands grants \(Self.name(.admin, 0x15))",
            "[default.admin] commands grants \(Self.name(.admin, 0x10))",
            "[default.admin] commands grants \(Self.name(.admin, 0x09))",
            "[default.io] permitted_effects includes NCC",
            "[default.io] permitted_effects includes NIC",
            "[default.io] permitted_effects includes CCC",
            "[default.io] permitted_effects includes CSE:",
            "[default.io] permitted_effects includes CSER",
            "[default.io] write_access lacks \"LBCC\"",
        ]
        #expect(warnings.count == expectedFragments.count)
        for fragment in expectedFragments {
            #expect(warnings.contains { $0.contains(fragment) }, "missing: \(fragment)")
        }
        #expect(result.stdout.hasSuffix("\(policy): \(expectedFragments.count) warnings\n"))
        #expect(try NVMeGateCLI.run(["policy", "lint", "--strict", policy]).status == 2)
    }

    // MARK: Helpers

    static func name(_ queue: Queue, _ opcode: UInt8) -> String {
        OpcodeTable.displayName(queue: queue, commandSet: .nvm, opcode: opcode)
    }

    /// A verdict line as `policy check` writes it (details here hold no characters to escape).
    static func verdict(_ reason: Reason, _ detail: String) -> String {
        #"{"allow":\#(reason.isAllowed),"errno":\#(reason.errno),"reason":"\#(reason.code)","detail":"\#(detail)"}"#
    }

    /// `count` lines cycling through Reads, Writes, Identify and Get Log Page on every kind
    /// of handle, read-only and read-write, with and without CAP_SYS_ADMIN.
    static func generatedRequests(count: Int) -> String {
        let kinds = [#""kind":"namespace","nsid":1"#, #""kind":"controller""#, #""kind":"partition","nsid":1"#,
                     #""kind":"generic","nsid":1"#]
        let commands = [#""opcode":2,"nsid":1,"cdw12":7,"data_len":4096"#, #""opcode":1,"nsid":1,"cdw12":0,"data_len":512"#,
                        #""opcode":8,"nsid":1"#, #""opcode":6,"cdw10":1,"data_len":4096"#, #""opcode":6,"cdw10":3"#,
                        #""opcode":2,"cdw10":"0x03FF0005","data_len":4096"#, #""opcode":"0xC1""#, #""opcode":2,"nsid":2"#]
        var text = ""
        for i in 0..<count {
            let command = commands[i % commands.count]
            let ioctl = i % commands.count >= 3 && i % commands.count <= 6 ? "admin" : "io"
            let caps = i % 5 == 0 ? #"["CAP_SYS_ADMIN"]"# : "[]"
            text += #"{"ioctl":"\#(ioctl)","handle":{\#(kinds[i / commands.count % kinds.count]),"write":\#(i % 3 == 0)},"#
                + #""caller":{"uid":1000,"caps":\#(caps)},"cmd":{\#(command)}}"# + "\n"
        }
        return text
    }
}
