import NVMeSpec

/// Every status the emulated controller returns, in one place, each named by its spec name
/// (NVMe Base 2.x, "Status Code – Generic / Command Specific / Media and Data Integrity
/// Errors"). When NVMeSpec grows named status constants these become aliases of them.
///
/// DNR (Do Not Retry) is set where retrying the same command cannot succeed, as QEMU sets it.
enum Status {
    // MARK: Generic Command Status (SCT 0)
    /// 00h/01h Invalid Command Opcode.
    static let invalidOpcode = NVMeStatus(type: .generic, code: 0x01, doNotRetry: true)
    /// 00h/02h Invalid Field in Command.
    static let invalidField = NVMeStatus(type: .generic, code: 0x02, doNotRetry: true)
    /// 00h/02h Invalid Field in Command without DNR (QEMU's answer to FUSE bits).
    static let invalidFieldRetry = NVMeStatus(type: .generic, code: 0x02, doNotRetry: false)
    /// 00h/04h Data Transfer Error: the host buffer cannot hold the transfer.
    static let dataTransferError = NVMeStatus(type: .generic, code: 0x04, doNotRetry: true)
    /// 00h/06h Internal Error (a host file operation failed).
    static let internalError = NVMeStatus(type: .generic, code: 0x06, doNotRetry: false)
    /// 00h/0Bh Invalid Namespace or Format.
    static let invalidNamespaceOrFormat = NVMeStatus(type: .generic, code: 0x0B, doNotRetry: true)
    /// 00h/0Ch Command Sequence Error.
    static let commandSequenceError = NVMeStatus(type: .generic, code: 0x0C, doNotRetry: true)
    /// 00h/80h LBA Out of Range.
    static let lbaOutOfRange = NVMeStatus(type: .generic, code: 0x80, doNotRetry: true)
    /// 00h/81h Capacity Exceeded (never produced: no thin provisioning; kept for completeness).
    static let capacityExceeded = NVMeStatus(type: .generic, code: 0x81, doNotRetry: true)
    /// 00h/83h Reservation Conflict.
    static let reservationConflict = NVMeStatus(type: .generic, code: 0x83, doNotRetry: true)

    // MARK: Command Specific Status (SCT 1)
    /// 01h/05h Asynchronous Event Request Limit Exceeded.
    static let asyncEventRequestLimitExceeded = NVMeStatus(type: .commandSpecific, code: 0x05, doNotRetry: true)
    /// 01h/06h Invalid Firmware Slot.
    static let invalidFirmwareSlot = NVMeStatus(type: .commandSpecific, code: 0x06, doNotRetry: true)
    /// 01h/07h Invalid Firmware Image.
    static let invalidFirmwareImage = NVMeStatus(type: .commandSpecific, code: 0x07, doNotRetry: true)
    /// 01h/09h Invalid Log Page.
    static let invalidLogPage = NVMeStatus(type: .commandSpecific, code: 0x09, doNotRetry: true)
    /// 01h/0Ah Invalid Format.
    static let invalidFormat = NVMeStatus(type: .commandSpecific, code: 0x0A, doNotRetry: true)
    /// 01h/0Dh Feature Identifier Not Saveable.
    static let featureNotSaveable = NVMeStatus(type: .commandSpecific, code: 0x0D, doNotRetry: true)
    /// 01h/0Eh Feature Not Changeable.
    static let featureNotChangeable = NVMeStatus(type: .commandSpecific, code: 0x0E, doNotRetry: true)
    /// 01h/0Fh Feature Not Namespace Specific.
    static let featureNotNamespaceSpecific = NVMeStatus(type: .commandSpecific, code: 0x0F, doNotRetry: true)
    /// 01h/14h Overlapping Range (Firmware Image Download).
    static let overlappingRange = NVMeStatus(type: .commandSpecific, code: 0x14, doNotRetry: true)
    /// 01h/15h Namespace Insufficient Capacity.
    static let namespaceInsufficientCapacity = NVMeStatus(type: .commandSpecific, code: 0x15, doNotRetry: true)
    /// 01h/16h Namespace Identifier Unavailable.
    static let namespaceIdentifierUnavailable = NVMeStatus(type: .commandSpecific, code: 0x16, doNotRetry: true)
    /// 01h/18h Namespace Already Attached.
    static let namespaceAlreadyAttached = NVMeStatus(type: .commandSpecific, code: 0x18, doNotRetry: true)
    /// 01h/1Ah Namespace Not Attached.
    static let namespaceNotAttached = NVMeStatus(type: .commandSpecific, code: 0x1A, doNotRetry: true)
    /// 01h/1Ch Controller List Invalid.
    static let controllerListInvalid = NVMeStatus(type: .commandSpecific, code: 0x1C, doNotRetry: true)
    /// 01h/1Dh Device Self-test in Progress.
    static let selfTestInProgress = NVMeStatus(type: .commandSpecific, code: 0x1D, doNotRetry: false)
    /// 01h/29h I/O Command Set Not Supported.
    static let ioCommandSetNotSupported = NVMeStatus(type: .commandSpecific, code: 0x29, doNotRetry: true)
    /// 01h/83h Command Size Limit Exceeded (Copy: MSSRL, MCL, MSRC).
    static let commandSizeLimitExceeded = NVMeStatus(type: .commandSpecific, code: 0x83, doNotRetry: true)

    // MARK: Media and Data Integrity Errors (SCT 2)
    /// 02h/80h Write Fault (a host write failed).
    static let writeFault = NVMeStatus(type: .mediaAndDataIntegrity, code: 0x80, doNotRetry: false)
    /// 02h/81h Unrecovered Read Error. DNR: a block made uncorrectable stays so until rewritten.
    static let unrecoveredReadError = NVMeStatus(type: .mediaAndDataIntegrity, code: 0x81, doNotRetry: true)
    /// 02h/85h Compare Failure.
    static let compareFailure = NVMeStatus(type: .mediaAndDataIntegrity, code: 0x85, doNotRetry: true)
}
