import Testing
@testable import NVMeSpec

@Suite struct StatusTests {
    @Test func fieldDecoding() {
        let status = NVMeStatus(rawValue: 0x4080)
        #expect(status.type == .generic && status.code == 0x80 && status.doNotRetry && !status.more)
        #expect(status.commandRetryDelay == 0 && !status.isSuccess)
        let full = NVMeStatus(rawValue: 0xFFFF)
        #expect(full.rawValue == 0x7FFF && full.more && full.commandRetryDelay == 3 && full.type.rawValue == 7)
        #expect(NVMeStatus(type: .mediaAndDataIntegrity, code: 0x81).rawValue == 0x281)
        #expect(NVMeStatus(type: .commandSpecific, code: 0x09, doNotRetry: true, more: true).rawValue == 0x6109)
        #expect(NVMeStatus.lbaOutOfRange.withDoNotRetry == status)
        #expect(NVMeStatus.success.isSuccess && NVMeStatus(rawValue: 0x1800).isSuccess)
    }

    @Test func namesAndDescriptions() {
        #expect(NVMeStatus(rawValue: 0x4080).name == "LBA Out of Range")
        #expect(NVMeStatus(rawValue: 0x4080).nvmeCLIDescription
                == "LBA Out of Range: The command references an LBA that exceeds the size of the namespace(0x4080)")
        #expect(NVMeStatus(rawValue: 0x4080).description == NVMeStatus(rawValue: 0x4080).nvmeCLIDescription)
        #expect(NVMeStatus(rawValue: 0x281).name == "Unrecovered Read Error")
        #expect(NVMeStatus(rawValue: 0x281).nvmeCLIDescription
                == "Unrecovered Read Error: The read data could not be recovered from the media(0x281)")
        #expect(NVMeStatus.invalidOpcode.withDoNotRetry.nvmeCLIDescription
                == "Invalid Command Opcode: A reserved coded value or an unsupported value in the command opcode field(0x4001)")
        #expect(NVMeStatus(type: .commandSpecific, code: 0x1B).nvmeCLIDescription == "Thin Provisioning Not Supported(0x11b)")
        #expect(NVMeStatus(type: .path, code: 0x71).name == "Command Aborted By Host")
        #expect(NVMeStatus(type: .commandSpecific, code: 0xBF).name == "Invalid Zone State Transition")
        #expect(NVMeStatus(type: .commandSpecific, code: 0x75).name == "Directive Specific")
        #expect(NVMeStatus(type: .generic, code: 0x17).name == "Reserved")
        #expect(NVMeStatus(type: .generic, code: 0xC4).name == "Vendor Specific")
        #expect(NVMeStatus(type: .vendorSpecific, code: 0x01).name == "Vendor Specific")
        #expect(NVMeStatus(type: StatusCodeType(rawValue: 5), code: 0x01).name == "Reserved")
        for raw in 0...0x7FFF { _ = NVMeStatus(rawValue: UInt16(raw)).nvmeCLIDescription }
    }

    @Test func typedStatuses() {
        let expected: [(NVMeStatus, StatusCodeType, UInt8, String)] = [
            (.invalidOpcode, .generic, 0x01, "Invalid Command Opcode"),
            (.invalidField, .generic, 0x02, "Invalid Field in Command"),
            (.dataTransferError, .generic, 0x04, "Data Transfer Error"),
            (.internalError, .generic, 0x06, "Internal Error"),
            (.abortRequested, .generic, 0x07, "Command Abort Requested"),
            (.invalidNamespaceOrFormat, .generic, 0x0B, "Invalid Namespace or Format"),
            (.sanitizeInProgress, .generic, 0x1D, "Sanitize In Progress"),
            (.lbaOutOfRange, .generic, 0x80, "LBA Out of Range"),
            (.capacityExceeded, .generic, 0x81, "Capacity Exceeded"),
            (.reservationConflict, .generic, 0x83, "Reservation Conflict"),
            (.invalidQueueIdentifier, .commandSpecific, 0x01, "Invalid Queue Identifier"),
            (.invalidFirmwareSlot, .commandSpecific, 0x06, "Invalid Firmware Slot"),
            (.invalidFirmwareImage, .commandSpecific, 0x07, "Invalid Firmware Image"),
            (.invalidLogPage, .commandSpecific, 0x09, "Invalid Log Page"),
            (.invalidFormat, .commandSpecific, 0x0A, "Invalid Format"),
            (.featureNotSaveable, .commandSpecific, 0x0D, "Feature Identifier Not Saveable"),
            (.namespaceInsufficientCapacity, .commandSpecific, 0x15, "Namespace Insufficient Capacity"),
            (.namespaceIdentifierUnavailable, .commandSpecific, 0x16, "Namespace Identifier Unavailable"),
            (.namespaceAlreadyAttached, .commandSpecific, 0x18, "Namespace Already Attached"),
            (.namespaceNotAttached, .commandSpecific, 0x1A, "Namespace Not Attached"),
            (.deviceSelfTestInProgress, .commandSpecific, 0x1D, "Device Self-test In Progress"),
            (.unrecoveredReadError, .mediaAndDataIntegrity, 0x81, "Unrecovered Read Error"),
            (.compareFailure, .mediaAndDataIntegrity, 0x85, "Compare Failure"),
        ]
        for (status, type, code, name) in expected {
            #expect(status.type == type && status.code == code && status.name == name && !status.doNotRetry)
        }
    }
}

