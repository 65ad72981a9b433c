import NVMeSpec

/// What a command reaches, for namespace and LBA-range ownership: the part of a command's
/// meaning the ownership checks need, classified once per (queue, command set, opcode)
/// when a policy is compiled.
@usableFromInline
enum Reach {
    /// I/O: nothing a tenant could take from another (Flush).
    @usableFromInline static let harmless: UInt8 = 0
    /// I/O: SLBA in CDW10-11 and a 0-based NLB in CDW12 bits 15:0 (Read, Write, Compare, …).
    @usableFromInline static let lbaRange: UInt8 = 1
    /// I/O: ranges carried in the data buffer (Dataset Management, Copy).
    @usableFromInline static let rangeList: UInt8 = 2
    /// I/O: the whole namespace (reservations, zone management, vendor commands, …).
    @usableFromInline static let wholeNamespace: UInt8 = 3
    /// Admin: the NSID is not used.
    @usableFromInline static let noNamespace: UInt8 = 0
    /// Admin, reading: a specific NSID must be owned; FFFFFFFFh and 0 mean the controller
    /// (Identify of a namespace, Get Log Page, Get Features).
    @usableFromInline static let readsNamespace: UInt8 = 4
    /// Admin, changing: a specific NSID must be owned whole and writable; FFFFFFFFh means
    /// every namespace (Format NVM, Namespace Attachment and Management, Device Self-test,
    /// Set Features of a namespace-scoped feature).
    @usableFromInline static let changesNamespace: UInt8 = 5
    /// Admin: every namespace whatever the NSID (Sanitize).
    @usableFromInline static let everyNamespace: UInt8 = 6

    static func io(commandSet: CommandSet, opcode: UInt8) -> UInt8 {
        switch opcode {
        case 0x00: return harmless
        case 0x01, 0x02, 0x04, 0x05, 0x08, 0x0C:
            // Key Value's 01h (Store) and 02h (Retrieve) carry keys, not LBAs.
            return commandSet == .keyValue ? wholeNamespace : lbaRange
        case 0x09, 0x19: return commandSet == .keyValue ? wholeNamespace : rangeList
        default: return wholeNamespace
        }
    }

    static func admin(opcode: UInt8) -> UInt8 {
        switch opcode {
        case 0x02, 0x06, 0x0A: return readsNamespace
        case 0x09, 0x0D, 0x14, 0x15, 0x80: return changesNamespace
        case 0x84: return everyNamespace
        default: return noNamespace
        }
    }

    /// Identify CNS values whose NSID names a namespace (the others ignore it).
    static let namespaceCNS: [UInt8] = [0x00, 0x03, 0x05, 0x08, 0x09, 0x11, 0x1B, 0x1F]

    /// Features whose Set applies to one namespace (the others to the controller).
    @inlinable @inline(__always)
    static func isNamespaceFeature(_ fid: UInt8) -> Bool {
        fid == 0x03 || fid == 0x05 || fid == 0x82 || fid == 0x83 || fid == 0x84
    }
}

/// One namespace grant as the decision reads it. 24 bytes.
@frozen @usableFromInline
struct CompiledGrant: BitwiseCopyable {
    @usableFromInline var nsid: UInt32
    @usableFromInline var writable: Bool
    /// Whether the grant is the whole namespace (`start` and `count` unused).
    @usableFromInline var whole: Bool
    @usableFromInline var start: UInt64
    @usableFromInline var count: UInt64
}
