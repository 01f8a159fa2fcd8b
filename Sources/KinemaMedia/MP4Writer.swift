import CFFmpeg
import Foundation

/// Writes H.264 (libx264, yuv420p, BT.709 tags, limited range flag) + optional AAC (48 kHz stereo, 160 kbps, FFmpeg's
/// fast coder) into MP4 with +faststart.
///
/// Constant frame rate: frame `n` has presentation time `n / framesPerSecond` and every packet
/// carries a duration, so N frames give exactly N / fps seconds. Audio chunks are encoded as they
/// arrive; at `finish()` an audio track shorter than the video is padded with silence to the
/// video's length (a longer one is kept whole).
///
/// Use from one thread (not `Sendable`). Each `append` copies the frame once into the encoder's
/// buffer; it never retains the caller's arrays. If the writer is released without a successful
/// `finish()`, its file handle is closed and the incomplete file is deleted.
public final class MP4Writer {
    /// Frame width in pixels (even).
    public let width: Int
    /// Frame height in pixels (even).
    public let height: Int
    /// Constant frame rate.
    public let framesPerSecond: Int
    /// Whether the file gets an AAC track.
    public let withAudio: Bool
    /// Frames appended so far.
    public private(set) var frameCount = 0

    private enum State { case writing, finished, failed }

    private let path: String
    private let output: OutputContext
    private let video: EncoderStream
    private let audio: EncoderStream?
    private var state = State.writing
    /// Interleaved stereo samples not yet encoded (less than one AAC frame after each call).
    private var pendingAudio: [Float] = []
    private var audioSamplesSent: Int64 = 0

    /// Opens `url` for writing and starts both encoders; throws `MediaError` (`.invalidArgument`, `.codec`, `.io`).
    public init(
        url: URL, width: Int, height: Int, framesPerSecond: Int = 24, withAudio: Bool,
        settings: EncoderSettings = EncoderSettings()
    ) throws {
        ensureLibAV()
        guard width > 0, height > 0, width % 2 == 0, height % 2 == 0, width <= 16384, height <= 16384 else {
            throw MediaError(code: .invalidArgument, message: "video size \(width)x\(height) must be positive and even (yuv420p)")
        }
        guard (1...240).contains(framesPerSecond) else {
            throw MediaError(code: .invalidArgument, message: "frame rate \(framesPerSecond) must be between 1 and 240")
        }
        guard (0...51).contains(settings.crf), settings.threads >= 0 else {
            throw MediaError(
                code: .invalidArgument, message: "crf must be 0…51 and threads ≥ 0 (got crf \(settings.crf), threads \(settings.threads))")
        }
        self.width = width
        self.height = height
        self.framesPerSecond = framesPerSecond
        self.withAudio = withAudio
        self.path = url.path
        output = try OutputContext(path: url.path)
        video = try EncoderStream.h264(
            output: output, width: width, height: height, fps: framesPerSecond, settings: settings
        )
        audio = withAudio ? try EncoderStream.aac(output: output) : nil
        // All stored properties are set: from here a throw runs deinit, which closes and deletes the file.
        try output.open()
    }

    deinit {
        if state != .finished {
            output.close()
            if output.createdFile { try? FileManager.default.removeItem(atPath: path) }
        }
    }

    /// Encodes one frame; its size must match the writer's.
    public func append(_ frame: YUVFrame) throws {
        try checkWriting()
        guard frame.width == width, frame.height == height else {
            throw MediaError(code: .invalidArgument, message: "frame is \(frame.width)x\(frame.height) but the video is \(width)x\(height)")
        }
        try failing {
            let f = video.frame
            try avCheck(av_frame_make_writable(f.pointer), "making the video frame writable")
            copy(frame.y, into: f, plane: 0, width: width, height: height)
            copy(frame.u, into: f, plane: 1, width: width / 2, height: height / 2)
            copy(frame.v, into: f, plane: 2, width: width / 2, height: height / 2)
            f.pointer.pointee.pts = Int64(frameCount)
            try video.send(f.pointer, output: output)
            frameCount += 1
        }
    }

    /// Encodes interleaved 48 kHz stereo samples; may be called several times with consecutive chunks.
    public func appendAudio(_ track: AudioTrack) throws {
        try checkWriting()
        guard let audio else {
            throw MediaError(code: .invalidArgument, message: "this writer was created without audio (withAudio: false)")
        }
        try failing {
            pendingAudio.append(contentsOf: track.samples)
            try encodePendingAudio(audio, final: false)
        }
    }

