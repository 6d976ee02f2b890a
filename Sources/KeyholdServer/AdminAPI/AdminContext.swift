import Hummingbird
import KeyholdOrchestration
import NIOCore

/// The request context of the admin API: who is calling, and over which channel.
public struct AdminContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The connection, to read the peer's credentials on the Unix socket.
    let channel: any Channel
    /// Who the audit log names: the Unix user, or `token:NAME` over TCP. Set by `AdminAuthMiddleware`.
    var actor: String = "unknown"
    /// Whether the caller presented an API token (TCP) rather than connecting to the admin socket.
    var viaToken = false
    /// The tenant a tenant token acts on; nil for the socket and admin tokens. Enforced by `RouteTable`.
    var tenantScope: String?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }

    /// Admin requests are small; a larger body is refused with 413 before it is read whole.
    public var maxUploadSize: Int { 64 * 1024 }
}
