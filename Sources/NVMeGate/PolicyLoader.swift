import NVMeSpec
import TOMLKit

#if canImport(Glibc)
import Glibc
#endif

/// A policy file that could not be loaded: the file, the line, the key and what is wrong.
/// Loading is all or nothing: a broken file never yields a partial policy.
public struct PolicyError: Error, Sendable, Hashable, CustomStringConvertible {
    public var file: String
    /// 1-based line, 0 when unknown.
    public var line: Int
    /// The dotted key ("default.io.commands"), empty for file-level problems.
    public var key: String
    public var message: String

    public init(file: String, line: Int, key: String, message: String) {
        self.file = file; self.line = line; self.key = key; self.message = message
    }

    public var description: String {
        var out = file
        if line > 0 { out += ":\(line)" }
        out += ": "
        if !key.isEmpty { out += "\(key): " }
        return out + message
    }
}

extension Policy {
    /// Loads a policy from the TOML file at `path`.
    public static func load(path: String) throws(PolicyError) -> Policy {
        guard let text = readTextFile(path) else {
            throw PolicyError(file: path, line: 0, key: "", message: "cannot read the file (\(String(cString: strerror(errno))))")
        }
        return try parse(text, file: path)
    }

    /// Parses a policy from TOML `text`; `file` names it in errors.
    public static func parse(_ text: String, file: String = "<policy>") throws(PolicyError) -> Policy {
        if let (line, message) = TOMLTraps.find(text) { throw PolicyError(file: file, line: line, key: "", message: message) }
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw PolicyError(file: file, line: error.source.begin.line, key: "", message: error.description)
        } catch {
            throw PolicyError(file: file, line: 0, key: "", message: "\(error)")
        }
        return try PolicyReader(file: file, text: text).read(table)
    }
}

