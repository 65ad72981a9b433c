import Foundation
import NVMeSpec
import Testing

/// The log commands through the built binary: effects-log, smart-log, error-log, fw-log,
/// get-log, sanitize-log, self-test-log and the commands that change what they show
/// (fw-download, fw-commit, device-self-test, sanitize), on the emulated controller.
@Suite("nvmegate log commands (CLI)")
struct CLILogTests {
    // MARK: Helpers

    /// A file-backed emulated controller of the test's own, shared by the processes it runs.
    final class Device {
        let scratch: CLIScratchDirectory
        let target: [String]

        init() throws {
            scratch = try CLIScratchDirectory()
            target = ["--target", "emulated:" + scratch.path("controller")]
        }

        /// Runs `nvmegate <command> <node> <arguments…>` on this controller.
        func run(_ command: String, _ node: String = "nvme0", _ arguments: [String] = []) throws -> NVMeGateCLI.Result {
            try NVMeGateCLI.run([command, node] + target + arguments)
        }

        /// Like `run`, and requires success.
        func ok(_ command: String, _ node: String = "nvme0", _ arguments: [String] = []) throws -> NVMeGateCLI.Result {
            let result = try run(command, node, arguments)
            #expect(result.status == 0, "\(command) \(arguments): \(result.stderr)")
            return result
        }

        /// Writes `bytes` (whole 512-byte blocks) at `lba` of namespace 1 with io-passthru.
        func write(_ bytes: [UInt8], lba: UInt32) throws {
            let path = try scratch.write("block-\(lba)", bytes)
            _ = try ok("io-passthru", "nvme0n1", ["--opcode=0x01", "--namespace-id=1", "--data-len=\(bytes.count)",
                                                   "--cdw10=\(lba)", "--cdw12=\(bytes.count / 512 - 1)", "-i", path, "-w"])
        }

        /// Reads `blocks` 512-byte blocks at `lba` of namespace 1 with io-passthru.
        func read(lba: UInt32, blocks: Int) throws -> [UInt8] {
            try ok("io-passthru", "nvme0n1", ["--opcode=0x02", "--namespace-id=1", "--data-len=\(512 * blocks)",
                                              "--cdw10=\(lba)", "--cdw12=\(blocks - 1)", "-r", "-b"]).stdoutBytes
        }
    }

    /// Runs nvmegate on the in-memory emulated controller (fresh each run).
    static func run(_ arguments: [String]) throws -> NVMeGateCLI.Result {
        try NVMeGateCLI.run(arguments + ["--target", "emulated"])
    }

