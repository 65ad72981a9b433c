// The emulated controller's speed through the gate: 4 KiB random reads and writes on the
// in-memory emulated controller, sent as `Gate.ioctl` NVME_IOCTL_IO64_CMD one at a time
// (queue depth 1) or as `Gate.submitBatch` of 32 (queue depth 32), on one thread and on four
// (each with its own handle), beside the floor: memcpy of the same 4 KiB from random offsets
// of a region as large as the one the emulator reads.
//
// One scaled iteration is 32 commands (32 ioctls, one batch of 32, or 32 memcpys): divide the
// reported time by 32 for ns per command. See README.md for how to run and the figures.
//
// Names use `_` only: package-benchmark 1.38.1 writes threshold files under the name with `/`
// and ` ` replaced by `_`, but `thresholds check` looks them up under the raw name.

import Benchmark
import NVMeEmulator
import NVMeGate
import NVMeSpec

#if canImport(Glibc)
import Glibc
#endif

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        timeUnits: .nanoseconds,
        warmupIterations: 3,
        scalingFactor: .kilo,
        maxDuration: .seconds(2),
        maxIterations: 100_000,
        // CI checks allocations, never time (this VM is noisy). No tolerance.
        thresholds: [.mallocCountTotal: .init(relative: [.p90: 0], absolute: [.p90: 0])])

    Benchmark("memcpy_4KiB_floor") { benchmark in
        let f = Fixture.shared
        for _ in benchmark.scaledIterations {
            blackHole(memcpyFloor(f.floorRegion, f.floorBuffer, f.offsets[0], from: f.floorNext))
            f.floorNext &+= Fixture.commandsPerIteration
        }
    } setup: { _ = Fixture.shared }

    for pattern in [Pattern.randread, .randwrite] {
        for depth in [1, 32] {
            Benchmark("emulated_4KiB_\(pattern)_QD\(depth)_1_thread") { benchmark in
                let worker = Fixture.shared.workers[0]
                for _ in benchmark.scaledIterations {
                    blackHole(worker.run(pattern, depth: depth, commands: Fixture.commandsPerIteration))
                }
            } setup: { _ = Fixture.shared }

            // The 32 × 1000 commands of an iteration split over 4 threads that were started
            // before it and wait, blocked, between iterations.
            let pool = WorkerPool(workers: Array(Fixture.shared.workers.prefix(Fixture.threads)))
            Benchmark("emulated_4KiB_\(pattern)_QD\(depth)_\(Fixture.threads)_threads") { benchmark in
                let perThread = benchmark.scaledIterations.count * Fixture.commandsPerIteration / Fixture.threads
                blackHole(pool.run(pattern, depth: depth, commandsPerThread: perThread))
            } setup: {
                pool.start()
            } teardown: {
                pool.stop()
            }
        }
    }
}

enum Pattern: String, CustomStringConvertible {
    case randread, randwrite
    var description: String { rawValue }
}

// MARK: The measured loops (out of line, so `objdump` and callgrind find them)

/// The floor: 32 memcpys of 4 KiB from the region at the random offsets from index `k`.
@inline(never)
func memcpyFloor(_ region: UnsafeMutableRawPointer, _ buffer: UnsafeMutableRawPointer, _ offsets: UnsafeMutablePointer<UInt32>,
                 from k: Int) -> UInt8 {
    for i in 0..<Fixture.commandsPerIteration {
        let unit = Int(offsets[(k &+ i) & (Fixture.offsetCount - 1)])
        buffer.copyMemory(from: region + unit &* Fixture.blockBytes, byteCount: Fixture.blockBytes)
    }
    return buffer.load(as: UInt8.self)
}

/// One thread's commands: its own handle, 32 passthru structs and 4 KiB buffers, its own
/// random offsets.
final class Worker: @unchecked Sendable {
    let gate: Gate
    let handle: Int32
    /// 32 `struct nvme_passthru_cmd64` (80 bytes each), a 4 KiB buffer each.
    let commands: UnsafeMutableRawPointer
    let buffers: UnsafeMutableRawPointer
    let returns: UnsafeMutablePointer<Int32>
    let offsets: UnsafeMutablePointer<UInt32>
    /// The next offset to use.
    var next = 0

