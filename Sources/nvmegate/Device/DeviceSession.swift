#if canImport(Glibc)
import Glibc
#endif
import NVMeGate
import NVMeSpec
import NVMeTargets

/// A device command's failure, reported as nvme-cli reports it ("NVMe status: …(0x4080)",
/// "id-ctrl: Permission denied: …") on standard error, with exit status 1.
struct DeviceCommandError: Error, CustomStringConvertible {
    var description: String
    /// The controller's status when it failed the command; nil for host-side failures.
    var status: NVMeStatus?
    init(_ description: String, status: NVMeStatus? = nil) { self.description = description; self.status = status }
}

/// One open node on a target, behind the gate: every command a device command sends goes
/// through `Gate.ioctl` as nvme-cli's would go through `ioctl(2)`, so the policy decides it.
final class DeviceSession {
    let gate: Gate
    let handle: Int32
    let node: NodeName
    /// The subcommand's name, for messages ("id-ctrl: Permission denied").
    let commandName: String
    /// Who the commands are sent as (another handle opened for them, as `bench` opens one
    /// per job, is opened as this caller too).
    let caller: Caller

    /// Opens `options.device` on its target under its policy, as its caller, read-write when
    /// `writable` (commands that change data or state), read-only otherwise.
    convenience init(_ options: DeviceOptions, writable: Bool, commandName: String) throws(CLIError) {
        try self.init(device: options.device, options.access, writable: writable, commandName: commandName)
    }

    /// Opens `device` on the target `options` name, under its policy, as its caller.
    init(device: String, _ options: AccessOptions, writable: Bool, commandName: String) throws(CLIError) {
        self.commandName = commandName
        let spec = options.targetSpec(for: device)
        // The device itself is the target: the node is the one the path turns out to be.
        let isDevice = spec == device
        let named = NodeName(device)
        guard isDevice || named != nil else {
            throw CLIError("\(device): not an NVMe node name: expected nvmeX, nvmeXnY, ngXnY or nvmeXnYpZ, with or without /dev/")
        }
        var policy = Policy.kernel
        if let path = options.policy {
            do { policy = try Policy.load(path: path) } catch { throw CLIError(error.description) }
        }
        caller = try options.resolvedCaller()
        let fallbackLog = try options.fallbackEffectsLog()
        let target: Target.Opened
        do { target = try Target.attach(spec, controllerNumber: named?.controller ?? 0, effectsLog: fallbackLog) } catch {
            throw CLIError(error.description)
        }
        guard let node = isDevice ? target.node : named else {
            throw CLIError("\(device): not an NVMe node name: expected nvmeX, nvmeXnY, ngXnY or nvmeXnYpZ, with or without /dev/")
        }
        self.node = node
        gate = Gate(controller: target.controller, policy: policy, controllerNumber: target.controllerNumber,
                    audit: try options.auditLogger())
        let opened = gate.open(node: node.description, writable: writable, caller: caller)
        guard opened >= 0 else {
            let nodes = Self.nodeNames(target.controller, number: target.controllerNumber).joined(separator: ", ")
            throw CLIError("\(device): \(String(cString: strerror(-opened))) on target \"\(spec)\" (its nodes: \(nodes))")
        }
        handle = opened
    }

    deinit { _ = gate.close(handle) }

    /// The node names controller `number` offers: nvmeX, then nvmeXnN and ngXnN for each namespace.
    static func nodeNames(_ controller: any Controller, number: UInt32) -> [String] {
        var names = ["nvme\(number)"]
        for ns in controller.namespaces() {
            names.append("nvme\(number)n\(ns.nsid)")
            names.append("ng\(number)n\(ns.nsid)")
            for p in ns.partitions.indices { names.append("nvme\(number)n\(ns.nsid)p\(p + 1)") }
        }
        return names
    }

