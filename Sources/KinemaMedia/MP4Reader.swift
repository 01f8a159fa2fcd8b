import CFFmpeg
import Foundation

/// What a video file holds, measured from its packets rather than trusted from its metadata.
public struct VideoInfo: Sendable, Equatable {
    /// Coded frame width.
    public var width: Int
    /// Coded frame height.
    public var height: Int
    /// Average frame rate of the video stream (frames per second).
    public var frameRate: Double
    /// Number of video packets (one per frame for H.264 in MP4).
    public var frameCount: Int
    /// Video stream length: end of the last frame minus start of the first, in seconds.
    public var durationSeconds: Double
    /// FFmpeg's codec name, e.g. "h264".
    public var videoCodec: String
    /// FFmpeg's pixel format name, e.g. "yuv420p".
    public var pixelFormat: String
    /// Whether there is an audio stream.
    public var hasAudio: Bool
    /// FFmpeg's audio codec name, e.g. "aac".
    public var audioCodec: String?
    /// Audio sample rate in Hz.
    public var audioSampleRate: Int?
    /// Audio channel count.
    public var audioChannels: Int?
    /// The video's colour matrix tag, e.g. "bt709" (`nil` when untagged).
    public var colorSpace: String?

    /// Creates a value from its fields.
    public init(
        width: Int, height: Int, frameRate: Double, frameCount: Int, durationSeconds: Double, videoCodec: String,
        pixelFormat: String, hasAudio: Bool, audioCodec: String? = nil, audioSampleRate: Int? = nil,
        audioChannels: Int? = nil, colorSpace: String? = nil
    ) {
        self.width = width
        self.height = height
        self.frameRate = frameRate
        self.frameCount = frameCount
        self.durationSeconds = durationSeconds
        self.videoCodec = videoCodec
        self.pixelFormat = pixelFormat
        self.hasAudio = hasAudio
        self.audioCodec = audioCodec
        self.audioSampleRate = audioSampleRate
        self.audioChannels = audioChannels
        self.colorSpace = colorSpace
    }
}

/// Reads an MP4 back (for tests/analysis; also used by the motion engine's tests).
public enum MP4Reader {
    /// Streams, sizes and counts of a video file; the frame count and duration come from its packets.
    public static func info(url: URL) throws -> VideoInfo {
        ensureLibAV()
        let input = try AVInputBox(path: url.path)
        let videoIndex = try videoStream(input, url: url)
        let audioIndex = try bestStream(input, AVMEDIA_TYPE_AUDIO, url: url, required: false)
        let stream = input.streams[Int(videoIndex)]
        let par = stream.pointee.codecpar.pointee

        let packet = try AVPacketBox()
        var count = 0
        var first = Int64.max, end = Int64.min
        while true {
            let ret = av_read_frame(input.pointer, packet.pointer)
            if ret == averrorEOF { break }
            try avCheck(ret, "reading \(url.lastPathComponent)", code: .io)
            let p = packet.pointer.pointee
            if p.stream_index == videoIndex {
                count += 1
                let pts = p.pts != avNoPTS ? p.pts : p.dts
                if pts != avNoPTS {
                    first = min(first, pts)
                    end = max(end, pts + p.duration)
                }
            }
            av_packet_unref(packet.pointer)
        }
        let tb = stream.pointee.time_base
        let duration = count > 0 && first <= end ? Double(end - first) * Double(tb.num) / Double(tb.den) : 0

        var rate = stream.pointee.avg_frame_rate
        if rate.num == 0 || rate.den == 0 { rate = stream.pointee.r_frame_rate }
        let frameRate = rate.den != 0 ? Double(rate.num) / Double(rate.den) : 0

        var info = VideoInfo(
            width: Int(par.width), height: Int(par.height), frameRate: frameRate, frameCount: count,
            durationSeconds: duration, videoCodec: String(cString: avcodec_get_name(par.codec_id)),
            pixelFormat: pixelFormatName(AVPixelFormat(rawValue: par.format)), hasAudio: audioIndex != nil,
            colorSpace: par.color_space == AVCOL_SPC_UNSPECIFIED ? nil : av_color_space_name(par.color_space).map { String(cString: $0) }
        )
        if let audioIndex {
            let a = input.streams[Int(audioIndex)].pointee.codecpar.pointee
            info.audioCodec = String(cString: avcodec_get_name(a.codec_id))
            info.audioSampleRate = Int(a.sample_rate)
            info.audioChannels = Int(a.ch_layout.nb_channels)
        }
        return info
    }

