import NVMeGate
import NVMeSpec
import Synchronization

/// Volatile per-controller state: current feature values, the host identifier, the
/// timestamp.
struct ControllerState {
    /// Current feature values by `featureKey`; absent means the saved or default value.
    var features: [UInt64: UInt32] = [:]
    /// Host Identifier (Set Features 81h): empty, 8 bytes, or 16 bytes (EXHID).
    private(set) var hostID: [UInt8] = []
    /// The host reservations know this controller as: from `hostID`, kept with it so a
    /// command that checks a reservation does not build one.
    private(set) var host: HostKey
    /// Timestamp (Set Features 0Eh): the host's value and the monotonic time it was set.
    var timestamp: (value: UInt64, setAt: UInt64)?
    private let controllerID: UInt16

    init(controllerID: UInt16) {
        self.controllerID = controllerID
        host = HostKey(hostID: [], controllerID: controllerID)
    }

    /// Sets the Host Identifier (all zeroes: none).
    mutating func setHostID(_ id: [UInt8]) {
        hostID = id.contains(where: { $0 != 0 }) ? id : []
        host = HostKey(hostID: hostID, controllerID: controllerID)
    }
}

/// The Volatile Write Cache feature's value as the I/O path reads it, without a lock: each
/// half mirrors the map it comes from and is stored under that map's lock, so it never
/// runs behind it.
final class WriteCacheSetting: Sendable {
    /// No value: the setting comes from the next source (saved, then the default).
    static let unset: UInt8 = 2
    /// The current value set since the last reset (`ControllerState.features`), or `unset`.
    let current = Atomic<UInt8>(unset)
    /// The saved value (`SubsystemState.savedFeatures`), or `unset`.
    let saved = Atomic<UInt8>(unset)

    /// Whether the cache is on: the current value, else the saved one, else on (the default).
    var enabled: Bool {
        let value = current.load(ordering: .relaxed)
        if value != Self.unset { return value == 1 }
        return saved.load(ordering: .relaxed) != 0
    }
}

/// Where a feature value is kept: FID, a selector (Temperature Threshold's THSEL) and an NSID
/// for namespace-specific features.
func featureKey(_ fid: FeatureID, selector: UInt8 = 0, nsid: UInt32 = 0) -> UInt64 {
    UInt64(fid.rawValue) | UInt64(selector) << 8 | UInt64(nsid) << 32
}

/// An emulated NVMe controller that behaves like a real one: Identify, log pages, features,
/// namespace management and attachment, Format NVM, Sanitize, firmware, self-test, and the
/// NVM command set with reservations. Its Commands Supported and Effects log lists exactly
/// what it implements, with the effects each command really has.
///
/// Create one in memory (`EmulatedController.inMemory()`), file-backed in a directory
/// (`init(directory:configuration:)`), or attach several to one `EmulatedSubsystem` to model
/// several hosts. Safe to call from many threads at once.
public final class EmulatedController: Controller {
    /// The subsystem this controller belongs to (namespaces, data, reservations, logs).
    public let subsystem: EmulatedSubsystem
    /// This controller's Controller ID (CNTLID).
    public let controllerID: UInt16
    let local: Mutex<ControllerState>
    /// Volatile Write Cache (feature 06h), for the write path.
    let writeCache = WriteCacheSetting()
    /// The I/O opcodes implemented (`ioEffects`), a bit each.
    let implementedIO: InlineArray<4, UInt64>
    /// When this controller came out of reset (the Timestamp feature counts from it until set).
    let startedAt = monotonicMilliseconds()

    /// A controller with its own in-memory subsystem (sparse: a large namespace costs only
    /// what is written). A reserved controller ID in `configuration` (0, FFF0h and up) is
    /// replaced by 1.
    public init(configuration: EmulatorConfiguration = .init()) {
        subsystem = EmulatedSubsystem(configuration: configuration)
        let id = configuration.controllerID
        controllerID = id != 0 && id < 0xFFF0 ? id : 1
        local = Mutex(ControllerState(controllerID: controllerID))
        implementedIO = Self.implementedIOOpcodes()
        // A fresh subsystem has no controllers, so joining cannot fail.
        try? subsystem.join(controllerID: controllerID)
    }

    /// A controller with its own in-memory subsystem; see `init(configuration:)`.
    public static func inMemory(_ configuration: EmulatorConfiguration = .init()) -> EmulatedController {
        EmulatedController(configuration: configuration)
    }

