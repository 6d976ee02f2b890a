import Foundation
import KeyholdTestTraits
import KeyholdTesting
import Testing

/// The admin API over loopback TCP (bearer admin tokens) and its answers to bad requests, against the real daemon.
@Suite(.offCooperativePool) struct AdminAPITests {
    /// The real daemon serving on its socket and on `127.0.0.1:port`.
    struct Served {
        let keyhold: KeyholdHarness
        let port: Int

        /// A client of the TCP listener, with `token` if given.
        func tcp(token: String? = nil) -> AdminHTTP { AdminHTTP(.tcp(port: port), token: token) }

        /// Creates an admin token over the socket with the CLI, as an operator on the host would.
        func createToken(_ name: String) throws -> String {
            let created = try keyhold.cli(["token", "create", name])
            guard created.status == 0 else { throw HarnessError("keyhold token create failed: \(created.stderr)") }
            let token = created.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            guard token.hasPrefix("kh_admin_") else { throw HarnessError("keyhold token create printed no token: \(created.stdout)") }
            return token
        }
    }

    /// Starts `keyhold serve --tcp 127.0.0.1:PORT` and returns once both listeners are bound (the harness waits
    /// for READY=1, which the daemon sends only once every listener is bound).
    static func serve() throws -> Served {
        let keyhold = try KeyholdHarness()
        let port = try LoopbackPort.free()
        try keyhold.startDaemon(systemdBus: nil, extraArguments: ["--tcp", "127.0.0.1:\(port)"])
        return Served(keyhold: keyhold, port: port)
    }

