#if canImport(Glibc)
import Glibc
#endif

/// Asks a broker for its counters: one METRICS request on a new connection to the socket
/// at `path` (`nvmegate metrics --socket PATH`). Returns the Prometheus text; throws with
/// the errno the broker answered (EACCES for a caller other than root and the broker's
/// user), a wire error, or the socket's failure, each named.
public func requestBrokerMetrics(socketPath path: String, timeout: Duration = .seconds(5)) throws(BrokerError) -> String {
    var address = try BrokerListener.socketAddress(path)
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw BrokerError("socket: \(String(cString: strerror(errno)))", errno: errno) }
    defer { close(fd) }
    var limit = timeval(tv_sec: Int(timeout.components.seconds), tv_usec: Int(timeout.components.attoseconds / 1_000_000_000_000))
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
    guard connected == 0 else { throw BrokerError("\(path): \(String(cString: strerror(errno)))", errno: errno) }

    var request = [UInt8](repeating: 0, count: FrameHeader.size)
    request.withUnsafeMutableBytes { FrameHeader(length: UInt32(FrameHeader.size), type: FrameType.metrics.rawValue, tag: 1).write(to: $0) }
    guard request.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == request.count else {
        throw BrokerError("\(path): sending the request: \(String(cString: strerror(errno)))", errno: errno)
    }
    // The broker sends one reply and may close after it: read to the end.
    var reply: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n < 0 && errno == EINTR { continue }
        guard n >= 0 else { throw BrokerError("\(path): reading the reply: \(String(cString: strerror(errno)))", errno: errno) }
        if n == 0 { break }
        reply += chunk[..<n]
        if let header = reply.withUnsafeBytes({ FrameHeader($0) }), reply.count >= Int(header.length) { break }
    }
    let parsed: Result<String, BrokerError> = reply.withUnsafeBytes { bytes in
        guard let header = FrameHeader(bytes), Int(header.length) <= bytes.count, header.length >= UInt32(FrameHeader.size) else {
            return .failure(BrokerError("\(path): the broker closed the connection without a whole reply", errno: EPROTO))
        }
        if header.error != 0 {
            let name = WireError(rawValue: header.error)?.name ?? "wire error \(header.error)"
            return .failure(BrokerError("\(path): the broker answered \(name)",
                                        errno: header.error == WireError.busy.rawValue ? EBUSY : EPROTO))
        }
        let body = WireReader(UnsafeRawBufferPointer(rebasing: bytes[FrameHeader.size..<Int(header.length)]))
        guard let ret = body.i32(0), let code = body.i32(4) else {
            return .failure(BrokerError("\(path): the reply is shorter than its fields", errno: EPROTO))
        }
        guard ret == 0 else {
            let hint = code == EACCES ? " (only root and the broker's own user may read the counters)" : ""
            return .failure(BrokerError("\(path): METRICS: \(String(cString: strerror(code)))\(hint)", errno: code))
        }
        return .success(String(decoding: body.bytes.dropFirst(8), as: UTF8.self))
    }
    return try parsed.get()
}
