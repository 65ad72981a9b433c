import Glibc
import Testing
import NVMeGate
@testable import NVMeEmulator
import NVMeSpec

private func createNamespace(_ c: EmulatedController, blocks: UInt64, flbas: UInt8, ncap: UInt64? = nil) -> Completion {
    var d = [UInt8](repeating: 0, count: 4096)
    put64(&d, 0, blocks); put64(&d, 8, ncap ?? blocks); d[26] = flbas
    return admin(c, 0x0D, 0, data: &d)
}

private func attach(_ c: EmulatedController, nsid: UInt32, _ ids: [UInt16], detach: Bool = false) -> UInt16 {
    var d = [UInt8](repeating: 0, count: 4096)
    put16(&d, 0, UInt16(ids.count))
    for (i, id) in ids.enumerated() { put16(&d, 2 + 2 * i, id) }
    return admin(c, 0x15, nsid: nsid, detach ? 1 : 0, data: &d).status.rawValue
}

@Suite struct ManagementTests {
    @Test func createAttachFormatDelete() {
        let c = EmulatedController.inMemory()
        let created = createNamespace(c, blocks: 1000, flbas: 1)
        #expect(created.status.rawValue == S.success && created.dw0 == 2)
        #expect(identify(c, cns: 0, nsid: 2).1.allSatisfy { $0 == 0 })            // allocated, inactive
        #expect(le64(identify(c, cns: 0x11, nsid: 2).1, 0) == 1000)               // allocated namespace
        #expect(le32(identify(c, cns: 0x10).1, 4) == 2)                           // allocated list
        #expect(le32(identify(c, cns: 2).1, 4) == 0)                              // not in the active list
        #expect(write(c, lba: 0, byte: 1, nsid: 2, size: 4096) == S.invalidNamespace)
        #expect(attach(c, nsid: 2, [1]) == S.success)
        #expect(attach(c, nsid: 2, [1]) == S.alreadyAttached)
        #expect(attach(c, nsid: 2, [9]) == S.controllerListInvalid)
        #expect(attach(c, nsid: 2, []) == S.controllerListInvalid)
        #expect(attach(c, nsid: 0, [1]) == S.invalidNamespace)                   // invalid NSID, as QEMU
        #expect(attach(c, nsid: 9, [1]) == S.invalidField)                       // valid, unallocated, as QEMU
        #expect(c.namespaces().map(\.nsid) == [1, 2])
        #expect(c.namespaces()[1].lbaDataSize == 4096 && c.namespaces()[1].blockCount == 1000)
        let changed = getLog(c, lid: 4, length: 4096)
        #expect(changed.0 == S.success && le32(changed.1, 0) == 2)
        #expect(le32(getLog(c, lid: 4, length: 4096).1, 0) == 0)                 // reading cleared it
        #expect(admin(c, 0x0C).status.rawValue == 0x4105)                         // notices not enabled
        #expect(write(c, lba: 999, byte: 5, nsid: 2, size: 4096) == S.success)
        #expect(write(c, lba: 1000, byte: 5, nsid: 2, size: 4096) == S.lbaOutOfRange)
        // Format NVM to LBA format 0 (512 B): same bytes, 8x the blocks, data erased.
        #expect(admin(c, 0x80, nsid: 2, 0 | 1 << 9).status.rawValue == S.success)
        #expect(le64(identify(c, cns: 0, nsid: 2).1, 0) == 8000 && identify(c, cns: 0, nsid: 2).1[26] == 0)
        #expect(read(c, lba: 7999, nsid: 2).1.allSatisfy { $0 == 0 })
        #expect(admin(c, 0x80, nsid: 2, 2).status.rawValue == S.invalidFormat)
        #expect(admin(c, 0x80, nsid: 2, 1 << 5).status.rawValue == S.invalidFormat)   // PI
        #expect(admin(c, 0x80, nsid: 2, 3 << 9).status.rawValue == S.invalidField)    // SES 3
        #expect(admin(c, 0x80, nsid: 7, 0).status.rawValue == S.invalidNamespace)
        #expect(attach(c, nsid: 2, [1], detach: true) == S.success)
        #expect(attach(c, nsid: 2, [1], detach: true) == S.notAttached)
        #expect(read(c, lba: 0, nsid: 2).0 == S.invalidNamespace)
        #expect(admin(c, 0x0D, nsid: 2, 1).status.rawValue == S.success)            // delete
        #expect(admin(c, 0x0D, nsid: 2, 1).status.rawValue == S.invalidNamespace)
        #expect(le32(identify(c, cns: 0x10).1, 4) == 0)
    }

    @Test func createValidation() {
        let c = EmulatedController.inMemory(.init(totalCapacity: 2 << 30, maxNamespaces: 2))
        #expect(createNamespace(c, blocks: 100, flbas: 2).status.rawValue == S.invalidFormat)
        #expect(createNamespace(c, blocks: 100, flbas: 0, ncap: 50).status.rawValue == S.invalidField)
        #expect(createNamespace(c, blocks: 0, flbas: 0).status.rawValue == S.invalidField)
        #expect(createNamespace(c, blocks: (2 << 30) / 512, flbas: 0).status.rawValue == 0x4115)   // insufficient capacity
        #expect(createNamespace(c, blocks: 100, flbas: 0).dw0 == 2)
        #expect(createNamespace(c, blocks: 100, flbas: 0).status.rawValue == 0x4116)   // NSID unavailable
        #expect(admin(c, 0x0D, nsid: 0xFFFF_FFFF, 1).status.rawValue == S.success)   // delete all
        #expect(c.namespaces().isEmpty)
    }

