#if canImport(Glibc)
import Glibc
#endif
import Logging
import NVMeEmulator
import NVMeGate
import NVMeSpec
import Synchronization
import Testing

/// Tenants, namespace and LBA-range ownership, monitoring grants, vendor opt-in, effects
/// overrides, fused pairs, audit and reload, through the gate's ioctl front end against the
/// emulated controller (two namespaces of 2048 blocks).
@Suite("Tenant policies")
struct TenantPolicyTests {
    static let policyText = """
        version = 1
        name = "tenants-test"

        [default]
        partitions = "confined"
        [default.admin]
        identify_cns = [0x01]
        [default.io]
        commands = "supported"
        permitted_effects = ["LBCC", "USS", "CSP"]

        [[tenant]]
        name = "db"
        uids = [1000]
        rules = "kernel"
        namespaces = [1]
        audit_allowed = ["writes"]
        [tenant.admin]
        commands = ["Format NVM", "Set Features", "Sanitize"]
        log_pages = [0x02]
        features = [0x05]

        [[tenant]]
        name = "scratch"
        uids = [1001]
        rules = "kernel"
        [tenant.io]
        fused_compare_write = true
        [[tenant.lba_range]]
        nsid = 2
        start = 0
        blocks = 1024

        [[tenant]]
        name = "auditor"
        gids = [2000]
        rules = "kernel"
        read_only_namespaces = [1, 2]

        [[tenant]]
        name = "monitor"
        uids = [3000]
        [tenant.admin]
        identify_cns = [0x01]
        log_pages = [0x01, 0x02, 0x07]
        log_page_lsp = [0x00]
        retain_async_event = "required"
        """

    let controller = EmulatedController.inMemory(EmulatorConfiguration(namespaceCount: 2, namespaceSize: 2048 * 512))
    let h: Harness

    init() throws {
        h = Harness(controller, policy: try Policy.parse(Self.policyText, file: "tenants-test.toml"))
    }

    func write(_ handle: Int32, nsid: UInt32, slba: UInt64, blocks: UInt32, byte: UInt8 = 0x5A) -> Int32 {
        let p = PassthruBuffer(opcode: 0x01, nsid: nsid, cdw10: UInt32(truncatingIfNeeded: slba), cdw11: UInt32(truncatingIfNeeded: slba >> 32),
                               cdw12: blocks - 1, dataLength: Int(blocks) * 512)
        p.data.initializeMemory(as: UInt8.self, repeating: byte)
        return h.io(handle, p)
    }

    func read(_ handle: Int32, nsid: UInt32, slba: UInt64, blocks: UInt32 = 1) -> (Int32, [UInt8]) {
        let p = PassthruBuffer(opcode: 0x02, nsid: nsid, cdw10: UInt32(truncatingIfNeeded: slba), cdw11: UInt32(truncatingIfNeeded: slba >> 32),
                               cdw12: blocks - 1, dataLength: Int(blocks) * 512)
        return (h.io(handle, p), Array(p.data))
    }

    // MARK: Namespace ownership

