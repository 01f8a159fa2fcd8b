import Foundation
import KinemaCore
import KinemaStore
import Testing

/// Engine routing: a task goes only to a worker of its engine that honours every feature it needs, on every backend.
@Suite struct RoutingConformanceTests {
    static func enqueue(
        _ store: any TaskStore, engine: String, request: GenerationRequest = Fixtures.request(), endImage: Bool = false,
        at seconds: TimeInterval
    ) async throws -> UUID {
        let id = UUID()
        var request = request
        request.hasEndImage = endImage
        try await store.enqueue(
            NewTask(
                id: id, tenant: Fixtures.tenant, request: request, imageKey: "inputs/\(id)/image.png",
                endImageKey: endImage ? "inputs/\(id)/end_image.png" : nil, engine: engine
            ), now: Fixtures.at(seconds))
        return id
    }

    @Test(arguments: StoreBackend.allCases)
    func aWorkerClaimsOnlyTasksOfItsEngines(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            let gpu = try await Self.enqueue(store, engine: "diffusers", at: 1)
            let motion = try await Self.enqueue(store, engine: "motion", at: 2)
            let upstream = try await Self.enqueue(store, engine: "fal", at: 3)
            // The motion worker skips the older diffusers task.
            let m = try await store.claim(workerID: "m", route: .engine("motion"), leaseDuration: 30, now: Fixtures.at(4))
            #expect(m?.task.id == motion)
            #expect(m?.task.engine == "motion")
            #expect(try await store.claim(workerID: "m", route: .engine("motion"), leaseDuration: 30, now: Fixtures.at(4)) == nil)
            // A worker of two engines takes the oldest of either; an unknown engine finds nothing.
            #expect(try await store.claim(workerID: "x", route: .engine("kling"), leaseDuration: 30, now: Fixtures.at(5)) == nil)
            let both = ClaimRoute(engines: ["fal", "diffusers"])
            #expect(try await store.claim(workerID: "g", route: both, leaseDuration: 30, now: Fixtures.at(5))?.task.id == gpu)
            #expect(try await store.claim(workerID: "g", route: both, leaseDuration: 30, now: Fixtures.at(5))?.task.id == upstream)
            #expect(try await store.claim(workerID: "g", route: ClaimRoute(engines: []), leaseDuration: 30, now: Fixtures.at(6)) == nil)
            // The status view reports the engine.
            #expect(try await store.taskStatus(id: gpu, tenant: Fixtures.tenant)?.engine == "diffusers")
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func aTaskIsLeftForAWorkerThatHonoursEveryFeatureItNeeds(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            var plain = Fixtures.request()
            plain.sound = false
            var shots = plain
            shots.prompt = nil
            shots.shots = [Shot(prompt: "a", duration: 3), Shot(prompt: "b", duration: 3)]
            shots.duration = 6
            let withEnd = try await Self.enqueue(store, engine: "diffusers", request: plain, endImage: true, at: 1)
            let withShots = try await Self.enqueue(store, engine: "diffusers", request: shots, at: 2)
            let withSound = try await Self.enqueue(store, engine: "diffusers", request: Fixtures.request(), at: 3)
            let bare = try await Self.enqueue(store, engine: "diffusers", request: plain, at: 4)

            // A text+image model without last-frame conditioning, shots or sound takes only the bare task.
            let ti2v = ClaimRoute(engines: ["diffusers"], capabilities: [])
            #expect(try await store.claim(workerID: "t", route: ti2v, leaseDuration: 30, now: Fixtures.at(5))?.task.id == bare)
            #expect(try await store.claim(workerID: "t", route: ti2v, leaseDuration: 30, now: Fixtures.at(5)) == nil)
            // With shots and sound but no end image: the end-image task still waits.
            let noEnd = ClaimRoute(engines: ["diffusers"], capabilities: [.multiPrompt, .sound])
            #expect(try await store.claim(workerID: "t", route: noEnd, leaseDuration: 30, now: Fixtures.at(6))?.task.id == withShots)
            #expect(try await store.claim(workerID: "t", route: noEnd, leaseDuration: 30, now: Fixtures.at(6))?.task.id == withSound)
            #expect(try await store.claim(workerID: "t", route: noEnd, leaseDuration: 30, now: Fixtures.at(6)) == nil)
            let flf = ClaimRoute(engines: ["diffusers"], capabilities: [.endImage])
            #expect(try await store.claim(workerID: "f", route: flf, leaseDuration: 30, now: Fixtures.at(7))?.task.id == withEnd)
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func presenceTellsWhetherALiveWorkerCanRunATask(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            #expect(try await !store.hasLiveWorker(engine: "diffusers", needs: [], since: Fixtures.at(0)))
            try await store.recordWorkerPresence(
                workerID: "ti2v", route: ClaimRoute(engines: ["diffusers"], capabilities: [.multiPrompt]), now: Fixtures.at(10))
            try await store.recordWorkerPresence(workerID: "m", route: .engine("motion"), now: Fixtures.at(10))
            #expect(try await store.hasLiveWorker(engine: "diffusers", needs: [.multiPrompt], since: Fixtures.at(5)))
            #expect(try await !store.hasLiveWorker(engine: "diffusers", needs: [.sound], since: Fixtures.at(5)))
            #expect(try await !store.hasLiveWorker(engine: "fal", needs: [], since: Fixtures.at(5)))
            #expect(try await store.hasLiveWorker(engine: "motion", needs: .all, since: Fixtures.at(5)))
            // Too long ago counts as gone; a later call refreshes the same worker's row (and its capabilities).
            #expect(try await !store.hasLiveWorker(engine: "diffusers", needs: [], since: Fixtures.at(11)))
            try await store.recordWorkerPresence(
                workerID: "ti2v", route: ClaimRoute(engines: ["diffusers", "fal"], capabilities: [.sound]), now: Fixtures.at(20))
            #expect(try await store.hasLiveWorker(engine: "diffusers", needs: [.sound], since: Fixtures.at(15)))
            #expect(try await store.hasLiveWorker(engine: "fal", needs: [], since: Fixtures.at(15)))
            #expect(try await !store.hasLiveWorker(engine: "diffusers", needs: [.multiPrompt], since: Fixtures.at(15)))
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func aRequeuedTaskKeepsItsEngine(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            let id = try await Self.enqueue(store, engine: "diffusers", at: 1)
            let first = try #require(try await store.claim(workerID: "g", route: .engine("diffusers"), leaseDuration: 30, now: Fixtures.at(2)))
            #expect(try await store.fail(first.lease, reason: "GPU busy", retryable: true, now: Fixtures.at(3)))
            #expect(try await store.claim(workerID: "m", route: .engine("motion"), leaseDuration: 30, now: Fixtures.at(4)) == nil)
            #expect(try await store.claim(workerID: "g", route: .engine("diffusers"), leaseDuration: 30, now: Fixtures.at(4))?.task.id == id)
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func countsByStatusAndEngine(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            #expect(try await store.countByStatusAndEngine().isEmpty)
            for second in 0..<3 { _ = try await Self.enqueue(store, engine: "motion", at: Double(second)) }
            for second in 3..<5 { _ = try await Self.enqueue(store, engine: "diffusers", at: Double(second)) }
            let claimed = try #require(
                try await store.claim(workerID: "gpu-1", engine: "diffusers", leaseDuration: Fixtures.lease, now: Fixtures.at(6)))
            #expect(try await store.complete(claimed.lease, resultKey: "out.mp4", now: Fixtures.at(7)))
            _ = try await store.claim(workerID: "cpu-1", engine: "motion", leaseDuration: Fixtures.lease, now: Fixtures.at(8))
            let counts = Set(try await store.countByStatusAndEngine())
            #expect(
                counts == [
                    TaskCount(status: .queued, engine: "motion", count: 2), TaskCount(status: .processing, engine: "motion", count: 1),
                    TaskCount(status: .queued, engine: "diffusers", count: 1), TaskCount(status: .succeeded, engine: "diffusers", count: 1),
                ], "\(counts)")
        }
    }
}

/// The stored request schema: written once, versioned, readable across versions.
@Suite struct StoredRequestFormat {
    static let full = GenerationRequest(
        prompt: nil, negativePrompt: "zoom", duration: 8, cfgScale: 0.25, sound: true,
        shots: [Shot(prompt: "wide shot", duration: 3), Shot(prompt: "close-up, «dolly» in", duration: 5)],
        seed: 4_000_000_000, hasEndImage: false, webhookURL: "https://example.com/hook"
    )

