/// Limits the emulator reports and enforces.
enum Limits {
    /// CAP.MPSMIN: 4 KiB memory pages.
    static let pageSize = 4096
    /// Identify Controller MDTS = 7: 4 KiB << 7 = 512 KiB per transfer, QEMU's default.
    static let mdts: UInt8 = 7
    static let maxTransfer = pageSize << Int(mdts)
    /// Identify I/O Command Set specific Controller (NVM) VSL = 7: Verify up to 512 KiB.
    static let vsl: UInt8 = 7
    static let maxVerify = pageSize << Int(vsl)
    /// DMRL: at most 256 ranges per Dataset Management (the command's own limit).
    static let dmrl: UInt8 = 0
    /// Copy limits: MSRC (0's based: 128 ranges), MSSRL and MCL in logical blocks. MCL
    /// bounds the copy buffer: 8192 blocks is 32 MiB at 4 KiB.
    static let msrc: UInt8 = 127
    static let mssrl: UInt16 = 4096
    static let mcl: UInt32 = 8192
    /// ELPE: 64 error log entries (0's based 63).
    static let errorLogEntries = 64
    /// Firmware slots (FRMW bits 3:1).
    static let firmwareSlots = 3
    /// Largest firmware image accepted by Firmware Image Download.
    static let maxFirmwareImage = 1 << 20
    /// Device self-test log: the newest 20 results.
    static let selfTestResults = 20
    /// Changed Namespace List: 1024 entries.
    static let changedNamespaces = 1024
    /// The two LBA formats: LBAF 0 is 512 B, LBAF 1 is 4096 B; no metadata, no PI.
    static let lbaFormats: [UInt32] = [512, 4096]
}
