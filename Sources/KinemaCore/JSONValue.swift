import Foundation

/// A parsed JSON document that keeps numbers as written, so validation can tell `5` from `5.0`, `5.5` and `"5"`.
///
/// Foundation's parsers lose that distinction (and on Linux blur booleans and numbers), which the contract needs.
public indirect enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    /// The number's literal text, exactly as it appeared.
    case number(String)
    case string(String)
    case array([JSONValue])
    /// Members in document order (the parser refuses a repeated name).
    case object([(String, JSONValue)])

    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): true
        case let (.bool(a), .bool(b)): a == b
        case let (.number(a), .number(b)): a == b
        case let (.string(a), .string(b)): a == b
        case let (.array(a), .array(b)): a == b
        case let (.object(a), .object(b)): a.count == b.count && zip(a, b).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: false
        }
    }

    /// The member named `key` of an object, `nil` for absent keys and non-objects.
    public subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members.last(where: { $0.0 == key })?.1
    }

    /// A short name of the value's JSON type, for error messages.
    public var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .number: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }
}

/// Why a JSON document could not be parsed.
public struct JSONParseError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What kind of limit or syntax rule was broken.
    public enum Kind: Sendable, Equatable {
        /// Not JSON: a syntax error, invalid UTF-8, an unpaired surrogate…
        case syntax
        /// A string (key or value) longer than the parser's cap.
        case stringTooLong
        /// Arrays and objects nested deeper than the parser's cap.
        case tooDeep
        /// An object names the same member twice; `path` names the repeated member.
        case duplicateMember
    }

    /// Byte offset of the problem.
    public var offset: Int
    public var message: String
    public var kind: Kind
    /// JSON path of the member whose value was being read, e.g. `multi_prompt[2].prompt`; "" at the top level.
    ///
    /// Lets a caller name the field a limit belongs to (an oversized `image` is an image problem, not broken JSON).
    public var path: String
    public var description: String { "\(message) at byte \(offset)" }

    public init(offset: Int, message: String, kind: Kind = .syntax, path: String = "") {
        self.offset = offset
        self.message = message
        self.kind = kind
        self.path = path
    }
}

/// A strict RFC 8259 parser with nesting and size limits.
public struct JSONParser {
    /// Deepest allowed nesting of arrays and objects.
    public var maxDepth: Int
    /// Longest string (key or value), in bytes as written in the input (escapes included).
    public var maxStringBytes: Int

    public init(maxDepth: Int = 64, maxStringBytes: Int = .max) {
        self.maxDepth = maxDepth
        self.maxStringBytes = maxStringBytes
    }

    /// Parses one JSON value filling the whole input (surrounding whitespace allowed).
    public func parse(_ data: Data) throws(JSONParseError) -> JSONValue {
        try parse([UInt8](data))
    }

    /// Parses one JSON value filling the whole input (surrounding whitespace allowed).
    public func parse(_ bytes: [UInt8]) throws(JSONParseError) -> JSONValue {
        var reader = Reader(bytes: bytes, maxDepth: maxDepth, maxStringBytes: maxStringBytes)
        reader.skipWhitespace()
        let value = try reader.value(depth: 0)
        reader.skipWhitespace()
        if reader.index != bytes.count { throw reader.error("unexpected data after the JSON value") }
        return value
    }

    private struct Reader {
        let bytes: [UInt8]
        let maxDepth: Int
        let maxStringBytes: Int
        var index = 0
        /// Where the reader is: member names and array indexes from the top, for naming the field of an error.
        var path: [PathComponent] = []

        enum PathComponent {
            case member(String)
            case item(Int)
        }

        init(bytes: [UInt8], maxDepth: Int, maxStringBytes: Int) {
            self.bytes = bytes
            self.maxDepth = maxDepth
            self.maxStringBytes = maxStringBytes
        }

        func error(_ message: String, _ kind: JSONParseError.Kind = .syntax) -> JSONParseError {
            JSONParseError(offset: index, message: message, kind: kind, path: pathText)
        }

