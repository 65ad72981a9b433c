#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// How an emulated controller and its subsystem look when first created.
///
/// Defaults: one namespace (NSID 1) of 1 GiB with 512-byte logical blocks (LBA format 0),
/// 1 TiB of total NVM capacity for Namespace Management, up to 32 namespaces, controller
/// ID 1, firmware "1.0" in slot 1. In a directory these apply only when the directory is
/// new; afterwards the directory's state wins.
public struct EmulatorConfiguration: Sendable, Hashable {
    /// Identify Controller SN (20 ASCII characters, space padded).
    public var serialNumber: String
    /// Identify Controller MN (40 ASCII characters, space padded).
    public var modelNumber: String
    /// The firmware revision in slot 1 at creation (Identify Controller FR, 8 characters).
    public var firmwareRevision: String
    /// PCI Vendor ID and Subsystem Vendor ID. FFFFh: this is not a PCI device.
    public var vendorID: UInt16
    public var subsystemVendorID: UInt16
    /// This controller's Controller ID (CNTLID); controllers sharing a subsystem need distinct ones.
    public var controllerID: UInt16
    /// Namespaces created at first use, NSIDs 1...n, attached to every controller.
    public var namespaceCount: Int
    /// Size of each initial namespace in bytes (rounded down to whole blocks).
    public var namespaceSize: UInt64
    /// LBA format of the initial namespaces: 0 (512 B) or 1 (4096 B).
    public var lbaFormat: UInt8
    /// Total NVM capacity (TNVMCAP) shared by all namespaces, in bytes.
    public var totalCapacity: UInt64
    /// Identify Controller NN: the largest NSID.
    public var maxNamespaces: UInt32
    /// How long an extended Device Self-test runs, in milliseconds (a short one completes at once).
    public var extendedSelfTestMilliseconds: UInt64
    /// SUBNQN; nil gives "nqn.2026-01.org.nvmegate:emulated:<serial>".
    public var subsystemNQN: String?

    public init(serialNumber: String = "NVMEGATE0001", modelNumber: String = "nvmegate emulated controller",
                firmwareRevision: String = "1.0", vendorID: UInt16 = 0xFFFF, subsystemVendorID: UInt16 = 0xFFFF,
                controllerID: UInt16 = 1, namespaceCount: Int = 1, namespaceSize: UInt64 = 1 << 30,
                lbaFormat: UInt8 = 0, totalCapacity: UInt64 = 1 << 40, maxNamespaces: UInt32 = 32,
                extendedSelfTestMilliseconds: UInt64 = 2000, subsystemNQN: String? = nil) {
        self.serialNumber = serialNumber; self.modelNumber = modelNumber
        self.firmwareRevision = firmwareRevision; self.vendorID = vendorID
        self.subsystemVendorID = subsystemVendorID; self.controllerID = controllerID
        self.namespaceCount = namespaceCount; self.namespaceSize = namespaceSize; self.lbaFormat = lbaFormat
        self.totalCapacity = totalCapacity; self.maxNamespaces = maxNamespaces
        self.extendedSelfTestMilliseconds = extendedSelfTestMilliseconds; self.subsystemNQN = subsystemNQN
    }
}

/// Why an emulated controller could not be created or opened.
public struct EmulatorError: Error, CustomStringConvertible, Sendable, Hashable {
    public var description: String
    /// The errno a C caller is given: EBUSY when another process holds the directory,
    /// else EINVAL.
    public var errno: Int32
    public init(_ description: String, errno: Int32 = EINVAL) {
        self.description = description
        self.errno = errno
    }
}
