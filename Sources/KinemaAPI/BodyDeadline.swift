import Hummingbird
import NIOCore

/// Reads a whole request body within a deadline, so a client that trickles its body (a few bytes now and
/// then, never idle long enough for the idle timeout) cannot hold a connection and a task forever.
enum BodyDeadline {
    /// 408 in the contract's shape; the connection is closed after it (the rest of the body is not read).
    static func timedOut(after seconds: Int) -> APIError {
        APIError(
            .requestTimeout, "REQUEST_TIMEOUT",
            "The request body did not arrive within \(seconds) s; send it at once and retry."
        )
    }

    /// The body, at most `limit` bytes (413 beyond, as `collect(upTo:)`), or 408 once `seconds` have passed.
    static func collect(_ body: RequestBody, upTo limit: Int, within seconds: Int) async throws -> ByteBuffer {
        try await run(within: seconds) { try await body.collect(upTo: limit) }
    }

    /// Runs `work` (which reads a request body), cancelling it with 408 once `seconds` have passed.
    static func run<T: Sendable>(within seconds: Int, _ work: @escaping @Sendable () async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await work() }
            group.addTask {
                try await Task.sleep(for: .seconds(seconds))
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let value = first else { throw timedOut(after: seconds) }
            return value
        }
    }
}
