import NVMeSpec

/// One thing `policy lint` reports about a policy: its code, where in the file, and what a
/// caller could do because of it.
public struct LintFinding: Sendable, Hashable, CustomStringConvertible {
    public var code: LintCode
    public var file: String
    /// 1-based line, 0 when unknown.
    public var line: Int
    /// The dotted key the finding is about ("tenant.admin.commands").
    public var key: String
    /// What is granted and what it lets a caller do, naming the section ("[default.io] …").
    public var message: String
    /// The policy's `lint_accept` names this warning's code.
    public var accepted: Bool

    public var severity: LintSeverity { code.severity }

    /// "file:line: message [code]", as `policy lint` prints it after "warning: ".
    public var description: String {
        (line > 0 ? "\(file):\(line): " : "\(file): ") + message + " [\(code.rawValue)]"
    }
}

/// Finds what a policy grants beyond what it seems to, and what it contradicts itself in:
/// rule sets that let read-only handles write, grants whose effects (after the effects log
/// and Linux's known effects) reach beyond the namespaces a tenant owns, tenants that
/// overlap or shadow each other, and, given the controller's namespaces, LBA ranges that do
/// not fit. Works on a policy compiled against the effects log to be judged (an empty one
/// when none is given: checks that need a log are then skipped).
public struct PolicyLinter {
    public let compiled: CompiledPolicy
    /// The controller's namespaces, when a target is known.
    public let namespaces: [NamespaceInfo]?
    let locator: PolicyLocator?

    public init(_ compiled: CompiledPolicy, namespaces: [NamespaceInfo]? = nil, locator: PolicyLocator? = nil) {
        self.compiled = compiled; self.namespaces = namespaces; self.locator = locator
    }

    var policy: Policy { compiled.policy }

    /// Every finding: errors first, then warnings, each in the order of the file.
    public var findings: [LintFinding] {
        var report = LintReport(policy: policy, locator: locator)
        privilegeChecks(&report)
        let sections = self.sections
        var defaultShape: [SectionFinding] = []
        for section in sections {
            var shape = ruleChecks(section)
            if section.tenant == nil { defaultShape = shape } else { shape.removeAll { defaultShape.contains($0) } }
            for item in shape + reachChecks(section) { report.add(item, in: section) }
        }
        tenantChecks(&report)
        let inFileOrder = report.items.enumerated().sorted { ($0.element.line, $0.offset) < ($1.element.line, $1.offset) }.map(\.element)
        return inFileOrder.filter { $0.severity == .error } + inFileOrder.filter { $0.severity == .warning }
    }

    /// The default rules and each tenant's, with what they own.
    var sections: [LintSection] {
        let tenantsOwn = policy.tenants.contains { tenant in
            if case .grants(let list) = tenant.ownership { return !list.isEmpty }
            return true
        }
        var out = [LintSection(tenant: nil, name: nil, rules: policy.defaultRules, profile: 0, ownsAll: !tenantsOwn,
                               grants: [])]
        for (index, tenant) in policy.tenants.enumerated() {
            var grants: [NamespaceGrant] = []
            if case .grants(let list) = tenant.ownership { grants = list }
            out.append(LintSection(tenant: index, name: tenant.name, rules: tenant.rules,
                                   profile: Int(compiled.tenantProfiles[index + 1]),
                                   ownsAll: tenant.ownership == .all, grants: grants))
        }
        return out
    }

