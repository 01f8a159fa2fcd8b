/// The contract's limits, in one place; the image pixel limits are operator-configurable.
public struct ValidationLimits: Sendable, Equatable {
    /// Largest image in bytes after base64 decoding or download (10 MB).
    public var maxImageBytes: Int = 10 * 1024 * 1024
    /// Smallest allowed width and height in pixels.
    public var minImageSide: Int = 300
    /// Largest allowed aspect ratio (and its inverse): 2.5 written as 5/2 so checks stay exact in integers.
    public var maxAspectNumerator: Int = 5
    public var maxAspectDenominator: Int = 2
    /// Decode limit per side, checked from the header before decoding.
    public var maxImageSide: Int = 8192
    /// Decode limit in pixels, checked from the header before decoding.
    public var maxImagePixels: Int = 40_000_000
    /// Longest prompt, in Unicode scalars.
    public var maxPromptLength: Int = 2500
    /// Shortest and longest video, in seconds.
    public var minDuration: Int = 3
    public var maxDuration: Int = 15
    /// Most shots in `multi_prompt`.
    public var maxShots: Int = 6

    /// Deepest nesting of arrays and objects in a request body (the contract needs 4).
    public var maxJSONDepth: Int = 64

    /// Longest JSON string the parser accepts, in bytes as sent: room for the largest image in base64 (4/3 of
    /// its bytes) even with escaped line breaks, and a data-URI prefix; anything longer cannot be valid.
    public var maxJSONStringBytes: Int { maxImageBytes * 3 / 2 + 4096 }

    public init() {}
}
