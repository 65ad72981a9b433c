/// A Feature Identifier (FID, Get/Set Features CDW10 bits 7:0), NVMe Base 2.1, Figure "Set
/// Features – Feature Identifiers", plus the ones it defers to the NVM and Key Value Command
/// Set specifications.
@frozen
public struct FeatureID: RawRepresentable, Hashable, Sendable, BitwiseCopyable {
    public var rawValue: UInt8
    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let arbitration = FeatureID(rawValue: 0x01)
    public static let powerManagement = FeatureID(rawValue: 0x02)
    public static let lbaRangeType = FeatureID(rawValue: 0x03)
    public static let temperatureThreshold = FeatureID(rawValue: 0x04)
    public static let errorRecovery = FeatureID(rawValue: 0x05)
    public static let volatileWriteCache = FeatureID(rawValue: 0x06)
    public static let numberOfQueues = FeatureID(rawValue: 0x07)
    public static let interruptCoalescing = FeatureID(rawValue: 0x08)
    public static let interruptVectorConfiguration = FeatureID(rawValue: 0x09)
    public static let writeAtomicityNormal = FeatureID(rawValue: 0x0A)
    public static let asynchronousEventConfiguration = FeatureID(rawValue: 0x0B)
    public static let autonomousPowerStateTransition = FeatureID(rawValue: 0x0C)
    public static let hostMemoryBuffer = FeatureID(rawValue: 0x0D)
    public static let timestamp = FeatureID(rawValue: 0x0E)
    public static let keepAliveTimer = FeatureID(rawValue: 0x0F)
    public static let hostControlledThermalManagement = FeatureID(rawValue: 0x10)
    public static let nonOperationalPowerStateConfig = FeatureID(rawValue: 0x11)
    public static let readRecoveryLevelConfig = FeatureID(rawValue: 0x12)
    public static let predictableLatencyModeConfig = FeatureID(rawValue: 0x13)
    public static let predictableLatencyModeWindow = FeatureID(rawValue: 0x14)
    /// Defined by the NVM Command Set Specification.
    public static let lbaStatusInformationAttributes = FeatureID(rawValue: 0x15)
    public static let hostBehaviorSupport = FeatureID(rawValue: 0x16)
    public static let sanitizeConfig = FeatureID(rawValue: 0x17)
    public static let enduranceGroupEventConfiguration = FeatureID(rawValue: 0x18)
    public static let ioCommandSetProfile = FeatureID(rawValue: 0x19)
    public static let spinupControl = FeatureID(rawValue: 0x1A)
    public static let powerLossSignalingConfig = FeatureID(rawValue: 0x1B)
    /// Defined by the NVM Command Set Specification.
    public static let performanceCharacteristics = FeatureID(rawValue: 0x1C)
    public static let flexibleDataPlacement = FeatureID(rawValue: 0x1D)
    public static let flexibleDataPlacementEvents = FeatureID(rawValue: 0x1E)
    public static let namespaceAdminLabel = FeatureID(rawValue: 0x1F)
    /// Defined by the Key Value Command Set Specification.
    public static let keyValueConfiguration = FeatureID(rawValue: 0x20)
    public static let controllerDataQueue = FeatureID(rawValue: 0x21)
    public static let embeddedManagementControllerAddress = FeatureID(rawValue: 0x78)
    public static let hostManagementAgentAddress = FeatureID(rawValue: 0x79)
    public static let enhancedControllerMetadata = FeatureID(rawValue: 0x7D)
    public static let controllerMetadata = FeatureID(rawValue: 0x7E)
    public static let namespaceMetadata = FeatureID(rawValue: 0x7F)
    public static let softwareProgressMarker = FeatureID(rawValue: 0x80)
    public static let hostIdentifier = FeatureID(rawValue: 0x81)
    public static let reservationNotificationMask = FeatureID(rawValue: 0x82)
    public static let reservationPersistence = FeatureID(rawValue: 0x83)
    public static let namespaceWriteProtectionConfig = FeatureID(rawValue: 0x84)
    public static let bootPartitionWriteProtectionConfig = FeatureID(rawValue: 0x85)

