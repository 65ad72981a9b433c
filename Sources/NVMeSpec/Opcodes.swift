/// An Admin Command Set opcode (NVMe Base 2.x, Figure "Opcodes for Admin Commands").
/// Admin opcodes mean the same command whatever I/O command sets a controller supports.
@frozen
public struct AdminOpcode: RawRepresentable, Hashable, Sendable, BitwiseCopyable {
    public var rawValue: UInt8
    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let deleteIOSubmissionQueue = AdminOpcode(rawValue: 0x00)
    public static let createIOSubmissionQueue = AdminOpcode(rawValue: 0x01)
    public static let getLogPage = AdminOpcode(rawValue: 0x02)
    public static let deleteIOCompletionQueue = AdminOpcode(rawValue: 0x04)
    public static let createIOCompletionQueue = AdminOpcode(rawValue: 0x05)
    public static let identify = AdminOpcode(rawValue: 0x06)
    public static let abort = AdminOpcode(rawValue: 0x08)
    public static let setFeatures = AdminOpcode(rawValue: 0x09)
    public static let getFeatures = AdminOpcode(rawValue: 0x0A)
    public static let asynchronousEventRequest = AdminOpcode(rawValue: 0x0C)
    public static let namespaceManagement = AdminOpcode(rawValue: 0x0D)
    public static let firmwareCommit = AdminOpcode(rawValue: 0x10)
    public static let firmwareImageDownload = AdminOpcode(rawValue: 0x11)
    public static let deviceSelfTest = AdminOpcode(rawValue: 0x14)
    public static let namespaceAttachment = AdminOpcode(rawValue: 0x15)
    public static let keepAlive = AdminOpcode(rawValue: 0x18)
    public static let directiveSend = AdminOpcode(rawValue: 0x19)
    public static let directiveReceive = AdminOpcode(rawValue: 0x1A)
    public static let virtualizationManagement = AdminOpcode(rawValue: 0x1C)
    public static let nvmeMISend = AdminOpcode(rawValue: 0x1D)
    public static let nvmeMIReceive = AdminOpcode(rawValue: 0x1E)
    public static let capacityManagement = AdminOpcode(rawValue: 0x20)
    public static let discoveryInformationManagement = AdminOpcode(rawValue: 0x21)
    public static let fabricZoningReceive = AdminOpcode(rawValue: 0x22)
    public static let lockdown = AdminOpcode(rawValue: 0x24)
    public static let fabricZoningLookup = AdminOpcode(rawValue: 0x25)
    public static let clearExportedNVMResourceConfiguration = AdminOpcode(rawValue: 0x28)
    public static let fabricZoningSend = AdminOpcode(rawValue: 0x29)
    public static let createExportedNVMSubsystem = AdminOpcode(rawValue: 0x2A)
    public static let manageExportedNVMSubsystem = AdminOpcode(rawValue: 0x2D)
    public static let manageExportedNamespace = AdminOpcode(rawValue: 0x31)
    public static let manageExportedPort = AdminOpcode(rawValue: 0x35)
    public static let crossControllerReset = AdminOpcode(rawValue: 0x38)
    public static let sendDiscoveryLogPage = AdminOpcode(rawValue: 0x39)
    public static let trackSend = AdminOpcode(rawValue: 0x3D)
    public static let trackReceive = AdminOpcode(rawValue: 0x3E)
    public static let migrationSend = AdminOpcode(rawValue: 0x41)
    public static let migrationReceive = AdminOpcode(rawValue: 0x42)
    public static let controllerDataQueue = AdminOpcode(rawValue: 0x45)
    public static let doorbellBufferConfig = AdminOpcode(rawValue: 0x7C)
    /// Fabrics commands: which one is named by FCTYPE, byte 4 of the command (`FabricsCommandType`).
    public static let fabrics = AdminOpcode(rawValue: 0x7F)
    public static let formatNVM = AdminOpcode(rawValue: 0x80)
    public static let securitySend = AdminOpcode(rawValue: 0x81)
    public static let securityReceive = AdminOpcode(rawValue: 0x82)
    public static let sanitize = AdminOpcode(rawValue: 0x84)
    public static let loadProgram = AdminOpcode(rawValue: 0x85)
    public static let getLBAStatus = AdminOpcode(rawValue: 0x86)
    public static let programActivationManagement = AdminOpcode(rawValue: 0x88)
    public static let memoryRangeSetManagement = AdminOpcode(rawValue: 0x89)
    public static let sanitizeNamespace = AdminOpcode(rawValue: 0x8C)

