#if canImport(Glibc)
import Glibc
#endif
import NVMeGate

extension Caller {
    /// This process as a caller: effective uid and gid, and its supplementary groups and
    /// the effective capabilities Linux grants it (Groups and CapEff in /proc/PID/status;
    /// none when it cannot be read). What the kernel would check, and what the broker
    /// reads for a connection's peer, so a tenant named by gid matches the same processes
    /// in process and through the broker.
    public static func currentProcess() -> Caller {
        let status = ProcessStatus.read(pid: getpid())
        return Caller(uid: geteuid(), gid: getegid(), groups: status?.groups ?? [],
                      capabilities: status?.effectiveCapabilities ?? [])
    }
}
