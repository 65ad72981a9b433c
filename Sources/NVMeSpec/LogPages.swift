/// A Log Page Identifier (LID, Get Log Page CDW10 bits 7:0), NVMe Base 2.x, Figure "Get Log
/// Page – Log Page Identifiers", plus the I/O command set specific pages named by the NVM and
/// Zoned Namespace Command Set specifications.
@frozen
public struct LogPageID: RawRepresentable, Hashable, Sendable, BitwiseCopyable {
    public var rawValue: UInt8
    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let supportedLogPages = LogPageID(rawValue: 0x00)
    public static let errorInformation = LogPageID(rawValue: 0x01)
    public static let smartHealthInformation = LogPageID(rawValue: 0x02)
    public static let firmwareSlotInformation = LogPageID(rawValue: 0x03)
    public static let changedNamespaceList = LogPageID(rawValue: 0x04)
    public static let commandsSupportedAndEffects = LogPageID(rawValue: 0x05)
    public static let deviceSelfTest = LogPageID(rawValue: 0x06)
    public static let telemetryHostInitiated = LogPageID(rawValue: 0x07)
    public static let telemetryControllerInitiated = LogPageID(rawValue: 0x08)
    public static let enduranceGroupInformation = LogPageID(rawValue: 0x09)
    public static let predictableLatencyPerNVMSet = LogPageID(rawValue: 0x0A)
    public static let predictableLatencyEventAggregate = LogPageID(rawValue: 0x0B)
    public static let asymmetricNamespaceAccess = LogPageID(rawValue: 0x0C)
    public static let persistentEventLog = LogPageID(rawValue: 0x0D)
    /// Defined by the NVM Command Set Specification.
    public static let lbaStatusInformation = LogPageID(rawValue: 0x0E)
    public static let enduranceGroupEventAggregate = LogPageID(rawValue: 0x0F)
    public static let mediaUnitStatus = LogPageID(rawValue: 0x10)
    public static let supportedCapacityConfigurationList = LogPageID(rawValue: 0x11)
    public static let featureIdentifiersSupportedAndEffects = LogPageID(rawValue: 0x12)
    public static let nvmeMICommandsSupportedAndEffects = LogPageID(rawValue: 0x13)
    public static let commandAndFeatureLockdown = LogPageID(rawValue: 0x14)
    public static let bootPartition = LogPageID(rawValue: 0x15)
    public static let rotationalMediaInformation = LogPageID(rawValue: 0x16)
    public static let dispersedNamespaceParticipatingNVMSubsystems = LogPageID(rawValue: 0x17)
    public static let managementAddressList = LogPageID(rawValue: 0x18)
    public static let physicalInterfaceReceiverEyeOpeningMeasurement = LogPageID(rawValue: 0x19)
    public static let reachabilityGroups = LogPageID(rawValue: 0x1A)
    public static let reachabilityAssociations = LogPageID(rawValue: 0x1B)
    public static let changedAllocatedNamespaceList = LogPageID(rawValue: 0x1C)
    public static let fdpConfigurations = LogPageID(rawValue: 0x20)
    public static let reclaimUnitHandleUsage = LogPageID(rawValue: 0x21)
    public static let fdpStatistics = LogPageID(rawValue: 0x22)
    public static let fdpEvents = LogPageID(rawValue: 0x23)
    public static let discovery = LogPageID(rawValue: 0x70)
    public static let hostDiscovery = LogPageID(rawValue: 0x71)
    public static let aveDiscovery = LogPageID(rawValue: 0x72)
    public static let pullModelDDCRequest = LogPageID(rawValue: 0x73)
    public static let reservationNotification = LogPageID(rawValue: 0x80)
    public static let sanitizeStatus = LogPageID(rawValue: 0x81)
    /// Defined by the Zoned Namespace Command Set Specification.
    public static let changedZoneList = LogPageID(rawValue: 0xBF)

    /// The spec name; "I/O Command Set Specific" for other values in 82h–BFh,
    /// "Vendor Specific" for C0h–FFh, otherwise "Reserved".
    public var name: String {
        switch self {
        case .supportedLogPages: "Supported Log Pages"
        case .errorInformation: "Error Information"
        case .smartHealthInformation: "SMART / Health Information"
        case .firmwareSlotInformation: "Firmware Slot Information"
        case .changedNamespaceList: "Changed Namespace List"
        case .commandsSupportedAndEffects: "Commands Supported and Effects"
        case .deviceSelfTest: "Device Self-test"
        case .telemetryHostInitiated: "Telemetry Host-Initiated"
        case .telemetryControllerInitiated: "Telemetry Controller-Initiated"
        case .enduranceGroupInformation: "Endurance Group Information"
        case .predictableLatencyPerNVMSet: "Predictable Latency Per NVM Set"
        case .predictableLatencyEventAggregate: "Predictable Latency Event Aggregate"
        case .asymmetricNamespaceAccess: "Asymmetric Namespace Access"
        case .persistentEventLog: "Persistent Event Log"
        case .lbaStatusInformation: "LBA Status Information"
        case .enduranceGroupEventAggregate: "Endurance Group Event Aggregate"
        case .mediaUnitStatus: "Media Unit Status"
        case .supportedCapacityConfigurationList: "Supported Capacity Configuration List"
        case .featureIdentifiersSupportedAndEffects: "Feature Identifiers Supported and Effects"
        case .nvmeMICommandsSupportedAndEffects: "NVMe-MI Commands Supported and Effects"
        case .commandAndFeatureLockdown: "Command and Feature Lockdown"
        case .bootPartition: "Boot Partition"
        case .rotationalMediaInformation: "Rotational Media Information"
        case .dispersedNamespaceParticipatingNVMSubsystems: "Dispersed Namespace Participating NVM Subsystems"
        case .managementAddressList: "Management Address List"
        case .physicalInterfaceReceiverEyeOpeningMeasurement: "Physical Interface Receiver Eye Opening Measurement"
        case .reachabilityGroups: "Reachability Groups"
        case .reachabilityAssociations: "Reachability Associations"
        case .changedAllocatedNamespaceList: "Changed Allocated Namespace List"
        case .fdpConfigurations: "FDP Configurations"
        case .reclaimUnitHandleUsage: "Reclaim Unit Handle Usage"
        case .fdpStatistics: "FDP Statistics"
        case .fdpEvents: "FDP Events"
        case .discovery: "Discovery"
        case .hostDiscovery: "Host Discovery"
        case .aveDiscovery: "AVE Discovery"
        case .pullModelDDCRequest: "Pull Model DDC Request"
        case .reservationNotification: "Reservation Notification"
        case .sanitizeStatus: "Sanitize Status"
        case .changedZoneList: "Changed Zone List"
        default:
            switch rawValue {
            case 0x82...0xBF: "I/O Command Set Specific"
            case 0xC0...0xFF: "Vendor Specific"
            default: "Reserved"
            }
        }
    }

    /// C0h–FFh.
    @inlinable public var isVendorSpecific: Bool { rawValue >= 0xC0 }

    /// "SMART / Health Information (02h)".
    public var displayName: String { name + " (" + hexByte(rawValue) + ")" }
}
