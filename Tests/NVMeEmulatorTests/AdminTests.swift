import Testing
import NVMeGate
@testable import NVMeEmulator
import NVMeSpec

@Suite struct IdentifyTests {
    @Test func controllerFieldsAtLibnvmeOffsets() {
        // Offsets of libnvme 1.3's struct nvme_id_ctrl (checked with offsetof against
        // /usr/include/nvme/types.h when this test was written).
        let c = EmulatedController.inMemory(.init(serialNumber: "SN123", controllerID: 7))
        let (s, d) = identify(c, cns: 1)
        #expect(s == S.success)
        #expect(le16(d, 0) == 0xFFFF)                                  // VID
        #expect(ascii(d, 4, 20) == "SN123" + String(repeating: " ", count: 15))   // SN at 4
        #expect(ascii(d, 24, 40).hasPrefix("nvmegate emulated controller "))     // MN at 24
        #expect(ascii(d, 64, 8) == "1.0     ")                         // FR at 64
        #expect(d[77] == 7)                                            // MDTS at 77
        #expect(le16(d, 78) == 7)                                      // CNTLID at 78
        #expect(le32(d, 80) == 0x0002_0000)                            // VER at 80
        #expect(d[111] == 1)                                           // CNTRLTYPE at 111
        #expect(le16(d, 256) == 0x1E)                                  // OACS at 256
        #expect(d[260] == 0x16)                                        // FRMW at 260
        #expect(d[261] == 0x06)                                        // LPA at 261: effects log, extended data
        #expect(d[512] == 0x66 && d[513] == 0x44)                      // SQES, CQES
        #expect(le32(d, 516) == 32)                                    // NN at 516
        #expect(le16(d, 520) == 0x1FF)                                 // ONCS at 520
        #expect(d[525] == 0x07)                                        // VWC at 525
        #expect(le32(d, 536) == 0)                                     // SGLS at 536
        #expect(le32(d, 328) == 7)                                     // SANICAP at 328
        #expect(ascii(d, 768, 40).hasPrefix("nqn.2026-01.org.nvmegate:emulated:SN123"))   // SUBNQN at 768
        #expect(c.identity == ControllerIdentity(model: "nvmegate emulated controller", firmwareRevision: "1.0",
                                                 serialNumber: "SN123"))
    }

    @Test func namespaceFieldsAtLibnvmeOffsets() {
        let c = EmulatedController.inMemory()
        let (s, d) = identify(c, cns: 0, nsid: 1)
        #expect(s == S.success)
        #expect(le64(d, 0) == (1 << 30) / 512)                         // NSZE at 0
        #expect(le64(d, 8) == (1 << 30) / 512)                         // NCAP at 8
        #expect(d[25] == 1)                                            // NLBAF at 25: two formats
        #expect(d[26] == 0)                                            // FLBAS at 26
        #expect(d[31] == 0xFF)                                         // RESCAP at 31
        #expect(d[33] & 0x7 == 1)                                      // DLFEAT: deallocated reads zeroes
        #expect(d[130] == 9 && d[134] == 12)                           // LBAF at 128: LBADS 512, 4096
        #expect(d[104..<120].contains { $0 != 0 })                     // NGUID at 104
        #expect(c.namespaces() == [NamespaceInfo(nsid: 1, lbaDataSize: 512, blockCount: (1 << 30) / 512)])
    }

    @Test func namespaceScopedChecks() {
        let c = EmulatedController.inMemory()
        #expect(identify(c, cns: 0, nsid: 0).0 == S.invalidNamespace)
        #expect(identify(c, cns: 0, nsid: 33).0 == S.invalidNamespace)
        let (s, d) = identify(c, cns: 0, nsid: 5)                       // valid, not allocated: zeroes
        #expect(s == S.success && d.allSatisfy { $0 == 0 })
        #expect(identify(c, cns: 0x42).0 == S.invalidField)
        let (ls, list) = identify(c, cns: 2)
        #expect(ls == S.success && le32(list, 0) == 1 && le32(list, 4) == 0)
        #expect(identify(c, cns: 2, nsid: 0xFFFF_FFFE).0 == S.invalidNamespace)
        let (ds, desc) = identify(c, cns: 3, nsid: 1)
        #expect(ds == S.success)
        #expect(desc[0] == 1 && desc[1] == 8 && desc[12] == 2 && desc[13] == 16 && desc[32] == 3 && desc[52] == 4)
        #expect(identify(c, cns: 5, nsid: 1, csi: 2).0 == S.invalidField)
        let (ns, nvm) = identify(c, cns: 6, csi: 0)
        #expect(ns == S.success && nvm[0] == 7)                        // VSL
        let (xs, ind) = identify(c, cns: 8, nsid: 1)
        #expect(xs == S.success && ind[14] == 1)                       // NSTAT ready
        let (cs, ctrls) = identify(c, cns: 0x13)
        #expect(cs == S.success && le16(ctrls, 0) == 1 && le16(ctrls, 2) == 1)
        let (as_, attached) = identify(c, cns: 0x12, nsid: 1)
        #expect(as_ == S.success && le16(attached, 0) == 1)
        var small = [UInt8](repeating: 0, count: 100)
        #expect(admin(c, 0x06, 1, data: &small).status.rawValue == S.dataTransferError)
        #expect(small.allSatisfy { $0 == 0 })
    }
}

