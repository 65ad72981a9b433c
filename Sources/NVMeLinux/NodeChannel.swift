#if canImport(Glibc)
import Glibc
#endif
import CLibNVMe
import NVMeGate
import NVMeSpec

/// The ioctls `LinuxController` sends through one open NVMe device node. `LibNVMeNode` sends
/// them with libnvme on a real file descriptor; tests put a fake device behind the protocol.
public protocol NodeChannel: AnyObject, Sendable {
    /// NVME_IOCTL_ADMIN64_CMD (`queue` admin) or NVME_IOCTL_IO64_CMD (I/O) with `data` and
    /// `metadata` as the buffers: the status and the 64-bit result exactly as the ioctl
    /// returned them, or the errno it failed with.
    func passthru(_ command: borrowing SubmissionEntry, queue: Queue, data: UnsafeMutableRawBufferPointer,
                  metadata: UnsafeMutableRawBufferPointer) throws(ControllerError) -> Completion
    /// NVME_IOCTL_ID: the NSID of the namespace the node stands for.
    func namespaceID() throws(ControllerError) -> UInt32
    /// NVME_IOCTL_RESET, NVME_IOCTL_SUBSYS_RESET or NVME_IOCTL_RESCAN.
    func manage(_ request: IoctlRequest) throws(ControllerError)
}

/// An open NVMe device node (`/dev/nvmeX`, `/dev/nvmeXnY`, `/dev/ngXnY`): commands go through
/// libnvme 1.3's 64-bit passthru calls, so the whole result (CQE DW0 and DW1) comes back.
/// Closes its descriptor when it goes.
public final class LibNVMeNode: NodeChannel {
    /// The open file descriptor. Linux lets an unprivileged caller send commands that write
    /// only through a descriptor opened for writing.
    public let descriptor: Int32

    /// Takes ownership of `descriptor`.
    public init(descriptor: Int32) { self.descriptor = descriptor }

    deinit { close(descriptor) }

    public func passthru(_ command: borrowing SubmissionEntry, queue: Queue, data: UnsafeMutableRawBufferPointer,
                         metadata: UnsafeMutableRawBufferPointer) throws(ControllerError) -> Completion {
        var cmd = nvme_passthru_cmd64()
        cmd.opcode = command.opcode
        cmd.flags = command.flags
        cmd.nsid = command.nsid
        cmd.cdw2 = command.cdw2
        cmd.cdw3 = command.cdw3
        if data.count > 0, let base = data.baseAddress {
            cmd.addr = UInt64(UInt(bitPattern: base))
            cmd.data_len = UInt32(truncatingIfNeeded: data.count)
        }
        if metadata.count > 0, let base = metadata.baseAddress {
            cmd.metadata = UInt64(UInt(bitPattern: base))
            cmd.metadata_len = UInt32(truncatingIfNeeded: metadata.count)
        }
        cmd.cdw10 = command.cdw10
        cmd.cdw11 = command.cdw11
        cmd.cdw12 = command.cdw12
        cmd.cdw13 = command.cdw13
        cmd.cdw14 = command.cdw14
        cmd.cdw15 = command.cdw15
        var result: UInt64 = 0
        let returned = queue == .admin ? nvme_submit_admin_passthru64(descriptor, &cmd, &result)
                                       : nvme_submit_io_passthru64(descriptor, &cmd, &result)
        return try Self.completion(returned: returned, errno: errno, result: result)
    }

    /// What an ioctl's return value means: negative, the errno it set; otherwise the NVMe
    /// status (Linux's 15-bit status field, phase bit dropped) with the result written back.
    static func completion(returned: Int32, errno code: Int32, result: UInt64) throws(ControllerError) -> Completion {
        guard returned >= 0 else { throw ControllerError(errno: code) }
        return Completion(status: NVMeStatus(rawValue: UInt16(truncatingIfNeeded: returned)),
                          dw0: UInt32(truncatingIfNeeded: result), dw1: UInt32(truncatingIfNeeded: result >> 32))
    }

    public func namespaceID() throws(ControllerError) -> UInt32 {
        var nsid: UInt32 = 0
        guard nvme_get_nsid(descriptor, &nsid) == 0 else { throw ControllerError(errno: errno) }
        return nsid
    }

    public func manage(_ request: IoctlRequest) throws(ControllerError) {
        let returned: Int32
        switch request {
        case .reset: returned = nvme_ctrl_reset(descriptor)
        case .subsystemReset: returned = nvme_subsystem_reset(descriptor)
        case .rescan: returned = nvme_ns_rescan(descriptor)
        default: throw ControllerError(errno: ENOTTY)
        }
        guard returned >= 0 else { throw ControllerError(errno: errno) }
    }
}
