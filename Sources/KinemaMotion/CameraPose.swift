import Foundation

/// Where the virtual camera looks on the fitted image, in image-normalised units (0…1 on both axes).
///
/// `zoom` 1 with centre (0.5, 0.5) and no rotation is the identity pose: the output is exactly the input fitted
/// to the output size. `yaw` and `pitch` are small keystone terms (perspective drift): the vertical (yaw) or
/// horizontal (pitch) magnification changes linearly across the frame, which stays a bilinear mapping per pixel.
public struct CameraPose: Sendable, Equatable {
    /// Horizontal centre of the view on the image, 0 (left edge) … 1 (right edge).
    public var centerX: Double
    /// Vertical centre of the view on the image, 0 (top) … 1 (bottom).
    public var centerY: Double
    /// Magnification relative to the fitted image (>1 shows less of it, <1 shows more than the image).
    public var zoom: Double
    /// Rotation of the camera about the lens axis, in radians (positive: clockwise camera, scene turns the other way).
    public var roll: Double
    /// Keystone across the width (vertical magnification grows toward the right edge when positive).
    public var yaw: Double
    /// Keystone across the height (horizontal magnification grows toward the bottom edge when positive).
    public var pitch: Double

    /// Creates a pose.
    public init(centerX: Double = 0.5, centerY: Double = 0.5, zoom: Double = 1, roll: Double = 0, yaw: Double = 0, pitch: Double = 0) {
        self.centerX = centerX
        self.centerY = centerY
        self.zoom = zoom
        self.roll = roll
        self.yaw = yaw
        self.pitch = pitch
    }

    /// The fitted image, unmoved.
    public static let identity = CameraPose()

    /// The mapping from output coordinates to image coordinates for an output of this aspect (width / height).
    public func viewMap(aspect: Double) -> ViewMap {
        let c = cos(roll), s = sin(roll), z = zoom
        // Offsets in height units: x1 = a/z (du + 2 pitch du dv), y1 = 1/z (dv + 2 yaw du dv), then rotated.
        return ViewMap(
            u0: centerX, uu: c / z, uv: -s / (aspect * z), uuv: 2 / z * (c * pitch - s * yaw / aspect),
            v0: centerY, vu: s * aspect / z, vv: c / z, vuv: 2 / z * (s * aspect * pitch + c * yaw)
        )
    }

    /// Image-space offsets of the view's four corners from its centre.
    func cornerOffsets(aspect: Double) -> [(Double, Double)] {
        let m = viewMap(aspect: aspect)
        return [(-0.5, -0.5), (0.5, -0.5), (-0.5, 0.5), (0.5, 0.5)].map { du, dv in
            let p = m.apply(du: du, dv: dv)
            return (p.u - centerX, p.v - centerY)
        }
    }

    /// Whether every corner of the view lies inside the image grown by `margin` on each side (0: the image itself).
    ///
    /// The mapping is bilinear, so each frame edge maps to a straight segment and the corners bound the whole view.
    public func isInside(aspect: Double, margin: Double = 0, tolerance: Double = 1e-9) -> Bool {
        for (du, dv) in [(-0.5, -0.5), (0.5, -0.5), (-0.5, 0.5), (0.5, 0.5)] {
            let p = viewMap(aspect: aspect).apply(du: du, dv: dv)
            if p.u < -margin - tolerance || p.u > 1 + margin + tolerance || p.v < -margin - tolerance || p.v > 1 + margin + tolerance {
                return false
            }
        }
        return true
    }
}

/// A bilinear map from output coordinates to image coordinates.
///
/// `du`, `dv` are output positions relative to the frame centre, in frame units (−0.5…0.5); the result is in
/// image-normalised units. For a fixed row it is linear in `du`, which lets the renderer step it in fixed point.
public struct ViewMap: Sendable, Equatable {
    /// Constant term of u.
    public var u0: Double
    /// du coefficient of u.
    public var uu: Double
    /// dv coefficient of u.
    public var uv: Double
    /// du·dv coefficient of u.
    public var uuv: Double
    /// Constant term of v.
    public var v0: Double
    /// du coefficient of v.
    public var vu: Double
    /// dv coefficient of v.
    public var vv: Double
    /// du·dv coefficient of v.
    public var vuv: Double

    /// Creates a map from its coefficients.
    public init(u0: Double, uu: Double, uv: Double, uuv: Double, v0: Double, vu: Double, vv: Double, vuv: Double) {
        self.u0 = u0; self.uu = uu; self.uv = uv; self.uuv = uuv
        self.v0 = v0; self.vu = vu; self.vv = vv; self.vuv = vuv
    }

    /// Image coordinates of the output point (du, dv).
    @inline(__always)
    public func apply(du: Double, dv: Double) -> (u: Double, v: Double) {
        (u0 + uu * du + uv * dv + uuv * du * dv, v0 + vu * du + vv * dv + vuv * du * dv)
    }

    /// This map followed by the similarity `(u, v) → ((u − cx)·z + 0.5, (v − cy)·z + 0.5)`: image A's coordinates
    /// re-expressed in image B's, when B shows the region of A framed by a pose with that centre and zoom.
    public func followed(byInverseOf pose: CameraPose) -> ViewMap {
        let z = pose.zoom
        return ViewMap(
            u0: (u0 - pose.centerX) * z + 0.5, uu: uu * z, uv: uv * z, uuv: uuv * z,
            v0: (v0 - pose.centerY) * z + 0.5, vu: vu * z, vv: vv * z, vuv: vuv * z
        )
    }
}