@Suite struct LogPageTests {
    @Test func supportedPagesAndInvalidLogPage() {
        let c = EmulatedController.inMemory()
        let (s, d) = getLog(c, lid: 0, length: 1024)
        #expect(s == S.success)
        for lid in [0, 1, 2, 3, 4, 5, 6, 0x81] { #expect(le32(d, 4 * lid) & 1 == 1) }
        #expect(le32(d, 4 * 0x07) == 0)
        #expect(getLog(c, lid: 0x7E, length: 512).0 == S.invalidLogPage)
    }

    @Test func offsetsAndPartialReads() {
        let c = EmulatedController.inMemory()
        let full = getLog(c, lid: 5, length: 4096).1
        #expect(CommandEffectsLog(full) == c.effectsLog(for: .nvm))
        let (s, part) = getLog(c, lid: 5, length: 8, offset: 1024 + 4)   // IOCS[1], IOCS[2]: Write, Read
        #expect(s == S.success && part == Array(full[1028..<1036]))
        let (ts, tail) = getLog(c, lid: 5, length: 16, offset: 4088)      // past the end: zero-filled
        #expect(ts == S.success && tail[8...].allSatisfy { $0 == 0 })
        #expect(getLog(c, lid: 5, length: 8, offset: 2).0 == S.invalidField)       // not dword aligned
        #expect(getLog(c, lid: 5, length: 8, offset: 4096).0 == S.invalidField)    // beyond the page
        #expect(getLog(c, lid: 5, length: 1 << 20).0 == S.invalidField)            // over MDTS
        let zoned = getLog(c, lid: 5, length: 4096, csi: 2).1
        #expect(zoned[1024..<2048].allSatisfy { $0 == 0 } && le32(zoned, 6 * 4) & 1 == 1)
        var short = [UInt8](repeating: 0xAB, count: 4)
        #expect(admin(c, 0x02, nsid: 0xFFFF_FFFF, 0x05 | 1023 << 16, data: &short).status.rawValue == S.dataTransferError)
        #expect(short == [0xAB, 0xAB, 0xAB, 0xAB])
    }

    @Test func smartCountersMove() {
        let c = EmulatedController.inMemory()
        let before = getLog(c, lid: 2, length: 512).1
        #expect(le64(before, 48) == 0 && le64(before, 80) == 0)
        #expect(write(c, lba: 0, blocks: 8, byte: 1) == S.success)                      // 8 units
        #expect(read(c, lba: 0, blocks: 2).0 == S.success)                               // 2 units
        let after = getLog(c, lid: 2, length: 512).1
        #expect(le64(after, 32) == 1)            // Data Units Read: 2 units → 1 thousand, rounded up
        #expect(le64(after, 48) == 1)            // Data Units Written
        #expect(le64(after, 64) == 1)            // Host Read Commands
        #expect(le64(after, 80) == 1)            // Host Write Commands
        #expect(le64(after, 112) == 1)           // Power Cycles
        #expect(le16(after, 1) == 0x143 && after[3] == 100)
        for _ in 0..<130 { _ = write(c, lba: 0, blocks: 8, byte: 2) }                   // 1048 units in all
        #expect(le64(getLog(c, lid: 2, length: 512).1, 48) == 2)
        #expect(getLog(c, lid: 2, length: 512, nsid: 1).0 == S.invalidField)             // LPA bit 0 clear
    }

    @Test func errorLogRecordsFailures() {
        let c = EmulatedController.inMemory()
        _ = io(c, 0x02, slba: 1 << 40)
        let (s, d) = getLog(c, lid: 1, length: 128)
        #expect(s == S.success)
        #expect(le64(d, 0) == 1 && le16(d, 8) == 1 && le16(d, 12) >> 1 == S.lbaOutOfRange && le64(d, 16) == 1 << 40)
        #expect(le64(getLog(c, lid: 2, length: 512).1, 176) == 1)
    }
}

@Suite struct FeatureTests {
    @Test func selectSaveAndReset() throws {
        let c = EmulatedController.inMemory()
        #expect(admin(c, 0x0A, 0x06).dw0 == 1)                                // VWC current: enabled
        #expect(admin(c, 0x09, 0x06 | 1 << 31, 0).status.rawValue == S.success)   // WCE=0, saved
        #expect(admin(c, 0x0A, 0x06).dw0 == 0)
        #expect(admin(c, 0x0A, 0x06 | 1 << 8).dw0 == 1)                       // default
        #expect(admin(c, 0x0A, 0x06 | 2 << 8).dw0 == 0)                       // saved
        #expect(admin(c, 0x0A, 0x06 | 3 << 8).dw0 == 0b101)                   // saveable, changeable
        #expect(admin(c, 0x09, 0x08, 0x0A05).status.rawValue == S.success)    // not saved
        try c.reset()
        #expect(admin(c, 0x0A, 0x08).dw0 == 0)                                // back to default
        #expect(admin(c, 0x0A, 0x06).dw0 == 0)                                // the saved value
        #expect(admin(c, 0x09, 0x07 | 1 << 31, 0x000F_000F).status.rawValue == S.featureNotSaveable)
        // Number of Queues: the host's I/O queues exist, so setting it is a Command Sequence Error.
        #expect(admin(c, 0x09, 0x07, 0x000F_000F).status.rawValue == S.commandSequenceError)
        #expect(admin(c, 0x0A, 0x07).dw0 == 0x003F_003F)
        #expect(admin(c, 0x0A, 0x55).status.rawValue == S.invalidField)
        #expect(admin(c, 0x09, nsid: 1, 0x06, 1).status.rawValue == 0x410F)   // not namespace specific
        #expect(admin(c, 0x0A, nsid: 1, 0x05 | 3 << 8).dw0 == 0b111)          // error recovery: ns specific
    }

