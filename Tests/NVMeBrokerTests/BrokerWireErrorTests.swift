#if canImport(Glibc)
import Glibc
#endif
import NVMeBroker
import NVMeGate
import NVMeSpec
import Testing

/// Every wire error of WireFormat.md, with what happens to the connection after it, and
/// frames that never finish.
@Suite("Broker wire errors")
struct BrokerWireErrorTests {
    let f: Fixture
    init() throws { f = try Fixture() }

    /// Whether `client` still gets answers.
    func stillServes(_ client: Client) -> Bool {
        client.call(type: 1, tag: 99, body: Bytes().u16(1).u16(1))?.ret == 0
    }

    @Test("a frame of another version: unsupported-version with the broker's version, then the connection closes")
    func badVersion() throws {
        let client = try f.connect()
        client.send(frame(type: 1, tag: 5, version: 2, body: Bytes().u16(1).u16(2)))
        let reply = try #require(client.reply())
        #expect(reply.error == 1 && reply.version == 1 && reply.tag == 5 && reply.type == 1 && reply.body.isEmpty)
        #expect(client.isClosedByPeer())
        // HELLO whose range leaves out version 1 closes the connection too.
        let other = try f.connect()
        let refused = try #require(other.call(type: 1, body: Bytes().u16(2).u16(4)))
        #expect(refused.error == 1)
        #expect(other.isClosedByPeer())
    }

    @Test("an unknown type: unknown-type, and the connection stays open")
    func unknownType() throws {
        let client = try f.connect()
        for type: UInt16 in [0, 7, 0xFFFF] {
            let reply = try #require(client.call(type: type, tag: UInt32(type), body: Bytes().u32(1)))
            #expect(reply.error == 2 && reply.type == type && reply.tag == UInt32(type) && reply.body.isEmpty)
        }
        #expect(stillServes(client))
    }

    @Test("malformed bodies: malformed, and the connection stays open")
    func malformed() throws {
        let client = try f.connect()
        #expect(client.open("nvme0n1", write: true)?.ret == 0)
        let bodies: [(UInt16, Bytes)] = [
            (1, Bytes().u16(1)),                                                    // HELLO too short
            (1, Bytes().u16(1).u16(1).u8(0)),                                       // HELLO too long
            (2, Bytes().u32(0).u32(0)),                                             // OPEN: empty name
            (2, Bytes().u32(0).u32(256).zeros(256)),                                // OPEN: name over 255
            (2, Bytes().u32(0).u32(7).raw(Array("nvme0".utf8))),                    // OPEN: name shorter than said
            (3, Bytes().i32(0).u8(0)),                                              // CLOSE too long
            (4, Bytes().i32(0).u32(0).u64(0xC048_4E41)),                            // IOCTL: no fixed part
            (4, ioctlBody(handle: 0, request: 0xC048_4E41, argument: Bytes().zeros(71))),   // ADMIN_CMD, 71 bytes
            (4, ioctlBody(handle: 0, request: 0x4E40, argument: Bytes().zeros(4))),         // NVME_IOCTL_ID takes none
            (4, Bytes(bytes: Array(ioctlBody(handle: 0, request: 0xC048_4E43, argument: passthru(opcode: 0x01, nsid: 1, dataLength: 512),
                                             data: [UInt8](repeating: 1, count: 512)).bytes.dropLast(1)))),  // data short of its length
            (4, ioctlBody(handle: 0, request: 0xC048_4E43, argument: passthru(opcode: 0x01, nsid: 1, dataLength: 512),
                          data: [UInt8](repeating: 1, count: 1024))),              // more data than the struct's buffer
            (5, Bytes().i32(0).u32(1).u32(2).u32(0).zeros(64)),                     // CHECK_BATCH: one entry of two
            (6, Bytes().u8(0)),                                                     // METRICS has no body
        ]
        for (i, (type, body)) in bodies.enumerated() {
            let reply = try #require(client.call(type: type, tag: UInt32(i), body: body), "case \(i)")
            #expect(reply.error == 3 && reply.tag == UInt32(i) && reply.body.isEmpty, "case \(i)")
        }
        #expect(stillServes(client))
        // Nothing of the refused write reached the namespace.
        let read = try #require(client.ioctl(0, .ioCommand, passthru(opcode: 0x02, nsid: 1, dataLength: 512)))
        #expect(read.ret == 0 && read.data == [UInt8](repeating: 0, count: 512))
        let text = try f.metrics()
        #expect(sample(text, #"nvmegate_wire_errors_total{error="malformed"}"#) == Double(bodies.count))
    }

    @Test("lengths beyond the limits: too-large, then the connection closes", arguments: [
        "header length 0xFFFFFFFF", "header length 8", "IOCTL data length over max_transfer",
    ])
    func tooLarge(_ what: String) throws {
        let client = try f.connect()
        let bytes: [UInt8] = switch what {
        case "header length 0xFFFFFFFF": frame(type: 1, length: 0xFFFF_FFFF, body: Bytes().u16(1).u16(1))
        case "header length 8": frame(type: 1, length: 8, body: Bytes())
        default:
            // Says 512 KiB + 1 of data follow; the frame itself is small and whole.
            frame(type: 4, body: Bytes().i32(0).u32(0).u64(0xC048_4E43).u32(72).u32(512 * 1024 + 1).u32(0).u32(0)
                .raw(passthru(opcode: 0x01, nsid: 1, dataLength: 4096).bytes))
        }
        client.send(bytes)
        let reply = try #require(client.reply())
        #expect(reply.error == 4 && reply.body.isEmpty)
        #expect(client.isClosedByPeer())
    }

    @Test("a struct whose buffer is over max_transfer: EINVAL, not an allocation")
    func transferOverLimit() throws {
        let client = try f.connect()
        #expect(client.open("nvme0n1")?.ret == 0)
        let reply = try #require(client.ioctl(0, .ioCommand, passthru(opcode: 0x02, nsid: 1, dataLength: 0xFFFF_FFF0)))
        #expect(reply.ret == -1 && reply.errno == EINVAL && reply.dataLength == 0)
        #expect(stillServes(client))
    }

    @Test("a frame that stops coming: the connection closes after the I/O timeout; others are served meanwhile",
          arguments: [4, 16, 40])
    func truncated(_ sent: Int) throws {
        let slow = try f.connect(), other = try f.connect()
        #expect(other.open("nvme0n1")?.ret == 0)
        let whole = frame(type: 4, body: ioctlBody(handle: 0, request: 0xC048_4E43, argument: passthru(opcode: 0x02, nsid: 1, dataLength: 512)))
        slow.send(Array(whole.prefix(sent)))
        let started = ContinuousClock.now
        #expect(other.ioctl(0, .ioCommand, passthru(opcode: 0x02, nsid: 1, dataLength: 512))?.ret == 0)
        #expect(slow.isClosedByPeer())
        let waited = ContinuousClock.now - started
        #expect(waited >= .milliseconds(250) && waited < .seconds(2.5))
        #expect(stillServes(other))
        #expect(sample(try f.metrics(), #"nvmegate_wire_errors_total{error="frame-timeout"}"#) == 1)
    }

    @Test("an idle connection is not timed")
    func idle() throws {
        let client = try f.connect()
        usleep(500_000)                                     // past the 300 ms I/O timeout
        #expect(stillServes(client))
    }
}
