import Foundation
import KeyholdSandbox
import Synchronization

/// Parsed sandbox profiles, reloaded when their file changes (validating a profile costs about 0.5 ms a start).
final class ProfileCache: Sendable {
    private let profiles = Mutex<[String: (modified: Date, profile: SandboxProfile)]>([:])

    /// The profile `name` from `directory`, parsed again only when its file's modification time changed.
    func profile(named name: String, in directory: String) throws -> SandboxProfile {
        let path = (directory as NSString).appendingPathComponent(name + ".json")
        let modified = (try? FileManager.default.attributesOfItem(atPath: path)[.modificationDate] as? Date) ?? nil
        if let modified, let cached = profiles.withLock({ $0[path] }), cached.modified == modified { return cached.profile }
        let profile = try SandboxProfile.load(name: name, from: directory)
        if let modified { profiles.withLock { $0[path] = (modified, profile) } }
        return profile
    }
}
