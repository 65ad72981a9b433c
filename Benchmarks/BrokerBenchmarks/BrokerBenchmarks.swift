// The broker's socket hop, measured: one command through the C ABI's `nvmegate_ioctl` on a gate
// in this process (`nvmegate_create(NULL, "emulated", …)`) and the same command through a broker
// (`nvmegate_create(NULL, "unix:PATH", …)`), the broker being `nvmegate serve`'s library
// (NVMeBroker) started in this process on a socket in a temporary directory, over its own
// in-memory emulated controller. Both decide under the built-in kernel policy as uid 1000 (the
// broker is given that caller for every connection, as an embedder may map peers), on nvme0n1
// opened read-write and nvme0 read-only.
//
// - `broker_4KiB_Read_…`: one NVME_IOCTL_IO64_CMD Read of 8 blocks (4 KiB) from a random 4 KiB
//   unit of a 64 MiB region written beforehand (the same offsets in the same order both ways);
// - `broker_Identify_Controller_…`: one NVME_IOCTL_ADMIN_CMD Identify Controller (4 KiB).
//
// One scaled iteration (`.kilo`) is one command: the tables show ns per command. Through the
// broker that is the client's frame out, a context switch to the connection's thread, its
// frame read, the gate and the controller, the reply and its data back, and the switch back.
// The allocation counts are process-wide, so they include the broker's per-command buffers.
//
// Names use `_` only: package-benchmark 1.38.1 writes threshold files under the name with `/`
// and ` ` replaced by `_`, but `thresholds check` looks them up under the raw name.

import Benchmark
import CNVMeGate
import Logging
import NVMeBroker
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
        maxDuration: .seconds(3),
        maxIterations: 100_000,
        // CI checks allocations, never time (this VM is noisy). No tolerance.
        thresholds: [.mallocCountTotal: .init(relative: [.p90: 0], absolute: [.p90: 0])])

    for side in Side.allCases {
        Benchmark("broker_4KiB_Read_(\(side))") { benchmark in
            let path = Fixture.shared.paths[side.index]
            for _ in benchmark.scaledIterations { blackHole(path.read()) }
        } setup: { _ = Fixture.shared }

        Benchmark("broker_Identify_Controller_(\(side))") { benchmark in
            let path = Fixture.shared.paths[side.index]
            for _ in benchmark.scaledIterations { blackHole(path.identifyController()) }
        } setup: { _ = Fixture.shared }
    }
}

enum Side: String, CaseIterable, CustomStringConvertible {
    case inProcess = "in-process"
    case broker = "unix_socket"
    var description: String { rawValue }
    var index: Int { self == .inProcess ? 0 : 1 }
}

/// One way to the controller: a C ABI gate (in this process, or a broker connection), its
/// handles, the structs and buffers of the commands sent, and the random offsets.
final class GatePath: @unchecked Sendable {
    let gate: OpaquePointer
    let namespace: Int32
    let controller: Int32
    /// `struct nvme_passthru_cmd64` for the Read, `struct nvme_passthru_cmd` for Identify.
    let readCommand: UnsafeMutableRawPointer
    let identifyCommand: UnsafeMutableRawPointer
    let buffer: UnsafeMutableRawPointer
    let offsets: UnsafePointer<UInt32>
    var next = 0

    init(target: String, offsets: UnsafePointer<UInt32>) {
        var message = [CChar](repeating: 0, count: 512)
        guard let created = nvmegate_create(nil, target, &message, message.count) else {
            fatalError("nvmegate_create(\(target)): \(String(decoding: message.prefix { $0 != 0 }.map(UInt8.init(bitPattern:)), as: UTF8.self))")
        }
        gate = created
        var caller = nvmegate_caller(uid: 1000, gid: 1000, capabilities: 0)
        namespace = nvmegate_open(gate, "nvme0n1", O_RDWR, &caller)
        controller = nvmegate_open(gate, "nvme0", O_RDONLY, &caller)
        precondition(namespace >= 0 && controller >= 0, "\(target): nvmegate_open: errno \(errno)")
        self.offsets = offsets
        buffer = .allocate(byteCount: Fixture.unitBytes, alignment: 4096)
        readCommand = .allocate(byteCount: PassthruCommand.size64, alignment: 8)
        readCommand.initializeMemory(as: UInt8.self, repeating: 0, count: PassthruCommand.size64)
        readCommand.storeBytes(of: UInt32(1).littleEndian, toByteOffset: 4, as: UInt32.self)                                // NSID
        readCommand.storeBytes(of: UInt64(UInt(bitPattern: buffer)).littleEndian, toByteOffset: 24, as: UInt64.self)      // addr
        readCommand.storeBytes(of: UInt32(Fixture.unitBytes).littleEndian, toByteOffset: 36, as: UInt32.self)             // data_len
        readCommand.storeBytes(of: UInt32(Fixture.unitBytes / 512 - 1).littleEndian, toByteOffset: 48, as: UInt32.self)   // NLB
        identifyCommand = .allocate(byteCount: PassthruCommand.size32, alignment: 8)
        identifyCommand.initializeMemory(as: UInt8.self, repeating: 0, count: PassthruCommand.size32)
        identifyCommand.storeBytes(of: AdminOpcode.identify.rawValue, toByteOffset: 0, as: UInt8.self)
        identifyCommand.storeBytes(of: UInt64(UInt(bitPattern: buffer)).littleEndian, toByteOffset: 24, as: UInt64.self)
        identifyCommand.storeBytes(of: UInt32(4096).littleEndian, toByteOffset: 36, as: UInt32.self)
        identifyCommand.storeBytes(of: UInt32(1).littleEndian, toByteOffset: 40, as: UInt32.self)                         // CNS 01h
    }

