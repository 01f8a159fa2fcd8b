import ArgumentParser
import Logging

/// The `kinema` command: server, workers, offline generation and key management.
@main
struct Kinema: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kinema",
        abstract: "Self-hostable image-to-video generation, wire-compatible with the hosted Kling v3.0 Standard I2V API.",
        subcommands: [
            Serve.self, Worker.self, Keys.self, WorkerTokens.self, Webhooks.self, Migrate.self, Generate.self, SoundtrackCommand.self, Bench.self,
            BenchStore.self,
        ]
    )

    /// Sets up logging (every logged value escaped, one event per line) before any command runs.
    static func main() async {
        LoggingSystem.bootstrap { label in EscapingLogHandler(StreamLogHandler.standardError(label: label)) }
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}
