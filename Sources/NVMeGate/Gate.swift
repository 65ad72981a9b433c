#if canImport(Glibc)
import Glibc
#endif
import Atomics
import Logging
import NVMeSpec

/// What an ioctl returned: a value (0, a positive NVMe status, an NSID) or an errno.
@frozen
public enum IoctlOutcome: Sendable, Hashable {
    case returned(Int32)
    case failed(errno: Int32)
}

/// A compiled policy and, per handle slot, the profile and tenant (packed `profile |
/// tenant << 16`) the slot's caller resolves to under it. Read together from one pointer,
/// so no command is decided with one policy's rules and another's assignment.
final class PolicySnapshot: @unchecked Sendable {
    let compiled: CompiledPolicy
    let assignments: UnsafeMutableBufferPointer<UInt32>

    init(_ compiled: CompiledPolicy, capacity: Int) {
        self.compiled = compiled
        assignments = .allocate(capacity: capacity)
        assignments.initialize(repeating: 0)
    }

    deinit { assignments.deallocate() }

    /// Records the profile and tenant `caller` resolves to, for `handle`'s slot.
    func assign(_ handle: Int32, _ caller: Caller) {
        let (profile, tenant) = compiled.assignment(for: caller)
        assignments[Int(handle)] = UInt32(profile) | UInt32(tenant) << 16
    }

    /// `state` with the profile and tenant of `handle` under this snapshot.
    @inline(__always)
    func resolve(_ state: HandleState, _ handle: Int32) -> HandleState {
        var resolved = state
        let packed = assignments[Int(handle)]
        resolved.context.profile = UInt16(truncatingIfNeeded: packed)
        resolved.context.tenant = UInt16(truncatingIfNeeded: packed >> 16)
        return resolved
    }
}

/// What the gate does with a command it has decided and whose buffers it has checked.
enum Admission {
    /// Refused (counted, and audited where the policy asks): the ioctl returns -errno.
    case refused(errno: Int32)
    /// Allowed: the controller executes it with these buffers.
    case run(CommandBuffers)
    /// Allowed if every range in its range list is owned (Dataset Management, Copy for a
    /// handle that owns only some blocks): `Gate.submitCheckedRanges` checks a copy.
    case checkRanges(CommandBuffers)
}

/// What the gate's mutex guards: the snapshot in force, the snapshots it replaced that a
/// command may still read (each with the epoch it was replaced in, freed by `SnapshotEpochs`'
/// rule), and the caller of each open handle (so a reload can resolve them again).
struct GateBook {
    var installed: PolicySnapshot
    var retired: [(snapshot: PolicySnapshot, epoch: Int)]
    var callers: [Caller?]

    /// Frees the retired snapshots no command can still be reading, the epoch moved on as
    /// far as pinned commands allow.
    mutating func reclaim(_ epochs: SnapshotEpochs) {
        guard !retired.isEmpty else { return }
        let now = epochs.advance()
        retired.removeAll { SnapshotEpochs.reclaimable(retired: $0.epoch, now: now) }
    }
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
    /// The audit trail, when set: every refusal, privileged bypass and allowed command the
    /// policy audits (`audit_allowed`) is logged here at `notice` level, one event each,
    /// with the reason's sentence and the metadata `JSONLinesAuditHandler` writes.
    public let audit: Logger?

    let handles: HandleTable
    /// The policy in force with its handle assignments, read without a lock (between a pin
    /// and an unpin of `epochs`); replaced whole by `reload`.
    let current: UnsafeAtomic<Unmanaged<PolicySnapshot>>
    /// When a replaced snapshot can be freed.
    let epochs = SnapshotEpochs()
    /// Serialises open, close and reload.
    let mutex: Lock<GateBook>
    /// One counter per `Reason`, by raw value.
    let reasonCounts: UnsafeMutablePointer<UnsafeAtomic<UInt64>.Storage>

