import Foundation
import KeyholdTesting
import Testing

/// A network namespace this test makes itself, joined to the host by a veth pair with its own /30: a stand-in for
/// the internet, where a fake provider serves HTTPS under a name. Removed (namespace and link) on `remove()`.
final class TestNetwork: @unchecked Sendable {
    let namespace: String
    let hostLink: String
    /// The namespace's address, and the host side's.
    let address: String
    let hostAddress: String
    private var servers: [Process] = []

    init() throws {
        let id = String(UUID().uuidString.prefix(6)).lowercased()
        namespace = "kh-test-\(id)"
        hostLink = "khv\(id)"
        let peer = "khp\(id)"
        let third = Int.random(in: 0...255)
        let block = Int.random(in: 0..<64) * 4
        address = "10.231.\(third).\(block + 2)"
        hostAddress = "10.231.\(third).\(block + 1)"
        for command in [
            ["netns", "add", namespace],
            ["link", "add", hostLink, "type", "veth", "peer", "name", peer],
            ["link", "set", peer, "netns", namespace],
            ["addr", "add", "\(hostAddress)/30", "dev", hostLink],
            ["link", "set", hostLink, "up"],
            ["-n", namespace, "addr", "add", "\(address)/30", "dev", peer],
            ["-n", namespace, "link", "set", peer, "up"],
            ["-n", namespace, "link", "set", "lo", "up"],
        ] {
            let result = try ProcessRunner.run("/usr/sbin/ip", command)
            try #require(result.status == 0, "ip \(command.joined(separator: " ")): \(result.stderr)")
        }
    }

    /// Starts the fake provider inside the namespace on `port` (HTTPS with the certificate when given).
    /// - Returns: once it listens.
    func startFakeProvider(port: Int, certificate: SelfSignedCertificate?) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        var arguments = ["netns", "exec", namespace, BuildProducts.fakeProvider, address, String(port)]
        if let certificate { arguments += [certificate.certificatePath, certificate.keyPath] }
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        servers.append(process)
        let line = output.fileHandleForReading.availableDataLine(timeout: 20)
        try #require(line?.hasPrefix("listening") == true, "the fake provider did not start in \(namespace)")
    }

    func remove() {
        for server in servers where server.isRunning {
            kill(server.processIdentifier, SIGKILL)
            server.waitUntilExit()
        }
        _ = try? ProcessRunner.run("/usr/sbin/ip", ["link", "del", hostLink])
        _ = try? ProcessRunner.run("/usr/sbin/ip", ["netns", "del", namespace])
    }
}

extension FileHandle {
    /// The first line written, or nil when none comes within `timeout` seconds.
    fileprivate func availableDataLine(timeout: Double) -> String? {
        let deadline = Date().addingTimeInterval(timeout)
        var data = Data()
        var descriptor = pollfd(fd: fileDescriptor, events: Int16(POLLIN), revents: 0)
        while Date() < deadline {
            guard poll(&descriptor, 1, 100) > 0 else { continue }
            let chunk = availableData
            if chunk.isEmpty { return nil }
            data += chunk
            if let text = String(data: data, encoding: .utf8), let newline = text.firstIndex(of: "\n") { return String(text[..<newline]) }
        }
        return nil
    }
}
