import Foundation
import NIOHTTP1

/// Fetches user-supplied image URLs without letting them reach the service's own network.
///
/// Only http and https; the host is resolved here and every address it has is checked against an
/// `AddressPolicy` before any connection; the connection goes to the checked address only; redirects are
/// followed by hand, each hop resolved and checked again; the body is capped in bytes while it streams, and the
/// whole fetch in time. No cookies, no `Authorization`, no credentials from the URL are ever sent.
public struct SafeFetcher: Sendable {
    /// Limits and the operator allow-list.
    public struct Configuration: Sendable {
        /// Networks the operator opens although the policy refuses them (`--allow-fetch-from`).
        public var allow: [IPNetwork]
        /// The largest body accepted, in bytes (default 10 MiB, the contract's image limit).
        public var maxBytes: Int
        /// The cap on the whole fetch, redirects included (default 15 s).
        public var timeout: Duration
        /// How many redirects are followed at most (default 3).
        public var maxRedirects: Int
        /// What is fetched, as messages name it (default "image"; "video" for results copied from a provider).
        public var subject: String = "image"
        /// The `Accept` header sent.
        public var accept: String = "image/png, image/jpeg;q=0.9, image/*;q=0.8"

        /// A configuration; every parameter has the documented default.
        public init(
            allow: [IPNetwork] = [],
            maxBytes: Int = 10 * 1024 * 1024,
            timeout: Duration = .seconds(15),
            maxRedirects: Int = 3
        ) {
            self.allow = allow
            self.maxBytes = maxBytes
            self.timeout = timeout
            self.maxRedirects = maxRedirects
        }
    }

    /// The limits this fetcher applies.
    public let configuration: Configuration
    let policy: AddressPolicy

    /// A fetcher with the given limits.
    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
        self.policy = AddressPolicy(allow: configuration.allow)
    }

    /// Downloads the body at `url` (following redirects) and returns it, or says why it may not or could not.
    public func fetch(_ url: String) async throws(FetchError) -> Data {
        let timeout = configuration.timeout
        do {
            // The time cap races the whole fetch; whichever finishes first wins and the loser is cancelled
            // (every await below honours cancellation, so the group ends promptly).
            return try await withThrowingTaskGroup(of: Data?.self) { group in
                group.addTask { try await self.fetchFollowingRedirects(url) }
                group.addTask {
                    try await Task.sleep(for: timeout)
                    return nil
                }
                defer { group.cancelAll() }
                guard case .some(.some(let data)) = try await group.next() else {
                    throw FetchError(
                        code: .timeout,
                        message: "the \(configuration.subject) URL did not finish downloading within \(Self.describe(timeout))"
                    )
                }
                return data
            }
        } catch let error as FetchError {
            throw error
        } catch {
            if Task.isCancelled || error is CancellationError {
                throw FetchError(code: .cancelled, message: "the \(configuration.subject) download was cancelled before it finished")
            }
            throw FetchError(code: .connectionFailed, message: "the \(configuration.subject) could not be downloaded: \(error)")
        }
    }

    /// An answer to `post`: its status and at most `maxBytes` of its body.
    public struct Answer: Sendable {
        public var status: Int
        public var body: Data
    }

    /// POSTs `body` to `url` under the same address rules, once, and returns the answer whatever its status: a
    /// redirect is returned, never followed. Throws when no answer came within `timeout` (or none could be had).
    public func post(_ url: String, body: Data, headers: [(String, String)]) async throws(FetchError) -> Answer {
        let timeout = configuration.timeout
        let subject = configuration.subject
        do {
            let target = try FetchURL(parsing: url, subject: "the \(subject) URL")
            return try await withThrowingTaskGroup(of: Answer?.self) { group in
                group.addTask {
                    let outgoing = Outgoing(method: .POST, headers: headers, body: body)
                    guard case .answer(let status, let body) = try await self.fetchHop(target, subject: "the \(subject) URL", outgoing: outgoing)
                    else { throw FetchError(code: .connectionFailed, message: "the \(subject) URL gave no answer") }
                    return Answer(status: status, body: body)
                }
                group.addTask {
                    try await Task.sleep(for: timeout)
                    return nil
                }
                defer { group.cancelAll() }
                guard case .some(.some(let answer)) = try await group.next() else {
                    throw FetchError(code: .timeout, message: "the \(subject) URL did not answer within \(Self.describe(timeout))")
                }
                return answer
            }
        } catch let error as FetchError {
            throw error
        } catch {
            if Task.isCancelled || error is CancellationError {
                throw FetchError(code: .cancelled, message: "the \(subject) was cancelled before it was answered")
            }
            throw FetchError(code: .connectionFailed, message: "the \(subject) could not be sent: \(error)")
        }
    }

    private func fetchFollowingRedirects(_ text: String) async throws -> Data {
        var current = try FetchURL(parsing: text, subject: "the \(configuration.subject) URL")
        var visited: Set<String> = [current.requestURL]
        var redirects = 0
        while true {
            let subject = redirects == 0 ? "the \(configuration.subject) URL" : "the redirect target \(current)"
            switch try await fetchHop(current, subject: subject) {
            case .body(let data), .answer(_, let data):
                return data
            case .redirect(let status, let location):
                let next = try current.resolving(location: location)
                if visited.contains(next.requestURL) {
                    throw FetchError(
                        code: .tooManyRedirects,
                        message: "the \(configuration.subject) URL is a redirect loop: \(current) redirects (\(status)) back to \(next)"
                    )
                }
                redirects += 1
                if redirects > configuration.maxRedirects {
                    throw FetchError(
                        code: .tooManyRedirects,
                        message: "the \(configuration.subject) URL redirects more than \(configuration.maxRedirects) times (the next hop was \(next))"
                    )
                }
                visited.insert(next.requestURL)
                current = next
            }
        }
    }

    static func describe(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        let value = Double(seconds) + Double(attoseconds) / 1e18
        return value == value.rounded() ? "\(Int64(value)) seconds" : "\(value) seconds"
    }
}
