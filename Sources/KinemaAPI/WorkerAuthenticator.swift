import Foundation
import Hummingbird
import KinemaCore
import KinemaStore

/// Resolves `Authorization: Bearer kwt_…` on the worker routes to the token's record, or a worker auth error.
///
/// An API key (or anything that is not a well-formed worker token) is refused before the store is asked.
struct WorkerAuthenticator: Sendable {
    let store: any TaskStore

    static let missing = APIError(.unauthorized, "MISSING_WORKER_TOKEN", "The Authorization header is missing or empty; send 'Authorization: Bearer <worker token>' (made with 'kinema worker-token create').")
    static let invalid = APIError(.forbidden, "INVALID_WORKER_TOKEN", "The worker token is unknown, malformed or revoked; API keys are not accepted on worker routes.")

    func token(for request: Request) async throws(APIError) -> WorkerTokenRecord {
        let secret = try request.bearerSecret(missing: Self.missing, invalid: Self.invalid)
        guard WorkerToken.isWellFormed(secret) else { throw Self.invalid }
        let hash = WorkerToken.hash(secret)
        let record: WorkerTokenRecord?
        do {
            record = try await store.workerToken(hash: hash)
        } catch {
            throw .unavailable
        }
        // The lookup was by hash; compare again in constant time so no timing depends on the stored value.
        guard let record, record.revokedAt == nil, constantTimeEquals(Array(record.hash.utf8), Array(hash.utf8)) else {
            throw Self.invalid
        }
        return record
    }

    /// The lease owner name of `workerID` under this token: a token can only act for its own workers.
    static func leaseOwner(token: WorkerTokenRecord, workerID: String) -> String {
        "\(ownerPrefix(token))\(workerID)"
    }

    /// The prefix shared by every lease owner acting under `token`.
    static func ownerPrefix(_ token: WorkerTokenRecord) -> String {
        "remote/\(token.id)/"
    }
}
