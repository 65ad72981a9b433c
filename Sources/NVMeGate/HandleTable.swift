import Atomics
import NVMeSpec

/// A handle as the table returns it: the decision context plus what the front end needs.
@frozen
public struct HandleState: Sendable, BitwiseCopyable {
    public var context: HandleContext
    public var uid: UInt32
    public var gid: UInt32
    public var lbaDataSize: UInt32
    public var metadataSize: UInt32
}

/// Fixed-capacity table of open handles, read without a lock.
///
/// Each slot is a few atomic words guarded by a sequence word (a seqlock): readers load the
/// sequence, the fields, then the sequence again, and treat any change as a closed handle.
/// Opening and closing are rare and serialised by the gate's mutex.
final class HandleTable: @unchecked Sendable {
    static let wordsPerSlot = 5
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
        atomicMemoryFence(ordering: .acquiring)
        guard word(slot, 0).load(ordering: .relaxed) == sequence else { return nil }
        let context = HandleContext(
            kind: NodeKind(rawValue: UInt8(truncatingIfNeeded: w1 & 0xF)) ?? .controller,
            writable: w1 & 0x10 != 0,
            commandSet: CommandSet(rawValue: UInt8(truncatingIfNeeded: w1 >> 8)),
            nsid: UInt32(truncatingIfNeeded: w1 >> 32),
            profile: UInt16(truncatingIfNeeded: w1 >> 16),
            capabilities: Capabilities(rawValue: caps))
        return HandleState(context: context, uid: UInt32(truncatingIfNeeded: ids), gid: UInt32(truncatingIfNeeded: ids >> 32),
                           lbaDataSize: UInt32(truncatingIfNeeded: format), metadataSize: UInt32(truncatingIfNeeded: format >> 32))
    }

    /// Claims a free slot for `state`; nil when the table is full. Caller holds the gate's mutex.
    func insert(_ state: HandleState) -> Int32? {
        for slot in 0..<capacity {
            let sequence = word(slot, 0).load(ordering: .relaxed)
            guard sequence & 1 == 0 else { continue }
            // Pairs with the reader's acquire fence: a reader that sees any field written
            // below also sees the sequence that closed this slot, and rejects what it read.
            atomicMemoryFence(ordering: .releasing)
            let c = state.context
            let w1 = UInt64(c.kind.rawValue) | (c.writable ? 0x10 : 0) | UInt64(c.commandSet.rawValue) << 8
                | UInt64(c.profile) << 16 | UInt64(c.nsid) << 32
            word(slot, 1).store(w1, ordering: .relaxed)
            word(slot, 2).store(c.capabilities.rawValue, ordering: .relaxed)
            word(slot, 3).store(UInt64(state.uid) | UInt64(state.gid) << 32, ordering: .relaxed)
            word(slot, 4).store(UInt64(state.lbaDataSize) | UInt64(state.metadataSize) << 32, ordering: .relaxed)
            word(slot, 0).store(sequence &+ 1, ordering: .releasing)
            return Int32(slot)
        }
        return nil
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
