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

    /// Whether `text` is meant as a PostgreSQL URL (rather than an SQLite file).
    static func isURL(_ text: String) -> Bool { text.hasPrefix("postgresql://") || text.hasPrefix("postgres://") }

    /// - Throws: `StoreError` naming what is wrong (never echoing the password).
    init(url text: String) throws {
        guard Self.isURL(text), let components = URLComponents(string: text) else {
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
        self.user = user.removingPercentEncoding ?? user
        self.password = components.password.map { $0.removingPercentEncoding ?? $0 }
        self.database = database.removingPercentEncoding ?? database
        unixSocketPath = socketDirectory.map { "\($0)/.s.PGSQL.\(port)" }
    }

    /// The URL without its password, for messages and logs.
    var description: String {
        let at = unixSocketPath.map { "\($0)" } ?? "\(host):\(port)"
        return "postgresql://\(user)@\(at)/\(database)"
    }
}
