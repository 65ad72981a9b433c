import ArgumentParser
import NVMeSpec

/// `nvmegate get-feature`: nvme-cli's get-feature. Reads one feature, or with no
/// `--feature-id` every feature identifier in turn, skipping quietly those the controller
/// answers with Invalid Field (the ones it does not support), as nvme-cli does.
struct FeatureGet: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "get-feature",
        abstract: "Read a feature's current, default or saved value or its capabilities (Get Features), as nvme-cli's get-feature.")

    @OptionGroup var device: DeviceOptions

    @Option(name: [.customShort("f"), .customLong("feature-id")], help: "Feature identifier (0: every feature).")
    var featureID = CommandNumber<UInt8>(0)
    @Option(name: [.customShort("n"), .customLong("namespace-id")],
            help: "NSID (default: the node's own; the broadcast NSID on a controller node).")
    var namespaceID: CommandNumber<UInt32>?
    @Option(name: [.customShort("s"), .customLong("sel")],
            help: "[0-3,8]: current, default, saved, supported capabilities, changed (current differs from default).")
    var select = CommandNumber<UInt8>(0)
    @Option(name: [.customShort("l"), .customLong("data-len")], help: "Buffer length for features that return data (default: the feature's own).")
    var dataLength = CommandNumber<UInt32>(0)
    @Flag(name: [.customShort("b"), .customLong("raw-binary")], help: "Write the feature's data as raw binary.")
    var rawBinary = false
    @Option(name: [.customShort("c"), .customLong("cdw11")], help: "Command Dword 11 (Host Identifier: bit 0 for 128 bits; Interrupt Vector Configuration: the vector).")
    var cdw11 = CommandNumber<UInt32>(0)
    @Option(name: [.customShort("U"), .customLong("uuid-index")], help: "UUID index (0 to 127).")
    var uuidIndex = CommandNumber<UInt8>(0)
    @Flag(name: [.customShort("H"), .customLong("human-readable")], help: "Decode the feature's fields.")
    var humanReadable = false

    /// nvme-cli's checks of the arguments, worded as it words them (exit status 1).
    func checkArguments() throws {
        if select.value > 8 { throw DeviceCommandError("invalid 'select' param:\(select.value)") }
        if uuidIndex.value > 127 { throw DeviceCommandError("invalid uuid index param: \(uuidIndex.value)") }
        if dataLength.value > IOSupport.maxTransfer {
            throw CLIError("--data-len \(dataLength.value) is more than the \(IOSupport.maxTransfer) bytes a feature may return")
        }
    }

    /// One feature's answer: its Dword 0 and data.
    struct Answer: Equatable {
        var result: UInt32
        var data: [UInt8]
    }

    func run() throws {
        try reportingFailures {
            try checkArguments()
            let session = try DeviceSession(device, writable: false, commandName: "get-feature")
            let nsid = try IOSupport.featureNamespaceID(session, namespaceID)
            let identifiers = featureID.value == 0 ? Array(0...UInt8.max) : [featureID.value]
            for fid in identifiers {
                do {
                    try show(fid, session: session, nsid: nsid)
                } catch let error as DeviceCommandError where error.status?.isInvalidField == true && identifiers.count > 1 {
                    continue   // not supported: skipped quietly in the walk over every feature
                }
            }
        }
    }

    /// Reads feature `fid` and prints it; with `--sel 8` only if it differs from its default.
    func show(_ fid: UInt8, session: DeviceSession, nsid: UInt32) throws {
        guard select.value == 8 else {
            return try printAnswer(fid, select.value, get(fid, select: select.value, session: session, nsid: nsid))
        }
        let current = try get(fid, select: 0, session: session, nsid: nsid)
        let initial = try get(fid, select: 1, session: session, nsid: nsid)
        if current != initial { try printAnswer(fid, 8, current) }
    }

    /// Get Features for `fid` with Select `select`, with the data buffer libnvme sizes for it.
    func get(_ fid: UInt8, select: UInt8, session: DeviceSession, nsid: UInt32) throws(DeviceCommandError) -> Answer {
        var length = dataLength.value != 0 ? Int(dataLength.value) : FeatureFields.dataLength(fid, cdw11: UInt64(cdw11.value), toController: false)
        if FeatureID(rawValue: fid) == .hostIdentifier && cdw11.value & 1 != 0 { length = 16 }
        if select == 3 { length = 0 }
        var data = [UInt8](repeating: 0, count: length)
        let command = SubmissionQueueEntry(opcode: AdminOpcode.getFeatures.rawValue, nsid: nsid,
                                           cdw10: UInt32(fid) | UInt32(select) << 8, cdw11: cdw11.value,
                                           cdw14: UInt32(uuidIndex.value))
        let result = try session.submit(command, queue: .admin, data: &data)
        return Answer(result: result, data: data)
    }

    /// nvme-cli's get-feature output: the value line, then the capabilities (select 3), the
    /// decoded fields (-H) or a hex dump of the data; or with -b the data alone.
    func printAnswer(_ fid: UInt8, _ select: UInt8, _ answer: Answer) throws(CLIError) {
        if rawBinary && !answer.data.isEmpty { return try writeStandardOutput(answer.data) }
        var text = "get-feature:\(CFormat.alternateHex(fid, width: fid != 0 ? 4 : 2)) (\(FeatureFields.name(fid))), "
            + "\(FeatureFields.selectName(select)) value:\(CFormat.alternateHex(answer.result, width: answer.result != 0 ? 10 : 8))\n"
        if select == 3 {
            text += FeatureFields.capabilities(answer.result)
        } else if humanReadable {
            text += FeatureFields.decode(fid, result: answer.result, data: answer.data)
        } else if !answer.data.isEmpty {
            text += hexDump(answer.data)
        }
        try printOutput(text)
    }
}

