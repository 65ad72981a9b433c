#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import NVMeSpec

/// nvme-cli's passthru flags, identical for `admin-passthru` and `io-passthru`. `-o` is the
/// opcode here, not the output format.
struct PassthruOptions: ParsableArguments {
    @Option(name: [.customShort("o"), .long], help: "The command's opcode.") var opcode: CommandNumber<UInt8>
    @Option(name: [.customShort("f"), .long], help: "Command flags (FUSE, PSDT).") var flags = CommandNumber<UInt8>(0)
    @Option(name: [.customShort("p"), .long], help: "The byte the data buffer is filled with before sending.") var prefill = CommandNumber<UInt8>(0)
    @Option(name: [.customShort("R"), .long], help: "Reserved field (CDW0 bits 15:10 in nvme-cli; sent as 0 by Linux).") var rsvd = CommandNumber<UInt16>(0)
    @Option(name: [.customShort("n"), .customLong("namespace-id")], help: "NSID.") var namespaceID = CommandNumber<UInt32>(0)
    @Option(name: [.customShort("l"), .customLong("data-len")], help: "Data length in bytes.") var dataLength = CommandNumber<UInt32>(0)
    @Option(name: [.customShort("m"), .customLong("metadata-len")], help: "Metadata length in bytes.") var metadataLength = CommandNumber<UInt32>(0)
    @Option(name: [.customShort("t"), .long], help: "Timeout in milliseconds (accepted; the targets complete at once).") var timeout = CommandNumber<UInt32>(0)
    @Option(name: [.customShort("2"), .customLong("cdw2")]) var cdw2 = CommandNumber<UInt32>(0)
    @Option(name: [.customShort("3"), .customLong("cdw3")]) var cdw3 = CommandNumber<UInt32>(0)
    @Option(name: [.customShort("4"), .customLong("cdw10")]) var cdw10 = CommandNumber<UInt32>(0)
    @Option(name: [.customShort("5"), .customLong("cdw11")]) var cdw11 = CommandNumber<UInt32>(0)
    @Option(name: [.customShort("6"), .customLong("cdw12")]) var cdw12 = CommandNumber<UInt32>(0)
    @Option(name: [.customShort("7"), .customLong("cdw13")]) var cdw13 = CommandNumber<UInt32>(0)
    @Option(name: [.customShort("8"), .customLong("cdw14")]) var cdw14 = CommandNumber<UInt32>(0)
    @Option(name: [.customShort("9"), .customLong("cdw15")]) var cdw15 = CommandNumber<UInt32>(0)
    @Option(name: [.customShort("i"), .customLong("input-file")],
            help: "Data to send (write; standard input when omitted), or where to put the data read.")
    var inputFile: String?
    @Option(name: [.customShort("M"), .long], help: "Metadata to send, or where to put the metadata read.") var metadata: String?
    @Flag(name: [.customShort("b"), .customLong("raw-binary")], help: "Write the data read to standard output as raw binary.") var rawBinary = false
    @Flag(name: [.customShort("s"), .customLong("show-command")], help: "Print the command before sending it.") var showCommand = false
    @Flag(name: [.customShort("d"), .customLong("dry-run")], help: "Print the command and do not send it.") var dryRun = false
    @Flag(name: [.customShort("r"), .long], help: "Data goes from the controller to the host.") var read = false
    @Flag(name: [.customShort("w"), .long], help: "Data goes from the host to the controller.") var write = false
    @Flag(name: [.customShort("T"), .long], help: "Print how long the command took.") var latency = false

    /// Whether data flows to the controller: `--write`, else opcode bit 0 (nvme-cli's inference).
    var writesData: Bool { write || (!read && opcode.value & 0x01 != 0) }
    /// Whether data flows to the host: `--read`, else opcode bit 1.
    var readsData: Bool { read || (!write && opcode.value & 0x02 != 0) }

    func validate() throws {
        if dataLength.value > 0 && !writesData && !readsData { throw ValidationError("data direction not given") }
        if read && write { throw ValidationError("give --read or --write, not both") }
    }

