import CSystemd
import Foundation
import KeyholdCore
import Synchronization

/// Follows systemd's signals about the units whose names start with one of `prefixes`, on a bus connection and a
/// thread of its own: each `PropertiesChanged` of their `ActiveState` and each `UnitRemoved`, yielded as
/// ``UnitEvent``s. When the connection breaks it reconnects and yields ``UnitEvent/resynchronise`` (a change may have
/// been missed); it stops, within half a second, once nobody reads its events.
final class UnitSignalFollower: Sendable {
    private let address: String?
    private let prefixes: [String]
    private let stopped = Atomic<Bool>(false)
    private let continuation: AsyncStream<UnitEvent>.Continuation

    /// Starts following on a thread of its own; the signals go to `continuation`, until its stream ends.
    static func start(address: String?, prefixes: [String], continuation: AsyncStream<UnitEvent>.Continuation) {
        let follower = UnitSignalFollower(address: address, prefixes: prefixes, continuation: continuation)
        continuation.onTermination = { _ in follower.stopped.store(true, ordering: .relaxed) }
        let thread = Thread { follower.follow() }
        thread.name = "keyhold-unit-signals"
        thread.start()
    }

    private init(address: String?, prefixes: [String], continuation: AsyncStream<UnitEvent>.Continuation) {
        self.address = address
        self.prefixes = prefixes
        self.continuation = continuation
    }

    private var isStopped: Bool { stopped.load(ordering: .relaxed) }

    // MARK: The signal thread

    private func follow() {
        while !isStopped {
            do {
                let target = SystemdManager.resolve(address)
                let bus = try BusConnection(address: target.address, busClient: target.busClient)
                var slots: [OpaquePointer] = []
                defer { slots.forEach { sd_bus_slot_unref($0) } }
                try subscribe(bus, slots: &slots)
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
        let userdata = Unmanaged.passUnretained(self).toOpaque()  // the follower outlives its connections
        let rules: [(String, sd_bus_message_handler_t)] = [
            (
                "type='signal',sender='org.freedesktop.systemd1',interface='org.freedesktop.DBus.Properties',"
                    + "member='PropertiesChanged',arg0='org.freedesktop.systemd1.Unit'",
                { message, userdata, _ in
                    guard let message, let userdata else { return 0 }
                    Unmanaged<UnitSignalFollower>.fromOpaque(userdata).takeUnretainedValue().propertiesChanged(BusMessage.borrowing(message))
                    return 0
                }
            ),
            (
                "type='signal',sender='org.freedesktop.systemd1',path='/org/freedesktop/systemd1',"
                    + "interface='org.freedesktop.systemd1.Manager',member='UnitRemoved'",
                { message, userdata, _ in
                    guard let message, let userdata else { return 0 }
                    Unmanaged<UnitSignalFollower>.fromOpaque(userdata).takeUnretainedValue().unitRemoved(BusMessage.borrowing(message))
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
