import Foundation
import KeyholdCore
import Logging
import Synchronization

/// One JSON object per line on standard error (`keyhold serve --log-format json`), for log shippers:
/// `{"time":...,"level":...,"logger":...,"message":...,"source":..., plus the metadata's keys}`.
struct JSONLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]
    /// One writer at a time, so that lines never interleave.
    private static let output = Mutex(FileHandle.standardError)

    init(label: String) { self.label = label }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var object: [String: String] = [:]
        for (key, value) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 }) { object[key] = "\(value)" }
        object["time"] = Timestamp.now()
        object["level"] = event.level.rawValue
        object["logger"] = label
        object["message"] = "\(event.message)"
        object["source"] = event.source
        guard var line = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) else { return }
        line.append(0x0A)
        Self.output.withLock { $0.write(line) }
    }
}

/// How `keyhold serve` writes its log.
enum LogFormat: String, CaseIterable, Sendable {
    case text, json
}
