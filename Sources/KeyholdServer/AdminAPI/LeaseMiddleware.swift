import Hummingbird
import KeyholdCore
import KeyholdOrchestration

/// Answers 503 with the reason while the host is fenced (its leases lost): nothing can be started, stopped or
/// changed from a host that cannot reach the database in time.
struct LeaseMiddleware: RouterMiddleware {
    let lease: HostLease

    func handle(_ request: Request, context: AdminContext, next: (Request, AdminContext) async throws -> Response) async throws -> Response {
        if let reason = lease.fencedReason { throw KeyholdError.unavailable(reason) }
        return try await next(request, context)
    }
}
