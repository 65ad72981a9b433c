#if canImport(Glibc)
import Glibc
#endif
import Histogram
import NVMeGate
import NVMeSpec
import Synchronization

/// What every job of a run does: the same pattern over the same region, each with its own
/// handle, buffers and random sequence.
struct BenchPlan: Sendable {
    var nsid: UInt32
    /// The region, in logical blocks of the namespace: first block and how many I/O units of
    /// `blocksPerIO` blocks it holds.
    var firstBlock: UInt64
    var units: UInt64
    var blocksPerIO: UInt32
    var blockSize: UInt32
    var iodepth: Int
    var pattern: BenchPattern
    /// The share of reads, in percent.
    var readPercent: Int
    /// Commands each job sends at most, and how long it runs at most (ns).
    var commandsPerJob: Int
    var runtime: UInt64?
    var seed: UInt64

    var bytesPerIO: Int { Int(blocksPerIO) * Int(blockSize) }
}

/// What a job counted for one direction: commands sent, those that succeeded (timed), their
/// bytes and latency, those the ioctl refused (-errno) and those the controller failed.
struct DirectionTally {
    var ios: UInt64 = 0
    var completed: UInt64 = 0
    var bytes: UInt64 = 0
    var refused: UInt64 = 0
    var errors: UInt64 = 0
    /// Latency of completed commands in nanoseconds, and their exact sum (for the mean).
    var latency = Histogram<UInt64>(highestTrackableValue: 3_600_000_000_000, numberOfSignificantValueDigits: .three)
    var latencySum: UInt64 = 0

    mutating func merge(_ other: DirectionTally) {
        ios += other.ios; completed += other.completed; bytes += other.bytes
        refused += other.refused; errors += other.errors
        latency.add(other.latency)
        latencySum += other.latencySum
    }
}

/// Counts of distinct values (NVMe statuses, errnos) in fixed storage, so counting one on
/// the I/O path never allocates; values beyond `capacity` distinct ones are counted as
/// `overflow`.
struct ValueCounts {
    static let capacity = 16
    private(set) var values = InlineArray<16, Int32>(repeating: 0)
    private(set) var counts = InlineArray<16, UInt64>(repeating: 0)
    private(set) var used = 0
    private(set) var overflow: UInt64 = 0

    mutating func add(_ value: Int32, count: UInt64 = 1) {
        for i in 0..<used where values[i] == value {
            counts[i] += count
            return
        }
        guard used < Self.capacity else { overflow += count; return }
        values[used] = value
        counts[used] = count
        used += 1
    }

    mutating func merge(_ other: ValueCounts) {
        for i in 0..<other.used { add(other.values[i], count: other.counts[i]) }
        overflow += other.overflow
    }

    /// The values counted, most frequent first.
    var sorted: [(value: Int32, count: UInt64)] {
        (0..<used).map { (values[$0], counts[$0]) }.sorted { $0.count > $1.count || ($0.count == $1.count && $0.value < $1.value) }
    }
}

/// One thread of a run: its own handle on the gate, `iodepth` passthru structs and buffers,
/// its random sequence and its tallies. Everything is allocated before the thread starts;
/// the loop neither allocates nor takes a lock.
final class BenchJob: @unchecked Sendable {
    let index: Int
    let gate: Gate
    let handle: Int32
    let plan: BenchPlan
    /// `iodepth` `struct nvme_passthru_cmd64`, one `bytesPerIO` buffer each.
    let commands: UnsafeMutableRawPointer
    let buffers: UnsafeMutableRawPointer
    let returns: UnsafeMutablePointer<Int32>
    /// Per slot: whether it holds a read.
    let slotReads: UnsafeMutablePointer<Bool>

    var read = DirectionTally()
    var write = DirectionTally()
    var statuses = ValueCounts()
    var errnos = ValueCounts()
    /// When the job started and finished (monotonic ns).
    var started: UInt64 = 0
    var finished: UInt64 = 0
    /// Commands sent so far, for the progress line (relaxed: a monitor reads it).
    let progress = Atomic<Int>(0)
    let done = Atomic<Bool>(false)

    init(index: Int, gate: Gate, handle: Int32, plan: BenchPlan) {
        self.index = index
        self.gate = gate
        self.handle = handle
        self.plan = plan
        let depth = plan.iodepth
        commands = .allocate(byteCount: depth * PassthruCommand.size64, alignment: 8)
        commands.initializeMemory(as: UInt8.self, repeating: 0, count: depth * PassthruCommand.size64)
        buffers = .allocate(byteCount: depth * plan.bytesPerIO, alignment: 4096)
        returns = .allocate(capacity: depth)
        returns.initialize(repeating: 0, count: depth)
        slotReads = .allocate(capacity: depth)
        slotReads.initialize(repeating: true, count: depth)
        for slot in 0..<depth {
            let p = commands + slot * PassthruCommand.size64
            let buffer = buffers + slot * plan.bytesPerIO
            p.storeBytes(of: plan.nsid.littleEndian, toByteOffset: 4, as: UInt32.self)
            p.storeBytes(of: UInt64(UInt(bitPattern: buffer)).littleEndian, toByteOffset: 24, as: UInt64.self)
            p.storeBytes(of: UInt32(plan.bytesPerIO).littleEndian, toByteOffset: 36, as: UInt32.self)
            p.storeBytes(of: (plan.blocksPerIO - 1).littleEndian, toByteOffset: 48, as: UInt32.self)   // NLB, 0's based
            Self.fill(buffer, count: plan.bytesPerIO, job: index, slot: slot)
        }
    }

    deinit {
        commands.deallocate()
        buffers.deallocate()
        returns.deallocate()
        slotReads.deallocate()
        _ = gate.close(handle)
    }