/// TOMLKit's parser (toml++ 3) stops the process on a failed assertion, instead of
/// reporting an error, on four shapes of invalid TOML, all found by the `policy` fuzz
/// target: a table header whose key starts with a character that is neither a bare-key
/// character nor a quote (`[.default]`, `[[ $tenant]]`, `[é]`); a `}` where an array expects
/// a value (`x = [}`, `x = [1, }`); a date-like 10-character token followed by a space and a
/// single digit (`x = 1979-05-27 7`); a non-ASCII space where a value starts
/// (`x = [5, \u{85}1]`). They are found here first; as none is valid TOML, no valid file is
/// refused.
enum TOMLTraps {
    /// The 1-based line of the first such shape and what is wrong there, or nil. Knows
    /// strings (one-line and multi-line, basic and literal), comments and nesting, so a `[`
    /// inside a string, a comment or an array is no header.
    static func find(_ text: String) -> (line: Int, message: String)? {
        enum State { case code, basic, literal, multiBasic, multiLiteral, comment }
        let s = Array(text.unicodeScalars)
        // A byte order mark before the first line is not part of it (TOML skips it).
        var state = State.code, line = 1, atLineStart = true, i = s.first == "\u{FEFF}" ? 1 : 0
        /// Open arrays (true) and inline tables (false), innermost last.
        var nesting: [Bool] = []
        /// An array is waiting for its next value (after `[` or a comma).
        var arrayWantsValue = false
        func at(_ j: Int, _ c: Unicode.Scalar) -> Bool { j < s.count && s[j] == c }
        func isBlank(_ c: Unicode.Scalar) -> Bool { c == " " || c == "\t" }
        func startsKey(_ c: Unicode.Scalar) -> Bool {
            c.isASCII && (c.properties.isAlphabetic || ("0"..."9").contains(c) || c == "_" || c == "-" || c == "\"" || c == "'")
        }
        func isDigit(_ c: Unicode.Scalar) -> Bool { ("0"..."9").contains(c) }
        func endsValue(_ c: Unicode.Scalar) -> Bool { " \t\r\n,]}#".unicodeScalars.contains(c) }
        func shown(_ c: Unicode.Scalar) -> String {
            c.properties.generalCategory == .control || c == "\u{7F}" ? "U+" + String(c.value, radix: 16, uppercase: true)
                : "'\(Character(c))'"
        }
        while i < s.count {
            let c = s[i]
            if c == "\n" {
                line += 1
                if state == .basic || state == .literal || state == .comment { state = .code }
                atLineStart = state == .code && nesting.isEmpty
                i += 1
                continue
            }
            switch state {
            case .code:
                if isBlank(c) || c == "\r" { i += 1; continue }
                if atLineStart && c == "[" {
                    var j = i + (at(i + 1, "[") ? 2 : 1)
                    while j < s.count && isBlank(s[j]) { j += 1 }
                    if j < s.count && !startsKey(s[j]) {
                        return (line, "a table header starts with a key (letters, digits, _ or -, or a quoted key), not \(shown(s[j]))")
                    }
                    // The header's key and closing brackets: its quoted parts are strings.
                    while j < s.count && s[j] != "\n" && s[j] != "]" && s[j] != "\"" && s[j] != "'" { j += 1 }
                    atLineStart = false
                    i = j
                    continue
                }
                atLineStart = false
                // toml++ takes Unicode spaces (U+0085, U+00A0, U+2028, …) for the end of a value
                // it has not begun; outside strings and comments TOML is ASCII anyway.
                if !c.isASCII { return (line, "\(shown(c)) is allowed only inside a string or a comment") }
                if c == "#" { state = .comment; i += 1; continue }
                if c == "}" && arrayWantsValue { return (line, "an array expects a value or ']', not '}'") }
                arrayWantsValue = false
                if isDigit(c) {
                    // toml++ reads `DDDD-DD-DD D` as the start of a date and time, then trips
                    // over the end of the one-digit "time" (underscores are not counted).
                    var j = i, token: [Unicode.Scalar] = []
                    while j < s.count && !endsValue(s[j]) && !"=[{\"'".unicodeScalars.contains(s[j]) {
                        if s[j] != "_" { token.append(s[j]) }
                        j += 1
                    }
                    if token.count == 10 && token[4] == "-" && token[7] == "-" && at(j, " ") && j + 1 < s.count
                        && isDigit(s[j + 1]) && j + 2 < s.count && endsValue(s[j + 2]) {
                        return (line, "a date is followed by a one-digit time; a local date-time is written 1979-05-27T07:32:00")
                    }
                    i = j
                    continue
                }
                switch c {
                case "\"":
                    state = at(i + 1, "\"") && at(i + 2, "\"") ? .multiBasic : .basic
                    if state == .multiBasic { i += 2 }
                case "'":
                    state = at(i + 1, "'") && at(i + 2, "'") ? .multiLiteral : .literal
                    if state == .multiLiteral { i += 2 }
                case "[": nesting.append(true); arrayWantsValue = true
                case "{": nesting.append(false)
                case "]", "}": _ = nesting.popLast()
                case ",": arrayWantsValue = nesting.last == true
                default: break
                }
            case .basic, .multiBasic:
                if c == "\\" { i += at(i + 1, "\n") ? 1 : 2; continue }
                if c == "\"" && (state == .basic || (at(i + 1, "\"") && at(i + 2, "\""))) {
                    if state == .multiBasic { i += 2 }
                    state = .code
                }
            case .literal, .multiLiteral:
                if c == "'" && (state == .literal || (at(i + 1, "'") && at(i + 2, "'"))) {
                    if state == .multiLiteral { i += 2 }
                    state = .code
                }
            case .comment:
                break
            }
            i += 1
        }
        return nil
    }
}

/// Reads a parsed TOML document into a `Policy`, refusing unknown keys and wrong types.
struct PolicyReader {
    let file: String
    /// The file's text, split into lines (`PolicyLocator`) only when an error needs a line
    /// number: splitting a large file costs more than reading its tenants.
    let text: String
    /// The `[[tenant]]` section being read (0-based), so errors point into it.
    var tenant: Int?

    init(file: String, text: String) {
        self.file = file; self.text = text
    }

    func error(_ key: String, _ message: String) -> PolicyError {
        PolicyError(file: file, line: PolicyLocator(file: file, text: text).line(of: key, tenant: tenant), key: key,
                    message: message)
    }

