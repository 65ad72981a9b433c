#if canImport(Glibc)
import Glibc
#endif
import NVMeGate

extension Caller {
    /// This process as a caller: effective uid and gid, and the effective capabilities
    /// Linux grants it (CapEff in /proc/PID/status; none when it cannot be read). What the
    /// kernel would check.
    public static func currentProcess() -> Caller {
        Caller(uid: geteuid(), gid: getegid(),
               capabilities: ProcessStatus.read(pid: getpid())?.effectiveCapabilities ?? [])
    }
}
