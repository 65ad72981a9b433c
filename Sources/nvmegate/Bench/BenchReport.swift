#if canImport(Glibc)
import Glibc
#endif
import NVMeGate
import NVMeSpec

/// A run's results, the jobs' tallies merged: per direction and in all, with the refusals the
/// gate counted by reason and the NVMe errors by status.
struct BenchReport {
    /// What was run, for the report's first line (and the JSON's first members).
    struct Header {
        var target: String
        var device: String
        var nsid: UInt32
        var pattern: BenchPattern
        var rwmixread: Int
        var plan: BenchPlan
        var numjobs: Int
    }

    var read = DirectionTally()
    var write = DirectionTally()
    var statuses = ValueCounts()
    var errnos = ValueCounts()
    /// From the first job's start to the last one's end, in nanoseconds: the jobs' own clock
    /// readings, since the thread that releases them may read the clock only after a short job
    /// has finished.
    var elapsed: UInt64
    var refusals: [(Reason, UInt64)]

    init(jobs: [BenchJob], refusals: [(Reason, UInt64)]) {
        var start = UInt64.max
        var end: UInt64 = 0
        for job in jobs {
            read.merge(job.read)
            write.merge(job.write)
            statuses.merge(job.statuses)
            errnos.merge(job.errnos)
            start = min(start, job.started)
            end = max(end, job.finished)
        }
        elapsed = end > start ? end - start : 1
        self.refusals = refusals
    }

    var all: DirectionTally {
        var both = read
        both.merge(write)
        return both
    }

    // MARK: Figures

    func iops(_ t: DirectionTally) -> Double { Double(t.completed) * 1e9 / Double(elapsed) }
    func bandwidth(_ t: DirectionTally) -> Double { Double(t.bytes) * 1e9 / Double(elapsed) }
    func mean(_ t: DirectionTally) -> Double { t.completed == 0 ? 0 : Double(t.latencySum) / Double(t.completed) }
    /// Latency at `percentile` (0 when nothing completed).
    func latency(_ t: DirectionTally, _ percentile: Double) -> UInt64 {
        t.completed == 0 ? 0 : t.latency.valueAtPercentile(percentile)
    }
    func minimum(_ t: DirectionTally) -> UInt64 { t.completed == 0 ? 0 : t.latency.min }
    func maximum(_ t: DirectionTally) -> UInt64 { t.completed == 0 ? 0 : t.latency.maxRecorded }

    static let percentiles: [Double] = [50, 99, 99.9]

    // MARK: Text

