import ArgumentParser
import NVMeGate
import NVMeSpec

extension IdentifyCommands {
    /// `nvmegate format`: Format NVM, with nvme-cli 2.3's checks: Identify Controller (FNA
    /// bit 0 formats every namespace), Identify Namespace (the format in use stays unless
    /// `--lbaf` or `--block-size` picks another). nvme-cli asks for confirmation by waiting
    /// 10 seconds without `--force`; nvmegate is non-interactive, so without `--force` it
    /// refuses instead.
    struct Format: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "format",
            abstract: "Format a namespace (nvme-cli's format), through the policy. Erases its data; needs --force.")
        @OptionGroup var device: DeviceOptions
        @Option(name: [.customShort("n"), .customLong("namespace-id")],
                help: "The namespace (default: the node's own, by NVME_IOCTL_ID; 0xffffffff: all).")
        var namespaceID: CommandNumber<UInt32>?
        @Option(name: [.customShort("t"), .customLong("timeout")], help: "Timeout in milliseconds (accepted; the targets complete at once).")
        var timeout = CommandNumber<UInt32>(600_000)
        @Option(name: [.customShort("l"), .customLong("lbaf")], help: "The LBA format to apply (default: the one in use).")
        var lbaf: CommandNumber<UInt8>?
        @Option(name: [.customShort("s"), .customLong("ses")], help: "Secure erase: 0 none, 1 user data, 2 cryptographic.")
        var ses = CommandNumber<UInt8>(0)
        @Option(name: [.customShort("i"), .customLong("pi")], help: "Protection information: 0 off, 1-3 type.")
        var pi = CommandNumber<UInt8>(0)
        @Option(name: [.customShort("p"), .customLong("pil")], help: "Protection information in the last (0) or first (1) 8 bytes of metadata.")
        var pil = CommandNumber<UInt8>(0)
        @Option(name: [.customShort("m"), .customLong("ms")], help: "Metadata settings: 1 extended LBA, 0 separate buffer.")
        var ms = CommandNumber<UInt8>(0)
        @Flag(name: [.customShort("r"), .customLong("reset")], help: "Reset the controller after a successful format (controller node).")
        var reset = false
        @Flag(name: [.customShort("f"), .customLong("force")], help: "Format without asking; required, as nvmegate cannot ask.")
        var force = false
        @Option(name: [.customShort("b"), .customLong("block-size")],
                help: "Logical block size in bytes: picks the LBA format with that data size and no metadata.")
        var blockSize = SuffixedNumber(0)

        /// nvme-cli's range checks, in its order and words.
        func checkFields(_ format: Int) throws(DeviceCommandError) {
            if ses.value > 7 { throw DeviceCommandError("invalid secure erase settings:\(ses.value)") }
            if format > 63 { throw DeviceCommandError("invalid lbaf:\(format)") }
            if pi.value > 7 { throw DeviceCommandError("invalid pi:\(pi.value)") }
            if pil.value > 1 { throw DeviceCommandError("invalid pil:\(pil.value)") }
            if ms.value > 1 { throw DeviceCommandError("invalid ms:\(ms.value)") }
        }

        func run() throws {
            try reportingFailures {
                let bs = blockSize.value
                if lbaf != nil && bs != 0 {
                    throw DeviceCommandError("Invalid specification of both LBAF and Block Size, please specify only one")
                }
                if bs & (bs &- 1) != 0 {
                    throw DeviceCommandError("Invalid value for block size (\(bs)), must be a power of two")
                }
                let session = try DeviceSession(device, writable: true, commandName: "format")
                let controller = try identify(session, cns: .controller)
                var nsid = namespaceID?.value ?? 0
                if controller[524] & 0x1 != 0 {
                    nsid = 0xFFFF_FFFF   // FNA bit 0: a format applies to every namespace
                } else if nsid == 0 {
                    nsid = try session.namespaceID()
                }
                var previous = 0
                var format = lbaf.map { Int($0.value) } ?? 0
                if nsid != 0xFFFF_FFFF {
                    let ns = try identify(session, cns: .namespace, nsid: nsid)
                    previous = formatInUse(flbas: ns[26])
                    if bs != 0 {
                        guard let found = IdentifyCommands.format(ofBlockSize: bs, in: ns) else {
                            throw DeviceCommandError("LBAF corresponding to given block size \(bs) not found\nPlease correct block size, or specify LBAF directly")
                        }
                        format = found
                    } else if lbaf == nil {
                        format = previous
                    }
                }
                try checkFields(format)
                guard force else {
                    throw DeviceCommandError("format: refusing to format \(session.node), namespace \(CFormat.alternateHex(nsid)) without --force: nvme-cli would give 10 seconds to press Ctrl-C, nvmegate cannot ask; pass --force to format (it may irrevocably delete the namespace's data)")
                }
                let cdw10 = UInt32(format & 0xF) | UInt32(ms.value) << 4 | UInt32(pi.value) << 5 | UInt32(pil.value) << 8
                    | UInt32(ses.value) << 9 | UInt32(format >> 4 & 0x3) << 12
                try session.submit(SubmissionQueueEntry(opcode: AdminOpcode.formatNVM.rawValue, nsid: nsid, cdw10: cdw10), queue: .admin)
                try printOutput("Success formatting namespace:\(String(nsid, radix: 16))\n")
                try afterFormat(session, formatChanged: format != previous)
            }
        }

        /// What nvme-cli does on a character device after a format: rescan the namespaces
        /// when the format changed, and reset the controller with `--reset`. (On a block
        /// device it sets the block size and rereads partitions; a target's namespaces
        /// follow their format by themselves.)
        func afterFormat(_ session: DeviceSession, formatChanged: Bool) throws(DeviceCommandError) {
            guard session.node.kind == .controller || session.node.kind == .generic else { return }
            if formatChanged, case .failed = session.gate.ioctl(session.handle, request: IoctlRequest.rescan.rawValue, argument: nil) {
                throw DeviceCommandError("failed to rescan namespaces")
            }
            if reset {
                _ = session.gate.ioctl(session.handle, request: IoctlRequest.reset.rawValue, argument: nil)
            }
        }
    }
}
