#if canImport(Glibc)
import Glibc
#endif
import NVMeGate
import NVMeSpec

/// Reads a fuzz input front to back as the fields a target needs; past the end every read
/// gives zeros, so every input decodes to something.
struct FuzzInput {
    let bytes: UnsafeRawBufferPointer
    var offset = 0

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    var isEmpty: Bool { offset >= bytes.count }

    mutating func u8() -> UInt8 {
        guard offset < bytes.count else { return 0 }
        defer { offset += 1 }
        return bytes[offset]
    }
    mutating func u16() -> UInt16 { UInt16(u8()) | UInt16(u8()) << 8 }
    mutating func u32() -> UInt32 { UInt32(u16()) | UInt32(u16()) << 16 }
    mutating func u64() -> UInt64 { UInt64(u32()) | UInt64(u32()) << 32 }
    mutating func bool() -> Bool { u8() & 1 != 0 }
    /// One of `choices`.
    mutating func pick<T>(_ choices: [T]) -> T { choices[Int(u8()) % choices.count] }
    /// Up to `count` bytes (fewer at the end of the input).
    mutating func take(_ count: Int) -> [UInt8] {
        let n = max(0, min(count, bytes.count - offset))
        defer { offset += n }
        return Array(bytes[offset..<offset + n])
    }

    /// A 64-bit value biased towards the edges hostile callers try: 0, 1, all ones, values
    /// near `near` (a range end the target cares about), and anything.
    mutating func edgy(near: UInt64) -> UInt64 {
        switch u8() % 8 {
        case 0: return 0
        case 1: return UInt64.max &- UInt64(u8())
        case 2, 3: return near &+ UInt64(bitPattern: Int64(Int8(bitPattern: u8())))
        case 4: return UInt64(u16())
        default: return u64()
        }
    }
}

/// Stops the run with a finding: libFuzzer reports the crash and saves the input.
func finding(_ message: @autoclosure () -> String, file: StaticString = #fileID, line: UInt = #line) -> Never {
    report("nvmegate-fuzz finding at \(file):\(line): \(message())\n")
    abort()
}

/// Writes `text` to standard error, unbuffered.
func report(_ text: String) {
    var bytes = Array(text.utf8)
    _ = write(2, &bytes, bytes.count)
}

/// `finding` unless `condition` holds.
func require(_ condition: Bool, _ message: @autoclosure () -> String, file: StaticString = #fileID, line: UInt = #line) {
    if !condition { finding(message(), file: file, line: line) }
}

/// The ioctl's outcome as Linux's convention: the value, or -errno.
func value(_ outcome: IoctlOutcome) -> Int32 {
    switch outcome {
    case .returned(let v): v
    case .failed(let e): -e
    }
}

/// Memory a target owns: `count` bytes, exactly (AddressSanitizer reports any access past
/// either end), filled with `fill`.
final class Arena {
    let buffer: UnsafeMutableRawBufferPointer
    init(count: Int, fill: UInt8 = 0) {
        buffer = .allocate(byteCount: count, alignment: 8)
        buffer.initializeMemory(as: UInt8.self, repeating: fill)
    }
    deinit { buffer.deallocate() }
    var base: UnsafeMutableRawPointer { buffer.baseAddress! }
    var address: UInt64 { UInt64(UInt(bitPattern: buffer.baseAddress)) }
    var bytes: [UInt8] { Array(buffer) }
    /// Whether `[start, start + count)` lies inside this arena.
    func contains(_ start: UnsafeRawPointer?, count: Int) -> Bool {
        guard let start else { return count == 0 }
        let s = UInt(bitPattern: start), b = UInt(bitPattern: buffer.baseAddress)
        return s >= b && s - b <= UInt(buffer.count) && UInt(count) <= UInt(buffer.count) - (s - b)
    }
}

/// The controller the decision and ioctl targets stand behind: five namespaces of every
/// kind the gate tells apart, and an effects log per command set that a fuzz input chooses.
enum Fixture {
    /// NVM with 512-byte blocks and two partition slots (the second empty: no node); NVM
    /// with 4 KiB blocks and 8 bytes of metadata per block; Key Value; Zoned; a vendor
    /// command set (30h) the gate has no table for.
    static let namespaces: [NamespaceInfo] = [
        NamespaceInfo(nsid: 1, blockCount: 4096, partitions: [LBARange(start: 1024, count: 1024), LBARange(start: 0, count: 0)]),
        NamespaceInfo(nsid: 2, lbaDataSize: 4096, metadataSize: 8, blockCount: 1024),
        NamespaceInfo(nsid: 3, commandSet: .keyValue, blockCount: 4096),
        NamespaceInfo(nsid: 4, commandSet: .zoned, blockCount: 4096),
        NamespaceInfo(nsid: 5, commandSet: CommandSet(rawValue: 0x30), blockCount: 4096),
    ]

