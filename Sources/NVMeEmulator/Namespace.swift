#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Who a reservation command comes from. Registration belongs to a host, named by its Host
/// Identifier (Set Features 81h); a controller whose host never set one is a host of its own.
struct HostKey: Hashable {
    var bytes: [UInt8]
    init(hostID: [UInt8], controllerID: UInt16) {
        if hostID.contains(where: { $0 != 0 }) { bytes = hostID }
        else { bytes = [0xFF, 0xFF, UInt8(controllerID >> 8), UInt8(truncatingIfNeeded: controllerID)] }
    }
    init(raw: [UInt8]) { bytes = raw }
    /// The Host Identifier as a Reservation Report shows it (zero for a controller-only host).
    var hostID: [UInt8] { bytes.count == 4 ? [] : bytes }
}

/// One registrant of a namespace's reservation.
struct Registrant: Equatable {
    var host: HostKey
    var controllerID: UInt16
    var key: UInt64
}

/// Reservation state of one namespace (NVMe Base 2.x §8.19 "Reservations").
struct ReservationState: Equatable {
    var registrants: [Registrant] = []
    /// The holder; for the all-registrants types every registrant holds it and this is the acquirer.
    var holder: HostKey?
    /// RTYPE: 0 none, 1 Write Exclusive, 2 Exclusive Access, 3 Write Exclusive – Registrants
    /// Only, 4 Exclusive Access – Registrants Only, 5 Write Exclusive – All Registrants,
    /// 6 Exclusive Access – All Registrants.
    var type: UInt8 = 0
    /// PRGEN / GEN.
    var generation: UInt32 = 0
    /// PTPLS: Persist Through Power Loss.
    var persistThroughPowerLoss = false

    func registrant(_ host: HostKey) -> Registrant? { registrants.first { $0.host == host } }
    var isAllRegistrants: Bool { type == 5 || type == 6 }

    func holds(_ host: HostKey) -> Bool {
        guard type != 0 else { return false }
        if isAllRegistrants { return registrant(host) != nil }
        return holder == host
    }

    /// Whether a read-type (`write == false`) or write-type command from `host` conflicts
    /// (NVMe Base 2.x, Figure "Command Behavior in the Presence of a Reservation").
    func conflicts(host: HostKey, write: Bool) -> Bool {
        guard type != 0, !holds(host) else { return false }
        let registered = registrant(host) != nil
        switch type {
        case 1: return write                          // Write Exclusive
        case 2: return true                           // Exclusive Access
        case 3, 5: return write && !registered        // Write Exclusive – Registrants Only / All Registrants
        case 4, 6: return !registered                 // Exclusive Access – Registrants Only / All Registrants
        default: return false
        }
    }

    mutating func removeRegistrants(where match: (Registrant) -> Bool) {
        let removedHolder = registrants.contains { match($0) && $0.host == holder }
        registrants.removeAll(where: match)
        if type != 0 {
            if isAllRegistrants { if registrants.isEmpty { holder = nil; type = 0 } }
            else if removedHolder { holder = nil; type = 0 }
        }
        if isAllRegistrants, let h = holder, registrant(h) == nil { holder = registrants.first?.host }
    }
}

/// What a namespace is and holds; guarded by its namespace's lock.
struct NamespaceState {
    /// FLBAS bits 3:0: 0 (512 B) or 1 (4096 B).
    var formatIndex: UInt8
    /// Capacity in bytes; NSZE = NCAP = NUSE = sizeBytes / lbaSize (no thin provisioning).
    var sizeBytes: UInt64
    var store: NamespaceStore
    /// Blocks made uncorrectable by Write Uncorrectable, in LBAs of the current format.
    var uncorrectable = IntervalSet()
    var reservation = ReservationState()
    /// Controllers this namespace is attached to.
    var attached: Set<UInt16> { didSet { attachedList = attached.sorted() } }
    /// `attached` as a short array, for the I/O path's check: a scan of a controller or two
    /// costs less than hashing.
    private(set) var attachedList: [UInt16]
    /// NGUID (also the source of EUI-64 and UUID).
    var nguid: [UInt8]
    var deleted = false

    init(formatIndex: UInt8, sizeBytes: UInt64, store: NamespaceStore, attached: Set<UInt16>, nguid: [UInt8]) {
        self.formatIndex = formatIndex
        self.sizeBytes = sizeBytes
        self.store = store
        self.attached = attached
        attachedList = attached.sorted()
        self.nguid = nguid
    }

