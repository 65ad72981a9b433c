import ArgumentParser
import NVMeSpec

/// `nvmegate effects-log`: the Commands Supported and Effects log (05h), as nvme-cli 2.3
/// prints it: a table per command set, its -H decoding, a JSON array, or the raw pages.
struct LogEffectsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "effects-log", abstract: "Retrieve the Commands Supported and Effects log page and print the table (nvme-cli's effects-log).")

    @OptionGroup var device: DeviceOptions
    @OptionGroup var output: OutputFormatOptions
    @Flag(name: [.customShort("H"), .customLong("human-readable")], help: "Decode each entry's effect bits.")
    var humanReadable = false
    @Option(name: [.customShort("c"), .customLong("csi")],
            help: "The command set's log (0 NVM, 2 Zoned); default: every command set the controller supports.")
    var csi: CommandNumber<UInt8>?

    func run() throws {
        try reportingFailures {
            let session = try DeviceSession(device, writable: false, commandName: "effects log page")
            let commandSets = csi.map { [$0.value] } ?? Self.supportedCommandSets(session)
            // nvme-cli collects its pages at the head of a list, so the last one read prints first.
            var pages: [(csi: UInt8, log: CommandEffectsLog)] = []
            for set in commandSets {
                let request = LogPageRequest(logID: .commandsSupportedAndEffects, length: CommandEffectsLog.size, commandSet: set)
                let bytes = try request.readInPieces(from: session)
                pages.insert((set, CommandEffectsLog(bytes) ?? CommandEffectsLog()), at: 0)
            }
            switch output.format {
            case .binary: try writeStandardOutput(pages.flatMap(\.log.bytes))
            case .json: try printOutput(JSONOutput.array(pages.map { Self.json(csi: $0.csi, log: $0.log) }).rendered)
            case .normal: try printOutput(pages.map { Self.table(csi: $0.csi, log: $0.log, human: humanReadable) }.joined())
            }
        }
    }

    /// The command sets to read without --csi: NVM, then the others the controller reports
    /// for its active namespaces (the CSI in each one's Namespace Identification Descriptor
    /// list), in CSI order. nvme-cli reads CAP.CSS from the controller's registers, which a
    /// passthrough caller cannot map. Only commands every NVMe 1.3 controller answers are
    /// sent (so none lands in its error log); where they are refused, NVM alone.
    static func supportedCommandSets(_ session: DeviceSession) -> [UInt8] {
        func identify(_ cns: IdentifyCNS, nsid: UInt32 = 0) -> [UInt8]? {
            try? IdentifyCommands.identify(session, cns: cns, nsid: nsid)
        }
        var sets: Set<UInt8> = [CommandSet.nvm.rawValue]
        guard let controller = identify(.controller), controller.le(80, as: UInt32.self) >= 0x0001_0300,
              let active = identify(.activeNamespaceIDList) else { return [CommandSet.nvm.rawValue] }
        for i in 0..<1024 {
            let nsid = active.le(4 * i, as: UInt32.self)
            guard nsid != 0, let descriptors = identify(.namespaceIdentificationDescriptorList, nsid: nsid) else { break }
            var o = 0
            while o + 4 <= descriptors.count, descriptors[o] != 0 {   // NIDT, NIDL, 2 reserved, NID
                if descriptors[o] == 4, o + 4 < descriptors.count { sets.insert(descriptors[o + 4]) }   // 4: CSI
                o += 4 + Int(descriptors[o + 1])
            }
        }
        return sets.sorted()
    }

    /// nvme-cli's table for one page: a title, then the supported entries of each section.
    static func table(csi: UInt8, log: CommandEffectsLog, human: Bool) -> String {
        let title: String
        switch CommandSet(rawValue: csi) {
        case .nvm: title = "NVM Command Set Log Page"
        case .zoned: title = "ZNS Command Set Log Page"
        default: title = "Unknown Command Set Log Page"
        }
        var text = title + "\n" + String(repeating: "-", count: 80) + "\n"
        // The section bounds are nvme-cli's, ends excluded (so it never shows BFh or FFh).
        let sections: [(Queue, Range<Int>, String)] = [
            (.admin, 0..<0xBF, "Admin Commands"), (.admin, 0xC0..<0xFF, "Vendor Specific Admin Commands"),
            (.io, 0..<0x80, "I/O Commands"), (.io, 0x80..<0x100, "Vendor Specific I/O Commands"),
        ]
        for (queue, opcodes, header) in sections {
            let rows = opcodes.compactMap { row(queue, UInt8($0), log[queue, UInt8($0)], human: human) }
            if !rows.isEmpty { text += header + "\n" + rows.joined() + "\n" }
        }
        return text
    }

    /// One supported entry: `ACS<opc>  [<name>] <dword>`, with -H its decoded bits.
    private static func row(_ queue: Queue, _ opcode: UInt8, _ effects: CommandEffects, human: Bool) -> String? {
        guard effects.isSupported else { return nil }
        let label = queue == .admin ? "ACS" + CFormat.leftJustified(String(opcode), 6)
                                    : "IOCS" + CFormat.leftJustified(String(opcode), 5)
        var text = label + "[" + CFormat.leftJustified(LogCommandNames.name(queue, opcode), 32) + "] "
            + CFormat.hex(effects.rawValue, width: 8)
        if human {
            func bit(_ name: String, _ flag: CommandEffects) -> String { "  " + name + (effects.contains(flag) ? "+" : "-") }
            text += "  CSUPP+" + bit("LBCC", .logicalBlockContentChange) + bit("NCC", .namespaceCapabilityChange)
                + bit("NIC", .namespaceInventoryChange) + bit("CCC", .controllerCapabilityChange)
                + bit("USS", .uuidSelectionSupported)
            // libnvme 1.3's CSE mask is two bits wide.
            switch effects.submissionAndExecution & 0x3 {
            case 0: text += "  No command restriction"
            case 1: text += "  No other command for same namespace"
            case 2: text += "  No other command for any namespace"
            default: text += "  Reserved CSE"
            }
        }
        return text + "\n"
    }

    /// nvme-cli's JSON object for one page: every supported opcode keyed "ACS_<opc> (<name>)".
    static func json(csi: UInt8, log: CommandEffectsLog) -> JSONOutput {
        func entries(_ queue: Queue, _ prefix: String) -> JSONOutput {
            .object((0..<256).compactMap { i in
                let effects = log[queue, UInt8(i)]
                guard effects.isSupported else { return nil }
                return ("\(prefix)_\(i) (\(LogCommandNames.name(queue, UInt8(i))))", .number(effects.rawValue))
            })
        }
        return .object([("command_set_identifier", .number(csi)), ("admin_cmd_set", entries(.admin, "ACS")),
                        ("io_cmd_set", entries(.io, "IOCS"))])
    }
}
