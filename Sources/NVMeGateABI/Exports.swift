#if canImport(Glibc)
import Glibc
#endif
import CNVMeBrokerClient
import CNVMeGate
import NVMeGate
import NVMeSpec
import NVMeTargets

// The C ABI of nvmegate.h. `@c @implementation` makes the compiler check each function
// against its prototype in the header. Swift errors never cross this boundary: failures
// become NULL or -1 with errno, as C callers expect.
//
// An `nvmegate *` is one of two things, told apart by its low bit (one branch per call):
// - a gate in this process: `Unmanaged<Gate>`, an object pointer, so bit 0 is clear;
// - a connection to a broker (target "unix:PATH"): the C client's `nvmegate_client *` with
//   bit 0 set (malloc's memory is at least 8-byte aligned, so the bit is free).

/// Writes `message` into the caller's `err` buffer (truncated, NUL-terminated).
private func report(_ message: String, into err: UnsafeMutablePointer<CChar>?, length: Int) {
    guard let err, length > 0 else { return }
    let bytes = Array(message.utf8.prefix(length - 1))
    for (i, b) in bytes.enumerated() { err[i] = CChar(bitPattern: b) }
    err[bytes.count] = 0
}

/// The target spec prefix that makes a gate forward to a broker: "unix:/run/nvmegate.sock".
private let brokerPrefix = "unix:"

/// The broker connection behind `pointer`, nil for a gate in this process.
@inline(__always)
private func brokerClient(_ pointer: OpaquePointer) -> OpaquePointer? {
    let bits = UInt(bitPattern: pointer)
    return bits & 1 == 0 ? nil : OpaquePointer(bitPattern: bits & ~1)
}

/// The gate in this process behind `pointer` (not a broker connection).
@inline(__always)
private func localGate(_ pointer: OpaquePointer) -> Gate {
    Unmanaged<Gate>.fromOpaque(UnsafeRawPointer(pointer)).takeUnretainedValue()
}

/// Connects to the broker at `path` (the part of "unix:PATH" after the prefix); the policy
/// file is not read: the broker's policy applies. NULL with errno and "PATH: reason" in err.
private func connectBroker(_ path: Substring, _ err: UnsafeMutablePointer<CChar>?, _ errLength: Int) -> OpaquePointer? {
    guard let client = nvmegate_client_connect(String(path), NVMEGATE_CLIENT_CLOEXEC, err, errLength) else { return nil }
    return OpaquePointer(bitPattern: UInt(bitPattern: client) | 1)
}

@c @implementation
public func nvmegate_create(_ policyPath: UnsafePointer<CChar>?, _ target: UnsafePointer<CChar>?,
                            _ err: UnsafeMutablePointer<CChar>?, _ errLength: Int) -> OpaquePointer? {
    let spec = target.map { String(cString: $0) } ?? Target.defaultSpec
    if spec.hasPrefix(brokerPrefix) { return connectBroker(spec.dropFirst(brokerPrefix.count), err, errLength) }
    let policy: Policy
    if let policyPath {
        do { policy = try Policy.load(path: String(cString: policyPath)) } catch {
            report(error.description, into: err, length: errLength)
            errno = EINVAL
            return nil
        }
    } else {
        policy = .kernel
    }
    let opened: Target.Opened
    do { opened = try Target.attach(spec) } catch {
        report(error.description, into: err, length: errLength)
        errno = error.errno
        return nil
    }
    let gate = Gate(controller: opened.controller, policy: policy, controllerNumber: opened.controllerNumber)
    return OpaquePointer(Unmanaged.passRetained(gate).toOpaque())
}

@c @implementation
public func nvmegate_destroy(_ gate: OpaquePointer?) {
    guard let gate else { return }
    if let client = brokerClient(gate) { return nvmegate_client_destroy(client) }
    Unmanaged<Gate>.fromOpaque(UnsafeRawPointer(gate)).release()
}