    /// Flushes the encoders and writes the trailer (moving the index to the front for fast start).
    ///
    /// Calling it again after it succeeded does nothing. Throws `.invalidArgument` if no frame was
    /// appended (the incomplete file is then deleted when the writer is released).
    public func finish() throws {
        if state == .finished { return }
        try checkWriting()
        try failing {
            // libav would write a file whose video track nothing can open.
            guard frameCount > 0 else {
                throw MediaError(code: .invalidArgument, message: "an MP4 needs at least one video frame; none was appended")
            }
            if let audio {
                let videoSamples = Int64(frameCount) * Int64(AudioTrack.sampleRate) / Int64(framesPerSecond)
                let queued = audioSamplesSent + Int64(pendingAudio.count / 2)
                if queued < videoSamples {
                    pendingAudio.append(contentsOf: repeatElement(0, count: Int(videoSamples - queued) * 2))
                }
                try encodePendingAudio(audio, final: true)
                try audio.send(nil, output: output)
            }
            try video.send(nil, output: output)
            try avCheck(av_write_trailer(output.pointer), "writing the MP4 trailer", code: .io)
            output.close()
            state = .finished
        }
    }

    // MARK: - Internals

    private func checkWriting() throws {
        switch state {
        case .writing: return
        case .finished: throw MediaError(code: .invalidArgument, message: "the MP4 writer is already finished")
        case .failed: throw MediaError(code: .invalidArgument, message: "the MP4 writer failed earlier and cannot continue")
        }
    }

    /// Runs `body`; any error leaves the writer failed so no later call writes a broken stream.
    private func failing(_ body: () throws -> Void) throws {
        do {
            try body()
        } catch {
            state = .failed
            throw error
        }
    }

    private func copy(_ plane: [UInt8], into frame: AVFrameBox, plane index: Int32, width: Int, height: Int) {
        guard let dst = frame.data(index) else { return }
        let stride = frame.linesize(index)
        plane.withUnsafeBufferPointer { src in
            guard let base = src.baseAddress else { return }
            if stride == width {
                dst.update(from: base, count: width * height)
            } else {
                for row in 0..<height {
                    (dst + row * stride).update(from: base + row * width, count: width)
                }
            }
        }
    }

    /// Encodes whole AAC frames from `pendingAudio`; with `final`, also the last partial frame.
    private func encodePendingAudio(_ audio: EncoderStream, final: Bool) throws {
        let frameSize = Int(audio.context.pointer.pointee.frame_size)
        let available = pendingAudio.count / 2
        var offset = 0
        while available - offset >= frameSize || (final && offset < available) {
            let n = min(frameSize, available - offset)
            let f = audio.frame
            f.pointer.pointee.nb_samples = Int32(n)
            try avCheck(av_frame_make_writable(f.pointer), "making the audio frame writable")
            guard let left = f.data(0), let right = f.data(1) else {
                throw MediaError(code: .codec, message: "the audio frame has no planes")
            }
            // AAC wants planar float: split the interleaved pairs.
            left.withMemoryRebound(to: Float.self, capacity: n) { l in
                right.withMemoryRebound(to: Float.self, capacity: n) { r in
                    pendingAudio.withUnsafeBufferPointer { src in
                        for i in 0..<n {
                            l[i] = src[(offset + i) * 2]
                            r[i] = src[(offset + i) * 2 + 1]
                        }
                    }
                }
            }
            f.pointer.pointee.pts = audioSamplesSent
            try audio.send(f.pointer, output: output)
            audioSamplesSent += Int64(n)
            offset += n
        }
        pendingAudio.removeFirst(offset * 2)
    }
}

/// The output `AVFormatContext` and its file.
private final class OutputContext {
    let pointer: UnsafeMutablePointer<AVFormatContext>
    private let path: String
    private(set) var createdFile = false
    private var isOpen = false

    init(path: String) throws {
        var context: UnsafeMutablePointer<AVFormatContext>?
        // The muxer reopens its URL for +faststart, so it gets the same "file:" form as avio_open below.
        try avCheck(avformat_alloc_output_context2(&context, nil, "mp4", "file:" + path), "creating the MP4 muxer")
        guard let context else { throw MediaError(code: .codec, message: "creating the MP4 muxer returned nothing") }
        pointer = context
        self.path = path
        // Wait for a packet of every stream before writing (no flush after 10 s of one stream): the packet order, and
        // so the file's bytes, no longer depend on when the audio arrives relative to the video.
        context.pointee.max_interleave_delta = 0
    }