    @Test("a tenant reaches only its namespaces, by I/O and by every admin command that names one")
    func namespaceOwnership() {
        let ns1 = h.open("nvme0n1", write: true), ns2 = h.open("nvme0n2", write: true), ctrl = h.open("nvme0", write: true)
        #expect(write(ns1, nsid: 1, slba: 0, blocks: 1) == 0)
        #expect(write(ns2, nsid: 2, slba: 0, blocks: 1) == -EACCES)
        #expect(h.gate.count(of: .namespaceNotOwned) == 1)
        // Identify: its own namespace yes, another's no (Linux lets any namespace holder do that).
        #expect(h.admin(ctrl, PassthruBuffer(opcode: 0x06, nsid: 1, cdw10: 0x00, dataLength: 4096)) == 0)
        #expect(h.admin(ctrl, PassthruBuffer(opcode: 0x06, nsid: 2, cdw10: 0x00, dataLength: 4096)) == -EACCES)
        #expect(h.admin(ctrl, PassthruBuffer(opcode: 0x06, nsid: 2, cdw10: 0x05, dataLength: 4096)) == -EACCES)
        // CNS 01h ignores the NSID: Identify Controller is fine whatever it says.
        #expect(h.admin(ctrl, PassthruBuffer(opcode: 0x06, nsid: 2, cdw10: 0x01, dataLength: 4096)) == 0)
        // Get Log Page: a namespace it owns, or the controller (FFFFFFFFh); not another namespace.
        #expect(h.admin(ctrl, PassthruBuffer(opcode: 0x02, nsid: 0xFFFF_FFFF, cdw10: 0x02 | 127 << 16, dataLength: 512)) == 0)
        #expect(h.admin(ctrl, PassthruBuffer(opcode: 0x02, nsid: 2, cdw10: 0x02 | 127 << 16, dataLength: 512)) == -EACCES)
        // Set Features of a namespace-scoped feature (Error Recovery): its own only, never all.
        #expect(h.admin(ctrl, PassthruBuffer(opcode: 0x09, nsid: 1, cdw10: 0x05)) == 0)
        #expect(h.admin(ctrl, PassthruBuffer(opcode: 0x09, nsid: 2, cdw10: 0x05)) == -EACCES)
        #expect(h.admin(ctrl, PassthruBuffer(opcode: 0x09, nsid: 0xFFFF_FFFF, cdw10: 0x05)) == -EACCES)
        #expect(h.gate.count(of: .broadcastNotOwned) == 1)
        // Format NVM: its namespace yes; every namespace (FFFFFFFFh) no; Sanitize reaches all: no.
        #expect(h.admin(ctrl, PassthruBuffer(opcode: 0x80, nsid: 1)) == 0)
        #expect(h.admin(ctrl, PassthruBuffer(opcode: 0x80, nsid: 0xFFFF_FFFF)) == -EACCES)
        #expect(h.admin(ctrl, PassthruBuffer(opcode: 0x84, cdw10: 0x02)) == -EACCES)
        #expect(h.gate.count(of: .broadcastNotOwned) == 3)
        // What was refused never reached the controller: namespace 2 still reads zeroes.
        let root = h.open("nvme0n2", caps: .sysAdmin, uid: 0)
        #expect(read(root, nsid: 2, slba: 0).1.allSatisfy { $0 == 0 })
    }

    @Test("refusals name the tenant and what it owns")
    func sentences() throws {
        let ctrl = h.open("nvme0")
        let identify = SubmissionQueueEntry(opcode: 0x06, nsid: 2, cdw10: 0x00)
        let explained = try #require(identify.withEntry { h.gate.explain(ctrl, queue: .admin, command: $0) })
        #expect(explained.reason == .namespaceNotOwned)
        #expect(explained.sentence == "Identify (06h) addresses namespace 2, which tenant \"db\" does not own")
        let rule = h.gate.policy.rule(for: .namespaceNotOwned, queue: .admin, commandSet: .nvm, opcode: 0x06, tenant: 1)
        #expect(rule == "[[tenant]] name = \"db\": owns namespace 1")
    }

    // MARK: LBA ranges

    @Test("an LBA-range tenant stays inside its range, SLBA + NLB overflow included")
    func lbaRange() {
        let ns2 = h.open("nvme0n2", write: true, uid: 1001)
        #expect(write(ns2, nsid: 2, slba: 1000, blocks: 24) == 0)
        #expect(write(ns2, nsid: 2, slba: 1000, blocks: 25) == -EACCES)
        #expect(write(ns2, nsid: 2, slba: 1024, blocks: 1) == -EACCES)
        #expect(write(ns2, nsid: 2, slba: UInt64.max, blocks: 2) == -EACCES)
        #expect(read(ns2, nsid: 2, slba: 0xFFFF_FFFF_FFFF_FFF0, blocks: 32).0 == -EACCES)
        #expect(h.gate.count(of: .lbaRangeNotOwned) == 4)
        // Flush touches no one's blocks; a reservation would take the whole namespace.
        #expect(h.io(ns2, PassthruBuffer(opcode: 0x00, nsid: 2)) == 0)
        #expect(h.io(ns2, PassthruBuffer(opcode: 0x0D, nsid: 2, dataLength: 16)) == -EACCES)
        #expect(h.gate.count(of: .needsWholeNamespace) == 1)
        let ns1 = h.open("nvme0n1", uid: 1001)
        #expect(read(ns1, nsid: 1, slba: 0).0 == -EACCES)
    }

