/// Checks across tenants: who matches whom first, who may write what, and (given the
/// controller's namespaces) whether what they own exists and fits.
extension PolicyLinter {
    func tenantChecks(_ report: inout LintReport) {
        matchingChecks(&report)
        writerChecks(&report)
        if let namespaces { targetChecks(&report, namespaces) }
    }

    /// A tenant whose callers all match earlier tenants never matches; one whose callers
    /// partly do loses those.
    func matchingChecks(_ report: inout LintReport) {
        var uids: [UInt32: String] = [:], gids: [UInt32: String] = [:], names: [String: String] = [:]
        for (index, tenant) in policy.tenants.enumerated() {
            let shadowed = tenant.uids.sorted().compactMap { uid in uids[uid].map { ("uid \(uid)", $0) } }
                + tenant.gids.sorted().compactMap { gid in gids[gid].map { ("gid \(gid)", $0) } }
                + tenant.callerNames.sorted().compactMap { name in names[name].map { ("caller \"\(name)\"", $0) } }
            let total = tenant.uids.count + tenant.gids.count + tenant.callerNames.count
            let by = shadowed.map { "\($0.0) (tenant \"\($0.1)\")" }.joined(separator: ", ")
            if !shadowed.isEmpty && shadowed.count == total {
                report.add(.tenantNeverMatches, key: "tenant.name", tenant: index,
                           "[[tenant]] name = \"\(tenant.name)\" can never match: every caller it names is matched first by an earlier tenant: \(by)")
            } else if !shadowed.isEmpty {
                report.add(.idsShadowed, key: "tenant.name", tenant: index,
                           "[[tenant]] name = \"\(tenant.name)\": some of its callers are matched first by an earlier tenant and never get these rules: \(by)")
            }
            for uid in tenant.uids where uids[uid] == nil { uids[uid] = tenant.name }
            for gid in tenant.gids where gids[gid] == nil { gids[gid] = tenant.name }
            for name in tenant.callerNames where names[name] == nil { names[name] = tenant.name }
        }
    }

    /// Two tenants that may write the same blocks.
    func writerChecks(_ report: inout LintReport) {
        let tenants = policy.tenants
        for later in tenants.indices {
            for earlier in 0..<later {
                for (what, first, second) in Self.sharedWrites(tenants[earlier].ownership, tenants[later].ownership) {
                    report.add(.sharedWritableNamespace, key: second.hasPrefix("LBAs") ? "tenant.lba_range" : "tenant.namespaces",
                               tenant: later,
                               "[[tenant]] name = \"\(tenants[later].name)\": \(what) is writable by tenant \"\(tenants[earlier].name)\" (\(first)) and by tenant \"\(tenants[later].name)\" (\(second)): each could overwrite the other's blocks")
                }
            }
        }
    }

    /// The namespaces both ownerships may write overlapping blocks of ("namespace 2", or
    /// "every namespace" when both own them all), with how each owns them ("whole",
    /// "LBAs 0-1023", "every namespace"), one entry per namespace.
    static func sharedWrites(_ a: Ownership, _ b: Ownership) -> [(String, String, String)] {
        func writable(_ o: Ownership) -> [NamespaceGrant]? {
            if case .grants(let list) = o { return list.filter(\.writable) }
            return nil
        }
        func describe(_ g: NamespaceGrant) -> String {
            g.range.map { "LBAs \($0.start)-\($0.start + $0.count - 1)" } ?? "whole"
        }
        switch (writable(a), writable(b)) {
        case (nil, nil): return [("every namespace", "every namespace", "every namespace")]
        case (nil, let list?): return firstGrants(list).map { ("namespace \($0.nsid)", "every namespace", describe($0)) }
        case (let list?, nil): return firstGrants(list).map { ("namespace \($0.nsid)", describe($0), "every namespace") }
        case (let first?, let second?):
            var out: [(String, String, String)] = []
            var seen: Set<UInt32> = []
            for g in first where !seen.contains(g.nsid) {
                if let h = second.first(where: { $0.nsid == g.nsid && overlaps(g.range, $0.range) }) {
                    seen.insert(g.nsid)
                    out.append(("namespace \(g.nsid)", describe(g), describe(h)))
                }
            }
            return out
        }
    }

    /// The first grant of each namespace, in order.
    static func firstGrants(_ grants: [NamespaceGrant]) -> [NamespaceGrant] {
        var seen: Set<UInt32> = []
        return grants.filter { seen.insert($0.nsid).inserted }
    }

    /// Whether two grants of one namespace share a block (nil: the whole namespace).
    static func overlaps(_ a: LBARange?, _ b: LBARange?) -> Bool {
        guard let a, let b else { return true }
        return a.start < b.start + b.count && b.start < a.start + a.count
    }

    /// Grants of namespaces the controller does not have, and ranges beyond a namespace's end.
    func targetChecks(_ report: inout LintReport, _ namespaces: [NamespaceInfo]) {
        let present = namespaces.map { "\($0.nsid)" }.joined(separator: ", ")
        for (index, tenant) in policy.tenants.enumerated() {
            guard case .grants(let grants) = tenant.ownership else { continue }
            var missing: [NamespaceGrant] = []
            for g in grants {
                guard let ns = namespaces.first(where: { $0.nsid == g.nsid }) else {
                    if !missing.contains(where: { $0.nsid == g.nsid }) { missing.append(g) }
                    continue
                }
                if let r = g.range, r.start + r.count > ns.blockCount {
                    report.add(.lbaRangeBeyondNamespace, key: "tenant.lba_range", tenant: index,
                               "[[tenant]] name = \"\(tenant.name)\": LBAs \(r.start)-\(r.start + r.count - 1) of namespace \(g.nsid) end beyond the namespace, which has \(ns.blockCount) blocks (LBAs 0-\(ns.blockCount &- 1))")
                }
            }
            for g in missing {
                let key = g.range != nil ? "tenant.lba_range" : (g.writable ? "tenant.namespaces" : "tenant.read_only_namespaces")
                report.add(.namespaceNotOnTarget, key: key, tenant: index,
                           "[[tenant]] name = \"\(tenant.name)\" owns namespace \(g.nsid), which the controller does not have (its namespaces: \(present.isEmpty ? "none" : present))")
            }
        }
    }
}