    /// A controller over the file-backed subsystem in `directory`, created with
    /// `configuration`'s defaults on first use (one 1 GiB namespace of 512-byte blocks).
    /// Throws when another process holds the directory, naming its pid.
    public convenience init(directory: String, configuration: EmulatorConfiguration = .init()) throws(EmulatorError) {
        let s = try EmulatedSubsystem(directory: directory, configuration: configuration)
        try self.init(subsystem: s, controllerID: configuration.controllerID)
    }

    /// Another controller on an existing subsystem: a second host. `controllerID` must not be
    /// in use by another open controller of the subsystem.
    public init(subsystem: EmulatedSubsystem, controllerID: UInt16) throws(EmulatorError) {
        guard controllerID != 0 && controllerID < 0xFFF0 else {
            throw EmulatorError("controller ID \(controllerID) is reserved (valid: 1...FFEFh)")
        }
        self.subsystem = subsystem
        self.controllerID = controllerID
        local = Mutex(ControllerState(controllerID: controllerID))
        implementedIO = Self.implementedIOOpcodes()
        try subsystem.join(controllerID: controllerID)
        // The saved Volatile Write Cache value a file-backed subsystem brought back.
        let key = featureKey(.volatileWriteCache)
        subsystem.state.withLock { s in
            if let saved = s.savedFeatures[controllerID]?[key] { writeCache.saved.store(UInt8(saved & 1), ordering: .relaxed) }
        }
    }

    deinit { subsystem.leave(controllerID: controllerID) }

    // MARK: Controller

    public var identity: ControllerIdentity {
        subsystem.state.withLock { s in
            ControllerIdentity(model: s.modelNumber, firmwareRevision: s.firmware.slots[s.firmware.active - 1] ?? "",
                               serialNumber: s.serialNumber)
        }
    }

    public func namespaces() -> [NamespaceInfo] {
        let all = subsystem.state.withLock { s in s.namespaces.keys.sorted().compactMap { s.namespaces[$0] } }
        var out: [NamespaceInfo] = []
        for ns in all {
            let info = ns.state.withLock { (n) -> NamespaceInfo? in
                guard n.isActive(for: controllerID) else { return nil }
                return NamespaceInfo(nsid: ns.nsid, commandSet: .nvm, lbaDataSize: n.lbaSize, metadataSize: 0,
                                     blockCount: n.blockCount, partitions: mbrPartitions(n))
            }
            if let info { out.append(info) }
        }
        return out
    }

    public func effectsLog(for commandSet: CommandSet) -> CommandEffectsLog? {
        Self.effectsLog(commandSet)
    }

    public func submit(_ command: borrowing SubmissionEntry, queue: Queue,
                       data: UnsafeMutableRawBufferPointer, metadata: UnsafeMutableRawBufferPointer)
        throws(ControllerError) -> Completion {
        let cmd = Command(command)
        let completion = queue == .admin ? admin(cmd, data) : io(cmd, data)
        if !completion.status.isSuccess { recordError(cmd, queue: queue, completion) }
        return completion
    }

    /// Runs a batch as `submit` would one command after another, with each run of
    /// consecutive I/O commands to one namespace executed under one hold of its lock (shared
    /// when they all only read) and their SMART counters added once.
    public func submitBatch(_ entries: RawSpan, queue: Queue, buffers: UnsafePointer<CommandBuffers>,
                            outcomes: UnsafeMutablePointer<Result<Completion, ControllerError>>) {
        let count = SubmissionEntry.count(in: entries)
        var i = 0
        while i < count {
            let cmd = Command(SubmissionEntry(entries, index: i))
            let ns: Unmanaged<Namespace>
            switch queue == .io ? route(cmd) : .completed(admin(cmd, buffers[i].data)) {
            case .completed(let completion):
                if !completion.status.isSuccess { recordError(cmd, queue: queue, completion) }
                (outcomes + i).initialize(to: .success(completion))
                i &+= 1
                continue
            case .namespace(let target):
                ns = target
            }
            // The run: the commands that follow to the same namespace (a broadcast Flush ends it).
            var end = i &+ 1
            var reading = Self.onlyReads(cmd.opcode)
            while end < count {
                let next = SubmissionEntry(entries, index: end)
                guard next.nsid == cmd.nsid else { break }
                reading = reading && Self.onlyReads(next.opcode)
                end &+= 1
            }
            var tally = IOTally()
            var saveAfter = false
            ns._withUnsafeGuaranteedRef { ns in
                if reading {
                    ns.state.withSharedLock { n in
                        for j in i..<end {
                            let c = Command(SubmissionEntry(entries, index: j))
                            let completion = refusal(c, n) ?? executeReading(c, buffers[j].data, n, &tally)
                            (outcomes + j).initialize(to: .success(completion))
                        }
                    }
                } else {
                    ns.state.withLock { n in
                        for j in i..<end {
                            let c = Command(SubmissionEntry(entries, index: j))
                            let completion = refusal(c, n) ?? execute(c, buffers[j].data, &n, &tally, saveAfter: &saveAfter)
                            (outcomes + j).initialize(to: .success(completion))
                        }
                    }
                }
            }
            tally.add(to: subsystem.counters)
            if saveAfter { _ = subsystem.state.withLock { subsystem.save(&$0) } }
            for j in i..<end {
                if case .success(let completion) = outcomes[j], !completion.status.isSuccess {
                    recordError(Command(SubmissionEntry(entries, index: j)), queue: queue, completion)
                }
            }
            i = end
        }
    }

