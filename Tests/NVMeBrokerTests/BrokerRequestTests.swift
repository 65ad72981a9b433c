#if canImport(Glibc)
import Glibc
#endif
import NVMeBroker
import NVMeGate
import NVMeSpec
import Testing

/// The requests of WireFormat.md against a broker over an emulated controller, frames
/// written by hand on a raw socket.
@Suite("Broker requests")
struct BrokerRequestTests {
    let f: Fixture
    init() throws { f = try Fixture() }

    @Test("HELLO: the version, the limits and the caller as the kernel identified it")
    func hello() throws {
        let client = try f.connect(as: nil, hello: false)
        let reply = try #require(client.call(type: 1, tag: 0xABCD_0123, body: Bytes().u16(1).u16(3)))
        #expect(reply.error == 0 && reply.type == 1 && reply.tag == 0xABCD_0123 && reply.version == 1)
        #expect(reply.body.count == 32)
        #expect(reply.ret == 0 && reply.errno == 0)
        #expect(reply.u32(8) & 0xFFFF == 1)
        // The emulator's MDTS is 7: 4 KiB << 7.
        #expect(reply.u32(16) == 512 * 1024)
        let maxFrame: UInt32 = 16 + 32 + 80 + 2 * 512 * 1024
        #expect(reply.u32(12) == maxFrame)
        #expect(reply.u32(20) == getuid())
        #expect(reply.u32(24) == getgid())
        #expect(reply.u32(28) == UInt32(getpid()))
    }

