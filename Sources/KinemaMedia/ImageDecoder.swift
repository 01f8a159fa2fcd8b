import CFFmpeg
import Foundation
import KinemaCore

/// Decodes PNG and JPEG bytes to RGBA with FFmpeg, after checking the header against limits.
public enum ImageDecoder {
    /// Decodes PNG/JPEG bytes to RGBA with EXIF orientation applied. Checks limits from the header BEFORE decoding.
    ///
    /// A PNG must pass its chunk checksums; a JPEG's scan data must reach its end-of-image marker
    /// (FFmpeg would otherwise paint the missing part of a truncated upload grey and succeed).
    ///
    /// - Throws: `MediaError` with `.unsupportedFormat` (neither PNG nor JPEG), `.corruptImage`
    ///   (broken header or pixel data), or `.exceedsLimits` (too large; nothing was decoded).
    public static func decode(_ data: Data, limits: ImageLimits = ImageLimits()) throws -> RGBAImage {
        let header = try validatedHeader(data, limits: limits)
        // 8-bit RGB(A) PNGs decode here (same pixels, a fraction of the time); everything else through FFmpeg.
        if header.format == .png, let image = try PNGVerifier.decodeRGBA(data) {
            return image.applyingEXIFOrientation(header.orientation)
        }
        return try decodeWithFFmpeg(data, header: header)
    }

    /// `decode` through FFmpeg's decoder whatever the format (for the tests that compare the two PNG paths).
    static func decodeWithFFmpeg(_ data: Data, header: ImageHeader) throws -> RGBAImage {
        let stored = try convertToRGBA(decodeFrame(data, header: header))
        return stored.applyingEXIFOrientation(header.orientation)
    }

    /// Proves the bytes decode, as `decode` would, without producing RGBA pixels: for checking uploads.
    ///
    /// The same checks as `decode` in the same order (header limits first, so nothing oversized is inflated):
    /// a PNG goes through `PNGVerifier` (chunk CRCs, the zlib stream, the exact data size, row filter types),
    /// a JPEG through FFmpeg's decoder at 1/8 scale (the whole entropy-coded data is still decoded), without the
    /// conversion to RGBA.
    ///
    /// - Returns: the image's header.
    /// - Throws: `MediaError`, with the codes `decode` uses.
    @discardableResult
    public static func verify(_ data: Data, limits: ImageLimits = ImageLimits()) throws -> ImageHeader {
        let header = try validatedHeader(data, limits: limits)
        switch header.format {
        case .png: try PNGVerifier.verify(data)
        case .jpeg:
            // At 1/8 scale (FFmpeg's `lowres` 3): every Huffman code is still decoded, which is where damage shows,
            // but each 8x8 block's inverse DCT is one coefficient and the frame 1/64 of the size.
            do {
                _ = try decodeFrame(data, header: header, scaleShift: 3)
            } catch {
                // Some JPEGs cannot be decoded at a reduced scale (lossless ones): the full decode decides.
                _ = try decodeFrame(data, header: header)
            }
        }
        return header
    }

    /// Parses the header and checks it against `limits` without decoding any pixels (microseconds).
    ///
    /// Use it to refuse bad uploads early; `decode` runs the same checks first.
    public static func validatedHeader(_ data: Data, limits: ImageLimits = ImageLimits()) throws -> ImageHeader {
        let header: ImageHeader
        do {
            header = try ImageHeader.parse(data)
        } catch {
            switch error.code {
            case .unknownFormat: throw MediaError(code: .unsupportedFormat, message: error.message + "; only PNG and JPEG are accepted")
            case .truncated, .malformed: throw MediaError(code: .corruptImage, message: error.message)
            }
        }
        let w = header.storedWidth, h = header.storedHeight
        if w > limits.maxSide || h > limits.maxSide {
            throw MediaError(
                code: .exceedsLimits,
                message: "the image is \(w)x\(h); each side must be at most \(limits.maxSide) pixels"
            )
        }
        if w * h > limits.maxPixels {
            throw MediaError(
                code: .exceedsLimits,
                message: "the image has \(w * h) pixels (\(w)x\(h)); at most \(limits.maxPixels) are accepted"
            )
        }
        return header
    }

