import NVMeEmulator
import NVMeGate
import NVMeSpec
import Testing

/// A policy of 1,000 tenants, as a provider sharing one controller among many writes it:
/// it loads, lints clean, and every caller gets its own tenant's grants.
@Suite("A 1,000-tenant policy")
struct LargePolicyTests {
    /// Tenant i: uid 10000 + i (gid 20000 + i for every 4th); by i % 3: namespace i + 2
    /// whole; the 2048 blocks from i × 2048 of namespace 1; namespace i + 2 whole and
    /// namespace i (tenant i − 2's) read-only. Every 10th also reads the SMART log.
    static let text: String = {
        var out = "version = 1\nname = \"tenants-1000\"\n[default.admin]\nidentify_cns = [0x01]\n[default.io]\ncommands = \"none\"\n"
        for i in 0..<1000 {
            out += "\n[[tenant]]\nname = \"tenant-\(i)\"\nuids = [\(10_000 + i)]\n"
            if i % 4 == 0 { out += "gids = [\(20_000 + i)]\n" }
            out += "rules = \"kernel\"\n"
            switch i % 3 {
            case 0: out += "namespaces = [\(i + 2)]\n"
            case 1: out += "[[tenant.lba_range]]\nnsid = 1\nstart = \(i * 2048)\nblocks = 2048\n"
            default: out += "namespaces = [\(i + 2)]\nread_only_namespaces = [\(i)]\n"
            }
            if i % 10 == 0 { out += "[tenant.admin]\nlog_pages = [0x02]\n" }
        }
        return out
    }()

    /// Namespace 1 of 2^21 blocks (every range fits) and namespaces 2 to 1001.
    static let namespaces = [NamespaceInfo(nsid: 1, blockCount: 1 << 21)]
        + (2...1001).map { NamespaceInfo(nsid: UInt32($0), blockCount: 1 << 20) }

    static func compiled(_ text: String) throws -> CompiledPolicy {
        CompiledPolicy(policy: try Policy.parse(text, file: "tenants-1000.toml"),
                       effectsLogs: [.nvm: LoopbackController().effectsLog(for: .nvm)!])
    }

    /// The decision for `opcode` (a Read, Write or Get Log Page) sent by `caller` through a
    /// read-write handle on namespace `nsid` (NLB 0's based in `blocks`).
    static func decide(_ policy: CompiledPolicy, _ caller: Caller, queue: Queue = .io, opcode: UInt8, nsid: UInt32,
                       slba: UInt64 = 0, blocks: UInt32 = 1, cdw10: UInt32? = nil) -> Reason {
        let (profile, tenant) = policy.assignment(for: caller)
        let handle = HandleContext(kind: .namespace, writable: true, nsid: nsid, profile: profile, tenant: tenant)
        let sqe = SubmissionQueueEntry(opcode: opcode, nsid: nsid, cdw10: cdw10 ?? UInt32(truncatingIfNeeded: slba),
                                       cdw11: UInt32(truncatingIfNeeded: slba >> 32), cdw12: blocks - 1)
        return sqe.withEntry { policy.decide($0, queue: queue, handle: handle) }
    }

    @Test("loads 1,000 tenants in file order, and lints clean against a controller that has their namespaces")
    func loadsAndLints() throws {
        let policy = try Self.compiled(Self.text)
        #expect(policy.policy.tenants.count == 1000)
        #expect(policy.policy.tenants.map(\.name) == (0..<1000).map { "tenant-\($0)" })
        let linter = PolicyLinter(policy, namespaces: Self.namespaces, locator: PolicyLocator(file: "tenants-1000.toml", text: Self.text))
        #expect(linter.findings.map(\.description) == [])
    }

    @Test("an overlapping range in the last tenant is the one lint finding, on its line")
    func lintFindsTheOverlap() throws {
        let text = Self.text + "\n[[tenant]]\nname = \"intruder\"\nuids = [99]\nrules = \"kernel\"\n"
            + "[[tenant.lba_range]]\nnsid = 1\nstart = \(736 * 2048 + 100)\nblocks = 8\n"
        let findings = PolicyLinter(try Self.compiled(text), namespaces: Self.namespaces,
                                    locator: PolicyLocator(file: "t.toml", text: text)).findings
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        let rangeLine = lines.lastIndex(of: "[[tenant.lba_range]]")! + 1
        #expect(findings.map(\.code) == [.sharedWritableNamespace])
        #expect(findings.first?.line == rangeLine)
        #expect(findings.first?.message.contains("tenant \"tenant-736\"") == true, "\(findings)")
    }