    /// Decoded frames in order, converted to yuv420p if needed; `body` may throw to stop early.
    public static func forEachFrame(url: URL, _ body: (Int, YUVFrame) throws -> Void) throws {
        ensureLibAV()
        let input = try AVInputBox(path: url.path)
        let index = try videoStream(input, url: url)
        var converter: SwsBox?
        var n = 0
        try decode(input, streamIndex: index) { frame in
            let yuv = try yuvFrame(from: frame, converter: &converter)
            try body(n, yuv)
            n += 1
        }
    }

    /// Whole audio track, 48k stereo interleaved float; `nil` when the file has no audio.
    public static func decodeAudio(url: URL) throws -> AudioTrack? {
        ensureLibAV()
        let input = try AVInputBox(path: url.path)
        guard let index = try bestStream(input, AVMEDIA_TYPE_AUDIO, url: url, required: false) else { return nil }
        var resampler: SwrBox?
        var samples: [Float] = []
        var outLayout = AVChannelLayout()
        kin_channel_layout_default(&outLayout, Int32(AudioTrack.channels))
        defer { av_channel_layout_uninit(&outLayout) }

        func convert(_ input: UnsafeMutablePointer<UnsafePointer<UInt8>?>?, count: Int32, swr: OpaquePointer?) throws {
            let capacity = Int(swr_get_out_samples(swr, count))
            guard capacity > 0 else { return }
            let start = samples.count
            samples.append(contentsOf: repeatElement(0, count: capacity * 2))
            let produced = try samples.withUnsafeMutableBufferPointer { buffer in
                try buffer.baseAddress!.advanced(by: start).withMemoryRebound(to: UInt8.self, capacity: capacity * 8) { out in
                    var outPlanes: UnsafeMutablePointer<UInt8>? = out
                    return try avCheck(swr_convert(swr, &outPlanes, Int32(capacity), input, count), "resampling audio")
                }
            }
            samples.removeLast((capacity - Int(produced)) * 2)
        }

        try decode(input, streamIndex: index) { frame in
            let f = frame.pointer.pointee
            if resampler == nil {
                var inLayout = f.ch_layout
                resampler = try SwrBox(
                    inLayout: &inLayout, inFormat: AVSampleFormat(rawValue: f.format), inRate: f.sample_rate,
                    outLayout: &outLayout, outFormat: AV_SAMPLE_FMT_FLT, outRate: Int32(AudioTrack.sampleRate)
                )
            }
            // extended_data is `uint8_t **`; swr_convert reads it as `const uint8_t **`.
            let planes = UnsafeMutableRawPointer(f.extended_data).map { $0.assumingMemoryBound(to: UnsafePointer<UInt8>?.self) }
            try convert(planes, count: f.nb_samples, swr: resampler?.pointer)
        }
        if let swr = resampler?.pointer {
            try convert(nil, count: 0, swr: swr) // drain the resampler's delay
        }
        return AudioTrack(samples: samples)
    }

    // MARK: - Internals

    private static func videoStream(_ input: AVInputBox, url: URL) throws -> Int32 {
        guard let index = try bestStream(input, AVMEDIA_TYPE_VIDEO, url: url, required: true) else {
            throw MediaError(code: .unsupportedFormat, message: "\(url.lastPathComponent) has no video stream")
        }
        return index
    }

    private static func bestStream(_ input: AVInputBox, _ type: AVMediaType, url: URL, required: Bool) throws -> Int32? {
        let index = av_find_best_stream(input.pointer, type, -1, -1, nil, 0)
        if index < 0 {
            if required {
                throw MediaError(
                    code: .unsupportedFormat, message: "\(url.lastPathComponent) has no \(type == AVMEDIA_TYPE_VIDEO ? "video" : "audio") stream")
            }
            return nil
        }
        return index
    }

