import NVMeSpec

/// A compiled policy bound to one handle and one queue, for deciding many commands.
///
/// What a decision needs from the handle (the 256 rows of its rule set for this queue and
/// command set, the NSID it binds, whether its rules refuse the node, whether the caller
/// bypasses the policy, and the blocks it owns) is worked out once, when the decider is
/// made; a loop over a ring then keeps it in registers instead of re-reading the handle
/// and the policy's tables per command. It decides exactly as `CompiledPolicy.decide`,
/// which is a decider made for one call.
///
/// A decider made with the public initializer holds its policy alive; it reads the policy
/// through an unowned reference, so no reference count is touched per decision.
@frozen
public struct Decider {
    @usableFromInline unowned(unsafe) let policy: CompiledPolicy
    /// The policy, held for a decider that may outlive its maker's reference (the public
    /// initializer); nil for a decider made for one call, whose caller holds the policy.
    @usableFromInline let retained: CompiledPolicy?
    /// The rows of the handle's rule set, queue and command set, indexed by opcode.
    @usableFromInline let rows: UnsafePointer<CompiledPolicy.Row>
    @usableFromInline let handle: HandleContext
    @usableFromInline let queue: Queue
    @usableFromInline let profile: Int
    /// I/O through a namespace or partition node: the command's NSID must be the handle's.
    @usableFromInline let bindsNSID: Bool
    /// `.partition` for a partition node whose rules refuse partitions, else `.allowed`.
    @usableFromInline let nodeRefusal: Reason
    /// The caller holds a capability that bypasses the policy.
    @usableFromInline let bypasses: Bool
    /// Tenant ownership or partition confinement applies to this handle.
    @usableFromInline let checksOwnership: Bool
    /// Ownership was worked out ahead for this handle's I/O (`windows`, bound NSID):
    /// `settledVerdicts` and the windows below decide it inline.
    @usableFromInline let settled: Bool
    /// The ownership verdict of an I/O command that is not LBA-addressed, by what it
    /// reaches and whether it changes data: byte `reach << 1 | writes` is a `Reason`.
    @usableFromInline let settledVerdicts: UInt64
    /// Blocks an LBA-addressed command may read (or change) without the full ownership
    /// check: one interval inside what the handle owns; empty means always check.
    @usableFromInline let readWindow: LBARange
    @usableFromInline let writeWindow: LBARange

    /// A decider for commands `handle` sends on `queue` under `policy`: for deciding many
    /// commands (a ring) from one handle at the cost of working out the handle once.
    @inlinable
    public init(_ policy: CompiledPolicy, handle: HandleContext, queue: Queue) {
        self.init(policy, handle: handle, queue: queue, windows: true, retained: policy)
    }

    /// `windows: false` skips working out the owned blocks (a loop over the tenant's
    /// grants): for a single decision, where the full check costs the same. `retained`
    /// nil: the caller keeps `policy` alive for as long as the decider is used.
    @inlinable @inline(__always)
    init(_ policy: CompiledPolicy, handle: HandleContext, queue: Queue, windows: Bool, retained: CompiledPolicy?) {
        let profile = Int(handle.profile) < policy.profileCount ? Int(handle.profile) : 0
        let partition = queue == .io && handle.kind == .partition
        let partitionRules = CompiledPolicy.ProfileFlag.partitionsConfined | CompiledPolicy.ProfileFlag.partitionsUnconfined
        self.policy = policy
        self.retained = retained
        self.handle = handle
        self.queue = queue
        self.profile = profile
        let block = CompiledPolicy.rowIndex(profile: profile, slot: CompiledPolicy.slot(queue: queue, commandSet: handle.commandSet),
                                            opcode: 0)
        rows = UnsafePointer(policy.rows.baseAddress.unsafelyUnwrapped + block)
        bindsNSID = queue == .io && handle.kind != .controller
        nodeRefusal = partition && policy.profileFlags[profile] & partitionRules == 0 ? .partition : .allowed
        bypasses = handle.capabilities.rawValue & policy.bypassMask != 0
        checksOwnership = handle.tenant != 0 || partition
        settled = windows && checksOwnership && queue == .io && handle.kind != .controller
        if settled {
            readWindow = policy.ownedWindow(handle, writes: false)
            writeWindow = policy.ownedWindow(handle, writes: true)
            var verdicts: UInt64 = 0
            for reach in [Reach.harmless, Reach.rangeList, Reach.wholeNamespace] {
                for writes in [false, true] {
                    let verdict = policy.ioOwnership(handle, nsid: handle.nsid, slba: 0, blocks: 1, reach: reach, writes: writes)
                    verdicts |= UInt64(verdict.rawValue) << ((Int(reach) << 1 | (writes ? 1 : 0)) * 8)
                }
            }
            settledVerdicts = verdicts
        } else {
            readWindow = LBARange(start: 0, count: 0)
            writeWindow = LBARange(start: 0, count: 0)
            settledVerdicts = 0
        }
    }

