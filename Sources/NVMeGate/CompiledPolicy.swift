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
        /// `needsWrite`, `changesData`, `audited` bits.
        @usableFromInline var traits: UInt8
        /// What the command reaches, for ownership (`Reach`).
        @usableFromInline var reach: UInt8
        @usableFromInline var effects: UInt32

        /// The command needs a handle opened for writing.
        @usableFromInline static let needsWrite: UInt8 = 1
        /// The command changes data or namespace state (a read-only grant refuses it).
        @usableFromInline static let changesData: UInt8 = 2
        /// Allowed commands of this row are audited (`Reason.allowedAndAudited`).
        @usableFromInline static let audited: UInt8 = 4
    }

    /// Per-profile settings beside the rows.
    @usableFromInline enum ProfileFlag {
        @usableFromInline static let partitionsConfined: UInt8 = 1
        @usableFromInline static let partitionsUnconfined: UInt8 = 2
        @usableFromInline static let requireRetainAsyncEvent: UInt8 = 4
        @usableFromInline static let limitLogPageLSP: UInt8 = 8
        @usableFromInline static let fusedCompareWrite: UInt8 = 16
    }
    /// Words of field bitsets per profile: CNS, LID and FID (4 words each), LSP (2 words).
    @usableFromInline static let fieldWordsPerProfile = 14

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
    /// Per profile, `fieldWordsPerProfile` words: bitsets of allowed CNS, LID, FID and LSP values.
    @usableFromInline let fieldBits: UnsafeMutableBufferPointer<UInt64>
    @usableFromInline let bypassMask: UInt64
    /// Distinct rule sets: the default rules are profile 0, tenants share identical ones.
    @usableFromInline let profileCount: Int
    @usableFromInline let profileFlags: UnsafeMutableBufferPointer<UInt8>
    /// Index 0 is "no tenant" (the default rules, no ownership); tenant i is index i + 1.
    @usableFromInline let tenantCount: Int
    /// Per tenant index: its profile, whether it owns every namespace, and its grants
    /// (`grants[grantStart[t] ..< grantStart[t + 1]]`).
    let tenantProfiles: [UInt16]
    /// The first tenant index naming each uid, gid and caller name: `assignment(for:)` in
    /// three lookups instead of a search through every tenant's sets (a reload assigns
    /// every open handle).
    let firstTenantByUID: [UInt32: Int]
    let firstTenantByGID: [UInt32: Int]
    let firstTenantByName: [String: Int]
    @usableFromInline let tenantOwnsAll: UnsafeMutableBufferPointer<Bool>
    @usableFromInline let grantStart: UnsafeMutableBufferPointer<Int>
    @usableFromInline let grants: UnsafeMutableBufferPointer<CompiledGrant>
    /// Per queue and command set slot, 4 words: a bit per opcode whose effects say it changes
    /// namespaces (NIC or NCC), after which the gate reads the namespaces again.
    let namespaceChanging: UnsafeMutableBufferPointer<UInt64>

    /// Compiles `policy` against the effects a controller reports (`logs[csi]`, nil entries
    /// or an empty dictionary meaning no log: Linux then knows only the known effects and
    /// nothing is supported), after the policy's overrides for `identity`.
    public init(policy: Policy, effectsLogs logs: [CommandSet: CommandEffectsLog], identity: ControllerIdentity? = nil) {
        assert(Self.slotsPerProfile == Self.commandSetSlots.count + 2)
        self.policy = policy
        controllerHasEffectsLog = !logs.isEmpty
        let overrides = identity.map { id in policy.effectsOverrides.filter { $0.applies(to: id) } } ?? []
        var effective: [CommandSet: CommandEffectsLog] = [:]
        for csi in Self.commandSetSlots {
            effective[csi] = Self.effectiveLog(logs[csi], commandSet: csi, policy: policy, overrides: overrides)
        }
        effectiveLogs = effective
        bypassMask = policy.bypassCapabilities.rawValue
        namespaceChanging = .allocate(capacity: Self.slotsPerProfile * 4)
        namespaceChanging.initialize(repeating: 0)
        let changing = CommandEffects.namespaceInventoryChange.rawValue | CommandEffects.namespaceCapabilityChange.rawValue
        for slot in 0..<Self.slotsPerProfile {
            let csi = slot == 0 ? CommandSet.nvm : slot <= Self.commandSetSlots.count ? Self.commandSetSlots[slot - 1] : nil
            guard let log = csi.flatMap({ effective[$0] }) else { continue }
            for op in 0..<256 where log[slot == 0 ? .admin : .io, UInt8(op)].rawValue & changing != 0 {
                namespaceChanging[slot * 4 + op >> 6] |= 1 << UInt64(op & 63)
            }
        }

        var profiles = [policy.defaultRules]
        var profileOf: [Rules: Int] = [policy.defaultRules: 0]
        var tenantProfiles: [UInt16] = [0]
        tenantProfiles.reserveCapacity(policy.tenants.count + 1)
        // By index, here and below: a `for tenant in` loop copies every tenant (its sets retained).
        for i in policy.tenants.indices {
            let rules = policy.tenants[i].rules
            let index = profileOf[rules] ?? {
                profiles.append(rules)
                profileOf[rules] = profiles.count - 1
                return profiles.count - 1
            }()
            tenantProfiles.append(UInt16(index))
        }
        self.tenantProfiles = tenantProfiles
        profileCount = profiles.count
        rows = .allocate(capacity: profiles.count * Self.slotsPerProfile * 256)
        fieldBits = .allocate(capacity: profiles.count * Self.fieldWordsPerProfile)
        fieldBits.initialize(repeating: 0)
        profileFlags = .allocate(capacity: profiles.count)
        for (p, rules) in profiles.enumerated() {
            profileFlags[p] = Self.flags(rules)
            let lsp = rules.logPageLSP ?? []
            for (f, set) in [rules.identifyCNS, rules.logPages, rules.features, lsp].enumerated() {
                for v in set { fieldBits[p * Self.fieldWordsPerProfile + f * 4 + Int(v >> 6)] |= 1 << UInt64(v & 63) }
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
                                   commandSet: csi, rules: rules)
                }
            }
        }

        tenantCount = policy.tenants.count + 1
        var byUID: [UInt32: Int] = [:], byGID: [UInt32: Int] = [:], byName: [String: Int] = [:]
        byUID.reserveCapacity(policy.tenants.count)
        // Last to first, so each id ends up with the first tenant that names it.
        for i in policy.tenants.indices.reversed() {
            for uid in policy.tenants[i].uids { byUID[uid] = i + 1 }
            for gid in policy.tenants[i].gids { byGID[gid] = i + 1 }
            for name in policy.tenants[i].callerNames { byName[name] = i + 1 }
        }
        firstTenantByUID = byUID; firstTenantByGID = byGID; firstTenantByName = byName
        tenantOwnsAll = .allocate(capacity: tenantCount)
        grantStart = .allocate(capacity: tenantCount + 1)
        var flat: [CompiledGrant] = []
        flat.reserveCapacity(policy.tenants.count)
        tenantOwnsAll[0] = false
        grantStart[0] = 0
        for i in policy.tenants.indices {
            grantStart[i + 1] = flat.count
            switch policy.tenants[i].ownership {
            case .all:
                tenantOwnsAll[i + 1] = true
            case .grants(let list):
                tenantOwnsAll[i + 1] = false
                for g in list {
                    flat.append(CompiledGrant(nsid: g.nsid, writable: g.writable, whole: g.range == nil,
                                              start: g.range?.start ?? 0, count: g.range?.count ?? 0))
                }
            }
        }
        grantStart[tenantCount] = flat.count
        grants = .allocate(capacity: max(flat.count, 1))
        _ = grants.initialize(from: flat)
    }

    deinit {
        namespaceChanging.deallocate()
        rows.deallocate()
        fieldBits.deallocate()
        profileFlags.deallocate()
        tenantOwnsAll.deallocate()
        grantStart.deallocate()
        grants.deallocate()
    }

    static func flags(_ rules: Rules) -> UInt8 {
        var flags: UInt8 = 0
        switch rules.partitions {
        case .refuse: break
        case .confined: flags |= ProfileFlag.partitionsConfined
        case .unconfined: flags |= ProfileFlag.partitionsUnconfined
        }
        if rules.requireRetainAsyncEvent { flags |= ProfileFlag.requireRetainAsyncEvent }
        if rules.logPageLSP != nil { flags |= ProfileFlag.limitLogPageLSP }
        if rules.fusedCompareWrite { flags |= ProfileFlag.fusedCompareWrite }
        return flags
    }

    /// The profile and tenant index a caller resolves to: what a handle opened by it carries.
    /// The same tenant as `policy.tenantIndex(for:)`: the first naming the caller's name,
    /// uid, gid or one of its supplementary groups.
    public func assignment(for caller: Caller) -> (profile: UInt16, tenant: UInt16) {
        var first = min(firstTenantByUID[caller.uid] ?? Int.max, firstTenantByGID[caller.gid] ?? Int.max)
        for group in caller.groups { if let t = firstTenantByGID[group] { first = min(first, t) } }
        if let name = caller.name, let t = firstTenantByName[name] { first = min(first, t) }
        guard first != Int.max else { return (0, 0) }
        return (tenantProfiles[first], UInt16(first))
    }

    /// The tenant a handle's tenant index names, nil for the default rules.
    public func tenant(at index: UInt16) -> Tenant? {
        index == 0 || Int(index) > policy.tenants.count ? nil : policy.tenants[Int(index) - 1]
    }

    /// The effects Linux decides with: the controller's log (or an empty one), plus known
    /// effects, minus CSE for I/O commands and for admin commands with relaxations; the
    /// policy's overrides for this controller applied first.
    static func effectiveLog(_ reported: CommandEffectsLog?, commandSet: CommandSet, policy: Policy,
                             overrides: [EffectsOverride] = []) -> CommandEffectsLog {
        var log = reported ?? CommandEffectsLog()
        for o in overrides where o.queue == .admin || o.commandSet == commandSet {
            let index = (o.queue == .admin ? 0 : 256) + Int(o.opcode)
            log.entries[index] = o.replace ? o.effects.rawValue : log.entries[index] | o.effects.rawValue
        }
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
        var row = Row(reason: .allowed, filter: FieldFilter.none, traits: 0, reach: Reach.admin(opcode: opcode),
                      effects: effects.rawValue)
        let changing = CommandEffects.logicalBlockContentChange.rawValue | CommandEffects.namespaceCapabilityChange.rawValue
            | CommandEffects.namespaceInventoryChange.rawValue | CommandEffects.controllerCapabilityChange.rawValue
        if effects.rawValue & changing != 0 || row.reach >= Reach.changesNamespace { row.traits |= Row.changesData }
        if !rules.auditAllowed.isDisjoint(with: .admin) { row.traits |= Row.audited }
        if opcode == 0x7F {
            row.reason = .fabrics
        } else if rules.adminCommands.contains(opcode) && opcode >= 0xC0 {
            // A vendor-specific command passes only where the effects log vouches for it.
            let permitted = CommandEffects.supported.rawValue | rules.adminPermittedEffects.rawValue
            if !effects.isSupported { row.reason = .notSupported }
            else if effects.rawValue & ~permitted != 0 { row.reason = .intrusiveEffects }
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

    static func ioRow(opcode: UInt8, effects: CommandEffects, commandSet: CommandSet?, rules: Rules) -> Row {
        let knownCommandSet = commandSet != nil
        var row = Row(reason: .allowed, filter: FieldFilter.none, traits: 0,
                      reach: commandSet.map { Reach.io(commandSet: $0, opcode: opcode) } ?? Reach.wholeNamespace,
                      effects: effects.rawValue)
        let writes = DataDirection(opcode: opcode).transfersToController || effects.contains(.logicalBlockContentChange)
        if writes { row.traits |= Row.changesData }
        if rules.auditAllowed == .all || (writes && rules.auditAllowed.contains(.writes)) { row.traits |= Row.audited }
        let permitted = CommandEffects.supported.rawValue | rules.permittedEffects.rawValue
        if opcode == 0x7F {
            row.reason = .fabrics
        } else if opcode >= 0x80 && !rules.vendorIOCommands.contains(opcode) {
            row.reason = .vendorSpecific
        } else if opcode >= 0x80 && !knownCommandSet {
            row.reason = .notSupported
        } else if opcode >= 0x80 {
            if !effects.isSupported { row.reason = .notSupported }
            else if effects.rawValue & ~permitted != 0 { row.reason = .intrusiveEffects }
            else { row.traits |= needsWriteTraits(opcode: opcode, effects: effects, rules: rules) }
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
            row.traits |= needsWriteTraits(opcode: opcode, effects: effects, rules: rules)
        }
        return row
    }

    static func needsWriteTraits(opcode: UInt8, effects: CommandEffects, rules: Rules) -> UInt8 {
        let needs = (rules.writeAccess.contains(.dataToController) && DataDirection(opcode: opcode).transfersToController)
            || (rules.writeAccess.contains(.logicalBlockContentChange) && effects.contains(.logicalBlockContentChange))
        return needs ? Row.needsWrite : 0
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

    /// Decides one command read in place, as `Decider.decide` does (see there). For many
    /// commands from one handle, make a `Decider` once instead.
    @inlinable @inline(__always)
    public func decide(_ entry: borrowing SubmissionEntry, queue: Queue, handle: HandleContext, fused: Bool = false) -> Reason {
        Decider(self, handle: handle, queue: queue, windows: false, retained: nil).decide(entry, fused: fused)
    }

    /// The policy's rules alone, without envelope checks or the capability bypass.
    @inlinable @inline(__always)
    public func policyDecision(_ entry: borrowing SubmissionEntry, queue: Queue, handle: HandleContext) -> Reason {
        Decider(self, handle: handle, queue: queue, windows: false, retained: nil).rules(entry)
    }

    /// The CDW10 field filters: Identify CNS, Get Log Page LID (and LSP, RAE), Get Features FID.
    @usableFromInline @inline(never)
    func fieldDecision(_ entry: borrowing SubmissionEntry, filter: UInt8, profile: Int) -> Reason {
        let value = entry.cdw10 & 0xFF
        let base = profile &* Self.fieldWordsPerProfile
        let word = fieldBits[base &+ (Int(filter) &- 1) &* 4 &+ Int(value >> 6)]
        if word & (1 << UInt64(value & 63)) == 0 {
            switch filter {
            case FieldFilter.identifyCNS: return .identifyCNSNotAllowed
            case FieldFilter.logPage: return .logPageNotAllowed
            default: return .featureNotAllowed
            }
        }
        let flags = profileFlags[profile]
        if filter == FieldFilter.logPage && flags & (ProfileFlag.requireRetainAsyncEvent | ProfileFlag.limitLogPageLSP) != 0 {
            if flags & ProfileFlag.requireRetainAsyncEvent != 0 && !entry.retainAsynchronousEvent { return .logPageNeedsRetain }
            let lsp = UInt32(entry.logSpecificParameter)
            if flags & ProfileFlag.limitLogPageLSP != 0
                && fieldBits[base &+ 12 &+ Int(lsp >> 6)] & (1 << UInt64(lsp & 63)) == 0 { return .logPageLSPNotAllowed }
        }
        return .allowed
    }

    /// Namespace and LBA-range ownership for a tenant's handle, and the confinement of a
    /// partition handle. Out of line: the kernel policy never comes here.
    @usableFromInline @inline(never)
    func ownershipDecision(_ entry: borrowing SubmissionEntry, queue: Queue, handle: HandleContext, row: Row) -> Reason {
        if queue == .io {
            return ioOwnership(handle, nsid: entry.nsid, slba: UInt64(entry.cdw11) << 32 | UInt64(entry.cdw10),
                               blocks: UInt64(entry.cdw12 & 0xFFFF) + 1, reach: row.reach,
                               writes: row.traits & Row.changesData != 0)
        }
        let tenant = Int(handle.tenant) < tenantCount ? Int(handle.tenant) : 0
        if tenant == 0 || tenantOwnsAll[tenant] { return .allowed }
        let nsid = entry.nsid
        switch row.reach {
        case Reach.readsNamespace:
            if nsid == 0 || nsid == 0xFFFF_FFFF { return .allowed }
            if entry.opcode == 0x06 && !Reach.namespaceCNS.contains(entry.identifyCNS) { return .allowed }
            return owns(tenant, nsid: nsid, whole: false, writable: false)
        case Reach.changesNamespace:
            if entry.opcode == 0x09 && !Reach.isNamespaceFeature(entry.featureID) { return .allowed }
            if nsid == 0 { return .allowed }
            if nsid == 0xFFFF_FFFF { return .broadcastNotOwned }
            return owns(tenant, nsid: nsid, whole: true, writable: true)
        case Reach.everyNamespace:
            return .broadcastNotOwned
        default:
            return .allowed
        }
    }

    /// Ownership of an I/O command that reaches `reach` of namespace `nsid` (blocks
    /// [slba, slba + blocks) when it is LBA-addressed), changing data when `writes`.
    @usableFromInline
    func ioOwnership(_ handle: HandleContext, nsid: UInt32, slba: UInt64, blocks: UInt64, reach: UInt8, writes: Bool) -> Reason {
        if let partition = confinement(handle) {
            switch reach {
            case Reach.harmless: break
            case Reach.lbaRange: if !partition.contains(slba: slba, blocks: blocks) { return .lbaRangeNotOwned }
            case Reach.rangeList: return .rangeListUnchecked
            default: return .needsWholeNamespace
            }
        }
        let tenant = Int(handle.tenant) < tenantCount ? Int(handle.tenant) : 0
        if tenant == 0 || tenantOwnsAll[tenant] { return .allowed }
        var owned = false
        var qualifying = false
        for g in grants[grantStart[tenant] ..< grantStart[tenant &+ 1]] where g.nsid == nsid {
            owned = true
            if writes && !g.writable { continue }
            if g.whole { return .allowed }
            qualifying = true
        }
        if !owned { return .namespaceNotOwned }
        if qualifying {
            switch reach {
            case Reach.harmless: return .allowed
            case Reach.lbaRange:
                if covers(tenant, nsid: nsid, slba: slba, blocks: blocks, writes: writes) { return .allowed }
            case Reach.rangeList: return .rangeListUnchecked
            default: return .needsWholeNamespace
            }
        }
        return ownsWritable(tenant, nsid: nsid) || !writes ? .lbaRangeNotOwned : .namespaceReadOnly
    }

    /// The blocks a confined partition handle stays inside, or nil when the handle is not
    /// one (another node, rules that leave partitions unconfined, a partition of unknown extent).
    func confinement(_ handle: HandleContext) -> LBARange? {
        guard handle.kind == .partition && handle.partition.count > 0 else { return nil }
        let profile = Int(handle.profile) < profileCount ? Int(handle.profile) : 0
        return profileFlags[profile] & ProfileFlag.partitionsConfined != 0 ? handle.partition : nil
    }

    /// Whether `tenant`'s grants of `nsid` (writable ones when `writes`) cover every block
    /// of [slba, slba + blocks): adjacent or overlapping grants count as one range.
    func covers(_ tenant: Int, nsid: UInt32, slba: UInt64, blocks: UInt64, writes: Bool) -> Bool {
        let (end, overflow) = slba.addingReportingOverflow(blocks)
        if overflow { return false }
        let mine = grantStart[tenant] ..< grantStart[tenant &+ 1]
        var next = slba
        // Each round moves `next` past one grant, so there are at most as many rounds as grants.
        for _ in mine {
            var advanced = false
            for g in grants[mine] where g.nsid == nsid && (!writes || g.writable) {
                if g.whole { return true }
                if g.start <= next && next - g.start < g.count {
                    next = g.start.addingReportingOverflow(g.count).overflow ? .max : g.start + g.count
                    advanced = true
                    break
                }
            }
            if !advanced { return false }
            if next >= end { return true }
        }
        return false
    }

    /// The blocks of `handle`'s namespace an LBA-addressed command may reach (change, when
    /// `writes`) without the full check: one interval inside the handle's confinement and
    /// its tenant's grants (adjacent and overlapping grants merged). Worked out once per
    /// `Decider`; a subset of what `covers` allows, so using it never changes a verdict.
    @usableFromInline
    func ownedWindow(_ handle: HandleContext, writes: Bool) -> LBARange {
        let everything = LBARange(start: 0, count: .max)
        let confined = confinement(handle) ?? everything
        let tenant = Int(handle.tenant) < tenantCount ? Int(handle.tenant) : 0
        if tenant == 0 || tenantOwnsAll[tenant] { return confined }
        let mine = grants[grantStart[tenant] ..< grantStart[tenant &+ 1]]
        var window: (start: UInt64, end: UInt64)?
        // Grow the first grant's interval by every grant that touches it; a few rounds
        // merge any order of grants a person writes; what is left out is only checked in full.
        for _ in 0..<4 {
            var grew = false
            for g in mine where g.nsid == handle.nsid && (!writes || g.writable) {
                if g.whole { return confined }
                let end = g.start.addingReportingOverflow(g.count).overflow ? UInt64.max : g.start + g.count
                guard let w = window else { window = (g.start, end); grew = true; continue }
                if g.start <= w.end && end >= w.start && (g.start < w.start || end > w.end) {
                    window = (min(w.start, g.start), max(w.end, end))
                    grew = true
                }
            }
            if !grew { break }
        }
        guard let w = window else { return LBARange(start: 0, count: 0) }
        let start = max(w.start, confined.start)
        let confinedEnd = confined.start.addingReportingOverflow(confined.count).overflow ? UInt64.max : confined.start + confined.count
        let end = min(w.end, confinedEnd)
        return end > start ? LBARange(start: start, count: end - start) : LBARange(start: 0, count: 0)
    }

    /// Whether `tenant` owns `nsid` as asked: some grant of it, whole when `whole`,
    /// writable when `writable`; the refusal otherwise.
    @usableFromInline
    func owns(_ tenant: Int, nsid: UInt32, whole: Bool, writable: Bool) -> Reason {
        var owned = false
        var wholeGrant = false
        for g in grants[grantStart[tenant] ..< grantStart[tenant + 1]] where g.nsid == nsid {
            owned = true
            wholeGrant = wholeGrant || g.whole
            if (!whole || g.whole) && (!writable || g.writable) { return .allowed }
        }
        if !owned { return .namespaceNotOwned }
        return whole && !wholeGrant ? .needsWholeNamespace : .namespaceReadOnly
    }

    @usableFromInline
    func ownsWritable(_ tenant: Int, nsid: UInt32) -> Bool {
        grants[grantStart[tenant] ..< grantStart[tenant + 1]].contains { $0.nsid == nsid && $0.writable }
    }

    /// Whether a handle may reach `blocks` blocks from `slba` of namespace `nsid`: inside
    /// its partition (a confined partition handle) and inside its tenant's grants, writable
    /// ones when `writes`. For ranges carried in a data buffer (Dataset Management, Copy),
    /// checked by the gate on its own copy of the list.
    public func mayReach(_ handle: HandleContext, nsid: UInt32, slba: UInt64, blocks: UInt64, writes: Bool) -> Bool {
        if let partition = confinement(handle), !partition.contains(slba: slba, blocks: blocks) { return false }
        let tenant = Int(handle.tenant) < tenantCount ? Int(handle.tenant) : 0
        if tenant == 0 || tenantOwnsAll[tenant] { return true }
        return covers(tenant, nsid: nsid, slba: slba, blocks: blocks, writes: writes)
    }

    /// Whether the effects of `opcode` on `queue` (for a namespace of `commandSet`) say it
    /// changes namespaces (NIC or NCC), as Linux reads them to rescan after passthrough.
    func changesNamespaces(queue: Queue, commandSet: CommandSet, opcode: UInt8) -> Bool {
        let word = namespaceChanging[Self.slot(queue: queue, commandSet: commandSet) &* 4 &+ Int(opcode >> 6)]
        return word & (1 << UInt64(opcode & 63)) != 0
    }

    /// Whether any opcode on `queue` (for a namespace of `commandSet`) changes namespaces: a
    /// batch on a queue where none does needs no look at its commands afterwards.
    func anyChangesNamespaces(queue: Queue, commandSet: CommandSet) -> Bool {
        let base = Self.slot(queue: queue, commandSet: commandSet) &* 4
        return namespaceChanging[base] | namespaceChanging[base &+ 1] | namespaceChanging[base &+ 2]
            | namespaceChanging[base &+ 3] != 0
    }

    /// Whether fused Compare + Write pairs are decided as one for `profile`.
    @inlinable
    public func allowsFusedCompareWrite(profile: UInt16) -> Bool {
        let p = Int(profile) < profileCount ? Int(profile) : 0
        return profileFlags[p] & ProfileFlag.fusedCompareWrite != 0
    }

    /// The effects a decision for (queue, command set, opcode) consulted.
    public func effects(queue: Queue, commandSet: CommandSet, opcode: UInt8) -> CommandEffects {
        let log = effectiveLogs[queue == .admin ? .nvm : commandSet]
        return log?[queue, opcode] ?? CommandEffects(rawValue: 0)
    }
}
