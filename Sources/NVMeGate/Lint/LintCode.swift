/// Whether a lint finding is a warning (a grant that reaches further than it seems to, which
/// an author may accept with `lint_accept`) or an error (a contradiction the policy cannot mean).
public enum LintSeverity: String, Sendable, Hashable {
    case warning, error
}

/// The stable code of each thing `policy lint` reports: kebab-case, printed at the end of
/// every finding's line, and what a policy's `lint_accept` names to accept a warning on purpose.
public enum LintCode: String, Sendable, Hashable, CaseIterable {
    // Privileges and effects.
    case bypassCapability = "bypass-capability"
    case managementCapability = "management-capability"
    case linuxKnownEffectsOff = "linux-known-effects-off"
    // The shape of one rule set.
    case partitionsUnconfined = "partitions-unconfined"
    case farReachingAdminCommand = "far-reaching-admin-command"
    case ioEffectPermitted = "io-effect-permitted"
    case writeAccessWithoutData = "write-access-without-data"
    case writeAccessWithoutLBCC = "write-access-without-lbcc"
    case logPageSideEffects = "log-page-side-effects"
    case vendorNotInEffectsLog = "vendor-not-in-effects-log"
    // Reach beyond ownership.
    case cseAnyNamespace = "cse-any-namespace"
    case scopeBeyondNamespace = "scope-beyond-namespace"
    case inventoryOrCapabilityChange = "inventory-or-capability-change"
    case setFeaturesControllerScope = "set-features-controller-scope"
    case defaultReachesTenantNamespace = "default-reaches-tenant-namespace"
    case grantNeverPasses = "grant-never-passes"
    case idsShadowed = "ids-shadowed"
    case namespaceNotOnTarget = "namespace-not-on-target"
    // Contradictions.
    case sharedWritableNamespace = "shared-writable-namespace"
    case lbaRangeBeyondNamespace = "lba-range-beyond-namespace"
    case tenantNeverMatches = "tenant-never-matches"

    /// Errors are contradictions: they cannot be accepted, and lint exits with status 1.
    public var severity: LintSeverity {
        switch self {
        case .sharedWritableNamespace, .lbaRangeBeyondNamespace, .tenantNeverMatches: .error
        default: .warning
        }
    }

    /// What the code means, in one sentence (for `policy lint --help` and the README).
    public var meaning: String {
        switch self {
        case .bypassCapability: "[privileges] bypass names a capability other than CAP_SYS_ADMIN, whose holders then pass every rule"
        case .managementCapability: "[privileges] management names a capability other than CAP_SYS_ADMIN, whose holders may then reset the controller"
        case .linuxKnownEffectsOff: "linux_known_effects = false: Write Zeroes and Write Uncorrectable count as LBCC only if the controller says so"
        case .partitionsUnconfined: "partitions = true: passthrough through a partition node reaches the whole namespace"
        case .farReachingAdminCommand: "an admin command that changes the device for everyone (or has intrusive effects) is granted whatever its fields"
        case .ioEffectPermitted: "permitted_effects lets I/O commands with NCC, NIC, CCC, CSE or CSER through"
        case .writeAccessWithoutData: "write_access lacks \"data-to-controller\": a read-only handle may send commands that transfer data to the controller"
        case .writeAccessWithoutLBCC: "write_access lacks \"LBCC\": a read-only handle may change blocks without transferring data"
        case .logPageSideEffects: "Telemetry (07h, 08h) or Persistent Event (0Dh) log pages are granted without limiting LSP to 0: reading them can create a snapshot or a context"
        case .vendorNotInEffectsLog: "a vendor-specific opcode is granted that the effects log does not mark supported (only with --effects-log or --target)"
        case .cseAnyNamespace: "a granted command must run alone on the whole controller (CSE 2 and above) for a caller that does not own every namespace: others' I/O waits"
        case .scopeBeyondNamespace: "a granted command's Command Scope reaches beyond a namespace (controller, NVM set, endurance group, domain, subsystem) for a caller that does not own every namespace"
        case .inventoryOrCapabilityChange: "a granted command adds or removes namespaces (NIC) or changes the controller's capabilities (CCC), for every user of the controller"
        case .setFeaturesControllerScope: "Set Features is granted to a caller that shares the controller: controller-scoped features change it for everyone"
        case .defaultReachesTenantNamespace: "tenants own namespaces, yet the [default] rules let callers that match no tenant reach any namespace"
        case .grantNeverPasses: "a grant the gate always refuses for this caller (Sanitize or Format NVM without the namespaces it needs, I/O without a namespace)"
        case .idsShadowed: "some uids, gids or caller names of a tenant are matched first by an earlier tenant"
        case .namespaceNotOnTarget: "a tenant owns a namespace the target's controller does not have (only with --target)"
        case .sharedWritableNamespace: "two tenants may write the same namespace (whole-namespace grants, or overlapping writable LBA ranges)"
        case .lbaRangeBeyondNamespace: "an LBA range ends beyond its namespace's size (only with --target)"
        case .tenantNeverMatches: "every uid, gid and caller name of a tenant is matched by earlier tenants: it can never match"
        }
    }
}
