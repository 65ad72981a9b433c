#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import NVMeSpec
import Synchronization

/// One Error Information log entry (Log Page 01h, 64 bytes each).
struct ErrorEntry {
    var count: UInt64
    var sqid: UInt16
    var cid: UInt16
    var status: UInt16
    var lba: UInt64
    var nsid: UInt32
}

/// One Device Self-test Result Data Structure (Log Page 06h).
struct SelfTestResult: Equatable {
    /// Self-test Code: 1 short, 2 extended.
    var code: UInt8
    /// Result: 0 completed without error, 1 aborted by a Device Self-test command.
    var result: UInt8
    var powerOnHours: UInt64
    var nsid: UInt32
}

/// A running extended self-test.
struct RunningSelfTest {
    var code: UInt8
    var nsid: UInt32
    var startMilliseconds: UInt64
    var durationMilliseconds: UInt64
}

/// Firmware slots (Log Page 03h): revisions of slots 1...n, the active slot, and the slot
/// activated at the next Controller Level Reset.
struct FirmwareState: Equatable {
    var slots: [String?]
    var active: Int
    var next: Int?
}

/// State shared by every controller of a subsystem; guarded by the subsystem's lock.
struct SubsystemState {
    var serialNumber: String
    var modelNumber: String
    var vendorID: UInt16
    var subsystemVendorID: UInt16
    var subsystemNQN: String
    var totalCapacity: UInt64
    var maxNamespaces: UInt32
    var extendedSelfTestMilliseconds: UInt64
    var namespaces: [UInt32: Namespace] = [:]
    /// Every controller that ever joined (attachable by Namespace Attachment), and those open now.
    var knownControllers: Set<UInt16> = []
    var openControllers: Set<UInt16> = []
    var firmware: FirmwareState
    /// Saved feature values per controller, keyed by `featureKey` (FID, threshold select, NSID).
    var savedFeatures: [UInt16: [UInt64: UInt32]] = [:]
    var selfTestResults: [SelfTestResult] = []   // newest first
    /// The extended self-test running, timed on CLOCK_MONOTONIC (one clock for every process).
    var runningSelfTest: RunningSelfTest?
    /// Firmware Image Download per controller: the image so far, until committed or reset.
    var pendingFirmware: [UInt16: [UInt8]] = [:]
    /// Sanitize Status log: SPROG, SSTAT, SCDW10.
    var sanitizeProgress: UInt16 = 0xFFFF
    var sanitizeStatus: UInt16 = 0
    var sanitizeCDW10: UInt32 = 0
    /// Changed Namespace List per controller (Log Page 04h), and whether it overflowed.
    var changedNamespaces: [UInt16: [UInt32]] = [:]
    /// Asynchronous events waiting for an Asynchronous Event Request, per controller (CQE DW0).
    var pendingEvents: [UInt16: [UInt32]] = [:]
    var errorLog: [ErrorEntry] = []   // newest first
    var errorCount: UInt64 = 0
    /// Seconds since the epoch when the subsystem was created (power-on hours count from it).
    var createdAt: Int64
    var powerCycles: UInt64 = 1
    var unsafeShutdowns: UInt64 = 0
    /// SMART counters read from the state file, moved into `SmartCounters` on open.
    var savedCounters: [UInt64] = []
    /// Every namespace index published (`EmulatedSubsystem.publishNamespaces`), newest last.
    var indexes: [NamespaceIndex] = []

    func namespace(_ nsid: UInt32) -> Namespace? { namespaces[nsid] }

    mutating func noteChangedNamespace(_ nsid: UInt32, controllers: Set<UInt16>) {
        for c in controllers {
            var list = changedNamespaces[c] ?? []
            if list.first != 0xFFFF_FFFF, !list.contains(nsid) {
                if list.count >= Limits.changedNamespaces { list = [0xFFFF_FFFF] } else { list.append(nsid) }
            }
            changedNamespaces[c] = list
            // Notice: Namespace Attribute Changed (type 2, info 00h, log page 04h).
            var events = pendingEvents[c] ?? []
            let event: UInt32 = 0x02 | 0x00 << 8 | UInt32(LogPageID.changedNamespaceList.rawValue) << 16
            if !events.contains(event) { events.append(event) }
            pendingEvents[c] = events
        }
    }

