import ArgumentParser
import NVMeGate

/// An unsigned number written in decimal or as `0x` hex ("6", "0x06"), as nvme-cli takes them.
/// Nil for anything else, and for values beyond 64 bits.
func parseUnsigned<Text: StringProtocol>(_ text: Text) -> UInt64? {
    let utf8 = text.utf8
    var digits = Substring(text)
    var radix: UInt64 = 10
    if utf8.count > 2, utf8.first == UInt8(ascii: "0"),
       utf8.dropFirst().first == UInt8(ascii: "x") || utf8.dropFirst().first == UInt8(ascii: "X") {
        digits = digits.dropFirst(2)
        radix = 16
    }
    guard !digits.isEmpty else { return nil }
    var value: UInt64 = 0
    for byte in digits.utf8 {
        let digit: UInt64
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt64(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f") where radix == 16: digit = UInt64(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F") where radix == 16: digit = UInt64(byte - UInt8(ascii: "A") + 10)
        default: return nil
        }
        let (shifted, overflow1) = value.multipliedReportingOverflow(by: radix)
        let (sum, overflow2) = shifted.addingReportingOverflow(digit)
        if overflow1 || overflow2 { return nil }
        value = sum
    }
    return value
}

/// A command-line number in decimal or `0x` hex that must fit `Value`.
struct CommandNumber<Value: FixedWidthInteger & UnsignedInteger & Sendable>: ExpressibleByArgument, Sendable {
    var value: Value

    init(_ value: Value) { self.value = value }

    init?(argument: String) {
        guard let number = parseUnsigned(argument), let value = Value(exactly: number) else { return nil }
        self.value = value
    }

    var defaultValueDescription: String { "\(value)" }
}

extension Capabilities {
    /// Capability `number` (0 to 63), or nil.
    init?(number: UInt64) {
        guard number < 64 else { return nil }
        self.init(rawValue: 1 << number)
    }

    /// One capability by name ("CAP_SYS_ADMIN", "sys_admin") or number ("21"), or nil.
    init?(nameOrNumber text: String) {
        if let number = parseUnsigned(text) {
            self.init(number: number)
        } else {
            self.init(name: text)
        }
    }
}
