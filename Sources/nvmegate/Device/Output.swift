#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser

/// nvme-cli's `-o/--output-format`: human text, JSON, or the raw structure.
enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case normal, json, binary
}

/// `-o/--output-format` and `-b/--raw-binary`, as nvme-cli's show commands take them.
struct OutputFormatOptions: ParsableArguments {
    @Option(name: [.customShort("o"), .customLong("output-format")],
            help: ArgumentHelp("Output format: normal, json or binary.", valueName: "fmt"))
    var outputFormat: OutputFormat = .normal

    @Flag(name: [.customShort("b"), .customLong("raw-binary")], help: "Write the raw structure to standard output.")
    var rawBinary = false

    /// The format asked for; `-b` wins over `-o`.
    var format: OutputFormat { rawBinary ? .binary : outputFormat }
}

/// A JSON value built for output, members kept in the order added (nvme-cli's order).
indirect enum JSONOutput {
    case object([(String, JSONOutput)])
    case array([JSONOutput])
    case string(String)
    case unsigned(UInt64)
    case signed(Int64)
    /// A number already written in decimal (128-bit counters).
    case decimal(String)

    /// An unsigned integer member.
    static func number<Value: BinaryInteger>(_ value: Value) -> JSONOutput {
        value < 0 ? .signed(Int64(value)) : .unsigned(UInt64(value))
    }

    /// The text json-c writes in pretty mode, as nvme-cli prints it: two-space indents and
    /// `"key":value` members.
    var rendered: String {
        var bytes: [UInt8] = []
        render(into: &bytes, indent: 0)
        bytes.append(UInt8(ascii: "\n"))
        return String(decoding: bytes, as: UTF8.self)
    }

    private func render(into out: inout [UInt8], indent: Int) {
        func pad(_ level: Int) { out.append(contentsOf: repeatElement(UInt8(ascii: " "), count: 2 * level)) }
        switch self {
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            for (i, (key, value)) in members.enumerated() {
                out.append(contentsOf: i == 0 ? [0x0A] : [UInt8(ascii: ","), 0x0A])
                pad(indent + 1)
                out.appendJSONString(key)
                out.append(UInt8(ascii: ":"))
                value.render(into: &out, indent: indent + 1)
            }
            out.append(0x0A); pad(indent); out.append(UInt8(ascii: "}"))
        case .array(let elements):
            out.append(UInt8(ascii: "["))
            for (i, value) in elements.enumerated() {
                out.append(contentsOf: i == 0 ? [0x0A] : [UInt8(ascii: ","), 0x0A])
                pad(indent + 1)
                value.render(into: &out, indent: indent + 1)
            }
            out.append(0x0A); pad(indent); out.append(UInt8(ascii: "]"))
        case .string(let text): out.appendJSONString(text)
        case .unsigned(let value): out.appendDecimal(value)
        case .signed(let value): out.appendDecimal(value)
        case .decimal(let digits): out.append(contentsOf: digits.utf8)
        }
    }
}

/// The printf conversions nvme-cli's output is made of, for output that must match it.
enum CFormat {
    /// C's `%x`.
    static func hex<Value: BinaryInteger>(_ value: Value) -> String { String(value, radix: 16) }

    /// C's `%#x`: "0x1f", and a bare "0" for zero.
    static func alternateHex<Value: BinaryInteger>(_ value: Value) -> String {
        value == 0 ? "0" : "0x" + String(value, radix: 16)
    }

    /// C's `%0Nx`.
    static func hex<Value: BinaryInteger>(_ value: Value, width: Int) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }

    /// C's `%#0Nx`: the width counts the "0x"; zero has no prefix.
    static func alternateHex<Value: BinaryInteger>(_ value: Value, width: Int) -> String {
        value == 0 ? hex(value, width: width) : "0x" + hex(value, width: width - 2)
    }

    /// C's `%-Ns` (`%-Nd` for numbers): left-justified in `width` columns.
    static func leftJustified(_ text: String, _ width: Int) -> String {
        text + String(repeating: " ", count: max(0, width - text.count))
    }

    /// C's `%Ns` (`%Nd`): right-justified in `width` columns.
    static func rightJustified(_ text: String, _ width: Int) -> String {
        String(repeating: " ", count: max(0, width - text.count)) + text
    }
}

