import CSystemd
import Foundation
import KeyholdCore

/// Follows systemd's signals about the units whose names start with one of `prefixes`: each `PropertiesChanged` of
/// their `ActiveState` and each `UnitRemoved`, on a bus connection and a thread of its own. Keeps the last state of
/// each such unit, so that the reconciler reads a unit's status over the bus only the first time it meets the unit
/// (``seed(unit:activeState:)``) and learns of every change as it happens.
///
/// When the connection breaks, the watcher forgets every state (a change may have been missed), reconnects and yields
/// ``Event/resynchronise``.
public final class UnitStateWatcher: @unchecked Sendable {
    /// What the watcher saw.
    public enum Event: Sendable, Equatable {
        /// A unit's `ActiveState` changed (`active`, `deactivating`, `inactive`, `failed`, ...).
        case changed(unit: String, activeState: String)
        /// systemd unloaded the unit.
        case removed(unit: String)
        /// The states were forgotten (a new connection): read them again.
        case resynchronise
    }

    /// The state seeded for a unit systemd has not loaded.
    public static let removedState = "removed"

    private let address: String?
    private let prefixes: [String]
    private let lock = NSLock()
    private var states: [String: String] = [:]
    /// Subscriptions made so far: 0 until the first, one more after each reconnection.
    private var subscriptions = 0
    /// Raised by every subscription, signal and forgetting: a read that began at another value may be stale.
    private var version = 0
    private var stopped = false
    private var thread: Thread?
    private let continuation: AsyncStream<Event>.Continuation
    /// Every event, in order (the newest 4,096 kept when nobody reads).
    public let events: AsyncStream<Event>

    /// - Parameters:
    ///   - address: systemd's bus, as `SystemdManager` takes it (nil: the host's).
    ///   - prefixes: unit-name prefixes to follow (`keyhold-`).
    public init(address: String?, prefixes: [String]) {
        self.address = address
        self.prefixes = prefixes
        (events, continuation) = AsyncStream.makeStream(of: Event.self, bufferingPolicy: .bufferingNewest(4096))
    }

    deinit { stop() }

    /// Starts following the signals (once).
    public func start() {
        lock.lock()
        defer { lock.unlock() }
        guard thread == nil, !stopped else { return }
        let thread = Thread { [self] in self.follow() }
        thread.name = "keyhold-unit-signals"
        self.thread = thread
        thread.start()
    }

    /// Stops following (within half a second) and ends `events`.
    public func stop() {
        lock.lock()
        stopped = true
        lock.unlock()
        continuation.finish()
    }

    /// The unit's `ActiveState` as last signalled or seeded; nil when unknown (never seen, or unloaded since).
    public func activeState(of unit: String) -> String? {
        lock.lock()
        defer { lock.unlock() }
        return states[unit]
    }

    /// A token to read before reading a unit's status over the bus, and to pass to ``seed(unit:activeState:readAt:)``.
    public var token: Int {
        lock.lock()
        defer { lock.unlock() }
        return subscriptions > 0 ? version : -1
    }

    /// Records a state read over the bus, unless anything changed since the read began (`readAt`, the ``token``
    /// read before it): a signal, a forgetting or a new subscription. The next pass then reads again.
    public func seed(unit: String, activeState: String, readAt token: Int) {
        lock.lock()
        defer { lock.unlock() }
        if token >= 0, token == version, states[unit] == nil { states[unit] = activeState }
    }

    /// Forgets every state: each unit is read again when next needed (a periodic resynchronisation, or after the host
    /// stopped its agents without the database).
    public func forgetAll() {
        lock.lock()
        defer { lock.unlock() }
        states.removeAll()
        version += 1
    }

    /// Forgets a unit's state (it is read again when next needed).
    public func forget(unit: String) {
        lock.lock()
        defer { lock.unlock() }
        states[unit] = nil
        version += 1
    }

    private var isStopped: Bool {
        lock.lock()
        defer { lock.unlock() }
        return stopped
    }

    // MARK: The signal thread

