import NVMeSpec

/// One Get Log Page read as libnvme 1.3 builds it (`nvme_get_log`): LID, LSP and RAE in
/// CDW10 with NUMDL, NUMDU and LSI in CDW11, the byte offset in CDW12/13, UUID index, offset
/// type and CSI in CDW14. Every log command reads through it, so every read meets the policy
/// as the same Get Log Page (02h) a kernel would see.
struct LogPageRequest {
    /// libnvme's NVME_LOG_PAGE_PDU_SIZE: the piece size of a split read.
    static let pieceSize = 4096
    /// The broadcast NSID nvme-cli sends for controller-wide logs.
    static let allNamespaces: UInt32 = 0xFFFF_FFFF

    var logID: LogPageID
    var nsid: UInt32 = Self.allNamespaces
    /// Bytes to read; a whole number of dwords.
    var length: Int
    var offset: UInt64 = 0
    var specificField: UInt8 = 0
    var specificIdentifier: UInt16 = 0
    var retainAsynchronousEvent = false
    var uuidIndex: UInt8 = 0
    var commandSet: UInt8 = CommandSet.nvm.rawValue
    var offsetIsIndex = false

    /// The command for `length` bytes at `offset`, with RAE as given.
    private func command(length: Int, offset: UInt64, retain: Bool) -> SubmissionQueueEntry {
        let numd = UInt32(length / 4) &- 1
        let cdw10 = UInt32(logID.rawValue) | UInt32(specificField & 0x7F) << 8 | (retain ? 1 << 15 : 0) | (numd & 0xFFFF) << 16
        let cdw11 = numd >> 16 | UInt32(specificIdentifier) << 16
        let cdw14 = UInt32(uuidIndex & 0x7F) | (offsetIsIndex ? 1 << 23 : 0) | UInt32(commandSet) << 24
        return SubmissionQueueEntry(opcode: AdminOpcode.getLogPage.rawValue, nsid: nsid, cdw10: cdw10, cdw11: cdw11,
                                    cdw12: UInt32(truncatingIfNeeded: offset), cdw13: UInt32(truncatingIfNeeded: offset >> 32),
                                    cdw14: cdw14)
    }

    /// The log in one command, as nvme-cli reads the fixed-size pages (SMART, firmware slot,
    /// error information, sanitize status, self-test).
    func read(from session: DeviceSession) throws(DeviceCommandError) -> [UInt8] {
        var data = [UInt8](repeating: 0, count: length)
        try session.submit(command(length: length, offset: offset, retain: retainAsynchronousEvent), queue: .admin, data: &data)
        return data
    }

    /// The log in 4 KiB pieces at increasing offsets (libnvme's `nvme_get_log_page`), RAE set
    /// on every piece but the last so the controller keeps the page latched while it is read.
    func readInPieces(from session: DeviceSession) throws(DeviceCommandError) -> [UInt8] {
        var log: [UInt8] = []
        log.reserveCapacity(length)
        while log.count < length {
            let size = min(Self.pieceSize, length - log.count)
            var piece = [UInt8](repeating: 0, count: size)
            let last = log.count + size == length
            let pieceCommand = command(length: size, offset: offset &+ UInt64(log.count),
                                       retain: retainAsynchronousEvent || !last)
            try session.submit(pieceCommand, queue: .admin, data: &piece)
            log += piece
        }
        return log
    }
}

