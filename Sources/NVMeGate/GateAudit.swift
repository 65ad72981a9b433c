import Atomics
import Logging
import NVMeSpec

/// Counting and auditing decisions: off the allowed path, which neither counts nor logs.
extension Gate {
    /// How many commands were refused (or passed by privilege, or audited) for `reason` since
    /// the gate was made.
    public func count(of reason: Reason) -> UInt64 {
        UnsafeAtomic<UInt64>(at: reasonCounts + Int(reason.rawValue)).load(ordering: .relaxed)
    }

    /// Every reason counted so far with its count, in `Reason` order, zeros left out: what a
    /// statistics report prints.
    public func counters() -> [(Reason, UInt64)] {
        Reason.allCases.compactMap { reason in
            let n = count(of: reason)
            return n == 0 ? nil : (reason, n)
        }
    }

    /// What a decision about `opcode` on `queue`, naming `nsid`, is about, for its sentence.
    func subject(queue: Queue, opcode: UInt8, nsid: UInt32, cdw10: UInt32 = 0, state: HandleState,
                 policy: CompiledPolicy) -> DecisionSubject {
        let tenant = policy.tenant(at: state.context.tenant)
        var subject = DecisionSubject(
            command: OpcodeTable.displayName(queue: queue, commandSet: state.context.commandSet, opcode: opcode),
            queue: queue, opcode: opcode,
            effects: policy.effects(queue: queue, commandSet: state.context.commandSet, opcode: opcode),
            nsid: nsid, handleNSID: state.context.nsid,
            capabilityNames: policy.policy.bypassCapabilities.nameList,
            permittedEffects: (tenant?.rules ?? policy.policy.defaultRules).permittedEffects)
        subject.tenant = tenant?.name
        subject.field = DecisionSubject.filteredField(queue: queue, opcode: opcode, cdw10: cdw10)
        return subject
    }

    /// Counts and audits a decision about `opcode` on `queue`, naming `nsid`, made under
    /// `deciding` (the snapshot the command was decided with; the policy in force if nil), so
    /// the event names the tenant and rules that really decided, even during a reload.
    func record(_ reason: Reason, _ state: HandleState, queue: Queue, opcode: UInt8, nsid: UInt32, cdw10: UInt32 = 0,
                deciding: CompiledPolicy? = nil) {
        record(reason, state, command: (queue, opcode, nsid), deciding: deciding, subject: {
            self.subject(queue: queue, opcode: opcode, nsid: nsid, cdw10: cdw10, state: state, policy: $0)
        })
    }

    /// Counts a refusal, bypass or audited command and, when auditing, logs it: the reason's
    /// sentence as the message, with who (uid, gid, tenant), through what (node kind), the
    /// command (name, opcode, queue, NSID; none for the reset and rescan requests) and why
    /// (reason code, errno) as metadata.
    func record(_ reason: Reason, _ state: HandleState, command: (queue: Queue, opcode: UInt8, nsid: UInt32)?,
                deciding: CompiledPolicy? = nil, subject: (CompiledPolicy) -> DecisionSubject) {
        UnsafeAtomic<UInt64>(at: reasonCounts + Int(reason.rawValue)).wrappingIncrement(ordering: .relaxed)
        guard let audit else { return }
        let s = subject(deciding ?? policy)
        var metadata: Logger.Metadata = [
            "reason": .string(reason.code), "errno": .stringConvertible(reason.errno), "command": .string(s.command),
            "uid": .stringConvertible(state.uid), "gid": .stringConvertible(state.gid),
            "node_kind": .string("\(state.context.kind)"),
        ]
        if let command {
            metadata["opcode"] = .stringConvertible(command.opcode)
            metadata["queue"] = .string(command.queue == .admin ? "admin" : "io")
            metadata["nsid"] = .stringConvertible(command.nsid)
        }
        if let tenant = s.tenant { metadata["tenant"] = .string(tenant) }
        audit.notice("\(reason.sentence(s))", metadata: metadata)
    }
}
