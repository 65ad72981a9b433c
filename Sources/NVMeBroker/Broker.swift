#if canImport(Glibc)
import Glibc
#endif
import Atomics
import Logging
import NVMeGate
import NVMeSpec

/// The broker: a gate served on a Unix socket (WireFormat.md), so that processes that may
/// not open the device send it ioctl-shaped requests and the policy judges each one.
///
/// Each connection's caller is who the kernel says connected (`SO_PEERCRED`, then
/// `/proc/PID/status` for supplementary groups and capabilities): nothing a client sends
/// names it. A connection is served on a thread of its own, one request at a time, with
/// handles of its own; limits on connections, frame sizes and time keep one client from
/// exhausting or stalling the daemon for the others.
///
/// `start(on:)` serves until `shutdown()`: new connections are refused, idle ones closed,
/// and a request being read or served finishes and gets its reply first;
/// `waitUntilStopped()` returns when every connection has ended. `reloadPolicy()` (SIGHUP)
/// replaces the policy whole while requests are served.
public final class Broker: Sendable {
    public let gate: Gate
    public let configuration: BrokerConfiguration
    /// The file `reloadPolicy()` loads; nil for a built-in policy.
    public let policyFile: String?
    /// The largest data or metadata length of one command (`max_transfer`).
    public let maxTransfer: Int
    /// The largest frame accepted (`max_frame`).
    public let maxFrame: Int
    let metrics = BrokerMetrics()
    let logger: Logger
    let identify: @Sendable (PeerCredentials) -> Caller
    let activity = Activity()
    /// A pipe whose read end becomes readable, for good, when the broker stops.
    let stopSignal: Int32
    let stopTrigger: Int32
    let stopping = ManagedAtomic<Bool>(false)
    let started = ManagedAtomic<Bool>(false)
    /// This process's effective uid: its own user may read the counters.
    let ownUID = geteuid()
    let ioTimeoutNanoseconds: Int64

    /// A broker for `gate`, which it owns from now on (give it a `Gate` whose handle
    /// capacity is `configuration.gateHandleCapacity`). `identify` turns the kernel's
    /// credentials of a connection's peer into the caller its commands are decided as: by
    /// default `Caller.identify` (groups and capabilities from /proc); an embedder may map
    /// peers to callers otherwise (to `Caller.name`, say), never from what a client sends.
    /// It runs while the peer's process is held by a pidfd where the kernel gives one; a
    /// peer whose process is gone once it has run is its uid and gid only.
    public init(gate: Gate, policyFile: String?, configuration: BrokerConfiguration = BrokerConfiguration(),
                logger: Logger, identify: @escaping @Sendable (PeerCredentials) -> Caller = { Caller.identify($0) })
        throws(BrokerError) {
        self.gate = gate
        self.policyFile = policyFile
        self.configuration = configuration
        self.logger = logger
        self.identify = identify
        maxTransfer = Self.maxTransfer(of: gate.controller)
        maxFrame = BrokerConfiguration.maxFrame(maxTransfer: maxTransfer)
        ioTimeoutNanoseconds = max(1, configuration.ioTimeout.components.seconds * 1_000_000_000
            + configuration.ioTimeout.components.attoseconds / 1_000_000_000)
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else { throw BrokerError("pipe: \(String(cString: strerror(errno)))", errno: errno) }
        for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
        stopSignal = ends[0]
        stopTrigger = ends[1]
    }

    deinit {
        close(stopSignal)
        close(stopTrigger)
    }

    /// `max_transfer` for `controller`: 2^MDTS × 4 KiB from its Identify Controller (sent to
    /// the controller directly, not through the policy), 2 MiB when MDTS is 0 (no limit) or
    /// Identify fails, and never above 8 MiB, bounding what one request makes the broker allocate.
    public static func maxTransfer(of controller: any Controller) -> Int {
        let fallback = 2 << 20, ceiling = 8 << 20
        var page = [UInt8](repeating: 0, count: 4096)
        let mdts: UInt8? = page.withUnsafeMutableBytes { data in
            let identify = SubmissionQueueEntry(opcode: AdminOpcode.identify.rawValue, cdw10: 0x01)
            let completion = identify.withEntry { e in
                try? controller.submit(e, queue: .admin, data: data, metadata: UnsafeMutableRawBufferPointer(start: nil, count: 0))
            }
            guard let completion, completion.status == .success else { return nil }
            return data[77]
        }
        guard let mdts, mdts > 0 else { return fallback }
        return mdts >= 12 ? ceiling : min(4096 << Int(mdts), ceiling)
    }

    var isStopping: Bool { stopping.load(ordering: .acquiring) }

    // MARK: Serving

    /// Starts accepting connections on `listener` on a thread of its own, and returns. A
    /// broker serves one listener, once.
    public func start(on listener: BrokerListener) throws(BrokerError) {
        guard started.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else {
            throw BrokerError("the broker is already serving", errno: EBUSY)
        }
        _ = fcntl(listener.fd, F_SETFL, fcntl(listener.fd, F_GETFL) | O_NONBLOCK)
        activity.threadStarting()
        guard spawnThread({ [self] in
            acceptLoop(listener)
            activity.threadEnded()
        }) else {
            activity.threadEnded()
            throw BrokerError("cannot start the accept thread", errno: EAGAIN)
        }
    }

