/// Status names (NVMe Base 2.2, Figures "Status Code – Generic Command Status Values",
/// "Command Specific Status Values" (Admin and I/O), "Media and Data Integrity Error Values"
/// and "Path Related Status Values"), and the statuses the emulator returns.
///
/// Command specific codes 80h–BFh are read as I/O command codes, not the Fabrics ones
/// (Connect, Disconnect) that share their values, as nvme-cli does for non-fabrics devices.
extension NVMeStatus: CustomStringConvertible {
    // Generic Command Status.
    public static let invalidOpcode = NVMeStatus(type: .generic, code: 0x01)
    public static let invalidField = NVMeStatus(type: .generic, code: 0x02)
    public static let commandIDConflict = NVMeStatus(type: .generic, code: 0x03)
    public static let dataTransferError = NVMeStatus(type: .generic, code: 0x04)
    public static let internalError = NVMeStatus(type: .generic, code: 0x06)
    public static let abortRequested = NVMeStatus(type: .generic, code: 0x07)
    public static let invalidNamespaceOrFormat = NVMeStatus(type: .generic, code: 0x0B)
    public static let commandSequenceError = NVMeStatus(type: .generic, code: 0x0C)
    public static let operationDenied = NVMeStatus(type: .generic, code: 0x15)
    public static let sanitizeFailed = NVMeStatus(type: .generic, code: 0x1C)
    public static let sanitizeInProgress = NVMeStatus(type: .generic, code: 0x1D)
    public static let namespaceWriteProtected = NVMeStatus(type: .generic, code: 0x20)
    public static let commandProhibitedByLockdown = NVMeStatus(type: .generic, code: 0x23)
    public static let lbaOutOfRange = NVMeStatus(type: .generic, code: 0x80)
    public static let capacityExceeded = NVMeStatus(type: .generic, code: 0x81)
    public static let namespaceNotReady = NVMeStatus(type: .generic, code: 0x82)
    public static let reservationConflict = NVMeStatus(type: .generic, code: 0x83)
    public static let formatInProgress = NVMeStatus(type: .generic, code: 0x84)
    // Command Specific Status.
    public static let completionQueueInvalid = NVMeStatus(type: .commandSpecific, code: 0x00)
    public static let invalidQueueIdentifier = NVMeStatus(type: .commandSpecific, code: 0x01)
    public static let invalidQueueSize = NVMeStatus(type: .commandSpecific, code: 0x02)
    public static let abortCommandLimitExceeded = NVMeStatus(type: .commandSpecific, code: 0x03)
    public static let asynchronousEventRequestLimitExceeded = NVMeStatus(type: .commandSpecific, code: 0x05)
    public static let invalidFirmwareSlot = NVMeStatus(type: .commandSpecific, code: 0x06)
    public static let invalidFirmwareImage = NVMeStatus(type: .commandSpecific, code: 0x07)
    public static let invalidLogPage = NVMeStatus(type: .commandSpecific, code: 0x09)
    public static let invalidFormat = NVMeStatus(type: .commandSpecific, code: 0x0A)
    public static let featureNotSaveable = NVMeStatus(type: .commandSpecific, code: 0x0D)
    public static let featureNotChangeable = NVMeStatus(type: .commandSpecific, code: 0x0E)
    public static let featureNotNamespaceSpecific = NVMeStatus(type: .commandSpecific, code: 0x0F)
    public static let overlappingRange = NVMeStatus(type: .commandSpecific, code: 0x14)
    public static let namespaceInsufficientCapacity = NVMeStatus(type: .commandSpecific, code: 0x15)
    public static let namespaceIdentifierUnavailable = NVMeStatus(type: .commandSpecific, code: 0x16)
    public static let namespaceAlreadyAttached = NVMeStatus(type: .commandSpecific, code: 0x18)
    public static let namespaceIsPrivate = NVMeStatus(type: .commandSpecific, code: 0x19)
    public static let namespaceNotAttached = NVMeStatus(type: .commandSpecific, code: 0x1A)
    public static let controllerListInvalid = NVMeStatus(type: .commandSpecific, code: 0x1C)
    public static let deviceSelfTestInProgress = NVMeStatus(type: .commandSpecific, code: 0x1D)
    public static let ioCommandSetNotSupported = NVMeStatus(type: .commandSpecific, code: 0x29)
    public static let invalidIOCommandSet = NVMeStatus(type: .commandSpecific, code: 0x2C)
    public static let conflictingAttributes = NVMeStatus(type: .commandSpecific, code: 0x80)
    public static let attemptedWriteToReadOnlyRange = NVMeStatus(type: .commandSpecific, code: 0x82)
    public static let commandSizeLimitExceeded = NVMeStatus(type: .commandSpecific, code: 0x83)
    public static let zoneIsFull = NVMeStatus(type: .commandSpecific, code: 0xB9)
    public static let zoneInvalidWrite = NVMeStatus(type: .commandSpecific, code: 0xBC)
    // Media and Data Integrity Errors.
    public static let writeFault = NVMeStatus(type: .mediaAndDataIntegrity, code: 0x80)
    public static let unrecoveredReadError = NVMeStatus(type: .mediaAndDataIntegrity, code: 0x81)
    public static let compareFailure = NVMeStatus(type: .mediaAndDataIntegrity, code: 0x85)
    public static let accessDenied = NVMeStatus(type: .mediaAndDataIntegrity, code: 0x86)
    public static let deallocatedOrUnwrittenLogicalBlock = NVMeStatus(type: .mediaAndDataIntegrity, code: 0x87)

