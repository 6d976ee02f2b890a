import CSystemd
import Glibc

/// One open sd-bus connection to systemd (internal; not thread-safe: `SystemdManager` lends it to one call at a time).
///
/// Ownership: owns one reference to the `sd_bus` and to the `JobRemoved` match slot; both are released in
/// `deinit` (the slot first, so the callback can no longer see `jobResults`).
///
/// Sendable only as a whole, between calls: `SystemdManager` keeps idle connections in a `Mutex` and one call at a
/// time uses each, from one thread.
final class BusConnection: @unchecked Sendable {
    static let destination = "org.freedesktop.systemd1"
    static let managerPath = "/org/freedesktop/systemd1"
    static let managerInterface = "org.freedesktop.systemd1.Manager"

    /// The `sd_bus *`; owned.
    let bus: OpaquePointer
    /// The `sd_bus_slot *` of the JobRemoved match, once subscribed; owned.
    private var jobRemovedSlot: OpaquePointer?
    /// Results of `JobRemoved` signals seen so far, by job object path. Filled by the match callback.
    private let jobResults = JobResults()

    /// Connects to `address`. `busClient` is true for a broker (dbus-daemon, sends `Hello`), false for a
    /// direct connection to systemd's private socket.
    init(address: String, busClient: Bool) throws {
        var bus: OpaquePointer? = nil
        try BusConnection.checkConnect(sd_bus_new(&bus), address: address, step: "allocate a bus")
        guard let bus else { throw BusMessage.shapeError("sd_bus_new returned no bus") }
        do {
            try BusConnection.checkConnect(sd_bus_set_address(bus, address), address: address, step: "parse the address")
            try BusConnection.checkConnect(sd_bus_set_bus_client(bus, busClient ? 1 : 0), address: address, step: "configure")
            try BusConnection.checkConnect(sd_bus_negotiate_fds(bus, 1), address: address, step: "configure")
            try BusConnection.checkConnect(sd_bus_start(bus), address: address, step: "connect")
        } catch {
            sd_bus_unref(bus)
            throw error
        }
        self.bus = bus
    }

    deinit {
        if let jobRemovedSlot { sd_bus_slot_unref(jobRemovedSlot) }
        sd_bus_flush_close_unref(bus)
    }

    /// Set when a call found the connection lost: it is not used again.
    private var discarded = false

    /// Whether the connection can serve another call: sd-bus still considers it open and no call found it lost.
    var isOpen: Bool { !discarded && sd_bus_is_open(bus) > 0 }

    /// Marks the connection lost (it is closed when its last user lets it go).
    func markClosed() { discarded = true }

    // MARK: Calls

    /// Builds a method call to systemd; `build` appends the arguments.
    func methodCall(
        path: String = BusConnection.managerPath, interface: String = BusConnection.managerInterface,
        member: String, build: (BusMessage) throws -> Void = { _ in }
    ) throws -> BusMessage {
        var raw: OpaquePointer? = nil
        try BusMessage.check(
            sd_bus_message_new_method_call(bus, &raw, BusConnection.destination, path, interface, member),
            "create a call to \(member)")
        guard let raw else { throw BusMessage.shapeError("no message for \(member)") }
        let message = BusMessage(owning: raw)
        try build(message)
        return message
    }

    /// Sends `message` and waits for its reply. Throws `BusCallError` (converted by the caller).
    func call(_ message: BusMessage, timeout: Duration?) throws(BusCallError) -> BusMessage {
        var error = sd_bus_error()
        defer { sd_bus_error_free(&error) }
        var reply: OpaquePointer? = nil  // owned by us once set; handed to BusMessage below
        let r = sd_bus_call(bus, message.pointer, timeout.map(BusConnection.microseconds) ?? 0, &error, &reply)
        if r < 0 {
            if let reply { sd_bus_message_unref(reply) }
            throw BusCallError(
                errno: -r,
                name: error.name.map { String(cString: $0) },
                message: error.message.map { String(cString: $0) })
        }
        guard let reply else {
            throw BusCallError(errno: EPROTO, name: nil, message: "no reply")
        }
        return BusMessage(owning: reply)
    }

    // MARK: Jobs

