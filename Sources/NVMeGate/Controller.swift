import NVMeSpec

/// A namespace as the gate needs to know it: its command set (which I/O opcode table and
/// effects log apply) and its format (how many bytes a command transfers).
public struct NamespaceInfo: Sendable, Hashable {
    public var nsid: UInt32
    public var commandSet: CommandSet
    /// Bytes of data per logical block in the current format.
    public var lbaDataSize: UInt32
    /// Bytes of metadata per logical block (0: the format has none).
    public var metadataSize: UInt32
    /// Namespace Size in logical blocks.
    public var blockCount: UInt64
    /// Partitions of the namespace's block device, in order (node `pN` is element N-1).
    public var partitions: [LBARange]

    public init(nsid: UInt32, commandSet: CommandSet = .nvm, lbaDataSize: UInt32 = 512, metadataSize: UInt32 = 0,
                blockCount: UInt64, partitions: [LBARange] = []) {
        self.nsid = nsid; self.commandSet = commandSet; self.lbaDataSize = lbaDataSize
        self.metadataSize = metadataSize; self.blockCount = blockCount; self.partitions = partitions
    }
}

/// A range of logical blocks: `start` and `count` blocks.
@frozen
public struct LBARange: Sendable, Hashable, BitwiseCopyable {
    public var start: UInt64
    public var count: UInt64
    public init(start: UInt64, count: UInt64) { self.start = start; self.count = count }
    /// Whether `blocks` blocks from `slba` lie inside the range (no overflow).
    @inlinable public func contains(slba: UInt64, blocks: UInt64) -> Bool {
        slba >= start && blocks <= count && slba - start <= count - blocks
    }
}

/// The identity a controller reports, used for effects overrides and messages.
public struct ControllerIdentity: Sendable, Hashable {
    /// Model Number (MN), Firmware Revision (FR) and Serial Number (SN) from Identify Controller.
    public var model: String
    public var firmwareRevision: String
    public var serialNumber: String
    public init(model: String, firmwareRevision: String, serialNumber: String) {
        self.model = model; self.firmwareRevision = firmwareRevision; self.serialNumber = serialNumber
    }
}

/// A host-side failure to deliver a command (not an NVMe status): an errno.
public struct ControllerError: Error, Hashable, Sendable {
    public var errno: Int32
    public init(errno: Int32) { self.errno = errno }
}

/// What every backend implements: the loopback controller, the emulated controller and a
/// real device. The gate decides; a controller only executes what the gate allowed.
///
/// A controller must be safe to call from many threads at once, and must never touch
/// memory outside the `data` and `metadata` buffers it is given.
public protocol Controller: AnyObject, Sendable {
    /// Model, firmware revision and serial number.
    var identity: ControllerIdentity { get }
    /// The active namespaces, by NSID.
    func namespaces() -> [NamespaceInfo]
    /// The Commands Supported and Effects log for `commandSet`, or nil when the controller
    /// has none (Identify Controller LPA bit 1 clear).
    func effectsLog(for commandSet: CommandSet) -> CommandEffectsLog?
    /// Executes one command and returns its completion; throws for host-side failures.
    /// `data` and `metadata` are the caller's buffers (empty when the command has none).
    func submit(_ command: borrowing SubmissionEntry, queue: Queue,
                data: UnsafeMutableRawBufferPointer, metadata: UnsafeMutableRawBufferPointer)
        throws(ControllerError) -> Completion
    /// NVME_IOCTL_RESET: a controller reset.
    func reset() throws(ControllerError)
    /// NVME_IOCTL_SUBSYS_RESET: an NVM subsystem reset.
    func subsystemReset() throws(ControllerError)
    /// NVME_IOCTL_RESCAN: rescan namespaces.
    func rescan() throws(ControllerError)
}
