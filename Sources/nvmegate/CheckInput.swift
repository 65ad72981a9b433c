import NVMeGate
import NVMeSpec

/// What is wrong with one input line of `policy check`.
struct InputError: Error {
    var message: String
    init(_ message: String) { self.message = message }
}

/// Reads one `policy check --jsonl` input object into a request:
///
///     {"ioctl":"admin"|"io"|"admin64"|"io64",
///      "handle":{"kind":"controller"|"namespace"|"generic"|"partition","nsid":1,"write":true,
///                "partition":{"start":2048,"blocks":4096}},
///      "caller":{"uid":1000,"gid":1000,"caps":["CAP_SYS_ADMIN", 21],"name":"db"},
///      "cmd":{"opcode":2,"flags":0,"nsid":1,"cdw2":0,"cdw3":0,"cdw10":0,…,"cdw15":0,
///             "data_len":4096,"metadata_len":0}}
///
/// Numbers may also be strings in decimal or `0x` hex ("0x06"). Only `ioctl`, `handle.kind`
/// (with `handle.nsid` for namespace nodes) and `cmd.opcode` are required; the caller
/// defaults to uid and gid 1000 with no capabilities and no name, and a partition handle's
/// blocks to `--partition` (see `PassthruSimulator`). Unknown keys
/// inside `handle`, `caller` and `cmd` are errors (a misspelt field would silently be 0);
/// unknown top-level keys are ignored, so a line may carry its own label or expectation.
enum CheckInput {
    static func request(from json: JSONValue) throws(InputError) -> PassthruRequest {
        guard case .object(let members) = json else {
            throw InputError("expected a JSON object, got \(json.kindDescription)")
        }
        var ioctl: PassthruIoctl?
        var handle: (kind: NodeKind, nsid: UInt32?, writable: Bool, partition: LBARange?)?
        var caller = Caller(uid: 1000, gid: 1000)
        var command: (entry: SubmissionQueueEntry, dataLength: UInt32?, metadataLength: UInt32)?
        for (key, value) in members {
            switch key {
            case "ioctl":
                guard case .string(let name) = value, let parsed = PassthruIoctl(rawValue: name) else {
                    throw InputError("ioctl: expected \"admin\", \"io\", \"admin64\" or \"io64\", got \(describe(value))")
                }
                ioctl = parsed
            case "handle": handle = try readHandle(value)
            case "caller": caller = try readCaller(value)
            case "cmd": command = try readCommand(value)
            default: continue
            }
        }
        guard let ioctl else { throw InputError("missing ioctl") }
        guard let handle else { throw InputError("missing handle") }
        guard let command else { throw InputError("missing cmd") }
        let nsid: UInt32
        if handle.kind == .controller {
            nsid = 0
        } else {
            guard let given = handle.nsid, given != 0 else {
                throw InputError("handle.nsid: a \(kindName(handle.kind)) handle needs its namespace's NSID (1 or more)")
            }
            nsid = given
        }
        return PassthruRequest(
            ioctl: ioctl,
            handle: HandleContext(kind: handle.kind, writable: handle.writable, commandSet: .nvm, nsid: nsid,
                                  profile: 0, capabilities: caller.capabilities,
                                  partition: handle.partition ?? LBARange(start: 0, count: 0)),
            caller: caller, command: command.entry,
            dataLength: command.dataLength, metadataLength: command.metadataLength)
    }

    static func readHandle(_ value: JSONValue) throws(InputError)
        -> (kind: NodeKind, nsid: UInt32?, writable: Bool, partition: LBARange?) {
        let members = try object(value, "handle")
        var kind: NodeKind?
        var nsid: UInt32?
        var writable = false
        var partition: LBARange?
        for (key, value) in members {
            switch key {
            case "kind":
                guard case .string(let name) = value, let parsed = nodeKind(name) else {
                    throw InputError("handle.kind: expected \"controller\", \"namespace\", \"generic\" or \"partition\", got \(describe(value))")
                }
                kind = parsed
            case "nsid": nsid = try number(value, "handle.nsid", as: UInt32.self)
            case "write":
                guard case .bool(let flag) = value else {
                    throw InputError("handle.write: expected true or false, got \(describe(value))")
                }
                writable = flag
            case "partition": partition = try readPartition(value)
            default: throw InputError("handle.\(key): unknown key; expected kind, nsid, write or partition")
            }
        }
        guard let kind else { throw InputError("missing handle.kind") }
        if partition != nil && kind != .partition {
            throw InputError("handle.partition: only a partition handle has one (this one is \(kindName(kind)))")
        }
        return (kind, nsid, writable, partition)
    }

    /// `{"start":2048,"blocks":4096}`: the blocks of the namespace a partition node covers.
    static func readPartition(_ value: JSONValue) throws(InputError) -> LBARange {
        var start: UInt64?
        var blocks: UInt64?
        for (key, value) in try object(value, "handle.partition") {
            switch key {
            case "start": start = try number(value, "handle.partition.start", as: UInt64.self)
            case "blocks": blocks = try number(value, "handle.partition.blocks", as: UInt64.self)
            default: throw InputError("handle.partition.\(key): unknown key; expected start or blocks")
            }
        }
        guard let start, let blocks, blocks > 0 else {
            throw InputError("handle.partition: expected {\"start\":LBA,\"blocks\":COUNT} with 1 block or more")
        }
        guard !start.addingReportingOverflow(blocks).overflow else {
            throw InputError("handle.partition: start + blocks overflows 64 bits")
        }
        return LBARange(start: start, count: blocks)
    }

