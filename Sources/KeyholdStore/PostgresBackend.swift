import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import PostgresNIO
import Synchronization

/// Keyhold's state in PostgreSQL: a small pool of connections, each transaction run on a thread of the store's own
/// pool (statements wait for their answers there, never on an event loop or the concurrency pool).
///
/// Writes run at READ COMMITTED: what must not race is held by the schema's constraints (unique names and
/// versions, one running rotation per tenant) and by locks (audit appends take an advisory lock, then read the
/// chain's head with a fresh snapshot). A write that hits a deadlock, a serialization failure or a unique
/// violation from a concurrent transaction is run again from the start, so its own checks see the other's commit
/// and answer as they would have had it come first. Reads run at REPEATABLE READ, READ ONLY: one snapshot.
/// (SERIALIZABLE writes were measured and dropped: every concurrent audit append took its snapshot before the
/// advisory lock and failed to serialize, starving under load.)
final class PostgresBackend: Sendable {
    let location: PostgresLocation
    let logger: Logger
    private let configuration: PostgresConnection.Configuration
    private let idle = Mutex<[PostgresConnection]>([])
    private let slots: DispatchSemaphore
    /// How many connections the pool holds at most.
    private let connections: Int
    private let nextID = Atomic<Int>(1)
    /// Threads that may block on a statement.
    let threads: NIOThreadPool
    /// The proxy lookups' generation, followed from every host's commits (and advanced at once by this one's).
    let generationWatch = PostgresGenerationWatch()
    /// How many times a write is retried after a serialization failure.
    static let maximumAttempts = 20

    init(location: PostgresLocation, connections: Int = 8, logger: Logger) throws {
        self.location = location
        self.logger = logger
        var configuration: PostgresConnection.Configuration
        if let socket = location.unixSocketPath {
            configuration = .init(unixSocketPath: socket, username: location.user, password: location.password, database: location.database)
        } else {
            configuration = .init(
                host: location.host, port: location.port, username: location.user, password: location.password, database: location.database,
                tls: try Self.tls(for: location))
        }
        configuration.options.connectTimeout = .seconds(5)
        self.configuration = configuration
        slots = DispatchSemaphore(value: connections)
        self.connections = connections
        threads = NIOThreadPool(numberOfThreads: connections)
        threads.start()
    }

    deinit {
        // Never waits: the last reference may go on an event loop or on one of these very threads.
        // Each connection is kept until its close completes (PostgresNIO checks that a connection is closed first).
        for connection in idle.withLock({ $0 }) { connection.close().whenComplete { _ in withExtendedLifetime(connection) {} } }
        threads.shutdownGracefully { _ in }
    }

    /// TLS as the URL's `sslmode` asks; the certificate is verified for `verify-ca` and `verify-full`.
    static func tls(for location: PostgresLocation) throws -> PostgresConnection.Configuration.TLS {
        guard location.sslMode != .disable else { return .disable }
        var tls = TLSConfiguration.makeClientConfiguration()
        switch location.sslMode {
        case .verifyFull: tls.certificateVerification = .fullVerification
        case .verifyCA: tls.certificateVerification = .noHostnameVerification
        default: tls.certificateVerification = .none
        }
        if let root = location.rootCertificate { tls.trustRoots = .file(root) }
        let context: NIOSSLContext
        do {
            context = try NIOSSLContext(configuration: tls)
        } catch {
            throw StoreError("cannot set up TLS for the database \(location): \(error) (check sslrootcert)")
        }
        return location.sslMode == .prefer ? .prefer(context) : .require(context)
    }

    /// A new connection (the pool's, or a dedicated one such as the generation watch's).
    func connect() throws -> PostgresConnection {
        do {
            return try PostgresConnection.connect(
                on: MultiThreadedEventLoopGroup.singleton.next(), configuration: configuration, id: nextID.add(1, ordering: .relaxed).oldValue,
                logger: logger
            ).wait()
        } catch {
            throw StoreError("cannot connect to the database \(location): \(Self.describe(error))")
        }
    }