    @Test func withoutATokenTheAnswerIs401AndWithAWrongOneItIs403() async throws {
        let served = try Self.serve()
        let anonymous = try await served.tcp().send("GET", "/v1/tenants")
        #expect(anonymous.status == 401)
        #expect(anonymous.error?.code == "forbidden")
        #expect(anonymous.error?.message.contains("missing admin token") == true, "\(anonymous.text)")

        let notBearer = try await served.tcp().send("GET", "/v1/tenants", headers: [("authorization", "Basic YWRtaW46YWRtaW4=")])
        #expect(notBearer.status == 401)

        let wrong = try await served.tcp(token: "kh_admin_" + String(repeating: "0", count: 43)).send("GET", "/v1/tenants")
        #expect(wrong.status == 403)
        #expect(wrong.error?.code == "forbidden")
        #expect(wrong.error?.message.contains("unknown or revoked") == true, "\(wrong.text)")

        // Refused before anything happens: the request changed nothing.
        let create = try await served.tcp().send("POST", "/v1/tenants", body: #"{"name":"acme","plan":"byok"}"#)
        #expect(create.status == 401)
        let tenants = try await AdminHTTP(.socket(served.keyhold.socketPath)).send("GET", "/v1/tenants")
        #expect(tenants.text == "[]")
    }

    @Test func aTokenCreatedOnTheHostWorksOverTCPUntilItIsRevoked() async throws {
        let served = try Self.serve()
        let token = try served.createToken("ci")
        let client = served.tcp(token: token)

        let created = try await client.send("POST", "/v1/tenants", body: #"{"name":"acme","plan":"byok"}"#)
        #expect(created.status == 201, "\(created.text)")
        #expect(try await client.send("GET", "/v1/tenants/acme").status == 200)

        // The audit log names the token as the actor.
        let audit = try await client.send("GET", "/v1/audit?action=tenant.create&tenant=acme")
        let events = (audit.json as? [[String: Any]] ?? []).compactMap { $0["event"] as? [String: Any] }
        #expect(events.count == 1)
        #expect(events.first?["actor"] as? String == "token:ci", "\(audit.text)")
        let cliAudit = try served.keyhold.cli(["audit", "list", "--action", "tenant.create"])
        #expect(cliAudit.stdout.contains("token:ci"), "\(cliAudit.output)")

        let revoked = try served.keyhold.cli(["token", "revoke", "ci"])
        #expect(revoked.status == 0, "\(revoked.stderr)")
        let after = try await client.send("GET", "/v1/tenants")
        #expect(after.status == 403)
        #expect(after.error?.message.contains("unknown or revoked") == true)
        // The revocation is audited too.
        let tokenEvents = try served.keyhold.cli(["audit", "list", "--action", "token"])
        #expect(tokenEvents.stdout.contains("token.create") && tokenEvents.stdout.contains("token.revoke"), "\(tokenEvents.output)")
    }

    @Test func adminTokensAreNotCreatedOverTCP() async throws {
        let served = try Self.serve()
        let client = served.tcp(token: try served.createToken("onboarding"))
        let attempt = try await client.send("POST", "/v1/admin-tokens", body: #"{"name":"escalated"}"#)
        #expect(attempt.status == 403)
        #expect(attempt.error?.code == "forbidden")
        #expect(attempt.error?.message.contains("over the admin socket") == true, "\(attempt.text)")
        #expect(!attempt.text.contains("kh_admin_"))
        let list = try served.keyhold.cli(["token", "list"])
        #expect(list.stdout.contains("onboarding") && !list.stdout.contains("escalated"), "\(list.output)")
    }

    @Test func badRequestsGetAClearErrorAndChangeNothing() async throws {
        let served = try Self.serve()
        let client = served.tcp(token: try served.createToken("ci"))

        let malformed = try await client.send("POST", "/v1/tenants", body: #"{"name":"acme","plan":"#)
        #expect(malformed.status == 400)
        #expect(malformed.error?.code == "invalidInput")
        #expect(malformed.error?.message.contains("not valid JSON") == true, "\(malformed.text)")

        let missing = try await client.send("POST", "/v1/tenants", body: #"{"name":"acme"}"#)
        #expect(missing.status == 400)
        #expect(missing.error?.message.contains("missing field 'plan'") == true, "\(missing.text)")

        let wrongType = try await client.send("PUT", "/v1/tenants/acme/plan", body: #"{"plan":42}"#)
        #expect(wrongType.status == 400)
        #expect(wrongType.error?.message.contains("'plan'") == true, "\(wrongType.text)")

        let unknownRoute = try await client.send("GET", "/v1/nothing-here")
        #expect(unknownRoute.status == 404)
        #expect(unknownRoute.error?.code == "notFound", "\(unknownRoute.text)")
        // A known path with a method it does not take: 405, saying which it takes.
        for (method, path, allow) in [("PATCH", "/v1/tenants", "GET, POST"), ("DELETE", "/v1/health", "GET"), ("PUT", "/v1/hosts", "GET")] {
            let refused = try await client.send(method, path)
            #expect(refused.status == 405 && refused.allow == allow && refused.error?.code == "invalidInput", "\(method) \(path): \(refused.text)")
        }
        // Query values outside their documented range: 400 naming the parameter.
        for (path, name) in [
            ("/v1/audit?limit=0", "limit"), ("/v1/audit?limit=x", "limit"), ("/v1/tenants/acme/sandbox/logs?lines=1172350158", "lines"),
        ] {
            let refused = try await client.send("GET", path)
            #expect(refused.status == 400 && refused.error?.message.contains("\(name) must be a whole number") == true, "\(path): \(refused.text)")
        }

        let huge = #"{"name":"acme","plan":"byok","agent":["/bin/true",""# + String(repeating: "a", count: 70 * 1024) + #""]}"#
        let tooLarge = try await client.send("POST", "/v1/tenants", body: huge)
        #expect(tooLarge.status == 413, "\(tooLarge.text)")
        #expect(tooLarge.error?.message.contains("64 KiB") == true, "\(tooLarge.text)")

        let badVersion = try await client.send("DELETE", "/v1/tenants/acme/keys/anthropic?version=-1")
        #expect(badVersion.status == 400)
        #expect(badVersion.error?.message.contains("version") == true)

        // None of it created anything or reached the audit log beyond the token's creation.
        #expect(try await client.send("GET", "/v1/tenants").text == "[]")
        let audit = try await client.send("GET", "/v1/audit")
        let actions = (audit.json as? [[String: Any]] ?? []).compactMap { ($0["event"] as? [String: Any])?["action"] as? String }
        #expect(actions == ["token.create"], "\(audit.text)")
    }

    @Test func aKeyNeverAppearsInAnyAnswer() async throws {
        let served = try Self.serve()
        let client = served.tcp(token: try served.createToken("ci"))
        let key = "sk-ant-test-" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        var answers: [AdminAnswer] = []

        answers.append(try await client.send("POST", "/v1/tenants", body: #"{"name":"acme","plan":"byok"}"#))
        let set = try await client.send(
            "PUT", "/v1/tenants/acme/keys/anthropic", body: #"{"key":"\#(key)","validate":false,"skip_shape_check":false}"#)
        #expect(set.status == 201, "\(set.text)")
        #expect(((set.json as? [String: Any])?["fingerprint"] as? String)?.count == 16)
        answers.append(set)
        // Refused keys are not echoed in the error either.
        let wrongShape = "sk-proj-" + key.dropFirst(7)
        let refused = try await client.send(
            "PUT", "/v1/tenants/acme/keys/anthropic", body: #"{"key":"\#(wrongShape)","validate":false,"skip_shape_check":false}"#)
        #expect(refused.status == 400, "\(refused.text)")
        #expect(!refused.text.contains(wrongShape))
        let withNewline = try await client.send(
            "PUT", "/v1/tenants/acme/keys/anthropic", body: #"{"key":"\#(key)\nx","validate":false,"skip_shape_check":false}"#)
        #expect(withNewline.status == 400, "\(withNewline.text)")
        answers += [refused, withNewline]
        let managed = try await client.send("POST", "/v1/tenants", body: #"{"name":"globex","plan":"managed"}"#)
        let onManaged = try await client.send(
            "PUT", "/v1/tenants/globex/keys/anthropic", body: #"{"key":"\#(key)","validate":false,"skip_shape_check":false}"#)
        #expect(onManaged.status == 409, "\(onManaged.text)")
        answers += [managed, onManaged]

        for path in ["/v1/tenants", "/v1/tenants/acme", "/v1/tenants/acme/keys", "/v1/audit", "/v1/sandboxes", "/v1/kek"] {
            let answer = try await client.send("GET", path)
            #expect(answer.status == 200, "\(path): \(answer.text)")
            answers.append(answer)
        }
        answers.append(try await client.send("DELETE", "/v1/tenants/acme/keys/anthropic"))
        answers.append(try await client.send("GET", "/v1/tenants/acme/keys"))

        for answer in answers { #expect(!answer.text.contains(key), "an answer (HTTP \(answer.status)) contains the key") }
        #expect(!served.keyhold.daemonLog.contains(key))
    }
}
