#if canImport(Glibc)
import Glibc
#endif
import NVMeGate
import NVMeSpec

/// Where the pointers and lengths of an ioctl's argument struct are, and what they are.
struct ArgumentBuffers {
    /// Offsets of the `addr` and `metadata` pointer fields in the struct; nil for requests
    /// that move no data.
    var dataPointerOffset: Int?
    var metadataPointerOffset: Int?
    /// The pointers as sent, and the buffer lengths the struct gives.
    var dataPointer: UInt64 = 0
    var metadataPointer: UInt64 = 0
    var dataLength = 0
    var metadataLength = 0
    /// The opcode: bit 0 set (host to controller) means the client sends the buffers and
    /// gets none back.
    var opcode: UInt8 = 0
    /// Where the result is written back: 68 (32-bit) or 72 (64-bit), nil when there is none.
    var resultOffset: Int?

    /// The bytes the broker allocates for each buffer: the length when the pointer is
    /// non-zero; nothing for a zero pointer (the gate then answers EFAULT, as it would locally).
    var dataBytes: Int { dataPointer != 0 ? dataLength : 0 }
    var metadataBytes: Int { metadataPointer != 0 ? metadataLength : 0 }

    /// Reads `argument` (its length already checked against `request`). SUBMIT_IO's buffer
    /// lengths come from the handle's format: (nblocks + 1) × the LBA data (and metadata) size.
    init(request: IoctlRequest, argument: UnsafeRawBufferPointer, handle: HandleState?) {
        let arg = WireReader(argument)
        switch request {
        case .adminCommand, .ioCommand, .admin64Command, .io64Command:
            opcode = argument.first ?? 0
            metadataPointerOffset = 16; dataPointerOffset = 24
            metadataPointer = arg.u64(16) ?? 0; dataPointer = arg.u64(24) ?? 0
            metadataLength = Int(arg.u32(32) ?? 0); dataLength = Int(arg.u32(36) ?? 0)
            resultOffset = argument.count == PassthruCommand.size64 ? 72 : 68
        case .submitIO:
            opcode = argument.first ?? 0
            metadataPointerOffset = 8; dataPointerOffset = 16
            metadataPointer = arg.u64(8) ?? 0; dataPointer = arg.u64(16) ?? 0
            let blocks = Int(arg.u16(4) ?? 0) + 1
            dataLength = blocks * Int(handle?.lbaDataSize ?? 0)
            metadataLength = metadataPointer == 0 ? 0 : blocks * Int(handle?.metadataSize ?? 0)
        default:
            break
        }
    }
}

extension Connection {
    /// IOCTL: the struct copied, its non-zero pointers pointed at zeroed buffers of the
    /// lengths it gives (the sent bytes at their start), run through the gate as
    /// `nvmegate_ioctl` would; the reply carries the return, the result and, for a command
    /// executed whose opcode has bit 0 clear, the buffers. Nothing the client sent is ever
    /// used as an address.
    func ioctl(_ header: FrameHeader, _ frame: IoctlFrame) -> Bool {
        let started = ContinuousClock.now
        let counters = commandCounters()
        guard let slot = slot(of: frame.handle) else {
            counters.failed.increment()
            return reply(to: header, bodyLength: 24) { w in w.i32(-1); w.i32(EBADF); w.u64(0); w.u32(0); w.u32(0) }
        }
        let gate = broker.gate, handle = handles[slot]
        let request = IoctlRequest(rawValue: UInt(truncatingIfNeeded: frame.request))
        let buffers = ArgumentBuffers(request: request, argument: frame.argument, handle: gate.handleState(handle))
        guard buffers.dataLength <= broker.maxTransfer, buffers.metadataLength <= broker.maxTransfer else {
            // Beyond what the controller transfers in one command (MDTS): as Linux, EINVAL.
            counters.failed.increment()
            return reply(to: header, bodyLength: 24) { w in w.i32(-1); w.i32(EINVAL); w.u64(0); w.u32(0); w.u32(0) }
        }
        guard frame.data.count <= buffers.dataLength, frame.metadata.count <= buffers.metadataLength else {
            refuse(header, .malformed)
            return true
        }
        // [reply prefix | page boundary: data | metadata]: the data page-aligned, and the
        // reply sent from the same memory without a copy.
        let page = Self.page, dataBytes = buffers.dataBytes, metadataBytes = buffers.metadataBytes
        let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: page + dataBytes + metadataBytes, alignment: page)
        defer { memory.deallocate() }
        let data = UnsafeMutableRawBufferPointer(rebasing: memory[page..<page + dataBytes])
        let metadata = UnsafeMutableRawBufferPointer(rebasing: memory[page + dataBytes..<memory.count])
        data.initializeMemory(as: UInt8.self, repeating: 0)
        metadata.initializeMemory(as: UInt8.self, repeating: 0)
        if dataBytes > 0 { data.copyMemory(from: frame.data) }
        if metadataBytes > 0 { metadata.copyMemory(from: frame.metadata) }

        let (outcome, result) = withUnsafeTemporaryAllocation(byteCount: PassthruCommand.size64, alignment: 8) { arg in
            arg.initializeMemory(as: UInt8.self, repeating: 0)
            arg.copyMemory(from: frame.argument)
            func point(_ offset: Int?, _ sent: UInt64, at buffer: UnsafeMutableRawBufferPointer) {
                guard let offset, sent != 0, let base = buffer.baseAddress else { return }
                arg.storeBytes(of: UInt64(UInt(bitPattern: base)).littleEndian, toByteOffset: offset, as: UInt64.self)
            }
            point(buffers.dataPointerOffset, buffers.dataPointer, at: data)
            point(buffers.metadataPointerOffset, buffers.metadataPointer, at: metadata)
            let outcome = gate.ioctl(handle, request: request.rawValue, argument: frame.argument.isEmpty ? nil : arg.baseAddress)
            let reader = WireReader(UnsafeRawBufferPointer(arg))
            let result: UInt64 = switch buffers.resultOffset {
            case 72: reader.u64(72) ?? 0
            case 68: UInt64(reader.u32(68) ?? 0)
            default: 0
            }
            return (outcome, result)
        }

        let ret: Int32, code: Int32
        switch outcome {
        case .returned(let value): ret = value; code = 0; counters.executed.increment()
        case .failed(let e): ret = -1; code = e; (e == EACCES ? counters.refused : counters.failed).increment()
        }
        let returnsBuffers = ret >= 0 && buffers.opcode & 1 == 0
        let returned = returnsBuffers ? dataBytes + metadataBytes : 0
        let prefix = Self.ioctlReplyPrefix
        let replyBytes = UnsafeMutableRawBufferPointer(rebasing: memory[page - prefix..<page + returned])
        FrameHeader(length: UInt32(prefix + returned), type: header.type, tag: header.tag).write(to: replyBytes)
        var w = WireWriter(replyBytes, at: FrameHeader.size)
        w.i32(ret); w.i32(code); w.u64(ret >= 0 ? result : 0)
        w.u32(UInt32(returnsBuffers ? dataBytes : 0)); w.u32(UInt32(returnsBuffers ? metadataBytes : 0))
        broker.metrics.duration.record(ContinuousClock.now - started)
        return send(UnsafeRawBufferPointer(replyBytes))
    }
}
