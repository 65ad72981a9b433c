#if canImport(Glibc)
import Glibc
#endif

/// Runs `body` on a new detached thread; false (and `body` never runs) when no thread
/// could be created.
func spawnThread(_ body: @escaping @Sendable () -> Void) -> Bool {
    final class Start { let body: @Sendable () -> Void; init(_ body: @escaping @Sendable () -> Void) { self.body = body } }
    let context = Unmanaged.passRetained(Start(body)).toOpaque()
    var thread = pthread_t()
    let created = pthread_create(&thread, nil, { raw in
        guard let raw else { return nil }
        Unmanaged<Start>.fromOpaque(raw).takeRetainedValue().body()
        return nil
    }, context)
    guard created == 0 else {
        Unmanaged<Start>.fromOpaque(context).release()
        return false
    }
    pthread_detach(thread)
    return true
}

/// Nanoseconds on the monotonic clock.
func monotonicNanoseconds() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
}

/// The broker's running threads (its accept loop and one per connection) and connections
/// per uid, with a condition to wait on until every thread has ended.
final class Activity: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var threads = 0
    private var connections = 0
    private var perUID: [UInt32: Int] = [:]

    init() {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
        condition.deallocate()
    }

    private func locked<T>(_ body: () -> T) -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return body()
    }

    /// Counts a thread about to start.
    func threadStarting() { locked { threads += 1 } }

    /// Counts a thread that ended (or never started), waking `waitForThreads` at the last.
    func threadEnded() {
        locked {
            threads -= 1
            if threads == 0 { pthread_cond_broadcast(condition) }
        }
    }

    /// Blocks until no thread is running.
    func waitForThreads() {
        locked { while threads > 0 { pthread_cond_wait(condition, mutex) } }
    }

    /// Admits a connection of `uid` if both limits allow it: nil, or the limit it is over.
    func admit(uid: UInt32, total: Int, perUID limit: Int) -> ConnectionLimit? {
        locked {
            if connections >= total { return .total }
            if perUID[uid, default: 0] >= limit { return .perUID }
            connections += 1
            perUID[uid, default: 0] += 1
            return nil
        }
    }

    /// Releases a connection `admit` admitted.
    func release(uid: UInt32) {
        locked {
            connections -= 1
            let left = perUID[uid, default: 1] - 1
            perUID[uid] = left == 0 ? nil : left
        }
    }
}

/// Which connection limit a refused connection was over.
enum ConnectionLimit: String {
    case total
    case perUID = "per-uid"
}
