import CHeaderLayouts
import Testing
@testable import NVMeSpec

/// Little-endian helpers for hand-laid buffers.
private func put<T: FixedWidthInteger>(_ value: T, at offset: Int, in bytes: inout [UInt8]) {
    withUnsafeBytes(of: value.littleEndian) { for (i, b) in $0.enumerated() { bytes[offset + i] = b } }
}

@Suite struct SubmissionEntryTests {
    /// Every field a distinct value; the second entry of a two-entry ring.
    static func ring() -> [UInt8] {
        var b = [UInt8](repeating: 0xEE, count: 128)
        let e = 64
        b[e] = 0x02; b[e + 1] = 0xC1
        put(UInt16(0xBEEF), at: e + 2, in: &b)
        put(UInt32(0x0000_0007), at: e + 4, in: &b)
        put(UInt32(0x2222_2222), at: e + 8, in: &b)
        put(UInt32(0x3333_3333), at: e + 12, in: &b)
        put(UInt64(0x1616_1616_1616_1616), at: e + 16, in: &b)
        put(UInt64(0x2424_2424_2424_2424), at: e + 24, in: &b)
        put(UInt64(0x3232_3232_3232_3232), at: e + 32, in: &b)
        put(UInt32(0x8123_CD05), at: e + 40, in: &b)   // CDW10
        put(UInt32(0x0700_0002), at: e + 44, in: &b)   // CDW11
        put(UInt32(0x4000_0A07), at: e + 48, in: &b)   // CDW12
        put(UInt32(0x0000_0001), at: e + 52, in: &b)   // CDW13
        put(UInt32(0x0280_0005), at: e + 56, in: &b)   // CDW14
        put(UInt32(0xF15F_F15F), at: e + 60, in: &b)   // CDW15
        return b
    }

    struct Fields: Equatable {
        var common: [UInt64] = []
        var typed: [UInt64] = []
    }

    static func read(_ e: borrowing SubmissionEntry) -> Fields {
        var f = Fields()
        f.common = [UInt64(e.opcode), UInt64(e.flags), UInt64(e.fuse), UInt64(e.psdt), UInt64(e.commandID),
                    UInt64(e.nsid), UInt64(e.cdw2), UInt64(e.cdw3), e.metadataPointer, e.dataPointer1, e.dataPointer2,
                    UInt64(e.cdw10), UInt64(e.cdw11), UInt64(e.cdw12), UInt64(e.cdw13), UInt64(e.cdw14),
                    UInt64(e.cdw15)]
        f.typed = [UInt64(e.identifyCNS), UInt64(e.identifyCNTID), UInt64(e.identifyCSI),
                   UInt64(e.logPageID), UInt64(e.logSpecificParameter), e.retainAsynchronousEvent ? 1 : 0,
                   UInt64(e.logNumberOfDwords), e.logTransferLength, UInt64(e.logSpecificIdentifier), e.logPageOffset,
                   UInt64(e.logUUIDIndex), e.logOffsetIsIndex ? 1 : 0, UInt64(e.logCSI),
                   UInt64(e.featureID), UInt64(e.featureSelect), e.featureSave ? 1 : 0,
                   e.startingLBA, UInt64(e.numberOfLogicalBlocks), UInt64(e.blockCount), e.forceUnitAccess ? 1 : 0,
                   UInt64(e.dsmNumberOfRanges), UInt64(e.copyNumberOfRanges), UInt64(e.copyDescriptorFormat)]
        return f
    }

    static let expected = Fields(
        common: [0x02, 0xC1, 0x1, 0x3, 0xBEEF, 7, 0x2222_2222, 0x3333_3333, 0x1616_1616_1616_1616,
                 0x2424_2424_2424_2424, 0x3232_3232_3232_3232, 0x8123_CD05, 0x0700_0002, 0x4000_0A07, 1,
                 0x0280_0005, 0xF15F_F15F],
        typed: [0x05, 0x8123, 0x07,                                      // CNS, CNTID, CSI
                0x05, 0x4D, 1, 0x0002_8123, (0x0002_8123 + 1) * 4, 0x0700, 0x1_4000_0A07, 0x05, 1, 0x02, // log
                0x05, 0x5, 1,                                            // FID, SEL, SV
                0x0700_0002_8123_CD05, 0x0A07, 0x0A08, 1, 0x05, 0x07, 0xA])

    @Test func decodesEveryField() {
        let ring = Self.ring()
        let fields = ring.withUnsafeBytes { raw in
            let span = unsafe RawSpan(_unsafeBytes: raw)
            #expect(SubmissionEntry.count(in: span) == 2)
            return Self.read(SubmissionEntry(span, index: 1))
        }
        #expect(fields == Self.expected)
    }