    /// Adds a failed command to the Error Information log.
    func recordError(_ cmd: Command, queue: Queue, _ completion: Completion) {
        let lba = queue == .io ? cmd.slba : 0
        let status = completion.status.rawValue
        subsystem.state.withLock { s in
            s.recordError(ErrorEntry(count: 0, sqid: queue == .admin ? 0 : 1, cid: cmd.cid,
                                     status: status, lba: lba, nsid: cmd.nsid))
        }
    }

    /// Controller Level Reset: features return to their saved (or default) values, the
    /// timestamp is lost, pending events are dropped, and a firmware image committed for
    /// activation at the next reset becomes the running firmware.
    public func reset() throws(ControllerError) {
        local.withLock { c in
            c.features = [:]
            c.timestamp = nil
            writeCache.current.store(WriteCacheSetting.unset, ordering: .relaxed)
        }
        subsystem.state.withLock { s in
            s.pendingEvents[controllerID] = nil
            s.pendingFirmware[controllerID] = nil
            if let next = s.firmware.next { s.firmware.active = next; s.firmware.next = nil }
            subsystem.save(&s)
        }
    }

    /// NVM Subsystem Reset: a controller reset, and reservations without Persist Through
    /// Power Loss are released with their registrations (as at power loss).
    public func subsystemReset() throws(ControllerError) {
        try reset()
        subsystem.state.withLock { s in
            for ns in s.namespaces.values {
                ns.state.withLock { n in
                    if !n.reservation.persistThroughPowerLoss {
                        let gen = n.reservation.generation
                        n.reservation = ReservationState()
                        n.reservation.generation = gen
                    }
                }
            }
            subsystem.save(&s)
        }
    }

    /// Namespace rescan: the emulator's namespace list is always current, so nothing to do.
    public func rescan() throws(ControllerError) {}

    // MARK: Effects

    /// Admin commands implemented, with the effects they really have.
    static let adminEffects: [AdminOpcode: CommandEffects] = [
        .getLogPage: CommandEffects(supported: true),
        .identify: CommandEffects(supported: true),
        .abort: CommandEffects(supported: true),
        // Set Features changes no namespace or controller capability here (no LBA format,
        // queue or power-state effect visible in Identify), so CSUPP only, like QEMU.
        .setFeatures: CommandEffects(supported: true),
        .getFeatures: CommandEffects(supported: true),
        .asynchronousEventRequest: CommandEffects(supported: true),
        .namespaceManagement: CommandEffects(supported: true, namespaceInventoryChange: true),
        // Activation changes Identify Controller FR.
        .firmwareCommit: CommandEffects(supported: true, controllerCapabilityChange: true),
        .firmwareImageDownload: CommandEffects(supported: true),
        .deviceSelfTest: CommandEffects(supported: true),
        .namespaceAttachment: CommandEffects(supported: true, namespaceInventoryChange: true),
        .keepAlive: CommandEffects(supported: true),
        // Erases data and may change the LBA format (NSZE, LBA size): LBCC, NCC; exclusive
        // for the namespace it formats (CSE=1; FNA bit 0 is clear, so formats are per namespace).
        .formatNVM: CommandEffects(supported: true, logicalBlockContentChange: true,
                                          namespaceCapabilityChange: true, submissionAndExecution: 1),
        // Erases every namespace: LBCC, exclusive for the whole subsystem (CSE=2).
        .sanitize: CommandEffects(supported: true, logicalBlockContentChange: true, submissionAndExecution: 2),
    ]

