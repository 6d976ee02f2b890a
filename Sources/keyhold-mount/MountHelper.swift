import CMountNamespace
import Glibc

/// `keyhold-mount --systemd-namespace PATH`: reads requests on standard input until it closes, one per line:
///
///     NAMESPACE \0 SOURCE \0 DESTINATION \0 rw|ro \n
///     NAMESPACE \0 BYTES \0 DESTINATION \0 tmpfs \n
///
/// For the first, clones SOURCE's mount tree as systemd sees it (`open_tree` inside systemd's mount namespace),
/// makes it read-only if asked, enters NAMESPACE (a unit's `/proc/PID/ns/mnt`, as this helper sees it), creates
/// DESTINATION and attaches the tree there (`move_mount`). For the second, enters NAMESPACE and mounts a tmpfs of
/// BYTES (mode 1777, nosuid, nodev) on DESTINATION. Either way it then returns to its own namespace; the mount lives
/// in the unit's namespace only, and goes with it. Answers `ok` or `error ERRNO STEP` on a line of its own.
enum MountHelper {
    static let usage = "usage: keyhold-mount --systemd-namespace /proc/PID/ns/mnt (requests on standard input)"

    static func run() -> Never {
        let arguments = CommandLine.arguments
        guard arguments.count == 3, arguments[1] == "--systemd-namespace" else { fail(usage) }
        // Mount points the unit's user can traverse, whatever the daemon's umask.
        umask(0o022)
        let own = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC)
        let systemd = open(arguments[2], O_RDONLY | O_CLOEXEC)
        guard own >= 0, systemd >= 0 else { fail("cannot open the mount namespaces: \(String(cString: strerror(errno)))") }
        var reader = LineReader()
        while let line = reader.next() {
            let fields = line.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
            let answer: String
            if fields.count == 5, fields[4].isEmpty, ["rw", "ro"].contains(fields[3]) {
                answer = attach(
                    namespace: fields[0], source: fields[1], destination: fields[2], readOnly: fields[3] == "ro", own: own, systemd: systemd)
            } else if fields.count == 5, fields[4].isEmpty, fields[3] == "tmpfs", let bytes = UInt64(fields[1]), bytes > 0 {
                answer = mountTemporaryFileSystem(namespace: fields[0], bytes: bytes, destination: fields[2], own: own)
            } else {
                answer = "error \(EINVAL) request"
            }
            writeLine(answer)
        }
        exit(0)
    }

    /// One request; always back in its own namespace on return.
    static func attach(namespace: String, source: String, destination: String, readOnly: Bool, own: Int32, systemd: Int32) -> String {
        let unit = open(namespace, O_RDONLY | O_CLOEXEC)
        guard unit >= 0 else { return "error \(errno) open-namespace" }
        defer { close(unit) }
        defer { _ = keyhold_enter_mount_namespace(own) }
        guard keyhold_enter_mount_namespace(systemd) == 0 else { return "error \(errno) enter-systemd" }
        let tree = open_tree(AT_FDCWD, source, UInt32(OPEN_TREE_CLONE) | UInt32(O_CLOEXEC))
        guard tree >= 0 else { return "error \(errno) open-tree" }
        defer { close(tree) }
        if readOnly {
            var attributes = mount_attr()
            attributes.attr_set = UInt64(MOUNT_ATTR_RDONLY)
            guard mount_setattr(tree, "", keyhold_at_empty_path(), &attributes, MemoryLayout<mount_attr>.size) == 0 else {
                return "error \(errno) read-only"
            }
        }
        guard keyhold_enter_mount_namespace(unit) == 0 else { return "error \(errno) enter-unit" }
        // The unit's /var/lib is a tmpfs only root writes, and its agent has not started: no one else made these.
        var path = ""
        for component in destination.split(separator: "/") {
            path += "/" + component
            guard mkdir(path, 0o755) == 0 || errno == EEXIST else { return "error \(errno) mkdir" }
        }
        guard move_mount(tree, "", AT_FDCWD, destination, UInt32(MOVE_MOUNT_F_EMPTY_PATH)) == 0 else { return "error \(errno) move-mount" }
        return "ok"
    }

    /// One tmpfs request; always back in its own namespace on return.
    static func mountTemporaryFileSystem(namespace: String, bytes: UInt64, destination: String, own: Int32) -> String {
        let unit = open(namespace, O_RDONLY | O_CLOEXEC)
        guard unit >= 0 else { return "error \(errno) open-namespace" }
        defer { close(unit) }
        defer { _ = keyhold_enter_mount_namespace(own) }
        guard keyhold_enter_mount_namespace(unit) == 0 else { return "error \(errno) enter-unit" }
        guard mount("tmpfs", destination, "tmpfs", UInt(MS_NOSUID | MS_NODEV), "mode=1777,size=\(bytes)") == 0 else {
            return "error \(errno) mount-tmpfs"
        }
        return "ok"
    }

    static func writeLine(_ text: String) {
        var line = text + "\n"
        line.withUTF8 { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = write(1, bytes.baseAddress! + offset, bytes.count - offset)
                if written < 0 && errno == EINTR { continue }
                if written <= 0 { exit(1) }
                offset += written
            }
        }
    }

    static func fail(_ message: String) -> Never {
        var line = "keyhold-mount: " + message + "\n"
        line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
        exit(64)
    }
}

/// Lines from standard input (at most 16 KiB each).
struct LineReader {
    private var buffer: [UInt8] = []

    mutating func next() -> [UInt8]? {
        while true {
            if let end = buffer.firstIndex(of: 0x0A) {
                let line = Array(buffer[..<end])
                buffer.removeSubrange(...end)
                return line
            }
            guard buffer.count < 16 << 10 else { return nil }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let count = chunk.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return nil }
            buffer += chunk[..<count]
        }
    }
}
