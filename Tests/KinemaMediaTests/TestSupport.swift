import Foundation
import KinemaCore
import KinemaMedia
import KinemaTestSupport
import Testing

/// A smooth, colourful test picture (gradients plus a soft disc): compresses well and shows colour shifts.
func smoothImage(width: Int, height: Int, alpha: UInt8 = 255) -> RGBAImage {
    var px = [UInt8](repeating: 0, count: width * height * 4)
    for y in 0..<height {
        for x in 0..<width {
            let fx = Double(x) / Double(width), fy = Double(y) / Double(height)
            let d = ((fx - 0.5) * (fx - 0.5) + (fy - 0.5) * (fy - 0.5)).squareRoot()
            let p = (y * width + x) * 4
            px[p] = UInt8(40 + 180 * fx)
            px[p + 1] = UInt8(30 + 200 * fy)
            px[p + 2] = UInt8(d < 0.25 ? 220 : 60)
            px[p + 3] = alpha
        }
    }
    return RGBAImage(width: width, height: height, pixels: px)
}

/// Four solid quadrants: top-left red, top-right green, bottom-left blue, bottom-right white.
func quadrantImage(width: Int, height: Int) -> RGBAImage {
    var image = RGBAImage(width: width, height: height)
    for y in 0..<height {
        for x in 0..<width {
            let colour: [UInt8]
            switch (x < width / 2, y < height / 2) {
            case (true, true): colour = [255, 0, 0, 255]
            case (false, true): colour = [0, 255, 0, 255]
            case (true, false): colour = [0, 0, 255, 255]
            case (false, false): colour = [255, 255, 255, 255]
            }
            image.pixels.replaceSubrange((y * width + x) * 4..<(y * width + x) * 4 + 4, with: colour)
        }
    }
    return image
}

/// RGB of one pixel.
func rgb(_ image: RGBAImage, _ x: Int, _ y: Int) -> (Int, Int, Int) {
    let p = (y * image.width + x) * 4
    return (Int(image.pixels[p]), Int(image.pixels[p + 1]), Int(image.pixels[p + 2]))
}

/// Peak signal-to-noise ratio over equally sized byte arrays (∞ when identical).
func psnr(_ a: [UInt8], _ b: [UInt8], stride: Int = 1, channels: Int = 1) -> Double {
    precondition(a.count == b.count)
    var sum = 0.0, n = 0
    var i = 0
    while i < a.count {
        for c in 0..<channels {
            let d = Double(a[i + c]) - Double(b[i + c])
            sum += d * d
            n += 1
        }
        i += stride
    }
    if sum == 0 { return .infinity }
    return 10 * log10(255 * 255 / (sum / Double(n)))
}

/// PSNR over RGB (alpha ignored).
func psnrRGB(_ a: RGBAImage, _ b: RGBAImage) -> Double { psnr(a.pixels, b.pixels, stride: 4, channels: 3) }

/// PSNR over all three planes of two frames.
func psnrYUV(_ a: YUVFrame, _ b: YUVFrame) -> Double { psnr(a.y + a.u + a.v, b.y + b.u + b.v) }

/// A fresh temporary directory, removed by `body`'s caller through `defer`.
func withTemporaryDirectory<T>(_ body: (URL) throws -> T) throws -> T {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kinema-media-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    return try body(dir)
}

/// Runs a command-line tool (ffmpeg/ffprobe, installed by scripts/install-deps) and returns its standard output;
/// throws when the tool is missing or fails, so a test that needs an independent check never silently skips it.
func runTool(_ tool: String, _ arguments: [String]) throws -> String {
    let candidates = ["/usr/bin/\(tool)", "/usr/local/bin/\(tool)"]
    guard let path = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
        throw ToolFailure(message: "\(tool) is not installed (scripts/install-deps installs it)")
    }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    let out = Pipe()
    process.standardOutput = out
    process.standardError = FileHandle.nullDevice
    try process.run()
    // A time limit: a hung tool is killed (its pipe then closes and the read below ends) instead of hanging the run.
    let watchdog = DispatchWorkItem { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
    DispatchQueue.global().asyncAfter(deadline: .now() + 120, execute: watchdog)
    let data = readToEnd(out.fileHandleForReading)
    process.waitUntilExit()
    watchdog.cancel()
    guard process.terminationStatus == 0 else {
        throw ToolFailure(message: "\(tool) \(arguments.joined(separator: " ")) exited with \(process.terminationStatus) (killed after 120 s if 9)")
    }
    return String(decoding: data, as: UTF8.self)
}

struct ToolFailure: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// `jpeg` with an APP1 EXIF segment carrying `orientation` right after its SOI marker.
func jpegWithOrientation(_ jpeg: Data, _ orientation: Int, littleEndian: Bool = false) -> Data {
    Data(EXIF.jpeg([UInt8](jpeg), orientation: orientation, littleEndian: littleEndian))
}

/// Reads `handle` to its end (EINTR-safe; see `PipeReader`). Blocks: call it off Swift's cooperative pool.
func readToEnd(_ handle: FileHandle) -> Data {
    PipeReader.readToEnd(handle.fileDescriptor)
}

/// The `MediaError` that `body` throws, or nil when it succeeds (any other error is recorded as an issue).
func mediaError(_ body: () throws -> Void) -> MediaError? {
    do {
        try body()
        return nil
    } catch let error as MediaError {
        return error
    } catch {
        Issue.record("unexpected error type \(error)")
        return nil
    }
}
