import KinemaMedia
import Testing

@Test func referenceColoursMatchBT709LimitedRange() {
    func yuv(_ r: UInt8, _ g: UInt8, _ b: UInt8, _ a: UInt8 = 255) -> (Int, Int, Int) {
        let f = ColorConversion.yuv420(from: RGBAImage(width: 2, height: 2, fill: (r, g, b, a)))
        return (Int(f.y[0]), Int(f.u[0]), Int(f.v[0]))
    }
    #expect(yuv(255, 255, 255) == (235, 128, 128))
    #expect(yuv(0, 0, 0) == (16, 128, 128))
    #expect(yuv(128, 128, 128) == (126, 128, 128))
    // BT.709 red: Y = 16 + 219 × 0.2126 = 62.6, Cb = 128 − 112 × 0.2126/0.9278 = 102.3, Cr = 240.
    #expect(yuv(255, 0, 0) == (63, 102, 240))
    #expect(yuv(0, 255, 0) == (173, 42, 26))
    #expect(yuv(0, 0, 255) == (32, 240, 118))
    // Alpha is composited over black.
    #expect(yuv(255, 255, 255, 0) == (16, 128, 128))
    #expect(yuv(255, 255, 255, 128) == yuv(128, 128, 128))
}

@Test func chromaIsTheAverageOfEach2x2Block() {
    var image = RGBAImage(width: 2, height: 2, fill: (255, 0, 0, 255))
    image.pixels.replaceSubrange(4..<16, with: [0, 0, 255, 255, 0, 0, 255, 255, 0, 0, 255, 255])
    let frame = ColorConversion.yuv420(from: image)
    let mixed = ColorConversion.yuv420(from: RGBAImage(width: 2, height: 2, fill: (64, 0, 191, 255)))
    #expect(abs(Int(frame.u[0]) - Int(mixed.u[0])) <= 1 && abs(Int(frame.v[0]) - Int(mixed.v[0])) <= 1)
    #expect(frame.y[0] == 63 && frame.y[1] == 32)
}

@Test func colourRoundTripHasHighPSNR() {
    // Gradients only: what survives 4:2:0 without loss of detail.
    var gradient = RGBAImage(width: 320, height: 240)
    for y in 0..<240 {
        for x in 0..<320 {
            let p = (y * 320 + x) * 4
            gradient.pixels[p] = UInt8(x * 255 / 319); gradient.pixels[p + 1] = UInt8(y * 255 / 239)
            gradient.pixels[p + 2] = UInt8((x + y) * 255 / 558); gradient.pixels[p + 3] = 255
        }
    }
    let back = ColorConversion.rgba(from: ColorConversion.yuv420(from: gradient))
    #expect(back.width == 320 && back.height == 240)
    #expect(psnrRGB(back, gradient) >= 42)
    #expect(back.pixels[3] == 255)
    // With a hard-edged disc, chroma subsampling costs a little at the edge.
    let disc = smoothImage(width: 320, height: 240)
    #expect(psnrRGB(ColorConversion.rgba(from: ColorConversion.yuv420(from: disc)), disc) >= 35)
    // Grey levels survive almost exactly (no chroma involved).
    for level: UInt8 in [0, 1, 50, 128, 200, 254, 255] {
        let grey = RGBAImage(width: 4, height: 4, fill: (level, level, level, 255))
        let r = ColorConversion.rgba(from: ColorConversion.yuv420(from: grey)).pixels[0]
        #expect(abs(Int(r) - Int(level)) <= 1, "grey \(level) came back as \(r)")
    }
}
