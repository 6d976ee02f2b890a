import HTTPTypes
import Hummingbird
import KeyholdCore
import KeyholdOrchestration
import Logging

/// Finds the session the cookie names, renders any error as a page, and puts the security headers on every answer.
struct ConsoleMiddleware: RouterMiddleware {
    typealias Context = ConsoleContext
    let plane: ControlPlane
    let cookies: ConsoleCookies
    let pages: ConsolePages

    func handle(_ request: Request, context: ConsoleContext, next: (Request, ConsoleContext) async throws -> Response) async throws -> Response {
        var context = context
        var response: Response
        do {
            if let value = cookies.session(in: request.headers), let session = try await plane.consoleSession(cookie: value) {
                context.session = session
                context.cookie = value
            }
            response = try await next(request, context)
        } catch {
            response = Self.errorPage(error, pages: pages, signedIn: context.session != nil, logger: context.logger)
        }
        ConsoleResponse.secure(&response.headers)
        return response
    }

    /// A page saying what went wrong; the details of an internal error go to the log, not to the browser.
    static func errorPage(_ error: any Error, pages: ConsolePages, signedIn: Bool, logger: Logger) -> Response {
        let status: HTTPResponse.Status
        let message: String
        switch error {
        case let error as ConsolePageError:
            (status, message) = (error.status, error.message)
        case let error as HTTPError where error.status == .notFound:
            (status, message) = (.notFound, "There is no such page in the console.")
        case let error as HTTPError:
            (status, message) = (error.status, "The console could not read this request (\(error.status.reasonPhrase)).")
        case let error as KeyholdError:
            let (mapped, _, text) = ErrorMiddleware.classify(error)
            (status, message) = (mapped, text)
        default:
            logger.error("console: a request failed: \(ErrorMiddleware.classify(error).2)")
            (status, message) = (.internalServerError, "Something went wrong on our side; nothing was changed. Try again in a minute.")
        }
        return ConsoleResponse.html(pages.message(title: status.reasonPhrase, text: message, signedIn: signedIn), status: status)
    }
}

/// The console's session cookie: its name, and the attributes it is set with.
struct ConsoleCookies: Sendable {
    static let name = "keyhold_console"
    /// Whether the console is reached over https (then the cookie is `Secure`).
    let secure: Bool

    /// The sign-in page's own cookie: the value its form must post back (a form posted from another site comes
    /// without it, `SameSite=Strict`), so that no site can sign a visitor into a tenant of its choosing.
    static let signInName = "keyhold_signin"

    func session(in headers: HTTPFields) -> String? { Self.value(of: Self.name, in: headers) }

    /// The sign-in page's cookie, if the browser sent it.
    func signIn(in headers: HTTPFields) -> String? { Self.value(of: Self.signInName, in: headers) }

    private static func value(of name: String, in headers: HTTPFields) -> String? {
        for field in headers[values: .cookie] {
            for part in field.split(separator: ";") {
                let pair = part.trimmingPrefix(while: { $0 == " " })
                if pair.hasPrefix(name + "=") { return String(pair.dropFirst(name.count + 1)) }
            }
        }
        return nil
    }

    /// `Set-Cookie` for the sign-in page (valid on its POST only, for as long as a link may live).
    func settingSignIn(_ value: String) -> String {
        "\(Self.signInName)=\(value); Path=/link; Max-Age=86400; HttpOnly; SameSite=Strict" + (secure ? "; Secure" : "")
    }

    /// `Set-Cookie` for a new session.
    func setting(_ value: String, maxAge: Int) -> String {
        "\(Self.name)=\(value); Path=/; Max-Age=\(maxAge); HttpOnly; SameSite=Strict" + (secure ? "; Secure" : "")
    }

    /// `Set-Cookie` that removes the session cookie.
    var clearing: String { "\(Self.name)=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict" + (secure ? "; Secure" : "") }
}