    /// The data a write sends: a pattern from the job and the slot, the same on every run.
    static func fill(_ buffer: UnsafeMutableRawPointer, count: Int, job: Int, slot: Int) {
        var state = UInt64(job) << 32 | UInt64(slot)
        for i in 0..<(count / 8) {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            buffer.storeBytes(of: state.littleEndian, toByteOffset: i * 8, as: UInt64.self)
        }
    }

    /// Sends the job's commands: `iodepth` at a time (one ioctl at depth 1, one
    /// `submitBatch` otherwise), timing each call, until `commandsPerJob` are sent or the
    /// deadline passes.
    func run() {
        var rng = SplitMix64(seed: plan.seed &+ UInt64(index) &* 0x9E37_79B9_7F4A_7C15)
        var nextUnit: UInt64 = 0
        var read = DirectionTally()
        var write = DirectionTally()
        var sent = 0
        let depth = plan.iodepth
        started = monotonicNanoseconds()
        let deadline = plan.runtime.map { started &+ $0 }
        var now = started
        while sent < plan.commandsPerJob {
            let n = min(depth, plan.commandsPerJob - sent)
            for slot in 0..<n {
                let isRead = plan.readPercent == 100 || (plan.readPercent > 0 && Int(rng.next() % 100) < plan.readPercent)
                let unit: UInt64
                if plan.pattern.isRandom {
                    unit = rng.next() % plan.units
                } else {
                    unit = nextUnit
                    nextUnit = nextUnit + 1 == plan.units ? 0 : nextUnit + 1
                }
                let lba = plan.firstBlock + unit * UInt64(plan.blocksPerIO)
                let p = commands + slot &* PassthruCommand.size64
                p.storeBytes(of: isRead ? 0x02 : 0x01, toByteOffset: 0, as: UInt8.self)
                p.storeBytes(of: UInt32(truncatingIfNeeded: lba).littleEndian, toByteOffset: 40, as: UInt32.self)
                p.storeBytes(of: UInt32(truncatingIfNeeded: lba >> 32).littleEndian, toByteOffset: 44, as: UInt32.self)
                slotReads[slot] = isRead
            }
            let start = monotonicNanoseconds()
            if depth == 1 {
                switch gate.ioctl(handle, request: IoctlRequest.io64Command.rawValue, argument: commands) {
                case .returned(let value): returns[0] = value
                case .failed(let errno): returns[0] = -errno
                }
            } else {
                _ = gate.submitBatch(handle, queue: .io, commands: commands, count: n, returns: returns)
            }
            now = monotonicNanoseconds()
            let latency = now &- start
            for slot in 0..<n {
                let result = returns[slot]
                if slotReads[slot] {
                    account(result, latency: latency, &read)
                } else {
                    account(result, latency: latency, &write)
                }
            }
            sent &+= n
            progress.store(sent, ordering: .relaxed)
            if let deadline, now >= deadline { break }
        }
        finished = now
        self.read = read
        self.write = write
        done.store(true, ordering: .releasing)
    }

    @inline(__always)
    private func account(_ result: Int32, latency: UInt64, _ tally: inout DirectionTally) {
        tally.ios &+= 1
        if result == 0 {
            tally.completed &+= 1
            tally.bytes &+= UInt64(plan.bytesPerIO)
            tally.latency.record(latency)
            tally.latencySum &+= latency
        } else if result > 0 {
            tally.errors &+= 1
            statuses.add(result)
        } else {
            tally.refused &+= 1
            errnos.add(-result)
        }
    }
}

/// The monotonic clock in nanoseconds.
@inline(__always)
func monotonicNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) &* 1_000_000_000 &+ UInt64(now.tv_nsec)
}

/// SplitMix64: a small, fast generator whose sequence `--randseed` fixes.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Runs each job on a thread of its own, all released together by a barrier, and waits for
/// them. With `tick`, it is called about five times a second meanwhile (the progress line).
func runJobs(_ jobs: [BenchJob], tick: (() -> Void)?) {
    let barrier = UnsafeMutablePointer<pthread_barrier_t>.allocate(capacity: 1)
    pthread_barrier_init(barrier, nil, UInt32(jobs.count + 1))
    defer { pthread_barrier_destroy(barrier); barrier.deallocate() }
    var threads: [pthread_t] = []
    for job in jobs {
        let context = Unmanaged.passRetained(JobStart(job: job, barrier: barrier)).toOpaque()
        var thread = pthread_t()
        let created = pthread_create(&thread, nil, { raw in
            let start = Unmanaged<JobStart>.fromOpaque(raw!).takeRetainedValue()
            pthread_barrier_wait(start.barrier)
            start.job.run()
            return nil
        }, context)
        precondition(created == 0, "pthread_create: \(created)")
        threads.append(thread)
    }
    pthread_barrier_wait(barrier)
    if let tick {
        var lastTick = monotonicNanoseconds()
        while !jobs.allSatisfy({ $0.done.load(ordering: .acquiring) }) {
            var pause = timespec(tv_sec: 0, tv_nsec: 20_000_000)
            nanosleep(&pause, nil)
            if monotonicNanoseconds() - lastTick >= 200_000_000 {
                tick()
                lastTick = monotonicNanoseconds()
            }
        }
    }
    for thread in threads { pthread_join(thread, nil) }
}

/// What a new thread needs: its job and the barrier that starts every job at once.
private final class JobStart {
    let job: BenchJob
    let barrier: UnsafeMutablePointer<pthread_barrier_t>
    init(job: BenchJob, barrier: UnsafeMutablePointer<pthread_barrier_t>) { self.job = job; self.barrier = barrier }
}
