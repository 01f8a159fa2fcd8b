import Foundation
import HTTPTypes
import Hummingbird
import KinemaCore

/// The web playground at `/`: three static files compiled into the binary (`PlaygroundAssets`, from `web/playground/`),
/// with this server's limits and engines written into the page, so it needs no route of its own for them. The page
/// only calls the public API, with the key the user pastes.
///
/// Every answer carries a strict policy: scripts and styles from this origin only (no inline script, no `eval`),
/// requests to this origin only, no framing, no referrer.
struct Playground: Sendable {
    static let scriptPath = "/playground/app.js"
    static let stylePath = "/playground/style.css"

    /// The page with the configuration block filled in.
    let page: String
    let headers: HTTPFields

    /// `mediaOrigin`: where signed video URLs point when `--public-url` names another origin than the page's
    /// (`nil`: the page's own origin).
    init(engines: [String], limits: ValidationLimits, mediaOrigin: String?) {
        page = PlaygroundAssets.indexHTML.replacingOccurrences(
            of: "<!--KINEMA_CONFIG-->", with: Self.configBlock(engines: engines, limits: limits))
        var media = "'self' blob:"
        if let mediaOrigin { media += " " + mediaOrigin }
        let policy = [
            "default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self' data: blob:", "media-src \(media)",
            "connect-src 'self'", "form-action 'none'", "base-uri 'none'", "frame-ancestors 'none'",
        ].joined(separator: "; ")
        headers = [
            HTTPField.Name("Content-Security-Policy")!: policy,
            HTTPField.Name("X-Frame-Options")!: "DENY",
            HTTPField.Name("Referrer-Policy")!: "no-referrer",
            .cacheControl: "no-cache",
        ]
    }

    /// `scheme://host[:port]` of a URL, for the policy's media sources.
    static func origin(of url: String) -> String? {
        guard let parts = URLComponents(string: url), let scheme = parts.scheme, let host = parts.host, !host.isEmpty else { return nil }
        let shownHost = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
        return "\(scheme)://\(shownHost)" + (parts.port.map { ":\($0)" } ?? "")
    }

    /// The JSON the page reads (`#kinema-config`), in a block the browser never runs. `<` is escaped so no value can
    /// end the block.
    static func configBlock(engines: [String], limits: ValidationLimits) -> String {
        let config = Config(
            engines: engines,
            limits: .init(
                maxImageBytes: limits.maxImageBytes, minImageSide: limits.minImageSide, maxImageSide: limits.maxImageSide,
                maxImagePixels: limits.maxImagePixels, maxAspectNumerator: limits.maxAspectNumerator,
                maxAspectDenominator: limits.maxAspectDenominator, maxPromptLength: limits.maxPromptLength,
                minDuration: limits.minDuration, maxDuration: limits.maxDuration, maxShots: limits.maxShots))
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let json = (try? encoder.encode(config)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        let safe = json.replacingOccurrences(of: "<", with: "\\u003c")
        return #"<script type="application/json" id="kinema-config">"# + safe + "</script>"
    }

    struct Config: Encodable {
        struct Limits: Encodable {
            var maxImageBytes, minImageSide, maxImageSide, maxImagePixels, maxAspectNumerator, maxAspectDenominator: Int
            var maxPromptLength, minDuration, maxDuration, maxShots: Int
        }
        var engines: [String]
        var limits: Limits
    }

    func addRoutes(to router: Router<KinemaRequestContext>) {
        let page = self.page
        let headers = self.headers
        @Sendable func answer(_ text: String, _ type: String) -> Response {
            var fields = headers
            fields[.contentType] = type
            return Response(status: .ok, headers: fields, body: .init(byteBuffer: ByteBuffer(string: text)))
        }
        router.get("/") { _, _ in answer(page, "text/html; charset=utf-8") }
        router.get(RouterPath(stringLiteral: Self.scriptPath)) { _, _ in answer(PlaygroundAssets.appJS, "text/javascript; charset=utf-8") }
        router.get(RouterPath(stringLiteral: Self.stylePath)) { _, _ in answer(PlaygroundAssets.styleCSS, "text/css; charset=utf-8") }
    }
}
