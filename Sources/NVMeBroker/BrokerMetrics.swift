import NVMeGate
import Prometheus

/// The broker's counters, in Prometheus's text exposition format (0.0.4) on a METRICS
/// request (`nvmegate metrics --socket PATH`):
///
/// - `nvmegate_connections_accepted_total`, `nvmegate_connections_open`, and
///   `nvmegate_connections_refused_total{limit}` (`total`, `per-uid`: answered `busy`);
/// - `nvmegate_requests_total{type}`: frames served, by request type;
/// - `nvmegate_wire_errors_total{error}`: the wire errors replied (`unsupported-version`,
///   `unknown-type`, `malformed`, `too-large`) and connections dropped mid-frame
///   (`frame-timeout`, `truncated`) or mid-reply (`reply-timeout`);
/// - `nvmegate_commands_total{tenant,outcome}`: IOCTL requests by the tenant the caller
///   matches (empty for the default rules) and outcome: `executed` (the gate let it through:
///   0, an NVMe status, an NSID), `refused` (EACCES) or `failed` (another errno);
/// - `nvmegate_gate_decisions_total{reason}`: the gate's own count of each reason code it
///   recorded (`Gate.count(of:)`): refusals, `privileged-bypass`, `allowed-audited`;
/// - `nvmegate_command_duration_seconds`: a histogram of IOCTL service time, from the
///   whole request received to the reply ready (buffers, the gate, the controller);
/// - `nvmegate_policy_reloads_total{result}`: `ok` or `failed`.
final class BrokerMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    let accepted: Counter
    let open: Gauge
    let refusedTotal: Counter
    let refusedPerUID: Counter
    let duration: DurationHistogram
    let reloadsOK: Counter
    let reloadsFailed: Counter
    /// By `FrameType` raw value - 1.
    let requests: [Counter]
    /// By `WireError` raw value - 1, `busy` left out (a refused connection is counted by its limit).
    let wireErrors: [Counter]
    let frameTimeouts: Counter
    let truncated: Counter
    let replyTimeouts: Counter
    /// What the gate had counted for each reason when the counters were last brought up to date.
    let reported = Lock<[UInt64]>(Array(repeating: 0, count: Reason.allCases.count))

    static var commands: MetricNameDescriptor {
        MetricNameDescriptor(namespace: "nvmegate", metricName: "commands", unitName: "total",
                             helpText: "IOCTL requests by tenant and outcome: executed, refused (EACCES), failed (another errno).")
    }
    static var gateDecisions: MetricNameDescriptor {
        MetricNameDescriptor(namespace: "nvmegate", metricName: "gate_decisions", unitName: "total",
                             helpText: "Commands the gate refused, passed by privilege or audited, by reason code.")
    }

    init() {
        let registry = self.registry
        func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
            MetricNameDescriptor(namespace: "nvmegate", metricName: metric, unitName: unit, helpText: help)
        }
        accepted = registry.makeCounter(descriptor: name("connections_accepted", "total", "Connections accepted and served."))
        open = registry.makeGauge(descriptor: name("connections_open", "", "Connections being served."))
        let refused = name("connections_refused", "total", "Connections answered busy and closed, by the limit they were over.")
        refusedTotal = registry.makeCounter(descriptor: refused, labels: [("limit", "total")])
        refusedPerUID = registry.makeCounter(descriptor: refused, labels: [("limit", "per-uid")])
        let served = name("requests", "total", "Request frames served, by type.")
        requests = FrameType.allCases.map { registry.makeCounter(descriptor: served, labels: [("type", $0.name)]) }
        let wire = name("wire_errors", "total",
                        "Wire errors replied, and connections dropped mid-frame (frame-timeout, truncated) or mid-reply (reply-timeout).")
        wireErrors = WireError.allCases.filter { $0 != .busy }.map { registry.makeCounter(descriptor: wire, labels: [("error", $0.name)]) }
        frameTimeouts = registry.makeCounter(descriptor: wire, labels: [("error", "frame-timeout")])
        truncated = registry.makeCounter(descriptor: wire, labels: [("error", "truncated")])
        replyTimeouts = registry.makeCounter(descriptor: wire, labels: [("error", "reply-timeout")])
        duration = registry.makeDurationHistogram(
            descriptor: name("command_duration", "seconds", "IOCTL service time: from the request received to the reply ready."),
            buckets: [.microseconds(10), .microseconds(25), .microseconds(50), .microseconds(100), .microseconds(250),
                      .microseconds(500), .milliseconds(1), .microseconds(2500), .milliseconds(5), .milliseconds(10),
                      .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .seconds(1), .seconds(5)])
        let reloads = name("policy_reloads", "total", "Policy reloads (SIGHUP), by result; a failed one leaves the policy in force.")
        reloadsOK = registry.makeCounter(descriptor: reloads, labels: [("result", "ok")])
        reloadsFailed = registry.makeCounter(descriptor: reloads, labels: [("result", "failed")])
    }

    /// The counters of IOCTL outcomes for `tenant` ("" for callers that match none).
    func commandCounters(tenant: String) -> CommandCounters {
        func counter(_ outcome: String) -> Counter {
            registry.makeCounter(descriptor: Self.commands, labels: [("tenant", tenant), ("outcome", outcome)])
        }
        return CommandCounters(executed: counter("executed"), refused: counter("refused"), failed: counter("failed"))
    }

    /// Counts one wire error replied (`busy` is counted by the limit instead).
    func count(_ error: WireError) {
        let index = Int(error.rawValue) - 1
        if index < wireErrors.count { wireErrors[index].increment() }
    }

    /// Counts one request frame served.
    func count(_ type: FrameType) {
        requests[Int(type.rawValue) - 1].increment()
    }

    /// Every counter, `gate`'s reason counts brought up to date first, as Prometheus text.
    func text(gate: Gate) -> String {
        reported.withLock { last in
            for reason in Reason.allCases {
                let now = gate.count(of: reason), index = Int(reason.rawValue)
                guard now > last[index] else { continue }
                registry.makeCounter(descriptor: Self.gateDecisions, labels: [("reason", reason.code)])
                    .increment(by: Int64(clamping: now - last[index]))
                last[index] = now
            }
        }
        return registry.emitToString()
    }
}

/// One tenant's IOCTL outcome counters.
struct CommandCounters {
    let executed: Counter
    let refused: Counter
    let failed: Counter
}