    /// fio's layout: a line per direction with IOPS and bandwidth, then latency.
    func text(_ h: Header) -> String {
        let p = h.plan
        var out = "nvmegate bench: rw=\(h.pattern.rawValue)"
        if h.pattern == .randrw || h.pattern == .rw { out += ", rwmixread=\(h.rwmixread)" }
        out += ", bs=\(p.bytesPerIO), iodepth=\(p.iodepth), numjobs=\(h.numjobs)\n"
        out += "  \(h.device) (NSID \(h.nsid)) on \(h.target): blocks \(p.firstBlock) to "
            + "\(p.firstBlock + p.units * UInt64(p.blocksPerIO) - 1) of \(p.blockSize) bytes\n"
        for (name, t) in [("read", read), ("write", write)] where t.ios > 0 {
            out += "  \(name): IOPS=\(Self.human(iops(t))), BW=\(Self.fixed(bandwidth(t) / 1_048_576, 1))MiB/s "
                + "(\(Self.fixed(bandwidth(t) / 1_000_000, 1))MB/s)(\(t.completed) ios, \(t.bytes) bytes in \(Self.duration(elapsed)))\n"
            out += "    lat (nsec): min=\(minimum(t)), max=\(maximum(t)), avg=\(Self.fixed(mean(t), 1))\n"
            out += "    lat percentiles (nsec): "
                + Self.percentiles.map { "\(Self.fixed($0, 2))th=[\(latency(t, $0))]" }.joined(separator: ", ") + "\n"
            if t.refused > 0 || t.errors > 0 { out += "    refused=\(t.refused), nvme errors=\(t.errors)\n" }
        }
        let a = all
        out += "  all: \(a.ios) ios: \(a.completed) completed, \(a.refused) refused, \(a.errors) NVMe errors; "
            + "IOPS=\(Self.human(iops(a))), BW=\(Self.fixed(bandwidth(a) / 1_048_576, 1))MiB/s (\(Self.fixed(bandwidth(a) / 1_000_000, 1))MB/s)\n"
        if !refusals.isEmpty {
            out += "  refused by reason:\n"
            for (reason, count) in refusals { out += "    \(reason.code) (\(Self.errnoSymbol(reason.errno))): \(count)\n" }
        }
        for (errno, count) in errnos.sorted where !refusals.contains(where: { $0.0.errno == errno }) {
            out += "  failed on the host: \(Self.errnoName(errno)): \(count)\n"
        }
        if statuses.used > 0 {
            out += "  NVMe errors by status:\n"
            for (status, count) in statuses.sorted {
                out += "    \(NVMeStatus(rawValue: UInt16(truncatingIfNeeded: status)).nvmeCLIDescription): \(count)\n"
            }
            if statuses.overflow > 0 { out += "    other statuses: \(statuses.overflow)\n" }
        }
        return out
    }

    // MARK: JSON

    /// fio's JSON names where fio has them (`io_bytes`, `bw_bytes`, `iops`, `lat_ns` with
    /// `percentile`), numbers in decimal.
    func json(_ h: Header) -> JSONOutput {
        let p = h.plan
        var members: [(String, JSONOutput)] = [
            ("target", .string(h.target)), ("device", .string(h.device)), ("nsid", .number(h.nsid)),
            ("rw", .string(h.pattern.rawValue)), ("rwmixread", .number(h.rwmixread)), ("bs", .number(p.bytesPerIO)),
            ("iodepth", .number(p.iodepth)), ("numjobs", .number(h.numjobs)),
            ("first_lba", .number(p.firstBlock)), ("region_bytes", .number(p.units * UInt64(p.bytesPerIO))),
            ("elapsed_ns", .number(elapsed)),
        ]
        members += direction(all)
        members.append(("read", .object(direction(read))))
        members.append(("write", .object(direction(write))))
        members.append(("refusals", .array(refusals.map { reason, count in
            .object([("reason", .string(reason.code)), ("errno", .number(reason.errno)), ("count", .number(count))])
        })))
        members.append(("host_errors", .array(errnos.sorted.map { errno, count in
            .object([("errno", .number(errno)), ("error", .string(Self.errnoName(errno))), ("count", .number(count))])
        })))
        var errors: [JSONOutput] = statuses.sorted.map { status, count in
            let s = NVMeStatus(rawValue: UInt16(truncatingIfNeeded: status))
            return .object([("status", .number(s.rawValue)), ("name", .string(s.name)), ("count", .number(count))])
        }
        if statuses.overflow > 0 { errors.append(.object([("status", .string("other")), ("count", .number(statuses.overflow))])) }
        members.append(("nvme_errors", .array(errors)))
        return .object(members)
    }

    private func direction(_ t: DirectionTally) -> [(String, JSONOutput)] {
        [
            ("ios", .number(t.ios)), ("completed", .number(t.completed)), ("refused", .number(t.refused)),
            ("errors", .number(t.errors)), ("io_bytes", .number(t.bytes)),
            ("bw_bytes", .number(UInt64(bandwidth(t)))), ("iops", .decimal(Self.fixed(iops(t), 3))),
            ("mb_s", .decimal(Self.fixed(bandwidth(t) / 1_000_000, 3))), ("mib_s", .decimal(Self.fixed(bandwidth(t) / 1_048_576, 3))),
            ("lat_ns", .object([
                ("min", .number(minimum(t))), ("max", .number(maximum(t))), ("mean", .decimal(Self.fixed(mean(t), 3))),
                ("percentile", .object(Self.percentiles.map { (Self.fixed($0, 6), .number(latency(t, $0))) })),
            ])),
        ]
    }

