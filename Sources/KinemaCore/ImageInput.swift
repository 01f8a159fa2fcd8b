import Foundation

/// An image as given in a request: a URL still to be fetched, or bytes already decoded from base64.
public enum ImageInput: Sendable, Equatable {
    case url(String)
    case bytes(Data)

    /// Interprets the string form of `image` / `end_image`: an http(s) URL, a `data:image/…;base64,` URI or raw base64.
    public static func parse(_ text: String, field: String, limits: ValidationLimits) throws(ValidationError) -> ImageInput {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.isEmpty {
            throw ValidationError(.invalidRequestBody, field: field, "\(field) must not be empty: give an http(s) URL, raw base64 or a data:image/png;base64,… URI.")
        }
        let lower = trimmed.prefix(16).lowercased()
        if lower.hasPrefix("http://") || lower.hasPrefix("https://") {
            return .url(trimmed)
        }
        if lower.hasPrefix("data:") {
            guard let comma = trimmed.firstIndex(of: ",") else {
                throw ValidationError(.invalidImageFormat, field: field, "\(field) is a data URI without a ',' before its data.")
            }
            let header = trimmed[trimmed.index(trimmed.startIndex, offsetBy: 5)..<comma].lowercased()
            let allowed = ["image/png;base64", "image/jpeg;base64", "image/jpg;base64"]
            guard allowed.contains(header) else {
                throw ValidationError(.invalidImageFormat, field: field, "\(field) is a data URI of type '\(header)'; only data:image/png;base64 and data:image/jpeg;base64 are accepted.")
            }
            return .bytes(try decodeBase64(trimmed[trimmed.index(after: comma)...], field: field, limits: limits))
        }
        if let scheme = trimmed.range(of: "://"), trimmed[..<scheme.lowerBound].allSatisfy({ $0.isLetter || $0 == "+" || $0 == "-" || $0 == "." }) {
            throw ValidationError(.invalidImageFormat, field: field, "\(field) uses the URL scheme '\(trimmed[..<scheme.lowerBound])'; only http and https URLs are accepted.")
        }
        return .bytes(try decodeBase64(Substring(trimmed), field: field, limits: limits))
    }

    /// Strict base64 (standard alphabet, padding optional, whitespace ignored); refuses oversize data before decoding it.
    static func decodeBase64(_ text: Substring, field: String, limits: ValidationLimits) throws(ValidationError) -> Data {
        var compact = text.utf8.contains(where: { $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 })
            ? String(text.filter { !$0.isWhitespace }) : String(text)
        // Each 4 characters carry 3 bytes: anything clearly above the cap is refused without allocating it.
        let estimated = compact.utf8.count / 4 * 3
        if estimated > limits.maxImageBytes + 3 {
            throw ValidationError(.imageFileTooLarge, field: field, "\(field) is larger than \(limits.maxImageBytes) bytes (10 MB) after base64 decoding.")
        }
        let remainder = compact.utf8.count % 4
        if remainder == 1 {
            throw ValidationError(.invalidImageFormat, field: field, "\(field) is not valid base64 (its length is impossible).")
        }
        if remainder > 0 { compact += String(repeating: "=", count: 4 - remainder) }
        guard let data = Data(base64Encoded: compact) else {
            throw ValidationError(.invalidImageFormat, field: field, "\(field) is neither an http(s) URL nor valid base64 image data.")
        }
        if data.isEmpty {
            throw ValidationError(.invalidImageFormat, field: field, "\(field) decodes to no bytes; give PNG or JPEG image data.")
        }
        return data
    }
}
