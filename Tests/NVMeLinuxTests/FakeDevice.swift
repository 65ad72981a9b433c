import Glibc
import NVMeGate
@testable import NVMeLinux
import NVMeSpec
import Synchronization

/// A device behind the `NodeChannel` protocol, answering as a controller would: Identify
/// Controller (with a chosen LPA), Identify Namespace and Namespace Identification
/// Descriptors for its namespaces, the effects log per CSI; every other command gets the
/// completion `reply` gives. Records what it was sent.
final class FakeDevice: NodeChannel {
    struct Namespace {
        var blocks: UInt64
        var lbads: UInt8 = 9
        var metadata: UInt16 = 0
        var commandSet: CommandSet = .nvm
    }

    let lpa: UInt8
    let namespaces: [UInt32: Namespace]
    let logs: [CommandSet: CommandEffectsLog]
    /// What Get Log Page for the effects log does: nil answers with `logs`, else this.
    let logOutcome: Result<NVMeStatus, ControllerError>?
    /// The completion (or errno) for commands the fake does not answer itself.
    let reply: @Sendable (SubmissionQueueEntry, Queue) -> Result<Completion, ControllerError>
    let nsid: UInt32
    private let log = Mutex<[(Queue, SubmissionQueueEntry)]>([])

    init(lpa: UInt8 = 0x02, namespaces: [UInt32: Namespace] = [1: Namespace(blocks: 0x20000)],
         logs: [CommandSet: CommandEffectsLog] = [:], logOutcome: Result<NVMeStatus, ControllerError>? = nil,
         nsid: UInt32 = 0,
         reply: @escaping @Sendable (SubmissionQueueEntry, Queue) -> Result<Completion, ControllerError> = { _, _ in .success(Completion()) }) {
        self.lpa = lpa; self.namespaces = namespaces; self.logs = logs; self.logOutcome = logOutcome
        self.nsid = nsid; self.reply = reply
    }

    /// The commands sent so far.
    var sent: [(Queue, SubmissionQueueEntry)] { log.withLock { $0 } }

    func passthru(_ command: borrowing SubmissionEntry, queue: Queue, data: UnsafeMutableRawBufferPointer,
                  metadata: UnsafeMutableRawBufferPointer) throws(ControllerError) -> Completion {
        let sqe = SubmissionQueueEntry(command)
        log.withLock { $0.append((queue, sqe)) }
        if queue == .admin && sqe.opcode == 0x06 {
            return identify(sqe, data)
        }
        if queue == .admin && sqe.opcode == 0x02 && UInt8(truncatingIfNeeded: sqe[cdw: 0]) == 0x05 {
            switch logOutcome {
            case .failure(let error): throw error
            case .success(let status): return Completion(status: status)
            case nil:
                let csi = CommandSet(rawValue: UInt8(truncatingIfNeeded: sqe[cdw: 4] >> 24))
                (logs[csi] ?? CommandEffectsLog()).write(to: data)
                return Completion()
            }
        }
        return try reply(sqe, queue).get()
    }

    func identify(_ sqe: SubmissionQueueEntry, _ data: UnsafeMutableRawBufferPointer) -> Completion {
        for i in 0..<data.count { data[i] = 0 }
        switch UInt8(truncatingIfNeeded: sqe[cdw: 0]) {
        case 0x01:
            func put(_ text: String, _ offset: Int, _ width: Int) {
                let bytes = Array(text.utf8) + Array(repeating: 0x20, count: width)
                for i in 0..<width { data[offset + i] = bytes[i] }
            }
            put("FAKE0001", 4, 20)
            put("fake NVMe controller", 24, 40)
            put("2.0", 64, 8)
            data[261] = lpa
            data.storeBytes(of: UInt32(32).littleEndian, toByteOffset: 516, as: UInt32.self)
            return Completion()
        case 0x00:
            guard let ns = namespaces[sqe.nsid] else { return Completion() }   // inactive: zeros
            data.storeBytes(of: ns.blocks.littleEndian, toByteOffset: 0, as: UInt64.self)
            data[25] = 1            // NLBAF (0's based): two formats
            data[26] = 1            // FLBAS: format 1 in use
            data.storeBytes(of: ns.metadata.littleEndian, toByteOffset: 128 + 4, as: UInt16.self)
            data[128 + 4 + 2] = ns.lbads
            return Completion()
        case 0x03:
            guard let ns = namespaces[sqe.nsid] else { return Completion(status: NVMeStatus(type: .generic, code: 0x0B, doNotRetry: true)) }
            data[0] = 4; data[1] = 1; data[4] = ns.commandSet.rawValue   // one CSI descriptor
            return Completion()
        default:
            return Completion(status: NVMeStatus(type: .generic, code: 0x02, doNotRetry: true))
        }
    }

    func namespaceID() throws(ControllerError) -> UInt32 {
        guard nsid != 0 else { throw ControllerError(errno: ENOTTY) }
        return nsid
    }

    func manage(_ request: IoctlRequest) throws(ControllerError) {
        log.withLock { $0.append((.admin, SubmissionQueueEntry(opcode: 0xFF, cdw10: UInt32(truncatingIfNeeded: request.rawValue)))) }
    }
}

/// Attaches a controller to `admin` as the node `node`, with `io` as namespace 1's I/O path.
func attach(_ admin: FakeDevice, io: Result<any NodeChannel, ControllerError>? = nil,
            node: NodeName = NodeName(kind: .controller, controller: 0),
            effectsLog: CommandEffectsLog? = nil) throws(LinuxDeviceError) -> LinuxController {
    let namespaces = admin.namespaces.keys.sorted().map { nsid in
        LinuxController.DiscoveredNamespace(nsid: nsid, channel: nsid == 1 ? (io ?? .success(admin)) : .success(admin))
    }
    return try LinuxController(path: "/dev/fake0", node: node, admin: admin, management: .success(admin),
                               namespaces: namespaces, effectsLog: effectsLog)
}

/// A log with `entries` set: (queue, opcode, effects).
func effectsLog(_ entries: [(Queue, UInt8, CommandEffects)]) -> CommandEffectsLog {
    var log = CommandEffectsLog()
    for (queue, opcode, effects) in entries { log[queue, opcode] = effects }
    return log
}
