import Foundation
import KinemaCore
import KinemaStore
import Testing

/// `tasks(tenant:limit:after:)` on every backend: the tenant's tasks newest first, paged by cursor without gaps or
/// repeats (ties in submit time broken by id), nobody else's.
@Suite struct TaskListConformanceTests {
    @Test(arguments: StoreBackend.allCases)
    func pagesWalkTheTenantsTasksNewestFirstWithoutGapsOrRepeats(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            var mine: [(UUID, TimeInterval)] = []
            for t in [0, 1, 1, 1, 2, 3] as [TimeInterval] {
                mine.append((try await Fixtures.enqueue(store, at: t), t))
                try await Fixtures.enqueue(store, at: t, tenant: "someone-else")
            }
            var seen: [TaskStatusRecord] = []
            var cursor: TaskPageCursor?
            for _ in 0..<10 {
                let page = try await store.tasks(tenant: Fixtures.tenant, limit: 4, after: cursor)
                seen += page
                guard page.count == 4, let last = page.last else { break }
                cursor = TaskPageCursor(after: last)
                #expect(TaskPageCursor(text: cursor!.text) == cursor)
            }
            #expect(seen.count == mine.count)
            #expect(Set(seen.map(\.id)) == Set(mine.map(\.0)))
            #expect(seen.map(\.createdAt) == seen.map(\.createdAt).sorted(by: >), "newest first")
            #expect(try await store.tasks(tenant: "nobody", limit: 10, after: nil).isEmpty)
            #expect(try await store.tasks(tenant: Fixtures.tenant, limit: 10, after: TaskPageCursor(after: seen.last!)).isEmpty)
        }
    }

    @Test func cursorsReadOnlyWhatTheyWrote() {
        let cursor = TaskPageCursor(createdAt: Fixtures.at(1.5), id: UUID())
        #expect(TaskPageCursor(text: cursor.text) == cursor)
        for bad in ["", "-", "12", "abc-\(UUID())", "-5-\(UUID())", "12-nope"] { #expect(TaskPageCursor(text: bad) == nil, "\(bad)") }
    }
}