    /// Runs `body` on a pooled connection, on the calling thread (which may block).
    func withConnection<T>(_ body: (PostgresConnection) throws -> T) throws -> T {
        slots.wait()
        defer { slots.signal() }
        var pooled = idle.withLock { $0.popLast() }
        while let connection = pooled, connection.isClosed { pooled = idle.withLock { $0.popLast() } }
        let connection = try pooled ?? connect()
        do {
            let value = try body(connection)
            if !connection.isClosed { idle.withLock { $0.append(connection) } }
            return value
        } catch let failure as ConnectionFailure {
            // Its state is unknown (a ROLLBACK that failed): it never serves another transaction.
            connection.close().whenComplete { _ in withExtendedLifetime(connection) {} }
            throw failure.error
        } catch let error as PSQLError where error.serverInfo == nil {
            // The connection itself failed (the server went away): it is never pooled again.
            connection.close().whenComplete { _ in withExtendedLifetime(connection) {} }
            throw error
        } catch {
            if !connection.isClosed { idle.withLock { $0.append(connection) } }
            throw error
        }
    }

    /// Runs `body` in one transaction on the calling thread (which may block), retrying a write that lost a
    /// serialization race.
    func transaction<T>(readOnly: Bool, host: String? = nil, _ body: (StoreTransaction) throws -> T) throws -> T {
        var attempt = 1
        var staleConnections = 0
        while true {
            do {
                return try withConnection { connection in
                    let statements = PostgresStoreConnection(connection: connection, logger: logger)
                    do {
                        _ = try statements.execute(
                            readOnly ? "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY" : "BEGIN ISOLATION LEVEL READ COMMITTED", [])
                    } catch let error as PSQLError where error.serverInfo == nil {
                        throw ConnectionFailure(error: StaleConnection(error: error))
                    }
                    let value: T
                    let generation: Int?
                    do {
                        value = try body(StoreTransaction(statements, host: host))
                        // This host's own changes to what the proxy caches count at once, not when their
                        // notification comes back.
                        generation = readOnly ? nil : try StoreTransaction(statements).lookupGeneration()
                    } catch let failure {
                        do { _ = try statements.execute("ROLLBACK", []) } catch { throw ConnectionFailure(error: failure) }
                        throw failure
                    }
                    do {
                        try statements.commit()
                    } catch let error as PSQLError where error.serverInfo == nil {
                        // The connection went during COMMIT: the server may or may not have committed.
                        throw ConnectionFailure(
                            error: StoreError(
                                "the connection to the database was lost while committing: the change may or may not have been made; check before retrying"
                            ))
                    }
                    if let generation { generationWatch.advance(to: generation) }
                    return value
                }
            } catch let error as PSQLError where Self.isRetryable(error, attempt: attempt) {
                attempt += 1
                usleep(UInt32.random(in: 1_000...(5_000 * UInt32(min(attempt, 10)))))
            } catch let stale as StaleConnection {
                // A pooled connection the server dropped (it restarted): nothing ran, so a fresh one is tried, at
                // most once per pooled connection.
                staleConnections += 1
                if staleConnections > connections { throw stale.error }
            }
        }
    }

    /// Runs `body` off the concurrency pool, on a thread that may block.
    func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await threads.runIfActive(body)
    }

    /// Deadlocks and serialization failures are retried up to `maximumAttempts`; a unique violation a few times
    /// only (a second run's own checks should then refuse cleanly, or the statement really is a duplicate).
    private static func isRetryable(_ error: PSQLError, attempt: Int) -> Bool {
        switch error.serverInfo?[.sqlState] {
        case "40001", "40P01": attempt < maximumAttempts
        case "23505": attempt < 3
        default: false
        }
    }

    /// A pooled connection that failed before its transaction began: closed, and the transaction tried again.
    struct StaleConnection: Error {
        let error: PSQLError
    }

    /// A failure that leaves the connection in an unknown state: it is closed, and `error` is rethrown.
    struct ConnectionFailure: Error {
        let error: any Error
    }

    /// A PostgreSQL error in words, without the statement or its values.
    static func describe(_ error: any Error) -> String {
        guard let error = error as? PSQLError else { return "\(error)" }
        if let message = error.serverInfo?[.message] {
            return "\(message) (SQLSTATE \(error.serverInfo?[.sqlState] ?? "?"))"
        }
        switch error.code {
        case .connectionError: return "the connection failed (is PostgreSQL running and listening there?)"
        case .serverClosedConnection, .clientClosedConnection: return "the connection was closed"
        case .unexpectedBackendMessage: return "an unexpected answer from the server"
        default: return "\(error.code)"
        }
    }
}
