import CFFmpeg
import Foundation

/// Encodes RGBA images to PNG or JPEG bytes with FFmpeg (test fixtures, thumbnails, frame dumps).
public enum ImageEncoder {
    /// Lossless 8-bit RGBA PNG.
    public static func png(_ image: RGBAImage) throws -> Data {
        try encode(image, codecID: AV_CODEC_ID_PNG, pixelFormat: AV_PIX_FMT_RGBA, name: "PNG") { _ in }
    }

    /// Baseline JPEG (4:2:0, JFIF full-range BT.601); alpha is ignored.
    ///
    /// `quality` runs from 1 (smallest) to 100 (best); it maps linearly onto MJPEG's quantiser 31…2.
    public static func jpeg(_ image: RGBAImage, quality: Int = 90) throws -> Data {
        let q = max(1, min(100, quality))
        let qscale = 31 - (q - 1) * 29 / 99
        return try encode(image, codecID: AV_CODEC_ID_MJPEG, pixelFormat: AV_PIX_FMT_YUVJ420P, name: "JPEG") { c in
            c.pointee.flags |= AV_CODEC_FLAG_QSCALE
            c.pointee.global_quality = Int32(qscale) * FF_QP2LAMBDA
            c.pointee.color_range = AVCOL_RANGE_JPEG
        }
    }

    private static func encode(
        _ image: RGBAImage, codecID: AVCodecID, pixelFormat: AVPixelFormat, name: String,
        configure: (UnsafeMutablePointer<AVCodecContext>) -> Void
    ) throws -> Data {
        ensureLibAV()
        guard let codec = avcodec_find_encoder(codecID) else {
            throw MediaError(code: .codec, message: "this FFmpeg build has no \(name) encoder")
        }
        let context = try AVCodecContextBox(codec: codec)
        let c = context.pointer
        c.pointee.width = Int32(image.width)
        c.pointee.height = Int32(image.height)
        c.pointee.pix_fmt = pixelFormat
        c.pointee.time_base = AVRational(num: 1, den: 25)
        c.pointee.thread_count = 1
        configure(c)
        try avCheck(avcodec_open2(c, codec, nil), "opening the \(name) encoder")

        let frame = try AVFrameBox()
        frame.pointer.pointee.format = pixelFormat.rawValue
        frame.pointer.pointee.width = Int32(image.width)
        frame.pointer.pointee.height = Int32(image.height)
        try avCheck(av_frame_get_buffer(frame.pointer, 0), "allocating the image frame")
        // yuvj420p is the full-range spelling swscale expects for JPEG; RGBA passes straight through.
        let sws = try SwsBox(
            srcWidth: Int32(image.width), srcHeight: Int32(image.height), srcFormat: AV_PIX_FMT_RGBA,
            dstWidth: Int32(image.width), dstHeight: Int32(image.height), dstFormat: pixelFormat,
            flags: Int32(SWS_BICUBIC | SWS_ACCURATE_RND)
        )
        // The source goes through a padded frame too: swscale's SIMD readers may read past a row's end.
        let source = try AVFrameBox()
        source.pointer.pointee.format = AV_PIX_FMT_RGBA.rawValue
        source.pointer.pointee.width = Int32(image.width)
        source.pointer.pointee.height = Int32(image.height)
        try avCheck(av_frame_get_buffer(source.pointer, 0), "allocating the RGBA frame")
        if let dst = source.data(0) {
            let stride = source.linesize(0), rowBytes = image.width * 4
            image.pixels.withUnsafeBufferPointer { px in
                guard let src = px.baseAddress else { return }
                for row in 0..<image.height { (dst + row * stride).update(from: src + row * rowBytes, count: rowBytes) }
            }
        }
        try avCheck(sws_scale_frame(sws.pointer, frame.pointer, source.pointer), "converting RGBA for the \(name) encoder")
        frame.pointer.pointee.pts = 0

        let packet = try AVPacketBox()
        try avCheck(avcodec_send_frame(c, frame.pointer), "encoding the \(name) image")
        try avCheck(avcodec_send_frame(c, nil), "flushing the \(name) encoder")
        var data = Data()
        while true {
            let ret = avcodec_receive_packet(c, packet.pointer)
            if ret == averrorEOF || ret == averrorEAGAIN { break }
            try avCheck(ret, "receiving the \(name) bytes")
            data.append(packet.pointer.pointee.data, count: Int(packet.pointer.pointee.size))
            av_packet_unref(packet.pointer)
        }
        guard !data.isEmpty else { throw MediaError(code: .codec, message: "the \(name) encoder produced no data") }
        return data
    }
}
