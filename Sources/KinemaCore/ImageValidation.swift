import Foundation

/// Checks image bytes against the contract from the header alone (no pixel decode).
public enum ImageValidation {
    /// Validates size, format (by magic bytes), decode limits, minimum side and aspect ratio.
    ///
    /// Order matters for hostile input: byte size first, then the header, then the pixel limit, so a
    /// huge declared size is refused before anything allocates pixels.
    public static func validate(_ data: Data, field: String, limits: ValidationLimits) throws(ValidationError) -> ImageHeader {
        if data.count > limits.maxImageBytes {
            throw ValidationError(
                .imageFileTooLarge, field: field, "\(field) is \(data.count) bytes; the limit is \(limits.maxImageBytes) bytes (10 MB).")
        }
        guard ImageHeader.sniff(data) != nil else {
            throw ValidationError(.invalidImageFormat, field: field, "\(field) is not a PNG or JPEG image (checked by its first bytes).")
        }
        let header: ImageHeader
        do {
            header = try ImageHeader.parse(data)
        } catch {
            throw ValidationError(.invalidImageFormat, field: field, "\(field) could not be read: \(error.message).")
        }
        let (w, h) = (header.width, header.height)
        if w > limits.maxImageSide || h > limits.maxImageSide || w * h > limits.maxImagePixels {
            throw ValidationError(
                .imageExceedsMaxResolution, field: field,
                "\(field) is \(w)x\(h) pixels; the limit is \(limits.maxImageSide) pixels per side and \(limits.maxImagePixels) pixels in all.")
        }
        if w < limits.minImageSide || h < limits.minImageSide {
            throw ValidationError(
                .invalidImageSize, field: field, "\(field) is \(w)x\(h) pixels; width and height must each be at least \(limits.minImageSide) pixels."
            )
        }
        let (num, den) = (limits.maxAspectNumerator, limits.maxAspectDenominator)
        if w * den > h * num || h * den > w * num {
            throw ValidationError(
                .invalidImageSize, field: field, "\(field) is \(w)x\(h) pixels; its aspect ratio (width/height) must be between 1:2.5 and 2.5:1.")
        }
        return header
    }
}
