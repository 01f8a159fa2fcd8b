import Foundation

/// Reads a pipe or file descriptor to its end, retrying reads a signal interrupted.
///
/// Foundation's `readDataToEndOfFile` and `availableData` trap on EINTR (seen in CI while many child processes
/// came and went), so every whole-output read of a child process goes through here. Blocks the calling thread:
/// call it off Swift's cooperative pool.
public enum PipeReader {
    public static func readToEnd(_ fd: Int32) -> Data {
        var data = Data()
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n = read(fd, &chunk, chunk.count)
            if n > 0 {
                data.append(contentsOf: chunk[0..<n])
            } else if n < 0, errno == EINTR {
                continue
            } else {
                return data
            }
        }
    }
}
