import Glibc
import NVMeGate
@testable import NVMeLinux
import NVMeSpec
import NVMeTargets
import Testing

@Suite("Attaching to a device: Identify, namespaces, effects logs")
struct AttachTests {
    static let nvmLog = effectsLog([(.admin, 0x06, .supported), (.io, 0x02, .supported),
                                    (.io, 0x01, CommandEffects(supported: true, logicalBlockContentChange: true))])
    static let zonedLog = effectsLog([(.admin, 0x06, .supported), (.io, 0x7A, .supported)])

    @Test("Identify Controller gives the identity; Identify Namespace the format and size")
    func identity() throws {
        let device = FakeDevice(namespaces: [1: .init(blocks: 0x20000, lbads: 12, metadata: 8), 3: .init(blocks: 77)],
                                logs: [.nvm: Self.nvmLog])
        let c = try attach(device)
        #expect(c.identity == ControllerIdentity(model: "fake NVMe controller", firmwareRevision: "2.0", serialNumber: "FAKE0001"))
        #expect(c.namespaces() == [
            NamespaceInfo(nsid: 1, commandSet: .nvm, lbaDataSize: 4096, metadataSize: 8, blockCount: 0x20000),
            NamespaceInfo(nsid: 3, commandSet: .nvm, lbaDataSize: 512, metadataSize: 0, blockCount: 77),
        ])
    }

    @Test("LPA bit 1: the effects log is read once per command set in use, CSI in CDW14")
    func effectsPerCommandSet() throws {
        let device = FakeDevice(namespaces: [1: .init(blocks: 100), 2: .init(blocks: 100, commandSet: .zoned)],
                                logs: [.nvm: Self.nvmLog, .zoned: Self.zonedLog])
        let c = try attach(device)
        #expect(c.reportsEffectsLog)
        #expect(c.effectsLog(for: .nvm) == Self.nvmLog)
        #expect(c.effectsLog(for: .zoned) == Self.zonedLog)
        #expect(c.effectsLog(for: .keyValue) == nil)
        #expect(c.namespaces().map(\.commandSet) == [.nvm, .zoned])
        let reads = device.sent.filter { $0.0 == .admin && $0.1.opcode == 0x02 }.map(\.1)
        #expect(reads.map { $0[cdw: 4] } == [0, 2 << 24])
        #expect(reads.allSatisfy { $0[cdw: 0] == 0x03FF_0005 && $0.nsid == 0xFFFF_FFFF })
    }

    @Test("No effects log (LPA bit 1 clear): none is read, and the kernel policy falls back as Linux does")
    func noEffectsLog() throws {
        let device = FakeDevice(lpa: 0x01, logs: [.nvm: Self.nvmLog])
        let c = try attach(device)
        #expect(!c.reportsEffectsLog)
        #expect(c.effectsLog(for: .nvm) == nil)
        #expect(!device.sent.contains { $0.1.opcode == 0x02 })
        let gate = Gate(controller: c)
        #expect(!gate.policy.controllerHasEffectsLog)
        // Known effects only: Write Zeroes and Write are LBCC, nothing is supported.
        let effective = try #require(gate.policy.effectiveLogs[.nvm])
        #expect(effective[.io, 0x08] == .logicalBlockContentChange)
        #expect(!effective[.io, 0x02].isSupported)
        let handle = gate.open(node: "ng0n1", writable: true, caller: Caller(uid: 1000, gid: 1000))
        let context = try #require(gate.handleState(handle)).context
        let read = SubmissionQueueEntry(opcode: 0x02, nsid: 1).withEntry { gate.policy.decide($0, queue: .io, handle: context) }
        #expect(read == .notSupported)
        let identify = SubmissionQueueEntry(opcode: 0x06, cdw10: 1).withEntry { gate.policy.decide($0, queue: .admin, handle: context) }
        #expect(identify == .allowed)
    }

    @Test("The same controller with the log: Read passes for an unprivileged read-only handle, Write does not")
    func withEffectsLog() throws {
        let gate = Gate(controller: try attach(FakeDevice(logs: [.nvm: Self.nvmLog])))
        let handle = gate.open(node: "nvme0n1", writable: false, caller: Caller(uid: 1000, gid: 1000))
        let context = try #require(gate.handleState(handle)).context
        #expect(SubmissionQueueEntry(opcode: 0x02, nsid: 1).withEntry { gate.policy.decide($0, queue: .io, handle: context) } == .allowed)
        #expect(SubmissionQueueEntry(opcode: 0x01, nsid: 1).withEntry { gate.policy.decide($0, queue: .io, handle: context) } == .needsWriteOpen)
    }

    @Test("Linux refusing the effects log: an error naming the path and the way out, or the log given instead")
    func effectsLogRefused() throws {
        let refused = FakeDevice(logOutcome: .failure(ControllerError(errno: EACCES)))
        let error = #expect(throws: LinuxDeviceError.self) { try attach(refused) }
        #expect(error?.errno == EACCES)
        #expect(error?.description.hasPrefix("/dev/fake0: reading the Commands Supported and Effects log (Get Log Page 02h, LID 05h) was refused: Permission denied") == true)
        #expect(error?.description.contains("--effects-log effects.bin") == true)
        let c = try attach(refused, effectsLog: Self.nvmLog)
        #expect(c.effectsLog(for: .nvm) == Self.nvmLog)
        let other = #expect(throws: LinuxDeviceError.self) {
            try attach(FakeDevice(logOutcome: .failure(ControllerError(errno: EIO))))
        }
        #expect(other?.errno == EIO)
    }

    @Test("The device failing Get Log Page: no log, Linux's fallback")
    func effectsLogDeviceFailure() throws {
        let c = try attach(FakeDevice(logOutcome: .success(NVMeStatus(type: .commandSpecific, code: 0x09, doNotRetry: true))))
        #expect(c.reportsEffectsLog)
        #expect(c.effectsLog(for: .nvm) == nil)
    }

    @Test("Identify refused by Linux (before 6.2, without CAP_SYS_ADMIN): the attach fails naming the command")
    func identifyRefused() {
        final class Refusing: NodeChannel {
            func passthru(_ command: borrowing SubmissionEntry, queue: Queue, data: UnsafeMutableRawBufferPointer,
                          metadata: UnsafeMutableRawBufferPointer) throws(ControllerError) -> Completion {
                throw ControllerError(errno: EACCES)
            }
            func namespaceID() throws(ControllerError) -> UInt32 { 1 }
            func manage(_ request: IoctlRequest) throws(ControllerError) {}
        }
        let error = #expect(throws: LinuxDeviceError.self) {
            try LinuxController(path: "/dev/ng0n1", node: NodeName(kind: .generic, controller: 0, nsid: 1), admin: Refusing(),
                                management: .failure(ControllerError(errno: EACCES)), namespaces: [], effectsLog: nil)
        }
        #expect(error?.errno == EACCES)
        #expect(error?.description.hasPrefix("/dev/ng0n1: Identify Controller (Identify 06h, CNS 01h): Permission denied") == true)
    }

    @Test("Namespaces the controller reports inactive (all-zero Identify Namespace) are left out")
    func inactiveNamespace() throws {
        let device = FakeDevice(namespaces: [1: .init(blocks: 10)], logs: [.nvm: Self.nvmLog])
        let c = try LinuxController(path: "/dev/fake0", node: NodeName(kind: .controller, controller: 0), admin: device,
                                    management: .success(device),
                                    namespaces: [.init(nsid: 1, channel: .success(device)), .init(nsid: 5, channel: .success(device))],
                                    effectsLog: nil)
        #expect(c.namespaces().map(\.nsid) == [1])
    }

    @Test("Partitions from sysfs sectors become LBA ranges of the namespace's format")
    func partitions() throws {
        let device = FakeDevice(namespaces: [1: .init(blocks: 1 << 20, lbads: 12)], logs: [.nvm: Self.nvmLog])
        let c = try LinuxController(path: "/dev/fake0", node: NodeName(kind: .controller, controller: 0), admin: device,
                                    management: .success(device),
                                    namespaces: [.init(nsid: 1, channel: .success(device),
                                                       partitions: [Sysfs.Partition(number: 1, startSector: 2048, sectors: 8192)])],
                                    effectsLog: nil)
        #expect(c.namespaces().first?.partitions == [LBARange(start: 256, count: 1024)])
    }
}

