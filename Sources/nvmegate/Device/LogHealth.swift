import ArgumentParser
import NVMeSpec

/// `nvmegate smart-log`: the SMART / Health Information log (02h), as nvme-cli 2.3 prints it.
struct LogSmartCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "smart-log", abstract: "Retrieve the SMART / Health Information log (nvme-cli's smart-log).")

    @OptionGroup var device: DeviceOptions
    @Option(name: [.customShort("n"), .customLong("namespace-id")], help: "The namespace (4294967295 is 0xffffffff, the controller).")
    var namespaceID = CommandNumber<UInt32>(LogPageRequest.allNamespaces)
    @OptionGroup var output: OutputFormatOptions
    @Flag(name: [.customShort("H"), .customLong("human-readable")], help: "Decode the critical warning bits.")
    var humanReadable = false

    /// The page's size (libnvme's `struct nvme_smart_log`).
    static let size = 512

    func run() throws {
        try reportingFailures {
            let session = try DeviceSession(device, writable: false, commandName: "smart log")
            let log = try LogPageRequest(logID: .smartHealthInformation, nsid: namespaceID.value, length: Self.size)
                .read(from: session)
            switch output.format {
            case .binary: try writeStandardOutput(log)
            case .json: try printOutput(Self.json(log, human: humanReadable).rendered)
            case .normal:
                try printOutput(Self.text(log, device: LogFormat.deviceName(session), nsid: namespaceID.value, human: humanReadable))
            }
        }
    }

    /// The 128-bit counters at 32...191, in nvme-cli's order, with their JSON and text names.
    private static let counters: [(offset: Int, json: String, text: String)] = [
        (32, "data_units_read", "data_units_read\t\t\t\t"), (48, "data_units_written", "data_units_written\t\t\t"),
        (64, "host_read_commands", "host_read_commands\t\t\t"), (80, "host_write_commands", "host_write_commands\t\t\t"),
        (96, "controller_busy_time", "controller_busy_time\t\t\t"), (112, "power_cycles", "power_cycles\t\t\t\t"),
        (128, "power_on_hours", "power_on_hours\t\t\t\t"), (144, "unsafe_shutdowns", "unsafe_shutdowns\t\t\t"),
        (160, "media_errors", "media_errors\t\t\t\t"), (176, "num_err_log_entries", "num_err_log_entries\t\t\t"),
    ]

    /// The critical warning bits -H decodes: JSON name, text label.
    private static let warningBits: [(json: String, text: String)] = [
        ("available_spare", "Available Spare[0]             "), ("temp_threshold", "Temp. Threshold[1]             "),
        ("reliability_degraded", "NVM subsystem Reliability[2]   "), ("ro", "Read-only[3]                   "),
        ("vmbu_failed", "Volatile mem. backup failed[4] "), ("pmr_ro", "Persistent Mem. RO[5]          "),
    ]

    /// The thermal management counters at 216...231.
    private static let thermal: [(offset: Int, json: String, text: String)] = [
        (216, "thm_temp1_trans_count", "Thermal Management T1 Trans Count\t"),
        (220, "thm_temp2_trans_count", "Thermal Management T2 Trans Count\t"),
        (224, "thm_temp1_total_time", "Thermal Management T1 Total Time\t"),
        (228, "thm_temp2_total_time", "Thermal Management T2 Total Time\t"),
    ]

    /// nvme-cli's `nvme_show_smart_log` text.
    static func text(_ log: [UInt8], device: String, nsid: UInt32, human: Bool) -> String {
        let warning = log[0]
        var lines = ["Smart Log for NVME device:\(device) namespace-id:\(CFormat.hex(nsid))",
                     "critical_warning\t\t\t: \(CFormat.alternateHex(warning))"]
        if human {
            for (bit, name) in warningBits.enumerated() { lines.append("      \(name.text): \(warning >> bit & 1)") }
        }
        lines += [
            "temperature\t\t\t\t: " + LogFormat.temperature(kelvin: log.le(1, as: UInt16.self)),
            "available_spare\t\t\t\t: \(log[3])%", "available_spare_threshold\t\t: \(log[4])%",
            "percentage_used\t\t\t\t: \(log[5])%",
            "endurance group critical warning summary: " + CFormat.alternateHex(log[6]),
        ]
        lines += counters.map { $0.text + ": " + LogFormat.decimal128(log, at: $0.offset) }
        lines.append("Warning Temperature Time\t\t: \(log.le(192, as: UInt32.self))")
        lines.append("Critical Composite Temperature Time\t: \(log.le(196, as: UInt32.self))")
        for sensor in 0..<8 {
            let kelvin = log.le(200 + 2 * sensor, as: UInt16.self)
            if kelvin != 0 { lines.append("Temperature Sensor \(sensor + 1)           : " + LogFormat.temperature(kelvin: kelvin)) }
        }
        lines += thermal.map { $0.text + ": \(log.le($0.offset, as: UInt32.self))" }
        return lines.joined(separator: "\n") + "\n"
    }

    /// nvme-cli's `json_smart_log`: the 128-bit counters are strings of digits, as 2.3 writes
    /// them (json-c has no 128-bit numbers).
    static func json(_ log: [UInt8], human: Bool) -> JSONOutput {
        let warning = log[0]
        var members: [(String, JSONOutput)] = []
        if human {
            let bits = warningBits.enumerated().map { ($0.element.json, JSONOutput.number(warning >> $0.offset & 1)) }
            members.append(("critical_warning", .object([("value", .number(warning))] + bits)))
        } else {
            members.append(("critical_warning", .number(warning)))
        }
        members += [("temperature", .number(log.le(1, as: UInt16.self))), ("avail_spare", .number(log[3])),
                    ("spare_thresh", .number(log[4])), ("percent_used", .number(log[5])),
                    ("endurance_grp_critical_warning_summary", .number(log[6]))]
        members += counters.map { ($0.json, .string(LogFormat.decimal128(log, at: $0.offset))) }
        members += [("warning_temp_time", .number(log.le(192, as: UInt32.self))),
                    ("critical_comp_time", .number(log.le(196, as: UInt32.self)))]
        for sensor in 0..<8 {
            let kelvin = log.le(200 + 2 * sensor, as: UInt16.self)
            if kelvin != 0 { members.append(("temperature_sensor_\(sensor + 1)", .number(kelvin))) }
        }
        members += thermal.map { ($0.json, .number(log.le($0.offset, as: UInt32.self))) }
        return .object(members)
    }
}

