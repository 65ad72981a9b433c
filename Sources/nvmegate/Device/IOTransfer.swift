#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import NVMeSpec

/// nvme-cli 2.3's submit_io flags, the same for `read`, `write` and `compare`.
struct IOTransferOptions: ParsableArguments {
    @Option(name: [.customShort("n"), .customLong("namespace-id")], help: "NSID (default: the node's own).")
    var namespaceID: CommandNumber<UInt32>?
    @Option(name: [.customShort("s"), .customLong("start-block")], help: "First logical block (SLBA).")
    var startBlock = CommandNumber<UInt64>(0)
    @Option(name: [.customShort("c"), .customLong("block-count")], help: "Number of blocks, 0's based (NLB).")
    var blockCount = CommandNumber<UInt16>(0)
    @Option(name: [.customShort("z"), .customLong("data-size")],
            help: "Data size in bytes (required); raised to the size of the blocks when smaller.")
    var dataSize = CommandNumber<UInt64>(0)
    @Option(name: [.customShort("y"), .customLong("metadata-size")], help: "Metadata size in bytes.")
    var metadataSize = CommandNumber<UInt64>(0)
    @Option(name: [.customShort("r"), .customLong("ref-tag")], help: "Reference tag for end-to-end protection.")
    var referenceTag = CommandNumber<UInt64>(0)
    @Option(name: [.customShort("d"), .customLong("data")],
            help: "Data file: read for write and compare, written by read (default: standard input or output).")
    var dataFile: String?
    @Option(name: [.customShort("M"), .customLong("metadata")], help: "Metadata file (default: standard input or output).")
    var metadataFile: String?
    @Option(name: [.customShort("p"), .customLong("prinfo")], help: "Protection information and check field (0 to 15).")
    var protectionInformation = CommandNumber<UInt8>(0)
    @Option(name: [.customShort("m"), .customLong("app-tag-mask")], help: "Application tag mask for end-to-end protection.")
    var applicationTagMask = CommandNumber<UInt16>(0)
    @Option(name: [.customShort("a"), .customLong("app-tag")], help: "Application tag for end-to-end protection.")
    var applicationTag = CommandNumber<UInt16>(0)
    @Option(name: [.customShort("g"), .customLong("storage-tag")], help: "Storage tag for end-to-end protection.")
    var storageTag = CommandNumber<UInt64>(0)
    @Flag(name: [.customShort("l"), .customLong("limited-retry")], help: "Limit media access attempts (LR).")
    var limitedRetry = false
    @Flag(name: [.customShort("f"), .customLong("force-unit-access")], help: "Commit to media before completing (FUA).")
    var forceUnitAccess = false
    @Flag(name: [.customShort("C"), .customLong("storage-tag-check")], help: "Check the storage tag (STC).")
    var storageTagCheck = false
    @Option(name: [.customShort("T"), .customLong("dir-type")], help: "Directive type (write).")
    var directiveType = CommandNumber<UInt8>(0)
    @Option(name: [.customShort("S"), .customLong("dir-spec")], help: "Directive specific (write).")
    var directiveSpecific = CommandNumber<UInt16>(0)
    @Option(name: [.customShort("D"), .customLong("dsm")], help: "Dataset management attributes (low 8 bits of CDW13).")
    var datasetManagement = CommandNumber<UInt8>(0)
    @Flag(name: [.customShort("v"), .customLong("show-command")], help: "Print the command before sending it.")
    var showCommand = false
    @Flag(name: [.customShort("w"), .customLong("dry-run")], help: "Print the command and do not send it.")
    var dryRun = false
    @Flag(name: [.customShort("t"), .customLong("latency")], help: "Print how long the command took.")
    var latency = false
    @Flag(name: .customLong("force"),
          help: "Accepted for nvme-cli compatibility (it skips nvme-cli's exclusive open for write; targets have none).")
    var force = false

