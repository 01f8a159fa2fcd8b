import HummingbirdCore

/// Tells Hummingbird's accept loop whether to accept another connection, from the connection registry: yes while
/// there is a free slot or an idle connection to evict, no while every connection of the cap is mid-request.
///
/// The accept loop counts here, at once; each connection also registers itself from its own pipeline a moment
/// later (with its address and state). The accept loop asks again whenever a connection closes.
struct ConnectionAdmission: AvailableConnectionsDelegate {
    /// The node's connections.
    let registry: ConnectionRegistry

    /// Counts an accepted connection.
    mutating func connectionOpened() {
        registry.accepted()
    }

    /// Counts a closed one.
    mutating func connectionClosed() {
        registry.acceptedClosed()
    }

    /// Whether to accept now.
    func isAcceptingNewConnections() -> Bool {
        registry.isAccepting()
    }
}
