import Foundation
import KeyholdTestTraits
import KeyholdTesting
import Testing

/// Requests schemathesis found mishandled: each now answered 400 or 404 (or 405), and the daemon stays up.
@Suite(.offCooperativePool) struct QueryEdgeTests {
    @Test func oddQueriesBodiesAndMethodsGetClearAnswersAndTheDaemonLives() async throws {
        let served = try AdminAPITests.serve()
        let client = AdminHTTP(.socket(served.keyhold.socketPath))
        #expect(try served.keyhold.cli(["tenant", "create", "acme", "--plan", "byok"]).status == 0)
        for path in ["/v1/audit?since=893646d", "/v1/tenants/acme/audit?since=999999999d", "/v1/tenants/acme/receipt?since=4000000h"] {
            let answer = try await client.send("GET", path)
            #expect(answer.status == 400, "\(path): \(answer.status) \(answer.text)")
            #expect(answer.error?.message.contains("more than a century") == true, "\(answer.text)")
        }
        #expect(try await client.send("GET", "/v1/audit?since=7d").status == 200)
        let huge = try await client.send("DELETE", "/v1/tenants/acme/keys/anthropic?version=70900592843037799965731920787013632")
        #expect(huge.status == 400 && huge.error?.message.contains("version must be a whole number") == true, "\(huge.text)")
        // NUL characters (PostgreSQL text cannot hold one) and the platform's reserved tenant.
        for path in ["/v1/audit?action=%00", "/v1/audit?tenant=acme%00", "/v1/tenants/acme/audit?action=key%00"] {
            let answer = try await client.send("GET", path)
            #expect(answer.status == 400 && answer.error?.message.contains("NUL") == true, "\(path): \(answer.text)")
        }
        let nul = try await client.send("PUT", "/v1/tenants/acme/alert-webhook", body: #"{"url":"https://hooks.example.com/\u0000"}"#)
        #expect(nul.status == 400, "\(nul.text)")
        #expect(try await client.send("GET", "/v1/tenants/platform").status == 404)
        #expect(try await client.send("PUT", "/v1/tenants/platform/alert-webhook", body: #"{"url":"https://a.example"}"#).status == 404)
        let platformToken = try served.keyhold.cli(["token", "create", "sneaky", "--tenant", "platform"])
        #expect(platformToken.status != 0 && platformToken.stderr.contains("no tenant named 'platform'"), "\(platformToken.stderr)")
        for method in ["TRACE", "HEAD", "QUERY"] {
            let answer = try await client.send(method, "/v1/tenants")
            #expect(answer.status == 405, "\(method): \(answer.status)")
            #expect(answer.allow == "GET, POST", "\(method): \(String(describing: answer.allow))")
        }
    }
}
