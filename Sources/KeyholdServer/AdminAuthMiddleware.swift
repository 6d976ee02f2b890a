import Hummingbird
import KeyholdCore
import KeyholdStore

/// Names the caller of every admin request, or refuses it.
///
/// On the Unix socket the caller is the peer's Unix user (the socket's mode decides who may connect).
/// Over TCP a bearer admin token is required and the caller is `token:NAME`.
struct AdminAuthMiddleware: RouterMiddleware {
    enum Transport: Sendable { case unixSocket, tcp }

    let transport: Transport
    let store: Store

    func handle(_ request: Request, context: AdminContext, next: (Request, AdminContext) async throws -> Response) async throws -> Response {
        var context = context
        switch transport {
        case .unixSocket:
            context.actor = await PeerCredentials.user(of: context.channel) ?? "unix:unknown"
        case .tcp:
            guard let header = request.headers[.authorization], header.hasPrefix("Bearer "), header.count > 7 else {
                throw KeyholdError.forbidden(
                    "missing admin token: send `Authorization: Bearer kh_admin_...` (create one with `keyhold token create NAME`)")
            }
            let token = String(header.dropFirst(7))
            guard let name = try await store.read({ tx in try tx.adminTokenName(for: token) }) else {
                throw KeyholdError.forbidden("the admin token is unknown or revoked")
            }
            context.actor = "token:\(name)"
        }
        return try await next(request, context)
    }
}
