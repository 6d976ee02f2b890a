import Foundation
import Hummingbird
import KeyholdCore
import KeyholdOrchestration
import Logging
import ServiceLifecycle

/// Where the tenant console listens and the URL tenants reach it at.
public struct ConsoleOptions: Sendable {
    /// `HOST:PORT` the console binds (loopback unless `--console-public`).
    public var address: String
    /// The console's public base URL (behind the provider's reverse proxy), e.g. `https://console.example.com`; sign-in
    /// links start with it, and its scheme decides whether the session cookie is `Secure`.
    public var publicURL: String

    /// - Throws: `KeyholdError.invalidInput` when `publicURL` is not an http(s) URL without a path, query or fragment.
    public init(address: String, publicURL: String?) throws {
        self.address = address
        let url = publicURL ?? "http://\(address)"
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(), ["http", "https"].contains(scheme),
            components.host?.isEmpty == false, components.query == nil, components.fragment == nil,
            components.path.isEmpty || components.path == "/"
        else {
            throw KeyholdError.invalidInput(
                "--console-url '\(url.prefix(100))' must be the console's base URL, such as https://console.example.com (no path)")
        }
        self.publicURL = url.hasSuffix("/") ? String(url.dropLast()) : url
    }

    /// Whether the console is reached over TLS.
    public var isHTTPS: Bool { publicURL.lowercased().hasPrefix("https://") }

    /// The origin browsers send with the console's own forms.
    var origin: String {
        guard let components = URLComponents(string: publicURL), let scheme = components.scheme, let host = components.host else { return publicURL }
        return "\(scheme.lowercased())://\(host.lowercased())" + (components.port.map { ":\($0)" } ?? "")
    }
}

/// The tenant console: its own Hummingbird application and listener, with its own request context.
enum ConsoleServer {
    /// The console's router (also used in-process by tests).
    static func router(plane: ControlPlane, options: ConsoleOptions, logger: Logger) throws -> Router<ConsoleContext> {
        let pages = try ConsolePages()
        let cookies = ConsoleCookies(secure: options.isHTTPS)
        let router = Router(context: ConsoleContext.self)
        router.add(middleware: ConsoleMiddleware(plane: plane, cookies: cookies, pages: pages))
        ConsoleRoutes(plane: plane, pages: pages, cookies: cookies, origin: options.origin, logger: logger).register(on: router)
        return router
    }

    static func application(
        plane: ControlPlane, options: ConsoleOptions, logger: Logger, onReady: @escaping @Sendable () -> Void
    ) throws
        -> some Service
    {
        let (host, port) = try ListenAddress.parse(options.address, option: "--console", example: "127.0.0.1:8790", loopbackOnly: false, why: "")
        return Application(
            router: try router(plane: plane, options: options, logger: logger),
            configuration: .init(address: .hostname(host, port: port), serverName: "keyhold-console"),
            onServerRunning: { _ in onReady() }, logger: logger
        )
    }
}
