#if canImport(Glibc)
import Glibc
#endif
import NVMeEmulator
import NVMeGate
import NVMeSpec
import Testing

/// A tenant named by gid matches a caller whose supplementary groups hold that gid, as it
/// matches one whose primary group is it: at open, and again at reload.
@Suite("Supplementary groups")
struct SupplementaryGroupsTests {
    static let policyText = """
        version = 1
        name = "groups-test"
        [privileges]
        bypass = []
        [default.admin]
        identify_cns = [0x01]
        [default.io]
        commands = "none"

        [[tenant]]
        name = "db"
        uids = [1001]
        rules = "kernel"
        namespaces = [1]

        [[tenant]]
        name = "auditor"
        gids = [4]
        rules = "kernel"
        read_only_namespaces = [1]
        """

    let h: Harness

    init() throws {
        h = Harness(EmulatedController.inMemory(EmulatorConfiguration(namespaceCount: 1, namespaceSize: 2048 * 512)),
                    policy: try Policy.parse(Self.policyText, file: "groups-test.toml"))
    }

    func read(_ handle: Int32) -> Int32 {
        h.io(handle, PassthruBuffer(opcode: 0x02, nsid: 1, dataLength: 512))
    }

    @Test("a tenant's gid matches a supplementary group; the first tenant naming any of the caller's ids wins")
    func matching() {
        let policy = h.gate.policy
        let member = Caller(uid: 2000, gid: 2000, groups: [27, 4])
        #expect(policy.policy.tenantIndex(for: member) == 1)
        #expect(policy.assignment(for: member).tenant == 2)
        #expect(policy.assignment(for: Caller(uid: 2000, gid: 2000, groups: [27])).tenant == 0)
        // uid 1001 is "db" (tenant 1), which comes before "auditor" whatever the groups say.
        let both = Caller(uid: 1001, gid: 1001, groups: [4])
        #expect(policy.policy.tenantIndex(for: both) == 0)
        #expect(policy.assignment(for: both).tenant == 1)
    }

    @Test("through the gate: a supplementary member reads as the tenant, a non-member is refused")
    func throughTheGate() {
        let member = h.gate.open(node: "nvme0n1", writable: false, caller: Caller(uid: 2000, gid: 2000, groups: [4]))
        let stranger = h.gate.open(node: "nvme0n1", writable: false, caller: Caller(uid: 2001, gid: 2001, groups: [5]))
        #expect(read(member) == 0)
        #expect(read(stranger) == -EACCES)
        #expect(h.gate.handleState(member)?.context.tenant == 2)
    }

    @Test("a reload matches an open handle's supplementary groups against the new tenants")
    func reload() throws {
        let member = h.gate.open(node: "nvme0n1", writable: false, caller: Caller(uid: 2000, gid: 2000, groups: [4]))
        #expect(read(member) == 0)
        h.gate.reload(try Policy.parse(Self.policyText.replacing("gids = [4]", with: "gids = [5]"),
                                       file: "groups-test.toml"))
        #expect(read(member) == -EACCES)
        h.gate.reload(try Policy.parse(Self.policyText, file: "groups-test.toml"))
        #expect(read(member) == 0)
    }
}

