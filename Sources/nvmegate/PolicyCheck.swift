import ArgumentParser
import NVMeGate

/// `nvmegate policy check --jsonl`: decides one JSON request a line from standard input and
/// writes one verdict a line to standard output, in order.
struct PolicyCheck: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Decide passthrough requests read as JSON lines; print one verdict a line.",
        discussion: """
            Each input line is one JSON object:
              {"ioctl":"admin"|"io"|"admin64"|"io64",
               "handle":{"kind":"controller"|"namespace"|"generic"|"partition","nsid":1,"write":true,
                         "partition":{"start":2048,"blocks":4096}},
               "caller":{"uid":1000,"gid":1000,"caps":["CAP_SYS_ADMIN"],"name":"db"},
               "cmd":{"opcode":2,"flags":0,"nsid":1,"cdw2":0,"cdw3":0,"cdw10":0,...,"cdw15":0,
                      "data_len":4096,"metadata_len":0}}
            Each output line is the verdict:
              {"allow":true|false,"errno":0|13|22|25,"reason":"<code>","detail":"<sentence>"}
            A line that cannot be read gets reason "malformed-input" (errno 22) and the run goes on.
            The caller (uid and gid 1000 by default; "name" for tenants that name callers) is \
            decided by the first tenant of the policy it matches. A partition handle without \
            "partition" (or --partition) is refused as Linux refuses it, unless the policy lets \
            partitions reach the whole namespace. Dataset Management and Copy of a caller \
            confined to some blocks get "range-list-unchecked" (EACCES), as the decision gives \
            it: only the ioctl path, with the data buffer, checks their ranges.
            """)

    @OptionGroup var source: PolicySource
    @OptionGroup var device: DeviceModel

    @Flag(help: "Read JSON lines from standard input and write JSON lines (the only mode).")
    var jsonl = false

    func validate() throws {
        guard jsonl else { throw ValidationError("policy check reads and writes JSON lines: pass --jsonl") }
    }

    func run() throws {
        try reportingFailures {
            let simulator = PassthruSimulator(compiled: try source.compile(), device: device)
            var input = StandardInputLines()
            var output = StandardOutputBuffer()
            var lineNumber = 0
            var writeFailure: CLIError?
            try input.forEach { line in
                lineNumber += 1
                guard writeFailure == nil else { return }
                Self.appendVerdict(for: line, number: lineNumber, simulator: simulator, to: &output.bytes)
                do throws(CLIError) { try output.writeIfFull() } catch { writeFailure = error }
            }
            if let writeFailure { throw writeFailure }
            try output.flush()
        }
    }

    /// Decides one input line and appends its verdict line to `out`.
    static func appendVerdict(for line: UnsafeBufferPointer<UInt8>, number: Int, simulator: PassthruSimulator,
                              to out: inout [UInt8]) {
        let json: JSONValue
        do throws(JSONSyntaxError) {
            json = try JSONReader.parse(line)
        } catch {
            appendMalformed("line \(number): not JSON: \(error.message) (column \(error.column))", to: &out)
            return
        }
        let request: PassthruRequest
        do throws(InputError) {
            request = try CheckInput.request(from: json)
        } catch {
            appendMalformed("line \(number): \(error.message)", to: &out)
            return
        }
        let verdict = simulator.decide(request)
        let reason = verdict.reason
        out.appendASCII(reason.isAllowed ? #"{"allow":true,"errno":"# : #"{"allow":false,"errno":"#)
        out.appendDecimal(reason.errno)
        out.appendASCII(#","reason":"#)
        out.appendJSONString(reason.code)
        out.appendASCII(#","detail":"#)
        out.appendJSONString(reason.sentence(simulator.subject(request, verdict)))
        out.appendASCII("}\n")
    }

    static func appendMalformed(_ detail: String, to out: inout [UInt8]) {
        out.appendASCII(#"{"allow":false,"errno":22,"reason":"malformed-input","detail":"#)
        out.appendJSONString(detail)
        out.appendASCII("}\n")
    }
}