    /// The same status with Do Not Retry set, as the spec recommends for errors that will
    /// repeat (Invalid Opcode, Invalid Field, LBA Out of Range, …).
    @inlinable public var withDoNotRetry: NVMeStatus { NVMeStatus(rawValue: rawValue | 1 << 14) }

    /// The spec name of the status, e.g. "LBA Out of Range"; "Vendor Specific" or "Reserved"
    /// for codes the spec does not name.
    public var name: String {
        if let name = Self.name(type: type, code: code) { return name }
        return type == .vendorSpecific || code >= 0xC0 ? "Vendor Specific" : "Reserved"
    }

    /// nvme-cli's text for the status, "<name>: <explanation>(0x<status>)", e.g.
    /// "LBA Out of Range: The command references an LBA that exceeds the size of the
    /// namespace(0x4080)"; just "<name>(0x<status>)" where no explanation is kept.
    public var nvmeCLIDescription: String {
        var text = name
        if let explanation = Self.explanation(type: type, code: code) { text += ": " + explanation }
        return text + "(0x" + String(rawValue, radix: 16) + ")"
    }

    /// `nvmeCLIDescription`.
    public var description: String { nvmeCLIDescription }

    static func name(type: StatusCodeType, code: UInt8) -> String? {
        switch type {
        case .generic: genericName(code)
        case .commandSpecific: commandSpecificName(code)
        case .mediaAndDataIntegrity: mediaName(code)
        case .path: pathName(code)
        default: nil
        }
    }

