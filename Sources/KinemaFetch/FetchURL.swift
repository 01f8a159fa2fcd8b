import Foundation

/// A user-supplied URL reduced to the parts the fetcher acts on, checked for everything that can be
/// checked without the network.
///
/// The request is later rebuilt from these parts (`requestURL`), so the host that was checked is the host
/// AsyncHTTPClient sees: no second parser can read a different host out of the original text.
struct FetchURL: Sendable, Hashable, CustomStringConvertible {
    enum Host: Sendable, Hashable {
        /// A DNS name, lowercased.
        case name(String)
        /// An IP literal, from any spelling ("[::1]", "127.1", "0x7f.0.0.1", "2130706433").
        case address(IPAddress)
    }

    var isHTTPS: Bool
    var host: Host
    /// The explicit port, if the URL names one.
    var port: Int?
    /// Percent-encoded path and query, never empty ("/" at least); the fragment is dropped.
    var pathAndQuery: String

    /// The host as written in `requestURL` (IPv6 in brackets).
    var urlHost: String {
        switch host {
        case .name(let name): name
        case .address(let address): address.urlHost
        }
    }

    /// The port the connection goes to.
    var effectivePort: Int { port ?? (isHTTPS ? 443 : 80) }

    /// The canonical URL that is requested, and that redirect-loop detection compares.
    var requestURL: String {
        "\(isHTTPS ? "https" : "http")://\(urlHost)\(port.map { ":\($0)" } ?? "")\(pathAndQuery)"
    }

    var description: String { requestURL }

    /// Parses `text`; `subject` names it in error messages ("the image URL", "the redirect target").
    init(parsing text: String, subject: String) throws(FetchError) {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        let shown = Self.shorten(trimmed)
        guard !trimmed.isEmpty, let components = URLComponents(string: trimmed) else {
            throw FetchError(code: .invalidURL, message: "\(subject) \"\(shown)\" is not a valid URL")
        }
        guard let scheme = components.scheme?.lowercased() else {
            throw FetchError(
                code: .invalidURL,
                message: "\(subject) \"\(shown)\" is not an absolute URL; it must start with http:// or https://"
            )
        }
        guard scheme == "http" || scheme == "https" else {
            throw FetchError(
                code: .unsupportedScheme,
                message: "\(subject) uses the scheme \"\(scheme)\"; only http and https URLs can be fetched"
            )
        }
        // Refused rather than stripped: silently dropping credentials would fetch something other than what
        // the caller asked for, and they must never be forwarded anywhere.
        if components.percentEncodedUser != nil || components.percentEncodedPassword != nil {
            throw FetchError(
                code: .invalidURL,
                message: "\(subject) contains credentials (user:password@host), which are never sent; remove them"
            )
        }
        guard let rawHost = components.percentEncodedHost, !rawHost.isEmpty else {
            throw FetchError(code: .invalidURL, message: "\(subject) \"\(shown)\" has no host")
        }
        self.isHTTPS = scheme == "https"
        self.host = try Self.parseHost(rawHost, subject: subject)
        if let port = components.port {
            guard (1...65535).contains(port) else {
                throw FetchError(code: .invalidURL, message: "\(subject) names port \(port), which is not between 1 and 65535")
            }
            self.port = port
        } else {
            self.port = nil
        }
        let path = components.percentEncodedPath.isEmpty ? "/" : components.percentEncodedPath
        self.pathAndQuery = path + (components.percentEncodedQuery.map { "?\($0)" } ?? "")
    }

    /// Resolves a redirect's `Location` (absolute or relative) against this URL.
    func resolving(location: String) throws(FetchError) -> FetchURL {
        let subject = "the redirect target"
        guard let base = URL(string: requestURL),
            let target = URL(string: location.trimmingCharacters(in: .whitespaces), relativeTo: base)
        else {
            throw FetchError(
                code: .invalidURL,
                message: "\(requestURL) redirects to \"\(Self.shorten(location))\", which is not a valid URL"
            )
        }
        return try FetchURL(parsing: target.absoluteString, subject: subject)
    }

    private static func parseHost(_ raw: String, subject: String) throws(FetchError) -> Host {
        if raw.hasPrefix("[") {
            // IPv6 literal; a zone ("%25eth0") is refused along with anything else inet_pton rejects.
            guard raw.hasSuffix("]"), let address = IPAddress(String(raw.dropFirst().dropLast())), !address.isIPv4 else {
                throw FetchError(code: .invalidURL, message: "\(subject) has an invalid IPv6 address \(raw)")
            }
            return .address(address)
        }
        let host = raw.lowercased()
        // Plain ASCII host names only: percent-encoded or internationalised hosts have several readings
        // (decoded, IDNA-mapped) and the one we check must be the one that is connected to.
        let allowed = Set("abcdefghijklmnopqrstuvwxyz0123456789-._")
        guard host.allSatisfy({ allowed.contains($0) }) else {
            throw FetchError(
                code: .invalidURL,
                message: "\(subject) has the host \"\(shorten(raw))\", which is not a plain ASCII host name "
                    + "(write internationalised names in their xn-- form)"
            )
        }
        var labels = host.split(separator: ".", omittingEmptySubsequences: false)
        // One trailing dot marks a fully qualified name; it is dropped because the system resolver reads
        // "localhost." as a DNS question instead of answering from /etc/hosts.
        if labels.count > 1, labels.last == "" { labels.removeLast() }
        guard host.count <= 253, labels.allSatisfy({ !$0.isEmpty && $0.count <= 63 }) else {
            throw FetchError(code: .invalidURL, message: "\(subject) has the malformed host name \"\(shorten(raw))\"")
        }
        // As in the WHATWG URL standard: a host whose last label is a number is an IPv4 address in one of
        // the legacy spellings, or invalid, never a DNS name to look up.
        if let last = labels.last, IPAddress.isNumericLabel(last) {
            guard let address = IPAddress(legacyIPv4: labels.map(String.init)) else {
                throw FetchError(code: .invalidURL, message: "\(subject) has the invalid IPv4 address \"\(shorten(raw))\"")
            }
            return .address(address)
        }
        return .name(labels.joined(separator: "."))
    }

    static func shorten(_ text: String) -> String {
        text.count <= 200 ? text : String(text.prefix(200)) + "…"
    }
}
