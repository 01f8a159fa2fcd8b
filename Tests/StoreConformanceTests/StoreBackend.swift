import Foundation
import KinemaCore
import KinemaStore
import KinemaStorePostgres
import KinemaStoreSQLite

/// Every `TaskStore` implementation the conformance suite runs against.
///
/// To add a backend, add a case and teach `makeLocation`, `StoreLocation.open` and
/// `StoreLocation.close` how to provide a fresh, private database for it; every test then runs on it too.
/// PostgreSQL cases run against one server per test process (`PostgresTestServer`), a new database each.
enum StoreBackend: String, CaseIterable, CustomStringConvertible, Sendable {
    case sqlite
    case postgres

    var description: String { rawValue }

    /// A fresh, empty place for one test's data.
    func makeLocation() throws -> StoreLocation {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("kinema-store-tests-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return StoreLocation(backend: self, directory: directory)
    }

    /// Runs `body` with a location that is removed afterwards, whatever happens.
    func withLocation<T>(_ body: (StoreLocation) async throws -> T) async throws -> T {
        let location = try makeLocation()
        defer { location.destroy() }
        try await location.create()
        do {
            let result = try await body(location)
            try await location.drop()
            return result
        } catch {
            try? await location.drop()
            throw error
        }
    }

    /// Runs `body` with one freshly opened, empty store.
    func withStore<T>(_ body: (any TaskStore) async throws -> T) async throws -> T {
        try await withLocation { location in
            let store = try location.open()
            defer { try? location.close(store) }
            return try await body(store)
        }
    }
}

/// Where one test's data lives. Each `open()` is an independent connection, as another process would have.
struct StoreLocation: Sendable {
    let backend: StoreBackend
    let directory: URL
    /// The PostgreSQL database of this location (unused by SQLite).
    let database = PostgresTestServer.newDatabaseName()

    /// Creates the location's empty, migrated database where the backend needs one made up front.
    func create() async throws {
        switch backend {
        case .sqlite: break
        case .postgres: try await PostgresTestServer.createDatabase(database)
        }
    }

    /// Drops what `create()` made.
    func drop() async throws {
        switch backend {
        case .sqlite: break
        case .postgres: try await PostgresTestServer.dropDatabase(database)
        }
    }

    /// Opens a new, independent store on this location's data.
    func open() throws -> any TaskStore {
        switch backend {
        case .sqlite: try SQLiteTaskStore(path: directory.appendingPathComponent("kinema.sqlite").path)
        case .postgres: try PostgresTestServer.open(database: database)
        }
    }

    /// Closes a store opened by `open()`, releasing its connections.
    func close(_ store: any TaskStore) throws {
        switch backend {
        case .sqlite: try (store as? SQLiteTaskStore)?.close()
        case .postgres: (store as? PostgresTaskStore).map(PostgresTestServer.close)
        }
    }

    /// Removes all of this location's data.
    func destroy() {
        try? FileManager.default.removeItem(at: directory)
    }
}
