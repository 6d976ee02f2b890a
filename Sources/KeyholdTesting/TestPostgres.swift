import Foundation
import Synchronization

/// A throwaway PostgreSQL 15 cluster for tests (Debian's `postgresql` package): its own data directory, a server
/// on 127.0.0.1 at a free port and on a Unix socket in the cluster directory, a role `keyhold` with a random
/// password and a database `keyhold` owned by it.
///
/// The cluster lives under ``rootDirectory`` (not /tmp: the tests' private systemd has its own /tmp) and belongs to
/// the `postgres` system user, since PostgreSQL refuses to run as root; its programs run through `runuser`. Local
/// (socket) connections are trusted, TCP connections need the password (SCRAM). The server is stopped with
/// `pg_ctl` by its data directory and the directory removed in ``destroy()`` (also called by `deinit`).
public final class TestPostgres: Sendable {
    /// Where clusters are made, one directory each (`PID-RANDOM`, so that a crashed test's cluster can be found).
    public static let rootDirectory = "/var/tmp/keyhold-test-pg"
    /// The programs of Debian's PostgreSQL 15.
    static let binDirectory = "/usr/lib/postgresql/15/bin"
    /// The system user the server runs as.
    static let systemUser = "postgres"

    /// Whether PostgreSQL 15 is installed: `initdb` and the `postgres` system user exist.
    public static var isAvailable: Bool {
        FileManager.default.isExecutableFile(atPath: binDirectory + "/initdb") && getpwnam(systemUser) != nil
    }

    /// The cluster directory: the data directory `data`, the Unix socket and the server log `postgres.log`.
    public let directory: String
    /// The TCP port on 127.0.0.1, kept across ``stop()`` and ``start()``.
    public let port: Int
    /// The password of the role `keyhold`.
    public let password: String
    /// `postgresql://keyhold:PASSWORD@127.0.0.1:PORT/keyhold`.
    public let url: String
    private let cluster: PostgresCluster
    /// Whether ``destroy()`` has run; held while the server is started or stopped.
    private let destroyed = Mutex(false)

    /// Makes the cluster, starts it and creates the role and database `keyhold`.
    /// - Throws: ``TestPostgresError`` saying what to do (install PostgreSQL, run as root) or what failed.
    public init() throws {
        guard Self.isAvailable else { throw TestPostgresError.notInstalled }
        guard geteuid() == 0 else { throw TestPostgresError.notRoot }
        Self.removeLeftoverClusters()
        let cluster = try PostgresCluster.make(under: Self.rootDirectory)
        let port: Int
        do {
            try cluster.initialize()
            port = try cluster.startOnFreePort()
        } catch {
            cluster.stopAndRemove()
            throw error
        }
        let password = Self.randomHex(byteCount: 16)
        self.cluster = cluster
        directory = cluster.directory
        self.port = port
        self.password = password
        url = Self.url(password: password, port: port, database: "keyhold")
        do {
            try cluster.runSQL("CREATE ROLE keyhold LOGIN PASSWORD '\(password)';\nCREATE DATABASE keyhold OWNER keyhold;\n", port: port)
        } catch {
            destroy()
            throw error
        }
    }

    deinit {
        destroy()
    }

    /// Creates another database owned by `keyhold`, for a test that needs a fresh one.
    /// - Parameter name: a plain lower-case SQL identifier (`[a-z_][a-z0-9_]*`, at most 63 bytes).
    /// - Returns: its URL, like ``url`` with `name` as the database.
    public func makeDatabase(_ name: String) throws -> String {
        guard Self.isPlainIdentifier(name) else { throw TestPostgresError.invalidDatabaseName(name) }
        try cluster.runSQL("CREATE DATABASE \(name) OWNER keyhold;\n", port: port)
        return Self.url(password: password, port: port, database: name)
    }

    /// Runs `sql` (one or more statements) as the superuser in `database`, behind every check the store makes, as an
    /// attacker with access to the server would; returns what psql printed (rows unaligned, `|` between columns).
    @discardableResult
    public func execute(_ sql: String, database: String = "keyhold") throws -> String {
        try cluster.runSQL(sql + "\n", port: port, database: database)
    }

    /// Stops the server (`pg_ctl stop -m fast`: connections are closed, the data kept).
    public func stop() throws {
        try destroyed.withLock { isDestroyed in
            guard !isDestroyed else { throw TestPostgresError.destroyed }
            try cluster.stop(mode: "fast")
        }
    }

