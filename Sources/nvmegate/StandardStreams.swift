#if canImport(Glibc)
import Glibc
#endif

/// Reads standard input line by line in large blocks: one `read(2)` per 64 KiB, not per line.
struct StandardInputLines {
    private var buffer: [UInt8] = []
    /// Where the next line starts in `buffer`.
    private var start = 0
    private var reachedEnd = false

    /// Calls `body` with each line's bytes (without the newline), in order, until the end of
    /// input. Throws when standard input cannot be read.
    mutating func forEach(_ body: (UnsafeBufferPointer<UInt8>) -> Void) throws(CLIError) {
        var searchFrom = 0
        while true {
            if let newline = buffer[searchFrom...].firstIndex(of: 0x0A) {
                buffer.withUnsafeBufferPointer { body(UnsafeBufferPointer(rebasing: $0[start..<newline])) }
                start = newline + 1
                searchFrom = start
                continue
            }
            if reachedEnd {
                if start < buffer.count {
                    buffer.withUnsafeBufferPointer { body(UnsafeBufferPointer(rebasing: $0[start...])) }
                }
                return
            }
            buffer.removeSubrange(0..<start)
            start = 0
            searchFrom = buffer.count
            try fill()
        }
    }

    /// Appends up to 64 KiB from standard input; marks the end of input.
    private mutating func fill() throws(CLIError) {
        let blockSize = 65536
        let oldCount = buffer.count
        buffer.append(contentsOf: repeatElement(0, count: blockSize))
        var count: Int
        repeat {
            count = buffer.withUnsafeMutableBytes { read(STDIN_FILENO, $0.baseAddress! + oldCount, blockSize) }
        } while count < 0 && errno == EINTR
        guard count >= 0 else {
            throw CLIError("cannot read standard input: \(String(cString: strerror(errno)))")
        }
        buffer.removeLast(blockSize - count)
        if count == 0 { reachedEnd = true }
    }
}

/// Standard output in large blocks: bytes collect in memory and go out 64 KiB at a time
/// and at `flush()`, never once per line.
struct StandardOutputBuffer {
    var bytes: [UInt8] = []
    private let threshold = 65536

    init() { bytes.reserveCapacity(threshold + 4096) }

    /// Writes the collected bytes out once there are enough of them.
    mutating func writeIfFull() throws(CLIError) {
        if bytes.count >= threshold { try flush() }
    }

    mutating func flush() throws(CLIError) {
        var written = 0
        while written < bytes.count {
            let count = bytes.withUnsafeBytes { write(STDOUT_FILENO, $0.baseAddress! + written, $0.count - written) }
            if count < 0 {
                if errno == EINTR { continue }
                throw CLIError("cannot write standard output: \(String(cString: strerror(errno)))")
            }
            written += count
        }
        bytes.removeAll(keepingCapacity: true)
    }
}
