import ArgumentParser
import NVMeSpec

/// `nvmegate resv-register`: nvme-cli's resv-register (Reservation Register, 0Dh).
struct ReservationRegisterCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resv-register",
        abstract: "Register, unregister or replace a reservation key on a namespace, as nvme-cli's resv-register.")

    @OptionGroup var device: DeviceOptions

    @Option(name: [.customShort("n"), .customLong("namespace-id")], help: "NSID (default: the node's own).")
    var namespaceID: CommandNumber<UInt32>?
    @Option(name: [.customShort("c"), .customLong("crkey")], help: "Current reservation key.")
    var currentKey = CommandNumber<UInt64>(0)
    @Option(name: [.customShort("k"), .customLong("nrkey")], help: "New reservation key.")
    var newKey = CommandNumber<UInt64>(0)
    @Option(name: [.customShort("r"), .customLong("rrega")], help: "Registration action: 0 register, 1 unregister, 2 replace.")
    var action = CommandNumber<UInt8>(0)
    @Option(name: [.customShort("p"), .customLong("cptpl")],
            help: "Change Persist Through Power Loss: 0 no change, 2 clear, 3 set.")
    var persistence = CommandNumber<UInt8>(0)
    @Flag(name: [.customShort("i"), .customLong("iekey")], help: "Ignore the existing key.")
    var ignoreExistingKey = false

    /// nvme-cli's checks of the arguments, worded as it words them (exit status 1).
    func checkArguments() throws {
        if persistence.value > 3 { throw DeviceCommandError("invalid cptpl:\(persistence.value)") }
        if action.value > 7 { throw DeviceCommandError("invalid rrega:\(action.value)") }
    }

    func run() throws {
        try reportingFailures {
            try checkArguments()
            let session = try DeviceSession(device, writable: true, commandName: "reservation register")
            let nsid = try session.namespaceID(namespaceID)
            var keys = ReservationKeys.bytes(currentKey.value, newKey.value)
            let cdw10 = UInt32(action.value) | (ignoreExistingKey ? 1 << 3 : 0) | UInt32(persistence.value) << 30
            try session.submit(SubmissionQueueEntry(opcode: IOOpcode.reservationRegister.rawValue, nsid: nsid, cdw10: cdw10),
                               queue: .io, data: &keys)
            try printOutput("NVME Reservation  success\n")
        }
    }
}

/// `nvmegate resv-acquire`: nvme-cli's resv-acquire (Reservation Acquire, 11h).
struct ReservationAcquireCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resv-acquire",
        abstract: "Acquire or preempt a reservation on a namespace, as nvme-cli's resv-acquire.")

    @OptionGroup var device: DeviceOptions

    @Option(name: [.customShort("n"), .customLong("namespace-id")], help: "NSID (default: the node's own).")
    var namespaceID: CommandNumber<UInt32>?
    @Option(name: [.customShort("c"), .customLong("crkey")], help: "Current reservation key.")
    var currentKey = CommandNumber<UInt64>(0)
    @Option(name: [.customShort("p"), .customLong("prkey")], help: "Preempt reservation key.")
    var preemptKey = CommandNumber<UInt64>(0)
    @Option(name: [.customShort("t"), .customLong("rtype")],
            help: "Reservation type: 1 Write Exclusive, 2 Exclusive Access, 3/4 the same for registrants only, 5/6 for all registrants.")
    var type = CommandNumber<UInt8>(0)
    @Option(name: [.customShort("a"), .customLong("racqa")], help: "Acquire action: 0 acquire, 1 preempt, 2 preempt and abort.")
    var action = CommandNumber<UInt8>(0)
    @Flag(name: [.customShort("i"), .customLong("iekey")], help: "Ignore the existing key.")
    var ignoreExistingKey = false

    /// nvme-cli's checks of the arguments, worded as it words them (exit status 1).
    func checkArguments() throws {
        if action.value > 7 { throw DeviceCommandError("invalid racqa:\(action.value)") }
    }

    func run() throws {
        try reportingFailures {
            try checkArguments()
            let session = try DeviceSession(device, writable: true, commandName: "reservation acquire")
            let nsid = try session.namespaceID(namespaceID)
            var keys = ReservationKeys.bytes(currentKey.value, preemptKey.value)
            let cdw10 = UInt32(action.value) | (ignoreExistingKey ? 1 << 3 : 0) | UInt32(type.value) << 8
            try session.submit(SubmissionQueueEntry(opcode: IOOpcode.reservationAcquire.rawValue, nsid: nsid, cdw10: cdw10),
                               queue: .io, data: &keys)
            try printOutput("NVME Reservation Acquire success\n")
        }
    }
}

