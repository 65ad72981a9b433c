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
