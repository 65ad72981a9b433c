#if canImport(Glibc)
import Glibc
#endif
import Atomics
import Logging
import NVMeSpec
import Synchronization

/// What an ioctl returned: a value (0, a positive NVMe status, an NSID) or an errno.
@frozen
public enum IoctlOutcome: Sendable, Hashable {
    case returned(Int32)
    case failed(errno: Int32)
}

/// The gate: a controller behind a policy, with an ioctl-shaped front end.
///
/// Open a node as a caller (`open`), then send Linux's NVMe ioctl requests through the
/// handle (`ioctl`). Every command is decided by the compiled policy, read in place, without
/// allocation or lock; allowed commands go to the controller and come back as Linux returns
/// them. Safe to use from many threads at once.
public final class Gate: @unchecked Sendable {
    public let controller: any Controller
    /// The controller number in node names ("nvme0": 0).
    public let controllerNumber: UInt32
    /// Refusals (and privileged bypasses) are logged here when set: the audit trail.
    public let audit: Logger?

    let handles: HandleTable
    /// The policy in force, read without a lock; replaced whole by `reload`.
    let current: UnsafeAtomic<Unmanaged<CompiledPolicy>>
    /// Serialises open, close and reload; keeps every policy ever installed alive until the
    /// gate goes, so a reader that loaded one just before a swap can finish with it.
    let mutex = Mutex<[CompiledPolicy]>([])
    let counters: UnsafeMutablePointer<UnsafeAtomic<UInt64>.Storage>

    /// A gate over `controller` under `policy` (Linux's rules by default).
    public init(controller: any Controller, policy: Policy = .kernel, controllerNumber: UInt32 = 0,
                handleCapacity: Int = 4096, audit: Logger? = nil) {
        self.controller = controller
        self.controllerNumber = controllerNumber
        self.audit = audit
        handles = HandleTable(capacity: handleCapacity)
        let compiled = Self.compile(policy, for: controller)
        current = .create(Unmanaged.passUnretained(compiled))
        mutex.withLock { $0.append(compiled) }
        counters = .allocate(capacity: Reason.allCases.count)
        for i in 0..<Reason.allCases.count { (counters + i).initialize(to: .init(0)) }
    }

    deinit {
        current.destroy()
        for i in 0..<Reason.allCases.count { _ = (counters + i).move() }
        counters.deallocate()
    }

    /// `policy` compiled against the effects logs `controller` reports.
    public static func compile(_ policy: Policy, for controller: any Controller) -> CompiledPolicy {
        var logs: [CommandSet: CommandEffectsLog] = [:]
        for csi in CompiledPolicy.commandSetSlots {
            if let log = controller.effectsLog(for: csi) { logs[csi] = log }
        }
        return CompiledPolicy(policy: policy, effectsLogs: logs)
    }

    /// The policy in force.
    public var policy: CompiledPolicy {
        current.load(ordering: .acquiring).takeUnretainedValue()
    }

    /// Replaces the policy whole: commands already being decided finish under the old one,
    /// the next ones see the new one; none is decided under a mix.
    public func reload(_ policy: Policy) {
        let compiled = Self.compile(policy, for: controller)
        mutex.withLock { installed in
            installed.append(compiled)
            current.store(Unmanaged.passUnretained(compiled), ordering: .releasing)
        }
    }

    // MARK: Handles

    /// Opens `node` ("nvme0", "nvme0n1", "ng0n1", "nvme0n1p1") for `caller`, read-only or
    /// read-write. Returns a handle ≥ 0, or a negative errno: ENOENT for a node that does not
    /// exist, EMFILE when the handle table is full.
    public func open(node: String, writable: Bool, caller: Caller) -> Int32 {
        guard let name = NodeName(node), name.controller == controllerNumber else { return -ENOENT }
        var context = HandleContext(kind: name.kind, writable: writable, capabilities: caller.capabilities)
        var state = HandleState(context: context, uid: caller.uid, gid: caller.gid, lbaDataSize: 0, metadataSize: 0)
        if name.kind != .controller {
            guard let ns = controller.namespaces().first(where: { $0.nsid == name.nsid }) else { return -ENOENT }
            if name.kind == .partition && Int(name.partition) > ns.partitions.count { return -ENOENT }
            context.nsid = ns.nsid
            context.commandSet = ns.commandSet
            state.lbaDataSize = ns.lbaDataSize
            state.metadataSize = ns.metadataSize
        }
        state.context = context
        return mutex.withLock { _ in handles.insert(state) } ?? -EMFILE
    }

    /// Closes a handle: 0, or -EBADF if it was not open.
    public func close(_ handle: Int32) -> Int32 {
        mutex.withLock { _ in handles.remove(handle) } ? 0 : -EBADF
    }

    /// The state of an open handle, nil if it is not open.
    public func handleState(_ handle: Int32) -> HandleState? { handles.read(handle) }

    // MARK: ioctl

