import KinemaCore

/// The public contract as OpenAPI 3.1, served at `GET /openapi.yaml`; a test keeps its paths in sync with `Routes`.
///
/// Every limit and default in it comes from the constants validation uses (`ValidationLimits`, `GenerationRequest`),
/// so the document cannot drift from what the server enforces.
enum OpenAPIDocument {
    private static let limits = ValidationLimits()
    private static let aspect = Double(limits.maxAspectNumerator) / Double(limits.maxAspectDenominator)

    static let yaml = #"""
        openapi: 3.1.0
        info:
          title: Kinema
          version: "1.0"
          description: >-
            Self-hostable image-to-video generation, wire-compatible with the hosted
            "Kling v3.0 Standard Image-to-Video" API and its Task Result API.
            Extensions to the hosted API are marked (ext).
        servers:
          - url: /
        security:
          - bearer: []
        components:
          securitySchemes:
            bearer:
              type: http
              scheme: bearer
          schemas:
            Error:
              type: object
              required: [code, reason, message, metadata]
              properties:
                code: {type: integer, description: Equal to the HTTP status.}
                reason: {type: string, pattern: "^[A-Z_]+$"}
                message: {type: string}
                metadata:
                  type: object
                  additionalProperties: {type: string}
            Shot:
              oneOf:
                - type: string
                  minLength: 1
                  maxLength: \#(limits.maxPromptLength)
                - type: object
                  required: [prompt]
                  properties:
                    prompt: {type: string, minLength: 1, maxLength: \#(limits.maxPromptLength)}
                    duration: {type: integer, minimum: \#(limits.minDuration), maximum: \#(limits.maxDuration), default: \#(GenerationRequest.defaultDuration)}
            SubmitRequest:
              type: object
              required: [image]
              description: JSON null in an optional field counts as the field being absent.
              properties:
                image:
                  type: string
                  description: First frame. http(s) URL, raw base64, or data:image/png|jpeg;base64 URI. PNG or JPEG, at most \#(limits.maxImageBytes / 1024 / 1024) MB, sides at least \#(limits.minImageSide) px, aspect ratio 1:\#(aspect) to \#(aspect):1.
                prompt: {type: [string, "null"], minLength: 1, maxLength: \#(limits.maxPromptLength), description: Required unless multi_prompt is given.}
                negative_prompt: {type: [string, "null"], maxLength: \#(limits.maxPromptLength)}
                duration: {type: [integer, "null"], minimum: \#(limits.minDuration), maximum: \#(limits.maxDuration), default: \#(GenerationRequest.defaultDuration)}
                cfg_scale: {type: [number, "null"], minimum: 0, maximum: 1, default: \#(GenerationRequest.defaultCfgScale)}
                sound: {type: [boolean, "null"], default: false}
                end_image: {type: [string, "null"], description: Last frame; same forms and rules as image; not together with multi_prompt.}
                multi_prompt:
                  type: [array, "null"]
                  minItems: 1
                  maxItems: \#(limits.maxShots)
                  items: {$ref: "#/components/schemas/Shot"}
                  description: One entry per shot; shot durations add up to at most \#(limits.maxDuration) and must equal duration when both are given.
                seed: {type: [integer, "null"], minimum: -1, maximum: 4294967295, default: -1, description: (ext) -1 draws a random seed.}
                extra:
                  type: [object, "null"]
                  description: extra.webhook.url (ext) gets a signed POST when the task ends; extra.engine (ext) picks one of the engines the operator enabled (400 with metadata.field extra.engine otherwise); other keys are ignored.
                  properties:
                    engine: {type: string, description: (ext) motion, diffusers, novita, kling or fal, among those this server runs.}
                    webhook:
                      type: [object, "null"]
                      properties:
                        url: {type: [string, "null"], maxLength: 2048, description: "(ext) http(s) URL, a host, no credentials (400 with metadata.field extra.webhook.url otherwise). When the task ends it receives {event_type: ASYNC_TASK_RESULT, payload: <Task Result>} signed the Standard Webhooks way (webhook-id, webhook-timestamp, webhook-signature)."}
              example:
                image: "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAASwAAAEsCAIAAAD2HxkiAAACe0lEQVR42u3TMQ0AAAgEsfeEJzzhFg1MLE2q4JJL9QCPIgGYEEwImBBMCJgQTAiYEEwImBBMCJgQTAiYEEwImBBMCJgQTAiYEEwImBBMCJgQTAiYEEwImBBMCJgQTAiYEEwImBBMCJgQTAiYEEwImBBMCJgQTAiYEEwImBBMCJgQTAiYEEwImBBMCJgQTAiYEEwImBBMCJgQTAiYEEwImBBMCCZUAUwIJgRMCCYETAgmBEwIJgRMCCYETAgmBEwIJgRMCCYETAgmBEwIJgRMCCYETAgmBEwIJgRMCCYETAgmBEwIJgRMCCYETAgmBEwIJgRMCCYETAgmBEwIJgRMCCYETAgmBEwIJgRMCCYETAgmBEwIJgRMCCYETAgmBEwIJgRMCCYEE6oAJgQTAiYEEwImBBMCJgQTAiYEEwImBBMCJgQTAiYEEwImBBMCJgQTAiYEEwImBBMCJgQTAiYEEwImBBMCJgQTAiYEEwImBBMCJgQTAiYEEwImBBMCJgQTAiYEEwImBBMCJgQTAiYEEwImBBMCJgQTAiYEEwImBBMCJgQTAiYEE4IJAROCCQETggkBE4IJAROCCQETggkBE4IJAROCCQETggkBE4IJAROCCQETggkBE4IJAROCCQETggkBE4IJAROCCQETggkBE4IJAROCCQETggkBE4IJAROCCQETggkBE4IJAROCCQETggkBE4IJAROCCQETggkBE4IJAROCCcGEEoAJwYSACcGEgAnBhIAJwYSACcGEgAnBhIAJwYSACcGEgAnBhIAJwYSACcGEgAnBhIAJwYSACcGEgAnBhIAJwYSACcGEgAnBhIAJwYSACcGEwM0C8xVSvcVDZq8AAAAASUVORK5CYII="
                prompt: slow push in
                duration: 3
            SubmitResponse:
              type: object
              required: [task_id]
              properties:
                task_id: {type: string, format: uuid}
            TaskResult:
              type: object
              required: [extra, task, images, videos, audios]
              properties:
                extra:
                  type: object
                  required: [seed, enable_nsfw_detection, debug_info]
                  properties:
                    seed: {type: string, pattern: "^[0-9]+$"}
                    engine: {type: string, description: (ext) the engine that runs or ran the task.}
                    enable_nsfw_detection: {type: boolean}
                    debug_info:
                      type: object
                      required: [request_info, submit_time_ms, execute_time_ms, complete_time_ms]
                      properties:
                        request_info: {type: string}
                        submit_time_ms: {type: string, pattern: "^[0-9]+$"}
                        execute_time_ms: {type: string, pattern: "^[0-9]+$"}
                        complete_time_ms: {type: string, pattern: "^[0-9]+$"}
                task:
                  type: object
                  required: [task_id, task_type, status, reason, eta, progress_percent]
                  properties:
                    task_id: {type: string, format: uuid}
                    task_type: {type: string, enum: [KLING_V3_0_STD_I2V]}
                    status: {type: string, enum: [TASK_STATUS_QUEUED, TASK_STATUS_PROCESSING, TASK_STATUS_SUCCEED, TASK_STATUS_FAILED]}
                    reason: {type: string}
                    eta: {type: integer, minimum: 0, maximum: 86400}
                    progress_percent: {type: integer, minimum: 0, maximum: 100}
                images: {type: array, items: {type: object}}
                videos:
                  type: array
                  items:
                    type: object
                    required: [video_url, video_url_ttl, video_type, nsfw_detection_result]
                    properties:
                      video_url: {type: string}
                      video_url_ttl: {type: string, pattern: "^[0-9]+$"}
                      video_type: {type: string, enum: [mp4]}
                      nsfw_detection_result: {type: "null"}
                audios: {type: array, items: {type: object}}
            Status:
              type: object
              required: [status]
              properties:
                status: {type: string}
                paused_engines:
                  description: (ext) Upstream providers paused for every task (they refuse the account), with the provider's words.
                  type: object
                  additionalProperties: {type: string}
            TaskList:
              type: object
              required: [tasks, next_cursor]
              properties:
                tasks:
                  type: array
                  items: {$ref: "#/components/schemas/TaskResult"}
                next_cursor: {type: [string, "null"], description: Pass as cursor for the next page; null on the last.}
            WebhookDeliveries:
              type: object
              required: [deliveries]
              properties:
                deliveries:
                  type: array
                  items:
                    type: object
                    required: [webhook_id, url, event_type, status, attempts, last_status_code, last_error, next_attempt_ms]
                    properties:
                      webhook_id: {type: string, description: The webhook-id header; the same on every retry of the event.}
                      url: {type: string}
                      event_type: {type: string, enum: [ASYNC_TASK_RESULT]}
                      status: {type: string, enum: [pending, delivered, failed]}
                      attempts: {type: integer, minimum: 0}
                      last_status_code: {type: [integer, "null"]}
                      last_error: {type: [string, "null"]}
                      next_attempt_ms: {type: [integer, "null"], description: Unix milliseconds of the next attempt while pending.}
            CancelRequest:
              type: object
              required: [task_id]
              properties:
                task_id: {type: string, format: uuid}
          headers:
            RetryAfter:
              description: Seconds to wait before retrying.
              required: true
              schema: {type: string, pattern: "^[0-9]+$"}
          responses:
            Error:
              description: An error in the contract's shape.
              content:
                application/json:
                  schema: {$ref: "#/components/schemas/Error"}
            RateLimited:
              description: RATE_LIMIT_EXCEEDED, per-key request rate or queued-task cap; retry after Retry-After.
              headers:
                Retry-After: {$ref: "#/components/headers/RetryAfter"}
              content:
                application/json:
                  schema: {$ref: "#/components/schemas/Error"}
            Unavailable:
              description: (ext) SERVICE_UNAVAILABLE, the store is unreachable or the node is draining; retry after Retry-After.
              headers:
                Retry-After: {$ref: "#/components/headers/RetryAfter"}
              content:
                application/json:
                  schema: {$ref: "#/components/schemas/Error"}
        paths:
          /v3/async/kling-v3.0-std-i2v:
            post:
              operationId: createTask
              summary: Submit an image-to-video task.
              parameters:
                - name: Idempotency-Key
                  in: header
                  required: false
                  description: >-
                    (ext) 1-255 printable ASCII characters. Within 24 h the same key with the identical body answers the same
                    task_id and creates nothing; with another body it answers 409 IDEMPOTENCY_KEY_REUSED.
                  schema: {type: string, minLength: 1, maxLength: 255, pattern: "^[ -~]+$"}
              requestBody:
                required: true
                content:
                  application/json:
                    schema: {$ref: "#/components/schemas/SubmitRequest"}
              responses:
                "200":
                  description: The task was queued.
                  content:
                    application/json:
                      schema: {$ref: "#/components/schemas/SubmitResponse"}
                  links:
                    GetTaskResult:
                      operationId: getTaskResult
                      parameters:
                        task_id: $response.body#/task_id
                "400": {$ref: "#/components/responses/Error"}
                "403": {$ref: "#/components/responses/Error"}
                "409": {$ref: "#/components/responses/Error"}
                "413": {$ref: "#/components/responses/Error"}
                "429": {$ref: "#/components/responses/RateLimited"}
                "500": {$ref: "#/components/responses/Error"}
                "503": {$ref: "#/components/responses/Unavailable"}
          /v3/async/task-result:
            get:
              operationId: getTaskResult
              summary: Status and result of a task.
              parameters:
                - name: task_id
                  in: query
                  required: true
                  description: The task_id from the submit answer; any other form answers 400.
                  schema: {type: string, format: uuid}
              responses:
                "200":
                  description: The task, whatever its status.
                  content:
                    application/json:
                      schema: {$ref: "#/components/schemas/TaskResult"}
                "400": {$ref: "#/components/responses/Error"}
                "403": {$ref: "#/components/responses/Error"}
                "404": {$ref: "#/components/responses/Error"}
                "429": {$ref: "#/components/responses/RateLimited"}
                "500": {$ref: "#/components/responses/Error"}
                "503": {$ref: "#/components/responses/Unavailable"}
          /v3/async/task-cancel:
            post:
              operationId: cancelTask
              summary: (ext) Cancel a task; the answer is its Task Result after the cancel.
              description: >-
                A queued or running task ends TASK_STATUS_FAILED with reason "canceled" (a running render stops and stores
                nothing); a finished task is returned unchanged.
              requestBody:
                required: true
                content:
                  application/json:
                    schema: {$ref: "#/components/schemas/CancelRequest"}
              responses:
                "200":
                  description: The task after the cancel (or unchanged, when it had already finished).
                  content:
                    application/json:
                      schema: {$ref: "#/components/schemas/TaskResult"}
                "400": {$ref: "#/components/responses/Error"}
                "403": {$ref: "#/components/responses/Error"}
                "404": {$ref: "#/components/responses/Error"}
                "413": {$ref: "#/components/responses/Error"}
                "429": {$ref: "#/components/responses/RateLimited"}
                "500": {$ref: "#/components/responses/Error"}
                "503": {$ref: "#/components/responses/Unavailable"}
          /v3/async/task-events:
            get:
              operationId: taskEvents
              summary: (ext) A live stream of the task (text/event-stream).
              description: >-
                The first event comes at once with the current state, then one on every change of status or
                progress_percent; each is "event: task" with the Task Result body on one data line; the stream ends after
                the terminal event; a comment line keeps it open while nothing changes.
              parameters:
                - name: task_id
                  in: query
                  required: true
                  description: The task_id from the submit answer.
                  schema: {type: string, format: uuid}
              responses:
                "200":
                  description: The event stream.
                  content:
                    text/event-stream:
                      schema: {type: string}
                "400": {$ref: "#/components/responses/Error"}
                "403": {$ref: "#/components/responses/Error"}
                "404": {$ref: "#/components/responses/Error"}
                "429": {$ref: "#/components/responses/RateLimited"}
                "500": {$ref: "#/components/responses/Error"}
                "503": {$ref: "#/components/responses/Unavailable"}
          /v3/async/tasks:
            get:
              operationId: listTasks
              summary: (ext) The caller's tenant's tasks, newest first.
              parameters:
                - name: limit
                  in: query
                  required: false
                  description: Tasks per page, 1 to 100 (default 20).
                  schema: {type: integer, minimum: 1, maximum: 100, default: 20}
                - name: cursor
                  in: query
                  required: false
                  description: The next_cursor of the previous page.
                  schema: {type: string}
              responses:
                "200":
                  description: One page.
                  content:
                    application/json:
                      schema: {$ref: "#/components/schemas/TaskList"}
                "400": {$ref: "#/components/responses/Error"}
                "403": {$ref: "#/components/responses/Error"}
                "429": {$ref: "#/components/responses/RateLimited"}
                "500": {$ref: "#/components/responses/Error"}
                "503": {$ref: "#/components/responses/Unavailable"}
          /v3/async/task-webhooks:
            get:
              operationId: taskWebhooks
              summary: (ext) The task's webhook deliveries and where each stands.
              description: >-
                Empty until the task ends, and for a task submitted without extra.webhook.url.
              parameters:
                - name: task_id
                  in: query
                  required: true
                  description: The task_id from the submit answer.
                  schema: {type: string, format: uuid}
              responses:
                "200":
                  description: The deliveries.
                  content:
                    application/json:
                      schema: {$ref: "#/components/schemas/WebhookDeliveries"}
                "400": {$ref: "#/components/responses/Error"}
                "403": {$ref: "#/components/responses/Error"}
                "404": {$ref: "#/components/responses/Error"}
                "429": {$ref: "#/components/responses/RateLimited"}
                "500": {$ref: "#/components/responses/Error"}
                "503": {$ref: "#/components/responses/Unavailable"}
          /healthz:
            get:
              operationId: healthz
              summary: (ext) The process is up.
              security: []
              responses:
                "200":
                  description: Up.
                  content:
                    application/json:
                      schema: {$ref: "#/components/schemas/Status"}
          /readyz:
            get:
              operationId: readyz
              summary: (ext) The store is reachable and the node is not draining.
              security: []
              responses:
                "200":
                  description: Ready.
                  content:
                    application/json:
                      schema: {$ref: "#/components/schemas/Status"}
                "503": {$ref: "#/components/responses/Unavailable"}
          /openapi.yaml:
            get:
              operationId: openAPIDocument
              summary: (ext) This document.
              security: []
              responses:
                "200":
                  description: The OpenAPI document.
                  content:
                    application/yaml: {}
          /files/{key}:
            get:
              operationId: downloadFile
              summary: (ext) Signed, expiring download of a result; supports single byte ranges.
              security: []
              parameters:
                - {name: key, in: path, required: true, schema: {type: string}}
                - {name: expires, in: query, required: true, schema: {type: integer}}
                - {name: sig, in: query, required: true, schema: {type: string}}
              responses:
                "200":
                  description: The file.
                  content:
                    video/mp4:
                      schema: {type: string, format: binary}
                "206":
                  description: A byte range of the file.
                  content:
                    video/mp4:
                      schema: {type: string, format: binary}
                "403": {$ref: "#/components/responses/Error"}
                "404": {$ref: "#/components/responses/Error"}
                "416": {$ref: "#/components/responses/Error"}
        """#
}
