#if canImport(Glibc)
import Glibc
#endif
import NVMeEmulator
import NVMeGate
import NVMeSpec
import Testing

/// Every rule and envelope check of the kernel policy, through the ioctl front end with real
/// passthru byte layouts (linux/nvme_ioctl.h), against a controller that records what reached it.
let intrusiveBits: [UInt32] = [1 << 2, 1 << 3, 1 << 4, 1 << 14, 2 << 14, 1 << 5, 1 << 13]
/// (opcode, needs a handle opened for writing) under a QEMU-like effects log.
let writeOpenCases: [(UInt8, Bool)] = [
    (0x02, false), (0x0C, false), (0x00, true), (0x01, true), (0x05, true), (0x08, true), (0x09, true), (0x19, true),
]

@Suite("Kernel policy: Linux's rules through the ioctl front end")
struct KernelPolicyTests {
    let controller = ScriptedController(log: ScriptedController.qemuLikeLog())
    var h: Harness { Harness(controller) }

    // MARK: Envelope checks: everyone, root included

    @Test("flags ≠ 0 is EINVAL for everyone, before any policy", arguments: [false, true])
    func flagsNotZero(is64: Bool) {
        let h = self.h
        for caps in [Capabilities(), root] {
            let ns = h.open("nvme0n1", write: true, caps: caps)
            let ctrl = h.open("nvme0", caps: caps)
            #expect(h.io(ns, PassthruBuffer(is64: is64, opcode: 0x02, flags: 0x40, nsid: 1, dataLength: 512)) == -EINVAL)
            #expect(h.admin(ctrl, PassthruBuffer(is64: is64, opcode: 0x06, flags: 0x01, cdw10: 1, dataLength: 4096)) == -EINVAL)
        }
        #expect(controller.count == 0)
        #expect(h.gate.count(of: .flagsNotZero) == 4)
    }

    @Test("an I/O command must name its namespace handle's NSID (EINVAL, root too)",
          arguments: ["nvme0n1", "ng0n1"], [false, true])
    func nsidBinding(node: String, is64: Bool) {
        let h = self.h
        for caps in [Capabilities(), root] {
            let handle = h.open(node, write: true, caps: caps)
            #expect(h.io(handle, PassthruBuffer(is64: is64, opcode: 0x02, nsid: 2, dataLength: 512)) == -EINVAL)
            #expect(h.io(handle, PassthruBuffer(is64: is64, opcode: 0x02, nsid: 0xFFFF_FFFF, dataLength: 512)) == -EINVAL)
            #expect(h.io(handle, PassthruBuffer(is64: is64, opcode: 0x02, nsid: 1, dataLength: 512)) == 0)
        }
        #expect(controller.count == 2)
    }

    @Test("admin commands are not bound to the handle's namespace (Linux's admin path has no ns)")
    func adminNotBound() {
        let h = self.h
        let ns = h.open("ng0n1")
        #expect(h.admin(ns, PassthruBuffer(opcode: 0x06, nsid: 2, cdw10: 0x00, dataLength: 4096)) == 0)
        #expect(controller.count == 1)
    }

    // MARK: Rule 1: partitions

    @Test("no unprivileged I/O passthrough through a partition, on both I/O ioctls", arguments: [false, true])
    func partition(is64: Bool) {
        let h = self.h
        let part = h.open("nvme0n1p1", write: true)
        #expect(h.io(part, PassthruBuffer(is64: is64, opcode: 0x02, nsid: 1, dataLength: 512)) == -EACCES)
        #expect(controller.count == 0)
        // Admin through a partition goes to the controller path, as in Linux.
        #expect(h.admin(part, PassthruBuffer(is64: is64, opcode: 0x06, cdw10: 0x01, dataLength: 4096)) == 0)
        // CAP_SYS_ADMIN passes.
        let rootPart = h.open("nvme0n1p1", write: true, caps: root)
        #expect(h.io(rootPart, PassthruBuffer(is64: is64, opcode: 0x02, nsid: 1, dataLength: 512)) == 0)
        #expect(h.gate.count(of: .partition) == 1)
    }

