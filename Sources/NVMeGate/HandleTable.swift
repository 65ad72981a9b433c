import Atomics
import NVMeSpec

/// A handle as the table returns it: the decision context plus what the front end needs.
/// The context's profile and tenant come from the policy snapshot, not from the table.
@frozen
public struct HandleState: Sendable, BitwiseCopyable {
    public var context: HandleContext
    public var uid: UInt32
    public var gid: UInt32
    public var lbaDataSize: UInt32
    public var metadataSize: UInt32
    /// The handle's namespace (or partition) was deleted, detached or replaced: I/O through
    /// it is refused (ENODEV), as Linux refuses it on a removed namespace's node.
    public var namespaceGone = false
}

/// Fixed-capacity table of open handles, read without a lock.
///
/// Each slot is a few atomic words guarded by a sequence word (a seqlock): readers load the
/// sequence, the fields, then the sequence again, and treat any change as a closed handle.
/// Opening and closing are rare and serialised by the gate's mutex.
final class HandleTable: @unchecked Sendable {
    static let wordsPerSlot = 7
    let capacity: Int
    let words: UnsafeMutablePointer<UnsafeAtomic<UInt64>.Storage>

    init(capacity: Int) {
        self.capacity = capacity
        words = .allocate(capacity: capacity * Self.wordsPerSlot)
        for i in 0..<capacity * Self.wordsPerSlot { (words + i).initialize(to: .init(0)) }
    }

    deinit {
        for i in 0..<capacity * Self.wordsPerSlot { _ = (words + i).move() }
        words.deallocate()
    }

    @inline(__always)
    func word(_ slot: Int, _ index: Int) -> UnsafeAtomic<UInt64> {
        UnsafeAtomic(at: words + (slot &* Self.wordsPerSlot &+ index))
    }

    /// The state of an open handle, or nil if `handle` is out of range or not open.
    @inline(__always)
    func read(_ handle: Int32) -> HandleState? {
        let slot = Int(handle)
        guard slot >= 0 && slot < capacity else { return nil }
        let sequence = word(slot, 0).load(ordering: .acquiring)
        guard sequence & 1 == 1 else { return nil }
        let w1 = word(slot, 1).load(ordering: .relaxed)
        let caps = word(slot, 2).load(ordering: .relaxed)
        let ids = word(slot, 3).load(ordering: .relaxed)
        let format = word(slot, 4).load(ordering: .relaxed)
        let partitionStart = word(slot, 5).load(ordering: .relaxed)
        let partitionCount = word(slot, 6).load(ordering: .relaxed)
        atomicMemoryFence(ordering: .acquiring)
        guard word(slot, 0).load(ordering: .relaxed) == sequence else { return nil }
        let context = HandleContext(
            kind: NodeKind(rawValue: UInt8(truncatingIfNeeded: w1 & 0xF)) ?? .controller,
            writable: w1 & 0x10 != 0,
            commandSet: CommandSet(rawValue: UInt8(truncatingIfNeeded: w1 >> 8)),
            nsid: UInt32(truncatingIfNeeded: w1 >> 32),
            capabilities: Capabilities(rawValue: caps),
            partition: LBARange(start: partitionStart, count: partitionCount))
        return HandleState(context: context, uid: UInt32(truncatingIfNeeded: ids), gid: UInt32(truncatingIfNeeded: ids >> 32),
                           lbaDataSize: UInt32(truncatingIfNeeded: format), metadataSize: UInt32(truncatingIfNeeded: format >> 32),
                           namespaceGone: w1 & Self.goneBit != 0)
    }

    /// A free slot, or nil when the table is full. Caller holds the gate's mutex, and
    /// fills the slot with `insert` before releasing it.
    func freeSlot() -> Int32? {
        for slot in 0..<capacity where word(slot, 0).load(ordering: .relaxed) & 1 == 0 { return Int32(slot) }
        return nil
    }

    /// Opens `slot` (from `freeSlot`) with `state`. Caller holds the gate's mutex.
    func insert(_ state: HandleState, at handle: Int32) {
        let slot = Int(handle)
        let sequence = word(slot, 0).load(ordering: .relaxed)
        // Pairs with the reader's acquire fence: a reader that sees any field written
        // below also sees the sequence that closed this slot, and rejects what it read.
        atomicMemoryFence(ordering: .releasing)
        let c = state.context
        let w1 = UInt64(c.kind.rawValue) | (c.writable ? 0x10 : 0) | UInt64(c.commandSet.rawValue) << 8
            | UInt64(c.nsid) << 32
        word(slot, 1).store(w1, ordering: .relaxed)
        word(slot, 2).store(c.capabilities.rawValue, ordering: .relaxed)
        word(slot, 3).store(UInt64(state.uid) | UInt64(state.gid) << 32, ordering: .relaxed)
        word(slot, 4).store(UInt64(state.lbaDataSize) | UInt64(state.metadataSize) << 32, ordering: .relaxed)
        word(slot, 5).store(c.partition.start, ordering: .relaxed)
        word(slot, 6).store(c.partition.count, ordering: .relaxed)
        word(slot, 0).store(sequence &+ 1, ordering: .releasing)
    }

    /// Word 1's bit for `HandleState.namespaceGone` (a literal: no lazy initialisation on reads).
    static var goneBit: UInt64 { 1 << 16 }

    /// Gives open `handle` its namespace's current format: one word, so a reader sees the
    /// old format or the new one. Caller holds the gate's mutex.
    func setFormat(_ handle: Int32, lbaDataSize: UInt32, metadataSize: UInt32) {
        word(Int(handle), 4).store(UInt64(lbaDataSize) | UInt64(metadataSize) << 32, ordering: .relaxed)
    }

    /// Marks open `handle`'s namespace gone, for good. Caller holds the gate's mutex.
    func markGone(_ handle: Int32) {
        let w1 = word(Int(handle), 1)
        w1.store(w1.load(ordering: .relaxed) | Self.goneBit, ordering: .relaxed)
    }

    /// Closes `handle`; false if it was not open. Caller holds the gate's mutex.
    func remove(_ handle: Int32) -> Bool {
        let slot = Int(handle)
        guard slot >= 0 && slot < capacity else { return false }
        let sequence = word(slot, 0).load(ordering: .relaxed)
        guard sequence & 1 == 1 else { return false }
        word(slot, 0).store(sequence &+ 1, ordering: .releasing)
        return true
    }
}
