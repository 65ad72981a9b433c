#if canImport(Glibc)
import Glibc
#endif
import Logging
import NVMeBroker
import NVMeGate
import NVMeSpec
import Synchronization

/// `wire`: the broker (NVMeBroker) through a real Unix socket. Once per process a `Broker`
/// serves a recording controller (Fixture's five namespaces, MDTS 1: `max_transfer` 8 KiB, so
/// `max_frame`, 16,512 bytes, is reachable) under the tenant policy with no capability bypass
/// (the fuzzer runs as root with every capability: here root is a caller like any other).
/// Each input is one connection, identified as the process really is (`SO_PEERCRED` and
/// /proc, root) or as one of Fixture's callers (the broker's `identify` hook, as an embedder
/// uses it); its bytes are either sent as they are (raw mode: seeds of valid frame sequences)
/// or read as a program that writes frames: valid-looking headers with hostile lengths, types,
/// versions and bodies, IOCTLs of every request with lying lengths, range lists, frames of
/// exactly `max_frame`. The stream is written while replies are read, then SHUT_WR (so a
/// truncated last frame ends at once, without waiting for the I/O timeout), and replies are
/// read to end of stream.
///
/// Input: one byte (bits 0-1 zero: raw mode; bits 2-7: the caller, 0 for this process as the
/// kernel identifies it, N for `callers[N - 1]`), for a listed caller one byte choosing its
/// capabilities, one byte of controller flags (bits 0-1 = 3: a u16 NVMe status follows; bit 2:
/// the completion's dw0 and dw1 follow; bits 4-7 all set: every command fails with EIO), then
/// the bytes to send (raw) or the program. `Corpus/make-wire-seeds.py` writes the seeds;
/// NVMEGATE_FUZZ_WIRE_TRACE=1 prints each request and its reply when replaying one.
///
/// The harness parses the bytes it sent as the wire format says (WireFormat.md) and holds
/// every reply to it:
/// - replies are well-formed (length ≥ 16 and as declared, version 1), one per complete
///   request frame, in order, with its type and tag; none for a truncated last frame; after
///   `unsupported-version` or `too-large` (and a HELLO whose range excludes 1) nothing more,
///   and the connection ends; `unknown-type` and `malformed` leave it open; error replies
///   have empty bodies;
/// - `ret`/`errno` are coherent (ret ≥ 0 with errno 0, or -1 with an errno); HELLO names the
///   caller, the pid and the limits; OPEN gives the lowest free handle, the node's kind, NSID
///   and format, EINVAL / EMFILE / ENOENT where due; CLOSE, CHECK_BATCH (verdicts equal to
///   `ReferenceModel`'s ring verdicts) and METRICS (root only) as documented;
/// - IOCTL: every command that reached the controller is one the model allows for this
///   caller and handle, with buffers that hold what it transfers, handed the bytes the client
///   sent then zeros (or the gate's checked copy of a range list); nothing refused reached
///   it; the return is the controller's status and the result as the struct has room for;
///   data come back only for an executed command whose opcode has bit 0 clear, exactly the
///   bytes the controller left, of the lengths the struct gave; a refused one returns none;
/// - afterwards: no command reaches the controller late; a HELLO on another connection (made
///   with the input's, so that accepting it overlaps the input, and used once the input's
///   connection has ended) is answered, naming this process; the broker's
///   `nvmegate_connections_open` returns to 0 and the gate holds no handle (nothing leaked).
enum WireTarget {
    /// Fixture's callers, and one matched by a supplementary group (the auditor tenant's gid).
    static let callers: [Caller] = Fixture.callers + [Caller(uid: 6000, gid: 6000, groups: [2000])]

    /// Fixture's tenant policy with no capability bypass: root, as the kernel identifies the
    /// fuzzer, has CAP_SYS_ADMIN, and its verdicts must come from the rules. Management
    /// (reset, rescan) still takes CAP_SYS_ADMIN or CAP_SYS_RAWIO.
    static let policy: Policy = {
        let text = Fixture.tenantPolicyText.replacing(#"bypass = ["CAP_SYS_ADMIN"]"#, with: "bypass = []")
        do {
            let policy = try Policy.parse(text, file: "fuzz-wire.toml")
            require(policy.bypassCapabilities.isEmpty, "the wire policy still has a bypass")
            return policy
        } catch { finding("wire policy: \(error)") }
    }()

    static let server = Server()

    static func run(_ data: UnsafeRawBufferPointer) {
        let s = server
        var input = FuzzInput(data)
        let first = input.u8()
        let raw = first & 3 == 0
        let who = Int(first >> 2) % (callers.count + 1)
        var caller = s.kernelCaller
        if who > 0 {
            caller = callers[who - 1]
            caller.capabilities = input.pick(Fixture.capabilitySets)
        }
        let flags = input.u8()
        var completion = Completion(status: NVMeStatus(rawValue: flags & 3 == 3 ? input.u16() : 0),
                                    dw0: 0xC0FF_EE01, dw1: 0xFEED_F00D)
        if flags & 4 != 0 { (completion.dw0, completion.dw1) = (input.u32(), input.u32()) }
        let throwing: Int32 = flags & 0xF0 == 0xF0 ? EIO : 0
        let stream = raw ? input.take(data.count) : generate(&input, maxTransfer: s.maxTransfer, maxFrame: s.maxFrame)

        s.controller.begin(completion: completion, throwing: throwing)
        s.next.slot.withLock { $0 = who == 0 ? nil : caller }
        let fd = s.connect()
        // The connection for the HELLO that follows the input, made now so that the broker
        // accepts it while it serves the input (accepted second: identified as this process).
        let after = s.connect()
        let received = s.exchange(stream, on: fd)
        let records = s.controller.end()
        var session = Session(server: s, caller: caller, completion: completion, throwing: throwing,
                              stream: stream, replies: parseReplies(received), records: records)
        session.check()

        // The broker keeps serving, and nothing of the connection is left behind.
        s.hello(on: after)
        s.waitUntilIdle()

        let late = s.controller.end()
        require(late.isEmpty, "\(late.count) command(s) reached the controller after the connection ended")
        for slot in 0..<s.configuration.gateHandleCapacity where s.gate.handleState(Int32(slot)) != nil {
            finding("gate handle \(slot) is still open after every connection ended")
        }
    }

    // MARK: The broker

    /// The broker this process fuzzes, started once, and a client's side of its socket.
    final class Server: @unchecked Sendable {
        let controller: WireController
        let gate: Gate
        let broker: Broker
        let configuration: BrokerConfiguration
        let model: ReferenceModel
        let socketPath: String
        let directory: String
        let maxTransfer: Int
        let maxFrame: Int
        /// This process as the broker identifies it without the hook: root, every capability.
        let kernelCaller: Caller
        let next: NextCaller
        let pid = getpid()
        /// Where replies are received.
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 65536, alignment: 16)

        init() {
            let logs = ([0, 1] as [UInt8]).withUnsafeBytes { bytes in
                var none = FuzzInput(bytes)
                return Fixture.effectsLogs(&none)   // the logs as they come, none rewritten
            }
            controller = WireController(logs: logs)
            // Short, but not so short that a loaded machine trips it: the client never stalls
            // mid-frame (SHUT_WR ends a truncated frame at once), so a timeout is a finding.
            configuration = BrokerConfiguration(maxConnections: 8, maxConnectionsPerUID: 8, maxHandlesPerConnection: 16,
                                                ioTimeout: .seconds(2))
            gate = Gate(controller: controller, policy: WireTarget.policy, handleCapacity: configuration.gateHandleCapacity)
            model = ReferenceModel(policy: WireTarget.policy, logs: logs, identity: Fixture.identity,
                                   namespaces: Fixture.namespaces)
            kernelCaller = Caller.identify(PeerCredentials(pid: getpid(), uid: geteuid(), gid: getegid()))
            var template = Array("/tmp/nvmegate-fuzz-wire-XXXXXX".utf8CString)
            guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
                finding("mkdtemp: \(String(cString: strerror(errno)))")
            }
            directory = String(cString: made)
            socketPath = directory + "/broker.sock"
            let next = NextCaller()
            self.next = next
            do {
                broker = try Broker(gate: gate, policyFile: nil, configuration: configuration,
                                    logger: Logger(label: "nvmegate-fuzz-wire") { _ in SwiftLogNoOpLogHandler() },
                                    identify: { peer in next.take() ?? Caller.identify(peer) })
                try broker.start(on: try BrokerListener.bind(path: socketPath, mode: 0o600))
            } catch { finding("starting the broker: \(error)") }
            maxTransfer = broker.maxTransfer
            maxFrame = broker.maxFrame
            require(maxTransfer == 8192, "max_transfer \(maxTransfer): the controller's MDTS 1 should give 8 KiB")
            WireTarget.cleanup = (socketPath, directory)
            atexit {
                if let paths = WireTarget.cleanup { unlink(paths.0); rmdir(paths.1) }
            }
        }

