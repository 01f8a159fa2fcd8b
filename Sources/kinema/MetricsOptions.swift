import ArgumentParser
import Metrics
import Foundation
import KinemaAPI
import KinemaCore
import KinemaStore
import Prometheus

/// `--metrics-port` / `--metrics-host`: Prometheus metrics on a listener of their own, off by default.
struct MetricsOptions: ParsableArguments {
    @Option(
        name: .customLong("metrics-port"),
        help:
            "Serve GET /metrics (Prometheus text format) on this port, never on the public one (env KINEMA_METRICS_PORT; off by default; 0 picks a free port)."
    )
    var port: Int?

    @Option(name: .customLong("metrics-host"), help: "Address of the metrics listener (env KINEMA_METRICS_HOST, default 127.0.0.1).")
    var host: String?

    /// The endpoint to serve, or `nil` when metrics are off. Backs the swift-metrics facade with a Prometheus registry
    /// (once per process) and adds, at each scrape, the store's task counts by status and engine (every status of the
    /// enabled engines, zeros included, and of any other engine that has tasks).
    func endpoint(store: any TaskStore, engines: [String]) throws -> MetricsEndpoint? {
        guard let port = port ?? Env.int("KINEMA_METRICS_PORT") else { return nil }
        guard (0...65535).contains(port) else { throw CLIError("--metrics-port must be 0…65535.") }
        let registry = Self.registry
        return MetricsEndpoint(host: host ?? Env.string("KINEMA_METRICS_HOST") ?? "127.0.0.1", port: port) {
            if let counts = try? await store.countByStatusAndEngine() {
                let seen = Set(counts.map(\.engine)).union(engines)
                for engine in seen.sorted() {
                    for status in TaskStatus.allCases {
                        let count = counts.first { $0.engine == engine && $0.status == status }?.count ?? 0
                        registry.makeGauge(descriptor: Self.tasksGauge, labels: [("status", status.rawValue), ("engine", engine)])
                            .set(Double(count))
                    }
                }
            }
            return registry.emitToBuffer()
        }
    }

    static var tasksGauge: MetricNameDescriptor {
        MetricNameDescriptor(
            namespace: "kinema", metricName: "tasks", unitName: "",
            helpText: "Tasks in the store by status and engine (queue depth, running), read at each scrape.")
    }

    /// The process's registry, bootstrapped into swift-metrics on first use.
    static let registry: PrometheusCollectorRegistry = {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .milliseconds(1), .milliseconds(5), .milliseconds(25), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1),
            .seconds(2.5), .seconds(5), .seconds(10), .seconds(30), .seconds(60), .seconds(120), .seconds(300),
        ]
        factory.defaultValueHistogramBuckets = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30]
        MetricsSystem.bootstrap(factory)
        return registry
    }()
}
