import AsyncHTTPClient
import Foundation
import KinemaAPIModels
import NIOCore
import NIOHTTP1

extension KinemaClient {
    /// Sends one request with the API key and returns the body of a 2xx answer; any other answer becomes a
    /// `KinemaError` carrying the server's error body.
    func send(_ method: HTTPMethod, _ pathAndQuery: String, headers: [(String, String)] = [], body: Data? = nil) async throws(KinemaError) -> Data {
        var request = HTTPClientRequest(url: baseURL + pathAndQuery)
        request.method = method
        request.headers.add(name: "Authorization", value: "Bearer \(apiKey)")
        request.headers.add(name: "User-Agent", value: "KinemaClient/1")
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
        let status: Int
        let data: Data
        do {
            let response = try await http.execute(request, timeout: .seconds(requestTimeout.components.seconds))
            status = Int(response.status.code)
            data = Data(try await response.body.collect(upTo: 16 * 1024 * 1024).readableBytesView)
        } catch {
            throw KinemaError(.unreachable, reason: "UNREACHABLE", message: "no answer from \(baseURL): \(Self.describe(error))")
        }
        guard (200...299).contains(status) else { throw Self.error(status: status, body: data) }
        return data
    }

    func decode<T: Decodable>(_ type: T.Type, from data: Data) throws(KinemaError) -> T {
        do {
            return try JSONDecoder().decode(type, from: data)
        } catch {
            throw KinemaError(
                .invalidAnswer, reason: "UNREADABLE_ANSWER",
                message: "the answer is not a \(type): \(String(decoding: data.prefix(200), as: UTF8.self))")
        }
    }

    /// The contract's error body of a non-2xx answer, or the status and the start of whatever came instead.
    static func error(status: Int, body: Data) -> KinemaError {
        if let e = try? JSONDecoder().decode(ErrorBody.self, from: body) {
            return KinemaError(.api(status: status), reason: e.reason, message: e.message, metadata: e.metadata)
        }
        return KinemaError(.api(status: status), reason: "HTTP_\(status)", message: String(decoding: body.prefix(200), as: UTF8.self))
    }

    static func describe(_ error: any Error) -> String {
        "\(error)"
    }

    static func escaped(_ value: String) -> String {
        value.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? value
    }

    /// Follows `GET /v3/async/task-events` (ext) until the task is finished (returned), the stream ends or breaks, or
    /// the server has no stream (`nil` either way: the caller polls). A task the server does not know is an error.
    func followStream(_ id: String, deadline: ContinuousClock.Instant, seen: ProgressDeduplicator) async throws(KinemaError) -> TaskResultBody? {
        var request = HTTPClientRequest(url: baseURL + Paths.taskEvents + "?task_id=" + Self.escaped(id))
        request.headers.add(name: "Authorization", value: "Bearer \(apiKey)")
        request.headers.add(name: "Accept", value: "text/event-stream")
        let response: HTTPClientResponse
        do {
            let seconds = max(1, (deadline - ContinuousClock.now).components.seconds)
            response = try await http.execute(request, timeout: .seconds(seconds))
        } catch {
            return nil
        }
        guard response.status == .ok, response.headers.first(name: "content-type")?.hasPrefix("text/event-stream") == true else {
            let body = (try? await response.body.collect(upTo: 64 * 1024)).map { Data($0.readableBytesView) } ?? Data()
            let error = Self.error(status: Int(response.status.code), body: body)
            // The task is unknown, or the key is refused: polling would say the same.
            if ["TASK_NOT_FOUND", "INVALID_API_KEY", "MISSING_API_KEY"].contains(error.reason) { throw error }
            return nil
        }
        var pending = Data()
        do {
            for try await chunk in response.body {
                pending.append(contentsOf: chunk.readableBytesView)
                while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                    let line = pending[pending.startIndex..<newline]
                    pending = Data(pending[pending.index(after: newline)...])
                    guard line.starts(with: Array("data:".utf8)) else { continue }
                    let json = line.dropFirst(5).drop { $0 == UInt8(ascii: " ") }
                    guard let body = try? JSONDecoder().decode(TaskResultBody.self, from: Data(json)) else { continue }
                    seen.offer(body)
                    if body.isFinished { return body }
                }
                if ContinuousClock.now >= deadline { return nil }
            }
        } catch {
            return nil
        }
        return nil
    }
}
