#if canImport(Glibc)
import Glibc
#endif
import NVMeBroker
import NVMeGate
import NVMeSpec
import Synchronization
import Testing

/// Limits, hostile and broken clients, reload under load, graceful shutdown.
@Suite("Broker operations")
struct BrokerOperationTests {
    static let hello = Bytes().u16(1).u16(1)

    @Test("over a connection limit: busy as the only frame, then closed; a freed place is taken again")
    func connectionLimits() throws {
        let f = try Fixture(BrokerConfiguration(maxConnections: 3, maxConnectionsPerUID: 2, ioTimeout: .milliseconds(300)))
        let a1 = try f.connect(as: alpha), a2 = try f.connect(as: alpha)
        let perUID = try f.connect(as: alpha, hello: false)
        let busy = try #require(perUID.reply())
        #expect(busy.error == 5 && busy.tag == 0 && busy.type == 0 && busy.length == 16)
        #expect(perUID.isClosedByPeer())
        let b1 = try f.connect(as: beta)
        let total = try f.connect(as: rootCaller, hello: false)
        #expect(total.reply()?.error == 5)
        #expect(total.isClosedByPeer())

        a1.hangUp()
        #expect(eventually {
            guard let again = try? f.connect(as: alpha, hello: false) else { return false }
            return again.call(type: 1, body: Self.hello)?.ret == 0
        })
        let text = f.broker.metricsText()
        #expect(sample(text, #"nvmegate_connections_refused_total{limit="per-uid"}"#) ?? 0 >= 1)
        #expect(sample(text, #"nvmegate_connections_refused_total{limit="total"}"#) ?? 0 >= 1)
        withExtendedLifetime((a2, b1)) {}
    }

    @Test("clients that vanish mid-frame or mid-command, or stop reading, leave the others served")
    func brokenClients() throws {
        let f = try Fixture()
        let other = try f.connect(as: beta)
        #expect(other.open("nvme0n2", write: true)?.ret == 0)

        // Half of a 256 KiB Write, then gone.
        let midFrame = try f.connect()
        #expect(midFrame.open("nvme0n1", write: true)?.ret == 0)
        let write = frame(type: 4, body: ioctlBody(handle: 0, request: 0xC048_4E43,
                                                    argument: passthru(opcode: 0x01, nsid: 1, dataLength: 256 * 1024),
                                                    data: [UInt8](repeating: 0xEE, count: 256 * 1024)))
        midFrame.send(Array(write.prefix(100_000)))
        midFrame.hangUp()

        // A 512 KiB Read held in the controller while its client goes away.
        let midCommand = try f.connect()
        #expect(midCommand.open("nvme0n1")?.ret == 0)
        f.controller.holdNext.store(200, ordering: .releasing)
        midCommand.send(frame(type: 4, body: ioctlBody(handle: 0, request: 0xC048_4E43,
                                                        argument: passthru(opcode: 0x02, nsid: 1, dataLength: 512 * 1024))))
        #expect(eventually { f.controller.holding.load(ordering: .acquiring) })
        midCommand.hangUp()

        // A client that sends Reads and never reads the replies: the broker gives up on it
        // after the I/O timeout instead of waiting for it.
        let deaf = try f.connect()
        #expect(deaf.open("nvme0n1")?.ret == 0)
        let read = frame(type: 4, body: ioctlBody(handle: 0, request: 0xC048_4E43,
                                                   argument: passthru(opcode: 0x02, nsid: 1, dataLength: 512 * 1024)))
        for _ in 0..<4 { deaf.send(read) }

        for i in 0..<20 {
            let bytes = [UInt8](repeating: UInt8(i), count: 4096)
            #expect(other.ioctl(0, .ioCommand, passthru(opcode: 0x01, nsid: 2, dataLength: 4096, cdw10: UInt32(i), cdw12: 7),
                                data: bytes)?.ret == 0)
            #expect(other.ioctl(0, .ioCommand, passthru(opcode: 0x02, nsid: 2, dataLength: 4096, cdw10: UInt32(i), cdw12: 7))?.data == bytes)
        }
        #expect(eventually { sample(f.broker.metricsText(), #"nvmegate_wire_errors_total{error="reply-timeout"}"#) == 1 })
        #expect(eventually { sample(f.broker.metricsText(), "nvmegate_connections_open") == 1 })
        #expect(sample(f.broker.metricsText(), #"nvmegate_wire_errors_total{error="truncated"}"#) == 1)
        // The half-sent Write never ran.
        let check = try f.connect(as: alpha)
        #expect(check.open("nvme0n1")?.ret == 0)
        #expect(check.ioctl(0, .ioCommand, passthru(opcode: 0x02, nsid: 1, dataLength: 512))?.data == [UInt8](repeating: 0, count: 512))
    }

    @Test("random frames get a reply or a closed connection, never a crash or a stall")
    func randomFrames() throws {
        let f = try Fixture()
        var rng = SplitMix64(seed: 0x6E76_6D65)
        var client = try f.connect()
        #expect(client.open("nvme0n1", write: true)?.ret == 0)
        let requests: [(UInt64, Int)] = [(0xC048_4E41, 72), (0xC048_4E43, 72), (0xC050_4E47, 80), (0xC050_4E48, 80),
                                         (0x4030_4E42, 48), (0x4E40, 0), (0xDEAD, 8)]
        for round in 0..<300 {
            let type = UInt16(rng.next() % 8)
            var body: Bytes
            if type == 4 && rng.next() % 4 != 0 {
                let (request, size) = requests[Int(rng.next() % UInt64(requests.count))]
                var argument = (0..<size).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                if size >= 72 { argument[36] = 0; argument[37] = 0; argument[38] &= 1; argument[39] = 0 }  // data_len < 128 KiB
                let sent = Int(rng.next() % 600)
                body = ioctlBody(handle: Int32(rng.next() % 3), request: request, argument: Bytes(bytes: argument),
                                 data: [UInt8](repeating: 0xA5, count: sent))
            } else {
                body = Bytes(bytes: (0..<Int(rng.next() % 120)).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
            }
            let version: UInt16 = rng.next() % 50 == 0 ? 9 : 1
            let started = ContinuousClock.now
            client.send(frame(type: type, tag: UInt32(round), version: version, body: body))
            if let reply = client.reply() {
                #expect(reply.tag == UInt32(round) && reply.type == type, "round \(round)")
            } else {
                #expect(ContinuousClock.now - started < .seconds(2), "round \(round): the broker stalled")
                client = try f.connect()
                #expect(client.open("nvme0n1", write: true)?.ret == 0)
            }
        }
        #expect(try f.connect().call(type: 1, body: Self.hello)?.ret == 0)
    }

    @Test("reload while commands run: a broken file leaves the policy in force; a new one applies whole")
    func reloadUnderLoad() async throws {
        let f = try Fixture()
        let client = try f.connect(as: alpha)
        #expect(client.open("nvme0n1")?.ret == 0)
        let state = LoadState()
        let box = UnsafeTestSendable(client)
        let load = Task.detached { () -> [Int32] in
            var outcomes: [Int32] = []
            while !state.stop.load(ordering: .acquiring) {
                let r = box.value.ioctl(0, .ioCommand, passthru(opcode: 0x02, nsid: 1, dataLength: 512))
                outcomes.append(r.map { $0.ret == 0 ? 0 : $0.errno } ?? -1)
                state.progress.add(1, ordering: .releasing)
            }
            return outcomes
        }
        /// Waits until the load has sent `more` commands from now.
        func commands(_ more: Int) async throws {
            let target = state.progress.load(ordering: .acquiring) + more
            while state.progress.load(ordering: .acquiring) < target { try await Task.sleep(for: .milliseconds(2)) }
        }
        try await commands(20)
        try writeFile(f.policyPath, tenantPolicy.replacing("namespaces = [1]", with: "namespaces = \"one\""))
        let error = try #require(throws: PolicyError.self) { try f.broker.reloadPolicy() }
        #expect(error.line > 0 && !error.key.isEmpty)
        try await commands(20)
        try writeFile(f.policyPath, tenantPolicy.replacing("namespaces = [1]", with: "namespaces = [2]"))
        try f.broker.reloadPolicy()
        try await commands(20)
        state.stop.store(true, ordering: .releasing)
        let outcomes = await load.value
        // Allowed until the good reload, refused after it, nothing else and never back.
        #expect(outcomes.allSatisfy { $0 == 0 || $0 == EACCES })
        let firstRefused = try #require(outcomes.firstIndex(of: EACCES))
        #expect(firstRefused > 0 && outcomes[firstRefused...].allSatisfy { $0 == EACCES })
        let text = f.broker.metricsText()
        #expect(sample(text, #"nvmegate_policy_reloads_total{result="ok"}"#) == 1)
        #expect(sample(text, #"nvmegate_policy_reloads_total{result="failed"}"#) == 1)
    }

    @Test("shutdown: idle connections close, new ones are refused, the command in flight finishes and replies")
    func gracefulShutdown() throws {
        let f = try Fixture()
        let working = try f.connect(), idle = try f.connect()
        #expect(working.open("nvme0n1", write: true)?.ret == 0)
        let pattern = [UInt8](repeating: 0x3C, count: 4096)
        #expect(working.ioctl(0, .ioCommand, passthru(opcode: 0x01, nsid: 1, dataLength: 4096, cdw12: 7), data: pattern)?.ret == 0)
        f.controller.holdNext.store(600, ordering: .releasing)
        working.send(frame(type: 4, tag: 42, body: ioctlBody(handle: 0, request: 0xC048_4E43,
                                                             argument: passthru(opcode: 0x02, nsid: 1, dataLength: 4096, cdw12: 7))))
        #expect(eventually { f.controller.holding.load(ordering: .acquiring) })
        let started = ContinuousClock.now
        f.broker.shutdown()
        #expect(idle.isClosedByPeer())
        #expect(ContinuousClock.now - started < .milliseconds(500))          // before the held command is done
        #expect(eventually { access(f.socketPath, F_OK) != 0 })
        #expect(throws: BrokerError.self) { try Client(f.socketPath) }
        let reply = try #require(working.reply())
        #expect(reply.tag == 42 && reply.ret == 0 && reply.data == pattern)
        #expect(working.isClosedByPeer())
        f.broker.waitUntilStopped()
    }
}

/// What a load task and the test steering it share.
final class LoadState: Sendable {
    let stop = Atomic<Bool>(false)
    let progress = Atomic<Int>(0)
}

/// A value one task hands to another and no longer uses.
struct UnsafeTestSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

/// A small deterministic generator (SplitMix64), so a failing round can be replayed.
struct SplitMix64 {
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
