import NVMeGate
import NVMeSpec

/// The passthrough ioctl a request goes through.
enum PassthruIoctl: String, CaseIterable, Sendable {
    case admin, io, admin64, io64

    var queue: Queue { self == .admin || self == .admin64 ? .admin : .io }

    /// Linux's name for the request.
    var requestName: String {
        switch self {
        case .admin: "NVME_IOCTL_ADMIN_CMD"
        case .io: "NVME_IOCTL_IO_CMD"
        case .admin64: "NVME_IOCTL_ADMIN64_CMD"
        case .io64: "NVME_IOCTL_IO64_CMD"
        }
    }
}

/// One passthrough request as `policy check` and `policy explain` describe it: the ioctl,
/// the handle it goes through (node, open mode, the caller's capabilities), the caller, the
/// command, and the buffer lengths the caller gives.
struct PassthruRequest {
    var ioctl: PassthruIoctl
    var handle: HandleContext
    var caller: Caller
    var command: SubmissionQueueEntry
    /// The data buffer's length; nil when not given (no transfer check).
    var dataLength: UInt32?
    var metadataLength: UInt32
}

/// What the gate answers to a request.
struct PassthruVerdict {
    var reason: Reason
    /// The handle the command was decided with: for NVME_IOCTL_IO_CMD on a controller node,
    /// its only namespace.
    var handle: HandleContext
}

/// Decides requests as the gate's ioctl front end does, without a controller: the checks
/// Linux makes on the node and request, the compiled policy's decision for the caller's
/// tenant, then the check that the buffer holds what the command transfers. Compiled once,
/// cheap per request.
///
/// Without a data buffer, Dataset Management and Copy of a caller confined to some blocks
/// (a tenant's LBA range, a confined partition) get what the decision gives them,
/// `range-list-unchecked` (EACCES): the ioctl would check a copy of their ranges instead.
/// A partition handle whose blocks are not known (no `--partition`, no `handle.partition`)
/// is refused as Linux refuses it, unless the policy lets partitions reach the whole namespace.
struct PassthruSimulator {
    let compiled: CompiledPolicy
    /// How many namespaces the imagined controller has (NSIDs 1...count).
    let namespaceCount: Int
    /// The namespace's LBA data size, for LBA-addressed transfer lengths.
    let lbaDataSize: UInt32
    /// The blocks a partition handle covers when the request does not say.
    let partition: LBARange?
    let bypassCapabilityNames: [String]

    init(compiled: CompiledPolicy, device: DeviceModel) {
        self.compiled = compiled
        namespaceCount = device.namespaces
        lbaDataSize = device.lbaSize
        partition = device.partition?.range
        bypassCapabilityNames = compiled.policy.bypassCapabilities.nameList
    }

    /// The rules a handle's tenant is decided by.
    func rules(_ handle: HandleContext) -> Rules {
        compiled.tenant(at: handle.tenant)?.rules ?? compiled.policy.defaultRules
    }

    func decide(_ request: PassthruRequest) -> PassthruVerdict {
        var handle = request.handle
        (handle.profile, handle.tenant) = compiled.assignment(for: request.caller)
        if handle.kind == .partition && handle.partition.count == 0, let partition { handle.partition = partition }
        let queue = request.ioctl.queue
        if queue == .io && handle.kind == .controller {
            // Linux: IO64 is not defined on a controller node; IO_CMD goes to the only namespace.
            if request.ioctl == .io64 { return PassthruVerdict(reason: .notForThisNode, handle: handle) }
            if namespaceCount == 0 { return PassthruVerdict(reason: .noNamespace, handle: handle) }
            if namespaceCount > 1 { return PassthruVerdict(reason: .multipleNamespaces, handle: handle) }
            handle.kind = .namespace
            handle.nsid = 1
        }
        let unknownPartition = queue == .io && handle.kind == .partition && handle.partition.count == 0
            && rules(handle).partitions == .confined
        let reason = request.command.withEntry { entry -> Reason in
            var decision = compiled.decide(entry, queue: queue, handle: handle)
            if unknownPartition && (decision == .allowed || decision == .allowedAndAudited) {
                decision = handle.capabilities.isDisjoint(with: compiled.policy.bypassCapabilities) ? .partition : .privilegedBypass
            }
            guard decision.isAllowed else { return decision }
            if let dataLength = request.dataLength {
                let needed = TransferLength.of(entry, queue: queue, commandSet: handle.commandSet,
                                               lbaDataSize: lbaDataSize, metadataSize: 0)
                if let data = needed.data, UInt64(dataLength) < data { return .bufferTooShort }
            }
            if queue == .io && request.metadataLength > 0 { return .metadataNotSupported }
            return decision
        }
        return PassthruVerdict(reason: reason, handle: handle)
    }

    /// What the verdict's sentence is about.
    func subject(_ request: PassthruRequest, _ verdict: PassthruVerdict) -> DecisionSubject {
        let queue = request.ioctl.queue
        let opcode = request.command.opcode
        let commandSet = verdict.handle.commandSet
        var subject = DecisionSubject(
            command: OpcodeTable.displayName(queue: queue, commandSet: commandSet, opcode: opcode),
            queue: queue, opcode: opcode,
            effects: compiled.effects(queue: queue, commandSet: commandSet, opcode: opcode),
            field: filteredField(request.command, queue: queue),
            nsid: request.command.nsid, handleNSID: verdict.handle.nsid,
            capabilityNames: bypassCapabilityNames,
            permittedEffects: rules(verdict.handle).permittedEffects)
        subject.tenant = compiled.tenant(at: verdict.handle.tenant)?.name
        return subject
    }
}

/// The CDW10 field an admin command's filter looks at, described, or nil.
func filteredField(_ command: SubmissionQueueEntry, queue: Queue) -> String? {
    DecisionSubject.filteredField(queue: queue, opcode: command.opcode, cdw10: command[cdw: 0])
}
