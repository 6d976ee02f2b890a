import Foundation
import KeyholdCommandLine

/// Finds the shipped data directories (`plans/`, `sandbox-profiles/`) and `keyhold-exec`.
enum ResourceLocator {
    /// The first existing directory named `name` among: the working directory, the source tree above the executable
    /// (a `swift build` tree), `/etc/keyhold` (the package's conffiles, which a provider edits), `/usr/local/share/keyhold`,
    /// `/usr/share/keyhold` (the package's originals).
    static func directory(_ name: String) -> String {
        var candidates = [FileManager.default.currentDirectoryPath]
        var directory = SiblingProgram.executableDirectory
        for _ in 0..<4 {
            directory = (directory as NSString).deletingLastPathComponent
            candidates.append(directory)
        }
        candidates += ["/etc/keyhold", "/usr/local/share/keyhold", "/usr/share/keyhold"]
        for candidate in candidates {
            let path = (candidate as NSString).appendingPathComponent(name)
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue { return path }
        }
        return "/usr/share/keyhold/\(name)"
    }

    /// `keyhold-exec` beside this executable (a build tree), else where the package installs it.
    static var execPath: String {
        let sibling = SiblingProgram(name: "keyhold-exec").path
        return FileManager.default.isExecutableFile(atPath: sibling) ? sibling : "/usr/libexec/keyhold/keyhold-exec"
    }
}
