#if canImport(Glibc)
import Glibc
#endif
import NVMeGate

/// What sysfs knows about NVMe device nodes: which kind a device number is, which controller
/// it belongs to, the namespaces of a controller and the partitions of a namespace.
struct Sysfs {
    /// Where sysfs is mounted ("/sys"; tests build a tree elsewhere).
    var root: String = "/sys"

    /// What a device number is, as sysfs names it.
    struct Node: Equatable {
        /// The kernel's name: "nvme0", "ng0n1", "nvme0n1", "nvme0n1p1".
        var kernelName: String
        /// `kernelName` parsed (its numbers are instance numbers, not NSIDs).
        var name: NodeName
        /// The controller it belongs to ("nvme0"), from sysfs.
        var controller: String
    }

    /// A namespace of a controller: its block device's name, its generic node's name, and
    /// the NSID sysfs reports (nil when it has no `nsid` attribute).
    struct NamespaceEntry: Equatable {
        var blockName: String
        var genericName: String
        var nsid: UInt32?
        /// Whether the block device is zoned (`queue/zoned` is "host-managed").
        var zoned: Bool
    }

    /// A partition of a namespace's block device, in 512-byte sectors.
    struct Partition: Equatable {
        var number: UInt32
        var startSector: UInt64
        var sectors: UInt64
    }

    /// The NVMe node device number `device` is (`block`: a block device, else a character
    /// device); nil with the name sysfs gives it when it is not an NVMe node, nil and nil
    /// when sysfs does not know it.
    func node(device: UInt64, block: Bool) -> (node: Node?, otherName: String?) {
        let link = root + "/dev/" + (block ? "block" : "char") + "/\(Self.major(device)):\(Self.minor(device))"
        guard let path = Self.resolve(link) else { return (nil, nil) }
        let kernelName = Self.lastComponent(path)
        let subsystem = Self.resolve(link + "/subsystem").map(Self.lastComponent) ?? ""
        guard let name = NodeName(kernelName) else { return (nil, kernelName) }
        let expected: Bool
        switch name.kind {
        case .controller: expected = !block && subsystem == "nvme"
        case .generic: expected = !block && subsystem == "nvme-generic"
        case .namespace, .partition: expected = block && subsystem == "block"
        }
        guard expected else { return (nil, kernelName) }
        if name.kind == .controller { return (Node(kernelName: kernelName, name: name, controller: kernelName), nil) }
        // A partition's parent directory is its disk; a disk's and a generic node's `device`
        // is their controller, or, for a multipath head, the subsystem (take its first controller).
        let owner = name.kind == .partition ? Self.parent(path) : path
        guard let device = Self.resolve(owner + "/device") else { return (nil, kernelName) }
        var controller = Self.lastComponent(device)
        if controller.hasPrefix("nvme-subsys") {
            guard let first = Self.list(device).filter({ NodeName($0)?.kind == .controller }).sorted().first else {
                return (nil, kernelName)
            }
            controller = first
        }
        return (Node(kernelName: kernelName, name: name, controller: controller), nil)
    }

    /// The namespaces of `controller` ("nvme0"): its children named nvmeXnY (a namespace's
    /// disk) or nvmeXcCnY (a multipath path of head nvmeXnY), in name order.
    func namespaces(of controller: String) -> [NamespaceEntry] {
        let directory = root + "/class/nvme/" + controller
        var out: [NamespaceEntry] = []
        for entry in Self.list(directory).sorted() {
            guard let (x, y) = Self.namespaceNumbers(entry) else { continue }
            let nsid = Self.read(directory + "/" + entry + "/nsid").flatMap { UInt32($0) }
            let zoned = Self.read(directory + "/" + entry + "/queue/zoned") == "host-managed"
            out.append(NamespaceEntry(blockName: "nvme\(x)n\(y)", genericName: "ng\(x)n\(y)", nsid: nsid, zoned: zoned))
        }
        return out
    }

    /// The partitions of block device `disk` ("nvme0n1"), by number.
    func partitions(of disk: String) -> [Partition] {
        let directory = root + "/class/block/" + disk
        var out: [Partition] = []
        for entry in Self.list(directory) where entry.hasPrefix(disk + "p") {
            guard let number = UInt32(entry.dropFirst(disk.count + 1)),
                  let start = Self.read(directory + "/" + entry + "/start").flatMap({ UInt64($0) }),
                  let size = Self.read(directory + "/" + entry + "/size").flatMap({ UInt64($0) }) else { continue }
            out.append(Partition(number: number, startSector: start, sectors: size))
        }
        return out.sorted { $0.number < $1.number }
    }

    /// (X, Y) of "nvmeXnY" or "nvmeXcCnY"; nil for any other name.
    static func namespaceNumbers(_ name: String) -> (UInt32, UInt32)? {
        guard name.hasPrefix("nvme") else { return nil }
        let rest = name.dropFirst(4)
        let parts = rest.split(separator: "n", omittingEmptySubsequences: false)
        guard parts.count == 2, let y = UInt32(parts[1]) else { return nil }
        let head = parts[0].split(separator: "c", omittingEmptySubsequences: false)
        guard head.count <= 2, let x = UInt32(head[0]), head.count == 1 || UInt32(head[1]) != nil else { return nil }
        return (x, y)
    }

    // MARK: Files

    /// The canonical path `path` resolves to, nil if it does not exist.
    static func resolve(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// The entries of a directory (no "." or ".."); empty if it cannot be read.
    static func list(_ directory: String) -> [String] {
        guard let dir = opendir(directory) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// A sysfs attribute's text without the trailing newline; nil if it cannot be read.
    static func read(_ path: String) -> String? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var buffer = [CChar](repeating: 0, count: 256)
        guard fgets(&buffer, Int32(buffer.count), file) != nil else { return nil }
        var text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        while text.last == "\n" || text.last == " " { text.removeLast() }
        return text
    }

    static func lastComponent(_ path: String) -> String {
        String(path.split(separator: "/").last ?? "")
    }

    static func parent(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return "/" }
        return String(path[..<slash])
    }

    /// glibc's `major()` and `minor()` (macros Swift does not import).
    static func major(_ device: UInt64) -> UInt64 { (device >> 8) & 0xFFF | (device >> 32) & ~0xFFF }
    static func minor(_ device: UInt64) -> UInt64 { device & 0xFF | (device >> 12) & ~0xFF }
}
