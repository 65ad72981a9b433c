import Foundation
import Testing

/// The Identify and namespace management commands (id-ctrl, id-ns, list-ns, ns-descs,
/// create-ns, delete-ns, attach-ns, detach-ns, format), run as the built binary against
/// the emulated controller: its defaults are SN "NVMEGATE0001", MN "nvmegate emulated
/// controller", controller ID 1, OACS 1Eh, NN 32, one 1 GiB namespace of 512-byte blocks,
/// LBA formats 512 B and 4096 B.
@Suite("nvmegate Identify and namespace management (CLI)")
struct CLIIdentifyTests {
    /// Runs `nvmegate arguments…` on `target` (a fresh in-memory controller by default).
    static func run(_ arguments: [String], target: String = "emulated") throws -> NVMeGateCLI.Result {
        try NVMeGateCLI.run(arguments + ["--target", target])
    }

    /// The JSON object `text` holds.
    static func object(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    /// The member names of the top-level JSON object, in the order they are written.
    static func topLevelKeys(_ text: String) -> [String] {
        text.split(separator: "\n").compactMap { line in
            guard line.hasPrefix("  \""), !line.hasPrefix("   "), let end = line.dropFirst(3).firstIndex(of: "\"") else { return nil }
            return String(line[line.index(line.startIndex, offsetBy: 3)..<end])
        }
    }

    /// The keys of nvme-cli 2.3's `id-ctrl -o json`, in order, as it printed them for QEMU's
    /// controller (shared/vm/console-example.log).
    static let nvmeCLIControllerKeys = """
        vid ssvid sn mn fr rab ieee cmic mdts cntlid ver rtd3r rtd3e oaes ctratt rrls cntrltype fguid crdt1 crdt2 crdt3 \
        nvmsr vwci mec oacs acl aerl frmw lpa elpe npss avscc apsta wctemp cctemp mtfa hmpre hmmin tnvmcap unvmcap rpmbs \
        edstt dsto fwug kas hctma mntmt mxtmt sanicap hmminds hmmaxd nsetidmax endgidmax anatt anacap anagrpmax nanagrpid \
        pels domainid megcap sqes cqes maxcmd nn oncs fuses fna vwc awun awupf icsvscc nwpc acwu ocfs sgls mnan maxdna \
        maxcna subnqn ioccsz iorcsz icdoff fcatt msdbd ofcs psds
        """.split(separator: " ").map(String.init)

    // MARK: id-ctrl

    @Test("id-ctrl: nvme-cli's layout with the controller's values; -H decodes OACS, LPA, ONCS; -v dumps vs[]")
    func idCtrlNormal() throws {
        let result = try Self.run(["id-ctrl", "nvme0"])
        #expect(result.status == 0)
        #expect(result.stderr == "")
        let lines = result.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines.first == "NVME Identify Controller:")
        for expected in ["vid       : 0xffff", "sn        : NVMEGATE0001        ",
                         "mn        : nvmegate emulated controller            ", "fr        : 1.0     ",
                         "ieee      : 000000", "cntlid    : 0x1", "ver       : 0x20000", "oacs      : 0x1e", "lpa       : 0x6",
                         "tnvmcap   : 1099511627776", "fguid     : 00000000-0000-0000-0000-000000000000",
                         "nn        : 32", "oncs      : 0x1ff", "subnqn    : nqn.2026-01.org.nvmegate:emulated:NVMEGATE0001",
                         "ps      0 : mp:25.00W operational enlat:0 exlat:0 rrt:0 rrl:0",
                         "            rwt:0 rwl:0 idle_power:- active_power:-"] {
            #expect(lines.contains(expected), "\(expected)")
        }
        let names = lines.dropFirst().prefix(while: { !$0.hasPrefix("ps ") }).map { String($0.prefix(while: { $0 != " " })) }
        #expect(names == Self.nvmeCLIControllerKeys.dropLast(), "one line per field, in nvme-cli's order")

        let human = try Self.run(["id-ctrl", "nvme0", "-H"])
        #expect(human.status == 0)
        for decoded in ["  [3:3] : 0x1\tNS Management and Attachment Supported", "  [0:0] : 0\tSecurity Send and Receive Not Supported",
                        "  [1:1] : 0x1\tCommand Effects Log Page Supported", "  [8:8] : 0x1\tCopy Supported",
                        "  [1:1] : 0x1\tMulti Controller", " [15:0] : 70°C (343 Kelvin)\tWarning Composite Temperature Threshold (WCTEMP)"] {
            #expect(human.stdout.contains(decoded + "\n"), "\(decoded)")
        }
        let vendor = try Self.run(["id-ctrl", "nvme0", "--vendor-specific"])
        #expect(vendor.stdout.contains("vs[]:\n       0  1  2  3"))
    }

