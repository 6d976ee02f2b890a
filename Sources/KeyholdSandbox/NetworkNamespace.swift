import CSystemd
import Foundation
public import KeyholdCore
import Synchronization

/// Listening sockets made inside another process's network namespace (a sandbox's), from the daemon.
///
/// A socket belongs to the namespace it was created in for its whole life, whichever process then serves it: the
/// daemon enters the sandbox's namespace on a thread of its own (`setns(2)` changes only the calling thread), creates
/// and binds the listeners there, and returns. The daemon then accepts on them from its own event loops, so a
/// sandbox's way out costs no process and no copy through an extra hop. Needs CAP_SYS_ADMIN (root).
public enum NetworkNamespace {
    /// The inode of a namespace file (`/proc/PID/ns/net`), to compare namespaces.
    public static func inode(of path: String) -> UInt64? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return UInt64(info.st_ino)
    }

    /// The daemon's own network namespace.
    public static var ownInode: UInt64? { inode(of: "/proc/self/ns/net") }

    /// Creates a listening TCP socket (or a bound UDP one) on each address inside the namespace at `namespacePath`.
    /// - Returns: the sockets (non-blocking, close-on-exec), in the order of `addresses`; the caller owns them.
    /// - Throws: `SystemdError(.namespace)` when the namespace cannot be entered or is the daemon's own, or a bind fails.
    /// - Parameter foreign: namespaces that are not a sandbox's (systemd's own): refused like the daemon's.
    public static func listeners(in namespacePath: String, on addresses: [LoopbackAddress], notIn foreign: [UInt64] = []) throws -> [Int32] {
        let namespace = open(namespacePath, O_RDONLY | O_CLOEXEC)
        guard namespace >= 0 else { throw failure("cannot open \(namespacePath): \(String(cString: strerror(errno)))") }
        defer { close(namespace) }
        var info = stat()
        guard let own = ownInode, fstat(namespace, &info) == 0, UInt64(info.st_ino) != own, !foreign.contains(UInt64(info.st_ino)) else {
            throw failure("\(namespacePath) is not a sandbox's own network namespace (it is the daemon's or systemd's): refusing to listen there")
        }
        let result = Mutex<Result<[Int32], SystemdError>>(.failure(failure("the namespace thread did not run")))
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            result.withLock { $0 = Self.enterAndListen(namespace, addresses) }
            done.signal()
        }
        thread.start()
        done.wait()
        return try result.withLock { try $0.get() }
    }

    /// Runs on a thread of its own: enters the namespace, makes the sockets, leaves it.
    private static func enterAndListen(_ namespace: Int32, _ addresses: [LoopbackAddress]) -> Result<[Int32], SystemdError> {
        let original = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)
        guard original >= 0 else { return .failure(failure("cannot open this thread's network namespace")) }
        defer { close(original) }
        guard keyhold_enter_network_namespace(namespace) == 0 else {
            return .failure(
                failure("cannot enter the sandbox's network namespace (setns: \(String(cString: strerror(errno)))): the daemon needs CAP_SYS_ADMIN"))
        }
        defer {
            // Should leaving fail, this thread ends here anyway: nothing else ever runs in that namespace.
            _ = keyhold_enter_network_namespace(original)
        }
        var sockets: [Int32] = []
        for address in addresses {
            switch makeListener(address) {
            case .success(let fd): sockets.append(fd)
            case .failure(let error):
                for fd in sockets { close(fd) }
                return .failure(error)
            }
        }
        return .success(sockets)
    }

    /// A listening socket (non-blocking, close-on-exec) on `address` in this thread's network namespace; a datagram
    /// socket is bound only.
    public static func listener(on address: LoopbackAddress) throws -> Int32 { try makeListener(address).get() }

    private static func makeListener(_ address: LoopbackAddress) -> Result<Int32, SystemdError> {
        guard let bytes = IPLiteral.ipv4(address.ip) else { return .failure(failure("\(address.ip) is not an IPv4 address")) }
        let type = address.datagram ? Int32(SOCK_DGRAM.rawValue) : Int32(SOCK_STREAM.rawValue)
        let fd = socket(AF_INET, type | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return .failure(failure("socket: \(String(cString: strerror(errno)))")) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var socketAddress = sockaddr_in()
        socketAddress.sin_family = sa_family_t(AF_INET)
        socketAddress.sin_port = in_port_t(UInt16(address.port).bigEndian)
        socketAddress.sin_addr.s_addr = (UInt32(bytes[0]) | UInt32(bytes[1]) << 8 | UInt32(bytes[2]) << 16 | UInt32(bytes[3]) << 24)
        let bound = withUnsafePointer(to: &socketAddress) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, address.datagram || listen(fd, 256) == 0 else {
            let code = errno
            close(fd)
            var error = failure("cannot listen on \(address) inside the sandbox: \(String(cString: strerror(code)))")
            error.errno = code
            return .failure(error)
        }
        return .success(fd)
    }

    private static func failure(_ message: String) -> SystemdError { SystemdError(code: .namespace, message: message) }
}
