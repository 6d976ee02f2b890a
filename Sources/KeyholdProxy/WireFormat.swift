import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// Which provider API a request speaks: it decides how the agent authenticates and how errors look.
enum WireFormat: Sendable {
    case openAI
    case anthropic

    /// The proxy token, sent the way the provider's SDK sends a key.
    func token(in headers: HTTPFields) -> String? {
        if let key = headers[HTTPField.Name("x-api-key")!], !key.isEmpty { return key }
        if let authorization = headers[.authorization], authorization.hasPrefix("Bearer ") { return String(authorization.dropFirst(7)) }
        return nil
    }

    /// An error answer in the provider's own shape.
    func error(_ status: HTTPResponse.Status, type: String, message: String, retryAfter: Int? = nil) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        if let retryAfter { headers[HTTPField.Name("retry-after")!] = String(retryAfter) }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: errorBody(type: type, message: message))))
    }

    /// The error body alone (also used as the final event of a cut stream).
    func errorBody(type: String, message: String) -> [UInt8] {
        let object: [String: Any]
        switch self {
        case .openAI:
            object = ["error": ["message": message, "type": type, "param": NSNull(), "code": type]]
        case .anthropic:
            object = ["type": "error", "error": ["type": type, "message": message]]
        }
        return Array((try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data())
    }

    /// The error types each provider uses for the same situations.
    var authenticationError: String { self == .openAI ? "invalid_api_key" : "authentication_error" }
    var rateLimitError: String { self == .openAI ? "rate_limit_exceeded" : "rate_limit_error" }
    var invalidRequestError: String { "invalid_request_error" }
    var permissionError: String { self == .openAI ? "model_not_allowed" : "permission_error" }
    var upstreamError: String { self == .openAI ? "upstream_error" : "api_error" }
}
