import Foundation
import KinemaMedia
import KinemaTestSupport
import Testing

/// Files written by the `ffmpeg` CLI (an independent codec) in the pixel formats real uploads use.
/// Our decode must be as faithful to the original picture as the CLI's own decode of the same file,
/// and identical to it where the format is lossless.
@Test(arguments: [
    ("png", "rgb24"), ("png", "rgba"), ("png", "rgb48be"), ("png", "pal8"), ("png", "gray"), ("png", "ya8"),
    ("png", "gray16be"), ("png", "monob"), ("jpg", "yuvj420p"), ("jpg", "yuvj422p"), ("jpg", "yuvj444p"), ("jpg", "gray"),
])
func decodesTheCommonPixelFormatsAsWellAsFFmpeg(ext: String, pixelFormat: String) async throws {
    try await offPool {
        try withTemporaryDirectory { dir in
            // The ffmpeg CLI is the independent codec to compare against (installed by scripts/install-deps).
            func ffmpeg(_ input: [String], _ format: String, _ name: String, extra: [String] = []) throws -> URL {
                let url = dir.appendingPathComponent(name)
                let args = ["-v", "error"] + input + ["-frames:v", "1", "-pix_fmt", format] + extra + ["-y", url.path]
                _ = try runTool("ffmpeg", args)
                return url
            }
            let source = ["-f", "lavfi", "-i", "testsrc2=size=96x64:rate=1"]
            let original = try ffmpeg(source, "rgb24", "original.png")
            let file = try ffmpeg(source, pixelFormat, "image.\(ext)", extra: ext == "jpg" ? ["-q:v", "2"] : [])
            let theirs = try ffmpeg(["-i", file.path], "rgb24", "cli-decode.png")
            let truth = try ImageDecoder.decode(try Data(contentsOf: original))
            let cli = try ImageDecoder.decode(try Data(contentsOf: theirs))
            let image = try ImageDecoder.decode(try Data(contentsOf: file))
            #expect(image.width == 96 && image.height == 64)
            // What a submit runs: it must accept every file the full decode accepts.
            #expect(throws: Never.self) { try ImageDecoder.verify(try Data(contentsOf: file)) }
            let ours = psnrRGB(image, truth), reference = psnrRGB(cli, truth)
            #expect(ours >= reference - 0.5, "\(pixelFormat) \(ext): ours \(ours) dB, ffmpeg CLI \(reference) dB")
            if ["rgb24", "rgba", "pal8", "monob", "gray"].contains(pixelFormat) && ext == "png" {
                #expect(psnrRGB(image, cli) == .infinity, "lossless \(pixelFormat) must decode exactly")
            }
            if !["rgba", "ya8"].contains(pixelFormat) {
                #expect(stride(from: 3, to: image.pixels.count, by: 4).allSatisfy { image.pixels[$0] == 255 })
            }
        }
    }
}
