import HTTPTypes
import Hummingbird
import KeyholdCore
import NIOFoundationCompat

/// Registers admin routes and remembers them, so a test can compare them with the OpenAPI document.
final class RouteTable {
    let router: Router<AdminContext>
    private(set) var routes: [String] = []
    /// The methods each path serves.
    private var methods: [String: [HTTPRequest.Method]] = [:]

    init(router: Router<AdminContext>) { self.router = router }

    /// Registers `handler` for `method path`; `path` uses `{name}` placeholders as OpenAPI does.
    func on(_ method: HTTPRequest.Method, _ path: String, _ handler: @escaping @Sendable (Request, AdminContext) async throws -> Response) {
        routes.append("\(method.rawValue) \(path)")
        methods[path, default: []].append(method)
        router.on(RouterPath(path), method: method, use: handler)
    }

    /// Answers 405 with `Allow` to the methods a known path does not serve (an unknown path stays 404).
    func refuseOtherMethods() {
        let all: [HTTPRequest.Method] = [.get, .post, .put, .delete, .patch, .options]
        for (path, served) in methods {
            let allow = served.map(\.rawValue).sorted().joined(separator: ", ")
            for method in all where !served.contains(method) {
                router.on(RouterPath(path), method: method) { request, _ in
                    var response = JSONResponse.make(
                        AdminAPI.ErrorBody(
                            code: KeyholdError.Code.invalidInput.description,
                            message: "\(request.method.rawValue) is not allowed on \(request.uri.path): it takes \(allow)"),
                        status: .methodNotAllowed)
                    response.headers[.allow] = allow
                    return response
                }
            }
        }
    }
}

extension Request {
    /// Decodes the JSON body with the admin API's conventions.
    func decodeAdmin<T: Decodable>(_ type: T.Type, context: AdminContext) async throws -> T {
        let buffer = try await body.collect(upTo: context.maxUploadSize)
        do {
            return try AdminJSON.decoder().decode(T.self, from: buffer)
        } catch let error as DecodingError {
            throw error
        } catch {
            throw HTTPError(.badRequest, message: "the request body is not valid JSON")
        }
    }
}

extension Request {
    /// The query parameter `name` as a whole number in `range`, or nil when absent.
    /// - Throws: `KeyholdError.invalidInput` naming the parameter and its range.
    func integerQuery(_ name: String, in range: ClosedRange<Int>) throws -> Int? {
        guard let text = uri.queryParameters.get(name) else { return nil }
        guard let value = Int(text), range.contains(value) else {
            throw KeyholdError.invalidInput("\(name) must be a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        return value
    }
}

extension AdminContext {
    /// A path parameter that the route guarantees.
    func parameter(_ name: String) throws -> String {
        guard let value = parameters.get(name) else { throw KeyholdError.invalidInput("missing path parameter '\(name)'") }
        return value
    }
}