    @Test("id-ctrl -o json: nvme-cli 2.3's keys in its order, with the controller's values")
    func idCtrlJSON() throws {
        let result = try Self.run(["id-ctrl", "nvme0", "-o", "json"])
        #expect(result.status == 0)
        #expect(Self.topLevelKeys(result.stdout) == Self.nvmeCLIControllerKeys)
        #expect(result.stdout.hasPrefix("{\n  \"vid\":65535,\n  \"ssvid\":65535,\n  \"sn\":\"NVMEGATE0001        \",\n"))
        let json = try Self.object(result.stdout)
        #expect(json["mn"] as? String == "nvmegate emulated controller            ")
        #expect(json["oacs"] as? Int == 0x1E)
        #expect(json["nn"] as? Int == 32)
        #expect(json["sqes"] as? Int == 0x66)
        #expect(json["tnvmcap"] as? String == "1099511627776", "uint128 fields are strings, as nvme-cli writes them")
        #expect(json["fguid"] as? String == "00000000-0000-0000-0000-000000000000")
        let states = try #require(json["psds"] as? [[String: Any]])
        #expect(states.count == 1)
        #expect(states.first?["max_power"] as? Int == 2500)
        #expect(states.first?.count == 13)
    }

    @Test("id-ctrl -b: the 4096-byte structure, as -o binary writes it")
    func idCtrlBinary() throws {
        let raw = try Self.run(["id-ctrl", "nvme0", "-b"])
        #expect(raw.status == 0)
        let bytes = raw.stdoutBytes
        #expect(bytes.count == 4096)
        #expect(bytes.count == 4096 && Array(bytes[4..<24]) == Array("NVMEGATE0001        ".utf8))
        #expect(bytes.count == 4096 && UInt16(bytes[256]) | UInt16(bytes[257]) << 8 == 0x1E)
        #expect(try Self.run(["id-ctrl", "nvme0", "-o", "binary"]).stdoutBytes == bytes)
    }

    // MARK: id-ns, ns-descs

