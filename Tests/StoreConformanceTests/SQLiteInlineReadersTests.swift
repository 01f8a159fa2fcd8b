import Foundation
import GRDB
import KinemaCore
import KinemaStore
import Testing

@testable import KinemaStoreSQLite

/// Polls read SQLite on the calling thread through idle read-only connections; when none is free (or the readers
/// were closed) a read goes through the pool instead, and never waits for a connection (issue 16).
@Suite struct SQLiteInlineReadersTests {
    @Test func aReadWithNoIdleConnectionIsHandedBackAndClosedReadersFallBack() async throws {
        try await SQLiteTaskStoreTests.withFile { path in
            let store = try SQLiteTaskStore(path: path)
            let id = try await Fixtures.enqueue(store)

            // One connection: a read inside a read finds none free and returns nil at once instead of waiting.
            let readers = SQLiteInlineReaders(path: path, limit: 1)
            var inner: Int? = -1
            let outer = try readers.read { db -> Int in
                inner = try readers.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM tasks") ?? 0 }
                return try Int.fetchOne(db, sql: "SELECT count(*) FROM tasks") ?? 0
            }
            #expect(outer == 1 && inner == nil, "outer \(String(describing: outer)), inner \(String(describing: inner))")
            #expect(try readers.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM tasks") ?? 0 } == 1)
            readers.close()
            #expect(try readers.read { _ in 1 } == nil)

            // The store's own readers closed: its polls go through the pool and still see the task.
            #expect(try await store.taskStatus(id: id, tenant: Fixtures.tenant)?.id == id)
            store.inline.close()
            #expect(try await store.taskStatus(id: id, tenant: Fixtures.tenant)?.id == id)
            #expect(try await store.taskStatus(id: UUID(), tenant: Fixtures.tenant) == nil)
            try store.close()
        }
    }
}
