import NVMeSpec

/// Checks of one rule set's own settings: what a caller under these rules may send,
/// whatever it owns. A tenant's findings equal to the default rules' are reported once.
extension PolicyLinter {
    /// Effects that make a whole admin-command grant worth a warning (NIC and CCC have
    /// their own code).
    static let intrusiveAdminEffects = CommandEffects.logicalBlockContentChange.rawValue
        | CommandEffects.namespaceCapabilityChange.rawValue | CommandEffects.submissionAndExecutionMask

    /// Admin commands whose grant changes the device for everyone, and what they do.
    static let farReachingAdminCommands: [UInt8: String] = [
        0x80: "erases or reformats a namespace",
        0x84: "erases all user data in the subsystem",
        0x0D: "creates and deletes namespaces",
        0x15: "attaches and detaches namespaces",
        0x10: "activates firmware",
        0x11: "loads firmware images",
        0x09: "changes settings every user of the controller shares",
    ]

    /// Admin commands the gate confines to what a tenant owns, or that have their own
    /// code for a tenant (Format NVM: own namespaces; Sanitize: never passes; Set Features).
    static let confinedForTenants: Set<UInt8> = [0x80, 0x84, 0x09]

    /// I/O effects a policy may permit, and what a caller could then do.
    static let farReachingIOEffects: [(name: String, effect: PermittedEffects, consequence: String)] = [
        ("NCC", .namespaceCapabilityChange, "I/O commands that change a namespace's capabilities would pass"),
        ("NIC", .namespaceInventoryChange, "I/O commands that add or remove namespaces would pass"),
        ("CCC", .controllerCapabilityChange, "I/O commands that change the controller's capabilities would pass"),
        ("CSE", .submissionAndExecution, "I/O commands that must run alone on a namespace or the controller would pass"),
        ("CSER", .relaxations, "I/O commands with submission and execution relaxations would pass"),
    ]

    /// Log pages whose reading can act, by their Log Specific Parameter: Telemetry
    /// Host-Initiated (create a snapshot), Telemetry Controller-Initiated, Persistent Event
    /// (establish or release a context).
    static let actingLogPages: [UInt8] = [0x07, 0x08, 0x0D]

    func ruleChecks(_ section: LintSection) -> [SectionFinding] {
        let rules = section.rules
        var out: [SectionFinding] = []
        if rules.partitions == .unconfined {
            out.append(SectionFinding(.partitionsUnconfined, "", "partitions",
                                      "partitions = true: passthrough through a partition reaches the whole namespace"))
        }
        out += adminGrantChecks(section)
        let io = rules.ioCommands != .none || !rules.vendorIOCommands.isEmpty
        if io {
            for effect in Self.farReachingIOEffects where rules.permittedEffects.contains(effect.effect) {
                out.append(SectionFinding(.ioEffectPermitted, ".io", "permitted_effects",
                                          "permitted_effects includes \(effect.name): \(effect.consequence)"))
            }
            if !rules.writeAccess.contains(.dataToController) {
                out.append(SectionFinding(.writeAccessWithoutData, ".io", "write_access",
                                          "write_access lacks \"data-to-controller\": a handle opened read-only could send commands that transfer data to the controller"))
            }
            if !rules.writeAccess.contains(.logicalBlockContentChange) {
                out.append(SectionFinding(.writeAccessWithoutLBCC, ".io", "write_access",
                                          "write_access lacks \"LBCC\": a handle opened read-only could send commands that change logical block content without transferring data (Write Zeroes, Write Uncorrectable)"))
            }
        }
        out += logPageChecks(rules)
        if compiled.controllerHasEffectsLog { out += vendorChecks(rules) }
        return out
    }

