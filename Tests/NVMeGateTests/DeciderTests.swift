import NVMeEmulator
import NVMeGate
import NVMeSpec
import Testing

/// `Decider`, the per-handle form of the decision that ring loops use: it must decide every
/// command exactly as `CompiledPolicy.decide` does, and both must follow LBA-range ownership
/// as a person reads it (every block covered by the tenant's grants, adjacent grants as one).
@Suite("Decider and LBA-range coverage")
struct DeciderTests {
    /// The emulated controller's log: it supports reservations (whole-namespace commands) too.
    static let effects = EmulatedController.inMemory(EmulatorConfiguration()).effectsLog(for: .nvm)!

    static func compiled(_ grants: [NamespaceGrant], partitions: PartitionAccess = .refuse) -> CompiledPolicy {
        var rules = Policy.kernel.defaultRules
        rules.partitions = partitions
        let tenants = [Tenant(name: "other", uids: [2000], ownership: .grants([NamespaceGrant(nsid: 1)]), rules: rules),
                       Tenant(name: "t", uids: [1000], ownership: .grants(grants), rules: rules)]
        return CompiledPolicy(policy: Policy(name: "t", defaultRules: rules, tenants: tenants), effectsLogs: [.nvm: effects])
    }

    static func handle(_ policy: CompiledPolicy, kind: NodeKind = .namespace,
                       partition: LBARange = LBARange(start: 0, count: 0)) -> HandleContext {
        let (profile, tenant) = policy.assignment(for: Caller(uid: 1000, gid: 1000))
        return HandleContext(kind: kind, writable: true, nsid: 1, profile: profile, tenant: tenant, partition: partition)
    }

    static func command(_ opcode: IOOpcode, slba: UInt64, blocks: UInt32, nsid: UInt32 = 1) -> SubmissionQueueEntry {
        SubmissionQueueEntry(opcode: opcode.rawValue, nsid: nsid, cdw10: UInt32(truncatingIfNeeded: slba),
                             cdw11: UInt32(truncatingIfNeeded: slba >> 32), cdw12: blocks - 1)
    }

    /// Both deciders' verdict; the test fails if they differ.
    static func verdict(_ policy: CompiledPolicy, _ handle: HandleContext, _ sqe: SubmissionQueueEntry,
                        sourceLocation: SourceLocation = #_sourceLocation) -> Reason {
        let single = sqe.withEntry { policy.decide($0, queue: .io, handle: handle) }
        let decider = Decider(policy, handle: handle, queue: .io)
        let looped = sqe.withEntry { decider.decide($0) }
        #expect(single == looped, "Decider and CompiledPolicy.decide differ", sourceLocation: sourceLocation)
        return looped
    }

    @Test("adjacent grants are one range; a gap or a read-only part is not")
    func adjacentGrants() {
        let policy = Self.compiled([
            NamespaceGrant(nsid: 1, range: LBARange(start: 100, count: 100)),
            NamespaceGrant(nsid: 1, range: LBARange(start: 0, count: 100)),
            NamespaceGrant(nsid: 1, range: LBARange(start: 200, count: 50), writable: false),
            NamespaceGrant(nsid: 1, range: LBARange(start: 300, count: 100)),
        ])
        let h = Self.handle(policy)
        #expect(Self.verdict(policy, h, Self.command(.read, slba: 90, blocks: 20)) == .allowed)
        #expect(Self.verdict(policy, h, Self.command(.write, slba: 90, blocks: 20)) == .allowed)
        #expect(Self.verdict(policy, h, Self.command(.read, slba: 190, blocks: 50)) == .allowed)
        #expect(Self.verdict(policy, h, Self.command(.write, slba: 190, blocks: 20)) == .lbaRangeNotOwned)
        #expect(Self.verdict(policy, h, Self.command(.read, slba: 240, blocks: 70)) == .lbaRangeNotOwned)
        #expect(Self.verdict(policy, h, Self.command(.read, slba: 399, blocks: 2)) == .lbaRangeNotOwned)
        #expect(Self.verdict(policy, h, Self.command(.write, slba: 300, blocks: 100)) == .allowed)
        #expect(Self.verdict(policy, h, Self.command(.read, slba: .max, blocks: 2)) == .lbaRangeNotOwned)
        #expect(policy.mayReach(h, nsid: 1, slba: 50, blocks: 100, writes: true))
        #expect(!policy.mayReach(h, nsid: 1, slba: 150, blocks: 100, writes: true))
        #expect(policy.mayReach(h, nsid: 1, slba: 150, blocks: 100, writes: false))
    }

