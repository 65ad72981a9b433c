/// A view of `struct nvme_passthru_cmd` (72 bytes) or `struct nvme_passthru_cmd64`
/// (80 bytes), as linux/nvme_ioctl.h lays them out, over caller memory.
///
/// Fields are read and the result written with unaligned little-endian loads and stores;
/// memory is never bound to a type. The command part (opcode, flags, NSID, CDW2/3,
/// CDW10–15) sits at the same offsets as in a submission queue entry.
@frozen
public struct PassthruCommand {
    /// 72: `nvme_passthru_cmd` (result is CQE DW0). 80: `nvme_passthru_cmd64` (result is DW1:DW0).
    public static let size32 = 72
    public static let size64 = 80

    public let base: UnsafeMutableRawPointer
    /// True for the 80-byte `nvme_passthru_cmd64`.
    public let is64: Bool

    @inlinable public init(_ base: UnsafeMutableRawPointer, is64: Bool) {
        self.base = base; self.is64 = is64
    }

    /// The struct's size in bytes.
    @inlinable public var size: Int { is64 ? Self.size64 : Self.size32 }

    @inlinable @inline(__always) func u32(_ o: Int) -> UInt32 {
        UInt32(littleEndian: unsafe base.loadUnaligned(fromByteOffset: o, as: UInt32.self))
    }
    @inlinable @inline(__always) func u64(_ o: Int) -> UInt64 {
        UInt64(littleEndian: unsafe base.loadUnaligned(fromByteOffset: o, as: UInt64.self))
    }

    @inlinable public var opcode: UInt8 { @inline(__always) get { unsafe base.load(fromByteOffset: 0, as: UInt8.self) } }
    /// Must be 0 (Linux: EINVAL otherwise); in an entry it would be FUSE and PSDT.
    @inlinable public var flags: UInt8 { @inline(__always) get { unsafe base.load(fromByteOffset: 1, as: UInt8.self) } }
    @inlinable public var nsid: UInt32 { @inline(__always) get { u32(4) } }
    @inlinable public var cdw2: UInt32 { @inline(__always) get { u32(8) } }
    @inlinable public var cdw3: UInt32 { @inline(__always) get { u32(12) } }
    /// Caller's metadata buffer address.
    @inlinable public var metadata: UInt64 { @inline(__always) get { u64(16) } }
    /// Caller's data buffer address.
    @inlinable public var addr: UInt64 { @inline(__always) get { u64(24) } }
    @inlinable public var metadataLength: UInt32 { @inline(__always) get { u32(32) } }
    @inlinable public var dataLength: UInt32 { @inline(__always) get { u32(36) } }
    /// CDW10 + `index` (0...5).
    @inlinable public func cdw(_ index: Int) -> UInt32 { u32(40 &+ index &* 4) }
    @inlinable public var timeoutMilliseconds: UInt32 { @inline(__always) get { u32(64) } }

    /// The submission entry Linux builds from this struct: opcode, flags, NSID, CDW2/3 and
    /// CDW10–15 from the caller; command identifier and pointers zero (the backend owns them).
    @inlinable
    public var submissionQueueEntry: SubmissionQueueEntry {
        SubmissionQueueEntry(opcode: opcode, flags: flags, nsid: nsid, cdw2: cdw2, cdw3: cdw3,
                             cdw10: u32(40), cdw11: u32(44), cdw12: u32(48),
                             cdw13: u32(52), cdw14: u32(56), cdw15: u32(60))
    }

    /// The result as last written (32-bit struct: DW0; 64-bit: DW1:DW0).
    @inlinable public var result: UInt64 { is64 ? u64(72) : UInt64(u32(68)) }

    /// Writes the completion's result as Linux does: DW0 into the 72-byte struct's `result`,
    /// DW1:DW0 into the 80-byte struct's.
    @inlinable @inline(__always)
    public func writeResult(_ completion: Completion) {
        if is64 {
            unsafe base.storeBytes(of: completion.result64.littleEndian, toByteOffset: 72, as: UInt64.self)
        } else {
            unsafe base.storeBytes(of: completion.dw0.littleEndian, toByteOffset: 68, as: UInt32.self)
        }
    }
}