    /// NVM command set I/O commands implemented, with their effects.
    static let ioEffects: [IOOpcode: CommandEffects] = [
        // Flush makes data durable but changes no block's content as a read sees it.
        .flush: CommandEffects(supported: true),
        .write: CommandEffects(supported: true, logicalBlockContentChange: true),
        .read: CommandEffects(supported: true),
        .writeUncorrectable: CommandEffects(supported: true, logicalBlockContentChange: true),
        .compare: CommandEffects(supported: true),
        .writeZeroes: CommandEffects(supported: true, logicalBlockContentChange: true),
        .datasetManagement: CommandEffects(supported: true, logicalBlockContentChange: true),
        .verify: CommandEffects(supported: true),
        .reservationRegister: CommandEffects(supported: true),
        .reservationReport: CommandEffects(supported: true),
        .reservationAcquire: CommandEffects(supported: true),
        .reservationRelease: CommandEffects(supported: true),
        .copy: CommandEffects(supported: true, logicalBlockContentChange: true),
    ]

    /// `ioEffects`' opcodes as a 256-bit set, for the I/O path.
    static func implementedIOOpcodes() -> InlineArray<4, UInt64> {
        var bits = InlineArray<4, UInt64>(repeating: 0)
        for op in ioEffects.keys { bits[Int(op.rawValue >> 6)] |= 1 << UInt64(op.rawValue & 63) }
        return bits
    }

    /// Whether the NVM command set I/O command `opcode` is implemented.
    @inline(__always)
    func implementsIO(_ opcode: UInt8) -> Bool {
        implementedIO[Int(opcode >> 6)] & (1 << UInt64(opcode & 63)) != 0
    }

    /// The log for `commandSet`: the admin half always, the I/O half for the NVM command set
    /// only (the only one implemented; other CSIs get an empty I/O half, as in QEMU).
    static func effectsLog(_ commandSet: CommandSet) -> CommandEffectsLog {
        var log = CommandEffectsLog()
        for (op, e) in adminEffects { log[.admin, op.rawValue] = e }
        if commandSet == .nvm { for (op, e) in ioEffects { log[.io, op.rawValue] = e } }
        return log
    }

    // MARK: Dispatch

    func admin(_ cmd: Command, _ data: UnsafeMutableRawBufferPointer) -> Completion {
        let opcode = AdminOpcode(rawValue: cmd.opcode)
        guard Self.adminEffects[opcode] != nil else { return Completion(status: .invalidOpcode.withDoNotRetry) }
        if cmd.psdt != 0 { return Completion(status: .invalidField.withDoNotRetry) }       // SGLS = 0: PRPs only
        if cmd.fuse != 0 { return Completion(status: .invalidField) }  // FUSES = 0
        switch opcode {
        case .identify: return Completion(status: identify(cmd, data))
        case .getLogPage: return Completion(status: getLogPage(cmd, data))
        case .getFeatures: return getFeatures(cmd, data)
        case .setFeatures: return setFeatures(cmd, data)
        case .abort:
            // Commands complete synchronously, so there is never one to abort: DW0 bit 0 = 1
            // ("command not aborted"), as QEMU answers.
            return Completion(status: .success, dw0: 1)
        case .keepAlive: return Completion()
        case .asynchronousEventRequest: return asyncEventRequest()
        case .namespaceManagement: return namespaceManagement(cmd, data)
        case .namespaceAttachment: return Completion(status: namespaceAttachment(cmd, data))
        case .formatNVM: return Completion(status: formatNVM(cmd))
        case .sanitize: return Completion(status: sanitize(cmd))
        case .firmwareImageDownload: return Completion(status: firmwareImageDownload(cmd, data))
        case .firmwareCommit: return Completion(status: firmwareCommit(cmd))
        case .deviceSelfTest: return Completion(status: deviceSelfTest(cmd))
        default: return Completion(status: .invalidOpcode.withDoNotRetry)
        }
    }

    // MARK: Shared helpers

    /// The namespace `nsid` if it is allocated and attached to this controller (active).
    func activeNamespace(_ nsid: UInt32) -> Namespace? {
        guard let ns = subsystem.namespace(nsid)?.takeUnretainedValue() else { return nil }
        return ns.state.withSharedLock { $0.isActive(for: controllerID) } ? ns : nil
    }

    /// NSID is 1...NN.
    @inline(__always)
    func isValidNSID(_ nsid: UInt32) -> Bool {
        nsid != 0 && nsid <= subsystem.maxNamespaces
    }

    var hostKey: HostKey { local.withLock { $0.host } }
}
