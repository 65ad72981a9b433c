import Foundation
import Testing

/// `admin-passthru` / `io-passthru` and what every device command shares: the device
/// argument and target, `--as`, the policy on the way, and nvme-cli's error wording.
@Suite("nvmegate admin-passthru / io-passthru (CLI)")
struct CLIPassthruTests {
    @Test("Identify Controller: the hex dump, -b raw bytes, nvme-cli's success line")
    func identifyController() throws {
        let dump = try NVMeGateCLI.run(["admin-passthru", "nvme0", "-o", "0x06", "-l", "4096", "-4", "1", "-r"])
        #expect(dump.status == 0, "\(dump.stderr)")
        #expect(dump.stderr == "Admin Command Identify is Success and result: 0x00000000\n")
        let lines = dump.stdout.split(separator: "\n")
        #expect(lines.count == 257)
        #expect(lines.first == "       0  1  2  3  4  5  6  7  8  9  a  b  c  d  e  f")
        #expect(lines.dropFirst().first?.hasPrefix("0000: ") == true)

        let raw = try NVMeGateCLI.run(["admin-passthru", "nvme0", "--opcode=6", "--data-len=4096", "--cdw10=1", "--read", "-b"])
        #expect(raw.status == 0)
        #expect(raw.stdoutBytes.count == 4096)
        // The serial number (SN, bytes 4-23) is what the hex dump shows there too.
        let serial = String(decoding: raw.stdoutBytes[4..<24], as: UTF8.self)
        #expect(serial.hasPrefix("NVMEGATE"))
        #expect(lines[1].contains(" \(String(raw.stdoutBytes[4], radix: 16)) "))
    }

    @Test("--as: an unprivileged caller is refused with Permission denied and the reason; capabilities it keeps bypass")
    func callerAndPolicy() throws {
        let identifyList = ["admin-passthru", "nvme0", "-o", "6", "-l", "4096", "-4", "2", "-r", "-b"]
        let refused = try NVMeGateCLI.run(identifyList + ["--as", "1000"])
        #expect(refused.status == 1)
        #expect(refused.stdoutBytes.isEmpty)
        #expect(refused.stderr.contains("passthru: Permission denied: Identify (06h) with CNS 02h"))
        #expect(refused.stderr.contains("[identify-cns-not-allowed]"))

        let bypass = try NVMeGateCLI.run(identifyList + ["--as", "1000:CAP_SYS_ADMIN"])
        #expect(bypass.status == 0, "\(bypass.stderr)")
        #expect(bypass.stdoutBytes.count == 4096)
        #expect(bypass.stdoutBytes[0..<4] == [1, 0, 0, 0])   // the active namespace list: NSID 1

        let allowed = try NVMeGateCLI.run(["admin-passthru", "nvme0", "-o", "6", "-l", "4096", "-4", "1", "-r", "-b", "--as", "1000"])
        #expect(allowed.status == 0)

        let badCapability = try NVMeGateCLI.run(identifyList + ["--as", "1000:CAP_NOT_A_THING"])
        #expect(badCapability.status != 0)
        #expect(badCapability.stderr.contains("--as"))
    }

    /// The CLI copied outside the checkout (which uid 1000 may not be able to reach), with
    /// `files` from the checkout beside it, and a runner for it as uid 1000 with no
    /// capabilities (util-linux's setpriv) and the supplementary groups `groups` (none by
    /// default): exit status and standard error.
    struct UnprivilegedCLI {
        let copy: CLIScratchDirectory
        let binary: String

        init(files: [String] = []) throws {
            copy = try CLIScratchDirectory()
            binary = copy.path("nvmegate")
            try FileManager.default.copyItem(atPath: try #require(NVMeGateCLI.executable).path, toPath: binary)
            for file in files {
                let path = copy.path((file as NSString).lastPathComponent)
                try FileManager.default.copyItem(atPath: Toolchain.packageRoot.appendingPathComponent(file).path, toPath: path)
                try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: path)
            }
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: copy.directory.path)
        }