/// `nvmegate set-feature`: nvme-cli's set-feature (Set Features), with the feature's data
/// from `--data` or standard input for the features that carry some.
struct FeatureSet: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "set-feature",
        abstract: "Change a feature's value, and with --save its saved value (Set Features), as nvme-cli's set-feature.")

    @OptionGroup var device: DeviceOptions

    @Option(name: [.customShort("n"), .customLong("namespace-id")],
            help: "NSID (default: the node's own; the broadcast NSID on a controller node).")
    var namespaceID: CommandNumber<UInt32>?
    @Option(name: [.customShort("f"), .customLong("feature-id")], help: "Feature identifier (required).")
    var featureID = CommandNumber<UInt8>(0)
    @Option(name: [.customShort("v"), .customLong("value")], help: "The new value (Command Dword 11).")
    var value = CommandNumber<UInt64>(0)
    @Option(name: [.customShort("c"), .customLong("cdw12")], help: "Command Dword 12, for features that use it.")
    var cdw12 = CommandNumber<UInt32>(0)
    @Option(name: [.customShort("U"), .customLong("uuid-index")], help: "UUID index (0 to 127).")
    var uuidIndex = CommandNumber<UInt8>(0)
    @Option(name: [.customShort("l"), .customLong("data-len")], help: "Data length for features that carry data (default: the feature's own).")
    var dataLength = CommandNumber<UInt32>(0)
    @Option(name: [.customShort("d"), .customLong("data")], help: "File with the feature's data (default: standard input).")
    var dataFile: String?
    @Flag(name: [.customShort("s"), .customLong("save")], help: "Save the value, so it survives a reset (Save bit).")
    var save = false

    /// nvme-cli's checks of the arguments, worded as it words them (exit status 1).
    func checkArguments() throws {
        if featureID.value == 0 { throw DeviceCommandError("feature-id required param") }
        if uuidIndex.value > 127 { throw DeviceCommandError("invalid uuid index param: \(uuidIndex.value)") }
        if dataLength.value > IOSupport.maxTransfer {
            throw CLIError("--data-len \(dataLength.value) is more than the \(IOSupport.maxTransfer) bytes a feature may carry")
        }
    }

    func run() throws {
        try reportingFailures {
            try checkArguments()
            let session = try DeviceSession(device, writable: true, commandName: "set-feature")
            let nsid = try IOSupport.featureNamespaceID(session, namespaceID)
            let fid = featureID.value
            let length = dataLength.value != 0 ? Int(dataLength.value) : FeatureFields.dataLength(fid, cdw11: value.value, toController: true)
            var data = [UInt8](repeating: 0, count: length)
            if length > 0 {
                // A timestamp fits in --value: nvme-cli takes its low 6 bytes when it is given.
                let input: [UInt8] = FeatureID(rawValue: fid) == .timestamp && value.value != 0
                    ? (0..<6).map { UInt8(truncatingIfNeeded: value.value >> (8 * $0)) }
                    : try IOSupport.readInput(dataFile, limit: length)
                data.replaceSubrange(0..<min(input.count, length), with: input.prefix(length))
            }
            let command = SubmissionQueueEntry(opcode: AdminOpcode.setFeatures.rawValue, nsid: nsid,
                                               cdw10: UInt32(fid) | (save ? 1 << 31 : 0),
                                               cdw11: UInt32(truncatingIfNeeded: value.value), cdw12: cdw12.value,
                                               cdw14: UInt32(uuidIndex.value))
            let result = try session.submit(command, queue: .admin, data: &data)
            var text = "set-feature:\(CFormat.alternateHex(fid, width: 4)) (\(FeatureFields.name(fid))), "
                + "value:\(CFormat.alternateHex(value.value, width: value.value != 0 ? 10 : 8)), "
                + "cdw12:\(CFormat.alternateHex(cdw12.value, width: cdw12.value != 0 ? 10 : 8)), "
                + "save:\(CFormat.alternateHex(save ? 1 : 0))\n"
            if FeatureID(rawValue: fid) == .lbaStatusInformationAttributes { text += FeatureFields.lbaStatusInterval(result) }
            if !data.isEmpty {
                text += FeatureID(rawValue: fid) == .lbaRangeType ? FeatureFields.lbaRanges(data, last: Int(result & 0x3F))
                                                                   : hexDump(data)
            }
            try printOutput(text)
        }
    }
}

fileprivate extension NVMeStatus {
    /// Invalid Field in Command, whatever the Do Not Retry and More bits: how a controller
    /// says it does not support a feature.
    var isInvalidField: Bool { type == .generic && code == NVMeStatus.invalidField.code }
}