    /// Decides one command read in place: the envelope checks Linux makes (flags, NSID
    /// binding), then the policy's rules and ownership, then the capability bypass. No
    /// allocation, no lock, no copy of the entry.
    ///
    /// `fused` is for the second look at a fused Compare + Write pair on a ring: the FUSE
    /// bits are then expected and not refused.
    @inlinable @inline(__always)
    public func decide(_ entry: borrowing SubmissionEntry, fused: Bool = false) -> Reason {
        if entry.flags & (fused ? 0xFC : 0xFF) != 0 { return .flagsNotZero }
        if bindsNSID && entry.nsid != handle.nsid { return .nsidMismatch }
        let reason = rules(entry)
        if reason.isAllowed || !bypasses { return reason }
        return .privilegedBypass
    }

    /// The policy's rules alone, after the envelope checks (a settled decider relies on
    /// the NSID check) and without the capability bypass.
    ///
    /// The common case is one row load and a few branches; field filters and ownership
    /// that was not settled ahead are out of line, so the registers stay free for the loop.
    @inlinable @inline(__always)
    func rules(_ entry: borrowing SubmissionEntry) -> Reason {
        if nodeRefusal != .allowed { return nodeRefusal }
        let row = rows[Int(entry.opcode)]
        if row.reason != .allowed { return row.reason }
        if row.filter != CompiledPolicy.FieldFilter.none {
            let refusal = policy.fieldDecision(entry, filter: row.filter, profile: profile)
            if refusal != .allowed { return refusal }
        }
        if row.traits & CompiledPolicy.Row.needsWrite != 0 && !handle.writable { return .needsWriteOpen }
        if checksOwnership {
            let refusal = settled ? settledOwnership(entry, row) : policy.ownershipDecision(entry, queue: queue, handle: handle, row: row)
            if refusal != .allowed { return refusal }
        }
        return row.traits & CompiledPolicy.Row.audited != 0 ? .allowedAndAudited : .allowed
    }

    /// Ownership of an I/O command on a settled decider: an LBA-addressed command inside
    /// the window passes, one outside it gets the full check; any other gets its verdict
    /// worked out ahead.
    @inlinable @inline(__always)
    func settledOwnership(_ entry: borrowing SubmissionEntry, _ row: CompiledPolicy.Row) -> Reason {
        let writes = row.traits & CompiledPolicy.Row.changesData != 0
        if row.reach == Reach.lbaRange {
            let slba = UInt64(entry.cdw11) << 32 | UInt64(entry.cdw10)
            if (writes ? writeWindow : readWindow).contains(slba: slba, blocks: UInt64(entry.cdw12 & 0xFFFF) + 1) {
                return .allowed
            }
            return policy.ownershipDecision(entry, queue: .io, handle: handle, row: row)
        }
        let index = (Int(row.reach) & 3) << 1 | (writes ? 1 : 0)
        return unsafeBitCast(UInt8(truncatingIfNeeded: settledVerdicts >> UInt64(index &* 8)), to: Reason.self)
    }
}

