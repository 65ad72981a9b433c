/// Identify's Controller or Namespace Structure (CNS, CDW10 bits 7:0), NVMe Base 2.x,
/// Figure "CNS Values": which data structure Identify returns, and so how it reads NSID and CSI.
@frozen
public struct IdentifyCNS: RawRepresentable, Hashable, Sendable, BitwiseCopyable {
    public var rawValue: UInt8
    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let namespace = IdentifyCNS(rawValue: 0x00)
    public static let controller = IdentifyCNS(rawValue: 0x01)
    public static let activeNamespaceIDList = IdentifyCNS(rawValue: 0x02)
    public static let namespaceIdentificationDescriptorList = IdentifyCNS(rawValue: 0x03)
    public static let nvmSetList = IdentifyCNS(rawValue: 0x04)
    public static let ioCommandSetSpecificNamespace = IdentifyCNS(rawValue: 0x05)
    public static let ioCommandSetSpecificController = IdentifyCNS(rawValue: 0x06)
    public static let ioCommandSetActiveNamespaceIDList = IdentifyCNS(rawValue: 0x07)
    public static let ioCommandSetIndependentNamespace = IdentifyCNS(rawValue: 0x08)
    public static let namespaceForFormatIndex = IdentifyCNS(rawValue: 0x09)
    public static let ioCommandSetSpecificNamespaceForFormatIndex = IdentifyCNS(rawValue: 0x0A)
    public static let allocatedNamespaceIDList = IdentifyCNS(rawValue: 0x10)
    public static let allocatedNamespace = IdentifyCNS(rawValue: 0x11)
    public static let namespaceAttachedControllerList = IdentifyCNS(rawValue: 0x12)
    public static let controllerList = IdentifyCNS(rawValue: 0x13)
    public static let primaryControllerCapabilities = IdentifyCNS(rawValue: 0x14)
    public static let secondaryControllerList = IdentifyCNS(rawValue: 0x15)
    public static let namespaceGranularityList = IdentifyCNS(rawValue: 0x16)
    public static let uuidList = IdentifyCNS(rawValue: 0x17)
    public static let domainList = IdentifyCNS(rawValue: 0x18)
    public static let enduranceGroupList = IdentifyCNS(rawValue: 0x19)
    public static let ioCommandSetAllocatedNamespaceIDList = IdentifyCNS(rawValue: 0x1A)
    public static let ioCommandSetSpecificAllocatedNamespace = IdentifyCNS(rawValue: 0x1B)
    public static let ioCommandSetDataStructure = IdentifyCNS(rawValue: 0x1C)
    public static let supportedControllerStateFormats = IdentifyCNS(rawValue: 0x20)

    /// The spec name of the returned data structure, or "Reserved".
    public var name: String {
        switch self {
        case .namespace: "Identify Namespace"
        case .controller: "Identify Controller"
        case .activeNamespaceIDList: "Active Namespace ID list"
        case .namespaceIdentificationDescriptorList: "Namespace Identification Descriptor list"
        case .nvmSetList: "NVM Set List"
        case .ioCommandSetSpecificNamespace: "I/O Command Set specific Identify Namespace"
        case .ioCommandSetSpecificController: "I/O Command Set specific Identify Controller"
        case .ioCommandSetActiveNamespaceIDList: "Active Namespace ID list associated with the specified I/O Command Set"
        case .ioCommandSetIndependentNamespace: "I/O Command Set Independent Identify Namespace"
        case .namespaceForFormatIndex: "Identify Namespace for the specified Format Index"
        case .ioCommandSetSpecificNamespaceForFormatIndex:
            "I/O Command Set specific Identify Namespace for the specified Format Index"
        case .allocatedNamespaceIDList: "Allocated Namespace ID list"
        case .allocatedNamespace: "Identify Namespace for an Allocated Namespace ID"
        case .namespaceAttachedControllerList: "Namespace Attached Controller list"
        case .controllerList: "Controller list"
        case .primaryControllerCapabilities: "Primary Controller Capabilities"
        case .secondaryControllerList: "Secondary Controller list"
        case .namespaceGranularityList: "Namespace Granularity List"
        case .uuidList: "UUID List"
        case .domainList: "Domain List"
        case .enduranceGroupList: "Endurance Group List"
        case .ioCommandSetAllocatedNamespaceIDList: "I/O Command Set specific Allocated Namespace ID list"
        case .ioCommandSetSpecificAllocatedNamespace:
            "I/O Command Set specific Identify Namespace for an Allocated Namespace ID"
        case .ioCommandSetDataStructure: "Identify I/O Command Set data structure"
        case .supportedControllerStateFormats: "Supported Controller State Formats"
        default: "Reserved"
        }
    }

    /// The NSID names one namespace whose data is returned: ownership of it matters.
    public var addressesNamespace: Bool {
        switch self {
        case .namespace, .namespaceIdentificationDescriptorList, .ioCommandSetSpecificNamespace,
             .ioCommandSetIndependentNamespace, .allocatedNamespace, .namespaceAttachedControllerList,
             .ioCommandSetSpecificAllocatedNamespace: true
        default: false
        }
    }

    /// The NSID is the lower bound of a returned namespace ID list (IDs greater than it),
    /// not a namespace the command acts on.
    public var usesNSIDAsListStart: Bool {
        switch self {
        case .activeNamespaceIDList, .ioCommandSetActiveNamespaceIDList, .allocatedNamespaceIDList,
             .ioCommandSetAllocatedNamespaceIDList: true
        default: false
        }
    }

    /// The returned structure is chosen by the CSI field (CDW11 bits 31:24) as well.
    public var requiresCSI: Bool {
        switch self {
        case .ioCommandSetSpecificNamespace, .ioCommandSetSpecificController, .ioCommandSetActiveNamespaceIDList,
             .ioCommandSetSpecificNamespaceForFormatIndex, .ioCommandSetAllocatedNamespaceIDList,
             .ioCommandSetSpecificAllocatedNamespace: true
        default: false
        }
    }

    /// "Identify Controller (01h)".
    public var displayName: String { name + " (" + hexByte(rawValue) + ")" }
}
