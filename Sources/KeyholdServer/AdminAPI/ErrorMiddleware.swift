import Foundation
import HTTPTypes
import Hummingbird
import KeyholdCore
import KeyholdOrchestration
import KeyholdSandbox
import KeyholdStore
import KeyholdVault
import Logging
import NIOCore

/// Renders every error as `{"error": {"code", "message"}}` with a status that matches its class.
struct ErrorMiddleware: RouterMiddleware {
    typealias Context = AdminContext

    func handle(_ request: Request, context: AdminContext, next: (Request, AdminContext) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            let (status, code, message) = Self.classify(error)
            if status.code >= 500 {
                context.logger.error("\(request.method) \(request.uri.path) failed: \(message)")
            }
            return JSONResponse.make(AdminAPI.ErrorBody(code: code.description, message: message), status: status)
        }
    }

    static func classify(_ error: any Error) -> (HTTPResponse.Status, KeyholdError.Code, String) {
        switch error {
        case let error as KeyholdError:
            return (HTTPResponse.Status(code: error.code.httpStatus), error.code, error.message)
        case let error as VaultError:
            return (.internalServerError, .failed, error.message)
        case let error as StoreError:
            return (.serviceUnavailable, .unavailable, error.message)
        case let error as SystemdError:
            return (.serviceUnavailable, .unavailable, error.description)
        case let error as ProfileError:
            return (.internalServerError, .failed, error.description)
        case let error as PlanError:
            return (.internalServerError, .failed, error.description)
        case let error as HTTPError:
            let status = error.status
            let code: KeyholdError.Code = status == .notFound ? .notFound : .invalidInput
            let message =
                error.body
                ?? (status == .contentTooLarge
                    ? "the request body is too large"
                    : status == .notFound
                        ? "no such route: the admin API is described in deploy/openapi.yaml" : "bad request: \(status.reasonPhrase)")
            return (status, code, Self.friendlyDecodingMessage(message))
        case is NIOTooManyBytesError:
            return (.contentTooLarge, .invalidInput, "the request body is larger than 64 KiB: admin requests are small JSON documents")
        case let error as DecodingError:
            return (.badRequest, .invalidInput, "the request body is not valid JSON for this call: \(Self.describe(error))")
        default:
            return (.internalServerError, .failed, "internal error: \(error)")
        }
    }

    private static func friendlyDecodingMessage(_ message: String) -> String {
        message.isEmpty ? "the request body is not valid JSON for this call" : message
    }

    private static func describe(_ error: DecodingError) -> String {
        switch error {
        case .keyNotFound(let key, _): "missing field '\(key.stringValue)'"
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            "wrong type at '\(context.codingPath.map(\.stringValue).joined(separator: "."))'"
        case .dataCorrupted(let context): context.debugDescription
        @unknown default: "\(error)"
        }
    }
}

/// JSON responses with Keyhold's encoding conventions.
enum JSONResponse {
    static func make(_ value: some Encodable, status: HTTPResponse.Status = .ok) -> Response {
        let data = (try? AdminJSON.encoder().encode(value)) ?? Data("{}".utf8)
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
