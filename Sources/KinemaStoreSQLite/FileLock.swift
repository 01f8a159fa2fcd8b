import Foundation
import KinemaStore

/// An exclusive advisory lock (flock) held until `release()` or process exit (also on SIGKILL).
public final class FileLock: Sendable {
    private let fd: Int32

    init(path: String) throws {
        fd = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw StoreError(.unavailable, "could not open \(path) (errno \(errno))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            throw StoreError(.unavailable, "another kinema process is serving this data directory (\(path) is locked)")
        }
    }

    /// Releases the lock.
    public func release() {
        flock(fd, LOCK_UN)
        close(fd)
    }
}
