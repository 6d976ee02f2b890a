import Foundation

/// Paths and helpers shared by the sandbox tests.
enum TestSupport {
    /// The package's root directory, found from this file's path.
    static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The shipped `sandbox-profiles/` directory.
    static var profilesDirectory: String { packageRoot.appendingPathComponent("sandbox-profiles").path }

    /// The built `keyhold-exec`: `$KEYHOLD_EXEC_PATH`, else next to the test bundle (walking up),
    /// else `.build/debug/keyhold-exec` under the package root.
    static var keyholdExecPath: String? {
        let fileManager = FileManager.default
        if let path = ProcessInfo.processInfo.environment["KEYHOLD_EXEC_PATH"], fileManager.isExecutableFile(atPath: path) {
            return path
        }
        var directory = Bundle.main.bundleURL
        for _ in 0..<4 {
            let candidate = directory.appendingPathComponent("keyhold-exec").path
            if fileManager.isExecutableFile(atPath: candidate) { return candidate }
            directory.deleteLastPathComponent()
        }
        let fallback = packageRoot.appendingPathComponent(".build/debug/keyhold-exec").path
        return fileManager.isExecutableFile(atPath: fallback) ? fallback : nil
    }

    /// A fresh temporary directory; the caller removes it.
    static func makeTemporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("keyhold-sandbox-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// A random value that must not leak: 32 hex characters behind a recognisable prefix.
    static func makeCanary() -> String {
        "kh-canary-" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
    }
}

/// The result of running a process to completion.
struct ProcessOutcome {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// What a spawned process gets as standard input.
enum ProcessInput {
    /// /dev/null.
    case null
    /// A pipe holding these bytes, closed after them (the payload's real path).
    case pipe([UInt8])
    /// A file holding these bytes.
    case file([UInt8])
}

/// Runs `executable` with `arguments` to completion and collects its output.
func runProcess(_ executable: String, _ arguments: [String], input: ProcessInput) throws -> ProcessOutcome {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let stdout = Pipe()
    let stderr = Pipe()
    process.standardOutput = stdout
    process.standardError = stderr
    var temporaryFile: URL?
    defer { if let temporaryFile { try? FileManager.default.removeItem(at: temporaryFile) } }
    switch input {
    case .null:
        process.standardInput = FileHandle.nullDevice
    case .pipe(let bytes):
        precondition(bytes.count < 60_000, "must fit in the pipe's buffer")
        let pipe = Pipe()
        try pipe.fileHandleForWriting.write(contentsOf: bytes)
        try pipe.fileHandleForWriting.close()
        process.standardInput = pipe
    case .file(let bytes):
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("keyhold-exec-input-\(UUID().uuidString)")
        try Data(bytes).write(to: url)
        temporaryFile = url
        process.standardInput = try FileHandle(forReadingFrom: url)
    }
    try process.run()
    let out = stdout.fileHandleForReading.readDataToEndOfFile()
    let err = stderr.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return ProcessOutcome(
        status: process.terminationStatus, stdout: String(decoding: out, as: UTF8.self), stderr: String(decoding: err, as: UTF8.self))
}
