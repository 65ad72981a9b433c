import NVMeSpec

/// Checks of what a rule set's grants reach, against what the section owns: effects (after
/// the effects log, overrides and Linux's known effects) that reach beyond a namespace, and
/// grants the ownership checks always refuse.
extension PolicyLinter {
    /// Command Scope bits beyond a namespace.
    static let scopesBeyondNamespace: CommandScope = [.controller, .nvmSet, .enduranceGroup, .domain, .nvmSubsystem]
    /// Effects that change something (for Command Scope to matter).
    static let changingEffects = CommandEffects.logicalBlockContentChange.rawValue
        | CommandEffects.namespaceCapabilityChange.rawValue | CommandEffects.namespaceInventoryChange.rawValue
        | CommandEffects.controllerCapabilityChange.rawValue

    /// A command a section lets through whatever its fields, with the effects it is decided with.
    struct Granted {
        var queue: Queue
        var commandSet: CommandSet
        var opcode: UInt8
        var effects: CommandEffects
        var name: String { OpcodeTable.displayName(queue: queue, commandSet: commandSet, opcode: opcode) }
        var table: String { queue == .admin ? ".admin" : ".io" }
        var key: String { queue == .admin ? "commands" : (opcode >= 0x80 ? "vendor_commands" : "commands") }
    }

    /// The admin commands the section grants whole, and (with an effects log) every I/O
    /// command its table lets through.
    func granted(_ section: LintSection) -> [Granted] {
        var out: [Granted] = []
        for opcode in section.rules.adminCommands.sorted() where passes(section, .admin, .nvm, opcode) {
            out.append(Granted(queue: .admin, commandSet: .nvm, opcode: opcode,
                               effects: compiled.effects(queue: .admin, commandSet: .nvm, opcode: opcode)))
        }
        guard compiled.controllerHasEffectsLog else { return out }
        for commandSet in CompiledPolicy.commandSetSlots {
            for op in 0...255 where passes(section, .io, commandSet, UInt8(op)) {
                out.append(Granted(queue: .io, commandSet: commandSet, opcode: UInt8(op),
                                   effects: compiled.effects(queue: .io, commandSet: commandSet, opcode: UInt8(op))))
            }
        }
        return out
    }

    func reachChecks(_ section: LintSection) -> [SectionFinding] {
        let grants = granted(section)
        var out: [SectionFinding] = []
        let confinedTenant = section.tenant != nil && !section.ownsAll
        let refused = confinedTenant ? alwaysRefused(section) : []
        for g in grants where !(g.queue == .admin && refused.contains(g.opcode)) {
            if g.effects.intersects(CommandEffects.namespaceInventoryChange.rawValue | CommandEffects.controllerCapabilityChange.rawValue) {
                let which = CommandEffects(rawValue: g.effects.rawValue & (CommandEffects.namespaceInventoryChange.rawValue
                    | CommandEffects.controllerCapabilityChange.rawValue)).names.joined(separator: ", ")
                out.append(SectionFinding(.inventoryOrCapabilityChange, g.table, g.key,
                                          "\(g.key) grants \(g.name), whose effects include \(which): it changes the namespaces or the controller every caller sees"))
            }
            guard !section.ownsAll else { continue }
            if g.effects.submissionAndExecution >= 2 {
                out.append(SectionFinding(.cseAnyNamespace, g.table, g.key,
                                          "\(g.key) grants \(g.name), whose effects say CSE=\(g.effects.submissionAndExecution): nothing may run on any namespace beside it, so I/O of namespaces \(section.who) does not own waits"))
            }
            let beyond = g.effects.scope.intersection(Self.scopesBeyondNamespace)
            if !beyond.isEmpty && g.effects.intersects(Self.changingEffects) {
                out.append(SectionFinding(.scopeBeyondNamespace, g.table, g.key,
                                          "\(g.key) grants \(g.name), whose effects reach the \(beyond.names.joined(separator: ", ")) scope: beyond the namespaces \(section.who) owns"))
            }
            if g.queue == .admin && g.opcode == 0x09 {
                out.append(SectionFinding(.setFeaturesControllerScope, ".admin", "commands",
                                          "commands grants Set Features (09h): controller-scoped features (Arbitration, Power Management, Volatile Write Cache, Number of Queues, …) change the controller for every caller; only namespace-scoped ones are checked against what \(section.who) owns"))
            }
        }
        if section.tenant == nil && !section.ownsAll { out += defaultReach(section, grants) }
        if confinedTenant { out += neverPasses(section, grants) }
        return out
    }

    /// The default rules of a policy whose tenants own namespaces: nothing confines them.
    func defaultReach(_ section: LintSection, _ grants: [Granted]) -> [SectionFinding] {
        var out: [SectionFinding] = []
        let rules = section.rules
        if rules.ioCommands != .none || !rules.vendorIOCommands.isEmpty {
            out.append(SectionFinding(.defaultReachesTenantNamespace, ".io", "commands",
                                      "commands = \(CompiledPolicy.tomlValue(rules.ioCommands)): callers that match no tenant may send I/O to any namespace, the tenants' included; say commands = \"none\" or make them a tenant"))
        }
        let changing = grants.filter { $0.queue == .admin && Reach.admin(opcode: $0.opcode) >= Reach.changesNamespace }
        if !changing.isEmpty {
            out.append(SectionFinding(.defaultReachesTenantNamespace, ".admin", "commands",
                                      "commands grants \(changing.map(\.name).joined(separator: ", ")): callers that match no tenant may change any namespace, the tenants' included"))
        }
        return out
    }

    /// Admin commands the ownership checks always refuse for a tenant that owns only some
    /// namespaces: Sanitize (every namespace), and Format NVM without a whole namespace
    /// owned for writing.
    func alwaysRefused(_ section: LintSection) -> Set<UInt8> {
        section.grants.contains(where: { $0.range == nil && $0.writable }) ? [0x84] : [0x84, 0x80]
    }

    /// Grants the ownership checks always refuse for a tenant that owns only some namespaces.
    func neverPasses(_ section: LintSection, _ grants: [Granted]) -> [SectionFinding] {
        var out: [SectionFinding] = []
        let refused = alwaysRefused(section)
        if grants.contains(where: { $0.queue == .admin && $0.opcode == 0x84 }) {
            out.append(SectionFinding(.grantNeverPasses, ".admin", "commands",
                                      "commands grants Sanitize (84h), which reaches every namespace: always refused, because \(section.who) does not own them all (namespaces = \"all\")"))
        }
        if refused.contains(0x80) && grants.contains(where: { $0.queue == .admin && $0.opcode == 0x80 }) {
            out.append(SectionFinding(.grantNeverPasses, ".admin", "commands",
                                      "commands grants Format NVM (80h), which needs a whole namespace owned for writing: always refused, because \(section.who) owns none"))
        }
        let rules = section.rules
        if section.grants.isEmpty && (rules.ioCommands != .none || !rules.vendorIOCommands.isEmpty) {
            out.append(SectionFinding(.grantNeverPasses, ".io", "commands",
                                      "commands = \(CompiledPolicy.tomlValue(rules.ioCommands)), but \(section.who) owns no namespace: every I/O command is refused; say commands = \"none\" or grant namespaces"))
        }
        return out
    }
}
