import Crypto
import Foundation
import KeyholdCore

/// Puts `keyhold-exec` (and `keyhold-mount` beside it) where every sandbox can execute it.
///
/// A sandbox sees another file system than the daemon: `ProtectHome=` hides `/root` and `/home`, `PrivateTmp=` and a
/// private systemd give it a `/tmp` of its own, and its `/run` and `/var/lib` are empty. A launcher there, on a
/// `noexec` mount, or in a directory that someone other than root may write (who could swap it under every tenant)
/// would fail at a tenant's first start with systemd's status 203. At start the daemon checks the launcher and, when
/// sandboxes could not run it, copies both programs into a root-owned directory named after their content.
public enum LauncherPlacement {
    /// Where launchers that cannot stay where they were built are copied: `ROOT/<content hash>/keyhold-exec`.
    public static let defaultStagingRoot = "/usr/local/libexec/keyhold"

    /// The programs units execute from the launcher's directory.
    static let programNames = ["keyhold-exec", "keyhold-mount"]

    /// Places systemd hides from sandboxes or replaces inside them, with the reason a user can act on.
    static let hiddenPlaces: [(prefix: String, reason: String)] = [
        ("/root", "sandboxes cannot see /root (ProtectHome=)"),
        ("/home", "sandboxes cannot see /home (ProtectHome=)"),
        ("/tmp", "sandboxes, and a private systemd, have a /tmp of their own"),
        ("/var/tmp", "sandboxes, and a private systemd, have a /var/tmp of their own"),
        ("/run", "sandboxes get an empty /run"),
        ("/var/lib", "sandboxes get an empty /var/lib"),
        ("/var/log", "a private systemd has a /var/log of its own"),
    ]

    /// `ST_NOEXEC` of `<sys/statvfs.h>` (an enum constant Swift does not import).
    private static let noexecFlag: UInt = 8

    /// What the daemon did with the launcher.
    public struct Placement: Sendable, Equatable {
        /// The `keyhold-exec` units run.
        public var execPath: String
        /// Why the original could not be used, when it was copied.
        public var copiedBecause: String?
        /// Whether this call made the copy's directory (no earlier start had).
        public var createdCopy = false
    }

    /// Why sandboxes cannot execute the program at `path`, or nil when they can.
    public static func problem(with path: String) -> String? {
        guard let resolved = realpath(path, nil) else {
            return "it does not exist (\(String(cString: strerror(errno))))"
        }
        let real = String(cString: resolved)
        free(resolved)
        for place in hiddenPlaces where real == place.prefix || real.hasPrefix(place.prefix + "/") {
            return "it is under \(place.prefix), and \(place.reason)"
        }
        var ancestors = ["/"]
        var current = ""
        for component in real.split(separator: "/") {
            current += "/" + component
            ancestors.append(current)
        }
        for checked in ancestors {
            guard let attributes = try? FileManager.default.attributesOfItem(atPath: checked),
                let owner = (attributes[.ownerAccountID] as? NSNumber)?.uint32Value,
                let mode = (attributes[.posixPermissions] as? NSNumber)?.uint16Value
            else { return "\(checked) cannot be read" }
            if owner != 0 { return "\(checked) belongs to uid \(owner), not root: its owner could replace the launcher" }
            if mode & 0o022 != 0 {
                return "\(checked) is writable by others than root (mode \(String(mode, radix: 8))): they could replace the launcher"
            }
            if mode & 0o001 == 0 { return "\(checked) is not executable (searchable) by other users, such as a sandbox's" }
        }
        var filesystem = statvfs()
        if statvfs(real, &filesystem) == 0, filesystem.f_flag & noexecFlag != 0 {
            return "it is on a file system mounted noexec"
        }
        return nil
    }