    @Test func ownedEntryRoundTrip() {
        let ring = Self.ring()
        let owned = ring.withUnsafeBytes { raw in
            SubmissionQueueEntry(SubmissionEntry(unsafe RawSpan(_unsafeBytes: raw), index: 1))
        }
        let fields = owned.withEntry { Self.read($0) }
        #expect(fields == Self.expected)
        #expect(owned.opcode == 0x02 && owned.flags == 0xC1 && owned.commandID == 0xBEEF && owned.nsid == 7)
        #expect(owned[cdw: 0] == 0x8123_CD05 && owned[cdw: 5] == 0xF15F_F15F)

        var built = SubmissionQueueEntry(opcode: 0x01, flags: 0, commandID: 9, nsid: 1, cdw10: 0x10, cdw12: 7)
        built.opcode = 0x02
        built.commandID = 0x1234
        built[cdw: 1] = 0xAB
        let back = built.withEntry { e in
            [UInt64(e.opcode), UInt64(e.commandID), UInt64(e.nsid), UInt64(e.cdw10), UInt64(e.cdw11), UInt64(e.cdw12),
             e.startingLBA]
        }
        #expect(back == [0x02, 0x1234, 1, 0x10, 0xAB, 7, 0xAB_0000_0010])
        #expect(built.withEntry { SubmissionQueueEntry($0) } == built)
        #expect(built != SubmissionQueueEntry())
    }
}

@Suite struct CompletionEntryTests {
    @Test func decodes() {
        var b = [UInt8](repeating: 0, count: 32)
        put(UInt32(0xA0A0_A0A0), at: 16, in: &b)
        put(UInt32(0xB1B1_B1B1), at: 20, in: &b)
        put(UInt16(0x0011), at: 24, in: &b)
        put(UInt16(0x0022), at: 26, in: &b)
        put(UInt16(0x0033), at: 28, in: &b)
        put(UInt16(0x4080 << 1 | 1 | 0x2000 << 1), at: 30, in: &b)  // DNR, More, SC 80h, phase 1
        let (values, completion) = b.withUnsafeBytes { raw in
            let e = CompletionEntry(unsafe RawSpan(_unsafeBytes: raw), index: 1)
            return ([UInt64(e.dw0), UInt64(e.dw1), UInt64(e.submissionQueueHead), UInt64(e.submissionQueueID),
                     UInt64(e.commandID), e.phase ? 1 : 0], e.completion)
        }
        #expect(values == [0xA0A0_A0A0, 0xB1B1_B1B1, 0x11, 0x22, 0x33, 1])
        #expect(completion.status.rawValue == 0x6080)
        #expect(completion.status.doNotRetry && completion.status.more && completion.status.name == "LBA Out of Range")
        #expect(completion.result64 == 0xB1B1_B1B1_A0A0_A0A0)
    }
}

@Suite struct CHeaderLayoutTests {
    @Test(arguments: [false, true])
    func passthruMatchesLibnvmeAndKernel(is64: Bool) {
        let flag: Int32 = is64 ? 1 : 0
        #expect(chl_passthru_size(flag) == (is64 ? 80 : 72))
        #expect(chl_passthru_size(flag) == PassthruCommand(UnsafeMutableRawPointer(bitPattern: 8)!, is64: is64).size)
        #expect(chl_uapi_passthru_size(flag) == chl_passthru_size(flag))
        let expectedOffsets = [0, 1, 2, 4, 8, 12, 16, 24, 32, 36, 40, 44, 48, 52, 56, 60, 64, is64 ? 72 : 68]
        let field = Int32(truncatingIfNeeded: CHL_PT_FIELD_COUNT.rawValue)
        #expect((0..<field).map { chl_passthru_offset(flag, $0) } == expectedOffsets)
        #expect((0..<field).map { chl_uapi_passthru_offset(flag, $0) } == expectedOffsets)
    }

    @Test(arguments: [false, true])
    func passthruViewReadsWhatCWrote(is64: Bool) {
        let size = is64 ? 80 : 72
        var buffer = [UInt8](repeating: 0xA5, count: size + 16)
        buffer.withUnsafeMutableBytes { raw in
            chl_fill_passthru(raw.baseAddress!, is64 ? 1 : 0)
            let cmd = PassthruCommand(raw.baseAddress!, is64: is64)
            #expect(cmd.opcode == 0x11 && cmd.flags == 0x22 && cmd.nsid == 0x5566_7788)
            #expect(cmd.cdw2 == 0x0A0B_0C0D && cmd.cdw3 == 0x1A1B_1C1D)
            #expect(cmd.metadata == 0x0102_0304_0506_0708 && cmd.addr == 0x1112_1314_1516_1718)
            #expect(cmd.metadataLength == 0x2122 && cmd.dataLength == 0x3132_3334)
            #expect((0..<6).map { cmd.cdw($0) } == (0..<6).map { 0xC0DE_0000 + UInt32($0) })
            #expect(cmd.timeoutMilliseconds == 0x7531)
            #expect(cmd.result == (is64 ? 0x9988_7766_DDCC_BBAA : 0xDDCC_BBAA))
            let sqe = cmd.submissionQueueEntry
            #expect(sqe.opcode == 0x11 && sqe.flags == 0x22 && sqe.nsid == 0x5566_7788 && sqe.commandID == 0)
            #expect(sqe.dwords[2] == 0x0A0B_0C0D && sqe.dwords[3] == 0x1A1B_1C1D && sqe[cdw: 5] == 0xC0DE_0005)
            #expect((4..<10).allSatisfy { sqe.dwords[$0] == 0 })

            cmd.writeResult(Completion(status: .success, dw0: 0x1357_9BDF, dw1: 0x2468_ACE0))
            #expect(chl_read_result(raw.baseAddress!, is64 ? 1 : 0) == (is64 ? 0x2468_ACE0_1357_9BDF : 0x1357_9BDF))
            #expect(cmd.timeoutMilliseconds == 0x7531)
        }
        #expect(buffer[size...].allSatisfy { $0 == 0xA5 }, "writeResult wrote past the struct")
    }

