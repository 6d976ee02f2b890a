import Hummingbird
import KeyholdCore
import KeyholdOrchestration
import KeyholdStore

/// Names the caller of every admin request, or refuses it.
///
/// On the Unix socket the caller is the peer's Unix user (the socket's mode decides who may connect).
/// Over TCP a bearer token is required: an admin token's caller is `token:NAME`; a tenant token's is
/// `tenant-token:NAME`, limited to its tenant (`RouteTable` enforces the limit on each route).
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
                throw KeyholdError.unauthenticated(
                    "missing admin token: send `Authorization: Bearer kh_admin_...` (create one with `keyhold token create NAME`)")
            }
            let token = String(header.dropFirst(7))
            guard let holder = try await store.read({ tx in try tx.apiToken(for: token) }) else {
                throw KeyholdError.forbidden("the token is unknown or revoked")
            }
            context.viaToken = true
            if let tenant = holder.tenant {
                context.actor = "tenant-token:\(holder.name)"
                context.tenantScope = tenant
            } else {
                context.actor = "token:\(holder.name)"
            }
        }
        return try await next(request, context)
    }
}
