import Testing
import NVMeGate
@testable import NVMeEmulator
import NVMeSpec

/// The emulator's Commands Supported and Effects log checked against what its commands do:
/// every command it marks supported is run in the ways that can show its effects, and the
/// LBCC, NCC, NIC and CCC bits must be exactly the changes seen. Under-reporting would let
/// the gate pass a command whose effects a policy refuses; over-reporting would refuse a
/// harmless one.
@Suite struct EffectsTests {
    @Test func everySupportedCommandsEffectBitsAreWhatItDoes() {
        let log = EmulatedController.inMemory().effectsLog(for: .nvm)!
        let checked = CommandEffects.logicalBlockContentChange.union(.namespaceCapabilityChange)
            .union(.namespaceInventoryChange).union(.controllerCapabilityChange)
        var observed: [Queue: [UInt8: CommandEffects]] = [.admin: [:], .io: [:]]
        for scenario in scenarios {
            let c = EmulatedController.inMemory(.init(namespaceSize: 16 << 10))
            #expect(write(c, lba: 0, blocks: 32, byte: 0x5A) == S.success)
            scenario.setup(c)
            let before = Snapshot(c)
            let completion = scenario.run(c)
            #expect(completion.status.isSuccess, "\(scenario.name): status 0x\(String(completion.status.rawValue, radix: 16))")
            let seen = before.changes(to: Snapshot(c))
            observed[scenario.queue]![scenario.opcode, default: CommandEffects()] =
                observed[scenario.queue]![scenario.opcode, default: CommandEffects()].union(seen)
        }
        for queue in Queue.allCases {
            let supported = (0...255).map(UInt8.init).filter { log[queue, $0].isSupported }
            #expect(Set(observed[queue]!.keys) == Set(supported), "\(queue): a supported command without a scenario, or the reverse")
            for op in supported {
                let marked = CommandEffects(rawValue: log[queue, op].rawValue & checked.rawValue)
                let seen = observed[queue]![op] ?? CommandEffects()
                #expect(marked == seen, "\(queue) \(hexByte(op)): marked \(marked.names), observed \(seen.names)")
            }
        }
    }

    /// Every opcode the log does not mark is refused with Invalid Command Opcode and carries
    /// no effect bit at all; every marked one is executed.
    @Test func unmarkedCommandsAreNotImplemented() {
        let c = EmulatedController.inMemory()
        let log = c.effectsLog(for: .nvm)!
        for queue in Queue.allCases {
            for op in 0...255 {
                let opcode = UInt8(op)
                var data = [UInt8](repeating: 0, count: 4096)
                let nsid: UInt32 = queue == .io ? 1 : (opcode == 0x0D || opcode == 0x15 ? 0 : 1)
                let status = exec(c, queue, SubmissionQueueEntry(opcode: opcode, nsid: nsid, cdw10: 1), &data).status.rawValue
                if log[queue, opcode].isSupported {
                    #expect(status != S.invalidOpcode, "\(queue) \(hexByte(opcode)) is marked supported")
                } else {
                    #expect(status == S.invalidOpcode, "\(queue) \(hexByte(opcode)) is not marked but did not fail")
                    #expect(log[queue, opcode].rawValue == 0, "\(queue) \(hexByte(opcode)) has effect bits without CSUPP")
                }
            }
        }
    }

