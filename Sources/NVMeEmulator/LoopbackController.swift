import Atomics
import NVMeGate
import NVMeSpec

/// A controller that completes every command it supports with success and moves no user
/// data, like Linux's null_blk: the floor for measuring the gate, and the witness tests use
/// to count what reached a controller.
///
/// It answers Identify (controller, namespace, active namespace list, the command-set
/// specific and independent namespace structures) and Get Log Page for its Commands
/// Supported and Effects log, consistently with one namespace (NSID 1, 512-byte blocks).
/// Its effects log marks exactly what it accepts: the NVM I/O commands below with the
/// effects those commands have on a real namespace, and the admin commands it completes.
public final class LoopbackController: Controller, @unchecked Sendable {
    /// Admin opcodes completed: Get Log Page, Identify, Set Features, Get Features, Keep Alive.
    public static let adminOpcodes: [UInt8] = [AdminOpcode]([.getLogPage, .identify, .setFeatures, .getFeatures,
                                                            .keepAlive]).map(\.rawValue)
    /// NVM I/O opcodes completed, with their effects: Flush, Write, Read, Write Uncorrectable,
    /// Compare, Write Zeroes, Dataset Management, Verify, Copy.
    public static let ioEffects: [(UInt8, CommandEffects)] = [
        (IOOpcode.flush, .supported), (.write, changesData), (.read, .supported),
        (.writeUncorrectable, changesData), (.compare, .supported),
        (.writeZeroes, changesData), (.datasetManagement, changesData),
        (.verify, .supported), (.copy, changesData),
    ].map { ($0.rawValue, $1) }

    private static var changesData: CommandEffects { CommandEffects(supported: true, logicalBlockContentChange: true) }

    public let identity = ControllerIdentity(model: "nvmegate loopback controller", firmwareRevision: "1.0",
                                             serialNumber: "LOOPBACK0001")
    let namespace: NamespaceInfo
    let log: CommandEffectsLog
    /// Commands received per queue and opcode (admin 0–255, then I/O 256–511).
    let received: UnsafeMutablePointer<UnsafeAtomic<UInt64>.Storage>

    /// A loopback controller with one namespace of `blockCount` 512-byte blocks and the given
    /// partitions (by default one, from LBA 2048 to the end, so `nvme0n1p1` exists).
    public init(blockCount: UInt64 = 1 << 21, partitions: [LBARange]? = nil) {
        namespace = NamespaceInfo(nsid: 1, commandSet: .nvm, lbaDataSize: 512, metadataSize: 0, blockCount: blockCount,
                                  partitions: partitions ?? [LBARange(start: 2048, count: blockCount - 2048)])
        var log = CommandEffectsLog()
        for op in Self.adminOpcodes { log[.admin, op] = .supported }
        for (op, effects) in Self.ioEffects { log[.io, op] = effects }
        self.log = log
        received = .allocate(capacity: 512)
        for i in 0..<512 { (received + i).initialize(to: .init(0)) }
    }

    deinit {
        for i in 0..<512 { _ = (received + i).move() }
        received.deallocate()
    }

    /// How many commands with `opcode` on `queue` reached this controller.
    public func receivedCount(queue: Queue, opcode: UInt8) -> UInt64 {
        UnsafeAtomic<UInt64>(at: received + (queue == .admin ? 0 : 256) + Int(opcode)).load(ordering: .relaxed)
    }

    /// How many commands reached this controller in all.
    public var totalReceived: UInt64 {
        (0..<512).reduce(0) { $0 + UnsafeAtomic<UInt64>(at: received + $1).load(ordering: .relaxed) }
    }

    public func namespaces() -> [NamespaceInfo] { [namespace] }

    public func effectsLog(for commandSet: CommandSet) -> CommandEffectsLog? {
        commandSet == .nvm ? log : nil
    }

    public func submit(_ command: borrowing SubmissionEntry, queue: Queue, data: UnsafeMutableRawBufferPointer,
                       metadata: UnsafeMutableRawBufferPointer) throws(ControllerError) -> Completion {
        let opcode = command.opcode
        UnsafeAtomic<UInt64>(at: received + (queue == .admin ? 0 : 256) + Int(opcode)).wrappingIncrement(ordering: .relaxed)
        guard log[queue, opcode].isSupported else {
            return Completion(status: .invalidOpcode.withDoNotRetry)
        }
        if queue == .io {
            guard command.nsid == namespace.nsid else {
                return Completion(status: .invalidNamespaceOrFormat.withDoNotRetry)
            }
            return Completion()
        }
        switch AdminOpcode(rawValue: opcode) {
        case .identify: return identify(command, into: data)
        case .getLogPage: return logPage(command, into: data)
        case .getFeatures where FeatureID(rawValue: command.featureID) == .numberOfQueues:
            return Completion(dw0: 0x003F_003F)   // Number of Queues: 64 submission and 64 completion queues
        default: return Completion()
        }
    }

