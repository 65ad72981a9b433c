#if canImport(Glibc)
import Glibc
#endif
import NVMeGate
import NVMeSpec

/// The decision as a person reads the policy language (README, "Policies") and Linux's
/// rules (the facts sheet), written out plainly from a `Policy` and the controller's effects
/// logs: no compiled tables, no per-handle shortcuts. The targets hold the gate to it; it
/// answers with the errno only (0 allowed), since several reasons share one.
struct ReferenceModel {
    let policy: Policy
    let logs: [CommandSet: CommandEffectsLog]
    let identity: ControllerIdentity
    let namespaces: [NamespaceInfo]

    /// A handle as the model knows it: from the node name and the controller's namespaces.
    struct Handle {
        var kind: NodeKind
        var writable: Bool
        var nsid: UInt32 = 0
        var commandSet = CommandSet.nvm
        var partition = LBARange(start: 0, count: 0)
        var caller: Caller
    }

    /// The handle `open(node:writable:caller:)` gives, or nil where the node does not exist.
    func open(_ node: String, writable: Bool, caller: Caller) -> Handle? {
        guard let name = NodeName(node), name.controller == 0 else { return nil }
        var handle = Handle(kind: name.kind, writable: writable, caller: caller)
        if name.kind == .controller { return handle }
        guard let ns = namespaces.first(where: { $0.nsid == name.nsid }) else { return nil }
        handle.nsid = ns.nsid
        handle.commandSet = ns.commandSet
        if name.kind == .partition {
            let index = Int(name.partition) - 1
            guard index < ns.partitions.count, ns.partitions[index].count > 0 else { return nil }
            handle.partition = ns.partitions[index]
        }
        return handle
    }

    // MARK: Verdicts

    /// What the ioctl front end's decision gives `entry` from `handle` on `queue`, for a
    /// command whose buffers are in order: 0, EACCES, EINVAL or ENOTTY. I/O through a
    /// controller node goes to its only namespace, as Linux sends it. `list` is the data
    /// buffer of a Dataset Management or Copy, whose ranges the ioctl path checks (a ring,
    /// which has none, refuses them where ownership is limited).
    func ioctlErrno(_ entry: SubmissionQueueEntry, queue: Queue, handle: Handle, fused: Bool = false,
                    list: UnsafeRawBufferPointer? = nil) -> Int32 {
        var handle = handle
        if queue == .io && handle.kind == .controller {
            guard let only = namespaces.first else { return ENOTTY }
            guard namespaces.count == 1 else { return EINVAL }
            handle.kind = .namespace
            handle.nsid = only.nsid
            handle.commandSet = only.commandSet
        }
        return errno(entry, queue: queue, handle: handle, fused: fused, list: list)
    }

    /// The decision for a handle as it is (`CompiledPolicy.decide` on its context).
    func errno(_ entry: SubmissionQueueEntry, queue: Queue, handle: Handle, fused: Bool = false,
               list: UnsafeRawBufferPointer? = nil) -> Int32 {
        // Linux's envelope, for everyone: the flags byte (FUSE and PSDT) must be 0, except the
        // FUSE bits of a fused pair decided as one; an I/O command names its namespace node's NSID.
        if entry.flags & (fused ? 0xFC : 0xFF) != 0 { return EINVAL }
        if queue == .io && handle.kind != .controller && entry.nsid != handle.nsid { return EINVAL }
        let tenant = tenant(of: handle.caller)
        let rules = tenant?.rules ?? policy.defaultRules
        let effects = self.effects(queue, queue == .admin ? .nvm : handle.commandSet, entry.opcode)
        let allowed = queue == .admin
            ? adminRules(rules, entry, effects) && adminOwnership(tenant, entry)
            : ioRules(rules, handle, entry.opcode, effects) && ioOwnership(tenant, rules, handle, entry, effects, list: list)
        if allowed || bypasses(handle) { return 0 }
        return EACCES
    }

    /// The first tenant that names the caller: by name, uid, gid or one of its supplementary groups.
    func tenant(of caller: Caller) -> Tenant? {
        policy.tenants.first { t in
            (caller.name.map { t.callerNames.contains($0) } ?? false) || t.uids.contains(caller.uid)
                || t.gids.contains(caller.gid) || caller.groups.contains { t.gids.contains($0) }
        }
    }

