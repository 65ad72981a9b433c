import NVMeSpec

/// A policy joined with one controller's effects logs into flat decision tables.
///
/// One row per (profile, queue, command set, opcode) holds the verdict that does not depend
/// on the command's fields; a few branches finish the decision (field filters, open mode).
/// Immutable once built: a reload builds a new one and swaps it whole.
public final class CompiledPolicy: @unchecked Sendable {
    /// One decision-table row. 8 bytes.
    @frozen @usableFromInline
    struct Row: BitwiseCopyable {
        /// `.allowed`, or the refusal this row always gives.
        @usableFromInline var reason: Reason
        /// 0: none; otherwise which CDW10 7:0 field filter applies (see `FieldFilter`).
        @usableFromInline var filter: UInt8
        @usableFromInline var needsWrite: Bool
        @usableFromInline var effects: UInt32
    }

    /// Field filters on CDW10 bits 7:0.
    @usableFromInline enum FieldFilter {
        @usableFromInline static let none: UInt8 = 0
        @usableFromInline static let identifyCNS: UInt8 = 1
        @usableFromInline static let logPage: UInt8 = 2
        @usableFromInline static let feature: UInt8 = 3
    }

    /// Command sets with their own I/O tables; any other CSI uses the last slot (nothing allowed).
    @usableFromInline static let commandSetSlots: [CommandSet] = [.nvm, .keyValue, .zoned]
    /// Admin, one per `commandSetSlots` entry, and one for any other command set. A literal,
    /// not derived: a computed static would cost a lazy-initialisation check per decision.
    @inlinable static var slotsPerProfile: Int { 5 }

    public let policy: Policy
    /// The effects each (queue, command set, opcode) is decided with, after known effects
    /// and CSE handling; for explanations.
    public let effectiveLogs: [CommandSet: CommandEffectsLog]
    /// Whether the controller reported a Commands Supported and Effects log.
    public let controllerHasEffectsLog: Bool
    @usableFromInline let rows: UnsafeMutableBufferPointer<Row>
    /// Per profile, 3 filters × 4 words: bitsets of allowed CNS, LID, FID values.
    @usableFromInline let fieldBits: UnsafeMutableBufferPointer<UInt64>
    @usableFromInline let bypassMask: UInt64
    @usableFromInline let profileCount: Int
    @usableFromInline let profilePartitions: UnsafeMutableBufferPointer<Bool>

    /// Compiles `policy` against the effects a controller reports (`logs[csi]`, nil entries
    /// or an empty dictionary meaning no log: Linux then knows only the known effects and
    /// nothing is supported).
    public init(policy: Policy, effectsLogs logs: [CommandSet: CommandEffectsLog]) {
        assert(Self.slotsPerProfile == Self.commandSetSlots.count + 2)
        self.policy = policy
        controllerHasEffectsLog = !logs.isEmpty
        var effective: [CommandSet: CommandEffectsLog] = [:]
        for csi in Self.commandSetSlots {
            effective[csi] = Self.effectiveLog(logs[csi], commandSet: csi, policy: policy)
        }
        effectiveLogs = effective
        bypassMask = policy.bypassCapabilities.rawValue

        let profiles = [policy.defaultRules]
        profileCount = profiles.count
        rows = .allocate(capacity: profiles.count * Self.slotsPerProfile * 256)
        fieldBits = .allocate(capacity: profiles.count * 12)
        fieldBits.initialize(repeating: 0)
        profilePartitions = .allocate(capacity: profiles.count)
        for (p, rules) in profiles.enumerated() {
            profilePartitions[p] = rules.partitions
            for (f, set) in [rules.identifyCNS, rules.logPages, rules.features].enumerated() {
                for v in set { fieldBits[p * 12 + f * 4 + Int(v >> 6)] |= 1 << UInt64(v & 63) }
            }
            let admin = effective[.nvm] ?? CommandEffectsLog()
            for op in 0...255 {
                let opcode = UInt8(op)
                rows[Self.rowIndex(profile: p, slot: 0, opcode: opcode)] =
                    Self.adminRow(opcode: opcode, effects: admin[.admin, opcode], rules: rules)
            }
            for slot in 1...Self.slotsPerProfile - 1 {
                let csi = slot <= Self.commandSetSlots.count ? Self.commandSetSlots[slot - 1] : nil
                let log = csi.flatMap { effective[$0] }
                for op in 0...255 {
                    let opcode = UInt8(op)
                    rows[Self.rowIndex(profile: p, slot: slot, opcode: opcode)] =
                        Self.ioRow(opcode: opcode, effects: log?[.io, opcode] ?? CommandEffects(rawValue: 0),
                                   knownCommandSet: csi != nil, rules: rules)
                }
            }
        }
    }

    deinit {
        rows.deallocate()
        fieldBits.deallocate()
        profilePartitions.deallocate()
    }

    /// The effects Linux decides with: the controller's log (or an empty one), plus known
    /// effects, minus CSE for I/O commands and for admin commands with relaxations.
    static func effectiveLog(_ reported: CommandEffectsLog?, commandSet: CommandSet, policy: Policy) -> CommandEffectsLog {
        var log = reported ?? CommandEffectsLog()
        if policy.linuxKnownEffects {
            let cseMask = CommandEffects.submissionAndExecutionMask
            let lbcc = CommandEffects.logicalBlockContentChange.rawValue
            // nvme_init_known_nvm_effects (Linux 6.3+): Format NVM, Sanitize, Security Receive.
            log.entries[0x80] |= lbcc | CommandEffects.namespaceCapabilityChange.rawValue | cseMask
            log.entries[0x84] |= lbcc | cseMask
            log.entries[0x82] &= ~cseMask
            if commandSet == .nvm {
                for op in [0x01, 0x08, 0x04] { log.entries[256 + op] |= lbcc }
            }
        }
        for op in 0..<256 {
            let admin = CommandEffects(rawValue: log.entries[op])
            if admin.relaxations != 0 { log.entries[op] = admin.withoutSubmissionAndExecution.rawValue }
            if policy.ignoreIOSubmissionAndExecution {
                log.entries[256 + op] &= ~CommandEffects.submissionAndExecutionMask
            }
        }
        return log
    }

