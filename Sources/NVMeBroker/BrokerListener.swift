#if canImport(Glibc)
import Glibc
#endif

/// A failure to set up the broker's socket, naming the path and what failed.
public struct BrokerError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public var errno: Int32
    public init(_ description: String, errno: Int32 = EINVAL) { self.description = description; self.errno = errno }
}

/// The listening Unix stream socket the broker accepts connections on: one it binds to a
/// path with the mode and group that say who may connect, or one systemd passed it (socket
/// activation, where the `.socket` unit sets them).
///
/// The socket file's permissions are the first gate: connect(2) needs write permission on
/// it, so mode 0660 with a group lets exactly the group's members (and the owner) reach
/// the broker, and the policy then decides what each may send. The directory holding it
/// must be searchable by them too.
public struct BrokerListener: Sendable {
    public let fd: Int32
    /// The socket's path (for messages), nil for an unnamed inherited socket.
    public let path: String?
    /// Whether the broker created the path, and so removes it when it stops.
    public let ownsPath: Bool

    /// Binds a new socket at `path`, gives it `mode` and (when set) `group`, and listens.
    ///
    /// A socket file already at `path` is replaced only when nothing listens on it (a
    /// broker that died); a live one, or a file of another kind, is an error. Nobody can
    /// connect before the mode and group are set: connect(2) is refused until listen(2).
    public static func bind(path: String, mode: mode_t = 0o660, group: gid_t? = nil,
                            backlog: Int32 = 128) throws(BrokerError) -> BrokerListener {
        var address = try socketAddress(path)
        var existing = stat()
        if lstat(path, &existing) == 0 {
            guard existing.st_mode & S_IFMT == S_IFSOCK else {
                throw BrokerError("\(path) exists and is not a socket: not replacing it", errno: EEXIST)
            }
            if isListening(&address) {
                throw BrokerError("\(path): another process is listening on this socket", errno: EADDRINUSE)
            }
            unlink(path)
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw BrokerError("socket: \(String(cString: strerror(errno)))", errno: errno) }
        func fail(_ what: String) -> BrokerError {
            let code = errno
            Glibc.close(fd)
            return BrokerError("\(path): \(what): \(String(cString: strerror(code)))", errno: code)
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0 else { throw fail("bind") }
        guard chmod(path, mode) == 0 else { let e = fail("chmod"); unlink(path); throw e }
        if let group, chown(path, uid_t.max, group) != 0 { let e = fail("chown to group \(group)"); unlink(path); throw e }
        guard listen(fd, backlog) == 0 else { let e = fail("listen"); unlink(path); throw e }
        return BrokerListener(fd: fd, path: path, ownsPath: true)
    }

    /// The socket systemd passed this process (socket activation: `LISTEN_PID` is this
    /// process, `LISTEN_FDS` is 1, the socket is descriptor 3), nil when there is none. The
    /// variables are removed so that children do not take it for theirs.
    public static func fromSystemd() throws(BrokerError) -> BrokerListener? {
        guard let pidText = getenv("LISTEN_PID"), let countText = getenv("LISTEN_FDS"),
              Int32(String(cString: pidText)) == getpid() else { return nil }
        let count = Int(String(cString: countText)) ?? 0
        unsetenv("LISTEN_PID"); unsetenv("LISTEN_FDS"); unsetenv("LISTEN_FDNAMES")
        guard count == 1 else {
            throw BrokerError("socket activation passed \(count) sockets; nvmegate serve takes exactly one (ListenStream=)")
        }
        let fd: Int32 = 3
        func option(_ name: Int32) -> Int32? {
            var value: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            return getsockopt(fd, SOL_SOCKET, name, &value, &length) == 0 ? value : nil
        }
        guard option(SO_DOMAIN) == AF_UNIX, option(SO_TYPE) == Int32(SOCK_STREAM.rawValue), option(SO_ACCEPTCONN) == 1 else {
            throw BrokerError("socket activation: descriptor 3 is not a listening Unix stream socket (ListenStream=/path)")
        }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        return BrokerListener(fd: fd, path: boundPath(fd), ownsPath: false)
    }

    /// Closes the socket, and removes its file if the broker created it.
    func close() {
        _ = Glibc.close(fd)
        if ownsPath, let path { unlink(path) }
    }

    static func socketAddress(_ path: String) throws(BrokerError) -> sockaddr_un {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard !bytes.isEmpty, bytes.count < capacity, !bytes.contains(0) else {
            throw BrokerError("\(path): a Unix socket path is 1 to \(capacity - 1) bytes", errno: ENAMETOOLONG)
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
        }
        return address
    }

    /// Whether something accepts connections at `address`.
    static func isListening(_ address: inout sockaddr_un) -> Bool {
        let probe = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard probe >= 0 else { return false }
        defer { Glibc.close(probe) }
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(probe, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        } == 0
    }

    /// The path a socket is bound to, nil for an unnamed or abstract one.
    static func boundPath(_ fd: Int32) -> String? {
        var address = sockaddr_un()
        var length = socklen_t(MemoryLayout<sockaddr_un>.size)
        let got = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard got == 0 else { return nil }
        let path = withUnsafeBytes(of: &address.sun_path) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        return path.isEmpty ? nil : path
    }
}
