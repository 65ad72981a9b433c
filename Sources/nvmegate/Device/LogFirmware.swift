#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import NVMeSpec

/// `nvmegate fw-log`: the Firmware Slot Information log (03h), as nvme-cli 2.3 prints it.
struct LogFirmwareSlotCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fw-log", abstract: "Retrieve the Firmware Slot Information log (nvme-cli's fw-log).")

    @OptionGroup var device: DeviceOptions
    @OptionGroup var output: OutputFormatOptions

    /// The page's size (libnvme's `struct nvme_firmware_slot`).
    static let size = 512

    func run() throws {
        try reportingFailures {
            let session = try DeviceSession(device, writable: false, commandName: "fw log")
            let log = try LogPageRequest(logID: .firmwareSlotInformation, length: Self.size).read(from: session)
            let name = LogFormat.deviceName(session)
            switch output.format {
            case .binary: try writeStandardOutput(log)
            case .json: try printOutput(Self.json(log, device: name).rendered)
            case .normal: try printOutput(Self.text(log, device: name))
            }
        }
    }

    /// The slots holding a revision (first byte non-zero): slot number, the 8 bytes as a
    /// little-endian number, and nvme-cli's `fw_to_string` (unprintable bytes as '.').
    static func revisions(_ log: [UInt8]) -> [(slot: Int, value: UInt64, text: String)] {
        (0..<7).compactMap { i in
            let o = 8 + 8 * i
            guard log[o] != 0 else { return nil }
            let text = String(decoding: log[o..<o + 8].map { $0 >= 0x21 && $0 <= 0x7E ? $0 : UInt8(ascii: ".") }, as: UTF8.self)
            return (i + 1, log.le(o, as: UInt64.self), text)
        }
    }

    /// nvme-cli's `nvme_show_fw_log` text.
    static func text(_ log: [UInt8], device: String) -> String {
        var lines = ["Firmware Log for device:\(device)", "afi  : " + CFormat.alternateHex(log[0])]
        for r in revisions(log) { lines.append("frs\(r.slot) : " + CFormat.alternateHex(r.value, width: 16) + " (\(r.text))") }
        return lines.joined(separator: "\n") + "\n"
    }

    /// nvme-cli's `json_fw_log`: one object named after the device.
    static func json(_ log: [UInt8], device: String) -> JSONOutput {
        var slots: [(String, JSONOutput)] = [("Active Firmware Slot (afi)", .number(log[0]))]
        for r in revisions(log) { slots.append(("Firmware Rev Slot \(r.slot)", .string("\(r.value) (\(r.text))"))) }
        return .object([(device, .object(slots))])
    }
}

/// `nvmegate fw-download`: sends a firmware image with Firmware Image Download (11h) in
/// chunks, NUMD and OFST in dwords, as nvme-cli 2.3 does (three tries per chunk unless the
/// device says Do Not Retry).
struct LogFirmwareDownloadCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fw-download", abstract: "Copy all or part of a firmware image to the controller (nvme-cli's fw-download).")

    @OptionGroup var device: DeviceOptions
    @Option(name: [.customShort("f"), .customLong("fw")], help: "The firmware file (required).")
    var firmware: String
    @Option(name: [.customShort("x"), .customLong("xfer")], help: "Bytes per command: a multiple of 4096.")
    var transferSize = CommandNumber<UInt32>(4096)
    @Option(name: [.customShort("o"), .customLong("offset")], help: "The dword offset to start at.")
    var offset = CommandNumber<UInt32>(0)
    @Flag(name: [.customShort("p"), .customLong("progress")], help: "Show the transfer's progress.")
    var progress = false
    @Flag(name: [.customShort("i"), .customLong("ignore-ovr")], help: "Ignore overwrite (Overlapping Range) errors.")
    var ignoreOverwrite = false

    /// The most one command carries here (the buffer is allocated per chunk).
    static let maxTransfer = 2 << 20

    func run() throws {
        try reportingFailures {
            let image = try LogFirmwareFile(path: firmware)
            let size = image.size
            guard size & 3 == 0, size != 0 else { throw DeviceCommandError("Invalid size:\(size) for f/w image") }
            var chunk = Int(transferSize.value)
            if chunk == 0 || chunk % 4096 != 0 { chunk = 4096 }
            guard chunk <= Self.maxTransfer else {
                throw DeviceCommandError("fw-download: --xfer \(chunk) is larger than the \(Self.maxTransfer) bytes one command may carry here")
            }
            let session = try DeviceSession(device, writable: true, commandName: "fw-download")
            // nvme-cli skips the first --offset dwords of the file and sends the rest at the same offsets.
            var position = UInt64(offset.value) << 2
            while position < UInt64(size) {
                let length = min(chunk, Int(UInt64(size) - position))
                if progress {
                    try printOutput("Firmware download: transferring 0x\(CFormat.hex(position, width: 8))/0x\(CFormat.hex(size, width: 8)) bytes: "
                                    + Self.percent(position, of: UInt64(size)) + "%\r")
                }
                var data = try image.read(at: position, count: length)
                try send(&data, at: position, imageSize: size, session: session)
                position += UInt64(length)
            }
            try printOutput((progress ? "\n" : "") + "Firmware download success\n")
        }
    }

    /// nvme-cli's `%03d` of the percentage sent so far.
    private static func percent(_ done: UInt64, of total: UInt64) -> String {
        let value = String(100 * done / total)
        return String(repeating: "0", count: max(0, 3 - value.count)) + value
    }

    /// One chunk, tried up to three times (`fw_download_single`); an Overlapping Range error
    /// counts as success with --ignore-ovr.
    private func send(_ data: inout [UInt8], at position: UInt64, imageSize: Int, session: DeviceSession) throws {
        let command = SubmissionQueueEntry(opcode: AdminOpcode.firmwareImageDownload.rawValue,
                                           cdw10: UInt32(data.count / 4) - 1, cdw11: UInt32(truncatingIfNeeded: position >> 2))
        let tries = 3
        for attempt in 0..<tries {
            if attempt > 0 { printStandardError("retrying offset \(CFormat.hex(position)) (\(attempt)/\(tries))") }
            do {
                try session.submit(command, queue: .admin, data: &data)
                return
            } catch {
                let overwrite = error.status.map { $0.type == .commandSpecific && $0.code == NVMeStatus.overlappingRange.code } ?? false
                if overwrite && ignoreOverwrite { return }
                if progress { try printOutput("\n") }
                printStandardError("fw-download: error on offset 0x\(CFormat.hex(position, width: 8))/0x\(CFormat.hex(imageSize, width: 8))")
                printStandardError(error.description)
                if overwrite { printStandardError("Use --ignore-ovr to ignore overwrite errors") }
                if overwrite || error.status?.doNotRetry == true { break }
            }
        }
        throw ExitCode.failure
    }
}

