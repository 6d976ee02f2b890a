import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// Thrown inside a streaming body to make Hummingbird close the connection mid-stream.
struct FakeStreamCut: Error {}

/// Response builders shared by the provider modules.
enum FakeResponses {
    /// A JSON response with `status` and the serialised `json` body.
    static func json(
        _ json: FakeJSON,
        status: Int = 200,
        extraHeaders: HTTPFields = [:]
    ) -> Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        headers.append(contentsOf: extraHeaders)
        return Response(
            status: HTTPResponse.Status(code: status),
            headers: headers,
            body: ResponseBody(byteBuffer: ByteBuffer(string: json.serialized))
        )
    }

    /// A `text/event-stream` response writing each event as its own flushed body part,
    /// honouring the configured inter-chunk latency and stream cut.
    static func eventStream(
        _ events: [String],
        configuration: FakeProvider.Configuration,
        extraHeaders: HTTPFields = [:]
    ) -> Response {
        let latency = configuration.interChunkLatency
        let cutAfter = configuration.cutStreamAfterEvents
        var headers: HTTPFields = [
            .contentType: "text/event-stream; charset=utf-8",
            .cacheControl: "no-cache",
        ]
        headers.append(contentsOf: extraHeaders)
        return Response(
            status: .ok,
            headers: headers,
            body: ResponseBody { writer in
                for (index, event) in events.enumerated() {
                    if let cutAfter, index >= cutAfter { throw FakeStreamCut() }
                    if index > 0, latency > .zero { try await Task.sleep(for: latency) }
                    try await writer.write(ByteBuffer(string: event))
                }
                if cutAfter != nil { throw FakeStreamCut() }
                try await writer.finish(nil)
            }
        )
    }

    /// Splits `text` into `count` (at least 1) consecutive pieces of near-equal length.
    static func split(_ text: String, into count: Int) -> [String] {
        let characters = Array(text)
        let parts = max(1, count)
        return (0..<parts).map { index in
            let start = characters.count * index / parts
            let end = characters.count * (index + 1) / parts
            return String(characters[start..<end])
        }
    }

    /// A random identifier body of `length` lowercase alphanumerics.
    static func randomID(length: Int = 24) -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789")
        return String((0..<length).map { _ in alphabet.randomElement()! })
    }

    /// Seconds since 1970, as providers report `created`.
    static func unixTime() -> Int {
        Int(Date().timeIntervalSince1970)
    }
}
