#if canImport(Glibc)
import Glibc
#endif
import NVMeSpec

/// How nvme-cli 2.3 names and decodes features (nvme-print.c): the names in its
/// "get-feature:0x07 (Number of Queues), …" lines, the payload length libnvme gives each
/// feature, and the `-H` field listing.
enum FeatureFields {
    /// nvme_feature_to_string: nvme-cli's name, which is not always the spec's.
    static func name(_ fid: UInt8) -> String {
        switch FeatureID(rawValue: fid) {
        case .arbitration: "Arbitration"
        case .powerManagement: "Power Management"
        case .lbaRangeType: "LBA Range Type"
        case .temperatureThreshold: "Temperature Threshold"
        case .errorRecovery: "Error Recovery"
        case .volatileWriteCache: "Volatile Write Cache"
        case .numberOfQueues: "Number of Queues"
        case .interruptCoalescing: "Interrupt Coalescing"
        case .interruptVectorConfiguration: "Interrupt Vector Configuration"
        case .writeAtomicityNormal: "Write Atomicity Normal"
        case .asynchronousEventConfiguration: "Async Event Configuration"
        case .autonomousPowerStateTransition: "Autonomous Power State Transition"
        case .hostMemoryBuffer: "Host Memory Buffer"
        case .timestamp: "Timestamp"
        case .keepAliveTimer: "Keep Alive Timer"
        case .hostControlledThermalManagement: "Host Controlled Thermal Management"
        case .nonOperationalPowerStateConfig: "Non-Operational Power State Config"
        case .readRecoveryLevelConfig: "Read Recovery Level"
        case .predictableLatencyModeConfig: "Predictable Latency Mode Config"
        case .predictableLatencyModeWindow: "Predictable Latency Mode Window"
        case .lbaStatusInformationAttributes: "LBA Status Interval"
        case .hostBehaviorSupport: "Host Behavior"
        case .sanitizeConfig: "Sanitize"
        case .enduranceGroupEventConfiguration: "Endurance Event Group Configuration"
        case .ioCommandSetProfile: "I/O Command Set Profile"
        case .spinupControl: "Spinup Control"
        case .enhancedControllerMetadata: "Enhanced Controller Metadata"
        case .controllerMetadata: "Controller Metadata"
        case .namespaceMetadata: "Namespace Metadata"
        case .softwareProgressMarker: "Software Progress"
        case .hostIdentifier: "Host Identifier"
        case .reservationNotificationMask: "Reservation Notification Mask"
        case .reservationPersistence: "Reservation Persistence"
        case .namespaceWriteProtectionConfig: "Namespace Write Protect"
        default: "Unknown"
        }
    }

    /// nvme_select_to_string.
    static func selectName(_ select: UInt8) -> String {
        switch select {
        case 0: "Current"
        case 1: "Default"
        case 2: "Saved"
        case 3: "Supported capabilities"
        case 8: "Changed"
        default: "Reserved"
        }
    }

    /// The data a feature moves (libnvme's nvme_get_feature_length2): `toController` for Set
    /// Features, where Host Memory Buffer has none.
    static func dataLength(_ fid: UInt8, cdw11: UInt64, toController: Bool) -> Int {
        switch FeatureID(rawValue: fid) {
        case .lbaRangeType: 4096
        case .autonomousPowerStateTransition: 256
        case .predictableLatencyModeConfig, .hostBehaviorSupport: 512
        case .timestamp: 8
        case .hostIdentifier: cdw11 & 1 != 0 ? 16 : 8
        case .hostMemoryBuffer: toController ? 0 : 4096
        default: 0
        }
    }

    /// nvme_show_select_result: what Select 3 (supported capabilities) reports.
    static func capabilities(_ result: UInt32) -> String {
        var text = ""
        if result & 0x1 != 0 { text += "  Feature is saveable\n" }
        if result & 0x2 != 0 { text += "  Feature is per-namespace\n" }
        if result & 0x4 != 0 { text += "  Feature is changeable\n" }
        return text
    }