    /// A gate over `controller` under `policy` (Linux's rules by default).
    public init(controller: any Controller, policy: Policy = .kernel, controllerNumber: UInt32 = 0,
                handleCapacity: Int = 4096, audit: Logger? = nil) {
        self.controller = controller
        self.controllerNumber = controllerNumber
        self.audit = audit
        handles = HandleTable(capacity: handleCapacity)
        let snapshot = PolicySnapshot(Self.compile(policy, for: controller), capacity: handleCapacity)
        current = .create(Unmanaged.passUnretained(snapshot))
        mutex = Lock(GateBook(installed: snapshot, retired: [], callers: Array(repeating: nil, count: handleCapacity)))
        reasonCounts = .allocate(capacity: Reason.allCases.count)
        for i in 0..<Reason.allCases.count { (reasonCounts + i).initialize(to: .init(0)) }
    }

    deinit {
        current.destroy()
        for i in 0..<Reason.allCases.count { _ = (reasonCounts + i).move() }
        reasonCounts.deallocate()
    }

    /// `policy` compiled against the effects logs `controller` reports, with the policy's
    /// effects overrides for the controller's model and firmware.
    public static func compile(_ policy: Policy, for controller: any Controller) -> CompiledPolicy {
        var logs: [CommandSet: CommandEffectsLog] = [:]
        for csi in CompiledPolicy.commandSetSlots {
            if let log = controller.effectsLog(for: csi) { logs[csi] = log }
        }
        return CompiledPolicy(policy: policy, effectsLogs: logs, identity: controller.identity)
    }

    /// The policy in force.
    public var policy: CompiledPolicy {
        withPinnedSnapshot(0) { $0.takeUnretainedValue().compiled }
    }

    /// Pins an epoch on `handle`'s stripe, then loads the snapshot in force: the only way the
    /// snapshot pointer is read, so it is never loaded unpinned. It stays valid until
    /// `epochs.unpin(pin)`. No lock, no allocation.
    @inline(__always)
    func pinSnapshot(_ handle: Int32) -> (snapshot: Unmanaged<PolicySnapshot>, pin: Int) {
        let pin = epochs.pin(handle)
        return (current.load(ordering: .acquiring), pin)
    }

    /// Runs `body` with the snapshot in force, pinned for the call.
    @inline(__always)
    func withPinnedSnapshot<Result>(_ handle: Int32, _ body: (Unmanaged<PolicySnapshot>) -> Result) -> Result {
        let (snapshot, pin) = pinSnapshot(handle)
        defer { epochs.unpin(pin) }
        return body(snapshot)
    }

    /// How many policy snapshots the gate holds: the one in force and the replaced ones a
    /// command may still be reading. After a reload with no command running, 1.
    package var snapshotsHeld: Int {
        mutex.withLock { 1 + $0.retired.count }
    }

    /// Replaces the policy whole: commands already being decided finish under the old one,
    /// the next ones see the new one; none is decided under a mix. Open handles keep
    /// their callers, who are matched to the new policy's tenants. The old policy is freed
    /// once no command is reading it (here, or at a later reload, open or close).
    public func reload(_ policy: Policy) {
        let snapshot = PolicySnapshot(Self.compile(policy, for: controller), capacity: handles.capacity)
        mutex.withLock { book in
            for (slot, caller) in book.callers.enumerated() {
                if let caller { snapshot.assign(Int32(slot), caller) }
            }
            current.store(Unmanaged.passUnretained(snapshot), ordering: .sequentiallyConsistent)
            book.retired.append((book.installed, epochs.current))
            book.installed = snapshot
            book.reclaim(epochs)
        }
    }