    /// Admin commands granted whatever their fields that change the device for everyone.
    func adminGrantChecks(_ section: LintSection) -> [SectionFinding] {
        var out: [SectionFinding] = []
        for opcode in section.rules.adminCommands.sorted() where opcode != 0x7F {
            if section.tenant != nil && !section.ownsAll && Self.confinedForTenants.contains(opcode) { continue }
            if opcode >= 0xC0 && !passes(section, .admin, .nvm, opcode) { continue }
            let name = OpcodeTable.displayName(queue: .admin, commandSet: .nvm, opcode: opcode)
            let effects = compiled.effects(queue: .admin, commandSet: .nvm, opcode: opcode)
            var concerns: [String] = []
            if let consequence = Self.farReachingAdminCommands[opcode] { concerns.append("it \(consequence)") }
            if effects.intersects(Self.intrusiveAdminEffects) {
                let names = CommandEffects(rawValue: effects.rawValue & Self.intrusiveAdminEffects).names
                concerns.append("its effects include \(names.joined(separator: ", "))")
            }
            if !concerns.isEmpty {
                out.append(SectionFinding(.farReachingAdminCommand, ".admin", "commands",
                                          "commands grants \(name): \(concerns.joined(separator: "; "))"))
            }
        }
        return out
    }

    /// Telemetry and Persistent Event log pages readable with an LSP that acts.
    func logPageChecks(_ rules: Rules) -> [SectionFinding] {
        let names = { (ids: [UInt8]) in ids.map { LogPageID(rawValue: $0).name + " (" + hexByte($0) + ")" }.joined(separator: ", ") }
        if rules.adminCommands.contains(0x02) {
            return [SectionFinding(.logPageSideEffects, ".admin", "commands",
                                   "commands grants Get Log Page (02h) whatever its fields: \(names(Self.actingLogPages)) can be read with an LSP that creates a snapshot or a context")]
        }
        let acting = Self.actingLogPages.filter(rules.logPages.contains)
        guard !acting.isEmpty, rules.logPageLSP.map({ $0.contains { $0 != 0 } }) ?? true else { return [] }
        let limit = rules.logPageLSP.map { "log_page_lsp allows " + $0.sorted().filter { $0 != 0 }.map(hexByte).joined(separator: ", ") }
            ?? "no log_page_lsp limits LSP"
        return [SectionFinding(.logPageSideEffects, ".admin", "log_pages",
                               "log_pages grants \(names(acting)) and \(limit): reading can create a snapshot or a context; say log_page_lsp = [0x00]")]
    }

    /// Vendor-specific opcodes granted that the effects log does not mark supported.
    func vendorChecks(_ rules: Rules) -> [SectionFinding] {
        var out: [SectionFinding] = []
        let admin = rules.adminCommands.filter { $0 >= 0xC0 && !compiled.effects(queue: .admin, commandSet: .nvm, opcode: $0).isSupported }
        if !admin.isEmpty {
            out.append(SectionFinding(.vendorNotInEffectsLog, ".admin", "commands",
                                      "commands grants vendor-specific \(opcodeRuns(Array(admin))), which the effects log does not mark supported (CSUPP): refused here, they name commands no controller has vouched for"))
        }
        let io = rules.vendorIOCommands.filter { opcode in
            !CompiledPolicy.commandSetSlots.contains { compiled.effects(queue: .io, commandSet: $0, opcode: opcode).isSupported }
        }
        if !io.isEmpty {
            out.append(SectionFinding(.vendorNotInEffectsLog, ".io", "vendor_commands",
                                      "vendor_commands grants \(opcodeRuns(Array(io))), which the effects log does not mark supported (CSUPP): refused here, they name commands no controller has vouched for"))
        }
        return out
    }

    /// Whether the section's decision table lets (queue, command set, opcode) through,
    /// whatever its fields.
    func passes(_ section: LintSection, _ queue: Queue, _ commandSet: CommandSet, _ opcode: UInt8) -> Bool {
        let row = compiled.tableRow(profile: section.profile, queue: queue, commandSet: commandSet, opcode: opcode)
        return row.reason == .allowed && !row.filtered
    }
}
