import ArgumentParser
import NVMeSpec

/// `nvmegate sanitize-log`: the Sanitize Status log (81h), as nvme-cli 2.3 prints it.
struct LogSanitizeStatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sanitize-log", abstract: "Retrieve the Sanitize Status log (nvme-cli's sanitize-log).")

    @OptionGroup var device: DeviceOptions
    @Flag(name: [.customShort("r"), .customLong("rae")], help: "Retain an asynchronous event.")
    var retain = false
    @OptionGroup var output: OutputFormatOptions
    @Flag(name: [.customShort("H"), .customLong("human-readable")], help: "Decode the status and progress.")
    var humanReadable = false

    /// The page's size (libnvme's `struct nvme_sanitize_log_page`).
    static let size = 512

    func run() throws {
        try reportingFailures {
            let session = try DeviceSession(device, writable: false, commandName: "sanitize status log")
            let log = try LogPageRequest(logID: .sanitizeStatus, length: Self.size, retainAsynchronousEvent: retain)
                .read(from: session)
            switch output.format {
            case .binary: try writeStandardOutput(log)
            case .json: try printOutput(Self.json(log, device: LogFormat.deviceName(session)).rendered)
            case .normal: try printOutput(Self.text(log, human: humanReadable))
            }
        }
    }

    /// nvme-cli's words for SSTAT bits 2:0.
    static func statusText(_ sstat: UInt16) -> String {
        switch sstat & 0x7 {
        case 0: "NVM Subsystem has never been sanitized."
        case 1: "Most Recent Sanitize Command Completed Successfully."
        case 2: "Sanitize in Progress."
        case 3: "Most Recent Sanitize Command Failed."
        case 4: "Most Recent Sanitize Command (No-Deallocate After Sanitize) Completed Successfully."
        default: "Unknown"
        }
    }

    /// The estimated times at 8...31, nvme-cli's text label and JSON name for each.
    private static let estimates: [(offset: Int, text: String, json: String)] = [
        (8, "Estimated Time For Overwrite                   ", "time_over_write"),
        (12, "Estimated Time For Block Erase                 ", "time_block_erase"),
        (16, "Estimated Time For Crypto Erase                ", "time_crypto_erase"),
        (20, "Estimated Time For Overwrite (No-Deallocate)   ", "time_over_write_no_dealloc"),
        (24, "Estimated Time For Block Erase (No-Deallocate) ", "time_block_erase_no_dealloc"),
        (28, "Estimated Time For Crypto Erase (No-Deallocate)", "time_crypto_erase_no_dealloc"),
    ]

    /// nvme-cli's `nvme_show_sanitize_log` text.
    static func text(_ log: [UInt8], human: Bool) -> String {
        let progress = log.le(0, as: UInt16.self), sstat = log.le(2, as: UInt16.self)
        var text = "Sanitize Progress                      (SPROG) :  \(progress)"
        text += human && sstat & 0x7 == 2 ? "\t(" + percent(progress) + "%)\n" : "\n"
        text += "Sanitize Status                        (SSTAT) :  " + CFormat.alternateHex(sstat & 0x7) + "\n"
        if human {
            text += "\t[2:0]\t" + statusText(sstat) + "\n"
            text += "\t[7:3]\tNumber of completed passes if most recent operation was overwrite:\t\(sstat >> 3 & 0x1F)\n"
            text += "\t  [8]\t" + (sstat & 0x100 != 0
                ? "Global Data Erased set: no NS LB in the NVM subsystem has been written to and no PMR in the NVM subsystem has been enabled"
                : "Global Data Erased cleared: a NS LB in the NVM subsystem has been written to or a PMR in the NVM subsystem has been enabled") + "\n"
        }
        text += "Sanitize Command Dword 10 Information (SCDW10) :  " + CFormat.alternateHex(log.le(4, as: UInt32.self)) + "\n"
        for estimate in estimates {
            let value = log.le(estimate.offset, as: UInt32.self)
            text += estimate.text + ":  \(value)" + (value == 0xFFFF_FFFF ? " (No time period reported)" : "") + "\n"
        }
        return text
    }

    /// SPROG as a percentage with C's `%f` (six decimals).
    private static func percent(_ progress: UInt16) -> String {
        let millionths = (UInt64(progress) * 100 * 1_000_000 + 32768) / 65536
        let fraction = String(millionths % 1_000_000)
        return "\(millionths / 1_000_000)." + String(repeating: "0", count: 6 - fraction.count) + fraction
    }

    /// nvme-cli's `json_sanitize_log`: one object named after the device.
    static func json(_ log: [UInt8], device: String) -> JSONOutput {
        let sstat = log.le(2, as: UInt16.self)
        let status: [(String, JSONOutput)] = [
            ("global_erased", .number(sstat >> 8 & 1)), ("no_cmplted_passes", .number(sstat >> 3 & 0x1F)),
            ("status", .string("(\(sstat & 0x7)) " + statusText(sstat))),
        ]
        var members: [(String, JSONOutput)] = [("sprog", .number(log.le(0, as: UInt16.self))), ("sstat", .object(status)),
                                               ("cdw10_info", .number(log.le(4, as: UInt32.self)))]
        members += estimates.map { ($0.json, .number(log.le($0.offset, as: UInt32.self))) }
        return .object([(device, .object(members))])
    }
}

