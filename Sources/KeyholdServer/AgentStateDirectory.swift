import Foundation

/// A tenant's persistent agent state: systemd's `StateDirectory=keyhold-agents/TENANT`. With `DynamicUser=yes`,
/// systemd keeps it in `/var/lib/private/keyhold-agents/TENANT` (the private parent is 0700, so no other unit can
/// reach it) and mounts it into the tenant's sandbox only, at `$STATE_DIRECTORY`, owned by the tenant's user. It
/// survives restarts, crashes, daemon restarts and rotations; `keyhold tenant delete` removes it.
///
/// During a blue/green rotation both agents of the tenant share it (same user, same directory) for the overlap.
///
/// Everything in it belongs to the tenant, who may plant symlinks and swap directories while the daemon (root)
/// looks: the daemon walks and deletes it by file descriptor (`openat` with `O_NOFOLLOW`, `fstatat`,
/// `unlinkat`), never by path, and never leaves its file system.
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
        let root = open(hostPath(privatePath), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard root >= 0 else { return 0 }
        var info = stat()
        guard fstat(root, &info) == 0 else {
            close(root)
            return 0
        }
        return Self.walk(root, device: info.st_dev, remove: false)
    }

    /// Removes the directory and systemd's symlink to it.
    /// - Returns: the bytes freed.
    @discardableResult
    func remove() throws -> UInt64 {
        let path = hostPath(privatePath)
        let root = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard root >= 0 else {
            if errno == ENOENT { return 0 }
            throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
        }
        var info = stat()
        fstat(root, &info)
        let bytes = Self.walk(root, device: info.st_dev, remove: true)
        guard rmdir(path) == 0 || errno == ENOENT else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        unlink(hostPath("/var/lib/keyhold-agents/\(tenant)"))
        return bytes
    }

    /// Sums (and with `remove`, deletes) what is under the open directory `directory`, which it closes. Entries are
    /// opened relative to their directory without following symlinks; other file systems (mounts) are skipped.
    private static func walk(_ directory: Int32, device: dev_t, remove: Bool) -> UInt64 {
        guard let stream = fdopendir(directory) else {
            close(directory)
            return 0
        }
        defer { closedir(stream) }
        var total: UInt64 = 0
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name == "." || name == ".." { continue }
            var info = stat()
            guard fstatat(directory, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
            total += UInt64(info.st_blocks) * 512
            if info.st_mode & S_IFMT == S_IFDIR {
                guard info.st_dev == device else { continue }
                let child = openat(directory, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                if child >= 0 { total += walk(child, device: device, remove: remove) }
                if remove { unlinkat(directory, name, AT_REMOVEDIR) }
            } else if remove {
                unlinkat(directory, name, 0)
            }
        }
        return total
    }
}