    static let identity = ControllerIdentity(model: "nvmegate fuzz controller", firmwareRevision: "1.0", serialNumber: "FUZZ1")

    static let nodes = ["nvme0", "nvme0n1", "ng0n1", "nvme0n1p1", "nvme0n1p2", "nvme0n2", "ng0n2", "nvme0n3", "nvme0n4",
                        "nvme0n5", "nvme0n9", "nvme1", "nvme0n1p3"]

    /// Callers: every tenant of `tenantPolicy`, one matched by gid, nobody, and root.
    static let callers: [Caller] = [
        Caller(uid: 1001, gid: 1001), Caller(uid: 1002, gid: 1002), Caller(uid: 5555, gid: 2000),
        Caller(uid: 1005, gid: 1005), Caller(uid: 3000, gid: 3000), Caller(uid: 4000, gid: 4000),
        Caller(uid: 4001, gid: 4001), Caller(uid: 1000, gid: 1000), Caller(uid: 0, gid: 0),
        Caller(uid: 7, gid: 7, name: "backup-agent"),
    ]
    static let capabilitySets: [Capabilities] = [[], [], [], .sysAdmin, .sysRawIO, Capabilities(rawValue: 1 << 3)]

    /// A policy with a tenant for every kind of grant: a whole namespace, adjacent and
    /// read-only LBA ranges, read-only namespaces, a confined partition, monitoring, every
    /// namespace, a narrow rule set; vendor opt-ins vouched for by an effects override.
    static let tenantPolicyText = """
        version = 1
        name = "fuzz-tenants"
        [privileges]
        bypass = ["CAP_SYS_ADMIN"]
        management = ["CAP_SYS_ADMIN", "CAP_SYS_RAWIO"]

        [[effects.override]]
        model = "nvmegate fuzz*"
        queue = "io"
        opcode = 0xC1
        effects = ["NCC"]
        [[effects.override]]
        model = "nvmegate fuzz controller"
        firmware = "1.*"
        queue = "admin"
        opcode = 0xC6
        effects = ["CSUPP"]
        replace = true

        [default]
        partitions = "confined"
        [default.admin]
        identify_cns = [0x01]
        [default.io]
        commands = "supported"
        permitted_effects = ["LBCC", "USS", "CSP"]

        [[tenant]]
        name = "db"
        uids = [1001]
        rules = "kernel"
        namespaces = [1]
        [tenant.admin]
        commands = ["Format NVM", "Set Features", "Sanitize", "Namespace Management", 0xC5, 0xC6]
        identify_cns = [0x03, 0x02, 0x12]
        log_pages = [0x01, 0x02]
        features = [0x05, 0x07]
        [tenant.io]
        vendor_commands = [0xC1, 0xC2]

        [[tenant]]
        name = "scratch"
        uids = [1002]
        callers = ["backup-agent"]
        rules = "kernel"
        partitions = true
        [tenant.io]
        fused_compare_write = true
        [[tenant.lba_range]]
        nsid = 1
        start = 1000
        blocks = 100
        [[tenant.lba_range]]
        nsid = 1
        start = 1100
        blocks = 100
        [[tenant.lba_range]]
        nsid = 1
        start = 1300
        blocks = 100
        access = "read"
        [[tenant.lba_range]]
        nsid = 3
        start = 0
        blocks = 64
        [[tenant.lba_range]]
        nsid = 4
        start = 0
        blocks = 64

        [[tenant]]
        name = "auditor"
        gids = [2000]
        rules = "kernel"
        read_only_namespaces = [1, 2]

        [[tenant]]
        name = "part"
        uids = [1005]
        rules = "kernel"
        partitions = "confined"
        namespaces = [1]
        [[tenant.lba_range]]
        nsid = 2
        start = 0
        blocks = 512

        [[tenant]]
        name = "monitor"
        uids = [3000]
        [tenant.admin]
        identify_cns = [0x01, 0x02]
        log_pages = [0x01, 0x02, 0x07]
        log_page_lsp = [0x00]
        retain_async_event = "required"

        [[tenant]]
        name = "everything"
        uids = [4000]
        rules = "kernel"
        namespaces = "all"
        [tenant.admin]
        commands = ["Format NVM", "Sanitize", "Get Log Page"]
        [tenant.io]
        commands = ["Read", "Write"]
        vendor_commands = "all"

        [[tenant]]
        name = "narrow"
        uids = [4001]
        rules = "kernel"
        partitions = "confined"
        namespaces = [2, 3, 4, 5]
        [tenant.io]
        commands = ["Read", "Compare", "Dataset Management"]
        write_access = ["LBCC"]
        """