    /// Whether controller `id` may use the namespace: it is allocated and attached to `id`.
    @inline(__always)
    func isActive(for id: UInt16) -> Bool {
        !deleted && attachedList.contains(id)
    }

    var lbaSize: UInt32 { Limits.lbaFormats[Int(formatIndex)] }
    var blockCount: UInt64 { sizeBytes / UInt64(lbaSize) }
}

/// One namespace of a subsystem: NSID and its lock-guarded state. Every command holds the
/// lock for its whole execution (shared by commands that only read), so concurrent
/// submitters see the results of some serial order.
final class Namespace: Sendable {
    let nsid: UInt32
    let state: NamespaceLock
    init(nsid: UInt32, state: consuming NamespaceState) {
        self.nsid = nsid
        self.state = NamespaceLock(state)
    }
}

/// A namespace's state behind a readers-writer lock: commands that only read the namespace
/// (Read, Compare, Verify) share it and run in parallel, everything else holds it alone.
/// Writers are preferred, so a stream of reads cannot hold a write off for ever.
final class NamespaceLock: @unchecked Sendable {
    private let lock: UnsafeMutablePointer<pthread_rwlock_t>
    private let value: UnsafeMutablePointer<NamespaceState>

    init(_ state: consuming NamespaceState) {
        lock = .allocate(capacity: 1)
        var attributes = pthread_rwlockattr_t()
        pthread_rwlockattr_init(&attributes)
        pthread_rwlockattr_setkind_np(&attributes, Int32(PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP))
        pthread_rwlock_init(lock, &attributes)
        pthread_rwlockattr_destroy(&attributes)
        value = .allocate(capacity: 1)
        value.initialize(to: state)
    }

    deinit {
        value.deinitialize(count: 1)
        value.deallocate()
        pthread_rwlock_destroy(lock)
        lock.deallocate()
    }

    /// Runs `body` holding the lock alone: it may change the state.
    @inline(__always)
    func withLock<R, E: Error>(_ body: (inout NamespaceState) throws(E) -> R) throws(E) -> R {
        pthread_rwlock_wrlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return try body(&value.pointee)
    }

    /// Runs `body` sharing the lock with other readers: it must only read the state. It gets
    /// the state `inout` only so that it works in place: a borrow of the pointee is a copy of
    /// the whole state, which retains everything in it (and makes readers on other cores
    /// fight over the reference counts).
    @inline(__always)
    func withSharedLock<R>(_ body: (inout NamespaceState) -> R) -> R {
        pthread_rwlock_rdlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return body(&value.pointee)
    }
}

/// The namespaces of a subsystem by NSID, immutable once built: what the I/O path looks a
/// namespace up in without taking the subsystem lock (`EmulatedSubsystem.namespace(_:)`).
final class NamespaceIndex: @unchecked Sendable {
    /// Keeps the namespaces alive for the unretained slots.
    private let namespaces: [Namespace]
    /// Slot `nsid - 1`, up to the highest NSID allocated.
    private let slots: UnsafeMutableBufferPointer<Unmanaged<Namespace>?>

    init(_ byNSID: [UInt32: Namespace]) {
        namespaces = Array(byNSID.values)
        slots = .allocate(capacity: Int(byNSID.keys.max() ?? 0))
        slots.initialize(repeating: nil)
        for ns in namespaces { slots[Int(ns.nsid) - 1] = Unmanaged.passUnretained(ns) }
    }

    deinit { slots.deallocate() }

    /// The namespace `nsid`, if allocated when the index was built.
    @inline(__always)
    func lookup(_ nsid: UInt32) -> Unmanaged<Namespace>? {
        let slot = Int(nsid) &- 1
        guard slot >= 0 && slot < slots.count else { return nil }
        return slots[slot]
    }
}

/// A namespace's NGUID: derived from the subsystem serial and NSID (stable across reopen).
func makeNGUID(serial: String, nsid: UInt32, salt: UInt64) -> [UInt8] {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325 ^ salt
    for b in serial.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
    var out: [UInt8] = []
    for round in 0..<2 {
        var x = h ^ UInt64(nsid) &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(round)
        x ^= x >> 33; x = x &* 0xff51_afd7_ed55_8ccd; x ^= x >> 33
        for i in 0..<8 { out.append(UInt8(truncatingIfNeeded: x >> (8 * UInt64(i)))) }
    }
    return out
}
