import NVMeSpec

extension CompiledPolicy {
    /// The rule that gives `reason` to a command on (`queue`, `commandSet`, `opcode`): the
    /// policy file's own words (`[default.io] write_access = ["data-to-controller", "LBCC"]`)
    /// for policy rules, or the check that applies before or after the policy (envelope,
    /// transfer, built-in refusals). For explanations and tools; not on the decision path.
    ///
    /// `handleWritable` tells whether an allowed I/O command passed a write-access rule;
    /// `tenant` is the handle's tenant index (0: the default rules).
    public func rule(for reason: Reason, queue: Queue, commandSet: CommandSet, opcode: UInt8,
                     handleWritable: Bool = false, tenant: UInt16 = 0) -> String {
        let owner = self.tenant(at: tenant)
        let rules = owner?.rules ?? policy.defaultRules
        // Where the rule is written: "[default.io]", or the tenant's own section.
        let section = owner.map { "[[tenant]] name = \"\($0.name)\": [tenant" } ?? "[default"
        let command = OpcodeTable.displayName(queue: queue, commandSet: commandSet, opcode: opcode)
        switch reason {
        case .allowedAndAudited:
            return rule(for: .allowed, queue: queue, commandSet: commandSet, opcode: opcode, handleWritable: handleWritable,
                        tenant: tenant) + "; \(section)] audit_allowed = \(Self.tomlList(AuditClasses.byName.filter { rules.auditAllowed.contains($0.1) }.map(\.0)))"
        case .logPageNeedsRetain:
            return "\(section).admin] retain_async_event = \"required\""
        case .logPageLSPNotAllowed:
            return "\(section).admin] log_page_lsp = \(Self.tomlList(rules.logPageLSP ?? []))"
        case .namespaceNotOwned, .namespaceReadOnly, .lbaRangeNotOwned, .needsWholeNamespace, .broadcastNotOwned:
            guard let owner else {
                return "[default] partitions = \"confined\": through a partition node, commands stay inside the partition"
            }
            return "[[tenant]] name = \"\(owner.name)\": \(Self.ownershipText(owner.ownership))"
        case .rangeListUnchecked:
            return "ownership: Dataset Management and Copy ranges are checked on a copy of the data buffer, which only the ioctl path has"
        case .allowed:
            return queue == .admin
                ? adminGrant(opcode: opcode, rules: rules, section: section)
                : ioGrant(commandSet: commandSet, opcode: opcode, rules: rules, handleWritable: handleWritable, section: section)
        case .privilegedBypass:
            return "[privileges] bypass = \(Self.tomlList(policy.bypassCapabilities.nameList))"
        case .flagsNotZero:
            return "envelope check (Linux, before any policy): passthrough flags must be 0"
        case .nsidMismatch:
            return "envelope check (Linux, before any policy): an I/O command must name its namespace handle's NSID"
        case .noNamespace, .multipleNamespaces:
            return "envelope check (Linux): NVME_IOCTL_IO_CMD on a controller node needs exactly one namespace"
        case .submitIOOpcode:
            return "envelope check (Linux): NVME_IOCTL_SUBMIT_IO carries only Write, Read and Compare"
        case .unknownRequest:
            return "envelope check (Linux): the request is not an NVMe ioctl"
        case .notForThisNode:
            return "envelope check (Linux): the request is not defined on this kind of node"
        case .badHandle:
            return "the handle is not open"
        case .badAddress:
            return "transfer check: a non-zero length needs a buffer address"
        case .bufferTooShort:
            return "transfer check: the buffer must hold what the command transfers (CVE-2023-6238)"
        case .metadataNotSupported:
            return "transfer check: a metadata buffer needs a namespace format with separate metadata"
        case .namespaceGone:
            return "handle check (Linux: ENODEV): I/O goes only to the namespace the handle was opened on, while it exists"
        case .partition:
            return "\(section)] partitions = false"
        case .fabrics:
            return "built in: Fabrics (7Fh) never passes the policy's rules"
        case .vendorSpecific:
            return queue == .admin
                ? "\(section).admin] commands = \(Self.tomlList(rules.adminCommands)): vendor-specific admin commands (C0h and above) pass only when named"
                : "built in: vendor-specific I/O commands (80h and above) never pass the policy's rules"
        case .adminCommandNotAllowed:
            var text = "\(section).admin] commands = \(Self.tomlList(rules.adminCommands))"
            switch opcode {
            case 0x06: text += "; identify_cns = []"
            case 0x02: text += "; log_pages = []"
            case 0x0A: text += "; features = []"
            default: break
            }
            return text + ": \(command) is not among them"
        case .identifyCNSNotAllowed:
            return "\(section).admin] identify_cns = \(Self.tomlList(rules.identifyCNS))"
        case .logPageNotAllowed:
            return "\(section).admin] log_pages = \(Self.tomlList(rules.logPages))"
        case .featureNotAllowed:
            return "\(section).admin] features = \(Self.tomlList(rules.features))"
        case .ioCommandNotAllowed:
            return "\(section).io] commands = \(Self.tomlValue(rules.ioCommands))"
        case .notSupported:
            if !Self.commandSetSlots.contains(commandSet) {
                return "built in: the \(commandSet.name) has no decision table, so none of its commands is supported"
            }
            if !controllerHasEffectsLog {
                return "\(section).io] commands = \(Self.tomlValue(rules.ioCommands)), which needs CSUPP: "
                    + "without an effects log only Linux's known effects apply and nothing is marked supported"
            }
            return "\(section).io] commands = \(Self.tomlValue(rules.ioCommands)), which needs CSUPP: "
                + "the controller's effects log does not mark \(command) supported"
        case .intrusiveEffects:
            return "\(section).io] permitted_effects = \(Self.tomlList(rules.permittedEffects))"
        case .needsWriteOpen:
            return "\(section).io] write_access = \(Self.tomlList(rules.writeAccess))"
        case .managementNeedsCapability:
            return "[privileges] management = \(Self.tomlList(policy.managementCapabilities.nameList))"
        }
    }

