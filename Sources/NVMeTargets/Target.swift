#if canImport(Glibc)
import Glibc
#endif
import NVMeEmulator
import NVMeGate

/// A target spec as users write it ("loopback", "emulated", "emulated:DIR", a device path),
/// turned into a controller. Shared by the C ABI and the CLI so both accept the same specs.
public enum Target {
    /// The target used when none is named.
    public static let defaultSpec = "loopback"

    /// A target spec that names no known target, or a target that cannot be opened.
    public struct SpecError: Error, CustomStringConvertible, Sendable {
        public var description: String
        /// The errno a C caller is given: EBUSY for an emulated directory another process
        /// holds, else EINVAL.
        public var errno: Int32 = EINVAL
    }

    /// The controller `spec` names: "loopback" (completes commands, moves no data),
    /// "emulated" (an emulated NVMe controller in memory) or "emulated:DIR" (file-backed in
    /// DIR, created on first use with one 1 GiB namespace of 512-byte blocks).
    public static func open(_ spec: String) throws(SpecError) -> any Controller {
        if spec == "loopback" { return LoopbackController() }
        if spec == "emulated" { return EmulatedController.inMemory() }
        if spec.hasPrefix("emulated:") {
            let directory = String(spec.dropFirst("emulated:".count))
            guard !directory.isEmpty else { throw SpecError(description: "target \"emulated:\" needs a directory after the colon") }
            do { return try EmulatedController(directory: directory) } catch {
                throw SpecError(description: error.description, errno: error.errno)
            }
        }
        throw SpecError(description: "unknown target \"\(spec)\": expected \"loopback\", \"emulated\" or \"emulated:DIR\"")
    }
}
