import Foundation
import Testing

/// `nvmegate bench`, run as the built binary: counts that add up, ordered percentiles,
/// refusals by reason under a tenant policy, flag errors that name the flag, and the
/// progress line only on a terminal.
@Suite("nvmegate bench (CLI)")
struct CLIBenchTests {
    /// Runs `nvmegate bench arguments… -o json` and parses the report; expects success and
    /// nothing on standard error (no progress line without a terminal).
    static func json(_ arguments: [String], sourceLocation: SourceLocation = #_sourceLocation) throws -> [String: Any] {
        let result = try NVMeGateCLI.run(["bench"] + arguments + ["-o", "json"])
        #expect(result.status == 0, "\(result.stderr)", sourceLocation: sourceLocation)
        #expect(result.stderr == "", sourceLocation: sourceLocation)
        return try #require(try JSONSerialization.jsonObject(with: Data(result.stdoutBytes)) as? [String: Any],
                            sourceLocation: sourceLocation)
    }

    static func number(_ object: [String: Any], _ key: String) -> Int { (object[key] as? NSNumber)?.intValue ?? -1 }
    static func direction(_ report: [String: Any], _ name: String) -> [String: Any] { report[name] as? [String: Any] ?? [:] }

    /// Latency: min ≤ p50 ≤ p99 ≤ p99.9 ≤ max, all positive when anything completed.
    static func expectOrderedLatency(_ t: [String: Any], sourceLocation: SourceLocation = #_sourceLocation) {
        let lat = t["lat_ns"] as? [String: Any] ?? [:]
        let p = lat["percentile"] as? [String: Any] ?? [:]
        let values = [number(lat, "min"), number(p, "50.000000"), number(p, "99.000000"), number(p, "99.900000"), number(lat, "max")]
        #expect(values[0] > 0 && zip(values, values.dropFirst()).allSatisfy { $0 <= $1 }, "\(values)", sourceLocation: sourceLocation)
        let mean = (lat["mean"] as? NSNumber)?.doubleValue ?? -1
        #expect(Double(values[0]) <= mean && mean <= Double(values[4]), sourceLocation: sourceLocation)
    }

    @Test("loopback, randrw, 2 jobs at depth 4: ios = numjobs × number-ios, split between reads and writes")
    func loopbackMixed() throws {
        let r = try Self.json(["--target", "loopback", "--rw", "randrw", "--numjobs", "2", "--iodepth", "4", "--number-ios", "300"])
        let read = Self.direction(r, "read"), write = Self.direction(r, "write")
        #expect(Self.number(r, "ios") == 600 && Self.number(r, "completed") == 600 && Self.number(r, "refused") == 0)
        #expect(Self.number(read, "ios") + Self.number(write, "ios") == 600)
        // 50% reads by default: both directions get a fair share of 600.
        #expect((200...400).contains(Self.number(read, "ios")), "\(Self.number(read, "ios")) reads")
        #expect(Self.number(read, "io_bytes") == Self.number(read, "completed") * 4096)
        #expect(Self.number(write, "io_bytes") == Self.number(write, "completed") * 4096)
        Self.expectOrderedLatency(read)
        Self.expectOrderedLatency(write)
        Self.expectOrderedLatency(r)
        #expect(r["rw"] as? String == "randrw" && Self.number(r, "iodepth") == 4 && Self.number(r, "numjobs") == 2)
        #expect((r["refusals"] as? [Any])?.isEmpty == true && (r["nvme_errors"] as? [Any])?.isEmpty == true)
    }

    @Test("elapsed_ns covers every timed command, however short the run (one job at depth 1: at least their latencies' sum)")
    func elapsedCoversCommands() throws {
        for count in ["1", "5", "2000"] {
            let r = try Self.json(["nvme0n1", "--target", "emulated", "--rw", "randwrite", "--number-ios", count])
            let lat = r["lat_ns"] as? [String: Any] ?? [:]
            let sum = ((lat["mean"] as? NSNumber)?.doubleValue ?? -1) * Double(Self.number(r, "completed"))
            // The mean is printed to 3 decimals: the sum it gives may be 1 ns over the true one.
            #expect(sum > 0 && Double(Self.number(r, "elapsed_ns")) + 1 >= sum,
                    "\(count) commands: elapsed_ns \(Self.number(r, "elapsed_ns")), latencies \(sum) ns")
        }
    }

    @Test("--rwmixread 80 reads four commands in five")
    func readMix() throws {
        let r = try Self.json(["--target", "loopback", "--rw", "randrw", "--rwmixread", "80", "--number-ios", "2000"])
        #expect((1500...1700).contains(Self.number(Self.direction(r, "read"), "ios")))
    }

    @Test("emulated: writes move real data (read back with nvmegate read), sequential reads wrap in a small region")
    func emulatedWritesAndReads() throws {
        let files = try CLIScratchDirectory()
        let target = "emulated:" + files.path("subsystem")
        let w = try Self.json(["--target", target, "--rw", "write", "--bs", "8k", "--size", "16k", "--number-ios", "2"])
        let write = Self.direction(w, "write")
        #expect(Self.number(write, "completed") == 2 && Self.number(write, "io_bytes") == 16384)
        #expect(Self.number(Self.direction(w, "read"), "ios") == 0)
        let data = try NVMeGateCLI.run(["read", "nvme0n1", "--target", target, "-s", "0", "-c", "15", "-z", "8192"])
        #expect(data.status == 0 && data.stdoutBytes.count == 8192)
        #expect(data.stdoutBytes.contains { $0 != 0 }, "the bench's writes reached the namespace")
        // 5 sequential reads over 2 blocks of 8 KiB: the region wraps, nothing leaves it.
        let r = try Self.json(["--target", target, "--rw", "read", "--bs", "8k", "--size", "16k", "--number-ios", "5"])
        #expect(Self.number(Self.direction(r, "read"), "completed") == 5 && Self.number(r, "region_bytes") == 16384)
        Self.expectOrderedLatency(Self.direction(r, "read"))
    }

    @Test("a tenant owning an LBA range: the whole namespace gives lba-range-not-owned refusals, its range none")
    func tenantRefusals() throws {
        let files = try CLIScratchDirectory()
        let target = "emulated:" + files.path("subsystem")
        // Namespace 2 of 1 GiB (2097152 blocks); "scratch" (uid 1002) owns its first 1048576 blocks.
        #expect(try NVMeGateCLI.run(["create-ns", "nvme0", "--nsze", "2097152", "--ncap", "2097152", "--flbas", "0",
                                     "--target", target]).status == 0)
        #expect(try NVMeGateCLI.run(["attach-ns", "nvme0", "--namespace-id", "2", "--controllers", "1", "--target", target]).status == 0)
        let policy = Toolchain.packageRoot.appendingPathComponent("Policies/tenants.toml").path
        let common = ["nvme0n2", "--target", target, "--policy", policy, "--as", "1002", "--rw", "randrw", "--number-ios", "400"]
        let whole = try Self.json(common)
        let refusals = try #require(whole["refusals"] as? [[String: Any]])
        #expect(refusals.count == 1 && refusals.first?["reason"] as? String == "lba-range-not-owned")
        #expect(Self.number(refusals.first ?? [:], "errno") == 13)
        let refused = Self.number(whole, "refused")
        #expect(Self.number(refusals.first ?? [:], "count") == refused)
        #expect(refused > 100 && Self.number(whole, "completed") > 100, "about half of 400 outside the range")
        #expect(Self.number(whole, "completed") + refused == 400)
        let read = Self.direction(whole, "read"), write = Self.direction(whole, "write")
        #expect(Self.number(read, "refused") + Self.number(write, "refused") == refused)

        let inside = try Self.json(common + ["--size", "512m"])
        #expect(Self.number(inside, "completed") == 400 && (inside["refusals"] as? [Any])?.isEmpty == true)
    }

    @Test("text output: a line per direction with IOPS and bandwidth, latency percentiles, refusals by reason")
    func text() throws {
        // Linux's rules refuse passthrough through a partition: every command, counted by reason.
        let result = try NVMeGateCLI.run(["bench", "nvme0n1p1", "--target", "loopback", "--rw", "randwrite", "--number-ios", "50",
                                          "--as", "1000"])
        #expect(result.status == 0 && result.stderr == "")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first == "nvmegate bench: rw=randwrite, bs=4096, iodepth=1, numjobs=1")
        #expect(lines.contains { $0.hasPrefix("  write: IOPS=") && $0.contains("MiB/s") })
        #expect(lines.contains("  all: 50 ios: 0 completed, 50 refused, 0 NVMe errors; IOPS=0, BW=0.0MiB/s (0.0MB/s)"))
        #expect(lines.suffix(2) == ["  refused by reason:", "    partition (EACCES): 50"])
        #expect(lines[1].hasPrefix("  nvme0n1p1 (NSID 1) on loopback: blocks 2048 to "), "the partition's blocks")
        let reads = try NVMeGateCLI.run(["bench", "--target", "loopback", "--number-ios", "50"])
        #expect(reads.stdout.contains("  read: IOPS=") && reads.stdout.contains("    lat percentiles (nsec): 50.00th=["))
    }

    @Test("bad flags are refused naming the flag")
    func flagErrors() throws {
        let cases: [([String], Int32, String)] = [
            (["--bs", "1000"], 1, "--bs 1000: not a multiple of namespace 1's 512-byte logical block"),
            (["--bs", "4x"], 64, "'4x' is invalid for '--bs <size>'"),
            (["--bs", "64m"], 1, "--bs 67108864: more than the 65536 logical blocks"),
            (["--bs", "0"], 64, "--bs 0: a command moves at least one logical block"),
            (["--iodepth", "0"], 64, "--iodepth 0: must be 1 to 1024"),
            (["--numjobs", "1000"], 64, "--numjobs 1000: must be 1 to 256"),
            (["--rwmixread", "101"], 64, "--rwmixread 101: must be a percentage"),
            (["--number-ios", "0"], 64, "--number-ios 0: must be at least 1"),
            (["--runtime", "soon"], 64, "'soon' is invalid for '--runtime <time>'"),
            (["--offset", "2g"], 1, "--offset 2147483648: beyond the 1073741824 bytes of nvme0n1"),
            (["--offset", "100"], 1, "--offset 100: not a multiple"),
            (["--size", "1k"], 1, "--size 1024: smaller than one block of --bs 4096"),
            (["--size", "2g"], 1, "--size 2147483648: the region from --offset 0 runs past"),
            (["--rw", "trim"], 64, "'trim' is invalid for '--rw <pattern>'"),
            (["nvme0"], 1, "nvme0: a controller node has no I/O queue"),
            (["--namespace-id", "7"], 1, "--namespace-id 7: no such namespace"),
        ]
        for (arguments, status, message) in cases {
            let result = try NVMeGateCLI.run(["bench", "--target", "loopback"] + arguments)
            #expect(result.status == status, "\(arguments): \(result.stderr)")
            #expect(result.stderr.contains(message), "\(arguments): \(result.stderr)")
            #expect(result.stdout.isEmpty)
        }
    }

    @Test("on a terminal a run longer than a second shows a progress line on standard error, cleared at the end")
    func progressLine() throws {
        let binary = try #require(NVMeGateCLI.executable).path
        // script(1) gives the command a terminal; what the terminal showed lands in the typescript.
        let files = try CLIScratchDirectory()
        let typescript = files.path("typescript")
        let command = "\(binary) bench --target loopback --runtime 1500ms -o json 2>&1 >/dev/null"
        let result = try Toolchain.run("/usr/bin/script", ["-q", "-e", "-c", command, typescript])
        #expect(result.status == 0, "\(result.stderr)")
        let shown = String(decoding: try files.read("typescript"), as: UTF8.self)
        #expect(shown.contains("\rnvmegate bench: ") && shown.contains(" IOPS, "), "\(shown.debugDescription)")
        #expect(shown.contains("\r\u{1B}[K"), "the line is cleared")
        // Short runs stay quiet even on a terminal.
        let quick = try Toolchain.run("/usr/bin/script", ["-q", "-e", "-c", "\(binary) bench --target loopback --number-ios 10 -o json 2>&1 >/dev/null", typescript])
        #expect(quick.status == 0)
        #expect(!String(decoding: try files.read("typescript"), as: UTF8.self).contains("nvmegate bench: "))
    }
}
