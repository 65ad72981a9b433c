/// One line of nvme-cli's `-H` decoding: `  [hi:lo] : <%#x value>\t<meaning>`.
private func row(_ bits: String, _ value: UInt64, _ meaning: String, indent: Int = 2) -> String {
    String(repeating: " ", count: indent) + "[\(bits)] : " + CFormat.alternateHex(value) + "\t" + meaning + "\n"
}

/// `<feature> Supported` or `<feature> Not Supported`, as nvme-cli's `%sSupported`.
private func supported(_ value: UInt64, _ feature: String) -> String {
    feature + " " + (value != 0 ? "" : "Not ") + "Supported"
}

/// Bits `hi:lo` of `value`.
private func bits(_ value: UInt64, _ hi: Int, _ lo: Int) -> UInt64 {
    value >> UInt64(lo) & ((1 << UInt64(hi - lo + 1)) - 1)
}

/// A row per flag bit, from the highest: `(bit, feature)`, each Supported or Not Supported.
private func flagRows(_ value: UInt64, _ flags: [(Int, String)]) -> String {
    flags.map { row("\($0.0):\($0.0)", bits(value, $0.0, $0.0), supported(bits(value, $0.0, $0.0), $0.1)) }.joined()
}

/// A row for reserved bits `hi:lo`, only when any is set (nvme-cli leaves them out otherwise).
private func reservedRow(_ value: UInt64, _ hi: Int, _ lo: Int, indent: Int = 2) -> String {
    bits(value, hi, lo) == 0 ? "" : row("\(hi):\(lo)", bits(value, hi, lo), "Reserved", indent: indent)
}

/// A temperature in kelvins as nvme-cli's `-H` shows thresholds.
private func temperature(_ kelvins: UInt64, _ meaning: String) -> String {
    " [15:0] : \(Int64(kelvins) - 273)°C (\(kelvins) Kelvin)\t\(meaning)\n"
}

