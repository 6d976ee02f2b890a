import KeyholdOrchestration
import KeyholdStore
import Mustache

/// The console's compiled templates; rendering escapes every value.
public struct ConsolePages: Sendable {
    private let library: MustacheLibrary

    /// Compiles the templates (they are constants: a failure here is a programming error caught by the tests).
    public init() throws {
        var library = MustacheLibrary()
        try library.register(ConsoleTemplates.head, named: "head")
        try library.register(ConsoleTemplates.foot, named: "foot")
        try library.register(ConsoleTemplates.message, named: "message")
        try library.register(ConsoleTemplates.dashboard, named: "dashboard")
        try library.register(ConsoleTemplates.signIn, named: "signin")
        self.library = library
    }

    /// A page with one message (a refused link, a signed-out visitor, an error).
    func message(title: String, text: String, session: ConsoleSession? = nil) -> String {
        var model: [String: Any] = ["title": title, "text": text]
        if let session { model.merge(Self.sessionFields(session)) { $1 } }
        return library.render(model, withTemplate: "message") ?? text
    }

    func message(title: String, text: String, signedIn: Bool) -> String { message(title: title, text: text) }

    /// The page a sign-in link opens: the tenant it is for, a warning when the browser is signed in to another, and
    /// the button that spends the link.
    func signIn(tenant: String, action: String, nonce: String, signedInAs current: String?) -> String {
        var model: [String: Any] = ["title": "Sign in to \(tenant)", "target": tenant, "action": action, "nonce": nonce]
        if let current { model["current"] = current }
        return library.render(model, withTemplate: "signin") ?? ""
    }

    /// The signed-in tenant's console, from the model `ConsoleDashboard` builds.
    func dashboard(_ model: [String: Any]) -> String { library.render(model, withTemplate: "dashboard") ?? "" }

    static func sessionFields(_ session: ConsoleSession) -> [String: Any] {
        ["tenant": session.tenantName, "signedIn": true, "csrf": session.csrfToken]
    }
}