    static func readCaller(_ value: JSONValue) throws(InputError) -> Caller {
        let members = try object(value, "caller")
        var caller = Caller(uid: 1000, gid: 1000)
        for (key, value) in members {
            switch key {
            case "uid": caller.uid = try number(value, "caller.uid", as: UInt32.self)
            case "gid": caller.gid = try number(value, "caller.gid", as: UInt32.self)
            case "name":
                guard case .string(let name) = value else {
                    throw InputError("caller.name: expected a string, got \(describe(value))")
                }
                caller.name = name
            case "caps":
                guard case .array(let items) = value else {
                    throw InputError("caller.caps: expected a list of capability names or numbers, got \(describe(value))")
                }
                for item in items {
                    let capability: Capabilities?
                    switch item {
                    case .string(let text): capability = Capabilities(nameOrNumber: text)
                    case .number(let text): capability = parseUnsigned(text).flatMap { Capabilities(number: $0) }
                    default: capability = nil
                    }
                    guard let capability else {
                        throw InputError("caller.caps: \(describe(item)) is not a Linux capability name (CAP_SYS_ADMIN) or number (0 to 63)")
                    }
                    caller.capabilities.insert(capability)
                }
            default: throw InputError("caller.\(key): unknown key; expected uid, gid, caps or name")
            }
        }
        return caller
    }

    static func readCommand(_ value: JSONValue) throws(InputError)
        -> (entry: SubmissionQueueEntry, dataLength: UInt32?, metadataLength: UInt32) {
        let members = try object(value, "cmd")
        var entry = SubmissionQueueEntry()
        var opcode: UInt8?
        var dataLength: UInt32?
        var metadataLength: UInt32 = 0
        for (key, value) in members {
            switch key {
            case "opcode": opcode = try number(value, "cmd.opcode", as: UInt8.self)
            case "flags": entry.flags = try number(value, "cmd.flags", as: UInt8.self)
            case "nsid": entry.nsid = try number(value, "cmd.nsid", as: UInt32.self)
            case "cdw2": entry.dwords[2] = try number(value, "cmd.cdw2", as: UInt32.self)
            case "cdw3": entry.dwords[3] = try number(value, "cmd.cdw3", as: UInt32.self)
            case "cdw10", "cdw11", "cdw12", "cdw13", "cdw14", "cdw15":
                let index = Int(key.utf8.last! - UInt8(ascii: "0"))
                entry[cdw: index] = try number(value, "cmd." + key, as: UInt32.self)
            case "data_len": dataLength = try number(value, "cmd.data_len", as: UInt32.self)
            case "metadata_len": metadataLength = try number(value, "cmd.metadata_len", as: UInt32.self)
            default:
                throw InputError("cmd.\(key): unknown key; expected opcode, flags, nsid, cdw2, cdw3, cdw10 to cdw15, data_len or metadata_len")
            }
        }
        guard let opcode else { throw InputError("missing cmd.opcode") }
        entry.opcode = opcode
        return (entry, dataLength, metadataLength)
    }

    // MARK: Typed values

    static func object(_ value: JSONValue, _ path: String) throws(InputError) -> [(key: String, value: JSONValue)] {
        guard case .object(let members) = value else {
            throw InputError("\(path): expected an object, got \(describe(value))")
        }
        return members
    }

    /// An unsigned integer that fits `Value`: a JSON integer, or a string in decimal or `0x` hex.
    static func number<Value: FixedWidthInteger & UnsignedInteger>(
        _ value: JSONValue, _ path: String, as type: Value.Type
    ) throws(InputError) -> Value {
        let parsed: UInt64?
        switch value {
        case .number(let text), .string(let text): parsed = parseUnsigned(text)
        default: parsed = nil
        }
        guard let parsed, let result = Value(exactly: parsed) else {
            throw InputError("\(path): expected an integer from 0 to \(Value.max) (or a string such as \"0x1F\"), got \(describe(value))")
        }
        return result
    }

    static func nodeKind(_ name: String) -> NodeKind? {
        switch name {
        case "controller": .controller
        case "namespace": .namespace
        case "generic": .generic
        case "partition": .partition
        default: nil
        }
    }

    static func kindName(_ kind: NodeKind) -> String {
        switch kind {
        case .controller: "controller"
        case .namespace: "namespace"
        case .generic: "generic"
        case .partition: "partition"
        }
    }

    /// A value as it appears in a message: strings and numbers as written, others by kind.
    static func describe(_ value: JSONValue) -> String {
        switch value {
        case .string(let text): "\"\(text)\""
        case .number(let text): text
        case .bool(let flag): flag ? "true" : "false"
        default: value.kindDescription
        }
    }
}
