import NVMeEmulator
import NVMeGate
import NVMeSpec

/// `policy`: the policy file parser on any text (seeded with the shipped policies). It must
/// never crash; a file it refuses gets an error naming the file and a line or a key, with a
/// line inside the file; a file it accepts parses the same twice, compiles against an
/// effects log, decides commands for every kind of caller and lints, none of which may crash.
enum PolicyTarget {
    static let log = EmulatedController.inMemory().effectsLog(for: .nvm)!
    static let probes: [SubmissionQueueEntry] = [
        SubmissionQueueEntry(opcode: 0x06, nsid: 1, cdw10: 0x00), SubmissionQueueEntry(opcode: 0x02, nsid: 2, cdw10: 0x8002),
        SubmissionQueueEntry(opcode: 0x09, nsid: 0xFFFF_FFFF, cdw10: 0x05), SubmissionQueueEntry(opcode: 0x80, nsid: 1),
        SubmissionQueueEntry(opcode: 0x01, nsid: 1, cdw10: 100, cdw12: 7), SubmissionQueueEntry(opcode: 0x09, nsid: 1),
        SubmissionQueueEntry(opcode: 0xC1, nsid: 1), SubmissionQueueEntry(opcode: 0x02, nsid: 1, cdw10: 0xFFFF_FFFF, cdw11: 0xFFFF_FFFF),
    ]

    static func run(_ data: UnsafeRawBufferPointer) {
        let text = String(decoding: data, as: UTF8.self)
        let lineCount = text.split(omittingEmptySubsequences: false) { $0 == "\n" || $0 == "\r\n" }.count
        let policy: Policy
        do {
            policy = try Policy.parse(text, file: "fuzz.toml")
        } catch {
            require(!error.message.isEmpty, "an error without a message: \(error)")
            require(error.line > 0 || !error.key.isEmpty, "an error naming neither a line nor a key: \(error)")
            require(error.line <= lineCount + 1, "an error at line \(error.line) of a \(lineCount)-line file: \(error)")
            require(error.description.hasPrefix("fuzz.toml"), "an error that does not name the file: \(error)")
            return
        }
        let again = try? Policy.parse(text, file: "fuzz.toml")
        require(again == policy, "the same text parsed twice gives two policies")
        let compiled = CompiledPolicy(policy: policy, effectsLogs: [.nvm: log],
                                      identity: ControllerIdentity(model: "nvmegate emulated controller", firmwareRevision: "1.0",
                                                                   serialNumber: "S"))
        var callers = Fixture.callers
        for tenant in policy.tenants.prefix(8) {
            callers.append(Caller(uid: tenant.uids.first ?? 9, gid: tenant.gids.first ?? 9, name: tenant.callerNames.first))
        }
        for caller in callers {
            let (profile, tenant) = compiled.assignment(for: caller)
            require(Int(tenant) <= policy.tenants.count, "tenant \(tenant) of \(policy.tenants.count)")
            for kind in [NodeKind.controller, .namespace, .partition] {
                let handle = HandleContext(kind: kind, writable: true, nsid: kind == .controller ? 0 : 1, profile: profile,
                                           tenant: tenant, partition: LBARange(start: 64, count: 64))
                for queue in [Queue.admin, .io] {
                    let decider = Decider(compiled, handle: handle, queue: queue)
                    for probe in probes {
                        let one = probe.withEntry { compiled.decide($0, queue: queue, handle: handle) }
                        let looped = probe.withEntry { decider.decide($0) }
                        require(one == looped, "CompiledPolicy.decide \(one) but Decider \(looped)")
                    }
                }
            }
        }
        _ = PolicyLinter(compiled, namespaces: Fixture.namespaces, locator: PolicyLocator(file: "fuzz.toml", text: text)).findings
    }
}
