import Foundation
import Testing

/// The feature, I/O and reservation commands (get-feature, set-feature, read, write,
/// compare, write-zeroes, dsm, flush, resv-*), run as the built binary against a file-backed
/// emulated controller, one process per command as nvme-cli would run them.
@Suite("nvmegate features, I/O and reservations (CLI)")
struct CLIIOTests {
    /// A fresh file-backed emulated subsystem (one 1 GiB namespace of 512-byte blocks) and
    /// scratch files beside it.
    final class Device {
        let files: CLIScratchDirectory
        let target: String

        init() throws {
            files = try CLIScratchDirectory()
            target = "emulated:" + files.path("subsystem")
        }

        /// `nvmegate <command> <node> --target <this device> <arguments…>`.
        func run(_ command: String, _ node: String, _ arguments: [String] = [], input: [UInt8] = []) throws -> NVMeGateCLI.Result {
            try NVMeGateCLI.run([command, node, "--target", target] + arguments, inputBytes: input)
        }

        /// `count` bytes from LBA `block` of namespace 1, read as root; expects success.
        func blocks(at block: Int, bytes count: Int) throws -> [UInt8] {
            let read = try run("read", "nvme0n1", ["-s", "\(block)", "-z", "\(count)", "-c", "\((count + 511) / 512 - 1)"])
            #expect(read.status == 0, "read: \(read.stderr)")
            return read.stdoutBytes
        }
    }

