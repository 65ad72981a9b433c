#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Logging
import NVMeGate
import NVMeSpec
import NVMeTargets

/// The device a command talks to and who is talking: nvme-cli's positional device argument,
/// the target the node lives on, the policy that judges every command, and the caller it
/// judges them as. Shared by every device command.
struct DeviceOptions: ParsableArguments {
    @Argument(help: ArgumentHelp(
        "The NVMe node: a real device path (/dev/nvme0, /dev/nvme0n1, /dev/ng0n1), or a node name on the target: nvme0 (controller), nvme0n1 (namespace), ng0n1 (generic), nvme0n1p1 (partition), with or without /dev/.",
        valueName: "device"))
    var device: String

    @OptionGroup var access: AccessOptions
}

/// Where a device node lives and who is talking to it: the target, the policy that judges
/// every command, the audit trail, and the caller. What every device command takes besides
/// its node (`DeviceOptions`); `bench` takes it with a node that has a default.
struct AccessOptions: ParsableArguments {
    @Option(help: ArgumentHelp(
        "Where the node lives: \"emulated\" (in memory, fresh each run), \"emulated:DIR\" (kept in DIR, shared between runs and processes), \"loopback\", or a device path (the real controller behind it). Default: a device given as a path is the real device; else $NVMEGATE_TARGET, else \"emulated\".",
        valueName: "target"))
    var target: String?

    @Option(help: ArgumentHelp(
        "For a real device: the Commands Supported and Effects log to decide with when Linux refuses this process the device's own (Get Log Page needs CAP_SYS_ADMIN): a raw 4096-byte page, as root's `nvme get-log /dev/nvme0 --log-id=5 --log-len=4096 -b` writes it. The device's own log wins when it can be read.",
        valueName: "file"))
    var effectsLog: String?

    @Option(help: ArgumentHelp("The policy every command is decided by (TOML). Default: the built-in kernel-compatible policy.",
                               valueName: "file"))
    var policy: String?

    @Option(help: ArgumentHelp(
        "Append an audit line (one JSON object) to this file for every command refused, passed by privilege, or audited by the policy (audit_allowed).",
        valueName: "file"))
    var audit: String?

    @Option(name: .customLong("as"), help: ArgumentHelp(
        "Send the commands as this caller instead of as this process: a uid, then optionally ':' and a comma-separated capability list (\"1000\", \"1000:CAP_SYS_ADMIN\"). It can only drop privileges.",
        valueName: "uid[:caps]"))
    var caller: CallerSpec?

    /// The environment variable naming the default target.
    static let targetVariable = "NVMEGATE_TARGET"

    /// The target spec `device` is opened on: `--target`; else the device itself when it is
    /// a path to a real device (a path, existing or not, when $NVMEGATE_TARGET is unset; an
    /// existing path otherwise); else `$NVMEGATE_TARGET`, else "emulated".
    func targetSpec(for device: String) -> String {
        if let target { return target }
        let variable = getenv(Self.targetVariable).flatMap { $0.pointee != 0 ? String(cString: $0) : nil }
        if Target.isDevicePath(device) && (variable == nil || access(device, F_OK) == 0) { return device }
        return variable ?? "emulated"
    }

    /// `--effects-log`'s page, nil when not given.
    func fallbackEffectsLog() throws(CLIError) -> CommandEffectsLog? {
        try loadEffectsLogs(effectsLog)[.nvm]
    }

    /// The audit logger `--audit` names, or nil.
    func auditLogger() throws(CLIError) -> Logger? {
        guard let audit else { return nil }
        let handler: JSONLinesAuditHandler
        do throws(AuditLogError) { handler = try JSONLinesAuditHandler(path: audit) } catch { throw CLIError(error.description) }
        return Logger(label: "nvmegate.audit") { _ in handler }
    }

    /// The caller the commands are sent as, checked against this process's own privileges.
    func resolvedCaller() throws(CLIError) -> Caller {
        let me = Caller.currentProcess()
        guard let caller else { return me }
        return try caller.resolve(droppingFrom: me)
    }
}

/// `--as UID[:CAPS]`: who a privileged user wants to act as.
struct CallerSpec: ExpressibleByArgument {
    var uid: UInt32
    /// The capabilities named after the colon; nil when there is no colon.
    var capabilities: Capabilities?

    init?(argument: String) {
        let parts = argument.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        guard let uid = parseUnsigned(parts[0]).flatMap(UInt32.init(exactly:)) else { return nil }
        self.uid = uid
        guard parts.count == 2 else { capabilities = nil; return }
        var set: Capabilities = []
        for name in parts[1].split(separator: ",") {
            guard let one = Capabilities(nameOrNumber: String(name.trimmingPrefix(" "))) else { return nil }
            set.formUnion(one)
        }
        capabilities = set
    }

    /// The caller this spec names, if `me` may act as it: the same uid unless `me` is root,
    /// and only capabilities `me` holds. Without a capability list, uid 0 keeps `me`'s
    /// capabilities and any other uid has none, as a login as that user would. The group is
    /// the user's primary group (the uid when the user is unknown).
    func resolve(droppingFrom me: Caller) throws(CLIError) -> Caller {
        guard uid == me.uid || me.uid == 0 else {
            throw CLIError("--as \(uid): only root can act as another user (this process is uid \(me.uid)); --as can only drop privileges")
        }
        let wanted = capabilities ?? (uid == 0 ? me.capabilities : [])
        let missing = wanted.subtracting(me.capabilities)
        guard missing.isEmpty else {
            throw CLIError("--as: this process does not hold \(missing.nameList.joined(separator: ", ")); --as can only drop privileges")
        }
        let gid: UInt32 = uid == me.uid ? me.gid : (getpwuid(uid).map { $0.pointee.pw_gid } ?? uid)
        return Caller(uid: uid, gid: gid, capabilities: wanted)
    }
}
