/// Waits for work up to a time limit.
public enum TimeLimit {
    /// What `body` gives if it finishes within `limit`; nil when it gives nil or the time runs out (it is then
    /// cancelled; an unstructured task it awaits runs on).
    public static func first<T: Sendable>(within limit: Duration, _ body: @escaping @Sendable () async -> T?) async -> T? {
        await withTaskGroup(of: T?.self) { group in
            group.addTask { await body() }
            group.addTask {
                try? await Task.sleep(for: limit)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
    }
}
