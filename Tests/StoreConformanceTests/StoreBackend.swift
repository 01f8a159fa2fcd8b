import Foundation
import KinemaCore
import KinemaStore
import KinemaStoreSQLite

/// Every `TaskStore` implementation the conformance suite runs against.
///
/// To add a backend (PostgreSQL), add a case and teach `makeLocation`, `StoreLocation.open` and
/// `StoreLocation.close` how to provide a fresh, private database for it; every test then runs on it too.
enum StoreBackend: String, CaseIterable, CustomStringConvertible, Sendable {
    case sqlite

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
        return try await body(location)
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

    /// Opens a new, independent store on this location's data.
    func open() throws -> any TaskStore {
        switch backend {
        case .sqlite: try SQLiteTaskStore(path: directory.appendingPathComponent("kinema.sqlite").path)
        }
    }

    /// Closes a store opened by `open()`, releasing its connections.
    func close(_ store: any TaskStore) throws {
        switch backend {
        case .sqlite: try (store as? SQLiteTaskStore)?.close()
        }
    }

    /// Removes all of this location's data.
    func destroy() {
        try? FileManager.default.removeItem(at: directory)
    }
}