/// `nvmegate resv-release`: nvme-cli's resv-release (Reservation Release, 15h).
struct ReservationReleaseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resv-release",
        abstract: "Release or clear a reservation on a namespace, as nvme-cli's resv-release.")

    @OptionGroup var device: DeviceOptions

    @Option(name: [.customShort("n"), .customLong("namespace-id")], help: "NSID (default: the node's own).")
    var namespaceID: CommandNumber<UInt32>?
    @Option(name: [.customShort("c"), .customLong("crkey")], help: "Current reservation key.")
    var currentKey = CommandNumber<UInt64>(0)
    @Option(name: [.customShort("t"), .customLong("rtype")], help: "Reservation type (the one held).")
    var type = CommandNumber<UInt8>(0)
    @Option(name: [.customShort("a"), .customLong("rrela")], help: "Release action: 0 release, 1 clear.")
    var action = CommandNumber<UInt8>(0)
    @Flag(name: [.customShort("i"), .customLong("iekey")], help: "Ignore the existing key.")
    var ignoreExistingKey = false

    /// nvme-cli's checks of the arguments, worded as it words them (exit status 1).
    func checkArguments() throws {
        if action.value > 7 { throw DeviceCommandError("invalid rrela:\(action.value)") }
    }

    func run() throws {
        try reportingFailures {
            try checkArguments()
            let session = try DeviceSession(device, writable: true, commandName: "reservation release")
            let nsid = try session.namespaceID(namespaceID)
            var key = Array(ReservationKeys.bytes(currentKey.value, 0).prefix(8))
            let cdw10 = UInt32(action.value) | (ignoreExistingKey ? 1 << 3 : 0) | UInt32(type.value) << 8
            try session.submit(SubmissionQueueEntry(opcode: IOOpcode.reservationRelease.rawValue, nsid: nsid, cdw10: cdw10),
                               queue: .io, data: &key)
            try printOutput("NVME Reservation Release success\n")
        }
    }
}

/// `nvmegate resv-report`: nvme-cli's resv-report (Reservation Report, 0Eh), as text, JSON
/// or the raw Reservation Status structure.
struct ReservationReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resv-report",
        abstract: "Show a namespace's reservation and its registered controllers, as nvme-cli's resv-report.")

    @OptionGroup var device: DeviceOptions

    @Option(name: [.customShort("n"), .customLong("namespace-id")], help: "NSID (default: the node's own).")
    var namespaceID: CommandNumber<UInt32>?
    @Option(name: [.customShort("d"), .customLong("numd")], help: "Dwords to transfer, 0's based (3 to 1023; 0: 1023).")
    var dwords = CommandNumber<UInt32>(0)
    @Flag(name: [.customShort("e"), .customLong("eds")], help: "Request the extended data structure (128-bit host identifiers).")
    var extended = false
    @OptionGroup var output: OutputFormatOptions

    /// The transfer length in bytes: NUMD bounded to 3...1023 as nvme-cli bounds it.
    var length: Int {
        var numd = dwords.value
        if numd == 0 || numd >= 1024 { numd = 1023 }
        return (Int(max(numd, 3)) + 1) * 4
    }

    func run() throws {
        try reportingFailures {
            // Reading the reservation changes nothing: the node is opened read-only.
            let session = try DeviceSession(device, writable: false, commandName: "reservation report")
            let nsid = try session.namespaceID(namespaceID)
            var status = [UInt8](repeating: 0, count: length)
            try session.submit(SubmissionQueueEntry(opcode: IOOpcode.reservationReport.rawValue, nsid: nsid,
                                                    cdw10: UInt32(length / 4 - 1), cdw11: extended ? 1 : 0),
                               queue: .io, data: &status)
            let report = ReservationStatus(status, extended: extended)
            switch output.format {
            case .binary: try writeStandardOutput(status)
            case .json: try printOutput(report.json.rendered)
            case .normal: try printOutput(report.text)
            }
        }
    }
}

