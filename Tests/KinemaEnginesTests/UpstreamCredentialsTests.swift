import Foundation
import Logging
import Testing

@testable import KinemaEngines

/// Upstream secrets come from the environment or a private file, and a provider without them refuses to start.
@Suite struct UpstreamCredentialsTests {
    static func file(_ text: String, mode: mode_t) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("creds-\(UUID().uuidString)").path
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        chmod(path, mode)
        return path
    }

    @Test func aPrivateFileIsReadAndTheEnvironmentWins() throws {
        let path = try Self.file(
            "# providers\nexport KINEMA_KLING_ACCESS_KEY=ak\nKINEMA_KLING_SECRET_KEY = \"s k\"\n\nKINEMA_FAL_KEY='from-file'\n", mode: 0o600)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let credentials = try UpstreamCredentials.load(environment: ["KINEMA_FAL_KEY": "from-env", "PATH": "/bin"], file: path)
        #expect(credentials.klingAccessKey == "ak")
        #expect(credentials.klingSecretKey == "s k")
        #expect(credentials.falKey == "from-env")
        #expect(credentials.novitaAPIKey == nil)
    }

    @Test func aFileOthersCanReadIsRefused() throws {
        for mode: mode_t in [0o644, 0o640, 0o604] {
            let path = try Self.file("KINEMA_FAL_KEY=x\n", mode: mode)
            defer { try? FileManager.default.removeItem(atPath: path) }
            #expect(throws: UpstreamConfigurationError.self) { try UpstreamCredentials.load(environment: [:], file: path) }
        }
        let garbled = try Self.file("KINEMA_FAL_KEY\n", mode: 0o600)
        defer { try? FileManager.default.removeItem(atPath: garbled) }
        #expect(throws: UpstreamConfigurationError.self) { try UpstreamCredentials.load(environment: [:], file: garbled) }
    }

    @Test func anEnabledProviderWithoutItsKeysRefusesToStartNamingThem() throws {
        do {
            _ = try UpstreamGateway(
                enabled: ["kling"], configuration: UpstreamConfiguration(), credentials: UpstreamCredentials(klingAccessKey: "only-half"),
                connectionsPerHost: 1, logger: .init(label: "test"))
            Issue.record("kling started without a secret key")
        } catch let error as UpstreamConfigurationError {
            #expect(error.description.contains("KINEMA_KLING_SECRET_KEY"))
            #expect(!error.description.contains("only-half"))
        }
        #expect(throws: UpstreamConfigurationError.self) {
            var configuration = UpstreamConfiguration()
            configuration.falURL = "ftp://queue"
            _ = try UpstreamGateway(
                enabled: ["fal"], configuration: configuration, credentials: UpstreamCredentials(falKey: "k"), connectionsPerHost: 1,
                logger: .init(label: "test"))
        }
    }
}
