import Foundation

/// Where a task's blobs live: `inputs/<shard>/<id>.<ext>`, `inputs/<shard>/<id>.end.<ext>` and
/// `results/<shard>/<id>.<lease>.mp4`, where the shard is the id's first two hex digits.
///
/// 256 folders per kind are made once and reused, so storing a task's blobs creates its files and nothing else: a
/// folder per task cost two more inodes and two more directory flushes per task (see docs/benchmarks.md, "Upstream
/// gateway"). Keys are recorded in the task row, so blobs stored under the earlier `inputs/<id>/image.png` layout
/// stay readable.
public enum BlobKeys {
    /// The top folder of every result key, in every layout so far.
    public static let resultsFolder = "results"

    /// The first image (`end: false`) or the end image of a task; `ext` is `png` or `jpg`.
    public static func input(taskID: UUID, ext: String, end: Bool = false) -> String {
        let id = taskID.uuidString.lowercased()
        return "inputs/\(shard(id))/\(id)\(end ? ".end" : "").\(ext)"
    }

    /// One key per lease, so a zombie's late upload can never overwrite the real result.
    public static func result(taskID: UUID, leaseID: UUID) -> String {
        let id = taskID.uuidString.lowercased()
        return "results/\(shard(id))/\(id).\(leaseID.uuidString.lowercased()).mp4"
    }

    /// The folder holding a task's results (every lease's), relative to the blob root.
    public static func resultFolder(taskID: UUID) -> String {
        "results/\(shard(taskID.uuidString.lowercased()))"
    }

    static func shard(_ id: String) -> String { String(id.prefix(2)) }
}
