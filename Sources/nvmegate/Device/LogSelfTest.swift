#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import NVMeSpec

/// `nvmegate self-test-log`: the Device Self-test log (06h), as nvme-cli 2.3 prints it.
struct LogSelfTestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "self-test-log", abstract: "Retrieve the Device Self-test log (nvme-cli's self-test-log).")

    @OptionGroup var device: DeviceOptions
    @Option(name: [.customShort("n"), .customLong("namespace-id")], help: "The namespace (4294967295 is 0xffffffff, all).")
    var namespaceID = CommandNumber<UInt32>(LogPageRequest.allNamespaces)
    @Option(name: [.customShort("e"), .customLong("dst-entries")], help: "How many of the 20 results to show.")
    var entries = CommandNumber<UInt8>(20)
    @OptionGroup var output: OutputFormatOptions
    @Flag(name: [.customShort("v"), .customLong("verbose")], help: "Explain each result and self-test code.")
    var verbose = false

    /// The page's size (libnvme's `struct nvme_self_test_log`): a 4-byte header, 20 results.
    static let size = 564

    func run() throws {
        try reportingFailures {
            let session = try DeviceSession(device, writable: false, commandName: "self test log")
            let log = try Self.read(session, nsid: namespaceID.value)
            let shown = min(Int(entries.value), 20)
            switch output.format {
            case .binary: try writeStandardOutput(log)
            case .json: try printOutput(Self.json(log, entries: shown).rendered)
            case .normal: try printOutput(Self.text(log, entries: shown, device: LogFormat.deviceName(session), verbose: verbose))
            }
        }
    }

    /// The log, one command.
    static func read(_ session: DeviceSession, nsid: UInt32) throws(DeviceCommandError) -> [UInt8] {
        try LogPageRequest(logID: .deviceSelfTest, nsid: nsid, length: size).read(from: session)
    }

    /// nvme-cli's words for a result's Result field (index 0xF: entry not used).
    private static let results: [Int: String] = [
        0: "Operation completed without error",
        1: "Operation was aborted by a Device Self-test command",
        2: "Operation was aborted by a Controller Level Reset",
        3: "Operation was aborted due to a removal of a namespace from the namespace inventory",
        4: "Operation was aborted due to the processing of a Format NVM command",
        5: "A fatal error or unknown test error occurred while the controller was executing the device self-test operation and the operation did not complete",
        6: "Operation completed with a segment that failed and the segment that failed is not known",
        7: "Operation completed with one or more failed segments and the first segment that failed is indicated in the SegmentNumber field",
        8: "Operation was aborted for unknown reason",
        9: "Operation was aborted due to a sanitize operation",
        10: "Reserved",
    ]
    /// The words for result 0xF, and nvme-cli's fallback for results it has no words for.
    private static let entryNotUsed = "Entry not used (does not contain a result)"

    /// nvme-cli's `nvme_show_self_test_log` text.
    static func text(_ log: [UInt8], entries: Int, device: String, verbose: Bool) -> String {
        var lines = ["Device Self Test Log for NVME device:\(device)", "Current operation  : " + CFormat.alternateHex(log[0]),
                     "Current Completion : \(log[1])%"]
        for i in 0..<entries {
            let o = 4 + 28 * i
            let result = Int(log[o] & 0xF), code = log[o] >> 4, vdi = log[o + 2]
            lines.append("Self Test Result[\(i)]:")
            // nvme-cli falls back to its table's last entry where it has no words.
            lines.append("  Operation Result             : " + CFormat.alternateHex(result)
                         + (verbose ? " " + (results[result] ?? Self.entryNotUsed) : ""))
            if result == 0xF { continue }
            var codeLine = "  Self Test Code               : " + CFormat.hex(code)
            if verbose {
                switch code {
                case 1: codeLine += " Short device self-test operation"
                case 2: codeLine += " Extended device self-test operation"
                case 0xE: codeLine += " Vendor specific"
                default: codeLine += " Reserved"
                }
            }
            lines.append(codeLine)
            if result == 7 { lines.append("  Segment Number               : " + CFormat.alternateHex(log[o + 1])) }
            lines.append("  Valid Diagnostic Information : " + CFormat.alternateHex(vdi))
            lines.append("  Power on hours (POH)         : " + CFormat.alternateHex(log.le(o + 4, as: UInt64.self)))
            if vdi & 1 != 0 { lines.append("  Namespace Identifier         : " + CFormat.alternateHex(log.le(o + 12, as: UInt32.self))) }
            if vdi & 2 != 0 { lines.append("  Failing LBA                  : " + CFormat.alternateHex(log.le(o + 16, as: UInt64.self))) }
            if vdi & 4 != 0 { lines.append("  Status Code Type             : " + CFormat.alternateHex(log[o + 24])) }
            if vdi & 8 != 0 {
                let status = NVMeStatus(rawValue: UInt16(log[o + 24] & 7) << 8 | UInt16(log[o + 25]))
                lines.append("  Status Code                  : " + CFormat.alternateHex(log[o + 25])
                             + (verbose ? " " + LogFormat.statusText(status) : ""))
            }
            lines.append("  Vendor Specific              : " + CFormat.alternateHex(log[o + 26]) + " " + CFormat.alternateHex(log[o + 27]))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// nvme-cli's `json_self_test_log`.
    static func json(_ log: [UInt8], entries: Int) -> JSONOutput {
        let reports: [JSONOutput] = (0..<entries).map { i in
            let o = 4 + 28 * i
            let result = log[o] & 0xF, vdi = log[o + 2]
            var members: [(String, JSONOutput)] = [("Self test result", .number(result))]
            guard result != 0xF else { return .object(members) }
            members += [("Self test code", .number(log[o] >> 4)), ("Segment number", .number(log[o + 1])),
                        ("Valid Diagnostic Information", .number(vdi)), ("Power on hours", .number(log.le(o + 4, as: UInt64.self)))]
            if vdi & 1 != 0 { members.append(("Namespace Identifier", .number(log.le(o + 12, as: UInt32.self)))) }
            if vdi & 2 != 0 { members.append(("Failing LBA", .number(log.le(o + 16, as: UInt64.self)))) }
            if vdi & 4 != 0 { members.append(("Status Code Type", .number(log[o + 24]))) }
            if vdi & 8 != 0 { members.append(("Status Code", .number(log[o + 25]))) }
            members.append(("Vendor Specific", .number(UInt16(log[o + 27]) << 8 | UInt16(log[o + 26]))))
            return .object(members)
        }
        return .object([("Current Device Self-Test Operation", .number(log[0])),
                        ("Current Device Self-Test Completion", .number(log[1])),
                        ("List of Valid Reports", .array(reports))])
    }
}

/// `nvmegate device-self-test`: Device Self-test (14h) with nvme-cli's messages; --wait
/// follows the self-test log until the operation ends.
struct LogDeviceSelfTestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "device-self-test", abstract: "Start or abort a device self-test (nvme-cli's device-self-test).")

    @OptionGroup var device: DeviceOptions
    @Option(name: [.customShort("n"), .customLong("namespace-id")], help: "The namespace to test (4294967295 is 0xffffffff, all).")
    var namespaceID = CommandNumber<UInt32>(LogPageRequest.allNamespaces)
    @Option(name: [.customShort("s"), .customLong("self-test-code")],
            help: "1h short, 2h extended, eh vendor specific, fh abort the running test.")
    var code = CommandNumber<UInt8>(0)
    @Flag(name: [.customShort("w"), .customLong("wait")], help: "Wait until the self-test ends, showing its progress.")
    var wait = false

    func run() throws {
        try reportingFailures {
            let session = try DeviceSession(device, writable: true, commandName: "Device self-test")
            try session.submit(SubmissionQueueEntry(opcode: AdminOpcode.deviceSelfTest.rawValue, nsid: namespaceID.value,
                                                    cdw10: UInt32(code.value & 0xF)), queue: .admin)
            switch code.value {
            case 0xF: try printOutput("Aborting device self-test operation\n")
            case 2: try printOutput("Extended Device self-test started\n")
            case 1: try printOutput("Short Device self-test started\n")
            default: break
            }
            if wait && code.value != 0xF { try waitForCompletion(session) }
        }
    }

    /// Polls the self-test log once a second until no operation is in progress, drawing
    /// nvme-cli's progress bar; gives up after the controller's EDSTT (minutes) plus a minute.
    private func waitForCompletion(_ session: DeviceSession) throws {
        let identify = try IdentifyCommands.identify(session, cns: .controller)
        let limit = Int(identify.le(316, as: UInt16.self)) * 60 + 60
        try printOutput("Waiting for self test completion...\n")
        let spinner = Array("-\\|/")
        for tick in 0...limit {
            let log = try LogSelfTestCommand.read(session, nsid: LogPageRequest.allNamespaces)
            let running = log[0] & 0xF != 0
            let percent = running ? Int(log[1] & 0x7F) : 100
            let bar = String(repeating: "-", count: percent / 2) + String(spinner[tick % 4])
                + String(repeating: " ", count: max(0, 49 - percent / 2))
            let shown = String(percent)
            try printOutput("\r[" + bar + "] " + String(repeating: " ", count: 3 - shown.count) + shown + "%")
            if !running {
                try printOutput("\n")
                return
            }
            sleep(1)
        }
        try printOutput("\n")
        throw DeviceCommandError("Device self-test: timed out after \(limit) seconds")
    }
}
