/// libx264 settings for `MP4Writer`.
public struct EncoderSettings: Sendable, Equatable {
    /// x264 preset: ultrafast, superfast, veryfast, faster, fast, medium, slow…; faster presets give bigger files.
    public var preset: String = "veryfast"
    /// Constant rate factor 0…51: lower is better quality and bigger files (20 is visually near-lossless for our content).
    public var crf: Int = 20
    /// Encoder threads; 0 lets x264 choose from the core count.
    ///
    /// x264's output depends on the thread count (it is written into the stream's options SEI, and frame threads limit
    /// how far motion vectors may reach), so a fixed count gives the same bytes on every machine; 0 does not.
    public var threads: Int = 0
    /// Keeps x264's output a pure function of the frames and these settings (default true).
    ///
    /// x264 0.164's AVX-512 kernels read uninitialised memory: on a CPU with AVX-512 the same frames encode to
    /// different streams depending on what the heap held before (measured in process and with the `ffmpeg` CLI under
    /// `MALLOC_PERTURB_`). When true and the CPU has AVX-512, the encoder uses x264's AVX2 kernels instead, which
    /// measured no slower here. When false, x264 uses every instruction set it detects.
    public var deterministic: Bool = true
    /// Further libx264 options by FFmpeg name, applied with the preset, e.g. `["tune": "film"]` or
    /// `["x264-params": "rc-lookahead=10:ref=1"]`. An option libx264 does not know makes `MP4Writer.init` throw.
    public var extraOptions: [String: String] = [:]

    /// Creates settings; the defaults suit the built-in engine.
    public init(
        preset: String = "veryfast", crf: Int = 20, threads: Int = 0, deterministic: Bool = true,
        extraOptions: [String: String] = [:]
    ) {
        self.preset = preset
        self.crf = crf
        self.threads = threads
        self.deterministic = deterministic
        self.extraOptions = extraOptions
    }
}
