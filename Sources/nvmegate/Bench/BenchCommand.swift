#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import NVMeGate
import NVMeSpec

/// `nvmegate bench`: fio for a node behind the gate. Jobs (threads, each with its own handle)
/// send Read and Write commands through `Gate.ioctl` (or `Gate.submitBatch` at a queue depth
/// above 1) and report IOPS, bandwidth, latency percentiles, refusals by reason and NVMe
/// errors by status.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure I/O through the gate as fio would: IOPS, bandwidth, latency percentiles, refusals by reason.",
        discussion: """
            Each job is a thread with its own handle on the node, sending NVME_IOCTL_IO64_CMD Reads and Writes \
            (--iodepth above 1: batches of that many through the gate's batch API, and a command's latency is \
            its batch's). Refused commands are counted by reason, not timed. Without --runtime or \
            --number-ios, each job moves --size bytes, as fio does.
            """)

    @Argument(help: ArgumentHelp("The namespace (or partition) node to measure, on the target.", valueName: "device"))
    var device = "nvme0n1"

    @OptionGroup var access: AccessOptions

    @Option(help: ArgumentHelp("I/O pattern: randread, randwrite, randrw, read, write or rw (sequential mixed).",
                               valueName: "pattern"))
    var rw = BenchPattern.randread

    @Option(help: ArgumentHelp("Percentage of reads in randrw and rw.", valueName: "pct"))
    var rwmixread = 50

    @Option(help: ArgumentHelp("Block size of each command: bytes, or with k, m, g (1024-based): 512, 4k, 1m. A multiple of the namespace's LBA size.",
                               valueName: "size"))
    var bs = ByteSize(4096)

    @Option(help: ArgumentHelp("Commands in flight per job: above 1 they are sent as batches of this many.", valueName: "n"))
    var iodepth = 1

    @Option(help: ArgumentHelp("Jobs: threads, each with its own handle.", valueName: "n"))
    var numjobs = 1

    @Option(help: ArgumentHelp("Stop each job after this long: seconds, or with us, ms, s, m, h (500ms, 10s).", valueName: "time"))
    var runtime: RunTime?

    @Option(name: .customLong("number-ios"), help: ArgumentHelp("Stop each job after this many commands.", valueName: "n"))
    var numberIOs: Int?

    @Option(help: ArgumentHelp("Size of the region the jobs address, from --offset (default: to the end of the namespace, or partition).",
                               valueName: "size"))
    var size: ByteSize?

    @Option(help: ArgumentHelp("Start of the region in bytes from the start of the namespace (or partition).", valueName: "size"))
    var offset = ByteSize(0)

    @Option(name: [.customShort("n"), .customLong("namespace-id")],
            help: "NSID to address (default: the node's own).")
    var namespaceID: CommandNumber<UInt32>?

    @Option(help: ArgumentHelp("Seed of the random offsets and of the read/write mix; each job derives its own from it.",
                               valueName: "n"))
    var randseed: UInt64 = 0x6E76_6D65

    @Option(name: [.customShort("o"), .customLong("output-format")],
            help: ArgumentHelp("Output format: normal or json.", valueName: "fmt"))
    var outputFormat = BenchOutputFormat.normal

    /// Limits that keep a run's memory bounded (buffers are iodepth × bs per job).
    static let maxJobs = 256
    static let maxDepth = 1024
    static let maxBufferBytes: UInt64 = 256 << 20

    func validate() throws {
        guard (0...100).contains(rwmixread) else { throw ValidationError("--rwmixread \(rwmixread): must be a percentage, 0 to 100") }
        guard (1...Self.maxDepth).contains(iodepth) else {
            throw ValidationError("--iodepth \(iodepth): must be 1 to \(Self.maxDepth)")
        }
        guard (1...Self.maxJobs).contains(numjobs) else { throw ValidationError("--numjobs \(numjobs): must be 1 to \(Self.maxJobs)") }
        if let numberIOs, numberIOs < 1 { throw ValidationError("--number-ios \(numberIOs): must be at least 1") }
        guard bs.bytes > 0 else { throw ValidationError("--bs 0: a command moves at least one logical block") }
        guard bs.bytes * UInt64(iodepth) <= Self.maxBufferBytes else {
            throw ValidationError("--bs \(bs.bytes) × --iodepth \(iodepth): more than \(Self.maxBufferBytes >> 20) MiB of buffers per job")
        }
    }

    func run() throws {
        try reportingFailures { try runBench() }
    }

    private func runBench() throws {
        let writes = rw.readPercent(mix: rwmixread) < 100
        let session = try DeviceSession(device: device, access, writable: writes, commandName: "bench")
        guard session.node.kind != .controller else {
            throw CLIError("\(device): a controller node has no I/O queue for NVME_IOCTL_IO64_CMD; bench a namespace (nvme\(session.node.controller)n1) or a partition")
        }
        let nsid = try session.namespaceID(namespaceID)
        let plan = try makePlan(session, nsid: nsid)
        var jobs: [BenchJob] = []
        for index in 0..<numjobs {
            let handle = session.gate.open(node: session.node.description, writable: writes, caller: session.caller)
            guard handle >= 0 else { throw CLIError("\(device): job \(index): \(String(cString: strerror(-handle)))") }
            jobs.append(BenchJob(index: index, gate: session.gate, handle: handle, plan: plan))
        }
        let before = session.gate.counters()
        let progress = isatty(STDERR_FILENO) == 1 ? BenchProgress(jobs: jobs, plan: plan) : nil
        runJobs(jobs, tick: progress.map { p in { p.show() } })
        progress?.clear()
        let report = BenchReport(jobs: jobs, refusals: refusalsSince(before, session.gate))
        let header = BenchReport.Header(target: access.targetSpec(for: device), device: device, nsid: nsid, pattern: rw,
                                        rwmixread: rwmixread, plan: plan, numjobs: numjobs)
        switch outputFormat {
        case .normal: try printOutput(report.text(header))
        case .json: try printOutput(report.json(header).rendered)
        }
    }

    /// The region and limits every job uses, checked against the namespace (`--bs`,
    /// `--offset`, `--size` must fit it, in whole logical blocks).
    private func makePlan(_ session: DeviceSession, nsid: UInt32) throws -> BenchPlan {
        guard let namespace = session.gate.controller.namespaces().first(where: { $0.nsid == nsid }) else {
            throw CLIError("--namespace-id \(nsid): no such namespace on target \"\(access.targetSpec(for: device))\"")
        }
        let lba = UInt64(namespace.lbaDataSize)
        guard bs.bytes % lba == 0 else {
            throw CLIError("--bs \(bs.bytes): not a multiple of namespace \(nsid)'s \(lba)-byte logical block")
        }
        guard bs.bytes / lba <= 65536 else {
            throw CLIError("--bs \(bs.bytes): more than the 65536 logical blocks (\(65536 * lba) bytes) one command can address")
        }
        // A partition node's region is the partition's blocks.
        var space = (first: UInt64(0), blocks: namespace.blockCount)
        if let state = session.gate.handleState(session.handle), state.context.kind == .partition {
            space = (state.context.partition.start, state.context.partition.count)
        }
        guard offset.bytes % lba == 0 else {
            throw CLIError("--offset \(offset.bytes): not a multiple of namespace \(nsid)'s \(lba)-byte logical block")
        }
        let spaceBytes = space.blocks * lba
        guard offset.bytes < spaceBytes else {
            throw CLIError("--offset \(offset.bytes): beyond the \(spaceBytes) bytes of \(device)")
        }
        let regionBytes = size?.bytes ?? spaceBytes - offset.bytes
        guard regionBytes <= spaceBytes - offset.bytes else {
            throw CLIError("--size \(regionBytes): the region from --offset \(offset.bytes) runs past the \(spaceBytes) bytes of \(device)")
        }
        let units = regionBytes / bs.bytes
        guard units > 0 else {
            throw CLIError("--size \(regionBytes): smaller than one block of --bs \(bs.bytes)")
        }
        // As fio: without a limit, each job moves --size bytes.
        let commands = numberIOs ?? (runtime == nil ? Int(clamping: units) : Int.max)
        return BenchPlan(nsid: nsid, firstBlock: space.first + offset.bytes / lba, units: units,
                         blocksPerIO: UInt32(bs.bytes / lba), blockSize: UInt32(lba), iodepth: iodepth, pattern: rw,
                         readPercent: rw.readPercent(mix: rwmixread), commandsPerJob: commands,
                         runtime: runtime?.nanoseconds, seed: randseed)
    }

    /// The refusals the gate counted since `before`, by reason (allowed reasons left out).
    private func refusalsSince(_ before: [(Reason, UInt64)], _ gate: Gate) -> [(Reason, UInt64)] {
        gate.counters().compactMap { reason, count in
            let earlier = before.first { $0.0 == reason }?.1 ?? 0
            return reason.isAllowed || count == earlier ? nil : (reason, count - earlier)
        }
    }
}
