import Foundation

/// A tenant's persistent agent state: systemd's `StateDirectory=keyhold-agents/TENANT`. With `DynamicUser=yes`,
/// systemd keeps it in `/var/lib/private/keyhold-agents/TENANT` (the private parent is 0700, so no other unit can
/// reach it) and mounts it into the tenant's sandbox only, at `$STATE_DIRECTORY`, owned by the tenant's user. It
/// survives restarts, crashes, daemon restarts and rotations; `keyhold tenant delete` removes it.
///
/// During a blue/green rotation both agents of the tenant share it (same user, same directory) for the overlap.
struct AgentStateDirectory: Sendable {
    let tenant: String
    /// Maps a path in systemd's view to one this daemon can open (`SandboxBoundary.hostPath`).
    let hostPath: @Sendable (String) -> String

    /// The `StateDirectory=` value.
    var systemdName: String { "keyhold-agents/\(tenant)" }
    /// Where the agent sees it.
    var pathInSandbox: String { "/var/lib/keyhold-agents/\(tenant)" }
    /// Where it lives, in systemd's view.
    var privatePath: String { "/var/lib/private/keyhold-agents/\(tenant)" }

    /// Bytes on disk (allocated blocks) under the directory, or 0 when it does not exist yet.
    func usedBytes() -> UInt64 {
        var total: UInt64 = 0
        var stack = [hostPath(privatePath)]
        while let directory = stack.popLast() {
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { continue }
            for name in names {
                let path = directory + "/" + name
                var info = stat()
                guard lstat(path, &info) == 0 else { continue }
                total += UInt64(info.st_blocks) * 512
                if info.st_mode & S_IFMT == S_IFDIR { stack.append(path) }
            }
        }
        return total
    }

    /// Removes the directory and systemd's symlink to it.
    /// - Returns: the bytes freed.
    @discardableResult
    func remove() throws -> UInt64 {
        let bytes = usedBytes()
        let directory = hostPath(privatePath)
        if FileManager.default.fileExists(atPath: directory) { try FileManager.default.removeItem(atPath: directory) }
        unlink(hostPath("/var/lib/keyhold-agents/\(tenant)"))
        return bytes
    }
}
