#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Logging
import NVMeBroker
import NVMeGate
import NVMeTargets

/// `nvmegate serve`: the broker. Owns a target and serves its gate on a Unix socket, so
/// that processes that may not open the device reach it through the policy.
struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve a target behind a policy on a Unix socket (the broker).",
        discussion: """
            Each connection's caller is who the kernel says connected (SO_PEERCRED: uid, gid, pid; \
            supplementary groups and effective capabilities from /proc/PID/status, none when it cannot \
            be read): nothing a client sends names it. Requests are ioctl-shaped \
            (Sources/NVMeBroker/WireFormat.md); clients are the C ABI's "unix:PATH" target and the \
            preload library.

            The socket: --socket PATH is created with --socket-mode (0660) and --socket-group (this \
            process's group by default), so only the owner and the group's members can connect; the \
            directory must let them reach it. A stale socket file (no broker behind it) is replaced; a \
            live one or another kind of file is an error. Under systemd socket activation (LISTEN_FDS) \
            the socket the .socket unit made is used instead, with its SocketMode= and SocketGroup= \
            (Sources/NVMeBroker/systemd/).

            Signals: SIGHUP reloads --policy (a file that does not load is logged with its file, line \
            and key, and the policy in force stays); SIGTERM and SIGINT stop accepting, let requests in \
            flight finish and reply, close every connection and exit 0. Logs go to standard error; one \
            line on standard output says when the broker listens.
            """)

    @Option(help: ArgumentHelp("The policy every command is decided by (TOML), reloaded on SIGHUP. Default: the built-in kernel-compatible policy.",
                               valueName: "file"))
    var policy: String?

    @Option(help: ArgumentHelp(
        "The target the broker owns: \"emulated\" (in memory), \"emulated:DIR\" (kept in DIR), \"loopback\", or a device path (/dev/nvme0, /dev/ng0n1).",
        valueName: "target"))
    var target: String

    @Option(help: ArgumentHelp("The Unix socket to create and listen on (not needed under socket activation).", valueName: "path"))
    var socket: String?

    @Option(name: .customLong("socket-mode"), help: ArgumentHelp("The socket file's permissions, in octal.", valueName: "mode"))
    var socketMode = SocketMode(0o660)

    @Option(name: .customLong("socket-group"), help: ArgumentHelp(
        "The socket file's group (a name or a gid): its members may connect. Default: this process's group.", valueName: "group"))
    var socketGroup: String?

    @Option(name: .customLong("max-connections"), help: ArgumentHelp("Connections served at once; one more is answered busy.", valueName: "n"))
    var maxConnections = 256

    @Option(name: .customLong("max-connections-per-uid"), help: ArgumentHelp("Connections served at once for one uid.", valueName: "n"))
    var maxConnectionsPerUID = 64

    @Option(name: .customLong("max-handles-per-connection"), help: ArgumentHelp("Handles one connection may hold open; one more OPEN fails with EMFILE.",
                                                                                 valueName: "n"))
    var maxHandlesPerConnection = 16

    @Option(name: .customLong("io-timeout"), help: ArgumentHelp(
        "How long a frame may take to arrive once it has started, and a reply to be taken: seconds, or with ms, s, m (500ms). Default: 5 s.",
        valueName: "time"))
    var ioTimeout: RunTime?

    @Option(help: ArgumentHelp(
        "For a real device: the Commands Supported and Effects log to decide with when Linux refuses this process the device's own: a raw 4096-byte page.",
        valueName: "file"))
    var effectsLog: String?

    @Option(help: ArgumentHelp(
        "Append an audit line (one JSON object) to this file for every command refused, passed by privilege, or audited by the policy.",
        valueName: "file"))
    var audit: String?

    func validate() throws {
        guard maxConnections > 0, maxConnectionsPerUID > 0, maxHandlesPerConnection > 0 else {
            throw ValidationError("--max-connections, --max-connections-per-uid and --max-handles-per-connection must be at least 1")
        }
    }

    func run() throws {
        try reportingFailures { try serve() }
    }

    private func serve() throws {
        // Replies go out with MSG_NOSIGNAL; this covers any other write to a closed pipe.
        signal(SIGPIPE, SIG_IGN)
        // Blocked before any thread starts, so every thread inherits the mask and the
        // signals wait for sigwait below; their default action (an ignored one, as nohup or a
        // shell's background job would leave, would discard them) never runs while blocked.
        var signals = sigset_t()
        sigemptyset(&signals)
        for s in [SIGHUP, SIGTERM, SIGINT] {
            sigaddset(&signals, s)
            signal(s, SIG_DFL)
        }
        pthread_sigmask(SIG_BLOCK, &signals, nil)

        let logger = Logger(label: "nvmegate.serve") { StreamLogHandler.standardError(label: $0) }
        var loaded = Policy.kernel
        if let policy { loaded = try Policy.load(path: policy) }
        let fallbackLog = try loadEffectsLogs(effectsLog)[.nvm]
        let opened: Target.Opened
        do { opened = try Target.attach(target, effectsLog: fallbackLog) } catch { throw CLIError(error.description) }
        var auditLogger: Logger?
        if let audit {
            let handler: JSONLinesAuditHandler
            do throws(AuditLogError) { handler = try JSONLinesAuditHandler(path: audit) } catch { throw CLIError(error.description) }
            auditLogger = Logger(label: "nvmegate.audit") { _ in handler }
        }
        let limits = BrokerConfiguration(maxConnections: maxConnections, maxConnectionsPerUID: maxConnectionsPerUID,
                                         maxHandlesPerConnection: maxHandlesPerConnection,
                                         ioTimeout: ioTimeout.map { .nanoseconds(Int64(clamping: $0.nanoseconds)) } ?? .seconds(5))
        let gate = Gate(controller: opened.controller, policy: loaded, controllerNumber: opened.controllerNumber,
                        handleCapacity: limits.gateHandleCapacity, audit: auditLogger)
        let broker: Broker
        let listener: BrokerListener
        do throws(BrokerError) {
            broker = try Broker(gate: gate, policyFile: policy, configuration: limits, logger: logger)
            if let inherited = try BrokerListener.fromSystemd() {
                listener = inherited
            } else {
                guard let socket else { throw BrokerError("--socket PATH is needed (no socket was passed by systemd)") }
                listener = try BrokerListener.bind(path: socket, mode: socketMode.mode, group: try socketGroup.map(Self.groupID))
            }
            try broker.start(on: listener)
        } catch {
            throw CLIError(error.description)
        }
        let name = policy.map { "\($0), \"\(loaded.name)\"" } ?? "built-in \"\(loaded.name)\""
        print("nvmegate serve: listening on \(listener.path ?? "the socket systemd passed") (policy \(name), target \(target); max_transfer \(broker.maxTransfer))")
        fflush(nil)

        var received: Int32 = 0
        while sigwait(&signals, &received) == 0 {
            if received == SIGHUP {
                try? broker.reloadPolicy()
                continue
            }
            logger.notice("signal \(received == SIGTERM ? "SIGTERM" : "SIGINT"): shutting down")
            break
        }
        broker.shutdown()
        broker.waitUntilStopped()
        logger.notice("stopped")
    }

    /// The gid `group` names: a number, or a group name.
    static func groupID(_ group: String) throws(BrokerError) -> gid_t {
        if let number = gid_t(group) { return number }
        guard let entry = getgrnam(group) else { throw BrokerError("--socket-group \(group): no such group", errno: ENOENT) }
        return entry.pointee.gr_gid
    }
}

