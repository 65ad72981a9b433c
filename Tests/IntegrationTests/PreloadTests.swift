import Foundation
import Testing

/// The unmodified nvme-cli and smartctl binaries through libnvmegate-preload.so and the broker,
/// as an unprivileged user, under Policies/monitoring.toml: /dev/nvme0, /dev/ng0n1 and
/// /dev/nvme0n1 do not exist on the host; the library sends them to `nvmegate serve --target
/// emulated`, and the kernel never sees them. Reads work; Format NVM is refused, and the broker
/// counts and audits the refusal. Tests/Preload/preload_test.c then checks from inside a process
/// what the tools cannot show (every open variant, fstat and stat, the 64-bit ioctls' result,
/// threads, a descriptor reused behind the library's back).
///
/// nvme-cli 2.3 and smartmontools 7.3 (Debian 12's) must be installed; `.ci/install-deps`
/// installs them. Without them these tests are skipped, saying so.
@Suite("nvme-cli and smartctl through libnvmegate-preload.so")
struct PreloadTests {
    static let nvme = "/usr/sbin/nvme"
    static let smartctl = "/usr/sbin/smartctl"
    static var hasNVMe: Bool { FileManager.default.isExecutableFile(atPath: nvme) }
    static var hasSmartctl: Bool { FileManager.default.isExecutableFile(atPath: smartctl) }

    /// The library the package builds.
    static var library: String { Toolchain.productsDirectory.appendingPathComponent("libnvmegate-preload.so").path }

    /// The monitoring policy shipped: every unprivileged caller may read Identify, health log
    /// pages and features, and nothing else.
    static var monitoring: String { Toolchain.packageRoot.appendingPathComponent("Policies/monitoring.toml").path }

    /// Runs `executable arguments…` unprivileged with the library preloaded and `environment`
    /// (the configuration) added.
    static func run(_ executable: String, _ arguments: [String], _ environment: [String: String]) throws
        -> (status: Int32, stdout: String, stderr: String) {
        try #require(FileManager.default.fileExists(atPath: library), "\(library): build the package (swift build) first")
        let (program, args) = Unprivileged.command(executable, arguments)
        let r = try Toolchain.run(program, args, environment: environment.merging(["LD_PRELOAD": library]) { $1 })
        return (r.status, String(decoding: r.stdout, as: UTF8.self), r.stderr)
    }

    /// The configuration mapping the three nodes to `socket`.
    static func mapping(_ socket: String) -> [String: String] {
        ["NVMEGATE_PRELOAD": "/dev/nvme0=\(socket),/dev/ng0n1=\(socket),/dev/nvme0n1=\(socket)"]
    }

    @Test("the library needs no Swift library: nothing of Swift is mapped into the tools it is preloaded into")
    func noSwiftRuntime() throws {
        try #require(FileManager.default.fileExists(atPath: Self.library), "\(Self.library): build the package (swift build) first")
        let r = try Toolchain.run("/usr/bin/readelf", ["-d", Self.library])
        let needed = String(decoding: r.stdout, as: UTF8.self).split(separator: "\n").filter { $0.contains("(NEEDED)") }
        #expect(r.status == 0 && needed.contains { $0.contains("libc.so") }, "readelf -d: \(needed)")
        #expect(!needed.contains { $0.contains("swift") || $0.contains("Foundation") || $0.contains("dispatch") }, "\(needed)")
    }

    @Test("nvme id-ctrl, smart-log, id-ns (NVME_IOCTL_ID) and admin-passthru read the emulated controller",
          .enabled(if: PreloadTests.hasNVMe, "nvme-cli is not installed (apt-get install nvme-cli; .ci/install-deps installs it)"))
    func nvmeReads() throws {
        let broker = try BrokerProcess(policy: Self.monitoring)
        let env = Self.mapping(broker.socket)
        let idCtrl = try Self.run(Self.nvme, ["id-ctrl", "/dev/nvme0"], env)
        #expect(idCtrl.status == 0, "\(idCtrl.stderr)")
        #expect(idCtrl.stdout.contains("mn        : nvmegate emulated controller") && idCtrl.stdout.contains("sn        : NVMEGATE0001"),
                "\(idCtrl.stdout)")

