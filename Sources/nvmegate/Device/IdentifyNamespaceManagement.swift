import ArgumentParser
import NVMeSpec

extension IdentifyCommands {
    /// `nvmegate create-ns`: Namespace Management, create (SEL 0h), with the host-specified
    /// fields of an Identify Namespace structure, as nvme-cli 2.3 builds it.
    struct CreateNS: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "create-ns",
            abstract: "Create a namespace (nvme-cli's create-ns), through the policy. It is not attached: use attach-ns.")
        @OptionGroup var device: DeviceOptions
        @Option(name: [.customShort("s"), .customLong("nsze")], help: "Namespace size (NSZE), in logical blocks.")
        var nsze = SuffixedNumber(0)
        @Option(name: [.customShort("c"), .customLong("ncap")], help: "Namespace capacity (NCAP), in logical blocks.")
        var ncap = SuffixedNumber(0)
        @Option(name: [.customShort("f"), .customLong("flbas")], help: "Formatted LBA size (FLBAS); give this or --block-size.")
        var flbas: CommandNumber<UInt8>?
        @Option(name: [.customShort("d"), .customLong("dps")], help: "End-to-end data protection settings (DPS).")
        var dps = CommandNumber<UInt8>(0)
        @Option(name: [.customShort("m"), .customLong("nmic")], help: "Multi-path I/O and sharing capabilities (NMIC).")
        var nmic = CommandNumber<UInt8>(0)
        @Option(name: [.customShort("a"), .customLong("anagrp-id")], help: "ANA group identifier (ANAGRPID).")
        var anagrpID = CommandNumber<UInt32>(0)
        @Option(name: [.customShort("i"), .customLong("nvmset-id")], help: "NVM set identifier (NVMSETID).")
        var nvmsetID = CommandNumber<UInt16>(0)
        @Option(name: [.customShort("b"), .customLong("block-size")],
                help: "Logical block size in bytes: picks the LBA format with that data size and no metadata; give this or --flbas.")
        var blockSize = SuffixedNumber(0)
        @Option(name: [.customShort("t"), .customLong("timeout")], help: "Timeout in milliseconds (accepted; the targets complete at once).")
        var timeout = CommandNumber<UInt32>(120_000)
        @Option(name: [.customShort("y"), .customLong("csi")], help: "Command set identifier (CSI) of the namespace.")
        var csi = CommandNumber<UInt8>(0)

        func run() throws {
            try reportingFailures {
                let bs = blockSize.value
                if flbas != nil && bs != 0 {
                    throw DeviceCommandError("Invalid specification of both FLBAS and Block Size, please specify only one")
                }
                if bs & (bs &- 1) != 0 {
                    throw DeviceCommandError("Invalid value for block size (\(bs)). Block size must be a power of two")
                }
                let session = try DeviceSession(device, writable: true, commandName: "create namespace")
                var format = flbas.map { Int($0.value) }
                if bs != 0 {
                    let common = try identify(session, cns: .namespace, nsid: 0xFFFF_FFFF)
                    format = IdentifyCommands.format(ofBlockSize: bs, in: common)
                }
                guard let format else {
                    throw DeviceCommandError("FLBAS corresponding to block size \(bs) not found\nPlease correct block size, or specify FLBAS directly")
                }
                var data = [UInt8](repeating: 0, count: structureSize)
                data.store(nsze.value, at: 0)
                data.store(ncap.value, at: 8)
                data[26] = UInt8(truncatingIfNeeded: format)
                data[29] = dps.value
                data[30] = nmic.value
                data.store(anagrpID.value, at: 92)
                data.store(nvmsetID.value, at: 100)
                let command = SubmissionQueueEntry(opcode: AdminOpcode.namespaceManagement.rawValue, cdw10: 0,
                                                   cdw11: UInt32(csi.value) << 24)
                let nsid = try session.submit(command, queue: .admin, data: &data)
                try printOutput("create-ns: Success, created nsid:\(nsid)\n")
            }
        }
    }

    /// `nvmegate delete-ns`: Namespace Management, delete (SEL 1h).
    struct DeleteNS: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "delete-ns",
            abstract: "Delete a namespace (nvme-cli's delete-ns), through the policy. Detach it from every controller first.")
        @OptionGroup var device: DeviceOptions
        @Option(name: [.customShort("n"), .customLong("namespace-id")],
                help: "The namespace to delete (default: the node's own, by NVME_IOCTL_ID).")
        var namespaceID: CommandNumber<UInt32>?
        @Option(name: [.customShort("t"), .customLong("timeout")], help: "Timeout in milliseconds (accepted; the targets complete at once).")
        var timeout = CommandNumber<UInt32>(120_000)

        func run() throws {
            try reportingFailures {
                let session = try DeviceSession(device, writable: true, commandName: "delete namespace")
                let nsid = try session.namespaceID(namespaceID)
                try session.submit(SubmissionQueueEntry(opcode: AdminOpcode.namespaceManagement.rawValue, nsid: nsid, cdw10: 1),
                                   queue: .admin)
                try printOutput("delete-ns: Success, deleted nsid:\(nsid)\n")
            }
        }
    }

    /// `nvmegate attach-ns`: Namespace Attachment, attach (SEL 0h).
    struct AttachNS: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "attach-ns",
            abstract: "Attach a namespace to controllers (nvme-cli's attach-ns), through the policy.")
        @OptionGroup var device: DeviceOptions
        @OptionGroup var attachment: AttachmentOptions

        func run() throws {
            try reportingFailures { try attachment.send(device, attach: true) }
        }
    }

    /// `nvmegate detach-ns`: Namespace Attachment, detach (SEL 1h).
    struct DetachNS: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "detach-ns",
            abstract: "Detach a namespace from controllers (nvme-cli's detach-ns), through the policy.")
        @OptionGroup var device: DeviceOptions
        @OptionGroup var attachment: AttachmentOptions

        func run() throws {
            try reportingFailures { try attachment.send(device, attach: false) }
        }
    }

    /// attach-ns's and detach-ns's flags, and the Namespace Attachment command they send.
    struct AttachmentOptions: ParsableArguments {
        @Option(name: [.customShort("n"), .customLong("namespace-id")], help: "The namespace (required).")
        var namespaceID = CommandNumber<UInt32>(0)
        @Option(name: [.customShort("c"), .customLong("controllers")], help: ArgumentHelp(
            "Comma-separated controller IDs (\"0,1\").", valueName: "list"))
        var controllers = ""

        /// The most controller IDs a controller list holds (nvme-cli reads up to 2047).
        static let maxControllers = 2047

        /// The controller IDs of `--controllers`, or nil when the list is malformed.
        var controllerIDs: [UInt16]? {
            let items = controllers.split(separator: ",", omittingEmptySubsequences: false)
            if controllers.isEmpty { return [] }
            guard items.count <= Self.maxControllers else { return nil }
            var ids: [UInt16] = []
            for item in items {
                guard let id = parseUnsigned(item.trimmingPrefix(" ")).flatMap(UInt16.init(exactly:)) else { return nil }
                ids.append(id)
            }
            return ids
        }

        /// Sends Namespace Attachment (attach or detach) with the controller list data structure.
        func send(_ device: DeviceOptions, attach: Bool) throws {
            let name = attach ? "attach-ns" : "detach-ns"
            guard namespaceID.value != 0 else { throw DeviceCommandError("\(name): namespace-id parameter required") }
            guard let ids = controllerIDs else { throw DeviceCommandError("\(name): controller id list is malformed") }
            if ids.isEmpty {
                printStandardError("warning: empty controller-id list will result in no actual change in namespace attachment")
            }
            let session = try DeviceSession(device, writable: true, commandName: attach ? "attach namespace" : "detach namespace")
            var data = [UInt8](repeating: 0, count: IdentifyCommands.structureSize)
            data.store(UInt16(ids.count), at: 0)
            for (i, id) in ids.enumerated() { data.store(id, at: 2 + 2 * i) }
            let command = SubmissionQueueEntry(opcode: AdminOpcode.namespaceAttachment.rawValue, nsid: namespaceID.value,
                                               cdw10: attach ? 0 : 1)
            try session.submit(command, queue: .admin, data: &data)
            try printOutput("\(name): Success, nsid:\(namespaceID.value)\n")
        }
    }
}

private extension [UInt8] {
    /// Stores `value` little-endian at `offset`.
    mutating func store<Value: FixedWidthInteger>(_ value: Value, at offset: Int) {
        for i in 0..<(Value.bitWidth / 8) { self[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * i)) }
    }
}
