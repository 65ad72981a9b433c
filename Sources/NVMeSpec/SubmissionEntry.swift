/// A borrowed, zero-copy view of one 64-byte NVMe submission queue entry.
///
/// The view holds the whole buffer (a ring, or a single command) and a byte offset, so a
/// loop over a ring checks bounds once per entry and then reads fields with unchecked,
/// unaligned little-endian loads. Nothing is copied and nothing is allocated.
///
/// Layout (NVMe Base 2.x, Figure "Common Command Format"): CDW0 = opcode (7:0), FUSE (9:8),
/// PSDT (15:14), CID (31:16); NSID at 4; CDW2 at 8; CDW3 at 12; MPTR at 16; DPTR at 24;
/// CDW10–CDW15 at 40–60. `nvme_passthru_cmd` shares the offsets of opcode, flags, NSID,
/// CDW2, CDW3 and CDW10–15, so the same view reads the command part of a passthru struct.
@frozen
public struct SubmissionEntry: ~Escapable {
    /// The size of a submission queue entry in bytes.
    public static let size = 64

    @usableFromInline let buffer: RawSpan
    @usableFromInline let base: Int

    /// A view of entry `index` of `buffer` (entry 0 for a single command).
    /// Traps if the entry does not lie wholly inside `buffer`; use `init?(_:index:)`-style
    /// checks (`SubmissionEntry.count(in:)`) at API boundaries.
    @inlinable @inline(__always) @_lifetime(copy buffer)
    public init(_ buffer: RawSpan, index: Int = 0) {
        let base = index &* SubmissionEntry.size
        precondition(index >= 0 && base <= buffer.byteCount &- SubmissionEntry.size, "submission entry out of range")
        self.buffer = buffer
        self.base = base
    }

    /// How many whole entries `buffer` holds.
    @inlinable @inline(__always)
    public static func count(in buffer: RawSpan) -> Int { buffer.byteCount / size }

    @inlinable @inline(__always)
    func u8(_ offset: Int) -> UInt8 {
        unsafe buffer.unsafeLoad(fromUncheckedByteOffset: base &+ offset, as: UInt8.self)
    }
    @inlinable @inline(__always)
    func u16(_ offset: Int) -> UInt16 {
        UInt16(littleEndian: unsafe buffer.unsafeLoadUnaligned(fromUncheckedByteOffset: base &+ offset, as: UInt16.self))
    }
    @inlinable @inline(__always)
    func u32(_ offset: Int) -> UInt32 {
        UInt32(littleEndian: unsafe buffer.unsafeLoadUnaligned(fromUncheckedByteOffset: base &+ offset, as: UInt32.self))
    }
    @inlinable @inline(__always)
    func u64(_ offset: Int) -> UInt64 {
        UInt64(littleEndian: unsafe buffer.unsafeLoadUnaligned(fromUncheckedByteOffset: base &+ offset, as: UInt64.self))
    }

    // MARK: Common command fields

    /// CDW0 bits 7:0.
    @inlinable public var opcode: UInt8 { @inline(__always) get { u8(0) } }
    /// CDW0 bits 15:8 as one byte: FUSE (1:0) and PSDT (7:6). `nvme_passthru_cmd.flags`.
    @inlinable public var flags: UInt8 { @inline(__always) get { u8(1) } }
    /// Fused operation (CDW0 bits 9:8): 0 normal, 1 first half, 2 second half, 3 reserved.
    @inlinable public var fuse: UInt8 { @inline(__always) get { flags & 0x3 } }
    /// PRP or SGL for Data Transfer (CDW0 bits 15:14).
    @inlinable public var psdt: UInt8 { @inline(__always) get { flags >> 6 } }
    /// Command Identifier (CDW0 bits 31:16).
    @inlinable public var commandID: UInt16 { @inline(__always) get { u16(2) } }
    @inlinable public var nsid: UInt32 { @inline(__always) get { u32(4) } }
    @inlinable public var cdw2: UInt32 { @inline(__always) get { u32(8) } }
    @inlinable public var cdw3: UInt32 { @inline(__always) get { u32(12) } }
    /// Metadata Pointer.
    @inlinable public var metadataPointer: UInt64 { @inline(__always) get { u64(16) } }
    /// Data Pointer, first and second 8 bytes (PRP1/PRP2 or the SGL descriptor).
    @inlinable public var dataPointer1: UInt64 { @inline(__always) get { u64(24) } }
    @inlinable public var dataPointer2: UInt64 { @inline(__always) get { u64(32) } }
    @inlinable public var cdw10: UInt32 { @inline(__always) get { u32(40) } }
    @inlinable public var cdw11: UInt32 { @inline(__always) get { u32(44) } }
    @inlinable public var cdw12: UInt32 { @inline(__always) get { u32(48) } }
    @inlinable public var cdw13: UInt32 { @inline(__always) get { u32(52) } }
    @inlinable public var cdw14: UInt32 { @inline(__always) get { u32(56) } }
    @inlinable public var cdw15: UInt32 { @inline(__always) get { u32(60) } }

