#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A host-side storage failure, turned into Write Fault / Unrecovered Read Error / Internal Error.
struct StorageError: Error { var errno: Int32 }

/// Where a namespace's bytes live. Byte-addressed; the namespace turns LBAs into offsets.
/// Not thread-safe by itself (hence `@unchecked Sendable` on the stores): the owning
/// namespace's lock serializes every call.
///
/// Blocks never written read as the store's *background*: zeroes, or the pattern the last
/// Sanitize Overwrite left behind.
protocol BlockStore: AnyObject, Sendable {
    func read(at offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(StorageError)
    func write(at offset: UInt64, from buffer: UnsafeRawBufferPointer) throws(StorageError)
    /// Writes zeroes (deallocating where the store can).
    func zero(at offset: UInt64, count: UInt64) throws(StorageError)
    /// Erases everything; afterwards every byte reads as `pattern` repeated (little-endian).
    func eraseAll(pattern: UInt32) throws(StorageError)
    /// Makes completed writes durable (fdatasync for files).
    func sync() throws(StorageError)
    /// Removes the backing (namespace deleted).
    func destroy()
}

/// Fills `buffer` with `pattern` repeated, as a little-endian dword stream aligned to `phase`.
@inline(__always)
func fillPattern(_ buffer: UnsafeMutableRawBufferPointer, pattern: UInt32, phase: UInt64) {
    if pattern == 0 {
        unsafe buffer.initializeMemory(as: UInt8.self, repeating: 0)
        return
    }
    for i in 0..<buffer.count {
        let shift = UInt32(truncatingIfNeeded: (phase &+ UInt64(i)) & 3) * 8
        unsafe buffer.storeBytes(of: UInt8(truncatingIfNeeded: pattern >> shift), toByteOffset: i, as: UInt8.self)
    }
}

/// Sparse in-memory storage: a table of 4 KiB chunks, allocated only when written, so a
/// 1 TiB namespace costs only what is written.
final class MemoryStore: BlockStore, @unchecked Sendable {
    static let chunkSize: UInt64 = 4096
    private var chunks: [UInt64: [UInt8]] = [:]
    private var background: UInt32 = 0

    init() {}

    /// How many bytes of chunks are allocated (tests check sparseness).
    var allocatedBytes: Int { chunks.count * Int(Self.chunkSize) }

    /// Walks `count` bytes from `offset` chunk by chunk: `body(index, within, done, n)` covers
    /// `n` bytes of chunk `index` from byte `within`, which are bytes `done..<done+n` of the range.
    private func forEachChunk(from offset: UInt64, count: UInt64,
                              _ body: (_ index: UInt64, _ within: Int, _ done: Int, _ n: Int) -> Void) {
        var done: UInt64 = 0
        while done < count {
            let pos = offset &+ done
            let within = pos % Self.chunkSize
            let n = min(Self.chunkSize - within, count - done)
            body(pos / Self.chunkSize, Int(within), Int(done), Int(n))
            done += n
        }
    }

    func read(at offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) {
        forEachChunk(from: offset, count: UInt64(buffer.count)) { index, within, done, n in
            let dst = unsafe UnsafeMutableRawBufferPointer(rebasing: buffer[done..<(done + n)])
            if let chunk = chunks[index] {
                chunk.withUnsafeBytes { src in
                    unsafe dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[within..<(within + n)]))
                }
            } else {
                unsafe fillPattern(dst, pattern: background, phase: offset &+ UInt64(done))
            }
        }
    }

    func write(at offset: UInt64, from buffer: UnsafeRawBufferPointer) {
        forEachChunk(from: offset, count: UInt64(buffer.count)) { index, within, done, n in
            if chunks[index] == nil { chunks[index] = freshChunk(index) }
            chunks[index]!.withUnsafeMutableBytes { dst in
                unsafe UnsafeMutableRawBufferPointer(rebasing: dst[within..<(within + n)])
                    .copyMemory(from: UnsafeRawBufferPointer(rebasing: buffer[done..<(done + n)]))
            }
        }
    }

    private func freshChunk(_ index: UInt64) -> [UInt8] {
        var c = [UInt8](repeating: 0, count: Int(Self.chunkSize))
        if background != 0 { c.withUnsafeMutableBytes { fillPattern($0, pattern: background, phase: index * Self.chunkSize) } }
        return c
    }

    func zero(at offset: UInt64, count: UInt64) {
        forEachChunk(from: offset, count: count) { index, within, _, n in
            if n == Int(Self.chunkSize) && background == 0 {
                chunks[index] = nil            // deallocated: reads return zeroes
                return
            }
            if chunks[index] == nil {
                if background == 0 { return }  // an unwritten chunk already reads as zeroes
                chunks[index] = freshChunk(index)
            }
            chunks[index]!.withUnsafeMutableBytes { dst in
                unsafe UnsafeMutableRawBufferPointer(rebasing: dst[within..<(within + n)])
                    .initializeMemory(as: UInt8.self, repeating: 0)
            }
        }
    }

    func eraseAll(pattern: UInt32) {
        chunks.removeAll()
        background = pattern
    }

    func sync() {}
    func destroy() { chunks.removeAll() }
}

/// File-backed storage: one sparse file per namespace, pread/pwrite at byte offsets,
/// fdatasync for Flush and FUA, hole punching for deallocation where the file system allows.
final class FileStore: BlockStore, @unchecked Sendable {
    let path: String
    private var fd: Int32
    private var size: UInt64