    /// `count` bytes of a recognisable pattern starting at `seed`.
    static func pattern(_ count: Int, seed: UInt8 = 1) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ Int(seed)) }
    }

    /// A policy that lets unprivileged callers read and nothing else.
    static let readOnlyPolicy = """
        version = 1
        name = "read-only"

        [default.admin]
        identify_cns = [0x00]

        [default.io]
        commands = ["Read"]
        """

    // MARK: read, write, compare

    @Test("write then read back the same bytes across processes: stdin/stdout and -d files")
    func writeReadRoundTrip() throws {
        let device = try Device()
        let data = Self.pattern(1024)
        let write = try device.run("write", "nvme0n1", ["-s", "8", "-c", "1", "-z", "1024"], input: data)
        #expect(write.status == 0)
        #expect(write.stderr == "write: Success\n")
        #expect(write.stdoutBytes.isEmpty)
        let read = try device.run("read", "nvme0n1", ["--start-block=8", "--block-count=1", "--data-size=1024"])
        #expect(read.status == 0)
        #expect(read.stderr == "read: Success\n")
        #expect(read.stdoutBytes == data)

        let input = try device.files.write("in.bin", Self.pattern(512, seed: 9))
        let output = device.files.path("out.bin")
        #expect(try device.run("write", "nvme0n1", ["-s", "100", "-z", "512", "-d", input]).status == 0)
        let toFile = try device.run("read", "nvme0n1", ["-s", "100", "-z", "512", "-d", output])
        #expect(toFile.status == 0 && toFile.stdoutBytes.isEmpty)
        #expect(try device.files.read("out.bin") == Self.pattern(512, seed: 9))
        #expect(try device.blocks(at: 8, bytes: 1024) == data)   // the other write is untouched
    }

    @Test("-z is raised to whole blocks of the namespace's LBA size; output is the -z bytes")
    func dataSizeRounding() throws {
        let device = try Device()
        let write = try device.run("write", "nvme0n1", ["-z", "100"], input: Self.pattern(100))
        #expect(write.status == 0)
        #expect(write.stderr == "Rounding data size to fit block count (512 bytes)\nwrite: Success\n")
        let block = try device.blocks(at: 0, bytes: 512)
        #expect(Array(block.prefix(100)) == Self.pattern(100))
        #expect(block.dropFirst(100).allSatisfy { $0 == 0 })   // the rest of the block was zero-filled
        let short = try device.run("read", "nvme0n1", ["-z", "10", "-c", "1"])
        #expect(short.stderr == "Rounding data size to fit block count (1024 bytes)\nread: Success\n")
        #expect(short.stdoutBytes == Array(Self.pattern(10)))
    }

    @Test("an LBA past the end is the NVMe status LBA Out of Range, exit 1")
    func lbaOutOfRange() throws {
        let device = try Device()
        let read = try device.run("read", "nvme0n1", ["-s", "2097151", "-c", "1", "-z", "1024"])
        #expect(read.status == 1)
        #expect(read.stderr.contains("NVMe status: LBA Out of Range: The command references an LBA that exceeds the size of the namespace(0x4080)"))
        #expect(read.stdoutBytes.isEmpty)
        let write = try device.run("write", "nvme0n1", ["-s", "2097152", "-z", "512"], input: Self.pattern(512))
        #expect(write.status == 1 && write.stderr.hasSuffix("(0x4080)\n"))
    }

    @Test("compare: matching data succeeds, different data is Compare Failure")
    func compare() throws {
        let device = try Device()
        let data = Self.pattern(512, seed: 3)
        #expect(try device.run("write", "nvme0n1", ["-s", "5", "-z", "512"], input: data).status == 0)
        let same = try device.run("compare", "nvme0n1", ["-s", "5", "-z", "512"], input: data)
        #expect(same.status == 0)
        #expect(same.stderr == "compare: Success\n")
        var other = data
        other[511] ^= 0xFF
        let differ = try device.run("compare", "nvme0n1", ["-s", "5", "-z", "512", "-d", try device.files.write("other", other)])
        #expect(differ.status == 1)
        #expect(differ.stderr == "NVMe status: Compare Failure: The command failed due to a miscompare during a Compare command(0x4285)\n")
    }

    @Test("--show-command and --dry-run print the command; a dry run changes nothing; --latency")
    func showCommandAndDryRun() throws {
        let device = try Device()
        let dry = try device.run("write", "nvme0n1", ["-s", "0x10", "-c", "1", "-z", "1024", "-f", "-w"], input: Self.pattern(1024))
        #expect(dry.status == 0)
        #expect(dry.stdout.contains("opcode       : 01\nnsid         : 01\nflags        : 00\ncontrol      : 4000\nnblocks      : 0001\n"))
        #expect(dry.stdout.contains("slba         : 10\n"))
        #expect(!dry.stderr.contains("write: Success"))
        #expect(try device.blocks(at: 16, bytes: 1024).allSatisfy { $0 == 0 })
        let timed = try device.run("read", "nvme0n1", ["-z", "4", "-t", "-d", device.files.path("x")])
        #expect(timed.status == 0)
        #expect(timed.stdout.hasPrefix(" latency: read: ") && timed.stdout.hasSuffix(" us\n"))
    }

    // MARK: write-zeroes, dsm, flush

    @Test("write-zeroes and dsm --ad make the blocks read as zeroes; flush succeeds")
    func zeroesDeallocateFlush() throws {
        let device = try Device()
        let data = Self.pattern(2048, seed: 5)
        #expect(try device.run("write", "nvme0n1", ["-c", "3", "-z", "2048"], input: data).status == 0)

        let zeroes = try device.run("write-zeroes", "nvme0n1", ["-s", "0", "-c", "0"])
        #expect(zeroes.status == 0)
        #expect(zeroes.stdout == "NVME Write Zeroes Success\n")
        let dsm = try device.run("dsm", "nvme0n1", ["--slbs", "2", "--blocks", "1", "--ad"])
        #expect(dsm.status == 0)
        #expect(dsm.stdout == "NVMe DSM: success\n")
        let after = try device.blocks(at: 0, bytes: 2048)
        #expect(after[0..<512].allSatisfy { $0 == 0 })          // LBA 0: written zeroes
        #expect(Array(after[512..<1024]) == Array(data[512..<1024]))   // LBA 1 untouched
        #expect(after[1024..<1536].allSatisfy { $0 == 0 })       // LBA 2: deallocated
        #expect(Array(after[1536...]) == Array(data[1536...]))   // LBA 3 untouched

        let flush = try device.run("flush", "nvme0n1")
        #expect(flush.status == 0)
        #expect(flush.stdout == "NVMe Flush: success\n")
        let onController = try device.run("flush", "nvme0")   // NVME_IOCTL_ID fails on a controller node
        #expect(onController.status == 1)
        #expect(onController.stderr == "get-namespace-id: Inappropriate ioctl for device\n")
    }

    // MARK: get-feature, set-feature

    @Test("temperature threshold: set with --save, then every --sel, -H, across processes")
    func temperatureThreshold() throws {
        let device = try Device()
        let set = try device.run("set-feature", "nvme0", ["-f", "4", "-v", "0x160", "--save"])
        #expect(set.status == 0)
        #expect(set.stdout == "set-feature:0x04 (Temperature Threshold), value:0x00000160, cdw12:00000000, save:0x1\n")
        let expected = [
            "0": "get-feature:0x04 (Temperature Threshold), Current value:0x00000160\n",
            "1": "get-feature:0x04 (Temperature Threshold), Default value:0x00000157\n",
            "2": "get-feature:0x04 (Temperature Threshold), Saved value:0x00000160\n",
            "3": "get-feature:0x04 (Temperature Threshold), Supported capabilities value:0x00000005\n"
                + "  Feature is saveable\n  Feature is changeable\n",
        ]
        for (select, line) in expected {
            let get = try device.run("get-feature", "nvme0", ["-f", "4", "-s", select])
            #expect(get.status == 0)
            #expect(get.stdout == line)
        }
        let human = try device.run("get-feature", "nvme0", ["--feature-id=4", "-H"])
        #expect(human.stdout.contains("\tTemperature Threshold         (TMPTH): 79°C (352 Kelvin)\n"))
        let changed = try device.run("get-feature", "nvme0", ["-f", "4", "-s", "8"])
        #expect(changed.stdout == "get-feature:0x04 (Temperature Threshold), Changed value:0x00000160\n")
        // A feature that is not namespace specific refuses the namespace node's NSID, as QEMU does.
        let onNamespace = try device.run("set-feature", "nvme0n1", ["-f", "4", "-v", "0x150"])
        #expect(onNamespace.status == 1)
        #expect(onNamespace.stderr.hasPrefix("NVMe status: Feature Not Namespace Specific") && onNamespace.stderr.hasSuffix("(0x410f)\n"))
    }

    @Test("volatile write cache: disable with --save, read back current, default, saved and capabilities")
    func volatileWriteCache() throws {
        let device = try Device()
        let set = try device.run("set-feature", "nvme0", ["-f", "6", "-v", "0", "-s"])
        #expect(set.stdout == "set-feature:0x06 (Volatile Write Cache), value:00000000, cdw12:00000000, save:0x1\n")
        let values = try ["0", "1", "2"].map { try device.run("get-feature", "nvme0", ["-f", "6", "-s", $0]).stdout }
        #expect(values == ["get-feature:0x06 (Volatile Write Cache), Current value:00000000\n",
                           "get-feature:0x06 (Volatile Write Cache), Default value:0x00000001\n",
                           "get-feature:0x06 (Volatile Write Cache), Saved value:00000000\n"])
        let human = try device.run("get-feature", "nvme0", ["-f", "6", "-H"])
        #expect(human.stdout.hasSuffix("\tVolatile Write Cache Enable (WCE): Disabled\n"))
        let queues = try device.run("set-feature", "nvme0", ["-f", "7", "-v", "0", "-s"])
        #expect(queues.status == 1)
        #expect(queues.stderr.hasPrefix("NVMe status: Feature Identifier Not Saveable"))
    }

    @Test("get-feature without -f walks every feature, skipping unsupported ones quietly")
    func everyFeature() throws {
        let device = try Device()
        let all = try device.run("get-feature", "nvme0n1")
        #expect(all.status == 0)
        #expect(all.stderr.isEmpty)
        let lines = all.stdout.split(separator: "\n").filter { $0.hasPrefix("get-feature:") }
        #expect(lines.contains("get-feature:0x07 (Number of Queues), Current value:0x003f003f"))
        #expect(lines.contains("get-feature:0x0b (Async Event Configuration), Current value:00000000"))
        #expect(!lines.contains { $0.hasPrefix("get-feature:0x03 ") })   // LBA Range Type: not supported
        #expect(lines.count == 11)

        let unsupported = try device.run("get-feature", "nvme0", ["-f", "3"])
        #expect(unsupported.status == 1)
        #expect(unsupported.stderr.hasPrefix("NVMe status: Invalid Field in Command"))
        let timestamp = try device.run("get-feature", "nvme0", ["-f", "0x0e", "-b"])
        #expect(timestamp.status == 0 && timestamp.stdoutBytes.count == 8)
        let hostID = try device.run("set-feature", "nvme0", ["-f", "0x81", "-d", try device.files.write("id", Array("ABCDEFGH".utf8))])
        #expect(hostID.stdout.hasPrefix("set-feature:0x81 (Host Identifier), value:00000000, cdw12:00000000, save:0\n"))
        #expect(hostID.stdout.contains("0000: 41 42 43 44 45 46 47 48"))
    }

    // MARK: Reservations

    @Test("two hosts (nvme0 and nvme1, controllers 1 and 2): the non-holder gets Reservation Conflict")
    func reservationsBetweenTwoHosts() throws {
        let device = try Device()
        // CPTPL 3: the reservation persists through power loss, so it outlives each process.
        let register = try device.run("resv-register", "nvme0n1", ["--nrkey=0xAAAA", "--cptpl=3"])
        #expect(register.status == 0)
        #expect(register.stdout == "NVME Reservation  success\n")
        let acquire = try device.run("resv-acquire", "nvme0n1", ["-c", "0xAAAA", "-t", "1"])
        #expect(acquire.stdout == "NVME Reservation Acquire success\n")
        #expect(try device.run("resv-register", "nvme1n1", ["-k", "0xBBBB"]).status == 0)

        let blocked = try device.run("write", "nvme1n1", ["-z", "512"], input: Self.pattern(512))
        #expect(blocked.status == 1)
        #expect(blocked.stderr.contains("NVMe status: Reservation Conflict") && blocked.stderr.hasSuffix("(0x4083)\n"))
        #expect(try device.run("read", "nvme1n1", ["-z", "512"]).status == 0)   // Write Exclusive lets others read
        let steal = try device.run("resv-acquire", "nvme1n1", ["-c", "0xBBBB", "-t", "1"])
        #expect(steal.status == 1 && steal.stderr.contains("Reservation Conflict"))
        #expect(try device.run("write", "nvme0n1", ["-z", "512"], input: Self.pattern(512)).status == 0)   // the holder writes

        let report = try device.run("resv-report", "nvme0n1")
        #expect(report.stdout == """

            NVME Reservation status:

            gen       : 2
            rtype     : 1
            regctl    : 2
            ptpls     : 1
            regctl[0] :
              cntlid  : 1
              rcsts   : 1
              hostid  : 0
              rkey    : aaaa
            regctl[1] :
              cntlid  : 2
              rcsts   : 0
              hostid  : 0
              rkey    : bbbb


            """)
        let json = try device.run("resv-report", "nvme1n1", ["-o", "json"])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdoutBytes)) as? [String: Any])
        #expect(object["rtype"] as? Int == 1 && object["regctl"] as? Int == 2 && object["ptpls"] as? Int == 1)
        let entries = try #require(object["regctls"] as? [[String: Any]])
        #expect(entries.map { $0["cntlid"] as? Int } == [1, 2])
        #expect(entries.map { $0["rcsts"] as? Int } == [1, 0])
        #expect(entries.map { $0["rkey"] as? Int } == [0xAAAA, 0xBBBB])
        let extended = try device.run("resv-report", "nvme0n1", ["--eds", "-o", "json"])
        let extendedObject = try #require(try JSONSerialization.jsonObject(with: Data(extended.stdoutBytes)) as? [String: Any])
        let extendedEntries = try #require(extendedObject["regctlext"] as? [[String: Any]])
        #expect(extendedEntries.first?["hostid"] as? String == String(repeating: "0", count: 32))
        let raw = try device.run("resv-report", "nvme0n1", ["-b", "--numd=15"])
        #expect(raw.stdoutBytes.count == 64)
        #expect(raw.stdoutBytes[4] == 1 && raw.stdoutBytes[5] == 2)   // RTYPE, REGCTL

        let release = try device.run("resv-release", "nvme0n1", ["-c", "0xAAAA", "-t", "1"])
        #expect(release.stdout == "NVME Reservation Release success\n")
        #expect(try device.run("write", "nvme1n1", ["-z", "512"], input: Self.pattern(512)).status == 0)
    }

    // MARK: Policy

    @Test("--as 1000 under the kernel policy: reads and writes (opened for write), but no features")
    func unprivilegedUnderKernelPolicy() throws {
        let device = try Device()
        let write = try device.run("write", "nvme0n1", ["-z", "512", "--as", "1000"], input: Self.pattern(512, seed: 7))
        #expect(write.status == 0, "write: \(write.stderr)")
        let read = try device.run("read", "nvme0n1", ["-z", "512", "--as", "1000"])
        #expect(read.status == 0 && read.stdoutBytes == Self.pattern(512, seed: 7))
        let set = try device.run("set-feature", "nvme0", ["-f", "4", "-v", "0x150", "--as", "1000"])
        #expect(set.status == 1)
        #expect(set.stderr == "set-feature: Permission denied: Set Features (09h) is an admin command the policy does not allow [admin-command-not-allowed]\n")
        let get = try device.run("get-feature", "nvme0", ["-f", "4", "--as", "1000"])
        #expect(get.status == 1 && get.stderr.hasPrefix("get-feature: Permission denied: Get Features (0Ah)"))
    }

    @Test("a read-only policy refuses write with Permission denied and the data stays as it was")
    func readOnlyPolicy() throws {
        let device = try Device()
        let policy = try device.files.write("read-only.toml", Array(Self.readOnlyPolicy.utf8))
        #expect(try device.run("write", "nvme0n1", ["-z", "512"], input: Self.pattern(512, seed: 2)).status == 0)
        let refused = try device.run("write", "nvme0n1", ["-z", "512", "--policy", policy, "--as", "1000"], input: Self.pattern(512, seed: 4))
        #expect(refused.status == 1)
        #expect(refused.stderr.hasSuffix("submit-io: Permission denied: Write (01h) is not among the I/O commands the policy allows [io-command-not-allowed]\n"))
        let read = try device.run("read", "nvme0n1", ["-z", "512", "--policy", policy, "--as", "1000"])
        #expect(read.status == 0 && read.stdoutBytes == Self.pattern(512, seed: 2))
        let zeroes = try device.run("write-zeroes", "nvme0n1", ["--policy", policy, "--as", "1000"])
        #expect(zeroes.status == 1 && zeroes.stderr.contains("write-zeroes: Permission denied: Write Zeroes (08h)"))
        #expect(try device.blocks(at: 0, bytes: 512) == Self.pattern(512, seed: 2))
    }

    // MARK: Bad input

    @Test("bad arguments are errors worded as nvme-cli words them, exit 1")
    func badArguments() throws {
        let device = try Device()
        let cases: [([String], String)] = [
            (["read", "nvme0n1"], "data size not provided\n"),
            (["read", "nvme0n1", "-z", "512", "-g", "1"], "Storage tag larger than storage tag size\n"),
            (["dsm", "nvme0n1"], "No range definition provided\n"),
            (["resv-acquire", "nvme0n1", "--racqa", "9"], "invalid racqa:9\n"),
            (["resv-register", "nvme0n1", "-p", "4"], "invalid cptpl:4\n"),
            (["get-feature", "nvme0", "-s", "9"], "invalid 'select' param:9\n"),
            (["set-feature", "nvme0", "-v", "1"], "feature-id required param\n"),
            (["write-zeroes", "nvme0n1", "-p", "16"], "invalid prinfo:16\n"),
        ]
        for (arguments, message) in cases {
            let result = try device.run(arguments[0], arguments[1], Array(arguments.dropFirst(2)))
            #expect(result.status == 1, "\(arguments)")
            #expect(result.stderr.hasSuffix(message), "\(arguments): \(result.stderr)")
        }
        let huge = try device.run("read", "nvme0n1", ["-z", "3000000", "-c", "5"])
        #expect(huge.status == 1 && huge.stderr.contains("is more than the 2097152 bytes a command may move"))
        let badList = try device.run("dsm", "nvme0n1", ["-b", "1,x"])
        #expect(badList.status != 0 && badList.stderr.contains("'1,x' is invalid"))
        let loopback = try NVMeGateCLI.run(["flush", "nvme1n1", "--target", "loopback"])
        #expect(loopback.status == 1 && loopback.stderr.contains("has one controller, nvme0"))
    }
}