    /// Opens the file and writes the header (after all streams are added).
    func open() throws {
        // The "file:" prefix stops libav from reading a path like "http:x" or "pipe:1" as a protocol.
        try avCheck(avio_open(&pointer.pointee.pb, "file:" + path, AVIO_FLAG_WRITE), "opening \(path) for writing", code: .io)
        isOpen = true
        createdFile = true
        var options: OpaquePointer?
        defer { av_dict_free(&options) }
        av_dict_set(&options, "movflags", "+faststart", 0)
        try avCheck(avformat_write_header(pointer, &options), "writing the MP4 header")
    }

    func close() {
        if isOpen {
            avio_closep(&pointer.pointee.pb)
            isOpen = false
        }
    }

    deinit {
        close()
        avformat_free_context(pointer)
    }
}

/// One encoder, its output stream, and a reusable frame and packet.
private final class EncoderStream {
    let context: AVCodecContextBox
    let stream: UnsafeMutablePointer<AVStream>
    let frame: AVFrameBox
    private let packet: AVPacketBox
    /// Duration of one packet in the codec time base when the encoder leaves it unset (x264 does).
    private let defaultDuration: Int64

    private init(context: AVCodecContextBox, stream: UnsafeMutablePointer<AVStream>, frame: AVFrameBox, defaultDuration: Int64) throws {
        self.context = context
        self.stream = stream
        self.frame = frame
        self.packet = try AVPacketBox()
        self.defaultDuration = defaultDuration
    }

    static func h264(output: OutputContext, width: Int, height: Int, fps: Int, settings: EncoderSettings) throws -> EncoderStream {
        guard let codec = avcodec_find_encoder_by_name("libx264") else {
            throw MediaError(code: .codec, message: "this FFmpeg build has no libx264 encoder")
        }
        let box = try AVCodecContextBox(codec: codec)
        let c = box.pointer
        c.pointee.width = Int32(width)
        c.pointee.height = Int32(height)
        c.pointee.pix_fmt = AV_PIX_FMT_YUV420P
        c.pointee.time_base = AVRational(num: 1, den: Int32(fps))
        c.pointee.framerate = AVRational(num: Int32(fps), den: 1)
        c.pointee.sample_aspect_ratio = AVRational(num: 1, den: 1)
        c.pointee.color_primaries = AVCOL_PRI_BT709
        c.pointee.color_trc = AVCOL_TRC_BT709
        c.pointee.colorspace = AVCOL_SPC_BT709
        c.pointee.color_range = AVCOL_RANGE_MPEG
        c.pointee.thread_count = Int32(settings.threads)
        if output.pointer.pointee.oformat.pointee.flags & AVFMT_GLOBALHEADER != 0 {
            c.pointee.flags |= AV_CODEC_FLAG_GLOBAL_HEADER
        }
        var options: OpaquePointer?
        defer { av_dict_free(&options) }
        av_dict_set(&options, "preset", settings.preset, 0)
        av_dict_set(&options, "crf", String(settings.crf), 0)
        var extra = settings.extraOptions
        if settings.deterministic, let cpu = Self.x264CPUWithoutAVX512() {
            extra["x264-params"] = [extra["x264-params"], "asm=\(cpu)"].compactMap { $0 }.joined(separator: ":")
        }
        for (key, value) in extra.sorted(by: { $0.key < $1.key }) {
            av_dict_set(&options, key, value, 0)
        }
        try avCheck(avcodec_open2(c, codec, &options), "opening libx264 (preset \(settings.preset), crf \(settings.crf))")
        // avcodec_open2 leaves the options nobody consumed in the dictionary.
        if let unknown = av_dict_get(options, "", nil, AV_DICT_IGNORE_SUFFIX) {
            throw MediaError(code: .invalidArgument, message: "libx264 has no option '\(String(cString: unknown.pointee.key))'")
        }

        let stream = try addStream(output: output, context: box)
        stream.pointee.avg_frame_rate = c.pointee.framerate
        let frame = try AVFrameBox()
        frame.pointer.pointee.format = AV_PIX_FMT_YUV420P.rawValue
        frame.pointer.pointee.width = Int32(width)
        frame.pointer.pointee.height = Int32(height)
        frame.pointer.pointee.color_primaries = AVCOL_PRI_BT709
        frame.pointer.pointee.color_trc = AVCOL_TRC_BT709
        frame.pointer.pointee.colorspace = AVCOL_SPC_BT709
        frame.pointer.pointee.color_range = AVCOL_RANGE_MPEG
        try avCheck(av_frame_get_buffer(frame.pointer, 0), "allocating the video frame")
        // x264 copies rows rounded up to its vector width, so the row padding is read too: keep it defined.
        for plane: Int32 in 0..<3 {
            if let data = frame.data(plane) {
                memset(data, 0, frame.linesize(plane) * (plane == 0 ? height : height / 2))
            }
        }
        return try EncoderStream(context: box, stream: stream, frame: frame, defaultDuration: 1)
    }