    /// Writes every 4 KiB unit of the region with its pattern, then reads a few back.
    func prepare() {
        readCommand.storeBytes(of: IOOpcode.write.rawValue, toByteOffset: 0, as: UInt8.self)
        for unit in 0..<UInt32(Fixture.units) {
            Fixture.fill(buffer, unit: unit)
            aim(at: unit)
            let r = nvmegate_ioctl(gate, namespace, IoctlRequest.io64Command.rawValue, readCommand)
            precondition(r == 0, "Write of unit \(unit): \(r), errno \(errno)")
        }
        readCommand.storeBytes(of: IOOpcode.read.rawValue, toByteOffset: 0, as: UInt8.self)
        let expected = UnsafeMutableRawPointer.allocate(byteCount: Fixture.unitBytes, alignment: 8)
        defer { expected.deallocate() }
        for i in 0..<64 {
            let unit = offsets[i]
            aim(at: unit)
            precondition(nvmegate_ioctl(gate, namespace, IoctlRequest.io64Command.rawValue, readCommand) == 0, "Read: errno \(errno)")
            Fixture.fill(expected, unit: unit)
            precondition(memcmp(expected, buffer, Fixture.unitBytes) == 0, "unit \(unit) did not read back as written")
        }
        precondition(identifyController() == 0, "Identify Controller: errno \(errno)")
        precondition(memcmp(buffer + 24, "nvmegate emulated controller", 28) == 0, "Identify Controller: not the emulated controller")
    }

    @inline(__always)
    func aim(at unit: UInt32) {
        readCommand.storeBytes(of: (unit &* UInt32(Fixture.unitBytes / 512)).littleEndian, toByteOffset: 40, as: UInt32.self)   // SLBA
    }

    /// One 4 KiB Read of the next random unit: what nvmegate_ioctl returned (0).
    @inline(never)
    func read() -> Int32 {
        aim(at: offsets[next & (Fixture.offsetCount - 1)])
        next &+= 1
        return nvmegate_ioctl(gate, namespace, IoctlRequest.io64Command.rawValue, readCommand)
    }

    /// One Identify Controller: what nvmegate_ioctl returned (0).
    @inline(never)
    func identifyController() -> Int32 {
        nvmegate_ioctl(gate, controller, IoctlRequest.adminCommand.rawValue, identifyCommand)
    }
}

/// The broker, and the two paths, made once per process.
final class Fixture: @unchecked Sendable {
    static let units = 16384            // 64 MiB of 4 KiB units
    static let unitBytes = 4096
    static let offsetCount = 4096       // a power of two
    static let shared = Fixture()

    let broker: Broker
    /// In-process, then through the broker (`Side.index`).
    let paths: [GatePath]

    init() {
        // A seeded table of random units, the same for both paths.
        let offsets = UnsafeMutablePointer<UInt32>.allocate(capacity: Self.offsetCount)
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        for i in 0..<Self.offsetCount {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            offsets[i] = UInt32(truncatingIfNeeded: state >> 33) % UInt32(Self.units)
        }

        var template = Array("/tmp/nvmegate-bench-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else { fatalError("mkdtemp: errno \(errno)") }
        let directory = String(cString: made)
        let socket = directory + "/broker.sock"
        let configuration = BrokerConfiguration()
        let gate = Gate(controller: EmulatedController.inMemory(EmulatorConfiguration()), policy: .kernel,
                        handleCapacity: configuration.gateHandleCapacity)
        do {
            broker = try Broker(gate: gate, policyFile: nil, configuration: configuration,
                                logger: Logger(label: "broker-benchmarks") { _ in SwiftLogNoOpLogHandler() },
                                identify: { _ in Caller(uid: 1000, gid: 1000) })
            try broker.start(on: try BrokerListener.bind(path: socket))
        } catch {
            fatalError("the broker: \(error)")
        }
        paths = [GatePath(target: "emulated", offsets: offsets), GatePath(target: "unix:" + socket, offsets: offsets)]
        // Connected: the socket file is no longer needed (connections outlive it).
        unlink(socket)
        rmdir(directory)
        for path in paths { path.prepare() }
    }

    /// The pattern of 4 KiB unit `unit`: its number in every 32-bit word, mixed with the word's index.
    static func fill(_ buffer: UnsafeMutableRawPointer, unit: UInt32) {
        for word in 0..<unitBytes / 4 {
            buffer.storeBytes(of: (unit &* 0x9E37_79B9 ^ UInt32(word)).littleEndian, toByteOffset: word * 4, as: UInt32.self)
        }
    }
}
