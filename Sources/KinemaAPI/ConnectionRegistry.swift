import Synchronization

/// Every open HTTP connection of a node, with the caps on how many there may be: in all and per client address.
///
/// Idle connections give way to new ones: when a cap is reached, the connection that has been idle longest is
/// closed to make room (a connection is idle from when it opened or finished its last response until a complete
/// request head arrives, so keep-alive connections, silent ones and ones still trickling a head all count; silent
/// ones go before ones that have started a head, so a client whose head is on its way is the last to lose). Only
/// when every connection of the cap is mid-request does a newcomer wait: the server stops accepting (new
/// connections wait in the listen backlog) until one finishes its request, which then gives its keep-alive up for
/// the newcomer, or closes.
///
/// All decisions happen under one lock, so concurrent accepts on several event loops cannot both take the last
/// slot; the actions (closing a connection) are returned and run by the caller after the lock is released (a close
/// on the caller's own event loop re-enters `remove` at once).
public final class ConnectionRegistry: Sendable {
    /// What a connection can be told from outside its event loop: to close.
    public typealias Close = @Sendable () -> Void

    /// The decision on a newly accepted connection.
    public enum Admission: Sendable {
        /// Serve it (after closing `evicting`, idle connections that make room for it).
        case admitted(id: UInt64, evicting: [Close])
        /// Close it at once: its client is at its cap with every connection mid-request (or the node is full and the
        /// connection slipped in with a burst of accepts); `evicting` were chosen before that was known and close too.
        case refused(evicting: [Close])
    }

    /// One open connection.
    private struct Entry {
        /// The client's address.
        let client: String
        /// Closes the connection.
        let close: Close
        /// When it last became idle (an increasing counter, not a time); `nil` while mid-request.
        var idleSince: UInt64?
        /// Bytes of a request head arrived since it became idle.
        var headStarted = false
    }

    /// Everything behind the lock.
    private struct State {
        /// Registered connections by id.
        var entries: [UInt64: Entry] = [:]
        /// Registered connections per client address.
        var perClient: [String: Int] = [:]
        /// The next connection id.
        var nextID: UInt64 = 1
        /// Orders idle periods (a counter, so no clock is needed).
        var tick: UInt64 = 1
        /// Set when the accept loop was told to wait: the next connection to become idle closes instead.
        var acceptWaiting = false
        /// Connections accepted and not yet closed, counted by the accept loop itself (a connection registers from
        /// its own event loop a moment later, so `entries` lags behind).
        var accepted = 0
    }

    /// Most connections open at once.
    public let maxConnections: Int
    /// Most connections open at once from one client address.
    public let maxPerClient: Int
    /// The registry's state.
    private let state = Mutex(State())
    /// Asks the accept loop to decide again (set once the server runs).
    private let waker = Mutex<Close?>(nil)

    /// A registry for at most `maxConnections` connections, at most `maxPerClient` of them from one address.
    public init(maxConnections: Int, maxPerClient: Int) {
        self.maxConnections = max(1, maxConnections)
        self.maxPerClient = max(1, maxPerClient)
    }

    /// Connections open now.
    public var count: Int { state.withLock { $0.entries.count } }

    /// Connections open now from `client`.
    public func count(from client: String) -> Int { state.withLock { $0.perClient[client] ?? 0 } }

    /// Admits a newly accepted connection from `client` (idle, as it has sent no request yet), making room by evicting
    /// the longest-idle connection of the client (at its cap) or of the node (at the node's cap) when needed.
    public func admit(client: String, close: @escaping Close) -> Admission {
        state.withLock { state in
            var evicting: [Close] = []
            if state.perClient[client, default: 0] >= maxPerClient {
                guard let victim = Self.longestIdle(in: state, from: client) else { return .refused(evicting: []) }
                evicting.append(Self.remove(victim, from: &state))
            }
            if state.entries.count >= maxConnections {
                // Only a burst of accepts that raced the cap gets here without a victim.
                guard let victim = Self.longestIdle(in: state, from: nil) else { return .refused(evicting: evicting) }
                evicting.append(Self.remove(victim, from: &state))
            }
            let id = state.nextID
            state.nextID += 1
            state.entries[id] = Entry(client: client, close: close, idleSince: state.tick)
            state.tick += 1
            state.perClient[client, default: 0] += 1
            return .admitted(id: id, evicting: evicting)
        }
    }