    /// Decodes every packet of one stream, calling `body` with each frame in presentation order.
    private static func decode(_ input: AVInputBox, streamIndex: Int32, _ body: (AVFrameBox) throws -> Void) throws {
        guard let par = input.streams[Int(streamIndex)].pointee.codecpar else {
            throw MediaError(code: .codec, message: "stream \(streamIndex) has no codec parameters")
        }
        guard let codec = avcodec_find_decoder(par.pointee.codec_id) else {
            throw MediaError(code: .unsupportedFormat, message: "no decoder for \(String(cString: avcodec_get_name(par.pointee.codec_id)))")
        }
        let context = try AVCodecContextBox(codec: codec)
        try avCheck(avcodec_parameters_to_context(context.pointer, par), "configuring the decoder")
        context.pointer.pointee.thread_count = 0
        try avCheck(avcodec_open2(context.pointer, codec, nil), "opening the decoder")
        let packet = try AVPacketBox()
        let frame = try AVFrameBox()

        func drain() throws {
            while true {
                let ret = avcodec_receive_frame(context.pointer, frame.pointer)
                if ret == averrorEAGAIN || ret == averrorEOF { return }
                try avCheck(ret, "decoding a frame")
                defer { av_frame_unref(frame.pointer) }
                try body(frame)
            }
        }
        while true {
            let ret = av_read_frame(input.pointer, packet.pointer)
            if ret == averrorEOF { break }
            try avCheck(ret, "reading packets", code: .io)
            defer { av_packet_unref(packet.pointer) }
            guard packet.pointer.pointee.stream_index == streamIndex else { continue }
            try avCheck(avcodec_send_packet(context.pointer, packet.pointer), "sending a packet to the decoder")
            try drain()
        }
        try avCheck(avcodec_send_packet(context.pointer, nil), "flushing the decoder")
        try drain()
    }

    private static func yuvFrame(from frame: AVFrameBox, converter: inout SwsBox?) throws -> YUVFrame {
        let f = frame.pointer.pointee
        let w = Int(f.width), h = Int(f.height)
        guard w % 2 == 0, h % 2 == 0 else {
            throw MediaError(code: .unsupportedFormat, message: "video frames of \(w)x\(h) cannot be read as yuv420p frames (odd size)")
        }
        let format = AVPixelFormat(rawValue: f.format)
        if format == AV_PIX_FMT_YUV420P || format == AV_PIX_FMT_YUVJ420P {
            return YUVFrame(
                width: w, height: h,
                y: plane(frame, 0, width: w, height: h),
                u: plane(frame, 1, width: w / 2, height: h / 2),
                v: plane(frame, 2, width: w / 2, height: h / 2)
            )
        }
        if converter == nil {
            converter = try SwsBox(
                srcWidth: f.width, srcHeight: f.height, srcFormat: format,
                dstWidth: f.width, dstHeight: f.height, dstFormat: AV_PIX_FMT_YUV420P,
                flags: Int32(SWS_BICUBIC | SWS_ACCURATE_RND)
            )
        }
        let converted = try AVFrameBox()
        converted.pointer.pointee.format = AV_PIX_FMT_YUV420P.rawValue
        converted.pointer.pointee.width = f.width
        converted.pointer.pointee.height = f.height
        try avCheck(av_frame_get_buffer(converted.pointer, 0), "allocating a conversion frame")
        try avCheck(sws_scale_frame(converter!.pointer, converted.pointer, frame.pointer), "converting to yuv420p")
        return YUVFrame(
            width: w, height: h,
            y: plane(converted, 0, width: w, height: h),
            u: plane(converted, 1, width: w / 2, height: h / 2),
            v: plane(converted, 2, width: w / 2, height: h / 2)
        )
    }

    /// Copies one plane without its line padding.
    private static func plane(_ frame: AVFrameBox, _ index: Int32, width: Int, height: Int) -> [UInt8] {
        guard let src = frame.data(index) else { return [UInt8](repeating: 0, count: width * height) }
        let stride = frame.linesize(index)
        return [UInt8](unsafeUninitializedCapacity: width * height) { buffer, count in
            for row in 0..<height {
                (buffer.baseAddress! + row * width).initialize(from: src + row * stride, count: width)
            }
            count = width * height
        }
    }
}