    /// `[privileges]` and `[effects]`.
    func privilegeChecks(_ report: inout LintReport) {
        for capability in policy.bypassCapabilities.subtracting(.sysAdmin).nameList {
            report.add(.bypassCapability, key: "privileges.bypass", tenant: nil,
                       "[privileges] bypass includes \(capability): its holders pass every rule of the policy; Linux lets only CAP_SYS_ADMIN do that")
        }
        for capability in policy.managementCapabilities.subtracting(.sysAdmin).nameList {
            report.add(.managementCapability, key: "privileges.management", tenant: nil,
                       "[privileges] management includes \(capability): its holders may reset the controller and the subsystem; Linux asks for CAP_SYS_ADMIN")
        }
        let sections = [policy.defaultRules] + policy.tenants.map(\.rules)
        if !policy.linuxKnownEffects
            && sections.contains(where: { $0.ioCommands != .none && $0.writeAccess.contains(.logicalBlockContentChange) }) {
            report.add(.linuxKnownEffectsOff, key: "effects.linux_known_effects", tenant: nil,
                       "[effects] linux_known_effects = false: Write Zeroes and Write Uncorrectable count as LBCC only if the controller says so; otherwise a handle opened read-only could send them")
        }
    }
}

/// One rule set of a policy as lint sees it: the default rules or a tenant's.
struct LintSection {
    /// The tenant's index in `policy.tenants`; nil for the default rules.
    let tenant: Int?
    let name: String?
    let rules: Rules
    /// Its profile in the compiled policy.
    let profile: Int
    /// Whether nothing confines it to some namespaces: a tenant with `namespaces = "all"`,
    /// or the default rules of a policy whose tenants own no namespace.
    let ownsAll: Bool
    let grants: [NamespaceGrant]

    /// How messages open a table of this section: "[default" (then ".io] …"), or
    /// "[[tenant]] name = \"db\": [tenant".
    var label: String { name.map { "[[tenant]] name = \"\($0)\": [tenant" } ?? "[default" }
    /// The first part of its keys: "default" or "tenant".
    var keyPrefix: String { tenant == nil ? "default" : "tenant" }
    /// Who the section's rules apply to, in a sentence.
    var who: String { name.map { "tenant \"\($0)\"" } ?? "callers that match no tenant" }
}

/// A finding about one section, before the section's name is put in front: its table
/// ("" for the section itself, ".admin", ".io"), key in that table, and sentence.
struct SectionFinding: Hashable {
    var code: LintCode
    var table: String
    var key: String
    var text: String

    init(_ code: LintCode, _ table: String, _ key: String, _ text: String) {
        self.code = code; self.table = table; self.key = key; self.text = text
    }
}

/// The findings gathered so far, each placed on its line and marked accepted or not.
struct LintReport {
    let policy: Policy
    let locator: PolicyLocator?
    var items: [LintFinding] = []

    mutating func add(_ code: LintCode, key: String, tenant: Int?, _ message: String) {
        items.append(LintFinding(
            code: code, file: locator?.file ?? policy.name, line: locator?.line(of: key, tenant: tenant) ?? 0,
            key: key, message: message, accepted: code.severity == .warning && policy.lintAccept.contains(code)))
    }

    mutating func add(_ item: SectionFinding, in section: LintSection) {
        add(item.code, key: section.keyPrefix + item.table + "." + item.key, tenant: section.tenant,
            section.label + item.table + "] " + item.text)
    }
}

extension CompiledPolicy {
    /// The decision-table row for (profile, queue, command set, opcode): its refusal (or
    /// `.allowed`) and whether a field filter finishes the decision.
    func tableRow(profile: Int, queue: Queue, commandSet: CommandSet, opcode: UInt8) -> (reason: Reason, filtered: Bool) {
        let row = rows[Self.rowIndex(profile: profile, slot: Self.slot(queue: queue, commandSet: commandSet), opcode: opcode)]
        return (row.reason, row.filter != FieldFilter.none)
    }
}

/// "C0h-C4h, C6h": opcodes as a short list of runs.
func opcodeRuns(_ opcodes: [UInt8]) -> String {
    var parts: [String] = []
    var index = 0
    let sorted = opcodes.sorted()
    while index < sorted.count {
        var end = index
        while end + 1 < sorted.count && sorted[end + 1] == sorted[end] &+ 1 { end += 1 }
        parts.append(end == index ? hexByte(sorted[index]) : hexByte(sorted[index]) + "-" + hexByte(sorted[end]))
        index = end + 1
    }
    return parts.joined(separator: ", ")
}
