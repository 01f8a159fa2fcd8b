import ArgumentParser
import Foundation
import KinemaCore
import Logging

/// One JSON object per log line on stderr (`--log-format json`): `ts`, `level`, `label`, `message`, then every
/// metadata value as a string under its own key. Values are JSON strings, so nothing a value holds can split or forge
/// a line.
struct JSONLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    init(label: String, metadataProvider: Logger.MetadataProvider? = nil) {
        self.label = label
        self.metadataProvider = metadataProvider
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// Serializes whole lines: one `write` per line, never two interleaved.
    private static let lock = NSLock()

    func log(event: LogEvent) {
        var all = metadata
        if let provided = metadataProvider?.get() { all.merge(provided) { $1 } }
        if let own = event.metadata { all.merge(own) { $1 } }
        var out = JSONBytes(capacity: 256)
        out.object { o in
            o.key("ts")
            o.string(Date().formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted)))
            o.key("level")
            o.string(event.level.rawValue)
            o.key("label")
            o.string(label)
            o.key("message")
            o.string(event.message.description)
            for key in all.keys.sorted() where !["ts", "level", "label", "message"].contains(key) {
                o.key(key)
                o.string(Self.text(all[key]!))
            }
        }
        var line = out.bytes
        line.append(UInt8(ascii: "\n"))
        Self.lock.lock()
        defer { Self.lock.unlock() }
        // write(2) straight to fd 2: no stdio buffer, one call per line.
        line.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = write(STDERR_FILENO, raw.baseAddress! + offset, raw.count - offset)
                if n <= 0 { break }
                offset += n
            }
        }
    }

    static func text(_ value: Logger.Metadata.Value) -> String {
        switch value {
        case .string(let s): s
        case .stringConvertible(let c): c.description
        case .array(let items): "[" + items.map(text).joined(separator: ", ") + "]"
        case .dictionary(let d): "{" + d.keys.sorted().map { "\($0): \(text(d[$0]!))" }.joined(separator: ", ") + "}"
        }
    }
}

/// `--log-format json|text` (env `KINEMA_LOG_FORMAT`): read before any command is parsed, since the logging system is
/// set up once for the whole process. Default: text on a terminal, JSON otherwise (a service's logs go to a collector).
enum LogFormat: String, ExpressibleByArgument {
    case json, text

    static func chosen(arguments: [String] = CommandLine.arguments, environment: [String: String] = ProcessInfo.processInfo.environment) -> LogFormat
    {
        var value = environment["KINEMA_LOG_FORMAT"]
        for (i, argument) in arguments.enumerated() {
            if argument == "--log-format", i + 1 < arguments.count { value = arguments[i + 1] }
            if argument.hasPrefix("--log-format=") { value = String(argument.dropFirst("--log-format=".count)) }
        }
        if let value, let format = LogFormat(rawValue: value.lowercased()) { return format }
        return isatty(STDERR_FILENO) == 1 ? .text : .json
    }
}