    @Test func versionOneHasExplicitKeysAndRoundTrips() throws {
        let json = try StoredRequest.encode(Self.full)
        #expect(
            json
                == #"{"cfg_scale":0.25,"duration":8,"has_end_image":false,"negative_prompt":"zoom","prompt":null,"seed":4000000000,"shots":[{"duration":3,"prompt":"wide shot"},{"duration":5,"prompt":"close-up, «dolly» in"}],"sound":true,"v":1,"webhook_url":"https://example.com/hook"}"#
        )
        #expect(try StoredRequest.decode(json) == Self.full)
    }

    @Test func rowsOfTheFormatBeforeVersionsStillDecode() throws {
        // Copied from a database the previous release wrote (Fixtures/sqlite-schema-v3.sql).
        let rows = [
            #"{"cfgScale":0.5,"duration":8,"hasEndImage":false,"negativePrompt":"shake","seed":8,"shots":[{"duration":3,"prompt":"wide shot"},{"duration":5,"prompt":"close up, rain"}],"sound":true}"#,
            #"{"cfgScale":0.25,"duration":4,"hasEndImage":true,"prompt":"dissolve","seed":9,"sound":false,"webhookURL":"https:\/\/hooks.example\/x"}"#,
        ]
        let first = try StoredRequest.decode(rows[0])
        #expect(
            first
                == GenerationRequest(
                    prompt: nil, negativePrompt: "shake", duration: 8, cfgScale: 0.5, sound: true,
                    shots: [Shot(prompt: "wide shot", duration: 3), Shot(prompt: "close up, rain", duration: 5)], seed: 8))
        let second = try StoredRequest.decode(rows[1])
        #expect(
            second
                == GenerationRequest(
                    prompt: "dissolve", duration: 4, cfgScale: 0.25, seed: 9, hasEndImage: true, webhookURL: "https://hooks.example/x"))
    }

    @Test func aNewerVersionIsRefusedNotMisread() {
        let error = #expect(throws: StoreError.self) { try StoredRequest.decode(#"{"v":2,"prompt":"x"}"#) }
        #expect(error?.code == .corrupt)
        #expect(error?.message.contains("version 2") == true)
    }
}
