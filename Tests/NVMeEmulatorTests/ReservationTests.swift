import Testing
import NVMeGate
@testable import NVMeEmulator
import NVMeSpec

/// Two hosts: two controllers on one subsystem with different Host Identifiers.
private func twoHosts() throws -> (EmulatedSubsystem, EmulatedController, EmulatedController) {
    let sub = EmulatedSubsystem()
    let a = try EmulatedController(subsystem: sub, controllerID: 1)
    let b = try EmulatedController(subsystem: sub, controllerID: 2)
    for (c, id) in [(a, UInt8(0xA0)), (b, 0xB0)] {
        var hostID = [UInt8](repeating: id, count: 8)
        #expect(admin(c, 0x09, 0x81, 0, data: &hostID).status.rawValue == S.success)
    }
    return (sub, a, b)
}

private func register(_ c: EmulatedController, action: UInt32 = 0, current: UInt64 = 0, new: UInt64,
                      iekey: Bool = false, cptpl: UInt32 = 0) -> UInt16 {
    var d = [UInt8](repeating: 0, count: 16)
    put64(&d, 0, current); put64(&d, 8, new)
    return io(c, 0x0D, cdw12: 0, cdw10: action | (iekey ? 8 : 0) | cptpl << 30, cdw11: 0, data: &d).status.rawValue
}

private func acquire(_ c: EmulatedController, action: UInt32 = 0, key: UInt64, preempt: UInt64 = 0, type: UInt32) -> UInt16 {
    var d = [UInt8](repeating: 0, count: 16)
    put64(&d, 0, key); put64(&d, 8, preempt)
    return io(c, 0x11, cdw12: 0, cdw10: action | type << 8, cdw11: 0, data: &d).status.rawValue
}

private func release(_ c: EmulatedController, action: UInt32 = 0, key: UInt64, type: UInt32) -> UInt16 {
    var d = [UInt8](repeating: 0, count: 8)
    put64(&d, 0, key)
    return io(c, 0x15, cdw12: 0, cdw10: action | type << 8, cdw11: 0, data: &d).status.rawValue
}

private func report(_ c: EmulatedController, extended: Bool = false) -> [UInt8] {
    var d = [UInt8](repeating: 0, count: 256)
    #expect(io(c, 0x0E, cdw12: 0, cdw10: 63, cdw11: extended ? 1 : 0, data: &d).status.rawValue == S.success)
    return d
}

@Suite struct ReservationTests {
    @Test func writeExclusiveBetweenTwoHosts() throws {
        let (_, a, b) = try twoHosts()
        #expect(namespacesOf(a) == [1] && namespacesOf(b) == [1])       // the initial namespace is shared
        #expect(register(a, new: 0xAAAA) == S.success)
        #expect(register(a, new: 0xAAAA) == S.success)                   // same key again: no change
        #expect(register(a, new: 0xBBBB) == S.reservationConflict)       // different key
        #expect(acquire(a, key: 0xAAAA, type: 1) == S.success)           // Write Exclusive
        #expect(write(a, lba: 0, byte: 1) == S.success)
        #expect(write(b, lba: 0, byte: 2) == S.reservationConflict)
        #expect(read(b, lba: 0) == (S.success, [UInt8](repeating: 1, count: 512)))
        #expect(register(b, new: 0xBBBB) == S.success)
        #expect(write(b, lba: 0, byte: 2) == S.reservationConflict)      // registrants too, for type 1
        let r = report(a)
        #expect(le32(r, 0) == 2 && r[4] == 1 && le16(r, 5) == 2)         // GEN, RTYPE, REGCTL
        #expect(le16(r, 24) == 1 && r[26] == 1 && r[32..<40].allSatisfy { $0 == 0xA0 } && le64(r, 40) == 0xAAAA)
        #expect(le16(r, 48) == 2 && r[50] == 0 && le64(r, 64) == 0xBBBB)
        #expect(release(b, key: 0xBBBB, type: 1) == S.success)           // not the holder: no effect
        #expect(write(b, lba: 0, byte: 2) == S.reservationConflict)
        #expect(release(a, key: 0xAAAA, type: 2) == S.invalidField)      // wrong type
        #expect(release(a, key: 0x1234, type: 1) == S.reservationConflict)   // wrong key
        #expect(release(a, key: 0xAAAA, type: 1) == S.success)
        #expect(write(b, lba: 0, byte: 2) == S.success)
    }

    @Test func registrantsOnlyAndPreempt() throws {
        let (sub, a, b) = try twoHosts()
        let c = try EmulatedController(subsystem: sub, controllerID: 3)  // a third host, never registered
        #expect(register(a, new: 1) == S.success && register(b, new: 2) == S.success)
        #expect(acquire(a, key: 1, type: 4) == S.success)                // Exclusive Access – Registrants Only
        #expect(acquire(b, key: 2, type: 4) == S.reservationConflict)    // held by another
        #expect(read(b, lba: 0).0 == S.success && write(b, lba: 0, byte: 9) == S.success)
        #expect(read(c, lba: 0).0 == S.reservationConflict)
        #expect(write(c, lba: 0, byte: 9) == S.reservationConflict)
        #expect(io(c, 0x0C).status.rawValue == S.reservationConflict)   // Verify is a read command
        #expect(acquire(b, action: 1, key: 2, preempt: 1, type: 2) == S.success)   // preempt A: B holds Exclusive Access
        let r = report(b, extended: true)
        #expect(r[4] == 2 && le16(r, 5) == 1 && le16(r, 64) == 2 && r[66] == 1 && le64(r, 72) == 2)
        #expect(read(a, lba: 0).0 == S.reservationConflict)              // A was unregistered
        #expect(register(a, action: 1, current: 1, new: 0) == S.reservationConflict)
        #expect(release(b, action: 1, key: 2, type: 0) == S.success)     // Clear
        #expect(read(a, lba: 0).0 == S.success && report(a)[4] == 0 && le16(report(a), 5) == 0)
    }

    @Test func allRegistrantsAndUnregister() throws {
        let (_, a, b) = try twoHosts()
        #expect(register(a, new: 1) == S.success && register(b, new: 2) == S.success)
        #expect(acquire(a, key: 1, type: 5) == S.success)                // Write Exclusive – All Registrants
        #expect(write(b, lba: 0, byte: 1) == S.success)                  // every registrant is a holder
        #expect(register(a, action: 1, current: 1, new: 0) == S.success)
        #expect(write(a, lba: 0, byte: 1) == S.reservationConflict)      // A is no longer registered
        #expect(report(b)[4] == 5)                                       // still held by B
        #expect(register(b, action: 2, current: 2, new: 22) == S.success)   // replace
        #expect(register(b, action: 1, current: 22, new: 0) == S.success)
        #expect(report(a)[4] == 0)                                       // the last registrant left
    }

    @Test func hostIdentifierCannotChangeWhileRegistered() throws {
        let (_, a, _) = try twoHosts()
        #expect(register(a, new: 7) == S.success)
        var other = [UInt8](repeating: 0xCC, count: 8)
        #expect(admin(a, 0x09, 0x81, 0, data: &other).status.rawValue == 0x400C)   // Command Sequence Error
    }
}

private func namespacesOf(_ c: EmulatedController) -> [UInt32] { c.namespaces().map(\.nsid) }
