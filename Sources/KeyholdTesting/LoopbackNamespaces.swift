import Foundation
public import KeyholdCore
public import KeyholdOrchestration
import KeyholdSandbox
import Synchronization

/// ``UnitNamespaces`` for units of an ``InMemorySystemd``, which have no namespaces: each listener a sandbox would get
/// is made on this host's loopback at a port of the kernel's choosing instead (``port(unit:inside:)`` tells which),
/// and each mount is recorded (``mounts(unit:)``).
public final class LoopbackNamespaces: UnitNamespaces {
    private struct State {
        var ports: [String: [LoopbackAddress: Int]] = [:]
        var mounts: [String: [String]] = [:]
    }

    private let state = Mutex(State())
    /// The uid every unit's main process "runs as".
    public let owner: UInt32

    public init(owner: UInt32 = 61_234) { self.owner = owner }

    public func listeners(unit: String, mainPID: Int32, on addresses: [LoopbackAddress], deadline: ContinuousClock.Instant) throws -> [Int32] {
        var sockets: [Int32] = []
        var ports: [LoopbackAddress: Int] = [:]
        do {
            for address in addresses {
                let socket = try NetworkNamespace.listener(on: LoopbackAddress(ip: "127.0.0.1", port: 0, datagram: address.datagram))
                sockets.append(socket)
                ports[address] = try Self.port(of: socket)
            }
        } catch {
            for socket in sockets { close(socket) }
            throw error
        }
        state.withLock { $0.ports[unit] = ports }
        return sockets
    }

    public func mountTemporaryFileSystems(
        unit: String, mainPID: Int32, bytes: UInt64, at directories: [String], deadline: ContinuousClock.Instant
    ) throws {
        state.withLock { $0.mounts[unit, default: []] += directories.map { "tmpfs(\(bytes)) -> \($0)" } }
    }

    public func attach(unit: String, mainPID: Int32, source: String, destination: String, readOnly: Bool) throws {
        state.withLock { $0.mounts[unit, default: []].append("\(source) -> \(destination)\(readOnly ? " (ro)" : "")") }
    }

    public func owner(unit: String, mainPID: Int32) -> UInt32? { mainPID > 0 ? owner : nil }

    /// The loopback port that stands for `address` inside the unit's namespace; nil when none was made.
    public func port(unit: String, inside address: LoopbackAddress) -> Int? { state.withLock { $0.ports[unit]?[address] } }

    /// The mounts made in the unit, in order: `tmpfs(BYTES) -> /tmp`, `SOURCE -> DESTINATION`.
    public func mounts(unit: String) -> [String] { state.withLock { $0.mounts[unit] ?? [] } }

    private static func port(of socket: Int32) throws -> Int {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let result = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socket, $0, &length) }
        }
        guard result == 0 else { throw KeyholdError.failed("getsockname: \(String(cString: strerror(errno)))") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
