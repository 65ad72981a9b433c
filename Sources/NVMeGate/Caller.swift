import NVMeSpec

/// Linux capabilities as a bit set: bit N is capability N (`CAP_SYS_ADMIN` is 21), the
/// layout of `/proc/PID/status` CapEff and of `nvmegate_caller.capabilities`.
@frozen
public struct Capabilities: OptionSet, Hashable, Sendable, BitwiseCopyable {
    public var rawValue: UInt64
    @inlinable public init(rawValue: UInt64) { self.rawValue = rawValue }

    public static let sysRawIO = Capabilities(rawValue: 1 << 17)
    public static let sysAdmin = Capabilities(rawValue: 1 << 21)

    /// Linux's capability names, index = capability number (linux/capability.h).
    public static let names: [String] = [
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
        "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
        "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE",
        "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT",
        "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
        "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
        "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
    ]

    /// The capability called `name` ("CAP_SYS_ADMIN", case-insensitive, "CAP_" optional), or nil.
    public init?(name: String) {
        var upper = name.uppercased()
        if !upper.hasPrefix("CAP_") { upper = "CAP_" + upper }
        guard let bit = Self.names.firstIndex(of: upper) else { return nil }
        rawValue = 1 << UInt64(bit)
    }

    /// The names of the capabilities in the set, lowest first.
    public var nameList: [String] {
        (0..<64).compactMap { bit in
            rawValue & (1 << UInt64(bit)) == 0 ? nil : (bit < Self.names.count ? Self.names[bit] : "CAP_\(bit)")
        }
    }
}

/// Who sends a command: the identity a policy matches tenants against and the
/// capabilities that may let it bypass rules.
public struct Caller: Sendable, Hashable {
    public var uid: UInt32
    public var gid: UInt32
    /// Supplementary groups (`/proc/PID/status` Groups): a tenant that names one of them by
    /// gid matches the caller as it matches the primary group. Matched when a handle is
    /// opened and at each reload, never per command.
    public var groups: [UInt32]
    public var capabilities: Capabilities
    /// A name an embedder authenticated itself (matched by tenants that name callers).
    public var name: String?

    public init(uid: UInt32, gid: UInt32, groups: [UInt32] = [], capabilities: Capabilities = [], name: String? = nil) {
        self.uid = uid; self.gid = gid; self.groups = groups; self.capabilities = capabilities; self.name = name
    }
}