        /// The path in the contract's notation: `a.b[2].c`.
        var pathText: String {
            var text = ""
            for component in path {
                switch component {
                case .member(let name):
                    if !text.isEmpty { text += "." }
                    // A name is echoed in errors: keep it short and printable.
                    text +=
                        name.unicodeScalars.count <= 64 && name.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value != 0x7F })
                        ? name : String(name.unicodeScalars.prefix(64).map { $0.value >= 0x20 && $0.value != 0x7F ? Character($0) : "?" }) + "…"
                case .item(let i):
                    text += "[\(i)]"
                }
            }
            return text
        }

        mutating func skipWhitespace() {
            while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
        }

        mutating func value(depth: Int) throws(JSONParseError) -> JSONValue {
            guard index < bytes.count else { throw error("unexpected end of JSON") }
            switch bytes[index] {
            case UInt8(ascii: "{"): return try object(depth: depth + 1)
            case UInt8(ascii: "["): return try array(depth: depth + 1)
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "t"): try literal("true"); return .bool(true)
            case UInt8(ascii: "f"): try literal("false"); return .bool(false)
            case UInt8(ascii: "n"): try literal("null"); return .null
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try number())
            default: throw error("unexpected character")
            }
        }

        mutating func literal(_ word: String) throws(JSONParseError) {
            for b in word.utf8 {
                guard index < bytes.count, bytes[index] == b else { throw error("invalid literal") }
                index += 1
            }
        }

        mutating func object(depth: Int) throws(JSONParseError) -> JSONValue {
            if depth > maxDepth { throw error("JSON nested deeper than \(maxDepth) levels", .tooDeep) }
            index += 1
            var members: [(String, JSONValue)] = []
            var seen: Set<String> = []
            skipWhitespace()
            if index < bytes.count, bytes[index] == UInt8(ascii: "}") { index += 1; return .object(members) }
            while true {
                skipWhitespace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw error("expected a member name") }
                let key = try string()
                // A repeated name is refused: a proxy that reads the first value and a server that reads the last
                // would act on different requests. Small objects are searched; large ones get a set.
                if members.count < 16 {
                    if members.contains(where: { $0.0 == key }) {
                        path.append(.member(key)); throw error("the member \"\(pathText)\" appears twice", .duplicateMember)
                    }
                } else {
                    if seen.isEmpty { seen = Set(members.map(\.0)) }
                    if !seen.insert(key).inserted {
                        path.append(.member(key)); throw error("the member \"\(pathText)\" appears twice", .duplicateMember)
                    }
                }
                skipWhitespace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw error("expected ':'") }
                index += 1
                skipWhitespace()
                path.append(.member(key))
                members.append((key, try value(depth: depth)))
                path.removeLast()
                skipWhitespace()
                guard index < bytes.count else { throw error("unexpected end of JSON") }
                if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
                if bytes[index] == UInt8(ascii: "}") { index += 1; return .object(members) }
                throw error("expected ',' or '}'")
            }
        }

        mutating func array(depth: Int) throws(JSONParseError) -> JSONValue {
            if depth > maxDepth { throw error("JSON nested deeper than \(maxDepth) levels", .tooDeep) }
            index += 1
            var items: [JSONValue] = []
            skipWhitespace()
            if index < bytes.count, bytes[index] == UInt8(ascii: "]") { index += 1; return .array(items) }
            while true {
                skipWhitespace()
                path.append(.item(items.count))
                items.append(try value(depth: depth))
                path.removeLast()
                skipWhitespace()
                guard index < bytes.count else { throw error("unexpected end of JSON") }
                if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
                if bytes[index] == UInt8(ascii: "]") { index += 1; return .array(items) }
                throw error("expected ',' or ']'")
            }
        }

        mutating func number() throws(JSONParseError) -> String {
            let start = index
            if bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard index < bytes.count, isDigit(bytes[index]) else { throw error("invalid number") }
            if bytes[index] == UInt8(ascii: "0") {
                index += 1
            } else {
                while index < bytes.count, isDigit(bytes[index]) { index += 1 }
            }
            if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
                index += 1
                guard index < bytes.count, isDigit(bytes[index]) else { throw error("invalid number") }
                while index < bytes.count, isDigit(bytes[index]) { index += 1 }
            }
            if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
                index += 1
                if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
                guard index < bytes.count, isDigit(bytes[index]) else { throw error("invalid number") }
                while index < bytes.count, isDigit(bytes[index]) { index += 1 }
            }
            return String(decoding: bytes[start..<index], as: UTF8.self)
        }

        func isDigit(_ b: UInt8) -> Bool { b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") }

        mutating func string() throws(JSONParseError) -> String {
            index += 1
            let start = index
            var out: [UInt8] = []
            while true {
                // Plain runs are copied in bulk: image strings are megabytes of base64 without escapes.
                let run = index
                index = bytes.withUnsafeBufferPointer { buffer in
                    var i = run
                    if let base = buffer.baseAddress.map(UnsafeRawPointer.init) {
                        // Eight bytes at a time while none is a quote, a backslash or a control character.
                        let ones: UInt64 = 0x0101_0101_0101_0101, highs: UInt64 = 0x8080_8080_8080_8080
                        func hasZeroByte(_ x: UInt64) -> Bool { (x &- ones) & ~x & highs != 0 }
                        while i + 8 <= buffer.count {
                            let word = base.loadUnaligned(fromByteOffset: i, as: UInt64.self)
                            let control = (word &- ones &* 0x20) & ~word & highs != 0 // some byte < 0x20
                            if control || hasZeroByte(word ^ (ones &* 0x22)) || hasZeroByte(word ^ (ones &* 0x5C)) { break }
                            i += 8
                        }
                    }
                    while i < buffer.count {
                        let b = buffer[i]
                        if b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") || b < 0x20 { break }
                        i += 1
                    }
                    return i
                }
                if index - start > maxStringBytes { throw error("a string is longer than \(maxStringBytes) bytes", .stringTooLong) }
                if out.isEmpty, index < bytes.count, bytes[index] == UInt8(ascii: "\"") {
                    // The common case, a string without escapes: one copy, validated as UTF-8 in one pass.
                    let plain = bytes[run..<index]
                    index += 1
                    guard let s = String(validating: plain, as: UTF8.self) else { throw error("string is not valid UTF-8") }
                    return s
                }
                out.append(contentsOf: bytes[run..<index])
                guard index < bytes.count else { throw error("unterminated string") }
                let b = bytes[index]
                if b == UInt8(ascii: "\"") { index += 1; break }
                if b < 0x20 { throw error("control character in string") }
                index += 1
                guard index < bytes.count else { throw error("unterminated escape") }
                let e = bytes[index]
                index += 1
                switch e {
                case UInt8(ascii: "\""): out.append(0x22)
                case UInt8(ascii: "\\"): out.append(0x5C)
                case UInt8(ascii: "/"): out.append(0x2F)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if (0xD800...0xDBFF).contains(scalar) {
                        guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u")
                        else { throw error("unpaired surrogate in string") }
                        index += 2
                        let low = try hex4()
                        guard (0xDC00...0xDFFF).contains(low) else { throw error("unpaired surrogate in string") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00...0xDFFF).contains(scalar) {
                        throw error("unpaired surrogate in string")
                    }
                    guard let u = Unicode.Scalar(scalar) else { throw error("invalid unicode escape") }
                    out.append(contentsOf: Array(String(Character(u)).utf8))
                default: throw error("invalid escape")
                }
            }
            // Invalid UTF-8 is refused rather than silently repaired.
            guard let s = String(validating: out, as: UTF8.self) else { throw error("string is not valid UTF-8") }
            return s
        }

        mutating func hex4() throws(JSONParseError) -> UInt32 {
            guard index + 4 <= bytes.count else { throw error("truncated unicode escape") }
            var v: UInt32 = 0
            for _ in 0..<4 {
                let b = bytes[index]
                let d: UInt32
                switch b {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): d = UInt32(b - UInt8(ascii: "0"))
                case UInt8(ascii: "a")...UInt8(ascii: "f"): d = UInt32(b - UInt8(ascii: "a") + 10)
                case UInt8(ascii: "A")...UInt8(ascii: "F"): d = UInt32(b - UInt8(ascii: "A") + 10)
                default: throw error("invalid unicode escape")
                }
                v = v * 16 + d
                index += 1
            }
            return v
        }
    }
}
