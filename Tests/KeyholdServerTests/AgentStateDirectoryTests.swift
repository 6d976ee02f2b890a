import Foundation
import KeyholdTestTraits
import Testing

@testable import KeyholdOrchestration
@testable import KeyholdServer

/// The daemon (root) measures and deletes a directory its tenant controls: planted symlinks are not followed and
/// trees deeper than any state needs neither exhaust its descriptors nor escape the limit or the deletion.
@Suite(.offCooperativePool) struct AgentStateDirectoryTests {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("kh-state-\(UUID().uuidString.prefix(8))").path

    func state(_ tenant: String) -> AgentStateDirectory {
        AgentStateDirectory(tenant: tenant, hostPath: { [root] in root + $0 })
    }

    @Test func aStatusReadShowsARecentMeasurementAndWalksNoMoreThanOnce() async throws {
        defer { try? FileManager.default.removeItem(atPath: root) }
        let directory = root + state("acme").privatePath
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try Data(repeating: 1, count: 64 << 10).write(to: URL(fileURLWithPath: directory + "/a"))
        let measurements = StateMeasurements()
        let first = await measurements.measure(state("acme"))
        #expect(first >= 64 << 10 && measurements.walks == 1)
        // A tenant asking for its status in a loop costs no further walk while the measurement is recent.
        for _ in 0..<50 { #expect(await measurements.recent(state("acme")) == first) }
        #expect(measurements.walks == 1)
        try Data(repeating: 2, count: 256 << 10).write(to: URL(fileURLWithPath: directory + "/b"))
        #expect(await measurements.recent(state("acme")) == first, "a status read may be up to 30 s old")
        #expect(await measurements.measure(state("acme")) >= first + (256 << 10), "a limit check measures now")
        #expect(measurements.walks == 2)
        // Another tenant's measurement is its own.
        #expect(await measurements.recent(state("globex")) == 0 && measurements.walks == 3)
    }

    @Test func symlinksAreNeitherMeasuredThroughNorFollowedWhenDeleting() throws {
        defer { try? FileManager.default.removeItem(atPath: root) }
        let outside = root + "/outside"
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        try Data(repeating: 1, count: 1 << 20).write(to: URL(fileURLWithPath: outside + "/precious"))
        let directory = root + state("acme").privatePath
        try FileManager.default.createDirectory(atPath: directory + "/notes", withIntermediateDirectories: true)
        try Data(repeating: 2, count: 64 << 10).write(to: URL(fileURLWithPath: directory + "/notes/memory.db"))
        try FileManager.default.createSymbolicLink(atPath: directory + "/escape", withDestinationPath: outside)
        try FileManager.default.createSymbolicLink(atPath: directory + "/notes/escape-file", withDestinationPath: outside + "/precious")
        // A directory whose name is not UTF-8, holding 256 KiB: measured and deleted like any other.
        let hidden = Array(directory.utf8) + [UInt8(ascii: "/"), 0xff]
        #expect(hidden.map { CChar(bitPattern: $0) }.withUnsafeBufferPointer { mkdir(Array($0) + [0], 0o700) } == 0)
        let blob = (hidden + Array("/blob".utf8)).map { CChar(bitPattern: $0) } + [0]
        let fd = open(blob, O_WRONLY | O_CREAT, 0o600)
        #expect(fd >= 0)
        #expect(write(fd, [UInt8](repeating: 3, count: 256 << 10), 256 << 10) == 256 << 10)
        close(fd)

        let used = state("acme").usedBytes()
        #expect(used >= 320 << 10 && used < 1 << 20, "the 64 and 256 KiB files, not the 1 MiB behind the symlink: \(used)")
        #expect(try state("acme").remove() == used)
        #expect(!FileManager.default.fileExists(atPath: directory))
        #expect(FileManager.default.fileExists(atPath: outside + "/precious"), "a symlink's target is never deleted")
        #expect(try state("acme").remove() == 0, "removing what is gone is fine")
    }

    @Test func aTreeDeeperThanTheLimitCountsAsOverAndIsDeletedWhole() throws {
        defer { try? FileManager.default.removeItem(atPath: root) }
        let directory = root + state("deep").privatePath
        var path = directory
        for level in 0..<(AgentStateDirectory.depthLimit * 2 + 7) { path += "/\(level % 10)" }
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        try Data("bottom".utf8).write(to: URL(fileURLWithPath: path + "/file"))
        #expect(state("deep").usedBytes() == UInt64.max)
        try state("deep").remove()
        #expect(!FileManager.default.fileExists(atPath: directory))
    }
}
