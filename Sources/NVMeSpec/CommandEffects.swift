/// One entry of the Commands Supported and Effects log (NVMe Base 2.x, "Commands
/// Supported and Effects Data Structure"): what a command may change, and how it must be
/// submitted. Linux's passthrough filter and nvmegate's policies decide from these bits.
@frozen
public struct CommandEffects: RawRepresentable, Hashable, Sendable, BitwiseCopyable {
    public var rawValue: UInt32
    @inlinable public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// CSUPP (bit 0): the controller supports the command.
    public static let supported = CommandEffects(rawValue: 1 << 0)
    /// LBCC (bit 1): may change logical block content (user data).
    public static let logicalBlockContentChange = CommandEffects(rawValue: 1 << 1)
    /// NCC (bit 2): may change the capabilities of a namespace.
    public static let namespaceCapabilityChange = CommandEffects(rawValue: 1 << 2)
    /// NIC (bit 3): may add or remove namespaces, or change the capabilities of several.
    public static let namespaceInventoryChange = CommandEffects(rawValue: 1 << 3)
    /// CCC (bit 4): may change controller capabilities.
    public static let controllerCapabilityChange = CommandEffects(rawValue: 1 << 4)
    /// USS (bit 19): UUID Selection Supported.
    public static let uuidSelectionSupported = CommandEffects(rawValue: 1 << 19)

    /// Bits 13:5, reserved.
    public static let reservedMask: UInt32 = 0x0000_3FE0
    /// CSER, bits 15:14.
    public static let relaxationsMask: UInt32 = 0x0000_C000
    /// CSE, bits 18:16 (three bits since NVMe 2.0; older headers used two).
    public static let submissionAndExecutionMask: UInt32 = 0x0007_0000
    /// CSP, bits 31:20.
    public static let scopeMask: UInt32 = 0xFFF0_0000

    @inlinable public func contains(_ other: CommandEffects) -> Bool { rawValue & other.rawValue == other.rawValue }
    @inlinable public func union(_ other: CommandEffects) -> CommandEffects { .init(rawValue: rawValue | other.rawValue) }
    @inlinable public func intersects(_ mask: UInt32) -> Bool { rawValue & mask != 0 }

    @inlinable public var isSupported: Bool { rawValue & 1 != 0 }
    /// CSER (15:14): 0 none, 1 relaxed with respect to admin commands, 2–3 reserved.
    @inlinable public var relaxations: UInt8 { UInt8(truncatingIfNeeded: rawValue >> 14) & 0x3 }
    /// CSE (18:16): 0 no restriction, 1 exclusive for the same namespace, 2 for any namespace.
    @inlinable public var submissionAndExecution: UInt8 { UInt8(truncatingIfNeeded: rawValue >> 16) & 0x7 }
    /// CSP (31:20), each bit a `CommandScope`.
    @inlinable public var scope: CommandScope { CommandScope(rawValue: UInt16(truncatingIfNeeded: rawValue >> 20)) }

    /// The same effects with the CSE field cleared (what Linux does for I/O commands).
    @inlinable public var withoutSubmissionAndExecution: CommandEffects {
        .init(rawValue: rawValue & ~Self.submissionAndExecutionMask)
    }

    /// Builds an entry field by field.
    public init(supported: Bool = false, logicalBlockContentChange: Bool = false,
                namespaceCapabilityChange: Bool = false, namespaceInventoryChange: Bool = false,
                controllerCapabilityChange: Bool = false, relaxations: UInt8 = 0,
                submissionAndExecution: UInt8 = 0, uuidSelectionSupported: Bool = false,
                scope: CommandScope = []) {
        var v: UInt32 = 0
        if supported { v |= 1 }
        if logicalBlockContentChange { v |= 1 << 1 }
        if namespaceCapabilityChange { v |= 1 << 2 }
        if namespaceInventoryChange { v |= 1 << 3 }
        if controllerCapabilityChange { v |= 1 << 4 }
        v |= UInt32(relaxations & 0x3) << 14
        v |= UInt32(submissionAndExecution & 0x7) << 16
        if uuidSelectionSupported { v |= 1 << 19 }
        v |= UInt32(scope.rawValue & 0xFFF) << 20
        rawValue = v
    }

