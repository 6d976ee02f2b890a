import Foundation

/// Where the package's sources and built executables are, seen from a test.
public enum BuildProducts {
    /// The package root (found from this file's path).
    public static let packageRoot: String = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    /// The directory holding the built `keyhold` and `keyhold-exec` (next to the test bundle).
    public static var binDirectory: String {
        var directory = Bundle.main.bundleURL
        for _ in 0..<4 {
            if FileManager.default.isExecutableFile(atPath: directory.appendingPathComponent("keyhold").path) { return directory.path }
            directory.deleteLastPathComponent()
        }
        return packageRoot + "/.build/debug"
    }

    public static var keyhold: String { binDirectory + "/keyhold" }
    /// The daemon and the commands that own the state directory, which `keyhold` hands over.
    public static var keyholdd: String { binDirectory + "/keyholdd" }
    public static var keyholdExec: String { binDirectory + "/keyhold-exec" }
    /// The fake provider as a program, for a test network namespace (`ip netns exec`).
    public static var fakeProvider: String { binDirectory + "/keyhold-fake-provider" }
    /// The fuzz targets' program; built as usual, it runs each input of a corpus once.
    public static var fuzz: String { binDirectory + "/keyhold-fuzz" }
    public static var plansDirectory: String { packageRoot + "/plans" }
    public static var profilesDirectory: String { packageRoot + "/sandbox-profiles" }
}