extension IdentifyCommands {
    /// nvme-cli 2.3's `-H` decoding of Identify Controller fields, by field name. Each returns
    /// the lines printed under the field's own line.
    enum ControllerBitFields {
        static let decoders: [String: @Sendable (UInt64) -> String] = [
            "cmic": { v in
                reservedRow(v, 7, 4) + row("3:3", bits(v, 3, 3), "ANA " + (bits(v, 3, 3) != 0 ? "" : "not ") + "supported")
                    + row("2:2", bits(v, 2, 2), bits(v, 2, 2) != 0 ? "SR-IOV" : "PCI")
                    + row("1:1", bits(v, 1, 1), (bits(v, 1, 1) != 0 ? "Multi" : "Single") + " Controller")
                    + row("0:0", bits(v, 0, 0), (bits(v, 0, 0) != 0 ? "Multi" : "Single") + " Port")
            },
            "oacs": { v in
                reservedRow(v, 15, 11, indent: 1) + flagRows(v, [
                    (10, "Lockdown Command and Feature"), (9, "Get LBA Status Capability"), (8, "Doorbell Buffer Config"),
                    (7, "Virtualization Management"), (6, "NVMe-MI Send and Receive"), (5, "Directives"),
                    (4, "Device Self-test"), (3, "NS Management and Attachment"), (2, "FW Commit and Download"),
                    (1, "Format NVM"), (0, "Security Send and Receive"),
                ])
            },
            "frmw": { v in
                reservedRow(v, 7, 6) + flagRows(v, [(5, "Multiple FW or Boot Update Detection"), (4, "Firmware Activate Without Reset")])
                    + row("3:1", bits(v, 3, 1), "Number of Firmware Slots")
                    + row("0:0", bits(v, 0, 0), "Firmware Slot 1 Read" + (bits(v, 0, 0) != 0 ? "-Only" : "/Write"))
            },
            "lpa": { v in
                reservedRow(v, 7, 7) + flagRows(v, [
                    (6, "Telemetry Log Data Area 4"), (5, "LID 0x0, Scope of each command in LID 0x5, 0x12, 0x13"),
                    (4, "Persistent Event log"), (3, "Telemetry host/controller initiated log page"),
                    (2, "Extended data for Get Log Page"), (1, "Command Effects Log Page"), (0, "SMART/Health Log Page per NS"),
                ])
            },
            "elpe": { v in "  [7:0] : \(v) (0's based)\tError Log Page Entries (ELPE)\n" },
            "npss": { v in "  [7:0] : \(v) (0's based)\tNumber of Power States Support (NPSS)\n" },
            "wctemp": { v in temperature(v, "Warning Composite Temperature Threshold (WCTEMP)") },
            "cctemp": { v in temperature(v, "Critical Composite Temperature Threshold (CCTEMP)") },
            "sqes": { v in
                row("7:4", bits(v, 7, 4), "Max SQ Entry Size (\(1 << bits(v, 7, 4)))")
                    + row("3:0", bits(v, 3, 0), "Min SQ Entry Size (\(1 << bits(v, 3, 0)))")
            },
            "cqes": { v in
                row("7:4", bits(v, 7, 4), "Max CQ Entry Size (\(1 << bits(v, 7, 4)))")
                    + row("3:0", bits(v, 3, 0), "Min CQ Entry Size (\(1 << bits(v, 3, 0)))")
            },
            "oncs": { v in
                reservedRow(v, 15, 9, indent: 1) + flagRows(v, [
                    (8, "Copy"), (7, "Verify"), (6, "Timestamp"), (5, "Reservations"), (4, "Save and Select"),
                    (3, "Write Zeroes"), (2, "Data Set Management"), (1, "Write Uncorrectable"), (0, "Compare"),
                ])
            },
            "fna": { v in
                reservedRow(v, 7, 4)
                    + row("3:3", bits(v, 3, 3), "Format NVM Broadcast NSID (FFFFFFFFh) " + (bits(v, 3, 3) != 0 ? "Not " : "") + "Supported")
                    + row("2:2", bits(v, 2, 2), "Crypto Erase " + (bits(v, 2, 2) != 0 ? "" : "Not ") + "Supported as part of Secure Erase")
                    + row("1:1", bits(v, 1, 1), "Crypto Erase Applies to " + (bits(v, 1, 1) != 0 ? "All" : "Single") + " Namespace(s)")
                    + row("0:0", bits(v, 0, 0), "Format Applies to " + (bits(v, 0, 0) != 0 ? "All" : "Single") + " Namespace(s)")
            },
            "vwc": { v in
                let flush = ["Support for the NSID field set to FFFFFFFFh is not indicated", "Reserved",
                             "The Flush command does not support NSID set to FFFFFFFFh",
                             "The Flush command supports NSID set to FFFFFFFFh"]
                return reservedRow(v, 7, 3) + row("2:1", bits(v, 2, 1), flush[Int(bits(v, 2, 1))])
                    + row("0:0", bits(v, 0, 0), "Volatile Write Cache " + (bits(v, 0, 0) != 0 ? "" : "Not ") + "Present")
            },
        ]
    }

