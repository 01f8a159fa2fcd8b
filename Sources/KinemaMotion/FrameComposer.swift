import Foundation
import KinemaMedia

/// Renders any frame of a plan, independently of every other frame (so frames can be rendered in parallel).
///
/// A frame is one or two warped layers (the first image; the end image during its dissolve; the previous shot
/// during a dissolve transition), then the ambient effects. Effects fade in over the first 0.6 s of the clip
/// (and out over the last 0.6 s when there is an end image) so the first frame is the fitted input and the last
/// frame the fitted end image.
struct FrameComposer: Sendable {
    let plan: ShotPlan
    let source: SourceImage
    let endSource: SourceImage?
    let width: Int
    let height: Int

    /// Dissolve weight of the end image at shot progress `t`: eased, starting 30 % into the shot, 1 at the end.
    static func endDissolve(_ t: Double) -> Double {
        let s = min(1, max(0, (t - 0.3) / 0.7))
        return s * s * (3 - 2 * s)
    }

    func effectEnvelope(frame: Int) -> Double {
        let fps = Double(FramePlanConstants.framesPerSecond)
        let fade = FramePlanConstants.effectFadeSeconds * fps
        var e = min(1, Double(frame) / fade)
        if plan.endFraming != nil { e = min(e, Double(plan.frameCount - 1 - frame) / fade) }
        e = max(0, e)
        return e * e * (3 - 2 * e)
    }

    /// The camera pose of frame `index` on the first image.
    func pose(frame index: Int) -> CameraPose {
        let shot = plan.shots[plan.shotIndex(containing: index)]
        return shot.path.pose(at: progress(of: index, in: shot))
    }

    func progress(of index: Int, in shot: PlannedShot) -> Double {
        shot.frameCount > 1 ? Double(index - shot.firstFrame) / Double(shot.frameCount - 1) : 0
    }

    /// Renders frame `index`.
    func render(frame index: Int) -> YUVFrame {
        let shotIndex = plan.shotIndex(containing: index)
        let shot = plan.shots[shotIndex]
        let t = progress(of: index, in: shot)
        let pose = shot.path.pose(at: t)
        let time = Double(index) / Double(FramePlanConstants.framesPerSecond)
        let envelope = effectEnvelope(frame: index)
        let shifts = AmbientRenderer.rowShifts(shot.effects, time: time, height: height, envelope: envelope, seed: plan.seed)
        let map = pose.viewMap(aspect: plan.aspect)

        var frame: YUVFrame
        if shot.travelsToEndImage, let target = plan.endFraming, let endSource {
            let w = Self.endDissolve(t)
            let mapB = map.followed(byInverseOf: target)
            let zoomB = pose.zoom / target.zoom
            if w >= 1 {
                frame = layer(endSource, zoom: zoomB, map: mapB, shifts: shifts)
            } else {
                frame = layer(source, zoom: pose.zoom, map: map, shifts: shifts)
                if w > 0 {
                    Self.blend(&frame, with: layer(endSource, zoom: zoomB, map: mapB, shifts: shifts), weight: w, coverage: mapB)
                }
            }
        } else {
            frame = layer(source, zoom: pose.zoom, map: map, shifts: shifts)
        }

        if case .dissolve(let frames) = shot.transition, shotIndex > 0, index - shot.firstFrame < frames {
            let previous = plan.shots[shotIndex - 1]
            let held = previous.path.pose(at: 1)
            let s = Double(index - shot.firstFrame + 1) / Double(frames + 1)
            var under = layer(source, zoom: held.zoom, map: held.viewMap(aspect: plan.aspect), shifts: nil)
            Self.blend(&under, with: frame, weight: s * s * (3 - 2 * s))
            frame = under
        }
        AmbientRenderer.apply(shot.effects, to: &frame, time: time, envelope: envelope, seed: plan.seed)
        return frame
    }

    /// One warped layer from the right level(s) of `source` for `zoom`.
    func layer(_ source: SourceImage, zoom: Double, map: ViewMap, shifts: [Double]?) -> YUVFrame {
        let (level, sharper) = source.levels(forZoom: zoom)
        var frame = layer(level, map: map, shifts: shifts)
        if let sharper { Self.blend(&frame, with: layer(sharper.level, map: map, shifts: shifts), weight: sharper.weight) }
        return frame
    }