    @Test("a confined partition handle of a tenant: the partition and the grants both hold")
    func partitionAndGrants() {
        let policy = Self.compiled([NamespaceGrant(nsid: 1, range: LBARange(start: 0, count: 64))], partitions: .confined)
        let h = Self.handle(policy, kind: .partition, partition: LBARange(start: 32, count: 64))
        #expect(Self.verdict(policy, h, Self.command(.read, slba: 32, blocks: 32)) == .allowed)
        #expect(Self.verdict(policy, h, Self.command(.read, slba: 31, blocks: 2)) == .lbaRangeNotOwned)
        #expect(Self.verdict(policy, h, Self.command(.read, slba: 60, blocks: 8)) == .lbaRangeNotOwned)
    }

    /// Random grants, partitions and commands: both deciders give the verdict a block-by-block
    /// reading of the grants gives.
    @Test("random grants and commands: the deciders agree with a block-by-block model", arguments: 0..<8)
    func randomAgainstModel(seed: UInt64) {
        var rng = SplitMix(seed: 0x6465_6369_6465 &+ seed)
        for _ in 0..<40 {
            var grants: [NamespaceGrant] = []
            for _ in 0..<Int(rng.next() % 5) {
                let nsid: UInt32 = rng.next() % 4 == 0 ? 2 : 1
                let whole = rng.next() % 12 == 0
                let range = whole ? nil : LBARange(start: rng.next() % 56, count: 1 + rng.next() % 16)
                grants.append(NamespaceGrant(nsid: nsid, range: range, writable: rng.next() % 3 != 0))
            }
            let onPartition = rng.next() % 3 == 0
            let policy = Self.compiled(grants, partitions: onPartition ? .confined : .refuse)
            let partition = LBARange(start: rng.next() % 32, count: 1 + rng.next() % 40)
            let h = onPartition ? Self.handle(policy, kind: .partition, partition: partition) : Self.handle(policy)
            // Commands that are not LBA-addressed get their ownership worked out ahead by a
            // Decider: it must agree with the full check (`verdict` compares the two).
            for opcode: IOOpcode in [.flush, .datasetManagement, .reservationRegister, .reservationReport] {
                _ = Self.verdict(policy, h, Self.command(opcode, slba: 0, blocks: 1))
                _ = Self.verdict(policy, h, Self.command(opcode, slba: 0, blocks: 1, nsid: 2))
            }
            for _ in 0..<60 {
                let opcode: IOOpcode = [.read, .write, .compare, .writeZeroes][Int(rng.next() % 4)]
                let slba = rng.next() % 72
                let blocks = UInt32(1 + rng.next() % 8)
                // Compare sends data to the controller: a read-only grant refuses it, as Write.
                let writes = opcode != .read
                let covered = (slba ..< slba + UInt64(blocks)).allSatisfy { lba in
                    (!onPartition || (lba >= partition.start && lba - partition.start < partition.count))
                        && grants.contains { g in
                            g.nsid == 1 && (!writes || g.writable)
                                && (g.range.map { lba >= $0.start && lba - $0.start < $0.count } ?? true)
                        }
                }
                let reason = Self.verdict(policy, h, Self.command(opcode, slba: slba, blocks: blocks))
                #expect(reason.isAllowed == covered,
                        "\(opcode) \(slba)+\(blocks) grants \(grants) partition \(onPartition ? "\(partition)" : "none"): \(reason)")
            }
        }
    }
}

/// SplitMix64, so every run draws the same cases.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
