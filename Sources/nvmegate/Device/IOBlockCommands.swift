import ArgumentParser
import NVMeSpec

/// `nvmegate write-zeroes`: nvme-cli's write-zeroes (Write Zeroes, 08h).
struct IOWriteZeroes: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "write-zeroes", abstract: "Set a range of logical blocks to zero, as nvme-cli's write-zeroes.")

    @OptionGroup var device: DeviceOptions

    @Option(name: [.customShort("n"), .customLong("namespace-id")], help: "NSID (default: the node's own).")
    var namespaceID: CommandNumber<UInt32>?
    @Option(name: [.customShort("s"), .customLong("start-block")], help: "First logical block (SLBA).")
    var startBlock = CommandNumber<UInt64>(0)
    @Option(name: [.customShort("c"), .customLong("block-count")], help: "Number of blocks, 0's based (NLB).")
    var blockCount = CommandNumber<UInt16>(0)
    @Flag(name: [.customShort("d"), .customLong("deac")], help: "Ask the controller to deallocate the blocks (DEAC).")
    var deallocate = false
    @Flag(name: [.customShort("l"), .customLong("limited-retry")], help: "Limit media access attempts (LR).")
    var limitedRetry = false
    @Flag(name: [.customShort("f"), .customLong("force-unit-access")], help: "Commit to media before completing (FUA).")
    var forceUnitAccess = false
    @Option(name: [.customShort("p"), .customLong("prinfo")], help: "Protection information and check field (0 to 15).")
    var protectionInformation = CommandNumber<UInt8>(0)
    @Option(name: [.customShort("r"), .customLong("ref-tag")], help: "Reference tag for end-to-end protection.")
    var referenceTag = CommandNumber<UInt64>(0)
    @Option(name: [.customShort("m"), .customLong("app-tag-mask")], help: "Application tag mask for end-to-end protection.")
    var applicationTagMask = CommandNumber<UInt16>(0)
    @Option(name: [.customShort("a"), .customLong("app-tag")], help: "Application tag for end-to-end protection.")
    var applicationTag = CommandNumber<UInt16>(0)
    @Option(name: [.customShort("S"), .customLong("storage-tag")], help: "Storage tag for end-to-end protection.")
    var storageTag = CommandNumber<UInt64>(0)
    @Flag(name: [.customShort("C"), .customLong("storage-tag-check")], help: "Check the storage tag (STC).")
    var storageTagCheck = false

    /// nvme-cli's checks of the arguments, worded as it words them (exit status 1).
    func checkArguments() throws {
        if protectionInformation.value > 0xF { throw DeviceCommandError("invalid prinfo:\(protectionInformation.value)") }
    }

    func run() throws {
        try reportingFailures {
            try checkArguments()
            var control = UInt32(protectionInformation.value) << 10
            if limitedRetry { control |= 1 << 15 }
            if forceUnitAccess { control |= 1 << 14 }
            if deallocate { control |= 1 << 9 }
            if storageTagCheck { control |= 1 << 8 }
            let session = try DeviceSession(device, writable: true, commandName: "write-zeroes")
            let nsid = try session.namespaceID(namespaceID)
            // nvme-cli reads the namespace's format first, for its protection information.
            _ = try IOSupport.identifyNamespace(session, nsid)
            try IOSupport.checkProtectionTags(storageTag: storageTag.value, referenceTag: referenceTag.value)
            try session.submit(SubmissionQueueEntry(opcode: IOOpcode.writeZeroes.rawValue, nsid: nsid,
                                                    cdw10: UInt32(truncatingIfNeeded: startBlock.value),
                                                    cdw11: UInt32(truncatingIfNeeded: startBlock.value >> 32),
                                                    cdw12: UInt32(blockCount.value) | control << 16,
                                                    cdw14: UInt32(truncatingIfNeeded: referenceTag.value),
                                                    cdw15: UInt32(applicationTag.value) | UInt32(applicationTagMask.value) << 16),
                               queue: .io)
            try printOutput("NVME Write Zeroes Success\n")
        }
    }
}

