#if canImport(Glibc)
import Glibc
#endif

/// A lock around `State` that ThreadSanitizer understands: a pthread mutex. For state touched
/// at open, close, reload and rescan, never per command. (Synchronization.Mutex hands a
/// contended lock over inside the kernel, where ThreadSanitizer cannot see it, so whatever it
/// guards looks raced under the sanitizer as soon as two threads contend for it.)
package final class Lock<State>: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private var state: State

    package init(_ state: State) {
        self.state = state
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// Runs `body` with the state, the lock held.
    package func withLock<Result, Failure: Error>(_ body: (inout State) throws(Failure) -> Result) throws(Failure) -> Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&state)
    }
}
