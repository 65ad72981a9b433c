import NVMeSpec

/// A data structure being built: little-endian stores into a zeroed byte array.
struct Page {
    var bytes: [UInt8]
    init(size: Int) { bytes = [UInt8](repeating: 0, count: size) }

    mutating func u8(_ offset: Int, _ v: UInt8) { bytes[offset] = v }
    mutating func u16(_ offset: Int, _ v: UInt16) { store(offset, v.littleEndian) }
    mutating func u32(_ offset: Int, _ v: UInt32) { store(offset, v.littleEndian) }
    mutating func u64(_ offset: Int, _ v: UInt64) { store(offset, v.littleEndian) }
    /// A 128-bit little-endian counter from a 64-bit value (SMART's 16-byte fields).
    mutating func u128(_ offset: Int, _ v: UInt64) { u64(offset, v); u64(offset + 8, 0) }
    mutating func raw(_ offset: Int, _ b: [UInt8]) {
        for (i, x) in b.enumerated() where offset + i < bytes.count { bytes[offset + i] = x }
    }
    /// An ASCII field padded with spaces (SN, MN, FR), or with NULs (SUBNQN) when `pad` is 0.
    mutating func ascii(_ offset: Int, width: Int, _ s: String, pad: UInt8 = 0x20) {
        var u = Array(s.utf8.prefix(width)).map { $0 < 0x20 || $0 > 0x7E ? UInt8(ascii: "?") : $0 }
        u += [UInt8](repeating: pad, count: width - u.count)
        raw(offset, u)
    }
    private mutating func store<T: FixedWidthInteger>(_ offset: Int, _ v: T) {
        bytes.withUnsafeMutableBytes { $0.storeBytes(of: v, toByteOffset: offset, as: T.self) }
    }
}

/// Little-endian loads from caller-supplied data, bounds-checked against the buffer.
extension UnsafeMutableRawBufferPointer {
    func le16(_ offset: Int) -> UInt16 { UInt16(littleEndian: unsafe loadUnaligned(fromByteOffset: offset, as: UInt16.self)) }
    func le32(_ offset: Int) -> UInt32 { UInt32(littleEndian: unsafe loadUnaligned(fromByteOffset: offset, as: UInt32.self)) }
    func le64(_ offset: Int) -> UInt64 { UInt64(littleEndian: unsafe loadUnaligned(fromByteOffset: offset, as: UInt64.self)) }
}

/// The fields of one command, copied out of the 64-byte entry once.
struct Command {
    let opcode: UInt8
    let flags: UInt8
    let cid: UInt16
    let nsid: UInt32
    let cdw10: UInt32, cdw11: UInt32, cdw12: UInt32, cdw13: UInt32, cdw14: UInt32, cdw15: UInt32

    init(_ e: borrowing SubmissionEntry) {
        opcode = e.opcode; flags = e.flags; cid = e.commandID; nsid = e.nsid
        cdw10 = e.cdw10; cdw11 = e.cdw11; cdw12 = e.cdw12; cdw13 = e.cdw13; cdw14 = e.cdw14; cdw15 = e.cdw15
    }
    var fuse: UInt8 { flags & 3 }
    var psdt: UInt8 { flags >> 6 }
    var slba: UInt64 { UInt64(cdw11) << 32 | UInt64(cdw10) }
    /// NLB + 1.
    var blocks: UInt64 { UInt64(cdw12 & 0xFFFF) + 1 }
    var fua: Bool { cdw12 & (1 << 30) != 0 }
}

/// Copies `page[offset..<]` into the first `length` bytes of `data`, zero-filling past the
/// page's end. `length` must already be known to fit in `data`.
func copyOut(_ page: [UInt8], offset: Int = 0, length: Int, to data: UnsafeMutableRawBufferPointer) {
    let available = max(0, min(length, page.count - offset))
    if available > 0 {
        page.withUnsafeBytes { src in
            unsafe UnsafeMutableRawBufferPointer(rebasing: data[0..<available])
                .copyMemory(from: UnsafeRawBufferPointer(rebasing: src[offset..<(offset + available)]))
        }
    }
    if available < length {
        unsafe UnsafeMutableRawBufferPointer(rebasing: data[available..<length]).initializeMemory(as: UInt8.self, repeating: 0)
    }
}
