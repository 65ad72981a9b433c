// Temporary until the vocabulary tables land.
public struct OpcodeInfo: Sendable { public let opcode: UInt8; public let name: String }
public enum OpcodeTable {
    public static func all(queue: Queue, commandSet: CommandSet) -> [OpcodeInfo] { [] }
    public static func displayName(queue: Queue, commandSet: CommandSet, opcode: UInt8) -> String { "Opcode (" + hexByte(opcode) + ")" }
}