    static func genericName(_ code: UInt8) -> String? {
        switch code {
        case 0x00: "Successful Completion"
        case 0x01: "Invalid Command Opcode"
        case 0x02: "Invalid Field in Command"
        case 0x03: "Command ID Conflict"
        case 0x04: "Data Transfer Error"
        case 0x05: "Commands Aborted due to Power Loss Notification"
        case 0x06: "Internal Error"
        case 0x07: "Command Abort Requested"
        case 0x08: "Command Aborted due to SQ Deletion"
        case 0x09: "Command Aborted due to Failed Fused Command"
        case 0x0A: "Command Aborted due to Missing Fused Command"
        case 0x0B: "Invalid Namespace or Format"
        case 0x0C: "Command Sequence Error"
        case 0x0D: "Invalid SGL Segment Descriptor"
        case 0x0E: "Invalid Number of SGL Descriptors"
        case 0x0F: "Data SGL Length Invalid"
        case 0x10: "Metadata SGL Length Invalid"
        case 0x11: "SGL Descriptor Type Invalid"
        case 0x12: "Invalid Use of Controller Memory Buffer"
        case 0x13: "PRP Offset Invalid"
        case 0x14: "Atomic Write Unit Exceeded"
        case 0x15: "Operation Denied"
        case 0x16: "SGL Offset Invalid"
        case 0x18: "Host Identifier Inconsistent Format"
        case 0x19: "Keep Alive Timer Expired"
        case 0x1A: "Keep Alive Timeout Invalid"
        case 0x1B: "Command Aborted due to Preempt and Abort"
        case 0x1C: "Sanitize Failed"
        case 0x1D: "Sanitize In Progress"
        case 0x1E: "SGL Data Block Granularity Invalid"
        case 0x1F: "Command Not Supported for Queue in CMB"
        case 0x20: "Namespace is Write Protected"
        case 0x21: "Command Interrupted"
        case 0x22: "Transient Transport Error"
        case 0x23: "Command Prohibited by Command and Feature Lockdown"
        case 0x24: "Admin Command Media Not Ready"
        case 0x25: "Invalid Key Tag"
        case 0x26: "Host Dispersed Namespace Support Not Enabled"
        case 0x27: "Host Identifier Not Initialized"
        case 0x28: "Incorrect Key"
        case 0x29: "FDP Disabled"
        case 0x2A: "Invalid Placement Handle List"
        case 0x80: "LBA Out of Range"
        case 0x81: "Capacity Exceeded"
        case 0x82: "Namespace Not Ready"
        case 0x83: "Reservation Conflict"
        case 0x84: "Format In Progress"
        case 0x85: "Invalid Value Size"
        case 0x86: "Invalid Key Size"
        case 0x87: "KV Key Does Not Exist"
        case 0x88: "Unrecovered Error"
        case 0x89: "Key Exists"
        default: nil
        }
    }