    /// nvme_feature_show_fields: the `-H` decoding of a feature's value and data.
    static func decode(_ fid: UInt8, result: UInt32, data: [UInt8]) -> String {
        func flag(_ bit: UInt32, _ on: String, _ off: String) -> String { result & bit != 0 ? on : off }
        let asyncNotice = { (bit: UInt32) in flag(bit, "Send async event", "Do not send async event") }
        switch FeatureID(rawValue: fid) {
        case .arbitration:
            let burst = result & 0x7
            return """
                \tHigh Priority Weight   (HPW): \((result >> 24) + 1)
                \tMedium Priority Weight (MPW): \((result >> 16 & 0xFF) + 1)
                \tLow Priority Weight    (LPW): \((result >> 8 & 0xFF) + 1)
                \tArbitration Burst       (AB): \(burst == 7 ? "No limit" : String(1 << burst))

                """
        case .powerManagement:
            let hint = result >> 5 & 0x7
            let hints = ["No Workload", "Extended Idle Period with a Burst of Random Writes", "Heavy Sequential Writes"]
            return "\tWorkload Hint (WH): \(hint) - \(hint < 3 ? hints[Int(hint)] : "Reserved")\n\tPower State   (PS): \(result & 0x1F)\n"
        case .lbaRangeType:
            let count = result & 0x3F
            return "\tNumber of LBA Ranges (NUM): \(count + 1)\n" + lbaRanges(data, last: Int(count))
        case .temperatureThreshold:
            let type = result >> 20 & 0x3, sensor = result >> 16 & 0xF, kelvin = result & 0xFFFF
            let typeName = type == 0 ? "Over Temperature Threshold" : type == 1 ? "Under Temperature Threshold" : "Reserved"
            let sensorName = sensor == 0 ? "Composite Temperature" : sensor <= 8 ? "Temperature Sensor \(sensor)" : "Reserved"
            return """
                \tThreshold Type Select         (THSEL): \(type) - \(typeName)
                \tThreshold Temperature Select (TMPSEL): \(sensor) - \(sensorName)
                \tTemperature Threshold         (TMPTH): \(Int(kelvin) - 273)°C (\(kelvin) Kelvin)

                """
        case .errorRecovery:
            return """
                \tDeallocated or Unwritten Logical Block Error Enable (DULBE): \(flag(1 << 16, "Enabled", "Disabled"))
                \tTime Limited Error Recovery                          (TLER): \((result & 0xFFFF) * 100) ms

                """
        case .volatileWriteCache:
            return "\tVolatile Write Cache Enable (WCE): \(flag(1, "Enabled", "Disabled"))\n"
        case .numberOfQueues:
            return """
                \tNumber of IO Completion Queues Allocated (NCQA): \((result >> 16) + 1)
                \tNumber of IO Submission Queues Allocated (NSQA): \((result & 0xFFFF) + 1)

                """
        case .interruptCoalescing:
            return "\tAggregation Time     (TIME): \((result >> 8 & 0xFF) * 100) usec\n\tAggregation Threshold (THR): \((result & 0xFF) + 1)\n"
        case .interruptVectorConfiguration:
            return "\tCoalescing Disable (CD): \(flag(1 << 16, "True", "False"))\n\tInterrupt Vector   (IV): \(result & 0xFFFF)\n"
        case .writeAtomicityNormal:
            return "\tDisable Normal (DN): \(flag(1, "True", "False"))\n"
        case .asynchronousEventConfiguration:
            let notices: [(String, UInt32)] = [
                ("Discovery Log Page Change Notices", 1 << 31),
                ("Endurance Group Event Aggregate Log Change Notices", 1 << 14),
                ("LBA Status Information Notices", 1 << 13),
                ("Predictable Latency Event Aggregate Log Change Notices", 1 << 12),
                ("Asymmetric Namespace Access Change Notices", 1 << 11),
                ("Telemetry Log Notices", 1 << 10),
                ("Firmware Activation Notices", 1 << 9),
                ("Namespace Attribute Notices", 1 << 8),
                ("SMART / Health Critical Warnings", 0xFF),
            ]
            return notices.map { name, bits in
                "\t" + name + String(repeating: " ", count: 58 - name.count) + ": " + asyncNotice(bits) + "\n"
            }.joined()
        case .autonomousPowerStateTransition:
            var text = "\tAutonomous Power State Transition Enable (APSTE): \(flag(1, "Enabled", "Disabled"))\n"
            guard data.count >= 256 else { return text }
            text += "\tAuto PST Entries\t.................\n"
            for i in 0..<32 {
                let entry = data.le(8 * i, as: UInt64.self)
                text += "\tEntry[\(i < 10 ? " " : "")\(i)]   \n\t.................\n"
                text += "\tIdle Time Prior to Transition (ITPT): \(entry >> 8 & 0xFFFFFF) ms\n"
                text += "\tIdle Transition Power State   (ITPS): \(entry >> 3 & 0x1F)\n\t.................\n"
            }
            return text
        case .hostMemoryBuffer:
            var text = "\tEnable Host Memory (EHM): \(flag(1, "Enabled", "Disabled"))\n"
            guard data.count >= 16 else { return text }
            text += "\tHost Memory Descriptor List Entry Count (HMDLEC): \(data.le(12, as: UInt32.self))\n"
            text += "\tHost Memory Descriptor List Address     (HMDLAU): 0x\(String(data.le(8, as: UInt32.self), radix: 16))\n"
            text += "\tHost Memory Descriptor List Address     (HMDLAL): 0x\(String(data.le(4, as: UInt32.self), radix: 16))\n"
            text += "\tHost Memory Buffer Size                  (HSIZE): \(data.le(0, as: UInt32.self))\n"
            return text
        case .timestamp:
            return data.count >= 8 ? timestamp(data) : ""
        case .keepAliveTimer:
            return "\tKeep Alive Timeout (KATO) in milliseconds: \(result)\n"
        case .hostControlledThermalManagement:
            let first = result >> 16, second = result & 0xFFFF
            return "\tThermal Management Temperature 1 (TMT1) : \(first) Kelvin (\(Int(first) - 273)°C)\n"
                + "\tThermal Management Temperature 2 (TMT2) : \(second) Kelvin (\(Int(second) - 273)°C)\n"
        case .nonOperationalPowerStateConfig:
            return "\tNon-Operational Power State Permissive Mode Enable (NOPPME): \(flag(1, "True", "False"))\n"
        case .readRecoveryLevelConfig:
            return "\tRead Recovery Level (RRL): \(result & 0xF)\n"
        case .predictableLatencyModeWindow:
            let window = result & 0x7
            return "\tWindow Select: " + (window == 1 ? "Deterministic Window (DTWIN)"
                                                   : window == 2 ? "Non-deterministic Window (NDWIN)" : "Reserved")
        case .lbaStatusInformationAttributes:
            return lbaStatusInterval(result)
        case .hostBehaviorSupport:
            return data.isEmpty ? "" : "\tHost Behavior Support: \(data[0] & 1 != 0 ? "True" : "False")\n"
        case .sanitizeConfig:
            return "\tNo-Deallocate Response Mode (NODRM) : \(result & 1)\n"
        case .enduranceGroupEventConfiguration:
            return "\tEndurance Group Identifier (ENDGID): \(result & 0xFFFF)\n\tEndurance Group Critical Warnings  : \(result >> 16 & 0xFF)\n"
        case .ioCommandSetProfile:
            return "\tI/O Command Set Profile: \(flag(1, "True", "False"))\n"
        case .spinupControl:
            return "\tSpinup control feature Enabled: \(flag(1, "True", "False"))\n"
        case .softwareProgressMarker:
            return "\tPre-boot Software Load Count (PBSLC): \(result & 0xFF)\n"
        case .hostIdentifier:
            return data.count >= 8 ? "\tHost Identifier (HOSTID):  \(data.le(0, as: UInt64.self))\n" : ""
        case .reservationNotificationMask:
            return """
                \tMask Reservation Preempted Notification  (RESPRE): \(flag(1 << 3, "True", "False"))
                \tMask Reservation Released Notification   (RESREL): \(flag(1 << 2, "True", "False"))
                \tMask Registration Preempted Notification (REGPRE): \(flag(1 << 1, "True", "False"))

                """
        case .reservationPersistence:
            return "\tPersist Through Power Loss (PTPL): \(flag(1, "True", "False"))\n"
        case .namespaceWriteProtectionConfig:
            let states = ["No Write Protect", "Write Protect", "Write Protect Until Power Cycle", "Permanent Write Protect"]
            return "\tNamespace Write Protect: \(result < 4 ? states[Int(result)] : "Reserved")\n"
        default:
            return ""
        }
    }