    @Test func userIOViewReadsWhatCWrote() {
        #expect(chl_user_io_size() == UserIO.size)
        var buffer = [UInt8](repeating: 0, count: UserIO.size)
        buffer.withUnsafeMutableBytes { raw in
            chl_fill_user_io(raw.baseAddress!)
            let io = UserIO(raw.baseAddress!)
            #expect(io.opcode == 0x02 && io.flags == 0 && io.control == 0x4000 && io.nblocks == 7)
            #expect(io.metadata == 0x0102_0304_0506_0708 && io.addr == 0x1112_1314_1516_1718)
            #expect(io.slba == 0x11_2233_4455 && io.dsmgmt == 0xA1A2_A3A4 && io.reftag == 0xB1B2_B3B4)
            #expect(io.apptag == 0xC1C2 && io.appmask == 0xD1D2)
            let sqe = io.submissionQueueEntry(nsid: 3)
            #expect(sqe.opcode == 0x02 && sqe.nsid == 3)
            #expect(sqe[cdw: 0] == 0x2233_4455 && sqe[cdw: 1] == 0x11 && sqe[cdw: 2] == 0x4000_0007)
            #expect(sqe[cdw: 3] == 0xA1A2_A3A4 && sqe[cdw: 4] == 0xB1B2_B3B4 && sqe[cdw: 5] == 0xD1D2_C1C2)
        }
    }

    @Test func effectsLogMatchesLibnvme() {
        #expect(chl_effects_log_size() == CommandEffectsLog.size)
        #expect(chl_effects_log_acs_offset() == 0)
        #expect(chl_effects_log_iocs_offset() == 1024)
        var log = CommandEffectsLog()
        log[.admin, 0x06] = CommandEffects(rawValue: 0xAAAA_0001)
        log[.io, 0x02] = CommandEffects(rawValue: 0xBBBB_0001)
        let bytes = log.bytes
        #expect(Array(bytes[(0x06 * 4)..<(0x06 * 4 + 4)]) == [0x01, 0x00, 0xAA, 0xAA])
        #expect(Array(bytes[(1024 + 0x02 * 4)..<(1024 + 0x02 * 4 + 4)]) == [0x01, 0x00, 0xBB, 0xBB])

        #expect(chl_effects_csupp() == CommandEffects.supported.rawValue)
        #expect(chl_effects_lbcc() == CommandEffects.logicalBlockContentChange.rawValue)
        #expect(chl_effects_ncc() == CommandEffects.namespaceCapabilityChange.rawValue)
        #expect(chl_effects_nic() == CommandEffects.namespaceInventoryChange.rawValue)
        #expect(chl_effects_ccc() == CommandEffects.controllerCapabilityChange.rawValue)
        #expect(chl_effects_uuid_sel() == CommandEffects.uuidSelectionSupported.rawValue)
        // libnvme 1.3 knows two CSE bits; NVMe 2.x has three, the low two in the same place.
        #expect(chl_effects_cse_mask() == 0x3_0000)
        #expect(chl_effects_cse_mask() & CommandEffects.submissionAndExecutionMask == chl_effects_cse_mask())
    }

    @Test func ioctlNumbersMatchTheMacros() {
        #expect(IoctlRequest.id.rawValue == chl_ioctl_id())
        #expect(IoctlRequest.adminCommand.rawValue == chl_ioctl_admin_cmd())
        #expect(IoctlRequest.submitIO.rawValue == chl_ioctl_submit_io())
        #expect(IoctlRequest.ioCommand.rawValue == chl_ioctl_io_cmd())
        #expect(IoctlRequest.reset.rawValue == chl_ioctl_reset())
        #expect(IoctlRequest.subsystemReset.rawValue == chl_ioctl_subsys_reset())
        #expect(IoctlRequest.rescan.rawValue == chl_ioctl_rescan())
        #expect(IoctlRequest.admin64Command.rawValue == chl_ioctl_admin64_cmd())
        #expect(IoctlRequest.io64Command.rawValue == chl_ioctl_io64_cmd())
        #expect(IoctlRequest.adminCommand.rawValue == 0xC048_4E41 && IoctlRequest.submitIO.rawValue == 0x4030_4E42)
        #expect(IoctlRequest.adminCommand.name == "NVME_IOCTL_ADMIN_CMD")
        #expect(IoctlRequest(rawValue: 0x1234).name == "ioctl 0x1234")
    }
}
