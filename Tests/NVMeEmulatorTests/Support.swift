import Glibc
import NVMeGate
@testable import NVMeEmulator
import NVMeSpec

/// Runs one command against `c` with `buffer` as the data buffer.
@discardableResult
func exec(_ c: EmulatedController, _ queue: Queue, _ sqe: SubmissionQueueEntry, _ buffer: inout [UInt8]) -> Completion {
    buffer.withUnsafeMutableBytes { b in
        sqe.withEntry { e in
            try! c.submit(e, queue: queue, data: b, metadata: UnsafeMutableRawBufferPointer(start: nil, count: 0))
        }
    }
}

@discardableResult
func admin(_ c: EmulatedController, _ opcode: UInt8, nsid: UInt32 = 0, _ cdw10: UInt32 = 0, _ cdw11: UInt32 = 0,
           cdw12: UInt32 = 0, cdw13: UInt32 = 0, cdw14: UInt32 = 0, data: inout [UInt8]) -> Completion {
    exec(c, .admin, SubmissionQueueEntry(opcode: opcode, nsid: nsid, cdw10: cdw10, cdw11: cdw11, cdw12: cdw12,
                                         cdw13: cdw13, cdw14: cdw14), &data)
}

@discardableResult
func admin(_ c: EmulatedController, _ opcode: UInt8, nsid: UInt32 = 0, _ cdw10: UInt32 = 0, _ cdw11: UInt32 = 0,
           cdw12: UInt32 = 0, cdw13: UInt32 = 0, cdw14: UInt32 = 0) -> Completion {
    var none: [UInt8] = []
    return admin(c, opcode, nsid: nsid, cdw10, cdw11, cdw12: cdw12, cdw13: cdw13, cdw14: cdw14, data: &none)
}

@discardableResult
func io(_ c: EmulatedController, _ opcode: UInt8, nsid: UInt32 = 1, slba: UInt64 = 0, cdw12: UInt32 = 0,
        cdw10: UInt32? = nil, cdw11: UInt32? = nil, cdw13: UInt32 = 0, data: inout [UInt8]) -> Completion {
    exec(c, .io, SubmissionQueueEntry(opcode: opcode, nsid: nsid, cdw10: cdw10 ?? UInt32(truncatingIfNeeded: slba),
                                      cdw11: cdw11 ?? UInt32(truncatingIfNeeded: slba >> 32), cdw12: cdw12,
                                      cdw13: cdw13), &data)
}

@discardableResult
func io(_ c: EmulatedController, _ opcode: UInt8, nsid: UInt32 = 1, slba: UInt64 = 0, cdw12: UInt32 = 0,
        cdw10: UInt32? = nil, cdw11: UInt32? = nil) -> Completion {
    var none: [UInt8] = []
    return io(c, opcode, nsid: nsid, slba: slba, cdw12: cdw12, cdw10: cdw10, cdw11: cdw11, data: &none)
}

func write(_ c: EmulatedController, lba: UInt64, blocks: Int = 1, byte: UInt8, nsid: UInt32 = 1, size: Int = 512) -> UInt16 {
    var d = [UInt8](repeating: byte, count: blocks * size)
    return io(c, IOOpcode.write.rawValue, nsid: nsid, slba: lba, cdw12: UInt32(blocks - 1), data: &d).status.rawValue
}

func read(_ c: EmulatedController, lba: UInt64, blocks: Int = 1, nsid: UInt32 = 1, size: Int = 512) -> (UInt16, [UInt8]) {
    var d = [UInt8](repeating: 0xEE, count: blocks * size)
    let s = io(c, IOOpcode.read.rawValue, nsid: nsid, slba: lba, cdw12: UInt32(blocks - 1), data: &d).status.rawValue
    return (s, d)
}

func identify(_ c: EmulatedController, cns: UInt8, nsid: UInt32 = 0, cdw10High: UInt16 = 0, csi: UInt8 = 0) -> (UInt16, [UInt8]) {
    var d = [UInt8](repeating: 0xEE, count: 4096)
    let s = admin(c, AdminOpcode.identify.rawValue, nsid: nsid, UInt32(cns) | UInt32(cdw10High) << 16, UInt32(csi) << 24, data: &d).status.rawValue
    return (s, d)
}

func getLog(_ c: EmulatedController, lid: UInt8, length: Int, offset: UInt64 = 0, nsid: UInt32 = 0xFFFF_FFFF,
            rae: Bool = false, csi: UInt8 = 0) -> (UInt16, [UInt8]) {
    var d = [UInt8](repeating: 0xEE, count: length)
    let numd = UInt32(length / 4 - 1)
    let s = admin(c, AdminOpcode.getLogPage.rawValue, nsid: nsid, UInt32(lid) | (rae ? 0x8000 : 0) | (numd & 0xFFFF) << 16, numd >> 16,
                  cdw12: UInt32(truncatingIfNeeded: offset), cdw13: UInt32(truncatingIfNeeded: offset >> 32),
                  cdw14: UInt32(csi) << 24, data: &d).status.rawValue
    return (s, d)
}

func le16(_ b: [UInt8], _ o: Int) -> UInt16 { UInt16(b[o]) | UInt16(b[o + 1]) << 8 }
func le32(_ b: [UInt8], _ o: Int) -> UInt32 { UInt32(le16(b, o)) | UInt32(le16(b, o + 2)) << 16 }
func le64(_ b: [UInt8], _ o: Int) -> UInt64 { UInt64(le32(b, o)) | UInt64(le32(b, o + 4)) << 32 }
func ascii(_ b: [UInt8], _ o: Int, _ n: Int) -> String { String(decoding: b[o..<(o + n)], as: UTF8.self) }
func put32(_ b: inout [UInt8], _ o: Int, _ v: UInt32) { for i in 0..<4 { b[o + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(i))) } }
func put64(_ b: inout [UInt8], _ o: Int, _ v: UInt64) { for i in 0..<8 { b[o + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(i))) } }
func put16(_ b: inout [UInt8], _ o: Int, _ v: UInt16) { b[o] = UInt8(truncatingIfNeeded: v); b[o + 1] = UInt8(v >> 8) }

/// A fresh temporary directory path (not created).
func temporaryDirectory(_ name: String) -> String {
    var template = Array("/tmp/nvmegate-emu-\(name)-XXXXXX".utf8CString)
    let p = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
    return String(cString: p!)
}

func removeDirectory(_ path: String) {
    if let d = opendir(path) {
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            if name != "." && name != ".." { unlink(path + "/" + name) }
        }
        closedir(d)
    }
    rmdir(path)
}

enum S {
    static let success: UInt16 = 0
    static let invalidOpcode: UInt16 = 0x4001
    static let invalidField: UInt16 = 0x4002
    static let dataTransferError: UInt16 = 0x4004
    static let invalidNamespace: UInt16 = 0x400B
    static let commandSequenceError: UInt16 = 0x400C
    static let lbaOutOfRange: UInt16 = 0x4080
    static let reservationConflict: UInt16 = 0x4083
    static let invalidLogPage: UInt16 = 0x4109
    static let invalidFormat: UInt16 = 0x410A
    static let featureNotSaveable: UInt16 = 0x410D
    static let alreadyAttached: UInt16 = 0x4118
    static let notAttached: UInt16 = 0x411A
    static let controllerListInvalid: UInt16 = 0x411C
    static let unrecoveredRead: UInt16 = 0x4281
    static let compareFailure: UInt16 = 0x4285
}
