#if canImport(Glibc)
import Glibc
#endif
import NVMeEmulator
import NVMeGate
import NVMeSpec
import Synchronization
import Testing

/// The bypass catalogue: one test per shape a caller who means harm tries, each named after
/// what it tries, each asserting that nothing the policy refuses reaches the controller.
/// Where another suite already holds part of a shape, the test says which and adds the rest:
///
/// | shape | tests |
/// | --- | --- |
/// | fused halves | `fusedHalves`; rings: TenantPolicyTests.fusedPairs |
/// | PSDT / SGL bits | `psdtBits`; KernelPolicyTests.flagsNotZero |
/// | metadata pointer and length games | `metadataGames`; KernelPolicyTests.addresses |
/// | NSID 0 and FFFFFFFFh | `nsidZeroAndBroadcast`; KernelPolicyTests.nsidBinding |
/// | the same opcode under another command set | `otherCommandSet` |
/// | Identify, Get Log Page, Get/Set Features at another tenant's namespace | `anotherTenantsNamespace`; TenantPolicyTests.namespaceOwnership |
/// | SLBA + NLB wrap-around | `wrapAround`; TenantPolicyTests.lbaRange |
/// | DSM and Copy ranges outside, and rewritten after the check | `rangeLists`; TenantPolicyTests.datasetManagementRanges, copyRanges, rewrittenRangeList |
/// | a buffer shorter than the transfer (CVE-2023-6238) | `shortBuffers`; KernelPolicyTests.shortBuffer |
/// | a 64-bit result on the 72-byte struct | `resultWidth`; KernelPolicyTests.results |
/// | an effects log that lies | `lyingEffectsLog`; TenantPolicyTests.vendorAndOverrides, KernelPolicyTests.vendorAndFabrics |
/// | a handle on a deleted or reformatted namespace | `deletedOrReformattedNamespace` |
/// | a closed handle | `closedHandle`; KernelPolicyTests.closedHandles |
/// | a reload to a broken policy mid-flight | `brokenReloadMidFlight`; TenantPolicyTests.reload, abi_tenants_test.c |
///
/// The fuzz targets (Tests/Fuzz) try the same shapes at random.
@Suite("Bypass catalogue")
struct BypassCatalogueTests {
    let controller = ScriptedController(log: ScriptedController.qemuLikeLog())

    // MARK: Envelope

    @Test("fused halves: FUSE 01b or 10b through the ioctl reaches nothing, for root too, on every request")
    func fusedHalves() {
        let h = Harness(controller)
        for caps in [Capabilities(), root] {
            let ns = h.open("nvme0n1", write: true, caps: caps), ctrl = h.open("nvme0", caps: caps)
            for fuse: UInt8 in [0x01, 0x02, 0x03] {
                for is64 in [false, true] {
                    #expect(h.io(ns, PassthruBuffer(is64: is64, opcode: 0x05, flags: fuse, nsid: 1, dataLength: 512)) == -EINVAL)
                    #expect(h.io(ns, PassthruBuffer(is64: is64, opcode: 0x01, flags: fuse, nsid: 1, dataLength: 512)) == -EINVAL)
                    #expect(h.admin(ctrl, PassthruBuffer(is64: is64, opcode: 0x06, flags: fuse, cdw10: 1, dataLength: 4096)) == -EINVAL)
                }
                var io = [UInt8](repeating: 0, count: UserIO.size)
                io[0] = 0x01
                io[1] = fuse
                let data = PassthruBuffer(opcode: 0, dataLength: 512)
                withUnsafeBytes(of: UInt64(UInt(bitPattern: data.data.baseAddress)).littleEndian) { io.replaceSubrange(16..<24, with: $0) }
                #expect(io.withUnsafeMutableBytes { h.ioctl(ns, .submitIO, $0.baseAddress) } == -EINVAL)
            }
        }
        #expect(controller.count == 0)
    }

    @Test("PSDT/SGL bits: 01b, 10b, 11b are EINVAL on both queues, both structs and a ring, fused pairs included")
    func psdtBits() throws {
        let h = Harness(controller)
        let ns = h.open("nvme0n1", write: true, caps: root), ctrl = h.open("nvme0", caps: root)
        for psdt: UInt8 in [0x40, 0x80, 0xC0] {
            for is64 in [false, true] {
                #expect(h.io(ns, PassthruBuffer(is64: is64, opcode: 0x02, flags: psdt, nsid: 1, dataLength: 512)) == -EINVAL)
                #expect(h.admin(ctrl, PassthruBuffer(is64: is64, opcode: 0x06, flags: psdt, cdw10: 1, dataLength: 4096)) == -EINVAL)
            }
        }
        #expect(controller.count == 0)
        // A ring of a caller whose pairs are decided as one (scratch, inside its LBAs): PSDT
        // bits on either half sink the pair; without them the same pairs pass.
        let tenants = try TenantPolicyTests()
        let scratch = tenants.h.open("nvme0n2", write: true, uid: 1001)
        func pair(_ first: UInt8, _ second: UInt8) -> [SubmissionQueueEntry] {
            [SubmissionQueueEntry(opcode: 0x05, flags: first, nsid: 2, cdw10: 10),
             SubmissionQueueEntry(opcode: 0x01, flags: second, nsid: 2, cdw10: 10)]
        }
        let ring = pair(0x41, 0x02) + pair(0x01, 0x82) + pair(0xC1, 0xC2) + pair(0x01, 0x02)
        #expect(Self.verdicts(tenants.h.gate, scratch, .io, ring) == [EINVAL, EINVAL, EINVAL, EINVAL, EINVAL, EINVAL, 0, 0])
    }

