#if canImport(Glibc)
import Glibc
#endif

/// Gives memory the C allocator keeps after a render back to the system (glibc's `malloc_trim`; a no-op elsewhere).
///
/// A render allocates and frees a few hundred MB (frames, x264's frame pool, source levels) across many threads, and
/// glibc keeps freed blocks in its per-thread arenas: without a trim, a worker's resident memory stays at its largest
/// render's high-water mark between tasks, and the next render's peak adds to it.
@_spi(Benchmark)
public enum AllocatorTrim {
    #if canImport(Glibc)
    // malloc_trim is declared in <malloc.h>, which Swift's Glibc module does not import.
    private typealias Trim = @convention(c) (Int) -> Int32
    private static let trim: Trim? = dlsym(nil, "malloc_trim").map { unsafeBitCast($0, to: Trim.self) }
    #endif

    /// Releases free heap memory in every arena (a few milliseconds).
    public static func releaseFreeMemory() {
        #if canImport(Glibc)
        _ = trim?(0)
        #endif
    }
}
