import CFFmpeg

// Owning wrappers around the libav objects KinemaMedia uses. Each frees its object in `deinit`, so
// an early `throw` anywhere can never leak; none of them escapes the module.

/// One-time process setup: libav logs every warning to stderr by default (x264 banners, per-image
/// decoder complaints on hostile input). Failures reach callers as `MediaError` with libav's message,
/// so only fatal messages are printed.
private let libavSetup: Void = {
    av_log_set_level(AV_LOG_FATAL)
}()

/// Call at every public entry point that touches libav.
@inline(__always) func ensureLibAV() { _ = libavSetup }

/// libav's message for an error code.
func avErrorString(_ code: Int32) -> String {
    var buffer = [CChar](repeating: 0, count: 256)
    kin_strerror(code, &buffer, buffer.count)
    return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// Throws a `MediaError` with `code` when `ret` is negative; returns `ret` otherwise.
@discardableResult
func avCheck(_ ret: Int32, _ what: @autoclosure () -> String, code: MediaError.Code = .codec) throws -> Int32 {
    if ret < 0 {
        throw MediaError(code: code, message: "\(what()) failed: \(avErrorString(ret))")
    }
    return ret
}

let averrorEAGAIN = kin_averror_eagain()
let averrorEOF = kin_averror_eof()
let avNoPTS = kin_nopts_value()

/// An owned `AVFrame`.
final class AVFrameBox {
    let pointer: UnsafeMutablePointer<AVFrame>

    init() throws {
        guard let frame = av_frame_alloc() else { throw MediaError(code: .codec, message: "av_frame_alloc: out of memory") }
        pointer = frame
    }

    deinit {
        var frame: UnsafeMutablePointer<AVFrame>? = pointer
        av_frame_free(&frame)
    }

    func data(_ plane: Int32) -> UnsafeMutablePointer<UInt8>? { kin_frame_data(pointer, plane) }
    func linesize(_ plane: Int32) -> Int { Int(kin_frame_linesize(pointer, plane)) }
}

/// An owned `AVPacket`.
final class AVPacketBox {
    let pointer: UnsafeMutablePointer<AVPacket>

    init() throws {
        guard let packet = av_packet_alloc() else { throw MediaError(code: .codec, message: "av_packet_alloc: out of memory") }
        pointer = packet
    }

    deinit {
        var packet: UnsafeMutablePointer<AVPacket>? = pointer
        av_packet_free(&packet)
    }
}

/// An owned `AVCodecContext`.
final class AVCodecContextBox {
    let pointer: UnsafeMutablePointer<AVCodecContext>

    init(codec: UnsafePointer<AVCodec>) throws {
        guard let context = avcodec_alloc_context3(codec) else {
            throw MediaError(code: .codec, message: "avcodec_alloc_context3: out of memory")
        }
        pointer = context
    }

    deinit {
        var context: UnsafeMutablePointer<AVCodecContext>? = pointer
        avcodec_free_context(&context)
    }
}

/// An owned, opened input `AVFormatContext`.
final class AVInputBox {
    let pointer: UnsafeMutablePointer<AVFormatContext>

    init(path: String) throws {
        var context: UnsafeMutablePointer<AVFormatContext>?
        // The "file:" prefix stops libav from reading a path like "http:x" or "pipe:1" as a protocol.
        try avCheck(avformat_open_input(&context, "file:" + path, nil, nil), "opening \(path)", code: .io)
        guard let opened = context else { throw MediaError(code: .io, message: "opening \(path) returned no context") }
        pointer = opened
        try avCheck(avformat_find_stream_info(opened, nil), "reading stream info of \(path)")
    }

    deinit {
        var context: UnsafeMutablePointer<AVFormatContext>? = pointer
        avformat_close_input(&context)
    }

    /// The streams of the file, in order.
    var streams: [UnsafeMutablePointer<AVStream>] {
        (0..<Int(pointer.pointee.nb_streams)).compactMap { pointer.pointee.streams[$0] }
    }
}

/// An owned `SwsContext` (pixel format conversion / scaling).
final class SwsBox {
    let pointer: OpaquePointer

    init(
        srcWidth: Int32, srcHeight: Int32, srcFormat: AVPixelFormat,
        dstWidth: Int32, dstHeight: Int32, dstFormat: AVPixelFormat, flags: Int32
    ) throws {
        guard let context = sws_getContext(srcWidth, srcHeight, srcFormat, dstWidth, dstHeight, dstFormat, flags, nil, nil, nil) else {
            throw MediaError(code: .codec, message: "no pixel conversion from \(pixelFormatName(srcFormat)) to \(pixelFormatName(dstFormat))")
        }
        pointer = context
    }

    deinit { sws_freeContext(pointer) }
}

/// An owned `SwrContext` (audio resampling / format conversion).
final class SwrBox {
    var pointer: OpaquePointer?

    init(
        inLayout: UnsafeMutablePointer<AVChannelLayout>, inFormat: AVSampleFormat, inRate: Int32,
        outLayout: UnsafeMutablePointer<AVChannelLayout>, outFormat: AVSampleFormat, outRate: Int32
    ) throws {
        var context: OpaquePointer?
        try avCheck(
            swr_alloc_set_opts2(&context, outLayout, outFormat, outRate, inLayout, inFormat, inRate, 0, nil),
            "configuring the audio resampler"
        )
        pointer = context
        try avCheck(swr_init(context), "initialising the audio resampler")
    }

    deinit { swr_free(&pointer) }
}

func pixelFormatName(_ format: AVPixelFormat) -> String {
    av_get_pix_fmt_name(format).map { String(cString: $0) } ?? "pixel format \(format.rawValue)"
}

/// Copies `rows` rows of `rowBytes` bytes from a frame plane into a tightly packed array (dropping line padding).
func copyRows(of frame: AVFrameBox, plane index: Int32, rowBytes: Int, rows: Int) -> [UInt8] {
    guard let src = frame.data(index) else { return [UInt8](repeating: 0, count: rowBytes * rows) }
    let stride = frame.linesize(index)
    return [UInt8](unsafeUninitializedCapacity: rowBytes * rows) { buffer, count in
        guard let dst = buffer.baseAddress else { return }
        for row in 0..<rows {
            (dst + row * rowBytes).initialize(from: src + row * stride, count: rowBytes)
        }
        count = rowBytes * rows
    }
}