    @Test("a partition that does not exist cannot be opened")
    func missingPartition() {
        #expect(h.open("nvme0n1p2") == -ENOENT)
        #expect(h.open("nvme0n3") == -ENOENT)
        #expect(h.open("nvme1") == -ENOENT)
        #expect(h.open("sda") == -ENOENT)
    }

    // MARK: Rule 2: vendor specific and fabrics

    @Test("opcodes 80h and up and Fabrics (7Fh) are refused on both queues; root passes")
    func vendorAndFabrics() {
        var log = ScriptedController.qemuLikeLog()
        log[.io, 0x81] = .supported          // even if the controller vouches for it
        log[.admin, 0xC5] = .supported
        let controller = ScriptedController(log: log)
        let h = Harness(controller)
        let ns = h.open("nvme0n1", write: true), ctrl = h.open("nvme0", write: true)
        #expect(h.io(ns, PassthruBuffer(opcode: 0x81, nsid: 1)) == -EACCES)
        #expect(h.io(ns, PassthruBuffer(opcode: 0x7F, nsid: 1)) == -EACCES)
        #expect(h.admin(ctrl, PassthruBuffer(opcode: 0xC5)) == -EACCES)
        #expect(h.admin(ctrl, PassthruBuffer(opcode: 0x7F)) == -EACCES)
        #expect(h.admin(ctrl, PassthruBuffer(opcode: 0x80, nsid: 1)) == -EACCES)   // Format NVM
        #expect(h.admin(ctrl, PassthruBuffer(opcode: 0x84)) == -EACCES)            // Sanitize
        #expect(controller.count == 0)
        let rootNS = h.open("nvme0n1", write: true, caps: root)
        #expect(h.io(rootNS, PassthruBuffer(opcode: 0x81, nsid: 1)) == 0)
        #expect(controller.count == 1)
        #expect(h.gate.count(of: .vendorSpecific) == 2)
        #expect(h.gate.count(of: .fabrics) == 2)
    }

    // MARK: Rule 3: the admin queue

    @Test("admin: Identify with CNS 00h, 01h, 05h, 06h, 08h only", arguments: 0...0x20)
    func identifyCNS(cns: Int) {
        let h = self.h
        let ctrl = h.open("nvme0")
        let allowed = [0x00, 0x01, 0x05, 0x06, 0x08].contains(cns)
        let r = h.admin(ctrl, PassthruBuffer(opcode: 0x06, nsid: 1, cdw10: UInt32(cns) | 0xABCD_0000, dataLength: 4096))
        #expect(r == (allowed ? 0 : -EACCES))
        #expect(controller.count == (allowed ? 1 : 0))
    }

    @Test("admin: every other admin command is refused unprivileged, whatever the effects log says",
          arguments: Array(0...0xFF).filter { $0 != 0x06 })
    func otherAdmin(opcode: Int) {
        let h = self.h
        let ctrl = h.open("nvme0", write: true)
        #expect(h.admin(ctrl, PassthruBuffer(opcode: UInt8(opcode), cdw10: 0x02)) == -EACCES)
        #expect(controller.count == 0)
    }

    @Test("admin: CAP_SYS_ADMIN passes Get Log Page and Format NVM")
    func adminRoot() {
        let h = self.h
        let ctrl = h.open("nvme0", caps: root)
        #expect(h.admin(ctrl, PassthruBuffer(opcode: 0x02, cdw10: 0x02 | (127 << 16), dataLength: 512)) == 0)
        #expect(h.admin(ctrl, PassthruBuffer(opcode: 0x80, nsid: 1)) == 0)
        #expect(h.gate.count(of: .privilegedBypass) == 2)
    }

    // MARK: Rules 4–6: the I/O queue

    @Test("I/O: CSUPP required (Reservation Register is not marked supported)")
    func ioNotSupported() {
        let h = self.h
        let ns = h.open("nvme0n1", write: true)
        #expect(h.io(ns, PassthruBuffer(opcode: 0x0D, nsid: 1, dataLength: 16)) == -EACCES)
        #expect(h.gate.count(of: .notSupported) == 1)
        #expect(controller.count == 0)
    }