@c @implementation
public func nvmegate_open(_ gatePointer: OpaquePointer?, _ node: UnsafePointer<CChar>?, _ oflags: Int32,
                          _ caller: UnsafePointer<nvmegate_caller>?) -> Int32 {
    guard let gatePointer, let node else { errno = EFAULT; return -1 }
    let access = oflags & O_ACCMODE
    guard access == O_RDONLY || access == O_RDWR || access == O_WRONLY else { errno = EINVAL; return -1 }
    // The broker knows its caller from the connection (SO_PEERCRED): `caller` is not sent.
    if let client = brokerClient(gatePointer) { return nvmegate_client_open(client, node, oflags, nil) }
    let gate = localGate(gatePointer)
    let who: Caller = if let caller {
        Caller(uid: caller.pointee.uid, gid: caller.pointee.gid,
               capabilities: Capabilities(rawValue: caller.pointee.capabilities))
    } else {
        Caller.currentProcess()
    }
    let handle = gate.open(node: String(cString: node), writable: access != O_RDONLY, caller: who)
    guard handle >= 0 else { errno = -handle; return -1 }
    return handle
}

@c @implementation
public func nvmegate_close(_ gatePointer: OpaquePointer?, _ handle: Int32) -> Int32 {
    guard let gatePointer else { errno = EFAULT; return -1 }
    if let client = brokerClient(gatePointer) { return nvmegate_client_close(client, handle) }
    let result = localGate(gatePointer).close(handle)
    guard result == 0 else { errno = -result; return -1 }
    return 0
}

@c @implementation
public func nvmegate_ioctl(_ gatePointer: OpaquePointer?, _ handle: Int32, _ request: UInt,
                           _ argument: UnsafeMutableRawPointer?) -> Int32 {
    guard let gatePointer else { errno = EFAULT; return -1 }
    if let client = brokerClient(gatePointer) { return nvmegate_client_ioctl(client, handle, request, argument) }
    switch localGate(gatePointer).ioctl(handle, request: request, argument: argument) {
    case .returned(let value): return value
    case .failed(let code): errno = code; return -1
    }
}

@c @implementation
public func nvmegate_check_batch(_ gatePointer: OpaquePointer?, _ handle: Int32, _ queue: Int32,
                                 _ sqes: UnsafeRawPointer?, _ count: Int, _ verdicts: UnsafeMutablePointer<UInt8>?) -> Int {
    guard let gatePointer else { errno = EFAULT; return -1 }
    if let client = brokerClient(gatePointer) { return nvmegate_client_check_batch(client, handle, queue, sqes, count, verdicts) }
    let gate = localGate(gatePointer)
    guard queue == 0 || queue == 1 else { errno = EINVAL; return -1 }
    if count == 0 {
        guard gate.handleState(handle) != nil else { errno = EBADF; return -1 }
        return 0
    }
    guard let sqes, let verdicts else { errno = EFAULT; return -1 }
    let (bytes, overflow) = count.multipliedReportingOverflow(by: SubmissionEntry.size)
    guard !overflow else { errno = EINVAL; return -1 }
    let span = unsafe RawSpan(_unsafeStart: sqes, byteCount: bytes)
    let result = gate.checkBatch(handle, queue: queue == 0 ? .admin : .io, entries: span, verdicts: verdicts)
    guard result >= 0 else { errno = Int32(-result); return -1 }
    return result
}

@c @implementation
public func nvmegate_reload(_ gatePointer: OpaquePointer?, _ policyPath: UnsafePointer<CChar>?,
                           _ err: UnsafeMutablePointer<CChar>?, _ errLength: Int) -> Int32 {
    guard let gatePointer, let policyPath else { errno = EFAULT; return -1 }
    // A broker reloads its own policy (SIGHUP to `nvmegate serve`); a client may not.
    guard brokerClient(gatePointer) == nil else {
        report("a unix: gate cannot reload: the broker reloads its policy on SIGHUP", into: err, length: errLength)
        errno = EOPNOTSUPP
        return -1
    }
    let gate = localGate(gatePointer)
    do {
        try gate.reload(path: String(cString: policyPath))
    } catch {
        report(error.description, into: err, length: errLength)
        errno = EINVAL
        return -1
    }
    return 0
}
