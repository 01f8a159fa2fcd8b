import Foundation
import KinemaAPI
import KinemaCore
import KinemaMedia

/// The API's submit-time image check, done by the media library's decoder (every check of a full decode).
struct MediaImageVerifier: ImageVerifier {
    func problem(with data: Data, format: ImageFormat, limits: ValidationLimits) -> String? {
        do {
            try ImageDecoder.verify(data, limits: ImageLimits(maxSide: limits.maxImageSide, maxPixels: limits.maxImagePixels))
            return nil
        } catch let error as MediaError {
            return error.message
        } catch {
            return "\(error)"
        }
    }
}