    // MARK: Typed accessors

    /// Identify: Controller or Namespace Structure (CDW10 bits 7:0).
    @inlinable public var identifyCNS: UInt8 { @inline(__always) get { UInt8(truncatingIfNeeded: cdw10) } }
    /// Identify: Controller Identifier (CDW10 bits 31:16).
    @inlinable public var identifyCNTID: UInt16 { @inline(__always) get { UInt16(truncatingIfNeeded: cdw10 >> 16) } }
    /// Identify: Command Set Identifier (CDW11 bits 31:24).
    @inlinable public var identifyCSI: UInt8 { @inline(__always) get { UInt8(truncatingIfNeeded: cdw11 >> 24) } }

    /// Get Log Page: Log Page Identifier (CDW10 bits 7:0).
    @inlinable public var logPageID: UInt8 { @inline(__always) get { UInt8(truncatingIfNeeded: cdw10) } }
    /// Get Log Page: Log Specific Parameter (CDW10 bits 14:8).
    @inlinable public var logSpecificParameter: UInt8 { @inline(__always) get { UInt8(truncatingIfNeeded: cdw10 >> 8) & 0x7F } }
    /// Get Log Page: Retain Asynchronous Event (CDW10 bit 15).
    @inlinable public var retainAsynchronousEvent: Bool { @inline(__always) get { cdw10 & 0x8000 != 0 } }
    /// Get Log Page: Number of Dwords, 0's based (NUMDU:NUMDL, CDW11 15:0 and CDW10 31:16).
    @inlinable public var logNumberOfDwords: UInt32 {
        @inline(__always) get { (cdw11 & 0xFFFF) << 16 | cdw10 >> 16 }
    }
    /// Get Log Page: the transfer length in bytes, (NUMD + 1) × 4.
    @inlinable public var logTransferLength: UInt64 { @inline(__always) get { (UInt64(logNumberOfDwords) + 1) &* 4 } }
    /// Get Log Page: Log Specific Identifier (CDW11 bits 31:16).
    @inlinable public var logSpecificIdentifier: UInt16 { @inline(__always) get { UInt16(truncatingIfNeeded: cdw11 >> 16) } }
    /// Get Log Page: Log Page Offset in bytes (LPOU:LPOL, CDW13:CDW12).
    @inlinable public var logPageOffset: UInt64 { @inline(__always) get { UInt64(cdw13) << 32 | UInt64(cdw12) } }
    /// Get Log Page: UUID Index (CDW14 bits 6:0).
    @inlinable public var logUUIDIndex: UInt8 { @inline(__always) get { UInt8(truncatingIfNeeded: cdw14) & 0x7F } }
    /// Get Log Page: Offset Type (CDW14 bit 23): offset is an index, not bytes.
    @inlinable public var logOffsetIsIndex: Bool { @inline(__always) get { cdw14 & (1 << 23) != 0 } }
    /// Get Log Page: Command Set Identifier (CDW14 bits 31:24).
    @inlinable public var logCSI: UInt8 { @inline(__always) get { UInt8(truncatingIfNeeded: cdw14 >> 24) } }

    /// Get/Set Features: Feature Identifier (CDW10 bits 7:0).
    @inlinable public var featureID: UInt8 { @inline(__always) get { UInt8(truncatingIfNeeded: cdw10) } }
    /// Get Features: Select (CDW10 bits 10:8): 0 current, 1 default, 2 saved, 3 supported capabilities.
    @inlinable public var featureSelect: UInt8 { @inline(__always) get { UInt8(truncatingIfNeeded: cdw10 >> 8) & 0x7 } }
    /// Set Features: Save (CDW10 bit 31).
    @inlinable public var featureSave: Bool { @inline(__always) get { cdw10 & 0x8000_0000 != 0 } }

