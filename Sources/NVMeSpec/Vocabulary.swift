/// Which queue a command is submitted to.
@frozen
public enum Queue: UInt8, Sendable, Hashable, CaseIterable {
    case admin = 0
    case io = 1
}

/// Command Set Identifier (CSI, NVMe Base 2.x "Command Set Identifiers"). I/O opcodes mean
/// different commands in different command sets, so every I/O lookup is keyed by one.
@frozen
public struct CommandSet: RawRepresentable, Hashable, Sendable, BitwiseCopyable, CustomStringConvertible {
    public var rawValue: UInt8
    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }
    /// NVM Command Set (00h).
    public static let nvm = CommandSet(rawValue: 0x00)
    /// Key Value Command Set (01h).
    public static let keyValue = CommandSet(rawValue: 0x01)
    /// Zoned Namespace Command Set (02h).
    public static let zoned = CommandSet(rawValue: 0x02)
    /// Subsystem Local Memory Command Set (03h).
    public static let subsystemLocalMemory = CommandSet(rawValue: 0x03)
    /// Computational Programs Command Set (04h).
    public static let computationalPrograms = CommandSet(rawValue: 0x04)

    public var name: String {
        switch rawValue {
        case 0x00: "NVM Command Set"
        case 0x01: "Key Value Command Set"
        case 0x02: "Zoned Namespace Command Set"
        case 0x03: "Subsystem Local Memory Command Set"
        case 0x04: "Computational Programs Command Set"
        case 0x30...0x3F: "Vendor Specific Command Set"
        default: "Reserved Command Set"
        }
    }
    public var description: String { name + " (" + hexByte(rawValue) + ")" }
}

/// Data transfer direction, opcode bits 1:0 for every command but Fabrics (which takes it
/// from FCTYPE bits 1:0).
@frozen
public enum DataDirection: UInt8, Sendable, Hashable {
    case none = 0
    case hostToController = 1
    case controllerToHost = 2
    case bidirectional = 3

    @inlinable @inline(__always)
    public init(opcode: UInt8) { self = DataDirection(rawValue: opcode & 0x3)! }

    /// Linux's `nvme_is_write`: data flows to the controller (opcode bit 0).
    @inlinable public var transfersToController: Bool { rawValue & 1 != 0 }

    public var name: String {
        switch self {
        case .none: "no data"
        case .hostToController: "host to controller"
        case .controllerToHost: "controller to host"
        case .bidirectional: "bidirectional"
        }
    }
}

/// "C5h": a byte as the NVMe specification writes it.
public func hexByte(_ value: UInt8) -> String {
    let digits = Array("0123456789ABCDEF")
    return String([digits[Int(value >> 4)], digits[Int(value & 0xF)], "h"])
}
