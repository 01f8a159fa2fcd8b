#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import NIOPosix

/// Resolves host names with the system resolver (`getaddrinfo`), so /etc/hosts and the operator's DNS apply.
enum HostResolver {
    /// Every address `host` resolves to, in the resolver's preference order, without duplicates.
    ///
    /// `getaddrinfo` blocks, so it runs on NIO's blocking thread pool, not on Swift's cooperative pool. It cannot
    /// be interrupted, so cancellation (the fetch's time cap) stops the wait and leaves the lookup to finish alone.
    static func resolve(_ host: String) async throws -> [IPAddress] {
        let waiter = CancellableWaiter<Result<[IPAddress], FetchError>>()
        return try await withTaskCancellationHandler {
            let result = try await withCheckedThrowingContinuation { continuation in
                waiter.install(continuation)
                NIOThreadPool.singleton.submit { state in
                    guard case .active = state else {
                        waiter.resume(throwing: CancellationError())
                        return
                    }
                    waiter.resume(returning: lookUp(host))
                }
            }
            return try result.get()
        } onCancel: {
            waiter.resume(throwing: CancellationError())
        }
    }

    private static func lookUp(_ host: String) -> Result<[IPAddress], FetchError> {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        #if canImport(Darwin)
        hints.ai_socktype = SOCK_STREAM
        #else
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #endif
        hints.ai_protocol = Int32(IPPROTO_TCP)
        // No AI_ADDRCONFIG: every address the name has must be checked, even families this machine lacks.
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, nil, &hints, &list)
        defer { if let list { freeaddrinfo(list) } }
        guard status == 0 else {
            let reason: String
            switch status {
            case EAI_NONAME: reason = "no such host is known"
            case EAI_AGAIN: reason = "the name server did not answer in time (temporary failure)"
            default: reason = String(cString: gai_strerror(status)).lowercased()
            }
            return .failure(FetchError(code: .dnsFailure, message: "the host name \(host) could not be resolved: \(reason)"))
        }
        var addresses: [IPAddress] = []
        var entry = list
        while let current = entry {
            if let socketAddress = current.pointee.ai_addr, let address = IPAddress(socketAddress) {
                if !addresses.contains(address) { addresses.append(address) }
            }
            entry = current.pointee.ai_next
        }
        guard !addresses.isEmpty else {
            return .failure(FetchError(code: .dnsFailure, message: "the host name \(host) has no IPv4 or IPv6 address"))
        }
        return .success(addresses)
    }
}

extension IPAddress {
    /// The address of an `AF_INET` or `AF_INET6` socket address; nil for other families.
    init?(_ pointer: UnsafeMutablePointer<sockaddr>) {
        switch Int32(pointer.pointee.sa_family) {
        case AF_INET:
            let raw = pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
            self.init(bytes: withUnsafeBytes(of: raw) { Array($0) })
        case AF_INET6:
            let raw = pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_addr }
            self.init(bytes: withUnsafeBytes(of: raw) { Array($0) })
        default:
            return nil
        }
    }
}