    @Test("metadata pointer and length games: NULL with a length, a pointer without one, short and unwanted metadata")
    func metadataGames() {
        let withMetadata = NamespaceInfo(nsid: 1, metadataSize: 8, blockCount: 1 << 20)
        let controller = ScriptedController(log: ScriptedController.qemuLikeLog(), namespaces: [withMetadata])
        let h = Harness(controller)
        let ns = h.open("nvme0n1", write: true, caps: root)
        let metadata = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 8)
        defer { metadata.deallocate() }
        func read(_ length: UInt32, pointer: Bool, blocks: UInt32 = 8) -> Int32 {
            let p = PassthruBuffer(opcode: 0x02, nsid: 1, cdw12: blocks - 1, dataLength: Int(blocks) * 512, metadataLength: length)
            let address = pointer ? UInt64(UInt(bitPattern: metadata.baseAddress)) : 0
            p.raw.storeBytes(of: address.littleEndian, toByteOffset: 16, as: UInt64.self)
            return h.io(ns, p)
        }
        #expect(read(64, pointer: false) == -EFAULT)              // NULL with a length
        #expect(read(0xFFFF_FFFF, pointer: false) == -EFAULT)     // NULL with the largest length
        #expect(read(0, pointer: true) == -EINVAL)                 // a pointer, no length: 8 blocks need 64 bytes
        #expect(read(8, pointer: true) == -EINVAL)                 // one block's worth for eight
        #expect(controller.count == 0)
        #expect(read(64, pointer: true) == 0)
        #expect(controller.reached.withLock { $0.last?.metadataCount } == 64)
        // A format without metadata: a metadata buffer is refused, a pointer alone is ignored.
        let plain = ScriptedController(log: ScriptedController.qemuLikeLog())
        let p = Harness(plain)
        let handle = p.open("nvme0n1", caps: root)
        let withLength = PassthruBuffer(opcode: 0x02, nsid: 1, dataLength: 512, metadataLength: 8)
        withLength.raw.storeBytes(of: UInt64(UInt(bitPattern: metadata.baseAddress)).littleEndian, toByteOffset: 16, as: UInt64.self)
        #expect(p.io(handle, withLength) == -EINVAL)
        let pointerOnly = PassthruBuffer(opcode: 0x02, nsid: 1, dataLength: 512)
        pointerOnly.raw.storeBytes(of: UInt64(UInt(bitPattern: metadata.baseAddress)).littleEndian, toByteOffset: 16, as: UInt64.self)
        #expect(p.io(handle, pointerOnly) == 0)
        #expect(plain.reached.withLock { $0.map(\.metadataCount) } == [0])
    }

    @Test("NSID 0 and FFFFFFFFh: never another namespace's I/O, through any node or ring; broadcast changes need every namespace")
    func nsidZeroAndBroadcast() throws {
        let h = Harness(controller)
        let ns = h.open("nvme0n1", write: true, caps: root), ctrl = h.open("nvme0", write: true, caps: root)
        for nsid: UInt32 in [0, 0xFFFF_FFFF] {
            #expect(h.io(ns, PassthruBuffer(opcode: 0x02, nsid: nsid, dataLength: 512)) == -EINVAL)
            #expect(h.io(ns, PassthruBuffer(opcode: 0x00, nsid: nsid)) == -EINVAL)
            #expect(h.io(ctrl, PassthruBuffer(opcode: 0x02, nsid: nsid, dataLength: 512)) == -EINVAL)   // its only namespace's NSID
            // The ring through the controller node decides as NVME_IOCTL_IO_CMD would (before the
            // fix it skipped the NSID binding there and said 0).
            #expect(Self.verdicts(h.gate, ctrl, .io, [SubmissionQueueEntry(opcode: 0x02, nsid: nsid)]) == [EINVAL])
        }
        #expect(controller.count == 0)
        // Broadcast on the admin queue: reads mean the controller, changes mean every namespace.
        let tenants = try TenantPolicyTests()
        let db = tenants.h.open("nvme0", write: true)
        #expect(tenants.h.admin(db, PassthruBuffer(opcode: 0x06, nsid: 0xFFFF_FFFF, cdw10: 0x00, dataLength: 4096)) == 0)
        #expect(tenants.h.admin(db, PassthruBuffer(opcode: 0x80, nsid: 0xFFFF_FFFF)) == -EACCES)
        #expect(tenants.h.admin(db, PassthruBuffer(opcode: 0x09, nsid: 0xFFFF_FFFF, cdw10: 0x05)) == -EACCES)
        // NSID 0 names no namespace: the controller refuses a Format NVM of it, formatting nothing.
        let rootNS2 = tenants.h.open("nvme0n2", write: true, caps: .sysAdmin, uid: 0)
        #expect(tenants.write(rootNS2, nsid: 2, slba: 5, blocks: 1, byte: 0x2E) == 0)
        #expect(tenants.h.admin(db, PassthruBuffer(opcode: 0x80, nsid: 0)) > 0)
        #expect(tenants.read(rootNS2, nsid: 2, slba: 5).1.allSatisfy { $0 == 0x2E })
    }

    @Test("the same opcode under another command set: Key Value Store (01h) and Zone Append (7Dh) need the whole namespace")
    func otherCommandSet() throws {
        var keyValue = CommandEffectsLog(), zoned = ScriptedController.qemuLikeLog()
        keyValue[.io, 0x01] = CommandEffects(supported: true, logicalBlockContentChange: true)   // Store
        keyValue[.io, 0x02] = .supported                                                        // Retrieve
        zoned[.io, 0x7D] = CommandEffects(supported: true, logicalBlockContentChange: true)     // Zone Append
        let namespaces = [ScriptedController.namespace1, NamespaceInfo(nsid: 3, commandSet: .keyValue, blockCount: 4096),
                          NamespaceInfo(nsid: 4, commandSet: .zoned, blockCount: 4096)]
        let controller = ScriptedController(log: ScriptedController.qemuLikeLog(), otherLogs: [.keyValue: keyValue, .zoned: zoned],
                                            namespaces: namespaces)
        let policy = try Policy.parse("""
            [default.io]
            commands = "none"
            [[tenant]]
            name = "slices"
            uids = [1000]
            rules = "kernel"
            [[tenant.lba_range]]
            nsid = 1
            start = 0
            blocks = 1024
            [[tenant.lba_range]]
            nsid = 3
            start = 0
            blocks = 1024
            [[tenant.lba_range]]
            nsid = 4
            start = 0
            blocks = 1024
            [[tenant]]
            name = "owner"
            uids = [1001]
            rules = "kernel"
            namespaces = [3, 4]
            """)
        let h = Harness(controller, policy: policy)
        let slices = (h.open("nvme0n1", write: true), h.open("nvme0n3", write: true), h.open("nvme0n4", write: true))
        // As NVM Write and Read at LBA 0, inside the slice: allowed. As a key's Store and
        // Retrieve, or an append to a zone, they reach the namespace whole: refused.
        #expect(h.io(slices.0, PassthruBuffer(opcode: 0x01, nsid: 1, dataLength: 512)) == 0)
        #expect(h.io(slices.1, PassthruBuffer(opcode: 0x01, nsid: 3, dataLength: 512)) == -EACCES)
        #expect(h.io(slices.1, PassthruBuffer(opcode: 0x02, nsid: 3, dataLength: 512)) == -EACCES)
        #expect(h.io(slices.2, PassthruBuffer(opcode: 0x7D, nsid: 4, dataLength: 512)) == -EACCES)
        #expect(h.io(slices.2, PassthruBuffer(opcode: 0x01, nsid: 4, dataLength: 512)) == 0)
        #expect(h.gate.count(of: .needsWholeNamespace) == 3)
        // On an NVM namespace 7Dh is no command at all.
        #expect(h.io(slices.0, PassthruBuffer(opcode: 0x7D, nsid: 1, dataLength: 512)) == -EACCES)
        let owner = (h.open("nvme0n3", write: true, uid: 1001), h.open("nvme0n4", write: true, uid: 1001))
        #expect(h.io(owner.0, PassthruBuffer(opcode: 0x01, nsid: 3, dataLength: 512)) == 0)
        #expect(h.io(owner.1, PassthruBuffer(opcode: 0x7D, nsid: 4, dataLength: 512)) == 0)
        #expect(controller.reached.withLock { $0.map(\.opcode) } == [0x01, 0x01, 0x01, 0x7D])
        // A ring through a controller node whose only namespace is Key Value decides with the
        // Key Value table, as the ioctl does.
        let lone = ScriptedController(log: ScriptedController.qemuLikeLog(), otherLogs: [.keyValue: keyValue],
                                      namespaces: [NamespaceInfo(nsid: 3, commandSet: .keyValue, blockCount: 4096)])
        let kv = Harness(lone, policy: policy)
        let ctrl = kv.open("nvme0", write: true)
        #expect(Self.verdicts(kv.gate, ctrl, .io, [SubmissionQueueEntry(opcode: 0x01, nsid: 3)]) == [EACCES])
        #expect(kv.io(ctrl, PassthruBuffer(opcode: 0x01, nsid: 3, dataLength: 512)) == -EACCES)
    }

    // MARK: Ownership

    @Test("Identify, Get Log Page, Get and Set Features aimed at another tenant's namespace reach nothing")
    func anotherTenantsNamespace() throws {
        let text = TenantPolicyTests.policyText.replacingOccurrences(of: "features = [0x05]", with: "features = [0x05, 0x07]")
        let emulated = EmulatedController.inMemory(EmulatorConfiguration(namespaceCount: 2, namespaceSize: 2048 * 512))
        let counting = CountingController(emulated)
        let h = Harness(counting, policy: try Policy.parse(text))
        let ctrl = h.open("nvme0", write: true)
        let aimed: [(UInt8, UInt32, Int)] = [
            (0x06, 0x00, 4096), (0x06, 0x05, 4096), (0x06, 0x08, 4096),      // Identify Namespace, CS-specific, CS-independent
            (0x02, 0x02 | 127 << 16, 512),                                    // SMART / Health of namespace 2
            (0x0A, 0x05, 0), (0x0A, 0x07, 0),                                 // Get Features, namespace and controller scoped
            (0x09, 0x05, 0),                                                  // Set Features Error Recovery of namespace 2
        ]
        for (opcode, cdw10, length) in aimed {
            #expect(h.admin(ctrl, PassthruBuffer(opcode: opcode, nsid: 2, cdw10: cdw10, dataLength: length)) == -EACCES,
                    "opcode \(opcode) cdw10 \(cdw10)")
        }
        #expect(counting.received.withLock { $0 } == 0)
        // The same aimed at its own namespace reach the controller (which answers as it can).
        for (opcode, cdw10, length) in aimed {
            #expect(h.admin(ctrl, PassthruBuffer(opcode: opcode, nsid: 1, cdw10: cdw10, dataLength: length)) >= 0)
        }
        #expect(counting.received.withLock { $0 } == aimed.count)
    }

    @Test("SLBA + NLB wrap-around: past 2^64 never wraps into owned blocks, on a partition, a ring, a range list and Copy's destination")
    func wrapAround() throws {
        let h = Harness(controller, policy: try Policy.parse(TenantPolicyTests.policyText))
        let part = h.open("nvme0n1p1", write: true, uid: 7)      // default rules: confined to LBAs 2048-6143
        for (slba, blocks) in [(UInt64.max, UInt32(2)), (UInt64.max - 1, 3), (6143, 2), (UInt64.max - 2047, 4096)] {
            #expect(h.io(part, PassthruBuffer(opcode: 0x02, nsid: 1, cdw10: UInt32(truncatingIfNeeded: slba),
                                              cdw11: UInt32(truncatingIfNeeded: slba >> 32), cdw12: blocks - 1,
                                              dataLength: Int(blocks) * 512)) == -EACCES)
        }
        #expect(controller.count == 0)
        let emulated = try TenantPolicyTests()
        let ns2 = emulated.h.open("nvme0n2", write: true, uid: 1001)   // scratch: LBAs 0-1023 of namespace 2
        // On a ring: SLBA FFFFFFFFFFFFFFFFh + 2 blocks would end at block 1, inside the range, if it wrapped.
        let ring = [SubmissionQueueEntry(opcode: 0x02, nsid: 2, cdw10: 0xFFFF_FFFF, cdw11: 0xFFFF_FFFF, cdw12: 1),
                    SubmissionQueueEntry(opcode: 0x02, nsid: 2, cdw10: 1000, cdw12: 23)]
        #expect(Self.verdicts(emulated.h.gate, ns2, .io, ring) == [EACCES, 0])
        let dsm = PassthruBuffer(opcode: 0x09, nsid: 2, cdw10: 0, cdw11: 1 << 2, dataLength: 16)
        TenantPolicyTests.rangeList([(UInt64.max, 2)], into: dsm.data)
        #expect(emulated.h.io(ns2, dsm) == -EACCES)
        let copy = PassthruBuffer(opcode: 0x19, nsid: 2, cdw10: 0xFFFF_FFFF, cdw11: 0xFFFF_FFFF, dataLength: 32)
        copy.data.storeBytes(of: UInt64(10).littleEndian, toByteOffset: 8, as: UInt64.self)
        copy.data.storeBytes(of: UInt16(1).littleEndian, toByteOffset: 16, as: UInt16.self)
        #expect(emulated.h.io(ns2, copy) == -EACCES)
        #expect(emulated.h.gate.count(of: .lbaRangeNotOwned) == 2)
    }

    @Test("DSM and Copy: every format, the 256th range, and a Copy source rewritten after the check")
    func rangeLists() throws {
        let t = try TenantPolicyTests()
        let root = t.h.open("nvme0n2", write: true, caps: .sysAdmin, uid: 0)
        #expect(t.write(root, nsid: 2, slba: 10, blocks: 1, byte: 0x33) == 0)
        #expect(t.write(root, nsid: 2, slba: 1500, blocks: 1, byte: 0x77) == 0)
        let ns2 = t.h.open("nvme0n2", write: true, uid: 1001)      // scratch: LBAs 0-1023
        // 256 ranges (the most a DSM holds), only the last outside: refused whole.
        let dsm = PassthruBuffer(opcode: 0x09, nsid: 2, cdw10: 255, cdw11: 1 << 2, dataLength: 256 * 16)
        TenantPolicyTests.rangeList((0..<255).map { (UInt64($0), UInt32(1)) } + [(UInt64(1500), UInt32(1))], into: dsm.data)
        #expect(t.h.io(ns2, dsm) == -EACCES)
        #expect(t.read(root, nsid: 2, slba: 1500).1.allSatisfy { $0 == 0x77 })
        // Copy descriptor format 1 (40 bytes) reading another's block; formats 2h and 3h,
        // which name source namespaces, whatever they hold.
        let format1 = PassthruBuffer(opcode: 0x19, nsid: 2, cdw10: 20, cdw12: 1 << 8, dataLength: 40)
        format1.data.storeBytes(of: UInt64(1500).littleEndian, toByteOffset: 8, as: UInt64.self)
        #expect(t.h.io(ns2, format1) == -EACCES)
        for format: UInt32 in [2, 3] {
            #expect(t.h.io(ns2, PassthruBuffer(opcode: 0x19, nsid: 2, cdw10: 20, cdw12: format << 8, dataLength: 40)) == -EACCES)
        }
        // A Copy from owned LBA 10 whose source another thread turns into LBA 1500 once the
        // gate has checked it: the copy the gate checked is what runs.
        let racer = RewritingController(inner: t.controller)
        let r = Harness(racer, policy: t.h.gate.policy.policy)
        let tenant = r.open("nvme0n2", write: true, uid: 1001)
        let copy = PassthruBuffer(opcode: 0x19, nsid: 2, cdw10: 20, dataLength: 32)
        copy.data.storeBytes(of: UInt64(10).littleEndian, toByteOffset: 8, as: UInt64.self)
        racer.rewrite.withLock { $0 = (UInt(bitPattern: copy.data.baseAddress), 1500) }
        #expect(r.io(tenant, copy) == 0)
        #expect(racer.receivedCallerBuffer.withLock { $0 } == false)
        #expect(t.read(root, nsid: 2, slba: 20).1.allSatisfy { $0 == 0x33 })
    }

    // MARK: Buffers and results

    @Test("a buffer shorter than the transfer (CVE-2023-6238): log pages past 64 KiB, feature structures, Copy's 40-byte format")
    func shortBuffers() {
        let h = Harness(controller)
        let ctrl = h.open("nvme0", caps: root), ns = h.open("nvme0n1", write: true, caps: root)
        // Get Log Page, NUMDU set: (0x10000 << 16 | 0x3FF) + 1 dwords, far past the 4 KiB given.
        #expect(h.admin(ctrl, PassthruBuffer(opcode: 0x02, cdw10: 0x02 | 0x3FF << 16, cdw11: 1, dataLength: 4096)) == -EINVAL)
        // Get Features LBA Range Type returns 4 KiB; Host Identifier with EXHID 16 bytes.
        #expect(h.admin(ctrl, PassthruBuffer(opcode: 0x0A, cdw10: 0x03, dataLength: 64)) == -EINVAL)
        #expect(h.admin(ctrl, PassthruBuffer(opcode: 0x0A, cdw10: 0x81, cdw11: 1, dataLength: 8)) == -EINVAL)
        // Copy, descriptor format 1: two 40-byte descriptors do not fit in 64 bytes.
        #expect(h.io(ns, PassthruBuffer(opcode: 0x19, nsid: 1, cdw12: 1 | 1 << 8, dataLength: 64)) == -EINVAL)
        #expect(controller.count == 0)
        #expect(h.admin(ctrl, PassthruBuffer(opcode: 0x0A, cdw10: 0x81, cdw11: 1, dataLength: 16)) == 0)
    }

    @Test("a 64-bit result on the 72-byte struct: DW1 is never written past it, and refused or SUBMIT_IO commands write nothing")
    func resultWidth() {
        let completion = Completion(status: .success, dw0: 0x1111_2222, dw1: 0x3333_4444)
        let controller = ScriptedController(log: ScriptedController.qemuLikeLog(), completion: completion)
        let h = Harness(controller)
        let ns = h.open("nvme0n1", caps: root)
        for (request, is64) in [(IoctlRequest.ioCommand, false), (.io64Command, true)] {
            let p = PassthruBuffer(is64: is64, opcode: 0x02, nsid: 1, dataLength: 512)
            let before = Array(UnsafeRawBufferPointer(start: p.raw, count: 96))
            #expect(h.ioctl(ns, request, p.raw) == 0)
            let after = Array(UnsafeRawBufferPointer(start: p.raw, count: 96))
            let result = is64 ? 72..<80 : 68..<72
            #expect(p.guardsIntact)
            #expect(before.indices.filter { before[$0] != after[$0] }.allSatisfy { result.contains($0) })
            #expect(is64 ? p.result64 == 0x3333_4444_1111_2222 : p.result32 == 0x1111_2222)
        }
        // Refused: the caller's result stays as it was.
        let refused = PassthruBuffer(opcode: 0x02, nsid: 2, dataLength: 512)
        refused.raw.storeBytes(of: UInt32(0xDEAD_BEEF), toByteOffset: 68, as: UInt32.self)
        #expect(h.io(ns, refused) == -EINVAL)
        #expect(refused.result32 == 0xDEAD_BEEF)
        // NVME_IOCTL_SUBMIT_IO has no result field: its 48 bytes are left alone.
        let data = UnsafeMutableRawBufferPointer.allocate(byteCount: 512, alignment: 8)
        defer { data.deallocate() }
        var io = [UInt8](repeating: 0, count: UserIO.size + 16)
        io[0] = 0x02
        withUnsafeBytes(of: UInt64(UInt(bitPattern: data.baseAddress)).littleEndian) { io.replaceSubrange(16..<24, with: $0) }
        let sent = io
        #expect(io.withUnsafeMutableBytes { h.ioctl(ns, .submitIO, $0.baseAddress) } == 0)
        #expect(io == sent)
    }

    @Test("an effects log that lies: a vendor opcode marked harmless passes only where a policy names it, and an override corrects it")
    func lyingEffectsLog() throws {
        var log = ScriptedController.qemuLikeLog()
        log[.io, 0xC2] = .supported                  // a read by its opcode's bits; really writes: the log says only "supported"
        log[.io, 0x01] = .supported                  // Write without LBCC
        log[.io, 0x08] = .supported                  // Write Zeroes without LBCC
        let controller = ScriptedController(log: log)
        // Linux's rules refuse every vendor opcode, whatever the log says; the opcode bit and
        // Linux's known effects still make Write and Write Zeroes need a writable handle.
        let kernel = Harness(controller)
        let readOnly = kernel.open("nvme0n1")
        #expect(kernel.io(readOnly, PassthruBuffer(opcode: 0xC2, nsid: 1)) == -EACCES)
        #expect(kernel.io(readOnly, PassthruBuffer(opcode: 0x01, nsid: 1, dataLength: 512)) == -EACCES)
        #expect(kernel.io(readOnly, PassthruBuffer(opcode: 0x08, nsid: 1)) == -EACCES)
        #expect(controller.count == 0)
        // A policy that names C2h trusts the log: what the threat model calls the firmware's
        // word. An override for the model says what C2h really does, and it no longer passes
        // a read-only handle or a read-only grant.
        let naming = """
            [default.io]
            vendor_commands = [0xC2]
            permitted_effects = ["LBCC"]
            [[tenant]]
            name = "reader"
            uids = [2000]
            rules = "default"
            read_only_namespaces = [1]
            """
        let trusting = Harness(controller, policy: try Policy.parse(naming))
        #expect(trusting.io(trusting.open("nvme0n1"), PassthruBuffer(opcode: 0xC2, nsid: 1)) == 0)
        let corrected = Harness(controller, policy: try Policy.parse(naming + """

            [[effects.override]]
            model = "scripted"
            queue = "io"
            opcode = 0xC2
            effects = ["LBCC"]
            """))
        #expect(corrected.io(corrected.open("nvme0n1"), PassthruBuffer(opcode: 0xC2, nsid: 1)) == -EACCES)
        #expect(corrected.io(corrected.open("nvme0n1", write: true, uid: 2000), PassthruBuffer(opcode: 0xC2, nsid: 1)) == -EACCES)
        #expect(corrected.gate.count(of: .needsWriteOpen) == 1 && corrected.gate.count(of: .namespaceReadOnly) == 1)
    }

    // MARK: Handles and reloads

    @Test("a handle on a namespace deleted or reformatted: ENODEV once deleted, the new format's lengths once reformatted")
    func deletedOrReformattedNamespace() throws {
        let t = try TenantPolicyTests()
        let rootCtrl = t.h.open("nvme0", write: true, caps: .sysAdmin, uid: 0)
        let db = t.h.open("nvme0n1", write: true)                     // tenant db: namespace 1
        let scratch = t.h.open("nvme0n2", write: true, uid: 1001)     // tenant scratch: LBAs 0-1023 of namespace 2
        #expect(t.read(db, nsid: 1, slba: 0).0 == 0)
        // Format NVM to 4 KiB blocks: a one-block Read now moves 4096 bytes. Before the gate read
        // the namespaces again after it, the 512-byte buffer passed its check.
        #expect(t.h.admin(rootCtrl, PassthruBuffer(opcode: 0x80, nsid: 1, cdw10: 1)) == 0)
        #expect(t.read(db, nsid: 1, slba: 0).0 == -EINVAL)
        #expect(t.h.io(db, PassthruBuffer(opcode: 0x02, nsid: 1, dataLength: 4096)) == 0)
        // Namespace 2 deleted, then created again with the same NSID: the old handle stays dead.
        #expect(t.h.admin(rootCtrl, PassthruBuffer(opcode: 0x0D, nsid: 2, cdw10: 1)) == 0)
        #expect(t.read(scratch, nsid: 2, slba: 0).0 == -ENODEV)
        let create = PassthruBuffer(opcode: 0x0D, cdw10: 0, dataLength: 4096)
        create.data.storeBytes(of: UInt64(2048).littleEndian, toByteOffset: 0, as: UInt64.self)
        create.data.storeBytes(of: UInt64(2048).littleEndian, toByteOffset: 8, as: UInt64.self)
        #expect(t.h.admin(rootCtrl, create) == 0 && create.result32 == 2)
        let attach = PassthruBuffer(opcode: 0x15, nsid: 2, cdw10: 0, dataLength: 4096)
        attach.data.storeBytes(of: UInt16(1).littleEndian, toByteOffset: 0, as: UInt16.self)
        attach.data.storeBytes(of: UInt16(1).littleEndian, toByteOffset: 2, as: UInt16.self)
        #expect(t.h.admin(rootCtrl, attach) == 0)
        #expect(t.read(scratch, nsid: 2, slba: 0).0 == -ENODEV)
        #expect(t.h.gate.count(of: .namespaceGone) == 2)
        #expect(t.read(t.h.open("nvme0n2", write: true, uid: 1001), nsid: 2, slba: 0).0 == 0)
        // A format made around the gate (here, straight to the controller) is seen at the next
        // NVME_IOCTL_RESCAN, as Linux sees it at its next scan.
        let around = SubmissionQueueEntry(opcode: 0x80, nsid: 1, cdw10: 0)
        _ = try around.withEntry { e in
            try t.controller.submit(e, queue: .admin, data: UnsafeMutableRawBufferPointer(start: nil, count: 0),
                                    metadata: UnsafeMutableRawBufferPointer(start: nil, count: 0))
        }
        #expect(t.h.ioctl(rootCtrl, .rescan, nil) == 0)
        #expect(t.read(db, nsid: 1, slba: 0).0 == 0)
        // The same through submitBatch: a Format NVM in an admin batch is followed by a rescan,
        // and batched I/O on a dead handle is ENODEV for each command.
        typealias Command64 = BatchSubmitTests.Command64
        let format = BatchSubmitTests.Batch([Command64(opcode: 0x80, nsid: 1, cdw10: 1)])
        #expect(format.submit(t.h.gate, rootCtrl, queue: .admin) == 1 && format.returns[0] == 0)
        let reads = BatchSubmitTests.Batch([Command64(opcode: 0x02, nsid: 1, dataLength: 512),
                                            Command64(opcode: 0x02, nsid: 1, dataLength: 4096)])
        #expect(reads.submit(t.h.gate, db) == 2 && reads.returns[0] == -EINVAL && reads.returns[1] == 0)
        let dead = BatchSubmitTests.Batch([Command64(opcode: 0x02, nsid: 2, dataLength: 512),
                                           Command64(opcode: 0x00, nsid: 2)])
        #expect(dead.submit(t.h.gate, scratch) == 2 && dead.returns[0] == -ENODEV && dead.returns[1] == -ENODEV)
        #expect(t.h.gate.count(of: .namespaceGone) == 4)
    }

    @Test("a closed handle: EBADF on every path, and a close racing four submitting threads leaves only 0 or EBADF")
    func closedHandle() async throws {
        let loopback = LoopbackController()
        let gate = Gate(controller: loopback)
        let h = Harness(gate: gate)
        let handle = h.open("nvme0n1", write: true)
        let done = DoneFlag()
        let outcomes = await withTaskGroup(of: [Int32: Int].self) { group in
            // The closer first: the submitters never yield their threads of the task pool.
            group.addTask {
                for _ in 0..<1000 where loopback.totalReceived < 100 { usleep(1000) }
                #expect(gate.close(handle) == 0)
                done.value.store(true, ordering: .releasing)
                return [:]
            }
            for _ in 0..<4 {
                group.addTask {
                    var seen: [Int32: Int] = [:]
                    repeat {
                        seen[h.io(handle, PassthruBuffer(opcode: 0x01, nsid: 1, dataLength: 512)), default: 0] += 1
                    } while !done.value.load(ordering: .acquiring)
                    return seen
                }
            }
            var all: [Int32: Int] = [:]
            for await part in group { for (k, v) in part { all[k, default: 0] += v } }
            return all
        }
        #expect(Set(outcomes.keys).isSubset(of: [0, -EBADF]))
        #expect(UInt64(outcomes[0] ?? 0) == loopback.totalReceived)
        #expect(h.io(handle, PassthruBuffer(opcode: 0x02, nsid: 1, dataLength: 512)) == -EBADF)
        #expect(h.ioctl(handle, .id, nil) == -EBADF)
        #expect(Self.verdicts(gate, handle, .io, [SubmissionQueueEntry(opcode: 0x02, nsid: 1)]) == nil)
        #expect(gate.handleState(handle) == nil)
        #expect(SubmissionQueueEntry(opcode: 0x02, nsid: 1).withEntry { gate.explain(handle, queue: .io, command: $0) } == nil)
        #expect(gate.close(handle) == -EBADF)
    }

    @Test("a reload to a broken policy mid-flight: files the parser used to abort on, refused while threads submit")
    func brokenReloadMidFlight() async throws {
        let t = try TenantPolicyTests()
        let files = TemporaryFiles()
        let good = files.write("good.toml", TenantPolicyTests.policyText)
        // Each stopped the process inside TOMLKit's parser before the loader looked for them.
        let broken = ["[.default]\n", "[default]\nx = [}\n", "[default.io]\ncommands = [\"Read\", }\n", "[école]\n",
                      "[default]\npartitions = 7\n"].enumerated().map { files.write("broken\($0.offset).toml", $0.element) }
        let gate = t.h.gate
        let done = DoneFlag()
        let seen = await withTaskGroup(of: [Int32: Int].self) { group in
            group.addTask {
                for i in 0..<100 {
                    #expect(throws: PolicyError.self) { try gate.reload(path: broken[i % broken.count]) }
                    if i % 10 == 0 { try? gate.reload(path: good) }
                }
                done.value.store(true, ordering: .releasing)
                return [:]
            }
            for _ in 0..<4 {
                group.addTask {
                    let handle = gate.open(node: "nvme0n1", writable: true, caller: Caller(uid: 1000, gid: 1000))
                    var local: [Int32: Int] = [:]
                    repeat {
                        let p = PassthruBuffer(opcode: 0x01, nsid: 1, cdw10: 7, dataLength: 512)
                        local[value(gate.ioctl(handle, request: IoctlRequest.ioCommand.rawValue, argument: p.raw)), default: 0] += 1
                    } while !done.value.load(ordering: .acquiring)
                    return local
                }
            }
            var all: [Int32: Int] = [:]
            for await part in group { for (k, v) in part { all[k, default: 0] += v } }
            return all
        }
        #expect(Array(seen.keys) == [0], "db's writes of its own namespace: every one allowed, under the one policy in force")
        #expect(gate.policy.policy == (try Policy.parse(TenantPolicyTests.policyText)))
    }

    // MARK: Helpers

    /// `Gate.checkBatch` over `ring`: the verdicts, or nil for a handle that is not open.
    static func verdicts(_ gate: Gate, _ handle: Int32, _ queue: Queue, _ ring: [SubmissionQueueEntry]) -> [Int32]? {
        var bytes: [UInt8] = []
        for e in ring { bytes += TenantPolicyTests.bytes(e) }
        var verdicts = [UInt8](repeating: 0xFF, count: ring.count)
        let count = bytes.withUnsafeBytes { raw in
            verdicts.withUnsafeMutableBufferPointer {
                gate.checkBatch(handle, queue: queue, entries: RawSpan(_unsafeBytes: raw), verdicts: $0.baseAddress!)
            }
        }
        return count < 0 ? nil : verdicts.map(Int32.init)
    }
}

/// The ioctl's outcome as Linux's convention: the value, or -errno.
func value(_ outcome: IoctlOutcome) -> Int32 {
    switch outcome {
    case .returned(let v): v
    case .failed(let e): -e
    }
}

/// Forwards to an emulated controller, counting what reaches it.
final class CountingController: Controller, @unchecked Sendable {
    let inner: EmulatedController
    let received = Mutex(0)
    init(_ inner: EmulatedController) { self.inner = inner }
    var identity: ControllerIdentity { inner.identity }
    func namespaces() -> [NamespaceInfo] { inner.namespaces() }
    func effectsLog(for commandSet: CommandSet) -> CommandEffectsLog? { inner.effectsLog(for: commandSet) }
    func submit(_ command: borrowing SubmissionEntry, queue: Queue, data: UnsafeMutableRawBufferPointer,
                metadata: UnsafeMutableRawBufferPointer) throws(ControllerError) -> Completion {
        received.withLock { $0 += 1 }
        return try inner.submit(command, queue: queue, data: data, metadata: metadata)
    }
    func reset() throws(ControllerError) { try inner.reset() }
    func subsystemReset() throws(ControllerError) { try inner.subsystemReset() }
    func rescan() throws(ControllerError) { try inner.rescan() }
}