        let smart = try Self.run(Self.nvme, ["smart-log", "/dev/nvme0"], env)
        #expect(smart.status == 0, "\(smart.stderr)")
        #expect(smart.stdout.contains("Smart Log for NVME device:nvme0 namespace-id:ffffffff")
                && smart.stdout.contains("temperature") && smart.stdout.contains("available_spare"), "\(smart.stdout)")

        // Without -n, nvme-cli asks the node its NSID with NVME_IOCTL_ID.
        let idNs = try Self.run(Self.nvme, ["id-ns", "/dev/ng0n1"], env)
        #expect(idNs.status == 0 && idNs.stdout.contains("NVME Identify Namespace 1:") && idNs.stdout.contains("nsze    : 0x200000"),
                "\(idNs.stdout) \(idNs.stderr)")

        let passthru = try Self.run(Self.nvme, ["admin-passthru", "/dev/nvme0", "--opcode=0x06", "--cdw10=1", "--data-len=4096", "-r"], env)
        #expect(passthru.status == 0 && passthru.stderr.contains("Admin Command Identify is Success")
                && passthru.stdout.contains("NVMEGATE0001"), "\(passthru.stdout) \(passthru.stderr)")
        #expect(broker.auditLines.isEmpty, "nothing refused: \(broker.auditLines)")
    }

    @Test("nvme format is refused with EACCES, which the broker counts and audits for Format NVM",
          .enabled(if: PreloadTests.hasNVMe, "nvme-cli is not installed (apt-get install nvme-cli; .ci/install-deps installs it)"))
    func nvmeFormatRefused() throws {
        let broker = try BrokerProcess(policy: Self.monitoring)
        let format = try Self.run(Self.nvme, ["format", "/dev/nvme0", "--namespace-id=1", "--force"], Self.mapping(broker.socket))
        #expect(format.status != 0 && format.stderr.contains("format: Permission denied"), "\(format.stdout) \(format.stderr)")
        let refusals = broker.auditLines.filter { $0.contains("\"command\":\"Format NVM (80h)\"") }
        #expect(refusals.count == 1 && refusals[0].contains("\"errno\":13") && refusals[0].contains("\"reason\":\"admin-command-not-allowed\""),
                "\(broker.auditLines)")
        if getuid() == 0 {
            #expect(refusals.first?.contains("\"uid\":65534") == true, "the broker saw the unprivileged caller: \(refusals)")
        }
        let metrics = try broker.metrics()
        #expect(metrics.contains("nvmegate_gate_decisions_total{reason=\"admin-command-not-allowed\"} 1"), "\(metrics)")
        #expect(metrics.contains("nvmegate_commands_total{tenant=\"\",outcome=\"refused\"} 1"), "\(metrics)")
    }

    /// nvme-cli 2.3 sends its only 64-bit passthru in show-regs: after finding no BAR in sysfs it
    /// reads the registers with the Fabrics Property Get command through NVME_IOCTL_ADMIN64_CMD,
    /// which the policy refuses (Fabrics, 7Fh). preload_test.c checks a 64-bit command that passes.
    @Test("nvme show-regs: its NVME_IOCTL_ADMIN64_CMD reaches the broker and is refused",
          .enabled(if: PreloadTests.hasNVMe, "nvme-cli is not installed (apt-get install nvme-cli; .ci/install-deps installs it)"))
    func nvmeAdmin64() throws {
        let broker = try BrokerProcess(policy: Self.monitoring)
        let regs = try Self.run(Self.nvme, ["show-regs", "/dev/nvme0"], Self.mapping(broker.socket))
        #expect(regs.stderr.contains("get-property: Permission denied"), "\(regs.stderr)")
        #expect(broker.auditLines.contains { $0.contains("\"command\":\"Fabrics (7Fh)\"") && $0.contains("\"errno\":13") },
                "\(broker.auditLines)")
    }

    @Test("smartctl -a reads identity, SMART / Health and the error log",
          .enabled(if: PreloadTests.hasSmartctl, "smartctl is not installed (apt-get install smartmontools; .ci/install-deps installs it)"))
    func smartctlAll() throws {
        let broker = try BrokerProcess(policy: Self.monitoring)
        let r = try Self.run(Self.smartctl, ["-a", "/dev/nvme0"], Self.mapping(broker.socket))
        #expect(r.status == 0, "smartctl exit status \(r.status): \(r.stdout) \(r.stderr)")
        for line in ["Model Number:                       nvmegate emulated controller",
                     "Serial Number:                      NVMEGATE0001",
                     "SMART overall-health self-assessment test result: PASSED",
                     "SMART/Health Information (NVMe Log 0x02)",
                     "Error Information (NVMe Log 0x01"] {
            #expect(r.stdout.contains(line), "missing \"\(line)\": \(r.stdout)")
        }
        #expect(broker.auditLines.isEmpty, "nothing refused: \(broker.auditLines)")
    }

    @Test("Broker down: open fails with ECONNREFUSED and one line naming the socket (none with NVMEGATE_PRELOAD_QUIET)",
          .enabled(if: PreloadTests.hasNVMe, "nvme-cli is not installed (apt-get install nvme-cli; .ci/install-deps installs it)"))
    func brokerDown() throws {
        let scratch = try CLIScratchDirectory()
        let socket = scratch.path("nobody-listens.sock")
        try Unprivileged.letEveryoneReach(socket)
        let r = try Self.run(Self.nvme, ["id-ctrl", "/dev/nvme0"], Self.mapping(socket))
        #expect(r.status != 0)
        #expect(r.stderr.contains("nvmegate-preload: /dev/nvme0: cannot reach the nvmegate broker at \(socket): No such file or directory"),
                "\(r.stderr)")
        #expect(r.stderr.contains("/dev/nvme0: Connection refused"), "nvme-cli's own line: \(r.stderr)")

        let quiet = try Self.run(Self.nvme, ["id-ctrl", "/dev/nvme0"], Self.mapping(socket).merging(["NVMEGATE_PRELOAD_QUIET": "1"]) { $1 })
        #expect(quiet.status != 0 && !quiet.stderr.contains("nvmegate-preload") && quiet.stderr.contains("Connection refused"),
                "\(quiet.stderr)")
    }

    @Test("NVMEGATE_PRELOAD_CONFIG: a file of \"PATH SOCKET\" lines; a configuration with an error redirects nothing and says why",
          .enabled(if: PreloadTests.hasNVMe, "nvme-cli is not installed (apt-get install nvme-cli; .ci/install-deps installs it)"))
    func configuration() throws {
        let broker = try BrokerProcess(policy: Self.monitoring)
        let scratch = try CLIScratchDirectory()
        try Unprivileged.letEveryoneReach(scratch.path("x"))
        let file = try scratch.write("preload.conf", Array("""
            # nvme-cli and smartctl through the broker
            /dev/nvme0   \(broker.socket)   # the controller

            \t/dev/ng0n1\t\(broker.socket)
            """.utf8))
        #expect(chmod(file, 0o644) == 0)
        let viaFile = try Self.run(Self.nvme, ["id-ctrl", "/dev/nvme0"], ["NVMEGATE_PRELOAD_CONFIG": file])
        #expect(viaFile.status == 0 && viaFile.stdout.contains("nvmegate emulated controller"), "\(viaFile.stderr)")

        let relative = try Self.run(Self.nvme, ["id-ctrl", "/dev/nvme0"], ["NVMEGATE_PRELOAD": "/dev/nvme0=\(broker.socket),dev/ng0n1=\(broker.socket)"])
        #expect(relative.status != 0, "nothing redirected")
        #expect(relative.stderr.contains("nvmegate-preload: NVMEGATE_PRELOAD entry 2 (\"dev/ng0n1=\(broker.socket)\"): PATH must be absolute; no path is redirected"),
                "\(relative.stderr)")
        #expect(relative.stderr.contains("/dev/nvme0: No such file or directory"), "the kernel's answer for the untouched path: \(relative.stderr)")

        let bad = try scratch.write("bad.conf", Array("/dev/nvme0 \(broker.socket) extra\n".utf8))
        #expect(chmod(bad, 0o644) == 0)
        let badFile = try Self.run(Self.nvme, ["id-ctrl", "/dev/nvme0"], ["NVMEGATE_PRELOAD_CONFIG": bad])
        #expect(badFile.status != 0 && badFile.stderr.contains("nvmegate-preload: \(bad):1: expected \"PATH SOCKET\"; no path is redirected"),
                "\(badFile.stderr)")
    }

    @Test("preload_test.c: every open variant, fstat and stat, 64-bit results, NVME_IOCTL_ID, threads, dup2 onto a mapped descriptor")
    func cProgram() throws {
        let broker = try BrokerProcess(policy: Self.monitoring)
        let scratch = try CLIScratchDirectory()
        let program = scratch.path("preload_test")
        try Unprivileged.letEveryoneReach(program)
        let compile = try Toolchain.run("/usr/bin/gcc", [
            "-std=c11", "-Wall", "-Wextra", "-Werror", "-D_GNU_SOURCE", "-O2", "-pthread",
            Toolchain.packageRoot.appendingPathComponent("Tests/Preload/preload_test.c").path, "-o", program,
        ])
        try #require(compile.status == 0, "gcc preload_test.c: \(compile.stderr)")
        let r = try Self.run(program, [], Self.mapping(broker.socket))
        #expect(r.status == 0 && r.stdout.hasSuffix(" passed, 0 failed\n"), "\(r.stdout) \(r.stderr)")
    }
}
