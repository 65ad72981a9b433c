#if canImport(Glibc)
import Glibc
#endif
import NVMeSpec

/// Why a command was allowed or refused: a stable code (kebab-case, for logs, audit and
/// `policy check` output), the errno the ioctl returns, and a sentence built on demand.
///
/// The decision path returns only this one byte; sentences are built off the hot path.
@frozen
public enum Reason: UInt8, Sendable, Hashable, CaseIterable {
    // Allowed.
    case allowed
    /// Allowed, and audited because the policy asks for commands of this class.
    case allowedAndAudited
    case privilegedBypass

    // Envelope checks, before any policy (Linux's own order): EINVAL, ENOTTY, EFAULT, EBADF.
    case flagsNotZero
    case nsidMismatch
    case noNamespace
    case multipleNamespaces
    case submitIOOpcode
    case unknownRequest
    case notForThisNode
    case badHandle
    case badAddress
    case bufferTooShort
    case metadataNotSupported
    case namespaceGone

    // Policy refusals: EACCES.
    case partition
    case fabrics
    case vendorSpecific
    case adminCommandNotAllowed
    case identifyCNSNotAllowed
    case logPageNotAllowed
    case featureNotAllowed
    case ioCommandNotAllowed
    case notSupported
    case intrusiveEffects
    case needsWriteOpen
    case managementNeedsCapability
    case logPageNeedsRetain
    case logPageLSPNotAllowed
    case namespaceNotOwned
    case namespaceReadOnly
    case lbaRangeNotOwned
    case needsWholeNamespace
    case broadcastNotOwned
    case rangeListUnchecked

    /// The stable code printed and logged for this reason.
    public var code: String {
        switch self {
        case .allowed: "allowed"
        case .allowedAndAudited: "allowed-audited"
        case .privilegedBypass: "privileged-bypass"
        case .flagsNotZero: "flags-not-zero"
        case .nsidMismatch: "nsid-mismatch"
        case .noNamespace: "no-namespace"
        case .multipleNamespaces: "multiple-namespaces"
        case .submitIOOpcode: "submit-io-opcode"
        case .unknownRequest: "unknown-request"
        case .notForThisNode: "not-for-this-node"
        case .badHandle: "bad-handle"
        case .badAddress: "bad-address"
        case .bufferTooShort: "buffer-too-short"
        case .metadataNotSupported: "metadata-not-supported"
        case .namespaceGone: "namespace-gone"
        case .partition: "partition"
        case .fabrics: "fabrics"
        case .vendorSpecific: "vendor-specific"
        case .adminCommandNotAllowed: "admin-command-not-allowed"
        case .identifyCNSNotAllowed: "identify-cns-not-allowed"
        case .logPageNotAllowed: "log-page-not-allowed"
        case .featureNotAllowed: "feature-not-allowed"
        case .ioCommandNotAllowed: "io-command-not-allowed"
        case .notSupported: "not-supported"
        case .intrusiveEffects: "intrusive-effects"
        case .needsWriteOpen: "needs-write-open"
        case .managementNeedsCapability: "management-needs-capability"
        case .logPageNeedsRetain: "log-page-needs-retain"
        case .logPageLSPNotAllowed: "log-page-lsp-not-allowed"
        case .namespaceNotOwned: "namespace-not-owned"
        case .namespaceReadOnly: "namespace-read-only"
        case .lbaRangeNotOwned: "lba-range-not-owned"
        case .needsWholeNamespace: "needs-whole-namespace"
        case .broadcastNotOwned: "broadcast-not-owned"
        case .rangeListUnchecked: "range-list-unchecked"
        }
    }

    /// The errno an ioctl returns for this reason (0 when the command is allowed).
    @inlinable public var errno: Int32 {
        switch self {
        case .allowed, .allowedAndAudited, .privilegedBypass: 0
        case .flagsNotZero, .nsidMismatch, .multipleNamespaces, .submitIOOpcode, .bufferTooShort,
             .metadataNotSupported: EINVAL
        case .noNamespace, .unknownRequest, .notForThisNode: ENOTTY
        case .badHandle: EBADF
        case .namespaceGone: ENODEV
        case .badAddress: EFAULT
        default: EACCES
        }
    }

