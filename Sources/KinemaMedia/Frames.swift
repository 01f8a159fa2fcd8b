/// An 8-bit RGBA image, rows top to bottom, no padding (`stride == width * 4`).
public struct RGBAImage: Sendable, Equatable {
    public var width: Int
    public var height: Int
    /// `width * height * 4` bytes: R, G, B, A per pixel.
    public var pixels: [UInt8]

    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(width > 0 && height > 0 && pixels.count == width * height * 4, "RGBAImage size mismatch")
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// A solid image, handy for tests and padding.
    public init(width: Int, height: Int, fill: (r: UInt8, g: UInt8, b: UInt8, a: UInt8) = (0, 0, 0, 255)) {
        var px = [UInt8](repeating: 0, count: width * height * 4)
        for i in stride(from: 0, to: px.count, by: 4) {
            px[i] = fill.r; px[i + 1] = fill.g; px[i + 2] = fill.b; px[i + 3] = fill.a
        }
        self.init(width: width, height: height, pixels: px)
    }
}

/// A planar 4:2:0 frame (BT.709, limited range): full-size luma, half-size chroma.
/// Width and height are even. Planes have no padding.
public struct YUVFrame: Sendable, Equatable {
    public var width: Int
    public var height: Int
    /// `width * height` bytes.
    public var y: [UInt8]
    /// `(width / 2) * (height / 2)` bytes each.
    public var u: [UInt8]
    public var v: [UInt8]

    public init(width: Int, height: Int, y: [UInt8], u: [UInt8], v: [UInt8]) {
        precondition(width % 2 == 0 && height % 2 == 0, "YUVFrame needs even dimensions")
        precondition(y.count == width * height && u.count == width * height / 4 && v.count == u.count, "YUVFrame plane size mismatch")
        self.width = width
        self.height = height
        self.y = y
        self.u = u
        self.v = v
    }

    /// A black frame (Y 16, U/V 128).
    public init(blackWidth width: Int, height: Int) {
        self.init(
            width: width, height: height,
            y: [UInt8](repeating: 16, count: width * height),
            u: [UInt8](repeating: 128, count: width * height / 4),
            v: [UInt8](repeating: 128, count: width * height / 4)
        )
    }
}

/// Interleaved stereo float samples in -1…1 at `AudioTrack.sampleRate`.
public struct AudioTrack: Sendable, Equatable {
    public static let sampleRate = 48_000
    public static let channels = 2
    /// `frames * 2` values: left, right, left, right…
    public var samples: [Float]

    public init(samples: [Float]) {
        precondition(samples.count % 2 == 0, "AudioTrack is interleaved stereo")
        self.samples = samples
    }

    /// Number of sample frames (one left + one right each).
    public var frameCount: Int { samples.count / 2 }
}