/// `nvmegate sanitize`: the Sanitize command (84h), checked as nvme-cli 2.3 checks it.
struct LogSanitizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sanitize", abstract: "Send a Sanitize command (nvme-cli's sanitize).")

    @OptionGroup var device: DeviceOptions
    @Flag(name: [.customShort("d"), .customLong("no-dealloc")], help: "No deallocate after sanitize.")
    var noDeallocate = false
    @Flag(name: [.customShort("i"), .customLong("oipbp")], help: "Overwrite invert pattern between passes.")
    var invertBetweenPasses = false
    @Option(name: [.customShort("n"), .customLong("owpass")], help: "Overwrite pass count (0-16).")
    var overwritePasses = CommandNumber<UInt8>(0)
    @Flag(name: [.customShort("u"), .customLong("ause")], help: "Allow unrestricted sanitize exit.")
    var allowUnrestrictedExit = false
    @Option(name: [.customShort("a"), .customLong("sanact")],
            help: "Sanitize action: 1 = Exit failure mode, 2 = Start block erase, 3 = Start overwrite, 4 = Start crypto erase (or exit-failure, start-block-erase, start-overwrite, start-crypto-erase).")
    var action: String?
    @Option(name: [.customShort("p"), .customLong("ovrpat")], help: "Overwrite pattern.")
    var pattern = CommandNumber<UInt32>(0)

    func run() throws {
        try reportingFailures {
            let sanact = try action.map(Self.parseAction) ?? 0
            guard (1...4).contains(sanact) else { throw DeviceCommandError("Invalid Sanitize Action") }
            if sanact == 1 && (allowUnrestrictedExit || noDeallocate) { throw DeviceCommandError("SANACT is Exit Failure Mode") }
            if sanact == 3 {
                guard overwritePasses.value <= 16 else { throw DeviceCommandError("OWPASS out of range [0-16]") }
            } else if overwritePasses.value != 0 || invertBetweenPasses || pattern.value != 0 {
                throw DeviceCommandError("SANACT is not Overwrite")
            }
            let cdw10 = UInt32(sanact) | (allowUnrestrictedExit ? 1 << 3 : 0) | UInt32(overwritePasses.value & 0xF) << 4
                | (invertBetweenPasses ? 1 << 8 : 0) | (noDeallocate ? 1 << 9 : 0)
            let session = try DeviceSession(device, writable: true, commandName: "sanitize")
            try session.submit(SubmissionQueueEntry(opcode: AdminOpcode.sanitize.rawValue, cdw10: cdw10, cdw11: pattern.value),
                               queue: .admin)
        }
    }

    /// nvme-cli's `parse_sanact`: an action's name (or an abbreviation of it: one letter for
    /// exit-failure, seven for the others), else a number.
    static func parseAction(_ text: String) throws(DeviceCommandError) -> UInt8 {
        let lowered = text.lowercased()
        if !lowered.isEmpty && "exit-failure".hasPrefix(lowered) { return 1 }
        let starts: [(String, UInt8)] = [("start-block-erase", 2), ("start-overwrite", 3), ("start-crypto-erase", 4)]
        if lowered.count >= 7, let match = starts.first(where: { $0.0.hasPrefix(lowered) }) { return match.1 }
        guard let number = parseUnsigned(text), let value = UInt8(exactly: number) else {
            throw DeviceCommandError("Expected byte argument for 'sanact' but got '\(text)'!")
        }
        return value
    }
}
