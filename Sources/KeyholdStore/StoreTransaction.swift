/// One transaction on the store, handed to the closure of `Store.read` or `Store.write` and valid only inside it.
///
/// Every operation the server, the proxy and the CLI perform on Keyhold's state is a method of this type, written
/// once for both databases (SQLite and PostgreSQL), so the engines and their SQL stay inside the store target. An
/// action and its audit record (`appendAudit`) go in one transaction: both are written, or neither.
public struct StoreTransaction {
    let connection: any StoreConnection
    /// The host whose daemon runs this transaction: every audit record it appends names it.
    let host: String?

    init(_ connection: any StoreConnection, host: String? = nil) {
        self.connection = connection
        self.host = host
    }
}
