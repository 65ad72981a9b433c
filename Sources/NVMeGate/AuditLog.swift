#if canImport(Glibc)
import Glibc
#endif
import Logging
import Synchronization

/// A swift-log handler that writes each event as one JSON object on one line, for an audit
/// trail a person can `grep` and a program can read line by line:
///
///     {"time":"2025-01-31T12:00:00.123456Z","level":"notice","message":"Write (01h) needs a handle opened for writing: it transfers data to the controller","reason":"needs-write-open","errno":13,"command":"Write (01h)","opcode":1,"queue":"io","uid":1000,"gid":1000,"node_kind":"namespace","nsid":1}
///
/// `time` is RFC 3339 in UTC with microseconds; `message` is the event's message (for the
/// gate's events, the reason's sentence); then the metadata, the gate's keys first in a fixed
/// order (reason, errno, command, opcode, queue, uid, gid, tenant, node_kind, nsid), any
/// others sorted by key. Integer metadata (`.stringConvertible` of an integer) is written as
/// a JSON number, everything else as strings, lists and objects.
///
/// Each line goes out in a single `write(2)`, so lines from many threads and processes
/// appending to one `O_APPEND` file never interleave; the caller waits for that write and
/// nothing else (no lock, no buffer shared between threads). A write that fails is counted
/// (`failedWrites`) and the event dropped: the audit never stops the gate.
public struct JSONLinesAuditHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    public var logLevel: Logger.Level = .info
    let sink: AuditSink

    /// Writes to `fileDescriptor`, which stays the caller's to close (open it with
    /// `O_APPEND` for whole lines among several writers).
    public init(fileDescriptor: Int32) {
        sink = AuditSink(fileDescriptor: fileDescriptor, owned: false)
    }

    /// Appends to the file at `path`, created (mode 0640) when missing, and closed when the
    /// last copy of the handler goes.
    public init(path: String) throws(AuditLogError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw AuditLogError(path: path, errno: errno) }
        sink = AuditSink(fileDescriptor: fd, owned: true)
    }

    /// Events whose line could not be written, by any copy of this handler.
    public var failedWrites: UInt64 { sink.failures.load(ordering: .relaxed) }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { $1 } }
        if let own = event.metadata { merged.merge(own) { $1 } }
        var line: [UInt8] = []
        line.reserveCapacity(512)
        line.append(contentsOf: #"{"time":""#.utf8)
        appendTimestamp(to: &line)
        line.append(contentsOf: #"","level":"#.utf8)
        line.appendJSONString(event.level.rawValue)
        line.append(contentsOf: #","message":"#.utf8)
        line.appendJSONString(event.message.description)
        let known = Self.keyOrder.filter { merged[$0] != nil }
        let others = merged.keys.filter { !Self.keyOrder.contains($0) }.sorted()
        for key in known + others {
            line.append(UInt8(ascii: ","))
            line.appendJSONString(key)
            line.append(UInt8(ascii: ":"))
            appendJSONValue(merged[key]!, to: &line)
        }
        line.append(contentsOf: "}\n".utf8)
        sink.write(line)
    }

    /// The gate's metadata keys, in the order lines carry them.
    static let keyOrder = ["reason", "errno", "command", "opcode", "queue", "uid", "gid", "tenant", "node_kind", "nsid"]
}

/// An audit file that could not be opened.
public struct AuditLogError: Error, Sendable, CustomStringConvertible {
    public var path: String
    public var errno: Int32
    public var description: String { "\(path): cannot open the audit log: \(String(cString: strerror(errno)))" }
}

/// The file descriptor every copy of a handler writes to.
final class AuditSink: Sendable {
    let fileDescriptor: Int32
    let owned: Bool
    let failures = Atomic<UInt64>(0)

    init(fileDescriptor: Int32, owned: Bool) {
        self.fileDescriptor = fileDescriptor; self.owned = owned
    }

    deinit { if owned { close(fileDescriptor) } }

    /// Writes `line` with one `write(2)` (again only after EINTR, or for the rest of a
    /// partial write, which regular files and short pipe writes do not make).
    func write(_ line: [UInt8]) {
        line.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = Glibc.write(fileDescriptor, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else {
                    failures.add(1, ordering: .relaxed)
                    return
                }
                offset += n
            }
        }
    }
}

/// "2025-01-31T12:00:00.123456Z": now, RFC 3339 in UTC.
func appendTimestamp(to out: inout [UInt8]) {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    var seconds = now.tv_sec
    var t = tm()
    gmtime_r(&seconds, &t)
    func digits(_ value: Int, _ count: Int) {
        var chars = [UInt8](repeating: UInt8(ascii: "0"), count: count)
        var rest = value
        for index in chars.indices.reversed() {
            chars[index] += UInt8(rest % 10)
            rest /= 10
        }
        out.append(contentsOf: chars)
    }
    digits(Int(t.tm_year) + 1900, 4); out.append(UInt8(ascii: "-"))
    digits(Int(t.tm_mon) + 1, 2); out.append(UInt8(ascii: "-"))
    digits(Int(t.tm_mday), 2); out.append(UInt8(ascii: "T"))
    digits(Int(t.tm_hour), 2); out.append(UInt8(ascii: ":"))
    digits(Int(t.tm_min), 2); out.append(UInt8(ascii: ":"))
    digits(Int(t.tm_sec), 2); out.append(UInt8(ascii: "."))
    digits(Int(now.tv_nsec) / 1000, 6); out.append(UInt8(ascii: "Z"))
}

/// A metadata value as JSON: integers as numbers, strings, lists and objects.
func appendJSONValue(_ value: Logger.MetadataValue, to out: inout [UInt8]) {
    switch value {
    case .string(let text):
        out.appendJSONString(text)
    case .stringConvertible(let convertible):
        if convertible is any BinaryInteger {
            out.append(contentsOf: convertible.description.utf8)
        } else {
            out.appendJSONString(convertible.description)
        }
    case .array(let items):
        out.append(UInt8(ascii: "["))
        for (index, item) in items.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            appendJSONValue(item, to: &out)
        }
        out.append(UInt8(ascii: "]"))
    case .dictionary(let members):
        out.append(UInt8(ascii: "{"))
        for (index, key) in members.keys.sorted().enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            out.appendJSONString(key)
            out.append(UInt8(ascii: ":"))
            appendJSONValue(members[key]!, to: &out)
        }
        out.append(UInt8(ascii: "}"))
    }
}

extension Array where Element == UInt8 {
    /// Appends `text` as a JSON string literal: quotes, backslashes and control characters
    /// escaped, the rest as UTF-8. Shared by the audit trail and the CLI's JSON output.
    public mutating func appendJSONString(_ text: String) {
        let hex = Array("0123456789abcdef".utf8)
        append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): append(contentsOf: #"\""#.utf8)
            case UInt8(ascii: "\\"): append(contentsOf: #"\\"#.utf8)
            case UInt8(ascii: "\n"): append(contentsOf: #"\n"#.utf8)
            case UInt8(ascii: "\r"): append(contentsOf: #"\r"#.utf8)
            case UInt8(ascii: "\t"): append(contentsOf: #"\t"#.utf8)
            case 0..<0x20: append(contentsOf: #"\u00"#.utf8 + [hex[Int(byte >> 4)], hex[Int(byte & 0xF)]])
            default: append(byte)
            }
        }
        append(UInt8(ascii: "\""))
    }
}