    /// Calls `Manager.Subscribe` and installs the `JobRemoved` match, once per connection.
    func subscribeToJobs() throws(BusCallError) {
        guard jobRemovedSlot == nil else { return }
        var slot: OpaquePointer? = nil
        let userdata = Unmanaged.passUnretained(jobResults).toOpaque()  // jobResults outlives the slot
        let r = sd_bus_add_match(
            bus, &slot,
            "type='signal',sender='org.freedesktop.systemd1',path='/org/freedesktop/systemd1',"
                + "interface='org.freedesktop.systemd1.Manager',member='JobRemoved'",
            { message, userdata, _ in
                guard let message, let userdata else { return 0 }
                let results = Unmanaged<JobResults>.fromOpaque(userdata).takeUnretainedValue()
                results.record(BusMessage.borrowing(message))
                return 0
            }, userdata)
        if r < 0 { throw BusCallError(errno: -r, name: nil, message: "could not add the JobRemoved match") }
        jobRemovedSlot = slot
        do {
            _ = try call(try methodCall(member: "Subscribe"), timeout: nil)
        } catch let error as BusCallError {
            // systemd answers AlreadySubscribed on a reused broker name; that is fine.
            if error.name != "org.freedesktop.systemd1.AlreadySubscribed" { throw error }
        } catch {
            throw BusCallError(errno: EPROTO, name: nil, message: "\(error)")
        }
    }

    /// Forgets results of earlier jobs (call before starting a new one).
    func forgetJobResults() { jobResults.removeAll() }

    /// Waits until systemd removes `job`, and returns its result (`done`, `failed`, ...), or nil on timeout.
    func waitForJob(_ job: String, until deadline: ContinuousClock.Instant) throws(BusCallError) -> String? {
        while true {
            if let result = jobResults.result(for: job) { return result }
            let r = sd_bus_process(bus, nil)
            if r < 0 { throw BusCallError(errno: -r, name: nil, message: "lost the bus while waiting for \(job)") }
            if r > 0 { continue }
            let now = ContinuousClock.now
            if now >= deadline { return nil }
            let w = sd_bus_wait(bus, BusConnection.microseconds(deadline - now))
            if w < 0 && w != -EINTR {
                throw BusCallError(errno: -w, name: nil, message: "lost the bus while waiting for \(job)")
            }
        }
    }

    // MARK: Helpers

    static func microseconds(_ duration: Duration) -> UInt64 {
        let (seconds, attoseconds) = duration.components
        if seconds < 0 { return 1 }
        return max(1, UInt64(seconds) * 1_000_000 + UInt64(attoseconds / 1_000_000_000_000))
    }

    private static func checkConnect(_ r: Int32, address: String, step: String) throws {
        if r < 0 {
            throw SystemdError(
                code: .unreachable,
                message: "Could not \(step) to systemd at \(address): \(String(cString: strerror(-r))). "
                    + SystemdError.addressHint,
                errno: -r)
        }
    }
}

/// A failed sd-bus call: the errno and, for method errors, the D-Bus error name and message.
struct BusCallError: Error {
    var errno: Int32
    var name: String?
    var message: String?

    /// Whether the connection itself broke (worth one reconnect).
    var isConnectionLost: Bool {
        [EPIPE, ECONNRESET, ENOTCONN, ESHUTDOWN, ECONNABORTED, EBADF].contains(errno)
            || (message?.contains("Transport endpoint") ?? false)
    }
}

/// Collected `JobRemoved(u id, o job, s unit, s result)` results (touched only under the manager's lock).
final class JobResults {
    private var results: [String: String] = [:]

    func record(_ message: BusMessage) {
        guard (try? message.readUInt32()) != nil, let job = try? message.readObjectPath(),
            (try? message.readString()) != nil, let result = try? message.readString()
        else { return }
        results[job] = result
    }

    func result(for job: String) -> String? { results[job] }

    func removeAll() { results.removeAll(keepingCapacity: true) }
}

extension BusMessage {
    /// Wraps a message sd-bus lends to a callback: takes an extra reference, dropped by `deinit`.
    static func borrowing(_ pointer: OpaquePointer) -> BusMessage {
        BusMessage(owning: sd_bus_message_ref(pointer))
    }
}
