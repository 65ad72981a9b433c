#if canImport(Glibc)
import Glibc
#endif
import Logging
import NVMeBroker
import NVMeEmulator
import NVMeGate
import NVMeSpec
import Synchronization
import Testing

/// Two tenants, each owning one namespace of a two-namespace controller; no capability
/// bypass (the tests run as root, and root's capabilities must not decide here).
let tenantPolicy = """
    version = 1
    name = "broker-test"
    [privileges]
    bypass = []
    [default.admin]
    identify_cns = [0x01]
    [default.io]
    commands = "none"

    [[tenant]]
    name = "alpha"
    uids = [1001]
    rules = "kernel"
    namespaces = [1]

    [[tenant]]
    name = "beta"
    uids = [1002]
    rules = "kernel"
    namespaces = [2]
    """

let alpha = Caller(uid: 1001, gid: 1001)
let beta = Caller(uid: 1002, gid: 1002)
let rootCaller = Caller(uid: 0, gid: 0)

/// A controller that can be told to hold the next command for a while, to have a command
/// in flight on purpose.
final class HoldingController: Controller, @unchecked Sendable {
    let inner: EmulatedController
    /// Milliseconds the next command waits before it runs (then back to 0).
    let holdNext = Atomic<Int>(0)
    /// Set when a held command has started waiting.
    let holding = Atomic<Bool>(false)

    init(_ inner: EmulatedController) { self.inner = inner }

    var identity: ControllerIdentity { inner.identity }
    func namespaces() -> [NamespaceInfo] { inner.namespaces() }
    func effectsLog(for commandSet: CommandSet) -> CommandEffectsLog? { inner.effectsLog(for: commandSet) }
    func submit(_ command: borrowing SubmissionEntry, queue: Queue, data: UnsafeMutableRawBufferPointer,
                metadata: UnsafeMutableRawBufferPointer) throws(ControllerError) -> Completion {
        let hold = holdNext.exchange(0, ordering: .acquiringAndReleasing)
        if hold > 0 {
            holding.store(true, ordering: .releasing)
            usleep(UInt32(hold * 1000))
        }
        return try inner.submit(command, queue: queue, data: data, metadata: metadata)
    }
    func reset() throws(ControllerError) { try inner.reset() }
    func subsystemReset() throws(ControllerError) { try inner.subsystemReset() }
    func rescan() throws(ControllerError) { try inner.rescan() }
}

/// A broker serving an emulated controller (two namespaces of 2048 blocks of 512 bytes)
/// under `tenantPolicy` on a socket in a fresh directory. Each connection is identified as
/// the next caller `connect(as:)` queued, or, when none is queued, as the kernel says.
final class Fixture: @unchecked Sendable {
    let directory: String
    let socketPath: String
    let policyPath: String
    let controller: HoldingController
    let broker: Broker
    let queued = CallerQueue()

    init(_ configuration: BrokerConfiguration = BrokerConfiguration(ioTimeout: .milliseconds(300)),
         policy: String = tenantPolicy) throws {
        var template = Array("/tmp/nvmegate-broker-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw BrokerError("mkdtemp failed")
        }
        directory = String(cString: made)
        socketPath = directory + "/broker.sock"
        policyPath = directory + "/policy.toml"
        try writeFile(policyPath, policy)
        controller = HoldingController(EmulatedController.inMemory(
            EmulatorConfiguration(namespaceCount: 2, namespaceSize: 2048 * 512)))
        let gate = Gate(controller: controller, policy: try Policy.load(path: policyPath),
                        handleCapacity: configuration.gateHandleCapacity)
        let queue = queued
        broker = try Broker(gate: gate, policyFile: policyPath, configuration: configuration,
                            logger: Logger(label: "broker-test") { _ in SwiftLogNoOpLogHandler() },
                            identify: { peer in
                                queue.next() ?? Caller.identify(peer)
                            })
        try broker.start(on: try BrokerListener.bind(path: socketPath))
    }

    deinit {
        broker.shutdown()
        broker.waitUntilStopped()
        unlink(policyPath)
        rmdir(directory)
    }

