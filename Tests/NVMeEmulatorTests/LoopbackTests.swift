import Testing
import NVMeGate
@testable import NVMeEmulator
import NVMeSpec

@Suite struct LoopbackTests {
    /// Identify Controller ONCS advertises exactly the optional NVM commands the loopback
    /// controller completes: a host that trusts ONCS neither misses one nor sends one that
    /// fails with Invalid Command Opcode.
    @Test func oncsAdvertisesWhatItAccepts() throws {
        let c = LoopbackController()
        var page = [UInt8](repeating: 0, count: 4096)
        let identify = try submit(c, .admin, SubmissionQueueEntry(opcode: 0x06, cdw10: 1), &page)
        #expect(identify.status.isSuccess)
        let oncs = UInt16(page[520]) | UInt16(page[521]) << 8
        // ONCS bit → the command it advertises (Reservations: Register stands for the four).
        let commands: [(bit: Int, opcode: UInt8)] = [(0, 0x05), (1, 0x04), (2, 0x09), (3, 0x08), (5, 0x0D), (7, 0x0C), (8, 0x19)]
        for (bit, opcode) in commands {
            var data = [UInt8](repeating: 0, count: 4096)
            let status = try submit(c, .io, SubmissionQueueEntry(opcode: opcode, nsid: 1), &data).status
            let accepted = status.isSuccess && c.effectsLog(for: .nvm)![.io, opcode].isSupported
            #expect((oncs >> bit & 1 == 1) == accepted, "ONCS bit \(bit), opcode \(hexByte(opcode))")
        }
        // Save/Select (bit 4) and Timestamp (bit 6) are features it does not keep; nothing above bit 8 exists here.
        #expect(oncs & (1 << 4 | 1 << 6) == 0 && oncs >> 9 == 0)
        #expect(oncs == 0x018F)
    }
}

private func submit(_ c: LoopbackController, _ queue: Queue, _ sqe: SubmissionQueueEntry,
                    _ buffer: inout [UInt8]) throws -> Completion {
    try buffer.withUnsafeMutableBytes { b in
        try sqe.withEntry { e in
            try c.submit(e, queue: queue, data: b, metadata: UnsafeMutableRawBufferPointer(start: nil, count: 0))
        }
    }
}
