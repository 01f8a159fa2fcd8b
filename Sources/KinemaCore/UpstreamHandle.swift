import Foundation
import Synchronization

/// Where a task stands at a hosted provider (`architecture.md`, "Upstream engine"), kept in the task store so that a
/// restarted or rescued worker follows the task the provider already accepted instead of paying for a second one.
///
/// Written twice per submit, each time before anything else happens: once just before the submit is sent (`id` is
/// `nil`: an answer may have been lost), once as soon as the provider accepted it (`id` set).
public struct UpstreamHandle: Codable, Sendable, Equatable {
    /// The engine name of the provider (`novita`, `kling`, `fal`).
    public var provider: String
    /// The provider's task id; `nil` while a submit is in flight (or its answer was lost).
    public var id: String?
    /// Where the provider says to poll (fal returns these; others build them from `id`).
    public var statusURL: String?
    /// Where the provider says the outcome is (fal).
    public var responseURL: String?
    /// Where the provider says a cancel goes (fal).
    public var cancelURL: String?
    /// When the submit was sent: the per-task upstream deadline counts from here.
    public var submittedAt: Date
    /// The seed the provider reports it used, once it finished (reported as the task's `extra.seed`).
    public var seed: UInt32?

    public init(
        provider: String, id: String? = nil, statusURL: String? = nil, responseURL: String? = nil, cancelURL: String? = nil,
        submittedAt: Date, seed: UInt32? = nil
    ) {
        self.seed = seed
        self.provider = provider
        self.id = id
        self.statusURL = statusURL
        self.responseURL = responseURL
        self.cancelURL = cancelURL
        self.submittedAt = submittedAt
    }

    /// Whether the provider accepted the task (an id is known).
    public var isAccepted: Bool { id != nil }

    /// The stored form (JSON with keys in a fixed order; times in milliseconds since 1970).
    public func encoded() -> String {
        var json = JSONBytes(capacity: 256)
        json.object { object in
            for (key, value) in [
                ("provider", provider), ("id", id), ("status_url", statusURL), ("response_url", responseURL), ("cancel_url", cancelURL),
            ] {
                guard let value else { continue }
                object.key(key)
                object.string(value)
            }
            object.key("submitted_at_ms")
            object.int(Int((submittedAt.timeIntervalSince1970 * 1000).rounded()))
            if let seed {
                object.key("seed")
                object.int(Int(seed))
            }
        }
        return String(decoding: json.bytes, as: UTF8.self)
    }

    /// Reads the stored form; `nil` when it is not one.
    public init?(encoded text: String) {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any],
            let provider = object["provider"] as? String, let ms = (object["submitted_at_ms"] as? NSNumber)?.int64Value
        else { return nil }
        self.init(
            provider: provider, id: object["id"] as? String, statusURL: object["status_url"] as? String,
            responseURL: object["response_url"] as? String, cancelURL: object["cancel_url"] as? String,
            submittedAt: Date(timeIntervalSince1970: Double(ms) / 1000),
            seed: (object["seed"] as? NSNumber).flatMap { UInt32(exactly: $0.int64Value) })
    }
}

/// Records a task's upstream handle durably (the store behind the worker); engines call it before every step that
/// costs money or could be lost.
public protocol UpstreamJournal: Sendable {
    /// Stores `handle` for the running task (or clears it with `nil` when a submit was definitely refused). Throws
    /// when it could not be stored; an engine then must not go on to the paid step.
    func record(_ handle: UpstreamHandle?) async throws
}

/// Engines that are paused for every task, and why (an upstream provider refusing this account); read by `/readyz`.
public final class EngineStatusBoard: Sendable {
    private let paused = Mutex<[String: String]>([:])

    public init() {}

    /// Marks `engine` paused with a reason, or running again with `nil`. Returns whether that changed anything.
    @discardableResult
    public func set(_ engine: String, pausedBecause reason: String?) -> Bool {
        paused.withLock { map in
            let before = map[engine]
            map[engine] = reason
            return before != reason
        }
    }

    /// Every paused engine with its reason.
    public var pausedEngines: [String: String] { paused.withLock { $0 } }
}
