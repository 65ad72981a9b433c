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
    /// Executes a batch of commands in order, as `submit` would one after another: command
    /// `i` is the `i`th 64-byte entry of `entries`, with the buffers `buffers[i]`, and its
    /// completion or host-side failure initializes `outcomes[i]`. The default calls `submit`
    /// for each; a backend overrides it to pay per-command costs (locks, lookups) once per
    /// batch. The gate calls it with the commands of a `Gate.submitBatch` it allowed.
    func submitBatch(_ entries: RawSpan, queue: Queue, buffers: UnsafePointer<CommandBuffers>,
                     outcomes: UnsafeMutablePointer<Result<Completion, ControllerError>>)
    /// NVME_IOCTL_RESET: a controller reset.
    func reset() throws(ControllerError)
    /// NVME_IOCTL_SUBSYS_RESET: an NVM subsystem reset.
    func subsystemReset() throws(ControllerError)
    /// NVME_IOCTL_RESCAN: rescan namespaces.
    func rescan() throws(ControllerError)
}

/// The caller's buffers for one command of a batch: what `Controller.submit` takes as
/// `data` and `metadata` (empty when the command has none).
@frozen
public struct CommandBuffers: BitwiseCopyable {
    public var data: UnsafeMutableRawBufferPointer
    public var metadata: UnsafeMutableRawBufferPointer

    @inlinable
    public init(data: UnsafeMutableRawBufferPointer = .init(start: nil, count: 0),
                metadata: UnsafeMutableRawBufferPointer = .init(start: nil, count: 0)) {
        self.data = data; self.metadata = metadata
    }
}

extension Controller {
    /// One `submit` per command: every backend supports batches this way.
    public func submitBatch(_ entries: RawSpan, queue: Queue, buffers: UnsafePointer<CommandBuffers>,
                            outcomes: UnsafeMutablePointer<Result<Completion, ControllerError>>) {
        for i in 0..<SubmissionEntry.count(in: entries) {
            let b = buffers[i]
            let outcome: Result<Completion, ControllerError>
            do throws(ControllerError) {
                outcome = .success(try submit(SubmissionEntry(entries, index: i), queue: queue, data: b.data, metadata: b.metadata))
            } catch {
                outcome = .failure(error)
            }
            (outcomes + i).initialize(to: outcome)
        }
    }
}
