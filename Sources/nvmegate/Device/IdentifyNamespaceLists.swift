import ArgumentParser
import NVMeSpec

extension IdentifyCommands {
    /// `nvmegate list-ns`: a namespace ID list (CNS 02h active, 10h allocated, or their
    /// command-set-specific 07h and 1Ah with `--csi`), as nvme-cli 2.3 prints it.
    struct ListNS: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list-ns",
            abstract: "Show the namespace list of the controller (nvme-cli's list-ns), through the policy.")
        @OptionGroup var device: DeviceOptions
        @Option(name: [.customShort("n"), .customLong("namespace-id")], help: "The first NSID the list may hold.")
        var namespaceID = CommandNumber<UInt32>(1)
        @Option(name: [.customShort("y"), .customShort("c"), .customLong("csi")],
                help: "List only namespaces of this I/O Command Set (CNS 07h, or 1Ah with --all).")
        var csi: CommandNumber<UInt8>?
        @Flag(name: [.customShort("a"), .customLong("all")],
              help: "List every allocated namespace, attached or not (CNS 10h).")
        var all = false
        @Option(name: [.customShort("o"), .customLong("output-format")], help: ArgumentHelp("Output format.", valueName: "fmt"))
        var outputFormat: ListFormat = .normal

        /// list-ns's output formats: nvme-cli's list-ns has no binary output.
        enum ListFormat: String, ExpressibleByArgument, CaseIterable {
            case normal, json
        }

        /// The CNS the flags select.
        var cns: IdentifyCNS {
            switch (csi != nil, all) {
            case (false, false): .activeNamespaceIDList
            case (false, true): .allocatedNamespaceIDList
            case (true, false): .ioCommandSetActiveNamespaceIDList
            case (true, true): .ioCommandSetAllocatedNamespaceIDList
            }
        }

        func run() throws {
            try reportingFailures {
                guard namespaceID.value != 0 else { throw DeviceCommandError("invalid nsid parameter") }
                let session = try DeviceSession(device, writable: false, commandName: "id namespace list")
                // The list holds the NSIDs greater than the command's NSID.
                let data = try identify(session, cns: cns, nsid: namespaceID.value - 1, csi: csi?.value ?? 0)
                let entries = (0..<1024).map { data.le(4 * $0, as: UInt32.self) }
                switch outputFormat {
                case .json:
                    let list = entries.filter { $0 != 0 }.map { JSONOutput.object([("nsid", .unsigned(UInt64($0)))]) }
                    try printOutput(JSONOutput.object([("nsid_list", .array(list))]).rendered)
                case .normal:
                    var out = ""
                    for (i, nsid) in entries.enumerated() where nsid != 0 {
                        out += "[\(CFormat.rightJustified(String(i), 4))]:\(CFormat.alternateHex(nsid))\n"
                    }
                    try printOutput(out)
                }
            }
        }
    }

    /// `nvmegate ns-descs`: the Namespace Identification Descriptor list (CNS 03h), as
    /// nvme-cli 2.3 prints it.
    struct NSDescs: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "ns-descs",
            abstract: "Show a namespace's identification descriptors (nvme-cli's ns-descs), through the policy.")
        @OptionGroup var device: DeviceOptions
        @Option(name: [.customShort("n"), .customLong("namespace-id")],
                help: "The namespace (default: the node's own, by NVME_IOCTL_ID).")
        var namespaceID: CommandNumber<UInt32>?
        @OptionGroup var output: OutputFormatOptions
        @Flag(name: [.customShort("H"), .customLong("human-readable")],
              help: "Accepted; the descriptors print the same (nvme-cli 2.3's ns-descs has no -H).")
        var humanReadable = false

        /// One descriptor: where it starts, its type and length, its type's name and its value as text.
        struct Descriptor {
            var location: Int, type: UInt8, length: UInt8, name: String, value: String
        }

        /// The known descriptors of `data`, in order, up to the first zero-length one.
        static func descriptors(_ data: [UInt8]) -> [Descriptor] {
            var found: [Descriptor] = []
            var position = 0
            while position + 4 <= data.count {
                let type = data[position], length = data[position + 1]
                let value = position + 4
                guard length != 0, value + Int(length) <= data.count else { break }
                switch (type, length) {
                case (1, 8): found.append(Descriptor(location: position, type: type, length: length, name: "eui64",
                                                     value: IdentifyCommands.hexDigits(data, value, 8)))
                case (2, 16): found.append(Descriptor(location: position, type: type, length: length, name: "nguid",
                                                      value: IdentifyCommands.hexDigits(data, value, 16)))
                case (3, 16): found.append(Descriptor(location: position, type: type, length: length, name: "uuid",
                                                      value: IdentifyCommands.uuid(data, value)))
                case (4, 1): found.append(Descriptor(location: position, type: type, length: length, name: "csi",
                                                     value: CFormat.alternateHex(data[value])))
                default: break   // unknown types are skipped, as nvme-cli does
                }
                position = value + Int(length)
            }
            return found
        }

        func run() throws {
            try reportingFailures {
                let session = try DeviceSession(device, writable: false, commandName: "identify namespace")
                let nsid = try session.namespaceID(namespaceID)
                let data = try identify(session, cns: .namespaceIdentificationDescriptorList, nsid: nsid)
                let found = Self.descriptors(data)
                switch output.format {
                case .binary: try writeStandardOutput(data)
                case .json:
                    let list = found.map { d in
                        JSONOutput.object([("loc", .unsigned(UInt64(d.location))), ("nidt", .unsigned(UInt64(d.type))),
                                           ("nidl", .unsigned(UInt64(d.length))), ("type", .string(d.name)), (d.name, .string(d.value))])
                    }
                    try printOutput(JSONOutput.object(list.isEmpty ? [] : [("ns-descs", .array(list))]).rendered)
                case .normal:
                    var out = "NVME Namespace Identification Descriptors NS \(nsid):\n"
                    for d in found { out += IdentifyCommands.line(d.name, d.value, width: 8) }
                    try printOutput(out)
                }
            }
        }
    }
}
