import Foundation
import Synchronization

/// One PostgreSQL cluster for a whole test process (each test makes a database of its own in it), destroyed when
/// the process exits.
public enum SharedTestPostgres {
    private static let cluster = Mutex<TestPostgres?>(nil)

    /// The cluster, started by the first caller.
    public static func get() throws -> TestPostgres {
        try cluster.withLock { cluster in
            if let cluster { return cluster }
            let made = try TestPostgres()
            cluster = made
            atexit { SharedTestPostgres.destroy() }
            return made
        }
    }

    static func destroy() { cluster.withLock { $0?.destroy() } }

    /// A new database in the shared cluster: its name and URL.
    public static func makeDatabase(prefix: String) throws -> (name: String, url: String) {
        let name = prefix + "_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(16)
        return (name, try get().makeDatabase(name))
    }

    /// Which database the server tests run on: `KEYHOLD_TEST_STORE=postgresql` runs the whole suite on PostgreSQL.
    public static var serverTestsUsePostgres: Bool { ProcessInfo.processInfo.environment["KEYHOLD_TEST_STORE"] == "postgresql" }
}
