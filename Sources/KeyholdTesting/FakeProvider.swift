import Hummingbird
import HummingbirdTLS
import Logging
import NIOCore
public import NIOSSL

/// A stand-in LLM provider on `127.0.0.1` speaking the OpenAI, Anthropic and Gemini wire formats.
///
/// Tests point the code under test at ``baseURL``, tune behaviour with ``update(_:)`` and
/// assert on ``requests``. One server answers all three providers: `/v1beta/...` is Gemini,
/// `/v1/messages` and any request carrying `x-api-key` or `anthropic-version` is Anthropic,
/// everything else is OpenAI.
public final class FakeProvider: Sendable {
    /// The TCP port the server is bound to on `127.0.0.1`.
    public let port: Int
    private let state: FakeProviderState
    private let serverTask: Task<Void, Never>

    /// Whether it serves HTTPS (`start(tls:)`).
    public let isTLS: Bool

    private init(port: Int, state: FakeProviderState, serverTask: Task<Void, Never>, isTLS: Bool) {
        self.isTLS = isTLS
        self.port = port
        self.state = state
        self.serverTask = serverTask
    }

    deinit {
        serverTask.cancel()
    }

    /// Starts a server on `127.0.0.1` at an ephemeral port and returns once it accepts connections.
    ///
    /// - Parameter configuration: Initial behaviour; change it later with ``update(_:)``.
    /// - Throws: The bind error if the server cannot start.
    /// - Parameter tls: serve HTTPS with this configuration (its certificate for 127.0.0.1), as real providers do.
    /// - Parameters host/port: where to listen (a test network namespace's address, for the executable form).
    public static func start(
        configuration: Configuration = Configuration(), tls: TLSConfiguration? = nil, host: String = "127.0.0.1", port requestedPort: Int = 0
    ) async throws -> FakeProvider {
        let state = FakeProviderState(configuration: configuration)
        let bound = FakeProviderOneShot<Int>()
        let handler = FakeProviderHandler(state: state)
        var logger = Logger(label: "keyhold.fake-provider")
        logger.logLevel = .critical  // cancellation on stop() logs at .error
        let app = Application(
            responder: CallbackResponder<FakeProviderContext> { request, context in
                try await handler.respond(to: request, context: context)
            },
            server: try tls.map { try .tls(.http1(), tlsConfiguration: $0) } ?? .http1(),
            configuration: ApplicationConfiguration(
                address: .hostname(host, port: requestedPort),
                backlog: 1024
            ),
            onServerRunning: { channel in
                if let port = channel.localAddress?.port {
                    bound.resolve(.success(port))
                } else {
                    bound.resolve(.failure(FakeProviderError.noBoundPort))
                }
            },
            logger: logger
        )
        // Its connections' tasks inherit the preference: the stand-in answers even while the tests block the pool.
        let serverTask = Task(executorPreference: StandInExecutor.shared) {
            do {
                try await app.run()
                bound.resolve(.failure(FakeProviderError.serverExited))
            } catch {
                bound.resolve(.failure(error))
            }
        }
        do {
            let port = try await bound.value
            return FakeProvider(port: port, state: state, serverTask: serverTask, isTLS: tls != nil)
        } catch {
            serverTask.cancel()
            await serverTask.value
            throw error
        }
    }

    /// `http://127.0.0.1:PORT` (`https://` with TLS), with no trailing slash.
    public var baseURL: String { "\(isTLS ? "https" : "http")://127.0.0.1:\(port)" }

    /// A snapshot of the current configuration.
    public var configuration: Configuration { state.configuration }

    /// Changes the configuration atomically; takes effect for requests arriving afterwards.
    public func update(_ change: (inout Configuration) -> Void) {
        state.update(change)
    }

    /// Every request received so far, in arrival order (recorded before any latency or failure).
    public var requests: [RecordedRequest] { state.requests }

    /// The number of requests received so far.
    public var requestCount: Int { state.requestCount }

    /// Forgets the recorded requests.
    public func resetRequests() {
        state.resetRequests()
    }

    /// Stops the server, closing open connections, and waits until it has shut down.
    public func stop() async throws {
        serverTask.cancel()
        await serverTask.value
    }
}

/// Errors from starting a ``FakeProvider``.
public enum FakeProviderError: Error, Sendable {
    /// The listening channel had no local port.
    case noBoundPort
    /// The server stopped before it started listening.
    case serverExited
}