    static func aac(output: OutputContext) throws -> EncoderStream {
        guard let codec = avcodec_find_encoder(AV_CODEC_ID_AAC) else {
            throw MediaError(code: .codec, message: "this FFmpeg build has no AAC encoder")
        }
        let box = try AVCodecContextBox(codec: codec)
        let c = box.pointer
        c.pointee.sample_fmt = AV_SAMPLE_FMT_FLTP
        c.pointee.sample_rate = Int32(AudioTrack.sampleRate)
        kin_channel_layout_default(&c.pointee.ch_layout, Int32(AudioTrack.channels))
        c.pointee.bit_rate = 160_000
        c.pointee.time_base = AVRational(num: 1, den: Int32(AudioTrack.sampleRate))
        if output.pointer.pointee.oformat.pointee.flags & AVFMT_GLOBALHEADER != 0 {
            c.pointee.flags |= AV_CODEC_FLAG_GLOBAL_HEADER
        }
        var options: OpaquePointer?
        defer { av_dict_free(&options) }
        // FFmpeg's default "twoloop" coder cost 0.26 CPU-s per 5 s of stereo here, as much as rendering the video;
        // the constant-quantiser "fast" coder costs ≈ 0.05 s and is documented as fine above 96 kbps.
        av_dict_set(&options, "aac_coder", "fast", 0)
        try avCheck(avcodec_open2(c, codec, &options), "opening the AAC encoder")

        let stream = try addStream(output: output, context: box)
        let frame = try AVFrameBox()
        frame.pointer.pointee.format = AV_SAMPLE_FMT_FLTP.rawValue
        frame.pointer.pointee.sample_rate = c.pointee.sample_rate
        frame.pointer.pointee.nb_samples = c.pointee.frame_size
        try avCheck(av_channel_layout_copy(&frame.pointer.pointee.ch_layout, &c.pointee.ch_layout), "setting the audio layout")
        try avCheck(av_frame_get_buffer(frame.pointer, 0), "allocating the audio frame")
        return try EncoderStream(context: box, stream: stream, frame: frame, defaultDuration: Int64(c.pointee.frame_size))
    }

    /// The x264 `asm` value that keeps every kernel x264 would pick except AVX-512, or nil when the CPU has no
    /// AVX-512 (x264's own detection is then left alone).
    ///
    /// Every CPU with AVX-512 also has AVX2, FMA3, BMI1/2 and LZCNT (x264's "AVX2" level) and fast SSE2; the
    /// cache-line flag only steers which of two equivalent copy kernels runs.
    private static func x264CPUWithoutAVX512() -> String? {
        let flags = av_get_cpu_flags()
        let avx2Level = AV_CPU_FLAG_AVX2 | AV_CPU_FLAG_FMA3 | AV_CPU_FLAG_BMI2
        guard flags & AV_CPU_FLAG_AVX512 != 0, flags & avx2Level == avx2Level else { return nil }
        return "AVX2,SSE2Fast,Cache64"
    }

    private static func addStream(output: OutputContext, context: AVCodecContextBox) throws -> UnsafeMutablePointer<AVStream> {
        guard let stream = avformat_new_stream(output.pointer, nil) else {
            throw MediaError(code: .codec, message: "adding a stream to the MP4 muxer failed")
        }
        stream.pointee.time_base = context.pointer.pointee.time_base
        try avCheck(avcodec_parameters_from_context(stream.pointee.codecpar, context.pointer), "copying encoder parameters")
        return stream
    }

    /// Sends a frame (or `nil` to flush) and writes every packet the encoder has ready.
    func send(_ frame: UnsafeMutablePointer<AVFrame>?, output: OutputContext) throws {
        try avCheck(avcodec_send_frame(context.pointer, frame), "encoding")
        while true {
            let ret = avcodec_receive_packet(context.pointer, packet.pointer)
            if ret == averrorEAGAIN || ret == averrorEOF { return }
            try avCheck(ret, "receiving an encoded packet")
            let p = packet.pointer
            if p.pointee.duration == 0 { p.pointee.duration = defaultDuration }
            p.pointee.stream_index = stream.pointee.index
            av_packet_rescale_ts(p, context.pointer.pointee.time_base, stream.pointee.time_base)
            // Takes ownership of the packet's data and leaves it blank for the next receive.
            try avCheck(av_interleaved_write_frame(output.pointer, p), "writing a packet", code: .io)
        }
    }
}
