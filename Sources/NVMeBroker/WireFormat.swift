import NVMeSpec

// The broker's wire format, version 1 (WireFormat.md beside this file is the contract):
// frames of a 16-byte header and a body, little-endian, read in place with bounds-checked
// unaligned loads. Nothing here trusts a length it has not checked against the bytes.

/// The version of the wire format this broker speaks.
public let brokerWireVersion: UInt16 = 1

/// What a frame asks for; a reply carries its request's type.
public enum FrameType: UInt16, Sendable, CaseIterable {
    case hello = 1
    case open = 2
    case close = 3
    case ioctl = 4
    case checkBatch = 5
    case metrics = 6

    /// The name WireFormat.md gives the type, lowercased (a metrics label).
    public var name: String {
        switch self {
        case .hello: "hello"
        case .open: "open"
        case .close: "close"
        case .ioctl: "ioctl"
        case .checkBatch: "check_batch"
        case .metrics: "metrics"
        }
    }
}

/// A reply's `error` field: what was wrong with the frame itself (not the call it carried).
public enum WireError: UInt32, Error, Sendable, CaseIterable {
    /// The frame's version is not 1, or HELLO's range excludes it: the connection is closed.
    case unsupportedVersion = 1
    /// No such request type: the connection stays open.
    case unknownType = 2
    /// A body shorter or longer than its fields say, a length not allowed for the request,
    /// a name out of bounds: the connection stays open.
    case malformed = 3
    /// A frame length under 16 or over `max_frame`, or a data or metadata length over
    /// `max_transfer`: the connection is closed (the stream cannot be trusted after it).
    case tooLarge = 4
    /// Sent as the only frame (type 0, tag 0) to a connection over a connection limit.
    case busy = 5

    /// The name WireFormat.md gives it.
    public var name: String {
        switch self {
        case .unsupportedVersion: "unsupported-version"
        case .unknownType: "unknown-type"
        case .malformed: "malformed"
        case .tooLarge: "too-large"
        case .busy: "busy"
        }
    }

    /// Whether the broker closes the connection after replying with this error.
    public var closesConnection: Bool { self != .unknownType && self != .malformed }
}

/// A frame's 16-byte header.
public struct FrameHeader: Sendable, Hashable {
    public static let size = 16
    /// The whole frame, header included.
    public var length: UInt32
    public var version: UInt16
    public var type: UInt16
    public var tag: UInt32
    public var error: UInt32

    public init(length: UInt32, version: UInt16 = brokerWireVersion, type: UInt16, tag: UInt32, error: UInt32 = 0) {
        self.length = length; self.version = version; self.type = type; self.tag = tag; self.error = error
    }

    /// The header at the start of `bytes`, nil when there are fewer than 16.
    public init?(_ bytes: UnsafeRawBufferPointer) {
        let r = WireReader(bytes)
        guard let length = r.u32(0), let version = r.u16(4), let type = r.u16(6), let tag = r.u32(8),
              let error = r.u32(12) else { return nil }
        self.init(length: length, version: version, type: type, tag: tag, error: error)
    }

    /// Writes the header at `offset` of `buffer`, which must have room for it.
    public func write(to buffer: UnsafeMutableRawBufferPointer, at offset: Int = 0) {
        var w = WireWriter(buffer, at: offset)
        w.u32(length); w.u16(version); w.u16(type); w.u32(tag); w.u32(error)
    }
}

/// Little-endian fields of received bytes, read in place (unaligned loads, no copy). Every
/// read is checked against the bytes' end and gives nil beyond it.
public struct WireReader {
    public let bytes: UnsafeRawBufferPointer
    public init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    @inline(__always)
    func load<T: FixedWidthInteger>(_ offset: Int, _: T.Type) -> T? {
        guard offset >= 0, offset <= bytes.count &- MemoryLayout<T>.size else { return nil }
        return T(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
    }
    public func u16(_ offset: Int) -> UInt16? { load(offset, UInt16.self) }
    public func u32(_ offset: Int) -> UInt32? { load(offset, UInt32.self) }
    public func i32(_ offset: Int) -> Int32? { load(offset, Int32.self) }
    public func u64(_ offset: Int) -> UInt64? { load(offset, UInt64.self) }
}

/// Writes little-endian fields one after another into a buffer the caller sized.
public struct WireWriter {
    public let buffer: UnsafeMutableRawBufferPointer
    public private(set) var offset: Int

    public init(_ buffer: UnsafeMutableRawBufferPointer, at offset: Int = 0) { self.buffer = buffer; self.offset = offset }

