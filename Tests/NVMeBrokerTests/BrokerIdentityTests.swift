#if canImport(Glibc)
import Glibc
#endif
@testable import NVMeBroker
import NVMeGate
import Testing

/// Who a connection's caller is (the kernel's credentials, /proc, failing closed), and the
/// listening socket's file.
@Suite("Broker identity and socket")
struct BrokerIdentityTests {
    static let status = """
        Name:\tmonitor
        Umask:\t0022
        State:\tS (sleeping)
        Tgid:\t4242
        Pid:\t4242
        Uid:\t1000\t1000\t1000\t1000
        Gid:\t1000\t1000\t1000\t1000
        FDSize:\t64
        Groups:\t4 24 27 1000
        CapInh:\t0000000000000000
        CapPrm:\t0000000000200000
        CapEff:\t0000000000200000
        """

    let peer = PeerCredentials(pid: 4242, uid: 1000, gid: 1000)

    @Test("groups and capabilities come from the status when its uid and gid are the peer's")
    func fromStatus() throws {
        let status = try #require(ProcessStatus(parsing: Self.status))
        #expect(status.groups == [4, 24, 27, 1000])
        let caller = Caller.identify(peer, status: status, sameUserNamespace: true)
        #expect(caller == Caller(uid: 1000, gid: 1000, groups: [4, 24, 27, 1000], capabilities: .sysAdmin))
    }

    @Test("fails closed: no status, another process's status, another user namespace")
    func failsClosed() throws {
        let status = try #require(ProcessStatus(parsing: Self.status))
        #expect(Caller.identify(peer, status: nil, sameUserNamespace: true) == Caller(uid: 1000, gid: 1000))
        // The PID now names a process of another user (the peer exited and the PID was reused).
        let reused = PeerCredentials(pid: 4242, uid: 1001, gid: 1000)
        #expect(Caller.identify(reused, status: status, sameUserNamespace: true) == Caller(uid: 1001, gid: 1000))
        // Capabilities in another user namespace are not capabilities here; groups still count.
        #expect(Caller.identify(peer, status: status, sameUserNamespace: false)
                == Caller(uid: 1000, gid: 1000, groups: [4, 24, 27, 1000]))
        #expect(ProcessStatus(parsing: "Uid:\t1000\t1000\nGid:\t1\t1\t1\t1\nCapEff:\t0\n") == nil)
        #expect(ProcessStatus(parsing: Self.status.replacing("CapEff:\t0000000000200000", with: "CapEff:\tzz")) == nil)
        // A PID that names no process.
        #expect(Caller.identify(PeerCredentials(pid: 0x3FFF_FFFF, uid: 5, gid: 6)) == Caller(uid: 5, gid: 6))
    }

    @Test("this process, as the broker would identify it")
    func thisProcess() throws {
        let status = try #require(ProcessStatus.read(pid: getpid()))
        #expect(status.uids[1] == geteuid() && status.gids[1] == getegid())
        var groups = [gid_t](repeating: 0, count: 256)
        let count = Int(getgroups(Int32(groups.count), &groups))
        #expect(Set(status.groups) == Set(groups.prefix(max(count, 0))))
        let caller = Caller.identify(PeerCredentials(pid: getpid(), uid: geteuid(), gid: getegid()))
        #expect(caller.capabilities == status.effectiveCapabilities)
        #expect(caller.groups == status.groups)
    }

    @Test("a pidfd's fdinfo: the Pid line, -1 once the process is reaped, nil without one")
    func pidfdInfo() {
        #expect(PeerProcess.pid(fdinfo: "pos:\t0\nflags:\t02000002\nmnt_id:\t15\nino:\t1057\nPid:\t1234\nNSpid:\t1234\n") == 1234)
        #expect(PeerProcess.pid(fdinfo: "pos:\t0\nPid:\t-1\nNSpid:\t-1\n") == -1)
        #expect(PeerProcess.pid(fdinfo: "pos:\t0\nflags:\t02\n") == nil)
        #expect(PeerProcess.pid(fdinfo: "Pid:\tx\n") == nil)
        // This process through a socket pair: held, alive, with its own PID.
        var pair: [Int32] = [-1, -1]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &pair) == 0)
        defer { close(pair[0]); close(pair[1]) }
        switch PeerProcess(socket: pair[0]) {
        case .pidfd(let pidfd):
            #expect(PeerProcess.pid(of: pidfd) == getpid())
            close(pidfd)
        case .unsupported:
            break                                   // a kernel before 6.5
        case .gone:
            Issue.record("this process, through a socket pair, is gone")
        }
    }

    @Test("the socket file: mode and group as asked; a stale socket is replaced, a live one or another file is not")
    func socketFile() throws {
        let f = try Fixture()
        var info = stat()
        #expect(stat(f.socketPath, &info) == 0)
        #expect(info.st_mode & 0o777 == 0o660 && info.st_mode & S_IFMT == S_IFSOCK)
        #expect(throws: BrokerError.self) { try BrokerListener.bind(path: f.socketPath) }

        let stale = f.directory + "/stale.sock"
        let first = try BrokerListener.bind(path: stale, mode: 0o600, group: getegid())
        close(first.fd)                                              // a broker that died, leaving its file
        let second = try BrokerListener.bind(path: stale, mode: 0o666)
        #expect(stat(stale, &info) == 0 && info.st_mode & 0o777 == 0o666)
        close(second.fd)
        unlink(stale)

        let plain = f.directory + "/plain"
        try writeFile(plain, "not a socket")
        #expect(throws: BrokerError.self) { try BrokerListener.bind(path: plain) }
        #expect(access(plain, F_OK) == 0)
        unlink(plain)
        #expect(try BrokerListener.fromSystemd() == nil)
    }
}
