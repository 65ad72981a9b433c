import ArgumentParser
import NVMeGate
import NVMeSpec

/// `nvmegate policy lint FILE`: loads a policy and warns about grants that reach further
/// than they seem to.
struct PolicyLint: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lint",
        abstract: "Check a policy file and warn about grants that reach further than intended.",
        discussion: "Exit status: 0 when the policy loads (with or without warnings), 2 with --strict and warnings, 1 when it does not load.")

    @Argument(help: ArgumentHelp("The policy file (TOML).", valueName: "file"))
    var file: String

    @Option(help: ArgumentHelp("The controller's Commands Supported and Effects log (a raw 4096-byte page), to judge the effects of the admin commands granted.",
                               valueName: "file"))
    var effectsLog: String?

    @Flag(help: "Exit with status 2 when there are warnings.")
    var strict = false

    func run() throws {
        var warnings: [String] = []
        try reportingFailures {
            let policy = try Policy.load(path: file)
            warnings = PolicyLinter(CompiledPolicy(policy: policy, effectsLogs: try loadEffectsLogs(effectsLog))).warnings
        }
        for warning in warnings { print("warning: \(warning)") }
        switch warnings.count {
        case 0: print("\(file): ok")
        case 1: print("\(file): 1 warning")
        default: print("\(file): \(warnings.count) warnings")
        }
        if strict && !warnings.isEmpty { throw ExitCode(2) }
    }
}

/// Finds the grants of a policy that reach further than they seem to: each warning names
/// the key and what a caller could then do.
struct PolicyLinter {
    let compiled: CompiledPolicy

    init(_ compiled: CompiledPolicy) { self.compiled = compiled }

    /// Effects that make an admin command worth a warning when granted.
    static let intrusiveAdminEffects = CommandEffects.logicalBlockContentChange.rawValue
        | CommandEffects.namespaceCapabilityChange.rawValue | CommandEffects.namespaceInventoryChange.rawValue
        | CommandEffects.controllerCapabilityChange.rawValue | CommandEffects.submissionAndExecutionMask

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

    /// I/O effects a policy may permit, and what a caller could then do.
    static let farReachingIOEffects: [(name: String, effect: PermittedEffects, consequence: String)] = [
        ("NCC", .namespaceCapabilityChange, "I/O commands that change a namespace's capabilities would pass"),
        ("NIC", .namespaceInventoryChange, "I/O commands that add or remove namespaces would pass"),
        ("CCC", .controllerCapabilityChange, "I/O commands that change the controller's capabilities would pass"),
        ("CSE", .submissionAndExecution, "I/O commands that must run alone on a namespace or the controller would pass"),
        ("CSER", .relaxations, "I/O commands with submission and execution relaxations would pass"),
    ]

    var warnings: [String] {
        let policy = compiled.policy
        let rules = policy.defaultRules
        var out: [String] = []

        for capability in policy.bypassCapabilities.subtracting(.sysAdmin).nameList {
            out.append("[privileges] bypass includes \(capability): its holders pass every rule of the policy; Linux lets only CAP_SYS_ADMIN do that")
        }
        for capability in policy.managementCapabilities.subtracting(.sysAdmin).nameList {
            out.append("[privileges] management includes \(capability): its holders may reset the controller and the subsystem; Linux asks for CAP_SYS_ADMIN")
        }
        if rules.partitions == .unconfined {
            out.append("[default] partitions = true: passthrough through a partition reaches the whole namespace")
        }

        for opcode in rules.adminCommands.sorted() {
            let name = OpcodeTable.displayName(queue: .admin, commandSet: .nvm, opcode: opcode)
            let effects = compiled.effects(queue: .admin, commandSet: .nvm, opcode: opcode)
            var concerns: [String] = []
            if let consequence = Self.farReachingAdminCommands[opcode] { concerns.append("it \(consequence)") }
            if effects.intersects(Self.intrusiveAdminEffects) {
                concerns.append("its effects include \(CommandEffects(rawValue: effects.rawValue & Self.intrusiveAdminEffects).names.joined(separator: ", "))")
            }
            if !concerns.isEmpty {
                out.append("[default.admin] commands grants \(name): \(concerns.joined(separator: "; "))")
            }
        }

        if rules.ioCommands != .none {
            for effect in Self.farReachingIOEffects where rules.permittedEffects.contains(effect.effect) {
                out.append("[default.io] permitted_effects includes \(effect.name): \(effect.consequence)")
            }
            if !rules.writeAccess.contains(.dataToController) {
                out.append("[default.io] write_access lacks \"data-to-controller\": a handle opened read-only could send commands that transfer data to the controller")
            }
            if !rules.writeAccess.contains(.logicalBlockContentChange) {
                out.append("[default.io] write_access lacks \"LBCC\": a handle opened read-only could send commands that change logical block content without transferring data (Write Zeroes, Write Uncorrectable)")
            } else if !policy.linuxKnownEffects {
                out.append("[effects] linux_known_effects = false: Write Zeroes and Write Uncorrectable count as LBCC only if the controller says so; otherwise a handle opened read-only could send them")
            }
        }
        return out
    }
}