    // MARK: Formatting

    /// `value` with `places` decimals, rounded ("12.50").
    static func fixed(_ value: Double, _ places: Int) -> String {
        var scale: Double = 1
        for _ in 0..<places { scale *= 10 }
        let clamped = value.isFinite ? min(max(0, value) * scale, 1e18) : 0
        let scaled = UInt64(clamped.rounded())
        let whole = String(scaled / UInt64(scale))
        guard places > 0 else { return whole }
        let fraction = String(scaled % UInt64(scale))
        return whole + "." + String(repeating: "0", count: places - fraction.count) + fraction
    }

    /// fio's short counts: "950", "52.3k", "1.21M".
    static func human(_ value: Double) -> String {
        if value < 10_000 { return fixed(value, 0) }
        if value < 10_000_000 { return fixed(value / 1000, value < 100_000 ? 1 : 0) + "k" }
        return fixed(value / 1_000_000, 2) + "M"
    }

    /// "812us", "1.52s".
    static func duration(_ nanoseconds: UInt64) -> String {
        if nanoseconds < 1_000_000 { return "\(nanoseconds / 1000)us" }
        if nanoseconds < 1_000_000_000 { return fixed(Double(nanoseconds) / 1e6, 1) + "ms" }
        return fixed(Double(nanoseconds) / 1e9, 2) + "s"
    }

    /// "EACCES"; "errno N" for one without a name here.
    static func errnoSymbol(_ code: Int32) -> String {
        let names: [Int32: String] = [EACCES: "EACCES", EINVAL: "EINVAL", EFAULT: "EFAULT", ENOTTY: "ENOTTY", EIO: "EIO",
                                      EPERM: "EPERM", EBADF: "EBADF", ENODEV: "ENODEV", EBUSY: "EBUSY"]
        return names[code] ?? "errno \(code)"
    }

    /// "EACCES (Permission denied)".
    static func errnoName(_ code: Int32) -> String {
        errnoSymbol(code) + " (" + String(cString: strerror(code)) + ")"
    }
}

/// The live progress line on a terminal: commands sent, the rate over the last tick, the
/// time so far; rewritten in place with `\r`, shown once the run passes a second, and cleared
/// at the end so the report starts on a clean line.
final class BenchProgress {
    let jobs: [BenchJob]
    let plan: BenchPlan
    let start = monotonicNanoseconds()
    private var last: (time: UInt64, sent: Int)
    private var shown = false

    init(jobs: [BenchJob], plan: BenchPlan) {
        self.jobs = jobs
        self.plan = plan
        last = (start, 0)
    }

    func show() {
        let now = monotonicNanoseconds()
        guard now - start > 1_000_000_000 else { return }
        let sent = jobs.reduce(0) { $0 + $1.progress.load(ordering: .relaxed) }
        let rate = Double(sent - last.sent) * 1e9 / Double(max(1, now - last.time))
        last = (now, sent)
        var line = "\rnvmegate bench: \(sent) ios, \(BenchReport.human(rate)) IOPS, \(BenchReport.duration(now - start))"
        if let runtime = plan.runtime { line += " of \(BenchReport.duration(runtime))" }
        if plan.commandsPerJob < Int.max {
            let share = Double(sent) * 100 / (Double(plan.commandsPerJob) * Double(jobs.count))
            line += ", \(BenchReport.fixed(min(100, share), 0))% of the commands"
        }
        writeStandardError(line + "\u{1B}[K")
        shown = true
    }

    func clear() {
        if shown { writeStandardError("\r\u{1B}[K") }
    }
}
