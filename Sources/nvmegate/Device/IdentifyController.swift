import ArgumentParser
import NVMeSpec

extension IdentifyCommands {
    /// `nvmegate id-ctrl`: Identify Controller (CNS 01h), printed as nvme-cli 2.3 prints it.
    struct IDCtrl: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "id-ctrl",
            abstract: "Send Identify Controller and show the result (nvme-cli's id-ctrl), through the policy.")
        @OptionGroup var device: DeviceOptions
        @OptionGroup var output: OutputFormatOptions
        @Flag(name: [.customShort("v"), .customLong("vendor-specific")], help: "Also dump the vendor specific field (vs[]).")
        var vendorSpecific = false
        @Flag(name: [.customShort("H"), .customLong("human-readable")], help: "Decode the bit fields.")
        var humanReadable = false

        func run() throws {
            try reportingFailures {
                let session = try DeviceSession(device, writable: false, commandName: "identify controller")
                let data = try identify(session, cns: .controller)
                switch output.format {
                case .binary: try writeStandardOutput(data)
                case .json: try printOutput(ControllerStructure(data).json.rendered)
                case .normal: try printOutput(ControllerStructure(data).text(human: humanReadable, vendorSpecific: vendorSpecific))
                }
            }
        }
    }

    /// The Identify Controller data structure (libnvme 1.3's `struct nvme_id_ctrl`) and
    /// nvme-cli's two ways of showing it. Its text lines and its JSON members come in the
    /// same order, so one table describes both.
    struct ControllerStructure {
        let bytes: [UInt8]
        init(_ bytes: [UInt8]) { self.bytes = bytes }

        /// How a field is stored and shown.
        enum Kind {
            /// An unsigned integer of `size` bytes, printed `%#x`.
            case hex(size: Int)
            /// An unsigned integer of `size` bytes, printed in decimal.
            case decimal(size: Int)
            /// ASCII padded with spaces, printed as stored.
            case text(length: Int)
            /// The NQN: like text, but left out of the JSON when empty.
            case nqn(length: Int)
            /// IEEE OUI: 3 bytes, printed most significant first as hex digits.
            case ieee
            /// A 16-byte GUID, printed as a UUID.
            case uuid
            /// A 128-bit capacity, printed in decimal (a string in JSON).
            case uint128

            /// The size of an integer field; nil for the others.
            var integerSize: Int? {
                switch self {
                case .hex(let size), .decimal(let size): size
                default: nil
                }
            }
        }

        /// Every field nvme-cli 2.3 shows, in its order: name, byte offset, kind.
        static let fields: [(name: String, offset: Int, kind: Kind)] = [
            ("vid", 0, .hex(size: 2)), ("ssvid", 2, .hex(size: 2)), ("sn", 4, .text(length: 20)),
            ("mn", 24, .text(length: 40)), ("fr", 64, .text(length: 8)), ("rab", 72, .decimal(size: 1)),
            ("ieee", 73, .ieee), ("cmic", 76, .hex(size: 1)), ("mdts", 77, .decimal(size: 1)),
            ("cntlid", 78, .hex(size: 2)), ("ver", 80, .hex(size: 4)), ("rtd3r", 84, .hex(size: 4)),
            ("rtd3e", 88, .hex(size: 4)), ("oaes", 92, .hex(size: 4)), ("ctratt", 96, .hex(size: 4)),
            ("rrls", 100, .hex(size: 2)), ("cntrltype", 111, .decimal(size: 1)), ("fguid", 112, .uuid),
            ("crdt1", 128, .decimal(size: 2)), ("crdt2", 130, .decimal(size: 2)), ("crdt3", 132, .decimal(size: 2)),
            ("nvmsr", 253, .decimal(size: 1)), ("vwci", 254, .decimal(size: 1)), ("mec", 255, .decimal(size: 1)),
            ("oacs", 256, .hex(size: 2)), ("acl", 258, .decimal(size: 1)), ("aerl", 259, .decimal(size: 1)),
            ("frmw", 260, .hex(size: 1)), ("lpa", 261, .hex(size: 1)), ("elpe", 262, .decimal(size: 1)),
            ("npss", 263, .decimal(size: 1)), ("avscc", 264, .hex(size: 1)), ("apsta", 265, .hex(size: 1)),
            ("wctemp", 266, .decimal(size: 2)), ("cctemp", 268, .decimal(size: 2)), ("mtfa", 270, .decimal(size: 2)),
            ("hmpre", 272, .decimal(size: 4)), ("hmmin", 276, .decimal(size: 4)), ("tnvmcap", 280, .uint128),
            ("unvmcap", 296, .uint128), ("rpmbs", 312, .hex(size: 4)), ("edstt", 316, .decimal(size: 2)),
            ("dsto", 318, .decimal(size: 1)), ("fwug", 319, .decimal(size: 1)), ("kas", 320, .decimal(size: 2)),
            ("hctma", 322, .hex(size: 2)), ("mntmt", 324, .decimal(size: 2)), ("mxtmt", 326, .decimal(size: 2)),
            ("sanicap", 328, .hex(size: 4)), ("hmminds", 332, .decimal(size: 4)), ("hmmaxd", 336, .decimal(size: 2)),
            ("nsetidmax", 338, .decimal(size: 2)), ("endgidmax", 340, .decimal(size: 2)), ("anatt", 342, .decimal(size: 1)),
            ("anacap", 343, .decimal(size: 1)), ("anagrpmax", 344, .decimal(size: 4)), ("nanagrpid", 348, .decimal(size: 4)),
            ("pels", 352, .decimal(size: 4)), ("domainid", 356, .decimal(size: 2)), ("megcap", 368, .uint128),
            ("sqes", 512, .hex(size: 1)), ("cqes", 513, .hex(size: 1)), ("maxcmd", 514, .decimal(size: 2)),
            ("nn", 516, .decimal(size: 4)), ("oncs", 520, .hex(size: 2)), ("fuses", 522, .hex(size: 2)),
            ("fna", 524, .hex(size: 1)), ("vwc", 525, .hex(size: 1)), ("awun", 526, .decimal(size: 2)),
            ("awupf", 528, .decimal(size: 2)), ("icsvscc", 530, .decimal(size: 1)), ("nwpc", 531, .decimal(size: 1)),
            ("acwu", 532, .decimal(size: 2)), ("ocfs", 534, .hex(size: 2)), ("sgls", 536, .hex(size: 4)),
            ("mnan", 540, .decimal(size: 4)), ("maxdna", 544, .uint128), ("maxcna", 560, .decimal(size: 4)),
            ("subnqn", 768, .nqn(length: 256)), ("ioccsz", 1792, .decimal(size: 4)), ("iorcsz", 1796, .decimal(size: 4)),
            ("icdoff", 1800, .decimal(size: 2)), ("fcatt", 1802, .hex(size: 1)), ("msdbd", 1803, .decimal(size: 1)),
            ("ofcs", 1804, .decimal(size: 2)),
        ]

        /// The little-endian unsigned integer of `size` bytes at `offset`.
        func integer(_ offset: Int, size: Int) -> UInt64 {
            (0..<size).reduce(0) { value, i in value | UInt64(bytes[offset + i]) << (8 * i) }
        }

        /// nvme-cli's normal output: the header, one `name : value` line per field (with
        /// the bit fields decoded under it when `human`), the power states, and the vendor
        /// specific bytes dumped when `vendorSpecific`.
        func text(human: Bool, vendorSpecific: Bool) -> String {
            var out = "NVME Identify Controller:\n"
            for field in Self.fields {
                out += IdentifyCommands.line(field.name, shown(field.offset, field.kind), width: 10)
                if human, let size = field.kind.integerSize, let decode = ControllerBitFields.decoders[field.name] {
                    out += decode(integer(field.offset, size: size)) + "\n"
                }
            }
            for state in 0...Int(bytes[263]) { out += powerState(state) }
            if vendorSpecific { out += "vs[]:\n" + hexDump(Array(bytes[3072..<4096])) }
            return out
        }

        /// The field of `kind` at `offset` as nvme-cli's normal output prints it.
        func shown(_ offset: Int, _ kind: Kind) -> String {
            switch kind {
            case .hex(let size): CFormat.alternateHex(integer(offset, size: size))
            case .decimal(let size): String(integer(offset, size: size))
            case .text(let length), .nqn(let length): bytes.ascii(offset, length)
            case .ieee: IdentifyCommands.hexDigits([bytes[offset + 2], bytes[offset + 1], bytes[offset]], 0, 3)
            case .uuid: IdentifyCommands.uuid(bytes, offset)
            case .uint128: IdentifyCommands.decimal128(bytes, offset)
            }
        }

        /// Power state descriptor `index` as nvme-cli prints it: two lines and a workload line.
        func powerState(_ index: Int) -> String {
            let base = 2048 + 32 * index
            let maxPower = integer(base, size: 2), flags = bytes[base + 3]
            var out = "ps   " + String(repeating: " ", count: max(0, 4 - String(index).count)) + "\(index) : mp:"
            out += (flags & 0x1 != 0 ? Self.watts(maxPower, scale: 1) : Self.watts(maxPower, scale: 2)) + " "
            if flags & 0x2 != 0 { out += "non-" }
            out += "operational enlat:\(integer(base + 4, size: 4)) exlat:\(integer(base + 8, size: 4))"
            out += " rrt:\(bytes[base + 12]) rrl:\(bytes[base + 13])\n"
            out += "            rwt:\(bytes[base + 14]) rwl:\(bytes[base + 15]) idle_power:"
            out += Self.watts(integer(base + 16, size: 2), scale: bytes[base + 18] >> 6 & 0x3)
            out += " active_power:" + Self.watts(integer(base + 20, size: 2), scale: bytes[base + 22] >> 6 & 0x3)
            out += "\n            active_power_workload:"
            switch bytes[base + 22] & 0x7 {
            case 0: out += "-"
            case 1: out += "1MiB 32 RW, 30s idle"
            case 2: out += "80K 128KiB SW"
            default: out += "reserved"
            }
            return out + "\n"
        }

        /// A power in the units a power scale names: 1 is 0.0001 W, 2 is 0.01 W, 0 not reported.
        static func watts(_ power: UInt64, scale: UInt8) -> String {
            func padded(_ value: UInt64, _ width: Int) -> String {
                let digits = String(value)
                return String(repeating: "0", count: max(0, width - digits.count)) + digits
            }
            switch scale {
            case 0: return "-"
            case 1: return "\(power / 10000).\(padded(power % 10000, 4))W"
            case 2: return "\(power / 100).\(padded(power % 100, 2))W"
            default: return "reserved"
            }
        }

        /// nvme-cli's JSON: a flat object of every field, then `psds`, one object per power state.
        var json: JSONOutput {
            var members: [(String, JSONOutput)] = []
            for field in Self.fields {
                switch field.kind {
                case .hex(let size), .decimal(let size): members.append((field.name, .unsigned(integer(field.offset, size: size))))
                case .text(let length): members.append((field.name, .string(bytes.ascii(field.offset, length))))
                case .nqn(let length):
                    let nqn = bytes.ascii(field.offset, length)
                    if !nqn.isEmpty { members.append((field.name, .string(nqn))) }
                case .ieee: members.append((field.name, .unsigned(integer(field.offset, size: 3))))
                case .uuid: members.append((field.name, .string(IdentifyCommands.uuid(bytes, field.offset))))
                case .uint128: members.append((field.name, .string(IdentifyCommands.decimal128(bytes, field.offset))))
                }
            }
            let states = (0...Int(bytes[263])).map { index -> JSONOutput in
                let base = 2048 + 32 * index
                return .object([
                    ("max_power", .unsigned(integer(base, size: 2))), ("flags", .unsigned(UInt64(bytes[base + 3]))),
                    ("entry_lat", .unsigned(integer(base + 4, size: 4))), ("exit_lat", .unsigned(integer(base + 8, size: 4))),
                    ("read_tput", .unsigned(UInt64(bytes[base + 12]))), ("read_lat", .unsigned(UInt64(bytes[base + 13]))),
                    ("write_tput", .unsigned(UInt64(bytes[base + 14]))), ("write_lat", .unsigned(UInt64(bytes[base + 15]))),
                    ("idle_power", .unsigned(integer(base + 16, size: 2))),
                    ("idle_scale", .unsigned(UInt64(bytes[base + 18] >> 6 & 0x3))),
                    ("active_power", .unsigned(integer(base + 20, size: 2))),
                    ("active_power_work", .unsigned(UInt64(bytes[base + 22] & 0x7))),
                    ("active_scale", .unsigned(UInt64(bytes[base + 22] >> 6 & 0x3))),
                ])
            }
            members.append(("psds", .array(states)))
            return .object(members)
        }
    }
}