    /// The spec name; "Vendor Specific" for C0h–FFh, otherwise "Reserved".
    public var name: String {
        switch self {
        case .arbitration: "Arbitration"
        case .powerManagement: "Power Management"
        case .lbaRangeType: "LBA Range Type"
        case .temperatureThreshold: "Temperature Threshold"
        case .errorRecovery: "Error Recovery"
        case .volatileWriteCache: "Volatile Write Cache"
        case .numberOfQueues: "Number of Queues"
        case .interruptCoalescing: "Interrupt Coalescing"
        case .interruptVectorConfiguration: "Interrupt Vector Configuration"
        case .writeAtomicityNormal: "Write Atomicity Normal"
        case .asynchronousEventConfiguration: "Asynchronous Event Configuration"
        case .autonomousPowerStateTransition: "Autonomous Power State Transition"
        case .hostMemoryBuffer: "Host Memory Buffer"
        case .timestamp: "Timestamp"
        case .keepAliveTimer: "Keep Alive Timer"
        case .hostControlledThermalManagement: "Host Controlled Thermal Management"
        case .nonOperationalPowerStateConfig: "Non-Operational Power State Config"
        case .readRecoveryLevelConfig: "Read Recovery Level Config"
        case .predictableLatencyModeConfig: "Predictable Latency Mode Config"
        case .predictableLatencyModeWindow: "Predictable Latency Mode Window"
        case .lbaStatusInformationAttributes: "LBA Status Information Attributes"
        case .hostBehaviorSupport: "Host Behavior Support"
        case .sanitizeConfig: "Sanitize Config"
        case .enduranceGroupEventConfiguration: "Endurance Group Event Configuration"
        case .ioCommandSetProfile: "I/O Command Set Profile"
        case .spinupControl: "Spinup Control"
        case .powerLossSignalingConfig: "Power Loss Signaling Config"
        case .performanceCharacteristics: "Performance Characteristics"
        case .flexibleDataPlacement: "Flexible Data Placement"
        case .flexibleDataPlacementEvents: "Flexible Data Placement Events"
        case .namespaceAdminLabel: "Namespace Admin Label"
        case .keyValueConfiguration: "Key Value Configuration"
        case .controllerDataQueue: "Controller Data Queue"
        case .embeddedManagementControllerAddress: "Embedded Management Controller Address"
        case .hostManagementAgentAddress: "Host Management Agent Address"
        case .enhancedControllerMetadata: "Enhanced Controller Metadata"
        case .controllerMetadata: "Controller Metadata"
        case .namespaceMetadata: "Namespace Metadata"
        case .softwareProgressMarker: "Software Progress Marker"
        case .hostIdentifier: "Host Identifier"
        case .reservationNotificationMask: "Reservation Notification Mask"
        case .reservationPersistence: "Reservation Persistence"
        case .namespaceWriteProtectionConfig: "Namespace Write Protection Config"
        case .bootPartitionWriteProtectionConfig: "Boot Partition Write Protection Config"
        default: isVendorSpecific ? "Vendor Specific" : "Reserved"
        }
    }

    /// The feature's scope is a namespace (the NSID selects which one): LBA Range Type, Error
    /// Recovery, Namespace Admin Label, Namespace Metadata, Reservation Notification Mask,
    /// Reservation Persistence and Namespace Write Protection Config.
    public var isNamespaceScoped: Bool {
        switch self {
        case .lbaRangeType, .errorRecovery, .namespaceAdminLabel, .namespaceMetadata, .reservationNotificationMask,
             .reservationPersistence, .namespaceWriteProtectionConfig: true
        default: false
        }
    }

    /// C0h–FFh.
    @inlinable public var isVendorSpecific: Bool { rawValue >= 0xC0 }

    /// "Volatile Write Cache (06h)".
    public var displayName: String { name + " (" + hexByte(rawValue) + ")" }
}