    /// The spec's abbreviations of the set bits, e.g. `["CSUPP", "LBCC", "CSE=1"]`.
    public var names: [String] {
        var out: [String] = []
        if contains(.supported) { out.append("CSUPP") }
        if contains(.logicalBlockContentChange) { out.append("LBCC") }
        if contains(.namespaceCapabilityChange) { out.append("NCC") }
        if contains(.namespaceInventoryChange) { out.append("NIC") }
        if contains(.controllerCapabilityChange) { out.append("CCC") }
        if rawValue & Self.reservedMask != 0 { out.append("reserved(13:5)") }
        if relaxations != 0 { out.append("CSER=\(relaxations)") }
        if submissionAndExecution != 0 { out.append("CSE=\(submissionAndExecution)") }
        if contains(.uuidSelectionSupported) { out.append("USS") }
        let s = scope
        if !s.isEmpty { out.append("CSP=" + s.names.joined(separator: "|")) }
        return out
    }
}

/// Command Scope (CSP, effects bits 31:20): what a command may affect.
@frozen
public struct CommandScope: OptionSet, Hashable, Sendable {
    public var rawValue: UInt16
    @inlinable public init(rawValue: UInt16) { self.rawValue = rawValue }
    /// Bit 20: Namespace Scope.
    public static let namespace = CommandScope(rawValue: 1 << 0)
    /// Bit 21: Controller Scope.
    public static let controller = CommandScope(rawValue: 1 << 1)
    /// Bit 22: NVM Set Scope.
    public static let nvmSet = CommandScope(rawValue: 1 << 2)
    /// Bit 23: Endurance Group Scope.
    public static let enduranceGroup = CommandScope(rawValue: 1 << 3)
    /// Bit 24: Domain Scope.
    public static let domain = CommandScope(rawValue: 1 << 4)
    /// Bit 25: NVM Subsystem Scope.
    public static let nvmSubsystem = CommandScope(rawValue: 1 << 5)

    public var names: [String] {
        var out: [String] = []
        for (bit, name) in [(CommandScope.namespace, "namespace"), (.controller, "controller"), (.nvmSet, "nvm-set"),
                            (.enduranceGroup, "endurance-group"), (.domain, "domain"), (.nvmSubsystem, "nvm-subsystem")]
        where contains(bit) { out.append(name) }
        if rawValue & ~0x3F != 0 { out.append("reserved") }
        return out
    }
}

/// The Commands Supported and Effects log page (Log Identifier 05h): 256 admin entries
/// (ACS) at byte 0, 256 I/O entries (IOCS) at byte 1024, 2048 reserved bytes; 4096 bytes.
/// The I/O half describes one command set (the CSI the page was read with).
@frozen
public struct CommandEffectsLog: Hashable, Sendable {
    public static let size = 4096
    /// 512 entries: admin opcodes 0...255, then I/O opcodes 0...255.
    public var entries: [UInt32]

    /// An empty log: nothing supported.
    public init() { entries = Array(repeating: 0, count: 512) }

    /// Reads a log page in place from its 4096 bytes (little-endian). Returns nil when
    /// `bytes` is not exactly 4096 bytes long.
    public init?(bytes: RawSpan) {
        guard bytes.byteCount == Self.size else { return nil }
        var e = [UInt32](repeating: 0, count: 512)
        for i in 0..<512 {
            e[i] = UInt32(littleEndian: unsafe bytes.unsafeLoadUnaligned(fromByteOffset: i * 4, as: UInt32.self))
        }
        entries = e
    }

    /// Reads a log page from a byte array (see `init?(bytes:)`).
    public init?(_ bytes: [UInt8]) {
        guard let log = bytes.withUnsafeBytes({ raw in CommandEffectsLog(bytes: unsafe RawSpan(_unsafeBytes: raw)) })
        else { return nil }
        self = log
    }

    public subscript(queue: Queue, opcode: UInt8) -> CommandEffects {
        get { CommandEffects(rawValue: entries[queue == .admin ? Int(opcode) : 256 + Int(opcode)]) }
        set { entries[queue == .admin ? Int(opcode) : 256 + Int(opcode)] = newValue.rawValue }
    }

    /// Writes the page's 4096 bytes (little-endian, reserved bytes zero) into `buffer`,
    /// which must hold at least 4096 bytes.
    public func write(to buffer: UnsafeMutableRawBufferPointer) {
        precondition(buffer.count >= Self.size, "a Commands Supported and Effects log needs 4096 bytes")
        unsafe buffer.initializeMemory(as: UInt8.self, repeating: 0)
        for i in 0..<512 { unsafe buffer.storeBytes(of: entries[i].littleEndian, toByteOffset: i * 4, as: UInt32.self) }
    }

    /// The page as 4096 bytes.
    public var bytes: [UInt8] {
        var out = [UInt8](repeating: 0, count: Self.size)
        out.withUnsafeMutableBytes { write(to: $0) }
        return out
    }
}
