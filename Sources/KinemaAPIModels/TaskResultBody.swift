/// The body of `GET /v3/async/task-result`, field for field as the hosted API returns it.
public struct TaskResultBody: Codable, Sendable, Equatable {
    public var extra: Extra
    public var task: TaskInfo
    public var images: [ImageEntry]
    public var videos: [VideoEntry]
    public var audios: [AudioEntry]

    public init(extra: Extra, task: TaskInfo, images: [ImageEntry] = [], videos: [VideoEntry] = [], audios: [AudioEntry] = []) {
        self.extra = extra
        self.task = task
        self.images = images
        self.videos = videos
        self.audios = audios
    }

    /// `extra`: the seed and debug timestamps, all as decimal strings.
    public struct Extra: Codable, Sendable, Equatable {
        public var seed: String
        public var enableNSFWDetection: Bool
        public var debugInfo: DebugInfo
        /// The engine that runs or ran the task (ext; a hosted-API client ignores it). Optional when decoding, so a
        /// body from the hosted API decodes too.
        public var engine: String?

        public init(seed: String, enableNSFWDetection: Bool = false, debugInfo: DebugInfo, engine: String? = nil) {
            self.seed = seed
            self.enableNSFWDetection = enableNSFWDetection
            self.debugInfo = debugInfo
            self.engine = engine
        }

        enum CodingKeys: String, CodingKey {
            case seed, engine
            case enableNSFWDetection = "enable_nsfw_detection"
            case debugInfo = "debug_info"
        }
    }

    /// `extra.debug_info`: milliseconds since 1970 as strings, `"0"` for moments not reached yet.
    public struct DebugInfo: Codable, Sendable, Equatable {
        public var requestInfo: String
        public var submitTimeMs: String
        public var executeTimeMs: String
        public var completeTimeMs: String

        public init(requestInfo: String = "", submitTimeMs: String, executeTimeMs: String, completeTimeMs: String) {
            self.requestInfo = requestInfo
            self.submitTimeMs = submitTimeMs
            self.executeTimeMs = executeTimeMs
            self.completeTimeMs = completeTimeMs
        }

        enum CodingKeys: String, CodingKey {
            case requestInfo = "request_info"
            case submitTimeMs = "submit_time_ms"
            case executeTimeMs = "execute_time_ms"
            case completeTimeMs = "complete_time_ms"
        }
    }

    /// `task`: identity, status and progress.
    public struct TaskInfo: Codable, Sendable, Equatable {
        public var taskID: String
        public var taskType: String
        public var status: String
        public var reason: String
        public var eta: Int
        public var progressPercent: Int

        public init(taskID: String, taskType: String = TaskInfo.klingTaskType, status: String, reason: String, eta: Int, progressPercent: Int) {
            self.taskID = taskID
            self.taskType = taskType
            self.status = status
            self.reason = reason
            self.eta = eta
            self.progressPercent = progressPercent
        }

        /// The task type the hosted API reports for this model.
        public static let klingTaskType = "KLING_V3_0_STD_I2V"

        enum CodingKeys: String, CodingKey {
            case taskID = "task_id"
            case taskType = "task_type"
            case status, reason, eta
            case progressPercent = "progress_percent"
        }
    }

    /// One finished video: a signed URL and how long it stays valid.
    public struct VideoEntry: Codable, Sendable, Equatable {
        public var videoURL: String
        public var videoURLTTL: String
        public var videoType: String
        /// Always `null` (no NSFW detection); encoded explicitly because clients expect the key.
        public var nsfwDetectionResult: Bool?

        public init(videoURL: String, videoURLTTL: String, videoType: String = "mp4") {
            self.videoURL = videoURL
            self.videoURLTTL = videoURLTTL
            self.videoType = videoType
            self.nsfwDetectionResult = nil
        }

        enum CodingKeys: String, CodingKey {
            case videoURL = "video_url"
            case videoURLTTL = "video_url_ttl"
            case videoType = "video_type"
            case nsfwDetectionResult = "nsfw_detection_result"
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(videoURL, forKey: .videoURL)
            try c.encode(videoURLTTL, forKey: .videoURLTTL)
            try c.encode(videoType, forKey: .videoType)
            if let n = nsfwDetectionResult { try c.encode(n, forKey: .nsfwDetectionResult) } else { try c.encodeNil(forKey: .nsfwDetectionResult) }
        }
    }

    /// Image outputs (this model produces none; kept for the shape).
    public struct ImageEntry: Codable, Sendable, Equatable {
        public var imageURL: String
        enum CodingKeys: String, CodingKey { case imageURL = "image_url" }
    }

    /// Audio outputs (audio is muxed into the MP4; kept for the shape).
    public struct AudioEntry: Codable, Sendable, Equatable {
        public var audioURL: String
        enum CodingKeys: String, CodingKey { case audioURL = "audio_url" }
    }
}

/// The body of a successful submit.
public struct SubmitResponseBody: Codable, Sendable, Equatable {
    public var taskID: String

    public init(taskID: String) {
        self.taskID = taskID
    }

    enum CodingKeys: String, CodingKey { case taskID = "task_id" }
}

/// The contract's error body, on every route.
public struct ErrorBody: Codable, Sendable, Equatable {
    /// Equal to the HTTP status.
    public var code: Int
    /// UPPER_SNAKE reason.
    public var reason: String
    /// One human sentence saying what was wrong and what is allowed.
    public var message: String
    /// String keys to string values; `field` for validation errors.
    public var metadata: [String: String]

    public init(code: Int, reason: String, message: String, metadata: [String: String] = [:]) {
        self.code = code
        self.reason = reason
        self.message = message
        self.metadata = metadata
    }
}

/// The body of `GET /v3/async/tasks` (ext): one page of the tenant's tasks, newest first.
public struct TaskListBody: Codable, Sendable, Equatable {
    public var tasks: [TaskResultBody]
    /// Pass as `cursor` for the next page; `nil` on the last page.
    public var nextCursor: String?

    public init(tasks: [TaskResultBody], nextCursor: String?) {
        self.tasks = tasks
        self.nextCursor = nextCursor
    }

    enum CodingKeys: String, CodingKey {
        case tasks
        case nextCursor = "next_cursor"
    }
}