    init(gate: Gate, offsets: UnsafeMutablePointer<UInt32>) {
        self.gate = gate
        self.offsets = offsets
        handle = gate.open(node: "nvme0n1", writable: true, caller: Caller(uid: 1000, gid: 1000))
        precondition(handle >= 0, "open nvme0n1: \(handle)")
        commands = .allocate(byteCount: 32 * PassthruCommand.size64, alignment: 8)
        commands.initializeMemory(as: UInt8.self, repeating: 0, count: 32 * PassthruCommand.size64)
        buffers = .allocate(byteCount: 32 * Fixture.blockBytes, alignment: 4096)
        returns = .allocate(capacity: 32)
        returns.initialize(repeating: -1, count: 32)
        for slot in 0..<32 {
            let p = commands + slot * PassthruCommand.size64
            p.storeBytes(of: UInt32(1).littleEndian, toByteOffset: 4, as: UInt32.self)   // NSID 1
            let address = UInt64(UInt(bitPattern: buffers + slot * Fixture.blockBytes))
            p.storeBytes(of: address.littleEndian, toByteOffset: 24, as: UInt64.self)
            p.storeBytes(of: UInt32(Fixture.blockBytes).littleEndian, toByteOffset: 36, as: UInt32.self)
            p.storeBytes(of: UInt32(Fixture.blocksPerCommand - 1).littleEndian, toByteOffset: 48, as: UInt32.self)   // NLB
            Fixture.fill(buffers + slot * Fixture.blockBytes, unit: UInt32(slot), generation: 1)
        }
    }

    /// Points passthru struct `slot` at the next random 4 KiB unit, as `opcode`.
    @inline(__always)
    func aim(_ slot: Int, opcode: UInt8) {
        let unit = UInt32(offsets[next & (Fixture.offsetCount - 1)])
        next &+= 1
        let p = commands + slot &* PassthruCommand.size64
        p.storeBytes(of: opcode, toByteOffset: 0, as: UInt8.self)
        p.storeBytes(of: (unit &* UInt32(Fixture.blocksPerCommand)).littleEndian, toByteOffset: 40, as: UInt32.self)   // SLBA
    }

    /// `commands` commands of `pattern` at queue depth `depth` (1: one ioctl each; 32: one
    /// `submitBatch` per 32). Returns the sum of what they returned, which must be 0.
    @inline(never)
    func run(_ pattern: Pattern, depth: Int, commands count: Int) -> Int32 {
        let opcode: UInt8 = pattern == .randread ? 0x02 : 0x01
        var sum: Int32 = 0
        if depth == 1 {
            for _ in 0..<count {
                aim(0, opcode: opcode)
                switch gate.ioctl(handle, request: IoctlRequest.io64Command.rawValue, argument: commands) {
                case .returned(let value): sum |= value
                case .failed(let errno): sum |= errno
                }
            }
            return sum
        }
        var done = 0
        while done < count {
            let n = min(depth, count - done)
            for slot in 0..<n { aim(slot, opcode: opcode) }
            _ = gate.submitBatch(handle, queue: .io, commands: commands, count: n, returns: returns)
            for slot in 0..<n { sum |= returns[slot] }
            done &+= n
        }
        return sum
    }
}

/// Threads started before the measurement and kept: each waits on its semaphore, runs its
/// worker's share of a round, and posts `finished`; no thread is created or allocation made
/// while measuring.
final class WorkerPool: @unchecked Sendable {
    let workers: [Worker]
    let go: UnsafeMutablePointer<sem_t>
    let finished: UnsafeMutablePointer<sem_t>
    var threads: [pthread_t] = []
    /// The round's job, written before `go` is posted.
    var pattern = Pattern.randread
    var depth = 1
    var commandsPerThread = 0
    var stopping = false
    /// Each worker's result of the last round.
    let results: UnsafeMutablePointer<Int32>

    init(workers: [Worker]) {
        self.workers = workers
        go = .allocate(capacity: workers.count)
        finished = .allocate(capacity: 1)
        for i in 0..<workers.count { sem_init(go + i, 0, 0) }
        sem_init(finished, 0, 0)
        results = .allocate(capacity: workers.count)
        results.initialize(repeating: 0, count: workers.count)
    }

    /// Starts one thread per worker, blocked until the first round.
    func start() {
        stopping = false
        for index in 0..<workers.count {
            let context = Unmanaged.passRetained(PoolSlot(pool: self, index: index)).toOpaque()
            var thread = pthread_t()
            let created = pthread_create(&thread, nil, { raw in
                let slot = Unmanaged<PoolSlot>.fromOpaque(raw!).takeRetainedValue()
                slot.pool.loop(slot.index)
                return nil
            }, context)
            precondition(created == 0, "pthread_create: \(created)")
            threads.append(thread)
        }
    }

    /// Stops and joins the threads.
    func stop() {
        stopping = true
        for i in 0..<workers.count { sem_post(go + i) }
        for thread in threads { pthread_join(thread, nil) }
        threads.removeAll()
    }

    func loop(_ index: Int) {
        while true {
            while sem_wait(go + index) != 0 {}
            if stopping { return }
            results[index] = workers[index].run(pattern, depth: depth, commands: commandsPerThread)
            sem_post(finished)
        }
    }

    /// One round: every thread runs `commandsPerThread` commands; returns when all are done,
    /// with the results or'ed (0 when every command succeeded).
    func run(_ pattern: Pattern, depth: Int, commandsPerThread: Int) -> Int32 {
        self.pattern = pattern
        self.depth = depth
        self.commandsPerThread = commandsPerThread
        for i in 0..<workers.count { sem_post(go + i) }
        for _ in 0..<workers.count { while sem_wait(finished) != 0 {} }
        var sum: Int32 = 0
        for i in 0..<workers.count { sum |= results[i] }
        return sum
    }
}

