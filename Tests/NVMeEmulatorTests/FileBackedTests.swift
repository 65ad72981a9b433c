import Glibc
import Testing
import NVMeGate
@testable import NVMeEmulator
import NVMeSpec

@Suite struct FileBackedTests {
    private func session(_ dir: String, _ body: (EmulatedController) throws -> Void) throws {
        let c = try EmulatedController(directory: dir, configuration: .init(namespaceSize: 64 << 20))
        try body(c)
    }

    @Test func stateAndDataSurviveReopen() throws {
        let dir = temporaryDirectory("reopen")
        defer { removeDirectory(dir) }
        try session(dir) { c in
            #expect(c.namespaces().map(\.blockCount) == [(64 << 20) / 512])
            #expect(write(c, lba: 1000, blocks: 2, byte: 0x3C) == S.success)
            #expect(io(c, 0x00).status.rawValue == S.success)                          // Flush: fdatasync
            #expect(io(c, 0x04, slba: 5).status.rawValue == S.success)
            #expect(admin(c, 0x09, 0x06 | 1 << 31, 0).status.rawValue == S.success)    // saved VWC off
            var image = Array("9.9".utf8) + [UInt8](repeating: 0, count: 61)
            #expect(admin(c, 0x11, 15, 0, data: &image).status.rawValue == S.success)
            #expect(admin(c, 0x10, 2 | 3 << 3).status.rawValue == S.success)
            var d = [UInt8](repeating: 0, count: 4096)
            put64(&d, 0, 256); put64(&d, 8, 256); d[26] = 1
            #expect(admin(c, 0x0D, 0, data: &d).dw0 == 2)
            #expect(admin(c, 0x14, 1).status.rawValue == S.success)
            // A second opener of the same directory is refused while this one is open.
            #expect {
                _ = try EmulatedSubsystem(directory: dir)
            } throws: { error in
                "\(error)".contains("is in use by another process (pid \(getpid()))") && (error as? EmulatorError)?.errno == EBUSY
            }
        }
        try session(dir) { c in
            #expect(read(c, lba: 1000, blocks: 2) == (S.success, [UInt8](repeating: 0x3C, count: 1024)))
            #expect(read(c, lba: 5).0 == S.unrecoveredRead)
            #expect(admin(c, 0x0A, 0x06).dw0 == 0)
            #expect(c.identity.firmwareRevision == "9.9")
            #expect(le64(identify(c, cns: 0x11, nsid: 2).1, 0) == 256)
            let smart = getLog(c, lid: 2, length: 512).1
            #expect(le64(smart, 80) == 2 && le64(smart, 112) == 2 && le64(smart, 144) == 0)   // writes, power cycles, unsafe
            #expect(getLog(c, lid: 6, length: 564).1[4] == 0x10)
        }
        var st = stat()
        #expect(stat(dir + "/ns-1.img", &st) == 0 && st.st_size == 64 << 20 && st.st_blocks * 512 < 1 << 20)   // sparse
    }

    @Test func reservationsPersistOnlyWithPTPL() throws {
        let dir = temporaryDirectory("ptpl")
        defer { removeDirectory(dir) }
        try session(dir) { c in
            var d = [UInt8](repeating: 0, count: 16)
            put64(&d, 8, 0x77)
            #expect(io(c, 0x0D, cdw12: 0, cdw10: 3 << 30, cdw11: 0, data: &d).status.rawValue == S.success)  // PTPL on
        }
        try session(dir) { c in
            var r = [UInt8](repeating: 0, count: 64)
            #expect(io(c, 0x0E, cdw12: 0, cdw10: 15, cdw11: 0, data: &r).status.rawValue == S.success)
            #expect(r[9] == 1 && le16(r, 5) == 1 && le64(r, 40) == 0x77)
        }
    }

    @Test func twoControllersShareOneDirectory() throws {
        let dir = temporaryDirectory("shared")
        defer { removeDirectory(dir) }
        let sub = try EmulatedSubsystem(directory: dir, configuration: .init(namespaceSize: 1 << 20))
        let a = try EmulatedController(subsystem: sub, controllerID: 1)
        let b = try EmulatedController(subsystem: sub, controllerID: 2)
        #expect(throws: EmulatorError.self) { _ = try EmulatedController(subsystem: sub, controllerID: 2) }
        #expect(write(a, lba: 3, byte: 0x11) == S.success)
        #expect(read(b, lba: 3).1.allSatisfy { $0 == 0x11 })
    }
}
