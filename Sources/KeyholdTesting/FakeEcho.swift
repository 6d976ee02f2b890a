import HTTPTypes
import Hummingbird

/// An upstream that repeats the credentials it received, as a debugging endpoint or a careless error page would:
/// `GET /v1/echo/headers` answers them in its JSON body and in an `x-echo-authorization` header, `POST
/// /v1/echo/stream` in each event of a stream. Tests use it to show that a brokered key's echo reaches the agent as
/// the placeholder, never as the key.
enum FakeEcho {
    static func headers(_ call: FakeProviderCall) -> Response {
        let authorization = call.request.headers[.authorization] ?? ""
        var extra: HTTPFields = [:]
        extra[HTTPField.Name("x-echo-authorization")!] = authorization
        return FakeResponses.json(
            .object([("authorization", .string(authorization)), ("x_api_key", .string(call.request.headers[FakeHeader.xAPIKey] ?? ""))]),
            extraHeaders: extra)
    }

    static func stream(_ call: FakeProviderCall) -> Response {
        let authorization = call.request.headers[.authorization] ?? ""
        let event = "data: " + FakeJSON.object([("authorization", .string(authorization))]).serialized + "\n\n"
        return FakeResponses.eventStream([event, event, "data: [DONE]\n\n"], configuration: call.configuration)
    }
}