    /// Starts the stopped server again on the same port, and returns once it accepts connections.
    public func start() throws {
        try destroyed.withLock { isDestroyed in
            guard !isDestroyed else { throw TestPostgresError.destroyed }
            try cluster.start(port: port)
        }
    }

    /// Whether the server is running (`pg_ctl status`).
    public var isRunning: Bool {
        destroyed.withLock { isDestroyed in !isDestroyed && cluster.isRunning }
    }

    /// What the server logged so far, for a failing test's message.
    public var serverLog: String { cluster.log }

    /// Stops the server if it runs and removes the cluster directory. Later calls do nothing.
    public func destroy() {
        destroyed.withLock { isDestroyed in
            guard !isDestroyed else { return }
            isDestroyed = true
            cluster.stopAndRemove()
        }
    }

    /// Stops and removes the clusters of test processes that no longer exist (a crash skips `deinit`), so that
    /// their servers do not run on forever.
    private static func removeLeftoverClusters() {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: rootDirectory) else { return }
        for name in names {
            guard let owner = name.split(separator: "-").first.flatMap({ pid_t($0) }), owner != getpid() else { continue }
            guard kill(owner, 0) != 0, errno == ESRCH else { continue }
            PostgresCluster(directory: rootDirectory + "/" + name).stopAndRemove()
        }
    }

    private static func url(password: String, port: Int, database: String) -> String {
        "postgresql://keyhold:\(password)@127.0.0.1:\(port)/\(database)"
    }

    private static func isPlainIdentifier(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, name.utf8.count <= 63 else { return false }
        let lowercase: ClosedRange<Unicode.Scalar> = "a"..."z"
        let digits: ClosedRange<Unicode.Scalar> = "0"..."9"
        guard lowercase.contains(first) || first == "_" else { return false }
        return name.unicodeScalars.allSatisfy { lowercase.contains($0) || digits.contains($0) || $0 == "_" }
    }

    /// `byteCount` random bytes as lower-case hex: safe in SQL literals, URLs and file names.
    static func randomHex(byteCount: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<byteCount).map { _ in
            let byte = UInt8.random(in: 0...255, using: &generator)
            return (byte < 16 ? "0" : "") + String(byte, radix: 16)
        }.joined()
    }
}

/// Why a ``TestPostgres`` could not be made or driven; each description says what to do or what failed.
public enum TestPostgresError: Error, CustomStringConvertible, Sendable {
    /// `initdb` or the `postgres` system user is missing.
    case notInstalled
    /// The tests do not run as root, so they cannot run PostgreSQL as the `postgres` user.
    case notRoot
    /// The cluster directory could not be made.
    case directoryFailed(path: String, reason: String)
    /// A PostgreSQL program exited with an error; `output` is what it printed.
    case commandFailed(command: String, output: String)
    /// The server did not start; `log` is what it logged meanwhile.
    case startFailed(port: Int, log: String)
    /// A database name that is not a plain lower-case SQL identifier.
    case invalidDatabaseName(String)
    /// The cluster was already destroyed.
    case destroyed

    public var description: String {
        switch self {
        case .notInstalled:
            "PostgreSQL 15 is not installed (no \(TestPostgres.binDirectory)/initdb or no postgres user): "
                + "run deploy/test.sh, which installs Debian's postgresql"
        case .notRoot:
            "TestPostgres runs PostgreSQL as the postgres user through runuser, which needs root: run the tests as root, as deploy/test.sh does"
        case .directoryFailed(let path, let reason):
            "could not make the cluster directory \(path): \(reason); \(TestPostgres.rootDirectory) must be writable by root "
                + "and its parents searchable by the postgres user"
        case .commandFailed(let command, let output):
            "\(command) failed: \(output)"
        case .startFailed(let port, let log):
            "PostgreSQL did not start on 127.0.0.1:\(port) (already running, or the port taken by another program?); its log: \(log)"
        case .invalidDatabaseName(let name):
            "database name \"\(name)\" is not a plain identifier: use lower-case letters, digits and _, at most 63 bytes"
        case .destroyed:
            "this TestPostgres was destroyed: make a new one"
        }
    }
}

