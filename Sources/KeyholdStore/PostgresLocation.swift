import Foundation

/// Where a PostgreSQL store lives, from a `postgresql://USER:PASSWORD@HOST:PORT/DATABASE` URL (`postgres://` too;
/// `?host=/path/to/dir` for a Unix socket directory).
struct PostgresLocation: Sendable, CustomStringConvertible {
    var host: String
    var port: Int
    var user: String
    var password: String?
    var database: String
    /// The socket's path when `host` names a directory.
    var unixSocketPath: String?
    /// `?sslmode=`: libpq's names. Default: `disable` on loopback and Unix sockets, `verify-full` anywhere else
    /// (the certificate checked against the system's roots, or `?sslrootcert=FILE`, and the host name).
    var sslMode: SSLMode
    /// `?sslrootcert=`: a PEM file of the CA that signed the server's certificate.
    var rootCertificate: String?

    enum SSLMode: String, Sendable {
        case disable, prefer, require
        case verifyCA = "verify-ca"
        case verifyFull = "verify-full"
    }

    /// Whether `text` is meant as a PostgreSQL URL (rather than an SQLite file).
    static func isURL(_ text: String) -> Bool {
        let lowered = text.trimmingCharacters(in: .whitespaces).lowercased()
        return lowered.hasPrefix("postgresql://") || lowered.hasPrefix("postgres://")
    }

    /// - Throws: `StoreError` naming what is wrong (never echoing the password).
    init(url text: String) throws {
        guard Self.isURL(text), let components = URLComponents(string: text.trimmingCharacters(in: .whitespaces)) else {
            throw StoreError("the database URL is not a postgresql:// URL: use postgresql://USER:PASSWORD@HOST:PORT/DATABASE")
        }
        guard let user = components.user, !user.isEmpty else {
            throw StoreError("the database URL names no user: use postgresql://USER:PASSWORD@HOST:PORT/DATABASE")
        }
        let database = String(components.path.drop { $0 == "/" })
        guard !database.isEmpty, !database.contains("/") else {
            throw StoreError("the database URL names no database: end it with /DATABASE (for example /keyhold)")
        }
        let socketDirectory = components.queryItems?.first { $0.name == "host" }?.value
        let host = components.host ?? ""
        guard !host.isEmpty || socketDirectory != nil else {
            throw StoreError("the database URL names no host: use postgresql://USER:PASSWORD@HOST:PORT/DATABASE")
        }
        let port = components.port ?? 5432
        guard (1...65535).contains(port) else { throw StoreError("the database URL's port \(port) is not between 1 and 65535") }
        self.host = host
        self.port = port
        // URLComponents has already decoded them once.
        self.user = user
        password = components.password
        self.database = database.removingPercentEncoding ?? database
        unixSocketPath = socketDirectory.map { "\($0)/.s.PGSQL.\(port)" }
        let local = socketDirectory != nil || ["127.0.0.1", "localhost", "::1", "[::1]"].contains(host.lowercased())
        let mode = components.queryItems?.first { $0.name == "sslmode" }?.value
        if let mode {
            guard let parsed = SSLMode(rawValue: mode == "allow" ? "prefer" : mode) else {
                throw StoreError(
                    "the database URL's sslmode '\(mode.prefix(20))' is not one of disable, allow, prefer, require, verify-ca, verify-full")
            }
            sslMode = parsed
        } else {
            sslMode = local ? .disable : .verifyFull
        }
        rootCertificate = components.queryItems?.first { $0.name == "sslrootcert" }?.value
    }

    /// The URL without its password, for messages and logs.
    var description: String {
        let at = unixSocketPath.map { "\($0)" } ?? "\(host):\(port)"
        return "postgresql://\(user)@\(at)/\(database)"
    }
}
