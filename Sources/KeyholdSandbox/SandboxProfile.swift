import Foundation

/// A sandbox profile from `sandbox-profiles/`: the hardened properties of an agent's transient
/// systemd unit and the seccomp policy `keyhold-exec` loads before it starts the agent.
///
/// Profiles are JSON: `{"name", "description", "unit": {systemd properties}, "seccomp": {OCI policy}}`.
/// Loading checks everything (property names and types, syscall, capability and errno names) and
/// refuses the file with an error naming it and the field.
public struct SandboxProfile: Sendable, Equatable {
    /// The profile's name; equals its file name without `.json`.
    public var name: String
    /// What the profile is for.
    public var description: String
    /// The unit properties to send with `StartTransientUnit`, in a fixed order.
    public var unitProperties: [UnitProperty]
    /// The seccomp policy, validated against libseccomp.
    public var seccomp: SeccompPolicy
    /// How long systemd waits after SIGTERM before SIGKILL (`TimeoutStopSec`).
    public var stopTimeout: Duration

    /// systemd's default `TimeoutStopSec`, used when a profile does not set it.
    public static let defaultStopTimeout: Duration = .seconds(90)

    public init(
        name: String, description: String, unitProperties: [UnitProperty], seccomp: SeccompPolicy,
        stopTimeout: Duration = defaultStopTimeout
    ) {
        self.name = name
        self.description = description
        self.unitProperties = unitProperties
        self.seccomp = seccomp
        self.stopTimeout = stopTimeout
    }

    /// Loads `<directory>/<name>.json`.
    /// - Parameters:
    ///   - name: A profile name: lowercase letters, digits, `-` and `_`.
    ///   - directory: The profiles directory, such as `sandbox-profiles`.
    /// - Throws: ``ProfileError``.
    public static func load(name: String, from directory: String) throws -> SandboxProfile {
        let path = (directory.hasSuffix("/") ? directory : directory + "/") + name + ".json"
        guard isValidName(name) else {
            throw ProfileError(.invalidValue, file: path, "invalid profile name: use lowercase letters, digits, - and _")
        }
        return try load(path: path)
    }

    /// Loads the profile file at `path`.
    /// - Throws: ``ProfileError`` naming `path` and the field.
    public static func load(path: String) throws -> SandboxProfile {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ProfileError(.unreadable, file: path, "cannot read the file (does it exist?)")
        }
        let fileName = (path as NSString).lastPathComponent
        let expectedName = fileName.hasSuffix(".json") ? String(fileName.dropLast(5)) : nil
        return try decode(data, file: path, expectedName: expectedName)
    }

    /// Decodes and validates a profile from JSON.
    /// - Parameters:
    ///   - data: The JSON document.
    ///   - file: The name errors carry.
    ///   - expectedName: When set, the profile's `name` must equal it.
    /// - Throws: ``ProfileError``.
    public static func decode(_ data: Data, file: String, expectedName: String? = nil) throws -> SandboxProfile {
        let raw: RawProfile
        do {
            raw = try JSONDecoder().decode(RawProfile.self, from: data)
        } catch {
            throw profileError(from: error).located(file: file)
        }
        if let expectedName, raw.name != expectedName {
            throw ProfileError(
                .invalidValue, file: file, field: "name", "\"\(raw.name)\" does not match the file name \"\(expectedName)\"")
        }
        do {
            try raw.seccomp.validate()
        } catch let error as ProfileError {
            throw error.located(file: file, fieldPrefix: "seccomp")
        }
        var converted: [(order: Int, properties: [UnitProperty])] = []
        for key in raw.unit.keys.sorted() {
            do {
                let properties = try UnitPropertyTable.properties(name: key, value: raw.unit[key]!, field: "unit." + key)
                let order = UnitPropertyTable.entries.firstIndex { $0.name == key } ?? Int.max
                converted.append((order, properties))
            } catch let error as ProfileError {
                throw error.located(file: file)
            }
        }
        let properties = converted.sorted { $0.order < $1.order }.flatMap(\.properties)
        var stopTimeout = defaultStopTimeout
        for case .uint64("TimeoutStopUSec", let microseconds) in properties where microseconds != .max {
            stopTimeout = .microseconds(microseconds)
        }
        return SandboxProfile(
            name: raw.name, description: raw.description, unitProperties: properties, seccomp: raw.seccomp,
            stopTimeout: stopTimeout)
    }

    private static func isValidName(_ name: String) -> Bool {
        guard let first = name.utf8.first, first != UInt8(ascii: "-"), first != UInt8(ascii: "_") else { return false }
        return name.utf8.allSatisfy { byte in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
                || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
        }
    }
}

/// The profile file as written, before its unit properties are converted.
private struct RawProfile: Decodable {
    var name: String
    var description: String
    var unit: [String: JSONValue]
    var seccomp: SeccompPolicy

    private enum CodingKeys: String, CodingKey { case name, description, unit, seccomp }

    init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(["name", "description", "unit", "seccomp"])
        let container = try decoder.container(keyedBy: CodingKeys.self)
        name = try container.decode(String.self, forKey: .name)
        description = try container.decode(String.self, forKey: .description)
        unit = try container.decode([String: JSONValue].self, forKey: .unit)
        seccomp = try container.decode(SeccompPolicy.self, forKey: .seccomp)
    }
}