@Suite("Commands through the gate to a device: routing, status, result and errno as the kernel returned them")
struct SubmitTests {
    /// A 72- or 80-byte nvme_passthru_cmd.
    static func passthru(_ opcode: UInt8, nsid: UInt32, cdw10: UInt32 = 0, is64: Bool) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: is64 ? 80 : 72)
        bytes[0] = opcode
        bytes.withUnsafeMutableBytes { raw in
            raw.storeBytes(of: nsid.littleEndian, toByteOffset: 4, as: UInt32.self)
            raw.storeBytes(of: cdw10.littleEndian, toByteOffset: 40, as: UInt32.self)
        }
        return bytes
    }

    static let root = Caller(uid: 0, gid: 0, capabilities: .sysAdmin)

    @Test("A positive status and the full 64-bit result come back as the kernel returned them")
    func statusAndResult() throws {
        let device = FakeDevice(logs: [.nvm: AttachTests.nvmLog], reply: { _, _ in
            .success(Completion(status: NVMeStatus(rawValue: 0x4002), dw0: 0xAABB_CCDD, dw1: 0x1122_3344))
        })
        let gate = Gate(controller: try attach(device))
        let handle = gate.open(node: "nvme0", writable: false, caller: Self.root)
        var cmd64 = Self.passthru(0x0A, nsid: 0, cdw10: 7, is64: true)
        let outcome64 = cmd64.withUnsafeMutableBytes { gate.ioctl(handle, request: IoctlRequest.admin64Command.rawValue, argument: $0.baseAddress) }
        #expect(outcome64 == .returned(0x4002))
        #expect(cmd64.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 72, as: UInt64.self) } == 0x1122_3344_AABB_CCDD)
        var cmd32 = Self.passthru(0x0A, nsid: 0, cdw10: 7, is64: false)
        let outcome32 = cmd32.withUnsafeMutableBytes { gate.ioctl(handle, request: IoctlRequest.adminCommand.rawValue, argument: $0.baseAddress) }
        #expect(outcome32 == .returned(0x4002))
        #expect(cmd32.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 68, as: UInt32.self) } == 0xAABB_CCDD)
    }

    @Test("An errno from the kernel comes back as the ioctl's errno")
    func errnoPassesThrough() throws {
        let device = FakeDevice(logs: [.nvm: AttachTests.nvmLog], reply: { _, _ in .failure(ControllerError(errno: EINTR)) })
        let gate = Gate(controller: try attach(device))
        let handle = gate.open(node: "nvme0", writable: false, caller: Self.root)
        var cmd = Self.passthru(0x0A, nsid: 0, cdw10: 7, is64: false)
        let outcome = cmd.withUnsafeMutableBytes { gate.ioctl(handle, request: IoctlRequest.adminCommand.rawValue, argument: $0.baseAddress) }
        #expect(outcome == .failed(errno: EINTR))
    }

    @Test("Admin goes through the attached node, I/O through the namespace's node; an unknown NSID is EINVAL")
    func routing() throws {
        let admin = FakeDevice(namespaces: [1: .init(blocks: 100), 2: .init(blocks: 100)], logs: [.nvm: AttachTests.nvmLog])
        let io = FakeDevice(reply: { sqe, _ in .success(Completion(dw0: sqe.nsid)) })
        let c = try LinuxController(path: "/dev/nvme0", node: NodeName(kind: .controller, controller: 0), admin: admin,
                                    management: .failure(ControllerError(errno: EACCES)),
                                    namespaces: [.init(nsid: 1, channel: .success(io)),
                                                 .init(nsid: 2, channel: .failure(ControllerError(errno: EACCES)))],
                                    effectsLog: nil)
        let before = admin.sent.count
        var none = [UInt8]()
        func send(_ queue: Queue, _ sqe: SubmissionQueueEntry) -> Result<Completion, ControllerError> {
            none.withUnsafeMutableBytes { buffer in
                sqe.withEntry { e in Result { () throws(ControllerError) in try c.submit(e, queue: queue, data: buffer, metadata: buffer) } }
            }
        }
        #expect(try send(.io, SubmissionQueueEntry(opcode: 0x00, nsid: 1)).get().dw0 == 1)
        #expect(io.sent.map(\.0) == [.io])
        #expect(admin.sent.count == before)
        _ = send(.admin, SubmissionQueueEntry(opcode: 0x0A, cdw10: 7))
        #expect(admin.sent.count == before + 1 && admin.sent.last?.0 == .admin)
        // A namespace whose node this process could not open: the open's errno.
        #expect(throws: ControllerError(errno: EACCES)) { try send(.io, SubmissionQueueEntry(opcode: 0x00, nsid: 2)).get() }
        #expect(throws: ControllerError(errno: EINVAL)) { try send(.io, SubmissionQueueEntry(opcode: 0x00, nsid: 9)).get() }
        #expect(throws: ControllerError(errno: EACCES)) { try c.reset() }
    }

    @Test("Reset, subsystem reset and rescan go to the controller node")
    func management() throws {
        let device = FakeDevice(logs: [.nvm: AttachTests.nvmLog])
        let c = try attach(device)
        try c.reset(); try c.subsystemReset(); try c.rescan()
        #expect(device.sent.filter { $0.1.opcode == 0xFF }.map { UInt($0.1[cdw: 0]) }
                == [IoctlRequest.reset, .subsystemReset, .rescan].map(\.rawValue))
    }
}

