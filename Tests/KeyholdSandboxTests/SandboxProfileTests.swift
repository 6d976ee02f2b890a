import Foundation
import KeyholdSandbox
import KeyholdTestTraits
import Testing

@Suite(.offCooperativePool) struct ShippedProfileTests {
    @Test(arguments: ["default", "strict"])
    func shippedProfileLoads(name: String) throws {
        let profile = try SandboxProfile.load(name: name, from: TestSupport.profilesDirectory)
        #expect(profile.name == name)
        let properties = profile.unitProperties
        for expected: UnitProperty in [
            .bool("DynamicUser", true), .bool("NoNewPrivileges", true), .bool("PrivateUsers", true),
            .string("ProtectSystem", "strict"), .string("ProtectProc", "invisible"), .string("KeyringMode", "private"),
            .uint64("CapabilityBoundingSet", 0), .uint64("AmbientCapabilities", 0), .uint64("RestrictNamespaces", 0),
            .strings("SystemCallArchitectures", ["native"]), .boolStrings("SystemCallFilter", true, ["@system-service", "seccomp"]),
            .int32("SystemCallErrorNumber", 1), .uint32("UMask", 0o077), .uint64("LimitCORE", 0), .uint64("LimitCORESoft", 0),
            .uint64("MemorySwapMax", 0), .string("OOMPolicy", "kill"),
        ] {
            #expect(properties.contains(expected), "\(expected)")
        }
        #expect(!properties.contains { $0.name == "MemoryDenyWriteExecute" }, "breaks Node")
        #expect(
            properties.contains { if case .boolStrings("SystemCallFilter", false, let names) = $0 { names.contains("@privileged") } else { false } })
        let filter = try profile.seccomp.compiled()
        #expect(filter.defaultAction == .allow)
        #expect(filter.rules.contains { $0.syscall == "keyctl" && $0.action == .errno && $0.errno == 1 })
        #expect(filter.rules.contains { $0.syscall == "ioctl" && $0.conditions.first?.op == .maskedEqual })
    }

    @Test func bothProfilesGiveANetworkOfItsOwnWithAFirewallToLoopback() throws {
        for name in ["default", "strict"] {
            let profile = try SandboxProfile.load(name: name, from: TestSupport.profilesDirectory)
            #expect(profile.unitProperties.contains(.boolStrings("RestrictAddressFamilies", true, ["AF_UNIX", "AF_INET", "AF_INET6"])))
            #expect(profile.unitProperties.contains(.bool("PrivateNetwork", true)))
            #expect(profile.unitProperties.contains(.ipAddresses("IPAddressDeny", IPAddressPrefix.parse("any")!)))
            #expect(profile.unitProperties.contains(.ipAddresses("IPAddressAllow", IPAddressPrefix.parse("localhost")!)))
        }
        let standard = try SandboxProfile.load(name: "default", from: TestSupport.profilesDirectory)
        let strict = try SandboxProfile.load(name: "strict", from: TestSupport.profilesDirectory)
        #expect(standard.stopTimeout == .seconds(30))
        #expect(standard.unitProperties.contains(.uint64("TimeoutStopUSec", 30_000_000)))
        let standardDenied = Set(try standard.seccomp.compiled().rules.map(\.syscall))
        let strictDenied = Set(try strict.seccomp.compiled().rules.map(\.syscall))
        #expect(standardDenied.isStrictSubset(of: strictDenied))
    }
}

@Suite(.offCooperativePool) struct ProfileErrorTests {
    /// A valid profile named `x`, with `unit` and `seccomp` replaceable.
    static func profileJSON(
        unit: String = #"{"DynamicUser": true}"#, seccomp: String = #"{"defaultAction": "SCMP_ACT_ALLOW"}"#, extra: String = ""
    )
        -> String
    {
        #"{"name": "x", "description": "test", "unit": \#(unit), "seccomp": \#(seccomp)\#(extra)}"#
    }

    /// Writes `json` as `x.json` in a temporary directory, loads it, and returns the error.
    static func loadError(_ json: String, name: String = "x") throws -> (ProfileError, path: String) {
        let directory = try TestSupport.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("\(name).json").path
        try Data(json.utf8).write(to: URL(fileURLWithPath: path))
        do {
            _ = try SandboxProfile.load(name: name, from: directory.path)
        } catch let error as ProfileError {
            return (error, path)
        }
        Issue.record("the profile loaded")
        throw CancellationError()
    }

