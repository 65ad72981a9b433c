import NVMeEmulator
import NVMeGate
import NVMeSpec
import Testing

/// The README's Swift example, line for line, so it stays true.
@Test("README: the 30-second Swift example decides as it says")
func readmeExample() {
    let gate = Gate(controller: LoopbackController())
    let handle = gate.open(node: "nvme0n1", writable: false, caller: Caller(uid: 1000, gid: 1000))
    let write = SubmissionQueueEntry(opcode: IOOpcode.write.rawValue, nsid: 1)
    let reason = write.withEntry { gate.policy.decide($0, queue: .io, handle: gate.handleState(handle)!.context) }
    #expect(reason.code == "needs-write-open")
    #expect(reason.errno == 13)
    let read = SubmissionQueueEntry(opcode: IOOpcode.read.rawValue, nsid: 1)
    let decider = Decider(gate.policy, handle: gate.handleState(handle)!.context, queue: .io)
    let codes = [read, write].map { sqe in sqe.withEntry { decider.decide($0).code } }
    #expect(codes == ["allowed", "needs-write-open"])
}
