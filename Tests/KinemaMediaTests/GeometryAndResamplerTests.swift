import KinemaMedia
import KinemaTestSupport
import Testing

@Test func outputSizeFollowsTheAspectRatioWithShortSide720() async throws {
    try await offPool {
        #expect(OutputGeometry.outputSize(forWidth: 1920, height: 1080) == (1280, 720))
        #expect(OutputGeometry.outputSize(forWidth: 1080, height: 1920) == (720, 1280))
        #expect(OutputGeometry.outputSize(forWidth: 500, height: 500) == (720, 720))
        #expect(OutputGeometry.outputSize(forWidth: 2500, height: 1000) == (1800, 720))
        #expect(OutputGeometry.outputSize(forWidth: 4000, height: 3000) == (960, 720))
        #expect(OutputGeometry.outputSize(forWidth: 3000, height: 4000) == (720, 960))
        // 720 × 1.5015 = 1081.08 → 1081 is odd → nearest even.
        let odd = OutputGeometry.outputSize(forWidth: 1502, height: 1000)
        #expect(odd.width % 2 == 0 && abs(odd.width - 1081) <= 1 && odd.height == 720)
        // Slightly wider than square never shrinks the long side under the short one.
        #expect(OutputGeometry.outputSize(forWidth: 1001, height: 1000) == (720, 720))
    }
}

@Test func coverRectKeepsTheCentreAndTheTargetAspect() async throws {
    try await offPool {
        // Wide source into a tall target: full height, centred slice of the width.
        let tall = ImageResampler.coverRect(sourceWidth: 1920, sourceHeight: 1080, targetWidth: 720, targetHeight: 1280)
        #expect(abs(tall.height - 1080) < 1e-9)
        #expect(abs(tall.width - 607.5) < 1e-9)
        #expect(abs(tall.x - (1920 - 607.5) / 2) < 1e-9 && tall.y == 0)
        // Tall source into a wide target: full width, centred band.
        let wide = ImageResampler.coverRect(sourceWidth: 1000, sourceHeight: 2000, targetWidth: 1280, targetHeight: 720)
        #expect(wide.x == 0 && abs(wide.width - 1000) < 1e-9)
        #expect(abs(wide.height - 562.5) < 1e-9 && abs(wide.y - 718.75) < 1e-9)
        // Same aspect: the whole image.
        #expect(
            ImageResampler.coverRect(sourceWidth: 640, sourceHeight: 360, targetWidth: 1280, targetHeight: 720)
                == PixelRect(x: 0, y: 0, width: 640, height: 360))
    }
}

@Test func coverFitCropsTheOverflowEquallyFromBothSides() async throws {
    try await offPool {
        // Three vertical bands (red | green | blue), 300x100, into a square: only green survives.
        var image = RGBAImage(width: 300, height: 100)
        for y in 0..<100 {
            for x in 0..<300 {
                let p = (y * 300 + x) * 4
                image.pixels[p + x / 100] = 255
            }
        }
        let fitted = ImageResampler.coverFit(image, width: 50, height: 50)
        #expect(fitted.width == 50 && fitted.height == 50)
        for y in [0, 25, 49] {
            for x in 2..<48 {
                let (r, g, b) = rgb(fitted, x, y)
                #expect(g == 255 && r == 0 && b == 0, "pixel \(x),\(y) is \(r),\(g),\(b)")
            }
            // The outermost columns sit on the crop line, where the kernel still sees a sliver of the neighbours.
            #expect(rgb(fitted, 0, y).1 >= 200 && rgb(fitted, 49, y).1 >= 200)
            #expect(rgb(fitted, 0, y).2 == 0 && rgb(fitted, 49, y).0 == 0)
        }
        // Into a wide target it keeps all three bands in order.
        let banner = ImageResampler.coverFit(image, width: 90, height: 10)
        #expect(rgb(banner, 5, 5).0 == 255 && rgb(banner, 45, 5).1 == 255 && rgb(banner, 85, 5).2 == 255)
    }
}

