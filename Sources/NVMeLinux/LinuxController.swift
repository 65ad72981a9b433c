#if canImport(Glibc)
import Glibc
#endif
import CLibNVMe
import NVMeGate
import NVMeSpec

/// Why a device path could not be attached, naming the path; `errno` is what a C caller is
/// given: the errno of open(2) (ENOENT, EACCES), ENODEV for a file that is not an NVMe device
/// node, or the errno of the ioctl that failed at attach.
public struct LinuxDeviceError: Error, CustomStringConvertible, Sendable, Hashable {
    public var description: String
    public var errno: Int32
    public init(_ description: String, errno: Int32) { self.description = description; self.errno = errno }
}

/// A real Linux NVMe controller behind one of its device nodes (`/dev/nvmeX`, `/dev/nvmeXnY`,
/// `/dev/ngXnY`), driven through libnvme.
///
/// At attach it reads Identify Controller, Identify Namespace for each namespace sysfs lists,
/// and, when Identify Controller's LPA bit 1 says the log exists, the Commands Supported and
/// Effects log for every command set in use (without it: no log, Linux's fallback of known
/// effects and nothing supported). Commands then go to the kernel with the 64-bit passthru
/// ioctls, so the full result comes back; status, result and errno are returned exactly as
/// the kernel returned them. Admin commands go through the node it was attached through (Linux
/// sends admin commands on a namespace node to its controller), I/O through the namespace's
/// own node (the generic node `ngXnY` where there is one). The kernel's own rules apply on top
/// of the gate's for what this process itself may not do.
public final class LinuxController: Controller {
    public let identity: ControllerIdentity
    /// The path attached through, as given.
    public let path: String
    /// The node `path` is, named as the gate names nodes: kind, the controller's number, and
    /// the namespace's NSID (which Linux's node name usually, but not always, carries).
    public let node: NodeName
    /// Identify Controller LPA bit 1: the controller has a Commands Supported and Effects log.
    public let reportsEffectsLog: Bool
    let admin: any NodeChannel
    let management: Result<any NodeChannel, ControllerError>
    let namespaceList: [NamespaceInfo]
    /// The I/O path of each namespace: its node, or the errno opening it failed with.
    let ioChannels: [UInt32: Result<any NodeChannel, ControllerError>]
    let logs: [CommandSet: CommandEffectsLog]

    /// A namespace found on the device: its NSID, its node (or why it could not be opened),
    /// whether sysfs calls it zoned, and its partitions in 512-byte sectors.
    struct DiscoveredNamespace {
        var nsid: UInt32
        var channel: Result<any NodeChannel, ControllerError>
        var zoned: Bool = false
        var partitions: [Sysfs.Partition] = []
    }

    /// Attaches through `path`. `effectsLog` is the NVM command set's log to decide with when
    /// Linux refuses this process the device's own (Get Log Page needs CAP_SYS_ADMIN): a raw
    /// 4096-byte page read once by root. The device's own log wins whenever it can be read.
    public convenience init(path: String, effectsLog: CommandEffectsLog? = nil) throws(LinuxDeviceError) {
        try self.init(path: path, effectsLog: effectsLog, sysfs: Sysfs())
    }