/// `--socket-mode`: permission bits in octal ("0660", "660").
struct SocketMode: ExpressibleByArgument {
    var mode: mode_t
    init(_ mode: mode_t) { self.mode = mode }
    init?(argument: String) {
        guard let value = mode_t(argument.hasPrefix("0o") ? String(argument.dropFirst(2)) : argument, radix: 8),
              value <= 0o777 else { return nil }
        mode = value
    }
    var defaultValueDescription: String { "0" + String(mode, radix: 8) }
}

/// `nvmegate metrics --socket PATH`: the broker's counters in Prometheus's text format, for a
/// node_exporter textfile or a scrape (root and the broker's user only).
struct MetricsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "metrics",
        abstract: "Print a broker's counters in Prometheus's text format.",
        discussion: """
            For node_exporter's textfile collector, write to a temporary file and rename it: \
            nvmegate metrics --socket /run/nvmegate.sock > dir/nvmegate.prom.$$ && mv dir/nvmegate.prom.$$ dir/nvmegate.prom
            """)

    @Option(help: ArgumentHelp("The broker's socket.", valueName: "path"))
    var socket: String

    func run() throws {
        try reportingFailures {
            let text: String
            do throws(BrokerError) { text = try requestBrokerMetrics(socketPath: socket) } catch { throw CLIError(error.description) }
            print(text, terminator: "")
        }
    }
}
