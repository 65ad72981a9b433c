import Foundation
@testable import NVMeBroker
import NVMeGate
import Testing

/// The broker reads a peer's groups and capabilities from /proc by the PID the kernel gave
/// at connect(2). Tests/CABI/pid_reuse.c stages what could go wrong: the peer exits, and
/// another process of the same user is given its PID, with other groups.
@Suite("A peer's PID reused")
struct PeerPIDReuseTests {
    @Test("a peer that connected and exited, its PID given to another process: nothing of that process is lent")
    func reusedPID() throws {
        let program = try CProgram("pid_reuse.c")
        let scratch = try CLIScratchDirectory()
        let path = scratch.path("peer.sock")
        let listener = try BrokerListener.bind(path: path).fd
        defer { close(listener) }

        let helper = Process()
        helper.executableURL = URL(fileURLWithPath: program.path)
        helper.arguments = [path]
        let input = Pipe(), output = Pipe()
        helper.standardInput = input
        helper.standardOutput = output
        try helper.run()
        var line = Data()
        while !line.contains(UInt8(ascii: "\n")) {
            let more = output.fileHandleForReading.availableData
            if more.isEmpty { break }
            line.append(more)
        }
        let pids = String(decoding: line, as: UTF8.self).split(whereSeparator: \.isWhitespace).compactMap { Int32($0) }
        try #require(pids.count == 2, "pid_reuse printed \(String(decoding: line, as: UTF8.self))")

        let connection = accept(listener, nil, nil)
        try #require(connection >= 0)
        defer { close(connection) }
        let peer = try #require(PeerCredentials(socket: connection))
        #expect(peer.pid == pids[0])
        let fromProc = Caller.identify(peer)
        let pinned = Caller.identify(peer, socket: connection)
        try input.fileHandleForWriting.close()
        helper.waitUntilExit()

        let reused = pids[1] != 0
        if reused {
            // What /proc/PID/status alone says now is the second process's: the reuse is real.
            #expect(fromProc.groups == [4242])
        }
        // Held by a pidfd, the peer is known to be gone: its uid and gid, no groups, no
        // capabilities, whether or not its PID went to another process.
        let process = PeerProcess(socket: connection)
        if case .pidfd(let pidfd) = process { close(pidfd) }
        let kernelHasPidfd = process != .unsupported
        if kernelHasPidfd {
            #expect(pinned == Caller(uid: peer.uid, gid: peer.gid))
        } else {
            // Before Linux 6.5 there is nothing to hold the process by.
            #expect(pinned == fromProc)
        }
        print("pid-reuse: peer PID \(pids[0]), \(reused ? "given to another process" : "not reused (not root?)"); "
              + "SO_PEERPIDFD \(kernelHasPidfd ? "held" : "not in this kernel"); from /proc: groups \(fromProc.groups), "
              + "held: groups \(pinned.groups)")
    }

    @Test("a live peer: the same caller with or without the pidfd")
    func livePeer() throws {
        var pair: [Int32] = [-1, -1]
        try #require(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &pair) == 0)
        defer { close(pair[0]); close(pair[1]) }
        let peer = try #require(PeerCredentials(socket: pair[0]))
        #expect(peer.pid == getpid())
        #expect(Caller.identify(peer, socket: pair[0]) == Caller.identify(peer))
        #expect(Caller.identify(peer, socket: pair[0]).capabilities == Caller.identify(peer).capabilities)
    }
}