    /// nvme-cli's checks of the arguments, worded as it words them (exit status 1).
    func checkArguments() throws {
        if protectionInformation.value > 0xF { throw DeviceCommandError("invalid prinfo:\(protectionInformation.value)") }
        if directiveType.value > 0xF {
            throw DeviceCommandError("Invalid directive type, \(String(directiveType.value, radix: 16))")
        }
        if metadataSize.value > IOSupport.maxTransfer {
            throw CLIError("--metadata-size \(metadataSize.value) is more than the \(IOSupport.maxTransfer) bytes a command may move")
        }
    }

    /// CDW12 bits 31:16 as nvme-cli builds them: LR, FUA, PRINFO, STC and the directive type.
    var control: UInt16 {
        var bits = UInt16(protectionInformation.value) << 10 | UInt16(directiveType.value) << 4
        if limitedRetry { bits |= 1 << 15 }
        if forceUnitAccess { bits |= 1 << 14 }
        if storageTagCheck { bits |= 1 << 8 }
        return bits
    }

    /// The command as libnvme's nvme_io builds it.
    func command(opcode: IOOpcode, nsid: UInt32) -> SubmissionQueueEntry {
        SubmissionQueueEntry(opcode: opcode.rawValue, nsid: nsid,
                             cdw10: UInt32(truncatingIfNeeded: startBlock.value),
                             cdw11: UInt32(truncatingIfNeeded: startBlock.value >> 32),
                             cdw12: UInt32(blockCount.value) | UInt32(control) << 16,
                             cdw13: UInt32(datasetManagement.value) | UInt32(directiveSpecific.value) << 16,
                             cdw14: UInt32(truncatingIfNeeded: referenceTag.value),
                             cdw15: UInt32(applicationTag.value) | UInt32(applicationTagMask.value) << 16)
    }

    /// nvme-cli's --show-command listing.
    func listing(opcode: IOOpcode, nsid: UInt32, dataAddress: UInt, metadataAddress: UInt) -> String {
        func hex<V: BinaryInteger>(_ v: V, _ width: Int) -> String { CFormat.hex(v, width: width) }
        let entry = command(opcode: opcode, nsid: nsid)
        return """
            opcode       : \(hex(opcode.rawValue, 2))
            nsid         : \(hex(nsid, 2))
            flags        : 00
            control      : \(hex(control, 4))
            nblocks      : \(hex(blockCount.value, 4))
            metadata     : \(hex(metadataAddress, 1))
            addr         : \(hex(dataAddress, 1))
            slba         : \(hex(startBlock.value, 1))
            dsmgmt       : \(hex(entry[cdw: 3], 8))
            reftag       : \(hex(referenceTag.value, 1))
            apptag       : \(hex(applicationTag.value, 4))
            appmask      : \(hex(applicationTagMask.value, 4))
            storagetagcheck : \(hex(storageTagCheck ? 1 : 0, 4))
            storagetag      : \(hex(storageTag.value, 1))
            pif             : 00
            sts             : 00

            """
    }
}

/// The body of `read`, `write` and `compare`, as nvme-cli 2.3's submit_io: the data size is
/// raised to whole blocks of the namespace's LBA size (from Identify Namespace); write and
/// compare take their data from --data or standard input, read puts it in --data or on
/// standard output; "<command>: Success" goes to standard error.
struct IOTransfer {
    let options: IOTransferOptions
    let device: DeviceOptions
    let opcode: IOOpcode
    /// "read", "write" or "compare", for the latency and success lines.
    let name: String

    /// Whether data flows to the controller (opcode bit 0: Write and Compare).
    var sendsData: Bool { DataDirection(opcode: opcode.rawValue).transfersToController }

