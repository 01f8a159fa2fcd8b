import Foundation
import KinemaStore
import PostgresNIO

/// A `postgres://user:password@host:port/database?sslmode=…` URL, parsed into PostgresNIO's settings.
struct PostgresURL: CustomStringConvertible {
    var host: String
    var port: Int
    var username: String
    var password: String?
    var database: String
    var sslMode: String

    init(_ text: String) throws {
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
            scheme == "postgres" || scheme == "postgresql"
        else {
            throw StoreError(.unavailable, "the database URL must look like postgres://user:password@host:5432/database")
        }
        guard let host = components.host, !host.isEmpty else {
            throw StoreError(.unavailable, "the database URL has no host; write postgres://user@host:5432/database")
        }
        // URLComponents keeps IPv6 literals bracketed; the socket layer wants them bare.
        self.host = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        self.port = components.port ?? 5432
        guard (1...65535).contains(port) else {
            throw StoreError(.unavailable, "the database URL's port \(port) is out of range")
        }
        self.username = components.percentEncodedUser.flatMap { $0.removingPercentEncoding } ?? "postgres"
        self.password = components.percentEncodedPassword.flatMap { $0.removingPercentEncoding }
        let path = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        self.database = path.isEmpty ? username : path
        var sslMode = "prefer"
        for item in components.queryItems ?? [] {
            switch item.name {
            case "sslmode":
                sslMode = item.value ?? ""
                guard ["disable", "prefer", "require"].contains(sslMode) else {
                    throw StoreError(.unavailable, "sslmode=\(sslMode) is not supported; use disable, prefer or require")
                }
            default:
                throw StoreError(.unavailable, "the database URL's parameter \(item.name) is not supported (only sslmode)")
            }
        }
        self.sslMode = sslMode
    }

    var clientConfiguration: PostgresClient.Configuration {
        let tls: PostgresClient.Configuration.TLS =
            switch sslMode {
            case "disable": .disable
            case "require": .require(.makeClientConfiguration())
            default: .prefer(.makeClientConfiguration())
            }
        return PostgresClient.Configuration(
            host: host, port: port, username: username, password: password, database: database, tls: tls
        )
    }

    /// Settings for one direct connection (used to find out why the pool cannot connect).
    func connectionConfiguration(timeout: Duration) throws -> PostgresConnection.Configuration {
        let tls: PostgresConnection.Configuration.TLS =
            switch sslMode {
            case "disable": .disable
            case "require": .require(try NIOSSLContext(configuration: .makeClientConfiguration()))
            default: .prefer(try NIOSSLContext(configuration: .makeClientConfiguration()))
            }
        var configuration = PostgresConnection.Configuration(
            host: host, port: port, username: username, password: password, database: database, tls: tls
        )
        configuration.options.connectTimeout = .init(timeout)
        return configuration
    }

    /// Where the database is, without credentials (safe for logs and error messages).
    var description: String {
        let shownHost = host.contains(":") ? "[\(host)]" : host
        return "\(shownHost):\(port)/\(database)"
    }
}