    /// A Dataset Management range list: (SLBA, blocks) pairs, 16 bytes each.
    static func rangeList(_ ranges: [(UInt64, UInt32)], into buffer: UnsafeMutableRawBufferPointer) {
        for (i, (slba, blocks)) in ranges.enumerated() {
            buffer.storeBytes(of: blocks.littleEndian, toByteOffset: i * 16 + 4, as: UInt32.self)
            buffer.storeBytes(of: slba.littleEndian, toByteOffset: i * 16 + 8, as: UInt64.self)
        }
    }

    @Test("Dataset Management: every range is checked, and what runs is what was checked")
    func datasetManagementRanges() {
        let root = h.open("nvme0n2", write: true, caps: .sysAdmin, uid: 0)
        #expect(write(root, nsid: 2, slba: 100, blocks: 1) == 0)
        #expect(write(root, nsid: 2, slba: 2000, blocks: 1) == 0)
        let ns2 = h.open("nvme0n2", write: true, uid: 1001)
        // Deallocate (AD, CDW11 bit 2) two ranges, one outside the tenant's: refused whole.
        let outside = PassthruBuffer(opcode: 0x09, nsid: 2, cdw10: 1, cdw11: 1 << 2, dataLength: 32)
        Self.rangeList([(100, 1), (2000, 1)], into: outside.data)
        #expect(h.io(ns2, outside) == -EACCES)
        #expect(read(root, nsid: 2, slba: 100).1.allSatisfy { $0 == 0x5A })
        let inside = PassthruBuffer(opcode: 0x09, nsid: 2, cdw10: 0, cdw11: 1 << 2, dataLength: 16)
        Self.rangeList([(100, 1)], into: inside.data)
        #expect(h.io(ns2, inside) == 0)
        #expect(read(root, nsid: 2, slba: 100).1.allSatisfy { $0 == 0 })
        #expect(read(root, nsid: 2, slba: 2000).1.allSatisfy { $0 == 0x5A })
    }

    @Test("Copy: source ranges and destination must both be owned")
    func copyRanges() {
        let root = h.open("nvme0n2", write: true, caps: .sysAdmin, uid: 0)
        #expect(write(root, nsid: 2, slba: 1500, blocks: 1, byte: 0x77) == 0)
        #expect(write(root, nsid: 2, slba: 10, blocks: 1, byte: 0x33) == 0)
        let ns2 = h.open("nvme0n2", write: true, uid: 1001)
        func copy(from source: UInt64, to destination: UInt32) -> Int32 {
            let p = PassthruBuffer(opcode: 0x19, nsid: 2, cdw10: destination, cdw12: 0, dataLength: 32)
            p.data.storeBytes(of: source.littleEndian, toByteOffset: 8, as: UInt64.self)
            return h.io(ns2, p)
        }
        #expect(copy(from: 1500, to: 20) == -EACCES)          // source outside: refused
        #expect(copy(from: 10, to: 1500) == -EACCES)          // destination outside: refused
        #expect(read(root, nsid: 2, slba: 1500).1.allSatisfy { $0 == 0x77 })
        #expect(copy(from: 10, to: 20) == 0)
        #expect(read(root, nsid: 2, slba: 20).1.allSatisfy { $0 == 0x33 })
    }

    @Test("a range list rewritten after the check does not reach the controller")
    func rewrittenRangeList() {
        let racer = RewritingController(inner: controller)
        let h = Harness(racer, policy: self.h.gate.policy.policy)
        let root = h.open("nvme0n2", write: true, caps: .sysAdmin, uid: 0)
        let victim = PassthruBuffer(opcode: 0x01, nsid: 2, cdw10: 2000, dataLength: 512)
        victim.data.initializeMemory(as: UInt8.self, repeating: 0x99)
        #expect(h.io(root, victim) == 0)
        let ns2 = h.open("nvme0n2", write: true, uid: 1001)
        let dsm = PassthruBuffer(opcode: 0x09, nsid: 2, cdw10: 0, cdw11: 1 << 2, dataLength: 16)
        Self.rangeList([(5, 1)], into: dsm.data)
        // The controller, when the command arrives, rewrites the caller's buffer to aim at
        // LBA 2000, another tenant's block: the gate must have handed over its own copy.
        let address = UInt(bitPattern: dsm.data.baseAddress)
        racer.rewrite.withLock { $0 = (address, 2000) }
        #expect(h.io(ns2, dsm) == 0)
        #expect(racer.receivedCallerBuffer.withLock { $0 } == false)
        let after = PassthruBuffer(opcode: 0x02, nsid: 2, cdw10: 2000, dataLength: 512)
        #expect(h.io(root, after) == 0)
        #expect(after.data.allSatisfy { $0 == 0x99 })
    }