    /// Loads the policy file at `path` and replaces the policy with it. A file that does not
    /// load is refused with its error, and the policy in force stays.
    public func reload(path: String) throws(PolicyError) {
        reload(try Policy.load(path: path))
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
            if name.kind == .partition {
                // An empty MBR slot has no node (Linux creates none): opening it would give a
                // partition handle with no blocks, which the decision reads as not confined.
                guard Int(name.partition) <= ns.partitions.count, ns.partitions[Int(name.partition) - 1].count > 0 else {
                    return -ENOENT
                }
                context.partition = ns.partitions[Int(name.partition) - 1]
            }
            context.nsid = ns.nsid
            context.commandSet = ns.commandSet
            state.lbaDataSize = ns.lbaDataSize
            state.metadataSize = ns.metadataSize
        }
        state.context = context
        return mutex.withLock { book in
            book.reclaim(epochs)
            guard let slot = handles.freeSlot() else { return -EMFILE }
            book.installed.assign(slot, caller)
            book.callers[Int(slot)] = caller
            handles.insert(state, at: slot)
            return slot
        }
    }

    /// Closes a handle: 0, or -EBADF if it was not open.
    public func close(_ handle: Int32) -> Int32 {
        mutex.withLock { book in
            guard handles.remove(handle) else { return false }
            book.callers[Int(handle)] = nil
            book.reclaim(epochs)
            return true
        } ? 0 : -EBADF
    }

    /// Reads the controller's namespaces again and brings the open handles up to date, as
    /// Linux rescans after a passthrough command whose effects say it changes namespaces (NIC
    /// or NCC: Format NVM, Namespace Management and Attachment, …), after a reset and on
    /// NVME_IOCTL_RESCAN; the gate does so at those points itself. A handle whose namespace
    /// was reformatted transfers with the new format; one whose namespace (or partition) is
    /// gone, or came back with another command set, refuses I/O with ENODEV from then on.
    /// An embedder that learns of changes made around the gate (an Asynchronous Event
    /// Notice) calls it too.
    public func rescanNamespaces() {
        mutex.withLock { book in
            let namespaces = controller.namespaces()
            for slot in book.callers.indices where book.callers[slot] != nil {
                let handle = Int32(slot)
                guard let state = handles.read(handle), state.context.kind != .controller, !state.namespaceGone else { continue }
                let c = state.context
                if let ns = namespaces.first(where: { $0.nsid == c.nsid }), ns.commandSet == c.commandSet,
                   c.kind != .partition || ns.partitions.contains(c.partition) {
                    handles.setFormat(handle, lbaDataSize: ns.lbaDataSize, metadataSize: ns.metadataSize)
                } else {
                    handles.markGone(handle)
                }
            }
        }
    }

    /// The state of an open handle under the policy in force (its profile and tenant
    /// resolved), nil if it is not open.
    public func handleState(_ handle: Int32) -> HandleState? {
        guard let state = handles.read(handle) else { return nil }
        return withPinnedSnapshot(handle) { $0.takeUnretainedValue().resolve(state, handle) }
    }

    // MARK: ioctl

    /// As `ioctl(2)` on a Linux NVMe node: `.returned(0)` on success, `.returned(status)`
    /// with the positive NVMe status when the controller failed the command, the NSID for
    /// NVME_IOCTL_ID, or `.failed(errno)`: EACCES policy, EINVAL malformed, ENOTTY unknown
    /// request, EFAULT bad address, EBADF handle not open.
    public func ioctl(_ handle: Int32, request: UInt, argument: UnsafeMutableRawPointer?) -> IoctlOutcome {
        guard let raw = handles.read(handle) else { return .failed(errno: EBADF) }
        // Loaded after the handle: a handle opened under a newer policy is always seen with
        // a snapshot that has its assignment. Pinned until the command is done.
        let (snapshot, pin) = pinSnapshot(handle)
        defer { epochs.unpin(pin) }
        let state = snapshot._withUnsafeGuaranteedRef { $0.resolve(raw, handle) }
        let kind = state.context.kind
        let result: Int32
        switch IoctlRequest(rawValue: request) {
        case .adminCommand:
            result = passthru(state, snapshot, argument, is64: false, queue: .admin)
        case .admin64Command:
            result = passthru(state, snapshot, argument, is64: true, queue: .admin)
        case .ioCommand:
            result = passthru(state, snapshot, argument, is64: false, queue: .io)
        case .io64Command:
            result = kind == .controller ? -ENOTTY : passthru(state, snapshot, argument, is64: true, queue: .io)
        case .submitIO:
            result = kind == .controller ? -ENOTTY : submitIO(state, snapshot, argument)
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
            record(.managementNeedsCapability, state, command: nil, subject: { _ in
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
        rescanNamespaces()
        return 0
    }

    func passthru(_ handleState: HandleState, _ snapshot: Unmanaged<PolicySnapshot>, _ argument: UnsafeMutableRawPointer?,
                  is64: Bool, queue: Queue) -> Int32 {
        guard let argument else { return -EFAULT }
        var state = handleState
        if queue == .io && state.namespaceGone { return gone(state, PassthruCommand(argument, is64: is64).opcode) }
        if queue == .io && state.context.kind == .controller {
            let mapped = onlyNamespace(of: state)
            guard mapped.errno == 0 else { return -mapped.errno }
            state = mapped.state
        }
        let command = PassthruCommand(argument, is64: is64)
        // Linux builds its own command from the caller's struct; deciding and executing that
        // one copy means a caller rewriting its struct meanwhile cannot change what runs.
        let entry = command.submissionQueueEntry
        return entry.withEntry { e in
            execute(e, queue: queue, state: state, snapshot: snapshot,
                    data: (command.addr, UInt64(command.dataLength)),
                    metadata: (command.metadata, UInt64(command.metadataLength)),
                    writeResult: { command.writeResult($0) })
        }
    }

    /// NVME_IOCTL_IO_CMD on a controller node goes to the controller's only namespace, as in
    /// Linux: `state` as a handle on that namespace, or errno ENOTTY when there is none and
    /// EINVAL when there are several (`state` unchanged).
    func onlyNamespace(of state: HandleState) -> (state: HandleState, errno: Int32) {
        let namespaces = controller.namespaces()
        guard let only = namespaces.first else { return (state, ENOTTY) }
        guard namespaces.count == 1 else { return (state, EINVAL) }
        var mapped = state
        mapped.context.kind = .namespace
        mapped.context.nsid = only.nsid
        mapped.context.commandSet = only.commandSet
        mapped.lbaDataSize = only.lbaDataSize
        mapped.metadataSize = only.metadataSize
        return (mapped, 0)
    }

    func submitIO(_ state: HandleState, _ snapshot: Unmanaged<PolicySnapshot>, _ argument: UnsafeMutableRawPointer?) -> Int32 {
        guard let argument else { return -EFAULT }
        let io = UserIO(argument)
        if state.namespaceGone { return gone(state, io.opcode) }
        guard io.flags == 0 else { return -EINVAL }
        guard io.opcode == 0x01 || io.opcode == 0x02 || io.opcode == 0x05 else {
            record(.submitIOOpcode, state, queue: .io, opcode: io.opcode, nsid: state.context.nsid)
            return -EINVAL
        }
        let blocks = UInt64(io.nblocks) + 1
        // Linux's nvme_submit_io checks no permission; nvmegate decides it as the I/O command it is.
        return io.submissionQueueEntry(nsid: state.context.nsid).withEntry { e in
            execute(e, queue: .io, state: state, snapshot: snapshot,
                    data: (io.addr, blocks * UInt64(state.lbaDataSize)),
                    metadata: (io.metadata, io.metadata == 0 ? 0 : blocks * UInt64(state.metadataSize)),
                    writeResult: { _ in })
        }
    }

    /// I/O through a handle whose namespace is gone: refused, counted, ENODEV.
    func gone(_ state: HandleState, _ opcode: UInt8) -> Int32 {
        record(.namespaceGone, state, queue: .io, opcode: opcode, nsid: state.context.nsid)
        return -ENODEV
    }

    /// Decide, check the buffers, execute, write the result back; read the namespaces
    /// again after a command whose effects say it changes them.
    @inline(__always)
    func execute(_ e: borrowing SubmissionEntry, queue: Queue, state: HandleState, snapshot: Unmanaged<PolicySnapshot>,
                 data: (address: UInt64, length: UInt64), metadata: (address: UInt64, length: UInt64),
                 writeResult: (Completion) -> Void) -> Int32 {
        let result: Int32
        switch admit(e, queue: queue, state: state, snapshot: snapshot, data: data, metadata: metadata) {
        case .refused(let errno):
            return -errno
        case .checkRanges(let buffers):
            result = snapshot._withUnsafeGuaranteedRef { s in
                submitCheckedRanges(e, queue: queue, state: state, policy: s.compiled, data: buffers.data,
                                    metadata: buffers.metadata, writeResult: writeResult)
            }
        case .run(let buffers):
            result = submit(e, queue: queue, data: buffers.data, metadata: buffers.metadata, writeResult: writeResult)
        }
        if snapshot._withUnsafeGuaranteedRef({ $0.compiled.changesNamespaces(queue: queue, commandSet: state.context.commandSet,
                                                                            opcode: e.opcode) }) {
            rescanNamespaces()
        }
        return result
    }

    /// Decides `e` under `snapshot` and checks its buffers, counting and auditing as the
    /// policy asks: what the ioctl and `submitBatch` then do with it.
    @inline(__always)
    func admit(_ e: borrowing SubmissionEntry, queue: Queue, state: HandleState, snapshot: Unmanaged<PolicySnapshot>,
               data: (address: UInt64, length: UInt64), metadata: (address: UInt64, length: UInt64)) -> Admission {
        let reason = snapshot._withUnsafeGuaranteedRef { $0.compiled.decide(e, queue: queue, handle: state.context) }
        if reason != .allowed && reason != .rangeListUnchecked {
            record(reason, state, queue: queue, opcode: e.opcode, nsid: e.nsid, cdw10: e.cdw10, deciding: snapshot.takeUnretainedValue().compiled)
            if !reason.isAllowed { return .refused(errno: reason.errno) }
        }
        let needed = TransferLength.of(e, queue: queue, commandSet: state.context.commandSet,
                                       lbaDataSize: state.lbaDataSize, metadataSize: state.metadataSize)
        var refusal: Reason?
        if let n = needed.data, data.length < n { refusal = .bufferTooShort }
        else if queue == .io && metadata.length > 0 && state.metadataSize == 0 { refusal = .metadataNotSupported }
        else if metadata.length < needed.metadata { refusal = .bufferTooShort }
        else if (data.length > 0 && data.address == 0) || (metadata.length > 0 && metadata.address == 0) { refusal = .badAddress }
        if let refusal {
            record(refusal, state, queue: queue, opcode: e.opcode, nsid: e.nsid, deciding: snapshot.takeUnretainedValue().compiled)
            return .refused(errno: refusal.errno)
        }
        let buffers = CommandBuffers(
            data: UnsafeMutableRawBufferPointer(start: UnsafeMutableRawPointer(bitPattern: UInt(data.address)),
                                                count: Int(clamping: data.length)),
            metadata: UnsafeMutableRawBufferPointer(start: UnsafeMutableRawPointer(bitPattern: UInt(metadata.address)),
                                                    count: Int(clamping: metadata.length)))
        return reason == .rangeListUnchecked ? .checkRanges(buffers) : .run(buffers)
    }

    @inline(__always)
    func submit(_ e: borrowing SubmissionEntry, queue: Queue, data: UnsafeMutableRawBufferPointer,
                metadata: UnsafeMutableRawBufferPointer, writeResult: (Completion) -> Void) -> Int32 {
        let completion: Completion
        do {
            completion = try controller.submit(e, queue: queue, data: data, metadata: metadata)
        } catch {
            return -error.errno
        }
        writeResult(completion)
        return Int32(completion.status.rawValue)
    }

    /// Dataset Management and Copy for a handle that owns only some blocks: the range list
    /// is copied out of the caller's buffer, every range in the copy is checked, and the
    /// controller is given the copy, so a caller rewriting its buffer meanwhile cannot
    /// change what runs. Copy's destination must be owned too.
    func submitCheckedRanges(_ e: borrowing SubmissionEntry, queue: Queue, state: HandleState, policy: CompiledPolicy,
                             data: UnsafeMutableRawBufferPointer, metadata: UnsafeMutableRawBufferPointer,
                             writeResult: (Completion) -> Void) -> Int32 {
        let isDSM = e.opcode == 0x09
        let count = Int((isDSM ? e.cdw10 : e.cdw12) & 0xFF) + 1
        let format = isDSM ? 0 : Int(e.cdw12 >> 8 & 0xF)
        guard format <= 1 else {
            // Formats 2h and 3h name source namespaces; a tenant's copy stays in its own.
            record(.rangeListUnchecked, state, queue: queue, opcode: e.opcode, nsid: e.nsid, deciding: policy)
            return -EACCES
        }
        let size = isDSM ? 16 : (format == 0 ? 32 : 40)
        let length = count * size
        guard data.count >= length else {
            record(.bufferTooShort, state, queue: queue, opcode: e.opcode, nsid: e.nsid, deciding: policy)
            return -EINVAL
        }
        let nsid = e.nsid
        let destination = UInt64(e.cdw11) << 32 | UInt64(e.cdw10)
        return withUnsafeTemporaryAllocation(byteCount: length, alignment: 16) { copy -> Int32 in
            copy.copyMemory(from: UnsafeRawBufferPointer(rebasing: data[0..<length]))
            var total: UInt64 = 0
            for i in 0..<count {
                let slba = UInt64(littleEndian: copy.loadUnaligned(fromByteOffset: i * size + 8, as: UInt64.self))
                let blocks = isDSM
                    ? UInt64(UInt32(littleEndian: copy.loadUnaligned(fromByteOffset: i * size + 4, as: UInt32.self)))
                    : UInt64(UInt16(littleEndian: copy.loadUnaligned(fromByteOffset: i * size + 16, as: UInt16.self))) + 1
                total &+= blocks
                if blocks == 0 { continue }
                guard policy.mayReach(state.context, nsid: nsid, slba: slba, blocks: blocks, writes: isDSM) else {
                    record(.lbaRangeNotOwned, state, queue: queue, opcode: e.opcode, nsid: nsid, deciding: policy)
                    return -EACCES
                }
            }
            if !isDSM && (total == 0 || !policy.mayReach(state.context, nsid: nsid, slba: destination, blocks: total, writes: true)) {
                record(.lbaRangeNotOwned, state, queue: queue, opcode: e.opcode, nsid: nsid, deciding: policy)
                return -EACCES
            }
            return submit(e, queue: queue, data: copy, metadata: metadata, writeResult: writeResult)
        }
    }

    // MARK: Explanations

    /// What the policy in force decides for `command` on `handle`, and the sentence that
    /// says why: for a caller that got EACCES or EINVAL from `ioctl` and wants to tell its
    /// user. Nil if the handle is not open. Not for the fast path: it builds a string.
    public func explain(_ handle: Int32, queue: Queue, command: borrowing SubmissionEntry) -> (reason: Reason, sentence: String)? {
        guard var state = handleState(handle) else { return nil }
        if queue == .io && state.context.kind == .controller {
            let mapped = onlyNamespace(of: state)
            if mapped.errno == 0 { state = mapped.state }
        }
        let compiled = policy
        let reason = compiled.decide(command, queue: queue, handle: state.context)
        let s = subject(queue: queue, opcode: command.opcode, nsid: command.nsid, cdw10: command.cdw10, state: state,
                        policy: compiled)
        return (reason, reason.sentence(s))
    }

    // MARK: Batches

    /// Decides `count` 64-byte submission entries in place, as `handle` would, without
    /// executing them: `verdicts[i]` is 0 (allowed) or the errno the ioctl would return.
    /// Returns `count`, or a negative errno (EBADF).
    public func checkBatch(_ handle: Int32, queue: Queue, entries: RawSpan, verdicts: UnsafeMutablePointer<UInt8>) -> Int {
        guard var raw = handles.read(handle) else { return -Int(EBADF) }
        let count = SubmissionEntry.count(in: entries)
        // I/O through a controller node goes to its only namespace, as NVME_IOCTL_IO_CMD sends
        // it: decided with that namespace's NSID binding and command set, or refused whole.
        if queue == .io && raw.context.kind == .controller {
            let mapped = onlyNamespace(of: raw)
            guard mapped.errno == 0 else {
                verdicts.update(repeating: UInt8(mapped.errno), count: count)
                return count
            }
            raw = mapped.state
        }
        if queue == .io && raw.namespaceGone {
            verdicts.update(repeating: UInt8(ENODEV), count: count)
            return count
        }
        let (snapshot, pin) = pinSnapshot(handle)
        defer { epochs.unpin(pin) }
        snapshot._withUnsafeGuaranteedRef { s in
            let context = s.resolve(raw, handle).context
            // One loop per queue, so each is compiled with its queue as a constant.
            if queue == .io {
                Self.decideRing(s.compiled, queue: .io, handle: context, entries: entries, count: count, verdicts: verdicts)
            } else {
                Self.decideRing(s.compiled, queue: .admin, handle: context, entries: entries, count: count, verdicts: verdicts)
            }
        }
        return count
    }

    /// Decides `count` entries of a ring into `verdicts`. Entries with FUSE bits get EINVAL
    /// here, as Linux refuses them; where the caller's rules decide fused Compare + Write
    /// pairs as one, a second pass over the (rare) fused entries decides the pairs.
    @inline(__always)
    static func decideRing(_ policy: CompiledPolicy, queue: Queue, handle: HandleContext, entries: RawSpan, count: Int,
                           verdicts: UnsafeMutablePointer<UInt8>) {
        // The caller holds `policy` for the call: no reference is taken.
        let decider = Decider(policy, handle: handle, queue: queue, windows: true, retained: nil)
        for i in 0..<count {
            verdicts[i] = UInt8(truncatingIfNeeded: decider.decide(SubmissionEntry(entries, index: i)).errno)
        }
        if queue == .io && policy.allowsFusedCompareWrite(profile: handle.profile) {
            decideFusedPairs(decider, entries: entries, count: count, verdicts: verdicts)
        }
    }

    /// The second pass of `decideRing`: each fused Compare (first half) directly followed by
    /// a fused Write (second half) is decided as one command, both halves getting the first
    /// refusal's errno or both passing. A lone half keeps its EINVAL (`flags-not-zero`), as Linux gives.
    @inline(never)
    static func decideFusedPairs(_ decider: Decider, entries: RawSpan, count: Int, verdicts: UnsafeMutablePointer<UInt8>) {
        var i = 0
        while i &+ 1 < count {
            let first = SubmissionEntry(entries, index: i)
            let second = SubmissionEntry(entries, index: i &+ 1)
            guard first.flags & 0x3 == 0x1 && first.opcode == 0x05 && second.flags & 0x3 == 0x2 && second.opcode == 0x01 else {
                i &+= 1
                continue
            }
            let a = decider.decide(first, fused: true)
            let b = decider.decide(second, fused: true)
            let verdict = UInt8(truncatingIfNeeded: (a.isAllowed ? b : a).errno)
            verdicts[i] = verdict
            verdicts[i &+ 1] = verdict
            i &+= 2
        }
    }
}