    /// nvme-cli 2.3's `-H` decoding of Identify Namespace fields, by field name.
    enum NamespaceBitFields {
        static let decoders: [String: @Sendable (UInt64) -> String] = [
            "nsfeat": { v in
                reservedRow(v, 7, 5)
                    + row("4:4", bits(v, 4, 4), "NPWG, NPWA, NPDG, NPDA, and NOWS are " + (bits(v, 4, 4) != 0 ? "" : "Not ") + "Supported")
                    + row("3:3", bits(v, 3, 3), "NGUID and EUI64 fields if non-zero, " + (bits(v, 3, 3) != 0 ? "Never " : "") + "Reused")
                    + row("2:2", bits(v, 2, 2), supported(bits(v, 2, 2), "Deallocated or Unwritten Logical Block error"))
                    + row("1:1", bits(v, 1, 1), "Namespace uses " + (bits(v, 1, 1) != 0 ? "NAWUN, NAWUPF, and NACWU" : "AWUN, AWUPF, and ACWU"))
                    + row("0:0", bits(v, 0, 0), supported(bits(v, 0, 0), "Thin Provisioning"))
            },
            "flbas": { v in
                reservedRow(v, 7, 7)
                    + row("6:5", bits(v, 6, 5), "Most significant 2 bits of Current LBA Format Selected")
                    + row("4:4", bits(v, 4, 4), "Metadata Transferred " + (bits(v, 4, 4) != 0 ? "at End of Data LBA" : "in Separate Contiguous Buffer"))
                    + row("3:0", bits(v, 3, 0), "Least significant 4 bits of Current LBA Format Selected")
            },
            "mc": { v in
                reservedRow(v, 7, 2) + flagRows(v, [(1, "Metadata Pointer"), (0, "Metadata as Part of Extended Data LBA")])
            },
            "dpc": { v in
                reservedRow(v, 7, 5) + flagRows(v, [
                    (4, "Protection Information Transferred as Last 8 Bytes of Metadata"),
                    (3, "Protection Information Transferred as First 8 Bytes of Metadata"),
                    (2, "Protection Information Type 3"), (1, "Protection Information Type 2"), (0, "Protection Information Type 1"),
                ])
            },
            "dps": { v in
                let types = ["Disabled", "Type 1 Enabled", "Type 2 Enabled", "Type 3 Enabled"]
                let type = Int(bits(v, 2, 0))
                return reservedRow(v, 7, 4)
                    + row("3:3", bits(v, 3, 3), "Protection Information is Transferred as " + (bits(v, 3, 3) != 0 ? "First" : "Last") + " 8 Bytes of Metadata")
                    + row("2:0", bits(v, 2, 0), "Protection Information " + (type < types.count ? types[type] : "Reserved Enabled"))
            },
            "nmic": { v in
                reservedRow(v, 7, 1) + row("0:0", bits(v, 0, 0), "Namespace Multipath " + (bits(v, 0, 0) != 0 ? "" : "Not ") + "Capable")
            },
            "rescap": { v in
                row("7:7", bits(v, 7, 7), "Ignore Existing Key - Used as defined in revision " + (bits(v, 7, 7) != 0 ? "1.3 or later" : "1.2.1 or earlier"))
                    + flagRows(v, [
                        (6, "Exclusive Access - All Registrants"), (5, "Write Exclusive - All Registrants"),
                        (4, "Exclusive Access - Registrants Only"), (3, "Write Exclusive - Registrants Only"),
                        (2, "Exclusive Access"), (1, "Write Exclusive"), (0, "Persist Through Power Loss"),
                    ])
            },
            "fpi": { v in
                row("7:7", bits(v, 7, 7), supported(bits(v, 7, 7), "Format Progress Indicator"))
                    + (v != 0 ? row("6:0", bits(v, 6, 0), "Format Progress Indicator (Remaining \(bits(v, 6, 0))%)") : "")
            },
            "dlfeat": { v in
                let read = [0: "Not Reported", 1: "0x00", 2: "0xFF"][bits(v, 2, 0)] ?? "Reserved Value"
                return reservedRow(v, 7, 5)
                    + row("4:4", bits(v, 4, 4), "Guard Field of Deallocated Logical Blocks is set to " + (bits(v, 4, 4) != 0 ? "CRC of The Value Read" : "0xFFFF"))
                    + row("3:3", bits(v, 3, 3), supported(bits(v, 3, 3), "Deallocate Bit in the Write Zeroes Command is"))
                    + row("2:0", bits(v, 2, 0), "Bytes Read From a Deallocated Logical Block and its Metadata are " + read)
            },
        ]
    }
}