    private func follow() {
        while !isStopped {
            do {
                let target = SystemdManager.resolve(address)
                let bus = try BusConnection(address: target.address, busClient: target.busClient)
                var slots: [OpaquePointer] = []
                defer { slots.forEach { sd_bus_slot_unref($0) } }
                try subscribe(bus, slots: &slots)
                lock.lock()
                states.removeAll()
                subscriptions += 1
                version += 1
                lock.unlock()
                continuation.yield(.resynchronise)
                while !isStopped {
                    let r = sd_bus_process(bus.bus, nil)
                    if r < 0 { throw SystemdError(code: .unreachable, message: "the signal connection broke", errno: -r) }
                    if r > 0 { continue }
                    let w = sd_bus_wait(bus.bus, 500_000)
                    if w < 0 && w != -EINTR { throw SystemdError(code: .unreachable, message: "the signal connection broke", errno: -w) }
                }
            } catch {
                // systemd restarting, or not reachable yet: try again shortly.
                usleep(500_000)
            }
        }
    }

    private func subscribe(_ bus: BusConnection, slots: inout [OpaquePointer]) throws {
        let userdata = Unmanaged.passUnretained(self).toOpaque()  // the watcher outlives its connections
        let rules: [(String, sd_bus_message_handler_t)] = [
            (
                "type='signal',sender='org.freedesktop.systemd1',interface='org.freedesktop.DBus.Properties',"
                    + "member='PropertiesChanged',arg0='org.freedesktop.systemd1.Unit'",
                { message, userdata, _ in
                    guard let message, let userdata else { return 0 }
                    Unmanaged<UnitStateWatcher>.fromOpaque(userdata).takeUnretainedValue().propertiesChanged(BusMessage.borrowing(message))
                    return 0
                }
            ),
            (
                "type='signal',sender='org.freedesktop.systemd1',path='/org/freedesktop/systemd1',"
                    + "interface='org.freedesktop.systemd1.Manager',member='UnitRemoved'",
                { message, userdata, _ in
                    guard let message, let userdata else { return 0 }
                    Unmanaged<UnitStateWatcher>.fromOpaque(userdata).takeUnretainedValue().unitRemoved(BusMessage.borrowing(message))
                    return 0
                }
            ),
        ]
        for (rule, handler) in rules {
            var slot: OpaquePointer? = nil
            let r = sd_bus_add_match(bus.bus, &slot, rule, handler, userdata)
            guard r >= 0, let slot else { throw SystemdError(code: .protocolError, message: "could not add a signal match", errno: -r) }
            slots.append(slot)
        }
        do {
            _ = try bus.call(try bus.methodCall(member: "Subscribe"), timeout: .seconds(10))
        } catch let error as BusCallError where error.name == "org.freedesktop.systemd1.AlreadySubscribed" {
            // A reused broker name: subscribed already.
        }
    }

    /// `PropertiesChanged(s interface, a{sv} changed, as invalidated)` of a unit object.
    private func propertiesChanged(_ message: BusMessage) {
        guard let unit = unitName(ofPath: sd_bus_message_get_path(message.pointer)), isFollowed(unit) else { return }
        guard (try? message.readString()) != nil, (try? message.enter("a", "{sv}")) == true else { return }
        while (try? message.enter("e", "sv")) == true {
            guard let key = try? message.readString() else { return }
            if key == "ActiveState", (try? message.enter("v", "s")) == true, let state = try? message.readString() {
                _ = try? message.exit()
                lock.lock()
                states[unit] = state
                version += 1
                lock.unlock()
                continuation.yield(.changed(unit: unit, activeState: state))
            } else {
                _ = try? message.skip("v")
            }
            _ = try? message.exit()
        }
    }

    /// `UnitRemoved(s id, o unit)`.
    private func unitRemoved(_ message: BusMessage) {
        guard let unit = try? message.readString(), isFollowed(unit) else { return }
        forget(unit: unit)
        continuation.yield(.removed(unit: unit))
    }

    private func isFollowed(_ unit: String) -> Bool { prefixes.contains { unit.hasPrefix($0) } }

    /// The unit name of an object path such as `/org/freedesktop/systemd1/unit/keyhold_2dacme_2d1_2eservice`.
    private func unitName(ofPath path: UnsafePointer<CChar>?) -> String? {
        guard let path else { return nil }
        var decoded: UnsafeMutablePointer<CChar>? = nil
        guard sd_bus_path_decode(path, "/org/freedesktop/systemd1/unit", &decoded) > 0, let decoded else { return nil }
        defer { free(decoded) }
        return String(cString: decoded)
    }
}