    static let tenantPolicy: Policy = {
        do { return try Policy.parse(tenantPolicyText, file: "fuzz-tenants.toml") } catch { finding("fixture policy: \(error)") }
    }()

    /// An effects log like a controller's with the NVM, Key Value and Zoned I/O commands of
    /// each set marked, then up to eight entries the input rewrites (any bits, lies included).
    static func effectsLogs(_ input: inout FuzzInput) -> [CommandSet: CommandEffectsLog] {
        let supported = CommandEffects.supported.rawValue, changes = supported | CommandEffects.logicalBlockContentChange.rawValue
        var admin = CommandEffectsLog()
        for op: UInt8 in [0x02, 0x06, 0x09, 0x0A, 0x0C, 0x14, 0xC5] { admin.entries[Int(op)] = supported }
        admin.entries[0x0D] = supported | CommandEffects.namespaceInventoryChange.rawValue
        admin.entries[0x15] = supported | CommandEffects.namespaceInventoryChange.rawValue
        admin.entries[0x80] = changes | CommandEffects.namespaceCapabilityChange.rawValue | 1 << 16
        admin.entries[0x84] = changes | 2 << 16
        var nvm = admin, keyValue = admin, zoned = admin
        for op in [0x02, 0x05, 0x0C, 0x0E, 0x0D, 0x11, 0x15] { nvm.entries[256 + op] = supported }
        for op in [0x00, 0x01, 0x04, 0x08, 0x09, 0x19] { nvm.entries[256 + op] = changes }
        for op in [0x02, 0x06, 0x14] { keyValue.entries[256 + op] = supported }
        for op in [0x00, 0x01, 0x10] { keyValue.entries[256 + op] = changes }
        zoned.entries[256...] = nvm.entries[256...]
        zoned.entries[256 + 0x7A] = supported
        zoned.entries[256 + 0x79] = changes
        zoned.entries[256 + 0x7D] = changes
        var logs: [CommandSet: CommandEffectsLog] = [.nvm: nvm, .keyValue: keyValue, .zoned: zoned]
        let interesting: [UInt32] = [0, supported, changes, supported | 1 << 2, supported | 1 << 3, supported | 1 << 4,
                                     supported | 1 << 14, supported | 1 << 16, supported | 1 << 19, supported | 0xFFF0_0000,
                                     supported | 1 << 5, 1 << 1]
        for _ in 0..<Int(input.u8() % 9) {
            let set = input.pick([CommandSet.nvm, .keyValue, .zoned])
            let index = Int(input.u16() % 512)
            logs[set]!.entries[index] = input.bool() ? input.pick(interesting) : input.u32()
        }
        if input.u8() % 16 == 0 { logs = [:] }   // a controller without an effects log
        return logs
    }
}

/// A controller over some of `Fixture.namespaces` that executes nothing: it records what
/// reached it, lets a target hold every command to what the gate promised before handing
/// it over, and answers with the completion the target chose.
final class RecordingController: Controller, @unchecked Sendable {
    let logs: [CommandSet: CommandEffectsLog]
    let namespaceList: [NamespaceInfo]
    var completion = Completion()
    var throwing: Int32 = 0
    /// Called with every command that reaches the controller, with the buffers it got.
    var inspect: (borrowing SubmissionEntry, Queue, UnsafeMutableRawBufferPointer, UnsafeMutableRawBufferPointer) -> Void = { _, _, _, _ in }
    private(set) var reached = 0

    /// `onlyFirst`: namespace 1 alone, so I/O through the controller node goes to it.
    init(logs: [CommandSet: CommandEffectsLog], onlyFirst: Bool) {
        self.logs = logs
        namespaceList = onlyFirst ? [Fixture.namespaces[0]] : Fixture.namespaces
    }

    var identity: ControllerIdentity { Fixture.identity }
    func namespaces() -> [NamespaceInfo] { namespaceList }
    func effectsLog(for commandSet: CommandSet) -> CommandEffectsLog? { logs[commandSet] }
    func submit(_ command: borrowing SubmissionEntry, queue: Queue, data: UnsafeMutableRawBufferPointer,
                metadata: UnsafeMutableRawBufferPointer) throws(ControllerError) -> Completion {
        reached += 1
        inspect(command, queue, data, metadata)
        if throwing != 0 { throw ControllerError(errno: throwing) }
        return completion
    }
    func reset() throws(ControllerError) {}
    func subsystemReset() throws(ControllerError) {}
    func rescan() throws(ControllerError) {}
}
