import Foundation

/// A structural check of a whole JPEG file, beyond the header: FFmpeg's decoder quietly conceals a
/// missing tail (it paints the lost blocks grey), so a truncated upload would otherwise "decode".
enum JPEGStructure {
    /// Whether the marker structure reaches an end-of-image marker (EOI) through every scan.
    ///
    /// Walks the segments by their lengths; inside entropy-coded data a 0xFF is followed only by a
    /// stuffed 0x00 or a restart marker, so the first other marker there ends the scan.
    static func reachesEndOfImage(_ data: Data) -> Bool {
        data.withUnsafeBytes { raw -> Bool in
            let b = raw.bindMemory(to: UInt8.self)
            let n = b.count
            guard n >= 4, b[0] == 0xFF, b[1] == 0xD8 else { return false }
            var p = 2
            var inScan = false
            while p < n {
                if inScan {
                    // Skip entropy-coded bytes up to the next real marker.
                    while p < n, b[p] != 0xFF { p += 1 }
                    guard p + 1 < n else { return false }
                    let next = b[p + 1]
                    if next == 0x00 || (0xD0...0xD7).contains(next) || next == 0xFF {
                        p += next == 0xFF ? 1 : 2
                        continue
                    }
                    inScan = false
                }
                guard b[p] == 0xFF else { return false }
                while p < n, b[p] == 0xFF { p += 1 }
                guard p < n else { return false }
                let marker = b[p]
                p += 1
                switch marker {
                case 0xD9: return true
                case 0x01, 0xD0...0xD7: continue
                case 0x00, 0xD8: return false
                default: break
                }
                guard p + 2 <= n else { return false }
                let length = Int(b[p]) << 8 | Int(b[p + 1])
                guard length >= 2, p + length <= n else { return false }
                p += length
                if marker == 0xDA { inScan = true }
            }
            return false
        }
    }
}
