/// Where the keys of a policy file are written: the line a message about a key points at.
/// Knows TOML's headers (`[a.b]` then `c =`, `[a]` then `b.c =`) and tells the `[[tenant]]`
/// sections apart, so a message about the third tenant points into the third tenant.
public struct PolicyLocator: Sendable {
    /// The file, as messages name it.
    public let file: String
    let lines: [Substring]

    public init(file: String, text: String) {
        self.file = file
        // TOML ends lines with LF or CRLF; Swift reads CRLF as one Character.
        lines = text.split(omittingEmptySubsequences: false) { $0 == "\n" || $0 == "\r\n" }
    }

    /// The 1-based line where dotted `key` ("default.io.commands", "tenant.admin.commands")
    /// is set, inside the `[[tenant]]` section number `tenant` (0-based) when given. A key
    /// the file does not write (an inherited or default value) gets the line of the nearest
    /// enclosing key it does write; 0 when there is none.
    public func line(of key: String, tenant: Int? = nil) -> Int {
        var key = Substring(key)
        while true {
            if let found = exactLine(of: key, tenant: tenant) { return found }
            guard let dot = key.lastIndex(of: ".") else { break }
            key = key[..<dot]
        }
        guard let tenant else { return 0 }
        return tenantRegion(tenant)?.lowerBound ?? 0
    }

    /// The line of `key` itself, or nil. Quotes around key parts are not compared.
    func exactLine(of quotedKey: Substring, tenant: Int?) -> Int? {
        let key = Substring(quotedKey.filter { $0 != "\"" && $0 != "'" })
        let region: Range<Int>
        if let tenant {
            guard let r = tenantRegion(tenant) else { return nil }
            region = r
        } else {
            region = 1..<(lines.count + 1)
        }
        var table = ""
        for number in region {
            let text = lines[number - 1].trimmingSpaces()
            if let name = Self.header(text) {
                table = name
                if table == key { return number }
                continue
            }
            guard let eq = text.firstIndex(of: "="), !text.hasPrefix("#") else { continue }
            let name = text[..<eq].filter { $0 != " " && $0 != "\"" && $0 != "'" }
            let full = table.isEmpty ? name : table + "." + name
            if full == key || key.hasPrefix(full + ".") { return number }
        }
        return nil
    }

    /// The lines (1-based) of `[[tenant]]` section number `index`: from its header to the
    /// next header that does not belong to a tenant, or to the next tenant.
    func tenantRegion(_ index: Int) -> Range<Int>? {
        var seen = -1
        var start: Int?
        for (offset, raw) in lines.enumerated() {
            let text = raw.trimmingSpaces()
            guard let name = Self.header(text) else { continue }
            let number = offset + 1
            let opensTenant = text.hasPrefix("[[") && name == "tenant"
            if let start {
                if opensTenant || !(name == "tenant" || name.hasPrefix("tenant.")) { return start..<number }
                continue
            }
            if opensTenant {
                seen += 1
                if seen == index { start = number }
            }
        }
        return start.map { $0..<(lines.count + 1) }
    }

    /// The table a header line opens ("default.io" for `[default.io]`, "tenant" for
    /// `[[tenant]]`), or nil for other lines.
    static func header(_ text: Substring) -> String? {
        guard text.hasPrefix("[") else { return nil }
        let name = text.drop { $0 == "[" }.prefix { $0 != "]" }
        return String(name).filter { $0 != " " && $0 != "\"" && $0 != "'" }
    }
}
