import Foundation
import Hummingbird
import KinemaCore
import KinemaStore

/// Resolves `Authorization: Bearer kwt_…` on the worker routes to the token's record, or a worker auth error.
///
/// An API key (or anything that is not a well-formed worker token) is refused before the store is asked.
struct WorkerAuthenticator: Sendable {
    let store: any TaskStore

    static let missing = APIError(
        .unauthorized, "MISSING_WORKER_TOKEN",
        "The Authorization header is missing or empty; send 'Authorization: Bearer <worker token>' (made with 'kinema worker-token create').")
    static let invalid = APIError(
        .forbidden, "INVALID_WORKER_TOKEN", "The worker token is unknown, malformed or revoked; API keys are not accepted on worker routes.")

    func token(for request: Request) async throws(APIError) -> CredentialRecord {
        let secret = try request.bearerSecret(missing: Self.missing, invalid: Self.invalid)
        guard Credential.isWellFormed(secret, as: .workerToken) else { throw Self.invalid }
        return try await Authenticator.verifiedCredential(.workerToken, hash: Credential.hash(secret), in: store, invalid: Self.invalid)
    }

    /// The lease owner name of `workerID` under this token: a token can only act for its own workers.
    static func leaseOwner(token: CredentialRecord, workerID: String) -> String {
        "\(ownerPrefix(token))\(workerID)"
    }

    /// The prefix shared by every lease owner acting under `token`.
    static func ownerPrefix(_ token: CredentialRecord) -> String {
        "remote/\(token.id)/"
    }
}
