import Foundation

/// An image as given in a request: a URL still to be fetched, or bytes already decoded from base64.
public enum ImageInput: Sendable, Equatable {
    case url(String)
    case bytes(Data)

    /// Interprets the string form of `image` / `end_image`: an http(s) URL, a `data:image/…;base64,` URI or raw base64.
    ///
    /// Works on the string's UTF-8 bytes in place, never on Foundation string searches or copies: images arrive
    /// as megabytes of base64, and bridging such a string through NSString costs about a second.
    public static func parse(_ text: String, field: String, limits: ValidationLimits) throws(ValidationError) -> ImageInput {
        var text = text
        let result: Result<ImageInput, ValidationError> = text.withUTF8 { utf8 in
            do throws(ValidationError) {
                return .success(try parse(utf8[...], field: field, limits: limits))
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    private static func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D }

    private static func parse(_ all: Slice<UnsafeBufferPointer<UInt8>>, field: String, limits: ValidationLimits) throws(ValidationError) -> ImageInput
    {
        let first = all.firstIndex(where: { !isSpace($0) }) ?? all.endIndex
        let last = all.lastIndex(where: { !isSpace($0) }).map { $0 + 1 } ?? first
        let bytes = all[first..<last]
        if bytes.isEmpty {
            throw ValidationError(
                .invalidRequestBody, field: field, "\(field) must not be empty: give an http(s) URL, raw base64 or a data:image/png;base64,… URI.")
        }
        // Short, lowercased head: schemes and data-URI headers are always near the start.
        let head = String(decoding: bytes.prefix(64), as: UTF8.self).lowercased()
        if head.hasPrefix("http://") || head.hasPrefix("https://") {
            return .url(String(decoding: bytes, as: UTF8.self))
        }
        if head.hasPrefix("data:") {
            guard let comma = bytes.prefix(128).firstIndex(of: UInt8(ascii: ",")) else {
                throw ValidationError(
                    .invalidImageFormat, field: field, "\(field) is a data URI without a ',' before its data, or with an overlong header.")
            }
            let header = String(decoding: bytes[(bytes.startIndex + 5)..<comma], as: UTF8.self).lowercased()
            let allowed = ["image/png;base64", "image/jpeg;base64", "image/jpg;base64"]
            guard allowed.contains(header) else {
                throw ValidationError(
                    .invalidImageFormat, field: field,
                    "\(field) is a data URI of type '\(header)'; only data:image/png;base64 and data:image/jpeg;base64 are accepted.")
            }
            return .bytes(try decodeBase64(bytes[(comma + 1)...], field: field, limits: limits))
        }
        if let range = head.range(of: "://") {
            let scheme = head[..<range.lowerBound]
            if !scheme.isEmpty, scheme.allSatisfy({ $0.isLetter || $0 == "+" || $0 == "-" || $0 == "." }) {
                throw ValidationError(
                    .invalidImageFormat, field: field, "\(field) uses the URL scheme '\(scheme)'; only http and https URLs are accepted.")
            }
        }
        return .bytes(try decodeBase64(bytes, field: field, limits: limits))
    }

    /// Strict base64 (standard alphabet, padding optional, whitespace ignored); refuses oversize data before decoding it.
    ///
    /// The common case (no whitespace) costs one copy of the text and Foundation's decoder; only text that
    /// fails that way is scanned for whitespace and compacted.
    static func decodeBase64(_ text: Slice<UnsafeBufferPointer<UInt8>>, field: String, limits: ValidationLimits) throws(ValidationError) -> Data {
        func tooLarge() -> ValidationError {
            ValidationError(.imageFileTooLarge, field: field, "\(field) is larger than \(limits.maxImageBytes) bytes (10 MB) after base64 decoding.")
        }
        // Each 4 characters carry 3 bytes: anything clearly above the cap is refused without decoding it.
        func checkEstimate(_ characters: Int) throws(ValidationError) {
            if characters / 4 * 3 > limits.maxImageBytes + 3 { throw tooLarge() }
        }
        func decode(_ characters: some Collection<UInt8>, count: Int) -> Data? {
            var padded = Data(capacity: count + 3)
            padded.append(contentsOf: characters)
            if count % 4 > 1 { padded.append(contentsOf: repeatElement(UInt8(ascii: "="), count: 4 - count % 4)) }
            return Data(base64Encoded: padded)
        }

        var decoded: Data?
        if text.count % 4 != 1, text.count / 4 * 3 <= limits.maxImageBytes + 3 {
            decoded = decode(text, count: text.count)
        }
        if decoded == nil {
            // Whitespace inside, an impossible length, oversize or invalid: find out which.
            let compactCount = text.reduce(0) { $0 + (isSpace($1) ? 0 : 1) }
            try checkEstimate(compactCount)
            if compactCount % 4 == 1 {
                throw ValidationError(.invalidImageFormat, field: field, "\(field) is not valid base64 (its length is impossible).")
            }
            if compactCount != text.count {
                decoded = decode(text.lazy.filter { !isSpace($0) }, count: compactCount)
            }
        }
        guard let data = decoded else {
            throw ValidationError(.invalidImageFormat, field: field, "\(field) is neither an http(s) URL nor valid base64 image data.")
        }
        if data.isEmpty {
            throw ValidationError(.invalidImageFormat, field: field, "\(field) decodes to no bytes; give PNG or JPEG image data.")
        }
        return data
    }
}
