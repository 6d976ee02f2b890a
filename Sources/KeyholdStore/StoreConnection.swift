/// Where SQL differs between the two databases (everything else is written once, with `?` placeholders).
enum SQLDialect: Sendable {
    case sqlite, postgres

    /// The database's clock now, in milliseconds since 1970 (leases and heartbeats never use a host's clock).
    var nowMilliseconds: String {
        switch self {
        case .sqlite: "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)"
        case .postgres: "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)"
        }
    }

    /// The name of the binary column type, for casts.
    var blobType: String {
        switch self {
        case .sqlite: "BLOB"
        case .postgres: "BYTEA"
        }
    }

    /// An expression for a blob of zeros as long as `column` (a revoked key's ciphertext is overwritten, not just
    /// unlinked).
    func zeros(sameLengthAs column: String) -> String {
        switch self {
        case .sqlite: "zeroblob(length(\(column)))"
        case .postgres: "decode(repeat('00', length(\(column))), 'hex')"
        }
    }
}

/// One database connection inside a transaction: runs a statement, returns what it changed or read.
protocol StoreConnection {
    var dialect: SQLDialect { get }
    /// Runs a statement; returns how many rows it changed.
    func execute(_ sql: String, _ arguments: [StoreValue]) throws -> Int
    /// Runs a query; returns every row.
    func fetchAll(_ sql: String, _ arguments: [StoreValue]) throws -> [StoreRow]
}

extension StoreTransaction {
    var dialect: SQLDialect { connection.dialect }

    /// Runs a statement; returns how many rows it changed.
    @discardableResult
    func execute(_ sql: String, _ arguments: any StoreArgument...) throws -> Int {
        try connection.execute(sql, arguments.map(\.storeValue))
    }

    func rows(_ sql: String, _ arguments: any StoreArgument...) throws -> [StoreRow] {
        try connection.fetchAll(sql, arguments.map(\.storeValue))
    }

    func row(_ sql: String, _ arguments: any StoreArgument...) throws -> StoreRow? {
        try connection.fetchAll(sql, arguments.map(\.storeValue)).first
    }

    /// The first column of the first row, or nil when there is no row or it is NULL.
    func value<T: StoreColumn>(_ sql: String, _ arguments: any StoreArgument...) throws -> T? {
        guard let row = try connection.fetchAll(sql, arguments.map(\.storeValue)).first, let value = row.columns.values.first else {
            return nil
        }
        return T?.read(value) ?? nil
    }
}