    /// LBA-addressed commands: Starting LBA (CDW11:CDW10).
    @inlinable public var startingLBA: UInt64 { @inline(__always) get { UInt64(cdw11) << 32 | UInt64(cdw10) } }
    /// LBA-addressed commands: Number of Logical Blocks, 0's based (CDW12 bits 15:0).
    @inlinable public var numberOfLogicalBlocks: UInt16 { @inline(__always) get { UInt16(truncatingIfNeeded: cdw12) } }
    /// LBA-addressed commands: the block count, NLB + 1.
    @inlinable public var blockCount: UInt32 { @inline(__always) get { UInt32(numberOfLogicalBlocks) &+ 1 } }
    /// LBA-addressed writes: Force Unit Access (CDW12 bit 30).
    @inlinable public var forceUnitAccess: Bool { @inline(__always) get { cdw12 & (1 << 30) != 0 } }
    /// Dataset Management: Number of Ranges, 0's based (CDW10 bits 7:0).
    @inlinable public var dsmNumberOfRanges: UInt8 { @inline(__always) get { UInt8(truncatingIfNeeded: cdw10) } }
    /// Copy: Number of Ranges, 0's based (CDW12 bits 7:0).
    @inlinable public var copyNumberOfRanges: UInt8 { @inline(__always) get { UInt8(truncatingIfNeeded: cdw12) } }
    /// Copy: Descriptor Format (CDW12 bits 11:8).
    @inlinable public var copyDescriptorFormat: UInt8 { @inline(__always) get { UInt8(truncatingIfNeeded: cdw12 >> 8) & 0xF } }
}

/// An owned 64-byte submission queue entry: how commands are built (CLI, tests, the ioctl
/// front end, which builds its own entry from the passthru struct as Linux does) and then
/// viewed with `SubmissionEntry` through `withEntry`.
@frozen
public struct SubmissionQueueEntry: Sendable, Equatable, BitwiseCopyable {
    @inlinable public static func == (a: Self, b: Self) -> Bool {
        for i in 0..<16 where a.dwords[i] != b.dwords[i] { return false }
        return true
    }

    /// CDW0..CDW15, little-endian on the wire; held host-endian here and stored LE in `bytes`.
    public var dwords: InlineArray<16, UInt32>

    @inlinable public init() { dwords = .init(repeating: 0) }

    /// A command from the fields a passthru caller supplies.
    @inlinable
    public init(opcode: UInt8, flags: UInt8 = 0, commandID: UInt16 = 0, nsid: UInt32 = 0,
                cdw2: UInt32 = 0, cdw3: UInt32 = 0,
                cdw10: UInt32 = 0, cdw11: UInt32 = 0, cdw12: UInt32 = 0,
                cdw13: UInt32 = 0, cdw14: UInt32 = 0, cdw15: UInt32 = 0) {
        dwords = .init(repeating: 0)
        dwords[0] = UInt32(opcode) | UInt32(flags) << 8 | UInt32(commandID) << 16
        dwords[1] = nsid
        dwords[2] = cdw2
        dwords[3] = cdw3
        dwords[10] = cdw10; dwords[11] = cdw11; dwords[12] = cdw12
        dwords[13] = cdw13; dwords[14] = cdw14; dwords[15] = cdw15
    }

    /// A copy of the 64 bytes at `entry`.
    @inlinable
    public init(_ entry: borrowing SubmissionEntry) {
        dwords = .init(repeating: 0)
        for i in 0..<16 { dwords[i] = entry.u32(i &* 4) }
    }

    /// Calls `body` with a zero-copy view of this entry.
    @inlinable @inline(__always)
    public func withEntry<R, E: Error>(_ body: (borrowing SubmissionEntry) throws(E) -> R) throws(E) -> R {
        var le = self
        for i in 0..<16 { le.dwords[i] = dwords[i].littleEndian }
        return try withUnsafeBytes(of: &le.dwords) { (raw) throws(E) -> R in
            let span = unsafe RawSpan(_unsafeBytes: raw)
            return try body(SubmissionEntry(span))
        }
    }

    @inlinable public var opcode: UInt8 {
        get { UInt8(truncatingIfNeeded: dwords[0]) }
        set { dwords[0] = dwords[0] & ~0xFF | UInt32(newValue) }
    }
    @inlinable public var flags: UInt8 {
        get { UInt8(truncatingIfNeeded: dwords[0] >> 8) }
        set { dwords[0] = dwords[0] & ~0xFF00 | UInt32(newValue) << 8 }
    }
    @inlinable public var commandID: UInt16 {
        get { UInt16(truncatingIfNeeded: dwords[0] >> 16) }
        set { dwords[0] = dwords[0] & 0xFFFF | UInt32(newValue) << 16 }
    }
    @inlinable public var nsid: UInt32 { get { dwords[1] } set { dwords[1] = newValue } }
    /// CDW10 + `index` (0...5).
    @inlinable public subscript(cdw index: Int) -> UInt32 {
        get { dwords[10 + index] }
        set { dwords[10 + index] = newValue }
    }
}