/// A view of `struct nvme_user_io` (48 bytes on LP64), the argument of NVME_IOCTL_SUBMIT_IO.
@frozen
public struct UserIO {
    public static let size = 48
    public let base: UnsafeRawPointer
    @inlinable public init(_ base: UnsafeRawPointer) { self.base = base }

    @inlinable @inline(__always) func load<T: FixedWidthInteger>(_ o: Int, _: T.Type) -> T {
        T(littleEndian: unsafe base.loadUnaligned(fromByteOffset: o, as: T.self))
    }
    @inlinable public var opcode: UInt8 { load(0, UInt8.self) }
    @inlinable public var flags: UInt8 { load(1, UInt8.self) }
    /// CDW12 bits 31:16 (FUA, limited retry, protection information, …).
    @inlinable public var control: UInt16 { load(2, UInt16.self) }
    /// Number of logical blocks, 0's based.
    @inlinable public var nblocks: UInt16 { load(4, UInt16.self) }
    @inlinable public var metadata: UInt64 { load(8, UInt64.self) }
    @inlinable public var addr: UInt64 { load(16, UInt64.self) }
    @inlinable public var slba: UInt64 { load(24, UInt64.self) }
    /// CDW13 (dataset management hints).
    @inlinable public var dsmgmt: UInt32 { load(32, UInt32.self) }
    /// CDW14 (expected initial logical block reference tag).
    @inlinable public var reftag: UInt32 { load(36, UInt32.self) }
    @inlinable public var apptag: UInt16 { load(40, UInt16.self) }
    @inlinable public var appmask: UInt16 { load(42, UInt16.self) }

    /// The submission entry Linux's `nvme_submit_io` builds for namespace `nsid`.
    @inlinable
    public func submissionQueueEntry(nsid: UInt32) -> SubmissionQueueEntry {
        SubmissionQueueEntry(opcode: opcode, flags: flags, nsid: nsid,
                             cdw10: UInt32(truncatingIfNeeded: slba), cdw11: UInt32(truncatingIfNeeded: slba >> 32),
                             cdw12: UInt32(nblocks) | UInt32(control) << 16, cdw13: dsmgmt,
                             cdw14: reftag, cdw15: UInt32(apptag) | UInt32(appmask) << 16)
    }
}

/// Linux's NVMe ioctl request codes (asm-generic `_IOC` encoding, as on x86_64 and arm64).
@frozen
public struct IoctlRequest: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt
    @inlinable public init(rawValue: UInt) { self.rawValue = rawValue }

    // asm-generic `_IOC(dir, 'N', nr, size)` = dir << 30 | size << 16 | 'N' << 8 | nr, written
    // as literals so comparing against them costs no lazy initialisation (NVMeSpecTests
    // hold them equal to the C macros).
    public static let id = IoctlRequest(rawValue: 0x0000_4E40)
    public static let adminCommand = IoctlRequest(rawValue: 0xC048_4E41)
    public static let submitIO = IoctlRequest(rawValue: 0x4030_4E42)
    public static let ioCommand = IoctlRequest(rawValue: 0xC048_4E43)
    public static let reset = IoctlRequest(rawValue: 0x0000_4E44)
    public static let subsystemReset = IoctlRequest(rawValue: 0x0000_4E45)
    public static let rescan = IoctlRequest(rawValue: 0x0000_4E46)
    public static let admin64Command = IoctlRequest(rawValue: 0xC050_4E47)
    public static let io64Command = IoctlRequest(rawValue: 0xC050_4E48)

    /// The kernel's macro name, e.g. "NVME_IOCTL_ADMIN_CMD".
    public var name: String {
        switch self {
        case .id: "NVME_IOCTL_ID"
        case .adminCommand: "NVME_IOCTL_ADMIN_CMD"
        case .submitIO: "NVME_IOCTL_SUBMIT_IO"
        case .ioCommand: "NVME_IOCTL_IO_CMD"
        case .reset: "NVME_IOCTL_RESET"
        case .subsystemReset: "NVME_IOCTL_SUBSYS_RESET"
        case .rescan: "NVME_IOCTL_RESCAN"
        case .admin64Command: "NVME_IOCTL_ADMIN64_CMD"
        case .io64Command: "NVME_IOCTL_IO64_CMD"
        default: "ioctl 0x" + String(rawValue, radix: 16)
        }
    }
}