    @Test func asyncEventsForNamespaceChanges() {
        let c = EmulatedController.inMemory()
        #expect(admin(c, 0x0C).status.rawValue == 0x4105)                 // nothing pending
        #expect(admin(c, 0x09, 0x0B, 1 << 8).status.rawValue == S.success)   // enable namespace attribute notices
        let nsid = createNamespace(c, blocks: 8, flbas: 0).dw0
        #expect(attach(c, nsid: nsid, [1]) == S.success)
        let event = admin(c, 0x0C)
        #expect(event.status.rawValue == S.success && event.dw0 == 0x0004_0002)
        #expect(admin(c, 0x0C).status.rawValue == 0x4105)
    }

    @Test func sanitizeErasesAndReports() {
        let c = EmulatedController.inMemory()
        _ = write(c, lba: 0, blocks: 4, byte: 0x99)
        #expect(io(c, 0x04, slba: 8).status.rawValue == S.success)
        #expect(le16(getLog(c, lid: 0x81, length: 512).1, 2) == 0)       // never sanitized
        #expect(admin(c, 0x84, 2).status.rawValue == S.success)          // Block Erase
        #expect(read(c, lba: 0, blocks: 4).1.allSatisfy { $0 == 0 })
        #expect(read(c, lba: 8).0 == S.success)                           // uncorrectable gone
        let log = getLog(c, lid: 0x81, length: 512).1
        #expect(le16(log, 0) == 0xFFFF && le16(log, 2) == 0x101 && le32(log, 4) == 2)
        #expect(admin(c, 0x84, 3 | 1 << 4, 0xDDCC_BBAA).status.rawValue == S.success)   // Overwrite, 1 pass
        #expect(read(c, lba: 3).1 == Array(repeating: [0xAA, 0xBB, 0xCC, 0xDD] as [UInt8], count: 128).flatMap { $0 })
        #expect(le16(getLog(c, lid: 0x81, length: 512).1, 2) == 0x101 | 1 << 3)
        #expect(write(c, lba: 3, byte: 1) == S.success && read(c, lba: 4).1[0] == 0xAA)
        #expect(admin(c, 0x84, 4).status.rawValue == S.success)          // Crypto Erase
        #expect(read(c, lba: 4).1.allSatisfy { $0 == 0 })
        #expect(admin(c, 0x84, 5).status.rawValue == S.invalidField)
    }

    @Test func firmwareSlotsAndActivation() throws {
        let c = EmulatedController.inMemory()
        func download(_ text: String) -> UInt16 {
            var image = Array(text.utf8) + [UInt8](repeating: 0, count: 4096 - text.utf8.count)
            return admin(c, 0x11, 1023, 0, data: &image).status.rawValue
        }
        #expect(admin(c, 0x10, 2 | 1 << 3).status.rawValue == 0x4107)    // nothing downloaded
        #expect(download("2.0") == S.success)
        #expect(admin(c, 0x10, 2 | 1 << 3).status.rawValue == S.success) // CA 1: replace slot 2, activate at reset
        #expect(c.identity.firmwareRevision == "1.0")
        var fw = getLog(c, lid: 3, length: 512).1
        #expect(fw[0] == 0x21 && ascii(fw, 16, 8) == "2.0     ")
        try c.reset()
        #expect(ascii(identify(c, cns: 1).1, 64, 8) == "2.0     ")
        #expect(download("3.0-rc1") == S.success)
        #expect(admin(c, 0x10, 3 | 3 << 3).status.rawValue == S.success) // CA 3: replace slot 3, activate now
        #expect(c.identity.firmwareRevision == "3.0-rc1")
        #expect(admin(c, 0x10, 1 | 2 << 3).status.rawValue == S.success) // CA 2: slot 1 at next reset
        fw = getLog(c, lid: 3, length: 512).1
        #expect(fw[0] == 0x13)
        #expect(admin(c, 0x10, 5 | 2 << 3).status.rawValue == 0x4106)    // no slot 5
        #expect(admin(c, 0x10, 1 | 5 << 3).status.rawValue == S.invalidField)
        var piece = [UInt8](repeating: 1, count: 8)
        #expect(admin(c, 0x11, 1, 4, data: &piece).status.rawValue == S.success)   // offset 16 bytes
        #expect(admin(c, 0x11, 1, 2, data: &piece).status.rawValue == 0x4114)      // overlapping
    }

    @Test func selfTestLog() throws {
        let c = EmulatedController.inMemory(.init(extendedSelfTestMilliseconds: 150))
        #expect(admin(c, 0x14, nsid: 0xFFFF_FFFF, 1).status.rawValue == S.success)   // short
        var log = getLog(c, lid: 6, length: 564).1
        #expect(log[0] == 0 && log[4] == 0x10 && le32(log, 4 + 12) == 0xFFFF_FFFF && log[4 + 28] == 0x0F)
        #expect(admin(c, 0x14, nsid: 0, 2).status.rawValue == S.success)             // extended
        log = getLog(c, lid: 6, length: 564).1
        #expect(log[0] == 2)
        #expect(admin(c, 0x14, 1).status.rawValue == 0x011D)                         // in progress
        #expect(admin(c, 0x14, 0xF).status.rawValue == S.success)                    // abort
        log = getLog(c, lid: 6, length: 564).1
        #expect(log[0] == 0 && log[4] == 0x21 && log[32] == 0x10)
        #expect(admin(c, 0x14, 2).status.rawValue == S.success)
        usleep(250_000)
        log = getLog(c, lid: 6, length: 564).1
        #expect(log[0] == 0 && log[4] == 0x20)
        #expect(admin(c, 0x14, nsid: 9, 1).status.rawValue == S.invalidNamespace)
        #expect(admin(c, 0x14, 3).status.rawValue == S.invalidField)
    }
}