    /// Decodes the single frame of a checked image with FFmpeg, refusing damaged or concealed data.
    /// `scaleShift` > 0 decodes a JPEG at 1/2^scaleShift of its size (FFmpeg's `lowres`, at most the codec's maximum).
    private static func decodeFrame(_ data: Data, header: ImageHeader, scaleShift: Int32 = 0) throws -> AVFrameBox {
        ensureLibAV()
        let name = header.format == .png ? "PNG" : "JPEG"
        if header.format == .jpeg, !JPEGStructure.reachesEndOfImage(data) {
            throw MediaError(code: .corruptImage, message: "the JPEG is truncated or damaged: its scan data never reaches the end-of-image marker")
        }
        let codecID = header.format == .png ? AV_CODEC_ID_PNG : AV_CODEC_ID_MJPEG
        guard let codec = avcodec_find_decoder(codecID) else {
            throw MediaError(code: .codec, message: "this FFmpeg build has no \(name) decoder")
        }
        guard data.count < Int(Int32.max) - Int(AV_INPUT_BUFFER_PADDING_SIZE) else {
            throw MediaError(code: .exceedsLimits, message: "the image file is \(data.count) bytes, too large to decode")
        }
        let context = try AVCodecContextBox(codec: codec)
        context.pointer.pointee.thread_count = 1
        // A second line of defence if the stream's real size disagrees with the header we checked:
        // the decoder may allocate no more than the header announced (plus alignment padding).
        context.pointer.pointee.max_pixels = Int64(header.storedWidth + 128) * Int64(header.storedHeight + 128)
        // Refuse PNGs whose chunk checksums do not match (the decoder ignores them otherwise).
        context.pointer.pointee.err_recognition = AV_EF_CRCCHECK
        context.pointer.pointee.lowres = min(scaleShift, Int32(codec.pointee.max_lowres))
        try avCheck(avcodec_open2(context.pointer, codec, nil), "opening the \(name) decoder")

        let packet = try AVPacketBox()
        try avCheck(av_new_packet(packet.pointer, Int32(data.count)), "allocating a packet")
        data.withUnsafeBytes { raw in
            if let base = raw.baseAddress, raw.count > 0 {
                packet.pointer.pointee.data.update(from: base.assumingMemoryBound(to: UInt8.self), count: raw.count)
            }
        }
        let frame = try AVFrameBox()
        var ret = avcodec_send_packet(context.pointer, packet.pointer)
        if ret >= 0 {
            _ = avcodec_send_packet(context.pointer, nil) // end of stream: the single frame must come out
            ret = avcodec_receive_frame(context.pointer, frame.pointer)
        }
        if ret < 0 {
            throw MediaError(code: .corruptImage, message: "the \(name) pixel data could not be decoded: \(avErrorString(ret))")
        }
        let f = frame.pointer.pointee
        if f.decode_error_flags != 0 || (f.flags & AV_FRAME_FLAG_CORRUPT) != 0 {
            throw MediaError(code: .corruptImage, message: "the \(name) pixel data is damaged (the decoder had to conceal errors)")
        }
        let shift = Int(context.pointer.pointee.lowres)
        let expectedWidth = (header.storedWidth + (1 << shift) - 1) >> shift
        let expectedHeight = (header.storedHeight + (1 << shift) - 1) >> shift
        guard Int(f.width) == expectedWidth, Int(f.height) == expectedHeight else {
            throw MediaError(
                code: .corruptImage,
                message: "the \(name) header says \(header.storedWidth)x\(header.storedHeight) but the data decodes to \(f.width)x\(f.height)"
            )
        }
        return frame
    }

    /// Converts any decoded still-image pixel format to packed RGBA (alpha 255 where the source has none).
    private static func convertToRGBA(_ frame: AVFrameBox) throws -> RGBAImage {
        let f = frame.pointer.pointee
        let width = Int(f.width), height = Int(f.height)
        var sourceFormat = AVPixelFormat(rawValue: f.format)
        // The JPEG "yuvj" formats are the plain ones at full range; naming the range explicitly keeps
        // swscale from warning about deprecated formats and guessing.
        var fullRange = f.color_range == AVCOL_RANGE_JPEG
        switch sourceFormat {
        case AV_PIX_FMT_YUVJ420P: sourceFormat = AV_PIX_FMT_YUV420P; fullRange = true
        case AV_PIX_FMT_YUVJ422P: sourceFormat = AV_PIX_FMT_YUV422P; fullRange = true
        case AV_PIX_FMT_YUVJ444P: sourceFormat = AV_PIX_FMT_YUV444P; fullRange = true
        case AV_PIX_FMT_YUVJ440P: sourceFormat = AV_PIX_FMT_YUV440P; fullRange = true
        case AV_PIX_FMT_YUVJ411P: sourceFormat = AV_PIX_FMT_YUV411P; fullRange = true
        default: break
        }
        // Plain flags on purpose: with SWS_ACCURATE_RND (and/or full chroma interpolation) FFmpeg 5.1
        // takes a generic path whose chroma upsampling lost ~10 dB on sharp colour edges of 4:2:0
        // JPEGs against the `ffmpeg` CLI's own decode (see PixelFormatCoverageTests).
        let sws = try SwsBox(
            srcWidth: f.width, srcHeight: f.height, srcFormat: sourceFormat,
            dstWidth: f.width, dstHeight: f.height, dstFormat: AV_PIX_FMT_RGBA,
            flags: Int32(SWS_BICUBIC)
        )
        // JPEG's YCbCr is BT.601 (JFIF); the source range follows the stream, RGBA is always full range.
        let coefficients = sws_getCoefficients(SWS_CS_ITU601)
        _ = sws_setColorspaceDetails(sws.pointer, coefficients, fullRange ? 1 : 0, coefficients, 1, 0, 1 << 16, 1 << 16)

        // swscale's SIMD converters may write past the end of a row, so convert into a padded
        // AVFrame and copy the rows out, rather than writing straight into the Swift array.
        let rgba = try AVFrameBox()
        rgba.pointer.pointee.format = AV_PIX_FMT_RGBA.rawValue
        rgba.pointer.pointee.width = f.width
        rgba.pointer.pointee.height = f.height
        try avCheck(av_frame_get_buffer(rgba.pointer, 0), "allocating the RGBA frame")
        var srcData: [UnsafePointer<UInt8>?] = (0..<4).map { UnsafePointer(frame.data(Int32($0))) }
        var srcStride: [Int32] = (0..<4).map { Int32(frame.linesize(Int32($0))) }
        var dstData: [UnsafeMutablePointer<UInt8>?] = [rgba.data(0), nil, nil, nil]
        var dstStride: [Int32] = [Int32(rgba.linesize(0)), 0, 0, 0]
        let rows = sws_scale(sws.pointer, &srcData, &srcStride, 0, f.height, &dstData, &dstStride)
        guard rows == f.height else {
            throw MediaError(code: .codec, message: "converting \(pixelFormatName(sourceFormat)) to RGBA produced \(rows) of \(height) rows")
        }
        let pixels = copyRows(of: rgba, plane: 0, rowBytes: width * 4, rows: height)
        return RGBAImage(width: width, height: height, pixels: pixels)
    }
}
