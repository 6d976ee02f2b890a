import Hummingbird
import KeyholdOrchestration
import KeyholdStore

/// The request context of the tenant console: the session its cookie names, once `ConsoleSessionMiddleware` found it.
public struct ConsoleContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The signed-in session, or nil.
    var session: ConsoleSession?
    /// The session cookie's value, when one was sent and is live.
    var cookie: String?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
    }

    /// Console forms are small: the largest is a pasted key.
    public var maxUploadSize: Int { ConsoleForm.maximumBytes }
}