    /// nvme_show_lba_status_info: the LBA Status Information Attributes value.
    static func lbaStatusInterval(_ result: UInt32) -> String {
        "\tLBA Status Information Poll Interval (LSIPI)  : \(result >> 16)\n"
            + "\tLBA Status Information Report Interval (LSIRI): \(result & 0xFFFF)\n"
    }

    /// nvme_show_lba_range: LBA Range Type entries 0...`last` (64 bytes each).
    static func lbaRanges(_ data: [UInt8], last: Int) -> String {
        var text = ""
        for i in 0...last where data.count >= 64 * (i + 1) {
            let entry = 64 * i
            let type = data[entry], attributes = data[entry + 1]
            let typeName = switch type {
            case 1: "Filesystem"
            case 2: "RAID"
            case 3: "Cache"
            case 4: "Page / Swap file"
            case 0x80...: "Vendor Specific"
            default: "Reserved"
            }
            text += "\ttype       : \(CFormat.alternateHex(type)) - \(typeName)\n"
            text += "\tattributes : \(CFormat.alternateHex(attributes)) - "
                + (attributes & 1 != 0 ? "LBA range may be overwritten" : "LBA range should not be overwritten") + ", "
                + (attributes & 2 != 0 ? "LBA range should be hidden from the OS/EFI/BIOS"
                                       : "LBA range should be visible from the OS/EFI/BIOS") + "\n"
            text += "\tslba       : \(CFormat.alternateHex(data.le(entry + 16, as: UInt64.self)))\n"
            text += "\tnlb        : \(CFormat.alternateHex(data.le(entry + 24, as: UInt64.self)))\n"
            text += "\tguid       : " + data[(entry + 32)..<(entry + 48)].map { hexPair($0) }.joined() + "\n"
        }
        return text
    }

