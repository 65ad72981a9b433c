import NVMeEmulator
import NVMeGate

/// A target spec as users write it ("loopback", "emulated", "emulated:DIR", a device path),
/// turned into a controller. Shared by the C ABI and the CLI so both accept the same specs.
public enum Target {
    /// The target used when none is named.
    public static let defaultSpec = "loopback"

    /// A target spec that names no known target.
    public struct SpecError: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    /// The controller `spec` names.
    public static func open(_ spec: String) throws(SpecError) -> any Controller {
        switch spec {
        case "loopback":
            return LoopbackController()
        default:
            throw SpecError(description: "unknown target \"\(spec)\": expected \"loopback\"")
        }
    }
}
