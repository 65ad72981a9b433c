import NVMeSpec

/// Everything a decision needs to know about the handle a command came through: which
/// node, opened how, for which namespace, by whom. Small and copyable; the handle table
/// packs it into a few words.
@frozen
public struct HandleContext: Sendable, Hashable, BitwiseCopyable {
    public var kind: NodeKind
    public var writable: Bool
    /// The command set of the handle's namespace (NVM for a controller node).
    public var commandSet: CommandSet
    /// The handle's namespace (0 for a controller node).
    public var nsid: UInt32
    /// Index of the rule set (profile) the caller resolved to in the compiled policy.
    public var profile: UInt16
    /// The caller's tenant in the compiled policy: 0 for none (the default rules, no
    /// ownership), i + 1 for `policy.tenants[i]` (see `CompiledPolicy.assignment(for:)`).
    public var tenant: UInt16
    public var capabilities: Capabilities
    /// For a partition node, the partition's blocks (a confined partition handle stays
    /// inside them); count 0 otherwise.
    public var partition: LBARange

    public init(kind: NodeKind, writable: Bool, commandSet: CommandSet = .nvm, nsid: UInt32 = 0,
                profile: UInt16 = 0, tenant: UInt16 = 0, capabilities: Capabilities = [],
                partition: LBARange = LBARange(start: 0, count: 0)) {
        self.kind = kind; self.writable = writable; self.commandSet = commandSet; self.nsid = nsid
        self.profile = profile; self.tenant = tenant; self.capabilities = capabilities; self.partition = partition
    }
}