    static func json(_ result: NVMeGateCLI.Result) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(result.stdoutBytes))
    }

    static func object(_ result: NVMeGateCLI.Result) throws -> [String: Any] {
        try #require(try json(result) as? [String: Any], "a JSON object: \(result.stdout)")
    }

    /// The text lines of `result`'s standard output.
    static func lines(_ result: NVMeGateCLI.Result) -> [String] {
        result.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    }

    /// The value nvme-cli prints after "name<tabs>: " in a key-value line.
    static func value(_ result: NVMeGateCLI.Result, _ key: String) -> String? {
        for line in lines(result) where line.hasPrefix(key) {
            let rest = line.dropFirst(key.count).drop { $0 == "\t" || $0 == " " }
            if rest.hasPrefix(":") { return String(rest.dropFirst()).trimmingCharacters(in: .whitespaces) }
        }
        return nil
    }

    static func le<T: FixedWidthInteger>(_ bytes: [UInt8], _ offset: Int, _: T.Type) -> T {
        var value: T = 0
        for i in 0..<(T.bitWidth / 8) { value |= T(bytes[offset + i]) << (8 * i) }
        return value
    }

    /// Asserts an unprivileged caller is refused Get Log Page under the kernel policy, and
    /// that nvme-cli's errno words and the gate's reason are on standard error.
    static func expectRefused(_ result: NVMeGateCLI.Result, _ prefix: String) {
        #expect(result.status == 1)
        #expect(result.stdoutBytes.isEmpty)
        #expect(result.stderr.hasPrefix(prefix + ": Permission denied: Get Log Page (02h)"), "\(result.stderr)")
        #expect(result.stderr.contains("[admin-command-not-allowed]"), "\(result.stderr)")
    }

    // MARK: effects-log

    /// The three layouts against the raw page: every supported entry (decoded from `-b`)
    /// appears once in the table, the -H table and the JSON, with its dword; nothing else does.
    @Test func effectsLogLayoutsMatchTheRawPage() throws {
        let raw = try Self.run(["effects-log", "nvme0", "-b"])
        #expect(raw.status == 0)
        let page = try #require(CommandEffectsLog(raw.stdoutBytes), "a 4096-byte page, got \(raw.stdoutBytes.count)")
        let normal = try Self.run(["effects-log", "nvme0"])
        let human = try Self.run(["effects-log", "nvme0", "-H"])
        let json = try #require(try Self.json(try Self.run(["effects-log", "nvme0", "-o", "json"])) as? [[String: Any]])
        #expect(json.count == 1)
        let set = try #require(json.first)
        #expect(set["command_set_identifier"] as? Int == 0)
        let admin = try #require(set["admin_cmd_set"] as? [String: Int])
        let io = try #require(set["io_cmd_set"] as? [String: Int])

        let tableRows = Self.lines(normal).filter { $0.hasPrefix("ACS") || $0.hasPrefix("IOCS") }
        let humanRows = Self.lines(human).filter { $0.hasPrefix("ACS") || $0.hasPrefix("IOCS") }
        var expectedRows: [String] = []
        for (queue, prefix, entries) in [(Queue.admin, "ACS", admin), (Queue.io, "IOCS", io)] {
            var supported = 0
            for opcode in 0..<256 {
                let effects = page[queue, UInt8(opcode)]
                let keys = entries.keys.filter { $0.hasPrefix("\(prefix)_\(opcode) (") }
                guard effects.isSupported else { #expect(keys.isEmpty); continue }
                supported += 1
                let key = try #require(keys.first, "\(prefix)_\(opcode) in the JSON")
                #expect(entries[key] == Int(effects.rawValue))
                let label = prefix + String(opcode)
                let dword = String(format: "%08x", effects.rawValue)
                let row = try #require(tableRows.first { $0.hasPrefix(label + " ") }, "\(label) in the table")
                #expect(row.hasSuffix("] " + dword))
                expectedRows.append(row)
                let decoded = try #require(humanRows.first { $0.hasPrefix(row) }, "\(label) in the -H table")
                let lbcc = effects.contains(.logicalBlockContentChange) ? "+" : "-"
                #expect(decoded.hasPrefix(row + "  CSUPP+  LBCC" + lbcc + "  NCC"))
                let cse = ["No command restriction", "No other command for same namespace", "No other command for any namespace"]
                #expect(decoded.hasSuffix(cse[Int(effects.submissionAndExecution)]))
            }
            #expect(entries.count == supported)
        }
        #expect(tableRows == expectedRows)
        // nvme-cli's exact layout, as captured from nvme-cli 2.3 against QEMU.
        #expect(normal.stdout.hasPrefix("NVM Command Set Log Page\n" + String(repeating: "-", count: 80) + "\nAdmin Commands\n"))
        #expect(tableRows.contains("ACS2     [Get Log Page                    ] 00000001"))
        #expect(tableRows.contains("IOCS1    [Write                           ] 00000003"))
        #expect(humanRows.contains("ACS2     [Get Log Page                    ] 00000001  CSUPP+  LBCC-  NCC-  NIC-  CCC-  USS-  No command restriction"))
        #expect(humanRows.contains("IOCS1    [Write                           ] 00000003  CSUPP+  LBCC+  NCC-  NIC-  CCC-  USS-  No command restriction"))
        #expect(normal.stdout.contains("\n\nI/O Commands\n"))
    }

    @Test func effectsLogCommandSetsAndRefusal() throws {
        // Without --csi: the command sets the controller reports (here NVM only), found
        // without a command the controller fails (its error log stays empty).
        let device = try Device()
        let all = try device.ok("effects-log", "nvme0", ["-b"])
        let nvm = try device.ok("effects-log", "nvme0", ["--csi=0", "-b"])
        #expect(all.stdoutBytes == nvm.stdoutBytes)
        #expect(try Self.object(try device.ok("error-log", "nvme0", ["-e", "1", "-o", "json"]))["errors"]
            .flatMap { ($0 as? [[String: Any]])?.first?["error_count"] as? Int } == 0)
        // Another command set: the admin half only, under nvme-cli's title for it.
        let zoned = try Self.run(["effects-log", "nvme0", "-c", "2"])
        #expect(zoned.status == 0)
        #expect(zoned.stdout.hasPrefix("ZNS Command Set Log Page\n"))
        #expect(zoned.stdout.contains("ACS6     [Identify"))
        #expect(!zoned.stdout.contains("I/O Commands"))
        let zonedJSON = try #require(try Self.json(try Self.run(["effects-log", "nvme0", "-c", "2", "-o", "json"])) as? [[String: Any]])
        #expect(zonedJSON.first?["command_set_identifier"] as? Int == 2)
        #expect((zonedJSON.first?["io_cmd_set"] as? [String: Int])?.isEmpty == true)

        Self.expectRefused(try Self.run(["effects-log", "nvme0", "--as", "1000"]), "effects log page")
    }

    // MARK: smart-log

    /// Writes through io-passthru move the counters smart-log reports, across processes;
    /// text, JSON and raw agree with each other.
    @Test func smartLogCountersMove() throws {
        let device = try Device()
        let before = try Self.object(try device.ok("smart-log", "nvme0", ["-o", "json"]))
        try device.write([UInt8](repeating: 0xA5, count: 16 * 512), lba: 8)
        try device.write([UInt8](repeating: 0x5A, count: 512), lba: 100)
        _ = try device.read(lba: 8, blocks: 16)
        let after = try Self.object(try device.ok("smart-log", "nvme0", ["-o", "json"]))
        func count(_ object: [String: Any], _ key: String) throws -> Int {
            let digits = try #require(object[key] as? String, "\(key) is a string of digits")
            return try #require(Int(digits))
        }
        #expect(try count(after, "host_write_commands") == count(before, "host_write_commands") + 2)
        #expect(try count(after, "data_units_written") > count(before, "data_units_written"))
        #expect(try count(after, "host_read_commands") == count(before, "host_read_commands") + 1)
        #expect(after["temperature"] as? Int == 323)
        #expect(after["avail_spare"] as? Int == 100)
        #expect(after["spare_thresh"] as? Int == 10)
        for key in ["critical_warning", "percent_used", "endurance_grp_critical_warning_summary", "warning_temp_time",
                    "critical_comp_time", "temperature_sensor_1", "thm_temp1_trans_count", "thm_temp2_trans_count",
                    "thm_temp1_total_time", "thm_temp2_total_time", "power_cycles", "power_on_hours",
                    "unsafe_shutdowns", "media_errors", "num_err_log_entries", "controller_busy_time", "data_units_read"] {
            #expect(after[key] != nil, "\(key)")
        }

        let text = try device.ok("smart-log")
        #expect(Self.lines(text).first == "Smart Log for NVME device:nvme0 namespace-id:ffffffff")
        #expect(text.stdout.contains("\ntemperature\t\t\t\t: 50°C (323 Kelvin)\n"))
        #expect(Self.value(text, "host_write_commands") == String(try count(after, "host_write_commands")))
        #expect(Self.value(text, "data_units_written") == String(try count(after, "data_units_written")))
        #expect(Self.value(text, "available_spare") == "100%")

        let raw = try device.ok("smart-log", "nvme0", ["-b"]).stdoutBytes
        #expect(raw.count == 512)
        #expect(Int(Self.le(raw, 80, UInt64.self)) == (try count(after, "host_write_commands")))
        #expect(Self.le(raw, 1, UInt16.self) == 323)

        let human = try Self.object(try device.ok("smart-log", "nvme0", ["-H", "-o", "json"]))
        let warning = try #require(human["critical_warning"] as? [String: Int])
        #expect(Set(warning.keys) == ["value", "available_spare", "temp_threshold", "reliability_degraded", "ro", "vmbu_failed", "pmr_ro"])
        let humanText = try device.ok("smart-log", "nvme0", ["-H"])
        #expect(humanText.stdout.contains("      Temp. Threshold[1]             : 0\n"))

        // SMART is kept per controller (LPA bit 0 clear): a namespace is refused by the device.
        let perNamespace = try device.run("smart-log", "nvme0", ["-n", "1"])
        #expect(perNamespace.status == 1)
        #expect(perNamespace.stderr.hasPrefix("NVMe status: Invalid Field in Command"))
        Self.expectRefused(try device.run("smart-log", "nvme0", ["--as", "1000"]), "smart log")
    }

    // MARK: error-log

    @Test func errorLogShowsTheFailedCommand() throws {
        let device = try Device()
        // Beyond the 1 GiB namespace: LBA Out of Range, recorded in the error log.
        let failed = try device.run("io-passthru", "nvme0n1", ["--opcode=0x02", "--namespace-id=1", "--data-len=512",
                                                               "--cdw10=0x7fffffff", "-r"])
        #expect(failed.status == 1)
        let json = try Self.object(try device.ok("error-log", "nvme0", ["-e", "2", "-o", "json"]))
        let errors = try #require(json["errors"] as? [[String: Any]])
        #expect(errors.count == 2)
        #expect(errors[0]["error_count"] as? Int == 1)
        #expect(errors[0]["status_field"] as? Int == 0x4080)
        #expect(errors[0]["nsid"] as? Int == 1)
        #expect(errors[0]["lba"] as? Int == 0x7FFF_FFFF)
        #expect(errors[0]["sqid"] as? Int == 1)
        #expect(errors[1]["error_count"] as? Int == 0)

        let text = try device.ok("error-log", "nvme0", ["-e", "1"])
        #expect(Self.lines(text).prefix(3) == ["Error Log Entries for device:nvme0 entries:1", ".................", " Entry[ 0]   "])
        #expect(text.stdout.contains("\nstatus_field\t: 0x4080(LBA Out of Range: "))
        #expect(text.stdout.contains("\nlba\t\t: 0x7fffffff\n"))
        #expect(text.stdout.contains("\nnsid\t\t: 0x1\n"))
        let raw = try device.ok("error-log", "nvme0", ["-e", "3", "-b"]).stdoutBytes
        #expect(raw.count == 3 * 64)
        #expect(Self.le(raw, 12, UInt16.self) >> 1 == 0x4080)
        // The controller keeps 64 entries (ELPE 63): more are not asked for.
        #expect(try device.ok("error-log", "nvme0", ["-e", "1000", "-b"]).stdoutBytes.count == 64 * 64)

        let zero = try device.run("error-log", "nvme0", ["-e", "0"])
        #expect(zero.status == 1 && zero.stderr == "non-zero log-entries is required param\n")
        Self.expectRefused(try device.run("error-log", "nvme0", ["--as", "1000"]), "error log")
    }

    // MARK: get-log

    /// Offset and partial reads are the matching slices of the whole page.
    @Test func getLogSlicesTheLog() throws {
        let device = try Device()
        let whole = try device.ok("get-log", "nvme0", ["--log-id=5", "--log-len=4096", "-b"]).stdoutBytes
        #expect(whole.count == 4096)
        #expect(whole == (try device.ok("effects-log", "nvme0", ["-b"])).stdoutBytes)
        for (offset, length) in [(0, 16), (0x400, 64), (8, 4), (4000, 96)] {
            let part = try device.ok("get-log", "nvme0", ["-i", "5", "-l", "\(length)", "-o", "\(offset)", "-b"]).stdoutBytes
            #expect(part == Array(whole[offset..<offset + length]), "offset \(offset) length \(length)")
        }
        let quarters = try (0..<4).flatMap { i in
            try device.ok("get-log", "nvme0", ["-i", "5", "-l", "1024", "--lpo=\(i)K", "-b"]).stdoutBytes
        }
        #expect(quarters == whole)
        // Past the end of the page the controller returns zeroes for the rest.
        let tail = try device.ok("get-log", "nvme0", ["-i", "5", "-l", "4096", "-o", "0x800", "-b"]).stdoutBytes
        #expect(tail == Array(whole[2048...]) + [UInt8](repeating: 0, count: 2048))

        let dump = try device.ok("get-log", "nvme0", ["--log-id=0x05", "--log-len=32", "--lpo=0x400"])
        #expect(dump.stdout == "Device:nvme0 log-id:5 namespace-id:0xffffffff\n"
            + "       0  1  2  3  4  5  6  7  8  9  a  b  c  d  e  f\n"
            + "0000: " + whole[0x400..<0x410].map { String(format: "%02x", $0) }.joined(separator: " ") + " \"................\"\n"
            + "0010: " + whole[0x410..<0x420].map { String(format: "%02x", $0) }.joined(separator: " ") + " \"................\"\n")
        let smart = try device.ok("get-log", "nvme0", ["-i", "2", "-l", "512", "-b"]).stdoutBytes
        #expect(Self.le(smart, 1, UInt16.self) == 323)

        for (arguments, message) in [(["-i", "5"], "non-zero log-len is required param"),
                                     (["-i", "5", "-l", "10"], "log-len 10 is not a whole number of dwords (a multiple of 4)"),
                                     (["-i", "5", "-l", "8", "--lsp", "200"], "invalid lsp param"),
                                     (["-i", "5", "-l", "8", "-U", "129"], "invalid uuid index param")] {
            let bad = try device.run("get-log", "nvme0", arguments)
            #expect(bad.status == 1 && bad.stderr == message + "\n", "\(arguments): \(bad.stderr)")
        }
        let unknown = try device.run("get-log", "nvme0", ["-i", "0x7e", "-l", "8"])
        #expect(unknown.status == 1 && unknown.stderr.hasPrefix("NVMe status: Invalid Log Page"), "\(unknown.stderr)")
        Self.expectRefused(try device.run("get-log", "nvme0", ["-i", "5", "-l", "4096", "--as", "1000"]), "log page")
    }

    // MARK: Firmware

    /// fw-download then fw-commit, each its own process, change the slot fw-log reports.
    @Test func firmwareDownloadAndCommitChangeTheActiveSlot() throws {
        let device = try Device()
        let first = try device.ok("fw-log")
        #expect(first.stdout == "Firmware Log for device:nvme0\nafi  : 0x1\nfrs1 : 0x2020202020302e31 (1.0.....)\n")

        var image = Array("2.0TEST\0".utf8)
        image += (0..<(3 * 4096 - image.count)).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let path = try device.scratch.write("firmware.bin", image)
        let download = try device.ok("fw-download", "nvme0", ["--fw=" + path, "--xfer=4096"])
        #expect(download.stdout == "Firmware download success\n")
        let commit = try device.ok("fw-commit", "nvme0", ["--slot=2", "--action=3"])
        #expect(commit.stdout == "Success committing firmware action:3 slot:2\nMultiple Update Detected (MUD) Value: 0\n")

        let text = try device.ok("fw-log")
        #expect(Self.lines(text).contains("afi  : 0x2"))
        #expect(Self.lines(text).contains("frs2 : 0x2054534554302e32 (2.0TEST.)"))
        let json = try Self.object(try device.ok("fw-log", "nvme0", ["-o", "json"]))
        let slots = try #require(json["nvme0"] as? [String: Any])
        #expect(slots["Active Firmware Slot (afi)"] as? Int == 2)
        // The controller keeps the revision as FR does: ASCII, space padded.
        let revision = Array("2.0TEST ".utf8)
        #expect(slots["Firmware Rev Slot 2"] as? String == "\(Self.le(revision, 0, UInt64.self)) (2.0TEST.)")
        let raw = try device.ok("fw-log", "nvme0", ["-b"]).stdoutBytes
        #expect(raw.count == 512 && raw[0] == 2 && Array(raw[16..<24]) == revision)

        // Commit to slot 3 for the next reset: AFI's next-slot nibble, the image in slot 3.
        let next = Array("3.0NEXT!".utf8) + [UInt8](repeating: 0x11, count: 4088)
        _ = try device.ok("fw-download", "nvme0", ["-f", try device.scratch.write("next.bin", next), "-p"])
        _ = try device.ok("fw-commit", "nvme0", ["-s", "3", "-a", "1"])
        let pending = try device.ok("fw-log")
        #expect(Self.lines(pending).contains("afi  : 0x32"))
        #expect(Self.lines(pending).contains { $0.hasPrefix("frs3 : ") && $0.hasSuffix("(3.0NEXT!)") })
    }

    @Test func firmwareCommandsCheckTheirInput() throws {
        let device = try Device()
        // Nothing downloaded: the device refuses; nvme-cli still reports the MUD value.
        let nothing = try device.run("fw-commit", "nvme0", ["-s", "2", "-a", "3"])
        #expect(nothing.status == 1)
        #expect(nothing.stderr.hasPrefix("NVMe status: Invalid Firmware Image"))
        #expect(nothing.stdout == "Multiple Update Detected (MUD) Value: 0\n")
        for (arguments, message) in [(["-s", "9"], "invalid slot:9"), (["-a", "4"], "invalid action:4"),
                                     (["-a", "8"], "invalid action:8"), (["-b", "2"], "invalid boot partition id:2")] {
            let bad = try device.run("fw-commit", "nvme0", arguments)
            #expect(bad.status == 1 && bad.stderr == message + "\n", "\(arguments): \(bad.stderr)")
        }
        let odd = try device.run("fw-download", "nvme0", ["-f", try device.scratch.write("odd.bin", [1, 2, 3, 4, 5, 6])])
        #expect(odd.status == 1 && odd.stderr == "Invalid size:6 for f/w image\n")
        let missing = try device.run("fw-download", "nvme0", ["-f", device.scratch.path("absent.bin")])
        #expect(missing.status == 1 && missing.stderr.hasPrefix("Failed to open firmware file "))
        #expect(missing.stderr.hasSuffix(": No such file or directory\n"))

        // Unprivileged: refused by the policy, retried as nvme-cli retries an errno.
        let image = try device.scratch.write("image.bin", [UInt8](repeating: 0x41, count: 4096))
        let refused = try device.run("fw-download", "nvme0", ["-f", image, "--as", "1000"])
        #expect(refused.status == 1)
        #expect(refused.stderr.hasPrefix("fw-download: error on offset 0x00000000/0x00001000\nfw-download: Permission denied: Firmware Image Download (11h)"))
        #expect(refused.stderr.contains("retrying offset 0 (2/3)"))
        #expect(!(try device.ok("fw-log")).stdout.contains("frs2"))
    }

    // MARK: Self-test

    @Test func deviceSelfTestResultsReachTheSelfTestLog() throws {
        let device = try Device()
        #expect(try device.ok("device-self-test", "nvme0", ["-s", "1"]).stdout == "Short Device self-test started\n")
        let text = try device.ok("self-test-log", "nvme0", ["-e", "2", "-v"])
        #expect(Self.lines(text).prefix(4) == ["Device Self Test Log for NVME device:nvme0", "Current operation  : 0",
                                               "Current Completion : 0%", "Self Test Result[0]:"])
        #expect(text.stdout.contains("  Operation Result             : 0 Operation completed without error\n"
                                     + "  Self Test Code               : 1 Short device self-test operation\n"))
        #expect(text.stdout.hasSuffix("Self Test Result[1]:\n  Operation Result             : 0xf Entry not used (does not contain a result)\n"))

        // An extended test runs on in another process, then is aborted.
        #expect(try device.ok("device-self-test", "nvme0", ["--self-test-code=2"]).stdout == "Extended Device self-test started\n")
        let running = try device.ok("self-test-log", "nvme0", ["-e", "0"])
        #expect(Self.lines(running).contains("Current operation  : 0x2"))
        let busy = try device.run("device-self-test", "nvme0", ["-s", "2"])
        #expect(busy.status == 1 && busy.stderr.hasPrefix("NVMe status: Device Self-test In Progress"))
        #expect(try device.ok("device-self-test", "nvme0", ["-s", "0xf"]).stdout == "Aborting device self-test operation\n")

        let json = try Self.object(try device.ok("self-test-log", "nvme0", ["-o", "json", "-e", "3"]))
        #expect(json["Current Device Self-Test Operation"] as? Int == 0)
        let reports = try #require(json["List of Valid Reports"] as? [[String: Any]])
        #expect(reports.count == 3)
        #expect(reports[0]["Self test result"] as? Int == 1 && reports[0]["Self test code"] as? Int == 2)
        #expect(reports[1]["Self test result"] as? Int == 0 && reports[1]["Self test code"] as? Int == 1)
        #expect(reports[2].count == 1 && reports[2]["Self test result"] as? Int == 15)
        let raw = try device.ok("self-test-log", "nvme0", ["-b"]).stdoutBytes
        #expect(raw.count == 564 && raw[4] == 0x21 && raw[32] == 0x10)

        let waited = try device.ok("device-self-test", "nvme0", ["-s", "1", "--wait"])
        #expect(waited.stdout.hasPrefix("Short Device self-test started\nWaiting for self test completion...\n"))
        #expect(waited.stdout.hasSuffix("] 100%\n"))
        let refused = try device.run("self-test-log", "nvme0", ["--as", "1000"])
        Self.expectRefused(refused, "self test log")
        let start = try device.run("device-self-test", "nvme0", ["-s", "1", "--as", "1000"])
        #expect(start.status == 1 && start.stderr.hasPrefix("Device self-test: Permission denied: Device Self-test (14h)"))
    }

    // MARK: Sanitize

    @Test func sanitizeErasesAndTheLogSaysSo() throws {
        let device = try Device()
        let before = try device.ok("sanitize-log", "nvme0", ["-o", "json"])
        let fresh = try #require(try Self.object(before)["nvme0"] as? [String: Any])
        #expect((fresh["sstat"] as? [String: Any])?["status"] as? String == "(0) NVM Subsystem has never been sanitized.")

        try device.write([UInt8](repeating: 0xC3, count: 1024), lba: 0)
        #expect(try device.read(lba: 0, blocks: 2) == [UInt8](repeating: 0xC3, count: 1024))
        let sanitize = try device.ok("sanitize", "nvme0", ["--sanact=start-block-erase"])
        #expect(sanitize.stdout.isEmpty && sanitize.stderr.isEmpty)
        #expect(try device.read(lba: 0, blocks: 2) == [UInt8](repeating: 0, count: 1024))

        let text = try device.ok("sanitize-log", "nvme0", ["-H"])
        #expect(Self.lines(text).prefix(3) == ["Sanitize Progress                      (SPROG) :  65535",
                                               "Sanitize Status                        (SSTAT) :  0x1",
                                               "\t[2:0]\tMost Recent Sanitize Command Completed Successfully."])
        #expect(Self.lines(text).contains("Sanitize Command Dword 10 Information (SCDW10) :  0x2"))
        #expect(Self.lines(text).contains("Estimated Time For Overwrite                   :  4294967295 (No time period reported)"))
        let json = try #require(try Self.object(try device.ok("sanitize-log", "nvme0", ["-o", "json"]))["nvme0"] as? [String: Any])
        let sstat = try #require(json["sstat"] as? [String: Any])
        #expect(sstat["status"] as? String == "(1) Most Recent Sanitize Command Completed Successfully.")
        #expect(sstat["global_erased"] as? Int == 1)
        #expect(json["cdw10_info"] as? Int == 2 && json["sprog"] as? Int == 65535)
        let raw = try device.ok("sanitize-log", "nvme0", ["-b"]).stdoutBytes
        #expect(raw.count == 512 && Self.le(raw, 2, UInt16.self) == 0x101 && Self.le(raw, 4, UInt32.self) == 2)

        // Crypto erase without deallocation: SCDW10 carries NODAS.
        _ = try device.ok("sanitize", "nvme0", ["-a", "4", "--no-dealloc"])
        let crypto = try #require(try Self.object(try device.ok("sanitize-log", "nvme0", ["-o", "json"]))["nvme0"] as? [String: Any])
        #expect(crypto["cdw10_info"] as? Int == 0x204)
    }

    @Test func sanitizeChecksItsArguments() throws {
        let device = try Device()
        for (arguments, message) in [([String](), "Invalid Sanitize Action"), (["-a", "5"], "Invalid Sanitize Action"),
                                     (["-a", "exit", "-u"], "SANACT is Exit Failure Mode"),
                                     (["-a", "1", "-d"], "SANACT is Exit Failure Mode"),
                                     (["-a", "start-overwrite", "-n", "17"], "OWPASS out of range [0-16]"),
                                     (["-a", "2", "-p", "0x5a5a"], "SANACT is not Overwrite"),
                                     (["-a", "start-block-erase", "-i"], "SANACT is not Overwrite"),
                                     (["-a", "erase"], "Expected byte argument for 'sanact' but got 'erase'!")] {
            let bad = try device.run("sanitize", "nvme0", arguments)
            #expect(bad.status == 1 && bad.stderr == message + "\n", "\(arguments): \(bad.stderr)")
        }
        let refused = try device.run("sanitize", "nvme0", ["-a", "2", "--as", "1000"])
        #expect(refused.status == 1 && refused.stderr.hasPrefix("sanitize: Permission denied: Sanitize (84h)"), "\(refused.stderr)")
        let log = try device.ok("sanitize-log")
        #expect(Self.lines(log).contains("Sanitize Status                        (SSTAT) :  0"))
    }
}
