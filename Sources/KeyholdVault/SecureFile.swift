import Foundation

/// Writing small secret files safely: created exclusively with mode 0600, fsynced.
enum SecureFile {
    static func createExclusive(path: String, contents: UnsafeRawBufferPointer) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            let reason = String(cString: strerror(errno))
            throw VaultError(.kekInvalid, "cannot create \(path): \(reason); `keyhold init` never overwrites an existing key")
        }
        defer { close(fd) }
        var offset = 0
        while offset < contents.count {
            let written = Foundation.write(fd, contents.baseAddress! + offset, contents.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                throw VaultError(.kekInvalid, "cannot write \(path): \(String(cString: strerror(errno)))")
            }
            offset += written
        }
        guard fsync(fd) == 0 else { throw VaultError(.kekInvalid, "cannot sync \(path): \(String(cString: strerror(errno)))") }
    }
}
