#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import NVMeGate
import NVMeTargets
import NVMeSpec

/// A failure the CLI reports as `nvmegate: <message>` on standard error, exiting with 1.
struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Runs `body`, reporting a `CLIError` or `PolicyError` as `nvmegate: <message>` and a
/// `DeviceCommandError` as nvme-cli would (unprefixed) on standard error, exiting with
/// status 1. Other errors (usage, exit codes) pass through
/// to ArgumentParser.
func reportingFailures(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as CLIError {
        printError(error.description)
        throw ExitCode.failure
    } catch let error as PolicyError {
        printError(error.description)
        throw ExitCode.failure
    } catch let error as DeviceCommandError {
        printStandardError(error.description)
        throw ExitCode.failure
    }
}

/// Writes `nvmegate: <message>` and a newline to standard error.
func printError(_ message: String) {
    let line = Array("nvmegate: \(message)\n".utf8)
    var written = 0
    while written < line.count {
        let count = line.withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress! + written, $0.count - written) }
        if count < 0 && errno == EINTR { continue }
        guard count > 0 else { return }
        written += count
    }
}

/// Where a command's policy and effects log come from: `--policy FILE` (the built-in
/// kernel-compatible policy when omitted) and `--effects-log FILE` or `--target TARGET`.
struct PolicySource: ParsableArguments {
    @Option(help: ArgumentHelp("A policy file (TOML). Default: the built-in kernel-compatible policy.",
                               valueName: "file"))
    var policy: String?

    @Option(help: ArgumentHelp(
        "The controller's Commands Supported and Effects log: a raw 4096-byte page, as `nvme get-log --log-id=5 --log-len=4096 -b` writes it. Default: none (Linux then knows only its known effects and nothing is supported).",
        valueName: "file"))
    var effectsLog: String?

    @Option(help: ArgumentHelp(
        "Take the effects logs from this target's controller instead (\"loopback\", …).", valueName: "target"))
    var target: String?

    func validate() throws {
        if effectsLog != nil && target != nil { throw ValidationError("give --effects-log or --target, not both") }
    }

    /// The policy named, compiled against the effects log named or the target's.
    func compile() throws -> CompiledPolicy {
        let loaded = try policy.map { path throws(PolicyError) in try Policy.load(path: path) } ?? .kernel
        if let target {
            let controller: any Controller
            do { controller = try Target.open(target) } catch { throw CLIError(error.description) }
            return Gate.compile(loaded, for: controller)
        }
        return CompiledPolicy(policy: loaded, effectsLogs: try loadEffectsLogs(effectsLog))
    }

    /// Where the effects a decision consulted came from, for explanations.
    var effectsOrigin: String {
        if let target { return "from the effects logs of target \(target)" }
        return effectsLog.map { "from the effects log \($0)" } ?? "no effects log supplied: Linux's known effects only"
    }
}

/// The effects logs from `path` (keyed by the NVM command set, whose page it is), or none.
func loadEffectsLogs(_ path: String?) throws(CLIError) -> [CommandSet: CommandEffectsLog] {
    guard let path else { return [:] }
    let bytes = try readFile(path)
    guard let log = CommandEffectsLog(bytes) else {
        throw CLIError("\(path): an effects log is a raw \(CommandEffectsLog.size)-byte Commands Supported and Effects page; this file has \(bytes.count) bytes")
    }
    return [.nvm: log]
}

/// The whole of the file at `path`.
func readFile(_ path: String) throws(CLIError) -> [UInt8] {
    guard let file = fopen(path, "rb") else {
        throw CLIError("\(path): cannot open: \(String(cString: strerror(errno)))")
    }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, file) }
        bytes.append(contentsOf: chunk[0..<count])
        if count < chunk.count { break }
    }
    if ferror(file) != 0 {
        throw CLIError("\(path): cannot read: \(String(cString: strerror(errno)))")
    }
    return bytes
}

/// The device the commands are imagined on, beyond what the policy and effects log say.
struct DeviceModel: ParsableArguments {
    @Option(help: ArgumentHelp(
        "How many namespaces the controller has: NVME_IOCTL_IO_CMD on a controller node goes to its only namespace (NSID 1); none gives ENOTTY, several EINVAL.",
        valueName: "count"))
    var namespaces = 1

    @Option(help: ArgumentHelp("The namespace's LBA data size in bytes, for the buffer-length check.",
                               valueName: "bytes"))
    var lbaSize: UInt32 = 512

    @Option(help: ArgumentHelp(
        "The blocks a partition handle covers (first LBA and count, decimal or 0x hex), for policies that confine I/O to the partition. Default: unknown, and a partition handle is refused as Linux refuses it unless the policy says partitions = true.",
        valueName: "start:blocks"))
    var partition: PartitionSpec?

    func validate() throws {
        guard namespaces >= 0 else { throw ValidationError("--namespaces must be 0 or more") }
    }
}

/// `--partition START:BLOCKS`: the blocks of a namespace a partition node covers.
struct PartitionSpec: ExpressibleByArgument {
    var range: LBARange

    init?(argument: String) {
        let parts = argument.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let start = parseUnsigned(parts[0]), let blocks = parseUnsigned(parts[1]), blocks > 0,
              !start.addingReportingOverflow(blocks).overflow else { return nil }
        range = LBARange(start: start, count: blocks)
    }
}
