import Foundation
import KeyholdOrchestration
import KeyholdServer
import KeyholdTestTraits
import KeyholdTesting
import Testing

/// Tenant tokens over the TCP admin API: what each kind of caller may do on every route, against the real daemon.
@Suite(.offCooperativePool) struct TenantTokenTests {
    /// A daemon serving TCP, with tenants `acme` and `globex` and a token for each kind of caller.
    struct Callers {
        let served: AdminAPITests.Served
        let admin: AdminHTTP
        let acme: AdminHTTP
        let globex: AdminHTTP
        let anonymous: AdminHTTP

        static func make() throws -> Callers {
            let served = try AdminAPITests.serve()
            for name in ["acme", "globex"] {
                let created = try served.keyhold.cli(["tenant", "create", name, "--plan", "byok", "--agent", "/bin/true"])
                try #require(created.status == 0, "\(created.stderr)")
            }
            return Callers(
                served: served, admin: served.tcp(token: try served.createToken("ops")),
                acme: served.tcp(token: try Self.tenantToken(served, name: "acme-portal", tenant: "acme")),
                globex: served.tcp(token: try Self.tenantToken(served, name: "globex-portal", tenant: "globex")), anonymous: served.tcp())
        }

        static func tenantToken(_ served: AdminAPITests.Served, name: String, tenant: String) throws -> String {
            let created = try served.keyhold.cli(["token", "create", name, "--tenant", tenant])
            try #require(created.status == 0, "\(created.stderr)")
            let token = created.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            try #require(token.hasPrefix("kh_tenant_"), "no tenant token printed: \(created.stdout)")
            return token
        }
    }

    /// Fills a documented path's placeholders.
    static func path(_ template: String, tenant: String) -> String {
        template.replacingOccurrences(of: "{tenant}", with: tenant).replacingOccurrences(of: "{provider}", with: "anthropic")
            .replacingOccurrences(of: "{plan}", with: "byok").replacingOccurrences(of: "{host}", with: "no-such-host")
            .replacingOccurrences(of: "{name}", with: "no-such-token")
    }

    /// Sends `route` (`METHOD /path`) for `tenant`, with an empty JSON object as the body of a write.
    static func call(_ client: AdminHTTP, _ route: String, tenant: String) async throws -> AdminAnswer {
        let parts = route.split(separator: " ", maxSplits: 1).map(String.init)
        let body = ["PUT", "POST"].contains(parts[0]) ? "{}" : nil
        return try await client.send(parts[0], Self.path(parts[1], tenant: tenant), body: body)
    }

    @Test func everyRouteAnswersEachKindOfCallerAsDocumented() async throws {
        let document = try OpenAPIDocument.load()
        let callers = try Callers.make()
        let daemon = try IdleDaemon(label: "keyhold-route-test")
        let plane = daemon.plane
        let routes = Daemon.routeList(plane: plane).sorted()
        let tenantRoutes = Daemon.tenantRouteList(plane: plane)
        #expect(tenantRoutes.count >= 12, "\(tenantRoutes.sorted())")
        // The document marks exactly the routes a tenant token may call.
        let marked = Set(routes.filter { document.operation($0)?["x-tenant-token"] as? Bool == true })
        #expect(marked == tenantRoutes, "x-tenant-token in deploy/openapi.yaml differs from the served tenant routes")

        for route in routes {
            let anonymous = try await Self.call(callers.anonymous, route, tenant: "acme")
            #expect(anonymous.status == 401, "\(route) without a token: \(anonymous.status) \(anonymous.text)")

            let own = try await Self.call(callers.acme, route, tenant: "acme")
            let other = try await Self.call(callers.globex, route, tenant: "acme")
            if tenantRoutes.contains(route) {
                #expect(![401, 403].contains(own.status), "\(route) with acme's own token: \(own.status) \(own.text)")
                #expect(own.error?.message.hasPrefix("no tenant named") != true, "\(route): \(own.text)")
                // Another tenant's name: exactly what a tenant that does not exist gets, so nothing is revealed.
                let ghost = try await Self.call(callers.globex, route, tenant: "ghost")
                #expect(other.status == 404, "\(route) with globex's token on acme: \(other.status) \(other.text)")
                #expect(other.text == ghost.text.replacingOccurrences(of: "ghost", with: "acme"), "\(route): \(other.text) vs \(ghost.text)")
            } else {
                for (name, answer) in [("acme", own), ("globex", other)] {
                    #expect(answer.status == 403, "\(route) with \(name)'s tenant token: \(answer.status) \(answer.text)")
                    #expect(answer.error?.message.contains("needs an admin token") == true, "\(route): \(answer.text)")
                }
            }
        }
        // Admins last (some of their calls change state): every route passes authentication, and tokens are managed
        // over the socket only.
        for route in routes {
            let answer = try await Self.call(callers.admin, route, tenant: "initech")
            if route.contains("/v1/admin-tokens") {
                #expect(answer.status == 403, "\(route) with an admin token: \(answer.status)")
            } else {
                #expect(![401, 403].contains(answer.status), "\(route) with an admin token: \(answer.status) \(answer.text)")
            }
        }
    }