/// A firmware file read a chunk at a time, so an image of any size costs one chunk of memory.
final class LogFirmwareFile {
    private let descriptor: Int32
    private let path: String
    let size: Int

    init(path: String) throws(DeviceCommandError) {
        self.path = path
        descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw DeviceCommandError("Failed to open firmware file \(path): \(String(cString: strerror(errno)))")
        }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else {
            let message = String(cString: strerror(errno))
            close(descriptor)
            throw DeviceCommandError("fstat: \(message)")
        }
        size = Int(info.st_size)
    }

    deinit { close(descriptor) }

    /// `count` bytes at `offset`.
    func read(at offset: UInt64, count: Int) throws(DeviceCommandError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let n = bytes.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress! + done, count - done, off_t(offset) + off_t(done)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                throw DeviceCommandError("read :\(path) :\(n < 0 ? String(cString: strerror(errno)) : "unexpected end of file")")
            }
            done += n
        }
        return bytes
    }
}

/// `nvmegate fw-commit`: Firmware Commit (10h), with nvme-cli 2.3's checks and words,
/// including the firmware activation statuses it reports as success needing a reset.
struct LogFirmwareCommitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fw-commit", abstract: "Verify a downloaded firmware image and commit it to a slot (nvme-cli's fw-commit).")

    @OptionGroup var device: DeviceOptions
    @Option(name: [.customShort("s"), .customLong("slot")], help: "[0-7]: the firmware slot for the commit action.")
    var slot = CommandNumber<UInt8>(0)
    @Option(name: [.customShort("a"), .customLong("action")], help: "[0-7]: the commit action.")
    var action = CommandNumber<UInt8>(0)
    @Option(name: [.customShort("b"), .customLong("bpid")], help: "[0,1]: the boot partition, if applicable.")
    var bootPartition = CommandNumber<UInt8>(0)

    func run() throws {
        try reportingFailures {
            let slot = slot.value, action = action.value, bpid = bootPartition.value
            guard slot <= 7 else { throw DeviceCommandError("invalid slot:\(slot)") }
            guard action <= 7, action != 4, action != 5 else { throw DeviceCommandError("invalid action:\(action)") }
            guard bpid <= 1 else { throw DeviceCommandError("invalid boot partition id:\(bpid)") }
            let session = try DeviceSession(device, writable: true, commandName: "fw-commit")
            let command = SubmissionQueueEntry(opcode: AdminOpcode.firmwareCommit.rawValue,
                                               cdw10: UInt32(slot) | UInt32(action) << 3 | UInt32(bpid) << 31)
            let which = "action:\(action) slot:\(slot)" + (action == 6 || action == 7 ? " bpid:\(bpid)" : "")
            var failed = false
            var result: UInt32 = 0
            do {
                result = try session.submit(command, queue: .admin)
                try printOutput("Success committing firmware \(which)\n")
            } catch let error as DeviceCommandError where error.status != nil {
                failed = true
                if let reset = error.status.flatMap(Self.resetNeeded) {
                    try printOutput("Success activating firmware \(which), but firmware requires \(reset) reset\n")
                } else {
                    printStandardError(error.description)
                }
            }
            var report = "Multiple Update Detected (MUD) Value: \(result)\n"
            if result & 1 != 0 {
                report += "Detected an overlapping firmware/boot partition image update command sequence due to processing a command from a Management Endpoint\n"
            }
            if result & 2 != 0 {
                report += "Detected an overlapping firmware/boot partition image update command sequence due to processing a command from an Admin SQ on a controller\n"
            }
            try printOutput(report)
            if failed { throw ExitCode.failure }
        }
    }

    /// The reset a firmware activation status asks for, in nvme-cli's words; nil for others.
    static func resetNeeded(_ status: NVMeStatus) -> String? {
        guard status.type == .commandSpecific else { return nil }
        switch status.code {
        case 0x0B: return "conventional"     // Firmware Activation Requires Conventional Reset
        case 0x10: return "subsystem"        // … Requires NVM Subsystem Reset
        case 0x11: return "any controller"   // … Requires Controller Level Reset
        default: return nil
        }
    }
}