    func bypasses(_ handle: Handle) -> Bool { !handle.caller.capabilities.isDisjoint(with: policy.bypassCapabilities) }

    /// The verdicts of a submission ring (`check_batch`): each entry alone, then, for a
    /// caller whose rules decide fused Compare + Write pairs as one, each such pair together.
    func ringErrnos(_ ring: [SubmissionQueueEntry], queue: Queue, handle: Handle) -> [Int32] {
        var verdicts = ring.map { ioctlErrno($0, queue: queue, handle: handle) }
        let rules = tenant(of: handle.caller)?.rules ?? policy.defaultRules
        guard queue == .io && rules.fusedCompareWrite else { return verdicts }
        var i = 0
        while i + 1 < ring.count {
            let first = ring[i], second = ring[i + 1]
            guard first.flags & 3 == 1 && first.opcode == 0x05 && second.flags & 3 == 2 && second.opcode == 0x01 else {
                i += 1
                continue
            }
            let a = ioctlErrno(first, queue: queue, handle: handle, fused: true)
            let b = ioctlErrno(second, queue: queue, handle: handle, fused: true)
            verdicts[i] = a != 0 ? a : b
            verdicts[i + 1] = verdicts[i]
            i += 2
        }
        return verdicts
    }

    // MARK: Effects

    /// The effects Linux decides with: the controller's entry after the policy's overrides for
    /// this controller, plus Linux's known effects, CSE dropped for I/O and for relaxed admin
    /// commands. A command set without a log, or one the gate has no table for, supports nothing.
    func effects(_ queue: Queue, _ commandSet: CommandSet, _ opcode: UInt8) -> UInt32 {
        guard [CommandSet.nvm, .keyValue, .zoned].contains(commandSet) else { return 0 }
        var e = logs[commandSet]?[queue, opcode].rawValue ?? 0
        for o in policy.effectsOverrides where o.queue == queue && o.opcode == opcode
            && (queue == .admin || o.commandSet == commandSet) && matches(o) {
            e = o.replace ? o.effects.rawValue : e | o.effects.rawValue
        }
        let lbcc: UInt32 = 1 << 1, ncc: UInt32 = 1 << 2, cse: UInt32 = 0x7 << 16
        if policy.linuxKnownEffects {
            if queue == .admin && opcode == 0x80 { e |= lbcc | ncc | cse }
            if queue == .admin && opcode == 0x84 { e |= lbcc | cse }
            if queue == .admin && opcode == 0x82 { e &= ~cse }
            if queue == .io && commandSet == .nvm && [0x01, 0x04, 0x08].contains(opcode) { e |= lbcc }
        }
        if queue == .admin && e & 0xC000 != 0 { e &= ~cse }
        if queue == .io && policy.ignoreIOSubmissionAndExecution { e &= ~cse }
        return e
    }

    /// An override's model and firmware patterns: exact, or a prefix ending in "*", against
    /// the identity's fields without their padding.
    func matches(_ o: EffectsOverride) -> Bool {
        func match(_ pattern: String, _ value: String) -> Bool {
            var v = Substring(value)
            while v.last == " " { v = v.dropLast() }
            return pattern.hasSuffix("*") ? v.hasPrefix(pattern.dropLast()) : v == pattern
        }
        return match(o.model, identity.model) && (o.firmware.map { match($0, identity.firmwareRevision) } ?? true)
    }

    // MARK: Rules

    func adminRules(_ rules: Rules, _ entry: SubmissionQueueEntry, _ effects: UInt32) -> Bool {
        let opcode = entry.opcode, cdw10 = entry[cdw: 0]
        if opcode == 0x7F { return false }                      // Fabrics: never through the gate
        if rules.adminCommands.contains(opcode) {
            // A named vendor command passes only where the effects log vouches for it.
            return opcode < 0xC0 || (effects & 1 != 0 && effects & ~(1 | rules.adminPermittedEffects.rawValue) == 0)
        }
        let field = UInt8(truncatingIfNeeded: cdw10)
        switch opcode {
        case 0x06: return rules.identifyCNS.contains(field)
        case 0x0A: return rules.features.contains(field)
        case 0x02:
            guard rules.logPages.contains(field) else { return false }
            if rules.requireRetainAsyncEvent && cdw10 & 0x8000 == 0 { return false }
            if let lsp = rules.logPageLSP, !lsp.contains(UInt8(truncatingIfNeeded: cdw10 >> 8) & 0x7F) { return false }
            return true
        default: return false
        }
    }