    // MARK: Read-only ownership, partitions, monitoring

    @Test("a read-only grant reads but never writes, even through a writable handle")
    func readOnly() {
        let ns1 = h.gate.open(node: "nvme0n1", writable: true, caller: Caller(uid: 4242, gid: 2000))
        #expect(read(ns1, nsid: 1, slba: 0).0 == 0)
        #expect(write(ns1, nsid: 1, slba: 0, blocks: 1) == -EACCES)
        #expect(h.gate.count(of: .namespaceReadOnly) == 1)
    }

    @Test("partitions = \"confined\": a partition handle stays inside its partition")
    func confinedPartition() {
        let scripted = ScriptedController(log: ScriptedController.qemuLikeLog())
        let h = Harness(scripted, policy: self.h.gate.policy.policy)
        let part = h.open("nvme0n1p1", write: true, uid: 7)   // default rules: partition 2048 + 4096 blocks
        func io(_ opcode: UInt8, _ slba: UInt32, _ blocks: UInt32) -> Int32 {
            h.io(part, PassthruBuffer(opcode: opcode, nsid: 1, cdw10: slba, cdw12: blocks - 1, dataLength: Int(blocks) * 512))
        }
        #expect(io(0x02, 2048, 8) == 0)
        #expect(io(0x01, 6136, 8) == 0)
        #expect(io(0x02, 2047, 1) == -EACCES)
        #expect(io(0x01, 6140, 8) == -EACCES)
        let inside = PassthruBuffer(opcode: 0x09, nsid: 1, cdw10: 0, dataLength: 16)
        Self.rangeList([(3000, 8)], into: inside.data)
        #expect(h.io(part, inside) == 0)
        let outside = PassthruBuffer(opcode: 0x09, nsid: 1, cdw10: 0, dataLength: 16)
        Self.rangeList([(0, 1)], into: outside.data)
        #expect(h.io(part, outside) == -EACCES)
        #expect(scripted.count == 3)
        // Linux's rule stays for a policy that does not say "confined".
        let kernel = Harness(scripted)
        #expect(kernel.io(kernel.open("nvme0n1p1", write: true), PassthruBuffer(opcode: 0x02, nsid: 1, cdw10: 2048, dataLength: 512)) == -EACCES)
    }

    @Test("monitoring: named log pages with RAE set and LSP 0, nothing that changes state, no namespace")
    func monitoring() {
        let ctrl = h.open("nvme0", uid: 3000)
        let rae: UInt32 = 1 << 15
        #expect(h.admin(ctrl, PassthruBuffer(opcode: 0x02, nsid: 0xFFFF_FFFF, cdw10: 0x02 | rae | 127 << 16, dataLength: 512)) == 0)
        #expect(h.admin(ctrl, PassthruBuffer(opcode: 0x02, nsid: 0xFFFF_FFFF, cdw10: 0x02 | 127 << 16, dataLength: 512)) == -EACCES)
        #expect(h.gate.count(of: .logPageNeedsRetain) == 1)
        // Telemetry Host-Initiated with LSP 1 would create a snapshot: refused.
        #expect(h.admin(ctrl, PassthruBuffer(opcode: 0x02, cdw10: 0x07 | rae | 1 << 8 | 127 << 16, dataLength: 512)) == -EACCES)
        #expect(h.gate.count(of: .logPageLSPNotAllowed) == 1)
        #expect(h.admin(ctrl, PassthruBuffer(opcode: 0x02, nsid: 1, cdw10: 0x02 | rae | 127 << 16, dataLength: 512)) == -EACCES)
        #expect(h.admin(ctrl, PassthruBuffer(opcode: 0x06, cdw10: 0x01, dataLength: 4096)) == 0)
        #expect(h.admin(ctrl, PassthruBuffer(opcode: 0x09, cdw10: 0x06, cdw11: 0)) == -EACCES)
        let ns = h.open("nvme0n1", uid: 3000)
        #expect(read(ns, nsid: 1, slba: 0).0 == -EACCES)
    }

    // MARK: Vendor commands and effects overrides

