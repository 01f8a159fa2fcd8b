/// EXIF segments for tests of orientation handling.
public enum EXIF {
    /// An APP1 "Exif" segment whose IFD0 holds an orientation tag, in either byte order; with `withMake`, an unrelated
    /// ASCII tag comes first, so a reader must walk the IFD rather than read its first entry.
    public static func segment(orientation: Int, littleEndian: Bool, withMake: Bool = false) -> [UInt8] {
        func u16(_ v: Int) -> [UInt8] { littleEndian ? [UInt8(v & 0xFF), UInt8(v >> 8)] : [UInt8(v >> 8), UInt8(v & 0xFF)] }
        func u32(_ v: Int) -> [UInt8] { littleEndian ? u16(v & 0xFFFF) + u16(v >> 16) : u16(v >> 16) + u16(v & 0xFFFF) }
        var tiff: [UInt8] = littleEndian ? [0x49, 0x49] : [0x4D, 0x4D]
        tiff += u16(42) + u32(8)
        tiff += u16(withMake ? 2 : 1)
        if withMake { tiff += u16(0x010F) + u16(2) + u32(4) + Array("Cam\0".utf8) } // Make, ASCII, inline
        tiff += u16(0x0112) + u16(3) + u32(1) + u16(orientation) + u16(0) // Orientation, SHORT
        tiff += u32(0)
        let body = Array("Exif".utf8) + [0, 0] + tiff
        return [0xFF, 0xE1, UInt8((body.count + 2) >> 8), UInt8((body.count + 2) & 0xFF)] + body
    }

    /// `jpeg` with an orientation segment inserted right after its SOI marker.
    public static func jpeg(_ jpeg: [UInt8], orientation: Int, littleEndian: Bool = false) -> [UInt8] {
        var bytes = jpeg
        bytes.insert(contentsOf: segment(orientation: orientation, littleEndian: littleEndian), at: 2)
        return bytes
    }
}
