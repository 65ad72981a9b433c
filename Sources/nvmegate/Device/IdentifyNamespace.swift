import ArgumentParser
import NVMeSpec

extension IdentifyCommands {
    /// `nvmegate id-ns`: Identify Namespace (CNS 00h, or 11h with `--force`), printed as
    /// nvme-cli 2.3 prints it.
    struct IDNS: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "id-ns",
            abstract: "Send Identify Namespace and show the result (nvme-cli's id-ns), through the policy.")
        @OptionGroup var device: DeviceOptions
        @Option(name: [.customShort("n"), .customLong("namespace-id")],
                help: "The namespace (default: the node's own, by NVME_IOCTL_ID).")
        var namespaceID: CommandNumber<UInt32>?
        @Flag(name: [.customShort("f"), .customLong("force")],
              help: "Identify the namespace even if it is not attached (CNS 11h, Allocated Namespace).")
        var force = false
        @Flag(name: [.customShort("v"), .customLong("vendor-specific")], help: "Also dump the vendor specific field (vs[]).")
        var vendorSpecific = false
        @OptionGroup var output: OutputFormatOptions
        @Flag(name: [.customShort("H"), .customLong("human-readable")], help: "Decode the bit fields.")
        var humanReadable = false

        func run() throws {
            try reportingFailures {
                let session = try DeviceSession(device, writable: false, commandName: "identify namespace")
                let nsid = try session.namespaceID(namespaceID)
                let data = try identify(session, cns: force ? .allocatedNamespace : .namespace, nsid: nsid)
                let ns = NamespaceStructure(data)
                switch output.format {
                case .binary: try writeStandardOutput(data)
                case .json: try printOutput(ns.json.rendered)
                case .normal: try printOutput(ns.text(nsid: nsid, human: humanReadable, vendorSpecific: vendorSpecific))
                }
            }
        }
    }

    /// The Identify Namespace data structure (libnvme 1.3's `struct nvme_id_ns`) and
    /// nvme-cli's two ways of showing it.
    struct NamespaceStructure {
        let bytes: [UInt8]
        init(_ bytes: [UInt8]) { self.bytes = bytes }

        /// Byte offset and size of each integer field.
        static let layout: [String: (offset: Int, size: Int)] = [
            "nsze": (0, 8), "ncap": (8, 8), "nuse": (16, 8), "nsfeat": (24, 1), "nlbaf": (25, 1), "flbas": (26, 1),
            "mc": (27, 1), "dpc": (28, 1), "dps": (29, 1), "nmic": (30, 1), "rescap": (31, 1), "fpi": (32, 1),
            "dlfeat": (33, 1), "nawun": (34, 2), "nawupf": (36, 2), "nacwu": (38, 2), "nabsn": (40, 2), "nabo": (42, 2),
            "nabspf": (44, 2), "noiob": (46, 2), "npwg": (64, 2), "npwa": (66, 2), "npdg": (68, 2), "npda": (70, 2),
            "nows": (72, 2), "mssrl": (74, 2), "mcl": (76, 4), "msrc": (80, 1), "nulbaf": (82, 1), "anagrpid": (92, 4),
            "nsattr": (99, 1), "nvmsetid": (100, 2), "endgid": (102, 2),
        ]
        /// The fields nvme-cli prints with `%#x`; the others are decimal.
        static let hexFields: Set<String> = ["nsze", "ncap", "nuse", "nsfeat", "flbas", "mc", "dpc", "dps", "nmic", "rescap", "fpi"]
        /// The optimal I/O fields, shown only when NSFEAT bit 4 says they are valid.
        static let optimalIOFields = ["npwg", "npwa", "npdg", "npda", "nows"]

        /// The integer field `name`.
        func integer(_ name: String) -> UInt64 {
            guard let (offset, size) = Self.layout[name] else { return 0 }
            return (0..<size).reduce(0) { value, i in value | UInt64(bytes[offset + i]) << (8 * i) }
        }

        var optimalIO: [String] { bytes[24] & 0x10 != 0 ? Self.optimalIOFields : [] }

        /// nvme-cli's normal output of namespace `nsid`.
        func text(nsid: UInt32, human: Bool, vendorSpecific: Bool) -> String {
            var out = "NVME Identify Namespace \(nsid):\n"
            let names = ["nsze", "ncap", "nuse", "nsfeat", "nlbaf", "flbas", "mc", "dpc", "dps", "nmic", "rescap", "fpi",
                         "dlfeat", "nawun", "nawupf", "nacwu", "nabsn", "nabo", "nabspf", "noiob", "nvmcap"]
                + optimalIO + ["mssrl", "mcl", "msrc", "nulbaf", "anagrpid", "nsattr", "nvmsetid", "endgid", "nguid", "eui64"]
            for name in names {
                switch name {
                case "nvmcap": out += IdentifyCommands.line(name, IdentifyCommands.decimal128(bytes, 48), width: 8)
                case "nguid": out += IdentifyCommands.line(name, IdentifyCommands.hexDigits(bytes, 104, 16), width: 8)
                case "eui64": out += IdentifyCommands.line(name, IdentifyCommands.hexDigits(bytes, 120, 8), width: 8)
                case "nsattr": out += "nsattr\t: \(integer(name))\n"
                default:
                    let value = integer(name)
                    out += IdentifyCommands.line(name, Self.hexFields.contains(name) ? CFormat.alternateHex(value) : String(value), width: 8)
                    if human, let decode = NamespaceBitFields.decoders[name] { out += decode(value) + "\n" }
                }
            }
            let inUse = IdentifyCommands.formatInUse(flbas: bytes[26])
            for i in IdentifyCommands.lbaFormats(bytes, unique: true) {
                let ms = bytes.le(128 + 4 * i, as: UInt16.self), ds = bytes[130 + 4 * i], rp = bytes[131 + 4 * i]
                let marker = i == inUse ? "(in use)" : ""
                if human {
                    let performance = rp == 3 ? "Degraded" : rp == 2 ? "Good" : rp == 1 ? "Better" : "Best"
                    out += "LBA Format \(CFormat.rightJustified(String(i), 2)) : Metadata Size: \(CFormat.leftJustified(String(ms), 3)) bytes"
                        + " - Data Size: \(CFormat.leftJustified(ds < 64 ? String(UInt64(1) << ds) : "0", 2)) bytes"
                        + " - Relative Performance: \(CFormat.alternateHex(rp)) \(performance) \(marker)\n"
                } else {
                    out += "lbaf \(CFormat.rightJustified(String(i), 2)) : ms:\(CFormat.leftJustified(String(ms), 3))"
                        + " lbads:\(CFormat.leftJustified(String(ds), 2)) rp:\(CFormat.alternateHex(rp)) \(marker)\n"
                }
            }
            if vendorSpecific { out += "vs[]:\n" + hexDump(Array(bytes[384..<4096])) }
            return out
        }

        /// nvme-cli's JSON: the fields in its JSON order, then `lbafs` (ms, ds, rp each).
        var json: JSONOutput {
            let names = ["nsze", "ncap", "nuse", "nsfeat", "nlbaf", "flbas", "mc", "dpc", "dps", "nmic", "rescap", "fpi",
                         "dlfeat", "nawun", "nawupf", "nacwu", "nabsn", "nabo", "nabspf", "noiob", "nvmcap", "nsattr", "nvmsetid"]
                + optimalIO + ["mssrl", "mcl", "msrc", "nulbaf", "anagrpid", "endgid", "eui64", "nguid"]
            var members: [(String, JSONOutput)] = names.map { name in
                switch name {
                case "nvmcap": (name, .string(IdentifyCommands.decimal128(bytes, 48)))
                case "nguid": (name, .string(IdentifyCommands.hexDigits(bytes, 104, 16)))
                case "eui64": (name, .string(IdentifyCommands.hexDigits(bytes, 120, 8)))
                default: (name, .unsigned(integer(name)))
                }
            }
            let formats = IdentifyCommands.lbaFormats(bytes).map { i -> JSONOutput in
                .object([("ms", .unsigned(UInt64(bytes.le(128 + 4 * i, as: UInt16.self)))),
                         ("ds", .unsigned(UInt64(bytes[130 + 4 * i]))), ("rp", .unsigned(UInt64(bytes[131 + 4 * i])))])
            }
            members.append(("lbafs", .array(formats)))
            return .object(members)
        }
    }
}