    @Test("id-ns on a namespace node takes its NSID from NVME_IOCTL_ID; a controller node has none")
    func idNSFromNode() throws {
        let result = try Self.run(["id-ns", "nvme0n1"])
        #expect(result.status == 0)
        #expect(result.stdout.hasPrefix("NVME Identify Namespace 1:\nnsze    : 0x200000\nncap    : 0x200000\n"))
        #expect(result.stdout.contains("nsattr\t: 0\n"))
        #expect(result.stdout.hasSuffix("lbaf  0 : ms:0   lbads:9  rp:0x2 (in use)\nlbaf  1 : ms:0   lbads:12 rp:0 \n"))
        let human = try Self.run(["id-ns", "nvme0n1", "-H"])
        #expect(human.stdout.contains("LBA Format  1 : Metadata Size: 0   bytes - Data Size: 4096 bytes - Relative Performance: 0 Best \n"))
        #expect(human.stdout.contains("  [0:0] : 0x1\tNamespace Multipath Capable\n"))

        let json = try Self.object(try Self.run(["id-ns", "nvme0n1", "-o", "json"]).stdout)
        #expect(json["nsze"] as? Int == 0x200000)
        #expect(json["nvmcap"] as? String == "1073741824")
        let formats = try #require(json["lbafs"] as? [[String: Int]])
        #expect(formats == [["ms": 0, "ds": 9, "rp": 2], ["ms": 0, "ds": 12, "rp": 0]])
        #expect(try Self.run(["id-ns", "nvme0n1", "-b"]).stdoutBytes.count == 4096)

        let controller = try Self.run(["id-ns", "nvme0"])
        #expect(controller.status == 1)
        #expect(controller.stderr == "get-namespace-id: Inappropriate ioctl for device\n")
        let explicit = try Self.run(["id-ns", "nvme0", "-n", "1"])
        #expect(explicit.stdout.hasPrefix("NVME Identify Namespace 1:\n"))
        let beyond = try Self.run(["id-ns", "nvme0", "-n", "99"])
        #expect(beyond.status == 1)
        #expect(beyond.stderr.hasPrefix("NVMe status: Invalid Namespace or Format"))
    }