/// `nvmegate error-log`: Error Information log entries (01h), as nvme-cli 2.3 prints them.
struct LogErrorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "error-log", abstract: "Retrieve Error Information log entries (nvme-cli's error-log).")

    @OptionGroup var device: DeviceOptions
    @Option(name: [.customShort("e"), .customLong("log-entries")], help: "How many entries to read (at most the controller's ELPE + 1).")
    var logEntries = CommandNumber<UInt32>(64)
    @OptionGroup var output: OutputFormatOptions

    /// One entry's size (libnvme's `struct nvme_error_log_page`).
    static let entrySize = 64

    func run() throws {
        try reportingFailures {
            guard logEntries.value != 0 else { throw DeviceCommandError("non-zero log-entries is required param") }
            let session = try DeviceSession(device, writable: false, commandName: "error log")
            // As nvme-cli: no more entries than Identify Controller's ELPE (0's based) allows.
            let identify: [UInt8]
            do {
                identify = try IdentifyCommands.identify(session, cns: .controller)
            } catch let error as DeviceCommandError where error.status != nil {
                throw DeviceCommandError("could not identify controller")
            }
            let entries = Int(min(logEntries.value, UInt32(identify[262]) + 1))
            let log = try LogPageRequest(logID: .errorInformation, length: entries * Self.entrySize).read(from: session)
            switch output.format {
            case .binary: try writeStandardOutput(log)
            case .json: try printOutput(Self.json(log, entries: entries).rendered)
            case .normal: try printOutput(Self.text(log, entries: entries, device: LogFormat.deviceName(session)))
            }
        }
    }

    /// nvme-cli's words for an entry's Transport Type.
    private static func transportType(_ type: UInt8) -> String {
        switch type {
        case 0: "The transport type is not indicated or the error is not transport related."
        case 1: "RDMA Transport error."
        case 2: "Fibre Channel Transport error."
        case 3: "TCP Transport error."
        case 254: "Intra-host Transport error."
        default: "Reserved"
        }
    }

    /// nvme-cli's `nvme_show_error_log` text.
    static func text(_ log: [UInt8], entries: Int, device: String) -> String {
        let rule = "................."
        var lines = ["Error Log Entries for device:\(device) entries:\(entries)", rule]
        for i in 0..<entries {
            let o = i * entrySize
            let status = log.le(o + 12, as: UInt16.self) >> 1
            let index = String(i)
            lines += [
                " Entry[" + String(repeating: " ", count: max(0, 2 - index.count)) + index + "]   ", rule,
                "error_count\t: \(log.le(o, as: UInt64.self))",
                "sqid\t\t: \(log.le(o + 8, as: UInt16.self))",
                "cmdid\t\t: " + CFormat.alternateHex(log.le(o + 10, as: UInt16.self)),
                "status_field\t: " + CFormat.alternateHex(status) + "(" + LogFormat.statusText(NVMeStatus(rawValue: status)) + ")",
                "phase_tag\t: " + CFormat.alternateHex(log.le(o + 12, as: UInt16.self) & 1),
                "parm_err_loc\t: " + CFormat.alternateHex(log.le(o + 14, as: UInt16.self)),
                "lba\t\t: " + CFormat.alternateHex(log.le(o + 16, as: UInt64.self)),
                "nsid\t\t: " + CFormat.alternateHex(log.le(o + 24, as: UInt32.self)),
                "vs\t\t: \(log[o + 28])",
                "trtype\t\t: " + transportType(log[o + 29]),
                "cs\t\t: " + CFormat.alternateHex(log.le(o + 32, as: UInt64.self)),
                "trtype_spec_info: " + CFormat.alternateHex(log.le(o + 40, as: UInt16.self)),
                rule,
            ]
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// nvme-cli's `json_error_log`: {"errors":[…]}.
    static func json(_ log: [UInt8], entries: Int) -> JSONOutput {
        .object([("errors", .array((0..<entries).map { i in
            let o = i * entrySize
            let status = log.le(o + 12, as: UInt16.self)
            return .object([
                ("error_count", .number(log.le(o, as: UInt64.self))), ("sqid", .number(log.le(o + 8, as: UInt16.self))),
                ("cmdid", .number(log.le(o + 10, as: UInt16.self))), ("status_field", .number(status >> 1)),
                ("phase_tag", .number(status & 1)), ("parm_error_location", .number(log.le(o + 14, as: UInt16.self))),
                ("lba", .number(log.le(o + 16, as: UInt64.self))), ("nsid", .number(log.le(o + 24, as: UInt32.self))),
                ("vs", .number(log[o + 28])), ("trtype", .number(log[o + 29])),
                ("cs", .number(log.le(o + 32, as: UInt64.self))),
                ("trtype_spec_info", .number(log.le(o + 40, as: UInt16.self))),
            ])
        }))])
    }
}