/// `nvmegate dsm`: nvme-cli's dsm (Dataset Management, 09h), ranges given as comma lists.
struct IODatasetManagement: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dsm",
        abstract: "Give the controller attributes of ranges of logical blocks, such as deallocate (Dataset Management), as nvme-cli's dsm.")

    @OptionGroup var device: DeviceOptions

    @Option(name: [.customShort("n"), .customLong("namespace-id")], help: "NSID (default: the node's own).")
    var namespaceID: CommandNumber<UInt32>?
    @Option(name: [.customShort("a"), .customLong("ctx-attrs")], help: "Comma-separated context attributes, one per range.")
    var contextAttributes: CommandNumberList<UInt32>?
    @Option(name: [.customShort("b"), .customLong("blocks")], help: "Comma-separated block counts, one per range.")
    var blocks: CommandNumberList<UInt32>?
    @Option(name: [.customShort("s"), .customLong("slbs")], help: "Comma-separated starting blocks, one per range.")
    var startingBlocks: CommandNumberList<UInt64>?
    @Flag(name: [.customShort("d"), .customLong("ad")], help: "Attribute Deallocate.")
    var deallocate = false
    @Flag(name: [.customShort("w"), .customLong("idw")], help: "Attribute Integral Dataset for Write.")
    var integralWrite = false
    @Flag(name: [.customShort("r"), .customLong("idr")], help: "Attribute Integral Dataset for Read.")
    var integralRead = false
    @Option(name: [.customShort("c"), .customLong("cdw11")], help: "All of Command Dword 11, instead of --ad, --idw and --idr.")
    var cdw11 = CommandNumber<UInt32>(0)

    /// How many ranges the lists describe: the longest list; shorter ones count as zeroes.
    var rangeCount: Int {
        max(contextAttributes?.values.count ?? 0, blocks?.values.count ?? 0, startingBlocks?.values.count ?? 0)
    }

    /// nvme-cli's checks of the arguments, worded as it words them (exit status 1).
    func checkArguments() throws {
        guard (1...256).contains(rangeCount) else { throw DeviceCommandError("No range definition provided") }
    }

    func run() throws {
        try reportingFailures {
            try checkArguments()
            let session = try DeviceSession(device, writable: true, commandName: "data-set management")
            let nsid = try session.namespaceID(namespaceID)
            let attributes = cdw11.value != 0 ? cdw11.value
                : (deallocate ? 1 << 2 : 0) | (integralWrite ? 1 << 1 : 0) | (integralRead ? 1 : 0)
            var ranges = [UInt8](repeating: 0, count: 16 * rangeCount)
            func put(_ value: UInt64, at offset: Int, bytes: Int) {
                for i in 0..<bytes { ranges[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * i)) }
            }
            for i in 0..<rangeCount {
                put(UInt64(contextAttributes?.values.element(i) ?? 0), at: 16 * i, bytes: 4)
                put(UInt64(blocks?.values.element(i) ?? 0), at: 16 * i + 4, bytes: 4)
                put(startingBlocks?.values.element(i) ?? 0, at: 16 * i + 8, bytes: 8)
            }
            try session.submit(SubmissionQueueEntry(opcode: IOOpcode.datasetManagement.rawValue, nsid: nsid,
                                                    cdw10: UInt32(rangeCount - 1), cdw11: attributes),
                               queue: .io, data: &ranges)
            try printOutput("NVMe DSM: success\n")
        }
    }
}

/// `nvmegate flush`: nvme-cli's flush (Flush, 00h).
struct IOFlush: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flush", abstract: "Commit the namespace's written data to non-volatile media (Flush), as nvme-cli's flush.")

    @OptionGroup var device: DeviceOptions

    @Option(name: [.customShort("n"), .customLong("namespace-id")], help: "NSID (default: the node's own; 0xffffffff: every namespace).")
    var namespaceID: CommandNumber<UInt32>?

    func run() throws {
        try reportingFailures {
            let session = try DeviceSession(device, writable: true, commandName: "flush")
            let nsid = try session.namespaceID(namespaceID)
            try session.submit(SubmissionQueueEntry(opcode: IOOpcode.flush.rawValue, nsid: nsid), queue: .io)
            try printOutput("NVMe Flush: success\n")
        }
    }
}

private extension Array {
    /// The element at `index`, or nil past the end.
    func element(_ index: Int) -> Element? { index < count ? self[index] : nil }
}
