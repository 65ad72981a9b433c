import NVMeGate
import NVMeSpec
import Testing

@Suite("Policy files")
struct PolicyLoaderTests {
    static let policies = String(#filePath.prefix(upTo: #filePath.range(of: "/Tests/")!.lowerBound)) + "/Policies"

    @Test("Policies/kernel.toml spells out exactly the built-in kernel policy")
    func kernelFileEqualsBuiltIn() throws {
        let loaded = try Policy.load(path: Self.policies + "/kernel.toml")
        #expect(loaded == Policy.kernel)
    }

    @Test("spec names and opcodes both name commands")
    func commandNames() throws {
        let policy = try Policy.parse("""
            [default.admin]
            commands = ["Get Features", 0x18]
            [default.io]
            commands = ["Read", "write zeroes", 0x0C]
            """)
        #expect(policy.defaultRules.adminCommands == [0x0A, 0x18])
        #expect(policy.defaultRules.ioCommands == .only([0x02, 0x08, 0x0C]))
    }

    /// (file text, line, key, a word the message must contain)
    static let broken: [(String, Int, String, String)] = [
        ("[default]\npartitions = \"no\"\n", 2, "default.partitions", "\"confined\" (stay inside the partition)"),
        ("[default]\n\n[default.io]\ncommands = 3\n", 4, "default.io.commands", "list of commands"),
        ("[default]\n[default.io]\npermitted_effects = [\"LBCC\", \"FOO\"]\n", 3, "default.io.permitted_effects", "FOO"),
        ("[privileges]\nbypass = [\"CAP_SYS_WIZARD\"]\n[default]\n", 2, "privileges.bypass", "CAP_SYS_WIZARD"),
        ("[default.admin]\nidentify_cns = [0x100]\n", 2, "default.admin.identify_cns", "0xFF"),
        ("[default.admin]\ncommands = [\"Make Coffee\"]\n", 2, "default.admin.commands", "Make Coffee"),
        ("[default]\npartition = false\n", 2, "default.partition", "unknown key"),
        ("version = 2\n[default]\n", 1, "version", "version 1"),
        ("name = \"x\"\n", 0, "default", "[default]"),
        ("[default\npartitions = true\n", 1, "", "expected ']'"),
        ("[default.io]\nwrite_access = [\"sometimes\"]\n", 2, "default.io.write_access", "sometimes"),
        // The empty key (found by the `policy` fuzz target: its error named neither line nor key).
        ("[default]\n'' = 0\n", 2, "default.\"\"", "unknown key"),
        // CRLF line endings (the fuzz target again: every key was on line 1).
        ("[default]\r\n\r\n[default.io]\r\ncommands = 3\r\n", 4, "default.io.commands", "list of commands"),
    ]

    @Test("a broken file is refused with its file, line, key and what is wrong", arguments: broken)
    func brokenFiles(text: String, line: Int, key: String, word: String) {
        #expect(throws: PolicyError.self) { try Policy.parse(text, file: "broken.toml") }
        do {
            _ = try Policy.parse(text, file: "broken.toml")
        } catch {
            #expect(error.file == "broken.toml")
            #expect(error.line == line, "\(error)")
            #expect(error.key == key, "\(error)")
            #expect(error.description.contains(word), "\(error)")
            #expect(error.description.hasPrefix("broken.toml"))
        }
    }

    /// Table headers whose key starts with a character no key starts with, and a `}` where
    /// an array expects a value. TOMLKit's parser aborted the process on each of these (a
    /// failed assertion in toml++), found by the `policy` fuzz target; the loader now refuses
    /// them first, naming the line.
    static let parserTraps: [(String, Int, String)] = [
        ("[.default]\n", 1, "not '.'"),
        ("version = 1\n[default]\n[[ $tenant]]\nname = \"x\"\n", 3, "not '$'"),
        ("[école]\n", 1, "not 'é'"),
        ("[default]\n\t[\u{7F}]\n", 2, "not U+7F"),
        ("[default]\n[\r", 2, "not U+D"),
        ("\u{FEFF}[# a comment, no key]\n", 1, "not '#'"),
        ("i=[}", 1, "not '}'"),
        ("i = [\r\n}", 2, "not '}'"),
        ("[default.admin]\nidentify_cns = [0x01, # CNS\n  }\n", 3, "not '}'"),
        ("x = { a = [[1], [}] }\n", 1, "not '}'"),
        ("[default]\nwhen = 1979-05-27 7\n", 2, "1979-05-27T07:32:00"),
        ("n = [2-------es 1]\n", 1, "1979-05-27T07:32:00"),
        ("ses= [5, \u{85}zzzzzn_", 1, "U+85 is allowed only inside a string or a comment"),
        ("[default]\nx = \u{A0}1\n", 2, "'\u{A0}' is allowed only inside a string or a comment"),
        ("# café\nname = \"café\" # é\nx = [1, \u{2028}]\n", 3, "is allowed only inside a string or a comment"),
    ]

    @Test("TOML the parser would abort on is refused with its line instead", arguments: parserTraps)
    func parserTrap(text: String, line: Int, ending: String) {
        do {
            _ = try Policy.parse(text, file: "trap.toml")
            Issue.record("accepted \(text)")
        } catch {
            #expect(error.line == line, "\(error)")
            #expect(error.message.hasSuffix(ending), "\(error)")
        }
    }

    @Test("brackets inside strings, comments and arrays are no headers and no traps")
    func bracketsElsewhere() throws {
        let policy = try Policy.parse("""
            description = \"\"\"
            [.not a header]
            \\
            [é] [}\"\"\"
            name = '[$]' # [=] [}
            lint_accept = [
              # [.a comment] }
              "bypass-capability",
            ]
            [default]
            """)
        #expect(policy.name == "[$]")
        #expect(policy.lintAccept == [.bypassCapability])
    }

    @Test("a missing file names its path and the system's reason")
    func missingFile() {
        do {
            _ = try Policy.load(path: "/nonexistent/kernel.toml")
            Issue.record("loaded a missing file")
        } catch {
            #expect(error.description.contains("/nonexistent/kernel.toml"))
            #expect(error.description.contains("No such file"))
        }
    }
}
