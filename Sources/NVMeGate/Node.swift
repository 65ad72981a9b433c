import NVMeSpec

/// The kind of device node a handle was opened on, as Linux names them.
@frozen
public enum NodeKind: UInt8, Sendable, Hashable {
    /// `/dev/nvmeX`: the controller character device.
    case controller = 0
    /// `/dev/nvmeXnY`: the namespace block device.
    case namespace = 1
    /// `/dev/ngXnY`: the generic per-namespace character device.
    case generic = 2
    /// `/dev/nvmeXnYpZ`: a partition of a namespace block device.
    case partition = 3
}

/// A parsed node name: "nvme0", "nvme0n1", "ng0n1", "nvme0n1p1", with or without "/dev/".
public struct NodeName: Sendable, Hashable, CustomStringConvertible {
    public var kind: NodeKind
    public var controller: UInt32
    /// The namespace ID (0 for the controller node).
    public var nsid: UInt32
    /// The partition number (0 unless `kind == .partition`).
    public var partition: UInt32

    public init(kind: NodeKind, controller: UInt32, nsid: UInt32 = 0, partition: UInt32 = 0) {
        self.kind = kind; self.controller = controller; self.nsid = nsid; self.partition = partition
    }

    /// Parses a Linux NVMe node name; nil if `text` is not one.
    public init?(_ text: String) {
        var s = Substring(text)
        if s.hasPrefix("/dev/") { s = s.dropFirst(5) }
        let generic: Bool
        if s.hasPrefix("nvme") { s = s.dropFirst(4); generic = false }
        else if s.hasPrefix("ng") { s = s.dropFirst(2); generic = true }
        else { return nil }
        func number(_ s: inout Substring) -> UInt32? {
            let digits = s.prefix { $0.isASCII && $0.isNumber }
            guard !digits.isEmpty, digits.count <= 9, let n = UInt32(digits) else { return nil }
            s = s.dropFirst(digits.count)
            return n
        }
        guard let ctrl = number(&s) else { return nil }
        if s.isEmpty {
            guard !generic else { return nil }
            self.init(kind: .controller, controller: ctrl)
            return
        }
        guard s.first == "n" else { return nil }
        s = s.dropFirst()
        guard let ns = number(&s), ns != 0 else { return nil }
        if s.isEmpty {
            self.init(kind: generic ? .generic : .namespace, controller: ctrl, nsid: ns)
            return
        }
        guard !generic, s.first == "p" else { return nil }
        s = s.dropFirst()
        guard let part = number(&s), part != 0, s.isEmpty else { return nil }
        self.init(kind: .partition, controller: ctrl, nsid: ns, partition: part)
    }

    public var description: String {
        switch kind {
        case .controller: "nvme\(controller)"
        case .namespace: "nvme\(controller)n\(nsid)"
        case .generic: "ng\(controller)n\(nsid)"
        case .partition: "nvme\(controller)n\(nsid)p\(partition)"
        }
    }
}