    @inline(__always)
    mutating func store<T: FixedWidthInteger>(_ value: T) {
        buffer.storeBytes(of: value.littleEndian, toByteOffset: offset, as: T.self)
        offset += MemoryLayout<T>.size
    }
    public mutating func u16(_ value: UInt16) { store(value) }
    public mutating func u32(_ value: UInt32) { store(value) }
    public mutating func i32(_ value: Int32) { store(value) }
    public mutating func u64(_ value: UInt64) { store(value) }
    public mutating func bytes(_ source: UnsafeRawBufferPointer) {
        guard source.count > 0 else { return }
        UnsafeMutableRawBufferPointer(rebasing: buffer[offset..<offset + source.count]).copyMemory(from: source)
        offset += source.count
    }
}

/// The body of an IOCTL request, its parts pointing into the received frame.
public struct IoctlFrame {
    /// The fixed part before the struct: handle, reserved, request, three lengths, reserved.
    public static let fixedSize = 32
    public var handle: Int32
    /// The ioctl request code (`NVME_IOCTL_ADMIN_CMD`, …).
    public var request: UInt64
    /// The argument struct as sent (0, 48, 72 or 80 bytes).
    public var argument: UnsafeRawBufferPointer
    /// Data bytes sent (those of a command whose opcode has bit 0 set; none otherwise).
    public var data: UnsafeRawBufferPointer
    public var metadata: UnsafeRawBufferPointer
}

/// The body of a CHECK_BATCH request.
public struct CheckBatchFrame {
    public static let fixedSize = 16
    public var handle: Int32
    /// 0 admin, 1 I/O; anything else is the call's EINVAL, not a wire error.
    public var queue: UInt32
    /// `count` 64-byte submission entries, in the received frame.
    public var entries: UnsafeRawBufferPointer
    public var count: Int
}

/// A request frame's body, decoded: what the broker is asked to do.
public enum WireRequest {
    case hello(minVersion: UInt16, maxVersion: UInt16)
    case open(oflags: UInt32, name: String)
    case close(handle: Int32)
    case ioctl(IoctlFrame)
    case checkBatch(CheckBatchFrame)
    case metrics

    /// The struct length each ioctl request takes (`arg_length`), nil for a request code
    /// Linux's NVMe driver does not know (the call then fails with ENOTTY).
    public static func argumentLength(of request: IoctlRequest) -> Int? {
        switch request {
        case .id, .reset, .subsystemReset, .rescan: 0
        case .submitIO: UserIO.size
        case .adminCommand, .ioCommand: PassthruCommand.size32
        case .admin64Command, .io64Command: PassthruCommand.size64
        default: nil
        }
    }

    /// Decodes the body of a request of `type`. `maxTransfer` bounds an IOCTL's data and
    /// metadata lengths. Fails with the wire error the reply carries.
    public static func decode(type: UInt16, body: UnsafeRawBufferPointer, maxTransfer: Int) -> Result<WireRequest, WireError> {
        guard let kind = FrameType(rawValue: type) else { return .failure(.unknownType) }
        let r = WireReader(body)
        switch kind {
        case .hello:
            guard body.count == 4, let low = r.u16(0), let high = r.u16(2) else { return .failure(.malformed) }
            return .success(.hello(minVersion: low, maxVersion: high))
        case .open:
            guard let oflags = r.u32(0), let length = r.u32(4), (1...255).contains(length),
                  body.count == 8 + Int(length) else { return .failure(.malformed) }
            let name = String(decoding: UnsafeRawBufferPointer(rebasing: body[8...]), as: UTF8.self)
            return .success(.open(oflags: oflags, name: name))
        case .close:
            guard body.count == 4, let handle = r.i32(0) else { return .failure(.malformed) }
            return .success(.close(handle: handle))
        case .ioctl:
            return decodeIoctl(r, maxTransfer: maxTransfer)
        case .checkBatch:
            guard let handle = r.i32(0), let queue = r.u32(4), let count = r.u32(8), r.u32(12) != nil else {
                return .failure(.malformed)
            }
            // A u32 count times 64 cannot overflow Int on a 64-bit host.
            guard body.count == CheckBatchFrame.fixedSize + Int(count) * SubmissionEntry.size else { return .failure(.malformed) }
            return .success(.checkBatch(CheckBatchFrame(
                handle: handle, queue: queue, entries: UnsafeRawBufferPointer(rebasing: body[CheckBatchFrame.fixedSize...]),
                count: Int(count))))
        case .metrics:
            guard body.isEmpty else { return .failure(.malformed) }
            return .success(.metrics)
        }
    }

    static func decodeIoctl(_ r: WireReader, maxTransfer: Int) -> Result<WireRequest, WireError> {
        guard let handle = r.i32(0), let request = r.u64(8), let argLength = r.u32(16), let dataLength = r.u32(20),
              let metadataLength = r.u32(24), r.u32(28) != nil else { return .failure(.malformed) }
        guard Int(dataLength) <= maxTransfer, Int(metadataLength) <= maxTransfer else { return .failure(.tooLarge) }
        if let expected = argumentLength(of: IoctlRequest(rawValue: UInt(truncatingIfNeeded: request))) {
            guard Int(argLength) == expected else { return .failure(.malformed) }
        } else {
            guard argLength <= UInt32(PassthruCommand.size64) else { return .failure(.malformed) }
        }
        let body = r.bytes
        let argStart = IoctlFrame.fixedSize, dataStart = argStart + Int(argLength)
        let metadataStart = dataStart + Int(dataLength), end = metadataStart + Int(metadataLength)
        guard end == body.count else { return .failure(.malformed) }
        return .success(.ioctl(IoctlFrame(
            handle: handle, request: request,
            argument: UnsafeRawBufferPointer(rebasing: body[argStart..<dataStart]),
            data: UnsafeRawBufferPointer(rebasing: body[dataStart..<metadataStart]),
            metadata: UnsafeRawBufferPointer(rebasing: body[metadataStart..<end]))))
    }
}
