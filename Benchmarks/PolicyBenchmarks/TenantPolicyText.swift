/// A policy file of many tenants on one controller, written the way `Policies/tenants.toml`
/// is, for the loading and reload benchmarks. Deterministic: the same text on every run.
///
/// Tenant `i` (name `tenant-i`, uid 100000 + i; gid 200000 + i for every 4th; a second uid
/// 150000 + i for every 10th from 3) is, by `i % 10`:
/// - 0–5: Linux's rules on namespace i + 2, owned whole; every 5th also reads the SMART and
///   error logs and Get Features 05h/06h, every 50th may also Format NVM its namespace and
///   has its writes audited;
/// - 6, 7: Linux's rules on its 2048-block LBA range of shared namespace 1 (`rangeStart`),
///   through a confined partition node too; read-write, or read-only in `variant` 1;
/// - 8: like 0–5, and reads tenant i − 3's namespace (i − 1) read-only;
/// - 9: a monitor with no namespace: Identify, the health logs with RAE required.
enum TenantPolicyText {
    static let blocksPerRange: UInt64 = 2048

    /// uid of tenant `i`.
    static func uid(_ i: Int) -> UInt32 { UInt32(100_000 + i) }

    /// Whether tenant `i` owns an LBA range of namespace 1, and its first LBA.
    static func ownsRange(_ i: Int) -> Bool { i % 10 == 6 || i % 10 == 7 }
    static func rangeStart(_ i: Int) -> UInt64 { UInt64(i) * blocksPerRange }

    /// The policy text; `variant` 1 makes the LBA-range tenants read-only (a maintenance window).
    static func make(tenants: Int, variant: Int = 0) -> String {
        var out = """
            # \(tenants) tenants sharing one controller (generated for the benchmarks).
            version = 1
            name = "tenants-\(tenants)"
            description = "\(tenants) tenants: whole namespaces, LBA ranges of namespace 1, read-only neighbours, monitors"
            lint_accept = ["cse-any-namespace"]

            [privileges]
            bypass = ["CAP_SYS_ADMIN"]
            management = ["CAP_SYS_ADMIN"]

            [effects]
            linux_known_effects = true
            ignore_io_cse = true

            [default]
            partitions = false
            [default.admin]
            identify_cns = [0x01]
            [default.io]
            commands = "none"

            """
        for i in 0..<tenants {
            let kind = i % 10
            out += "\n[[tenant]]\nname = \"tenant-\(i)\"\n"
            out += kind == 3 ? "uids = [\(uid(i)), \(150_000 + i)]\n" : "uids = [\(uid(i))]\n"
            if i % 4 == 0 { out += "gids = [\(200_000 + i)]\n" }
            switch kind {
            case 6, 7:
                out += "rules = \"kernel\"\npartitions = \"confined\"\n"
                out += "[[tenant.lba_range]]\nnsid = 1\nstart = \(rangeStart(i))\nblocks = \(blocksPerRange)\n"
                out += "access = \"\(variant == 1 ? "read" : "read-write")\"\n"
            case 9:
                out += "rules = \"none\"\n[tenant.admin]\nidentify_cns = [0x00, 0x01]\n"
                out += "log_pages = [0x01, 0x02, 0x03]\nlog_page_lsp = [0x00]\nretain_async_event = \"required\"\n"
            default:
                out += "rules = \"kernel\"\nnamespaces = [\(i + 2)]\n"
                if kind == 8 { out += "read_only_namespaces = [\(i - 1)]\n" }
                if i % 50 == 0 { out += "audit_allowed = [\"writes\"]\n" }
                if i % 5 == 0 {
                    out += "[tenant.admin]\n"
                    if i % 50 == 0 { out += "commands = [\"Format NVM\"]\n" }
                    out += "log_pages = [0x01, 0x02]\nlog_page_lsp = [0x00]\nfeatures = [0x05, 0x06]\n"
                }
            }
        }
        return out
    }
}
