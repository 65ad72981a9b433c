import NVMeSpec

/// How many bytes a command moves, from its own fields and its namespace's format: what a
/// caller's buffer must hold. Linux cannot check this on PRP controllers (CVE-2023-6238);
/// the gate refuses a shorter buffer before the command reaches any controller.
public struct TransferLength: Sendable, Hashable {
    /// Data bytes the command transfers, nil when the gate cannot know (vendor commands,
    /// commands whose length the spec leaves to the controller).
    public var data: UInt64?
    /// Separate metadata bytes (LBA-addressed commands on formats with metadata).
    public var metadata: UInt64

    public init(data: UInt64?, metadata: UInt64 = 0) { self.data = data; self.metadata = metadata }

    /// The transfer of `entry` on `queue`, for a namespace with the given format (`lbaDataSize`
    /// 0 when unknown: LBA-addressed lengths are then not checked).
    @inlinable
    public static func of(_ entry: borrowing SubmissionEntry, queue: Queue, commandSet: CommandSet,
                          lbaDataSize: UInt32, metadataSize: UInt32) -> TransferLength {
        queue == .admin
            ? TransferLength(data: adminData(entry))
            : io(entry, commandSet: commandSet, lbaDataSize: lbaDataSize, metadataSize: metadataSize)
    }

    @inlinable
    static func numd(_ dwords0sBased: UInt32) -> UInt64 { (UInt64(dwords0sBased) + 1) * 4 }

    @inlinable
    static func adminData(_ e: borrowing SubmissionEntry) -> UInt64? {
        switch e.opcode {
        case 0x06: return 4096                                           // Identify: every CNS returns 4 KiB
        case 0x02: return e.logTransferLength                            // Get Log Page: NUMD
        case 0x0A, 0x09: return featureData(e.featureID, cdw11: e.cdw11)  // Get / Set Features
        case 0x0D: return e.cdw10 & 0xF == 0 ? 4096 : 0                  // Namespace Management: create / delete
        case 0x15: return 4096                                           // Namespace Attachment: controller list
        case 0x11: return numd(e.cdw10)                                  // Firmware Image Download: NUMD
        case 0x19, 0x1A: return numd(e.cdw11)                            // Directive Send / Receive: NUMD
        case 0x81, 0x82: return UInt64(e.cdw11)                          // Security Send / Receive: AL / TL
        case 0x86: return numd(e.cdw12)                                  // Get LBA Status: MNDW
        case 0x00, 0x04, 0x08, 0x0C, 0x10, 0x14, 0x18, 0x1C, 0x20, 0x24, 0x7C, 0x80, 0x84, 0x8C: return 0
        default: return nil
        }
    }

    /// Data bytes of Get/Set Features for `fid`, where the spec gives the feature a data structure.
    @inlinable
    static func featureData(_ fid: UInt8, cdw11: UInt32) -> UInt64? {
        switch fid {
        case 0x03: return 4096                         // LBA Range Type
        case 0x0C: return 256                          // Autonomous Power State Transition
        case 0x0D: return 4096                         // Host Memory Buffer (attributes, Get only)
        case 0x0E: return 8                            // Timestamp
        case 0x16: return 512                          // Host Behavior Support
        case 0x81: return cdw11 & 1 != 0 ? 16 : 8      // Host Identifier: EXHID selects 128 bits
        case 0x01, 0x02, 0x04...0x0B, 0x0F...0x12, 0x17, 0x19, 0x80, 0x82...0x84: return 0
        default: return nil
        }
    }

    @inlinable
    static func io(_ e: borrowing SubmissionEntry, commandSet: CommandSet, lbaDataSize: UInt32,
                   metadataSize: UInt32) -> TransferLength {
        let blocks = UInt64(e.blockCount)
        let lba = lbaDataSize == 0 ? nil : blocks * UInt64(lbaDataSize)
        let meta = blocks * UInt64(metadataSize)
        if commandSet == .keyValue {
            return TransferLength(data: nil)
        }
        switch e.opcode {
        case 0x01, 0x02, 0x05: return TransferLength(data: lba, metadata: meta)    // Write, Read, Compare
        case 0x7D where commandSet == .zoned: return TransferLength(data: lba, metadata: meta)  // Zone Append
        case 0x00, 0x04, 0x08, 0x0C: return TransferLength(data: 0)               // Flush, Write Unc., Write Zeroes, Verify
        case 0x09: return TransferLength(data: (UInt64(e.dsmNumberOfRanges) + 1) * 16)  // Dataset Management
        case 0x19:                                                                 // Copy
            switch e.copyDescriptorFormat {
            case 0: return TransferLength(data: (UInt64(e.copyNumberOfRanges) + 1) * 32)
            case 1: return TransferLength(data: (UInt64(e.copyNumberOfRanges) + 1) * 40)
            default: return TransferLength(data: nil)
            }
        case 0x0D, 0x11: return TransferLength(data: 16)                           // Reservation Register, Acquire
        case 0x15: return TransferLength(data: 8)                                  // Reservation Release
        case 0x0E: return TransferLength(data: numd(e.cdw10))                      // Reservation Report
        case 0x7A where commandSet == .zoned: return TransferLength(data: numd(e.cdw12))  // Zone Management Receive
        default: return TransferLength(data: nil)
        }
    }
}