/// The 16-byte key data of Reservation Register and Acquire (and the first 8 of Release).
enum ReservationKeys {
    static func bytes(_ first: UInt64, _ second: UInt64) -> [UInt8] {
        (0..<16).map { i in UInt8(truncatingIfNeeded: (i < 8 ? first : second) >> (8 * UInt64(i % 8))) }
    }
}

/// A Reservation Status data structure (NVMe Base 2.x, "Reservation Status Data Structure"),
/// read as nvme-cli 2.3's nvme_show_resv_report prints it: only as many registered controller
/// entries as both REGCTL and the transfer hold.
struct ReservationStatus {
    let bytes: [UInt8]
    let extended: Bool

    init(_ bytes: [UInt8], extended: Bool) { self.bytes = bytes; self.extended = extended }

    var generation: UInt32 { bytes.le(0) }
    var type: UInt8 { bytes[4] }
    var registeredControllers: UInt16 { bytes.le(5) }
    var persistThroughPowerLoss: UInt8 { bytes[9] }

    /// One registered controller: 24 bytes, or 64 with the extended structure.
    struct Entry {
        var controllerID: UInt16
        var status: UInt8
        var hostID: [UInt8]
        var key: UInt64
    }

    var entries: [Entry] {
        let size = extended ? 64 : 24
        let count = min(Int(registeredControllers), (bytes.count - size) / size)
        return (0..<max(count, 0)).map { i in
            let at = size * (i + 1)
            return extended
                ? Entry(controllerID: bytes.le(at), status: bytes[at + 2], hostID: Array(bytes[(at + 16)..<(at + 32)]),
                        key: bytes.le(at + 8))
                : Entry(controllerID: bytes.le(at), status: bytes[at + 2], hostID: Array(bytes[(at + 8)..<(at + 16)]),
                        key: bytes.le(at + 16))
        }
    }

    /// nvme-cli's text.
    var text: String {
        var text = "\nNVME Reservation status:\n\n"
        text += "gen       : \(generation)\n"
        text += "rtype     : \(type)\n"
        text += "regctl    : \(registeredControllers)\n"
        text += "ptpls     : \(persistThroughPowerLoss)\n"
        for (i, entry) in entries.enumerated() {
            if extended {
                text += "regctlext[\(i)] :\n"
                text += "  cntlid     : \(String(entry.controllerID, radix: 16))\n"
                text += "  rcsts      : \(String(entry.status, radix: 16))\n"
                text += "  rkey       : \(String(entry.key, radix: 16))\n"
                // nvme-cli prints each byte with %x: no leading zeroes.
                text += "  hostid     : " + entry.hostID.map { String($0, radix: 16) }.joined() + "\n"
            } else {
                text += "regctl[\(i)] :\n"
                text += "  cntlid  : \(String(entry.controllerID, radix: 16))\n"
                text += "  rcsts   : \(String(entry.status, radix: 16))\n"
                text += "  hostid  : \(String(entry.hostID.le(0, as: UInt64.self), radix: 16))\n"
                text += "  rkey    : \(String(entry.key, radix: 16))\n"
            }
        }
        return text + "\n"
    }

    /// nvme-cli's JSON: "regctls" entries, or "regctlext" with the host identifier as hex text.
    var json: JSONOutput {
        let controllers: [JSONOutput] = entries.map { entry in
            extended
                ? .object([("cntlid", .number(entry.controllerID)), ("rcsts", .number(entry.status)),
                           ("rkey", .number(entry.key)),
                           ("hostid", .string(entry.hostID.map { FeatureFields.hexPair($0) }.joined()))])
                : .object([("cntlid", .number(entry.controllerID)), ("rcsts", .number(entry.status)),
                           ("hostid", .number(entry.hostID.le(0, as: UInt64.self))), ("rkey", .number(entry.key))])
        }
        return .object([("gen", .number(generation)), ("rtype", .number(type)), ("regctl", .number(registeredControllers)),
                        ("ptpls", .number(persistThroughPowerLoss)),
                        (extended ? "regctlext" : "regctls", .array(controllers))])
    }
}
