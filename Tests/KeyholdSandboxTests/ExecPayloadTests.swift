import Foundation
import KeyholdSandbox
import KeyholdTestTraits
import Testing

@Suite(.offCooperativePool) struct ExecPayloadTests {
    static let policy = SeccompPolicy(
        defaultAction: .allow, architectures: ["SCMP_ARCH_X86_64", "native"],
        syscalls: [
            .init(names: ["keyctl", "add_key"], action: .errno),
            .init(names: ["ptrace"], action: .killProcess),
            .init(names: ["getpid"], action: .allow),
            .init(
                names: ["ioctl"], action: .errno, errnoRet: 13,
                args: [.init(index: 1, value: 0xFFFF_FFFF, valueTwo: 0x5412, op: .maskedEqual), .init(index: 0, value: 2, op: .greaterThan)]),
            .init(names: ["clone"], action: .errno, args: [.init(index: 0, value: 1, op: .equal), .init(index: 0, value: 5, op: .equal)]),
        ])

    @Test func compiledFlattensLikeRunc() throws {
        let filter = try Self.policy.compiled()
        #expect(filter.defaultAction == .allow)
        #expect(filter.architectures == ["x86_64"])
        #expect(filter.rules.map(\.syscall) == ["keyctl", "add_key", "ptrace", "ioctl", "clone", "clone"], "getpid equals the default action")
        #expect(filter.rules[0].errno == 1, "EPERM when errnoRet is absent")
        #expect(filter.rules[2].errno == 0)
        #expect(filter.rules[3].errno == 13)
        #expect(filter.rules[3].conditions.count == 2)
        #expect(filter.rules[4].conditions.count == 1, "two conditions on one argument become two rules")
    }

    @Test func roundTrip() throws {
        let environment: [ExecPayload.EnvironmentEntry] = [
            .init(name: "ANTHROPIC_API_KEY", value: "sk-ant-api03-abc,def:12\n3"),
            .init(name: "OPENAI_BASE_URL", value: "http://127.0.0.1:8080/v1"),
            .init(name: "EMPTY", value: ""), .init(name: "UNICODE", value: "clé-ünïcødé"),
        ]
        let payload = try ExecPayload(environment: environment, policy: Self.policy)
        let bytes = payload.encode()
        #expect(try ExecPayload(decoding: bytes) == payload)
        #expect(payload.problem() == nil)
        let withoutFilter = ExecPayload(environment: environment)
        #expect(try ExecPayload(decoding: withoutFilter.encode()) == withoutFilter)
        payload.withEncoded { buffer in #expect(Array(buffer) == bytes) }
    }

    /// The fuzzer's seed corpus for keyhold-exec's decoder (`Tests/FuzzCorpus/exec-payload`) holds what the daemon's
    /// encoder writes today: an agent's environment, with a seccomp filter, and a pooled launch's argv. Run with
    /// `KEYHOLD_RECORD_CORPUS=1` to write them after a change of format.
    @Test func theFuzzCorpusHoldsWhatTheEncoderWrites() throws {
        let environment: [ExecPayload.EnvironmentEntry] = [
            .init(name: "OPENAI_API_KEY", value: "sk-corpus-not-a-key"), .init(name: "OPENAI_BASE_URL", value: "http://127.0.0.1:8080/v1"),
            .init(name: "HTTPS_PROXY", value: "http://127.0.0.1:3128"),
        ]
        let payloads = [
            "environment": ExecPayload(environment: environment),
            "seccomp": try ExecPayload(environment: environment, policy: Self.policy),
            "pooled": try ExecPayload(environment: environment, policy: Self.policy, arguments: ["/usr/bin/python3", "-u", "agent.py"]),
        ]
        let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("FuzzCorpus/exec-payload")
        for (name, payload) in payloads {
            let file = directory.appendingPathComponent(name)
            if ProcessInfo.processInfo.environment["KEYHOLD_RECORD_CORPUS"] != nil {
                try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
                try Data(payload.encode()).write(to: file)
            }
            #expect(FileManager.default.contents(atPath: file.path).map(Array.init) == payload.encode(), "\(file.path) is out of date")
        }
    }

    @Test func encodingIsNetstrings() {
        let payload = ExecPayload(environment: [.init(name: "A", value: "xy")], seccomp: SeccompFilter(defaultAction: .allow))
        #expect(String(decoding: payload.encode(), as: UTF8.self) == "14:keyhold-exec/1,3:env,1:A,2:xy,7:seccomp,14:SCMP_ACT_ALLOW,1:0,3:end,")
    }

    @Test func malformedPayloadsAreRefused() {
        let good = ExecPayload(environment: [.init(name: "A", value: "secret")]).encode()
        for bad in [Array(good.dropLast()), good + Array("1:x,".utf8), Array("3:end,".utf8), [], Array(good.prefix(20))] {
            #expect(throws: ExecPayload.DecodingError.self) { try ExecPayload(decoding: bad) }
        }
        do {
            _ = try ExecPayload(decoding: Array(good.dropLast(7)))
        } catch {
            #expect(!"\(error)".contains("secret"))
        }
    }

    @Test func problemNamesEntryNotValue() {
        let payload = ExecPayload(environment: [.init(name: "OK", value: "a"), .init(name: "1BAD", value: "hidden")])
        #expect(payload.problem() == "environment entry 1: invalid variable name")
    }
}