        func run(_ arguments: [String], groups: [String] = ["--clear-groups"]) throws -> (status: Int32, stderr: String) {
            let r = try Toolchain.run("/usr/bin/setpriv", ["--reuid", "1000", "--regid", "1000"] + groups + ["--inh-caps=-all", binary]
                                      + arguments)
            return (r.status, r.stderr)
        }
    }

    @Test("An unprivileged process is judged as itself, and --as cannot raise it")
    func unprivilegedProcess() throws {
        let cli = try UnprivilegedCLI()
        let identifyList = ["admin-passthru", "nvme0", "-o", "6", "-l", "4096", "-4", "2", "-r", "-b"]
        let itself = try cli.run(identifyList)
        #expect(itself.status == 1)
        #expect(itself.stderr.contains("[identify-cns-not-allowed]"))
        let raise = try cli.run(identifyList + ["--as", "1000:CAP_SYS_ADMIN"])
        #expect(raise.status == 1)
        #expect(raise.stderr == "nvmegate: --as: this process does not hold CAP_SYS_ADMIN; --as can only drop privileges\n")
        let root = try cli.run(identifyList + ["--as", "0"])
        #expect(root.status == 1)
        #expect(root.stderr.contains("only root can act as another user"))
    }

    @Test("A process's supplementary groups match a tenant named by gid, as the broker matches a peer's")
    func supplementaryGroups() throws {
        let cli = try UnprivilegedCLI(files: ["Policies/tenants.toml"])
        // tenants.toml's "auditor" is gids = [4]: it reads namespace 1; anyone else gets no I/O.
        let read = ["io-passthru", "nvme0n1", "--policy", cli.copy.path("tenants.toml"), "-o", "2", "-n", "1", "-l", "512", "-r", "-b"]
        let member = try cli.run(read, groups: ["--groups", "27,4"])
        #expect(member.status == 0, "\(member.stderr)")
        let outsider = try cli.run(read, groups: ["--groups", "27"])
        #expect(outsider.status == 1)
        #expect(outsider.stderr.contains("Permission denied"), "\(outsider.stderr)")
    }

    @Test("io-passthru: write then read back across processes on emulated:DIR, and NVMEGATE_TARGET")
    func writeReadAcrossProcesses() throws {
        let files = try CLIScratchDirectory()
        let target = "emulated:" + files.path("device")
        let pattern = (0..<1024).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
        let input = try files.write("pattern", pattern)
        let write = try NVMeGateCLI.run(["io-passthru", "nvme0n1", "--target", target, "-o", "1", "-n", "1",
                                         "-l", "1024", "-6", "1", "-4", "8", "-i", input])
        #expect(write.status == 0, "\(write.stderr)")
        #expect(write.stderr == "IO Command Write is Success and result: 0x00000000\n")

        let read = try NVMeGateCLI.run(["io-passthru", "nvme0n1", "-o", "2", "-n", "1", "-l", "1024", "-6", "1", "-4", "8", "-b"],
                                       environment: ["NVMEGATE_TARGET": target])
        #expect(read.status == 0, "\(read.stderr)")
        #expect(read.stdoutBytes == pattern)

        // From standard input, and a dry run that sends nothing.
        let stdinWrite = try NVMeGateCLI.run(["io-passthru", "ng0n1", "--target", target, "-o", "1", "-n", "1", "-l", "512", "-4", "8"],
                                             inputBytes: [UInt8](repeating: 0xAB, count: 512))
        #expect(stdinWrite.status == 0, "\(stdinWrite.stderr)")
        let dry = try NVMeGateCLI.run(["io-passthru", "nvme0n1", "--target", target, "-o", "1", "-n", "1", "-l", "512", "-4", "9", "-d"],
                                      inputBytes: [UInt8](repeating: 0xCD, count: 512))
        #expect(dry.status == 0)
        #expect(dry.stdout.contains("opcode       : 0x01"))
        #expect(dry.stdout.contains("cdw10        : 0x00000009"))
        let after = try NVMeGateCLI.run(["io-passthru", "nvme0n1", "--target", target, "-o", "2", "-n", "1", "-l", "1024", "-6", "1", "-4", "8", "-b"])
        #expect(after.stdoutBytes == [UInt8](repeating: 0xAB, count: 512) + pattern[512...])
    }

    @Test("An NVMe status reads like nvme-cli's and exits 1")
    func nvmeStatus() throws {
        let beyond = try NVMeGateCLI.run(["io-passthru", "nvme0n1", "-o", "2", "-n", "1", "-l", "512", "-4", "0xfffffff0", "-5", "0xff", "-r"])
        #expect(beyond.status == 1)
        #expect(beyond.stderr.hasPrefix("NVMe status: LBA Out of Range"))
        #expect(beyond.stderr.hasSuffix("(0x4080)\n"))
        let unknown = try NVMeGateCLI.run(["admin-passthru", "nvme0", "-o", "0x7e"])
        #expect(unknown.status == 1)
        #expect(unknown.stderr.contains("(0x4001)"), "\(unknown.stderr)")
    }

    @Test("Device paths are real devices: open(2)'s error or why the file is no NVMe node, naming the path")
    func devicePaths() throws {
        let scratch = try CLIScratchDirectory()
        let missing = try NVMeGateCLI.run(["id-ctrl", "/nonexistent/nvme0"])
        #expect(missing.status == 1)
        #expect(missing.stderr == "nvmegate: /nonexistent/nvme0: No such file or directory\n")
        let regular = try scratch.write("plain", [1, 2, 3])
        let file = try NVMeGateCLI.run(["io-passthru", regular, "-o", "2", "-n", "1", "-l", "512", "-r"])
        #expect(file.status == 1)
        #expect(file.stderr == "nvmegate: \(regular) is not a block or character device\n")
        // With a target named, a path that does not exist is a node name on it, as before.
        let onTarget = try NVMeGateCLI.run(["id-ctrl", "/dev/nvme0", "-o", "json"], environment: ["NVMEGATE_TARGET": "emulated"])
        #expect(onTarget.status == 0, "\(onTarget.stderr)")
        #expect(onTarget.stdout.contains("\"mn\":\"nvmegate emulated controller"))
        let explicit = try NVMeGateCLI.run(["id-ctrl", "nvme0", "--target", "/dev/null"])
        #expect(explicit.status == 1)
        #expect(explicit.stderr.contains("/dev/null is not an NVMe device node"))
        let badLog = try NVMeGateCLI.run(["id-ctrl", "/nonexistent/nvme0", "--effects-log", regular])
        #expect(badLog.status == 1)
        #expect(badLog.stderr.contains("\(regular): an effects log is a raw 4096-byte Commands Supported and Effects page; this file has 3 bytes"))
    }

    @Test("Device arguments: unknown nodes, non-node names, real device files, missing direction")
    func deviceArguments() throws {
        let missing = try NVMeGateCLI.run(["admin-passthru", "nvme0n7", "-o", "6", "-l", "4096", "-4", "1", "-r"])
        #expect(missing.status == 1)
        #expect(missing.stderr == "nvmegate: nvme0n7: No such file or directory on target \"emulated\" (its nodes: nvme0, nvme0n1, ng0n1)\n")
        let notNode = try NVMeGateCLI.run(["admin-passthru", "sda", "-o", "6"])
        #expect(notNode.status == 1)
        #expect(notNode.stderr.contains("sda: not an NVMe node name"))
        let real = try NVMeGateCLI.run(["admin-passthru", "/dev/null", "-o", "6"])
        #expect(real.status == 1)
        #expect(real.stderr == "nvmegate: /dev/null is not an NVMe device node (character device 1:3, \"null\" in sysfs)\n")
        let badTarget = try NVMeGateCLI.run(["admin-passthru", "nvme0", "--target", "floppy", "-o", "6"])
        #expect(badTarget.status == 1)
        #expect(badTarget.stderr.contains("unknown target \"floppy\""))
        let noDirection = try NVMeGateCLI.run(["admin-passthru", "nvme0", "-o", "0xc0", "-l", "16"])
        #expect(noDirection.status != 0)
        #expect(noDirection.stderr.contains("data direction not given"))
    }
}
