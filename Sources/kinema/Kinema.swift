import ArgumentParser
import Foundation
import Logging

/// The `kinema` command: server, workers, offline generation and key management.
@main
struct Kinema: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kinema",
        abstract: "Self-hostable image-to-video generation, wire-compatible with the hosted Kling v3.0 Standard I2V API.",
        subcommands: [
            Serve.self, Worker.self, Keys.self, WorkerTokens.self, Webhooks.self, Migrate.self, Generate.self, SoundtrackCommand.self, Bench.self,
            BenchStore.self, BenchBlobs.self, Submit.self, Status.self, Wait.self, Cancel.self, Download.self, Blobs.self,
        ]
    )

    /// Sets up logging (every logged value escaped, one event per line) before any command runs.
    static func main() async {
        let format = LogFormat.chosen()
        LoggingSystem.bootstrap { label in
            format == .json ? JSONLogHandler(label: label) as any LogHandler : EscapingLogHandler(StreamLogHandler.standardError(label: label))
        }
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            // The client commands promise exit code 2 for a usage error (ArgumentParser's own is 64).
            let clientCommands: Set<String> = ["submit", "status", "wait", "cancel", "download"]
            if let first = CommandLine.arguments.dropFirst().first, clientCommands.contains(first), exitCode(for: error) != .success {
                let message = fullMessage(for: error)
                if exitCode(for: error) == .validationFailure {
                    FileHandle.standardError.write(Data("\(message)\n".utf8))
                    Foundation.exit(2)
                }
            }
            exit(withError: error)
        }
    }
}
