/// The status of a completed command: the 15-bit Status Field of a completion queue entry
/// without the phase tag, as Linux returns it from a passthrough ioctl (positive on error).
///
/// Bits: SC 7:0, SCT 10:8, CRD 12:11, More 13, DNR 14.
@frozen
public struct NVMeStatus: RawRepresentable, Hashable, Sendable, BitwiseCopyable {
    public var rawValue: UInt16
    @inlinable public init(rawValue: UInt16) { self.rawValue = rawValue & 0x7FFF }

    /// A status from its type and code, with the Do Not Retry and More bits.
    @inlinable
    public init(type: StatusCodeType, code: UInt8, doNotRetry: Bool = false, more: Bool = false) {
        rawValue = UInt16(code) | UInt16(type.rawValue & 0x7) << 8
            | (more ? 1 << 13 : 0) | (doNotRetry ? 1 << 14 : 0)
    }

    public static let success = NVMeStatus(rawValue: 0)

    /// Status Code (SC).
    @inlinable public var code: UInt8 { UInt8(truncatingIfNeeded: rawValue) }
    /// Status Code Type (SCT).
    @inlinable public var type: StatusCodeType { StatusCodeType(rawValue: UInt8(truncatingIfNeeded: rawValue >> 8) & 0x7) }
    /// Command Retry Delay (CRD).
    @inlinable public var commandRetryDelay: UInt8 { UInt8(truncatingIfNeeded: rawValue >> 11) & 0x3 }
    @inlinable public var more: Bool { rawValue & (1 << 13) != 0 }
    @inlinable public var doNotRetry: Bool { rawValue & (1 << 14) != 0 }
    @inlinable public var isSuccess: Bool { rawValue & 0x7FF == 0 }
}

/// Status Code Type (SCT), NVMe Base 2.x.
@frozen
public struct StatusCodeType: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt8
    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let generic = StatusCodeType(rawValue: 0)
    public static let commandSpecific = StatusCodeType(rawValue: 1)
    public static let mediaAndDataIntegrity = StatusCodeType(rawValue: 2)
    public static let path = StatusCodeType(rawValue: 3)
    public static let vendorSpecific = StatusCodeType(rawValue: 7)
}

/// What a controller returns for one command: status and the two result dwords.
@frozen
public struct Completion: Hashable, Sendable, BitwiseCopyable {
    public var status: NVMeStatus
    /// Command Specific result, DW0 (and DW1, which the 64-bit passthru returns too).
    public var dw0: UInt32
    public var dw1: UInt32
    @inlinable
    public init(status: NVMeStatus = .success, dw0: UInt32 = 0, dw1: UInt32 = 0) {
        self.status = status; self.dw0 = dw0; self.dw1 = dw1
    }
    /// DW1:DW0 as the 64-bit passthru's `result` carries it.
    @inlinable public var result64: UInt64 { UInt64(dw1) << 32 | UInt64(dw0) }
}

/// A zero-copy view of a 16-byte completion queue entry.
@frozen
public struct CompletionEntry: ~Escapable {
    public static let size = 16
    @usableFromInline let buffer: RawSpan
    @usableFromInline let base: Int

    /// A view of entry `index` of `buffer`; traps if it does not lie inside `buffer`.
    @inlinable @_lifetime(copy buffer)
    public init(_ buffer: RawSpan, index: Int = 0) {
        let base = index &* CompletionEntry.size
        precondition(index >= 0 && base <= buffer.byteCount &- CompletionEntry.size, "completion entry out of range")
        self.buffer = buffer; self.base = base
    }
    @inlinable @inline(__always)
    func u16(_ o: Int) -> UInt16 {
        UInt16(littleEndian: unsafe buffer.unsafeLoadUnaligned(fromUncheckedByteOffset: base &+ o, as: UInt16.self))
    }
    @inlinable @inline(__always)
    func u32(_ o: Int) -> UInt32 {
        UInt32(littleEndian: unsafe buffer.unsafeLoadUnaligned(fromUncheckedByteOffset: base &+ o, as: UInt32.self))
    }
    @inlinable public var dw0: UInt32 { @inline(__always) get { u32(0) } }
    @inlinable public var dw1: UInt32 { @inline(__always) get { u32(4) } }
    /// SQ Head Pointer (DW2 15:0).
    @inlinable public var submissionQueueHead: UInt16 { @inline(__always) get { u16(8) } }
    /// SQ Identifier (DW2 31:16).
    @inlinable public var submissionQueueID: UInt16 { @inline(__always) get { u16(10) } }
    /// Command Identifier (DW3 15:0).
    @inlinable public var commandID: UInt16 { @inline(__always) get { u16(12) } }
    /// Phase Tag (DW3 bit 16).
    @inlinable public var phase: Bool { @inline(__always) get { u16(14) & 1 != 0 } }
    /// The Status Field (DW3 31:17), phase removed.
    @inlinable public var status: NVMeStatus { @inline(__always) get { NVMeStatus(rawValue: u16(14) >> 1) } }
    /// The completion this entry carries.
    @inlinable public var completion: Completion { Completion(status: status, dw0: dw0, dw1: dw1) }
}