    /// nvme_show_timestamp: the 48-bit millisecond value, as local time, and its attributes.
    static func timestamp(_ data: [UInt8]) -> String {
        var milliseconds: UInt64 = 0
        for i in (0..<6).reversed() { milliseconds = milliseconds << 8 | UInt64(data[i]) }
        var seconds = time_t(milliseconds / 1000)
        var parts = tm()
        var buffer = [CChar](repeating: 0, count: 320)
        let written = localtime_r(&seconds, &parts) == nil ? 0 : strftime(&buffer, buffer.count, "%c %Z", &parts)
        let when = written > 0 ? String(decoding: buffer.prefix(written).map { UInt8(bitPattern: $0) }, as: UTF8.self) : "-"
        let attributes = data[6]
        return "\tThe timestamp is : \(milliseconds) (\(when))\n"
            + (attributes & 2 != 0
                ? "\tThe Timestamp field was initialized with a Timestamp value using a Set Features command.\n"
                : "\tThe Timestamp field was initialized to ‘0’ by a Controller Level Reset.\n")
            + (attributes & 1 != 0
                ? "\tThe controller may have stopped counting during vendor specific intervals after the Timestamp value was initialized\n"
                : "\tThe controller counted time in milliseconds continuously since the Timestamp value was initialized.\n")
    }

    /// "0a": a byte as two lowercase hex digits.
    static func hexPair(_ byte: UInt8) -> String {
        (byte < 16 ? "0" : "") + String(byte, radix: 16)
    }
}
