import Foundation

/// An image as given in a request: a URL still to be fetched, or bytes already decoded from base64.
public enum ImageInput: Sendable, Equatable {
    case url(String)
    case bytes(Data)

    /// Interprets the string form of `image` / `end_image`: an http(s) URL, a `data:image/…;base64,` URI or raw base64.
    ///
    /// Works on UTF-8 bytes, never on Foundation string searches: images arrive as megabytes of base64, and
    /// bridging such a string through NSString costs about a second.
    public static func parse(_ text: String, field: String, limits: ValidationLimits) throws(ValidationError) -> ImageInput {
        var bytes = Array(text.utf8)
        func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D }
        let first = bytes.firstIndex(where: { !isSpace($0) }) ?? bytes.endIndex
        let last = bytes.lastIndex(where: { !isSpace($0) }).map { $0 + 1 } ?? first
        if first > 0 || last < bytes.count { bytes = Array(bytes[first..<last]) }
        if bytes.isEmpty {
            throw ValidationError(.invalidRequestBody, field: field, "\(field) must not be empty: give an http(s) URL, raw base64 or a data:image/png;base64,… URI.")
        }
        // Short, lowercased head: schemes and data-URI headers are always near the start.
        let head = String(decoding: bytes.prefix(64), as: UTF8.self).lowercased()
        if head.hasPrefix("http://") || head.hasPrefix("https://") {
            return .url(String(decoding: bytes, as: UTF8.self))
        }
        if head.hasPrefix("data:") {
            guard let comma = bytes.prefix(128).firstIndex(of: UInt8(ascii: ",")) else {
                throw ValidationError(.invalidImageFormat, field: field, "\(field) is a data URI without a ',' before its data, or with an overlong header.")
            }
            let header = String(decoding: bytes[5..<comma], as: UTF8.self).lowercased()
            let allowed = ["image/png;base64", "image/jpeg;base64", "image/jpg;base64"]
            guard allowed.contains(header) else {
                throw ValidationError(.invalidImageFormat, field: field, "\(field) is a data URI of type '\(header)'; only data:image/png;base64 and data:image/jpeg;base64 are accepted.")
            }
            return .bytes(try decodeBase64(bytes[(comma + 1)...], field: field, limits: limits))
        }
        if let range = head.range(of: "://") {
            let scheme = head[..<range.lowerBound]
            if !scheme.isEmpty, scheme.allSatisfy({ $0.isLetter || $0 == "+" || $0 == "-" || $0 == "." }) {
                throw ValidationError(.invalidImageFormat, field: field, "\(field) uses the URL scheme '\(scheme)'; only http and https URLs are accepted.")
            }
        }
        return .bytes(try decodeBase64(bytes[...], field: field, limits: limits))
    }

    /// Strict base64 (standard alphabet, padding optional, whitespace ignored); refuses oversize data before decoding it.
    static func decodeBase64(_ text: ArraySlice<UInt8>, field: String, limits: ValidationLimits) throws(ValidationError) -> Data {
        var compact = text.contains(where: { $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 })
            ? text.filter { !($0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09) } : Array(text)
        // Each 4 characters carry 3 bytes: anything clearly above the cap is refused without allocating it.
        let estimated = compact.count / 4 * 3
        if estimated > limits.maxImageBytes + 3 {
            throw ValidationError(.imageFileTooLarge, field: field, "\(field) is larger than \(limits.maxImageBytes) bytes (10 MB) after base64 decoding.")
        }
        let remainder = compact.count % 4
        if remainder == 1 {
            throw ValidationError(.invalidImageFormat, field: field, "\(field) is not valid base64 (its length is impossible).")
        }
        if remainder > 0 { compact += [UInt8](repeating: UInt8(ascii: "="), count: 4 - remainder) }
        guard let data = Data(base64Encoded: Data(compact)) else {
            throw ValidationError(.invalidImageFormat, field: field, "\(field) is neither an http(s) URL nor valid base64 image data.")
        }
        if data.isEmpty {
            throw ValidationError(.invalidImageFormat, field: field, "\(field) decodes to no bytes; give PNG or JPEG image data.")
        }
        return data
    }
}
