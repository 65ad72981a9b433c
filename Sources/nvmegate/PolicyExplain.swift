import ArgumentParser
import NVMeGate
import NVMeSpec

/// `nvmegate policy explain`: one command, given with nvme-cli's passthru flags, decided and
/// explained: the verdict, the rule that decided it, and the effects entry consulted.
struct PolicyExplain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "explain",
        abstract: "Explain the verdict on one passthrough command given with nvme-cli's flags.",
        discussion: """
            The command takes the flags of `nvme admin-passthru` / `nvme io-passthru` (nvme-cli 2.3), \
            numbers in decimal or 0x hex. For example, a Write through a namespace opened read-only:
              nvmegate policy explain --queue io --node nvme0n1 -o 0x01 -n 1 --cdw12 7 -l 4096
            """)

    @OptionGroup var source: PolicySource
    @OptionGroup var device: DeviceModel

    @Option(name: [.customShort("o"), .long], help: "The opcode (as nvme-cli's -o).")
    var opcode: CommandNumber<UInt8>
    @Option(name: [.customShort("n"), .customLong("namespace-id")], help: "The command's NSID.")
    var namespaceID = CommandNumber<UInt32>(0)
    @Option(name: [.customShort("f"), .long], help: "The command flags (FUSE, PSDT).")
    var flags = CommandNumber<UInt8>(0)
    @Option(name: [.customShort("2"), .long], help: "Command dword 2.")
    var cdw2 = CommandNumber<UInt32>(0)
    @Option(name: [.customShort("3"), .long], help: "Command dword 3.")
    var cdw3 = CommandNumber<UInt32>(0)
    @Option(name: [.customShort("4"), .long], help: "Command dword 10.")
    var cdw10 = CommandNumber<UInt32>(0)
    @Option(name: [.customShort("5"), .long], help: "Command dword 11.")
    var cdw11 = CommandNumber<UInt32>(0)
    @Option(name: [.customShort("6"), .long], help: "Command dword 12.")
    var cdw12 = CommandNumber<UInt32>(0)
    @Option(name: [.customShort("7"), .long], help: "Command dword 13.")
    var cdw13 = CommandNumber<UInt32>(0)
    @Option(name: [.customShort("8"), .long], help: "Command dword 14.")
    var cdw14 = CommandNumber<UInt32>(0)
    @Option(name: [.customShort("9"), .long], help: "Command dword 15.")
    var cdw15 = CommandNumber<UInt32>(0)
    @Option(name: [.customShort("l"), .customLong("data-len")],
            help: "The data buffer's length in bytes. Default: not given (the buffer length is not checked).")
    var dataLength: CommandNumber<UInt32>?
    @Option(name: [.customShort("m"), .customLong("metadata-len")], help: "The metadata buffer's length in bytes.")
    var metadataLength = CommandNumber<UInt32>(0)

    @Option(help: "The queue: admin or io. Default: admin, or the queue of --ioctl.")
    var queue: QueueName?
    @Option(help: "The ioctl request: admin, io, admin64 or io64. Default: admin or io, as --queue says.")
    var ioctl: PassthruIoctl?
    @Option(help: ArgumentHelp("The node the handle was opened on: nvme0, nvme0n1, ng0n1 or nvme0n1p1. Default: nvme0 for admin commands, nvme0n1 for I/O.",
                               valueName: "name"))
    var node: String?
    @Flag(help: "The handle was opened for writing (default: read-only).")
    var write = false
    @Option(help: "The caller's user ID.")
    var uid: UInt32 = 1000
    @Option(help: "The caller's group ID.")
    var gid: UInt32 = 1000
    @Option(help: ArgumentHelp("The caller's capabilities, comma-separated names or numbers (CAP_SYS_ADMIN,21). Default: none.",
                               valueName: "list"))
    var caps = ""
    @Option(help: ArgumentHelp("A name the caller authenticated with, for tenants matched by `callers` (as embedders name callers). Default: none.",
                               valueName: "name"))
    var callerName: String?
    @Option(help: "normal or json.")
    var outputFormat: ExplainFormat = .normal

    func validate() throws {
        if let queue, let ioctl, ioctl.queue != queue.queue {
            throw ValidationError("--ioctl \(ioctl.rawValue) goes to the \(ioctl.queue == .admin ? "admin" : "io") queue, not \(queue.rawValue)")
        }
        if let node, NodeName(node) == nil {
            throw ValidationError("--node: \"\(node)\" is not a node name such as nvme0, nvme0n1, ng0n1 or nvme0n1p1")
        }
        _ = try capabilities()
    }

    func run() throws {
        try reportingFailures {
            let simulator = PassthruSimulator(compiled: try source.compile(), device: device)
            let explanation = explain(try request(), simulator: simulator)
            print(outputFormat == .json ? explanation.json : explanation.text)
        }
    }

    /// The capabilities `--caps` lists.
    func capabilities() throws -> Capabilities {
        var set: Capabilities = []
        for item in caps.split(separator: ",") {
            let trimmed = String(item.drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
            guard let capability = Capabilities(nameOrNumber: trimmed) else {
                throw ValidationError("--caps: \"\(trimmed)\" is not a Linux capability name (CAP_SYS_ADMIN) or number (0 to 63)")
            }
            set.insert(capability)
        }
        return set
    }

    /// The ioctl named, or the one for the queue named (admin by default).
    var resolvedIoctl: PassthruIoctl { ioctl ?? (queue == .io ? .io : .admin) }

    /// The node named, or nvme0 for admin commands and nvme0n1 for I/O.
    var nodeName: NodeName {
        let io = resolvedIoctl.queue == .io
        return node.flatMap(NodeName.init) ?? NodeName(kind: io ? .namespace : .controller, controller: 0, nsid: io ? 1 : 0)
    }

    func request() throws -> PassthruRequest {
        let caller = Caller(uid: uid, gid: gid, capabilities: try capabilities(), name: callerName)
        let command = SubmissionQueueEntry(
            opcode: opcode.value, flags: flags.value, nsid: namespaceID.value, cdw2: cdw2.value, cdw3: cdw3.value,
            cdw10: cdw10.value, cdw11: cdw11.value, cdw12: cdw12.value, cdw13: cdw13.value, cdw14: cdw14.value,
            cdw15: cdw15.value)
        return PassthruRequest(
            ioctl: resolvedIoctl,
            handle: HandleContext(kind: nodeName.kind, writable: write, commandSet: .nvm, nsid: nodeName.nsid,
                                  profile: 0, capabilities: caller.capabilities),
            caller: caller, command: command, dataLength: dataLength?.value, metadataLength: metadataLength.value)
    }

    /// Decides `request` and gathers what the explanation prints.
    func explain(_ request: PassthruRequest, simulator: PassthruSimulator) -> Explanation {
        let verdict = simulator.decide(request)
        let reason = verdict.reason
        let subject = simulator.subject(request, verdict)
        let compiled = simulator.compiled
        let queue = request.ioctl.queue
        let opcode = request.command.opcode
        let commandSet = verdict.handle.commandSet

        let tenant = verdict.handle.tenant
        var rule = compiled.rule(for: reason, queue: queue, commandSet: commandSet, opcode: opcode,
                                 handleWritable: verdict.handle.writable, tenant: tenant)
        let partitionUnknown = verdict.handle.kind == .partition && verdict.handle.partition.count == 0
        if reason == .partition && partitionUnknown && simulator.rules(verdict.handle).partitions == .confined {
            let section = compiled.tenant(at: tenant).map { "[[tenant]] name = \"\($0.name)\": [tenant]" } ?? "[default]"
            rule = "\(section) partitions = \"confined\", but the partition's blocks are not known: give --partition START:BLOCKS"
        }
        if reason == .privilegedBypass {
            let alone = request.command.withEntry { compiled.policyDecision($0, queue: queue, handle: verdict.handle) }
            rule += "; without it: \(alone.code) (\(compiled.rule(for: alone, queue: queue, commandSet: commandSet, opcode: opcode, tenant: tenant)))"
        }

        var command = "\(subject.command) on the \(queue == .admin ? "admin" : "I/O") queue"
        if queue == .io { command += ", \(commandSet.name)" }
        command += ", NSID \(request.command.nsid)"
        if let field = subject.field { command += ", \(field)" }
        if request.command.flags != 0 { command += ", flags \(hexByte(request.command.flags))" }
        command += request.dataLength.map { ", data length \($0) bytes" } ?? ", data length not given"
        if request.metadataLength > 0 { command += ", metadata length \(request.metadataLength) bytes" }
        command += ", through \(request.ioctl.requestName)"

        var handle = nodeName.description
        switch nodeName.kind {
        case .controller where verdict.handle.kind == .namespace:
            handle += " (controller; \(request.ioctl.requestName) reaches its only namespace, NSID \(verdict.handle.nsid))"
        case .controller: handle += " (controller)"
        case .namespace: handle += " (namespace \(nodeName.nsid))"
        case .generic: handle += " (generic node of namespace \(nodeName.nsid))"
        case .partition:
            let blocks = verdict.handle.partition
            handle += " (partition \(nodeName.partition) of namespace \(nodeName.nsid), "
                + (blocks.count == 0 ? "blocks not given)" : "LBAs \(blocks.start)-\(blocks.start + blocks.count - 1))")
        }
        let capabilityNames = request.caller.capabilities.nameList
        handle += ", opened \(write ? "read-write" : "read-only"), uid \(request.caller.uid), gid \(request.caller.gid), "
            + (request.caller.name.map { "name \"\($0)\", " } ?? "") + "capabilities: "
            + (capabilityNames.isEmpty ? "none" : capabilityNames.joined(separator: ", "))

        return Explanation(
            reason: reason, detail: reason.sentence(subject), command: command, handle: handle,
            tenant: compiled.tenant(at: tenant)?.name, tenantText: tenantText(compiled, tenant),
            effects: subject.effects.names, effectsOrigin: source.effectsOrigin, rule: rule,
            policy: compiled.policy.name + (source.policy.map { " (\($0))" } ?? " (built in)"))
    }
}

extension PolicyExplain {
    /// The "Tenant:" line: which tenant the caller matched, by what, and what it owns; nil
    /// for a policy without tenants.
    func tenantText(_ compiled: CompiledPolicy, _ index: UInt16) -> String? {
        guard !compiled.policy.tenants.isEmpty else { return nil }
        guard let tenant = compiled.tenant(at: index) else { return "none: the caller matches no tenant, so the [default] rules apply" }
        let by: String
        if let name = callerName, tenant.callerNames.contains(name) { by = "caller name \"\(name)\"" }
        else if tenant.uids.contains(uid) { by = "uid \(uid)" }
        else { by = "gid \(gid)" }
        return "\"\(tenant.name)\" (matched by \(by)); " + CompiledPolicy.ownershipText(tenant.ownership)
    }
}

/// A queue named on the command line.
enum QueueName: String, ExpressibleByArgument, CaseIterable {
    case admin, io
    var queue: Queue { self == .admin ? .admin : .io }
}

extension PassthruIoctl: ExpressibleByArgument {}

/// How `policy explain` prints: text or JSON.
enum ExplainFormat: String, ExpressibleByArgument, CaseIterable {
    case normal, json
}
