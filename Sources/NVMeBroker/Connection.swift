#if canImport(Glibc)
import Glibc
#endif
import NVMeGate
import NVMeSpec

/// One client connection, served on its own thread: read a frame whole (within the I/O
/// timeout of its first byte), answer it, read the next, so each connection has one request
/// in flight at most. The caller was identified by the kernel when the connection was
/// accepted; the handles it opens are its own and are closed when it ends.
final class Connection {
    let fd: Int32
    let peer: PeerCredentials
    let caller: Caller
    let broker: Broker
    /// Gate handles by wire handle (the index); -1 for a free slot.
    var handles: [Int32] = []
    /// The outcome counters of the caller's tenant under the policy that was in force at
    /// the last IOCTL. The policy is held, not identified by address: the gate frees replaced
    /// policies, and a new one may be allocated where an old one was.
    var tenantCounters: (policy: CompiledPolicy, counters: CommandCounters)?

    /// Reply header, `ret`, `errno`, `result` and two lengths: what precedes an IOCTL reply's data.
    static let ioctlReplyPrefix = FrameHeader.size + 8 + 16
    /// Where an IOCTL's data buffer starts in its allocation: page-aligned, for devices.
    static let page = 4096

    init(fd: Int32, peer: PeerCredentials, caller: Caller, broker: Broker) {
        self.fd = fd; self.peer = peer; self.caller = caller; self.broker = broker
    }

    /// Serves frames until the client closes, breaks the protocol in a way that closes the
    /// connection, times out mid-frame or mid-reply, or the broker stops; then closes the
    /// connection's handles and the socket.
    func serve() {
        defer {
            for handle in handles where handle >= 0 { _ = broker.gate.close(handle) }
            close(fd)
        }
        while awaitFrame() {
            guard let (header, body) = readFrame() else { return }
            defer { body.deallocate() }
            guard answer(header, UnsafeRawBufferPointer(body)) else { return }
        }
    }

    // MARK: Frames

