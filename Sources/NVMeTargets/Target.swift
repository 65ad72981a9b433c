#if canImport(Glibc)
import Glibc
#endif
import NVMeEmulator
import NVMeGate
import NVMeLinux
import NVMeSpec

/// A target spec as users write it ("loopback", "emulated", "emulated:DIR", a device path),
/// turned into a controller. Shared by the C ABI and the CLI so both accept the same specs.
public enum Target {
    /// The target used when none is named.
    public static let defaultSpec = "loopback"

    /// A target spec that names no known target, or a target that cannot be opened.
    public struct SpecError: Error, CustomStringConvertible, Sendable {
        public var description: String
        /// The errno a C caller is given: EBUSY for an emulated directory another process
        /// holds; for a device path, open(2)'s errno (ENOENT, EACCES), ENODEV when the file is
        /// not an NVMe device node, or the errno of the ioctl that failed at attach; else EINVAL.
        public var errno: Int32 = EINVAL
    }

    /// An opened target: its controller and the number X of its node names (nvmeX, nvmeXnY).
    public struct Opened: Sendable {
        /// The controller to put behind a `Gate`.
        public let controller: any Controller
        /// The gate's `controllerNumber`: the one asked for, or for a device path, the device's.
        public let controllerNumber: UInt32
        /// For a device path, the node the path is (named by NSID, as the gate names nodes).
        public let node: NodeName?
    }

    /// Whether `spec` names a real device (a path: "/dev/nvme0", "/dev/ng0n1").
    public static func isDevicePath(_ spec: String) -> Bool { spec.hasPrefix("/") }

    /// The target `spec` names, opened (see `open(_:controllerNumber:)`). `effectsLog` is, for
    /// a device path, the NVM command set's effects log to decide with when Linux refuses this
    /// process the device's own (see `LinuxController`).
    public static func attach(_ spec: String, controllerNumber: UInt32 = 0,
                              effectsLog: CommandEffectsLog? = nil) throws(SpecError) -> Opened {
        if isDevicePath(spec) {
            let device: LinuxController
            do { device = try LinuxController(path: spec, effectsLog: effectsLog) } catch {
                throw SpecError(description: error.description, errno: error.errno)
            }
            return Opened(controller: device, controllerNumber: device.node.controller, node: device.node)
        }
        return Opened(controller: try open(spec, controllerNumber: controllerNumber), controllerNumber: controllerNumber,
                      node: nil)
    }

    /// The controller `spec` names: "loopback" (completes commands, moves no data),
    /// "emulated" (an emulated NVMe controller in memory), "emulated:DIR" (file-backed in
    /// DIR, created on first use with one 1 GiB namespace of 512-byte blocks), or a device
    /// path ("/dev/nvme0", "/dev/nvme0n1", "/dev/ng0n1": the real controller behind it,
    /// whatever `controllerNumber` says).
    ///
    /// `controllerNumber` is the X of the node name nvmeX: an emulated subsystem's controller
    /// X has Controller ID X + 1, so nvme0 and nvme1 on one "emulated:DIR" are two controllers
    /// of one subsystem (two hosts sharing its namespaces). Loopback has only nvme0.
    public static func open(_ spec: String, controllerNumber: UInt32 = 0) throws(SpecError) -> any Controller {
        if isDevicePath(spec) { return try attach(spec).controller }
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
        throw SpecError(description: "unknown target \"\(spec)\": expected \"loopback\", \"emulated\", \"emulated:DIR\" or a device path such as /dev/nvme0")
    }
}
