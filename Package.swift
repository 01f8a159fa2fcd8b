// swift-tools-version:6.1
// Kinema: a self-hostable image-to-video service, wire-compatible with the hosted Kling v3.0 Standard I2V API.
import PackageDescription

// MemberImportVisibility: a file sees only the members of modules it imports itself, so every target's imports,
// and therefore this file's dependency lists, say exactly what it uses (scripts/check-dependencies compares them).
let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]
let testSettings: [SwiftSetting] = [.enableUpcomingFeature("MemberImportVisibility")]

let package = Package(
    name: "kinema",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "kinema", targets: ["kinema"]),
        // A typed client of the public API, for servers and apps: wire types and AsyncHTTPClient only.
        .library(name: "KinemaClient", targets: ["KinemaClient"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        // Already in the graph through Hummingbird; named so KinemaAPI's connection guard can use their types directly.
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        // Metrics: modules record through the swift-metrics facade; the CLI backs it with Prometheus (--metrics-port).
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    ],
    targets: [
        // Domain: validation, requests, task states, engine protocol. Foundation only.
        .target(name: "KinemaCore", swiftSettings: strict),
        // Wire DTOs exactly as the contract's JSON.
        .target(name: "KinemaAPIModels", dependencies: ["KinemaCore"], swiftSettings: strict),
        // TaskStore protocol, records, stored formats, blob store; implementations live in their own targets.
        .target(
            name: "KinemaStore", dependencies: ["KinemaCore", .product(name: "Metrics", package: "swift-metrics")], swiftSettings: strict),
        // The embedded store (SQLite through GRDB) and the embedded node's data directory.
        .target(
            name: "KinemaStoreSQLite",
            dependencies: ["KinemaStore", "KinemaCore", .product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: strict
        ),
        // The shared store for scale-out mode (PostgresNIO); PostgresNIO types stay inside it.
        .target(
            name: "KinemaStorePostgres",
            dependencies: [
                "KinemaStore", "KinemaCore",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        // FFmpeg's libraries (Debian's libav*-dev) through one shim header.
        .systemLibrary(
            name: "CFFmpeg",
            pkgConfig: "libavformat libavcodec libavutil libswscale libswresample",
            providers: [.apt(["libavformat-dev", "libavcodec-dev", "libavutil-dev", "libswscale-dev", "libswresample-dev"])]
        ),
        // libdeflate (Debian's libdeflate-dev): fast zlib inflate and CRC-32 for verifying PNG uploads.
        .systemLibrary(name: "CDeflate", pkgConfig: "libdeflate", providers: [.apt(["libdeflate-dev"])]),
        .target(name: "KinemaMedia", dependencies: ["CFFmpeg", "CDeflate", "KinemaCore"], swiftSettings: strict),
        // The built-in motion engine (soundtrack under Soundtrack/).
        .target(name: "KinemaMotion", dependencies: ["KinemaMedia", "KinemaCore"], swiftSettings: strict),
        // Where engines are registered and their errors classified: every engine a worker can run comes from here.
        // Upstream/: hosted providers (Novita, Kling, fal) behind the durable gateway, over AsyncHTTPClient.
        .target(
            name: "KinemaEngines",
            dependencies: [
                "KinemaCore", "KinemaMedia", "KinemaMotion", "KinemaFetch",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // Safe fetching of user-supplied image URLs (address rules, redirects, byte and time caps).
        .target(
            name: "KinemaFetch",
            dependencies: [
                "KinemaCore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        // Claim / heartbeat / complete, the worker pool and process, the remote worker protocol's client side.
        // No HTTP server: a worker-only process links no Hummingbird.
        .target(
            name: "KinemaWorker",
            dependencies: [
                "KinemaCore", "KinemaStore", "KinemaAPIModels",
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        // Routes, controllers, auth, error mapping. Imports no engine and no media module (images are verified
        // through the `ImageVerifier` it is given).
        .target(
            name: "KinemaAPI",
            dependencies: [
                "KinemaCore", "KinemaAPIModels", "KinemaStore", "KinemaFetch", "KinemaWorker",
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                // The HTTP pipeline's own handlers (connection guard, parser errors in the contract's shape).
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationEssentialsCompat", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            swiftSettings: strict
        ),
        // The client library: the public API's operations over the wire types (KinemaAPIModels), nothing of the server.
        .target(
            name: "KinemaClient",
            dependencies: [
                "KinemaAPIModels",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        // Blobs in S3-compatible object storage: SigV4 and a small S3 client on AsyncHTTPClient, and S3BlobStore.
        .target(
            name: "KinemaS3",
            dependencies: [
                "KinemaCore", "KinemaStore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        // The CLI and composition root: opens stores, picks engines, wires the server or a worker.
        .executableTarget(
            name: "kinema",
            dependencies: [
                "KinemaAPI", "KinemaCore", "KinemaStore", "KinemaStoreSQLite", "KinemaStorePostgres", "KinemaFetch",
                "KinemaMedia", "KinemaMotion", "KinemaEngines", "KinemaWorker", "KinemaClient", "KinemaAPIModels", "KinemaS3",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strict
        ),
        // The framework's floor for `make bench` (issue 16): bare Hummingbird answering Kinema's hot routes with constant
        // bodies; in this package so that it links the very Hummingbird version Kinema does.
        .executableTarget(
            name: "kinema-floor",
            dependencies: [.product(name: "Hummingbird", package: "hummingbird"), .product(name: "Logging", package: "swift-log")],
            path: "Benchmarks/FloorApp", swiftSettings: strict
        ),

        // Helpers the test targets share (seeded generator, child processes, EXIF builder, heap perturbation).
        .target(name: "KinemaTestSupport", path: "Tests/Support", swiftSettings: strict),
        .testTarget(name: "KinemaCoreTests", dependencies: ["KinemaCore", "KinemaAPIModels", "KinemaTestSupport"], swiftSettings: testSettings),
        .testTarget(
            name: "KinemaMediaTests", dependencies: ["KinemaMedia", "KinemaCore", "CDeflate", "KinemaTestSupport"], swiftSettings: testSettings),
        .testTarget(
            name: "KinemaMotionTests", dependencies: ["KinemaMotion", "KinemaMedia", "KinemaCore", "KinemaTestSupport"], swiftSettings: testSettings),
        .testTarget(
            name: "KinemaEnginesTests",
            dependencies: ["KinemaEngines", "KinemaCore", .product(name: "Logging", package: "swift-log")],
            swiftSettings: testSettings
        ),
        // Fixtures/: a database written by an earlier release, read by path (#filePath) in the upgrade test.
        .testTarget(
            name: "StoreConformanceTests",
            dependencies: [
                "KinemaStore", "KinemaStoreSQLite", "KinemaStorePostgres", "KinemaCore", "KinemaTestSupport",
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            exclude: ["Fixtures"], swiftSettings: testSettings
        ),
        // Vectors/: AWS's SigV4 test suite (as botocore ships it), read by path (#filePath).
        .testTarget(
            name: "KinemaS3Tests",
            dependencies: [
                "KinemaS3", "KinemaStore", "KinemaCore", "KinemaTestSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            exclude: ["Vectors"], swiftSettings: testSettings
        ),
        .testTarget(
            name: "KinemaFetchTests",
            dependencies: [
                "KinemaFetch", "KinemaCore", "KinemaTestSupport",
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: testSettings
        ),
        // The API in process (router tests: no sockets, no subprocess).
        .testTarget(
            name: "KinemaAPITests",
            dependencies: [
                "KinemaAPI", "KinemaAPIModels", "KinemaCore", "KinemaStore", "KinemaStoreSQLite", "KinemaWorker",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: testSettings
        ),
        .testTarget(
            name: "EndToEndTests",
            dependencies: [
                "KinemaAPI", "KinemaAPIModels", "KinemaClient", "KinemaCore", "KinemaStore", "KinemaStoreSQLite", "KinemaEngines",
                "KinemaTestSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationEssentialsCompat", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: testSettings
        ),
    ]
)