/// A thread's pool and index, handed to `pthread_create`.
final class PoolSlot {
    let pool: WorkerPool
    let index: Int
    init(pool: WorkerPool, index: Int) { self.pool = pool; self.index = index }
}

// MARK: Fixture

/// The gate over an in-memory emulated controller, the region read (written before anything
/// is measured), the workers and the floor's copy of the region. Built once and checked.
final class Fixture: @unchecked Sendable {
    static let shared = Fixture()
    /// 4 KiB a command, in 512-byte blocks (the emulator's default LBA format).
    static let blockBytes = 4096
    static let blocksPerCommand = 8
    /// The region read and written: 64 MiB (twice the 32 MiB L3 here), 16384 units of 4 KiB.
    static let regionUnits = 16384
    /// Random offsets per worker, a power of two.
    static let offsetCount = 1 << 16
    static let commandsPerIteration = 32
    static let threads = 4

    let gate: Gate
    let workers: [Worker]
    /// Per worker: random 4 KiB units of the region.
    let offsets: [UnsafeMutablePointer<UInt32>]
    let floorRegion: UnsafeMutableRawPointer
    let floorBuffer: UnsafeMutableRawPointer
    /// The floor's next offset: it reads the offsets worker 0 reads, in the same order.
    var floorNext = 0

    /// Fills 4 KiB at `p` with a pattern naming `unit` and `generation`.
    static func fill(_ p: UnsafeMutableRawPointer, unit: UInt32, generation: UInt32) {
        for i in 0..<(blockBytes / 4) {
            p.storeBytes(of: (unit &* 0x9E37_79B9 ^ UInt32(i) &* 0x85EB_CA6B ^ generation).littleEndian, toByteOffset: i * 4, as: UInt32.self)
        }
    }

    private init() {
        let gate = Gate(controller: EmulatedController.inMemory())
        var rng = SplitMix64(seed: 0x656D_756C_6174_6F72)
        let offsets = (0..<Self.threads).map { _ in
            let table = UnsafeMutablePointer<UInt32>.allocate(capacity: Self.offsetCount)
            for i in 0..<Self.offsetCount { table[i] = UInt32(rng.next() % UInt64(Self.regionUnits)) }
            return table
        }
        self.gate = gate
        self.offsets = offsets
        workers = offsets.map { Worker(gate: gate, offsets: $0) }
        floorRegion = .allocate(byteCount: Self.regionUnits * Self.blockBytes, alignment: 4096)
        floorBuffer = .allocate(byteCount: Self.blockBytes, alignment: 4096)
        prewrite()
        verify()
    }

    /// Writes every unit of the region once through the gate (so reads hit real data and
    /// writes rewrite blocks that exist), and the same bytes into the floor's region.
    func prewrite() {
        let w = workers[0]
        for unit in 0..<Self.regionUnits {
            Self.fill(w.buffers, unit: UInt32(unit), generation: 0)
            Self.fill(floorRegion + unit * Self.blockBytes, unit: UInt32(unit), generation: 0)
            w.commands.storeBytes(of: 0x01, toByteOffset: 0, as: UInt8.self)
            w.commands.storeBytes(of: UInt32(unit * Self.blocksPerCommand).littleEndian, toByteOffset: 40, as: UInt32.self)
            let outcome = gate.ioctl(w.handle, request: IoctlRequest.io64Command.rawValue, argument: w.commands)
            precondition(outcome == .returned(0), "pre-write of unit \(unit): \(outcome)")
        }
        Self.fill(w.buffers, unit: 0, generation: 1)
    }

    /// Reads through both paths return the pre-written bytes; writes succeed.
    func verify() {
        let w = workers[0]
        let expected = UnsafeMutableRawPointer.allocate(byteCount: Self.blockBytes, alignment: 16)
        defer { expected.deallocate() }
        for slot in 0..<32 { w.aim(slot, opcode: 0x02) }
        let units = (0..<32).map { w.commands.load(fromByteOffset: $0 * PassthruCommand.size64 + 40, as: UInt32.self) / 8 }
        precondition(gate.submitBatch(w.handle, queue: .io, commands: w.commands, count: 32, returns: w.returns) == 32)
        for slot in 0..<32 {
            precondition(w.returns[slot] == 0, "batch read \(slot): \(w.returns[slot])")
            Self.fill(expected, unit: units[slot], generation: 0)
            precondition(memcmp(expected, w.buffers + slot * Self.blockBytes, Self.blockBytes) == 0,
                         "batch read \(slot) returned other bytes than were written")
        }
        precondition(w.run(.randread, depth: 1, commands: 64) == 0 && w.run(.randwrite, depth: 32, commands: 64) == 0,
                     "a read or write failed")
        w.next = 0
    }
}

/// A small deterministic generator (SplitMix64), so the offsets are the same on every run.
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