    /// C0h–FFh: vendor specific admin opcodes.
    @inlinable public var isVendorSpecific: Bool { rawValue >= 0xC0 }
    /// The spec name, "Vendor Specific" or "Reserved".
    public var name: String { OpcodeTable.name(queue: .admin, commandSet: .nvm, opcode: rawValue) }
}

/// An NVM Command Set I/O opcode (NVM Command Set Specification, "Opcodes for NVM Commands").
/// The Zoned Namespace Command Set uses the same opcodes plus `ZonedOpcode`.
@frozen
public struct IOOpcode: RawRepresentable, Hashable, Sendable, BitwiseCopyable {
    public var rawValue: UInt8
    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let flush = IOOpcode(rawValue: 0x00)
    public static let write = IOOpcode(rawValue: 0x01)
    public static let read = IOOpcode(rawValue: 0x02)
    public static let writeUncorrectable = IOOpcode(rawValue: 0x04)
    public static let compare = IOOpcode(rawValue: 0x05)
    public static let writeZeroes = IOOpcode(rawValue: 0x08)
    public static let datasetManagement = IOOpcode(rawValue: 0x09)
    public static let verify = IOOpcode(rawValue: 0x0C)
    public static let reservationRegister = IOOpcode(rawValue: 0x0D)
    public static let reservationReport = IOOpcode(rawValue: 0x0E)
    public static let reservationAcquire = IOOpcode(rawValue: 0x11)
    public static let ioManagementReceive = IOOpcode(rawValue: 0x12)
    public static let reservationRelease = IOOpcode(rawValue: 0x15)
    public static let cancel = IOOpcode(rawValue: 0x18)
    public static let copy = IOOpcode(rawValue: 0x19)
    public static let ioManagementSend = IOOpcode(rawValue: 0x1D)
    /// Fabrics commands on an I/O queue (Connect, Disconnect, authentication).
    public static let fabrics = IOOpcode(rawValue: 0x7F)

    /// 80h–FFh: vendor specific I/O opcodes (in every I/O command set).
    @inlinable public var isVendorSpecific: Bool { rawValue >= 0x80 }
    /// The NVM Command Set name, "Vendor Specific" or "Reserved".
    public var name: String { OpcodeTable.name(queue: .io, commandSet: .nvm, opcode: rawValue) }
}

/// The opcodes the Zoned Namespace Command Set adds to the NVM I/O opcodes.
@frozen
public struct ZonedOpcode: RawRepresentable, Hashable, Sendable, BitwiseCopyable {
    public var rawValue: UInt8
    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let zoneManagementSend = ZonedOpcode(rawValue: 0x79)
    public static let zoneManagementReceive = ZonedOpcode(rawValue: 0x7A)
    public static let zoneAppend = ZonedOpcode(rawValue: 0x7D)

    /// The Zoned Namespace Command Set name, "Vendor Specific" or "Reserved".
    public var name: String { OpcodeTable.name(queue: .io, commandSet: .zoned, opcode: rawValue) }
}

/// A Key Value Command Set I/O opcode (Key Value Command Set Specification).
@frozen
public struct KeyValueOpcode: RawRepresentable, Hashable, Sendable, BitwiseCopyable {
    public var rawValue: UInt8
    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let flush = KeyValueOpcode(rawValue: 0x00)
    public static let store = KeyValueOpcode(rawValue: 0x01)
    public static let retrieve = KeyValueOpcode(rawValue: 0x02)
    public static let list = KeyValueOpcode(rawValue: 0x06)
    public static let reservationRegister = KeyValueOpcode(rawValue: 0x0D)
    public static let reservationReport = KeyValueOpcode(rawValue: 0x0E)
    public static let delete = KeyValueOpcode(rawValue: 0x10)
    public static let reservationAcquire = KeyValueOpcode(rawValue: 0x11)
    public static let exist = KeyValueOpcode(rawValue: 0x14)
    public static let reservationRelease = KeyValueOpcode(rawValue: 0x15)

    /// The Key Value Command Set name, "Vendor Specific" or "Reserved".
    public var name: String { OpcodeTable.name(queue: .io, commandSet: .keyValue, opcode: rawValue) }
}