    func ioRules(_ rules: Rules, _ handle: Handle, _ opcode: UInt8, _ effects: UInt32) -> Bool {
        if handle.kind == .partition && rules.partitions == .refuse { return false }
        guard [CommandSet.nvm, .keyValue, .zoned].contains(handle.commandSet), opcode != 0x7F else { return false }
        if opcode >= 0x80 {
            guard rules.vendorIOCommands.contains(opcode) else { return false }
        } else {
            switch rules.ioCommands {
            case .none: return false
            case .only(let set): guard set.contains(opcode) else { return false }
            case .supported: break
            }
        }
        guard effects & 1 != 0, effects & ~(1 | rules.permittedEffects.rawValue) == 0 else { return false }
        let needsWrite = (rules.writeAccess.contains(.dataToController) && opcode & 1 != 0)
            || (rules.writeAccess.contains(.logicalBlockContentChange) && effects & 2 != 0)
        return handle.writable || !needsWrite
    }

    // MARK: Ownership

    /// What an I/O command reaches, by its command set's meaning of the opcode.
    enum IOReach { case nothing, blocks, rangeList, namespace }

    static func ioReach(_ commandSet: CommandSet, _ opcode: UInt8) -> IOReach {
        switch opcode {
        case 0x00: return .nothing                                    // Flush
        case 0x01, 0x02, 0x04, 0x05, 0x08, 0x0C:                      // Write … Verify: SLBA and NLB
            return commandSet == .keyValue ? .namespace : .blocks      // Key Value: Store, Retrieve, … carry keys
        case 0x09, 0x19: return commandSet == .keyValue ? .namespace : .rangeList   // DSM, Copy
        default: return .namespace                                     // reservations, zones, vendor, …
        }
    }

    func ioOwnership(_ tenant: Tenant?, _ rules: Rules, _ handle: Handle, _ entry: SubmissionQueueEntry, _ effects: UInt32,
                     list: UnsafeRawBufferPointer?) -> Bool {
        let reach = Self.ioReach(handle.commandSet, entry.opcode)
        let writes = entry.opcode & 1 != 0 || effects & 2 != 0
        let slba = UInt64(entry[cdw: 1]) << 32 | UInt64(entry[cdw: 0])
        let blocks = UInt64(entry[cdw: 2] & 0xFFFF) + 1
        let confined = handle.kind == .partition && rules.partitions == .confined && handle.partition.count > 0
        let grants: [NamespaceGrant]?
        if let tenant, case .grants(let list) = tenant.ownership { grants = list } else { grants = nil }
        /// Whether every block of `[start, start + count)` is reachable, changing it when `change`.
        func reachable(_ start: UInt64, _ count: UInt64, change: Bool) -> Bool {
            if confined && !Self.covered([handle.partition], start, count) { return false }
            guard let grants else { return true }
            let usable = grants.filter { $0.nsid == entry.nsid && (!change || $0.writable) }
            return usable.contains { $0.range == nil } || Self.covered(usable.compactMap(\.range), start, count)
        }
        if reach == .rangeList && (confined || grants != nil) {
            if let grants, grants.contains(where: { $0.nsid == entry.nsid && $0.range == nil && (!writes || $0.writable) }),
               !confined { return true }
            // Each range (and Copy's destination) from the list the ioctl path checks; a ring has none.
            guard let list, let ranges = Self.ranges(entry, list) else { return false }
            guard grants.map({ g in g.contains { $0.nsid == entry.nsid } }) ?? true else { return false }
            let isDSM = entry.opcode == 0x09
            var total: UInt64 = 0
            for (start, count) in ranges {
                total &+= count
                if count != 0 && !reachable(start, count, change: isDSM) { return false }
            }
            return isDSM || (total != 0 && reachable(slba, total, change: true))
        }
        if confined {
            switch reach {
            case .nothing: break
            case .blocks: if !Self.covered([handle.partition], slba, blocks) { return false }
            case .rangeList, .namespace: return false
            }
        }
        guard let grants else { return true }
        let named = grants.filter { $0.nsid == entry.nsid }
        let usable = named.filter { !writes || $0.writable }
        if named.isEmpty { return false }
        if usable.contains(where: { $0.range == nil }) { return true }
        switch reach {
        case .nothing: return !usable.isEmpty
        case .blocks: return Self.covered(usable.compactMap(\.range), slba, blocks)
        case .rangeList, .namespace: return false
        }
    }