    static func adminRow(opcode: UInt8, effects: CommandEffects, rules: Rules) -> Row {
        var row = Row(reason: .allowed, filter: FieldFilter.none, needsWrite: false, effects: effects.rawValue)
        if opcode == 0x7F {
            row.reason = .fabrics
        } else if rules.adminCommands.contains(opcode) {
            row.reason = .allowed
        } else if opcode == 0x06 && !rules.identifyCNS.isEmpty {
            row.filter = FieldFilter.identifyCNS
        } else if opcode == 0x02 && !rules.logPages.isEmpty {
            row.filter = FieldFilter.logPage
        } else if opcode == 0x0A && !rules.features.isEmpty {
            row.filter = FieldFilter.feature
        } else {
            row.reason = opcode >= 0xC0 ? .vendorSpecific : .adminCommandNotAllowed
        }
        return row
    }

    static func ioRow(opcode: UInt8, effects: CommandEffects, knownCommandSet: Bool, rules: Rules) -> Row {
        var row = Row(reason: .allowed, filter: FieldFilter.none, needsWrite: false, effects: effects.rawValue)
        let permitted = CommandEffects.supported.rawValue | rules.permittedEffects.rawValue
        if opcode == 0x7F {
            row.reason = .fabrics
        } else if opcode >= 0x80 {
            row.reason = .vendorSpecific
        } else if !knownCommandSet {
            row.reason = .notSupported
        } else if case .none = rules.ioCommands {
            row.reason = .ioCommandNotAllowed
        } else if case .only(let set) = rules.ioCommands, !set.contains(opcode) {
            row.reason = .ioCommandNotAllowed
        } else if !effects.isSupported {
            row.reason = .notSupported
        } else if effects.rawValue & ~permitted != 0 {
            row.reason = .intrusiveEffects
        } else {
            row.needsWrite = (rules.writeAccess.contains(.dataToController) && DataDirection(opcode: opcode).transfersToController)
                || (rules.writeAccess.contains(.logicalBlockContentChange) && effects.contains(.logicalBlockContentChange))
        }
        return row
    }

    @inlinable @inline(__always)
    static func rowIndex(profile: Int, slot: Int, opcode: UInt8) -> Int {
        (profile &* slotsPerProfile &+ slot) &* 256 &+ Int(opcode)
    }

    @inlinable @inline(__always)
    static func slot(queue: Queue, commandSet: CommandSet) -> Int {
        if queue == .admin { return 0 }
        switch commandSet.rawValue {
        case 0x00: return 1
        case 0x01: return 2
        case 0x02: return 3
        default: return 4
        }
    }

    // MARK: The decision

    /// Decides one command read in place: the envelope checks Linux makes (flags, NSID
    /// binding), then the policy's rules, then the capability bypass. No allocation, no
    /// lock, no copy of the entry.
    @inlinable @inline(__always)
    public func decide(_ entry: borrowing SubmissionEntry, queue: Queue, handle: HandleContext) -> Reason {
        if entry.flags != 0 { return .flagsNotZero }
        if queue == .io && handle.kind != .controller && entry.nsid != handle.nsid { return .nsidMismatch }
        let reason = policyDecision(entry, queue: queue, handle: handle)
        if reason == .allowed || handle.capabilities.rawValue & bypassMask == 0 { return reason }
        return .privilegedBypass
    }

    /// The policy's rules alone, without envelope checks or the capability bypass.
    @inlinable @inline(__always)
    public func policyDecision(_ entry: borrowing SubmissionEntry, queue: Queue, handle: HandleContext) -> Reason {
        let profile = Int(handle.profile) < profileCount ? Int(handle.profile) : 0
        if queue == .io && handle.kind == .partition && !profilePartitions[profile] { return .partition }
        let row = rows[Self.rowIndex(profile: profile, slot: Self.slot(queue: queue, commandSet: handle.commandSet),
                                     opcode: entry.opcode)]
        if row.reason != .allowed { return row.reason }
        if row.filter != FieldFilter.none {
            let value = entry.cdw10 & 0xFF
            let word = fieldBits[profile &* 12 &+ (Int(row.filter) &- 1) &* 4 &+ Int(value >> 6)]
            if word & (1 << UInt64(value & 63)) == 0 {
                switch row.filter {
                case FieldFilter.identifyCNS: return .identifyCNSNotAllowed
                case FieldFilter.logPage: return .logPageNotAllowed
                default: return .featureNotAllowed
                }
            }
        }
        if row.needsWrite && !handle.writable { return .needsWriteOpen }
        return .allowed
    }

    /// The effects a decision for (queue, command set, opcode) consulted.
    public func effects(queue: Queue, commandSet: CommandSet, opcode: UInt8) -> CommandEffects {
        let log = effectiveLogs[queue == .admin ? .nvm : commandSet]
        return log?[queue, opcode] ?? CommandEffects(rawValue: 0)
    }
}