/// Fabrics Command Type (FCTYPE) of a Fabrics command (opcode 7Fh), NVMe Base 2.x section 6.
/// Its bits 1:0 give the data direction, as an opcode's do.
@frozen
public struct FabricsCommandType: RawRepresentable, Hashable, Sendable, BitwiseCopyable {
    public var rawValue: UInt8
    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// Admin queue only.
    public static let propertySet = FabricsCommandType(rawValue: 0x00)
    public static let connect = FabricsCommandType(rawValue: 0x01)
    /// Admin queue only.
    public static let propertyGet = FabricsCommandType(rawValue: 0x04)
    public static let authenticationSend = FabricsCommandType(rawValue: 0x05)
    public static let authenticationReceive = FabricsCommandType(rawValue: 0x06)
    /// I/O queues only.
    public static let disconnect = FabricsCommandType(rawValue: 0x08)

    /// C0h–FFh: vendor specific.
    @inlinable public var isVendorSpecific: Bool { rawValue >= 0xC0 }
    /// The data direction, from FCTYPE bits 1:0.
    @inlinable public var direction: DataDirection { DataDirection(opcode: rawValue) }
    /// The spec name, "Vendor Specific" or "Reserved".
    public var name: String { OpcodeTable.fabricsTypeName(rawValue) }
}

/// How a command uses the Namespace Identifier field (CDW1).
public enum NamespaceUse: Sendable, Hashable {
    /// The NSID field is not used (the spec says it should be cleared to 0h).
    case no
    /// The NSID names the namespace the command acts on.
    case yes
    /// Whether the NSID is used depends on another field: CNS for Identify, LID for
    /// Get Log Page, FID for Get/Set Features, the protocol for Security Send/Receive.
    case dependsOnField
}

/// What the spec says about one opcode in one queue and command set.
public struct OpcodeInfo: Sendable, Hashable {
    public let opcode: UInt8
    /// The spec name ("Write", "Identify"), or "Vendor Specific".
    public let name: String
    /// From opcode bits 1:0. For Fabrics (7Fh) that gives `.bidirectional`; the real direction
    /// of a Fabrics command comes from its FCTYPE (`FabricsCommandType.direction`).
    public let direction: DataDirection
    public let namespaceUse: NamespaceUse
    /// Whether NSID FFFFFFFFh (all namespaces) is accepted: nil where the NSID is not used, or
    /// where the answer depends on another field or is not stated.
    public let broadcastAllowed: Bool?

    public init(opcode: UInt8, name: String, direction: DataDirection, namespaceUse: NamespaceUse,
                broadcastAllowed: Bool?) {
        self.opcode = opcode; self.name = name; self.direction = direction
        self.namespaceUse = namespaceUse; self.broadcastAllowed = broadcastAllowed
    }
}

/// The opcode tables: admin (command-set independent), NVM, Zoned Namespace (NVM plus
/// 79h/7Ah/7Dh) and Key Value I/O. Lookups are switches: constant time, no allocation, and
/// defined for all 256 opcodes. Other I/O command sets (Subsystem Local Memory, Computational
/// Programs, vendor sets) have no table here: only Fabrics and the vendor range are named.
public enum OpcodeTable {
    /// Admin vendor specific range, C0h–FFh.
    public static let adminVendorRange: ClosedRange<UInt8> = 0xC0...0xFF
    /// I/O vendor specific range, 80h–FFh, in every command set.
    public static let ioVendorRange: ClosedRange<UInt8> = 0x80...0xFF

    /// One row of a table, before direction (which is always opcode bits 1:0).
    typealias Row = (name: String, use: NamespaceUse, broadcast: Bool?)

    /// The info for `opcode`, nil when it is reserved. Vendor specific opcodes get an info
    /// named "Vendor Specific" with NSID use `.dependsOnField` (the vendor defines it).
    public static func info(queue: Queue, commandSet: CommandSet, opcode: UInt8) -> OpcodeInfo? {
        guard let row = row(queue: queue, commandSet: commandSet, opcode: opcode) else { return nil }
        return OpcodeInfo(opcode: opcode, name: row.name, direction: DataDirection(opcode: opcode),
                          namespaceUse: row.use, broadcastAllowed: row.broadcast)
    }