/// nvme-cli's hex dump (`d()`): a column header, then 16 bytes a line with the offset and
/// the printable characters.
func hexDump(_ bytes: [UInt8]) -> String {
    let hex = Array("0123456789abcdef".utf8)
    var out = Array("     ".utf8)
    for i in 0..<16 { out.append(contentsOf: "  ".utf8); out.append(hex[i]) }
    var ascii: [UInt8] = []
    for (i, byte) in bytes.enumerated() {
        if i % 16 == 0 {
            out.append(0x0A)
            for shift in stride(from: 12, through: 0, by: -4) { out.append(hex[(i >> shift) & 0xF]) }
            out.append(UInt8(ascii: ":"))
        }
        out.append(UInt8(ascii: " ")); out.append(hex[Int(byte >> 4)]); out.append(hex[Int(byte & 0xF)])
        ascii.append(byte >= UInt8(ascii: "!") && byte <= UInt8(ascii: "~") ? byte : UInt8(ascii: "."))
        if ascii.count == 16 {
            out.append(contentsOf: " \"".utf8); out.append(contentsOf: ascii); out.append(UInt8(ascii: "\""))
            ascii.removeAll(keepingCapacity: true)
        }
    }
    if !ascii.isEmpty {
        let missing = 16 - ascii.count
        out.append(contentsOf: repeatElement(UInt8(ascii: " "), count: 1 + 3 * missing + 1))
        out.append(UInt8(ascii: "\"")); out.append(contentsOf: ascii); out.append(UInt8(ascii: "\""))
    }
    out.append(0x0A)
    return String(decoding: out, as: UTF8.self)
}

/// The monotonic clock now, for `--latency`.
func monotonicNow() -> timespec {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return now
}

/// Microseconds from `start` to `end` (both from `monotonicNow`).
func microseconds(from start: timespec, to end: timespec) -> Int {
    (end.tv_sec - start.tv_sec) * 1_000_000 + (end.tv_nsec - start.tv_nsec) / 1000
}

/// Writes all of `bytes` to standard output.
func writeStandardOutput(_ bytes: [UInt8]) throws(CLIError) {
    var buffer = StandardOutputBuffer()
    buffer.bytes = bytes
    try buffer.flush()
}

/// Writes `text` to standard output.
func printOutput(_ text: String) throws(CLIError) {
    try writeStandardOutput(Array(text.utf8))
}

/// Writes `text` and a newline to standard error, unprefixed (nvme-cli's status lines).
func printStandardError(_ text: String) {
    writeStandardError(text + "\n")
}

/// Writes `text` to standard error as is (`bench`'s progress line has no newline).
func writeStandardError(_ text: String) {
    let bytes = Array(text.utf8)
    var written = 0
    while written < bytes.count {
        let count = bytes.withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress! + written, $0.count - written) }
        if count < 0 && errno == EINTR { continue }
        guard count > 0 else { return }
        written += count
    }
}

/// Writes `bytes` to the file at `path`, created or truncated (mode 0644).
func writeFile(_ path: String, _ bytes: [UInt8]) throws(CLIError) {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw CLIError("\(path): cannot open for writing: \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    var written = 0
    while written < bytes.count {
        let count = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + written, $0.count - written) }
        if count < 0 {
            if errno == EINTR { continue }
            throw CLIError("\(path): cannot write: \(String(cString: strerror(errno)))")
        }
        written += count
    }
}

/// Standard input up to `limit` bytes (or its end, if sooner).
func readStandardInput(limit: Int) throws(CLIError) -> [UInt8] {
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while bytes.count < limit {
        let want = min(chunk.count, limit - bytes.count)
        let count = chunk.withUnsafeMutableBytes { read(STDIN_FILENO, $0.baseAddress, want) }
        if count < 0 {
            if errno == EINTR { continue }
            throw CLIError("cannot read standard input: \(String(cString: strerror(errno)))")
        }
        if count == 0 { return bytes }
        bytes.append(contentsOf: chunk[0..<count])
    }
    return bytes
}

extension [UInt8] {
    /// The little-endian integer at `offset` (zero beyond the end).
    func le<Value: FixedWidthInteger & UnsignedInteger>(_ offset: Int, as: Value.Type = Value.self) -> Value {
        var value: Value = 0
        for i in 0..<(Value.bitWidth / 8) where offset + i < count {
            value |= Value(self[offset + i]) << (8 * i)
        }
        return value
    }

    /// The bytes `offset..<offset+length` as text, NULs dropped and trailing spaces kept (nvme-cli's sn/mn/fr).
    func ascii(_ offset: Int, _ length: Int) -> String {
        let end = Swift.min(count, offset + length)
        guard offset < end else { return "" }
        return String(decoding: self[offset..<end].filter { $0 != 0 }, as: UTF8.self)
    }
}