    @Test("OPEN and IOCTL: Identify Controller, and a Write then Read round trip on the tenant's namespace")
    func roundTrip() throws {
        let client = try f.connect(as: alpha)
        let ctrl = try #require(client.open("nvme0"))
        #expect(ctrl.ret == 0 && ctrl.body.count == 24)
        #expect(ctrl.u32(8) == 0 && ctrl.u32(12) == 0)             // kind controller, NSID 0

        let identify = try #require(client.ioctl(0, .adminCommand, passthru(opcode: 0x06, dataLength: 4096, cdw10: 0x01)))
        #expect(identify.ret == 0 && identify.errno == 0)
        #expect(identify.dataLength == 4096 && identify.metadataLength == 0 && identify.body.count == 24 + 4096)
        let model = String(decoding: identify.data[24..<64], as: UTF8.self)
        #expect(model.hasPrefix("nvmegate emulated controller"))

        let ns = try #require(client.open("nvme0n1", write: true))
        #expect(ns.ret == 1)
        #expect(ns.u32(8) == 1 && ns.u32(12) == 1 && ns.u32(16) == 512 && ns.u32(20) == 0)

        let pattern = (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
        let write = try #require(client.ioctl(1, .io64Command, passthru(is64: true, opcode: 0x01, nsid: 1, dataLength: 4096,
                                                                        cdw10: 100, cdw12: 7), data: pattern))
        #expect(write.ret == 0 && write.dataLength == 0 && write.body.count == 24)
        let read = try #require(client.ioctl(1, .io64Command, passthru(is64: true, opcode: 0x02, nsid: 1, dataLength: 4096,
                                                                       cdw10: 100, cdw12: 7)))
        #expect(read.ret == 0 && read.dataLength == 4096)
        #expect(read.data == pattern)

        // NVME_IOCTL_SUBMIT_IO: a Read of 8 blocks, the length from the handle's format.
        let userIO = Bytes().u8(0x02).u8(0).u16(0).u16(7).u16(0).u64(0).u64(0x7F00_0000_2000).u64(100)
            .u32(0).u32(0).u16(0).u16(0).u32(0)
        let submitted = try #require(client.ioctl(1, .submitIO, userIO))
        #expect(submitted.ret == 0 && submitted.data == pattern)

        // A buffer longer than the controller fills comes back zeroed past what it wrote,
        // never with bytes of an earlier command (the pattern above went through the same heap).
        _ = client.ioctl(1, .ioCommand, passthru(opcode: 0x01, nsid: 1, dataLength: 8192, cdw12: 15), data: pattern + pattern)
        let longer = try #require(client.ioctl(0, .adminCommand, passthru(opcode: 0x06, dataLength: 8192, cdw10: 0x01)))
        #expect(longer.ret == 0 && longer.dataLength == 8192)
        #expect(longer.data[4096...].allSatisfy { $0 == 0 })

        // NVME_IOCTL_ID: the NSID, no buffers.
        let id = try #require(client.ioctl(1, .id, Bytes()))
        #expect(id.ret == 1 && id.body.count == 24 && id.dataLength == 0)
        // A pointer with no length and a length with no pointer stay bad addresses, as locally.
        let noPointer = try #require(client.ioctl(1, .ioCommand, passthru(opcode: 0x02, nsid: 1, addr: 0, dataLength: 512)))
        #expect(noPointer.ret == -1 && noPointer.errno == EFAULT)
    }

    @Test("a refused command returns EACCES and no data; one tenant cannot read another's blocks")
    func refusal() throws {
        let a = try f.connect(as: alpha), b = try f.connect(as: beta)
        #expect(a.open("nvme0n1", write: true)?.ret == 0)
        let secret = [UInt8](repeating: 0x5A, count: 512)
        #expect(a.ioctl(0, .ioCommand, passthru(opcode: 0x01, nsid: 1, dataLength: 512), data: secret)?.ret == 0)

        #expect(b.open("nvme0n1")?.ret == 0)
        let read = try #require(b.ioctl(0, .ioCommand, passthru(opcode: 0x02, nsid: 1, dataLength: 512)))
        #expect(read.ret == -1 && read.errno == EACCES)
        #expect(read.dataLength == 0 && read.body.count == 24 && read.result == 0)
        // Its own namespace reads fine, and shows none of alpha's bytes.
        #expect(b.open("nvme0n2")?.ret == 1)
        let own = try #require(b.ioctl(1, .ioCommand, passthru(opcode: 0x02, nsid: 2, dataLength: 512)))
        #expect(own.ret == 0 && own.data == [UInt8](repeating: 0, count: 512))

        let text = try f.metrics()
        #expect(sample(text, #"nvmegate_commands_total{tenant="beta",outcome="refused"}"#) == 1)
        #expect(sample(text, #"nvmegate_commands_total{tenant="beta",outcome="executed"}"#) == 1)
        #expect(sample(text, #"nvmegate_commands_total{tenant="alpha",outcome="executed"}"#) == 1)
        #expect(sample(text, #"nvmegate_gate_decisions_total{reason="namespace-not-owned"}"#) == 1)
    }

    @Test("handles belong to their connection and close with it; a connection holds a bounded number")
    func handlesPerConnection() throws {
        let f = try Fixture(BrokerConfiguration(maxHandlesPerConnection: 2, ioTimeout: .milliseconds(300)))
        let gate = f.broker.gate
        let a = try f.connect(as: alpha), b = try f.connect(as: alpha)
        #expect(a.open("nvme0n1")?.ret == 0)
        #expect(a.open("nvme0")?.ret == 1)
        #expect(a.open("nvme0")?.errno == EMFILE)
        // b has no handle 0: not a's, whatever the number.
        #expect(b.ioctl(0, .ioCommand, passthru(opcode: 0x02, nsid: 1, dataLength: 512))?.errno == EBADF)
        #expect(b.call(type: 3, body: Bytes().i32(0))?.errno == EBADF)
        #expect(a.ioctl(0, .ioCommand, passthru(opcode: 0x02, nsid: 1, dataLength: 512))?.ret == 0)
        // CLOSE frees the lowest wire handle for the next OPEN.
        #expect(a.call(type: 3, body: Bytes().i32(0))?.ret == 0)
        #expect(a.call(type: 3, body: Bytes().i32(0))?.errno == EBADF)
        #expect(a.open("nvme0n2")?.ret == 0)
        #expect(b.open("nvme0n1")?.ret == 0)
        // The gate's slots: a's two first, then b's. Hanging up closes a's, not b's.
        #expect(gate.handleState(0) != nil && gate.handleState(1) != nil && gate.handleState(2) != nil)
        a.hangUp()
        #expect(eventually { gate.handleState(0) == nil && gate.handleState(1) == nil })
        #expect(gate.handleState(2) != nil)
        #expect(b.ioctl(0, .ioCommand, passthru(opcode: 0x02, nsid: 1, dataLength: 512))?.ret == 0)
    }

    @Test("CHECK_BATCH: verdicts in place, as nvmegate_check_batch gives them")
    func checkBatch() throws {
        let client = try f.connect(as: alpha)
        #expect(client.open("nvme0n1")?.ret == 0)
        var entries = Bytes()
        for opcode: UInt8 in [0x02, 0x01] {                       // Read passes; Write needs a writable handle
            entries = entries.u8(opcode).u8(0).u16(0).u32(1).zeros(56)
        }
        let reply = try #require(client.call(type: 5, body: Bytes().i32(0).u32(1).u32(2).u32(0).raw(entries.bytes)))
        #expect(reply.ret == 2 && reply.body.count == 10)
        #expect(Array(reply.body[8...]) == [0, UInt8(EACCES)])
        #expect(client.call(type: 5, body: Bytes().i32(0).u32(2).u32(0).u32(0))?.errno == EINVAL)
        #expect(client.call(type: 5, body: Bytes().i32(9).u32(1).u32(0).u32(0))?.errno == EBADF)
        #expect(client.call(type: 5, body: Bytes().i32(0).u32(1).u32(0).u32(0))?.ret == 0)
    }

    @Test("METRICS: root and the broker's own user only; the counters move")
    func metricsAccess() throws {
        let tenant = try f.connect(as: alpha)
        let refused = try #require(tenant.call(type: 6, body: Bytes()))
        #expect(refused.ret == -1 && refused.errno == EACCES && refused.body.count == 8)
        #expect(tenant.open("nvme0n1")?.ret == 0)
        for _ in 0..<3 { _ = tenant.ioctl(0, .ioCommand, passthru(opcode: 0x02, nsid: 1, dataLength: 512)) }
        _ = tenant.ioctl(0, .ioCommand, passthru(opcode: 0x01, nsid: 1, dataLength: 512), data: [UInt8](repeating: 1, count: 512))

        let text = try f.metrics()
        #expect(sample(text, #"nvmegate_commands_total{tenant="alpha",outcome="executed"}"#) == 3)
        #expect(sample(text, #"nvmegate_commands_total{tenant="alpha",outcome="refused"}"#) == 1)
        #expect(sample(text, #"nvmegate_gate_decisions_total{reason="needs-write-open"}"#) == 1)
        #expect(sample(text, #"nvmegate_requests_total{type="metrics"}"#) == 2)
        #expect(sample(text, "nvmegate_connections_accepted_total") == 2)
        #expect(sample(text, "nvmegate_connections_open") == 2)
        #expect(sample(text, "nvmegate_command_duration_seconds_count") == 4)
        #expect(text.contains("# TYPE nvmegate_command_duration_seconds histogram"))

        // The command-line client gets the same text (the test process is root or the broker's user).
        let fromClient = try requestBrokerMetrics(socketPath: f.socketPath)
        #expect(fromClient.contains("nvmegate_connections_accepted_total"))
    }
}