    /// The (SLBA, blocks) ranges of a Dataset Management (16-byte ranges: length at 4, SLBA at
    /// 8) or Copy (descriptor format 0, 32 bytes, or 1, 40 bytes: SLBA at 8, 0's based NLB at
    /// 16) list; nil for Copy formats that name other namespaces, or a list too short.
    static func ranges(_ entry: SubmissionQueueEntry, _ list: UnsafeRawBufferPointer) -> [(UInt64, UInt64)]? {
        let isDSM = entry.opcode == 0x09
        let count = Int((isDSM ? entry[cdw: 0] : entry[cdw: 2]) & 0xFF) + 1
        let format = isDSM ? 0 : Int(entry[cdw: 2] >> 8 & 0xF)
        guard format <= 1 else { return nil }
        let size = isDSM ? 16 : (format == 0 ? 32 : 40)
        guard list.count >= count * size else { return nil }
        return (0..<count).map { i in
            let slba = UInt64(littleEndian: list.loadUnaligned(fromByteOffset: i * size + 8, as: UInt64.self))
            let blocks = isDSM
                ? UInt64(UInt32(littleEndian: list.loadUnaligned(fromByteOffset: i * size + 4, as: UInt32.self)))
                : UInt64(UInt16(littleEndian: list.loadUnaligned(fromByteOffset: i * size + 16, as: UInt16.self))) + 1
            return (slba, blocks)
        }
    }


    /// Identify CNS values whose NSID names a namespace: Identify Namespace (00h), Namespace
    /// Identification Descriptors (03h), the command-set specific (05h) and independent (08h)
    /// namespace structures, the per-format one (09h), and the allocated-namespace ones
    /// (11h, 1Bh, 1Fh). The others ignore the NSID or name the controller.
    static let namespaceCNS: Set<UInt8> = [0x00, 0x03, 0x05, 0x08, 0x09, 0x11, 0x1B, 0x1F]
    /// Features that Set Features applies to one namespace: LBA Range Type, Error Recovery,
    /// Reservation Notification Mask, Reservation Persistence, Namespace Write Protection.
    static let namespaceFeatures: Set<UInt8> = [0x03, 0x05, 0x82, 0x83, 0x84]

    func adminOwnership(_ tenant: Tenant?, _ entry: SubmissionQueueEntry) -> Bool {
        guard let tenant, case .grants(let grants) = tenant.ownership else { return true }
        let nsid = entry.nsid, field = UInt8(truncatingIfNeeded: entry[cdw: 0])
        func owns(whole: Bool, writable: Bool) -> Bool {
            grants.contains { $0.nsid == nsid && (!whole || $0.range == nil) && (!writable || $0.writable) }
        }
        switch entry.opcode {
        case 0x06:                                                    // Identify
            if !Self.namespaceCNS.contains(field) || nsid == 0 || nsid == 0xFFFF_FFFF { return true }
            return owns(whole: false, writable: false)
        case 0x02, 0x0A:                                              // Get Log Page, Get Features
            return nsid == 0 || nsid == 0xFFFF_FFFF || owns(whole: false, writable: false)
        case 0x09 where !Self.namespaceFeatures.contains(field):      // Set Features, controller scope
            return true
        case 0x09, 0x0D, 0x14, 0x15, 0x80:                            // change one namespace
            if nsid == 0 { return true }
            return nsid != 0xFFFF_FFFF && owns(whole: true, writable: true)
        case 0x84:                                                    // Sanitize: every namespace
            return false
        default:
            return true
        }
    }

    /// Whether `ranges` together hold every block of `[slba, slba + blocks)`, touching
    /// ranges counting as one; an end past 2^64 is never held.
    static func covered(_ ranges: [LBARange], _ slba: UInt64, _ blocks: UInt64) -> Bool {
        let (end, overflow) = slba.addingReportingOverflow(blocks)
        if overflow { return false }
        var next = slba
        while next < end {
            guard let r = ranges.first(where: { next >= $0.start && next - $0.start < $0.count }) else { return false }
            let (rangeEnd, past) = r.start.addingReportingOverflow(r.count)
            if past { return true }
            next = rangeEnd
        }
        return true
    }
}
