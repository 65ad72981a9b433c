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

/// Reads a parsed TOML document into a `Policy`, refusing unknown keys and wrong types.
struct PolicyReader {
    let file: String
    let lines: [Substring]

    init(file: String, text: String) {
        self.file = file
        self.lines = text.split(separator: "\n", omittingEmptySubsequences: false)
    }

    func error(_ key: String, _ message: String) -> PolicyError {
        PolicyError(file: file, line: line(of: key), key: key, message: message)
    }

    /// The line where dotted `key` is set: its own `[table]` header, or `name =` under the
    /// nearest header that leads to it (handles `[a.b]` + `c =` and `[a]` + `b.c =`).
    func line(of key: String) -> Int {
        var table = ""
        for (index, raw) in lines.enumerated() {
            let text = raw.trimmingSpaces()
            if text.hasPrefix("[") {
                let name = text.drop { $0 == "[" }.prefix { $0 != "]" }
                table = String(name).filter { $0 != " " && $0 != "\"" }
                if table == key { return index + 1 }
                continue
            }
            guard let eq = text.firstIndex(of: "="), !text.hasPrefix("#") else { continue }
            let name = text[..<eq].filter { $0 != " " && $0 != "\"" }
            let full = table.isEmpty ? name : table + "." + name
            if full == key || key.hasPrefix(full + ".") { return index + 1 }
        }
        return 0
    }

    func read(_ root: TOMLTable) throws(PolicyError) -> Policy {
        try allowOnly(root, "", ["version", "name", "description", "privileges", "effects", "default"])
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
            try allowOnly(effects, "effects", ["linux_known_effects", "ignore_io_cse"])
            if let b = try bool(effects, "effects", "linux_known_effects") { policy.linuxKnownEffects = b }
            if let b = try bool(effects, "effects", "ignore_io_cse") { policy.ignoreIOSubmissionAndExecution = b }
        }
        guard let rules = try table(root, "", "default") else {
            throw error("default", "a policy needs a [default] section: the rules for callers that match no tenant")
        }
        policy.defaultRules = try readRules(rules, "default")
        return policy
    }

    func readRules(_ t: TOMLTable, _ path: String) throws(PolicyError) -> Rules {
        try allowOnly(t, path, ["partitions", "admin", "io"])
        var rules = Rules()
        if let b = try bool(t, path, "partitions") { rules.partitions = b }
        if let admin = try table(t, path, "admin") {
            let p = path + ".admin"
            try allowOnly(admin, p, ["commands", "identify_cns", "log_pages", "features"])
            rules.adminCommands = try opcodes(admin, p, "commands", queue: .admin)
            rules.identifyCNS = try bytes(admin, p, "identify_cns")
            rules.logPages = try bytes(admin, p, "log_pages")
            rules.features = try bytes(admin, p, "features")
        }
        if let io = try table(t, path, "io") {
            let p = path + ".io"
            try allowOnly(io, p, ["commands", "permitted_effects", "write_access"])
            if let value = io["commands"] {
                if let s = value.string {
                    switch s {
                    case "supported": rules.ioCommands = .supported
                    case "none": rules.ioCommands = .none
                    default: throw error(p + ".commands", "expected \"supported\", \"none\" or a list of I/O commands, got \"\(s)\"")
                    }
                } else {
                    rules.ioCommands = .only(try opcodes(io, p, "commands", queue: .io))
                }
            }
            if let names = try stringList(io, p, "permitted_effects") {
                var set: PermittedEffects = []
                for name in names {
                    guard let e = PermittedEffects.byName.first(where: { $0.0 == name.uppercased() }) else {
                        throw error(p + ".permitted_effects", "unknown effect \"\(name)\"; use LBCC, NCC, NIC, CCC, CSER, CSE, USS or CSP")
                    }
                    set.insert(e.1)
                }
                rules.permittedEffects = set
            }
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

    func allowOnly(_ t: TOMLTable, _ path: String, _ keys: Set<String>) throws(PolicyError) {
        for key in t.keys where !keys.contains(key) {
            let full = path.isEmpty ? key : path + "." + key
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