    func identify(_ command: borrowing SubmissionEntry, into data: UnsafeMutableRawBufferPointer) -> Completion {
        var page = Page(size: 4096)
        let invalidNamespace = Completion(status: .invalidNamespaceOrFormat.withDoNotRetry)
        let cns = IdentifyCNS(rawValue: command.identifyCNS)
        switch cns {
        case .namespace, .ioCommandSetSpecificNamespace, .ioCommandSetIndependentNamespace:
            guard command.nsid == namespace.nsid || command.nsid == 0xFFFF_FFFF else { return invalidNamespace }
            if cns == .namespace { IdentifyData.namespace(namespace, into: &page) }
        case .controller:
            IdentifyData.controller(identity, namespaceCount: 1, into: &page)
        case .activeNamespaceIDList:
            if command.nsid < namespace.nsid { page.u32(0, namespace.nsid) }
        case .ioCommandSetSpecificController:
            break  // NVM Command Set specific Identify Controller: no limits reported
        default:
            return Completion(status: .invalidField.withDoNotRetry)
        }
        copyOut(page.bytes, length: min(data.count, page.bytes.count), to: data)
        return Completion()
    }

    func logPage(_ command: borrowing SubmissionEntry, into data: UnsafeMutableRawBufferPointer) -> Completion {
        guard LogPageID(rawValue: command.logPageID) == .commandsSupportedAndEffects else {
            return Completion(status: .invalidLogPage.withDoNotRetry)
        }
        let page = command.logCSI == CommandSet.nvm.rawValue ? log.bytes : CommandEffectsLog().bytes
        let offset = command.logPageOffset
        guard offset < UInt64(page.count) else {
            return Completion(status: .invalidField.withDoNotRetry)
        }
        let length = Int(min(command.logTransferLength, UInt64(page.count) - offset))
        copyOut(page, offset: Int(offset), length: min(length, data.count), to: data)
        return Completion()
    }

    public func reset() throws(ControllerError) {}
    public func subsystemReset() throws(ControllerError) {}
    public func rescan() throws(ControllerError) {}
}

/// Builders for the Identify data structures the loopback controller returns.
enum IdentifyData {
    /// ONCS, from the I/O commands `LoopbackController.ioEffects` accepts: bit 0 Compare, 1 Write
    /// Uncorrectable, 2 Dataset Management, 3 Write Zeroes, 7 Verify, 8 Copy. Not bit 4 (Get
    /// Features has no Select, Set Features no Save), 5 (no reservation commands) or 6 (no
    /// Timestamp feature).
    static let oncs: UInt16 = 0x018F

    /// Identify Controller (CNS 01h): VID, SN, MN, FR, MDTS, CNTID, VER, LPA, SQES, CQES, NN, ONCS.
    static func controller(_ identity: ControllerIdentity, namespaceCount: UInt32, into page: inout Page) {
        page.u16(0, 0x1B36)                                  // VID
        page.ascii(4, width: 20, identity.serialNumber)
        page.ascii(24, width: 40, identity.model)
        page.ascii(64, width: 8, identity.firmwareRevision)
        page.u8(77, 7)                                       // MDTS: 512 KiB at 4 KiB pages
        page.u16(78, 1)                                      // CNTID
        page.u32(80, 0x0002_0000)                            // VER 2.0
        page.u8(261, 0x02)                                   // LPA bit 1: Commands Supported and Effects log
        page.u8(512, 0x66)                                   // SQES
        page.u8(513, 0x44)                                   // CQES
        page.u32(516, namespaceCount)                        // NN
        page.u16(520, oncs)                                  // ONCS: the optional I/O commands it accepts
    }

    /// Identify Namespace (CNS 00h): NSZE, NCAP, NUSE, one LBA format (LBADS from the block size).
    static func namespace(_ ns: NamespaceInfo, into page: inout Page) {
        page.u64(0, ns.blockCount)
        page.u64(8, ns.blockCount)
        page.u64(16, ns.blockCount)
        // NLBAF 0 (one format) at 25 and FLBAS 0 (format 0) at 26 stay zero.
        page.u16(128, UInt16(ns.metadataSize))               // LBAF0.MS
        page.u8(130, UInt8(ns.lbaDataSize.trailingZeroBitCount))  // LBAF0.LBADS
    }
}
