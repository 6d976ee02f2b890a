import Synchronization

/// Ids for proxied requests (the usage table's `request_id`) made without a system call: a random prefix drawn
/// once per process and a counter. Foundation's `UUID()` opened `/dev/urandom` on every call.
enum RequestID {
    private static let prefix: String = {
        let digits = String(UInt64.random(in: .min ... .max), radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }()
    private static let counter = Atomic<UInt64>(0)

    /// A new id, unique within this process and (by its 64 random bits) across processes.
    static func next() -> String {
        prefix + "-" + String(counter.add(1, ordering: .relaxed).newValue, radix: 16)
    }
}
