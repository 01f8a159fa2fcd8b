import Foundation

extension AudioTrack {
    /// The track as a WAV file: 16-bit little-endian PCM, 48 kHz, stereo, samples clipped to [-1, 1] and rounded.
    ///
    /// A lossless hand-off for tools that mux the sound themselves (the diffusers worker encodes it to AAC with its
    /// video); no codec is involved, so the same track always gives the same bytes.
    public func wavData() -> Data {
        let dataBytes = samples.count * 2
        var out = Data(capacity: 44 + dataBytes)
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        out.append(contentsOf: Array("RIFF".utf8))
        u32(UInt32(36 + dataBytes))
        out.append(contentsOf: Array("WAVEfmt ".utf8))
        u32(16) // fmt chunk size
        u16(1) // PCM
        u16(UInt16(Self.channels))
        u32(UInt32(Self.sampleRate))
        u32(UInt32(Self.sampleRate * Self.channels * 2)) // bytes per second
        u16(UInt16(Self.channels * 2)) // bytes per frame
        u16(16) // bits per sample
        out.append(contentsOf: Array("data".utf8))
        u32(UInt32(dataBytes))
        var pcm = [Int16](repeating: 0, count: samples.count)
        for (i, s) in samples.enumerated() {
            let clipped = s.isFinite ? max(-1, min(1, s)) : 0
            pcm[i] = Int16((clipped * 32767).rounded())
        }
        pcm.withUnsafeBytes { raw in
            // Little-endian on every platform Swift runs Kinema on (x86-64, arm64).
            out.append(contentsOf: raw)
        }
        return out
    }
}