    var command: SubmissionQueueEntry {
        SubmissionQueueEntry(opcode: opcode.value, flags: flags.value, nsid: namespaceID.value,
                             cdw2: cdw2.value, cdw3: cdw3.value, cdw10: cdw10.value, cdw11: cdw11.value,
                             cdw12: cdw12.value, cdw13: cdw13.value, cdw14: cdw14.value, cdw15: cdw15.value)
    }

    /// nvme-cli's `--show-command` listing.
    func listing(_ command: SubmissionQueueEntry) -> String {
        func hex<V: BinaryInteger>(_ v: V, _ width: Int) -> String { "0x" + CFormat.hex(v, width: width) }
        var lines = [
            "opcode       : \(hex(command.opcode, 2))", "flags        : \(hex(command.flags, 2))",
            "rsvd1        : \(hex(rsvd.value, 4))", "nsid         : \(hex(command.nsid, 8))",
            "cdw2         : \(hex(command.dwords[2], 8))", "cdw3         : \(hex(command.dwords[3], 8))",
            "data_len     : \(hex(dataLength.value, 8))", "metadata_len : \(hex(metadataLength.value, 8))",
        ]
        for i in 0..<6 { lines.append("cdw1\(i)        : \(hex(command[cdw: i], 8))") }
        lines.append("timeout_ms   : \(hex(timeout.value, 8))")
        return lines.joined(separator: "\n") + "\n"
    }
}

/// The shared body of `admin-passthru` and `io-passthru`, as nvme-cli's passthru() behaves.
func runPassthru(_ options: PassthruOptions, device: DeviceOptions, queue: Queue, commandName: String) throws {
    let command = options.command
    if options.showCommand || options.dryRun { try printOutput(options.listing(command)) }
    if options.dryRun { return }
    var data = [UInt8](repeating: options.prefill.value, count: Int(options.dataLength.value))
    var metadata = [UInt8](repeating: options.prefill.value, count: Int(options.metadataLength.value))
    if options.writesData && !data.isEmpty {
        let input = try options.inputFile.map { path throws(CLIError) in try readFile(path) } ?? readStandardInput(limit: data.count)
        for i in 0..<min(input.count, data.count) { data[i] = input[i] }
    }
    if options.writesData && !metadata.isEmpty, let path = options.metadata {
        let input = try readFile(path)
        for i in 0..<min(input.count, metadata.count) { metadata[i] = input[i] }
    }
    let session = try DeviceSession(device, writable: options.writesData, commandName: "passthru")
    let start = monotonicNow()
    let result = try session.submit(command, queue: queue, data: &data, metadata: &metadata)
    let end = monotonicNow()
    if options.latency {
        try printOutput("latency: \(commandName): \(microseconds(from: start, to: end)) us\n")
    }
    let name = OpcodeTable.info(queue: queue, commandSet: .nvm, opcode: command.opcode)?.name ?? "Vendor Specific"
    let resultHex = String(result, radix: 16)
    printStandardError("\(queue == .admin ? "Admin" : "IO") Command \(name) is Success and result: 0x\(String(repeating: "0", count: 8 - resultHex.count))\(resultHex)")
    guard options.readsData else { return }
    if !metadata.isEmpty, let path = options.metadata { try writeFile(path, metadata) }
    guard !data.isEmpty else { return }
    if let path = options.inputFile {
        try writeFile(path, data)
    } else if options.rawBinary {
        try writeStandardOutput(data)
    } else {
        try printOutput(hexDump(data))
    }
}

/// `nvmegate admin-passthru`: any admin command, decided by the policy like every other.
struct AdminPassthru: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "admin-passthru", abstract: "Send an admin command (nvme-cli's admin-passthru), through the policy.")
    @OptionGroup var device: DeviceOptions
    @OptionGroup var passthru: PassthruOptions

    func run() throws {
        try reportingFailures { try runPassthru(passthru, device: device, queue: .admin, commandName: "admin-passthru") }
    }
}

/// `nvmegate io-passthru`: any I/O command, decided by the policy like every other.
struct IOPassthru: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "io-passthru", abstract: "Send an I/O command (nvme-cli's io-passthru), through the policy.")
    @OptionGroup var device: DeviceOptions
    @OptionGroup var passthru: PassthruOptions

    func run() throws {
        try reportingFailures { try runPassthru(passthru, device: device, queue: .io, commandName: "io-passthru") }
    }
}
