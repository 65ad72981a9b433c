import NVMeSpec

/// A policy: who may send which commands. Loaded from a TOML file (see `Policies/`) or
/// built in code; compiled against a controller's effects log into `CompiledPolicy`.
public struct Policy: Sendable, Hashable {
    /// A short name ("kernel"), shown in explanations.
    public var name: String
    public var summary: String
    /// Callers holding any of these capabilities pass every policy rule (not the envelope
    /// checks, which Linux applies to root too).
    public var bypassCapabilities: Capabilities
    /// Capabilities needed for NVME_IOCTL_RESET, SUBSYS_RESET and RESCAN.
    public var managementCapabilities: Capabilities
    /// Add the effects Linux adds for known commands (Format NVM, Sanitize, Security
    /// Receive; Write, Write Zeroes, Write Uncorrectable) to what the controller reports.
    public var linuxKnownEffects: Bool
    /// Clear CSE for I/O commands, as Linux does (it would otherwise freeze all I/O queues).
    public var ignoreIOSubmissionAndExecution: Bool
    /// The rules for callers that match no tenant.
    public var defaultRules: Rules

    public init(name: String, summary: String = "", bypassCapabilities: Capabilities = .sysAdmin,
                managementCapabilities: Capabilities = .sysAdmin, linuxKnownEffects: Bool = true,
                ignoreIOSubmissionAndExecution: Bool = true, defaultRules: Rules) {
        self.name = name; self.summary = summary; self.bypassCapabilities = bypassCapabilities
        self.managementCapabilities = managementCapabilities; self.linuxKnownEffects = linuxKnownEffects
        self.ignoreIOSubmissionAndExecution = ignoreIOSubmissionAndExecution; self.defaultRules = defaultRules
    }

    /// Linux's own unprivileged passthrough rules (6.2 and later), exactly: the built-in
    /// default. `Policies/kernel.toml` spells out the same policy (a test holds them equal).
    public static let kernel = Policy(
        name: "kernel",
        summary: "Linux's unprivileged NVMe passthrough rules (6.2 and later)",
        defaultRules: Rules(
            partitions: false,
            identifyCNS: [0x00, 0x01, 0x05, 0x06, 0x08],
            ioCommands: .supported,
            permittedEffects: [.logicalBlockContentChange, .uuidSelectionSupported, .allScopes],
            writeAccess: [.dataToController, .logicalBlockContentChange]))
}

/// What one kind of caller may send.
public struct Rules: Sendable, Hashable {
    /// Allow I/O passthrough through a partition node (Linux: no; it reaches the whole namespace).
    public var partitions: Bool
    /// Admin commands allowed whatever their fields, by opcode.
    public var adminCommands: Set<UInt8>
    /// Identify is allowed for these CNS values.
    public var identifyCNS: Set<UInt8>
    /// Get Log Page is allowed for these log identifiers.
    public var logPages: Set<UInt8>
    /// Get Features is allowed for these feature identifiers.
    public var features: Set<UInt8>
    /// Which I/O commands may pass (before effects are considered).
    public var ioCommands: IOCommands
    /// I/O commands with effects outside CSUPP and these are refused.
    public var permittedEffects: PermittedEffects
    /// Which commands need a handle opened for writing.
    public var writeAccess: WriteAccess

    public init(partitions: Bool = false, adminCommands: Set<UInt8> = [], identifyCNS: Set<UInt8> = [],
                logPages: Set<UInt8> = [], features: Set<UInt8> = [], ioCommands: IOCommands = .supported,
                permittedEffects: PermittedEffects = [], writeAccess: WriteAccess = [.dataToController, .logicalBlockContentChange]) {
        self.partitions = partitions; self.adminCommands = adminCommands; self.identifyCNS = identifyCNS
        self.logPages = logPages; self.features = features; self.ioCommands = ioCommands
        self.permittedEffects = permittedEffects; self.writeAccess = writeAccess
    }
}

/// Which I/O commands a rule set lets through.
public enum IOCommands: Sendable, Hashable {
    /// Every standard I/O command the effects log marks supported (CSUPP), as Linux does.
    case supported
    /// Only these opcodes (and only if supported).
    case only(Set<UInt8>)
    /// No I/O command.
    case none
}

/// Effects (beyond CSUPP) a command may have and still pass.
public struct PermittedEffects: OptionSet, Sendable, Hashable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let logicalBlockContentChange = PermittedEffects(rawValue: CommandEffects.logicalBlockContentChange.rawValue)
    public static let namespaceCapabilityChange = PermittedEffects(rawValue: CommandEffects.namespaceCapabilityChange.rawValue)
    public static let namespaceInventoryChange = PermittedEffects(rawValue: CommandEffects.namespaceInventoryChange.rawValue)
    public static let controllerCapabilityChange = PermittedEffects(rawValue: CommandEffects.controllerCapabilityChange.rawValue)
    public static let relaxations = PermittedEffects(rawValue: CommandEffects.relaxationsMask)
    public static let submissionAndExecution = PermittedEffects(rawValue: CommandEffects.submissionAndExecutionMask)
    public static let uuidSelectionSupported = PermittedEffects(rawValue: CommandEffects.uuidSelectionSupported.rawValue)
    /// Every Command Scope bit (CSP, 31:20).
    public static let allScopes = PermittedEffects(rawValue: CommandEffects.scopeMask)

    /// Policy-file names: LBCC, NCC, NIC, CCC, CSER, CSE, USS, CSP.
    public static let byName: [(String, PermittedEffects)] = [
        ("LBCC", .logicalBlockContentChange), ("NCC", .namespaceCapabilityChange),
        ("NIC", .namespaceInventoryChange), ("CCC", .controllerCapabilityChange), ("CSER", .relaxations),
        ("CSE", .submissionAndExecution), ("USS", .uuidSelectionSupported), ("CSP", .allScopes),
    ]
}

/// What makes a command need a handle opened for writing.
public struct WriteAccess: OptionSet, Sendable, Hashable {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    /// The command transfers data to the controller (opcode bit 0; Linux's `nvme_is_write`).
    public static let dataToController = WriteAccess(rawValue: 1)
    /// The command's effects include LBCC.
    public static let logicalBlockContentChange = WriteAccess(rawValue: 2)
    public static let byName: [(String, WriteAccess)] = [
        ("data-to-controller", .dataToController), ("LBCC", .logicalBlockContentChange),
    ]
}
