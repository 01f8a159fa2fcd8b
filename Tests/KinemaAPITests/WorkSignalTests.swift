import KinemaWorker
import Synchronization
import Testing

/// Wake-ups go to the engine whose task arrived: an idle pool of another engine is not woken in its place.
@Suite struct WorkSignalTests {
    @Test func aTaskWakesAWorkerOfItsEngineNotOneOfAnother() async throws {
        let signal = WorkSignal()
        let woken = Woken()
        await withTaskGroup(of: Void.self) { group in
            for engine in ["motion", "novita"] {
                group.addTask {
                    await signal.wait(timeout: .seconds(5), engine: engine)
                    woken.list.withLock { $0.append(engine) }
                }
            }
            // Let both wait, then a novita task arrives: only the novita worker wakes.
            try? await Task.sleep(for: .milliseconds(200))
            signal.notify(engine: "novita")
            try? await Task.sleep(for: .milliseconds(200))
            #expect(woken.list.withLock { $0 } == ["novita"])
            // Without an engine (a rescue): one waiter of each engine.
            signal.notify()
            await group.waitForAll()
        }
        #expect(woken.list.withLock { $0 } == ["novita", "motion"])
    }

    @Test func aSignalNobodyWaitsForIsKeptForItsEngineOnly() async {
        let signal = WorkSignal()
        signal.notify(engine: "kling")
        let start = ContinuousClock.now
        await signal.wait(timeout: .milliseconds(300), engine: "fal")
        #expect(ContinuousClock.now - start >= .milliseconds(250))
        let again = ContinuousClock.now
        await signal.wait(timeout: .seconds(5), engine: "kling")
        #expect(ContinuousClock.now - again < .seconds(1))
    }
}

private final class Woken: Sendable {
    let list = Mutex<[String]>([])
}
