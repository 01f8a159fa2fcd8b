/// The output frame size rule of Kinema's engines.
public enum OutputGeometry {
    /// 720p class following the aspect ratio: short side 720, long side round(720 × ratio) made even.
    ///
    /// The long side is rounded to the nearest even number because yuv420p needs even dimensions.
    /// 16:9 → 1280×720, 9:16 → 720×1280, 1:1 → 720×720, 2.5:1 → 1800×720.
    public static func outputSize(forWidth w: Int, height h: Int) -> (width: Int, height: Int) {
        precondition(w > 0 && h > 0, "outputSize needs a positive width and height")
        let shortSide = 720
        let ratio = Double(max(w, h)) / Double(min(w, h))
        let long = max(shortSide, Int((Double(shortSide) * ratio / 2).rounded()) * 2)
        return w >= h ? (long, shortSide) : (shortSide, long)
    }
}