    @Test("vendor commands pass one by one, only where the effects log vouches; overrides correct a lying log")
    func vendorAndOverrides() throws {
        var log = ScriptedController.qemuLikeLog()
        log[.io, 0xC1] = CommandEffects.supported
        log[.io, 0xC3] = CommandEffects(supported: true, namespaceCapabilityChange: true)
        log[.admin, 0xC5] = CommandEffects.supported
        let scripted = ScriptedController(log: log)
        let base = """
            [default.admin]
            commands = [0xC5, 0xC6]
            [default.io]
            commands = "supported"
            vendor_commands = [0xC1, 0xC3, 0xC4]
            permitted_effects = ["LBCC"]
            """
        let h = Harness(scripted, policy: try Policy.parse(base))
        let ns = h.open("nvme0n1", write: true), ctrl = h.open("nvme0")
        #expect(h.io(ns, PassthruBuffer(opcode: 0xC1, nsid: 1)) == 0)
        #expect(h.io(ns, PassthruBuffer(opcode: 0xC2, nsid: 1)) == -EACCES)   // not named
        #expect(h.io(ns, PassthruBuffer(opcode: 0xC3, nsid: 1)) == -EACCES)   // NCC: beyond what is permitted
        #expect(h.io(ns, PassthruBuffer(opcode: 0xC4, nsid: 1)) == -EACCES)   // named, but not in the log
        #expect(h.admin(ctrl, PassthruBuffer(opcode: 0xC5)) == 0)
        #expect(h.admin(ctrl, PassthruBuffer(opcode: 0xC6)) == -EACCES)
        #expect(scripted.count == 2)

        // The controller says C1h is harmless; an override for its model says it changes namespaces.
        let overridden = try Policy.parse(base + """

            [[effects.override]]
            model = "scrip*"
            queue = "io"
            opcode = 0xC1
            effects = ["NCC"]
            [[effects.override]]
            model = "another model"
            queue = "io"
            opcode = 0xC3
            effects = ["CSUPP"]
            replace = true
            """)
        h.gate.reload(overridden)
        #expect(h.io(ns, PassthruBuffer(opcode: 0xC1, nsid: 1)) == -EACCES)
        #expect(h.gate.count(of: .intrusiveEffects) == 2)
        #expect(h.io(ns, PassthruBuffer(opcode: 0xC3, nsid: 1)) == -EACCES)   // that override is for another model
        #expect(h.gate.policy.effects(queue: .io, commandSet: .nvm, opcode: 0xC1).contains(.namespaceCapabilityChange))
    }

    // MARK: Fused pairs on a ring

    /// The 64 bytes of `entry` as they sit in a submission queue.
    static func bytes(_ entry: SubmissionQueueEntry) -> [UInt8] {
        (0..<16).flatMap { i in withUnsafeBytes(of: entry.dwords[i].littleEndian) { Array($0) } }
    }

    @Test("a fused Compare + Write is decided as one; a lone half is refused")
    func fusedPairs() throws {
        let ns2 = h.open("nvme0n2", write: true, uid: 1001)
        func entry(_ opcode: UInt8, fuse: UInt8, slba: UInt32) -> SubmissionQueueEntry {
            SubmissionQueueEntry(opcode: opcode, flags: fuse, nsid: 2, cdw10: slba)
        }
        let ring = [entry(0x05, fuse: 1, slba: 10), entry(0x01, fuse: 2, slba: 10),     // pair, inside: both pass
                    entry(0x05, fuse: 1, slba: 10), entry(0x01, fuse: 2, slba: 1500),   // write half outside: neither
                    entry(0x05, fuse: 1, slba: 10),                                      // lone first half
                    entry(0x02, fuse: 0, slba: 10),
                    entry(0x01, fuse: 2, slba: 10)]                                      // lone second half
        var bytes: [UInt8] = []
        for e in ring { bytes += Self.bytes(e) }
        var verdicts = [UInt8](repeating: 0xFF, count: ring.count)
        let count = bytes.withUnsafeBytes { raw in
            verdicts.withUnsafeMutableBufferPointer { h.gate.checkBatch(ns2, queue: .io, entries: RawSpan(_unsafeBytes: raw), verdicts: $0.baseAddress!) }
        }
        #expect(count == ring.count)
        #expect(verdicts == [0, 0, UInt8(EACCES), UInt8(EACCES), UInt8(EINVAL), 0, UInt8(EINVAL)])
        // Without fused_compare_write (tenant "db"), FUSE bits are refused as Linux refuses them.
        let ns1 = h.open("nvme0n1", write: true)
        let pair = ring[0..<2].map { e in var e = e; e.nsid = 1; return e }
        var pairBytes: [UInt8] = []
        for e in pair { pairBytes += Self.bytes(e) }
        var pairVerdicts = [UInt8](repeating: 0xFF, count: 2)
        _ = pairBytes.withUnsafeBytes { raw in
            pairVerdicts.withUnsafeMutableBufferPointer { h.gate.checkBatch(ns1, queue: .io, entries: RawSpan(_unsafeBytes: raw), verdicts: $0.baseAddress!) }
        }
        #expect(pairVerdicts == [UInt8(EINVAL), UInt8(EINVAL)])
    }