    /// A connection identified as `caller` (nil: as the kernel says), once the broker has
    /// accepted it (a HELLO answered) unless `hello` is false.
    func connect(as caller: Caller? = alpha, hello: Bool = true) throws -> Client {
        if let caller { queued.callers.withLock { $0.append(caller) } }
        let client = try Client(socketPath)
        if hello {
            let reply = try #require(client.call(type: 1, body: Bytes().u16(1).u16(1)))
            try #require(reply.error == 0 && reply.ret == 0)
        }
        return client
    }

    /// The counters, as root asks for them.
    func metrics() throws -> String {
        let client = try connect(as: rootCaller)
        let reply = try #require(client.call(type: 6, body: Bytes()))
        try #require(reply.ret == 0)
        return String(decoding: reply.body.dropFirst(8), as: UTF8.self)
    }
}

/// The callers the next connections are identified as, in order.
final class CallerQueue: Sendable {
    let callers = Mutex<[Caller]>([])
    func next() -> Caller? { callers.withLock { $0.isEmpty ? nil : $0.removeFirst() } }
}

/// The value of the sample `series` (name and labels, as printed) in Prometheus text, nil if absent.
func sample(_ text: String, _ series: String) -> Double? {
    for line in text.split(separator: "\n") where line.hasPrefix(series + " ") {
        return Double(line.dropFirst(series.count + 1))
    }
    return nil
}

func writeFile(_ path: String, _ text: String) throws {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    guard fd >= 0 else { throw BrokerError("\(path): cannot create") }
    defer { close(fd) }
    let bytes = Array(text.utf8)
    guard bytes.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == bytes.count else { throw BrokerError("\(path): short write") }
}

/// Little-endian bytes written by hand, field by field, as a client would lay out a frame.
struct Bytes {
    var bytes: [UInt8] = []
    func u8(_ v: UInt8) -> Bytes { var c = self; c.bytes.append(v); return c }
    func u16(_ v: UInt16) -> Bytes { var c = self; c.bytes += withUnsafeBytes(of: v.littleEndian, Array.init); return c }
    func u32(_ v: UInt32) -> Bytes { var c = self; c.bytes += withUnsafeBytes(of: v.littleEndian, Array.init); return c }
    func i32(_ v: Int32) -> Bytes { u32(UInt32(bitPattern: v)) }
    func u64(_ v: UInt64) -> Bytes { var c = self; c.bytes += withUnsafeBytes(of: v.littleEndian, Array.init); return c }
    func raw(_ v: [UInt8]) -> Bytes { var c = self; c.bytes += v; return c }
    func zeros(_ n: Int) -> Bytes { raw([UInt8](repeating: 0, count: n)) }
}

/// A frame: the 16-byte header, then the body.
func frame(type: UInt16, tag: UInt32 = 7, version: UInt16 = 1, length: UInt32? = nil, body: Bytes) -> [UInt8] {
    Bytes().u32(length ?? UInt32(16 + body.bytes.count)).u16(version).u16(type).u32(tag).u32(0).raw(body.bytes).bytes
}

/// `struct nvme_passthru_cmd` (72 bytes) or `_cmd64` (80), laid out at linux/nvme_ioctl.h's
/// offsets. `addr` is whatever pointer value the client had (the broker never follows it).
func passthru(is64: Bool = false, opcode: UInt8, nsid: UInt32 = 0, addr: UInt64 = 0x7F00_0000_1000, dataLength: UInt32 = 0,
              metadata: UInt64 = 0, metadataLength: UInt32 = 0, cdw10: UInt32 = 0, cdw11: UInt32 = 0, cdw12: UInt32 = 0) -> Bytes {
    var b = Bytes().u8(opcode).u8(0).u16(0).u32(nsid).u32(0).u32(0)
    b = b.u64(metadata).u64(dataLength == 0 ? 0 : addr).u32(metadataLength).u32(dataLength)
    b = b.u32(cdw10).u32(cdw11).u32(cdw12).u32(0).u32(0).u32(0).u32(0)   // CDW10-15, timeout_ms
    return is64 ? b.u32(0).u64(0) : b.u32(0)                             // result (+ rsvd for 64)
}

/// An IOCTL request body: the fixed part, the struct, the data and metadata sent.
func ioctlBody(handle: Int32, request: UInt64, argument: Bytes, data: [UInt8] = [], metadata: [UInt8] = []) -> Bytes {
    Bytes().i32(handle).u32(0).u64(request).u32(UInt32(argument.bytes.count)).u32(UInt32(data.count))
        .u32(UInt32(metadata.count)).u32(0).raw(argument.bytes).raw(data).raw(metadata)
}

