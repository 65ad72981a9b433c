import Testing
@testable import NVMeSpec

@Suite struct OpcodeTableTests {
    /// Reference §4.1 (NVMe Base 2.3, Figure "Opcodes for Admin Commands").
    static let admin: [(UInt8, String, DataDirection)] = [
        (0x00, "Delete I/O Submission Queue", .none), (0x01, "Create I/O Submission Queue", .hostToController),
        (0x02, "Get Log Page", .controllerToHost), (0x04, "Delete I/O Completion Queue", .none),
        (0x05, "Create I/O Completion Queue", .hostToController), (0x06, "Identify", .controllerToHost),
        (0x08, "Abort", .none), (0x09, "Set Features", .hostToController), (0x0A, "Get Features", .controllerToHost),
        (0x0C, "Asynchronous Event Request", .none), (0x0D, "Namespace Management", .hostToController),
        (0x10, "Firmware Commit", .none), (0x11, "Firmware Image Download", .hostToController),
        (0x14, "Device Self-test", .none), (0x15, "Namespace Attachment", .hostToController),
        (0x18, "Keep Alive", .none), (0x19, "Directive Send", .hostToController),
        (0x1A, "Directive Receive", .controllerToHost), (0x1C, "Virtualization Management", .none),
        (0x1D, "NVMe-MI Send", .hostToController), (0x1E, "NVMe-MI Receive", .controllerToHost),
        (0x20, "Capacity Management", .none), (0x21, "Discovery Information Management", .hostToController),
        (0x22, "Fabric Zoning Receive", .controllerToHost), (0x24, "Lockdown", .none),
        (0x25, "Fabric Zoning Lookup", .hostToController), (0x28, "Clear Exported NVM Resource Configuration", .none),
        (0x29, "Fabric Zoning Send", .hostToController), (0x2A, "Create Exported NVM Subsystem", .controllerToHost),
        (0x2D, "Manage Exported NVM Subsystem", .hostToController),
        (0x31, "Manage Exported Namespace", .hostToController), (0x35, "Manage Exported Port", .hostToController),
        (0x38, "Cross-Controller Reset", .none), (0x39, "Send Discovery Log Page", .hostToController),
        (0x3D, "Track Send", .hostToController), (0x3E, "Track Receive", .controllerToHost),
        (0x41, "Migration Send", .hostToController), (0x42, "Migration Receive", .controllerToHost),
        (0x45, "Controller Data Queue", .hostToController), (0x7C, "Doorbell Buffer Config", .none),
        (0x7F, "Fabrics", .bidirectional), (0x80, "Format NVM", .none), (0x81, "Security Send", .hostToController),
        (0x82, "Security Receive", .controllerToHost), (0x84, "Sanitize", .none),
        (0x85, "Load Program", .hostToController), (0x86, "Get LBA Status", .controllerToHost),
        (0x88, "Program Activation Management", .none), (0x89, "Memory Range Set Management", .hostToController),
        (0x8C, "Sanitize Namespace", .none),
    ]

    @Test(arguments: admin)
    func adminOpcode(opcode: UInt8, name: String, direction: DataDirection) throws {
        for set in [CommandSet.nvm, .keyValue, .zoned] {
            let info = try #require(OpcodeTable.info(queue: .admin, commandSet: set, opcode: opcode))
            #expect(info.name == name)
            #expect(info.direction == direction)
            #expect(info.opcode == opcode)
        }
        #expect(AdminOpcode(rawValue: opcode).name == name)
    }

    @Test func adminTableListsExactlyTheReference() {
        let listed = OpcodeTable.all(queue: .admin, commandSet: .nvm).map(\.opcode)
        #expect(listed == Self.admin.map(\.0))
    }

    @Test func typedConstantsMatchTheTables() {
        #expect(AdminOpcode.identify.rawValue == 0x06 && AdminOpcode.identify.name == "Identify")
        #expect(AdminOpcode.sanitizeNamespace.name == "Sanitize Namespace")
        #expect(IOOpcode.writeZeroes.name == "Write Zeroes")
        #expect(IOOpcode.ioManagementSend.name == "I/O Management Send")
        #expect(ZonedOpcode.zoneAppend.name == "Zone Append")
        #expect(KeyValueOpcode.exist.name == "Exist")
        #expect(FabricsCommandType.connect.name == "Connect")
        #expect(FabricsCommandType.propertyGet.direction == .none)
        #expect(FabricsCommandType.authenticationReceive.direction == .controllerToHost)
    }