    @Test func effectsBitsAreTheDocumentedOnes() {
        let log = EmulatedController.inMemory().effectsLog(for: .nvm)!
        #expect(log[.admin, 0x80].names == ["CSUPP", "LBCC", "NCC", "CSE=1"])   // Format NVM
        #expect(log[.admin, 0x84].names == ["CSUPP", "LBCC", "CSE=2"])          // Sanitize
        #expect(log[.admin, 0x0D].names == ["CSUPP", "NIC"])                    // Namespace Management
        #expect(log[.admin, 0x15].names == ["CSUPP", "NIC"])                    // Namespace Attachment
        #expect(log[.admin, 0x10].names == ["CSUPP", "CCC"])                    // Firmware Commit
        for op: UInt8 in [0x01, 0x04, 0x08, 0x09, 0x19] { #expect(log[.io, op].names == ["CSUPP", "LBCC"]) }
        for op: UInt8 in [0x00, 0x02, 0x05, 0x0C, 0x0D, 0x0E, 0x11, 0x15] { #expect(log[.io, op].names == ["CSUPP"]) }
        let zoned = EmulatedController.inMemory().effectsLog(for: .zoned)!
        #expect((0...255).allSatisfy { !zoned[.io, UInt8($0)].isSupported } && zoned[.admin, 0x06].isSupported)
    }
}

/// Everything an effect bit speaks of, as the controller's own commands show it.
private struct Snapshot {
    /// Per active NSID: every block's Read status and bytes (LBCC: content as a read sees it).
    var blocks: [UInt32: [UInt8]] = [:]
    /// Per active NSID: Identify Namespace (NCC).
    var namespaces: [UInt32: [UInt8]] = [:]
    /// The active and the allocated NSID lists (NIC).
    var inventory: [UInt8]
    /// Identify Controller without UNVMCAP, which counts unallocated capacity rather than
    /// describing a capability (CCC).
    var controller: [UInt8]

    init(_ c: EmulatedController) {
        let active = identify(c, cns: 0x02).1
        inventory = active + identify(c, cns: 0x10).1
        var ctrl = identify(c, cns: 0x01).1
        ctrl.replaceSubrange(296..<312, with: [UInt8](repeating: 0, count: 16))
        controller = ctrl
        for i in 0..<1024 {
            let nsid = le32(active, 4 * i)
            if nsid == 0 { break }
            let page = identify(c, cns: 0x00, nsid: nsid).1
            namespaces[nsid] = page
            let size = 1 << Int(page[128 + 4 * Int(page[26] & 0xF) + 2])
            var bytes: [UInt8] = []
            for lba in 0..<le64(page, 0) {
                let (status, data) = read(c, lba: lba, nsid: nsid, size: size)
                bytes += [UInt8(truncatingIfNeeded: status), UInt8(status >> 8)] + data
            }
            blocks[nsid] = bytes
        }
    }

    /// The effects between this snapshot and `after`; data and namespace capabilities are
    /// compared for namespaces active in both (one that appears or goes is inventory).
    func changes(to after: Snapshot) -> CommandEffects {
        var seen = CommandEffects()
        let both = Set(blocks.keys).intersection(after.blocks.keys)
        if both.contains(where: { blocks[$0] != after.blocks[$0] }) { seen = seen.union(.logicalBlockContentChange) }
        if both.contains(where: { namespaces[$0] != after.namespaces[$0] }) { seen = seen.union(.namespaceCapabilityChange) }
        if inventory != after.inventory { seen = seen.union(.namespaceInventoryChange) }
        if controller != after.controller { seen = seen.union(.controllerCapabilityChange) }
        return seen
    }
}

/// One way to run a command: `setup` brings the controller to where the command can show its
/// effects (not observed), `run` sends the command itself, which must succeed.
private struct Scenario: Sendable {
    let queue: Queue
    let opcode: UInt8
    let name: String
    var setup: @Sendable (EmulatedController) -> Void = { _ in }
    let run: @Sendable (EmulatedController) -> Completion
}

private func createNamespace(_ c: EmulatedController) -> Completion {
    var d = [UInt8](repeating: 0, count: 4096)
    put64(&d, 0, 8); put64(&d, 8, 8)
    return admin(c, 0x0D, 0, data: &d)
}

private func attach(_ c: EmulatedController, nsid: UInt32, detach: Bool = false) -> Completion {
    var d = [UInt8](repeating: 0, count: 4096)
    put16(&d, 0, 1); put16(&d, 2, c.controllerID)
    return admin(c, 0x15, nsid: nsid, detach ? 1 : 0, data: &d)
}

private func downloadFirmware(_ c: EmulatedController) {
    var image = Array("7.7".utf8) + [UInt8](repeating: 0, count: 61)
    admin(c, 0x11, 15, 0, data: &image)
}

private func reservation(_ c: EmulatedController, _ opcode: UInt8, cdw10: UInt32, key: UInt64, other: UInt64 = 0) -> Completion {
    var d = [UInt8](repeating: 0, count: 16)
    put64(&d, 0, key); put64(&d, 8, other)
    return io(c, opcode, cdw12: 0, cdw10: cdw10, cdw11: 0, data: &d)
}

private func withData(_ bytes: [UInt8], _ body: (inout [UInt8]) -> Completion) -> Completion {
    var d = bytes
    return body(&d)
}

private let scenarios: [Scenario] = [
    Scenario(queue: .admin, opcode: 0x02, name: "Get Log Page, SMART") { c in
        withData([UInt8](repeating: 0, count: 512)) { admin(c, 0x02, nsid: 0xFFFF_FFFF, 0x02 | 127 << 16, data: &$0) }
    },
    Scenario(queue: .admin, opcode: 0x02, name: "Get Log Page, Changed Namespace List (read clears it)",
             setup: { c in _ = createNamespace(c); _ = attach(c, nsid: 2) }) { c in
        withData([UInt8](repeating: 0, count: 4096)) { admin(c, 0x02, nsid: 0xFFFF_FFFF, 0x04 | 1023 << 16, data: &$0) }
    },
    Scenario(queue: .admin, opcode: 0x06, name: "Identify Controller") { c in
        withData([UInt8](repeating: 0, count: 4096)) { admin(c, 0x06, 1, data: &$0) }
    },
    Scenario(queue: .admin, opcode: 0x08, name: "Abort") { c in admin(c, 0x08, 0x0001_0000) },
    Scenario(queue: .admin, opcode: 0x09, name: "Set Features, Volatile Write Cache off, saved") { c in
        admin(c, 0x09, 0x06 | 1 << 31, 0)
    },
    Scenario(queue: .admin, opcode: 0x09, name: "Set Features, Temperature Threshold") { c in admin(c, 0x09, 0x04, 300) },
    Scenario(queue: .admin, opcode: 0x09, name: "Set Features, Host Identifier") { c in
        withData([UInt8](repeating: 0xA5, count: 8)) { admin(c, 0x09, 0x81, 0, data: &$0) }
    },
    Scenario(queue: .admin, opcode: 0x09, name: "Set Features, Timestamp") { c in
        withData([UInt8](repeating: 1, count: 8)) { admin(c, 0x09, 0x0E, data: &$0) }
    },
    Scenario(queue: .admin, opcode: 0x0A, name: "Get Features, Volatile Write Cache") { c in admin(c, 0x0A, 0x06) },
    Scenario(queue: .admin, opcode: 0x0C, name: "Asynchronous Event Request with a notice pending",
             setup: { c in admin(c, 0x09, 0x0B, 1 << 8); _ = createNamespace(c); _ = attach(c, nsid: 2) }) { c in
        admin(c, 0x0C)
    },
    Scenario(queue: .admin, opcode: 0x0D, name: "Namespace Management, create") { c in createNamespace(c) },
    Scenario(queue: .admin, opcode: 0x0D, name: "Namespace Management, delete",
             setup: { c in _ = createNamespace(c) }) { c in admin(c, 0x0D, nsid: 2, 1) },
    Scenario(queue: .admin, opcode: 0x10, name: "Firmware Commit, replace and activate now",
             setup: downloadFirmware) { c in admin(c, 0x10, 2 | 3 << 3) },
    Scenario(queue: .admin, opcode: 0x10, name: "Firmware Commit, activate at the next reset",
             setup: downloadFirmware) { c in admin(c, 0x10, 2 | 1 << 3) },
    Scenario(queue: .admin, opcode: 0x11, name: "Firmware Image Download") { c in
        withData([UInt8](repeating: 0x41, count: 64)) { admin(c, 0x11, 15, 0, data: &$0) }
    },
    Scenario(queue: .admin, opcode: 0x14, name: "Device Self-test, short") { c in admin(c, 0x14, nsid: 0xFFFF_FFFF, 1) },
    Scenario(queue: .admin, opcode: 0x15, name: "Namespace Attachment, attach",
             setup: { c in _ = createNamespace(c) }) { c in attach(c, nsid: 2) },
    Scenario(queue: .admin, opcode: 0x15, name: "Namespace Attachment, detach") { c in attach(c, nsid: 1, detach: true) },
    Scenario(queue: .admin, opcode: 0x18, name: "Keep Alive") { c in admin(c, 0x18) },
    Scenario(queue: .admin, opcode: 0x80, name: "Format NVM to 4 KiB blocks") { c in admin(c, 0x80, nsid: 1, 1) },
    Scenario(queue: .admin, opcode: 0x84, name: "Sanitize, Block Erase") { c in admin(c, 0x84, 2) },
    Scenario(queue: .admin, opcode: 0x84, name: "Sanitize, Overwrite") { c in admin(c, 0x84, 3 | 1 << 4, 0x1234_5678) },

    Scenario(queue: .io, opcode: 0x00, name: "Flush") { c in io(c, 0x00) },
    Scenario(queue: .io, opcode: 0x01, name: "Write") { c in
        withData([UInt8](repeating: 0x11, count: 512)) { io(c, 0x01, slba: 3, data: &$0) }
    },
    Scenario(queue: .io, opcode: 0x02, name: "Read") { c in
        withData([UInt8](repeating: 0, count: 512)) { io(c, 0x02, slba: 3, data: &$0) }
    },
    Scenario(queue: .io, opcode: 0x04, name: "Write Uncorrectable") { c in io(c, 0x04, slba: 3) },
    Scenario(queue: .io, opcode: 0x05, name: "Compare, matching") { c in
        withData([UInt8](repeating: 0x5A, count: 512)) { io(c, 0x05, slba: 3, data: &$0) }
    },
    Scenario(queue: .io, opcode: 0x08, name: "Write Zeroes") { c in io(c, 0x08, slba: 3) },
    Scenario(queue: .io, opcode: 0x09, name: "Dataset Management, deallocate") { c in
        var range = [UInt8](repeating: 0, count: 16)
        put32(&range, 4, 2); put64(&range, 8, 4)
        return io(c, 0x09, cdw10: 0, cdw11: 0x4, data: &range)
    },
    Scenario(queue: .io, opcode: 0x0C, name: "Verify") { c in io(c, 0x0C, slba: 3) },
    Scenario(queue: .io, opcode: 0x0D, name: "Reservation Register") { c in reservation(c, 0x0D, cdw10: 0, key: 0, other: 7) },
    Scenario(queue: .io, opcode: 0x0E, name: "Reservation Report") { c in
        withData([UInt8](repeating: 0, count: 64)) { io(c, 0x0E, cdw12: 0, cdw10: 15, cdw11: 0, data: &$0) }
    },
    Scenario(queue: .io, opcode: 0x11, name: "Reservation Acquire, Exclusive Access",
             setup: { c in _ = reservation(c, 0x0D, cdw10: 0, key: 0, other: 7) }) { c in
        reservation(c, 0x11, cdw10: 2 << 8, key: 7)
    },
    Scenario(queue: .io, opcode: 0x15, name: "Reservation Release",
             setup: { c in
                 _ = reservation(c, 0x0D, cdw10: 0, key: 0, other: 7)
                 _ = reservation(c, 0x11, cdw10: 2 << 8, key: 7)
             }) { c in reservation(c, 0x15, cdw10: 2 << 8, key: 7) },
    Scenario(queue: .io, opcode: 0x19, name: "Copy", setup: { c in _ = write(c, lba: 0, byte: 0x22) }) { c in
        var descriptor = [UInt8](repeating: 0, count: 32)
        put64(&descriptor, 8, 0)
        return io(c, 0x19, slba: 8, cdw12: 0, data: &descriptor)
    },
]