    convenience init(path: String, effectsLog: CommandEffectsLog?, sysfs: Sysfs) throws(LinuxDeviceError) {
        // Checked before opening (a FIFO or a regular file is never opened) and after.
        var info = stat()
        func check(_ returned: Int32) throws(LinuxDeviceError) {
            guard returned == 0 else {
                let code = errno
                throw LinuxDeviceError("\(path): \(String(cString: strerror(code)))", errno: code)
            }
            let type = info.st_mode & S_IFMT
            guard type == S_IFCHR || type == S_IFBLK else {
                throw LinuxDeviceError("\(path) is not a block or character device", errno: ENODEV)
            }
        }
        try check(stat(path, &info))
        let opened = try Self.openNode(path)
        try check(fstat(opened.descriptor, &info))
        let type = info.st_mode & S_IFMT
        let block = type == S_IFBLK
        let device = UInt64(info.st_rdev)
        let found = sysfs.node(device: device, block: block)
        guard let sysNode = found.node else {
            let kind = block ? "block" : "character"
            let what = found.otherName.map { ", \"\($0)\" in sysfs" } ?? ", unknown to sysfs at \(sysfs.root)"
            throw LinuxDeviceError("\(path) is not an NVMe device node (\(kind) device \(Sysfs.major(device)):\(Sysfs.minor(device))\(what))",
                                   errno: ENODEV)
        }
        let attached: any NodeChannel = opened
        var attachedNSID: UInt32 = 0
        if sysNode.name.kind != .controller {
            do throws(ControllerError) { attachedNSID = try attached.namespaceID() } catch {
                throw LinuxDeviceError("\(path): NVME_IOCTL_ID: \(String(cString: strerror(error.errno)))", errno: error.errno)
            }
        }

        // The controller node, for reset and rescan (Linux accepts those only there).
        let management: Result<any NodeChannel, ControllerError>
        if sysNode.name.kind == .controller {
            management = .success(attached)
        } else {
            do throws(LinuxDeviceError) {
                management = .success(try Self.openNode("/dev/" + sysNode.controller, readOnly: true))
            } catch {
                management = .failure(ControllerError(errno: error.errno))
            }
        }

        var namespaces: [DiscoveredNamespace] = []
        for entry in sysfs.namespaces(of: sysNode.controller) {
            let channel: Result<any NodeChannel, ControllerError>
            var nsid = entry.nsid
            if attachedNSID != 0, entry.nsid == attachedNSID || Self.sameNamespace(entry, sysNode) {
                channel = .success(attached)
                nsid = attachedNSID
            } else {
                channel = Self.openNamespace(entry)
                if case .success(let c) = channel, let id = try? c.namespaceID() { nsid = id }
            }
            guard let nsid, nsid != 0 else { continue }
            namespaces.append(DiscoveredNamespace(nsid: nsid, channel: channel, zoned: entry.zoned,
                                                  partitions: sysfs.partitions(of: entry.blockName)))
        }
        if attachedNSID != 0 && !namespaces.contains(where: { $0.nsid == attachedNSID }) {
            namespaces.append(DiscoveredNamespace(nsid: attachedNSID, channel: .success(attached)))
        }
        let node = NodeName(kind: sysNode.name.kind, controller: sysNode.name.controller, nsid: attachedNSID,
                            partition: sysNode.name.partition)
        try self.init(path: path, node: node, admin: attached, management: management, namespaces: namespaces,
                      effectsLog: effectsLog)
    }

    /// Attaches through `admin` (the node `path` is): reads Identify Controller, each
    /// namespace's Identify Namespace, and the effects logs.
    init(path: String, node: NodeName, admin: any NodeChannel, management: Result<any NodeChannel, ControllerError>,
         namespaces: [DiscoveredNamespace], effectsLog fallback: CommandEffectsLog?) throws(LinuxDeviceError) {
        self.path = path
        self.node = node
        self.admin = admin
        self.management = management

        let controllerData = try Self.identify(admin, path: path, cns: .controller, nsid: 0, what: "Identify Controller")
        let id = controllerData.withUnsafeBytes { $0.loadUnaligned(as: nvme_id_ctrl.self) }
        identity = ControllerIdentity(model: Self.text(id.mn), firmwareRevision: Self.text(id.fr), serialNumber: Self.text(id.sn))
        reportsEffectsLog = id.lpa & UInt8(NVME_CTRL_LPA_CMD_EFFECTS.rawValue) != 0

        var list: [NamespaceInfo] = []
        var channels: [UInt32: Result<any NodeChannel, ControllerError>] = [:]
        var commandSets: Set<CommandSet> = [.nvm]
        for found in namespaces.sorted(by: { $0.nsid < $1.nsid }) where channels[found.nsid] == nil {
            // A namespace the controller fails to identify is left out; a host-side refusal stops the attach.
            var data = [UInt8](repeating: 0, count: 4096)
            let identifyNamespace = SubmissionQueueEntry(opcode: AdminOpcode.identify.rawValue, nsid: found.nsid,
                                                         cdw10: UInt32(IdentifyCNS.namespace.rawValue))
            guard try Self.send(identifyNamespace, through: admin, data: &data, path: path,
                                what: "Identify Namespace \(found.nsid) (Identify 06h, CNS 00h)").status.isSuccess else { continue }
            let ns = data.withUnsafeBytes { $0.loadUnaligned(as: nvme_id_ns.self) }
            let blocks = UInt64(littleEndian: ns.nsze)
            guard blocks != 0 else { continue }   // allocated but not attached to this controller
            let format = Int(ns.flbas & 0xF) | (ns.nlbaf > 16 ? Int(ns.flbas >> 5 & 0x3) << 4 : 0)
            let lbaf = withUnsafeBytes(of: ns.lbaf) { $0.loadUnaligned(fromByteOffset: 4 * format, as: nvme_lbaf.self) }
            let metadata = UInt32(UInt16(littleEndian: lbaf.ms))
            // Extended LBAs (FLBAS bit 4) carry the metadata inside each block's data.
            let extended = ns.flbas & 0x10 != 0
            let dataSize = UInt32(1) << UInt32(min(lbaf.ds, 31)) + (extended ? metadata : 0)
            let commandSet = Self.commandSet(admin, nsid: found.nsid, zoned: found.zoned)
            commandSets.insert(commandSet)
            let partitions = found.partitions.map { p in
                LBARange(start: p.startSector * 512 / UInt64(dataSize), count: p.sectors * 512 / UInt64(dataSize))
            }
            list.append(NamespaceInfo(nsid: found.nsid, commandSet: commandSet, lbaDataSize: dataSize,
                                      metadataSize: extended ? 0 : metadata, blockCount: blocks, partitions: partitions))
            channels[found.nsid] = found.channel
        }
        namespaceList = list
        ioChannels = channels

        var logs: [CommandSet: CommandEffectsLog] = [:]
        if reportsEffectsLog {
            for set in commandSets.sorted(by: { $0.rawValue < $1.rawValue }) {
                switch try Self.readEffectsLog(admin, path: path, commandSet: set, fallback: fallback) {
                case .some(let log): logs[set] = log
                case .none: break
                }
            }
        }
        self.logs = logs
    }

