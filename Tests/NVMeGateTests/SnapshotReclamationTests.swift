#if canImport(Glibc)
import Glibc
#endif
import NVMeEmulator
import NVMeGate
import NVMeSpec
import Synchronization
import Testing

/// A controller that holds every command until it is let go, to have commands in flight
/// across reloads on purpose.
final class GatedController: Controller, @unchecked Sendable {
    let identity = ControllerIdentity(model: "gated", firmwareRevision: "1", serialNumber: "G1")
    let log = ScriptedController.qemuLikeLog()
    /// Commands waiting inside `submit`.
    let waiting = Atomic<Int>(0)
    /// While false, commands wait.
    let open = Atomic<Bool>(false)

    func namespaces() -> [NamespaceInfo] { [ScriptedController.namespace1] }
    func effectsLog(for commandSet: CommandSet) -> CommandEffectsLog? { commandSet == .nvm ? log : nil }
    func submit(_ command: borrowing SubmissionEntry, queue: Queue, data: UnsafeMutableRawBufferPointer,
                metadata: UnsafeMutableRawBufferPointer) throws(ControllerError) -> Completion {
        waiting.add(1, ordering: .sequentiallyConsistent)
        while !open.load(ordering: .acquiring) { usleep(200) }
        waiting.subtract(1, ordering: .sequentiallyConsistent)
        return Completion()
    }
    func reset() throws(ControllerError) {}
    func subsystemReset() throws(ControllerError) {}
    func rescan() throws(ControllerError) {}

    /// Waits (up to 10 s) until `count` commands are held.
    func waitUntilHolding(_ count: Int) -> Bool {
        for _ in 0..<50_000 where waiting.load(ordering: .sequentiallyConsistent) < count { usleep(200) }
        return waiting.load(ordering: .sequentiallyConsistent) >= count
    }
}

/// Threads of their own (not the cooperative pool, which the blocking code of other tests
/// running at the same time can starve), each running `body(index)`; `join` collects what
/// they returned.
final class TestThreads: @unchecked Sendable {
    private final class Start {
        let body: @Sendable (Int) -> Int
        let index: Int
        let result: UnsafeMutablePointer<Int>
        init(_ body: @escaping @Sendable (Int) -> Int, _ index: Int, _ result: UnsafeMutablePointer<Int>) {
            self.body = body; self.index = index; self.result = result
        }
    }
    private var threads: [pthread_t] = []
    private let results: UnsafeMutableBufferPointer<Int>

    init(_ count: Int, _ body: @escaping @Sendable (Int) -> Int) {
        results = .allocate(capacity: count)
        results.initialize(repeating: 0)
        for index in 0..<count {
            let context = Unmanaged.passRetained(Start(body, index, results.baseAddress! + index)).toOpaque()
            var thread = pthread_t()
            let created = pthread_create(&thread, nil, { raw in
                let start = Unmanaged<Start>.fromOpaque(raw!).takeRetainedValue()
                start.result.pointee = start.body(start.index)
                return nil
            }, context)
            precondition(created == 0, "pthread_create: \(created)")
            threads.append(thread)
        }
    }

    /// Waits for every thread; what each returned, by index.
    func join() -> [Int] {
        for thread in threads { pthread_join(thread, nil) }
        threads = []
        return Array(results)
    }

    deinit {
        for thread in threads { pthread_join(thread, nil) }
        results.deallocate()
    }
}

/// A policy that differs from Linux's by one Get Log Page, so each reload compiles a new one.
private func monitoring(_ page: UInt8) -> Policy {
    var policy = Policy.kernel
    policy.defaultRules.logPages = [page]
    return policy
}

@Suite("Replaced policies are freed once no command reads them")
struct SnapshotReclamationTests {
    @Test("1,000 reloads with no command running: one snapshot held, each replaced policy freed")
    func idleReloadsFree() {
        let gate = Gate(controller: LoopbackController(), policy: .kernel)
        weak let first = gate.policy
        #expect(first != nil)
        for i in 0..<1000 { gate.reload(monitoring(UInt8(truncatingIfNeeded: i))) }
        #expect(gate.snapshotsHeld == 1)
        #expect(first == nil, "the first policy is still alive after 1,000 reloads")
    }

    @Test("a command held in the controller keeps its policy alive across reloads; freed after it completes")
    func inFlightKeepsItsSnapshot() {
        let controller = GatedController()
        let h = Harness(controller)
        let handle = h.open("nvme0n1", write: true)
        weak let before = h.gate.policy
        let reader = TestThreads(1) { _ in Int(h.io(handle, PassthruBuffer(opcode: 0x02, nsid: 1, cdw10: 0, dataLength: 512))) }
        #expect(controller.waitUntilHolding(1))
        for i in 0..<20 { h.gate.reload(monitoring(UInt8(i))) }
        // The held Read pinned an epoch before the first reload: the policy it was decided
        // under stays, and whatever else the rule cannot free yet.
        #expect(before != nil, "a policy a running command reads was freed")
        #expect(h.gate.snapshotsHeld >= 2)
        #expect(h.gate.snapshotsHeld <= 21)
        controller.open.store(true, ordering: .releasing)
        #expect(reader.join() == [0])
        // A close (or open, or reload) frees what no command reads any more.
        #expect(h.gate.close(handle) == 0)
        #expect(h.gate.snapshotsHeld == 1)
        #expect(before == nil)
    }

    @Test("8 threads submitting on 8 handles while 500 reloads run: every command decided, snapshots freed as they go")
    func reloadsUnderLoad() {
        let h = Harness(LoopbackController())
        let handles = (0..<8).map { _ in h.open("nvme0n1", write: true) }
        let done = DoneFlag()
        let submitters = TestThreads(handles.count) { index in
            var wrong = 0, commands = 0
            let read = PassthruBuffer(opcode: 0x02, nsid: 1, cdw10: 0, dataLength: 512)
            let getLog = PassthruBuffer(opcode: 0x02, cdw10: 0x7F | (127 << 16), dataLength: 512)
            while !done.value.load(ordering: .acquiring) {
                if h.io(handles[index], read) != 0 { wrong += 1 }
                // Refused under every policy here (no handle has capabilities).
                if h.admin(handles[index], getLog) != -EACCES { wrong += 1 }
                commands += 2
            }
            return commands > 0 ? wrong : -1                   // -1: it never ran
        }
        var maxHeld = 0
        for i in 0..<500 {
            h.gate.reload(monitoring(UInt8(i % 64)))
            maxHeld = max(maxHeld, h.gate.snapshotsHeld)
        }
        done.value.store(true, ordering: .releasing)
        #expect(submitters.join() == Array(repeating: 0, count: handles.count))
        // Reclaimed while the threads ran, not only at the end: far fewer than 500 held at once.
        #expect(maxHeld < 250, "\(maxHeld) snapshots held at once")
        _ = h.gate.close(handles[0])
        #expect(h.gate.snapshotsHeld == 1)
    }
}