    mutating func recordError(_ e: ErrorEntry) {
        errorCount &+= 1
        var entry = e
        entry.count = errorCount
        errorLog.insert(entry, at: 0)
        if errorLog.count > Limits.errorLogEntries { errorLog.removeLast() }
    }

    var powerOnHours: UInt64 { UInt64(max(0, (wallSeconds() - createdAt) / 3600)) }

    /// Completes the running self-test if its time is up.
    mutating func settleSelfTest() {
        guard let run = runningSelfTest, monotonicMilliseconds() >= run.startMilliseconds + run.durationMilliseconds
        else { return }
        addSelfTestResult(SelfTestResult(code: run.code, result: 0, powerOnHours: powerOnHours, nsid: run.nsid))
        runningSelfTest = nil
    }

    mutating func addSelfTestResult(_ r: SelfTestResult) {
        selfTestResults.insert(r, at: 0)
        if selfTestResults.count > Limits.selfTestResults { selfTestResults.removeLast() }
    }

    var allocatedBytes: UInt64 {
        namespaces.values.reduce(0) { $0 + $1.state.withLock { $0.sizeBytes } }
    }
}

/// SMART / Health counters, updated without the subsystem lock. Stored in place in the
/// subsystem (not a class of its own), so updating them retains nothing.
struct SmartCounters: ~Copyable, Sendable {
    /// 512-byte data units read and written (reported in thousands, rounded up).
    let unitsRead = Atomic<UInt64>(0)
    let unitsWritten = Atomic<UInt64>(0)
    let hostReads = Atomic<UInt64>(0)
    let hostWrites = Atomic<UInt64>(0)
    let mediaErrors = Atomic<UInt64>(0)
}

/// An NVM subsystem: namespaces, their data and reservations, firmware slots, logs and
/// saved features, shared by every `EmulatedController` attached to it. Controllers with
/// distinct controller IDs on one subsystem are how two hosts meet (reservations, shared
/// namespaces).
///
/// In memory, or file-backed in a directory: `DIR/state` (text, replaced atomically:
/// write a temporary file, fsync, rename, fsync the directory), one sparse file per
/// namespace `DIR/ns-<NSID>.img`, and `DIR/lock`, on which the subsystem holds an
/// exclusive `flock` while it is open; a second opener is refused.
///
/// Counters and logs reach the state file when state changes through an admin command, a
/// reservation command or Write Uncorrectable, on Flush, when a FUA (or write-through)
/// command rewrites uncorrectable blocks, and when the subsystem is released.
public final class EmulatedSubsystem: Sendable {
    let directory: String?
    private let lockFD: Int32
    let state: Mutex<SubsystemState>
    let counters = SmartCounters()
    /// Identify Controller NN, fixed when the subsystem is created.
    let maxNamespaces: UInt32
    /// The namespaces by NSID, for lookups without the subsystem lock (the I/O path): a new
    /// index is published whole whenever a namespace is created or deleted. Every index
    /// published stays alive as long as the subsystem (`SubsystemState.indexes`, one per
    /// Namespace Management command), so a reader that loaded an old one never touches a
    /// freed namespace.
    private let index: Atomic<Unmanaged<NamespaceIndex>>

