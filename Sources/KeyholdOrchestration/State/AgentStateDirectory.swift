import CFileStatus
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

    /// How deep the daemon descends while holding a descriptor per level: a tenant can make trees far deeper.
    static let depthLimit = 128
    /// The least an entry counts for, however small: empty files still use an inode of the host's file system.
    static let minimumCharge: UInt64 = 4096

    /// Bytes on disk (allocated blocks) under the directory, or 0 when it does not exist yet; `UInt64.max` (over any
    /// limit) for a tree deeper than `depthLimit` levels, which no agent's state needs.
    func usedBytes() -> UInt64 {
        let root = open(hostPath(privatePath), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard root >= 0 else { return 0 }
        var info = keyhold_file_status()
        guard keyhold_fstat(root, &info) == 0 else {
            close(root)
            return 0
        }
        var walk = Walk(root: -1, device: info.device, remove: false)
        let total = walk.visit(root, depth: 0)
        return walk.tooDeep ? UInt64.max : total
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
        defer { close(root) }
        var info = keyhold_file_status()
        keyhold_fstat(root, &info)
        var total: UInt64 = 0
        // A subtree deeper than the limit is moved up under the root and removed by the next pass.
        while true {
            // A description of its own (a dup would share the directory's read position with the previous pass).
            let pass = openat(root, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            guard pass >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EMFILE) }
            var walk = Walk(root: root, device: info.device, remove: true)
            total += walk.visit(pass, depth: 0)
            if walk.hoisted == 0 { break }
        }
        guard rmdir(path) == 0 || errno == ENOENT else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        unlink(hostPath("/var/lib/keyhold-agents/\(tenant)"))
        return total
    }

    /// One traversal: entries are opened relative to their directory without following symlinks; other file systems
    /// (mounts) are skipped; at most `depthLimit` directories are open at once.
    private struct Walk {
        /// Where a too-deep subtree is moved when removing (-1: measuring).
        let root: Int32
        let device: UInt64
        let remove: Bool
        var tooDeep = false
        var hoisted = 0

        /// Sums (and with `remove`, deletes) what is under the open directory `directory`, which it closes.
        mutating func visit(_ directory: Int32, depth: Int) -> UInt64 {
            guard let stream = fdopendir(directory) else {
                close(directory)
                return 0
            }
            defer { closedir(stream) }
            var total: UInt64 = 0
            while let entry = readdir(stream) {
                // The name's own bytes, as the kernel gave them: a name that is not UTF-8 must still be found again.
                var raw = entry.pointee.d_name
                let capacity = MemoryLayout.size(ofValue: raw)
                total += withUnsafePointer(to: &raw) { pointer in
                    pointer.withMemoryRebound(to: CChar.self, capacity: capacity) { visitEntry(directory, $0, depth: depth) }
                }
            }
            return total
        }

        /// One entry of `directory`; charges at least `minimumCharge` bytes for it (an inode costs the host that much).
        private mutating func visitEntry(_ directory: Int32, _ name: UnsafePointer<CChar>, depth: Int) -> UInt64 {
            if name[0] == 0x2e && (name[1] == 0 || (name[1] == 0x2e && name[2] == 0)) { return 0 }  // . and ..
            var info = keyhold_file_status()
            guard keyhold_lstatat(directory, name, &info) == 0 else { return 0 }
            var total = max(info.allocated_bytes, AgentStateDirectory.minimumCharge)
            guard info.is_directory != 0 else {
                if remove { unlinkat(directory, name, 0) }
                return total
            }
            guard info.device == device else { return total }
            if depth + 1 >= AgentStateDirectory.depthLimit {
                tooDeep = true
                if remove, renameat(directory, name, root, ".keyhold-deep-\(hoisted)-\(UInt32.random(in: 0...UInt32.max))") == 0 {
                    hoisted += 1
                }
                return total
            }
            let child = openat(directory, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            if child >= 0 { total += visit(child, depth: depth + 1) }
            if remove { unlinkat(directory, name, AT_REMOVEDIR) }
            return total
        }
    }
}
