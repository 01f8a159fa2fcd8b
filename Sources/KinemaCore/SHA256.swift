import Foundation

/// SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104), used to hash API keys and sign result URLs.
///
/// Written here rather than pulling in swift-crypto because that package builds a second copy of
/// BoringSSL next to swift-nio-ssl's (minutes of CI on 2 cores) for two small functions; the
/// implementation is checked against the NIST and RFC 4231 test vectors.
public enum SHA256 {
    fileprivate static let k: [UInt32] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
    ]

    /// The 32-byte digest of `data`.
    public static func hash<D: Collection>(_ data: D) -> [UInt8] where D.Element == UInt8 {
        var hasher = Hasher()
        hasher.update(data)
        return hasher.finalize()
    }

    /// HMAC-SHA256 of `message` under `key`.
    public static func hmac(key: [UInt8], message: [UInt8]) -> [UInt8] {
        HMACKey(key).authenticate(message)
    }

    /// An HMAC-SHA256 key with its padded blocks already hashed: each message then costs two compressions fewer
    /// (a signed result URL per poll is the API's hottest use).
    public struct HMACKey: Sendable {
        private let inner: Hasher
        private let outer: Hasher

        public init(_ key: [UInt8]) {
            var block = key.count > 64 ? SHA256.hash(key) : key
            block += [UInt8](repeating: 0, count: 64 - block.count)
            var inner = Hasher()
            inner.update(block.map { $0 ^ 0x36 })
            var outer = Hasher()
            outer.update(block.map { $0 ^ 0x5c })
            self.inner = inner
            self.outer = outer
        }

        /// The MAC of `message`.
        public func authenticate<D: Collection>(_ message: D) -> [UInt8] where D.Element == UInt8 {
            var inner = self.inner
            inner.update(message)
            var outer = self.outer
            outer.update(inner.finalize())
            return outer.finalize()
        }
    }

    /// Incremental SHA-256: `update` with the data in any number of pieces, then `finalize`.
    public struct Hasher: Sendable {
        private var h0: UInt32 = 0x6a09e667, h1: UInt32 = 0xbb67ae85, h2: UInt32 = 0x3c6ef372, h3: UInt32 = 0xa54ff53a
        private var h4: UInt32 = 0x510e527f, h5: UInt32 = 0x9b05688c, h6: UInt32 = 0x1f83d9ab, h7: UInt32 = 0x5be0cd19
        /// Bytes waiting for a whole block (at most 63), and the length hashed in all.
        private var pending: [UInt8] = []
        private var length: UInt64 = 0

        public init() {}

        /// Adds `data`.
        public mutating func update<D: Collection>(_ data: D) where D.Element == UInt8 {
            let done: Void? = data.withContiguousStorageIfAvailable { buffer in update(UnsafeRawBufferPointer(buffer)) }
            if done == nil { Array(data).withUnsafeBytes { update($0) } }
        }

        /// Adds the bytes of `data`.
        public mutating func update(_ data: UnsafeRawBufferPointer) {
            length &+= UInt64(data.count)
            var rest = data[...]
            if !pending.isEmpty {
                let take = min(64 - pending.count, rest.count)
                pending += rest.prefix(take)
                rest = rest.dropFirst(take)
                guard pending.count == 64 else { return }
                pending.withUnsafeBytes { compress($0.baseAddress!) }
                pending.removeAll(keepingCapacity: true)
            }
            let whole = rest.count / 64 * 64
            if whole > 0, let base = UnsafeRawBufferPointer(rebasing: rest).baseAddress {
                for offset in stride(from: 0, to: whole, by: 64) { compress(base + offset) }
            }
            pending += rest.dropFirst(whole)
        }

        /// The digest of everything added.
        public mutating func finalize() -> [UInt8] {
            let bitLength = length &* 8
            // The padding: 0x80, zeros, the bit length; one block, or two when fewer than 9 bytes are left in it.
            let blocks = pending.count < 56 ? 1 : 2
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 128) { tail in
                tail.initialize(repeating: 0)
                for (i, byte) in pending.enumerated() { tail[i] = byte }
                tail[pending.count] = 0x80
                let end = blocks * 64
                for i in 0..<8 { tail[end - 1 - i] = UInt8(truncatingIfNeeded: bitLength >> (UInt64(i) * 8)) }
                let base = UnsafeRawPointer(tail.baseAddress!)
                for block in 0..<blocks { compress(base + block * 64) }
            }
            pending = []
            return [UInt8](unsafeUninitializedCapacity: 32) { digest, count in
                func put(_ i: Int, _ v: UInt32) {
                    digest[i * 4] = UInt8(truncatingIfNeeded: v >> 24)
                    digest[i * 4 + 1] = UInt8(truncatingIfNeeded: v >> 16)
                    digest[i * 4 + 2] = UInt8(truncatingIfNeeded: v >> 8)
                    digest[i * 4 + 3] = UInt8(truncatingIfNeeded: v)
                }
                put(0, h0); put(1, h1); put(2, h2); put(3, h3); put(4, h4); put(5, h5); put(6, h6); put(7, h7)
                count = 32
            }
        }

        /// One 64-byte block into the state.
        private mutating func compress(_ block: UnsafeRawPointer) {
            withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 64) { w in
                for i in 0..<16 { w[i] = UInt32(bigEndian: block.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self)) }
                for i in 16..<64 {
                    let s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3)
                    let s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10)
                    w[i] = w[i - 16] &+ s0 &+ w[i - 7] &+ s1
                }
                var (a, b, c, d, e, f, g, hh) = (h0, h1, h2, h3, h4, h5, h6, h7)
                SHA256.k.withUnsafeBufferPointer { k in
                    for i in 0..<64 {
                        let s1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)
                        let ch = (e & f) ^ (~e & g)
                        let t1 = hh &+ s1 &+ ch &+ k[i] &+ w[i]
                        let s0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)
                        let maj = (a & b) ^ (a & c) ^ (b & c)
                        let t2 = s0 &+ maj
                        (hh, g, f, e, d, c, b, a) = (g, f, e, d &+ t1, c, b, a, t1 &+ t2)
                    }
                }
                h0 &+= a; h1 &+= b; h2 &+= c; h3 &+= d
                h4 &+= e; h5 &+= f; h6 &+= g; h7 &+= hh
            }
        }
    }

}

extension Collection where Element == UInt8 {
    /// Lowercase hexadecimal text.
    public var hexString: String {
        String(unsafeUninitializedCapacity: count * 2) { out in
            var i = 0
            for b in self {
                out[i] = HexDigits.lower[Int(b >> 4)]
                out[i + 1] = HexDigits.lower[Int(b & 0x0F)]
                i += 2
            }
            return i
        }
    }
}

/// Rotation right (SHA-256's ROTR).
@inline(__always) private func rotr(_ x: UInt32, _ n: UInt32) -> UInt32 { (x >> n) | (x << (32 - n)) }

/// Hexadecimal digit tables.
enum HexDigits {
    static let lower: [UInt8] = Array("0123456789abcdef".utf8)
    static let upper: [UInt8] = Array("0123456789ABCDEF".utf8)
}

/// Comparison whose time does not depend on where the inputs differ (for secrets and signatures).
public func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    guard a.count == b.count else { return false }
    var diff: UInt8 = 0
    for i in 0..<a.count { diff |= a[i] ^ b[i] }
    return diff == 0
}
