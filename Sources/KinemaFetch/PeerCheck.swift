import NIOCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Checks that a new connection's peer is the address that passed the policy.
final class PeerCheck: Sendable {
    let expected: IPAddress
    private let connectedFlag = Atomic<Bool>(false)

    init(expected: IPAddress) {
        self.expected = expected
    }

    /// Whether a connection to the expected address was established.
    var connected: Bool { connectedFlag.load(ordering: .acquiring) }

    func verify(_ channel: any Channel) -> EventLoopFuture<Void> {
        let peer = channel.remoteAddress.flatMap(IPAddress.init(socketAddress:))
        guard let peer, peer == expected || peer.unmappedIPv4 == expected else {
            // AsyncHTTPClient only drops a connection whose initializer failed; closing it is up to us.
            channel.close(promise: nil)
            return channel.eventLoop.makeFailedFuture(PeerMismatch(expected: expected, actual: peer))
        }
        connectedFlag.store(true, ordering: .releasing)
        return channel.eventLoop.makeSucceededVoidFuture()
    }
}

/// A connection reached an address other than the checked one (an internal safeguard; never expected).
struct PeerMismatch: Error, CustomStringConvertible {
    var expected: IPAddress
    var actual: IPAddress?
    var description: String {
        "the connection reached \(actual.map { "\($0)" } ?? "an unknown address") instead of the checked \(expected)"
    }
}

extension IPAddress {
    init?(socketAddress: SocketAddress) {
        switch socketAddress {
        case .v4(let v4):
            self.init(bytes: withUnsafeBytes(of: v4.address.sin_addr) { Array($0) })
        case .v6(let v6):
            self.init(bytes: withUnsafeBytes(of: v6.address.sin6_addr) { Array($0) })
        case .unixDomainSocket:
            return nil
        }
    }
}