    @Test func ioOpcodesDependOnTheCommandSet() throws {
        #expect(OpcodeTable.name(queue: .io, commandSet: .nvm, opcode: 0x01) == "Write")
        #expect(OpcodeTable.name(queue: .io, commandSet: .zoned, opcode: 0x01) == "Write")
        #expect(OpcodeTable.name(queue: .io, commandSet: .keyValue, opcode: 0x01) == "Store")
        #expect(OpcodeTable.name(queue: .io, commandSet: .keyValue, opcode: 0x02) == "Retrieve")
        #expect(OpcodeTable.name(queue: .io, commandSet: .zoned, opcode: 0x7D) == "Zone Append")
        #expect(OpcodeTable.info(queue: .io, commandSet: .nvm, opcode: 0x7D) == nil)
        #expect(OpcodeTable.info(queue: .io, commandSet: .keyValue, opcode: 0x7D) == nil)
        #expect(OpcodeTable.name(queue: .io, commandSet: .keyValue, opcode: 0x19) == "Reserved")
        #expect(OpcodeTable.name(queue: .io, commandSet: .nvm, opcode: 0x19) == "Copy")
        let zoned = OpcodeTable.all(queue: .io, commandSet: .zoned).map(\.opcode)
        let nvm = OpcodeTable.all(queue: .io, commandSet: .nvm).map(\.opcode)
        #expect(zoned == (nvm + [0x79, 0x7A, 0x7D]).sorted())
        #expect(nvm == [0x00, 0x01, 0x02, 0x04, 0x05, 0x08, 0x09, 0x0C, 0x0D, 0x0E, 0x11, 0x12, 0x15, 0x18, 0x19,
                        0x1D, 0x7F])
        #expect(OpcodeTable.all(queue: .io, commandSet: .keyValue).map(\.opcode)
                == [0x00, 0x01, 0x02, 0x06, 0x0D, 0x0E, 0x10, 0x11, 0x14, 0x15, 0x7F])
        let write = try #require(OpcodeTable.info(queue: .io, commandSet: .nvm, opcode: 0x01))
        #expect(write.direction == .hostToController && write.namespaceUse == .yes && write.broadcastAllowed == false)
        let flush = try #require(OpcodeTable.info(queue: .io, commandSet: .nvm, opcode: 0x00))
        #expect(flush.broadcastAllowed == true)
        let identify = try #require(OpcodeTable.info(queue: .admin, commandSet: .nvm, opcode: 0x06))
        #expect(identify.namespaceUse == .dependsOnField)
        let fabrics = try #require(OpcodeTable.info(queue: .io, commandSet: .keyValue, opcode: 0x7F))
        #expect(fabrics.name == "Fabrics" && fabrics.direction == .bidirectional && fabrics.namespaceUse == .no)
    }

    @Test func displayNamesAndVendorRanges() {
        #expect(OpcodeTable.displayName(queue: .io, commandSet: .nvm, opcode: 0x01) == "Write (01h)")
        #expect(OpcodeTable.displayName(queue: .admin, commandSet: .nvm, opcode: 0x06) == "Identify (06h)")
        #expect(OpcodeTable.displayName(queue: .admin, commandSet: .nvm, opcode: 0xC5) == "Vendor Specific (C5h)")
        #expect(OpcodeTable.displayName(queue: .admin, commandSet: .nvm, opcode: 0x03) == "Reserved (03h)")
        #expect(OpcodeTable.displayName(queue: .admin, commandSet: .nvm, opcode: 0x90) == "Reserved (90h)")
        #expect(OpcodeTable.displayName(queue: .io, commandSet: .nvm, opcode: 0x90) == "Vendor Specific (90h)")
        #expect(OpcodeTable.displayName(queue: .io, commandSet: .nvm, opcode: 0x03) == "Reserved (03h)")
        #expect(OpcodeTable.info(queue: .io, commandSet: .zoned, opcode: 0xFF)?.name == "Vendor Specific")
        #expect(OpcodeTable.info(queue: .io, commandSet: .computationalPrograms, opcode: 0x01) == nil)
        #expect(OpcodeTable.info(queue: .io, commandSet: .computationalPrograms, opcode: 0x81)?.name == "Vendor Specific")
        #expect(OpcodeTable.fabricsTypeName(0x08) == "Disconnect")
        #expect(OpcodeTable.fabricsTypeName(0x02) == "Reserved")
        #expect(OpcodeTable.fabricsTypeName(0xC1) == "Vendor Specific")
        #expect(AdminOpcode(rawValue: 0xC0).isVendorSpecific && !AdminOpcode.formatNVM.isVendorSpecific)
        #expect(IOOpcode(rawValue: 0x80).isVendorSpecific && !IOOpcode.fabrics.isVendorSpecific)
    }

    @Test func everyOpcodeInEveryQueueAndCommandSet() {
        let sets: [CommandSet] = [.nvm, .keyValue, .zoned, .subsystemLocalMemory, .computationalPrograms,
                                  CommandSet(rawValue: 0x30), CommandSet(rawValue: 0xFF)]
        for queue in Queue.allCases {
            for set in sets {
                for op in 0...0xFF {
                    let opcode = UInt8(op)
                    let info = OpcodeTable.info(queue: queue, commandSet: set, opcode: opcode)
                    let display = OpcodeTable.displayName(queue: queue, commandSet: set, opcode: opcode)
                    #expect(display.hasSuffix("(" + hexByte(opcode) + ")"))
                    if let info {
                        #expect(info.direction == DataDirection(opcode: opcode))
                        #expect(display.hasPrefix(info.name))
                    } else {
                        #expect(display.hasPrefix("Reserved"))
                    }
                }
            }
        }
    }
}