    /// The spec name, "Vendor Specific" or "Reserved" (no hex suffix).
    public static func name(queue: Queue, commandSet: CommandSet, opcode: UInt8) -> String {
        row(queue: queue, commandSet: commandSet, opcode: opcode)?.name ?? "Reserved"
    }

    /// The name as denial sentences print it: "Write (01h)", "Vendor Specific (C5h)", "Reserved (03h)".
    public static func displayName(queue: Queue, commandSet: CommandSet, opcode: UInt8) -> String {
        name(queue: queue, commandSet: commandSet, opcode: opcode) + " (" + hexByte(opcode) + ")"
    }

    /// The defined (non-vendor, non-reserved) opcodes of a queue and command set, in opcode order.
    public static func all(queue: Queue, commandSet: CommandSet) -> [OpcodeInfo] {
        let vendor = queue == .admin ? adminVendorRange : ioVendorRange
        return (0...0xFF).compactMap { (op: Int) -> OpcodeInfo? in
            let opcode = UInt8(op)
            return vendor.contains(opcode) ? nil : info(queue: queue, commandSet: commandSet, opcode: opcode)
        }
    }

    /// The name of a Fabrics Command Type: "Connect", "Vendor Specific" or "Reserved".
    public static func fabricsTypeName(_ fctype: UInt8) -> String {
        switch FabricsCommandType(rawValue: fctype) {
        case .propertySet: "Property Set"
        case .connect: "Connect"
        case .propertyGet: "Property Get"
        case .authenticationSend: "Authentication Send"
        case .authenticationReceive: "Authentication Receive"
        case .disconnect: "Disconnect"
        default: fctype >= 0xC0 ? "Vendor Specific" : "Reserved"
        }
    }

    static func row(queue: Queue, commandSet: CommandSet, opcode: UInt8) -> Row? {
        switch queue {
        case .admin:
            if adminVendorRange.contains(opcode) { return ("Vendor Specific", .dependsOnField, nil) }
            return adminRow(AdminOpcode(rawValue: opcode))
        case .io:
            if ioVendorRange.contains(opcode) { return ("Vendor Specific", .dependsOnField, nil) }
            if opcode == IOOpcode.fabrics.rawValue { return ("Fabrics", .no, nil) }
            switch commandSet {
            case .nvm: return nvmRow(IOOpcode(rawValue: opcode))
            case .zoned: return zonedRow(ZonedOpcode(rawValue: opcode)) ?? nvmRow(IOOpcode(rawValue: opcode))
            case .keyValue: return keyValueRow(KeyValueOpcode(rawValue: opcode))
            default: return nil
            }
        }
    }

