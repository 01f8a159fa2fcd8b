import Foundation
import KinemaAPI
import KinemaStoreSQLite
import KinemaCore
import KinemaStore
import Testing
import NIOHTTP1

/// Faults around a running server: the database going away and coming back, an unwritable blob store, an engine
/// failure on one task, and a shutdown in the middle of a render. The server must stay up, answer in the
/// contract's shapes, lose nothing and fail only what really failed.
@Suite(.serialized) struct Faults {
    /// The database stops under a running API node: every request answers 503 `SERVICE_UNAVAILABLE` with
    /// `Retry-After` (never a 500, never a hang), and the node recovers by itself when the database is back.
    @Test func databaseOutageAnswers503WithRetryAfterAndRecoversWithoutRestart() async throws {
        let pg = try await PausablePostgres.start()
        let blobs = FileManager.default.temporaryDirectory.appendingPathComponent("kinema-fault-blobs-\(UUID().uuidString)")
        let server = try ServerProcess()
        defer {
            server.removeData()
            try? FileManager.default.removeItem(at: blobs)
        }
        try await server.start(["--database", pg.url, "--blob-dir", blobs.path], workers: 0)
        let key = try #require(server.devKey)
        let base = server.baseURL
        let png = try await Fixtures.image(width: 640, height: 360, format: "png").base64EncodedString()
        let queued = try await HTTP.submit(base, key: key, json: ["image": png, "prompt": "zoom in", "duration": 3])
        #expect(queued.status == 200, "\(queued.text)")
        let id = try #require(queued.json["task_id"] as? String)

        try await pg.stop()
        // Whatever a request needs first (key lookup, task read, insert), the answer is the same. Sent at once:
        // each waits for the store's connection timeout (10 s) before it answers.
        let outage = try await withThrowingTaskGroup(of: (String, HTTPResult).self) { group in
            for _ in 0..<2 {
                group.addTask { ("task-result", try await HTTP.result(base, key: key, id: id)) }
                group.addTask { ("submit", try await HTTP.submit(base, key: key, json: ["image": png, "prompt": "pan left", "duration": 3])) }
                group.addTask { ("readyz", try await HTTP.get(base + "/readyz")) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(outage.count == 6)
        for (what, r) in outage {
            #expect(r.status == 503, "\(what): \(r.status) \(r.text)")
            #expect(r.json["reason"] as? String == "SERVICE_UNAVAILABLE", "\(what): \(r.text)")
            #expect(r.json["code"] as? Int == 503, "\(what): \(r.text)")
            #expect(Int(r.headers.first(name: "Retry-After") ?? "").map { $0 > 0 } == true, "\(what): no Retry-After")
        }
        #expect(try await HTTP.get(base + "/healthz").status == 200)

        try await pg.resume()
        // Same process: the pool reconnects on its own (bounded wait, polled).
        let deadline = ContinuousClock.now + .seconds(60)
        var recovered: HTTPResult?
        while ContinuousClock.now < deadline {
            let r = try await HTTP.result(base, key: key, id: id)
            if r.status == 200 { recovered = r; break }
            #expect(r.status == 503, "while reconnecting: \(r.status) \(r.text)")
            try await Task.sleep(for: .milliseconds(250))
        }
        let result = try #require(recovered, "the node did not recover within 60 s of the database coming back")
        #expect((result.json["task"] as? [String: Any])?["status"] as? String == "TASK_STATUS_QUEUED")
        let again = try await HTTP.submit(base, key: key, json: ["image": png, "prompt": "pan left", "duration": 3])
        #expect(again.status == 200, "\(again.text)")
        #expect(try await HTTP.get(base + "/readyz").status == 200)
        // Refused submits stored nothing: exactly the two accepted tasks exist.
        let count = try await pg.query("SELECT count(*) FROM tasks")
        #expect(count == "2")

        await server.terminate()
        await pg.remove()
    }

    /// The blob store refuses the result (its results directory replaced by a file, which stops writes even
    /// for root): the task is retried, then fails with a reason that says so; the server keeps serving, and
    /// once the store is writable again the next task succeeds.
    @Test func unwritableBlobStoreFailsTheTaskWithAReasonAndTheServerKeepsServing() async throws {
        let server = try ServerProcess()
        defer { server.removeData() }
        try await server.start(["--max-attempts", "2"], workers: 1)
        let key = try #require(server.devKey)
        let base = server.baseURL
        let results = server.dataDir.appendingPathComponent("blobs/results")
        try? FileManager.default.removeItem(at: results)
        try Data("not a directory".utf8).write(to: results)

        let png = try await Fixtures.image(width: 640, height: 360, format: "png").base64EncodedString()
        let submit = try await HTTP.submit(base, key: key, json: ["image": png, "prompt": "zoom in", "duration": 3])
        #expect(submit.status == 200, "\(submit.text)")
        let id = try #require(submit.json["task_id"] as? String)
        let failed = try await HTTP.waitForTerminal(base, key: key, id: id)
        let task = try #require(failed["task"] as? [String: Any])
        #expect(task["status"] as? String == "TASK_STATUS_FAILED", "\(failed)")
        #expect((task["reason"] as? String ?? "").contains("could not be stored"), "\(failed)")
        #expect((failed["videos"] as? [Any])?.isEmpty == true)
        let attempts = try await DataDirectory(server.dataDir).openStore().attempts(of: try #require(UUID(uuidString: id)))
        #expect(attempts.count == 2, "the failure is retryable, so both attempts ran: \(attempts)")

        #expect(try await HTTP.get(base + "/healthz").status == 200)
        #expect(try await HTTP.get(base + "/readyz").status == 200)
        try FileManager.default.removeItem(at: results)
        let next = try await HTTP.submit(base, key: key, json: ["image": png, "prompt": "pan right", "duration": 3])
        let nextID = try #require(next.json["task_id"] as? String, "\(next.text)")
        let done = try await HTTP.waitForTerminal(base, key: key, id: nextID)
        #expect((done["task"] as? [String: Any])?["status"] as? String == "TASK_STATUS_SUCCEED", "\(done)")
        await server.terminate()
    }

    /// A really full disk: tiny tmpfs filesystems (one page each) mounted over the blob store's folders. A result
    /// that does not fit fails its attempts with a reason that says the storage is full; a submit whose input
    /// does not fit answers 503 `SERVICE_UNAVAILABLE` with Retry-After and stores nothing; the server keeps
    /// serving, and once space is back the next task succeeds. Needs root (mount): CI runs as root, so there a
    /// machine that cannot mount fails the test; elsewhere the skip is printed where it cannot be missed.
    @Test func fullDiskFailsResultsAndRefusesSubmitsWithoutLosingTheServer() async throws {
        guard TinyDisk.available else {
            let why = "the full-disk test needs to mount a tmpfs (root); this run cannot"
            if ProcessInfo.processInfo.environment["CI"] == "true" {
                Issue.record("\(why), and in CI (root) it must run")
            } else {
                print("\n*** SKIPPED: \(why) — Faults.fullDiskFailsResultsAndRefusesSubmitsWithoutLosingTheServer did not run ***\n")
            }
            return
        }
        let server = try ServerProcess()
        let blobs = server.dataDir.appendingPathComponent("blobs")
        let results = blobs.appendingPathComponent("results"), inputs = blobs.appendingPathComponent("inputs")
        try FileManager.default.createDirectory(at: results, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: inputs, withIntermediateDirectories: true)
        try await TinyDisk.mount(at: results)
        var mounted = [results]
        defer {
            for m in mounted { TinyDisk.unmountNow(m) }
            server.removeData()
        }
        try await server.start(["--max-attempts", "2"], workers: 1)
        let key = try #require(server.devKey)
        let base = server.baseURL
        let png = try await Fixtures.image(width: 640, height: 360, format: "png").base64EncodedString()

        let submit = try await HTTP.submit(base, key: key, json: ["image": png, "prompt": "zoom in", "duration": 3])
        let id = try #require(submit.json["task_id"] as? String, "\(submit.text)")
        let failed = try await HTTP.waitForTerminal(base, key: key, id: id)
        let task = try #require(failed["task"] as? [String: Any])
        #expect(task["status"] as? String == "TASK_STATUS_FAILED", "\(failed)")
        #expect((task["reason"] as? String ?? "").contains("storage is full"), "\(failed)")
        let attempts = try await DataDirectory(server.dataDir).openStore().attempts(of: try #require(UUID(uuidString: id)))
        #expect(attempts.count == 2, "a full disk is retryable, so both attempts ran: \(attempts)")
        // Nothing half-written is left on the full filesystem.
        #expect(ServerProcess.files(under: results).isEmpty)

        try await TinyDisk.mount(at: inputs)
        mounted.append(inputs)
        let refused = try await HTTP.submit(base, key: key, json: ["image": png, "prompt": "pan left", "duration": 3])
        #expect(refused.status == 503, "\(refused.text)")
        #expect(refused.json["reason"] as? String == "SERVICE_UNAVAILABLE", "\(refused.text)")
        #expect((refused.json["message"] as? String ?? "").contains("storage is full"), "\(refused.text)")
        #expect(refused.headers.first(name: "Retry-After") == "30")
        #expect(ServerProcess.files(under: inputs).isEmpty, "the refused input left files behind")
        #expect(try await HTTP.get(base + "/healthz").status == 200)
        #expect(try await HTTP.get(base + "/readyz").status == 200)

        for m in mounted { TinyDisk.unmountNow(m) }
        mounted = []
        let next = try await HTTP.submit(base, key: key, json: ["image": png, "prompt": "pan right", "duration": 3])
        let nextID = try #require(next.json["task_id"] as? String, "\(next.text)")
        let done = try await HTTP.waitForTerminal(base, key: key, id: nextID)
        #expect((done["task"] as? [String: Any])?["status"] as? String == "TASK_STATUS_SUCCEED", "\(done)")
        await server.terminate()
    }

    /// The engine fails on one task (its stored input was corrupted after it was accepted, so the worker's decode
    /// fails): that task is FAILED with a reason, and the same worker goes on to render the next task.
    @Test func engineErrorFailsOnlyThatTaskAndTheWorkerKeepsWorking() async throws {
        let server = try ServerProcess()
        defer { server.removeData() }
        try await server.start(workers: 0)
        let key = try #require(server.devKey)
        let pngData = try await Fixtures.image(width: 640, height: 360, format: "png")
        let png = pngData.base64EncodedString()
        let submit = try await HTTP.submit(server.baseURL, key: key, json: ["image": png, "prompt": "zoom in", "duration": 3])
        let badID = try #require(submit.json["task_id"] as? String, "\(submit.text)")
        await server.terminate()

        // Header intact, pixel data gone: only a full decode notices.
        let input = server.dataDir.appendingPathComponent("blobs/inputs/\(badID.prefix(2))/\(badID).png")
        #expect(FileManager.default.fileExists(atPath: input.path))
        try pngData.prefix(80).write(to: input)

        try await server.start(workers: 1)
        let failed = try await HTTP.waitForTerminal(server.baseURL, key: key, id: badID)
        let task = try #require(failed["task"] as? [String: Any])
        #expect(task["status"] as? String == "TASK_STATUS_FAILED", "\(failed)")
        #expect((task["reason"] as? String ?? "").contains("decode"), "\(failed)")
        #expect((failed["videos"] as? [Any])?.isEmpty == true)

        let good = try await HTTP.submit(server.baseURL, key: key, json: ["image": png, "prompt": "pan right", "duration": 3])
        let goodID = try #require(good.json["task_id"] as? String, "\(good.text)")
        let done = try await HTTP.waitForTerminal(server.baseURL, key: key, id: goodID)
        #expect((done["task"] as? [String: Any])?["status"] as? String == "TASK_STATUS_SUCCEED", "\(done)")
        await server.terminate()
    }

    /// SIGTERM while a render runs and the grace period is shorter than the render: the lease is released, the
    /// task goes back to the queue (never FAILED), and the restarted server renders it exactly once.
    @Test func shutdownMidRenderReleasesTheTaskAndTheRestartRendersItOnce() async throws {
        let server = try ServerProcess()
        defer { server.removeData() }
        try await server.start(["--shutdown-grace", "0"], workers: 1)
        let key = try #require(server.devKey)
        let png = try await Fixtures.image(width: 1280, height: 720, format: "png").base64EncodedString()
        let submit = try await HTTP.submit(server.baseURL, key: key, json: ["image": png, "prompt": "slow push in, rain", "duration": 15])
        let id = try #require(submit.json["task_id"] as? String, "\(submit.text)")
        let deadline = ContinuousClock.now + .seconds(30)
        var processing = false
        while ContinuousClock.now < deadline, !processing {
            let r = try await HTTP.result(server.baseURL, key: key, id: id)
            processing = (r.json["task"] as? [String: Any])?["status"] as? String == "TASK_STATUS_PROCESSING"
            if !processing { try await Task.sleep(for: .milliseconds(20)) }
        }
        try #require(processing, "the render never started")

        #expect(await server.terminate() == 0)
        let counts = try await DataDirectory(server.dataDir).openStore().countByStatus()
        #expect(counts[.failed, default: 0] == 0, "\(counts)")
        #expect(counts[.queued, default: 0] + counts[.succeeded, default: 0] == 1, "\(counts)")

        try await server.start(workers: 1)
        let done = try await HTTP.waitForTerminal(server.baseURL, key: key, id: id)
        #expect((done["task"] as? [String: Any])?["status"] as? String == "TASK_STATUS_SUCCEED", "\(done)")
        let files = server.storedResults(of: id)
        #expect(files.filter { $0.hasSuffix(".mp4") }.count == 1, "\(files)")
        await server.terminate()
    }
}

/// A throwaway PostgreSQL (scripts/test-postgres) that can be stopped and started again on the same port and data.
struct PausablePostgres {
    static let script = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("scripts/test-postgres")

    /// The cluster's directory (data, socket and log inside).
    let directory: URL
    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    let url: String

    var port: String { String(url.split(separator: ":").last?.split(separator: "/").first ?? "") }

    static func start() async throws -> PausablePostgres {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kinema-fault-pg-\(UUID().uuidString)")
        let started = try await Tools.run("bash", [script.path, "start", dir.path, "--owner-pid", String(getpid())])
        guard started.status == 0, let url = started.output.split(separator: "\n").last(where: { $0.hasPrefix("postgres://") }) else {
            throw TestFailure("scripts/test-postgres start failed: \(started.output)")
        }
        return PausablePostgres(directory: dir, url: String(url))
    }

    /// pg_ctl as the cluster's owner (the `postgres` user when we are root), with the options test-postgres uses.
    private func pgctl(_ action: String) async throws {
        let shell = #"""
            set -eu
            # The server outlives this shell: it must not keep our caller's pipes open.
            for fd in /proc/$$/fd/*; do fd=${fd##*/}; if [ "$fd" -gt 2 ] 2>/dev/null; then eval "exec $fd>&-" 2>/dev/null || true; fi; done
            bindir="${PG_BINDIR:-$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)}"
            as_owner() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
            if [ "$1" = stop ]; then
              as_owner "$bindir/pg_ctl" -D "$2/data" -m fast -w stop
            else
              as_owner "$bindir/pg_ctl" -D "$2/data" -l "$2/server.log" -w -t 60 \
                -o "-c listen_addresses=127.0.0.1 -p $3 -k $2 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
                start </dev/null
            fi
            """#
        let r = try await Tools.run("bash", ["-c", shell, "pgctl", action, directory.path, port])
        guard r.status == 0 else { throw TestFailure("pg_ctl \(action) failed: \(r.output)") }
    }

    func stop() async throws { try await pgctl("stop") }
    func resume() async throws { try await pgctl("start") }

    /// The first column of the first row of a query, through psql.
    func query(_ sql: String) async throws -> String {
        let r = try await Tools.run("psql", [url, "-X", "-q", "-A", "-t", "-c", sql])
        guard r.status == 0 else { throw TestFailure("psql failed on \(sql): \(r.output)") }
        return r.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func remove() async {
        _ = try? await Tools.run("bash", [Self.script.path, "stop", directory.path])
    }
}