@Suite struct EffectsTests {
    @Test func bitFields() {
        let e = CommandEffects(supported: true, logicalBlockContentChange: true, namespaceCapabilityChange: true,
                               namespaceInventoryChange: true, controllerCapabilityChange: true, relaxations: 1,
                               submissionAndExecution: 5, uuidSelectionSupported: true, scope: [.namespace, .nvmSubsystem])
        #expect(e.rawValue == 0x1 | 0x2 | 0x4 | 0x8 | 0x10 | 1 << 14 | 5 << 16 | 1 << 19 | (1 << 20 | 1 << 25))
        #expect(e.isSupported && e.relaxations == 1 && e.submissionAndExecution == 5)
        #expect(e.scope == [.namespace, .nvmSubsystem])
        #expect(e.names == ["CSUPP", "LBCC", "NCC", "NIC", "CCC", "CSER=1", "CSE=5", "USS", "CSP=namespace|nvm-subsystem"])
        #expect(e.withoutSubmissionAndExecution.submissionAndExecution == 0)
        #expect(e.withoutSubmissionAndExecution.rawValue == e.rawValue & ~0x7_0000)
        #expect(CommandEffects(rawValue: 0x0007_0000).submissionAndExecution == 7)
        #expect(CommandEffects(rawValue: 0x20).names == ["reserved(13:5)"])
        #expect(CommandEffects(rawValue: 0xFC00_0000).scope.names == ["reserved"])
        #expect(CommandEffects(rawValue: 0x0040_0000).scope.names == ["nvm-set"])
        #expect(CommandEffects.supported.union(.logicalBlockContentChange).rawValue == 3)
        #expect(CommandEffects(rawValue: 0xC000).intersects(CommandEffects.relaxationsMask))
    }

    @Test func logRoundTrip() throws {
        var log = CommandEffectsLog()
        log[.admin, 0x06] = .supported
        log[.admin, 0xFF] = CommandEffects(rawValue: 0xDEAD_BEEF)
        log[.io, 0x01] = CommandEffects(supported: true, logicalBlockContentChange: true)
        log[.io, 0xFF] = CommandEffects(rawValue: 0x1234_5678)
        let bytes = log.bytes
        #expect(bytes.count == 4096)
        #expect(Array(bytes[24..<28]) == [1, 0, 0, 0])
        #expect(Array(bytes[1020..<1024]) == [0xEF, 0xBE, 0xAD, 0xDE])
        #expect(Array(bytes[1028..<1032]) == [3, 0, 0, 0])
        #expect(Array(bytes[2044..<2048]) == [0x78, 0x56, 0x34, 0x12])
        #expect(bytes[2048...].allSatisfy { $0 == 0 })
        let back = try #require(CommandEffectsLog(bytes))
        #expect(back == log)
        #expect(back[.io, 0x01].contains(.logicalBlockContentChange))
        #expect(CommandEffectsLog([UInt8](repeating: 0, count: 4095)) == nil)
        #expect(CommandEffectsLog([UInt8](repeating: 0, count: 4097)) == nil)
        #expect(CommandEffectsLog([]) == nil)
    }
}