    // MARK: Controller

    public func namespaces() -> [NamespaceInfo] { namespaceList }

    public func effectsLog(for commandSet: CommandSet) -> CommandEffectsLog? { logs[commandSet] }

    public func submit(_ command: borrowing SubmissionEntry, queue: Queue, data: UnsafeMutableRawBufferPointer,
                       metadata: UnsafeMutableRawBufferPointer) throws(ControllerError) -> Completion {
        if queue == .admin { return try admin.passthru(command, queue: .admin, data: data, metadata: metadata) }
        // Linux refuses an I/O command naming a namespace other than its node's with EINVAL.
        guard let channel = ioChannels[command.nsid] else { throw ControllerError(errno: EINVAL) }
        return try channel.get().passthru(command, queue: .io, data: data, metadata: metadata)
    }

    public func reset() throws(ControllerError) { try management.get().manage(.reset) }
    public func subsystemReset() throws(ControllerError) { try management.get().manage(.subsystemReset) }
    public func rescan() throws(ControllerError) { try management.get().manage(.rescan) }

    // MARK: Attach

    /// Opens `path` read-write, or read-only when this process may not write it (or
    /// `readOnly`). The error names the path and carries open(2)'s errno.
    static func openNode(_ path: String, readOnly: Bool = false) throws(LinuxDeviceError) -> LibNVMeNode {
        if !readOnly {
            let fd = open(path, O_RDWR | O_CLOEXEC)
            if fd >= 0 { return LibNVMeNode(descriptor: fd) }
            guard errno == EACCES || errno == EPERM || errno == EROFS else {
                throw LinuxDeviceError("\(path): \(String(cString: strerror(errno)))", errno: errno)
            }
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw LinuxDeviceError("\(path): \(String(cString: strerror(errno)))", errno: errno) }
        return LibNVMeNode(descriptor: fd)
    }

    /// A namespace's own node for I/O: the generic node, else the block device.
    static func openNamespace(_ entry: Sysfs.NamespaceEntry) -> Result<any NodeChannel, ControllerError> {
        do throws(LinuxDeviceError) { return .success(try openNode("/dev/" + entry.genericName)) } catch {
            do throws(LinuxDeviceError) { return .success(try openNode("/dev/" + entry.blockName)) } catch let block {
                // ENOENT for the generic node (kernels before 5.13 have none): the block device's errno says more.
                return .failure(ControllerError(errno: error.errno == ENOENT ? block.errno : error.errno))
            }
        }
    }

    /// Whether sysfs's `entry` is the namespace `node` (a namespace, generic or partition node) belongs to.
    static func sameNamespace(_ entry: Sysfs.NamespaceEntry, _ node: Sysfs.Node) -> Bool {
        switch node.name.kind {
        case .controller: false
        case .namespace, .partition: entry.blockName == "nvme\(node.name.controller)n\(node.name.nsid)"
        case .generic: entry.genericName == node.kernelName
        }
    }

    /// One Identify (4096 bytes) through `channel`; a refusal or failure names the path and what was sent.
    static func identify(_ channel: any NodeChannel, path: String, cns: IdentifyCNS, nsid: UInt32,
                         what: String) throws(LinuxDeviceError) -> [UInt8] {
        var data = [UInt8](repeating: 0, count: 4096)
        let command = SubmissionQueueEntry(opcode: AdminOpcode.identify.rawValue, nsid: nsid, cdw10: UInt32(cns.rawValue))
        let completion = try send(command, through: channel, data: &data, path: path, what: what + " (Identify 06h, CNS \(hexByte(cns.rawValue)))")
        guard completion.status.isSuccess else {
            throw LinuxDeviceError("\(path): \(what): NVMe status \(Self.hex(completion.status.rawValue))", errno: EIO)
        }
        return data
    }

