#if canImport(Glibc)
import Glibc
#endif

/// Heap perturbation for tests of code that must never read memory it did not write (x264, the renderers).
public enum PerturbedHeap {
    /// Runs `body` while glibc fills fresh allocations with `byte` (what `MALLOC_PERTURB_` does), so code that reads
    /// memory it never wrote sees other values than in a fresh process; restores normal allocation afterwards.
    /// Elsewhere than glibc it just runs `body`.
    public static func with<T>(_ byte: Int32, _ body: () throws -> T) rethrows -> T {
        set(byte)
        defer { set(0) }
        return try body()
    }

    /// The same for async work.
    public static func with<T>(_ byte: Int32, _ body: () async throws -> T) async rethrows -> T {
        set(byte)
        defer { set(0) }
        return try await body()
    }

    private static func set(_ byte: Int32) {
        #if canImport(Glibc)
        // mallopt is in <malloc.h>, which Swift's Glibc module does not import; M_PERTURB is -6 there.
        typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
        if let symbol = dlsym(nil, "mallopt") {
            _ = unsafeBitCast(symbol, to: Mallopt.self)(-6, byte)
        }
        #endif
    }
}