    /// The grant that lets an admin command through.
    private func adminGrant(opcode: UInt8, rules: Rules, section: String) -> String {
        if rules.adminCommands.contains(opcode) {
            return "\(section).admin] commands = \(Self.tomlList(rules.adminCommands))"
        }
        switch opcode {
        case 0x06: return "\(section).admin] identify_cns = \(Self.tomlList(rules.identifyCNS))"
        case 0x02: return "\(section).admin] log_pages = \(Self.tomlList(rules.logPages))"
        default: return "\(section).admin] features = \(Self.tomlList(rules.features))"
        }
    }

    /// The grants that let an I/O command through: which commands, which effects, and the
    /// write-access rule when the command needed a handle opened for writing.
    private func ioGrant(commandSet: CommandSet, opcode: UInt8, rules: Rules, handleWritable: Bool, section: String) -> String {
        var text = "\(section).io] commands = \(Self.tomlValue(rules.ioCommands)); "
            + "permitted_effects = \(Self.tomlList(rules.permittedEffects))"
        let effects = effects(queue: .io, commandSet: commandSet, opcode: opcode)
        let needsWrite = (rules.writeAccess.contains(.dataToController) && DataDirection(opcode: opcode).transfersToController)
            || (rules.writeAccess.contains(.logicalBlockContentChange) && effects.contains(.logicalBlockContentChange))
        if needsWrite && handleWritable {
            text += "; write_access = \(Self.tomlList(rules.writeAccess)), met: the handle is open for writing"
        }
        return text
    }

    // MARK: Policy-file spelling

    /// A tenant's ownership in words, as explanations print it: "owns namespace 1, namespace
    /// 2 LBAs 0-1023 (read)", "owns no namespace", or `namespaces = "all"`.
    public static func ownershipText(_ ownership: Ownership) -> String {
        guard case .grants(let grants) = ownership else { return "namespaces = \"all\"" }
        if grants.isEmpty { return "owns no namespace" }
        let parts = grants.map { g -> String in
            let access = g.writable ? "" : " (read)"
            guard let r = g.range else { return "namespace \(g.nsid)\(access)" }
            return "namespace \(g.nsid) LBAs \(r.start)-\(r.start + r.count - 1)\(access)"
        }
        return "owns " + parts.joined(separator: ", ")
    }

    static func tomlList(_ strings: [String]) -> String {
        "[" + strings.map { "\"\($0)\"" }.joined(separator: ", ") + "]"
    }

    static func tomlList(_ values: Set<UInt8>) -> String {
        "[" + values.sorted().map(hexLiteral).joined(separator: ", ") + "]"
    }

    static func tomlList(_ effects: PermittedEffects) -> String {
        tomlList(PermittedEffects.byName.filter { effects.contains($0.1) }.map(\.0))
    }

    static func tomlList(_ access: WriteAccess) -> String {
        tomlList(WriteAccess.byName.filter { access.contains($0.1) }.map(\.0))
    }

    static func tomlValue(_ commands: IOCommands) -> String {
        switch commands {
        case .supported: "\"supported\""
        case .none: "\"none\""
        case .only(let opcodes): tomlList(opcodes)
        }
    }
}

/// "0x06": a byte as a policy file writes it.
private func hexLiteral(_ value: UInt8) -> String {
    let digits = Array("0123456789ABCDEF")
    return String(["0", "x", digits[Int(value >> 4)], digits[Int(value & 0xF)]])
}