    /// An in-memory subsystem created from `configuration` (its controller ID is unused here).
    public init(configuration: EmulatorConfiguration = .init()) {
        directory = nil
        lockFD = -1
        var s = Self.fresh(configuration)
        for i in 0..<max(0, configuration.namespaceCount) {
            let nsid = UInt32(i + 1)
            let ns = NamespaceState(formatIndex: configuration.lbaFormat <= 1 ? configuration.lbaFormat : 0,
                                    sizeBytes: configuration.namespaceSize,
                                    store: .memory(MemoryStore(size: configuration.namespaceSize)), attached: [],
                                    nguid: makeNGUID(serial: configuration.serialNumber, nsid: nsid, salt: 0))
            s.namespaces[nsid] = Namespace(nsid: nsid, state: ns)
        }
        maxNamespaces = s.maxNamespaces
        index = Atomic(Self.firstIndex(&s))
        state = Mutex(s)
    }

    /// Opens the file-backed subsystem in `directory`, creating the directory and a default
    /// subsystem from `configuration` on first use. Throws when another process (or another
    /// subsystem object) has it open, or when its files cannot be read or written.
    public init(directory: String, configuration: EmulatorConfiguration = .init()) throws(EmulatorError) {
        self.directory = directory
        if mkdir(directory, 0o755) != 0 && errno != EEXIST {
            throw EmulatorError("cannot create emulated controller directory \(directory): \(errnoString(errno))")
        }
        let lockPath = directory + "/lock"
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw EmulatorError("cannot open \(lockPath): \(errnoString(errno))") }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let e = errno
            var buf = [UInt8](repeating: 0, count: 32)
            let n = buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress, 31, 0) }
            close(fd)
            if e == EWOULDBLOCK {
                let pid = String(decoding: buf.prefix(max(0, n)), as: UTF8.self).filter { $0.isNumber }
                throw EmulatorError("emulated controller directory \(directory) is in use by another process (pid \(pid.isEmpty ? "unknown" : pid))",
                                    errno: EBUSY)
            }
            throw EmulatorError("cannot lock \(lockPath): \(errnoString(e))")
        }
        let pid = Array(String(getpid()).utf8) + [10]
        _ = ftruncate(fd, 0)
        _ = pid.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        lockFD = fd

        let statePath = directory + "/state"
        var s: SubsystemState
        do {
            if let text = try readFile(statePath) {
                s = try Self.parse(text, directory: directory, configuration: configuration)
            } else {
                s = Self.fresh(configuration)
                for i in 0..<max(0, configuration.namespaceCount) {
                    let nsid = UInt32(i + 1)
                    let store = try FileStore(path: Self.dataPath(directory, nsid), size: configuration.namespaceSize)
                    let ns = NamespaceState(formatIndex: configuration.lbaFormat <= 1 ? configuration.lbaFormat : 0,
                                            sizeBytes: configuration.namespaceSize, store: .file(store), attached: [],
                                            nguid: makeNGUID(serial: configuration.serialNumber, nsid: nsid, salt: 0))
                    s.namespaces[nsid] = Namespace(nsid: nsid, state: ns)
                }
                s.powerCycles = 0
            }
        } catch let e as EmulatorError {
            close(fd); throw e
        } catch let e as StorageError {
            close(fd); throw EmulatorError("cannot open namespace data in \(directory): \(errnoString(e.errno))")
        } catch {
            close(fd); throw EmulatorError("cannot open \(directory): \(error)")
        }
        s.powerCycles += 1
        if s.savedCounters.count == 6 {
            counters.unitsRead.store(s.savedCounters[0], ordering: .relaxed)
            counters.unitsWritten.store(s.savedCounters[1], ordering: .relaxed)
            counters.hostReads.store(s.savedCounters[2], ordering: .relaxed)
            counters.hostWrites.store(s.savedCounters[3], ordering: .relaxed)
            counters.mediaErrors.store(s.savedCounters[4], ordering: .relaxed)
            s.errorCount = s.savedCounters[5]
        }
        maxNamespaces = s.maxNamespaces
        index = Atomic(Self.firstIndex(&s))
        state = Mutex(s)
        // Mark the state unclean until a clean release, so a crash counts as an unsafe shutdown.
        if let failure = state.withLock({ self.save(&$0, clean: false) }) {
            close(fd)
            throw EmulatorError("cannot write \(statePath): \(errnoString(failure))")
        }
    }

    deinit {
        state.withLock { s in
            for ns in s.namespaces.values { ns.state.withLock { try? $0.store.sync() } }
            _ = save(&s, clean: true)
        }
        if lockFD >= 0 { close(lockFD) }
    }

    static func dataPath(_ directory: String, _ nsid: UInt32) -> String { directory + "/ns-\(nsid).img" }

    /// The namespace `nsid` if it is allocated, found without the subsystem lock; unretained,
    /// and valid as long as the subsystem (see `index`).
    @inline(__always)
    func namespace(_ nsid: UInt32) -> Unmanaged<Namespace>? {
        index.load(ordering: .acquiring)._withUnsafeGuaranteedRef { $0.lookup(nsid) }
    }

    /// Publishes the namespaces of `s` for `namespace(_:)`: call with the subsystem lock held,
    /// after creating or deleting a namespace.
    func publishNamespaces(_ s: inout SubsystemState) {
        let published = NamespaceIndex(s.namespaces)
        s.indexes.append(published)
        index.store(Unmanaged.passUnretained(published), ordering: .releasing)
    }

    /// The first index of a subsystem being initialized, kept in `s`.
    private static func firstIndex(_ s: inout SubsystemState) -> Unmanaged<NamespaceIndex> {
        let first = NamespaceIndex(s.namespaces)
        s.indexes.append(first)
        return Unmanaged.passUnretained(first)
    }

    private static func fresh(_ c: EmulatorConfiguration) -> SubsystemState {
        var slots = [String?](repeating: nil, count: Limits.firmwareSlots)
        slots[0] = c.firmwareRevision
        return SubsystemState(
            serialNumber: c.serialNumber, modelNumber: c.modelNumber, vendorID: c.vendorID,
            subsystemVendorID: c.subsystemVendorID,
            subsystemNQN: c.subsystemNQN ?? "nqn.2026-01.org.nvmegate:emulated:" + c.serialNumber,
            totalCapacity: c.totalCapacity, maxNamespaces: max(1, c.maxNamespaces),
            extendedSelfTestMilliseconds: c.extendedSelfTestMilliseconds,
            firmware: FirmwareState(slots: slots, active: 1, next: nil), createdAt: wallSeconds())
    }

    /// A controller joins: the first time an ID is seen, it is attached to every namespace
    /// that every controller known so far sees (the initial, shared namespaces).
    func join(controllerID: UInt16) throws(EmulatorError) {
        let failure: String? = state.withLock { s in
            if s.openControllers.contains(controllerID) {
                return "controller ID \(controllerID) is already in use on this subsystem"
            }
            s.openControllers.insert(controllerID)
            if !s.knownControllers.contains(controllerID) {
                let known = s.knownControllers
                for ns in s.namespaces.values {
                    ns.state.withLock { n in if known.isSubset(of: n.attached) { n.attached.insert(controllerID) } }
                }
                s.knownControllers.insert(controllerID)
                _ = save(&s, clean: false)
            }
            return nil
        }
        if let failure { throw EmulatorError(failure) }
    }

    func leave(controllerID: UInt16) {
        state.withLock { s in _ = s.openControllers.remove(controllerID) }
    }

    // MARK: Persistence

    /// Writes the state file atomically (no-op in memory). Returns an errno on failure.
    /// Call with the subsystem lock held (`s` is its state).
    @discardableResult
    func save(_ s: inout SubsystemState, clean: Bool = false) -> Int32? {
        guard let directory else { return nil }
        var out = "nvmegate-emulator 1\n"
        out += "serial \(hex(Array(s.serialNumber.utf8)))\n"
        out += "model \(hex(Array(s.modelNumber.utf8)))\n"
        out += "nqn \(hex(Array(s.subsystemNQN.utf8)))\n"
        out += "vid \(s.vendorID) \(s.subsystemVendorID)\n"
        out += "capacity \(s.totalCapacity) \(s.maxNamespaces) \(s.extendedSelfTestMilliseconds)\n"
        out += "created \(s.createdAt)\n"
        out += "clean \(clean ? 1 : 0)\n"
        out += "power \(s.powerCycles) \(s.unsafeShutdowns)\n"
        out += "counters \(counters.unitsRead.load(ordering: .relaxed)) \(counters.unitsWritten.load(ordering: .relaxed)) "
            + "\(counters.hostReads.load(ordering: .relaxed)) \(counters.hostWrites.load(ordering: .relaxed)) "
            + "\(counters.mediaErrors.load(ordering: .relaxed)) \(s.errorCount)\n"
        out += "firmware \(s.firmware.active) \(s.firmware.next ?? 0)\n"
        for (i, slot) in s.firmware.slots.enumerated() {
            if let slot { out += "slot \(i + 1) \(hex(Array(slot.utf8)))\n" }
        }
        for c in s.knownControllers.sorted() { out += "controller \(c)\n" }
        for (c, values) in s.savedFeatures.sorted(by: { $0.key < $1.key }) {
            for (k, v) in values.sorted(by: { $0.key < $1.key }) { out += "feature \(c) \(k) \(v)\n" }
        }
        out += "sanitize \(s.sanitizeProgress) \(s.sanitizeStatus) \(s.sanitizeCDW10)\n"
        for r in s.selfTestResults.reversed() { out += "selftest \(r.code) \(r.result) \(r.powerOnHours) \(r.nsid)\n" }
        for e in s.errorLog.reversed() { out += "error \(e.count) \(e.sqid) \(e.cid) \(e.status) \(e.lba) \(e.nsid)\n" }
        if let r = s.runningSelfTest {
            out += "selftest-running \(r.code) \(r.nsid) \(r.startMilliseconds) \(r.durationMilliseconds)\n"
        }
        for (c, image) in s.pendingFirmware.sorted(by: { $0.key < $1.key }) where !image.isEmpty {
            out += "firmware-image \(c) \(hex(image))\n"
        }
        for (c, list) in s.changedNamespaces.sorted(by: { $0.key < $1.key }) where !list.isEmpty {
            out += "changed \(c) " + list.map(String.init).joined(separator: ",") + "\n"
        }
        for nsid in s.namespaces.keys.sorted() {
            guard let ns = s.namespaces[nsid] else { continue }
            ns.state.withLock { n in
                let attached = n.attached.sorted().map(String.init).joined(separator: ",")
                out += "ns \(nsid) \(n.formatIndex) \(n.sizeBytes) \(hex(n.nguid)) \(attached.isEmpty ? "-" : attached)\n"
                for r in n.uncorrectable.ranges { out += "unc \(nsid) \(r.start) \(r.end)\n" }
                let rv = n.reservation
                if rv.persistThroughPowerLoss {
                    out += "resv \(nsid) \(rv.generation) \(rv.type) \(rv.holder.map { hex($0.bytes) } ?? "-")\n"
                    for r in rv.registrants { out += "reg \(nsid) \(hex(r.host.bytes)) \(r.controllerID) \(r.key)\n" }
                }
            }
        }
        return writeFileAtomically(directory: directory, name: "state", contents: out)
    }

    private static func parse(_ text: String, directory: String, configuration c: EmulatorConfiguration)
        throws -> SubsystemState {
        var s = fresh(c)
        var slots = [String?](repeating: nil, count: Limits.firmwareSlots)
        var lineNumber = 0
        var pendingNS: [(UInt32, NamespaceState)] = []
        var cleanFlag = true
        var counters: [UInt64] = []
        func bad(_ why: String) -> EmulatorError {
            EmulatorError("\(directory)/state line \(lineNumber): \(why)")
        }
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            lineNumber += 1
            let f = line.split(separator: " ").map(String.init)
            guard let key = f.first else { continue }
            func num<T: FixedWidthInteger>(_ i: Int, _: T.Type = T.self) throws -> T {
                guard i < f.count, let v = T(f[i]) else { throw bad("expected a number in field \(i) of \"\(key)\"") }
                return v
            }
            func bytes(_ i: Int) throws -> [UInt8] {
                guard i < f.count, let v = unhex(f[i]) else { throw bad("expected hex in field \(i) of \"\(key)\"") }
                return v
            }
            func text(_ i: Int) throws -> String { String(decoding: try bytes(i), as: UTF8.self) }
            switch key {
            case "nvmegate-emulator": guard f.count > 1, f[1] == "1" else { throw bad("unknown state version") }
            case "serial": s.serialNumber = try text(1)
            case "model": s.modelNumber = try text(1)
            case "nqn": s.subsystemNQN = try text(1)
            case "vid": s.vendorID = try num(1); s.subsystemVendorID = try num(2)
            case "capacity":
                s.totalCapacity = try num(1); s.maxNamespaces = try num(2); s.extendedSelfTestMilliseconds = try num(3)
            case "created": s.createdAt = try num(1)
            case "clean": cleanFlag = try num(1, Int.self) != 0
            case "power": s.powerCycles = try num(1); s.unsafeShutdowns = try num(2)
            case "counters": counters = try (1...6).map { try num($0, UInt64.self) }
            case "firmware":
                s.firmware.active = try num(1)
                let next: Int = try num(2)
                s.firmware.next = next == 0 ? nil : next
            case "slot":
                let i: Int = try num(1)
                guard i >= 1 && i <= slots.count else { throw bad("firmware slot \(i) out of range") }
                slots[i - 1] = try text(2)
            case "controller": s.knownControllers.insert(try num(1))
            case "feature": s.savedFeatures[try num(1), default: [:]][try num(2)] = try num(3)
            case "sanitize": s.sanitizeProgress = try num(1); s.sanitizeStatus = try num(2); s.sanitizeCDW10 = try num(3)
            case "selftest":
                s.addSelfTestResult(SelfTestResult(code: try num(1), result: try num(2), powerOnHours: try num(3),
                                                   nsid: try num(4)))
            case "selftest-running":
                // A start time later than now means the machine rebooted: the test starts over.
                s.runningSelfTest = RunningSelfTest(code: try num(1), nsid: try num(2),
                                                    startMilliseconds: min(try num(3), monotonicMilliseconds()),
                                                    durationMilliseconds: try num(4))
            case "firmware-image": s.pendingFirmware[try num(1)] = try bytes(2)
            case "error":   // oldest first in the file; the log keeps the newest first
                s.errorLog.insert(ErrorEntry(count: try num(1), sqid: try num(2), cid: try num(3), status: try num(4),
                                             lba: try num(5), nsid: try num(6)), at: 0)
            case "changed":
                guard f.count > 2 else { throw bad("changed needs a list") }
                s.changedNamespaces[try num(1)] = f[2].split(separator: ",").compactMap { UInt32($0) }
            case "ns":
                let nsid: UInt32 = try num(1)
                let format: UInt8 = try num(2)
                guard format <= 1 else { throw bad("LBA format \(format) is not 0 or 1") }
                let size: UInt64 = try num(3)
                let nguid = try bytes(4)
                guard f.count > 5 else { throw bad("ns needs an attached list") }
                let attached = Set(f[5].split(separator: ",").compactMap { UInt16($0) })
                let store = try FileStore(path: dataPath(directory, nsid), size: size)
                pendingNS.append((nsid, NamespaceState(formatIndex: format, sizeBytes: size, store: .file(store),
                                                       attached: attached, nguid: nguid)))
            case "unc":
                let nsid: UInt32 = try num(1)
                guard let i = pendingNS.firstIndex(where: { $0.0 == nsid }) else { throw bad("unc before its ns") }
                pendingNS[i].1.uncorrectable.insert(start: try num(2), end: try num(3))
            case "resv":
                let nsid: UInt32 = try num(1)
                guard let i = pendingNS.firstIndex(where: { $0.0 == nsid }) else { throw bad("resv before its ns") }
                pendingNS[i].1.reservation.generation = try num(2)
                pendingNS[i].1.reservation.type = try num(3)
                pendingNS[i].1.reservation.persistThroughPowerLoss = true
                if f.count > 4, f[4] != "-" { pendingNS[i].1.reservation.holder = HostKey(raw: try bytes(4)) }
            case "reg":
                let nsid: UInt32 = try num(1)
                guard let i = pendingNS.firstIndex(where: { $0.0 == nsid }) else { throw bad("reg before its ns") }
                pendingNS[i].1.reservation.registrants.append(
                    Registrant(host: HostKey(raw: try bytes(2)), controllerID: try num(3), key: try num(4)))
            default: throw bad("unknown key \"\(key)\"")
            }
        }
        s.firmware.slots = slots
        if counters.count == 6 {
            // Counters are restored by the caller through `restoreCounters`; stash them.
            s.savedCounters = counters
        }
        if !cleanFlag { s.unsafeShutdowns += 1 }
        for (nsid, n) in pendingNS { s.namespaces[nsid] = Namespace(nsid: nsid, state: n) }
        return s
    }
}