    @Test("ns-descs: EUI-64, NGUID, UUID and CSI descriptors, as text, JSON and raw")
    func nsDescs() throws {
        let nguid = try #require(try Self.object(try Self.run(["id-ns", "nvme0n1", "-o", "json"]).stdout)["nguid"] as? String)
        let result = try Self.run(["ns-descs", "nvme0n1"])
        #expect(result.status == 0)
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.count == 5)
        #expect(lines.first == "NVME Namespace Identification Descriptors NS 1:")
        #expect(lines.dropFirst().first == "eui64   : " + nguid.suffix(16))
        #expect(lines.contains("nguid   : " + nguid))
        #expect(lines.last == "csi     : 0")
        let json = try Self.object(try Self.run(["ns-descs", "nvme0", "-n", "1", "-o", "json"]).stdout)
        let descriptors = try #require(json["ns-descs"] as? [[String: Any]])
        #expect(descriptors.map { $0["type"] as? String } == ["eui64", "nguid", "uuid", "csi"])
        #expect(descriptors.map { $0["loc"] as? Int } == [0, 12, 32, 52])
        #expect(descriptors[1]["nguid"] as? String == nguid)
        let uuid = try #require(descriptors[2]["uuid"] as? String)
        #expect(uuid.count == 36 && uuid.split(separator: "-").map(\.count) == [8, 4, 4, 4, 12])
        #expect(try Self.run(["ns-descs", "nvme0n1", "-b"]).stdoutBytes.count == 4096)
    }

    // MARK: The policy

    @Test("kernel policy, uid 1000: CNS 01h and 00h pass; CNS 02h and 03h are refused with the reason")
    func unprivilegedIdentify() throws {
        let controller = try Self.run(["id-ctrl", "nvme0", "--as", "1000"])
        #expect(controller.status == 0)
        #expect(controller.stdout.hasPrefix("NVME Identify Controller:\nvid       : 0xffff\n"))
        #expect(try Self.run(["id-ns", "nvme0n1", "--as", "1000"]).status == 0)

        let list = try Self.run(["list-ns", "nvme0", "--as", "1000"])
        #expect(list.status == 1)
        #expect(list.stdout == "")
        #expect(list.stderr.hasPrefix("id namespace list: Permission denied: Identify (06h) with CNS 02h"))
        #expect(list.stderr.hasSuffix("[identify-cns-not-allowed]\n"))
        let descs = try Self.run(["ns-descs", "nvme0n1", "--as", "1000"])
        #expect(descs.status == 1)
        #expect(descs.stderr.contains("identify namespace: Permission denied: Identify (06h) with CNS 03h"))
    }

    // MARK: Namespace management

    @Test("A namespace's life across processes: create, list, attach, identify, format -b 4096, detach, delete")
    func namespaceLifecycle() throws {
        let scratch = try CLIScratchDirectory()
        let target = "emulated:" + scratch.path("controller")
        func run(_ arguments: [String]) throws -> NVMeGateCLI.Result { try Self.run(arguments, target: target) }

        let created = try run(["create-ns", "nvme0", "--nsze", "2048", "--ncap", "2048", "--flbas", "0"])
        #expect(created.status == 0)
        #expect(created.stdout == "create-ns: Success, created nsid:2\n")
        #expect(try run(["list-ns", "nvme0", "--all"]).stdout == "[   0]:0x1\n[   1]:0x2\n")
        #expect(try run(["list-ns", "nvme0"]).stdout == "[   0]:0x1\n", "not active before attach-ns")

        let attached = try run(["attach-ns", "nvme0", "--namespace-id", "2", "--controllers", "1"])
        #expect(attached.status == 0)
        #expect(attached.stdout == "attach-ns: Success, nsid:2\n")
        let active = try Self.object(try run(["list-ns", "nvme0", "-o", "json"]).stdout)
        #expect((active["nsid_list"] as? [[String: Int]])?.map { $0["nsid"] } == [1, 2])
        #expect(try run(["list-ns", "nvme0", "--namespace-id", "2"]).stdout == "[   0]:0x2\n", "NSIDs from 2 on")
        #expect(try run(["list-ns", "nvme0", "--csi", "0"]).stdout == "[   0]:0x1\n[   1]:0x2\n", "CNS 07h, NVM command set")

        let identified = try run(["id-ns", "nvme0n2"])
        #expect(identified.stdout.hasPrefix("NVME Identify Namespace 2:\nnsze    : 0x800\n"))
        #expect(identified.stdout.contains("lbaf  0 : ms:0   lbads:9  rp:0x2 (in use)\n"))

        let refused = try run(["format", "nvme0n2", "--block-size", "4096"])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("without --force"))
        #expect(try run(["id-ns", "nvme0n2"]).stdout == identified.stdout, "nothing sent without --force")

        let formatted = try run(["format", "nvme0n2", "-b", "4096", "--force"])
        #expect(formatted.status == 0)
        #expect(formatted.stdout == "Success formatting namespace:2\n")
        let after = try run(["id-ns", "nvme0n2"])
        #expect(after.stdout.hasSuffix("lbaf  0 : ms:0   lbads:9  rp:0x2 \nlbaf  1 : ms:0   lbads:12 rp:0 (in use)\n"))
        #expect(try Self.object(try run(["id-ns", "nvme0", "-n", "2", "-o", "json"]).stdout)["flbas"] as? Int == 1)

        #expect(try run(["detach-ns", "nvme0", "-n", "2", "-c", "1"]).stdout == "detach-ns: Success, nsid:2\n")
        #expect(try run(["list-ns", "nvme0"]).stdout == "[   0]:0x1\n")
        let deleted = try run(["delete-ns", "nvme0", "-n", "2"])
        #expect(deleted.status == 0)
        #expect(deleted.stdout == "delete-ns: Success, deleted nsid:2\n")
        #expect(try run(["list-ns", "nvme0", "-a"]).stdout == "[   0]:0x1\n")
    }

    @Test("kernel policy, uid 1000: create-ns, attach-ns and format are refused with the reason, and nothing changes")
    func unprivilegedManagement() throws {
        let scratch = try CLIScratchDirectory()
        let target = "emulated:" + scratch.path("controller")
        let created = try Self.run(["create-ns", "nvme0", "-s", "2048", "-c", "2048", "-f", "0", "--as", "1000"], target: target)
        #expect(created.status == 1)
        #expect(created.stdout == "")
        #expect(created.stderr.hasPrefix("create namespace: Permission denied: Namespace Management (0Dh)"))
        #expect(created.stderr.hasSuffix("[admin-command-not-allowed]\n"))
        #expect(try Self.run(["list-ns", "nvme0", "--all"], target: target).stdout == "[   0]:0x1\n")

        let detached = try Self.run(["detach-ns", "nvme0", "-n", "1", "-c", "1", "--as", "1000"], target: target)
        #expect(detached.stderr.hasPrefix("detach namespace: Permission denied: Namespace Attachment (15h)"))
        let formatted = try Self.run(["format", "nvme0n1", "--lbaf", "1", "--force", "--as", "1000"], target: target)
        #expect(formatted.status == 1)
        #expect(formatted.stderr.hasPrefix("format: Permission denied: Format NVM (80h)"))
        let namespace = try Self.run(["id-ns", "nvme0n1"], target: target)
        #expect(namespace.stdout.contains("lbaf  0 : ms:0   lbads:9  rp:0x2 (in use)\n"))
        #expect(try Self.run(["list-ns", "nvme0"], target: target).stdout == "[   0]:0x1\n")
    }

    @Test("create-ns -b picks the LBA format; the controller's own refusals come back as NVMe status")
    func createByBlockSize() throws {
        let scratch = try CLIScratchDirectory()
        let target = "emulated:" + scratch.path("controller")
        #expect(try Self.run(["create-ns", "nvme0", "-s", "1Ki", "-c", "1024", "-b", "4096"], target: target).stdout
            == "create-ns: Success, created nsid:2\n")
        #expect(try Self.run(["id-ns", "nvme0", "-n", "2", "--force"], target: target).stdout
            .contains("nsze    : 0x400\n"), "--force reads an allocated, unattached namespace (CNS 11h)")
        #expect(try Self.run(["id-ns", "nvme0", "-n", "2", "--force", "-o", "json"], target: target).stdout.contains("\"flbas\":1,"))
        let thin = try Self.run(["create-ns", "nvme0", "-s", "2048", "-c", "1024", "-f", "0"], target: target)
        #expect(thin.status == 1)
        #expect(thin.stderr.hasPrefix("NVMe status: Invalid Field in Command"))
        let attachedTwice = try Self.run(["attach-ns", "nvme0", "-n", "1", "-c", "1"], target: target)
        #expect(attachedTwice.status == 1)
        #expect(attachedTwice.stderr.hasPrefix("NVMe status: Namespace Already Attached"))
    }

    @Test("Bad input is refused before anything is sent, in nvme-cli's words", arguments: [
        (["create-ns", "nvme0", "-s", "8", "-c", "8", "-f", "0", "-b", "4096"],
         "Invalid specification of both FLBAS and Block Size, please specify only one"),
        (["create-ns", "nvme0", "-s", "8", "-c", "8", "-b", "3000"], "Invalid value for block size (3000). Block size must be a power of two"),
        (["create-ns", "nvme0", "-s", "8", "-c", "8"], "FLBAS corresponding to block size 0 not found"),
        (["create-ns", "nvme0", "-s", "8", "-c", "8", "-b", "1024"], "FLBAS corresponding to block size 1024 not found"),
        (["attach-ns", "nvme0", "-c", "1"], "attach-ns: namespace-id parameter required"),
        (["detach-ns", "nvme0", "-n", "1", "-c", "1,x"], "detach-ns: controller id list is malformed"),
        (["list-ns", "nvme0", "-n", "0"], "invalid nsid parameter"),
        (["format", "nvme0n1", "-b", "1000", "--force"], "Invalid value for block size (1000), must be a power of two"),
        (["format", "nvme0n1", "-b", "2048", "--force"], "LBAF corresponding to given block size 2048 not found"),
        (["format", "nvme0n1", "-l", "1", "-s", "9", "--force"], "invalid secure erase settings:9"),
    ])
    func badInput(arguments: [String], message: String) throws {
        let result = try Self.run(arguments)
        #expect(result.status == 1)
        #expect(result.stdout == "")
        #expect(result.stderr.hasPrefix(message), "\(result.stderr)")
    }
}
