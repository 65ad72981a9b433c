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
    /// Tenants, in file order: a caller gets the first one that matches it.
    public var tenants: [Tenant]
    /// Corrections to what controllers report in their effects logs, by model and firmware.
    public var effectsOverrides: [EffectsOverride]
    /// Lint warnings the author accepts on purpose (`lint_accept`): `policy lint` prints them
    /// as accepted and stays clean. Changes no decision.
    public var lintAccept: Set<LintCode>

    public init(name: String, summary: String = "", bypassCapabilities: Capabilities = .sysAdmin,
                managementCapabilities: Capabilities = .sysAdmin, linuxKnownEffects: Bool = true,
                ignoreIOSubmissionAndExecution: Bool = true, defaultRules: Rules, tenants: [Tenant] = [],
                effectsOverrides: [EffectsOverride] = [], lintAccept: Set<LintCode> = []) {
        self.name = name; self.summary = summary; self.bypassCapabilities = bypassCapabilities
        self.managementCapabilities = managementCapabilities; self.linuxKnownEffects = linuxKnownEffects
        self.ignoreIOSubmissionAndExecution = ignoreIOSubmissionAndExecution; self.defaultRules = defaultRules
        self.tenants = tenants; self.effectsOverrides = effectsOverrides; self.lintAccept = lintAccept
    }

    /// The tenant `caller` matches (its index in `tenants`), or nil for the default rules:
    /// the first tenant naming the caller's name, uid, gid or one of its supplementary groups.
    public func tenantIndex(for caller: Caller) -> Int? {
        tenants.firstIndex { $0.matches(caller) }
    }

    /// Linux's own unprivileged passthrough rules (6.2 and later), exactly: the built-in
    /// default. `Policies/kernel.toml` spells out the same policy (a test holds them equal).
    public static let kernel = Policy(
        name: "kernel",
        summary: "Linux's unprivileged NVMe passthrough rules (6.2 and later)",
        defaultRules: Rules(
            partitions: .refuse,
            identifyCNS: [0x00, 0x01, 0x05, 0x06, 0x08],
            ioCommands: .supported,
            permittedEffects: [.logicalBlockContentChange, .uuidSelectionSupported, .allScopes],
            writeAccess: [.dataToController, .logicalBlockContentChange]))
}

/// A kind of caller with its own rules and the namespaces (or LBA ranges) it owns. Every
/// command a tenant sends that addresses a namespace must address one it owns.
public struct Tenant: Sendable, Hashable {
    public var name: String
    /// Matched by uid, by gid (the caller's primary group or one of its supplementary
    /// groups), or by a name an embedder authenticated (`Caller.name`).
    public var uids: Set<UInt32>
    public var gids: Set<UInt32>
    public var callerNames: Set<String>
    /// What the tenant owns; `.all` reaches broadcast commands too.
    public var ownership: Ownership
    public var rules: Rules

    public init(name: String, uids: Set<UInt32> = [], gids: Set<UInt32> = [], callerNames: Set<String> = [],
                ownership: Ownership = .grants([]), rules: Rules) {
        self.name = name; self.uids = uids; self.gids = gids; self.callerNames = callerNames
        self.ownership = ownership; self.rules = rules
    }

    /// Whether `caller` is this tenant.
    public func matches(_ caller: Caller) -> Bool {
        if let name = caller.name, callerNames.contains(name) { return true }
        return uids.contains(caller.uid) || gids.contains(caller.gid) || caller.groups.contains { gids.contains($0) }
    }
}

/// The namespaces a tenant owns.
public enum Ownership: Sendable, Hashable {
    /// Every namespace, present and future, whole and writable.
    case all
    /// These namespaces or ranges, and nothing else (none: a monitoring caller).
    case grants([NamespaceGrant])
}

/// A namespace, or an LBA range of one, that a tenant owns, for reading or for reading and
/// writing.
public struct NamespaceGrant: Sendable, Hashable {
    public var nsid: UInt32
    /// The blocks owned; nil for the whole namespace.
    public var range: LBARange?
    public var writable: Bool

    public init(nsid: UInt32, range: LBARange? = nil, writable: Bool = true) {
        self.nsid = nsid; self.range = range; self.writable = writable
    }
}

/// A correction to one entry of the effects log that controllers of a model (and firmware
/// revision) report, for controllers that report wrongly. Adds effects unless `replace`.
public struct EffectsOverride: Sendable, Hashable {
    /// Model Number to match: exact, or a prefix when it ends in "*".
    public var model: String
    /// Firmware Revision to match the same way; nil matches every revision.
    public var firmware: String?
    public var queue: Queue
    public var commandSet: CommandSet
    public var opcode: UInt8
    public var effects: CommandEffects
    /// Set the entry to exactly `effects` (which may remove effects) instead of adding them.
    public var replace: Bool

