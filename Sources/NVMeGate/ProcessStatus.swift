#if canImport(Glibc)
import Glibc
#endif

/// The lines of `/proc/PID/status` that identify a caller: its uids and gids (real,
/// effective, saved, filesystem), supplementary groups and effective capabilities.
public struct ProcessStatus: Sendable, Hashable {
    public var uids: [UInt32]
    public var gids: [UInt32]
    public var groups: [UInt32]
    public var effectiveCapabilities: Capabilities

    /// Parses the text of a status file; nil when `Uid:`, `Gid:` or `CapEff:` is missing or
    /// unreadable (`Groups:` may be empty).
    public init?(parsing text: String) {
        var uids: [UInt32]?, gids: [UInt32]?, groups: [UInt32] = [], caps: UInt64?
        for line in text.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let key = line[..<colon]
            let fields = line[line.index(after: colon)...].split(whereSeparator: { $0 == " " || $0 == "\t" })
            switch key {
            case "Uid": uids = Self.numbers(fields)
            case "Gid": gids = Self.numbers(fields)
            case "Groups": groups = Self.numbers(fields) ?? []
            case "CapEff": caps = fields.count == 1 ? UInt64(fields[0], radix: 16) : nil
            default: continue
            }
        }
        guard let uids, uids.count == 4, let gids, gids.count == 4, let caps else { return nil }
        self.uids = uids; self.gids = gids; self.groups = groups
        effectiveCapabilities = Capabilities(rawValue: caps)
    }

    static func numbers(_ fields: [Substring]) -> [UInt32]? {
        var out: [UInt32] = []
        for field in fields {
            guard let n = UInt32(field) else { return nil }
            out.append(n)
        }
        return out
    }

    /// The status of process `pid`, read now; nil when it cannot be read or parsed (the
    /// process is gone, or /proc hides it).
    public static func read(pid: Int32) -> ProcessStatus? {
        guard pid > 0, let text = readSmallFile("/proc/\(pid)/status") else { return nil }
        return ProcessStatus(parsing: text)
    }
}

/// The text of a small file (at most 64 KiB, as /proc's status files are), nil if it
/// cannot be read.
package func readSmallFile(_ path: String) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    let limit = 65536
    var bytes = [UInt8](repeating: 0, count: limit)
    var count = 0
    while count < limit {
        let n = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + count, limit - count) }
        if n < 0 && errno == EINTR { continue }
        guard n >= 0 else { return nil }
        if n == 0 { break }
        count += n
    }
    return String(decoding: bytes[..<count], as: UTF8.self)
}
