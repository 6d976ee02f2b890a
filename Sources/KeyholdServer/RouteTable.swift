import HTTPTypes
import Hummingbird
import KeyholdCore
import NIOFoundationCompat

/// Registers admin routes and remembers them, so a test can compare them with the OpenAPI document.
final class RouteTable {
    let router: Router<AdminContext>
    private(set) var routes: [String] = []

    init(router: Router<AdminContext>) { self.router = router }

    /// Registers `handler` for `method path`; `path` uses `{name}` placeholders as OpenAPI does.
    func on(_ method: HTTPRequest.Method, _ path: String, _ handler: @escaping @Sendable (Request, AdminContext) async throws -> Response) {
        routes.append("\(method.rawValue) \(path)")
        router.on(RouterPath(path), method: method, use: handler)
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

extension AdminContext {
    /// A path parameter that the route guarantees.
    func parameter(_ name: String) throws -> String {
        guard let value = parameters.get(name) else { throw KeyholdError.invalidInput("missing path parameter '\(name)'") }
        return value
    }
}
