import CFileStatus
import Foundation

extension AgentStateDirectory {
    /// Makes the state ready for a warm pool's unit whose dynamic user is `owner`: creates it when new (0700, under
    /// systemd's 0700 `/var/lib/private`), and hands everything in it to `owner` when another user owns it. This is
    /// what systemd does for `StateDirectory=` when a dynamic user's number changed; the next cold start hands it back.
    ///
    /// The walk opens every entry relative to its directory without following symlinks and never leaves the state's
    /// file system, like ``usedBytes()``: the tenant may have planted symlinks to anything.
    func prepare(owner: uid_t) throws {
        let privateParent = hostPath("/var/lib/private")
        try makeDirectory(privateParent, mode: 0o700)
        try makeDirectory(hostPath("/var/lib/private/keyhold-agents"), mode: 0o755)
        let path = hostPath(privatePath)
        if mkdir(path, 0o700) == 0 {
            guard chown(path, owner, owner) == 0 else { throw Self.posixError() }
            return
        }
        guard errno == EEXIST else { throw Self.posixError() }
        let root = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard root >= 0 else { throw Self.posixError() }
        var info = keyhold_file_status()
        guard keyhold_fstat(root, &info) == 0 else {
            close(root)
            throw Self.posixError()
        }
        guard info.uid != owner || info.gid != owner else {
            close(root)
            return
        }
        guard fchown(root, owner, owner) == 0 else {
            close(root)
            throw Self.posixError()
        }
        var walk = OwnerWalk(owner: owner, device: info.device)
        walk.visit(root, depth: 0)
        if let failure = walk.failure { throw POSIXError(POSIXErrorCode(rawValue: failure) ?? .EIO) }
    }

    private func makeDirectory(_ path: String, mode: mode_t) throws {
        guard mkdir(path, mode) == 0 || errno == EEXIST else { throw Self.posixError() }
    }

    private static func posixError() -> POSIXError { POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }

    /// Hands a tree to one owner, entry by entry, by descriptor.
    private struct OwnerWalk {
        let owner: uid_t
        let device: UInt64
        /// The first errno a change of owner met (the walk goes on).
        var failure: Int32?

        /// Changes the owner of what is under the open directory `directory`, which it closes.
        mutating func visit(_ directory: Int32, depth: Int) {
            guard let stream = fdopendir(directory) else {
                close(directory)
                return
            }
            defer { closedir(stream) }
            while let entry = readdir(stream) {
                var raw = entry.pointee.d_name
                let capacity = MemoryLayout.size(ofValue: raw)
                withUnsafePointer(to: &raw) { pointer in
                    pointer.withMemoryRebound(to: CChar.self, capacity: capacity) { visitEntry(directory, $0, depth: depth) }
                }
            }
        }

        private mutating func visitEntry(_ directory: Int32, _ name: UnsafePointer<CChar>, depth: Int) {
            if name[0] == 0x2e && (name[1] == 0 || (name[1] == 0x2e && name[2] == 0)) { return }  // . and ..
            var info = keyhold_file_status()
            guard keyhold_lstatat(directory, name, &info) == 0 else { return }
            if info.uid != owner || info.gid != owner, fchownat(directory, name, owner, owner, AT_SYMLINK_NOFOLLOW) != 0 {
                failure = failure ?? errno
            }
            guard info.is_directory != 0, info.device == device, depth + 1 < AgentStateDirectory.depthLimit else { return }
            let child = openat(directory, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            if child >= 0 { visit(child, depth: depth + 1) }
        }
    }
}
