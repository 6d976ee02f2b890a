import Foundation

/// How a daemon takes part in a fleet: its host id, its capacity, and how long a missed heartbeat is tolerated.
public struct HostOptions: Sendable {
    /// The host's id (`--host-id`, default the machine's hostname): unique in the fleet, part of unit names' records.
    public var id: String
    /// How many sandboxes this host takes (`--max-sandboxes`).
    public var maxSandboxes: Int
    /// A host whose heartbeat is older than this is down (`--lease-seconds`, default 10).
    public var lease: Duration

    public init(id: String = HostOptions.defaultID, maxSandboxes: Int = 500, lease: Duration = .seconds(10)) {
        self.id = id
        self.maxSandboxes = maxSandboxes
        self.lease = lease
    }

    /// The machine's hostname, cut at the first dot.
    public static var defaultID: String {
        String(ProcessInfo.processInfo.hostName.split(separator: ".").first ?? "localhost")
    }

    /// The host id a daemon on `stateDirectory` ran as last (its `host-id` file), so that renaming the machine does
    /// not make it a new host whose old sandboxes look orphaned.
    public static func recordedID(stateDirectory: String) -> String? {
        guard let text = try? String(contentsOfFile: stateDirectory + "/host-id", encoding: .utf8) else { return nil }
        let id = text.trimmingCharacters(in: .whitespacesAndNewlines)
        return id.isEmpty ? nil : id
    }

    /// Records the id this daemon registered as, for the next start without `--host-id`.
    public func record(stateDirectory: String) throws {
        let path = stateDirectory + "/host-id"
        guard Self.recordedID(stateDirectory: stateDirectory) != id else { return }
        try (id + "\n").write(toFile: path, atomically: true, encoding: .utf8)
    }

    /// - Returns: `id`, if it can name a host in unit records and logs.
    /// - Throws: `KeyholdError.invalidInput` saying what a host id is.
    public static func validated(id: String) throws -> String {
        guard id.range(of: "^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$", options: .regularExpression) != nil else {
            throw KeyholdError.invalidInput(
                "host id '\(id.prefix(64))' must be 1–63 letters, digits, dots, hyphens or underscores, starting with a letter or digit")
        }
        return id
    }

    public var leaseMilliseconds: Int64 { lease.components.seconds * 1000 + lease.components.attoseconds / 1_000_000_000_000_000 }

    /// - Throws: `KeyholdError.invalidInput` for an id that cannot name a host in unit records and logs, or a
    ///   capacity or lease out of range.
    public func validated() throws -> HostOptions {
        _ = try Self.validated(id: id)
        guard (1...100_000).contains(maxSandboxes) else { throw KeyholdError.invalidInput("--max-sandboxes must be between 1 and 100000") }
        guard leaseMilliseconds >= 1000 && leaseMilliseconds <= 600_000 else {
            throw KeyholdError.invalidInput("--lease-seconds must be between 1 and 600")
        }
        return self
    }
}
