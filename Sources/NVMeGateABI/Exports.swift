#if canImport(Glibc)
import Glibc
#endif
import CNVMeGate
import NVMeGate
import NVMeSpec
import NVMeTargets

// The C ABI of nvmegate.h. `@c @implementation` makes the compiler check each function
// against its prototype in the header. Swift errors never cross this boundary: failures
// become NULL or -1 with errno, as C callers expect.

/// Writes `message` into the caller's `err` buffer (truncated, NUL-terminated).
private func report(_ message: String, into err: UnsafeMutablePointer<CChar>?, length: Int) {
    guard let err, length > 0 else { return }
    let bytes = Array(message.utf8.prefix(length - 1))
    for (i, b) in bytes.enumerated() { err[i] = CChar(bitPattern: b) }
    err[bytes.count] = 0
}

private func gate(_ pointer: OpaquePointer?) -> Gate? {
    guard let pointer else { return nil }
    return Unmanaged<Gate>.fromOpaque(UnsafeRawPointer(pointer)).takeUnretainedValue()
}

@c @implementation
public func nvmegate_create(_ policyPath: UnsafePointer<CChar>?, _ target: UnsafePointer<CChar>?,
                            _ err: UnsafeMutablePointer<CChar>?, _ errLength: Int) -> OpaquePointer? {
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
    do { opened = try Target.attach(target.map { String(cString: $0) } ?? Target.defaultSpec) } catch {
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
    Unmanaged<Gate>.fromOpaque(UnsafeRawPointer(gate)).release()
}

@c @implementation
public func nvmegate_open(_ gatePointer: OpaquePointer?, _ node: UnsafePointer<CChar>?, _ oflags: Int32,
                          _ caller: UnsafePointer<nvmegate_caller>?) -> Int32 {
    guard let gate = gate(gatePointer), let node else { errno = EFAULT; return -1 }
    let access = oflags & O_ACCMODE
    guard access == O_RDONLY || access == O_RDWR || access == O_WRONLY else { errno = EINVAL; return -1 }
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
    guard let gate = gate(gatePointer) else { errno = EFAULT; return -1 }
    let result = gate.close(handle)
    guard result == 0 else { errno = -result; return -1 }
    return 0
}

@c @implementation
public func nvmegate_ioctl(_ gatePointer: OpaquePointer?, _ handle: Int32, _ request: UInt,
                           _ argument: UnsafeMutableRawPointer?) -> Int32 {
    guard let gate = gate(gatePointer) else { errno = EFAULT; return -1 }
    switch gate.ioctl(handle, request: request, argument: argument) {
    case .returned(let value): return value
    case .failed(let code): errno = code; return -1
    }
}

@c @implementation
public func nvmegate_check_batch(_ gatePointer: OpaquePointer?, _ handle: Int32, _ queue: Int32,
                                 _ sqes: UnsafeRawPointer?, _ count: Int, _ verdicts: UnsafeMutablePointer<UInt8>?) -> Int {
    guard let gate = gate(gatePointer) else { errno = EFAULT; return -1 }
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
    guard let gate = gate(gatePointer), let policyPath else { errno = EFAULT; return -1 }
    do {
        try gate.reload(path: String(cString: policyPath))
    } catch {
        report(error.description, into: err, length: errLength)
        errno = EINVAL
        return -1
    }
    return 0
}
