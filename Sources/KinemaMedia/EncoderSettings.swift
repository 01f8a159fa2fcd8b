/// libx264 settings for `MP4Writer`.
public struct EncoderSettings: Sendable, Equatable {
    /// x264 preset: ultrafast, superfast, veryfast, faster, fast, medium, slow…; faster presets give bigger files.
    public var preset: String = "veryfast"
    /// Constant rate factor 0…51: lower is better quality and bigger files (20 is visually near-lossless for our content).
    public var crf: Int = 20
    /// Encoder threads; 0 lets x264 choose from the core count.
    public var threads: Int = 0
    /// Further libx264 options by FFmpeg name, applied with the preset, e.g. `["tune": "film"]` or
    /// `["x264-params": "rc-lookahead=10:ref=1"]`. An option libx264 does not know makes `MP4Writer.init` throw.
    public var extraOptions: [String: String] = [:]

    /// Creates settings; the defaults suit the built-in engine.
    public init(preset: String = "veryfast", crf: Int = 20, threads: Int = 0, extraOptions: [String: String] = [:]) {
        self.preset = preset
        self.crf = crf
        self.threads = threads
        self.extraOptions = extraOptions
    }
}