@Suite struct IdentifierTests {
    @Test func identifyCNS() {
        #expect(IdentifyCNS.controller.name == "Identify Controller")
        #expect(IdentifyCNS(rawValue: 0x05).name == "I/O Command Set specific Identify Namespace")
        #expect(IdentifyCNS(rawValue: 0x0B).name == "Reserved")
        #expect(IdentifyCNS(rawValue: 0xFF).name == "Reserved")
        #expect(IdentifyCNS.ioCommandSetIndependentNamespace.displayName
                == "I/O Command Set Independent Identify Namespace (08h)")
        let addressing = (0...0xFF).filter { IdentifyCNS(rawValue: UInt8($0)).addressesNamespace }
        #expect(addressing == [0x00, 0x03, 0x05, 0x08, 0x11, 0x12, 0x1B])
        let csi = (0...0xFF).filter { IdentifyCNS(rawValue: UInt8($0)).requiresCSI }
        #expect(csi == [0x05, 0x06, 0x07, 0x0A, 0x1A, 0x1B])
        #expect(IdentifyCNS.activeNamespaceIDList.usesNSIDAsListStart && !IdentifyCNS.namespace.usesNSIDAsListStart)
        // libnvme 1.3's enum nvme_identify_cns: 00h–0Ah and 10h–1Ch are all named.
        for cns in Array(0x00...0x0A) + Array(0x10...0x1C) { #expect(IdentifyCNS(rawValue: UInt8(cns)).name != "Reserved") }
    }

    @Test func logPageIDs() {
        #expect(LogPageID.smartHealthInformation.name == "SMART / Health Information")
        #expect(LogPageID(rawValue: 0x05).name == "Commands Supported and Effects")
        #expect(LogPageID(rawValue: 0x12).name == "Feature Identifiers Supported and Effects")
        #expect(LogPageID(rawValue: 0x1C).name == "Changed Allocated Namespace List")
        #expect(LogPageID(rawValue: 0x70).name == "Discovery")
        #expect(LogPageID(rawValue: 0x81).name == "Sanitize Status")
        #expect(LogPageID(rawValue: 0xBF).name == "Changed Zone List")
        #expect(LogPageID(rawValue: 0x90).name == "I/O Command Set Specific")
        #expect(LogPageID(rawValue: 0xC0).name == "Vendor Specific" && LogPageID(rawValue: 0xC0).isVendorSpecific)
        #expect(LogPageID(rawValue: 0x1D).name == "Reserved" && !LogPageID(rawValue: 0x1D).isVendorSpecific)
        #expect(LogPageID.errorInformation.displayName == "Error Information (01h)")
    }

    @Test func featureIDs() {
        #expect(FeatureID.volatileWriteCache.name == "Volatile Write Cache")
        #expect(FeatureID(rawValue: 0x0B).name == "Asynchronous Event Configuration")
        #expect(FeatureID(rawValue: 0x84).name == "Namespace Write Protection Config")
        #expect(FeatureID(rawValue: 0x00).name == "Reserved")
        #expect(FeatureID(rawValue: 0xC3).name == "Vendor Specific" && FeatureID(rawValue: 0xC3).isVendorSpecific)
        #expect(FeatureID.temperatureThreshold.displayName == "Temperature Threshold (04h)")
        let scoped = (0...0xFF).filter { FeatureID(rawValue: UInt8($0)).isNamespaceScoped }
        #expect(scoped == [0x03, 0x05, 0x1F, 0x7F, 0x82, 0x83, 0x84])
        // libnvme 1.3's enum nvme_features_id: 01h–1Ah, 1Dh, 1Eh, 7Dh–84h are all named.
        for fid in Array(0x01...0x1A) + [0x1D, 0x1E] + Array(0x7D...0x84) {
            #expect(FeatureID(rawValue: UInt8(fid)).name != "Reserved")
        }
    }
}
