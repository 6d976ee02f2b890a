import Dispatch

/// ``SystemdControl`` over sd-bus: a ``SystemdManager`` whose blocking calls run on a queue of their own, off Swift's
/// cooperative threads, and a ``UnitSignalFollower`` for the signals. The one place where sd-bus's blocking calls
/// become async ones.
public final class BusSystemd: SystemdControl {
    /// The blocking client.
    public let manager: SystemdManager
    private let requestedAddress: String?
    private let queue = DispatchQueue(label: "keyhold.systemd", attributes: .concurrent)

    /// - Parameter address: an sd-bus address (`unix:path=...`), as ``SystemdManager`` takes it; nil: the host's systemd.
    public init(address: String?) {
        self.requestedAddress = address
        self.manager = SystemdManager(address: address)
    }

    public var location: String { requestedAddress ?? "host" }

    public func startTransientUnit(
        name: String, properties: [UnitProperty], timeout: Duration, whenForked: (@Sendable (StartedUnit) throws -> Void)?
    ) async throws -> StartedUnit {
        try await blocking { [manager] in
            try manager.startTransientUnit(name: name, properties: properties, timeout: timeout, whenForked: whenForked)
        }
    }

    public func stopUnit(name: String, timeout: Duration) async throws {
        try await blocking { [manager] in try manager.stopUnit(name: name, timeout: timeout) }
    }

    public func killUnit(name: String, signal: Int32) async throws {
        try await blocking { [manager] in try manager.killUnit(name: name, signal: signal) }
    }

    public func bindMountUnit(name: String, source: String, destination: String, readOnly: Bool) async throws {
        try await blocking { [manager] in try manager.bindMountUnit(name: name, source: source, destination: destination, readOnly: readOnly) }
    }

    public func resetFailedUnit(name: String) async throws {
        try await blocking { [manager] in try manager.resetFailedUnit(name: name) }
    }

    public func unitStatus(name: String) async throws -> UnitStatus? {
        try await blocking { [manager] in try manager.unitStatus(name: name) }
    }

    public func listUnits(matching pattern: String) async throws -> [String] {
        try await blocking { [manager] in try manager.listUnits(matching: pattern) }
    }

    public func systemState() async throws -> String {
        try await blocking { [manager] in try manager.systemState() }
    }

    public func unitEvents(prefixes: [String]) -> AsyncStream<UnitEvent> {
        let (events, continuation) = AsyncStream.makeStream(of: UnitEvent.self, bufferingPolicy: .bufferingNewest(4096))
        UnitSignalFollower.start(address: requestedAddress, prefixes: prefixes, continuation: continuation)
        return events
    }

    private func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { continuation.resume(with: Result { try body() }) }
        }
    }
}
