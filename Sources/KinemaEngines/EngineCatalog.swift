import Foundation
import KinemaCore
import KinemaMedia
import KinemaMotion

/// The engines this build can run, each wrapped so its errors carry a caller-facing reason and a retry decision.
public enum EngineCatalog {
    /// The built-in CPU motion engine.
    public static func motion() -> any VideoEngine {
        ClassifiedEngine(base: MotionEngine())
    }
}

/// Maps an engine's own errors to `EngineError`: bad input fails the task at once, anything else may be retried.
struct ClassifiedEngine: VideoEngine {
    let base: any VideoEngine

    var name: String { base.name }

    func render(_ job: RenderJob, to output: URL, progress: @escaping @Sendable (RenderProgress) -> Void) async throws {
        do {
            try await base.render(job, to: output, progress: progress)
        } catch let error as MotionError {
            switch error.code {
            case .cancelled: throw CancellationError()
            case .invalidImage, .invalidEndImage, .invalidRequest: throw EngineError(error.message, retryable: false)
            default: throw EngineError("the video could not be rendered: \(error.message)", retryable: true)
            }
        } catch let error as MediaError {
            switch error.code {
            case .cancelled: throw CancellationError()
            case .unsupportedFormat, .corruptImage, .exceedsLimits, .invalidArgument:
                throw EngineError("the input could not be used: \(error.message)", retryable: false)
            case .codec, .io:
                throw EngineError("the video could not be encoded: \(error.message)", retryable: true)
            }
        }
    }
}