    @Test("I/O: a controller without an effects log supports nothing unprivileged (Linux's fallback)")
    func noEffectsLog() {
        let controller = ScriptedController(log: nil)
        let h = Harness(controller)
        let ns = h.open("nvme0n1", write: true), ctrl = h.open("nvme0")
        #expect(h.io(ns, PassthruBuffer(opcode: 0x02, nsid: 1, dataLength: 512)) == -EACCES)
        #expect(h.admin(ctrl, PassthruBuffer(opcode: 0x06, cdw10: 1, dataLength: 4096)) == 0)
        #expect(h.gate.policy.effects(queue: .io, commandSet: .nvm, opcode: 0x01) == .logicalBlockContentChange)
    }

    @Test("I/O: effects beyond LBCC, USS and scope are refused: NCC, NIC, CCC, CSER, reserved bits",
          arguments: intrusiveBits)
    func intrusiveEffects(bit: UInt32) {
        var log = ScriptedController.qemuLikeLog()
        log[.io, 0x02] = CommandEffects(rawValue: CommandEffects.supported.rawValue | bit)
        let controller = ScriptedController(log: log)
        let h = Harness(controller)
        let ns = h.open("nvme0n1", write: true)
        #expect(h.io(ns, PassthruBuffer(opcode: 0x02, nsid: 1, dataLength: 512)) == -EACCES)
        #expect(h.gate.count(of: .intrusiveEffects) == 1)
    }

    @Test("I/O: USS, every scope bit and CSE pass (CSE is ignored for I/O)")
    func permittedEffects() {
        var log = ScriptedController.qemuLikeLog()
        log[.io, 0x02] = CommandEffects(supported: true, submissionAndExecution: 2, uuidSelectionSupported: true,
                                        scope: CommandScope(rawValue: 0xFFF))
        let controller = ScriptedController(log: log)
        let h = Harness(controller)
        let ns = h.open("nvme0n1")
        #expect(h.io(ns, PassthruBuffer(opcode: 0x02, nsid: 1, dataLength: 512)) == 0)
        #expect(h.gate.policy.effects(queue: .io, commandSet: .nvm, opcode: 0x02).submissionAndExecution == 0)
    }

    @Test("I/O: data-to-controller or LBCC commands need a handle opened for writing",
          arguments: writeOpenCases)
    func writeOpen(opcode: UInt8, needsWrite: Bool) {
        let h = self.h
        let ro = h.open("nvme0n1"), rw = h.open("nvme0n1", write: true)
        let length = [0x01, 0x02, 0x05].contains(opcode) ? 512 : (opcode == 0x09 ? 16 : (opcode == 0x19 ? 32 : 0))
        #expect(h.io(ro, PassthruBuffer(opcode: opcode, nsid: 1, dataLength: length)) == (needsWrite ? -EACCES : 0))
        #expect(h.io(rw, PassthruBuffer(opcode: opcode, nsid: 1, dataLength: length)) == 0)
        #expect(h.gate.count(of: .needsWriteOpen) == (needsWrite ? 1 : 0))
    }

    @Test("I/O: Linux's known effects apply even when the controller omits them (Write Zeroes, Write Uncorrectable)")
    func knownEffects() {
        var log = CommandEffectsLog()
        log[.io, 0x08] = .supported
        log[.io, 0x04] = .supported
        log[.io, 0x01] = .supported
        let controller = ScriptedController(log: log)
        let h = Harness(controller)
        let ro = h.open("nvme0n1")
        for op: UInt8 in [0x08, 0x04] {
            #expect(h.io(ro, PassthruBuffer(opcode: op, nsid: 1)) == -EACCES)
        }
        #expect(h.gate.count(of: .needsWriteOpen) == 2)
        let admin = h.gate.policy.effects(queue: .admin, commandSet: .nvm, opcode: 0x80)
        #expect(admin.contains(.logicalBlockContentChange) && admin.contains(.namespaceCapabilityChange))
        #expect(admin.submissionAndExecution == 7)
    }

    @Test("flush on a read-only handle passes when the controller marks it CSUPP only (Linux §1.9)")
    func flushReadOnly() {
        var log = ScriptedController.qemuLikeLog()
        log[.io, 0x00] = .supported
        let h = Harness(ScriptedController(log: log))
        #expect(h.io(h.open("nvme0n1"), PassthruBuffer(opcode: 0x00, nsid: 1)) == 0)
    }