    // MARK: Audit and reload

    @Test("audit_allowed = [\"writes\"]: allowed writes are audited with the tenant, reads are not")
    func auditAllowed() throws {
        let events = CapturedEvents()
        let gate = Gate(controller: controller, policy: try Policy.parse(Self.policyText),
                        audit: Logger(label: "audit") { _ in events })
        let h = Harness(gate: gate)
        let ns1 = h.open("nvme0n1", write: true)
        #expect(h.io(ns1, PassthruBuffer(opcode: 0x01, nsid: 1, cdw10: 3, dataLength: 512)) == 0)
        #expect(h.io(ns1, PassthruBuffer(opcode: 0x02, nsid: 1, cdw10: 3, dataLength: 512)) == 0)
        #expect(gate.count(of: .allowedAndAudited) == 1)
        let logged = events.lines.withLock { $0 }
        #expect(logged.count == 1)
        #expect(logged.first?.contains("reason=allowed-audited") == true)
        #expect(logged.first?.contains("tenant=db") == true)
    }

    @Test("reload: a broken file changes nothing; a new policy re-matches open handles")
    func reload() throws {
        let ns1 = h.open("nvme0n1", write: true)
        #expect(write(ns1, nsid: 1, slba: 0, blocks: 1) == 0)
        let files = TemporaryFiles()
        let broken = files.write("broken.toml", "[default]\npartitions = 7\n")
        #expect(throws: PolicyError.self) { try h.gate.reload(path: broken) }
        #expect(write(ns1, nsid: 1, slba: 0, blocks: 1) == 0)
        let moved = files.write("moved.toml", Self.policyText.replacingOccurrences(of: "namespaces = [1]", with: "namespaces = [2]"))
        try h.gate.reload(path: moved)
        #expect(write(ns1, nsid: 1, slba: 0, blocks: 1) == -EACCES)
        let ns2 = h.open("nvme0n2", write: true)
        #expect(write(ns2, nsid: 2, slba: 0, blocks: 1) == 0)
    }

    @Test("reload racing 8 submitting threads: every verdict is one whole policy's")
    func reloadRace() async throws {
        let allowing = try Policy.parse(Self.policyText)
        let refusing = try Policy.parse(Self.policyText.replacingOccurrences(of: "namespaces = [1]", with: "namespaces = [2]"))
        let gate = h.gate
        let done = DoneFlag()
        let seen = await withTaskGroup(of: [Int32: Int].self) { group in
            group.addTask {
                for i in 0..<200 { gate.reload(i % 2 == 0 ? refusing : allowing) }
                done.value.store(true, ordering: .releasing)
                return [:]
            }
            for _ in 0..<8 {
                group.addTask {
                    let handle = gate.open(node: "nvme0n1", writable: false, caller: Caller(uid: 1000, gid: 1000))
                    var local: [Int32: Int] = [:]
                    repeat {
                        let p = PassthruBuffer(opcode: 0x02, nsid: 1, cdw10: 7, dataLength: 512)
                        let r: Int32 = switch gate.ioctl(handle, request: IoctlRequest.ioCommand.rawValue, argument: p.raw) {
                        case .returned(let v): v
                        case .failed(let e): -e
                        }
                        local[r, default: 0] += 1
                    } while !done.value.load(ordering: .acquiring)
                    return local
                }
            }
            var all: [Int32: Int] = [:]
            for await part in group { for (k, v) in part { all[k, default: 0] += v } }
            return all
        }
        #expect(Set(seen.keys).isSubset(of: [0, -EACCES]))
        #expect(seen.values.reduce(0, +) >= 8)
        // The last reload installed the allowing policy.
        #expect(read(h.open("nvme0n1"), nsid: 1, slba: 7).0 == 0)
    }

