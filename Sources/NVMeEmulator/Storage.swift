#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A host-side storage failure, turned into Write Fault / Unrecovered Read Error / Internal Error.
struct StorageError: Error { var errno: Int32 }

/// Where a namespace's bytes live. Byte-addressed; the namespace turns LBAs into offsets.
/// Not thread-safe by itself (hence `@unchecked Sendable` on the stores): the owning
/// namespace's lock serializes every call that changes it, and reads run only under the
/// shared lock, while nothing changes it.
///
/// Blocks never written read as the store's *background*: zeroes, or the pattern the last
/// Sanitize Overwrite left behind.
protocol BlockStore: Sendable {
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

/// A namespace's store, in memory or in a file: an enum rather than `any BlockStore`, so a
/// command reaches the store's code directly, not through a witness table.
enum NamespaceStore: BlockStore {
    case memory(MemoryStore)
    case file(FileStore)

    @inline(__always)
    func read(at offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(StorageError) {
        switch self {
        case .memory(let store): store.read(at: offset, into: buffer)
        case .file(let store): try store.read(at: offset, into: buffer)
        }
    }

    @inline(__always)
    func write(at offset: UInt64, from buffer: UnsafeRawBufferPointer) throws(StorageError) {
        switch self {
        case .memory(let store): store.write(at: offset, from: buffer)
        case .file(let store): try store.write(at: offset, from: buffer)
        }
    }

    func zero(at offset: UInt64, count: UInt64) throws(StorageError) {
        switch self {
        case .memory(let store): store.zero(at: offset, count: count)
        case .file(let store): try store.zero(at: offset, count: count)
        }
    }

    func eraseAll(pattern: UInt32) throws(StorageError) {
        switch self {
        case .memory(let store): store.eraseAll(pattern: pattern)
        case .file(let store): try store.eraseAll(pattern: pattern)
        }
    }

    @inline(__always)
    func sync() throws(StorageError) {
        switch self {
        case .memory: return
        case .file(let store): try store.sync()
        }
    }

    func destroy() {
        switch self {
        case .memory(let store): store.destroy()
        case .file(let store): store.destroy()
        }
    }
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

/// Sparse in-memory storage: the namespace's bytes at their offsets in one anonymous
/// mapping, reserved whole (no memory committed) and backed page by page as 4 KiB chunks
/// are written; a bitmap says which chunks were, and unwritten ones read as the background.
/// So a 1 TiB namespace costs what is written (plus a bit per 4 KiB), and a read or a write
/// of written blocks is a bit test and a copy from page-aligned memory: no lookup, no
/// allocation. Deallocated chunks give their pages back (MADV_DONTNEED).
final class MemoryStore: BlockStore, @unchecked Sendable {
    static let chunkSize = 4096
    private let base: UnsafeMutableRawPointer
    /// Bytes mapped: the size rounded up to whole chunks.
    private let mapped: Int
    /// One bit per chunk: written (its page holds its bytes) or not (its page is untouched
    /// or given back, so it holds zeroes, and the chunk reads as the background).
    private let written: UnsafeMutablePointer<UInt64>
    private var chunkCount = 0
    private var background: UInt32 = 0

    /// A store of `size` bytes, none written. Traps if the process has not that much address
    /// space left (a namespace larger than about 100 TiB).
    init(size: UInt64) {
        let chunks = max(1, Int((size + UInt64(Self.chunkSize) - 1) / UInt64(Self.chunkSize)))
        mapped = chunks * Self.chunkSize
        let p = mmap(nil, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
        guard let p, p != UnsafeMutableRawPointer(bitPattern: -1) else {
            fatalError("cannot reserve \(size) bytes of address space for an in-memory namespace: \(errnoString(errno))")
        }
        // 4 KiB pages even where transparent huge pages are on for everything: a write of one
        // block must not commit 2 MiB.
        _ = madvise(p, mapped, MADV_NOHUGEPAGE)
        base = p
        written = calloc((chunks + 63) / 64, MemoryLayout<UInt64>.stride)!.bindMemory(to: UInt64.self, capacity: (chunks + 63) / 64)
    }

    deinit {
        munmap(base, mapped)
        free(written)
    }

    /// How many bytes of chunks are written (tests check sparseness).
    var allocatedBytes: Int { chunkCount * Self.chunkSize }

    @inline(__always)
    private func isWritten(_ chunk: Int) -> Bool {
        written[chunk / 64] & (1 << UInt64(chunk % 64)) != 0
    }

    /// Marks `chunk` written, its page holding the background first if the caller writes
    /// only part of it.
    @inline(__always)
    private func prepare(_ chunk: Int, whole: Bool) {
        if isWritten(chunk) { return }
        if !whole && background != 0 {
            fillPattern(UnsafeMutableRawBufferPointer(start: base + chunk &* Self.chunkSize, count: Self.chunkSize),
                        pattern: background, phase: UInt64(chunk &* Self.chunkSize))
        }
        written[chunk / 64] |= 1 << UInt64(chunk % 64)
        chunkCount &+= 1
    }

    /// Walks `count` bytes from `offset` chunk by chunk: `body(chunk, within, done, n)` covers
    /// `n` bytes of `chunk` from byte `within`, which are bytes `done..<done+n` of the range.
    @inline(__always)
    private func forEachChunk(from offset: UInt64, count: Int, _ body: (_ chunk: Int, _ within: Int, _ done: Int, _ n: Int) -> Void) {
        precondition(offset <= UInt64(mapped) && count <= mapped - Int(offset), "offset beyond the namespace")
        var done = 0
        var position = Int(offset)
        while done < count {
            let within = position % Self.chunkSize
            let n = min(Self.chunkSize &- within, count &- done)
            body(position / Self.chunkSize, within, done, n)
            done &+= n
            position &+= n
        }
    }

    func read(at offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) {
        guard let destination = buffer.baseAddress else { return }
        forEachChunk(from: offset, count: buffer.count) { chunk, within, done, n in
            if isWritten(chunk) {
                (destination + done).copyMemory(from: base + (chunk &* Self.chunkSize &+ within), byteCount: n)
            } else {
                fillPattern(UnsafeMutableRawBufferPointer(start: destination + done, count: n), pattern: background,
                            phase: offset &+ UInt64(done))
            }
        }
    }

    func write(at offset: UInt64, from buffer: UnsafeRawBufferPointer) {
        guard let source = buffer.baseAddress else { return }
        forEachChunk(from: offset, count: buffer.count) { chunk, within, done, n in
            prepare(chunk, whole: n == Self.chunkSize)
            (base + (chunk &* Self.chunkSize &+ within)).copyMemory(from: source + done, byteCount: n)
        }
    }

    func zero(at offset: UInt64, count: UInt64) {
        // Whole chunks over a zero background are given back, a run of them at a time.
        var run: (first: Int, end: Int)?
        func release() {
            if let r = run { _ = madvise(base + r.first &* Self.chunkSize, (r.end &- r.first) &* Self.chunkSize, MADV_DONTNEED) }
            run = nil
        }
        forEachChunk(from: offset, count: Int(count)) { chunk, within, _, n in
            if n == Self.chunkSize && background == 0 {
                guard isWritten(chunk) else { return }      // an unwritten chunk already reads as zeroes
                written[chunk / 64] &= ~(1 << UInt64(chunk % 64))
                chunkCount &-= 1
                if let r = run, r.end == chunk { run = (r.first, chunk &+ 1) } else { release(); run = (chunk, chunk &+ 1) }
            } else if isWritten(chunk) || background != 0 {
                prepare(chunk, whole: false)
                (base + (chunk &* Self.chunkSize &+ within)).initializeMemory(as: UInt8.self, repeating: 0, count: n)
            }
        }
        release()
    }

    func eraseAll(pattern: UInt32) {
        destroy()
        background = pattern
    }

    func sync() {}

    /// Gives every page back: afterwards nothing is written.
    func destroy() {
        _ = madvise(base, mapped, MADV_DONTNEED)
        written.update(repeating: 0, count: (mapped / Self.chunkSize + 63) / 64)
        chunkCount = 0
    }
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
