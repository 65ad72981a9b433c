import Glibc
import NVMeGate
@testable import NVMeLinux
import Testing

/// A sysfs tree in a temporary directory, laid out as Linux lays out an NVMe controller with
/// one namespace (its generic node, and one partition) and /dev/null.
final class FakeSysfs {
    let root: String

    init() throws {
        var template = Array("/tmp/nvmegate-sysfs-XXXXXX".utf8CString)
        guard mkdtemp(&template) != nil else { throw CError(errno: errno) }
        root = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let ctrl = "devices/pci0000:00/0000:00:04.0/nvme/nvme0"
        try dir(ctrl + "/nvme0n1/nvme0n1p1")
        try dir(ctrl + "/nvme0n1/queue")
        try dir(ctrl + "/ng0n1")
        try dir("devices/virtual/mem/null")
        try dir("class/nvme"); try dir("class/nvme-generic"); try dir("class/block"); try dir("class/mem")
        try dir("dev/char"); try dir("dev/block")
        try link("../../" + ctrl, "class/nvme/nvme0")
        try link("../../" + ctrl + "/ng0n1", "class/nvme-generic/ng0n1")
        try link("../../" + ctrl + "/nvme0n1", "class/block/nvme0n1")
        try link("../../" + ctrl + "/nvme0n1/nvme0n1p1", "class/block/nvme0n1p1")
        try link("../../" + ctrl, "dev/char/247:0")
        try link("../../" + ctrl + "/ng0n1", "dev/char/246:0")
        try link("../../" + ctrl + "/nvme0n1", "dev/block/259:0")
        try link("../../" + ctrl + "/nvme0n1/nvme0n1p1", "dev/block/259:1")
        try link("../../devices/virtual/mem/null", "dev/char/1:3")
        try link("../../../../../class/nvme", ctrl + "/subsystem")
        try link("../../../../../../class/nvme-generic", ctrl + "/ng0n1/subsystem")
        try link("../../../../../../class/block", ctrl + "/nvme0n1/subsystem")
        try link("../../../../../../../class/block", ctrl + "/nvme0n1/nvme0n1p1/subsystem")
        try link("../../../../../../class/mem", "devices/virtual/mem/null/subsystem")
        try link("..", ctrl + "/nvme0n1/device")
        try link("..", ctrl + "/ng0n1/device")
        try file(ctrl + "/nvme0n1/nsid", "1\n")
        try file(ctrl + "/nvme0n1/queue/zoned", "none\n")
        try file(ctrl + "/nvme0n1/nvme0n1p1/start", "2048\n")
        try file(ctrl + "/nvme0n1/nvme0n1p1/size", "4096\n")
    }

    deinit { _ = system("rm -rf '\(root)'") }

    struct CError: Error { var errno: Int32 }
    func dir(_ path: String) throws { guard system("mkdir -p '\(root)/\(path)'") == 0 else { throw CError(errno: EIO) } }
    func link(_ target: String, _ path: String) throws {
        guard symlink(target, root + "/" + path) == 0 else { throw CError(errno: errno) }
    }
    func file(_ path: String, _ text: String) throws {
        guard let f = fopen(root + "/" + path, "w") else { throw CError(errno: errno) }
        fputs(text, f)
        fclose(f)
    }

    static func device(_ major: UInt64, _ minor: UInt64) -> UInt64 {
        (major & 0xFFF) << 8 | (major & ~0xFFF) << 32 | (minor & 0xFF) | (minor & ~0xFF) << 12
    }
}

@Suite("sysfs: node kinds, the controller, namespaces and partitions")
struct SysfsTests {
    @Test("Device numbers resolve to the node kinds Linux gives them, and their controller")
    func nodes() throws {
        let tree = try FakeSysfs()
        let sysfs = Sysfs(root: tree.root)
        #expect(sysfs.node(device: FakeSysfs.device(247, 0), block: false).node
                == Sysfs.Node(kernelName: "nvme0", name: NodeName(kind: .controller, controller: 0), controller: "nvme0"))
        #expect(sysfs.node(device: FakeSysfs.device(246, 0), block: false).node
                == Sysfs.Node(kernelName: "ng0n1", name: NodeName(kind: .generic, controller: 0, nsid: 1), controller: "nvme0"))
        #expect(sysfs.node(device: FakeSysfs.device(259, 0), block: true).node
                == Sysfs.Node(kernelName: "nvme0n1", name: NodeName(kind: .namespace, controller: 0, nsid: 1), controller: "nvme0"))
        #expect(sysfs.node(device: FakeSysfs.device(259, 1), block: true).node
                == Sysfs.Node(kernelName: "nvme0n1p1", name: NodeName(kind: .partition, controller: 0, nsid: 1, partition: 1),
                              controller: "nvme0"))
        let null = sysfs.node(device: FakeSysfs.device(1, 3), block: false)
        #expect(null.node == nil && null.otherName == "null")
        // The right number with the wrong type is not the node.
        #expect(sysfs.node(device: FakeSysfs.device(247, 0), block: true).node == nil)
        let unknown = sysfs.node(device: FakeSysfs.device(9, 9), block: false)
        #expect(unknown.node == nil && unknown.otherName == nil)
    }

    @Test("A controller's namespaces and a namespace's partitions")
    func namespacesAndPartitions() throws {
        let tree = try FakeSysfs()
        let sysfs = Sysfs(root: tree.root)
        #expect(sysfs.namespaces(of: "nvme0") == [Sysfs.NamespaceEntry(blockName: "nvme0n1", genericName: "ng0n1", nsid: 1, zoned: false)])
        #expect(sysfs.partitions(of: "nvme0n1") == [Sysfs.Partition(number: 1, startSector: 2048, sectors: 4096)])
        #expect(sysfs.namespaces(of: "nvme7").isEmpty)
    }

    @Test("Namespace directory names: a disk, a multipath path; nothing else")
    func names() {
        #expect(Sysfs.namespaceNumbers("nvme0n1")! == (0, 1))
        #expect(Sysfs.namespaceNumbers("nvme2c3n14")! == (2, 14))
        #expect(Sysfs.namespaceNumbers("nvme0") == nil)
        #expect(Sysfs.namespaceNumbers("ng0n1") == nil)
        #expect(Sysfs.namespaceNumbers("nvme0n1p1") == nil)
        #expect(Sysfs.namespaceNumbers("power") == nil)
    }

    @Test("major and minor as glibc computes them")
    func deviceNumbers() {
        let d = FakeSysfs.device(259, 70000)
        #expect(Sysfs.major(d) == 259 && Sysfs.minor(d) == 70000)
    }
}
