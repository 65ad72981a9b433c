#if canImport(Glibc)
import Glibc
#endif
import NVMeGate

extension Caller {
    /// This process as a caller: effective uid and gid, and the effective capabilities
    /// Linux grants it (CapEff in /proc/self/status). What the kernel would check.
    public static func currentProcess() -> Caller {
        Caller(uid: geteuid(), gid: getegid(), capabilities: effectiveCapabilities())
    }

    /// This process's effective capabilities, from /proc/self/status (CapEff); none when
    /// the file cannot be read.
    static func effectiveCapabilities() -> Capabilities {
        guard let file = fopen("/proc/self/status", "r") else { return [] }
        defer { fclose(file) }
        var line = [CChar](repeating: 0, count: 256)
        while fgets(&line, Int32(line.count), file) != nil {
            let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if text.hasPrefix("CapEff:") {
                let hex = text.dropFirst(7).filter { $0.isHexDigit }
                return Capabilities(rawValue: UInt64(hex, radix: 16) ?? 0)
            }
        }
        return []
    }
}
