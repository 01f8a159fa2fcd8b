/// Size limits checked against an image's header before any pixel is decoded.
public struct ImageLimits: Sendable, Equatable {
    /// Largest accepted width or height, in stored pixels.
    public var maxSide: Int = 8192
    /// Largest accepted `width * height`.
    public var maxPixels: Int = 40_000_000

    /// Creates limits; the defaults accept anything up to 8192 px a side and 40 megapixels.
    public init(maxSide: Int = 8192, maxPixels: Int = 40_000_000) {
        self.maxSide = maxSide
        self.maxPixels = maxPixels
    }
}