    /// The command set of namespace `nsid`: the CSI of its Namespace Identification Descriptor
    /// list (CNS 03h); where that is refused or absent, Zoned if sysfs says so, else NVM.
    static func commandSet(_ channel: any NodeChannel, nsid: UInt32, zoned: Bool) -> CommandSet {
        var data = [UInt8](repeating: 0, count: 4096)
        let command = SubmissionQueueEntry(opcode: AdminOpcode.identify.rawValue, nsid: nsid,
                                           cdw10: UInt32(IdentifyCNS.namespaceIdentificationDescriptorList.rawValue))
        let fallback: CommandSet = zoned ? .zoned : .nvm
        guard let completion = try? send(command, through: channel, data: &data, path: "", what: ""),
              completion.status.isSuccess else { return fallback }
        var offset = 0
        while offset + 4 < data.count, data[offset] != 0 {   // NIDT, NIDL, 2 reserved, NID
            if UInt32(data[offset]) == NVME_NIDT_CSI.rawValue { return CommandSet(rawValue: data[offset + 4]) }
            offset += 4 + Int(data[offset + 1])
        }
        return fallback
    }

    /// The Commands Supported and Effects log for `commandSet` (Get Log Page, LID 05h, CSI in
    /// CDW14), as libnvme's nvme_get_log_cmd_effects reads it. A device failure gives nil, as
    /// Linux then falls back to known effects; Linux refusing this process gives `fallback`
    /// for the NVM command set, or an error saying how to provide one.
    static func readEffectsLog(_ channel: any NodeChannel, path: String, commandSet: CommandSet,
                               fallback: CommandEffectsLog?) throws(LinuxDeviceError) -> CommandEffectsLog? {
        var data = [UInt8](repeating: 0, count: CommandEffectsLog.size)
        let dwords = UInt32(CommandEffectsLog.size / 4 - 1)
        let command = SubmissionQueueEntry(opcode: AdminOpcode.getLogPage.rawValue, nsid: NVME_NSID_ALL.rawValue,
                                           cdw10: UInt32(LogPageID.commandsSupportedAndEffects.rawValue) | dwords << 16,
                                           cdw14: UInt32(commandSet.rawValue) << 24)
        let completion: Completion
        do throws(ControllerError) {
            completion = try adminCommand(command, through: channel, data: &data)
        } catch where error.errno == EACCES || error.errno == EPERM {
            if let fallback, commandSet == .nvm { return fallback }
            if commandSet != .nvm { return nil }
            throw LinuxDeviceError(
                "\(path): reading the Commands Supported and Effects log (Get Log Page 02h, LID 05h) was refused: \(String(cString: strerror(error.errno))); Linux lets only CAP_SYS_ADMIN send Get Log Page. Give the log another way: as root, `nvme get-log \(path) --log-id=5 --log-len=4096 -b > effects.bin`, then --effects-log effects.bin",
                errno: error.errno)
        } catch {
            throw LinuxDeviceError("\(path): Get Log Page (02h), Commands Supported and Effects: \(String(cString: strerror(error.errno)))",
                                   errno: error.errno)
        }
        guard completion.status.isSuccess else { return nil }
        return CommandEffectsLog(data)
    }

    /// Sends `command` with `data` as its buffer; a host-side failure names the path and `what`.
    static func send(_ command: SubmissionQueueEntry, through channel: any NodeChannel, data: inout [UInt8], path: String,
                     what: String) throws(LinuxDeviceError) -> Completion {
        do throws(ControllerError) {
            return try adminCommand(command, through: channel, data: &data)
        } catch {
            var message = "\(path): \(what): \(String(cString: strerror(error.errno)))"
            if error.errno == EACCES || error.errno == EPERM {
                message += " (Linux before 6.2 lets only CAP_SYS_ADMIN send passthrough commands, 6.2 and later let anyone who can open the node send Identify)"
            }
            throw LinuxDeviceError(message, errno: error.errno)
        }
    }

    /// One admin command through `channel` with `data` as its buffer.
    static func adminCommand(_ command: SubmissionQueueEntry, through channel: any NodeChannel,
                             data: inout [UInt8]) throws(ControllerError) -> Completion {
        let result = data.withUnsafeMutableBytes { buffer in
            command.withEntry { e in
                Result { () throws(ControllerError) -> Completion in
                    try channel.passthru(e, queue: .admin, data: buffer, metadata: UnsafeMutableRawBufferPointer(start: nil, count: 0))
                }
            }
        }
        return try result.get()
    }

    /// An Identify string field (space padded ASCII) without its padding.
    static func text<T>(_ field: T) -> String {
        withUnsafeBytes(of: field) { raw in
            var bytes = Array(raw.prefix { $0 != 0 })
            while bytes.last == 0x20 { bytes.removeLast() }
            return String(decoding: bytes, as: UTF8.self)
        }
    }

    static func hex(_ value: UInt16) -> String {
        let digits = String(value, radix: 16)
        return "0x" + String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }
}