    /// The first bytes of a request head arrived: the connection goes after the silent ones when room is needed.
    public func markHeadStarted(_ id: UInt64) {
        state.withLock { $0.entries[id]?.headStarted = true }
    }

    /// The connection received a complete request head: it is mid-request and no longer evictable.
    public func markBusy(_ id: UInt64) {
        state.withLock { state in
            state.entries[id]?.idleSince = nil
            state.entries[id]?.headStarted = false
        }
    }

    /// The connection finished its response and waits for the next request. Returns `true` when it should close
    /// instead because a newcomer is waiting for a slot (its keep-alive gives way).
    public func markIdle(_ id: UInt64) -> Bool {
        state.withLock { state in
            guard state.entries[id] != nil else { return false }
            if state.acceptWaiting {
                state.acceptWaiting = false
                return true
            }
            state.entries[id]?.idleSince = state.tick
            state.tick += 1
            return false
        }
    }

    /// The connection is closing on its own (after an error answer): it goes first when room is needed.
    public func markClosing(_ id: UInt64) {
        state.withLock { state in
            state.entries[id]?.idleSince = 0
            state.entries[id]?.headStarted = false
        }
    }

    /// The connection closed.
    public func remove(_ id: UInt64) {
        state.withLock { state in
            guard let entry = state.entries.removeValue(forKey: id) else { return }
            Self.decrement(entry.client, in: &state)
        }
    }

    /// Sets how to make the accept loop decide again: it only asks by itself when a connection closes, so a
    /// connection that becomes evictable while the loop waits must wake it.
    public func setAcceptLoopWaker(_ wake: @escaping Close) {
        waker.withLock { $0 = wake }
    }

    /// Wakes the accept loop when it waits and an idle connection could now make room (after `admit`).
    public func wakeAcceptLoopIfWaiting() {
        let waiting = state.withLock { state in
            state.acceptWaiting && state.entries.values.contains(where: { $0.idleSince != nil })
        }
        if waiting, let wake = waker.withLock({ $0 }) { wake() }
    }

    /// The accept loop accepted a connection.
    public func accepted() {
        state.withLock { $0.accepted += 1 }
    }

    /// A connection the accept loop accepted has closed.
    public func acceptedClosed() {
        state.withLock { $0.accepted = max(0, $0.accepted - 1) }
    }

    /// Whether the accept loop should accept another connection now: there is a free slot or an idle connection to
    /// evict. When not, the next connection to finish a request closes to make room (see `markIdle`).
    public func isAccepting() -> Bool {
        state.withLock { state in
            if state.accepted < maxConnections || state.entries.values.contains(where: { $0.idleSince != nil }) {
                state.acceptWaiting = false
                return true
            }
            state.acceptWaiting = true
            return false
        }
    }

    /// The connection to evict: one of the client address that holds the most connections (so one address churning
    /// idle sockets evicts its own, never a client with one connection), silent ones before ones that started a head,
    /// each the longest idle first.
    private static func longestIdle(in state: State, from client: String?) -> UInt64? {
        var best: (id: UInt64, rank: (Int, Int, UInt64))?
        for (id, entry) in state.entries {
            guard let since = entry.idleSince, client == nil || entry.client == client else { continue }
            let rank = (-(state.perClient[entry.client] ?? 0), entry.headStarted ? 1 : 0, since)
            if let current = best, !(rank < current.rank) { continue }
            best = (id, rank)
        }
        return best?.id
    }

    /// Removes a chosen victim and returns how to close it.
    private static func remove(_ id: UInt64, from state: inout State) -> Close {
        let entry = state.entries.removeValue(forKey: id)!
        decrement(entry.client, in: &state)
        return entry.close
    }

    /// One connection fewer for `client`.
    private static func decrement(_ client: String, in state: inout State) {
        let left = (state.perClient[client] ?? 1) - 1
        state.perClient[client] = left > 0 ? left : nil
    }
}