    // NSID use and broadcast follow reference §4.1 (NVMe Base 2.3, Figure "Opcodes for Admin Commands").
    static func adminRow(_ op: AdminOpcode) -> Row? {
        switch op {
        case .deleteIOSubmissionQueue: ("Delete I/O Submission Queue", .no, nil)
        case .createIOSubmissionQueue: ("Create I/O Submission Queue", .no, nil)
        case .getLogPage: ("Get Log Page", .dependsOnField, nil)
        case .deleteIOCompletionQueue: ("Delete I/O Completion Queue", .no, nil)
        case .createIOCompletionQueue: ("Create I/O Completion Queue", .no, nil)
        case .identify: ("Identify", .dependsOnField, nil)
        case .abort: ("Abort", .no, nil)
        case .setFeatures: ("Set Features", .dependsOnField, nil)
        case .getFeatures: ("Get Features", .dependsOnField, nil)
        case .asynchronousEventRequest: ("Asynchronous Event Request", .no, nil)
        case .namespaceManagement: ("Namespace Management", .yes, nil)
        case .firmwareCommit: ("Firmware Commit", .no, nil)
        case .firmwareImageDownload: ("Firmware Image Download", .no, nil)
        case .deviceSelfTest: ("Device Self-test", .yes, true)
        case .namespaceAttachment: ("Namespace Attachment", .yes, false)
        case .keepAlive: ("Keep Alive", .no, nil)
        case .directiveSend: ("Directive Send", .yes, nil)
        case .directiveReceive: ("Directive Receive", .yes, nil)
        case .virtualizationManagement: ("Virtualization Management", .no, nil)
        case .nvmeMISend: ("NVMe-MI Send", .no, nil)
        case .nvmeMIReceive: ("NVMe-MI Receive", .no, nil)
        case .capacityManagement: ("Capacity Management", .no, nil)
        case .discoveryInformationManagement: ("Discovery Information Management", .no, nil)
        case .fabricZoningReceive: ("Fabric Zoning Receive", .no, nil)
        case .lockdown: ("Lockdown", .no, nil)
        case .fabricZoningLookup: ("Fabric Zoning Lookup", .no, nil)
        case .clearExportedNVMResourceConfiguration: ("Clear Exported NVM Resource Configuration", .no, nil)
        case .fabricZoningSend: ("Fabric Zoning Send", .no, nil)
        case .createExportedNVMSubsystem: ("Create Exported NVM Subsystem", .no, nil)
        case .manageExportedNVMSubsystem: ("Manage Exported NVM Subsystem", .no, nil)
        case .manageExportedNamespace: ("Manage Exported Namespace", .yes, nil)
        case .manageExportedPort: ("Manage Exported Port", .no, nil)
        case .crossControllerReset: ("Cross-Controller Reset", .no, nil)
        case .sendDiscoveryLogPage: ("Send Discovery Log Page", .no, nil)
        case .trackSend: ("Track Send", .no, nil)
        case .trackReceive: ("Track Receive", .no, nil)
        case .migrationSend: ("Migration Send", .no, nil)
        case .migrationReceive: ("Migration Receive", .no, nil)
        case .controllerDataQueue: ("Controller Data Queue", .no, nil)
        case .doorbellBufferConfig: ("Doorbell Buffer Config", .no, nil)
        case .fabrics: ("Fabrics", .no, nil)
        case .formatNVM: ("Format NVM", .yes, true)
        case .securitySend: ("Security Send", .dependsOnField, nil)
        case .securityReceive: ("Security Receive", .dependsOnField, nil)
        case .sanitize: ("Sanitize", .no, nil)
        case .loadProgram: ("Load Program", .yes, nil)
        case .getLBAStatus: ("Get LBA Status", .yes, false)
        case .programActivationManagement: ("Program Activation Management", .yes, nil)
        case .memoryRangeSetManagement: ("Memory Range Set Management", .yes, nil)
        case .sanitizeNamespace: ("Sanitize Namespace", .yes, false)
        default: nil
        }
    }

    // Every NVM command addresses a namespace; only Flush accepts FFFFFFFFh (NVM Command Set spec).
    static func nvmRow(_ op: IOOpcode) -> Row? {
        switch op {
        case .flush: ("Flush", .yes, true)
        case .write: ("Write", .yes, false)
        case .read: ("Read", .yes, false)
        case .writeUncorrectable: ("Write Uncorrectable", .yes, false)
        case .compare: ("Compare", .yes, false)
        case .writeZeroes: ("Write Zeroes", .yes, false)
        case .datasetManagement: ("Dataset Management", .yes, false)
        case .verify: ("Verify", .yes, false)
        case .reservationRegister: ("Reservation Register", .yes, false)
        case .reservationReport: ("Reservation Report", .yes, false)
        case .reservationAcquire: ("Reservation Acquire", .yes, false)
        case .ioManagementReceive: ("I/O Management Receive", .yes, false)
        case .reservationRelease: ("Reservation Release", .yes, false)
        case .cancel: ("Cancel", .yes, nil)
        case .copy: ("Copy", .yes, false)
        case .ioManagementSend: ("I/O Management Send", .yes, false)
        default: nil
        }
    }

    static func zonedRow(_ op: ZonedOpcode) -> Row? {
        switch op {
        case .zoneManagementSend: ("Zone Management Send", .yes, false)
        case .zoneManagementReceive: ("Zone Management Receive", .yes, false)
        case .zoneAppend: ("Zone Append", .yes, false)
        default: nil
        }
    }

    static func keyValueRow(_ op: KeyValueOpcode) -> Row? {
        switch op {
        case .flush: ("Flush", .yes, nil)
        case .store: ("Store", .yes, false)
        case .retrieve: ("Retrieve", .yes, false)
        case .list: ("List", .yes, false)
        case .reservationRegister: ("Reservation Register", .yes, false)
        case .reservationReport: ("Reservation Report", .yes, false)
        case .delete: ("Delete", .yes, false)
        case .reservationAcquire: ("Reservation Acquire", .yes, false)
        case .exist: ("Exist", .yes, false)
        case .reservationRelease: ("Reservation Release", .yes, false)
        default: nil
        }
    }
}
