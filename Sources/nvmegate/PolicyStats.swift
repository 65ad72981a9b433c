import ArgumentParser

/// `nvmegate policy stats`: counts an audit trail (the JSON lines `--audit FILE` and the
/// library's `JSONLinesAuditHandler` write) by reason, tenant and command, so a person can see
/// what a policy refused, and for whom, without grepping.
struct PolicyStats: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats",
        abstract: "Count an audit trail (JSON lines) by reason, tenant and command.",
        discussion: """
            Reads the audit events written by --audit FILE (or JSONLinesAuditHandler), one JSON \
            object a line, from FILE or standard input. Lines that are not audit events are \
            counted and reported on standard error, and skipped.
            """)

    @Argument(help: ArgumentHelp("An audit file; standard input when omitted.", valueName: "file"))
    var file: String?

    @Option(name: [.customShort("o"), .customLong("output-format")],
            help: ArgumentHelp("Output format: normal or json.", valueName: "fmt"))
    var outputFormat: ExplainFormat = .normal

    func run() throws {
        try reportingFailures {
            var tally = AuditTally()
            if let file {
                let bytes = try readFile(file)
                bytes.withUnsafeBufferPointer { all in
                    for line in all.split(separator: 0x0A, omittingEmptySubsequences: true) {
                        tally.add(UnsafeBufferPointer(rebasing: line))
                    }
                }
            } else {
                var input = StandardInputLines()
                try input.forEach { line in if !line.isEmpty { tally.add(line) } }
            }
            if tally.skipped > 0 {
                printError(tally.skipped == 1
                    ? "line \(tally.firstSkipped) is not an audit event; skipped"
                    : "\(tally.skipped) lines are not audit events (the first: line \(tally.firstSkipped)); skipped")
            }
            try printOutput(outputFormat == .json ? tally.json.rendered : tally.text)
        }
    }
}

/// Counts of audit events.
struct AuditTally {
    /// Per reason code: its errno and count.
    var reasons: [String: (errno: Int, count: Int)] = [:]
    /// Per tenant ("" for callers matching none): per reason code, the count.
    var tenants: [String: [String: Int]] = [:]
    var commands: [String: Int] = [:]
    var events = 0
    var skipped = 0
    var firstSkipped = 0
    private var lineNumber = 0

    /// Counts one line, or notes it as skipped when it is not an audit event.
    mutating func add(_ line: UnsafeBufferPointer<UInt8>) {
        lineNumber += 1
        guard case .object(let members)? = try? JSONReader.parse(line),
              case .string(let reason)? = members.first(where: { $0.key == "reason" })?.value else {
            skipped += 1
            if firstSkipped == 0 { firstSkipped = lineNumber }
            return
        }
        func string(_ key: String) -> String? {
            if case .string(let s)? = members.first(where: { $0.key == key })?.value { return s }
            return nil
        }
        var errno = 0
        if case .number(let n)? = members.first(where: { $0.key == "errno" })?.value { errno = Int(n) ?? 0 }
        events += 1
        reasons[reason, default: (errno, 0)].count += 1
        tenants[string("tenant") ?? "", default: [:]][reason, default: 0] += 1
        if let command = string("command") { commands[command, default: 0] += 1 }
    }

    /// Reasons by count, most first, then by code.
    private var reasonOrder: [(String, (errno: Int, count: Int))] {
        reasons.sorted { $0.value.count != $1.value.count ? $0.value.count > $1.value.count : $0.key < $1.key }
    }

    /// A table per reason, per tenant and per command.
    var text: String {
        var out = "\(events) audit event\(events == 1 ? "" : "s")\n\nreason                              errno    count\n"
        for (code, value) in reasonOrder {
            out += pad(code, 36) + pad(String(value.errno), 5, left: true) + pad(String(value.count), 9, left: true) + "\n"
        }
        out += "\ntenant               reason                              count\n"
        for tenant in tenants.keys.sorted() {
            for (code, count) in tenants[tenant]!.sorted(by: { $0.key < $1.key }) {
                out += pad(tenant.isEmpty ? "(none)" : tenant, 21) + pad(code, 36) + pad(String(count), 5, left: true) + "\n"
            }
        }
        out += "\ncommand                                       count\n"
        for (command, count) in commands.sorted(by: { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }) {
            out += pad(command, 46) + pad(String(count), 5, left: true) + "\n"
        }
        return out
    }

    var json: JSONOutput {
        .object([
            ("events", .number(events)),
            ("reasons", .array(reasonOrder.map { code, value in
                .object([("reason", .string(code)), ("errno", .number(value.errno)), ("count", .number(value.count))])
            })),
            ("tenants", .object(tenants.keys.sorted().map { tenant in
                (tenant, .object(tenants[tenant]!.sorted(by: { $0.key < $1.key }).map { ($0.key, .number($0.value)) }))
            })),
            ("commands", .object(commands.sorted(by: { $0.key < $1.key }).map { ($0.key, .number($0.value)) })),
        ])
    }

    private func pad(_ text: String, _ width: Int, left: Bool = false) -> String {
        let fill = String(repeating: " ", count: max(1, width - text.count))
        return left ? fill + text : text + fill
    }
}
