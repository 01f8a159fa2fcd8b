import Foundation
import Hummingbird
import KinemaCore
import KinemaStore
import Synchronization

/// Resolves `Authorization: Bearer <key>` to the key's tenant, or the contract's auth error, and applies the
/// key's request rate limit when one is configured.
///
/// Successful lookups are remembered for `cacheTTL` seconds (by the key's hash, never the key), so a busy
/// client's polls do not each read the key table; a revoked key therefore keeps working on a node for at most
/// that long. Unknown and revoked keys are never cached: every wrong key costs a lookup, none is remembered.
struct Authenticator: Sendable {
    let store: any TaskStore
    let cache: APIKeyCache
    /// Requests per key, or `nil` for no limit.
    let rateLimit: RateLimit?
    let limiter: any RateLimiter

    init(store: any TaskStore, cacheTTL: TimeInterval, rateLimit: RateLimit? = nil, limiter: any RateLimiter = LocalRateLimiter()) {
        self.store = store
        self.cache = APIKeyCache(ttl: cacheTTL)
        self.rateLimit = rateLimit
        self.limiter = limiter
    }

    /// The caller's tenant, once the key is valid and within its rate (429 with Retry-After otherwise).
    func tenant(for request: Request) async throws(APIError) -> String {
        try await caller(for: request).tenant
    }

    /// The caller's verified key (tenant and default engine), once it is valid and within its rate.
    func caller(for request: Request) async throws(APIError) -> APIKeyCache.Entry {
        let key = try await verifiedKey(request)
        if let rateLimit {
            let wait: TimeInterval?
            do {
                wait = try await limiter.takeToken(key: "api-key:\(key.id)", limit: rateLimit, now: Date())
            } catch {
                throw .unavailable
            }
            if let wait { throw .rateLimited(retryAfter: wait, limit: rateLimit) }
        }
        return key
    }

    private func verifiedKey(_ request: Request) async throws(APIError) -> APIKeyCache.Entry {
        let secret = try request.bearerSecret(missing: .missingAPIKey, invalid: .invalidAPIKey)
        guard Credential.isWellFormed(secret, as: .apiKey) else { throw .invalidAPIKey }
        let hash = Credential.hash(secret)
        let now = ContinuousClock.now
        if let entry = cache.entry(forHash: hash, now: now) { return entry }
        let record = try await Self.verifiedCredential(.apiKey, hash: hash, in: store, invalid: .invalidAPIKey)
        let entry = APIKeyCache.Entry(id: record.id, tenant: record.owner, defaultEngine: record.defaultEngine)
        cache.remember(hash: hash, entry, now: now)
        return entry
    }
}

extension Authenticator {
    /// The live credential of `kind` whose secret hashes to `hash`, or `invalid` (unknown, other kind, revoked);
    /// `.unavailable` when the store cannot be asked. API keys and worker tokens are checked by this one path.
    static func verifiedCredential(
        _ kind: CredentialKind, hash: String, in store: any TaskStore, invalid: APIError
    ) async throws(APIError) -> CredentialRecord {
        let record: CredentialRecord?
        do {
            record = try await store.credential(kind, hash: hash)
        } catch {
            throw .unavailable
        }
        // The lookup was by hash; compare again in constant time so no timing depends on the stored value.
        guard let record, record.kind == kind, record.revokedAt == nil, constantTimeEquals(Array(record.hash.utf8), Array(hash.utf8)) else {
            throw invalid
        }
        return record
    }
}

/// Recently verified key hashes and their keys, each for a bounded time; bounded in size.
final class APIKeyCache: Sendable {
    /// Entries kept at most; when full, expired entries go, and if none had expired, everything goes.
    static let capacity = 10_000

    /// What a request needs to know about its verified key.
    struct Entry: Sendable {
        let id: String
        let tenant: String
        /// The engine this key's tasks go to when a request names none.
        let defaultEngine: String?
    }

    private let ttl: Duration
    private let entries = Mutex<[String: (entry: Entry, until: ContinuousClock.Instant)]>([:])

    /// `ttl` ≤ 0 disables the cache (every request reads the store).
    init(ttl: TimeInterval) {
        self.ttl = .milliseconds(Int64(max(ttl, 0) * 1000))
    }

    func entry(forHash hash: String, now: ContinuousClock.Instant) -> Entry? {
        guard ttl > .zero else { return nil }
        return entries.withLock { entries in
            guard let cached = entries[hash] else { return nil }
            if cached.until > now { return cached.entry }
            entries[hash] = nil
            return nil
        }
    }

    func remember(hash: String, _ entry: Entry, now: ContinuousClock.Instant) {
        guard ttl > .zero else { return }
        entries.withLock { entries in
            if entries.count >= Self.capacity {
                entries = entries.filter { $0.value.until > now }
                if entries.count >= Self.capacity { entries.removeAll(keepingCapacity: true) }
            }
            entries[hash] = (entry, now + ttl)
        }
    }
}

extension Request {
    /// The secret of `Authorization: Bearer <secret>`: `missing` when there is none, `invalid` for another scheme.
    /// Read byte by byte (every authenticated request passes here).
    func bearerSecret(missing: APIError, invalid: APIError) throws(APIError) -> String {
        guard let header = headers[.authorization] else { throw missing }
        let bytes = header.utf8
        func isBlank(_ b: UInt8) -> Bool { b == UInt8(ascii: " ") || b == UInt8(ascii: "\t") }
        var start = bytes.startIndex
        var end = bytes.endIndex
        while start < end, isBlank(bytes[start]) { start = bytes.index(after: start) }
        while end > start, isBlank(bytes[bytes.index(before: end)]) { end = bytes.index(before: end) }
        if start == end { throw missing }
        func isBearer(_ word: Substring.UTF8View) -> Bool {
            word.count == 6 && zip(word, "bearer".utf8).allSatisfy { $0 | 0x20 == $1 }
        }
        guard let space = bytes[start..<end].firstIndex(where: isBlank) else {
            // One word: a bare scheme ("Bearer") is a missing secret, anything else a wrong scheme.
            throw isBearer(bytes[start..<end]) ? missing : invalid
        }
        guard isBearer(bytes[start..<space]) else { throw invalid }
        var secretStart = space
        while secretStart < end, isBlank(bytes[secretStart]) { secretStart = bytes.index(after: secretStart) }
        if secretStart == end { throw missing }
        return String(header[secretStart..<end])
    }
}

extension StringProtocol {
    /// Without leading and trailing spaces and tabs (header values), without Foundation's bridging.
    func trimmingASCIIWhitespace() -> SubSequence {
        var start = startIndex, end = endIndex
        while start < end, self[start] == " " || self[start] == "\t" { start = index(after: start) }
        while end > start, self[index(before: end)] == " " || self[index(before: end)] == "\t" { end = index(before: end) }
        return self[start..<end]
    }
}
