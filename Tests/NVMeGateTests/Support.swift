#if canImport(Glibc)
import Glibc
#endif
import NVMeEmulator
import NVMeGate
import NVMeSpec
import Synchronization

/// A controller whose effects log, namespaces and completion a test chooses — including a
/// controller that lies — and which records every command that reached it.
final class ScriptedController: Controller, @unchecked Sendable {
    let identity = ControllerIdentity(model: "scripted", firmwareRevision: "1", serialNumber: "S1")
    let log: CommandEffectsLog?
    /// The logs of command sets other than NVM (Key Value, Zoned, …).
    let otherLogs: [CommandSet: CommandEffectsLog]
    let namespaceList: [NamespaceInfo]
    let completion: Completion
    let reached = Mutex<[(queue: Queue, opcode: UInt8, dataCount: Int, metadataCount: Int)]>([])

    init(log: CommandEffectsLog?, otherLogs: [CommandSet: CommandEffectsLog] = [:],
         namespaces: [NamespaceInfo] = [ScriptedController.namespace1], completion: Completion = Completion()) {
        self.log = log; self.otherLogs = otherLogs; self.namespaceList = namespaces; self.completion = completion
    }

    static let namespace1 = NamespaceInfo(nsid: 1, blockCount: 1 << 20, partitions: [LBARange(start: 2048, count: 4096)])

    /// An effects log like QEMU 7.2's: Read, Compare, Verify CSUPP; Flush, Write, Write Zeroes,
    /// DSM, Copy CSUPP + LBCC; Identify, Get Log Page, features, Format NVM in the admin half.
    static func qemuLikeLog() -> CommandEffectsLog {
        var log = CommandEffectsLog()
        let supported = CommandEffects.supported
        let changes = CommandEffects(supported: true, logicalBlockContentChange: true)
        for op: UInt8 in [0x02, 0x05, 0x0C] { log[.io, op] = supported }
        for op: UInt8 in [0x00, 0x01, 0x08, 0x09, 0x19] { log[.io, op] = changes }
        for op: UInt8 in [0x02, 0x06, 0x09, 0x0A] { log[.admin, op] = supported }
        log[.admin, 0x80] = CommandEffects(supported: true, logicalBlockContentChange: true, namespaceCapabilityChange: true,
                                           submissionAndExecution: 1)
        return log
    }

    var count: Int { reached.withLock { $0.count } }

    func namespaces() -> [NamespaceInfo] { namespaceList }
    func effectsLog(for commandSet: CommandSet) -> CommandEffectsLog? { commandSet == .nvm ? log : otherLogs[commandSet] }
    func submit(_ command: borrowing SubmissionEntry, queue: Queue, data: UnsafeMutableRawBufferPointer,
                metadata: UnsafeMutableRawBufferPointer) throws(ControllerError) -> Completion {
        let opcode = command.opcode
        reached.withLock { $0.append((queue, opcode, data.count, metadata.count)) }
        return completion
    }
    func reset() throws(ControllerError) {}
    func subsystemReset() throws(ControllerError) {}
    func rescan() throws(ControllerError) {}
}

/// A `struct nvme_passthru_cmd` (72 bytes) or `nvme_passthru_cmd64` (80 bytes) laid out
/// byte by byte at linux/nvme_ioctl.h's offsets, with 16 guard bytes after it, plus a data
/// buffer. NVMeSpecTests prove these offsets against the C headers.
final class PassthruBuffer {
    let is64: Bool
    let raw: UnsafeMutableRawPointer
    let data: UnsafeMutableRawBufferPointer
    static let guardByte: UInt8 = 0xA5

    init(is64: Bool = false, opcode: UInt8, flags: UInt8 = 0, nsid: UInt32 = 0, cdw10: UInt32 = 0, cdw11: UInt32 = 0,
         cdw12: UInt32 = 0, cdw13: UInt32 = 0, cdw14: UInt32 = 0, cdw15: UInt32 = 0,
         dataLength: Int = 0, metadataLength: UInt32 = 0, nullData: Bool = false) {
        self.is64 = is64
        raw = .allocate(byteCount: 96, alignment: 8)
        raw.initializeMemory(as: UInt8.self, repeating: 0, count: 96)
        let size = is64 ? 80 : 72
        for i in size..<96 { raw.storeBytes(of: Self.guardByte, toByteOffset: i, as: UInt8.self) }
        data = .allocate(byteCount: max(dataLength, 1), alignment: 4096)
        data.initializeMemory(as: UInt8.self, repeating: 0)
        raw.storeBytes(of: opcode, toByteOffset: 0, as: UInt8.self)
        raw.storeBytes(of: flags, toByteOffset: 1, as: UInt8.self)
        raw.storeBytes(of: nsid.littleEndian, toByteOffset: 4, as: UInt32.self)
        let address = nullData ? 0 : UInt64(UInt(bitPattern: data.baseAddress))
        raw.storeBytes(of: address.littleEndian, toByteOffset: 24, as: UInt64.self)
        raw.storeBytes(of: metadataLength.littleEndian, toByteOffset: 32, as: UInt32.self)
        raw.storeBytes(of: UInt32(dataLength).littleEndian, toByteOffset: 36, as: UInt32.self)
        for (i, v) in [cdw10, cdw11, cdw12, cdw13, cdw14, cdw15].enumerated() {
            raw.storeBytes(of: v.littleEndian, toByteOffset: 40 + 4 * i, as: UInt32.self)
        }
    }

    deinit {
        raw.deallocate()
        data.deallocate()
    }

    var result32: UInt32 { UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 68, as: UInt32.self)) }
    var result64: UInt64 { UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 72, as: UInt64.self)) }
    var guardsIntact: Bool { ((is64 ? 80 : 72)..<96).allSatisfy { raw.load(fromByteOffset: $0, as: UInt8.self) == Self.guardByte } }
}

/// Gate + a handle, with ioctl helpers returning Linux's convention (value or -errno).
struct Harness {
    let gate: Gate
    init(_ controller: any Controller, policy: Policy = .kernel) { gate = Gate(controller: controller, policy: policy) }
    init(gate: Gate) { self.gate = gate }

    func open(_ node: String, write: Bool = false, caps: Capabilities = [], uid: UInt32 = 1000) -> Int32 {
        gate.open(node: node, writable: write, caller: Caller(uid: uid, gid: uid, capabilities: caps))
    }

    /// ioctl as an int: the value, or -errno.
    func ioctl(_ handle: Int32, _ request: IoctlRequest, _ argument: UnsafeMutableRawPointer?) -> Int32 {
        switch gate.ioctl(handle, request: request.rawValue, argument: argument) {
        case .returned(let v): v
        case .failed(let e): -e
        }
    }

    func admin(_ handle: Int32, _ p: PassthruBuffer) -> Int32 {
        ioctl(handle, p.is64 ? .admin64Command : .adminCommand, p.raw)
    }
    func io(_ handle: Int32, _ p: PassthruBuffer) -> Int32 {
        ioctl(handle, p.is64 ? .io64Command : .ioCommand, p.raw)
    }
}

let root: Capabilities = .sysAdmin