    // MARK: Loading

    /// (file text, key in the error, a word the message must contain)
    static let brokenTenants: [(String, String, String)] = [
        ("[default]\n[[tenant]]\nname = \"x\"\n", "tenant.uids", "matches nobody"),
        ("[default]\n[[tenant]]\nname = \"x\"\nuids = [1]\nnamespaces = [1]\nread_only_namespaces = [1]\n", "tenant.read_only_namespaces", "granted twice"),
        ("[default]\n[[tenant]]\nname = \"x\"\nuids = [1]\n[[tenant.lba_range]]\nnsid = 1\nstart = 0\nblocks = 0\n", "tenant.lba_range.blocks", "1 or more"),
        ("[default]\n[[tenant]]\nname = \"x\"\nuids = [1]\nrules = \"linux\"\n", "tenant.rules", "\"kernel\""),
        ("[default]\n[[tenant]]\nname = \"x\"\nuids = [1]\n[[tenant]]\nname = \"x\"\nuids = [2]\n", "tenant.name", "two tenants"),
        ("[default]\n[default.admin]\nlog_page_lsp = [0x80]\n", "default.admin.log_page_lsp", "7 bits"),
        ("[default]\n[[effects.override]]\nmodel = \"m\"\nqueue = \"io\"\nopcode = 0x100\n", "effects.override.opcode", "0xFF"),
    ]

    @Test("broken tenant sections are refused with the key and what is wrong", arguments: brokenTenants)
    func brokenTenant(text: String, key: String, word: String) {
        do {
            _ = try Policy.parse(text, file: "t.toml")
            Issue.record("\(key) should have been refused")
        } catch {
            #expect(error.key == key)
            #expect(error.message.contains(word), "\(error.message)")
        }
    }
}

/// Forwards to the emulated controller; when a command arrives, first rewrites the caller's
/// buffer (as a racing thread would) and notes whether it was handed that buffer.
final class RewritingController: Controller, @unchecked Sendable {
    let inner: EmulatedController
    /// The caller's buffer address and the LBA to aim its first range at.
    let rewrite = Mutex<(UInt, UInt64)?>(nil)
    let receivedCallerBuffer = Mutex(false)
    init(inner: EmulatedController) { self.inner = inner }
    var identity: ControllerIdentity { inner.identity }
    func namespaces() -> [NamespaceInfo] { inner.namespaces() }
    func effectsLog(for commandSet: CommandSet) -> CommandEffectsLog? { inner.effectsLog(for: commandSet) }
    func submit(_ command: borrowing SubmissionEntry, queue: Queue, data: UnsafeMutableRawBufferPointer,
                metadata: UnsafeMutableRawBufferPointer) throws(ControllerError) -> Completion {
        if let (address, lba) = rewrite.withLock({ $0 }), let buffer = UnsafeMutableRawPointer(bitPattern: address) {
            buffer.storeBytes(of: lba.littleEndian, toByteOffset: 8, as: UInt64.self)
            let handedOver = data.baseAddress == buffer
            receivedCallerBuffer.withLock { $0 = handedOver }
        }
        return try inner.submit(command, queue: queue, data: data, metadata: metadata)
    }
    func reset() throws(ControllerError) { try inner.reset() }
    func subsystemReset() throws(ControllerError) { try inner.subsystemReset() }
    func rescan() throws(ControllerError) { try inner.rescan() }
}

/// A flag threads can share.
final class DoneFlag: Sendable {
    let value = Atomic<Bool>(false)
}

/// A swift-log handler that keeps each event as "message key=value …".
final class CapturedEvents: LogHandler, @unchecked Sendable {
    let lines = Mutex<[String]>([])
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] } set { metadata[key] = newValue }
    }
    func log(level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String,
             file: String, function: String, line: UInt) {
        let pairs = (metadata ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        lines.withLock { $0.append(([message.description] + pairs).joined(separator: " ")) }
    }
}

/// Files in a fresh temporary directory.
final class TemporaryFiles {
    let directory: String
    init() {
        var template = Array("/tmp/nvmegate-test-XXXXXX".utf8CString)
        directory = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
    }
    deinit { _ = system("rm -rf '\(directory)'") }
    func write(_ name: String, _ text: String) -> String {
        let path = directory + "/" + name
        let file = fopen(path, "w")!
        fputs(text, file)
        fclose(file)
        return path
    }
}