    /// As `ioctl(2)` on a Linux NVMe node: `.returned(0)` on success, `.returned(status)`
    /// with the positive NVMe status when the controller failed the command, the NSID for
    /// NVME_IOCTL_ID, or `.failed(errno)`: EACCES policy, EINVAL malformed, ENOTTY unknown
    /// request, EFAULT bad address, EBADF handle not open.
    public func ioctl(_ handle: Int32, request: UInt, argument: UnsafeMutableRawPointer?) -> IoctlOutcome {
        guard let state = handles.read(handle) else { return .failed(errno: EBADF) }
        let kind = state.context.kind
        let result: Int32
        switch IoctlRequest(rawValue: request) {
        case .adminCommand:
            result = passthru(state, argument, is64: false, queue: .admin)
        case .admin64Command:
            result = passthru(state, argument, is64: true, queue: .admin)
        case .ioCommand:
            result = passthru(state, argument, is64: false, queue: .io)
        case .io64Command:
            result = kind == .controller ? -ENOTTY : passthru(state, argument, is64: true, queue: .io)
        case .submitIO:
            result = kind == .controller ? -ENOTTY : submitIO(state, argument)
        case .id:
            if kind == .controller { return .failed(errno: ENOTTY) }
            return .returned(Int32(bitPattern: state.context.nsid))
        case .reset, .subsystemReset, .rescan:
            result = management(state, IoctlRequest(rawValue: request))
        default:
            result = -ENOTTY
        }
        return result < 0 ? .failed(errno: -result) : .returned(result)
    }

    func management(_ state: HandleState, _ request: IoctlRequest) -> Int32 {
        guard state.context.kind == .controller else { return -ENOTTY }
        guard state.context.capabilities.rawValue & policy.policy.managementCapabilities.rawValue != 0 else {
            record(.managementNeedsCapability, state, subject: { _ in
                DecisionSubject(command: request.name, queue: .admin, opcode: 0, effects: CommandEffects(rawValue: 0),
                                capabilityNames: self.policy.policy.managementCapabilities.nameList)
            })
            return -EACCES
        }
        do {
            switch request {
            case .reset: try controller.reset()
            case .subsystemReset: try controller.subsystemReset()
            default: try controller.rescan()
            }
        } catch {
            return -error.errno
        }
        return 0
    }

    func passthru(_ handleState: HandleState, _ argument: UnsafeMutableRawPointer?, is64: Bool, queue: Queue) -> Int32 {
        guard let argument else { return -EFAULT }
        var state = handleState
        if queue == .io && state.context.kind == .controller {
            // NVME_IOCTL_IO_CMD on a controller node: Linux allows it only with exactly one namespace.
            let namespaces = controller.namespaces()
            guard let only = namespaces.first else { return -ENOTTY }
            guard namespaces.count == 1 else { return -EINVAL }
            state.context.kind = .namespace
            state.context.nsid = only.nsid
            state.context.commandSet = only.commandSet
            state.lbaDataSize = only.lbaDataSize
            state.metadataSize = only.metadataSize
        }
        let command = PassthruCommand(argument, is64: is64)
        // Linux builds its own command from the caller's struct; deciding and executing that
        // one copy means a caller rewriting its struct meanwhile cannot change what runs.
        let entry = command.submissionQueueEntry
        return entry.withEntry { e in
            execute(e, queue: queue, state: state,
                    data: (command.addr, UInt64(command.dataLength)),
                    metadata: (command.metadata, UInt64(command.metadataLength)),
                    writeResult: { command.writeResult($0) })
        }
    }

    func submitIO(_ state: HandleState, _ argument: UnsafeMutableRawPointer?) -> Int32 {
        guard let argument else { return -EFAULT }
        let io = UserIO(argument)
        guard io.flags == 0 else { return -EINVAL }
        guard io.opcode == 0x01 || io.opcode == 0x02 || io.opcode == 0x05 else {
            record(.submitIOOpcode, state, queue: .io, opcode: io.opcode)
            return -EINVAL
        }
        let blocks = UInt64(io.nblocks) + 1
        // Linux's nvme_submit_io checks no permission; nvmegate decides it as the I/O command it is.
        return io.submissionQueueEntry(nsid: state.context.nsid).withEntry { e in
            execute(e, queue: .io, state: state,
                    data: (io.addr, blocks * UInt64(state.lbaDataSize)),
                    metadata: (io.metadata, io.metadata == 0 ? 0 : blocks * UInt64(state.metadataSize)),
                    writeResult: { _ in })
        }
    }