    @Test func temperatureThresholdRaisesSmartWarning() {
        let c = EmulatedController.inMemory()
        #expect(admin(c, 0x0A, 0x04).dw0 == 0x157)
        #expect(getLog(c, lid: 2, length: 512).1[0] == 0)
        #expect(admin(c, 0x09, 0x04, 300).status.rawValue == S.success)       // over-threshold 300 K < 323 K
        #expect(getLog(c, lid: 2, length: 512).1[0] & 0x02 != 0)
        #expect(admin(c, 0x0A, 0x04, 1 << 16).status.rawValue == S.invalidField)   // TMPSEL 1: no such sensor
    }

    @Test func timestampAndHostIdentifier() {
        let c = EmulatedController.inMemory()
        var ts = [UInt8](repeating: 0, count: 8)
        put64(&ts, 0, 1_000_000)
        #expect(admin(c, 0x09, 0x0E, data: &ts).status.rawValue == S.success)
        var got = [UInt8](repeating: 0, count: 8)
        #expect(admin(c, 0x0A, 0x0E, data: &got).status.rawValue == S.success)
        #expect(le64(got, 0) & 0xFFFF_FFFF_FFFF >= 1_000_000 && le64(got, 0) & 0xFFFF_FFFF_FFFF < 1_010_000)
        #expect(got[6] >> 1 & 0x7 == 1)
        var id = [UInt8](1...16)
        #expect(admin(c, 0x09, 0x81, 1, data: &id).status.rawValue == S.success)     // EXHID: 128-bit
        var back = [UInt8](repeating: 0, count: 16)
        #expect(admin(c, 0x0A, 0x81, 1, data: &back).status.rawValue == S.success)
        #expect(back == [UInt8](1...16))
        var tooSmall = [UInt8](repeating: 0, count: 8)
        #expect(admin(c, 0x09, 0x81, 1, data: &tooSmall).status.rawValue == S.dataTransferError)
    }
}