    static func commandSpecificName(_ code: UInt8) -> String? {
        switch code {
        case 0x00: "Completion Queue Invalid"
        case 0x01: "Invalid Queue Identifier"
        case 0x02: "Invalid Queue Size"
        case 0x03: "Abort Command Limit Exceeded"
        case 0x05: "Asynchronous Event Request Limit Exceeded"
        case 0x06: "Invalid Firmware Slot"
        case 0x07: "Invalid Firmware Image"
        case 0x08: "Invalid Interrupt Vector"
        case 0x09: "Invalid Log Page"
        case 0x0A: "Invalid Format"
        case 0x0B: "Firmware Activation Requires Conventional Reset"
        case 0x0C: "Invalid Queue Deletion"
        case 0x0D: "Feature Identifier Not Saveable"
        case 0x0E: "Feature Not Changeable"
        case 0x0F: "Feature Not Namespace Specific"
        case 0x10: "Firmware Activation Requires NVM Subsystem Reset"
        case 0x11: "Firmware Activation Requires Controller Level Reset"
        case 0x12: "Firmware Activation Requires Maximum Time Violation"
        case 0x13: "Firmware Activation Prohibited"
        case 0x14: "Overlapping Range"
        case 0x15: "Namespace Insufficient Capacity"
        case 0x16: "Namespace Identifier Unavailable"
        case 0x18: "Namespace Already Attached"
        case 0x19: "Namespace Is Private"
        case 0x1A: "Namespace Not Attached"
        case 0x1B: "Thin Provisioning Not Supported"
        case 0x1C: "Controller List Invalid"
        case 0x1D: "Device Self-test In Progress"
        case 0x1E: "Boot Partition Write Prohibited"
        case 0x1F: "Invalid Controller Identifier"
        case 0x20: "Invalid Secondary Controller State"
        case 0x21: "Invalid Number of Controller Resources"
        case 0x22: "Invalid Resource Identifier"
        case 0x23: "Sanitize Prohibited While Persistent Memory Region is Enabled"
        case 0x24: "ANA Group Identifier Invalid"
        case 0x25: "ANA Attach Failed"
        case 0x26: "Insufficient Capacity"
        case 0x27: "Namespace Attachment Limit Exceeded"
        case 0x28: "Prohibition of Command Execution Not Supported"
        case 0x29: "I/O Command Set Not Supported"
        case 0x2A: "I/O Command Set Not Enabled"
        case 0x2B: "I/O Command Set Combination Rejected"
        case 0x2C: "Invalid I/O Command Set"
        case 0x2D: "Identifier Unavailable"
        case 0x2E: "Namespace Is Dispersed"
        case 0x2F: "Invalid Discovery Information"
        case 0x30: "Zoning Data Structure Locked"
        case 0x31: "Zoning Data Structure Not Found"
        case 0x32: "Insufficient Discovery Resources"
        case 0x33: "Requested Function Disabled"
        case 0x34: "ZoneGroup Originator Invalid"
        case 0x35: "Invalid Host"
        case 0x36: "Invalid NVM Subsystem"
        case 0x37: "Invalid Controller Data Queue"
        case 0x38: "Not Enough Resources"
        case 0x39: "Controller Suspended"
        case 0x3A: "Controller Not Suspended"
        case 0x3B: "Controller Data Queue Full"
        case 0x70...0x7F: "Directive Specific"
        case 0x80: "Conflicting Attributes"
        case 0x81: "Invalid Protection Information"
        case 0x82: "Attempted Write to Read Only Range"
        case 0x83: "Command Size Limit Exceeded"
        case 0x84: "Invalid Command ID"
        case 0x85: "Incompatible Namespace or Format"
        case 0x86: "Fast Copy Not Possible"
        case 0x87: "Overlapping I/O Range"
        case 0x88: "Namespace Not Reachable"
        case 0x89: "Insufficient Resources"
        case 0x8A: "Insufficient Program Resources"
        case 0x8B: "Invalid Memory Namespace"
        case 0x8C: "Invalid Memory Range Set"
        case 0x8D: "Invalid Memory Range Set Identifier"
        case 0x8E: "Invalid Program Data"
        case 0x8F: "Invalid Program Index"
        case 0x90: "Invalid Program Type"
        case 0x91: "Maximum Memory Ranges Exceeded"
        case 0x92: "Maximum Memory Range Sets Exceeded"
        case 0x93: "Maximum Programs Activated"
        case 0x94: "Maximum Program Bytes Exceeded"
        case 0x95: "Memory Range Set In Use"
        case 0x96: "No Program"
        case 0x97: "Overlapping Memory Ranges"
        case 0x98: "Program Not Activated"
        case 0x99: "Program In Use"
        case 0x9A: "Program Index Not Downloadable"
        case 0x9B: "Program Too Big"
        case 0x9C: "Successful Media Verification Read"
        case 0xB6: "Invalid Zone Operation Request"
        case 0xB7: "ZRWA Resources Unavailable"
        case 0xB8: "Zoned Boundary Error"
        case 0xB9: "Zone Is Full"
        case 0xBA: "Zone Is Read Only"
        case 0xBB: "Zone Is Offline"
        case 0xBC: "Zone Invalid Write"
        case 0xBD: "Too Many Active Zones"
        case 0xBE: "Too Many Open Zones"
        case 0xBF: "Invalid Zone State Transition"
        default: nil
        }
    }

    static func mediaName(_ code: UInt8) -> String? {
        switch code {
        case 0x80: "Write Fault"
        case 0x81: "Unrecovered Read Error"
        case 0x82: "End-to-end Guard Check Error"
        case 0x83: "End-to-end Application Tag Check Error"
        case 0x84: "End-to-end Reference Tag Check Error"
        case 0x85: "Compare Failure"
        case 0x86: "Access Denied"
        case 0x87: "Deallocated or Unwritten Logical Block"
        case 0x88: "End-to-End Storage Tag Check Error"
        default: nil
        }
    }

