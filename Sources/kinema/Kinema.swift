import ArgumentParser

/// The `kinema` command: server, workers, offline generation and key management.
@main
struct Kinema: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kinema",
        abstract: "Self-hostable image-to-video generation, wire-compatible with the hosted Kling v3.0 Standard I2V API.",
        subcommands: [Serve.self, Worker.self, Keys.self, WorkerTokens.self, Migrate.self, Generate.self, Bench.self, BenchStore.self]
    )
}
