import Foundation
import KeyholdSandbox
import KeyholdTestTraits
import Testing

/// Runs the built `keyhold-exec` binary directly, without systemd.
@Suite(.offCooperativePool, .serialized) struct KeyholdExecTests {
    let exec: String

    init() throws {
        exec = try #require(TestSupport.keyholdExecPath, "build keyhold-exec first (swift build --product keyhold-exec) or set KEYHOLD_EXEC_PATH")
    }

    /// A script that reports what the agent sees: the canary's hash, whether uname works, its stdin.
    static let probe = #"""
        printf 'sha=%s\n' "$(printf %s "$KH_CANARY" | sha256sum | cut -d' ' -f1)"
        if uname >/dev/null 2>&1; then echo uname=ok; else echo uname=denied; fi
        if IFS= read -r line; then echo stdin=data; else echo stdin=eof; fi
        echo "stdin=$(readlink /proc/self/fd/0)"
        """#

    static func sha256(_ text: String) throws -> String {
        let outcome = try runProcess("/usr/bin/sha256sum", [], input: .file(Array(text.utf8)))
        return String(outcome.stdout.prefix(64))
    }

    static func denyUname() throws -> SeccompPolicy {
        SeccompPolicy(defaultAction: .allow, syscalls: [.init(names: ["uname"], action: .errno, errnoRet: 1)])
    }

    @Test func agentGetsTheKeyAndTheFilterAndNoStdin() throws {
        let canary = TestSupport.makeCanary()
        let payload = try ExecPayload(environment: [.init(name: "KH_CANARY", value: canary)], policy: Self.denyUname())
        let outcome = try runProcess(exec, ["--", "/bin/sh", "-c", Self.probe], input: .pipe(payload.encode()))
        #expect(outcome.status == 0, "\(outcome.stderr)")
        let lines = outcome.stdout.split(separator: "\n").map(String.init)
        #expect(lines == ["sha=\(try Self.sha256(canary))", "uname=denied", "stdin=eof", "stdin=/dev/null"])
        #expect(!outcome.stdout.contains(canary))
        #expect(!outcome.stderr.contains(canary))
    }

    @Test func withoutTheRuleUnameWorks() throws {
        let payload = ExecPayload(environment: [.init(name: "KH_CANARY", value: "x")], seccomp: SeccompFilter(defaultAction: .allow))
        let outcome = try runProcess(exec, ["/bin/sh", "-c", Self.probe], input: .pipe(payload.encode()))
        #expect(outcome.status == 0)
        #expect(outcome.stdout.contains("uname=ok"))
    }

    @Test(arguments: ["default", "strict"])
    func shippedPoliciesLoadAndDenyNamespaces(profile name: String) throws {
        let profile = try SandboxProfile.load(name: name, from: TestSupport.profilesDirectory)
        let payload = try ExecPayload(environment: [.init(name: "KH_CANARY", value: "x")], policy: profile.seccomp)
        let script = "echo started; if unshare --user true 2>/dev/null; then echo unshare=ok; else echo unshare=denied; fi"
        let outcome = try runProcess(exec, ["/bin/sh", "-c", script], input: .file(payload.encode()))
        #expect(outcome.status == 0, "\(outcome.stderr)")
        #expect(outcome.stdout == "started\nunshare=denied\n")
    }

    @Test func argumentsReachTheAgent() throws {
        let payload = ExecPayload(environment: [])
        let outcome = try runProcess(exec, ["/bin/sh", "-c", #"printf '%s|' "$0" "$@""#, "zero", "a b", "--", "c"], input: .file(payload.encode()))
        #expect(outcome.stdout == "zero|a b|--|c|")
    }

    @Test func aPooledLaunchTakesItsAgentFromThePayloadOnly() throws {
        let canary = TestSupport.makeCanary()
        let agent = [
            "/bin/sh", "-c", #"printf '%s|' "$0" "$@"; printf 'sha=%s' "$(printf %s "$KH_CANARY" | sha256sum | cut -c1-64)""#, "zero", "a b",
        ]
        let payload = try ExecPayload(environment: [.init(name: "KH_CANARY", value: canary)], policy: Self.denyUname(), arguments: agent)
        let outcome = try runProcess(exec, ["--pooled"], input: .pipe(payload.encode()))
        #expect(outcome.status == 0, "\(outcome.stderr)")
        #expect(outcome.stdout == "zero|a b|sha=\(try Self.sha256(canary))")

        // No agent in the payload, an agent in both places, a relative path: refused, the payload never printed.
        let refused: [(arguments: [String], payload: ExecPayload)] = [
            (["--pooled"], ExecPayload(environment: [.init(name: "KH_CANARY", value: canary)])),
            (["/bin/true"], ExecPayload(environment: [.init(name: "KH_CANARY", value: canary)], arguments: ["/bin/true"])),
            (["--pooled"], ExecPayload(environment: [.init(name: "KH_CANARY", value: canary)], arguments: ["true"])),
        ]
        for (arguments, payload) in refused {
            let outcome = try runProcess(exec, arguments, input: .pipe(payload.encode()))
            #expect(outcome.status == 65, "\(arguments): \(outcome.stderr)")
            #expect(!outcome.stderr.contains(canary) && !outcome.stdout.contains(canary))
        }
        #expect(ExecPayload(environment: [], arguments: ["true"]).problem() == "the agent's path (argument 0) must be absolute")
        let decoded = try ExecPayload(decoding: payload.encode())
        #expect(decoded == payload)
    }

    @Test func emptyStdinExits66() throws {
        let outcome = try runProcess(exec, ["/bin/true"], input: .null)
        #expect(outcome.status == 66)
        #expect(outcome.stderr.hasPrefix("keyhold-exec: "))
    }

    @Test func usageErrorsExit64() throws {
        for arguments in [[], ["--"], ["-x", "/bin/true"], ["true"]] {
            let outcome = try runProcess(exec, arguments, input: .null)
            #expect(outcome.status == 64, "\(arguments)")
        }
    }

    @Test func failuresNeverPrintThePayload() throws {
        let canary = TestSupport.makeCanary()
        let payload = try ExecPayload(environment: [.init(name: "KH_CANARY", value: canary)], policy: Self.denyUname()).encode()
        let cases: [(arguments: [String], input: [UInt8], status: Int32)] = [
            (["/nonexistent/agent"], payload, 127),
            (["/etc/passwd"], payload, 126),
            (["/bin/true"], Array(payload.dropLast(4)), 65),
            (["/bin/true"], Array("garbage \(canary)".utf8), 65),
            (["/bin/true"], ExecPayload(environment: [.init(name: "BAD=\(canary)", value: canary)]).encode(), 65),
            (["/bin/true"], Array(repeating: UInt8(ascii: "7"), count: ExecPayload.maximumSize + 10), 65),
            (
                ["/bin/true"],
                ExecPayload(
                    environment: [.init(name: "KH_CANARY", value: canary)],
                    seccomp: SeccompFilter(defaultAction: .allow, rules: [.init(syscall: "no_such_call_\(canary)", action: .errno, errno: 1)])
                ).encode(), 67
            ),
        ]
        for (arguments, input, status) in cases {
            let outcome = try runProcess(exec, arguments, input: .file(input))
            #expect(outcome.status == status, "\(arguments): \(outcome.stderr)")
            #expect(outcome.stderr.hasPrefix("keyhold-exec: "))
            #expect(outcome.stderr.split(separator: "\n").count == 1)
            #expect(!outcome.stderr.contains(canary))
            #expect(!outcome.stdout.contains(canary))
        }
    }
}