    /// Stops the broker: no new connection is accepted, connections between requests are
    /// closed, and those reading or serving a request finish it and send its reply first.
    /// Returns at once; `waitUntilStopped()` waits for the end. Safe from any thread, more
    /// than once.
    public func shutdown() {
        guard !stopping.exchange(true, ordering: .acquiringAndReleasing) else { return }
        var byte: UInt8 = 1
        _ = write(stopTrigger, &byte, 1)
    }

    /// Blocks until the accept loop and every connection have ended (after `shutdown()`).
    public func waitUntilStopped() {
        activity.waitForThreads()
    }

    func acceptLoop(_ listener: BrokerListener) {
        defer { listener.close() }
        var fds = [pollfd(fd: listener.fd, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: stopSignal, events: Int16(POLLIN), revents: 0)]
        while !isStopping {
            let n = poll(&fds, 2, -1)
            if n < 0 && errno == EINTR { continue }
            if fds[1].revents != 0 { break }
            guard n > 0 else { continue }
            let fd = accept(listener.fd, nil, nil)
            guard fd >= 0 else {
                let code = errno
                if code == EINTR || code == EAGAIN || code == EWOULDBLOCK || code == ECONNABORTED { continue }
                // Out of descriptors or memory: wait a little rather than spin; the client waits in the backlog.
                logger.warning("accept: \(String(cString: strerror(code)))")
                var pause = timespec(tv_sec: 0, tv_nsec: 100_000_000)
                nanosleep(&pause, nil)
                continue
            }
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            serve(fd)
        }
        logger.notice("stopping: no new connections; finishing the requests in flight")
    }

    /// Identifies the peer of a new connection, admits it within the limits (else `busy`),
    /// and serves it on a thread of its own.
    func serve(_ fd: Int32) {
        guard let peer = PeerCredentials(socket: fd) else {
            close(fd)
            return
        }
        let caller = Caller.identify(peer, socket: fd, using: identify)
        if let limit = activity.admit(uid: caller.uid, total: configuration.maxConnections,
                                      perUID: configuration.maxConnectionsPerUID) {
            (limit == .total ? metrics.refusedTotal : metrics.refusedPerUID).increment()
            logger.notice("connection refused (busy): over the \(limit.rawValue) connection limit",
                          metadata: ["uid": "\(caller.uid)", "pid": "\(peer.pid)"])
            let busy = UnsafeMutableRawBufferPointer.allocate(byteCount: FrameHeader.size, alignment: 8)
            FrameHeader(length: UInt32(FrameHeader.size), type: 0, tag: 0, error: WireError.busy.rawValue).write(to: busy)
            _ = Glibc.send(fd, busy.baseAddress, busy.count, Int32(MSG_NOSIGNAL) | Int32(MSG_DONTWAIT))
            busy.deallocate()
            close(fd)
            return
        }
        metrics.accepted.increment()
        metrics.open.increment()
        logger.debug("connection accepted", metadata: ["uid": "\(caller.uid)", "gid": "\(caller.gid)", "pid": "\(peer.pid)"])
        let connection = Connection(fd: fd, peer: peer, caller: caller, broker: self)
        let ended: @Sendable () -> Void = { [self] in
            activity.release(uid: caller.uid)
            metrics.open.decrement()
            activity.threadEnded()
        }
        activity.threadStarting()
        let box = UnsafeSendable(connection)
        guard spawnThread({
            box.value.serve()
            ended()
        }) else {
            logger.error("cannot start a thread for a connection: closing it", metadata: ["uid": "\(caller.uid)"])
            close(fd)
            ended()
            return
        }
    }

    // MARK: Operations

    /// Loads the policy file again and replaces the policy whole (SIGHUP): requests being
    /// decided finish under the old policy, the next ones see the new one, and open handles
    /// are matched to its tenants. A file that does not load leaves the policy in force;
    /// its error (file, line, key) is logged and thrown.
    public func reloadPolicy() throws(PolicyError) {
        guard let policyFile else {
            logger.notice("reload: no policy file (the built-in policy is in force): nothing to reload")
            return
        }
        do {
            try gate.reload(path: policyFile)
        } catch {
            metrics.reloadsFailed.increment()
            logger.error("reload: \(error.description); the policy in force (\(gate.policy.policy.name)) stays")
            throw error
        }
        metrics.reloadsOK.increment()
        logger.notice("reload: policy \"\(gate.policy.policy.name)\" from \(policyFile) is in force")
    }

    /// The counters in Prometheus's text format, as a METRICS request returns them (the
    /// families are listed on `BrokerMetrics`).
    public func metricsText() -> String {
        metrics.text(gate: gate)
    }
}

/// A value handed to the one thread that uses it from then on.
struct UnsafeSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
