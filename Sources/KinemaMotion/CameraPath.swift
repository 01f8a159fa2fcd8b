import Foundation

/// A smooth camera move over one shot: eased interpolation between two poses, kept inside the allowed area.
///
/// The centre is interpolated as a *fraction of the room the view has* at the current zoom and rotation
/// (0 = against the left/top limit, 1 = against the right/bottom one), so the view can never leave the image
/// (grown by `margin`) while zoom, roll and keystone change, and starting from the identity pose needs no
/// special case. Hand-held wobble, when asked, is seeded smooth noise that fades in from the first frame.
public struct CameraPath: Sendable {
    /// Fraction of the shot a fast move takes; it holds its end pose afterwards.
    public static let fastWindow = 0.55

    /// How progress through the shot becomes progress along the move.
    public enum Easing: Sendable, Equatable {
        /// Sine ease-in-out over the whole shot: zero speed at both ends.
        case inOut
        /// Sine ease-in-out over the first `fastWindow` of the shot, then holding.
        case fast
        /// Cubic ease that starts at rest and arrives fast (a push that keeps going).
        case easeIn
    }

    struct Key: Sendable, Equatable {
        var logZoom: Double
        var roll: Double
        var yaw: Double
        var pitch: Double
        var fx: Double
        var fy: Double
    }

    /// Output aspect ratio (width / height).
    public let aspect: Double
    /// How far outside the image the view may go, in image units on each side (0: never leaves it).
    public let margin: Double
    /// The easing of the move.
    public let easing: Easing
    /// Hand-held wobble amplitude (0: none, 1: full).
    public let handheld: Double
    /// Shot length in seconds (hand-held noise runs in real time).
    public let duration: Double
    /// Seed of the hand-held noise.
    public let seed: UInt32
    let start: Key
    let end: Key

    /// A path from `from` to `to`; both are first brought inside the allowed area.
    public init(
        from: CameraPose, to: CameraPose, aspect: Double, margin: Double = 0, easing: Easing = .inOut,
        handheld: Double = 0, duration: Double, seed: UInt32 = 0
    ) {
        self.aspect = aspect
        self.margin = max(0, margin)
        self.easing = easing
        self.handheld = max(0, handheld)
        self.duration = max(duration, 1e-6)
        self.seed = seed
        start = Self.key(for: from, aspect: aspect, margin: self.margin)
        end = Self.key(for: to, aspect: aspect, margin: self.margin)
    }

    /// A path that holds one pose.
    public static func hold(_ pose: CameraPose, aspect: Double, margin: Double = 0, duration: Double) -> CameraPath {
        CameraPath(from: pose, to: pose, aspect: aspect, margin: margin, duration: duration)
    }

    /// Eased progress along the move for shot progress `t` (0…1).
    public func progress(at t: Double) -> Double {
        let t = min(1, max(0, t))
        switch easing {
        case .inOut: return 0.5 - 0.5 * cos(Double.pi * t)
        case .fast:
            let s = min(1, t / Self.fastWindow)
            return 0.5 - 0.5 * cos(Double.pi * s)
        case .easeIn: return t * t * (3 - 2 * t) * 0.5 + t * t * 0.5
        }
    }

    /// The pose at shot progress `t` (0 = first frame, 1 = last frame).
    public func pose(at t: Double) -> CameraPose {
        let e = progress(at: t)
        func lerp(_ a: Double, _ b: Double) -> Double { a + (b - a) * e }
        var key = Key(
            logZoom: lerp(start.logZoom, end.logZoom), roll: lerp(start.roll, end.roll), yaw: lerp(start.yaw, end.yaw),
            pitch: lerp(start.pitch, end.pitch), fx: lerp(start.fx, end.fx), fy: lerp(start.fy, end.fy)
        )
        var offset = (0.0, 0.0)
        if handheld > 0 {
            let time = min(1, max(0, t)) * duration
            let fade = min(1, time / 0.5)
            let envelope = fade * fade * (3 - 2 * fade) * handheld
            let noise = SeededNoise(seed: seed)
            // The zoom margin opens room for the wobble and for the small roll it carries.
            key.logZoom += envelope * 0.05
            key.roll += envelope * 0.006 * noise.fractal(11, time: time, rate: 1.3)
            offset = (
                envelope * 0.010 * noise.fractal(12, time: time, rate: 1.1),
                envelope * 0.008 * noise.fractal(13, time: time, rate: 0.9)
            )
        }
        return Self.realize(key, aspect: aspect, margin: margin, offset: offset)
    }

    /// Smallest zoom at which a view with this rotation and keystone fits in the allowed area.
    static func minimumZoom(roll: Double, yaw: Double, pitch: Double, aspect: Double, margin: Double) -> Double {
        let unit = CameraPose(zoom: 1, roll: roll, yaw: yaw, pitch: pitch).cornerOffsets(aspect: aspect)
        let spanU = (unit.map(\.0).max() ?? 0) - (unit.map(\.0).min() ?? 0)
        let spanV = (unit.map(\.1).max() ?? 0) - (unit.map(\.1).min() ?? 0)
        return max(spanU, spanV) / (1 + 2 * margin)
    }

    /// Limits of the centre for a pose shape: (loX, hiX, loY, hiY).
    static func centerLimits(of pose: CameraPose, aspect: Double, margin: Double) -> (Double, Double, Double, Double) {
        let off = pose.cornerOffsets(aspect: aspect)
        let loX = -margin - (off.map(\.0).min() ?? 0), hiX = 1 + margin - (off.map(\.0).max() ?? 0)
        let loY = -margin - (off.map(\.1).min() ?? 0), hiY = 1 + margin - (off.map(\.1).max() ?? 0)
        return (loX, max(loX, hiX), loY, max(loY, hiY))
    }

    static func key(for pose: CameraPose, aspect: Double, margin: Double) -> Key {
        var shaped = pose
        shaped.zoom = max(pose.zoom, minimumZoom(roll: pose.roll, yaw: pose.yaw, pitch: pose.pitch, aspect: aspect, margin: margin))
        let (loX, hiX, loY, hiY) = centerLimits(of: shaped, aspect: aspect, margin: margin)
        func fraction(_ c: Double, _ lo: Double, _ hi: Double) -> Double {
            hi - lo < 1e-12 ? 0.5 : min(1, max(0, (c - lo) / (hi - lo)))
        }
        return Key(
            logZoom: log(shaped.zoom), roll: pose.roll, yaw: pose.yaw, pitch: pose.pitch,
            fx: fraction(pose.centerX, loX, hiX), fy: fraction(pose.centerY, loY, hiY)
        )
    }

    static func realize(_ key: Key, aspect: Double, margin: Double, offset: (Double, Double)) -> CameraPose {
        var pose = CameraPose(zoom: exp(key.logZoom), roll: key.roll, yaw: key.yaw, pitch: key.pitch)
        pose.zoom = max(pose.zoom, minimumZoom(roll: key.roll, yaw: key.yaw, pitch: key.pitch, aspect: aspect, margin: margin))
        let (loX, hiX, loY, hiY) = centerLimits(of: pose, aspect: aspect, margin: margin)
        pose.centerX = min(hiX, max(loX, loX + key.fx * (hiX - loX) + offset.0))
        pose.centerY = min(hiY, max(loY, loY + key.fy * (hiY - loY) + offset.1))
        return pose
    }
}
