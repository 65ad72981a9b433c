#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import NVMeEmulator
import NVMeGate
import NVMeSpec
import Testing

/// The JSON-lines audit handler, alone and behind the gate, and the gate's counters.
@Suite("Audit as JSON lines")
struct AuditLogTests {
    static let policy = """
        [default.io]
        commands = "none"
        [[tenant]]
        name = "db"
        uids = [1000]
        rules = "kernel"
        namespaces = [1]
        audit_allowed = ["writes"]
        """

    /// The lines of the file at `path`, each parsed as a JSON object.
    static func events(_ path: String) throws -> [[String: Any]] {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        return try text.split(separator: "\n").map { line in
            try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "\(line)")
        }
    }

    @Test("the gate's refusals and audited writes, one JSON object a line, with who, what and why")
    func gateEvents() throws {
        let files = TemporaryFiles()
        let path = files.directory + "/audit.jsonl"
        let handler = try JSONLinesAuditHandler(path: path)
        let gate = Gate(controller: EmulatedController.inMemory(EmulatorConfiguration(namespaceCount: 2, namespaceSize: 1 << 20)),
                        policy: try Policy.parse(Self.policy), audit: Logger(label: "audit") { _ in handler })
        let h = Harness(gate: gate)
        let ns1 = h.open("nvme0n1", write: true), ctrl = h.open("nvme0")
        #expect(h.io(ns1, PassthruBuffer(opcode: 0x01, nsid: 1, cdw10: 3, dataLength: 512)) == 0)      // audited write
        #expect(h.io(ns1, PassthruBuffer(opcode: 0x02, nsid: 1, cdw10: 3, dataLength: 512)) == 0)      // a read: not audited
        #expect(h.admin(ctrl, PassthruBuffer(opcode: 0x06, nsid: 2, cdw10: 0x00, dataLength: 4096)) == -EACCES)
        let other = h.open("nvme0n2", uid: 2000)
        #expect(h.io(other, PassthruBuffer(opcode: 0x02, nsid: 2, dataLength: 512)) == -EACCES)

        let events = try Self.events(path)
        try #require(events.count == 3)
        let write = events[0]
        #expect(write["reason"] as? String == "allowed-audited" && write["errno"] as? Int == 0)
        #expect(write["message"] as? String == "Write (01h) is allowed by the policy, which audits commands of its class")
        #expect(write["command"] as? String == "Write (01h)" && write["opcode"] as? Int == 1 && write["queue"] as? String == "io")
        #expect(write["uid"] as? Int == 1000 && write["tenant"] as? String == "db")
        #expect(write["node_kind"] as? String == "namespace" && write["nsid"] as? Int == 1)
        #expect(write["level"] as? String == "notice")
        let time = try #require(write["time"] as? String)
        #expect(time.wholeMatch(of: /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z/) != nil, "\(time)")
        // The NSID the command named, not the controller handle's 0, in the sentence and the line.
        #expect(events[1]["message"] as? String == "Identify (06h) addresses namespace 2, which tenant \"db\" does not own")
        #expect(events[1]["nsid"] as? Int == 2 && events[1]["queue"] as? String == "admin" && events[1]["opcode"] as? Int == 6)
        #expect(events[2]["reason"] as? String == "io-command-not-allowed" && events[2]["tenant"] == nil)
        #expect(events[2]["uid"] as? Int == 2000 && events[2]["errno"] as? Int == 13)
        // Keys in a fixed order, so a person can grep them.
        let raw = try String(contentsOfFile: path, encoding: .utf8)
        #expect(raw.hasPrefix(#"{"time":""#))
        #expect(raw.contains(#""level":"notice","message":"Write (01h) is allowed by the policy, which audits commands of its class","reason":"allowed-audited","errno":0,"command":"Write (01h)","opcode":1,"queue":"io","uid":1000,"gid":1000,"tenant":"db","node_kind":"namespace","nsid":1}"#))

        #expect(gate.counters().map(\.0) == [.allowedAndAudited, .ioCommandNotAllowed, .namespaceNotOwned])
        #expect(gate.counters().allSatisfy { $0.1 == 1 })
    }

    @Test("8 threads and 2 handlers appending to one file: every line whole")
    func concurrentWriters() async throws {
        let files = TemporaryFiles()
        let path = files.directory + "/audit.jsonl"
        let first = Logger(label: "a", factory: { _ in try! JSONLinesAuditHandler(path: path) })
        let second = Logger(label: "b", factory: { _ in try! JSONLinesAuditHandler(path: path) })
        let padding = String(repeating: "x", count: 300)
        await withTaskGroup(of: Void.self) { group in
            for thread in 0..<8 {
                group.addTask {
                    let logger = thread % 2 == 0 ? first : second
                    for i in 0..<250 {
                        logger.notice("event \(i) \"quoted\"\n\(padding)", metadata: ["thread": .stringConvertible(thread), "i": "\(i)"])
                    }
                }
            }
        }
        let events = try Self.events(path)
        #expect(events.count == 2000)
        var seen = Set<String>()
        for event in events {
            let thread = try #require(event["thread"] as? Int)
            let i = try #require(event["i"] as? String)
            #expect(event["message"] as? String == "event \(i) \"quoted\"\n\(padding)")
            seen.insert("\(thread)/\(i)")
        }
        #expect(seen.count == 2000)
    }

    @Test("a write that fails is counted and dropped; a file that cannot be opened is an error naming it")
    func failures() throws {
        let readOnly = open("/dev/null", O_RDONLY)
        defer { close(readOnly) }
        let handler = JSONLinesAuditHandler(fileDescriptor: readOnly)
        Logger(label: "audit") { _ in handler }.notice("lost")
        #expect(handler.failedWrites == 1)
        #expect(throws: AuditLogError.self) { try JSONLinesAuditHandler(path: "/nonexistent/dir/audit.jsonl") }
        do {
            _ = try JSONLinesAuditHandler(path: "/nonexistent/dir/audit.jsonl")
        } catch {
            #expect(error.description == "/nonexistent/dir/audit.jsonl: cannot open the audit log: No such file or directory")
        }
    }

    @Test("metadata of every kind becomes JSON: numbers, strings, lists, objects, control characters escaped")
    func metadataValues() throws {
        let files = TemporaryFiles()
        let path = files.directory + "/audit.jsonl"
        var logger = Logger(label: "audit") { _ in try! JSONLinesAuditHandler(path: path) }
        logger[metadataKey: "site"] = "lab\t1"
        logger.warning("bell \u{07}", metadata: ["n": .stringConvertible(UInt32.max), "list": ["a", .stringConvertible(2)],
                                                 "object": ["k": "v"], "flag": .stringConvertible(true)])
        let line = try String(contentsOfFile: path, encoding: .utf8)
        #expect(line.contains(#""message":"bell \u0007""#))
        #expect(line.contains(#""flag":"true","list":["a",2],"n":4294967295,"object":{"k":"v"},"site":"lab\t1"}"#))
        let event = try #require(try Self.events(path).first)
        #expect(event["level"] as? String == "warning" && event["site"] as? String == "lab\t1")
    }
}
