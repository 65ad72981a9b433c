import Testing
import NVMeGate
@testable import NVMeEmulator
import NVMeSpec

@Suite struct IOTests {
    @Test func writeReadRoundTripAndValidation() {
        let c = EmulatedController.inMemory()
        var d = (0..<1024).map { UInt8(truncatingIfNeeded: $0 * 7) }
        #expect(io(c, 0x01, slba: 100, cdw12: 1 | 1 << 30, data: &d).status.rawValue == S.success)   // FUA
        let (s, back) = read(c, lba: 100, blocks: 2)
        #expect(s == S.success && back == d)
        #expect(read(c, lba: 102).1.allSatisfy { $0 == 0 })                       // never written
        let nsze = UInt64(1 << 30) / 512
        #expect(read(c, lba: nsze - 1).0 == S.success)
        #expect(read(c, lba: nsze).0 == S.lbaOutOfRange)
        #expect(read(c, lba: nsze - 1, blocks: 2).0 == S.lbaOutOfRange)
        #expect(read(c, lba: UInt64.max).0 == S.lbaOutOfRange)                    // no wrap-around
        #expect(read(c, lba: 0, blocks: 1025).0 == S.invalidField)                // over MDTS (512 KiB)
        #expect(read(c, lba: 0, nsid: 0).0 == S.invalidNamespace)
        #expect(read(c, lba: 0, nsid: 2).0 == S.invalidNamespace)                 // not allocated
        #expect(read(c, lba: 0, nsid: 0xFFFF_FFFF).0 == S.invalidNamespace)
        #expect(io(c, 0x7C).status.rawValue == S.invalidOpcode)
        var fused = [UInt8](repeating: 0, count: 512)
        #expect(exec(c, .io, SubmissionQueueEntry(opcode: 0x02, flags: 1, nsid: 1), &fused).status.rawValue == 0x0002)
        #expect(io(c, 0x00).status.rawValue == S.success)                         // Flush
        #expect(io(c, 0x00, nsid: 0xFFFF_FFFF).status.rawValue == S.success)      // broadcast Flush
    }

    @Test func bufferTooSmallTouchesNothingOutside() {
        let c = EmulatedController.inMemory()
        _ = write(c, lba: 0, blocks: 4, byte: 0x5A)
        var big = [UInt8](repeating: 0xC3, count: 4096)
        let status = big.withUnsafeMutableBytes { all -> UInt16 in
            let small = UnsafeMutableRawBufferPointer(rebasing: all[0..<1000])   // 2 blocks need 1024
            return SubmissionQueueEntry(opcode: 0x02, nsid: 1, cdw12: 1).withEntry { e in
                try! c.submit(e, queue: .io, data: small, metadata: UnsafeMutableRawBufferPointer(start: nil, count: 0))
            }.status.rawValue
        }
        #expect(status == S.dataTransferError)
        #expect(big.allSatisfy { $0 == 0xC3 })
        for (op, cdw12) in [(UInt8(0x01), UInt32(1)), (0x05, 1), (0x09, 0), (0x19, 0)] {
            var tiny = [UInt8](repeating: 0, count: 4)
            let s = io(c, op, slba: 0, cdw12: cdw12, cdw10: op == 0x09 ? 3 : nil, cdw11: op == 0x09 ? 4 : nil, data: &tiny)
            #expect(s.status.rawValue == S.dataTransferError, "opcode \(op)")
        }
        #expect(read(c, lba: 0).1.allSatisfy { $0 == 0x5A })
    }

    @Test func writeUncorrectableUntilRewritten() {
        let c = EmulatedController.inMemory()
        _ = write(c, lba: 10, blocks: 4, byte: 1)
        #expect(io(c, 0x04, slba: 11, cdw12: 1).status.rawValue == S.success)    // LBAs 11, 12
        #expect(read(c, lba: 10).0 == S.success)
        #expect(read(c, lba: 10, blocks: 2).0 == S.unrecoveredRead)
        #expect(read(c, lba: 12).0 == S.unrecoveredRead)
        #expect(io(c, 0x0C, slba: 12).status.rawValue == S.unrecoveredRead)      // Verify
        #expect(write(c, lba: 11, byte: 9) == S.success)
        #expect(read(c, lba: 11).0 == S.success)
        #expect(read(c, lba: 12).0 == S.unrecoveredRead)
        #expect(io(c, 0x08, slba: 12).status.rawValue == S.success)              // Write Zeroes clears it
        #expect(read(c, lba: 12) == (S.success, [UInt8](repeating: 0, count: 512)))
        #expect(le64(getLog(c, lid: 2, length: 512).1, 160) == 4)               // media errors: 3 reads, 1 verify
    }

    @Test func compareMatchesAndFails() {
        let c = EmulatedController.inMemory()
        _ = write(c, lba: 5, blocks: 2, byte: 0x42)
        var same = [UInt8](repeating: 0x42, count: 1024)
        #expect(io(c, 0x05, slba: 5, cdw12: 1, data: &same).status.rawValue == S.success)
        var other = same; other[1023] = 0
        #expect(io(c, 0x05, slba: 5, cdw12: 1, data: &other).status.rawValue == S.compareFailure)
    }

