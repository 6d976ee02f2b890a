import CCloexecPipe
import Foundation
import KeyholdCore
import Synchronization

/// Mounts tenants' state into warm units, and a bounded /tmp into every unit, through `keyhold-mount`, a helper
/// process of its own (entering a mount namespace takes a single-threaded process). One helper serves the daemon,
/// one request at a time: it clones the state's mount as systemd sees it and attaches the clone inside the unit's
/// mount namespace, in about a tenth of a millisecond, where systemd's `BindMountUnit` forks a child of its own for
/// each call.
final class StateMounter: Sendable {
    /// Why a mount failed, in the helper's words (`error ERRNO STEP`).
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    private let helperPath: String
    /// systemd's mount namespace, as this daemon sees it.
    private let systemdNamespace: String
    /// The helper while it runs; held for the whole of each request, one at a time.
    private let helper = Mutex<Helper?>(nil)

    private struct Helper {
        var process: Process
        var requests: Int32
        var answers: Int32
    }

    init(helperPath: String, systemdNamespace: String) {
        self.helperPath = helperPath
        self.systemdNamespace = systemdNamespace
    }

    deinit { stop() }

    /// Mounts `source` at `destination` (both as systemd sees them) inside the mount namespace `namespace`
    /// (`/proc/PID/ns/mnt` of the unit's main process, as this daemon sees it).
    /// - Throws: `Failure` when the helper cannot be run or refuses; the caller may fall back to systemd.
    func attach(namespace: String, source: String, destination: String, readOnly: Bool) throws {
        try send([namespace, source, destination, readOnly ? "ro" : "rw", ""])
    }

    /// Mounts a tmpfs of `bytes` (mode 1777, nosuid, nodev) on `destination` inside the mount namespace `namespace`.
    /// - Throws: `Failure` when the helper cannot be run or refuses.
    func mountTemporaryFileSystem(namespace: String, bytes: UInt64, destination: String) throws {
        try send([namespace, String(bytes), destination, "tmpfs", ""])
    }

    /// One request to the helper and its answer.
    private func send(_ fields: [String]) throws {
        try helper.withLock { helper in
            let (requests, answers) = try running(&helper)
            let request = fields.joined(separator: "\0") + "\n"
            guard Self.writeAll(Array(request.utf8), to: requests), let answer = Self.readLine(from: answers) else {
                Self.stop(&helper)
                throw Failure(description: "keyhold-mount stopped answering")
            }
            guard answer == "ok" else { throw Failure(description: "keyhold-mount: \(answer)") }
        }
    }

    /// Ends the helper (it also ends by itself when this daemon goes: its standard input closes).
    func stop() {
        helper.withLock { Self.stop(&$0) }
    }

    private static func stop(_ helper: inout Helper?) {
        guard let running = helper else { return }
        close(running.requests)
        close(running.answers)
        running.process.waitUntilExit()
        helper = nil
    }

    private func running(_ helper: inout Helper?) throws -> (Int32, Int32) {
        if let helper, helper.process.isRunning { return (helper.requests, helper.answers) }
        Self.stop(&helper)
        guard FileManager.default.isExecutableFile(atPath: helperPath) else {
            throw Failure(description: "\(helperPath) is missing: build it (swift build) or install it beside keyhold-exec")
        }
        // Pipes made here, so that this daemon holds exactly one end of each: the helper's death reads as EOF.
        var requestPipe: [Int32] = [-1, -1]
        var answerPipe: [Int32] = [-1, -1]
        guard Self.makePipe(&requestPipe) else { throw Failure(description: "cannot make a pipe: \(String(cString: strerror(errno)))") }
        guard Self.makePipe(&answerPipe) else {
            requestPipe.forEach { close($0) }
            throw Failure(description: "cannot make a pipe: \(String(cString: strerror(errno)))")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: helperPath)
        process.arguments = ["--systemd-namespace", systemdNamespace]
        process.standardInput = FileHandle(fileDescriptor: requestPipe[0], closeOnDealloc: false)
        process.standardOutput = FileHandle(fileDescriptor: answerPipe[1], closeOnDealloc: false)
        do {
            try process.run()
        } catch {
            (requestPipe + answerPipe).forEach { close($0) }
            throw Failure(description: "cannot run \(helperPath): \(error)")
        }
        close(requestPipe[0])
        close(answerPipe[1])
        helper = Helper(process: process, requests: requestPipe[1], answers: answerPipe[0])
        return (requestPipe[1], answerPipe[0])
    }

    /// A pipe whose ends are both close-on-exec from the start: no process another thread spawns meanwhile inherits
    /// them.
    private static func makePipe(_ ends: inout [Int32]) -> Bool {
        keyhold_cloexec_pipe(&ends) == 0
    }

    private static func writeAll(_ bytes: [UInt8], to descriptor: Int32) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else { return false }
            offset += written
        }
        return true
    }

    private static func readLine(from descriptor: Int32) -> String? {
        var line: [UInt8] = []
        var byte: UInt8 = 0
        while line.count < 4096 {
            let count = read(descriptor, &byte, 1)
            if count < 0 && errno == EINTR { continue }
            guard count == 1 else { return nil }
            if byte == 0x0A { return String(decoding: line, as: UTF8.self) }
            line.append(byte)
        }
        return nil
    }
}