    // MARK: The capability bypass

    @Test("CAP_SYS_ADMIN bypasses every rule but no envelope check; other capabilities bypass nothing")
    func bypass() {
        let h = self.h
        let rawio = h.open("nvme0n1", caps: .sysRawIO)
        #expect(h.io(rawio, PassthruBuffer(opcode: 0x01, nsid: 1, dataLength: 512)) == -EACCES)
        let admin = h.open("nvme0n1", caps: root)
        #expect(h.io(admin, PassthruBuffer(opcode: 0x01, nsid: 1, dataLength: 512)) == 0)   // read-only handle, root
        #expect(h.io(admin, PassthruBuffer(opcode: 0x01, flags: 1, nsid: 1, dataLength: 512)) == -EINVAL)
        #expect(h.io(admin, PassthruBuffer(opcode: 0x01, nsid: 3, dataLength: 512)) == -EINVAL)
    }

    // MARK: Buffers (nvmegate's addition: CVE-2023-6238)

    @Test("a buffer shorter than the transfer is EINVAL before any controller, root too")
    func shortBuffer() {
        let h = self.h
        for caps in [Capabilities(), root] {
            let ns = h.open("nvme0n1", write: true, caps: caps), ctrl = h.open("nvme0", caps: caps)
            // Read of 8 blocks (NLB 7) with room for one.
            #expect(h.io(ns, PassthruBuffer(opcode: 0x02, nsid: 1, cdw12: 7, dataLength: 512)) == -EINVAL)
            #expect(h.io(ns, PassthruBuffer(opcode: 0x02, nsid: 1, cdw12: 7, dataLength: 4096)) == 0)
            #expect(h.admin(ctrl, PassthruBuffer(opcode: 0x06, cdw10: 1, dataLength: 4095)) == -EINVAL)
            // Dataset Management with 2 ranges needs 32 bytes.
            #expect(h.io(ns, PassthruBuffer(opcode: 0x09, nsid: 1, cdw10: 1, dataLength: 16)) == -EINVAL)
        }
        #expect(h.gate.count(of: .bufferTooShort) == 6)
        #expect(controller.count == 2)
    }

    @Test("a NULL buffer with a length is EFAULT; a NULL argument is EFAULT; metadata without a metadata format is EINVAL")
    func addresses() {
        let h = self.h
        let ns = h.open("nvme0n1")
        #expect(h.io(ns, PassthruBuffer(opcode: 0x02, nsid: 1, dataLength: 512, nullData: true)) == -EFAULT)
        #expect(h.ioctl(ns, .ioCommand, nil) == -EFAULT)
        #expect(h.io(ns, PassthruBuffer(opcode: 0x02, nsid: 1, dataLength: 512, metadataLength: 8)) == -EINVAL)
        #expect(controller.count == 0)
    }

    // MARK: Results and statuses

    @Test("result: DW0 into the 72-byte struct, DW1:DW0 into the 80-byte one, nothing written past either")
    func results() {
        let status = NVMeStatus(type: .generic, code: 0x80, doNotRetry: true)
        let h = Harness(ScriptedController(log: ScriptedController.qemuLikeLog(),
                                           completion: Completion(status: status, dw0: 0x1122_3344, dw1: 0x5566_7788)))
        let ctrl = h.open("nvme0")
        let p32 = PassthruBuffer(opcode: 0x06, cdw10: 1, dataLength: 4096)
        let p64 = PassthruBuffer(is64: true, opcode: 0x06, cdw10: 1, dataLength: 4096)
        #expect(h.admin(ctrl, p32) == 0x4080)      // the positive NVMe status, DNR included
        #expect(h.admin(ctrl, p64) == 0x4080)
        #expect(p32.result32 == 0x1122_3344)
        #expect(p64.result64 == 0x5566_7788_1122_3344)
        #expect(p32.guardsIntact && p64.guardsIntact)
    }

    // MARK: Other requests