    func read(_ root: TOMLTable) throws(PolicyError) -> Policy {
        try allowOnly(root, "", ["version", "name", "description", "privileges", "effects", "default", "tenant", "lint_accept"])
        if let v = root["version"] {
            guard v.int == 1 else { throw error("version", "this nvmegate reads policy version 1, the file says \(v)") }
        }
        var policy = Policy(name: try string(root, "", "name") ?? "unnamed", defaultRules: Rules())
        policy.summary = try string(root, "", "description") ?? ""

        if let privileges = try table(root, "", "privileges") {
            try allowOnly(privileges, "privileges", ["bypass", "management"])
            if let caps = try capabilities(privileges, "privileges", "bypass") { policy.bypassCapabilities = caps }
            if let caps = try capabilities(privileges, "privileges", "management") { policy.managementCapabilities = caps }
        }
        if let effects = try table(root, "", "effects") {
            try allowOnly(effects, "effects", ["linux_known_effects", "ignore_io_cse", "override"])
            if let b = try bool(effects, "effects", "linux_known_effects") { policy.linuxKnownEffects = b }
            if let b = try bool(effects, "effects", "ignore_io_cse") { policy.ignoreIOSubmissionAndExecution = b }
            policy.effectsOverrides = try readOverrides(effects)
        }
        guard let rules = try table(root, "", "default") else {
            throw error("default", "a policy needs a [default] section: the rules for callers that match no tenant")
        }
        policy.defaultRules = try readRules(rules, "default", base: Rules())
        policy.tenants = try readTenants(root, defaultRules: policy.defaultRules)
        policy.lintAccept = try lintAccept(root)
        return policy
    }

    /// `lint_accept`: warning codes of `policy lint` the author accepts on purpose.
    func lintAccept(_ root: TOMLTable) throws(PolicyError) -> Set<LintCode> {
        var out: Set<LintCode> = []
        for name in try stringList(root, "", "lint_accept") ?? [] {
            guard let code = LintCode(rawValue: name) else {
                throw error("lint_accept", "unknown lint code \"\(name)\"; `nvmegate policy lint --help` lists them")
            }
            guard code.severity == .warning else {
                throw error("lint_accept", "\"\(name)\" is an error, a contradiction in the policy: it cannot be accepted")
            }
            out.insert(code)
        }
        return out
    }

