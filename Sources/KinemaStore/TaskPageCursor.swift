import Foundation

/// Where a page of a tenant's task list ends: the last task's submit time and id. Its text form (`next_cursor`) is
/// `<milliseconds>-<id>`, opaque to clients.
public struct TaskPageCursor: Sendable, Equatable {
    public var createdAt: Date
    public var id: UUID

    public init(createdAt: Date, id: UUID) {
        self.createdAt = createdAt
        self.id = id
    }

    /// The cursor after `task`.
    public init(after task: TaskStatusRecord) {
        self.init(createdAt: task.createdAt, id: task.id)
    }

    public var text: String { "\(Int64((createdAt.timeIntervalSince1970 * 1000).rounded()))-\(id.uuidString.lowercased())" }

    /// Parses `text`; `nil` for anything this type did not write.
    public init?(text: String) {
        guard let dash = text.firstIndex(of: "-"), let ms = Int64(text[..<dash]), ms >= 0,
            let id = UUID(uuidString: String(text[text.index(after: dash)...]))
        else { return nil }
        self.init(createdAt: Date(timeIntervalSince1970: Double(ms) / 1000), id: id)
    }
}
