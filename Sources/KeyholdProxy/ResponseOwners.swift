import Synchronization

/// Which tenant made each Responses API response this proxy served, in memory (the store holds them all, for a
/// restarted daemon and the fleet's other hosts): a tenant may read, continue, delete or cancel its own responses
/// only, since every tenant's calls go out with the same platform key.
final class ResponseOwners: Sendable {
    private let owners = Mutex<[String: Int64]>([:])
    /// The most ids kept in memory; past it the map starts again (the store still answers).
    static let capacity = 20_000

    func remember(_ responseID: String, tenantID: Int64) {
        owners.withLock { all in
            if all.count >= Self.capacity { all.removeAll(keepingCapacity: true) }
            all[responseID] = tenantID
        }
    }

    func owner(of responseID: String) -> Int64? { owners.withLock { $0[responseID] } }
}
