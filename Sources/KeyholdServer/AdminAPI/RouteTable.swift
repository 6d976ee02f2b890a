import HTTPTypes
import Hummingbird
import KeyholdCore
import KeyholdOrchestration
import NIOFoundationCompat

/// Who may call a route besides the admin socket and admin tokens.
enum RouteAccess: Sendable {
    /// Admins only: a tenant token gets 403.
    case admin
    /// Also a tenant token, on its own tenant (the path's `{tenant}`); another tenant's name answers 404 exactly as
    /// a tenant that does not exist, so a token cannot probe which tenants exist.
    case tenant
}

/// Registers admin routes and remembers them, so a test can compare them with the OpenAPI document.
final class RouteTable {
    let router: Router<AdminContext>
    private(set) var routes: [String] = []
    /// The routes (`METHOD path`) a tenant token may call.
    private(set) var tenantRoutes: Set<String> = []
    /// The methods each path serves.
    private var methods: [String: [HTTPRequest.Method]] = [:]

    init(router: Router<AdminContext>) { self.router = router }

    /// Registers `handler` for `method path`; `path` uses `{name}` placeholders as OpenAPI does.
    func on(
        _ method: HTTPRequest.Method, _ path: String, access: RouteAccess = .admin,
        _ handler: @escaping @Sendable (Request, AdminContext) async throws -> Response
    ) {
        let route = "\(method.rawValue) \(path)"
        routes.append(route)
        if access == .tenant {
            precondition(path.contains("{tenant}"), "a tenant route names its tenant: \(route)")
            tenantRoutes.insert(route)
        }
        methods[path, default: []].append(method)
        router.on(RouterPath(path), method: method) { request, context in
            try Self.refuseNUL(request)
            // The platform's own keys live under a reserved tenant: it is managed at /v1/platform, never as a tenant.
            if let tenant = context.parameters.get("tenant"), tenant == ControlPlane.platformTenant { throw KeyholdError.unknownTenant(tenant) }
            try Self.authorize(context, access: access, route: route)
            return try await handler(request, context)
        }
    }

    /// Refuses a NUL character in a query value (decoded from `%00`): no name or value holds one, and PostgreSQL cannot
    /// compare text with one. Path parameters stay percent-encoded, so they never hold one.
    private static func refuseNUL(_ request: Request) throws {
        guard request.uri.queryParameters.allSatisfy({ !$0.value.contains("\u{0}") }) else {
            throw KeyholdError.invalidInput("a query value contains a NUL character: no name or value may")
        }
    }

    /// Refuses a tenant token outside its tenant's routes: 403 on an admin route, and on another tenant's name the
    /// very 404 an unknown tenant gets.
    private static func authorize(_ context: AdminContext, access: RouteAccess, route: String) throws {
        guard let scope = context.tenantScope else { return }
        guard access == .tenant else {
            throw KeyholdError.forbidden(
                "a tenant token acts only on its own tenant's keys, sandbox status and logs, usage, audit records, receipts and alert webhook: \(route) needs an admin token"
            )
        }
        let named = context.parameters.get("tenant") ?? ""
        guard named == scope else { throw KeyholdError.unknownTenant(named) }
    }

    /// Answers 405 with `Allow` to the methods a known path does not serve (an unknown path stays 404).
    func refuseOtherMethods() {
        let all: [HTTPRequest.Method] =
            [.get, .head, .post, .put, .delete, .patch, .options, .trace] + [HTTPRequest.Method("QUERY")].compactMap { $0 }
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