    /// `[[effects.override]]` entries.
    func readOverrides(_ effects: TOMLTable) throws(PolicyError) -> [EffectsOverride] {
        guard let value = effects["override"] else { return [] }
        guard let array = value.array else { throw error("effects.override", "expected [[effects.override]] tables") }
        var out: [EffectsOverride] = []
        for item in array {
            let p = "effects.override"
            guard let t = item.table else { throw error(p, "expected [[effects.override]] tables, found \(item)") }
            try allowOnly(t, p, ["model", "firmware", "queue", "command_set", "opcode", "effects", "replace"])
            guard let model = try string(t, p, "model"), !model.isEmpty else {
                throw error(p + ".model", "an override needs the controller's Model Number (MN), exact or ending in *")
            }
            let queue: Queue
            switch try string(t, p, "queue") {
            case "admin": queue = .admin
            case "io": queue = .io
            case let other: throw error(p + ".queue", "expected \"admin\" or \"io\", got \(other.map { "\"\($0)\"" } ?? "nothing")")
            }
            guard let opcodeValue = t["opcode"], let opcode = opcodeValue.int, (0...255).contains(opcode) else {
                throw error(p + ".opcode", "expected an opcode from 0x00 to 0xFF")
            }
            var commandSet = CommandSet.nvm
            if let csi = t["command_set"] {
                guard let n = csi.int, (0...255).contains(n) else { throw error(p + ".command_set", "expected a CSI from 0 to 255") }
                commandSet = CommandSet(rawValue: UInt8(n))
            }
            var bits: UInt32 = 0
            for name in try stringList(t, p, "effects") ?? [] {
                if name.uppercased() == "CSUPP" { bits |= CommandEffects.supported.rawValue; continue }
                guard let e = PermittedEffects.byName.first(where: { $0.0 == name.uppercased() }) else {
                    throw error(p + ".effects", "unknown effect \"\(name)\"; use CSUPP, LBCC, NCC, NIC, CCC, CSER, CSE, USS or CSP")
                }
                bits |= e.1.rawValue
            }
            out.append(EffectsOverride(model: model, firmware: try string(t, p, "firmware"), queue: queue,
                                       commandSet: commandSet, opcode: UInt8(opcode),
                                       effects: CommandEffects(rawValue: bits), replace: try bool(t, p, "replace") ?? false))
        }
        return out
    }

    /// `[[tenant]]` entries.
    func readTenants(_ root: TOMLTable, defaultRules: Rules) throws(PolicyError) -> [Tenant] {
        guard let value = root["tenant"] else { return [] }
        guard let array = value.array else { throw error("tenant", "expected [[tenant]] tables") }
        // Handles carry a tenant's index in 16 bits (`HandleContext.tenant`), 0 meaning none.
        guard array.count <= Int(UInt16.max) else {
            throw error("tenant", "\(array.count) tenants: a policy holds at most \(UInt16.max)")
        }
        var tenants: [Tenant] = []
        var names: Set<String> = []
        for (index, item) in array.enumerated() {
            let p = "tenant"
            var reader = self
            reader.tenant = index
            guard let t = item.table else { throw reader.error(p, "expected [[tenant]] tables, found \(item)") }
            let tenant = try reader.readTenant(t, p, defaultRules: defaultRules, earlier: names)
            names.insert(tenant.name)
            tenants.append(tenant)
        }
        return tenants
    }

    /// One `[[tenant]]` table; `earlier` holds the names of the tenants before it.
    func readTenant(_ t: TOMLTable, _ p: String, defaultRules: Rules, earlier: Set<String>) throws(PolicyError) -> Tenant {
        try allowOnly(t, p, ["name", "uids", "gids", "callers", "rules", "namespaces", "read_only_namespaces",
                             "lba_range", "partitions", "admin", "io", "audit_allowed"])
        guard let name = try string(t, p, "name"), !name.isEmpty else { throw error(p + ".name", "a tenant needs a name") }
        guard !earlier.contains(name) else { throw error(p + ".name", "two tenants are called \"\(name)\"") }
        let base: Rules
        switch try string(t, p, "rules") ?? "none" {
        case "none": base = Rules(ioCommands: .none)
        case "kernel": base = Policy.kernel.defaultRules
        case "default": base = defaultRules
        case let other: throw error(p + ".rules", "expected \"none\", \"kernel\" or \"default\" (the rules to start from), got \"\(other)\"")
        }
        var tenant = Tenant(name: name, rules: try readRules(t, p, base: base, tenantKeys: true))
        tenant.uids = try ids(t, p, "uids")
        tenant.gids = try ids(t, p, "gids")
        tenant.callerNames = Set(try stringList(t, p, "callers") ?? [])
        guard !tenant.uids.isEmpty || !tenant.gids.isEmpty || !tenant.callerNames.isEmpty else {
            throw error(p + ".uids", "tenant \"\(name)\" matches nobody: give uids, gids or callers")
        }
        tenant.ownership = try ownership(t, p)
        return tenant
    }

    /// A tenant's `namespaces`, `read_only_namespaces` and `[[tenant.lba_range]]`.
    func ownership(_ t: TOMLTable, _ p: String) throws(PolicyError) -> Ownership {
        if let all = t["namespaces"]?.string {
            guard all == "all" else { throw error(p + ".namespaces", "expected \"all\" or a list of NSIDs, got \"\(all)\"") }
            return .all
        }
        var grants: [NamespaceGrant] = []
        func add(_ grant: NamespaceGrant, _ key: String) throws(PolicyError) {
            if grants.contains(where: { $0.nsid == grant.nsid && ($0.range == nil || grant.range == nil) }) {
                throw error(key, "namespace \(grant.nsid) is granted twice to this tenant")
            }
            grants.append(grant)
        }
        for nsid in try nsids(t, p, "namespaces") { try add(NamespaceGrant(nsid: nsid), p + ".namespaces") }
        for nsid in try nsids(t, p, "read_only_namespaces") {
            try add(NamespaceGrant(nsid: nsid, writable: false), p + ".read_only_namespaces")
        }
        if let value = t["lba_range"] {
            let key = p + ".lba_range"
            guard let array = value.array else { throw error(key, "expected [[tenant.lba_range]] tables") }
            for item in array {
                guard let r = item.table else { throw error(key, "expected [[tenant.lba_range]] tables, found \(item)") }
                try allowOnly(r, key, ["nsid", "start", "blocks", "access"])
                guard let nsid = r["nsid"]?.int, (1...0xFFFF_FFFE).contains(nsid) else {
                    throw error(key + ".nsid", "expected an NSID from 1 to 0xFFFFFFFE")
                }
                guard let start = r["start"]?.int, start >= 0 else { throw error(key + ".start", "expected the first LBA, 0 or more") }
                guard let blocks = r["blocks"]?.int, blocks > 0 else { throw error(key + ".blocks", "expected a number of blocks, 1 or more") }
                guard UInt64(start).addingReportingOverflow(UInt64(blocks)).overflow == false else {
                    throw error(key + ".blocks", "start + blocks overflows 64 bits")
                }
                let writable: Bool
                switch try string(r, key, "access") ?? "read-write" {
                case "read-write": writable = true
                case "read": writable = false
                case let other: throw error(key + ".access", "expected \"read\" or \"read-write\", got \"\(other)\"")
                }
                if grants.contains(where: { $0.nsid == UInt32(nsid) && $0.range == nil }) {
                    throw error(key, "namespace \(nsid) is already owned whole by this tenant")
                }
                grants.append(NamespaceGrant(nsid: UInt32(nsid), range: LBARange(start: UInt64(start), count: UInt64(blocks)),
                                             writable: writable))
            }
        }
        return .grants(grants)
    }

    /// A list of NSIDs 1...FFFFFFFEh.
    func nsids(_ t: TOMLTable, _ path: String, _ name: String) throws(PolicyError) -> [UInt32] {
        guard let v = t[name] else { return [] }
        guard let array = v.array else { throw error(key(path, name), "expected a list of NSIDs such as [1, 2], or \"all\"") }
        var out: [UInt32] = []
        for item in array {
            guard let n = item.int, (1...0xFFFF_FFFE).contains(n) else {
                throw error(key(path, name), "expected NSIDs from 1 to 0xFFFFFFFE, found \(item)")
            }
            out.append(UInt32(n))
        }
        return out
    }

    /// A list of uids or gids.
    func ids(_ t: TOMLTable, _ path: String, _ name: String) throws(PolicyError) -> Set<UInt32> {
        guard let v = t[name] else { return [] }
        guard let array = v.array else { throw error(key(path, name), "expected a list of numeric ids such as [1000]") }
        var out: Set<UInt32> = []
        for item in array {
            guard let n = item.int, (0...Int(UInt32.max)).contains(n) else {
                throw error(key(path, name), "expected numeric ids from 0 to 4294967295, found \(item)")
            }
            out.insert(UInt32(n))
        }
        return out
    }

    /// A rule set: `partitions`, `[….admin]`, `[….io]`, `audit_allowed`, read over `base`.
    /// Lists of grants add to the base's; single settings replace the base's.
    func readRules(_ t: TOMLTable, _ path: String, base: Rules, tenantKeys: Bool = false) throws(PolicyError) -> Rules {
        if !tenantKeys { try allowOnly(t, path, ["partitions", "admin", "io", "audit_allowed"]) }
        var rules = base
        if let value = t["partitions"] {
            if let b = value.bool {
                rules.partitions = b ? .unconfined : .refuse
            } else if value.string == "confined" {
                rules.partitions = .confined
            } else {
                throw error(key(path, "partitions"), "expected false (refuse, as Linux), \"confined\" (stay inside the partition) or true (reach the whole namespace), got \(value)")
            }
        }
        if let names = try stringList(t, path, "audit_allowed") {
            var set: AuditClasses = []
            for name in names {
                guard let c = AuditClasses.byName.first(where: { $0.0 == name.lowercased() }) else {
                    throw error(key(path, "audit_allowed"), "unknown class \"\(name)\"; use \"admin\", \"writes\" or \"all\"")
                }
                set.insert(c.1)
            }
            rules.auditAllowed = set
        }
        if let admin = try table(t, path, "admin") {
            let p = path + ".admin"
            try allowOnly(admin, p, ["commands", "identify_cns", "log_pages", "features", "log_page_lsp",
                                     "retain_async_event", "permitted_effects"])
            if admin["commands"]?.string == "all" {
                rules.adminCommands = Set((0...255).map(UInt8.init))   // Fabrics (7Fh) stays refused
            } else {
                rules.adminCommands.formUnion(try opcodes(admin, p, "commands", queue: .admin))
            }
            rules.identifyCNS.formUnion(try bytes(admin, p, "identify_cns"))
            rules.logPages.formUnion(try bytes(admin, p, "log_pages"))
            rules.features.formUnion(try bytes(admin, p, "features"))
            if admin["log_page_lsp"] != nil {
                let lsp = try bytes(admin, p, "log_page_lsp")
                guard lsp.allSatisfy({ $0 < 0x80 }) else { throw error(p + ".log_page_lsp", "LSP is 7 bits: values 0x00 to 0x7F") }
                rules.logPageLSP = lsp
            }
            if let rae = try string(admin, p, "retain_async_event") {
                switch rae {
                case "required": rules.requireRetainAsyncEvent = true
                case "any": rules.requireRetainAsyncEvent = false
                default: throw error(p + ".retain_async_event", "expected \"required\" or \"any\", got \"\(rae)\"")
                }
            }
            if let set = try effects(admin, p, "permitted_effects") { rules.adminPermittedEffects = set }
        }
        if let io = try table(t, path, "io") {
            let p = path + ".io"
            try allowOnly(io, p, ["commands", "permitted_effects", "write_access", "vendor_commands", "fused_compare_write"])
            if io["vendor_commands"]?.string == "all" {
                rules.vendorIOCommands = Set((0x80...0xFF).map(UInt8.init))
            } else {
                rules.vendorIOCommands.formUnion(try bytes(io, p, "vendor_commands"))
            }
            if let b = try bool(io, p, "fused_compare_write") { rules.fusedCompareWrite = b }
            if let value = io["commands"] {
                if let s = value.string {
                    switch s {
                    case "supported": rules.ioCommands = .supported
                    case "none": rules.ioCommands = .none
                    default: throw error(p + ".commands", "expected \"supported\", \"none\" or a list of I/O commands, got \"\(s)\"")
                    }
                } else {
                    var set = try opcodes(io, p, "commands", queue: .io)
                    if case .only(let inherited) = base.ioCommands { set.formUnion(inherited) }
                    rules.ioCommands = .only(set)
                }
            }
            if let set = try effects(io, p, "permitted_effects") { rules.permittedEffects = set }
            if let names = try stringList(io, p, "write_access") {
                var set: WriteAccess = []
                for name in names {
                    guard let w = WriteAccess.byName.first(where: { $0.0.lowercased() == name.lowercased() }) else {
                        throw error(p + ".write_access", "unknown condition \"\(name)\"; use \"data-to-controller\" or \"LBCC\"")
                    }
                    set.insert(w.1)
                }
                rules.writeAccess = set
            }
        }
        return rules
    }

    // MARK: Typed readers

    /// A list of effect names (LBCC, NCC, …).
    func effects(_ t: TOMLTable, _ path: String, _ name: String) throws(PolicyError) -> PermittedEffects? {
        guard let names = try stringList(t, path, name) else { return nil }
        var set: PermittedEffects = []
        for n in names {
            guard let e = PermittedEffects.byName.first(where: { $0.0 == n.uppercased() }) else {
                throw error(key(path, name), "unknown effect \"\(n)\"; use LBCC, NCC, NIC, CCC, CSER, CSE, USS or CSP")
            }
            set.insert(e.1)
        }
        return set
    }

    /// Refuses a key of `t` not in `keys` (a short list: searched, not hashed).
    func allowOnly(_ t: TOMLTable, _ path: String, _ keys: [String]) throws(PolicyError) {
        for key in t.keys where !keys.contains(key) {
            let spelled = key.isEmpty ? "\"\"" : key   // the empty key, as TOML writes it
            let full = path.isEmpty ? spelled : path + "." + spelled
            throw error(full, "unknown key; expected one of: \(keys.sorted().joined(separator: ", "))")
        }
    }

    func key(_ path: String, _ name: String) -> String { path.isEmpty ? name : path + "." + name }

    func table(_ t: TOMLTable, _ path: String, _ name: String) throws(PolicyError) -> TOMLTable? {
        guard let v = t[name] else { return nil }
        guard let table = v.table else { throw error(key(path, name), "expected a table, got \(v)") }
        return table
    }

    func string(_ t: TOMLTable, _ path: String, _ name: String) throws(PolicyError) -> String? {
        guard let v = t[name] else { return nil }
        guard let s = v.string else { throw error(key(path, name), "expected a string, got \(v)") }
        return s
    }

    func bool(_ t: TOMLTable, _ path: String, _ name: String) throws(PolicyError) -> Bool? {
        guard let v = t[name] else { return nil }
        guard let b = v.bool else { throw error(key(path, name), "expected true or false, got \(v)") }
        return b
    }

    func stringList(_ t: TOMLTable, _ path: String, _ name: String) throws(PolicyError) -> [String]? {
        guard let v = t[name] else { return nil }
        guard let array = v.array else { throw error(key(path, name), "expected a list of strings, got \(v)") }
        var out: [String] = []
        for item in array {
            guard let s = item.string else { throw error(key(path, name), "expected a list of strings, found \(item)") }
            out.append(s)
        }
        return out
    }

    func capabilities(_ t: TOMLTable, _ path: String, _ name: String) throws(PolicyError) -> Capabilities? {
        guard let names = try stringList(t, path, name) else { return nil }
        var caps: Capabilities = []
        for n in names {
            guard let c = Capabilities(name: n) else {
                throw error(key(path, name), "unknown capability \"\(n)\" (expected a Linux name such as CAP_SYS_ADMIN)")
            }
            caps.insert(c)
        }
        return caps
    }

    /// A list of values 0...255 (integers, e.g. `0x05`).
    func bytes(_ t: TOMLTable, _ path: String, _ name: String) throws(PolicyError) -> Set<UInt8> {
        guard let v = t[name] else { return [] }
        guard let array = v.array else { throw error(key(path, name), "expected a list of numbers such as [0x01, 0x02], got \(v)") }
        var out: Set<UInt8> = []
        for item in array {
            guard let n = item.int, (0...255).contains(n) else {
                throw error(key(path, name), "expected numbers from 0x00 to 0xFF, found \(item)")
            }
            out.insert(UInt8(n))
        }
        return out
    }

    /// A list of commands, each an opcode number or a spec name ("Identify", "Write Zeroes").
    func opcodes(_ t: TOMLTable, _ path: String, _ name: String, queue: Queue) throws(PolicyError) -> Set<UInt8> {
        guard let v = t[name] else { return [] }
        guard let array = v.array else { throw error(key(path, name), "expected a list of commands, got \(v)") }
        var out: Set<UInt8> = []
        for item in array {
            if let n = item.int, (0...255).contains(n) {
                out.insert(UInt8(n))
            } else if let s = item.string,
                      let info = OpcodeTable.all(queue: queue, commandSet: .nvm).first(where: { $0.name.lowercased() == s.lowercased() }) {
                out.insert(info.opcode)
            } else {
                let kind = queue == .admin ? "admin" : "NVM I/O"
                throw error(key(path, name), "\(item) is not an \(kind) command name or an opcode from 0x00 to 0xFF")
            }
        }
        return out
    }
}

extension Substring {
    func trimmingSpaces() -> Substring {
        var s = self
        while let f = s.first, f == " " || f == "\t" || f == "\r" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" || l == "\r" { s = s.dropLast() }
        return s
    }
}

/// The whole of a text file, or nil (errno set).
func readTextFile(_ path: String) -> String? {
    guard let f = fopen(path, "rb") else { return nil }
    defer { fclose(f) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, f) }
        if n > 0 { bytes.append(contentsOf: chunk[0..<n]) }
        if n < chunk.count { break }
    }
    if ferror(f) != 0 { return nil }
    return String(decoding: bytes, as: UTF8.self)
}