    /// NVME_IOCTL_ID: the namespace the node is, as nvme-cli asks when no --namespace-id is given.
    func namespaceID() throws(DeviceCommandError) -> UInt32 {
        switch gate.ioctl(handle, request: IoctlRequest.id.rawValue, argument: nil) {
        case .returned(let nsid): return UInt32(bitPattern: nsid)
        case .failed(let code): throw DeviceCommandError("get-namespace-id: \(String(cString: strerror(code)))")
        }
    }

    /// The namespace to address: `--namespace-id` when given and not 0, else (as nvme-cli)
    /// the node's own (NVME_IOCTL_ID).
    func namespaceID(_ option: CommandNumber<UInt32>?) throws(DeviceCommandError) -> UInt32 {
        if let given = option?.value, given != 0 { return given }
        return try namespaceID()
    }

    /// Sends `command` with NVME_IOCTL_ADMIN_CMD or NVME_IOCTL_IO_CMD, as nvme-cli does, with
    /// `data` and `metadata` as the buffers (their lengths are the transfer lengths). Returns
    /// the completion's CDW0; throws the NVMe status or the errno as nvme-cli words them.
    @discardableResult
    func submit(_ command: SubmissionQueueEntry, queue: Queue, data: inout [UInt8],
                metadata: inout [UInt8]) throws(DeviceCommandError) -> UInt32 {
        var request = [UInt8](repeating: 0, count: PassthruCommand.size32)
        let outcome = data.withUnsafeMutableBytes { dataBuffer in
            metadata.withUnsafeMutableBytes { metadataBuffer in
                request.withUnsafeMutableBytes { raw -> IoctlOutcome in
                    func put32(_ offset: Int, _ value: UInt32) { raw.storeBytes(of: value.littleEndian, toByteOffset: offset, as: UInt32.self) }
                    func put64(_ offset: Int, _ value: UInt64) { raw.storeBytes(of: value.littleEndian, toByteOffset: offset, as: UInt64.self) }
                    raw[0] = command.opcode
                    raw[1] = command.flags
                    put32(4, command.nsid)
                    put32(8, command.dwords[2])
                    put32(12, command.dwords[3])
                    if metadataBuffer.count > 0 { put64(16, UInt64(UInt(bitPattern: metadataBuffer.baseAddress))) }
                    if dataBuffer.count > 0 { put64(24, UInt64(UInt(bitPattern: dataBuffer.baseAddress))) }
                    put32(32, UInt32(metadataBuffer.count))
                    put32(36, UInt32(dataBuffer.count))
                    for i in 0..<6 { put32(40 + 4 * i, command[cdw: i]) }
                    let request: IoctlRequest = queue == .admin ? .adminCommand : .ioCommand
                    return gate.ioctl(handle, request: request.rawValue, argument: raw.baseAddress)
                }
            }
        }
        switch outcome {
        case .returned(0):
            return request.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 68, as: UInt32.self).littleEndian }
        case .returned(let status):
            let failure = NVMeStatus(rawValue: UInt16(truncatingIfNeeded: status))
            throw DeviceCommandError("NVMe status: " + failure.nvmeCLIDescription, status: failure)
        case .failed(let code):
            var message = "\(commandName): \(String(cString: strerror(code)))"
            if let (reason, sentence) = command.withEntry({ gate.explain(handle, queue: queue, command: $0) }),
               !reason.isAllowed {
                message += ": \(sentence) [\(reason.code)]"
            }
            throw DeviceCommandError(message)
        }
    }

    /// `submit` with a data buffer and no metadata.
    @discardableResult
    func submit(_ command: SubmissionQueueEntry, queue: Queue, data: inout [UInt8]) throws(DeviceCommandError) -> UInt32 {
        var none: [UInt8] = []
        return try submit(command, queue: queue, data: &data, metadata: &none)
    }

    /// `submit` without buffers.
    @discardableResult
    func submit(_ command: SubmissionQueueEntry, queue: Queue) throws(DeviceCommandError) -> UInt32 {
        var none: [UInt8] = []
        var noMetadata: [UInt8] = []
        return try submit(command, queue: queue, data: &none, metadata: &noMetadata)
    }
}
