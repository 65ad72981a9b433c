/// The broker's limits (WireFormat.md, "Limits"): what a client may hold and how long it
/// may take, so that no client can exhaust the daemon or stall it for the others.
public struct BrokerConfiguration: Sendable, Hashable {
    /// Connections served at once, in all (`--max-connections`). One more gets `busy`.
    public var maxConnections: Int
    /// Connections served at once for one uid (`--max-connections-per-uid`).
    public var maxConnectionsPerUID: Int
    /// Handles one connection may hold open at once (`--max-handles-per-connection`); one
    /// more OPEN fails with EMFILE. With `maxConnections`, it sizes the gate's handle table
    /// (`gateHandleCapacity`), so a client cannot take another's handles.
    public var maxHandlesPerConnection: Int
    /// How long a frame may take to arrive once its first byte has, and a reply to be taken
    /// by the client (`--io-timeout`); past it the connection is closed.
    public var ioTimeout: Duration

    public init(maxConnections: Int = 256, maxConnectionsPerUID: Int = 64, maxHandlesPerConnection: Int = 16,
                ioTimeout: Duration = .seconds(5)) {
        self.maxConnections = maxConnections; self.maxConnectionsPerUID = maxConnectionsPerUID
        self.maxHandlesPerConnection = maxHandlesPerConnection; self.ioTimeout = ioTimeout
    }

    /// The handle capacity the broker's `Gate` needs so that every connection can hold its
    /// `maxHandlesPerConnection` handles at once.
    public var gateHandleCapacity: Int { max(1, maxConnections) * max(1, maxHandlesPerConnection) }

    /// `max_frame` for a `max_transfer`: header, IOCTL's fixed part, the largest struct, and
    /// data plus metadata.
    public static func maxFrame(maxTransfer: Int) -> Int {
        FrameHeader.size + IoctlFrame.fixedSize + 80 + 2 * maxTransfer
    }
}
