#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import NVMeGate
import NVMeSpec

/// nvme-cli's features, I/O and reservations: get-feature, set-feature, read, write, compare, write-zeroes, dsm, flush, resv-register, resv-acquire, resv-release, resv-report.
enum IOCommands {
    static let all: [any ParsableCommand.Type] = [
        FeatureGet.self, FeatureSet.self,
        IORead.self, IOWrite.self, IOCompare.self, IOWriteZeroes.self, IODatasetManagement.self, IOFlush.self,
        ReservationRegisterCommand.self, ReservationAcquireCommand.self, ReservationReleaseCommand.self,
        ReservationReportCommand.self,
    ]
}

/// What the feature, I/O and reservation commands share: how they find the namespace, the
/// namespace's block size, their input, and nvme-cli's number formats.
enum IOSupport {
    /// The most data or metadata a command of this group moves (a bound on user-given sizes).
    static let maxTransfer = 2 << 20

    /// The broadcast NSID, which nvme-cli sends when the node is not a namespace.
    static let allNamespaces: UInt32 = 0xFFFF_FFFF

    /// The NSID get-feature and set-feature send: `--namespace-id`, else the node's own (NVME_IOCTL_ID),
    /// else, on a controller node (ENOTTY), the broadcast NSID, as nvme-cli does.
    static func featureNamespaceID(_ session: DeviceSession, _ option: CommandNumber<UInt32>?) throws(DeviceCommandError) -> UInt32 {
        if let option, option.value != 0 { return option.value }
        switch session.gate.ioctl(session.handle, request: IoctlRequest.id.rawValue, argument: nil) {
        case .returned(let nsid): return UInt32(bitPattern: nsid)
        case .failed(ENOTTY): return allNamespaces
        case .failed(let code): throw DeviceCommandError("get-namespace-id: \(String(cString: strerror(code)))")
        }
    }

    /// Identify Namespace (CNS 00h) for `nsid`: the 4 KiB structure.
    static func identifyNamespace(_ session: DeviceSession, _ nsid: UInt32) throws(DeviceCommandError) -> [UInt8] {
        try IdentifyCommands.identify(session, cns: .namespace, nsid: nsid)
    }

    /// The logical block size in bytes (2^LBADS of the format in use), as libnvme's
    /// nvme_get_logical_block_size reads it.
    static func logicalBlockSize(_ identify: [UInt8]) throws(DeviceCommandError) -> UInt64 {
        let lbads = identify[128 + 4 * IdentifyCommands.formatInUse(flbas: identify[26]) + 2]
        guard (9...31).contains(lbads) else {
            throw DeviceCommandError("identify namespace: LBA data size 2^\(lbads) is not a usable block size")
        }
        return 1 << UInt64(lbads)
    }

    /// Metadata bytes per block (MS) of the format in use.
    static func metadataSize(_ identify: [UInt8]) -> UInt64 {
        UInt64(identify.le(128 + 4 * IdentifyCommands.formatInUse(flbas: identify[26]), as: UInt16.self))
    }

    /// Up to `limit` bytes from the file at `path`, or from standard input when `path` is nil:
    /// what nvme-cli's read(2) of the input takes, without reading more than the command needs.
    static func readInput(_ path: String?, limit: Int) throws(CLIError) -> [UInt8] {
        guard let path else { return try readStandardInput(limit: limit) }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw CLIError("\(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: limit)
        var filled = 0
        while filled < limit {
            let count = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + filled, limit - filled) }
            if count < 0 {
                if errno == EINTR { continue }
                throw CLIError("\(path): cannot read: \(String(cString: strerror(errno)))")
            }
            if count == 0 { break }
            filled += count
        }
        bytes.removeLast(limit - filled)
        return bytes
    }

    /// `bytes` written to the file at `path`, or to standard output when `path` is nil.
    static func writeOutput(_ path: String?, _ bytes: [UInt8]) throws(CLIError) {
        if let path { try writeFile(path, bytes) } else { try writeStandardOutput(bytes) }
    }

    /// nvme-cli's check of end-to-end protection tags for a format without protection
    /// information (STS 0, PIF 0, as the targets' formats are): no storage tag, and a
    /// reference tag that fits 32 bits.
    static func checkProtectionTags(storageTag: UInt64, referenceTag: UInt64) throws(DeviceCommandError) {
        if storageTag != 0 { throw DeviceCommandError("Storage tag larger than storage tag size") }
        if referenceTag >> 32 != 0 { throw DeviceCommandError("Reference tag larger than allowed by PIF") }
    }
}

/// A comma-separated list of numbers, each decimal or 0x hex, as nvme-cli's OPT_LIST takes them.
struct CommandNumberList<Value: FixedWidthInteger & UnsignedInteger & Sendable>: ExpressibleByArgument, Sendable {
    var values: [Value]

    init?(argument: String) {
        var values: [Value] = []
        for item in argument.split(separator: ",", omittingEmptySubsequences: false) {
            guard let number = parseUnsigned(item.trimmingPrefix(" ")), let value = Value(exactly: number) else { return nil }
            values.append(value)
        }
        self.values = values
    }
}