@Suite("libnvme on a real file descriptor")
struct LibNVMeNodeTests {
    @Test("The ioctl's return value: negative is its errno, else the status with the result split into DW0 and DW1")
    func returnValues() throws {
        #expect(throws: ControllerError(errno: ENOTTY)) { try LibNVMeNode.completion(returned: -1, errno: ENOTTY, result: 5) }
        #expect(try LibNVMeNode.completion(returned: 0x4001, errno: 0, result: 0x1_0000_0002)
                == Completion(status: NVMeStatus(rawValue: 0x4001), dw0: 2, dw1: 1))
        #expect(try LibNVMeNode.completion(returned: 0, errno: EINVAL, result: 7) == Completion(dw0: 7))
    }

    @Test("/dev/null through libnvme: every NVMe ioctl is ENOTTY, as the kernel answers it")
    func devNull() throws {
        let fd = open("/dev/null", O_RDWR)
        try #require(fd >= 0)
        let node = LibNVMeNode(descriptor: fd)
        var data = [UInt8](repeating: 0, count: 4096)
        let outcome = data.withUnsafeMutableBytes { buffer in
            SubmissionQueueEntry(opcode: 0x06, cdw10: 1).withEntry { e in
                Result { () throws(ControllerError) in try node.passthru(e, queue: .admin, data: buffer, metadata: UnsafeMutableRawBufferPointer(start: nil, count: 0)) }
            }
        }
        #expect(throws: ControllerError(errno: ENOTTY)) { try outcome.get() }
        #expect(throws: ControllerError(errno: ENOTTY)) { try node.namespaceID() }
        #expect(throws: ControllerError(errno: ENOTTY)) { try node.manage(.rescan) }
    }
}