/// A reply as read off the socket.
struct Reply {
    var length: UInt32
    var version: UInt16
    var type: UInt16
    var tag: UInt32
    var error: UInt32
    var body: [UInt8]

    func u32(_ o: Int) -> UInt32 { body.count >= o + 4 ? body[o..<o + 4].reversed().reduce(0) { $0 << 8 | UInt32($1) } : 0xDEAD_BEEF }
    func u64(_ o: Int) -> UInt64 { UInt64(u32(o)) | UInt64(u32(o + 4)) << 32 }
    var ret: Int32 { Int32(bitPattern: u32(0)) }
    var errno: Int32 { Int32(bitPattern: u32(4)) }
    /// IOCTL replies: the result, the lengths and the bytes returned.
    var result: UInt64 { u64(8) }
    var dataLength: Int { Int(u32(16)) }
    var metadataLength: Int { Int(u32(20)) }
    var data: [UInt8] { Array(body.dropFirst(24).prefix(dataLength)) }
}

/// A raw client socket: writes bytes, reads replies, with a receive timeout so a test
/// cannot hang on a broker that does not answer.
final class Client {
    let fd: Int32

    init(_ path: String, receiveTimeout: Int = 3) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in path.utf8.enumerated() { raw[i] = b }
        }
        var limit = timeval(tv_sec: receiveTimeout, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else {
            let code = Glibc.errno
            close(fd)
            throw BrokerError("connect: \(String(cString: strerror(code)))", errno: code)
        }
    }

    deinit { close(fd) }

    /// Ends the connection from this side (the descriptor stays until the client goes).
    func hangUp() { Glibc.shutdown(fd, Int32(SHUT_RDWR)) }

    /// Sends all of `bytes`; false if the socket refused them (the broker closed it).
    @discardableResult
    func send(_ bytes: [UInt8]) -> Bool {
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { return false }
            sent += n
        }
        return true
    }

    func receive(_ count: Int) -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: count)
        var got = 0
        while got < count {
            let n = out.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + got, count - got, 0) }
            if n < 0 && Glibc.errno == EINTR { continue }
            guard n > 0 else { return nil }
            got += n
        }
        return out
    }

    /// The next reply, nil at end of stream or after the receive timeout.
    func reply() -> Reply? {
        guard let h = receive(16) else { return nil }
        let r = Reply(length: 0, version: 0, type: 0, tag: 0, error: 0, body: h)
        let length = r.u32(0)
        guard length >= 16, length < 64 << 20 else { return nil }
        guard let body = length == 16 ? [] : receive(Int(length) - 16) else { return nil }
        return Reply(length: length, version: UInt16(r.u32(4) & 0xFFFF), type: UInt16(r.u32(4) >> 16), tag: r.u32(8),
                     error: r.u32(12), body: body)
    }

    /// Sends a request frame and reads its reply.
    func call(type: UInt16, tag: UInt32 = 7, body: Bytes) -> Reply? {
        guard send(frame(type: type, tag: tag, body: body)) else { return nil }
        return reply()
    }

    /// Whether the broker has closed the connection: end of stream (or reset) within the timeout.
    func isClosedByPeer() -> Bool {
        var byte: UInt8 = 0
        while true {
            let n = recv(fd, &byte, 1, 0)
            if n < 0 && Glibc.errno == EINTR { continue }
            return n == 0 || (n < 0 && Glibc.errno == ECONNRESET)
        }
    }

    /// OPEN `node`: the reply.
    func open(_ node: String, write: Bool = false) -> Reply? {
        call(type: 2, body: Bytes().u32(write ? 2 : 0).u32(UInt32(node.utf8.count)).raw(Array(node.utf8)))
    }

    /// IOCTL with a passthru struct and the data sent.
    func ioctl(_ handle: Int32, _ request: IoctlRequest, _ argument: Bytes, data: [UInt8] = []) -> Reply? {
        call(type: 4, body: ioctlBody(handle: handle, request: UInt64(request.rawValue), argument: argument, data: data))
    }
}

/// Polls `condition` every 10 ms for up to `seconds`.
func eventually(_ seconds: Double = 2, _ condition: () -> Bool) -> Bool {
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    while ContinuousClock.now < deadline {
        if condition() { return true }
        usleep(10_000)
    }
    return condition()
}
