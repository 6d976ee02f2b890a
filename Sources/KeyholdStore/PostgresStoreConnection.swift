import Foundation
import Logging
import NIOCore
import PostgresNIO

/// A PostgreSQL connection inside one of the store's transactions. Statements are written with `?` placeholders
/// (as for SQLite) and numbered here; each call waits for its answer, on a thread of the store's own pool.
struct PostgresStoreConnection: StoreConnection {
    let connection: PostgresConnection
    let logger: Logger
    var dialect: SQLDialect { .postgres }

    func execute(_ sql: String, _ arguments: [StoreValue]) throws -> Int {
        try run(sql, arguments).metadata.rows ?? 0
    }

    /// Commits; PostgreSQL answers COMMIT on a transaction an earlier error aborted with ROLLBACK, which is an error here.
    func commit() throws {
        let answer = try run("COMMIT", [])
        guard answer.metadata.command == "COMMIT" else {
            throw StoreError("the database rolled the transaction back (an earlier statement failed): nothing was changed")
        }
    }

    func fetchAll(_ sql: String, _ arguments: [StoreValue]) throws -> [StoreRow] {
        try run(sql, arguments).rows.map { row in
            var columns: [String: StoreValue] = [:]
            for cell in row { columns[cell.columnName] = try Self.value(of: cell) }
            return StoreRow(columns: columns)
        }
    }

    private func run(_ sql: String, _ arguments: [StoreValue]) throws -> PostgresQueryResult {
        var binds = PostgresBindings(capacity: arguments.count)
        for argument in arguments {
            switch argument {
            case .null: binds.appendNull()
            case .integer(let integer): binds.append(integer)
            case .real(let real): binds.append(real)
            case .text(let text): binds.append(text)
            case .blob(let data): try binds.append(data)
            case .boolean(let boolean): binds.append(boolean)
            }
        }
        return try connection.query(PostgresQuery(unsafeSQL: Self.numbered(sql), binds: binds), logger: logger).wait()
    }

    /// `?` placeholders as PostgreSQL's `$1`, `$2`... (a `?` inside a quoted literal or identifier stays).
    static func numbered(_ sql: String) -> String {
        var result = ""
        result.reserveCapacity(sql.utf8.count + 16)
        var count = 0
        var quote: Character?
        for character in sql {
            if let open = quote {
                if character == open { quote = nil }
                result.append(character)
            } else if character == "'" || character == "\"" {
                quote = character
                result.append(character)
            } else if character == "?" {
                count += 1
                result += "$\(count)"
            } else {
                result.append(character)
            }
        }
        return result
    }

    private static func value(of cell: PostgresCell) throws -> StoreValue {
        guard cell.bytes != nil else { return .null }
        switch cell.dataType {
        case .int2, .int4, .int8: return .integer(try cell.decode(Int64.self))
        case .bool: return .boolean(try cell.decode(Bool.self))
        case .float4, .float8: return .real(try cell.decode(Double.self))
        case .bytea: return .blob(try cell.decode(Data.self))
        case .numeric:
            let number = NSDecimalNumber(decimal: try cell.decode(Decimal.self))
            return number.doubleValue.rounded() == number.doubleValue ? .integer(number.int64Value) : .real(number.doubleValue)
        default: return .text(try cell.decode(String.self))
        }
    }
}