    @Test("NVME_IOCTL_ID returns the NSID on namespace nodes, ENOTTY on the controller")
    func ioctlID() {
        let h = self.h
        #expect(h.ioctl(h.open("nvme0n1"), .id, nil) == 1)
        #expect(h.ioctl(h.open("ng0n1"), .id, nil) == 1)
        #expect(h.ioctl(h.open("nvme0"), .id, nil) == -ENOTTY)
    }

    @Test("RESET, SUBSYS_RESET, RESCAN: CAP_SYS_ADMIN on the controller node only",
          arguments: [IoctlRequest.reset, .subsystemReset, .rescan])
    func management(request: IoctlRequest) {
        let h = self.h
        #expect(h.ioctl(h.open("nvme0", write: true), request, nil) == -EACCES)
        #expect(h.ioctl(h.open("nvme0", caps: root), request, nil) == 0)
        #expect(h.ioctl(h.open("nvme0n1", caps: root), request, nil) == -ENOTTY)
        #expect(h.gate.count(of: .managementNeedsCapability) == 1)
    }

    @Test("unknown requests are ENOTTY; IO64 on the controller node is ENOTTY")
    func unknownRequests() {
        let h = self.h
        let ns = h.open("nvme0n1")
        #expect(h.ioctl(ns, IoctlRequest(rawValue: 0xC048_4E99), nil) == -ENOTTY)
        #expect(h.ioctl(ns, IoctlRequest(rawValue: 0x5401), nil) == -ENOTTY)      // TCGETS
        #expect(h.io(h.open("nvme0", caps: root), PassthruBuffer(is64: true, opcode: 0x02, nsid: 1, dataLength: 512)) == -ENOTTY)
    }

    @Test("IO_CMD on the controller node: one namespace works, none is ENOTTY, several EINVAL")
    func ioOnController() {
        let one = Harness(ScriptedController(log: ScriptedController.qemuLikeLog()))
        #expect(one.io(one.open("nvme0"), PassthruBuffer(opcode: 0x02, nsid: 1, dataLength: 512)) == 0)
        #expect(one.io(one.open("nvme0"), PassthruBuffer(opcode: 0x02, nsid: 2, dataLength: 512)) == -EINVAL)
        #expect(one.io(one.open("nvme0"), PassthruBuffer(opcode: 0x01, nsid: 1, dataLength: 512)) == -EACCES)
        let none = Harness(ScriptedController(log: ScriptedController.qemuLikeLog(), namespaces: []))
        #expect(none.io(none.open("nvme0"), PassthruBuffer(opcode: 0x02, nsid: 1, dataLength: 512)) == -ENOTTY)
        let two = Harness(ScriptedController(log: ScriptedController.qemuLikeLog(),
                                             namespaces: [ScriptedController.namespace1, NamespaceInfo(nsid: 2, blockCount: 8)]))
        #expect(two.io(two.open("nvme0"), PassthruBuffer(opcode: 0x02, nsid: 1, dataLength: 512)) == -EINVAL)
    }

    @Test("closed and unknown handles are EBADF")
    func closedHandles() {
        let h = self.h
        let ns = h.open("nvme0n1")
        #expect(h.gate.close(ns) == 0)
        #expect(h.gate.close(ns) == -EBADF)
        #expect(h.io(ns, PassthruBuffer(opcode: 0x02, nsid: 1, dataLength: 512)) == -EBADF)
        #expect(h.ioctl(-1, .id, nil) == -EBADF)
        #expect(h.ioctl(1 << 20, .id, nil) == -EBADF)
        #expect(controller.count == 0)
    }