@Test func downscalingAFineCheckerboardGivesEvenGreyWithoutAliasing() async throws {
    try await offPool {
        // 1-pixel black/white checkerboard: point sampling would give pure black or white or moiré.
        var image = RGBAImage(width: 256, height: 192)
        for y in 0..<192 {
            for x in 0..<256 where (x + y) % 2 == 0 {
                let p = (y * 256 + x) * 4
                image.pixels[p] = 255; image.pixels[p + 1] = 255; image.pixels[p + 2] = 255
            }
        }
        for (w, h) in [(64, 48), (100, 75), (37, 29), (13, 7)] {
            let small = ImageResampler.resize(image, width: w, height: h)
            #expect(small.width == w && small.height == h)
            var lo = 255, hi = 0
            for y in 0..<h {
                for x in 0..<w {
                    let (r, _, _) = rgb(small, x, y)
                    lo = min(lo, r); hi = max(hi, r)
                }
            }
            #expect(lo >= 112 && hi <= 143, "\(w)x\(h): values span \(lo)...\(hi)")
        }
    }
}

@Test func resizeKeepsFlatColourAndSmoothGradients() async throws {
    try await offPool {
        let flat = RGBAImage(width: 97, height: 53, fill: (12, 200, 77, 255))
        for (w, h) in [(40, 20), (300, 170), (97, 53), (8, 8)] {
            #expect(ImageResampler.resize(flat, width: w, height: h) == RGBAImage(width: w, height: h, fill: (12, 200, 77, 255)))
        }
        let smooth = smoothImage(width: 320, height: 240)
        let down = ImageResampler.resize(smooth, width: 160, height: 120)
        let up = ImageResampler.resize(down, width: 320, height: 240)
        #expect(psnrRGB(up, smooth) > 30)
    }
}

@Test func hugeReductionsUseEverySourcePixel() async throws {
    try await offPool {
        // A single white column in 2000 black ones must still show up faintly after a 40x reduction
        // (the box prefilter averages blocks instead of skipping pixels).
        var image = RGBAImage(width: 2000, height: 400)
        for y in 0..<400 {
            let p = (y * 2000 + 1003) * 4
            image.pixels[p] = 255; image.pixels[p + 1] = 255; image.pixels[p + 2] = 255
        }
        let small = ImageResampler.resize(image, width: 50, height: 10)
        let total = (0..<50).reduce(0) { $0 + rgb(small, $1, 5).0 }
        // 255 spread over 40 source columns ≈ 6.4 per output row in total.
        #expect(total >= 4 && total <= 9)
    }
}

@Test func transparentPixelsDoNotBleedColour() async throws {
    try await offPool {
        // Left half transparent red, right half opaque blue: the blend at the edge must stay blue.
        var image = RGBAImage(width: 64, height: 8, fill: (255, 0, 0, 0))
        for y in 0..<8 {
            for x in 32..<64 {
                let p = (y * 64 + x) * 4
                image.pixels[p] = 0; image.pixels[p + 2] = 255; image.pixels[p + 3] = 255
            }
        }
        let small = ImageResampler.resize(image, width: 16, height: 2)
        for x in 0..<16 {
            let p = x * 4
            if small.pixels[p + 3] > 0 {
                #expect(small.pixels[p] < 10, "red leaked into pixel \(x)")
            }
        }
    }
}

@Test func resampleCanCropAnyRectangle() async throws {
    try await offPool {
        let image = quadrantImage(width: 200, height: 100)
        // The bottom-right quarter only.
        let corner = ImageResampler.resample(image, from: PixelRect(x: 100, y: 50, width: 100, height: 50), width: 20, height: 10)
        #expect(corner == RGBAImage(width: 20, height: 10, fill: (255, 255, 255, 255)))
        // A rect hanging off the edge is clamped to edge pixels, never out of bounds.
        let off = ImageResampler.resample(image, from: PixelRect(x: -50, y: -50, width: 60, height: 40), width: 6, height: 4)
        #expect(rgb(off, 0, 0) == (255, 0, 0))
    }
}

@Test func largeResizesAreDeterministicAcrossThreads() async throws {
    try await offPool {
        // Big enough to be split into bands on several cores; every run must give the same bytes.
        let image = smoothImage(width: 1200, height: 800)
        let first = ImageResampler.resize(image, width: 480, height: 320)
        for _ in 0..<3 { #expect(ImageResampler.resize(image, width: 480, height: 320) == first) }
        let reference = ImageResampler.resize(smoothImage(width: 480, height: 320), width: 480, height: 320)
        #expect(psnrRGB(first, reference) > 30)
    }
}