    @Test func datasetManagementDeallocateReadsZeroes() {
        let c = EmulatedController.inMemory()
        _ = write(c, lba: 0, blocks: 16, byte: 0x77)
        var ranges = [UInt8](repeating: 0, count: 32)
        put32(&ranges, 4, 4); put64(&ranges, 8, 2)          // LBAs 2...5
        put32(&ranges, 20, 1); put64(&ranges, 24, 10)       // LBA 10
        #expect(io(c, 0x09, cdw10: 1, cdw11: 0x4, data: &ranges).status.rawValue == S.success)
        let (_, all) = read(c, lba: 0, blocks: 16)
        for lba in 0..<16 {
            let zero = (2...5).contains(lba) || lba == 10
            #expect(all[(lba * 512)..<(lba * 512 + 512)].allSatisfy { $0 == (zero ? 0 : 0x77) }, "LBA \(lba)")
        }
        var bad = [UInt8](repeating: 0, count: 16)
        put32(&bad, 4, 8); put64(&bad, 8, UInt64(1 << 30) / 512 - 4)
        #expect(io(c, 0x09, cdw10: 0, cdw11: 0x4, data: &bad).status.rawValue == S.lbaOutOfRange)
        #expect(io(c, 0x08, slba: 0, cdw12: 0).status.rawValue == S.success)     // Write Zeroes
        #expect(read(c, lba: 0).1.allSatisfy { $0 == 0 })
    }

    @Test func verifyAndCopy() {
        let c = EmulatedController.inMemory()
        _ = write(c, lba: 0, blocks: 2, byte: 0xA1)
        _ = write(c, lba: 8, blocks: 1, byte: 0xB2)
        #expect(io(c, 0x0C, slba: 0, cdw12: 1).status.rawValue == S.success)
        #expect(io(c, 0x0C, slba: 0, cdw12: 1024).status.rawValue == S.invalidField)   // over VSL
        var desc = [UInt8](repeating: 0, count: 64)
        put64(&desc, 8, 0); put16(&desc, 16, 1)             // LBAs 0-1
        put64(&desc, 40, 8); put16(&desc, 48, 0)            // LBA 8
        #expect(io(c, 0x19, slba: 100, cdw12: 1, data: &desc).status.rawValue == S.success)
        let (_, got) = read(c, lba: 100, blocks: 3)
        #expect(got[0..<1024].allSatisfy { $0 == 0xA1 } && got[1024...].allSatisfy { $0 == 0xB2 })
        #expect(io(c, 0x19, slba: 100, cdw12: 1 | 1 << 8, data: &desc).status.rawValue == S.invalidField)  // format 1
        #expect(io(c, 0x19, slba: UInt64(1 << 30) / 512 - 1, cdw12: 1, data: &desc).status.rawValue == S.lbaOutOfRange)
    }

    @Test func sparseOneTebibyteNamespace() {
        let c = EmulatedController.inMemory(.init(namespaceSize: 1 << 40))
        let last = UInt64(1 << 40) / 512 - 1
        #expect(write(c, lba: last, byte: 3) == S.success)
        #expect(write(c, lba: 0, byte: 4) == S.success)
        #expect(read(c, lba: last).1.allSatisfy { $0 == 3 })
        let allocated = c.subsystem.state.withLock { s in
            s.namespaces[1]!.state.withLock { n -> Int in
                guard case .memory(let store) = n.store else { return -1 }
                return store.allocatedBytes
            }
        }
        #expect(allocated == 8192)
    }

    @Test func concurrentSubmitters() async {
        let c = EmulatedController.inMemory()
        await withTaskGroup(of: Void.self) { group in
            for t in 0..<4 {
                group.addTask {
                    for i in 0..<200 { _ = write(c, lba: UInt64(t * 1000 + i), byte: UInt8(t + 1)) }
                }
            }
        }
        for t in 0..<4 {
            let (s, d) = read(c, lba: UInt64(t * 1000), blocks: 200)
            #expect(s == S.success && d.allSatisfy { $0 == UInt8(t + 1) })
        }
        #expect(le64(getLog(c, lid: 2, length: 512).1, 80) == 800)
    }

    @Test func mbrPartitionsBecomeNodes() {
        let c = EmulatedController.inMemory()
        var mbr = [UInt8](repeating: 0, count: 512)
        mbr[446 + 4] = 0x83; put32(&mbr, 446 + 8, 2048); put32(&mbr, 446 + 12, 4096)
        mbr[446 + 32 + 4] = 0x83; put32(&mbr, 446 + 32 + 8, 8192); put32(&mbr, 446 + 32 + 12, UInt32.max)  // truncated
        mbr[510] = 0x55; mbr[511] = 0xAA
        #expect(io(c, 0x01, slba: 0, data: &mbr).status.rawValue == S.success)
        let nsze = UInt64(1 << 30) / 512
        #expect(c.namespaces().first?.partitions == [LBARange(start: 2048, count: 4096), LBARange(start: 0, count: 0),
                                                     LBARange(start: 8192, count: nsze - 8192)])
    }
}