    @Test("NVME_IOCTL_SUBMIT_IO: Read, Write, Compare only; decided like the I/O command it is")
    func submitIO() {
        let h = self.h
        let ro = h.open("nvme0n1"), rw = h.open("nvme0n1", write: true)
        let data = UnsafeMutableRawBufferPointer.allocate(byteCount: 1024, alignment: 8)
        defer { data.deallocate() }
        func userIO(opcode: UInt8, blocks: UInt16, flags: UInt8 = 0) -> [UInt8] {
            var b = [UInt8](repeating: 0, count: 48)
            b[0] = opcode; b[1] = flags
            b[4] = UInt8(blocks - 1)
            withUnsafeBytes(of: UInt64(UInt(bitPattern: data.baseAddress)).littleEndian) { for i in 0..<8 { b[16 + i] = $0[i] } }
            return b
        }
        var read = userIO(opcode: 0x02, blocks: 2)
        #expect(read.withUnsafeMutableBytes { h.ioctl(ro, .submitIO, $0.baseAddress) } == 0)
        var write = userIO(opcode: 0x01, blocks: 2)
        #expect(write.withUnsafeMutableBytes { h.ioctl(ro, .submitIO, $0.baseAddress) } == -EACCES)
        #expect(write.withUnsafeMutableBytes { h.ioctl(rw, .submitIO, $0.baseAddress) } == 0)
        var zeroes = userIO(opcode: 0x08, blocks: 1)
        #expect(zeroes.withUnsafeMutableBytes { h.ioctl(rw, .submitIO, $0.baseAddress) } == -EINVAL)
        var flagged = userIO(opcode: 0x02, blocks: 1, flags: 1)
        #expect(flagged.withUnsafeMutableBytes { h.ioctl(rw, .submitIO, $0.baseAddress) } == -EINVAL)
        var long = userIO(opcode: 0x02, blocks: 3)   // 1536 bytes > 1024? the buffer pointer has no length: the gate computes it
        #expect(long.withUnsafeMutableBytes { h.ioctl(rw, .submitIO, $0.baseAddress) } == 0)
        #expect(controller.reached.withLock { $0.last?.dataCount } == 1536)
        #expect(h.ioctl(h.open("nvme0"), .submitIO, &read) == -ENOTTY)
    }

    // MARK: Reload and concurrency

    @Test("reload swaps the policy whole")
    func reload() {
        let h = self.h
        let ctrl = h.open("nvme0")
        let getLog = { PassthruBuffer(opcode: 0x02, cdw10: 0x02 | (127 << 16), dataLength: 512) }
        #expect(h.admin(ctrl, getLog()) == -EACCES)
        var monitoring = Policy.kernel
        monitoring.defaultRules.logPages = [0x02]
        h.gate.reload(monitoring)
        #expect(h.admin(ctrl, getLog()) == 0)
        #expect(h.admin(ctrl, PassthruBuffer(opcode: 0x02, cdw10: 0x03 | (127 << 16), dataLength: 512)) == -EACCES)
        h.gate.reload(.kernel)
        #expect(h.admin(ctrl, getLog()) == -EACCES)
    }

    @Test("many threads at once: every verdict as decided alone, every allowed command reaches the controller once")
    func concurrentCallers() async {
        let loopback = LoopbackController()
        let gate = Gate(controller: loopback, policy: .kernel)
        let threads = 8, perThread = 2000
        await withTaskGroup(of: (Int, Int).self) { group in
            for t in 0..<threads {
                group.addTask {
                    let h = gate.open(node: "nvme0n1", writable: t % 2 == 0, caller: Caller(uid: 1000, gid: 1000))
                    var allowed = 0, refused = 0
                    for i in 0..<perThread {
                        let p = PassthruBuffer(is64: i % 2 == 0, opcode: i % 3 == 0 ? 0x01 : 0x02, nsid: 1, dataLength: 512)
                        switch gate.ioctl(h, request: (p.is64 ? IoctlRequest.io64Command : .ioCommand).rawValue, argument: p.raw) {
                        case .returned(0): allowed += 1
                        case .failed(errno: EACCES): refused += 1
                        default: Issue.record("unexpected outcome")
                        }
                        #expect(p.guardsIntact)
                    }
                    _ = gate.close(h)
                    return (allowed, refused)
                }
            }
            var allowed = 0, refused = 0
            for await (a, r) in group { allowed += a; refused += r }
            let writesPerThread = (0..<perThread).filter { $0 % 3 == 0 }.count
            #expect(refused == writesPerThread * threads / 2)          // writes on read-only handles
            #expect(allowed == threads * perThread - refused)
            #expect(loopback.receivedCount(queue: .io, opcode: 0x01) == UInt64(writesPerThread * threads / 2))
            #expect(loopback.totalReceived == UInt64(allowed))
        }
    }
}