    /// Waits, untimed, for the first byte of the next frame; false when the broker stops
    /// first (a connection between frames has nothing in flight) or the socket fails.
    func awaitFrame() -> Bool {
        var fds = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: broker.stopSignal, events: Int16(POLLIN), revents: 0)]
        while true {
            if broker.isStopping { return false }
            let n = poll(&fds, 2, -1)
            if n < 0 && errno == EINTR { continue }
            guard n > 0, fds[1].revents == 0 else { return false }
            if fds[0].revents != 0 { return true }
        }
    }

    /// The next frame's header and body (to deallocate), read whole within the I/O timeout;
    /// nil when the connection is to be closed: end of stream, timeout, or a header the
    /// broker answered with a wire error that closes it.
    func readFrame() -> (FrameHeader, UnsafeMutableRawBufferPointer)? {
        let deadline = monotonicNanoseconds() + broker.ioTimeoutNanoseconds
        let received = withUnsafeTemporaryAllocation(byteCount: FrameHeader.size, alignment: 8) { bytes in
            receive(bytes, until: deadline, frameStarted: false) ? FrameHeader(UnsafeRawBufferPointer(bytes)) : nil
        }
        guard let header = received else { return nil }
        guard header.version == brokerWireVersion else {
            refuse(header, .unsupportedVersion)
            return nil
        }
        guard header.length >= UInt32(FrameHeader.size), Int(header.length) <= broker.maxFrame else {
            refuse(header, .tooLarge)
            return nil
        }
        let body = UnsafeMutableRawBufferPointer.allocate(byteCount: Int(header.length) - FrameHeader.size, alignment: 16)
        guard receive(body, until: deadline, frameStarted: true) else {
            body.deallocate()
            return nil
        }
        return (header, body)
    }

    /// Fills `buffer` from the socket by `deadline`. False, counted, when the stream ends
    /// (a clean end only before a frame's first byte), the deadline passes or the socket fails.
    func receive(_ buffer: UnsafeMutableRawBufferPointer, until deadline: Int64, frameStarted: Bool) -> Bool {
        var got = 0
        while got < buffer.count {
            guard let base = buffer.baseAddress else { return true }
            let n = recv(fd, base + got, buffer.count - got, Int32(MSG_DONTWAIT))
            if n > 0 { got += n; continue }
            if n == 0 {
                if frameStarted || got > 0 { broker.metrics.truncated.increment() }
                return false
            }
            if errno == EINTR { continue }
            guard errno == EAGAIN || errno == EWOULDBLOCK else { return false }
            guard wait(for: POLLIN, until: deadline) else {
                broker.metrics.frameTimeouts.increment()
                return false
            }
        }
        return true
    }

    /// Sends all of `bytes`, which the client must take within the I/O timeout; false (and
    /// the connection is to be closed) otherwise.
    func send(_ bytes: UnsafeRawBufferPointer) -> Bool {
        let deadline = monotonicNanoseconds() + broker.ioTimeoutNanoseconds
        var sent = 0
        while sent < bytes.count {
            guard let base = bytes.baseAddress else { return true }
            let n = Glibc.send(fd, base + sent, bytes.count - sent, Int32(MSG_NOSIGNAL) | Int32(MSG_DONTWAIT))
            if n > 0 { sent += n; continue }
            if n < 0 && errno == EINTR { continue }
            guard n < 0, errno == EAGAIN || errno == EWOULDBLOCK else { return false }
            guard wait(for: POLLOUT, until: deadline) else {
                broker.metrics.replyTimeouts.increment()
                return false
            }
        }
        return true
    }

    /// Waits until the socket is ready for `events` or `deadline` passes (false).
    func wait(for events: Int32, until deadline: Int64) -> Bool {
        var one = pollfd(fd: fd, events: Int16(events), revents: 0)
        while true {
            let left = deadline - monotonicNanoseconds()
            guard left > 0 else { return false }
            let n = poll(&one, 1, Int32(clamping: (left + 999_999) / 1_000_000))
            if n > 0 { return true }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { return false }
        }
    }

    /// Replies to `header` with `error` and an empty body; counted.
    func refuse(_ header: FrameHeader, _ error: WireError) {
        broker.metrics.count(error)
        _ = reply(to: header, error: error, bodyLength: 0) { _ in }
    }

    /// Sends a reply to `header` whose body `fill` writes (`bodyLength` bytes); false when it
    /// could not be sent.
    func reply(to header: FrameHeader, error: WireError? = nil, bodyLength: Int,
               _ fill: (inout WireWriter) -> Void) -> Bool {
        let length = FrameHeader.size + bodyLength
        return withUnsafeTemporaryAllocation(byteCount: length, alignment: 8) { buffer in
            FrameHeader(length: UInt32(length), type: header.type, tag: header.tag, error: error?.rawValue ?? 0).write(to: buffer)
            var writer = WireWriter(buffer, at: FrameHeader.size)
            fill(&writer)
            return send(UnsafeRawBufferPointer(buffer))
        }
    }

    /// Sends a reply body of `ret`, `errno` and nothing else.
    func reply(to header: FrameHeader, ret: Int32, errno code: Int32) -> Bool {
        reply(to: header, bodyLength: 8) { w in w.i32(ret); w.i32(ret < 0 ? code : 0) }
    }

    // MARK: Requests

    /// Answers one frame; false when the connection is to be closed.
    func answer(_ header: FrameHeader, _ body: UnsafeRawBufferPointer) -> Bool {
        let request: WireRequest
        switch WireRequest.decode(type: header.type, body: body, maxTransfer: broker.maxTransfer) {
        case .failure(let error):
            refuse(header, error)
            return !error.closesConnection
        case .success(let decoded):
            request = decoded
        }
        if let type = FrameType(rawValue: header.type) { broker.metrics.count(type) }
        switch request {
        case .hello(let low, let high):
            guard low <= brokerWireVersion && brokerWireVersion <= high else {
                refuse(header, .unsupportedVersion)
                return false
            }
            return reply(to: header, bodyLength: 32) { w in
                w.i32(0); w.i32(0)
                w.u16(brokerWireVersion); w.u16(0)
                w.u32(UInt32(clamping: broker.maxFrame)); w.u32(UInt32(clamping: broker.maxTransfer))
                w.u32(caller.uid); w.u32(caller.gid); w.i32(peer.pid)
            }
        case .open(let oflags, let name):
            return open(header, oflags: oflags, name: name)
        case .close(let handle):
            guard let slot = slot(of: handle) else { return reply(to: header, ret: -1, errno: EBADF) }
            _ = broker.gate.close(handles[slot])
            handles[slot] = -1
            return reply(to: header, ret: 0, errno: 0)
        case .ioctl(let frame):
            return ioctl(header, frame)
        case .checkBatch(let frame):
            return checkBatch(header, frame)
        case .metrics:
            guard caller.uid == 0 || caller.uid == broker.ownUID else { return reply(to: header, ret: -1, errno: EACCES) }
            let text = Array(broker.metrics.text(gate: broker.gate).utf8)
            return reply(to: header, bodyLength: 8 + text.count) { w in
                w.i32(0); w.i32(0)
                text.withUnsafeBytes { w.bytes($0) }
            }
        }
    }

    /// The slot of wire handle `handle` when it is open on this connection.
    func slot(of handle: Int32) -> Int? {
        guard handle >= 0, Int(handle) < handles.count, handles[Int(handle)] >= 0 else { return nil }
        return Int(handle)
    }

    /// OPEN: a gate handle for the caller, under the lowest free wire handle.
    func open(_ header: FrameHeader, oflags: UInt32, name: String) -> Bool {
        let access = Int32(bitPattern: oflags) & O_ACCMODE
        guard access != O_ACCMODE else { return reply(to: header, ret: -1, errno: EINVAL) }
        let free = handles.firstIndex(of: -1)
        guard free != nil || handles.count < broker.configuration.maxHandlesPerConnection else {
            return reply(to: header, ret: -1, errno: EMFILE)
        }
        let handle = broker.gate.open(node: name, writable: access != O_RDONLY, caller: caller)
        guard handle >= 0, let state = broker.gate.handleState(handle) else {
            return reply(to: header, ret: -1, errno: handle < 0 ? -handle : EBADF)
        }
        let slot: Int
        if let free { handles[free] = handle; slot = free } else { handles.append(handle); slot = handles.count - 1 }
        let kind: UInt32 = switch state.context.kind {
        case .controller: 0
        case .namespace, .generic: 1
        case .partition: 2
        }
        return reply(to: header, bodyLength: 24) { w in
            w.i32(Int32(slot)); w.i32(0)
            w.u32(kind); w.u32(state.context.nsid); w.u32(state.lbaDataSize); w.u32(state.metadataSize)
        }
    }

    /// CHECK_BATCH: the verdicts of the entries in place, as `nvmegate_check_batch`.
    func checkBatch(_ header: FrameHeader, _ frame: CheckBatchFrame) -> Bool {
        guard frame.queue <= 1 else { return reply(to: header, ret: -1, errno: EINVAL) }
        guard let slot = slot(of: frame.handle) else { return reply(to: header, ret: -1, errno: EBADF) }
        guard frame.count > 0, let entries = frame.entries.baseAddress else { return reply(to: header, ret: 0, errno: 0) }
        let length = FrameHeader.size + 8 + frame.count
        return withUnsafeTemporaryAllocation(byteCount: length, alignment: 8) { buffer in
            guard let base = buffer.baseAddress else { return false }
            let span = unsafe RawSpan(_unsafeStart: entries, byteCount: frame.entries.count)
            let decided = broker.gate.checkBatch(handles[slot], queue: frame.queue == 0 ? .admin : .io, entries: span,
                                                 verdicts: (base + FrameHeader.size + 8).bindMemory(to: UInt8.self, capacity: frame.count))
            guard decided >= 0 else { return reply(to: header, ret: -1, errno: Int32(-decided)) }
            FrameHeader(length: UInt32(length), type: header.type, tag: header.tag).write(to: buffer)
            var w = WireWriter(buffer, at: FrameHeader.size)
            w.i32(Int32(decided)); w.i32(0)
            return send(UnsafeRawBufferPointer(buffer))
        }
    }

    /// The outcome counters of the caller's tenant under the policy in force.
    func commandCounters() -> CommandCounters {
        let policy = broker.gate.policy
        if let cached = tenantCounters, cached.policy === policy { return cached.counters }
        let tenant = policy.tenant(at: policy.assignment(for: caller).tenant)?.name ?? ""
        let counters = broker.metrics.commandCounters(tenant: tenant)
        tenantCounters = (policy, counters)
        return counters
    }
}