    @Test func aTenantTokenManagesItsOwnKeysAndReadsOnlyItsOwnRecords() async throws {
        let callers = try Callers.make()
        let key = "sk-ant-api03-" + UUID().uuidString.replacingOccurrences(of: "-", with: "")
        let set = try await callers.acme.send(
            "PUT", "/v1/tenants/acme/keys/anthropic", body: #"{"key":"\#(key)","validate":false,"skip_shape_check":false}"#)
        #expect(set.status == 201, "\(set.text)")
        #expect(!set.text.contains(key))
        let foreign = try await callers.acme.send(
            "PUT", "/v1/tenants/globex/keys/anthropic", body: #"{"key":"\#(key)","validate":false,"skip_shape_check":false}"#)
        #expect(foreign.status == 404)
        #expect(
            try await callers.admin.send("PUT", "/v1/tenants/globex/alert-webhook", body: #"{"url":"https://hooks.example:9443/hook"}"#).status == 200
        )

        let records = try #require(try await callers.acme.send("GET", "/v1/tenants/acme/audit").json as? [[String: Any]])
        let events = records.compactMap { $0["event"] as? [String: Any] }
        #expect(events.count == records.count)
        let setRecord = try #require(events.first { $0["action"] as? String == "key.set" })
        #expect(setRecord["actor"] as? String == "tenant-token:acme-portal")
        #expect(events.allSatisfy { $0["tenant"] as? String == "acme" }, "\(records)")
        #expect(try await callers.acme.send("GET", "/v1/audit?tenant=globex").status == 403)
        #expect(try await callers.acme.send("GET", "/v1/tenants/globex/audit").status == 404)

        // Token management stays with the host's admins.
        let mint = try await callers.acme.send("POST", "/v1/admin-tokens", body: #"{"name":"escalate"}"#)
        #expect(mint.status == 403)
        let list = try callers.served.keyhold.cli(["token", "list"])
        #expect(list.stdout.contains("tenant acme"), "\(list.stdout)")
        #expect(!list.stdout.contains("escalate"))

        // Revoked, or its tenant deleted: the token stops working at once.
        #expect(try callers.served.keyhold.cli(["token", "revoke", "acme-portal"]).status == 0)
        #expect(try await callers.acme.send("GET", "/v1/tenants/acme/keys").status == 403)
        #expect(try await callers.globex.send("GET", "/v1/tenants/globex/keys").status == 200)
        #expect(try callers.served.keyhold.cli(["tenant", "delete", "globex", "--yes"]).status == 0)
        #expect(try await callers.globex.send("GET", "/v1/tenants/globex/keys").status == 403)
    }

    @Test func aTenantTokenForAnUnknownTenantIsRefused() throws {
        let served = try AdminAPITests.serve()
        let created = try served.keyhold.cli(["token", "create", "portal", "--tenant", "nobody"])
        #expect(created.status != 0)
        #expect(created.stderr.contains("no tenant named 'nobody'"), "\(created.stderr)")
        #expect(!(try served.keyhold.cli(["token", "list"]).stdout.contains("portal")))
    }
}
