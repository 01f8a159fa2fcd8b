import Foundation
import Hummingbird
import KinemaCore
import KinemaStore

/// Resolves `Authorization: Bearer <key>` to the key's tenant, or the contract's auth error.
struct Authenticator: Sendable {
    let store: any TaskStore

    func tenant(for request: Request) async throws(APIError) -> String {
        let header = (request.headers[.authorization] ?? "").trimmingCharacters(in: .whitespaces)
        if header.isEmpty { throw .missingAPIKey }
        let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts[0].lowercased() == "bearer" else { throw .invalidAPIKey }
        guard parts.count == 2 else { throw .missingAPIKey }
        let secret = parts[1].trimmingCharacters(in: .whitespaces)
        if secret.isEmpty { throw .missingAPIKey }
        guard APIKey.isWellFormed(secret) else { throw .invalidAPIKey }
        let hash = APIKey.hash(secret)
        let record: APIKeyRecord?
        do {
            record = try await store.apiKey(hash: hash)
        } catch {
            throw .unavailable
        }
        // The lookup was by hash; compare again in constant time so no timing depends on the stored value.
        guard let record, record.revokedAt == nil, constantTimeEquals(Array(record.keyHash.utf8), Array(hash.utf8)) else {
            throw .invalidAPIKey
        }
        return record.tenant
    }
}