    /// Opens (creating if needed) `path` and sizes it to `size` bytes (sparse).
    init(path: String, size: UInt64) throws(StorageError) {
        self.path = path
        self.size = size
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw StorageError(errno: errno) }
        var st = stat()
        if fstat(fd, &st) == 0, UInt64(st.st_size) != size {
            guard ftruncate(fd, off_t(size)) == 0 else {
                let e = errno; close(fd); throw StorageError(errno: e)
            }
        }
    }

    deinit { if fd >= 0 { close(fd) } }

    func read(at offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(StorageError) {
        var done = 0
        while done < buffer.count {
            let n = unsafe pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset + UInt64(done)))
            if n < 0 { if errno == EINTR { continue }; throw StorageError(errno: errno) }
            if n == 0 {   // beyond end of file: the background
                unsafe UnsafeMutableRawBufferPointer(rebasing: buffer[done...]).initializeMemory(as: UInt8.self, repeating: 0)
                return
            }
            done += n
        }
    }

    func write(at offset: UInt64, from buffer: UnsafeRawBufferPointer) throws(StorageError) {
        var done = 0
        while done < buffer.count {
            let n = unsafe pwrite(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset + UInt64(done)))
            if n < 0 { if errno == EINTR { continue }; throw StorageError(errno: errno) }
            done += n
        }
    }

    func zero(at offset: UInt64, count: UInt64) throws(StorageError) {
        // FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE: deallocate and read back zeroes.
        if let punch = Self.fallocateFunction, punch(fd, 0x02 | 0x01, Int(offset), Int(count)) == 0 { return }
        try fill(at: offset, count: count, with: [UInt8](repeating: 0, count: 64 * 1024))
    }

    func eraseAll(pattern: UInt32) throws(StorageError) {
        guard ftruncate(fd, 0) == 0, ftruncate(fd, off_t(size)) == 0 else { throw StorageError(errno: errno) }
        guard pattern != 0 else { return }
        // Sanitize Overwrite with a non-zero pattern: the file holds the pattern for real.
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        chunk.withUnsafeMutableBytes { fillPattern($0, pattern: pattern, phase: 0) }
        try fill(at: 0, count: size, with: chunk)
    }

    /// Writes `chunk` repeatedly over [offset, offset + count); `chunk.count` must be a
    /// multiple of 4 so a pattern stays in phase.
    private func fill(at offset: UInt64, count: UInt64, with chunk: [UInt8]) throws(StorageError) {
        var done: UInt64 = 0
        while done < count {
            let n = Int(min(UInt64(chunk.count), count - done))
            let failed: Int32? = chunk.withUnsafeBytes { (c) -> Int32? in
                do { try write(at: offset + done, from: UnsafeRawBufferPointer(rebasing: c[0..<n])); return nil }
                catch let e as StorageError { return e.errno } catch { return EIO }
            }
            if let failed { throw StorageError(errno: failed) }
            done += UInt64(n)
        }
    }

    /// glibc's fallocate(2) wrapper, looked up at run time (the Glibc module does not export it).
    private static let fallocateFunction: (@convention(c) (Int32, Int32, Int, Int) -> Int32)? = {
        guard let sym = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "fallocate") else { return nil }
        return unsafeBitCast(sym, to: (@convention(c) (Int32, Int32, Int, Int) -> Int32).self)
    }()

    func sync() throws(StorageError) {
        guard fdatasync(fd) == 0 else { throw StorageError(errno: errno) }
    }

    func destroy() {
        close(fd); fd = -1
        unlink(path)
    }
}

/// A set of LBAs kept as sorted, disjoint, non-adjacent half-open intervals: the blocks
/// made uncorrectable by Write Uncorrectable.
struct IntervalSet: Equatable {
    private(set) var ranges: [(start: UInt64, end: UInt64)] = []

    static func == (a: IntervalSet, b: IntervalSet) -> Bool {
        a.ranges.count == b.ranges.count && zip(a.ranges, b.ranges).allSatisfy { $0.start == $1.start && $0.end == $1.end }
    }

    var isEmpty: Bool { ranges.isEmpty }

    func intersects(start: UInt64, end: UInt64) -> Bool {
        for r in ranges where r.start < end && start < r.end { return true }
        return false
    }

    /// The first member in [start, end), if any.
    func first(in start: UInt64, _ end: UInt64) -> UInt64? {
        for r in ranges where r.start < end && start < r.end { return max(r.start, start) }
        return nil
    }

    mutating func insert(start: UInt64, end: UInt64) {
        guard start < end else { return }
        var s = start, e = end
        var out: [(start: UInt64, end: UInt64)] = []
        var placed = false
        for r in ranges {
            if r.end < s { out.append(r) }
            else if e < r.start {
                if !placed { out.append((s, e)); placed = true }
                out.append(r)
            } else { s = min(s, r.start); e = max(e, r.end) }
        }
        if !placed { out.append((s, e)) }
        ranges = out
    }

    mutating func remove(start: UInt64, end: UInt64) {
        guard start < end, !ranges.isEmpty else { return }
        var out: [(start: UInt64, end: UInt64)] = []
        for r in ranges {
            if r.end <= start || end <= r.start { out.append(r); continue }
            if r.start < start { out.append((r.start, start)) }
            if end < r.end { out.append((end, r.end)) }
        }
        ranges = out
    }

    mutating func removeAll() { ranges.removeAll() }
}
