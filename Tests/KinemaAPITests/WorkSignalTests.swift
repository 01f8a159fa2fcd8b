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
                    await signal.wait(timeout: .seconds(120), engine: engine)
                    woken.list.withLock { $0.append(engine) }
                }
            }
            await Self.until { signal.waiting == 2 }
            // A novita task arrives: the novita worker wakes (the motion one would not have found it).
            signal.notify(engine: "novita")
            await Self.until { !woken.list.withLock { $0 }.isEmpty }
            #expect(woken.list.withLock { $0 } == ["novita"])
            #expect(signal.waiting == 1)
            // Without an engine (a rescue): one waiter of each engine.
            signal.notify()
            await group.waitForAll()
        }
        #expect(woken.list.withLock { $0 } == ["novita", "motion"])
    }

    /// Polls `condition` (bounded at 30 s: a loaded machine may be slow to start tasks).
    static func until(_ condition: () -> Bool) async {
        let deadline = ContinuousClock.now + .seconds(30)
        while !condition(), ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(10)) }
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