    /// True when the command may reach the controller.
    @inlinable public var isAllowed: Bool { rawValue <= Reason.privilegedBypass.rawValue }
    /// True for refusals made by a policy rule (EACCES), as opposed to envelope checks.
    @inlinable public var isPolicyRefusal: Bool { rawValue >= Reason.partition.rawValue }

    /// The reason for `code`, or nil.
    public init?(code: String) {
        guard let r = Reason.allCases.first(where: { $0.code == code }) else { return nil }
        self = r
    }
}

/// What a decision was about, for the sentence that explains it.
public struct DecisionSubject: Sendable {
    /// "Write (01h)", "Identify (06h)": the command's spec name.
    public var command: String
    public var queue: Queue
    public var opcode: UInt8
    /// The effects the decision consulted (after known effects, overrides and CSE handling).
    public var effects: CommandEffects
    /// The field a filter looked at, described ("CNS 02h (Active Namespace ID list)").
    public var field: String?
    public var nsid: UInt32
    public var handleNSID: UInt32
    public var capabilityNames: [String]
    /// The effects (beyond CSUPP) the deciding rules permit, to name the ones that refused.
    public var permittedEffects: PermittedEffects
    /// The caller's tenant, for ownership sentences (nil: the default rules).
    public var tenant: String?

    /// "tenant \"db\"", or "the caller" without a tenant (or through a partition).
    var owner: String { tenant.map { "tenant \"\($0)\"" } ?? "the caller" }

    public init(command: String, queue: Queue, opcode: UInt8, effects: CommandEffects, field: String? = nil,
                nsid: UInt32 = 0, handleNSID: UInt32 = 0, capabilityNames: [String] = ["CAP_SYS_ADMIN"],
                permittedEffects: PermittedEffects = Policy.kernel.defaultRules.permittedEffects) {
        self.command = command; self.queue = queue; self.opcode = opcode; self.effects = effects
        self.field = field; self.nsid = nsid; self.handleNSID = handleNSID; self.capabilityNames = capabilityNames
        self.permittedEffects = permittedEffects
    }
}

extension DecisionSubject {
    /// The CDW10 field an admin command's filter looks at, described: "CNS 02h" for
    /// Identify, "LID 05h" for Get Log Page, "FID 07h" for Get Features; nil otherwise.
    public static func filteredField(queue: Queue, opcode: UInt8, cdw10: UInt32) -> String? {
        guard queue == .admin else { return nil }
        let value = UInt8(truncatingIfNeeded: cdw10)
        switch opcode {
        case 0x06: return "CNS " + hexByte(value)
        case 0x02: return "LID " + hexByte(value)
        case 0x0A: return "FID " + hexByte(value)
        default: return nil
        }
    }
}

