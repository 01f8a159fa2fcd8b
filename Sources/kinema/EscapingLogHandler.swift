import Logging

/// A log handler that writes through another one after escaping control characters in the message and every
/// metadata value, so a value that came from outside (a worker's failure reason, a prompt, a header, a task id)
/// cannot forge or split log lines: `\r\nX: y` is written as the six visible characters `\r\nX: y`.
struct EscapingLogHandler: LogHandler {
    var inner: any LogHandler

    init(_ inner: any LogHandler) {
        self.inner = inner
    }

    var metadataProvider: Logger.MetadataProvider? {
        get { inner.metadataProvider }
        set { inner.metadataProvider = newValue }
    }

    var logLevel: Logger.Level {
        get { inner.logLevel }
        set { inner.logLevel = newValue }
    }

    var metadata: Logger.Metadata {
        get { inner.metadata }
        set { inner.metadata = newValue.mapValues(Self.escape) }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { inner[metadataKey: key] }
        set { inner[metadataKey: key] = newValue.map(Self.escape) }
    }

    func log(event: LogEvent) {
        var event = event
        event.message = Logger.Message(stringLiteral: LogText.escape(event.message.description))
        event.metadata = event.metadata?.mapValues(Self.escape)
        inner.log(event: event)
    }

    static func escape(_ value: Logger.Metadata.Value) -> Logger.Metadata.Value {
        switch value {
        case .string(let s): .string(LogText.escape(s))
        case .stringConvertible(let c): .string(LogText.escape(c.description))
        case .array(let items): .array(items.map(escape))
        case .dictionary(let d): .dictionary(d.mapValues(escape))
        }
    }
}

/// Escaping of text for one log line.
enum LogText {
    /// `text` with control characters (C0, DEL, C1) and Unicode line and paragraph separators written as escapes;
    /// text without any is returned as it is, without a copy.
    static func escape(_ text: String) -> String {
        func isControl(_ v: UInt32) -> Bool { v < 0x20 || (0x7F...0x9F).contains(v) || v == 0x2028 || v == 0x2029 }
        guard text.unicodeScalars.contains(where: { isControl($0.value) || $0 == "\\" }) else { return text }
        var out = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\n": out.append(contentsOf: "\\n".unicodeScalars)
            case "\r": out.append(contentsOf: "\\r".unicodeScalars)
            case "\t": out.append(contentsOf: "\\t".unicodeScalars)
            case "\\": out.append(contentsOf: "\\\\".unicodeScalars)
            case _ where isControl(scalar.value):
                out.append(contentsOf: "\\u{\(String(scalar.value, radix: 16))}".unicodeScalars)
            default: out.append(scalar)
            }
        }
        return String(out)
    }
}
