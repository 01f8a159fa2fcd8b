import Foundation

/// Who may read what Kinema stores on disk: the database, every tenant's images and videos, the signing secret.
///
/// The default is the owner only (folders 0700, files 0600) whatever umask the process inherited; operators whose
/// shared blob directory is used by several accounts choose `group` (0770 / 0660).
public enum FileAccess: Sendable {
    /// Folders 0700, files 0600.
    case owner
    /// Folders 0770, files 0660: for a shared blob directory used by several accounts of one group.
    case group

    /// The mode a Kinema folder gets.
    public var directoryMode: mode_t { self == .owner ? 0o700 : 0o770 }

    /// Makes every file and folder this process creates from now on private to the owner (or its group): the
    /// process umask, so SQLite's `-wal`/`-shm` files, FFmpeg's output and every blob are covered alike.
    public func restrictNewFiles() {
        umask(self == .owner ? 0o077 : 0o007)
    }

    /// Creates `folder` (and missing parents) with `directoryMode`, or narrows an existing folder to it, so a data
    /// directory made by an older version or under a loose umask stops being world-readable.
    public func prepare(_ folder: URL) throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: Int(directoryMode)])
        try FileManager.default.setAttributes([.posixPermissions: Int(directoryMode)], ofItemAtPath: folder.path)
    }
}