// MARK: File and text helpers

func hex(_ bytes: [UInt8]) -> String {
    let d = Array("0123456789abcdef")
    var s = ""
    for b in bytes { s.append(d[Int(b >> 4)]); s.append(d[Int(b & 15)]) }
    return s.isEmpty ? "-" : s
}

func unhex(_ s: String) -> [UInt8]? {
    if s == "-" { return [] }
    let u = Array(s.utf8)
    guard u.count % 2 == 0 else { return nil }
    func v(_ c: UInt8) -> UInt8? {
        switch c {
        case 48...57: c - 48
        case 97...102: c - 87
        case 65...70: c - 55
        default: nil
        }
    }
    var out: [UInt8] = []
    var i = 0
    while i < u.count {
        guard let hi = v(u[i]), let lo = v(u[i + 1]) else { return nil }
        out.append(hi << 4 | lo)
        i += 2
    }
    return out
}

func errnoString(_ e: Int32) -> String {
    guard let p = strerror(e) else { return "errno \(e)" }
    return String(cString: p)
}

/// The whole file as text, or nil when it does not exist.
func readFile(_ path: String) throws(EmulatorError) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    if fd < 0 {
        if errno == ENOENT { return nil }
        throw EmulatorError("cannot open \(path): \(errnoString(errno))")
    }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 { if errno == EINTR { continue }; throw EmulatorError("cannot read \(path): \(errnoString(errno))") }
        if n == 0 { break }
        bytes += buf[0..<n]
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// Replaces `directory/name` atomically and durably: temporary file, fsync, rename, fsync
/// of the directory. Returns an errno on failure.
func writeFileAtomically(directory: String, name: String, contents: String) -> Int32? {
    let tmp = directory + "/." + name + ".tmp"
    let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { return errno }
    let bytes = Array(contents.utf8)
    var done = 0
    while done < bytes.count {
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + done, $0.count - done) }
        if n < 0 { if errno == EINTR { continue }; let e = errno; close(fd); return e }
        done += n
    }
    if fsync(fd) != 0 { let e = errno; close(fd); return e }
    close(fd)
    if rename(tmp, directory + "/" + name) != 0 { return errno }
    let dfd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    if dfd >= 0 { _ = fsync(dfd); close(dfd) }
    return nil
}

func wallSeconds() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec)
}

func wallMilliseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return UInt64(ts.tv_sec) * 1000 + UInt64(ts.tv_nsec) / 1_000_000
}

func monotonicMilliseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1000 + UInt64(ts.tv_nsec) / 1_000_000
}
