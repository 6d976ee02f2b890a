import Foundation
import KeyholdOrchestration
import NIOCore

/// The Unix user at the other end of an admin-socket connection (`SO_PEERCRED`).
enum PeerCredentials {
    /// The peer's user name (or `uid:N` when it has none), or nil when the channel is not a Unix socket.
    static func user(of channel: any Channel) async -> String? {
        guard let provider = channel as? any SocketOptionProvider else { return nil }
        let future: EventLoopFuture<PeerCredential> = provider.unsafeGetSocketOption(
            level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(SO_PEERCRED)
        )
        guard let credentials = try? await future.get() else { return nil }
        return userName(uid: credentials.uid)
    }

    /// `struct ucred` of `<sys/socket.h>` (only declared under `_GNU_SOURCE`, so spelled out here).
    struct PeerCredential: Sendable {
        var pid: Int32
        var uid: UInt32
        var gid: UInt32
    }

    /// The corresponding C function is `getpwuid_r`.
    static func userName(uid: uid_t) -> String {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 4096)
        if getpwuid_r(uid, &entry, &buffer, buffer.count, &result) == 0, let result, let name = result.pointee.pw_name {
            return String(cString: name)
        }
        return "uid:\(uid)"
    }
}
