import Atomics

/// Epoch-based reclamation for the gate's policy snapshots, so that a long-running gate that
/// is reloaded often keeps only the snapshots that a command may still be reading.
///
/// **Readers.** A command *pins* the current epoch before it loads the snapshot pointer, and
/// unpins it when it is done. A pin is one atomic increment on a counter and one atomic
/// decrement on the same counter. The counters are striped by handle, one cache line per
/// stripe, so commands on different handles do not share a line. There is no lock and no
/// allocation. A reader that pins an epoch and then sees the epoch move unpins and tries
/// again, so every pin is of an epoch that was current after the counter was raised.
///
/// **Writers.** Everything below runs under the gate's lock (reload, open, close) and never
/// waits:
/// - the epoch moves from E to E + 1 only when no reader is pinned in E - 1;
/// - a snapshot replaced while the epoch was G is freed once the epoch reaches G + 2.
///
/// A reader that holds such a snapshot pinned some epoch r ≤ G, and the move from r + 1 to
/// r + 2 needs its counter to be zero. A command that runs long (a real device's timeout)
/// delays freeing, never a reload.
final class SnapshotEpochs: @unchecked Sendable {
    /// Handles map to this many stripes (a power of two).
    static let stripes = 16
    /// Counters per stripe: three epochs in use, padded to a 64-byte cache line.
    static let stride = 8

    private let epoch: UnsafeAtomic<Int>
    private let counters: UnsafeMutablePointer<UnsafeAtomic<Int>.Storage>

    init() {
        epoch = .create(0)
        counters = .allocate(capacity: Self.stripes * Self.stride)
        counters.initialize(repeating: .init(0), count: Self.stripes * Self.stride)
    }

    deinit {
        epoch.destroy()
        counters.deinitialize(count: Self.stripes * Self.stride)
        counters.deallocate()
    }

    /// The epoch now: snapshots are retired with it.
    var current: Int { epoch.load(ordering: .sequentiallyConsistent) }

    /// Pins the current epoch for a reader on `handle`'s stripe. Returns the counter to pass
    /// to `unpin`. Load the snapshot pointer only after this returns.
    @inline(__always)
    func pin(_ handle: Int32) -> Int {
        let stripe = Int(truncatingIfNeeded: handle) & (Self.stripes - 1)
        while true {
            let e = epoch.load(ordering: .sequentiallyConsistent)
            let counter = stripe &* Self.stride &+ e % 3
            UnsafeAtomic<Int>(at: counters + counter).wrappingIncrement(ordering: .sequentiallyConsistent)
            if epoch.load(ordering: .sequentiallyConsistent) == e { return counter }
            UnsafeAtomic<Int>(at: counters + counter).wrappingDecrement(ordering: .releasing)
        }
    }

    /// Ends a pin: whatever the reader did with the snapshot happens before it is freed.
    @inline(__always)
    func unpin(_ counter: Int) {
        UnsafeAtomic<Int>(at: counters + counter).wrappingDecrement(ordering: .releasing)
    }

    /// Moves the epoch on as far as the pinned readers allow, at most `steps` times, and
    /// returns the epoch. Under the gate's lock only.
    func advance(steps: Int = 2) -> Int {
        var e = epoch.load(ordering: .sequentiallyConsistent)
        for _ in 0..<steps {
            let previous = (e + 2) % 3                          // (e - 1) mod 3
            let pinned = (0..<Self.stripes).contains { stripe in
                UnsafeAtomic<Int>(at: counters + stripe * Self.stride + previous).load(ordering: .sequentiallyConsistent) != 0
            }
            if pinned { break }
            e += 1
            epoch.store(e, ordering: .sequentiallyConsistent)
        }
        return e
    }

    /// Whether a snapshot retired at epoch `retired` can be freed once the epoch is `now`.
    static func reclaimable(retired: Int, now: Int) -> Bool { now >= retired + 2 }
}