        /// A connected client socket.
        func connect() -> Int32 {
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            require(fd >= 0, "socket: \(String(cString: strerror(errno)))")
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &address.sun_path) { raw in
                for (i, b) in socketPath.utf8.enumerated() { raw[i] = b }
            }
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                }
            }
            require(connected == 0, "connect to the broker: \(String(cString: strerror(errno)))")
            return fd
        }

        /// Writes `stream` while reading replies, half-closes once it is all written (or the
        /// broker closed), and returns everything read up to end of stream.
        func exchange(_ stream: [UInt8], on fd: Int32) -> [UInt8] {
            defer { close(fd) }
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            var received: [UInt8] = []
            var sent = 0, writing = true
            if stream.isEmpty { shutdown(fd, Int32(SHUT_WR)); writing = false }
            let deadline = monotonicMilliseconds() + 8000
            while true {
                var p = pollfd(fd: fd, events: Int16(POLLIN) | (writing ? Int16(POLLOUT) : 0), revents: 0)
                let left = deadline - monotonicMilliseconds()
                require(left > 0, "the broker stalled: \(received.count) bytes of replies to \(sent) of \(stream.count) bytes sent in 8 s")
                let n = poll(&p, 1, Int32(left))
                if n < 0 && errno == EINTR { continue }
                require(n >= 0, "poll: \(String(cString: strerror(errno)))")
                if n == 0 { continue }
                if writing && p.revents & Int16(POLLOUT | POLLERR | POLLHUP) != 0 {
                    let w = stream.withUnsafeBytes { send(fd, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL)) }
                    if w > 0 {
                        sent += w
                        if sent == stream.count { shutdown(fd, Int32(SHUT_WR)); writing = false }
                    } else if w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR {
                        writing = false   // the broker closed the connection (EPIPE, ECONNRESET)
                    }
                }
                if p.revents & Int16(POLLIN | POLLERR | POLLHUP) != 0 {
                    let r = recv(fd, chunk.baseAddress!, chunk.count, 0)
                    if r > 0 { received += UnsafeRawBufferPointer(rebasing: chunk[0..<r]); continue }
                    if r == 0 || errno == ECONNRESET { return received }
                    require(errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR, "recv: \(String(cString: strerror(errno)))")
                }
            }
        }

        /// A HELLO on `fd`, a connection other than the input's, identified as this process:
        /// answered in full.
        func hello(on fd: Int32) {
            defer { close(fd) }
            var limit = timeval(tv_sec: 5, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
            var request = Out()
            request.u32(20); request.u16(1); request.u16(1); request.u32(0xABCD); request.u32(0); request.u16(1); request.u16(1)
            let w = request.bytes.withUnsafeBytes { send(fd, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL)) }
            require(w == 20, "HELLO on a fresh connection: send gave \(w) (\(String(cString: strerror(errno))))")
            var reply = [UInt8](repeating: 0, count: 48)
            var got = 0
            while got < 48 {
                let r = reply.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + got, 48 - got, 0) }
                if r < 0 && errno == EINTR { continue }
                require(r > 0, "the broker no longer answers: HELLO on a fresh connection got \(got) bytes, then \(r < 0 ? String(cString: strerror(errno)) : "end of stream")")
                got += r
            }
            let b = LE(reply)
            require(b.u32(0) == 48 && b.u16(4) == 1 && b.u16(6) == 1 && b.u32(8) == 0xABCD && b.u32(12) == 0
                    && b.i32(16) == 0 && b.u32(32) == UInt32(maxTransfer) && b.u32(36) == kernelCaller.uid,
                    "HELLO on a fresh connection: \(hex(reply))")
        }

        /// `nvmegate_connections_open` as the broker's counters say.
        func openConnections() -> Double? {
            let text = broker.metricsText()
            for line in text.split(separator: "\n") where line.hasPrefix("nvmegate_connections_open ") {
                return Double(line.dropFirst("nvmegate_connections_open ".count))
            }
            return nil
        }

        /// Waits until the broker has ended every connection; a finding if it does not in 5 s.
        func waitUntilIdle() {
            let deadline = monotonicMilliseconds() + 5000
            var open = openConnections()
            while open != 0 && monotonicMilliseconds() < deadline {
                usleep(100)   // the connections' threads are ending: give them the CPU
                open = openConnections()
            }
            require(open == 0, "nvmegate_connections_open is \(open.map { "\($0)" } ?? "missing") 5 s after every client closed")
        }
    }

    nonisolated(unsafe) static var cleanup: (String, String)?
    /// NVMEGATE_FUZZ_WIRE_TRACE=1: each request and its reply on standard error (replaying an input).
    static let trace = getenv("NVMEGATE_FUZZ_WIRE_TRACE") != nil

    /// The caller the next accepted connection is identified as (nil: as the kernel says).
    final class NextCaller: Sendable {
        let slot = Mutex<Caller?>(nil)
        func take() -> Caller? { slot.withLock { caller in defer { caller = nil }; return caller } }
    }

    /// A controller that executes nothing: it answers the broker's Identify Controller at start
    /// (MDTS 1), then records every command it is handed with the bytes of its buffers, fills
    /// the buffers of a command whose opcode has bit 0 clear with a pattern (what a device
    /// returns), and completes with the status and result the input chose.
    final class WireController: Controller, @unchecked Sendable {
        struct Record {
            var queue: Queue
            var entry: SubmissionQueueEntry
            var data: [UInt8]
            var metadata: [UInt8]
            /// The pattern written into the buffers (`pattern(count:seed:)`).
            var seed: UInt8
        }
        struct State {
            var recording = false
            var completion = Completion()
            var throwing: Int32 = 0
            var records: [Record] = []
        }
        let logs: [CommandSet: CommandEffectsLog]
        let state = Mutex(State())

        init(logs: [CommandSet: CommandEffectsLog]) { self.logs = logs }

        func begin(completion: Completion, throwing: Int32) {
            state.withLock { $0 = State(recording: true, completion: completion, throwing: throwing) }
        }

        /// The records so far, taken.
        func end() -> [Record] {
            state.withLock { s in defer { s.records = [] }; return s.records }
        }

        static func pattern(count: Int, seed: UInt8) -> [UInt8] {
            [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
                for i in 0..<count { buffer[i] = UInt8(truncatingIfNeeded: i &* 7) &+ seed }
                initialized = count
            }
        }

        var identity: ControllerIdentity { Fixture.identity }
        func namespaces() -> [NamespaceInfo] { Fixture.namespaces }
        func effectsLog(for commandSet: CommandSet) -> CommandEffectsLog? { logs[commandSet] }
        func submit(_ command: borrowing SubmissionEntry, queue: Queue, data: UnsafeMutableRawBufferPointer,
                    metadata: UnsafeMutableRawBufferPointer) throws(ControllerError) -> Completion {
            let entry = SubmissionQueueEntry(command)
            let (completion, throwing, seed): (Completion, Int32, UInt8?) = state.withLock { s in
                guard s.recording else { return (Completion(), 0, nil) }
                let seed = UInt8(truncatingIfNeeded: s.records.count &* 37 &+ 11)
                s.records.append(Record(queue: queue, entry: entry, data: Array(data), metadata: Array(metadata), seed: seed))
                return (s.completion, s.throwing, seed)
            }
            guard let seed else {
                // The broker's own Identify Controller, before any connection: MDTS 1.
                if queue == .admin && entry.opcode == 0x06 && data.count > 77 { data[77] = 1 }
                return Completion()
            }
            if entry.opcode & 1 == 0 {
                for i in 0..<data.count { data[i] = UInt8(truncatingIfNeeded: i &* 7) &+ seed }
                for i in 0..<metadata.count { metadata[i] = UInt8(truncatingIfNeeded: i &* 7) &+ (seed ^ 0x5A) }
            }
            if throwing != 0 { throw ControllerError(errno: throwing) }
            return completion
        }
        func reset() throws(ControllerError) {}
        func subsystemReset() throws(ControllerError) {}
        func rescan() throws(ControllerError) {}
    }

    // MARK: Replies

    struct Reply {
        var length: Int
        var version: UInt16
        var type: UInt16
        var tag: UInt32
        var error: UInt32
        var body: [UInt8]
        var b: LE { LE(body) }
        var ret: Int32 { b.i32(0) }
        var errno: Int32 { b.i32(4) }
    }

    /// The replies in `bytes`, each well-formed; a finding for a partial or malformed one.
    static func parseReplies(_ bytes: [UInt8]) -> [Reply] {
        var replies: [Reply] = []
        var pos = 0
        let b = LE(bytes)
        while pos < bytes.count {
            require(bytes.count - pos >= 16, "a partial reply header at the end of the replies: \(hex(Array(bytes[pos...])))")
            let length = Int(b.u32(pos)), version = b.u16(pos + 4)
            require(length >= 16 && version == 1, "a malformed reply (length \(length), version \(version)) at byte \(pos)")
            require(pos + length <= bytes.count, "a partial reply: length \(length), \(bytes.count - pos) bytes left")
            replies.append(Reply(length: length, version: version, type: b.u16(pos + 6), tag: b.u32(pos + 8),
                                 error: b.u32(pos + 12), body: Array(bytes[pos + 16..<pos + length])))
            pos += length
        }
        return replies
    }

    // MARK: Checking a session

    /// The request stream, parsed as the wire format says, against the replies and the
    /// commands the controller got.
    struct Session {
        let server: Server
        let caller: Caller
        let completion: Completion
        let throwing: Int32
        let stream: [UInt8]
        let replies: [Reply]
        let records: [WireController.Record]
        var model: ReferenceModel { server.model }

        /// Model handles by wire handle; nil for a free slot.
        var slots: [ReferenceModel.Handle?] = []
        var nextReply = 0
        var nextRecord = 0
        var frame = 0
        var context = ""

        init(server: Server, caller: Caller, completion: Completion, throwing: Int32, stream: [UInt8], replies: [Reply],
             records: [WireController.Record]) {
            self.server = server; self.caller = caller; self.completion = completion; self.throwing = throwing
            self.stream = stream; self.replies = replies; self.records = records
        }

        func fail(_ message: String) -> Never {
            finding("frame \(frame) (\(context)) as \(caller): \(message)")
        }
        func check(_ condition: Bool, _ message: @autoclosure () -> String) {
            if !condition { fail(message()) }
        }

        mutating func reply() -> Reply {
            check(nextReply < replies.count, "no reply (\(replies.count) replies in all)")
            defer { nextReply += 1 }
            let r = replies[nextReply]
            if WireTarget.trace {
                report("wire: \(context)\n  -> error \(r.error), \(r.body.count) bytes" +
                       (r.body.count >= 8 ? ", ret \(r.ret) errno \(r.errno)" : "") + "\n")
            }
            return r
        }

        mutating func check() {
            var pos = 0
            let s = LE(stream)
            while stream.count - pos >= 16 {
                let length = Int(s.u32(pos)), version = s.u16(pos + 4), type = s.u16(pos + 6), tag = s.u32(pos + 8)
                context = "type \(type) tag \(tag) length \(length) at byte \(pos): \(hex(Array(stream[pos..<min(stream.count, pos + 96)])))"
                if version != 1 {
                    expectError(.unsupportedVersion, type, tag)
                    break
                }
                if length < 16 || length > server.maxFrame {
                    expectError(.tooLarge, type, tag)
                    break
                }
                if pos + length > stream.count { break }   // truncated: ends without a reply
                let body = Array(stream[pos + 16..<pos + length])
                pos += length
                let open = answer(type, tag, body)
                frame += 1
                if !open { break }
            }
            context = "after the last frame"
            check(nextReply == replies.count, "\(replies.count - nextReply) reply(ies) more than the requests call for")
            check(nextRecord == records.count,
                  "\(records.count - nextRecord) command(s) reached the controller that no reply accounts for: " +
                  records[nextRecord...].map { DecideTarget.describe($0.entry) }.joined(separator: "; "))
        }

        /// Expects a wire error reply: empty, with the request's type and tag.
        mutating func expectError(_ error: WireError, _ type: UInt16, _ tag: UInt32) {
            let r = reply()
            check(r.error == error.rawValue && r.length == 16 && r.type == type && r.tag == tag,
                  "expected wire error \(error.name), got error \(r.error), length \(r.length), type \(r.type), tag \(r.tag)")
        }

        /// Expects a reply without a wire error, with the request's type and tag, `ret` and
        /// `errno` coherent; the reply.
        mutating func expectReply(_ type: UInt16, _ tag: UInt32) -> Reply {
            let r = reply()
            check(r.error == 0, "wire error \(r.error) (\(WireError(rawValue: r.error)?.name ?? "?")) for a well-formed request")
            check(r.type == type && r.tag == tag, "reply type \(r.type) tag \(r.tag)")
            check(r.body.count >= 8, "a reply body of \(r.body.count) bytes, without ret and errno")
            check((r.ret >= 0 && r.errno == 0) || (r.ret == -1 && r.errno > 0), "ret \(r.ret) with errno \(r.errno)")
            return r
        }

        /// Expects `ret` -1 with `code` (body: ret and errno only, unless `ioctl`: 24 bytes of zeros after).
        mutating func expectErrno(_ code: Int32, _ type: UInt16, _ tag: UInt32, ioctl: Bool = false) {
            let r = expectReply(type, tag)
            check(r.ret == -1 && r.errno == code, "ret \(r.ret) errno \(r.errno), expected -1 with errno \(code)")
            check(r.body.count == (ioctl ? 24 : 8) && r.body[8...].allSatisfy { $0 == 0 }, "a \(r.body.count)-byte body for a failed call")
        }

        /// The next command the controller got, taken.
        mutating func takeRecord() -> WireController.Record? {
            guard nextRecord < records.count else { return nil }
            defer { nextRecord += 1 }
            return records[nextRecord]
        }

        func slot(_ handle: Int32) -> ReferenceModel.Handle? {
            handle >= 0 && Int(handle) < slots.count ? slots[Int(handle)] : nil
        }

        /// Checks the reply to one complete request frame; false when the connection closes after it.
        mutating func answer(_ type: UInt16, _ tag: UInt32, _ body: [UInt8]) -> Bool {
            let b = LE(body)
            switch type {
            case 1:   // HELLO
                guard body.count == 4 else { expectError(.malformed, type, tag); return true }
                guard b.u16(0) <= 1 && 1 <= b.u16(2) else { expectError(.unsupportedVersion, type, tag); return false }
                let r = expectReply(type, tag)
                let h = r.b
                check(r.body.count == 32 && r.ret == 0 && h.u16(8) == 1 && h.u16(10) == 0 && h.u32(12) == UInt32(server.maxFrame)
                      && h.u32(16) == UInt32(server.maxTransfer) && h.u32(20) == caller.uid && h.u32(24) == caller.gid
                      && h.i32(28) == server.pid, "HELLO reply \(hex(r.body))")
            case 2:   // OPEN
                guard body.count >= 8, (1...255).contains(b.u32(4)), body.count == 8 + Int(b.u32(4)) else {
                    expectError(.malformed, type, tag); return true
                }
                let access = b.u32(0) & 3
                let name = String(decoding: body[8...], as: UTF8.self)
                context += " OPEN \(name.debugDescription) access \(access)"
                if access == 3 { expectErrno(EINVAL, type, tag); return true }
                let free = slots.firstIndex { $0 == nil }
                if free == nil && slots.count >= server.configuration.maxHandlesPerConnection {
                    expectErrno(EMFILE, type, tag); return true
                }
                guard let handle = model.open(name, writable: access != 0, caller: caller) else {
                    expectErrno(ENOENT, type, tag); return true
                }
                let r = expectReply(type, tag)
                let number = free ?? slots.count
                let ns = model.namespaces.first { $0.nsid == handle.nsid }
                let kind: UInt32 = switch handle.kind {
                case .controller: 0
                case .partition: 2
                default: 1
                }
                let h = r.b
                check(r.body.count == 24 && r.ret == Int32(number) && h.u32(8) == kind && h.u32(12) == handle.nsid
                      && h.u32(16) == (ns?.lbaDataSize ?? 0) && h.u32(20) == (ns?.metadataSize ?? 0),
                      "OPEN reply \(hex(r.body)), expected handle \(number), kind \(kind), nsid \(handle.nsid)")
                if number < slots.count { slots[number] = handle } else { slots.append(handle) }
            case 3:   // CLOSE
                guard body.count == 4 else { expectError(.malformed, type, tag); return true }
                let handle = b.i32(0)
                if slot(handle) == nil { expectErrno(EBADF, type, tag); return true }
                let r = expectReply(type, tag)
                check(r.body.count == 8 && r.ret == 0, "CLOSE of open handle \(handle): ret \(r.ret) errno \(r.errno)")
                slots[Int(handle)] = nil
            case 4:
                return ioctl(tag, body)
            case 5:   // CHECK_BATCH
                guard body.count >= 16, body.count == 16 + Int(b.u32(8)) * 64 else { expectError(.malformed, type, tag); return true }
                let queue = b.u32(4), count = Int(b.u32(8))
                guard queue <= 1 else { expectErrno(EINVAL, type, tag); return true }
                guard let handle = slot(b.i32(0)) else { expectErrno(EBADF, type, tag); return true }
                let r = expectReply(type, tag)
                check(r.ret == Int32(count) && r.body.count == 8 + count, "CHECK_BATCH of \(count): ret \(r.ret), \(r.body.count) bytes")
                guard count > 0 else { return true }
                let ring = (0..<count).map { i in entry(body, at: 16 + 64 * i) }
                let want = model.ringErrnos(ring, queue: queue == 0 ? .admin : .io, handle: handle)
                for i in 0..<count where Int32(r.body[8 + i]) != want[i] {
                    fail("CHECK_BATCH entry \(i) of \(count), \(DecideTarget.describe(ring[i])) on queue \(queue) from " +
                         "\(handle.kind) nsid \(handle.nsid): verdict \(r.body[8 + i]), model \(want[i])")
                }
            case 6:   // METRICS
                guard body.isEmpty else { expectError(.malformed, type, tag); return true }
                if caller.uid != 0 { expectErrno(EACCES, type, tag); return true }
                let r = expectReply(type, tag)
                check(r.ret == 0 && String(decoding: r.body[8...], as: UTF8.self).contains("nvmegate_connections_open"),
                      "METRICS as root: ret \(r.ret), \(r.body.count) bytes")
            default:
                expectError(.unknownType, type, tag)
            }
            return true
        }

        /// The 64-byte entry at `offset` of `bytes`.
        func entry(_ bytes: [UInt8], at offset: Int) -> SubmissionQueueEntry {
            var e = SubmissionQueueEntry()
            let b = LE(bytes)
            for i in 0..<16 { e.dwords[i] = b.u32(offset + 4 * i) }
            return e
        }

        /// IOCTL: the broker's own checks, then the gate's verdict held to the model, the
        /// controller's records, the result and the data returned.
        mutating func ioctl(_ tag: UInt32, _ body: [UInt8]) -> Bool {
            let type: UInt16 = 4
            let b = LE(body)
            guard body.count >= 32 else { expectError(.malformed, type, tag); return true }
            let handleNumber = b.i32(0), request = IoctlRequest(rawValue: UInt(b.u64(8)))
            let argLength = Int(b.u32(16)), dataLength = Int(b.u32(20)), metadataLength = Int(b.u32(24))
            guard dataLength <= server.maxTransfer, metadataLength <= server.maxTransfer else {
                expectError(.tooLarge, type, tag); return false
            }
            let known: Int? = switch request {
            case .id, .reset, .subsystemReset, .rescan: 0
            case .submitIO: 48
            case .adminCommand, .ioCommand: 72
            case .admin64Command, .io64Command: 80
            default: nil
            }
            guard known.map({ $0 == argLength }) ?? (argLength <= 80), 32 + argLength + dataLength + metadataLength == body.count else {
                expectError(.malformed, type, tag); return true
            }
            let arg = Array(body[32..<32 + argLength])
            let sentData = Array(body[32 + argLength..<32 + argLength + dataLength])
            let sentMetadata = Array(body[32 + argLength + dataLength..<body.count])
            context += " \(request.name) on handle \(handleNumber)"
            guard let handle = slot(handleNumber) else { expectErrno(EBADF, type, tag, ioctl: true); return true }
            let ns = model.namespaces.first { $0.nsid == handle.nsid && handle.kind != .controller }

            // The buffers the struct describes, as the broker reads it.
            let a = LE(arg)
            var opcode: UInt8 = 0, dataPointer: UInt64 = 0, metadataPointer: UInt64 = 0, dataBytes = 0, metadataBytes = 0
            let passthru = [IoctlRequest.adminCommand, .ioCommand, .admin64Command, .io64Command].contains(request)
            if passthru {
                opcode = arg[0]; metadataPointer = a.u64(16); dataPointer = a.u64(24)
                metadataBytes = Int(a.u32(32)); dataBytes = Int(a.u32(36))
            } else if request == .submitIO {
                opcode = arg[0]; metadataPointer = a.u64(8); dataPointer = a.u64(16)
                let blocks = Int(a.u16(4)) + 1
                dataBytes = blocks * Int(ns?.lbaDataSize ?? 0)
                metadataBytes = metadataPointer == 0 ? 0 : blocks * Int(ns?.metadataSize ?? 0)
            }
            if dataBytes > server.maxTransfer || metadataBytes > server.maxTransfer {
                expectErrno(EINVAL, type, tag, ioctl: true); return true
            }
            guard sentData.count <= dataBytes, sentMetadata.count <= metadataBytes else {
                expectError(.malformed, type, tag); return true
            }
            // What the gate is handed: zeroed buffers with the sent bytes at their start, for non-zero pointers.
            let data = dataPointer == 0 ? [] : sentData + [UInt8](repeating: 0, count: dataBytes - sentData.count)
            let metadata = metadataPointer == 0 ? [] : sentMetadata + [UInt8](repeating: 0, count: metadataBytes - sentMetadata.count)

            let r = expectReply(type, tag)
            check(r.body.count >= 24, "an IOCTL reply of \(r.body.count) bytes")
            let result = r.b.u64(8), returnedData = Int(r.b.u32(16)), returnedMetadata = Int(r.b.u32(20))
            check(r.body.count == 24 + returnedData + returnedMetadata,
                  "an IOCTL reply of \(r.body.count) bytes declaring \(returnedData) + \(returnedMetadata) bytes of buffers")
            if r.ret < 0 {
                check(result == 0 && returnedData == 0 && returnedMetadata == 0, "a failed IOCTL returned a result or buffers")
            }

            guard passthru || request == .submitIO else {
                let want: Int32 = switch request {
                case .id: handle.kind == .controller ? -ENOTTY : Int32(bitPattern: handle.nsid)
                case .reset, .subsystemReset, .rescan:
                    handle.kind != .controller ? -ENOTTY
                        : caller.capabilities.isDisjoint(with: model.policy.managementCapabilities) ? -EACCES : 0
                default: -ENOTTY
                }
                check((r.ret >= 0 ? r.ret : -r.errno) == want && result == 0 && returnedData == 0,
                      "\(request.name) on \(handle.kind): ret \(r.ret) errno \(r.errno), expected \(want)")
                return true
            }

            // The command the gate builds, the model's verdict and what is wrong with its buffers.
            let queue: Queue
            let command: SubmissionQueueEntry
            let decision: Int32
            let problem: String?
            if passthru {
                queue = request == .adminCommand || request == .admin64Command ? .admin : .io
                var e = SubmissionQueueEntry(opcode: arg[0], flags: arg[1], nsid: a.u32(4), cdw2: a.u32(8), cdw3: a.u32(12))
                for i in 0..<6 { e[cdw: i] = a.u32(40 + 4 * i) }
                command = e
                decision = data.withUnsafeBytes { list in
                    request == .io64Command && handle.kind == .controller ? ENOTTY
                        : model.ioctlErrno(e, queue: queue, handle: handle, list: dataPointer == 0 ? nil : list)
                }
                problem = IoctlTarget.bufferProblem(e, queue: queue, namespace: IoctlTarget.targetNamespace(model, handle, queue),
                                                    data: (dataPointer, dataBytes), metadata: (metadataPointer, metadataBytes))
            } else {
                queue = .io
                command = arg.withUnsafeBytes { UserIO($0.baseAddress!).submissionQueueEntry(nsid: handle.nsid) }
                let flags = arg[1]
                decision = handle.kind == .controller ? ENOTTY
                    : flags != 0 || ![0x01, 0x02, 0x05].contains(opcode) ? EINVAL
                    : model.errno(command, queue: .io, handle: handle)
                problem = IoctlTarget.bufferProblem(command, queue: .io, namespace: ns, data: (dataPointer, dataBytes),
                                                    metadata: (metadataPointer, metadataBytes))
            }
            let described = "\(DecideTarget.describe(command)) on \(queue) from \(handle.kind) nsid \(handle.nsid) " +
                "(\(handle.writable ? "rw" : "ro")), model \(decision), buffers \(problem ?? "fine")"

            let reached = r.ret >= 0 || (r.errno == EIO && throwing == EIO)
            guard reached else {
                check(r.errno != EIO, "EIO, yet the controller was not told to fail: \(described)")
                if problem != nil {
                    check(r.errno == decision || r.errno == EINVAL || r.errno == EFAULT, "errno \(r.errno) for \(described)")
                } else {
                    check((decision != 0 && r.errno == decision) || (decision == 0 && r.errno == EINVAL),
                          "errno \(r.errno) for \(described)")
                }
                return true
            }
            // Executed (or failed by the controller): the next record is this command, and it may run.
            guard let record = takeRecord() else {
                fail("ret \(r.ret) errno \(r.errno), yet nothing reached the controller: \(described)")
            }
            check(record.queue == queue && record.entry == command,
                  "the controller got \(DecideTarget.describe(record.entry)) on \(record.queue) for \(described)")
            check(decision == 0 && problem == nil, "a command the model refuses reached the controller: \(described)")
            if record.data != data {
                // Only a checked range list travels in the gate's copy: a prefix of the sent list.
                check(queue == .io && (command.opcode == 0x09 || command.opcode == 0x19) && record.data.count <= data.count
                      && record.data[...] == data[0..<record.data.count],
                      "the controller got \(record.data.count) data bytes that are not the \(data.count) the client sent (then zeros): \(described)")
                let verdict = record.data.withUnsafeBytes { model.ioctlErrno(command, queue: queue, handle: handle, list: $0) }
                check(verdict == 0, "the range list handed over reaches blocks the caller does not own (\(verdict)): \(described)")
            }
            check(record.metadata == metadata,
                  "the controller got \(record.metadata.count) metadata bytes that are not the \(metadata.count) expected: \(described)")
            guard r.ret >= 0 else {
                check(r.errno == EIO, "errno \(r.errno) from a controller that throws EIO")
                return true
            }
            check(r.ret == Int32(completion.status.rawValue), "ret \(r.ret), the controller's status \(completion.status.rawValue)")
            let want: UInt64 = request == .submitIO ? 0
                : arg.count == 80 ? completion.result64 : UInt64(completion.dw0)
            check(result == want, "result \(result), expected \(want): \(described)")
            if opcode & 1 == 0 {
                check(returnedData == data.count && returnedMetadata == metadata.count,
                      "\(returnedData) + \(returnedMetadata) bytes returned for buffers of \(data.count) + \(metadata.count): \(described)")
                let expected = WireController.pattern(count: data.count, seed: record.seed)
                    + WireController.pattern(count: metadata.count, seed: record.seed ^ 0x5A)
                check(r.body[24...].elementsEqual(expected), "the buffers returned are not what the controller wrote: \(described)")
            } else {
                check(returnedData == 0 && returnedMetadata == 0, "buffers returned for a command that sends its data: \(described)")
            }
            return true
        }
    }

    // MARK: Frames from the input

    /// A stream of frames written from `input`, read as a program: each step writes a frame
    /// (valid-looking, with hostile lengths, types and bodies now and then) or raw bytes.
    static func generate(_ input: inout FuzzInput, maxTransfer: Int, maxFrame: Int) -> [UInt8] {
        var out: [UInt8] = []
        var tag: UInt32 = 0
        var frames = 0
        while !input.isEmpty && frames < 48 && out.count < 1 << 17 {
            frames += 1
            let op = input.u8()
            tag = op & 0x30 == 0x30 ? input.u32() : tag &+ 1
            var type: UInt16
            var body = Out()
            var repeats = 1
            switch op & 0x0F {
            case 0:   // raw bytes
                out += input.take(Int(input.u8() % 48))
                continue
            case 1:   // HELLO
                type = 1
                body.u16(input.pick([0, 1, 1, 1, 2, input.u16()])); body.u16(input.pick([1, 1, 0, 2, 0xFFFF, input.u16()]))
            case 2, 3:   // OPEN, or the same OPEN up to 20 times (past the 16 handles a connection may hold)
                type = 2
                if op & 0x0F == 3 { repeats = Int(input.u8() % 20) + 1 }
                body.u32(input.pick([0, 2, 2, 1, 3, 0o2002, input.u32()]))
                let name: [UInt8] = input.u8() % 8 == 0 ? input.take(Int(input.u8()))
                    : Array(input.pick(Fixture.nodes + ["nvme0n1p0", "nvme0n01", "ng0n3", "nvme0n4294967297", "nvme0n1\0"]).utf8)
                body.u32(input.u8() % 16 == 0 ? input.u32() : UInt32(name.count)); body.raw(name)
            case 4:   // CLOSE
                type = 3
                body.i32(handleNumber(&input))
            case 5, 6, 7, 8, 9, 10:
                type = 4
                body = ioctl(&input, maxTransfer: maxTransfer)
            case 11:   // CHECK_BATCH
                type = 5
                body.i32(handleNumber(&input)); body.u32(input.pick([0, 1, 1, 2, input.u32()]))
                let count = Int(input.u8() % 9)
                body.u32(input.u8() % 16 == 0 ? input.u32() : UInt32(count)); body.u32(0)
                let near = ReferenceModel.Handle(kind: .namespace, writable: true, nsid: UInt32(input.u8() % 6), caller: Caller(uid: 0, gid: 0))
                for _ in 0..<count { body.entry(DecideTarget.entry(&input, near: near)) }
            case 12:   // METRICS
                type = 6
                if input.u8() % 8 == 0 { body.u8(0) }
            case 13:   // another type
                type = input.pick([0, 7, 8, 0x100, 0xFFFF, input.u16()])
                body.raw(input.take(Int(input.u8() % 24)))
            case 14:   // an IOCTL of max_frame bytes, or one more
                type = 4
                body = largest(&input, maxTransfer: maxTransfer)
            default:   // a header that closes the connection, or an empty HELLO
                let which = input.u8() % 6
                var h = Out()
                let length: UInt32 = [0, 15, 16, UInt32(maxFrame + 1), UInt32.max, 20][Int(which)]
                h.u32(length); h.u16(which == 5 ? input.pick([0, 2, 0xFFFF]) : 1); h.u16(1); h.u32(tag); h.u32(0)
                if which == 5 { h.u16(1); h.u16(1) }
                out += h.bytes
                continue
            }
            var version: UInt16 = 1
            var length = UInt32(16 + body.bytes.count)
            if op >= 0xE0 {   // a header that lies
                switch input.u8() % 6 {
                case 0: version = input.pick([0, 2, 0x100, 0xFFFF])
                case 1: length = UInt32(truncatingIfNeeded: Int(length) + Int(Int8(bitPattern: input.u8())))
                case 2: length = input.pick([0, 15, 16, UInt32(maxFrame), UInt32(maxFrame + 1), UInt32.max])
                case 3: type = input.u16()
                case 4: body.bytes.removeLast(min(body.bytes.count, Int(input.u8() % 8) + 1)); length = UInt32(16 + body.bytes.count)
                default: body.raw(input.take(Int(input.u8() % 8) + 1)); length = UInt32(16 + body.bytes.count)
                }
            }
            for i in 0..<repeats {
                if i > 0 { tag &+= 1 }
                var h = Out()
                h.u32(length); h.u16(version); h.u16(type); h.u32(tag); h.u32(0)
                out += h.bytes + body.bytes
            }
        }
        return out
    }

    /// A wire handle: mostly one of the first few, sometimes anything.
    static func handleNumber(_ input: inout FuzzInput) -> Int32 {
        input.u8() % 16 == 0 ? Int32(bitPattern: input.u32()) : Int32(input.u8() % 4)
    }

    /// An IOCTL request body: any request, a struct with lengths that fit or lie, data sent
    /// whole, short, long or not at all.
    static func ioctl(_ input: inout FuzzInput, maxTransfer: Int) -> Out {
        let handle = handleNumber(&input)
        let kind = input.u8()
        var request: UInt64
        var arg: [UInt8] = []
        var data: [UInt8] = [], metadata: [UInt8] = []
        switch kind % 16 {
        case 0...8:
            let r = [IoctlRequest.adminCommand, .ioCommand, .ioCommand, .io64Command, .admin64Command][Int(kind >> 4) % 5]
            request = UInt64(r.rawValue)
            (arg, data, metadata) = passthru(&input, is64: r == .admin64Command || r == .io64Command,
                                             io: r == .ioCommand || r == .io64Command, maxTransfer: maxTransfer)
        case 9, 10:
            request = UInt64(IoctlRequest.submitIO.rawValue)
            (arg, data, metadata) = submitIO(&input, maxTransfer: maxTransfer)
        case 11, 12, 13, 14:
            request = UInt64([IoctlRequest.id, .reset, .subsystemReset, .rescan][Int(kind % 16) - 11].rawValue)
            if input.u8() % 16 == 0 { arg = input.take(4) }
        default:
            request = input.pick([UInt64(input.u32()), input.u64(), 0x1_C048_4E41, 0xC048_4E40, 0x4E49, 0x8000_0000_C048_4E41])
            arg = input.take(Int(input.u8() % 88))
        }
        var argLength = UInt32(arg.count), dataLength = UInt32(data.count), metadataLength = UInt32(metadata.count)
        switch input.u8() {
        case 0..<8: argLength = input.pick([0, 48, 71, 72, 73, 79, 80, 81, input.u32()])
        case 8..<16: dataLength = input.pick([dataLength &+ 1, dataLength &- 1, UInt32(maxTransfer + 1), input.u32()])
        case 16..<20: metadataLength = input.pick([metadataLength &+ 1, metadataLength &- 1, UInt32(maxTransfer + 1), input.u32()])
        case 20..<24:   // a struct of another size, its length telling the truth
            arg = Array((arg + [UInt8](repeating: 0, count: 96)).prefix(Int(input.pick([0, 48, 71, 72, 73, 79, 80, 81] as [UInt8]))))
            argLength = UInt32(arg.count)
        default: break
        }
        var body = Out()
        body.i32(handle); body.u32(input.u8() % 32 == 0 ? input.u32() : 0); body.u64(request)
        body.u32(argLength); body.u32(dataLength); body.u32(metadataLength); body.u32(0)
        body.raw(arg); body.raw(data); body.raw(metadata)
        return body
    }

    /// A 72- or 80-byte `nvme_passthru_cmd`, and the data and metadata a client sends with it.
    static func passthru(_ input: inout FuzzInput, is64: Bool, io: Bool, maxTransfer: Int) -> ([UInt8], [UInt8], [UInt8]) {
        let near = ReferenceModel.Handle(kind: .namespace, writable: true, nsid: UInt32(input.u8() % 6), caller: Caller(uid: 0, gid: 0))
        var e = DecideTarget.entry(&input, near: near)
        if !io && input.bool() {
            // Admin commands a tenant may be allowed, with their identifiers.
            e.opcode = input.pick([0x06, 0x06, 0x02, 0x02, 0x0A, 0x09, 0x80, 0x84, 0x0D, 0x15, 0xC5, 0xC6])
            e[cdw: 0] = UInt32(input.pick([0x00, 0x01, 0x02, 0x03, 0x05, 0x07, 0x08, 0x12, input.u8()] as [UInt8]))
                | (input.bool() ? 0x8000 : 0) | UInt32(input.u8() % 8) << 16
            e[cdw: 1] = 0
        }
        var dataLength: UInt32 = input.pick([0, 4, 16, 64, 512, 1024, 4096, 8192, 8193, UInt32(input.u16()), input.u32()])
        var list: [UInt8]?
        if input.bool() {
            // The length the command transfers, and for Dataset Management and Copy, a range list.
            let lba = UInt32(input.pick([512, 4096] as [UInt32]))
            switch (io, e.opcode) {
            case (false, 0x06): dataLength = 4096
            case (false, 0x02): dataLength = ((e[cdw: 0] >> 16) + 1) * 4
            case (true, 0x09):
                e[cdw: 0] = e[cdw: 0] & ~0xFF | UInt32(input.u8() % 8)
                list = rangeList(&input, count: Int(e[cdw: 0] & 0xFF) + 1, size: 16, slbaAt: 8, lengthAt: 4, lengthSize: 4)
            case (true, 0x19):
                let format = UInt32(input.pick([0, 0, 1, 2] as [UInt8]))
                e[cdw: 2] = e[cdw: 2] & ~0xFFF | format << 8 | UInt32(input.u8() % 8)
                list = rangeList(&input, count: Int(e[cdw: 2] & 0xFF) + 1, size: format == 1 ? 40 : 32, slbaAt: 8,
                                 lengthAt: 16, lengthSize: 2)
            case (true, _):
                e[cdw: 2] = e[cdw: 2] & ~0xFFFF | UInt32(input.u8() % 16)
                dataLength = ((e[cdw: 2] & 0xFFFF) + 1) * lba
            default: break
            }
            if let list { dataLength = UInt32(list.count) }
        }
        let dataPointer: UInt64 = input.u8() % 8 == 0 ? 0 : 0x7F00_DEAD_0000
        var metadataLength: UInt32 = 0, metadataPointer: UInt64 = 0
        if input.u8() % 4 == 0 {
            metadataLength = input.pick([0, 8, 16, 64, 512, UInt32(input.u16())])
            metadataPointer = input.u8() % 4 == 0 ? 0 : 0x7F00_BEEF_0000
        }
        var s = Out()
        s.u8(e.opcode); s.u8(e.flags); s.u16(0); s.u32(e.nsid); s.u32(e.dwords[2]); s.u32(e.dwords[3])
        s.u64(metadataPointer); s.u64(dataPointer); s.u32(metadataLength); s.u32(dataLength)
        for i in 0..<6 { s.u32(e[cdw: i]) }
        let junk = input.u8()
        for i in 64..<(is64 ? 80 : 72) { s.u8(junk &+ UInt8(i)) }   // timeout, result: anything
        let writes = e.opcode & 1 != 0
        let data = sent(&input, writes: writes, length: Int(dataLength), list: list, maxTransfer: maxTransfer)
        let metadata = writes && metadataLength > 0 && input.bool()
            ? WireController.pattern(count: min(Int(metadataLength), maxTransfer), seed: 0x33) : []
        return (s.bytes, data, metadata)
    }

    /// A 48-byte `nvme_user_io`, and the data and metadata a client sends with it.
    static func submitIO(_ input: inout FuzzInput, maxTransfer: Int) -> ([UInt8], [UInt8], [UInt8]) {
        let opcode = input.pick([0x01, 0x02, 0x05, 0x02, 0x01, 0x00, 0x08, input.u8()] as [UInt8])
        let nblocks = input.pick([0, 1, 3, 7, 15, UInt16(input.u8()), input.u16()] as [UInt16])
        var s = Out()
        s.u8(opcode); s.u8(input.u8() % 8 == 0 ? input.u8() : 0); s.u16(input.bool() ? input.u16() : 0); s.u16(nblocks); s.u16(0)
        let metadataPointer: UInt64 = input.u8() % 4 == 0 ? 0x7F00_BEEF_0000 : 0
        s.u64(metadataPointer); s.u64(input.u8() % 8 == 0 ? 0 : 0x7F00_DEAD_0000)
        s.u64(input.edgy(near: input.pick([1000, 1024, 0, 64, 512, 1100, 1300])))
        for _ in 0..<3 { s.u32(input.u8() % 4 == 0 ? input.u32() : 0) }   // dsmgmt, reftag, apptag and appmask
        s.u32(0)                                                           // padding to 48
        let lba = input.pick([512, 4096])
        let data = sent(&input, writes: opcode & 1 != 0, length: (Int(nblocks) + 1) * lba, list: nil, maxTransfer: maxTransfer)
        let metadata = opcode & 1 != 0 && metadataPointer != 0 && input.bool()
            ? WireController.pattern(count: (Int(nblocks) + 1) * 8, seed: 0x44) : []
        return (s.bytes, data, metadata)
    }

    /// The data a client sends for a buffer of `length`: all of it for a command that sends
    /// its data (a range list where there is one), or none; now and then half, too much, or
    /// bytes of the input.
    static func sent(_ input: inout FuzzInput, writes: Bool, length: Int, list: [UInt8]?, maxTransfer: Int) -> [UInt8] {
        let seed = input.u8()
        func whole() -> [UInt8] { list ?? WireController.pattern(count: min(length, maxTransfer + 16), seed: seed) }
        switch input.u8() % 8 {
        case 0: return []
        case 5: return Array(whole().prefix(whole().count / 2))
        case 6: return whole() + input.take(Int(input.u8() % 16) + 1)
        case 7: return input.take(Int(input.u8()))
        default: return writes ? whole() : []
        }
    }

    /// A Dataset Management (16-byte) or Copy (32- or 40-byte) range list of `count` ranges
    /// near the tenants' grants.
    static func rangeList(_ input: inout FuzzInput, count: Int, size: Int, slbaAt: Int, lengthAt: Int, lengthSize: Int) -> [UInt8] {
        var list = [UInt8](repeating: 0, count: count * size)
        for i in 0..<count {
            let slba = input.edgy(near: input.pick([1000, 1100, 1200, 1300, 1024, 2048, 0, 64]))
            let blocks = input.u8() % 4 == 0 ? input.u32() : UInt32(input.u8())
            withUnsafeBytes(of: slba.littleEndian) { for (j, b) in $0.enumerated() { list[i * size + slbaAt + j] = b } }
            withUnsafeBytes(of: blocks.littleEndian) { for (j, b) in $0.prefix(lengthSize).enumerated() { list[i * size + lengthAt + j] = b } }
        }
        return list
    }

    /// The largest IOCTL frame: an 80-byte Write with `max_transfer` bytes of data and of
    /// metadata, all sent: exactly `max_frame`; or one byte more (too-large), or a struct
    /// whose metadata length is one over `max_transfer` (EINVAL).
    static func largest(_ input: inout FuzzInput, maxTransfer: Int) -> Out {
        let variant = input.u8() % 4
        let handle = Int32(input.u8() % 4)
        var s = Out()
        s.u8(0x01); s.u8(0); s.u16(0); s.u32(UInt32(input.u8() % 3)); s.u32(0); s.u32(0)
        s.u64(0x7F00_BEEF_0000); s.u64(0x7F00_DEAD_0000)
        s.u32(UInt32(maxTransfer + (variant == 2 ? 1 : 0))); s.u32(UInt32(maxTransfer))
        s.u32(UInt32(input.u16()) + 1000); s.u32(0); s.u32(UInt32(maxTransfer / 512 - 1)); s.u32(0); s.u32(0); s.u32(0)
        for _ in 64..<80 { s.u8(0) }
        let data = WireController.pattern(count: maxTransfer, seed: 1)
        let metadata = WireController.pattern(count: maxTransfer + (variant == 1 ? 1 : 0), seed: 2)
        var body = Out()
        body.i32(handle); body.u32(0); body.u64(UInt64(IoctlRequest.io64Command.rawValue))
        body.u32(80); body.u32(UInt32(data.count)); body.u32(UInt32(metadata.count)); body.u32(0)
        body.raw(s.bytes); body.raw(data); body.raw(metadata)
        return body
    }
}

/// Little-endian fields of a byte array (offsets the caller checked).
struct LE {
    let bytes: [UInt8]
    init(_ bytes: [UInt8]) { self.bytes = bytes }
    func u16(_ o: Int) -> UInt16 { UInt16(bytes[o]) | UInt16(bytes[o + 1]) << 8 }
    func u32(_ o: Int) -> UInt32 { UInt32(u16(o)) | UInt32(u16(o + 2)) << 16 }
    func i32(_ o: Int) -> Int32 { Int32(bitPattern: u32(o)) }
    func u64(_ o: Int) -> UInt64 { UInt64(u32(o)) | UInt64(u32(o + 4)) << 32 }
}

/// Little-endian fields appended one after another.
struct Out {
    var bytes: [UInt8] = []
    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    mutating func i32(_ v: Int32) { u32(UInt32(bitPattern: v)) }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    mutating func raw(_ v: [UInt8]) { bytes += v }
    mutating func entry(_ e: SubmissionQueueEntry) { for i in 0..<16 { u32(e.dwords[i]) } }
}

func hex(_ bytes: [UInt8]) -> String {
    let digits = Array("0123456789abcdef")
    return String(bytes.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 15)]] })
}

func monotonicMilliseconds() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
}

