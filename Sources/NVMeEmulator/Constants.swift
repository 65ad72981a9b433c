/// Opcode, CNS, log page and feature identifiers the emulator uses, by spec name. Private
/// to the emulator until NVMeSpec publishes its own named constants.

/// Admin Command Set opcodes (NVMe Base 2.x, Figure "Opcodes for Admin Commands").
enum AdminOp {
    static let getLogPage: UInt8 = 0x02
    static let identify: UInt8 = 0x06
    static let abort: UInt8 = 0x08
    static let setFeatures: UInt8 = 0x09
    static let getFeatures: UInt8 = 0x0A
    static let asyncEventRequest: UInt8 = 0x0C
    static let namespaceManagement: UInt8 = 0x0D
    static let firmwareCommit: UInt8 = 0x10
    static let firmwareImageDownload: UInt8 = 0x11
    static let deviceSelfTest: UInt8 = 0x14
    static let namespaceAttachment: UInt8 = 0x15
    static let keepAlive: UInt8 = 0x18
    static let formatNVM: UInt8 = 0x80
    static let sanitize: UInt8 = 0x84
}

/// NVM Command Set I/O opcodes (NVM Command Set Specification, "Opcodes for NVM Commands").
enum IOOp {
    static let flush: UInt8 = 0x00
    static let write: UInt8 = 0x01
    static let read: UInt8 = 0x02
    static let writeUncorrectable: UInt8 = 0x04
    static let compare: UInt8 = 0x05
    static let writeZeroes: UInt8 = 0x08
    static let datasetManagement: UInt8 = 0x09
    static let verify: UInt8 = 0x0C
    static let reservationRegister: UInt8 = 0x0D
    static let reservationReport: UInt8 = 0x0E
    static let reservationAcquire: UInt8 = 0x11
    static let reservationRelease: UInt8 = 0x15
    static let copy: UInt8 = 0x19
}

/// Identify CNS values.
enum CNS {
    static let namespace: UInt8 = 0x00
    static let controller: UInt8 = 0x01
    static let activeNamespaceList: UInt8 = 0x02
    static let namespaceDescriptorList: UInt8 = 0x03
    static let csiNamespace: UInt8 = 0x05
    static let csiController: UInt8 = 0x06
    static let csiActiveNamespaceList: UInt8 = 0x07
    static let independentNamespace: UInt8 = 0x08
    static let allocatedNamespaceList: UInt8 = 0x10
    static let allocatedNamespace: UInt8 = 0x11
    static let namespaceControllerList: UInt8 = 0x12
    static let controllerList: UInt8 = 0x13
}

/// Log Page Identifiers.
enum LID {
    static let supportedLogPages: UInt8 = 0x00
    static let errorInformation: UInt8 = 0x01
    static let smartHealth: UInt8 = 0x02
    static let firmwareSlot: UInt8 = 0x03
    static let changedNamespaceList: UInt8 = 0x04
    static let commandsSupportedAndEffects: UInt8 = 0x05
    static let deviceSelfTest: UInt8 = 0x06
    static let sanitizeStatus: UInt8 = 0x81
}

/// Feature Identifiers.
enum FID {
    static let arbitration: UInt8 = 0x01
    static let powerManagement: UInt8 = 0x02
    static let temperatureThreshold: UInt8 = 0x04
    static let errorRecovery: UInt8 = 0x05
    static let volatileWriteCache: UInt8 = 0x06
    static let numberOfQueues: UInt8 = 0x07
    static let interruptCoalescing: UInt8 = 0x08
    static let asyncEventConfiguration: UInt8 = 0x0B
    static let keepAliveTimer: UInt8 = 0x0F
    static let timestamp: UInt8 = 0x0E
    static let hostIdentifier: UInt8 = 0x81
}

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