extension Reason {
    /// One sentence naming the command and the rule, e.g. "Write (01h) needs a handle
    /// opened for writing: it transfers data to the controller".
    public func sentence(_ s: DecisionSubject) -> String {
        let caps = s.capabilityNames.joined(separator: " or ")
        switch self {
        case .allowed:
            return "\(s.command) is allowed by the policy"
        case .allowedAndAudited:
            return "\(s.command) is allowed by the policy, which audits commands of its class"
        case .privilegedBypass:
            return "\(s.command) is allowed because the caller holds \(caps), which bypasses the policy's rules"
        case .flagsNotZero:
            return "\(s.command) has non-zero flags (FUSE/PSDT); Linux refuses passthrough flags with EINVAL"
        case .nsidMismatch:
            return "\(s.command) names NSID \(s.nsid) but the handle is namespace \(s.handleNSID); an I/O command must address the handle's namespace"
        case .noNamespace:
            return "\(s.command) was sent with NVME_IOCTL_IO_CMD on a controller node that has no namespace"
        case .multipleNamespaces:
            return "\(s.command) was sent with NVME_IOCTL_IO_CMD on a controller node with several namespaces; open the namespace node instead"
        case .submitIOOpcode:
            return "\(s.command) is not allowed through NVME_IOCTL_SUBMIT_IO, which carries only Write, Read and Compare, with flags 0"
        case .unknownRequest:
            return "the ioctl request is not an NVMe request"
        case .notForThisNode:
            return "the ioctl request is not defined on this kind of node"
        case .badHandle:
            return "the handle is not open"
        case .badAddress:
            return "\(s.command) gives a NULL buffer address with a non-zero length"
        case .bufferTooShort:
            return "\(s.command) transfers more data than its buffer holds; refused before it reaches the controller (CVE-2023-6238)"
        case .metadataNotSupported:
            return "\(s.command) gives a metadata buffer but the namespace format has no separate metadata"
        case .namespaceGone:
            return "\(s.command) is sent through a handle on namespace \(s.handleNSID), which was deleted, detached or replaced since the handle was opened"
        case .partition:
            return "\(s.command) is refused through a partition node: passthrough there reaches the whole namespace"
        case .fabrics:
            return "\(s.command) is a Fabrics command, which passthrough never allows"
        case .vendorSpecific:
            return "\(s.command) is refused: \(s.queue == .admin ? "admin" : "I/O") opcodes \(s.queue == .admin ? "C0h" : "80h") and above are vendor specific, and the policy does not allow this one"
        case .adminCommandNotAllowed:
            return "\(s.command) is an admin command the policy does not allow"
        case .identifyCNSNotAllowed:
            return "\(s.command) with \(s.field ?? "this CNS") is not among the Identify CNS values the policy allows"
        case .logPageNotAllowed:
            return "\(s.command) of \(s.field ?? "this log page") is not among the log pages the policy allows"
        case .featureNotAllowed:
            return "\(s.command) of \(s.field ?? "this feature") is not among the features the policy allows"
        case .ioCommandNotAllowed:
            return "\(s.command) is not among the I/O commands the policy allows"
        case .notSupported:
            return "\(s.command) is not marked supported (CSUPP) in the controller's Commands Supported and Effects log"
        case .intrusiveEffects:
            let extra = CommandEffects(rawValue: s.effects.rawValue
                & ~(CommandEffects.supported.rawValue | s.permittedEffects.rawValue))
            return "\(s.command) has effects beyond what the policy permits (\(extra.names.joined(separator: ", ")))"
        case .needsWriteOpen:
            if s.queue == .io && DataDirection(opcode: s.opcode).transfersToController {
                return "\(s.command) needs a handle opened for writing: it transfers data to the controller"
            }
            return "\(s.command) needs a handle opened for writing: its effects include LBCC (it changes logical block content)"
        case .managementNeedsCapability:
            return "\(s.command) needs \(caps)"
        case .logPageNeedsRetain:
            return "\(s.command) must set Retain Asynchronous Event (RAE): the policy does not let a read clear an event others wait for"
        case .logPageLSPNotAllowed:
            return "\(s.command) of \(s.field ?? "this log page") sets a Log Specific Parameter the policy does not allow (some logs act on it)"
        case .namespaceNotOwned:
            return "\(s.command) addresses namespace \(s.nsid), which \(s.owner) does not own"
        case .namespaceReadOnly:
            return "\(s.command) changes namespace \(s.nsid), which \(s.owner) owns for reading only"
        case .lbaRangeNotOwned:
            return "\(s.command) reaches logical blocks outside what \(s.owner) owns of namespace \(s.nsid)"
        case .needsWholeNamespace:
            return "\(s.command) reaches the whole of namespace \(s.nsid), and \(s.owner) owns only part of it"
        case .broadcastNotOwned:
            return "\(s.command) reaches every namespace, and \(s.owner) does not own them all"
        case .rangeListUnchecked:
            return "\(s.command) carries its LBA ranges in the data buffer, which deciding without the buffer cannot check; send it through the ioctl, which checks a copy of the ranges"
        }
    }
}
