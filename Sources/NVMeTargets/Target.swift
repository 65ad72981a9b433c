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
    ///
    /// `controllerNumber` is the X of the node name nvmeX: an emulated subsystem's controller
    /// X has Controller ID X + 1, so nvme0 and nvme1 on one "emulated:DIR" are two controllers
    /// of one subsystem (two hosts sharing its namespaces). Loopback has only nvme0.
    public static func open(_ spec: String, controllerNumber: UInt32 = 0) throws(SpecError) -> any Controller {
        if spec == "loopback" {
            guard controllerNumber == 0 else {
                throw SpecError(description: "target \"loopback\" has one controller, nvme0 (not nvme\(controllerNumber))")
            }
            return LoopbackController()
        }
        guard controllerNumber < 0xFFEF else {
            throw SpecError(description: "nvme\(controllerNumber): an emulated subsystem has controllers nvme0 to nvme\(0xFFEE)")
        }
        let configuration = EmulatorConfiguration(controllerID: UInt16(controllerNumber + 1))
        if spec == "emulated" { return EmulatedController.inMemory(configuration) }
        if spec.hasPrefix("emulated:") {
            let directory = String(spec.dropFirst("emulated:".count))
            guard !directory.isEmpty else { throw SpecError(description: "target \"emulated:\" needs a directory after the colon") }
            do { return try EmulatedController(directory: directory, configuration: configuration) } catch {
                throw SpecError(description: error.description, errno: error.errno)
            }
        }
        throw SpecError(description: "unknown target \"\(spec)\": expected \"loopback\", \"emulated\" or \"emulated:DIR\"")
    }
}
