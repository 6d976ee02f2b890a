import Foundation
import KeyholdOrchestration
import KeyholdServer
import KeyholdTestTraits
import KeyholdTesting
import Testing

/// The launcher is never handed to systemd where sandboxes cannot execute it: a checkout under /root, /tmp, /home, a
/// path with a space, a noexec mount or a directory someone else owns gets a root-owned copy, or a clear refusal.
@Suite(.offCooperativePool, .serialized)
struct LauncherPlacementTests {
    /// A launcher pair (keyhold-exec, keyhold-mount) copied from the build into `directory`.
    static func plantLaunchers(in directory: String) throws -> String {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        for name in ["keyhold-exec", "keyhold-mount"] {
            try FileManager.default.copyItem(atPath: BuildProducts.binDirectory + "/" + name, toPath: directory + "/" + name)
        }
        return directory + "/keyhold-exec"
    }

    static func unique() -> String { String(UUID().uuidString.prefix(8)).lowercased() }

    /// Each case: the directory the test makes (and removes), the launcher's place inside it, the reason expected.
    @Test(arguments: [
        ("/root/keyhold-\(unique())", "/.build/debug", "under /root"),
        ("/tmp/keyhold checkout-\(unique())", "/.build/debug", "under /tmp"),
        ("/home/someone-\(unique())", "/src/keyhold/.build/debug", "under /home"),
        ("/var/tmp/keyhold-\(unique())", "/bin", "under /var/tmp"),
    ])
    func aLauncherSandboxesCannotSeeIsCopiedRootOwned(top: String, inside: String, reason: String) throws {
        try #require(!FileManager.default.fileExists(atPath: top) && top.split(separator: "/").last?.contains("-") == true)
        defer { try? FileManager.default.removeItem(atPath: top) }
        let location = top + inside
        let staging = "/usr/local/libexec/keyhold-test-\(Self.unique())"
        defer { try? FileManager.default.removeItem(atPath: staging) }
        let original = try Self.plantLaunchers(in: location)
        #expect(LauncherPlacement.problem(with: original)?.contains(reason) == true, "\(LauncherPlacement.problem(with: original) ?? "none")")

        let placement = try LauncherPlacement.place(execPath: original, stagingRoot: staging)
        #expect(placement.execPath.hasPrefix(staging + "/"))
        #expect(placement.createdCopy)
        #expect(placement.copiedBecause?.contains(reason) == true)
        #expect(LauncherPlacement.problem(with: placement.execPath) == nil)
        let directory = (placement.execPath as NSString).deletingLastPathComponent
        for name in ["keyhold-exec", "keyhold-mount"] {
            let copy = directory + "/" + name
            #expect(FileManager.default.contents(atPath: copy) == FileManager.default.contents(atPath: location + "/" + name))
            let attributes = try FileManager.default.attributesOfItem(atPath: copy)
            #expect((attributes[.ownerAccountID] as? NSNumber)?.intValue == 0)
            #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o755)
        }
        // A second start finds the same copy, and makes none.
        let again = try LauncherPlacement.place(execPath: original, stagingRoot: staging)
        #expect(again.execPath == placement.execPath && !again.createdCopy)
    }

    @Test func aLauncherInADirectorySomeoneElseOwnsIsCopied() throws {
        let top = "/srv/keyhold-\(Self.unique())"
        defer { try? FileManager.default.removeItem(atPath: top) }
        let original = try Self.plantLaunchers(in: top + "/bin")
        #expect(chown(top + "/bin", 65534, 65534) == 0)
        #expect(LauncherPlacement.problem(with: original)?.contains("belongs to uid 65534") == true)
        #expect(chmod(top + "/bin", 0o777) == 0 && chown(top + "/bin", 0, 0) == 0)
        #expect(LauncherPlacement.problem(with: original)?.contains("writable by others than root") == true)
    }

    @Test func aNoexecMountIsCopiedAndANoexecStagingRootIsRefusedWithTheFix() throws {
        let mountPoint = "/mnt/keyhold-noexec-\(Self.unique())"
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: mountPoint) }
        let mounted = try ProcessRunner.run("/bin/mount", ["-t", "tmpfs", "-o", "noexec,mode=0755", "tmpfs", mountPoint])
        try #require(mounted.status == 0, "\(mounted.stderr)")
        defer { _ = try? ProcessRunner.run("/bin/umount", [mountPoint]) }

        let original = try Self.plantLaunchers(in: mountPoint + "/checkout")
        #expect(LauncherPlacement.problem(with: original)?.contains("noexec") == true)
        let staging = "/usr/local/libexec/keyhold-test-\(Self.unique())"
        defer { try? FileManager.default.removeItem(atPath: staging) }
        #expect(try LauncherPlacement.place(execPath: original, stagingRoot: staging).execPath.hasPrefix(staging))

        // Nowhere to put a copy sandboxes could run: one line that says what to do.
        let error = #expect(throws: (any Error).self) { try LauncherPlacement.place(execPath: original, stagingRoot: mountPoint + "/staging") }
        let message = String(describing: error)
        #expect(message.contains("noexec") && message.contains("--exec-path") && message.contains("/usr/libexec/keyhold"), "\(message)")
    }

    @Test func aMissingLauncherSaysHowToBuildIt() {
        let error = #expect(throws: (any Error).self) {
            try LauncherPlacement.place(execPath: "/root/nowhere-\(Self.unique())/keyhold-exec", stagingRoot: "/usr/local/libexec/keyhold-unused")
        }
        #expect(String(describing: error).contains("keyhold-exec is missing"))
        #expect(!FileManager.default.fileExists(atPath: "/usr/local/libexec/keyhold-unused"))
    }
}
