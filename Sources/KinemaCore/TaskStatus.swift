/// Lifecycle state of a task. Wire names come from `contractName`.
public enum TaskStatus: String, Codable, Sendable, CaseIterable {
    case queued
    case processing
    case succeeded
    case failed
    case canceled

    /// The status string of the public contract (a canceled task reports FAILED).
    public var contractName: String {
        switch self {
        case .queued: "TASK_STATUS_QUEUED"
        case .processing: "TASK_STATUS_PROCESSING"
        case .succeeded: "TASK_STATUS_SUCCEED"
        case .failed, .canceled: "TASK_STATUS_FAILED"
        }
    }

    /// Whether no further transition is possible.
    public var isTerminal: Bool {
        switch self {
        case .succeeded, .failed, .canceled: true
        case .queued, .processing: false
        }
    }
}