/// One cluster directory and the PostgreSQL programs run on it.
private struct PostgresCluster {
    /// Programs see only this: no PG* variables from the caller, messages in English.
    static let environment = ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"]
    /// Server settings, rewritten before each first start; included from `postgresql.conf`.
    static let settingsFile = "keyhold-test.conf"

    let directory: String
    var dataDirectory: String { directory + "/data" }
    var logPath: String { directory + "/postgres.log" }
    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// Makes `ROOT/PID-RANDOM`, mode 0700 and owned by the `postgres` user (`root` itself stays searchable).
    static func make(under root: String) throws -> PostgresCluster {
        let directory = root + "/\(getpid())-\(TestPostgres.randomHex(byteCount: 4))"
        do {
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: root)
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
            try FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: directory)
        } catch {
            throw TestPostgresError.directoryFailed(path: directory, reason: "\(error)")
        }
        guard let account = getpwnam(TestPostgres.systemUser) else { throw TestPostgresError.notInstalled }
        guard chown(directory, account.pointee.pw_uid, account.pointee.pw_gid) == 0 else {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(atPath: directory)
            throw TestPostgresError.directoryFailed(path: directory, reason: "chown to postgres: \(reason)")
        }
        return PostgresCluster(directory: directory)
    }

    /// `initdb` with a superuser `postgres`, trusted socket connections and SCRAM passwords over TCP.
    func initialize() throws {
        try runAsPostgres(
            "initdb",
            [
                "--pgdata=" + dataDirectory, "--username=postgres", "--auth-local=trust", "--auth-host=scram-sha-256",
                "--encoding=UTF8", "--no-locale", "--no-sync", "--no-instructions",
            ]
        ).check("initdb")
        let configuration = try FileHandle(forWritingTo: URL(fileURLWithPath: dataDirectory + "/postgresql.conf"))
        defer { try? configuration.close() }
        try configuration.seekToEnd()
        try configuration.write(contentsOf: Data("\ninclude '\(Self.settingsFile)'\n".utf8))
    }

    /// Starts the server on a port that was free a moment ago, trying another if it was taken meanwhile.
    /// - Returns: the port.
    func startOnFreePort() throws -> Int {
        var attempt = 1
        while true {
            let port = try LoopbackPort.free()
            let settings = """
                listen_addresses = '127.0.0.1'
                port = \(port)
                unix_socket_directories = '\(directory)'
                fsync = off
                """
            try settings.write(toFile: dataDirectory + "/" + Self.settingsFile, atomically: false, encoding: .utf8)
            do {
                try start(port: port)
                return port
            } catch TestPostgresError.startFailed(_, let log) where log.contains("Address already in use") && attempt < 5 {
                attempt += 1
            }
        }
    }

    /// `pg_ctl start`, waiting (at most 60 s) until the server accepts connections.
    /// - Throws: ``TestPostgresError/startFailed(port:log:)`` with what the server logged during this start.
    func start(port: Int) throws {
        let logStart = FileManager.default.contents(atPath: logPath)?.count ?? 0
        let result = try runLeavingDaemon(
            ["/usr/sbin/runuser", "-u", TestPostgres.systemUser, "--", TestPostgres.binDirectory + "/pg_ctl"]
                + ["--pgdata=" + dataDirectory, "--log=" + logPath, "--wait", "--timeout=60", "start"]
        )
        guard result.status != 0 else { return }
        let logOfThisStart = FileManager.default.contents(atPath: logPath)?.dropFirst(logStart) ?? Data()
        throw TestPostgresError.startFailed(port: port, log: result.output + String(decoding: logOfThisStart, as: UTF8.self))
    }

    /// Runs a program that leaves a daemon behind (`pg_ctl start`) and waits for the program only.
    ///
    /// Not through `ProcessRunner`: Foundation's `Process` keeps one end of the socket by which it notices a child's
    /// exit open in the child, so the server would inherit it and `waitUntilExit()` would return only once the server
    /// stops. Here the child gets stdin from /dev/null, stdout and stderr into a file, every other descriptor closed
    /// and default signal handling, and is reaped with `waitpid`.
    private func runLeavingDaemon(_ arguments: [String]) throws -> ProcessResult {
        let command = arguments.joined(separator: " ")
        guard let addCloseFrom = Self.addCloseFrom else {
            throw TestPostgresError.commandFailed(command: command, output: "posix_spawn_file_actions_addclosefrom_np is missing (glibc < 2.34)")
        }
        let outputPath = directory + "/pg_ctl-start.out"
        defer { try? FileManager.default.removeItem(atPath: outputPath) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        _ = addCloseFrom(&actions, 3)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var signals = sigset_t()
        sigemptyset(&signals)
        posix_spawnattr_setsigmask(&attributes, &signals)
        sigfillset(&signals)
        posix_spawnattr_setsigdefault(&attributes, &signals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let argv = arguments.map { strdup($0) } + [nil]
        let environment = Self.environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (argv + environment).forEach { free($0) } }
        var pid = pid_t()
        let spawnError = posix_spawn(&pid, arguments[0], &actions, &attributes, argv, environment)
        guard spawnError == 0 else {
            throw TestPostgresError.commandFailed(command: command, output: "posix_spawn: " + String(cString: strerror(spawnError)))
        }
        var waitStatus: Int32 = 0
        while waitpid(pid, &waitStatus, 0) == -1 {
            guard errno == EINTR else {
                throw TestPostgresError.commandFailed(command: command, output: "waitpid: " + String(cString: strerror(errno)))
            }
        }
        // WIFEXITED/WEXITSTATUS are C macros, not imported: the low 7 bits are the signal, 0 for a normal exit.
        let terminatingSignal = waitStatus & 0x7f
        let status = terminatingSignal == 0 ? (waitStatus >> 8) & 0xff : 128 + terminatingSignal
        let output = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        return ProcessResult(status: status, stdout: output, stderr: "")
    }

    /// glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34+), looked up at run time: Swift's Glibc module
    /// does not declare it (the header does so only with `_GNU_SOURCE`).
    private static let addCloseFrom: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>?, Int32) -> Int32)? = {
        guard let symbol = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>?, Int32) -> Int32).self)
    }()

    /// `pg_ctl stop` in `mode` (`fast`, `immediate`), waiting until the server has exited.
    func stop(mode: String) throws {
        try runAsPostgres("pg_ctl", ["--pgdata=" + dataDirectory, "--mode=" + mode, "--wait", "stop"]).check("pg_ctl stop")
    }

    /// `pg_ctl status`: exit status 0 when running, 3 when not.
    var isRunning: Bool {
        (try? runAsPostgres("pg_ctl", ["--pgdata=" + dataDirectory, "status"]))?.status == 0
    }

    /// Runs `sql` as the superuser `postgres` over the Unix socket (trusted), stopping at the first error.
    @discardableResult
    func runSQL(_ sql: String, port: Int, database: String = "postgres") throws -> String {
        let result = try ProcessRunner.run(
            TestPostgres.binDirectory + "/psql",
            [
                "--no-psqlrc", "--quiet", "--set=ON_ERROR_STOP=1", "--no-align", "--tuples-only", "--host=" + directory, "--port=\(port)",
                "--username=postgres", "--dbname=" + database,
            ],
            input: Array(sql.utf8),
            environment: Self.environment
        )
        try result.check("psql")
        return result.stdout
    }

    /// Whether the process named in `postmaster.pid` is this cluster's server, not a stale file's reused pid.
    var serverProcessExists: Bool {
        guard let pidFile = try? String(contentsOfFile: dataDirectory + "/postmaster.pid", encoding: .utf8),
            let pid = pidFile.split(separator: "\n").first.flatMap({ pid_t($0) }),
            let commandLine = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline")
        else { return false }
        return String(decoding: commandLine, as: UTF8.self).contains(dataDirectory)
    }

    /// Stops the server if it runs (fast, else immediate) and removes the directory.
    func stopAndRemove() {
        if serverProcessExists {
            do { try stop(mode: "fast") } catch { try? stop(mode: "immediate") }
        }
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Runs a PostgreSQL program as the `postgres` user, which it must be (it refuses root).
    private func runAsPostgres(_ program: String, _ arguments: [String]) throws -> ProcessResult {
        try ProcessRunner.run(
            "/usr/sbin/runuser", ["-u", TestPostgres.systemUser, "--", TestPostgres.binDirectory + "/" + program] + arguments,
            environment: Self.environment
        )
    }
}

extension ProcessResult {
    /// Throws ``TestPostgresError/commandFailed(command:output:)`` unless `program` exited with status 0.
    fileprivate func check(_ program: String) throws {
        guard status == 0 else { throw TestPostgresError.commandFailed(command: program, output: output) }
    }
}
