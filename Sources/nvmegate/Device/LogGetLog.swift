import ArgumentParser
import NVMeSpec

/// `nvmegate get-log`: any log page by identifier, as a hex dump or raw, read in 4 KiB
/// pieces from --lpo on (nvme-cli 2.3's get-log; note -o is the offset here).
struct LogGetLogCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "get-log", abstract: "Retrieve a log page by identifier, as a hex dump or raw binary (nvme-cli's get-log).")

    @OptionGroup var device: DeviceOptions
    @Option(name: [.customShort("n"), .customLong("namespace-id")], help: "The namespace (4294967295 is 0xffffffff, all).")
    var namespaceID = CommandNumber<UInt32>(LogPageRequest.allNamespaces)
    @Option(name: [.customShort("i"), .customLong("log-id")], help: "The log page identifier.")
    var logID = CommandNumber<UInt8>(0xFF)
    @Option(name: [.customShort("l"), .customLong("log-len")], help: "How many bytes to read (required; whole dwords).")
    var logLength = CommandNumber<UInt32>(0)
    @Option(name: [.customShort("a"), .customLong("aen")], help: "An asynchronous event's result: reads its log page, 4096 bytes.")
    var aen = CommandNumber<UInt32>(0)
    @Option(name: [.customShort("o"), .customLong("lpo")], help: "The log page offset in bytes (K, M, G suffixes: powers of 1024).")
    var offset = LogByteCount(value: 0)
    @Option(name: [.customShort("s"), .customLong("lsp")], help: "The log specific field.")
    var specificField = CommandNumber<UInt8>(0)
    @Option(name: [.customShort("S"), .customLong("lsi")], help: "The log specific identifier.")
    var specificIdentifier = CommandNumber<UInt16>(0)
    @Flag(name: [.customShort("r"), .customLong("rae")], help: "Retain an asynchronous event.")
    var retain = false
    @Option(name: [.customShort("U"), .customLong("uuid-index")], help: "The UUID index.")
    var uuidIndex = CommandNumber<UInt8>(0)
    @Flag(name: [.customShort("b"), .customLong("raw-binary")], help: "Write the log to standard output as raw binary.")
    var rawBinary = false
    @Option(name: [.customShort("y"), .customLong("csi")], help: "The command set identifier (0 NVM).")
    var csi = CommandNumber<UInt8>(0)
    @Flag(name: [.customShort("O"), .customLong("ot")], help: "Offset type: --lpo is an index, not a byte offset.")
    var offsetIsIndex = false

    /// The most one get-log reads (its buffer is allocated whole).
    static let maxLength = 2 << 20

    func run() throws {
        try reportingFailures {
            var id = logID.value, length = Int(logLength.value)
            if aen.value != 0 {
                length = 4096
                id = UInt8(truncatingIfNeeded: aen.value >> 16)
            }
            guard length != 0 else { throw DeviceCommandError("non-zero log-len is required param") }
            guard specificField.value <= 128 else { throw DeviceCommandError("invalid lsp param") }
            guard uuidIndex.value <= 128 else { throw DeviceCommandError("invalid uuid index param") }
            guard length % 4 == 0 else { throw DeviceCommandError("log-len \(length) is not a whole number of dwords (a multiple of 4)") }
            guard length <= Self.maxLength else { throw DeviceCommandError("log-len \(length) is larger than the \(Self.maxLength) bytes one get-log reads") }
            let session = try DeviceSession(device, writable: false, commandName: "log page")
            let request = LogPageRequest(logID: LogPageID(rawValue: id), nsid: namespaceID.value, length: length,
                                         offset: offset.value, specificField: specificField.value,
                                         specificIdentifier: specificIdentifier.value, retainAsynchronousEvent: retain,
                                         uuidIndex: uuidIndex.value, commandSet: csi.value, offsetIsIndex: offsetIsIndex)
            let log = try request.readInPieces(from: session)
            if rawBinary {
                try writeStandardOutput(log)
            } else {
                try printOutput("Device:\(LogFormat.deviceName(session)) log-id:\(id) namespace-id:"
                                + CFormat.alternateHex(namespaceID.value) + "\n" + hexDump(log))
            }
        }
    }
}

/// A byte count written in decimal or 0x hex with an optional binary suffix ("4096", "4K",
/// "1Mi"), as nvme-cli's size options take them.
struct LogByteCount: ExpressibleByArgument {
    var value: UInt64

    init(value: UInt64) { self.value = value }

    init?(argument: String) {
        var digits = Substring(argument)
        if digits.last == "i" || digits.last == "I" { digits = digits.dropLast() }
        var scale: UInt64 = 1
        switch digits.last {
        case "k", "K": scale = 1 << 10
        case "m", "M": scale = 1 << 20
        case "g", "G": scale = 1 << 30
        case "t", "T": scale = 1 << 40
        default: break
        }
        // A hex number's last digit may be a letter; only decimal numbers take a suffix.
        if scale != 1 && !digits.hasPrefix("0x") && !digits.hasPrefix("0X") { digits = digits.dropLast() } else { scale = 1 }
        guard let number = parseUnsigned(digits) else { return nil }
        let (scaled, overflow) = number.multipliedReportingOverflow(by: scale)
        guard !overflow else { return nil }
        value = scaled
    }

    var defaultValueDescription: String { String(value) }
}