    /// Sends the command as submit_io does and moves the data between the buffer and the
    /// input or output.
    func run() throws {
        try options.checkArguments()
        // Write-type commands (opcode bit 0, Compare included) need a handle opened for writing.
        let session = try DeviceSession(device, writable: sendsData, commandName: "submit-io")
        let nsid = try session.namespaceID(options.namespaceID)
        guard options.dataSize.value != 0 else { throw DeviceCommandError("data size not provided") }
        let identify = try IOSupport.identifyNamespace(session, nsid)
        let blocks = UInt64(options.blockCount.value) + 1
        var bufferSize = blocks * (try IOSupport.logicalBlockSize(identify))
        if options.dataSize.value < bufferSize {
            printStandardError("Rounding data size to fit block count (\(bufferSize) bytes)")
        } else {
            bufferSize = options.dataSize.value
        }
        guard bufferSize <= IOSupport.maxTransfer else {
            throw CLIError("data size \(bufferSize) is more than the \(IOSupport.maxTransfer) bytes a command may move")
        }
        var metadataSize = options.metadataSize.value
        if metadataSize > 0 {
            let blocksMetadata = blocks * IOSupport.metadataSize(identify)
            if blocksMetadata > 0 && metadataSize < blocksMetadata {
                printStandardError("Rounding metadata size to fit block count (\(blocksMetadata) bytes)")
                metadataSize = blocksMetadata
            }
        }
        guard metadataSize <= IOSupport.maxTransfer else {
            throw CLIError("metadata size \(metadataSize) is more than the \(IOSupport.maxTransfer) bytes a command may move")
        }
        try IOSupport.checkProtectionTags(storageTag: options.storageTag.value, referenceTag: options.referenceTag.value)

        var data = [UInt8](repeating: 0, count: Int(bufferSize))
        var metadata = [UInt8](repeating: 0, count: Int(metadataSize))
        if sendsData {
            let input = try IOSupport.readInput(options.dataFile, limit: Int(options.dataSize.value))
            data.replaceSubrange(0..<input.count, with: input)
            if metadataSize > 0 {
                let input = try IOSupport.readInput(options.metadataFile, limit: metadata.count)
                metadata.replaceSubrange(0..<input.count, with: input)
            }
        }
        if options.showCommand || options.dryRun {
            let dataAddress = data.withUnsafeBytes { UInt(bitPattern: $0.baseAddress) }
            let metadataAddress = metadata.withUnsafeBytes { UInt(bitPattern: $0.baseAddress) }
            try printOutput(options.listing(opcode: opcode, nsid: nsid, dataAddress: dataAddress, metadataAddress: metadataAddress))
        }
        if options.dryRun { return }

        let start = monotonicNow()
        var failure: DeviceCommandError?
        do {
            try session.submit(options.command(opcode: opcode, nsid: nsid), queue: .io, data: &data, metadata: &metadata)
        } catch {
            failure = error
        }
        let end = monotonicNow()
        if options.latency {   // printed whatever the outcome, as nvme-cli does
            try printOutput(" latency: \(name): \(microseconds(from: start, to: end)) us\n")
        }
        if let failure { throw failure }
        if !sendsData {
            try IOSupport.writeOutput(options.dataFile, Array(data.prefix(Int(options.dataSize.value))))
            if metadataSize > 0 { try IOSupport.writeOutput(options.metadataFile, metadata) }
        }
        printStandardError("\(name): Success")
    }
}

/// `nvmegate read`: nvme-cli's read (Read, 02h).
struct IORead: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "read", abstract: "Read logical blocks to a file or standard output, as nvme-cli's read.")
    @OptionGroup var device: DeviceOptions
    @OptionGroup var options: IOTransferOptions

    func run() throws {
        try reportingFailures { try IOTransfer(options: options, device: device, opcode: .read, name: "read").run() }
    }
}

/// `nvmegate write`: nvme-cli's write (Write, 01h).
struct IOWrite: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "write", abstract: "Write logical blocks from a file or standard input, as nvme-cli's write.")
    @OptionGroup var device: DeviceOptions
    @OptionGroup var options: IOTransferOptions

    func run() throws {
        try reportingFailures { try IOTransfer(options: options, device: device, opcode: .write, name: "write").run() }
    }
}

/// `nvmegate compare`: nvme-cli's compare (Compare, 05h); a mismatch is the NVMe status
/// Compare Failure.
struct IOCompare: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Compare logical blocks with data from a file or standard input, as nvme-cli's compare.")
    @OptionGroup var device: DeviceOptions
    @OptionGroup var options: IOTransferOptions

    func run() throws {
        try reportingFailures { try IOTransfer(options: options, device: device, opcode: .compare, name: "compare").run() }
    }
}
