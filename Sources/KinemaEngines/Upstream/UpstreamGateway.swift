import Foundation
import KinemaCore
import Logging

/// The secrets of the upstream providers, from the environment or a credentials file (never from the command line,
/// where `ps` would show them). Held in memory only; never logged, never in an error or a task.
public struct UpstreamCredentials: Sendable {
    public var novitaAPIKey: String?
    public var klingAccessKey: String?
    public var klingSecretKey: String?
    public var falKey: String?

    /// The variable names, in the environment and in a credentials file alike.
    public static let novitaVariable = "KINEMA_NOVITA_API_KEY"
    public static let klingAccessVariable = "KINEMA_KLING_ACCESS_KEY"
    public static let klingSecretVariable = "KINEMA_KLING_SECRET_KEY"
    public static let falVariable = "KINEMA_FAL_KEY"

    public init(novitaAPIKey: String? = nil, klingAccessKey: String? = nil, klingSecretKey: String? = nil, falKey: String? = nil) {
        self.novitaAPIKey = novitaAPIKey
        self.klingAccessKey = klingAccessKey
        self.klingSecretKey = klingSecretKey
        self.falKey = falKey
    }

    /// Reads the file (when given) and then the environment, which wins. The file holds `NAME=value` lines (blank
    /// lines and `#` comments allowed) and must be readable by its owner only (mode 0600 or stricter).
    public static func load(environment: [String: String], file: String?) throws -> UpstreamCredentials {
        var values: [String: String] = [:]
        if let file {
            var info = stat()
            guard stat(file, &info) == 0 else {
                throw UpstreamConfigurationError("the credentials file \(file) cannot be read: \(String(cString: strerror(errno)))")
            }
            guard info.st_mode & 0o077 == 0 else {
                throw UpstreamConfigurationError(
                    "the credentials file \(file) may be read by others (mode \(String(info.st_mode & 0o777, radix: 8))); run: chmod 600 \(file)")
            }
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw UpstreamConfigurationError("the credentials file \(file) cannot be read as UTF-8 text")
            }
            for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let line = raw.trimmingCharacters(in: .whitespaces)
                if line.isEmpty || line.hasPrefix("#") { continue }
                guard let equals = line.firstIndex(of: "=") else {
                    throw UpstreamConfigurationError("the credentials file \(file), line \(number + 1): expected NAME=value")
                }
                var name = line[..<equals].trimmingCharacters(in: .whitespaces)
                if name.hasPrefix("export ") { name = String(name.dropFirst(7)).trimmingCharacters(in: .whitespaces) }
                var value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
                if value.count >= 2, let first = value.first, first == "\"" || first == "'", value.last == first {
                    value = String(value.dropFirst().dropLast())
                }
                values[name] = value
            }
        }
        for (name, value) in environment where name.hasPrefix("KINEMA_") && !value.isEmpty { values[name] = value }
        func value(_ name: String) -> String? { values[name].flatMap { $0.isEmpty ? nil : $0 } }
        return UpstreamCredentials(
            novitaAPIKey: value(novitaVariable), klingAccessKey: value(klingAccessVariable), klingSecretKey: value(klingSecretVariable),
            falKey: value(falVariable))
    }
}

/// A configuration problem that stops `kinema serve` with a clear message.
public struct UpstreamConfigurationError: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ message: String) { description = message }
}

/// Where the providers are and how they are called (`kinema serve --upstream-*`).
public struct UpstreamConfiguration: Sendable {
    public var settings = UpstreamSettings()
    public var novitaURL = "https://api.novita.ai"
    public var klingURL = "https://api-singapore.klingai.com"
    /// Kling's `model_name` for v3.0.
    public var klingModel = "kling-v3"
    public var falURL = "https://queue.fal.run"
    /// fal's model path for Kling v3 Standard image-to-video.
    public var falModel = "fal-ai/kling-video/v3/standard/image-to-video"
    /// When set, fal gets images as these links (a blob key → a signed URL of ours) instead of `data:` URIs.
    public var falImageLinks: (@Sendable (String) -> String)?

    public init() {}

    /// The engine names that are upstream providers.
    public static let providers = ["novita", "kling", "fal"]
}

/// The upstream engines a node runs, sharing one HTTP client; shut it down when the node stops.
public final class UpstreamGateway: Sendable {
    /// One engine per enabled provider, in the order asked for.
    public let engines: [any VideoEngine]
    /// Which of them are paused, and why (for `/readyz`).
    public let status: EngineStatusBoard
    private let http: UpstreamHTTP

    /// Builds the engines for the `enabled` provider names; refuses to start a provider without its credentials or
    /// with a malformed URL.
    public init(
        enabled: [String], configuration: UpstreamConfiguration, credentials: UpstreamCredentials, connectionsPerHost: Int,
        logger: Logger
    ) throws {
        let board = EngineStatusBoard()
        let http = UpstreamHTTP(connectionsPerHost: connectionsPerHost)
        var engines: [any VideoEngine] = []
        do {
            for name in enabled {
                let provider: any UpstreamProvider
                switch name {
                case "novita":
                    guard let key = credentials.novitaAPIKey else { throw Self.missing("novita", UpstreamCredentials.novitaVariable) }
                    provider = NovitaProvider(
                        endpoint: try Self.endpoint(configuration.novitaURL, model: "", option: "--upstream-novita-url"), apiKey: key)
                case "kling":
                    guard let access = credentials.klingAccessKey, let secret = credentials.klingSecretKey else {
                        throw Self.missing("kling", "\(UpstreamCredentials.klingAccessVariable) and \(UpstreamCredentials.klingSecretVariable)")
                    }
                    provider = KlingProvider(
                        endpoint: try Self.endpoint(configuration.klingURL, model: configuration.klingModel, option: "--upstream-kling-url"),
                        token: KlingToken(accessKey: access, secretKey: secret))
                case "fal":
                    guard let key = credentials.falKey else { throw Self.missing("fal", UpstreamCredentials.falVariable) }
                    provider = FalProvider(
                        endpoint: try Self.endpoint(configuration.falURL, model: configuration.falModel, option: "--upstream-fal-url"), key: key,
                        imageLinks: configuration.falImageLinks)
                default:
                    throw UpstreamConfigurationError(
                        "\(name) is not an upstream provider (those are \(UpstreamConfiguration.providers.joined(separator: ", ")))")
                }
                engines.append(UpstreamEngine(provider: provider, http: http, settings: configuration.settings, board: board, logger: logger))
            }
        } catch {
            http.syncShutdown()
            throw error
        }
        self.engines = engines
        self.status = board
        self.http = http
    }

    public func shutdown() async {
        await http.shutdown()
    }

    private static func missing(_ engine: String, _ variables: String) -> UpstreamConfigurationError {
        UpstreamConfigurationError(
            "--engine \(engine) needs its credentials: set \(variables) in the environment or in the file given with --upstream-credentials")
    }

    private static func endpoint(_ url: String, model: String, option: String) throws -> UpstreamEndpoint {
        let trimmed = url.hasSuffix("/") ? String(url.dropLast()) : url
        guard let parts = URLComponents(string: trimmed), ["http", "https"].contains(parts.scheme?.lowercased() ?? ""), parts.host?.isEmpty == false,
            parts.user == nil, parts.password == nil
        else {
            throw UpstreamConfigurationError("\(option) \(url): expected an http(s) URL such as https://api.example.com")
        }
        return UpstreamEndpoint(baseURL: trimmed, model: model.trimmingCharacters(in: CharacterSet(charactersIn: "/")))
    }
}
