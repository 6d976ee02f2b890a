import Foundation
import KeyholdCommandLine
import KeyholdCore

/// The demo's stand-in LLM provider: `keyhold-fake-provider` (the test suite's double, which speaks OpenAI's and
/// Anthropic's wire formats with their usage fields) on a loopback port, as a child process stopped by its pid.
final class DemoStandIn: @unchecked Sendable {
    /// The key the stand-in accepts for Anthropic's API; the demo stores it as the platform's key.
    static let anthropicKey = "sk-ant-fake-anthropic-key"

    private let process: Process
    let baseURL: String

    private init(process: Process, port: Int) {
        self.process = process
        self.baseURL = "http://127.0.0.1:\(port)"
    }

    /// Starts `keyhold-fake-provider` from beside this executable and waits (at most 10 s) until it listens.
    static func start() throws -> DemoStandIn {
        let path = SiblingProgram(name: "keyhold-fake-provider").path
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw KeyholdError.unavailable(
                "the demo's stand-in provider is missing at \(path): it is built with the source tree (run `swift build` in the checkout, "
                    + "or deploy/setup.sh), and the Debian package does not ship it")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = ["127.0.0.1", "0"]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let standIn = DemoStandIn(process: process, port: try readPort(from: output.fileHandleForReading, process: process))
        return standIn
    }

    /// The port from the child's `listening PORT` line.
    private static func readPort(from handle: FileHandle, process: Process) throws -> Int {
        var line = Data()
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            let chunk = handle.availableData
            if chunk.isEmpty { break }
            line.append(chunk)
            let text = String(decoding: line, as: UTF8.self)
            if let end = text.firstIndex(of: "\n") {
                let words = text[..<end].split(separator: " ")
                if words.count == 2, words[0] == "listening", let port = Int(words[1]) { return port }
                break
            }
        }
        process.terminate()
        process.waitUntilExit()
        throw KeyholdError.unavailable("the stand-in provider did not start listening: run keyhold-fake-provider 127.0.0.1 0 by hand to see why")
    }

    /// Stops the child by its pid and reaps it.
    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        process.waitUntilExit()
    }
}
