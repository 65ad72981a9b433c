#if canImport(Glibc)
import Glibc
#endif
import NVMeGate

/// A connection's peer as the kernel reports it (`SO_PEERCRED`): the process that called
/// connect(2), with the effective uid and gid it had then. Nothing the client sends can
/// change it.
public struct PeerCredentials: Sendable, Hashable {
    public var pid: Int32
    public var uid: UInt32
    public var gid: UInt32

    public init(pid: Int32, uid: UInt32, gid: UInt32) { self.pid = pid; self.uid = uid; self.gid = gid }

    /// The credentials of the peer of the connected Unix socket `socket`; nil if the kernel
    /// gives none (not a Unix socket).
    public init?(socket: Int32) {
        // struct ucred: pid_t pid, uid_t uid, gid_t gid.
        var raw: (Int32, UInt32, UInt32) = (0, 0, 0)
        var length = socklen_t(MemoryLayout.size(ofValue: raw))
        guard getsockopt(socket, SOL_SOCKET, SO_PEERCRED, &raw, &length) == 0,
              length == socklen_t(MemoryLayout.size(ofValue: raw)) else { return nil }
        self.init(pid: raw.0, uid: raw.1, gid: raw.2)
    }
}

extension Caller {
    /// The caller a connection's peer is: uid and gid from the kernel (`SO_PEERCRED`),
    /// supplementary groups and effective capabilities from `/proc/PID/status`, read once.
    ///
    /// Fails closed: no groups and no capabilities when the status cannot be read, when its
    /// effective uid or gid is not the peer's (the process is gone and its PID reused), and
    /// no capabilities when the peer is in another user namespace (capabilities there are
    /// not capabilities here) or that cannot be told.
    public static func identify(_ peer: PeerCredentials) -> Caller {
        identify(peer, status: ProcessStatus.read(pid: peer.pid),
                 sameUserNamespace: sameUserNamespace(peer.pid))
    }

    /// `identify(peer)` (or an embedder's own) with the peer's process held by a pidfd
    /// (`SO_PEERPIDFD`, Linux 6.5+) while it reads /proc: the groups and capabilities it finds
    /// count only if that process is still alive, with the peer's PID, once they are read. A
    /// reaped process never comes back, so alive then means alive throughout, and the PID
    /// was never another process's. A process that connected and exited leaves its PID free,
    /// and another process of the same user given that PID (a wrapped PID space, or
    /// `ns_last_pid`) would otherwise lend its groups and capabilities. Fails closed, uid and
    /// gid only, when the process is gone. On a kernel without SO_PEERPIDFD, `identify(peer)`
    /// as it is.
    public static func identify(_ peer: PeerCredentials, socket: Int32,
                                using identify: (PeerCredentials) -> Caller = { Caller.identify($0) }) -> Caller {
        let bare = Caller(uid: peer.uid, gid: peer.gid)
        switch PeerProcess(socket: socket) {
        case .unsupported:
            return identify(peer)
        case .gone:
            return bare
        case .pidfd(let pidfd):
            defer { close(pidfd) }
            let caller = identify(peer)
            guard PeerProcess.pid(of: pidfd) == peer.pid else { return bare }
            return caller
        }
    }

    /// `identify` with the status and user namespace already read: what the rules decide.
    public static func identify(_ peer: PeerCredentials, status: ProcessStatus?, sameUserNamespace: Bool) -> Caller {
        guard let status, status.uids[1] == peer.uid, status.gids[1] == peer.gid else {
            return Caller(uid: peer.uid, gid: peer.gid)
        }
        return Caller(uid: peer.uid, gid: peer.gid, groups: status.groups,
                      capabilities: sameUserNamespace ? status.effectiveCapabilities : [])
    }

    /// Whether process `pid` is in this process's user namespace; false when either link
    /// cannot be read (reading another user's needs privilege).
    static func sameUserNamespace(_ pid: Int32) -> Bool {
        guard let mine = readLink("/proc/self/ns/user"), let theirs = readLink("/proc/\(pid)/ns/user") else { return false }
        return mine == theirs
    }
}

/// The process at the other end of a Unix socket, as a pidfd (`SO_PEERPIDFD`).
enum PeerProcess: Equatable {
    /// A pidfd for the process that connected, to close.
    case pidfd(Int32)
    /// That process is gone (reaped), or the kernel gives no pidfd for it.
    case gone
    /// The kernel predates SO_PEERPIDFD (Linux 6.5): nothing to hold the process by.
    case unsupported

    /// `SO_PEERPIDFD` from `<asm-generic/socket.h>`, which glibc 2.36's headers predate.
    static let peerPidfdOption: Int32 = 77

    init(socket: Int32) {
        var pidfd: Int32 = -1
        var length = socklen_t(MemoryLayout<Int32>.size)
        if getsockopt(socket, SOL_SOCKET, Self.peerPidfdOption, &pidfd, &length) == 0, pidfd >= 0 {
            self = .pidfd(pidfd)
        } else {
            self = errno == ENOPROTOOPT ? .unsupported : .gone
        }
    }

    /// The PID (in this process's PID namespace) of the process `pidfd` refers to, from the
    /// `Pid:` line of its fdinfo: -1 once it has been reaped, nil when that cannot be read.
    static func pid(of pidfd: Int32) -> Int32? {
        readSmallFile("/proc/self/fdinfo/\(pidfd)").flatMap(pid(fdinfo:))
    }

    /// The `Pid:` field of a pidfd's fdinfo text.
    static func pid(fdinfo text: String) -> Int32? {
        for line in text.split(separator: "\n") where line.hasPrefix("Pid:") {
            return Int32(line.dropFirst(4).trimmingPrefix(while: { $0 == " " || $0 == "\t" }))
        }
        return nil
    }
}

/// The target of the symbolic link at `path`, nil if it cannot be read.
func readLink(_ path: String) -> String? {
    var buffer = [UInt8](repeating: 0, count: 256)
    let n = buffer.withUnsafeMutableBytes { readlink(path, $0.baseAddress!.assumingMemoryBound(to: CChar.self), $0.count) }
    guard n > 0 else { return nil }
    return String(decoding: buffer[..<n], as: UTF8.self)
}
