import Foundation
import Glibc
import KeyholdSandbox
import KeyholdTestTraits
import KeyholdTesting
import Testing

/// Real transient units on a real systemd (a private one when PID 1 is not systemd).
@Suite(.offCooperativePool, .serialized, .enabled(if: TestSystemd.shouldRun, "needs systemd; set KEYHOLD_REQUIRE_SYSTEMD=1 to fail instead"))
struct SystemdManagerTests {
    @Test func systemIsRunning() throws {
        let state = try TestSystemd.manager().systemState()
        #expect(["running", "degraded"].contains(state))
    }

    @Test func startsSandboxedUnitWithStdinPipeAndStopsIt() throws {
        let manager = try TestSystemd.manager()
        let name = "keyhold-test-xyz.service"
        try? manager.stopUnit(name: name, timeout: .seconds(10))
        try? manager.resetFailedUnit(name: name)

        var fds: [Int32] = [-1, -1]
        #expect(pipe(&fds) == 0)
        let (readEnd, writeEnd) = (fds[0], fds[1])
        defer { close(writeEnd) }

        let started: StartedUnit
        do {
            defer { close(readEnd) }  // systemd received its own copy
            started = try manager.startTransientUnit(
                name: name,
                properties: [
                    .string("Description", "Keyhold test unit"),
                    .string("Type", "exec"),
                    .bool("DynamicUser", true),
                    .bool("PrivateTmp", true),
                    .fileDescriptor("StandardInputFileDescriptor", readEnd),
                    .string("StandardOutput", "journal"),
                    .string("StandardError", "journal"),
                    .execStart(path: "/bin/sh", argv: ["/bin/sh", "-c", "cat > /dev/null; sleep 30"]),
                ],
                timeout: .seconds(30))
        }
        #expect(started.name == name)
        #expect(started.invocationID.count == 32)
        #expect(started.invocationID.allSatisfy { $0.isHexDigit && !$0.isUppercase })
        #expect(started.mainPID > 0)

        let status = try #require(try manager.unitStatus(name: name))
        #expect(status.isActive)
        #expect(status.subState == "running")
        #expect(status.invocationID == started.invocationID)
        #expect(status.mainPID == started.mainPID)
        #expect(try manager.listUnits(matching: "keyhold-test-*.service").contains(name))

        let payload = Array("not-a-real-key\n".utf8)
        #expect(write(writeEnd, payload, payload.count) == payload.count)

        try manager.stopUnit(name: name, timeout: .seconds(30))
        let after = try manager.unitStatus(name: name)
        #expect(after == nil || after?.isActive == false)
        try manager.stopUnit(name: name, timeout: .seconds(5))  // not loaded any more: still fine
    }

    @Test func failingUnitThrowsWithItsName() throws {
        let manager = try TestSystemd.manager()
        let name = "keyhold-test-missing.service"
        try? manager.resetFailedUnit(name: name)
        defer { try? manager.resetFailedUnit(name: name) }
        let error = try #require(throws: SystemdError.self) {
            try manager.startTransientUnit(
                name: name,
                properties: [
                    .string("Type", "exec"),
                    .execStart(path: "/nonexistent/keyhold-missing-binary", argv: ["keyhold-missing-binary"]),
                ],
                timeout: .seconds(30))
        }
        #expect(error.code == .jobFailed)
        #expect(error.description.contains(name))
        #expect(error.description.contains("failed"))
    }

    @Test func unknownPropertyIsACallFailure() throws {
        let manager = try TestSystemd.manager()
        let error = try #require(throws: SystemdError.self) {
            try manager.startTransientUnit(
                name: "keyhold-test-badprop.service",
                properties: [.bool("NoSuchSettingAtAll", true), .execStart(path: "/bin/true", argv: ["true"])],
                timeout: .seconds(10))
        }
        #expect(error.code == .callFailed)
        #expect(error.busErrorMessage?.contains("NoSuchSettingAtAll") == true)
    }

    @Test func missingUnitHasNoStatus() throws {
        let manager = try TestSystemd.manager()
        #expect(try manager.unitStatus(name: "keyhold-test-never-started.service") == nil)
        try manager.killUnit(name: "keyhold-test-never-started.service", signal: SIGTERM)
        try manager.resetFailedUnit(name: "keyhold-test-never-started.service")
    }

    @Test func readsUnitOutputFromTheJournal() throws {
        let manager = try TestSystemd.manager()
        let marker = "keyhold-journal-marker-\(UInt32.random(in: 0...UInt32.max))"
        let name = "keyhold-test-journal.service"
        try? manager.stopUnit(name: name, timeout: .seconds(10))
        try? manager.resetFailedUnit(name: name)
        let started = try manager.startTransientUnit(
            name: name,
            properties: [
                .string("Type", "exec"),
                .bool("DynamicUser", true),
                .execStart(path: "/bin/sh", argv: ["/bin/sh", "-c", "echo \(marker); sleep 30"]),
            ],
            timeout: .seconds(30))
        defer { try? manager.stopUnit(name: name, timeout: .seconds(10)) }

        // journald stores lines asynchronously: poll with a deadline.
        let deadline = ContinuousClock.now + .seconds(20)
        var lines: [String] = []
        while !lines.contains(marker) && ContinuousClock.now < deadline {
            lines = try UnitJournal.lines(
                unit: name, journalDirectory: TestSystemd.instance().journalDirectory, limit: 10,
                invocationID: started.invocationID)
            if !lines.contains(marker) { usleep(100_000) }
        }
        #expect(lines.contains(marker))
    }

    @Test func droppedConnectionIsReopened() throws {
        let manager = try TestSystemd.manager()
        #expect(try manager.systemState().isEmpty == false)
        manager.close()
        #expect(try manager.systemState().isEmpty == false)
    }

    @Test func unreachableBusSaysWhatToPass() throws {
        let manager = SystemdManager(address: "unix:path=/nonexistent/keyhold/bus")
        let error = try #require(throws: SystemdError.self) { try manager.systemState() }
        #expect(error.code == .unreachable)
        #expect(error.description.contains("--systemd-bus unix:path="))
    }
}

/// Booting and stopping a private systemd of our own, by pid.
///
/// Opt-in (`KEYHOLD_TEST_PRIVATE_BOOT=1 swift test --filter PrivateSystemdTests`, alone): two private systemds at
/// once share the host's cgroup tree and disturb each other, so this must not run next to the shared instance
/// of the other suites.
@Suite(
    .offCooperativePool,
    .serialized,
    .enabled(
        if: !PrivateSystemd.hostHasSystemd && ProcessInfo.processInfo.environment["KEYHOLD_TEST_PRIVATE_BOOT"] == "1",
        "opt-in: KEYHOLD_TEST_PRIVATE_BOOT=1, run alone"))
struct PrivateSystemdTests {
    @Test func bootsAndStopsByPID() throws {
        let instance = try PrivateSystemd.boot(timeout: .seconds(90))
        #expect(instance.busAddress.hasPrefix("unix:path=/proc/\(instance.systemdPID)/root/"))
        let manager = SystemdManager(address: instance.privateSocketAddress)
        #expect(manager.address == instance.busAddress)  // mapped: the private socket refuses outsiders
        #expect(["running", "degraded"].contains(try manager.systemState()))
        manager.close()

        try instance.stop()
        #expect(kill(instance.systemdPID, 0) == -1)
        #expect(kill(instance.unsharePID, 0) == -1)
        try instance.stop()  // twice is fine
    }
}
