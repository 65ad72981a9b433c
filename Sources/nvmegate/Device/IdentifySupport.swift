import ArgumentParser
import NVMeSpec

/// What the Identify group's commands share: sending Identify, reading Identify Namespace's
/// LBA formats, and printing values as nvme-cli's printf formats do.
extension IdentifyCommands {
    /// The size of every Identify data structure, and of the Namespace Management and
    /// Namespace Attachment data nvme-cli sends.
    static let structureSize = 4096

    /// Sends Identify as libnvme's `nvme_identify` builds it (CNS in CDW10, CSI in CDW11
    /// bits 31:24, 4096 bytes of data) and returns the data structure.
    static func identify(_ session: DeviceSession, cns: IdentifyCNS, nsid: UInt32 = 0,
                         csi: UInt8 = 0) throws(DeviceCommandError) -> [UInt8] {
        var data = [UInt8](repeating: 0, count: structureSize)
        let command = SubmissionQueueEntry(opcode: AdminOpcode.identify.rawValue, nsid: nsid,
                                           cdw10: UInt32(cns.rawValue), cdw11: UInt32(csi) << 24)
        try session.submit(command, queue: .admin, data: &data)
        return data
    }

    // MARK: Identify Namespace's LBA formats

    /// The LBA format a namespace's FLBAS selects: bits 3:0, and bits 6:5 as bits 5:4
    /// (libnvme's `nvme_id_ns_flbas_to_lbaf_inuse`).
    static func formatInUse(flbas: UInt8) -> Int {
        Int(flbas & 0x0F) | Int(flbas & 0x60) >> 1
    }

    /// The LBA formats Identify Namespace `ns` describes: 0 through NLBAF (0's based),
    /// plus NULBAF unique formats when `unique`, bounded by the 64 the structure holds.
    static func lbaFormats(_ ns: [UInt8], unique: Bool = false) -> ClosedRange<Int> {
        0...min(63, Int(ns[25]) + (unique ? Int(ns[82]) : 0))
    }

    /// The first LBA format of Identify Namespace `ns` whose data size is `blockSize` bytes
    /// and that has no metadata, as nvme-cli's `--block-size` picks one.
    static func format(ofBlockSize blockSize: UInt64, in ns: [UInt8]) -> Int? {
        lbaFormats(ns).first { i in
            let dataSizeShift = UInt64(ns[128 + 4 * i + 2])
            return dataSizeShift < 64 && 1 << dataSizeShift == blockSize && ns.le(128 + 4 * i, as: UInt16.self) == 0
        }
    }

    // MARK: printf, as nvme-cli uses it

    /// The 128-bit little-endian integer at `offset` of `bytes` in decimal (nvme-cli's
    /// capacity fields, and its JSON uint128 strings).
    static func decimal128(_ bytes: [UInt8], _ offset: Int) -> String {
        var words = [bytes.le(offset + 8, as: UInt64.self), bytes.le(offset, as: UInt64.self)]   // high, low
        var digits: [UInt8] = []
        repeat {
            var remainder: UInt64 = 0
            for i in words.indices {   // long division by 10, high word first
                (words[i], remainder) = UInt64(10).dividingFullWidth((high: remainder, low: words[i]))
            }
            digits.append(UInt8(ascii: "0") + UInt8(remainder))
        } while words != [0, 0]
        return String(decoding: digits.reversed(), as: UTF8.self)
    }

    /// `length` bytes of `bytes` from `offset` as lowercase hex digits (NGUID, EUI-64).
    static func hexDigits(_ bytes: [UInt8], _ offset: Int, _ length: Int) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for byte in bytes[offset..<min(bytes.count, offset + length)] {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The 16 bytes at `offset` as a lowercase 8-4-4-4-12 UUID (libuuid's `uuid_unparse_lower`).
    static func uuid(_ bytes: [UInt8], _ offset: Int) -> String {
        var rest = Substring(hexDigits(bytes, offset, 16))
        var parts: [Substring] = []
        for length in [8, 4, 4, 4, 12] {
            parts.append(rest.prefix(length))
            rest = rest.dropFirst(length)
        }
        return parts.joined(separator: "-")
    }

    /// nvme-cli's `name : value` line: the name padded to `width` columns.
    static func line(_ name: String, _ value: String, width: Int) -> String {
        CFormat.leftJustified(name, width) + ": " + value + "\n"
    }
}

extension IdentifyCommands {
    /// A size as nvme-cli's suffix options take it: a number in decimal or `0x` hex,
    /// optionally followed by a binary suffix, K, M, G, T or P (with or without "i"; powers
    /// of 1024).
    struct SuffixedNumber: ExpressibleByArgument, Sendable {
        var value: UInt64

        init(_ value: UInt64) { self.value = value }

        /// The shift each suffix stands for.
        static let shifts: [Character: UInt64] = ["k": 10, "m": 20, "g": 30, "t": 40, "p": 50]

        init?(argument: String) {
            var text = Substring(argument.lowercased())
            if text.hasSuffix("i") {
                text = text.dropLast()
                guard let last = text.last, Self.shifts[last] != nil else { return nil }
            }
            var shift: UInt64 = 0
            if let last = text.last, let found = Self.shifts[last] {
                shift = found
                text = text.dropLast()
            }
            guard let number = parseUnsigned(text), number <= UInt64.max >> shift else { return nil }
            value = number << shift
        }

        var defaultValueDescription: String { "\(value)" }
    }
}