    /// Decide, check the buffers, execute, write the result back.
    @inline(__always)
    func execute(_ e: borrowing SubmissionEntry, queue: Queue, state: HandleState,
                 data: (address: UInt64, length: UInt64), metadata: (address: UInt64, length: UInt64),
                 writeResult: (Completion) -> Void) -> Int32 {
        let compiled = current.load(ordering: .acquiring)
        let reason = compiled._withUnsafeGuaranteedRef { $0.decide(e, queue: queue, handle: state.context) }
        if reason != .allowed {
            record(reason, state, queue: queue, opcode: e.opcode)
            if !reason.isAllowed { return -reason.errno }
        }
        let needed = TransferLength.of(e, queue: queue, commandSet: state.context.commandSet,
                                       lbaDataSize: state.lbaDataSize, metadataSize: state.metadataSize)
        var refusal: Reason?
        if let n = needed.data, data.length < n { refusal = .bufferTooShort }
        else if queue == .io && metadata.length > 0 && state.metadataSize == 0 { refusal = .metadataNotSupported }
        else if metadata.length < needed.metadata { refusal = .bufferTooShort }
        else if (data.length > 0 && data.address == 0) || (metadata.length > 0 && metadata.address == 0) { refusal = .badAddress }
        if let refusal {
            record(refusal, state, queue: queue, opcode: e.opcode)
            return -refusal.errno
        }
        let dataBuffer = UnsafeMutableRawBufferPointer(start: UnsafeMutableRawPointer(bitPattern: UInt(data.address)),
                                                       count: Int(clamping: data.length))
        let metadataBuffer = UnsafeMutableRawBufferPointer(start: UnsafeMutableRawPointer(bitPattern: UInt(metadata.address)),
                                                           count: Int(clamping: metadata.length))
        let completion: Completion
        do {
            completion = try controller.submit(e, queue: queue, data: dataBuffer, metadata: metadataBuffer)
        } catch {
            return -error.errno
        }
        writeResult(completion)
        return Int32(completion.status.rawValue)
    }

    // MARK: Explanations

    /// What the policy in force decides for `command` on `handle`, and the sentence that
    /// says why: for a caller that got EACCES or EINVAL from `ioctl` and wants to tell its
    /// user. Nil if the handle is not open. Not for the fast path: it builds a string.
    public func explain(_ handle: Int32, queue: Queue, command: borrowing SubmissionEntry) -> (reason: Reason, sentence: String)? {
        guard var state = handles.read(handle) else { return nil }
        if queue == .io && state.context.kind == .controller {
            let namespaces = controller.namespaces()
            if namespaces.count == 1 {
                state.context.kind = .namespace
                state.context.nsid = namespaces[0].nsid
                state.context.commandSet = namespaces[0].commandSet
            }
        }
        let compiled = policy
        let reason = compiled.decide(command, queue: queue, handle: state.context)
        var s = subject(queue: queue, opcode: command.opcode, state: state, policy: compiled)
        s.nsid = command.nsid
        s.field = DecisionSubject.filteredField(queue: queue, opcode: command.opcode, cdw10: command.cdw10)
        return (reason, reason.sentence(s))
    }

    // MARK: Batches

    /// Decides `count` 64-byte submission entries in place, as `handle` would, without
    /// executing them: `verdicts[i]` is 0 (allowed) or the errno the ioctl would return.
    /// Returns `count`, or a negative errno (EBADF).
    public func checkBatch(_ handle: Int32, queue: Queue, entries: RawSpan, verdicts: UnsafeMutablePointer<UInt8>) -> Int {
        guard let state = handles.read(handle) else { return -Int(EBADF) }
        let count = SubmissionEntry.count(in: entries)
        let compiled = current.load(ordering: .acquiring)
        compiled._withUnsafeGuaranteedRef { policy in
            for i in 0..<count {
                let reason = policy.decide(SubmissionEntry(entries, index: i), queue: queue, handle: state.context)
                verdicts[i] = UInt8(truncatingIfNeeded: reason.errno)
            }
        }
        return count
    }

    // MARK: Counters and audit

    /// How many commands were refused (or passed by privilege) for `reason` since the gate was made.
    public func count(of reason: Reason) -> UInt64 {
        UnsafeAtomic<UInt64>(at: counters + Int(reason.rawValue)).load(ordering: .relaxed)
    }

    func subject(queue: Queue, opcode: UInt8, state: HandleState, policy: CompiledPolicy) -> DecisionSubject {
        DecisionSubject(command: OpcodeTable.displayName(queue: queue, commandSet: state.context.commandSet, opcode: opcode),
                        queue: queue, opcode: opcode,
                        effects: policy.effects(queue: queue, commandSet: state.context.commandSet, opcode: opcode),
                        handleNSID: state.context.nsid, capabilityNames: policy.policy.bypassCapabilities.nameList,
                        permittedEffects: policy.policy.defaultRules.permittedEffects)
    }

    /// Counts and audits a decision about `opcode` on `queue`.
    func record(_ reason: Reason, _ state: HandleState, queue: Queue, opcode: UInt8) {
        record(reason, state, subject: { self.subject(queue: queue, opcode: opcode, state: state, policy: $0) })
    }

    /// Counts a refusal or bypass and, when auditing, logs it with who, where and why.
    func record(_ reason: Reason, _ state: HandleState, subject: (CompiledPolicy) -> DecisionSubject) {
        UnsafeAtomic<UInt64>(at: counters + Int(reason.rawValue)).wrappingIncrement(ordering: .relaxed)
        guard let audit else { return }
        let s = subject(policy)
        audit.notice("\(reason.isAllowed ? "passed" : "refused"): \(reason.sentence(s))", metadata: [
            "reason": "\(reason.code)", "errno": "\(reason.errno)", "command": "\(s.command)",
            "uid": "\(state.uid)", "gid": "\(state.gid)", "node_kind": "\(state.context.kind)", "nsid": "\(state.context.nsid)",
        ])
    }
}