    static func pathName(_ code: UInt8) -> String? {
        switch code {
        case 0x00: "Internal Path Error"
        case 0x01: "Asymmetric Access Persistent Loss"
        case 0x02: "Asymmetric Access Inaccessible"
        case 0x03: "Asymmetric Access Transition"
        case 0x60: "Controller Pathing Error"
        case 0x70: "Host Pathing Error"
        case 0x71: "Command Aborted By Host"
        default: nil
        }
    }

    /// nvme-cli's (libnvme 1.3's) one-sentence explanations, for the statuses a host sees most.
    static func explanation(type: StatusCodeType, code: UInt8) -> String? {
        switch (type, code) {
        case (.generic, 0x00): "The command completed without error"
        case (.generic, 0x01): "A reserved coded value or an unsupported value in the command opcode field"
        case (.generic, 0x02): "A reserved coded value or an unsupported value in a defined field"
        case (.generic, 0x04): "Transferring the data or metadata associated with a command experienced an error"
        case (.generic, 0x06): "The command was not completed successfully due to an internal error"
        case (.generic, 0x07): "The command was aborted due to an Abort command"
        case (.generic, 0x0B): "The namespace or the format of that namespace is invalid"
        case (.generic, 0x15): "The command was denied due to lack of access rights"
        case (.generic, 0x1D): "The requested function is prohibited while a sanitize operation is in progress"
        case (.generic, 0x20): "The command is prohibited while the namespace is write protected"
        case (.generic, 0x80): "The command references an LBA that exceeds the size of the namespace"
        case (.generic, 0x81): "Execution of the command has caused the capacity of the namespace to be exceeded"
        case (.generic, 0x82): "The namespace is not ready to be accessed"
        case (.generic, 0x83):
            "The command was aborted due to a conflict with a reservation held on the accessed namespace"
        case (.generic, 0x84): "A Format NVM command is in progress on the namespace"
        case (.commandSpecific, 0x01):
            "The creation of the I/O Completion Queue failed due to an invalid queue identifier specified as part of the command"
        case (.commandSpecific, 0x06): "The firmware slot indicated is invalid or read only"
        case (.commandSpecific, 0x07):
            "The firmware image specified for activation is invalid and not loaded by the controller"
        case (.commandSpecific, 0x09): "The log page indicated is invalid"
        case (.commandSpecific, 0x0A): "The LBA Format specified is not supported"
        case (.commandSpecific, 0x0D): "The Feature Identifier specified does not support a saveable value"
        case (.commandSpecific, 0x0E): "The Feature Identifier is not able to be changed"
        case (.commandSpecific, 0x0F): "The Feature Identifier specified is not namespace specific"
        case (.commandSpecific, 0x15):
            "Creating the namespace requires more free space than is currently available"
        case (.commandSpecific, 0x16): "The number of namespaces supported has been exceeded"
        case (.commandSpecific, 0x18): "The controller is already attached to the namespace specified"
        case (.commandSpecific, 0x1A):
            "The request to detach the controller could not be completed because the controller is not attached to the namespace"
        case (.commandSpecific, 0x1D):
            "The controller or NVM subsystem already has a device self-test operation in process"
        case (.commandSpecific, 0x82): "The LBA range specified contains read-only blocks"
        case (.mediaAndDataIntegrity, 0x80): "The write data could not be committed to the media"
        case (.mediaAndDataIntegrity, 0x81): "The read data could not be recovered from the media"
        case (.mediaAndDataIntegrity, 0x85): "The command failed due to a miscompare during a Compare command"
        case (.mediaAndDataIntegrity, 0x86):
            "Access to the namespace and/or LBA range is denied due to lack of access rights"
        default: nil
        }
    }
}