    /// `execPath` itself when sandboxes can execute it; otherwise copies of it and of `keyhold-mount` beside it in
    /// `stagingRoot/<content hash>/`, owned by root, mode 0755.
    /// - Throws: `KeyholdError.unavailable` saying why and what to do, when neither the original nor a copy can be used.
    public static func place(execPath: String, stagingRoot: String = defaultStagingRoot) throws -> Placement {
        guard let reason = problem(with: execPath) else { return Placement(execPath: execPath, copiedBecause: nil) }
        let sourceDirectory = (execPath as NSString).deletingLastPathComponent
        let fix =
            "install Keyhold's package (the launcher goes to /usr/libexec/keyhold), or copy keyhold-exec and keyhold-mount into a "
            + "root-owned directory sandboxes can see, such as /usr/local/libexec/keyhold, and pass --exec-path"
        guard FileManager.default.fileExists(atPath: execPath) else {
            throw KeyholdError.unavailable("keyhold-exec is missing at \(execPath): build it (swift build), or \(fix)")
        }
        do {
            var programs: [(name: String, bytes: [UInt8])] = []
            for name in programNames {
                guard let data = FileManager.default.contents(atPath: sourceDirectory + "/" + name) else { continue }
                programs.append((name, [UInt8](data)))
            }
            var hash = SHA256()
            for program in programs {
                hash.update(data: Array(program.name.utf8) + [0])
                hash.update(data: withUnsafeBytes(of: UInt64(program.bytes.count).littleEndian) { Array($0) })
                hash.update(data: program.bytes)
            }
            let digest = hash.finalize().prefix(8).map { String(format: "%02x", $0) }.joined()
            let directory = stagingRoot + "/" + digest
            let existed = FileManager.default.fileExists(atPath: directory)
            try makeRootDirectory(directory)
            for program in programs { try install(program.bytes, at: directory + "/" + program.name) }
            let staged = directory + "/keyhold-exec"
            if let stagedProblem = problem(with: staged) {
                throw KeyholdError.unavailable("its copy \(staged) cannot be run either: \(stagedProblem)")
            }
            return Placement(execPath: staged, copiedBecause: reason, createdCopy: !existed)
        } catch {
            let detail = (error as? KeyholdError)?.message ?? String(describing: error)
            throw KeyholdError.unavailable(
                "sandboxes cannot run keyhold-exec at \(execPath): \(reason); copying it to \(stagingRoot) failed: \(detail). To fix: \(fix)"
            )
        }
    }

    /// Creates `path` and its missing parents as root-owned 0755 directories (whatever the process's umask).
    private static func makeRootDirectory(_ path: String) throws {
        var current = ""
        for component in path.split(separator: "/") {
            current += "/" + component
            if mkdir(current, 0o755) != 0 {
                guard errno == EEXIST else { throw posixFailure("mkdir \(current)") }
                continue
            }
            guard chown(current, 0, 0) == 0, chmod(current, 0o755) == 0 else { throw posixFailure("chmod \(current)") }
        }
    }

    /// Writes `bytes` to `path` as root-owned 0755, through a synced temporary file renamed into place; a file already
    /// there with the same bytes is kept (a running unit may be executing it).
    private static func install(_ bytes: [UInt8], at path: String) throws {
        if let existing = FileManager.default.contents(atPath: path), [UInt8](existing) == bytes, problem(with: path) == nil { return }
        let temporary = path + ".partial-\(getpid())"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o700)
        guard descriptor >= 0 else { throw posixFailure("create \(temporary)") }
        var written = 0
        while written < bytes.count {
            let count = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress! + written, bytes.count - written) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else {
                let failure = posixFailure("write \(temporary)")
                close(descriptor)
                unlink(temporary)
                throw failure
            }
            written += count
        }
        guard fchown(descriptor, 0, 0) == 0, fchmod(descriptor, 0o755) == 0, fsync(descriptor) == 0 else {
            let failure = posixFailure("chmod \(temporary)")
            close(descriptor)
            unlink(temporary)
            throw failure
        }
        close(descriptor)
        guard rename(temporary, path) == 0 else {
            let failure = posixFailure("rename \(temporary)")
            unlink(temporary)
            throw failure
        }
    }

    private static func posixFailure(_ what: String) -> KeyholdError {
        KeyholdError.unavailable("\(what): \(String(cString: strerror(errno)))")
    }
}