    /// One warped layer: Y at full resolution, U and V at half, each from the same camera map.
    func layer(_ level: SourceLevel, map: ViewMap, shifts: [Double]?) -> YUVFrame {
        let cw = width / 2, ch = height / 2
        let lumaShift: ((Int) -> Double)? = shifts.map { s in { s[$0] } }
        let chromaShift: ((Int) -> Double)? = shifts.map { s in { s[min(s.count - 1, 2 * $0)] * 0.5 } }
        let axisAligned = map.uv == 0 && map.uuv == 0 && map.vu == 0 && map.vuv == 0
        func plane(_ source: SourcePlane, _ w: Int, _ h: Int, _ shift: ((Int) -> Double)?) -> [UInt8] {
            // The warp writes every pixel, so the plane skips zero-filling.
            [UInt8](unsafeUninitializedCapacity: w * h) { buffer, count in
                let out = buffer.baseAddress!
                if axisAligned {
                    let first = PlaneWarp.spans(map: map, plane: source, dstWidth: w, dstHeight: h, rows: 0..<1, rowShift: nil)[0]
                    let second = PlaneWarp.spans(map: map, plane: source, dstWidth: w, dstHeight: h, rows: 1..<2, rowShift: nil)[0]
                    PlaneWarp.warpSeparable(
                        source, into: out, dstWidth: w, dstHeight: h, x0: first.x, dx: first.dx, y0: first.y, dy: second.y - first.y)
                    if let shift { PlaneWarp.shiftRows(out, width: w, height: h, shift: shift) }
                } else {
                    let spans = PlaneWarp.spans(map: map, plane: source, dstWidth: w, dstHeight: h, rows: 0..<h, rowShift: shift)
                    PlaneWarp.warp(source, into: out, dstWidth: w, rows: 0..<h) { spans[$0] }
                }
                count = w * h
            }
        }
        return YUVFrame(
            width: width, height: height,
            y: plane(level.y, width, height, lumaShift), u: plane(level.u, cw, ch, chromaShift), v: plane(level.v, cw, ch, chromaShift))
    }

    /// Like `blend`, but `other` only counts where `coverage` (output → `other`'s image coordinates) lands inside its
    /// image, with a soft 1 % edge: the end image dissolves in where it has picture, and the first image stays
    /// where the end image has none (instead of showing the end image's mirrored extension).
    static func blend(_ frame: inout YUVFrame, with other: YUVFrame, weight: Double, coverage map: ViewMap) {
        let w = min(1, max(0, weight))
        let full = Int((w * 256).rounded())
        func mix(_ a: inout [UInt8], _ b: [UInt8], width: Int, height: Int) {
            a.withUnsafeMutableBufferPointer { ap in
                b.withUnsafeBufferPointer { bp in
                    for row in 0..<height {
                        let dv = (Double(row) + 0.5) / Double(height) - 0.5
                        // The map is linear along the row: step it, and settle whole rows from their ends when they
                        // lie entirely inside (uniform weight) or entirely past one edge (nothing to blend).
                        let first = map.apply(du: 0.5 / Double(width) - 0.5, dv: dv)
                        let last = map.apply(du: 0.5 - 0.5 / Double(width), dv: dv)
                        func inside(_ p: (u: Double, v: Double)) -> Double { min(p.u, 1 - p.u, p.v, 1 - p.v) / 0.01 }
                        let base = row * width
                        if (first.u < 0 && last.u < 0) || (first.u > 1 && last.u > 1) || (first.v < 0 && last.v < 0) || (first.v > 1 && last.v > 1) {
                            continue
                        }
                        if inside(first) >= 1 && inside(last) >= 1 {
                            for i in base..<(base + width) {
                                ap[i] = UInt8(truncatingIfNeeded: (Int(ap[i]) &* (256 &- full) &+ Int(bp[i]) &* full &+ 128) >> 8)
                            }
                            continue
                        }
                        var u = first.u, v = first.v
                        let su = width > 1 ? (last.u - first.u) / Double(width - 1) : 0
                        let sv = width > 1 ? (last.v - first.v) / Double(width - 1) : 0
                        for x in 0..<width {
                            let c = min(1, max(0, min(u, 1 - u, v, 1 - v) / 0.01))
                            let alpha = Int(w * c * 256 + 0.5)
                            let i = base + x
                            ap[i] = UInt8(truncatingIfNeeded: (Int(ap[i]) &* (256 &- alpha) &+ Int(bp[i]) &* alpha &+ 128) >> 8)
                            u += su
                            v += sv
                        }
                    }
                }
            }
        }
        mix(&frame.y, other.y, width: frame.width, height: frame.height)
        mix(&frame.u, other.u, width: frame.width / 2, height: frame.height / 2)
        mix(&frame.v, other.v, width: frame.width / 2, height: frame.height / 2)
    }

    /// `frame = frame·(1−w) + other·w` on every plane, 8-bit fixed-point weight.
    static func blend(_ frame: inout YUVFrame, with other: YUVFrame, weight: Double) {
        let w = Int((min(1, max(0, weight)) * 256).rounded())
        func mix(_ a: inout [UInt8], _ b: [UInt8]) {
            a.withUnsafeMutableBufferPointer { ap in
                b.withUnsafeBufferPointer { bp in
                    for i in 0..<ap.count {
                        ap[i] = UInt8(truncatingIfNeeded: (Int(ap[i]) &* (256 &- w) &+ Int(bp[i]) &* w &+ 128) >> 8)
                    }
                }
            }
        }
        mix(&frame.y, other.y)
        mix(&frame.u, other.u)
        mix(&frame.v, other.v)
    }
}
