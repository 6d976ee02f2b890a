import Synchronization

/// Thread-safe mutable state shared by the server object and the request handler.
final class FakeProviderState: Sendable {
    private struct Storage {
        var configuration: FakeProvider.Configuration
        var requests: [FakeProvider.RecordedRequest] = []
        /// Responses API responses made with `store` (the default), by id, as JSON.
        var storedResponses: [String: FakeJSON] = [:]
    }

    private let storage: Mutex<Storage>

    init(configuration: FakeProvider.Configuration) {
        storage = Mutex(Storage(configuration: configuration))
    }

    var configuration: FakeProvider.Configuration {
        storage.withLock { $0.configuration }
    }

    func update(_ change: (inout FakeProvider.Configuration) -> Void) {
        storage.withLock { change(&$0.configuration) }
    }

    var requests: [FakeProvider.RecordedRequest] {
        storage.withLock { $0.requests }
    }

    var requestCount: Int {
        storage.withLock { $0.requests.count }
    }

    func record(_ request: FakeProvider.RecordedRequest) {
        storage.withLock { $0.requests.append(request) }
    }

    /// A stored Responses API response.
    func storedResponse(_ id: String) -> FakeJSON? { storage.withLock { $0.storedResponses[id] } }

    func store(response: FakeJSON, id: String) { storage.withLock { $0.storedResponses[id] = response } }

    /// Deletes a stored response; false when there was none.
    func deleteResponse(_ id: String) -> Bool { storage.withLock { $0.storedResponses.removeValue(forKey: id) != nil } }

    func resetRequests() {
        storage.withLock { $0.requests.removeAll() }
    }

    /// Returns the failure to inject for a request to `provider`, consuming one use of it.
    func takeFailure(for provider: FakeProvider.Provider) -> FakeProvider.Failure? {
        storage.withLock { storage in
            guard var failure = storage.configuration.failure else { return nil }
            if let providers = failure.providers, !providers.contains(provider) { return nil }
            if let remaining = failure.remaining {
                guard remaining > 0 else {
                    storage.configuration.failure = nil
                    return nil
                }
                failure.remaining = remaining - 1
                storage.configuration.failure = remaining - 1 > 0 ? failure : nil
            }
            return failure
        }
    }
}