/// The names nvme-cli 2.3 prints for opcodes (`nvme_cmd_to_string`): its own table, which
/// differs from the spec's in places, and "Unknown" for the rest.
enum LogCommandNames {
    private static let admin: [AdminOpcode: String] = [
        .deleteIOSubmissionQueue: "Delete I/O Submission Queue", .createIOSubmissionQueue: "Create I/O Submission Queue",
        .getLogPage: "Get Log Page", .deleteIOCompletionQueue: "Delete I/O Completion Queue",
        .createIOCompletionQueue: "Create I/O Completion Queue", .identify: "Identify", .abort: "Abort",
        .setFeatures: "Set Features", .getFeatures: "Get Features", .asynchronousEventRequest: "Asynchronous Event Request",
        .namespaceManagement: "Namespace Management", .firmwareCommit: "Firmware Commit",
        .firmwareImageDownload: "Firmware Image Download", .deviceSelfTest: "Device Self-test",
        .namespaceAttachment: "Namespace Attachment", .keepAlive: "Keep Alive", .directiveSend: "Directive Send",
        .directiveReceive: "Directive Receive", .virtualizationManagement: "Virtualization Management",
        .nvmeMISend: "NVMe-MI Send", .nvmeMIReceive: "NVMe-MI Receive", .doorbellBufferConfig: "Doorbell Buffer Config",
        .formatNVM: "Format NVM", .securitySend: "Security Send", .securityReceive: "Security Receive",
        .sanitize: "Sanitize", .getLBAStatus: "Get LBA Status",
    ]

    private static let io: [UInt8: String] = [
        IOOpcode.flush.rawValue: "Flush", IOOpcode.write.rawValue: "Write", IOOpcode.read.rawValue: "Read",
        IOOpcode.writeUncorrectable.rawValue: "Write Uncorrectable", IOOpcode.compare.rawValue: "Compare",
        IOOpcode.writeZeroes.rawValue: "Write Zeroes", IOOpcode.datasetManagement.rawValue: "Dataset Management",
        IOOpcode.reservationRegister.rawValue: "Reservation Register",
        IOOpcode.reservationReport.rawValue: "Reservation Report",
        IOOpcode.reservationAcquire.rawValue: "Reservation Acquire",
        IOOpcode.reservationRelease.rawValue: "Reservation Release", IOOpcode.verify.rawValue: "Verify",
        IOOpcode.copy.rawValue: "Copy", ZonedOpcode.zoneManagementSend.rawValue: "Zone Management Send",
        ZonedOpcode.zoneManagementReceive.rawValue: "Zone Management Receive",
        ZonedOpcode.zoneAppend.rawValue: "Zone Append",
    ]

    /// nvme-cli's name for `opcode` on `queue`.
    static func name(_ queue: Queue, _ opcode: UInt8) -> String {
        (queue == .admin ? admin[AdminOpcode(rawValue: opcode)] : io[opcode]) ?? "Unknown"
    }
}

/// The rest of what nvme-cli's log output is made of (printf conversions are `CFormat`'s).
enum LogFormat {
    /// The 128-bit little-endian counter at `offset` in decimal (SMART's data units and
    /// command counts; nvme-cli's `%'.0Lf` in the C locale, exact where a long double is).
    static func decimal128(_ bytes: [UInt8], at offset: Int) -> String {
        let low = bytes.le(offset, as: UInt64.self), high = bytes.le(offset + 8, as: UInt64.self)
        return String(UInt128(high) << 64 | UInt128(low))
    }

    /// A Kelvin temperature as nvme-cli 2.3 prints it: "50°C (323 Kelvin)".
    static func temperature<Value: BinaryInteger>(kelvin: Value) -> String {
        "\(Int64(kelvin) - 273)°C (\(kelvin) Kelvin)"
    }

    /// libnvme's `nvme_status_to_string`: nvme-cli's status text without the "(0x…)" code.
    static func statusText(_ status: NVMeStatus) -> String {
        let text = Array(status.nvmeCLIDescription)
        var i = text.count - 3
        while i >= 0 {
            if text[i] == "(" && text[i + 1] == "0" && text[i + 2] == "x" { return String(text[..<i]) }
            i -= 1
        }
        return String(text)
    }

    /// The device name nvme-cli prints: the node's base name ("nvme0", "nvme0n1").
    static func deviceName(_ session: DeviceSession) -> String { session.node.description }
}
