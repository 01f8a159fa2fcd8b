import Foundation
import KinemaCore

/// Proves at submit time that an uploaded image really decodes (every check of a full decode), so a bad image is
/// refused at once instead of failing its task later. The API owns this seam; the composition root gives it the
/// media library's decoder (`kinema serve`), tests may give it another.
public protocol ImageVerifier: Sendable {
    /// `nil` when `data` decodes within `limits` (`maxImageSide`, `maxImagePixels`); otherwise what is wrong with it,
    /// in words for the caller. Blocking: called on a thread pool, never on an event loop.
    func problem(with data: Data, format: ImageFormat, limits: ValidationLimits) -> String?
}