    @Test func minimalProfileLoads() throws {
        let directory = try TestSupport.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try Data(Self.profileJSON().utf8).write(to: directory.appendingPathComponent("x.json"))
        let profile = try SandboxProfile.load(name: "x", from: directory.path)
        #expect(profile.unitProperties == [.bool("DynamicUser", true)])
        #expect(profile.stopTimeout == SandboxProfile.defaultStopTimeout)
    }

    @Test func unknownPropertyNamesFileAndField() throws {
        let (error, path) = try Self.loadError(Self.profileJSON(unit: #"{"ProtectSytem": "strict"}"#))
        #expect(error.code == .unknownProperty)
        #expect(error.description == "\(path): unit.ProtectSytem: unknown property")
    }

    @Test func typoInSeccompSyscallNamesFileAndField() throws {
        let seccomp = #"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["keyctl", "keyctll"], "action": "SCMP_ACT_ERRNO"}]}"#
        let (error, path) = try Self.loadError(Self.profileJSON(seccomp: seccomp))
        #expect(error.code == .unknownSyscall)
        #expect(error.file == path)
        #expect(error.field == "seccomp.syscalls[0].names[1]")
        #expect(error.description.contains("\"keyctll\""))
    }

    @Test func typoInSystemCallFilterNamesField() throws {
        let (error, path) = try Self.loadError(Self.profileJSON(unit: #"{"SystemCallFilter": ["@system-service", "~@mount mkdirr"]}"#))
        #expect(error.code == .unknownSyscall)
        #expect(error.description == "\(path): unit.SystemCallFilter[1]: unknown syscall \"mkdirr\"")
        let (group, _) = try Self.loadError(Self.profileJSON(unit: #"{"SystemCallFilter": "@system-servic"}"#))
        #expect(group.field == "unit.SystemCallFilter")
    }

    @Test(arguments: [
        (#"{"PrivateTmp": "yes"}"#, "unit.PrivateTmp"),
        (#"{"UMask": 77}"#, "unit.UMask"),
        (#"{"ProtectSystem": true}"#, "unit.ProtectSystem"),
        (#"{"CapabilityBoundingSet": "CAP_CHOWN"}"#, "unit.CapabilityBoundingSet"),
        (#"{"SystemCallArchitectures": ["native", 3]}"#, "unit.SystemCallArchitectures[1]"),
        (#"{"TimeoutStopSec": true}"#, "unit.TimeoutStopSec"),
    ])
    func wrongTypeNamesFileAndField(unit: String, field: String) throws {
        let (error, path) = try Self.loadError(Self.profileJSON(unit: unit))
        #expect(error.code == .wrongType)
        #expect(error.file == path)
        #expect(error.field == field)
        #expect(error.description.hasPrefix("\(path): \(field): expected "))
    }

    @Test func wrongTypeInSeccompNamesField() throws {
        let seccomp = #"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["bpf"], "action": "SCMP_ACT_ERRNO", "errnoRet": "EPERM"}]}"#
        let (error, path) = try Self.loadError(Self.profileJSON(seccomp: seccomp))
        #expect(error.code == .wrongType)
        #expect(error.description.hasPrefix("\(path): seccomp.syscalls[0].errnoRet: "))
    }

    @Test func unknownCapabilityIsRefused() throws {
        let (error, _) = try Self.loadError(Self.profileJSON(unit: #"{"CapabilityBoundingSet": ["CAP_NET_RAW", "CAP_SYS_ADMN"]}"#))
        #expect(error.code == .unknownCapability)
        #expect(error.field == "unit.CapabilityBoundingSet[1]")
    }

    @Test(arguments: [
        (#"{"defaultActon": "SCMP_ACT_ALLOW"}"#, "seccomp.defaultActon", ProfileError.Code.unknownField),
        (#"{"defaultAction": "SCMP_ACT_ALLOWED"}"#, "seccomp.defaultAction", .invalidValue),
        (#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_Z80"]}"#, "seccomp.architectures[0]", .invalidValue),
        (
            #"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["ioctl"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 1, "value": 1, "op": "SCMP_CMP_ABOUT"}]}]}"#,
            "seccomp.syscalls[0].args[0].op", .invalidValue
        ),
        (
            #"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["ioctl"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 9, "value": 1, "op": "SCMP_CMP_EQ"}]}]}"#,
            "seccomp.syscalls[0].args[0].index", .invalidValue
        ),
        (
            #"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["bpf"], "action": "SCMP_ACT_ERRNO", "errno": 1}]}"#,
            "seccomp.syscalls[0].errno", .unknownField
        ),
    ])
    func badSeccompPolicyNamesField(seccomp: String, field: String, code: ProfileError.Code) throws {
        let (error, path) = try Self.loadError(Self.profileJSON(seccomp: seccomp))
        #expect(error.code == code)
        #expect(error.file == path)
        #expect(error.field == field)
    }

    @Test func unknownTopLevelFieldIsRefused() throws {
        let (error, _) = try Self.loadError(Self.profileJSON(extra: #", "seccom": {}"#))
        #expect(error.code == .unknownField)
        #expect(error.field == "seccom")
    }

    @Test func reservedPropertyIsRefused() throws {
        let (error, _) = try Self.loadError(Self.profileJSON(unit: #"{"Environment": ["ANTHROPIC_API_KEY=x"]}"#))
        #expect(error.code == .reservedProperty)
        #expect(error.field == "unit.Environment")
    }

    @Test func badValuesAreRefused() throws {
        for (unit, field) in [
            (#"{"ProtectSystem": "strictest"}"#, "unit.ProtectSystem"), (#"{"UMask": "0999"}"#, "unit.UMask"),
            (#"{"SystemCallErrorNumber": "EPREM"}"#, "unit.SystemCallErrorNumber"),
            (#"{"RestrictAddressFamilies": "AF_UNIX AF_INET7"}"#, "unit.RestrictAddressFamilies"),
            (#"{"RestrictNamespaces": ["net", "time-travel"]}"#, "unit.RestrictNamespaces[1]"),
            (#"{"TimeoutStopSec": "soon"}"#, "unit.TimeoutStopSec"), (#"{"MemoryMax": "lots"}"#, "unit.MemoryMax"),
        ] {
            let (error, _) = try Self.loadError(Self.profileJSON(unit: unit))
            #expect(error.code == .invalidValue, "\(unit)")
            #expect(error.field == field)
        }
    }

    @Test func nameMustMatchFile() throws {
        let (error, _) = try Self.loadError(Self.profileJSON(), name: "y")
        #expect(error.field == "name")
    }

    @Test func missingFileAndMalformedJSON() throws {
        #expect(throws: ProfileError.self) { try SandboxProfile.load(name: "does-not-exist", from: TestSupport.profilesDirectory) }
        #expect(throws: ProfileError.self) { try SandboxProfile.load(name: "../default", from: TestSupport.profilesDirectory) }
        let (error, path) = try Self.loadError("{\"name\": ")
        #expect(error.code == .malformed)
        #expect(error.file == path)
    }

    @Test func valueConversions() throws {
        let json = Self.profileJSON(
            unit:
                #"{"RestrictNamespaces": ["net"], "MemoryMax": "512M", "TasksMax": "infinity", "CPUQuota": "50%", "TimeoutStopSec": "1min", "CapabilityBoundingSet": ["CAP_NET_BIND_SERVICE"]}"#
        )
        let profile = try SandboxProfile.decode(Data(json.utf8), file: "inline")
        #expect(profile.unitProperties.contains(.uint64("RestrictNamespaces", 0x4000_0000)))
        #expect(profile.unitProperties.contains(.uint64("MemoryMax", 512 << 20)))
        #expect(profile.unitProperties.contains(.uint64("TasksMax", .max)))
        #expect(profile.unitProperties.contains(.uint64("CPUQuotaPerSecUSec", 500_000)))
        #expect(profile.unitProperties.contains(.uint64("CapabilityBoundingSet", 1 << 10)))
        #expect(profile.stopTimeout == .seconds(60))
    }
}