@Suite("Device paths that are not NVMe devices: clear errors naming the path")
struct DevicePathTests {
    @Test("A path that does not exist: ENOENT")
    func missing() {
        let error = #expect(throws: LinuxDeviceError.self) { try LinuxController(path: "/nonexistent/nvme0") }
        #expect(error == LinuxDeviceError("/nonexistent/nvme0: No such file or directory", errno: ENOENT))
    }

    @Test("A regular file: ENODEV, not a block or character device")
    func regularFile() throws {
        var template = Array("/tmp/nvmegate-linux-XXXXXX".utf8CString)
        let fd = mkstemp(&template)
        try #require(fd >= 0)
        close(fd)
        let path = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        defer { unlink(path) }
        let error = #expect(throws: LinuxDeviceError.self) { try LinuxController(path: path) }
        #expect(error == LinuxDeviceError("\(path) is not a block or character device", errno: ENODEV))
    }

    @Test("/dev/null: ENODEV, and sysfs's name for it")
    func devNull() {
        let error = #expect(throws: LinuxDeviceError.self) { try LinuxController(path: "/dev/null") }
        #expect(error == LinuxDeviceError("/dev/null is not an NVMe device node (character device 1:3, \"null\" in sysfs)", errno: ENODEV))
    }

    @Test("Target specs: a path is a device, its error and errno carried to the C ABI and the CLI")
    func targets() {
        #expect(Target.isDevicePath("/dev/nvme0") && !Target.isDevicePath("emulated"))
        let error = #expect(throws: Target.SpecError.self) { try Target.attach("/dev/null") }
        #expect(error?.errno == ENODEV)
        #expect(error?.description.hasPrefix("/dev/null is not an NVMe device node") == true)
        let unknown = #expect(throws: Target.SpecError.self) { try Target.open("floppy") }
        #expect(unknown?.description.contains("or a device path such as /dev/nvme0") == true)
    }
}
