import ArgumentParser

/// fio's `--rw`: the I/O pattern.
enum BenchPattern: String, ExpressibleByArgument, CaseIterable {
    case randread, randwrite, randrw, read, write, rw

    /// Whether offsets are random (else each job walks the region in order, wrapping).
    var isRandom: Bool { self == .randread || self == .randwrite || self == .randrw }

    /// The share of reads in percent: 100, 0, or `rwmixread` for the mixed patterns.
    func readPercent(mix: Int) -> Int {
        switch self {
        case .randread, .read: 100
        case .randwrite, .write: 0
        case .randrw, .rw: mix
        }
    }
}

/// `-o/--output-format` of `bench`: fio-like text or JSON.
enum BenchOutputFormat: String, ExpressibleByArgument, CaseIterable {
    case normal, json
}

/// A size in bytes as fio takes it: "4096", "4k", "1m", "2g", "1t" (powers of 1024, fio's
/// default kb_base), also written "4K", "4KiB", "4kb".
struct ByteSize: ExpressibleByArgument, Sendable {
    var bytes: UInt64

    init(_ bytes: UInt64) { self.bytes = bytes }

    init?(argument: String) {
        var digits = Substring(argument)
        var multiplier: UInt64 = 1
        let units: [(String, UInt64)] = [("k", 1 << 10), ("m", 1 << 20), ("g", 1 << 30), ("t", 1 << 40)]
        let lower = argument.lowercased()
        for suffix in ["ib", "b", ""] {
            if let (unit, value) = units.first(where: { lower.hasSuffix($0.0 + suffix) }) {
                digits = digits.dropLast(unit.count + suffix.count)
                multiplier = value
                break
            }
        }
        guard !digits.isEmpty, digits.allSatisfy(\.isASCII), let number = UInt64(digits) else { return nil }
        let (product, overflow) = number.multipliedReportingOverflow(by: multiplier)
        guard !overflow else { return nil }
        bytes = product
    }

    var defaultValueDescription: String { "\(bytes)" }
}

/// fio's `--runtime`: seconds ("10", "2.5"), or with a unit: "250us", "500ms", "10s", "2m", "1h".
struct RunTime: ExpressibleByArgument, Sendable {
    var nanoseconds: UInt64

    init?(argument: String) {
        let units: [(String, Double)] = [("ms", 1e6), ("us", 1e3), ("s", 1e9), ("m", 60e9), ("h", 3600e9)]
        var number = Substring(argument)
        var scale = 1e9
        if let (unit, value) = units.first(where: { argument.hasSuffix($0.0) }) {
            number = number.dropLast(unit.count)
            scale = value
        }
        guard let value = Double(number), value.isFinite, value > 0, value * scale < 1e18 else { return nil }
        nanoseconds = UInt64(value * scale)
    }
}