    @Test("every caller gets its own tenant's grants: by uid, by gid, the last tenant, nobody")
    func assignsCallers() throws {
        let policy = try Self.compiled(Self.text)
        let uid737 = Caller(uid: 10_737, gid: 1)
        #expect(policy.tenant(at: policy.assignment(for: uid737).tenant)?.name == "tenant-737")
        // 737 % 3 == 2: namespace 739 whole, namespace 737 read-only, nothing else.
        #expect(Self.decide(policy, uid737, opcode: 0x01, nsid: 739, slba: 5000) == .allowed)
        #expect(Self.decide(policy, uid737, opcode: 0x02, nsid: 737) == .allowed)
        #expect(Self.decide(policy, uid737, opcode: 0x01, nsid: 737) == .namespaceReadOnly)
        #expect(Self.decide(policy, uid737, opcode: 0x02, nsid: 738) == .namespaceNotOwned)
        #expect(Self.decide(policy, uid737, opcode: 0x02, nsid: 1) == .namespaceNotOwned)

        // Tenant 736, matched by its gid: its blocks of namespace 1 and no others.
        let gid736 = Caller(uid: 1, gid: 20_736)
        #expect(policy.tenant(at: policy.assignment(for: gid736).tenant)?.name == "tenant-736")
        let start: UInt64 = 736 * 2048
        #expect(Self.decide(policy, gid736, opcode: 0x01, nsid: 1, slba: start, blocks: 2048) == .allowed)
        #expect(Self.decide(policy, gid736, opcode: 0x01, nsid: 1, slba: start + 2047, blocks: 2) == .lbaRangeNotOwned)
        #expect(Self.decide(policy, gid736, opcode: 0x02, nsid: 1, slba: start - 1) == .lbaRangeNotOwned)
        // Every 10th tenant reads the SMART log (Get Log Page 02h, LID 02h, 512 bytes); 736 does not.
        #expect(Self.decide(policy, gid736, queue: .admin, opcode: 0x02, nsid: 0, cdw10: 0x02 | 127 << 16) == .adminCommandNotAllowed)
        #expect(Self.decide(policy, Caller(uid: 10_730, gid: 1), queue: .admin, opcode: 0x02, nsid: 0, cdw10: 0x02 | 127 << 16) == .allowed)

        #expect(policy.tenant(at: policy.assignment(for: Caller(uid: 10_999, gid: 1)).tenant)?.name == "tenant-999")
        let nobody = policy.assignment(for: Caller(uid: 5, gid: 5))
        #expect(nobody.profile == 0 && nobody.tenant == 0)
        #expect(Self.decide(policy, Caller(uid: 5, gid: 5), opcode: 0x02, nsid: 2) == .ioCommandNotAllowed)
    }

    @Test("the assignment table gives the first tenant naming the caller's name, uid or gid, as Policy.tenantIndex does")
    func firstTenantWins() {
        let rules = Policy.kernel.defaultRules
        let policy = Policy(name: "shadowed", defaultRules: rules, tenants: [
            Tenant(name: "a", uids: [1, 2], rules: rules),
            Tenant(name: "b", uids: [2], gids: [7], rules: rules),
            Tenant(name: "c", uids: [3], gids: [7], callerNames: ["x"], rules: rules),
            Tenant(name: "d", uids: [4], callerNames: ["x"], rules: rules),
        ])
        let compiled = CompiledPolicy(policy: policy, effectsLogs: [:])
        let cases: [(Caller, String?)] = [
            (Caller(uid: 2, gid: 0), "a"), (Caller(uid: 9, gid: 7), "b"), (Caller(uid: 3, gid: 7), "b"),
            (Caller(uid: 9, gid: 9, name: "x"), "c"), (Caller(uid: 4, gid: 9, name: "x"), "c"),
            (Caller(uid: 4, gid: 1), "d"), (Caller(uid: 5, gid: 5, name: "y"), nil),
        ]
        for (caller, name) in cases {
            #expect(compiled.tenant(at: compiled.assignment(for: caller).tenant)?.name == name, "\(caller)")
            #expect(policy.tenantIndex(for: caller).map { policy.tenants[$0].name } == name, "\(caller)")
        }
    }

    @Test("a file with more tenants than a handle can name (65535) is refused, naming the key")
    func tooManyTenants() {
        let text = "[default]\n" + String(repeating: "[[tenant]]\nname = \"t\"\n", count: 65_536)
        do {
            _ = try Policy.parse(text, file: "huge.toml")
            Issue.record("loaded 65536 tenants")
        } catch {
            #expect(error.key == "tenant" && error.line == 2, "\(error)")
            #expect(error.message.contains("at most 65535"), "\(error)")
        }
    }
}