    public init(model: String, firmware: String? = nil, queue: Queue, commandSet: CommandSet = .nvm,
                opcode: UInt8, effects: CommandEffects, replace: Bool = false) {
        self.model = model; self.firmware = firmware; self.queue = queue; self.commandSet = commandSet
        self.opcode = opcode; self.effects = effects; self.replace = replace
    }

    /// Whether the override applies to a controller reporting `identity`.
    public func applies(to identity: ControllerIdentity) -> Bool {
        func match(_ pattern: String, _ value: String) -> Bool {
            let trimmed = value.trimmingTrailingSpaces()
            if pattern.hasSuffix("*") { return trimmed.hasPrefix(pattern.dropLast()) }
            return trimmed == pattern
        }
        return match(model, identity.model) && (firmware.map { match($0, identity.firmwareRevision) } ?? true)
    }
}

extension String {
    /// The string without the trailing spaces Identify pads its text fields with.
    func trimmingTrailingSpaces() -> String {
        var s = Substring(self)
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }
}

/// Which allowed commands are audited as well as refused ones.
public struct AuditClasses: OptionSet, Sendable, Hashable {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    /// Every allowed admin command.
    public static let admin = AuditClasses(rawValue: 1)
    /// Every allowed command that changes data or needs a handle opened for writing.
    public static let writes = AuditClasses(rawValue: 2)
    /// Every allowed command.
    public static let all = AuditClasses(rawValue: 7)
    public static let byName: [(String, AuditClasses)] = [("admin", .admin), ("writes", .writes), ("all", .all)]
}

/// How I/O through a partition node (`nvme0n1p1`) is treated.
public enum PartitionAccess: Sendable, Hashable {
    /// Refused, as Linux does: passthrough there reaches the whole namespace.
    case refuse
    /// Allowed, confined to the partition's blocks: LBA-addressed commands must stay inside
    /// it, commands that reach the whole namespace are refused.
    case confined
    /// Allowed with no confinement: a command reaches the whole namespace (`partitions = true`).
    case unconfined
}

/// What one kind of caller may send.
public struct Rules: Sendable, Hashable {
    /// I/O passthrough through a partition node: refused (Linux) or confined to the partition.
    public var partitions: PartitionAccess
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
    /// Get Log Page: the Log Specific Parameter values allowed (nil: any). Some logs act on
    /// LSP (Telemetry Host-Initiated creates a snapshot, Persistent Event establishes a context).
    public var logPageLSP: Set<UInt8>?
    /// Get Log Page must set Retain Asynchronous Event (RAE), so reading a log never clears
    /// an event another agent waits for.
    public var requireRetainAsyncEvent: Bool
    /// Effects (beyond CSUPP) a vendor-specific admin command (C0h-FFh) named in
    /// `adminCommands` may have: it passes only if the effects log marks it supported with
    /// no other effects.
    public var adminPermittedEffects: PermittedEffects
    /// Vendor-specific I/O opcodes (80h-FFh) allowed, like standard I/O commands: supported
    /// and within `permittedEffects`.
    public var vendorIOCommands: Set<UInt8>
    /// A fused Compare + Write pair on a submission ring is decided as one command.
    public var fusedCompareWrite: Bool
    /// Allowed commands audited as well as refusals.
    public var auditAllowed: AuditClasses

    public init(partitions: PartitionAccess = .refuse, adminCommands: Set<UInt8> = [], identifyCNS: Set<UInt8> = [],
                logPages: Set<UInt8> = [], features: Set<UInt8> = [], ioCommands: IOCommands = .supported,
                permittedEffects: PermittedEffects = [], writeAccess: WriteAccess = [.dataToController, .logicalBlockContentChange],
                logPageLSP: Set<UInt8>? = nil, requireRetainAsyncEvent: Bool = false,
                adminPermittedEffects: PermittedEffects = [],
                vendorIOCommands: Set<UInt8> = [], fusedCompareWrite: Bool = false, auditAllowed: AuditClasses = []) {
        self.partitions = partitions; self.adminCommands = adminCommands; self.identifyCNS = identifyCNS
        self.logPages = logPages; self.features = features; self.ioCommands = ioCommands
        self.permittedEffects = permittedEffects; self.writeAccess = writeAccess
        self.logPageLSP = logPageLSP; self.requireRetainAsyncEvent = requireRetainAsyncEvent
        self.adminPermittedEffects = adminPermittedEffects
        self.vendorIOCommands = vendorIOCommands; self.fusedCompareWrite = fusedCompareWrite
        self.auditAllowed = auditAllowed
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
