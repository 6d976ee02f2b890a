import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import KeyholdCore
import KeyholdOrchestration
import KeyholdStore
import KeyholdTestTraits
import KeyholdTesting
import NIOCore
import Testing

@testable import KeyholdServer

/// The admin API's router in process (Hummingbird's test client, over loopback), on a control plane whose systemd is
/// in memory: authentication, a tenant token's scope, the error bodies, and a start over HTTP down to the launcher.
@Suite(.offCooperativePool, .timeLimit(.minutes(1))) struct InProcessAdminAPITests {
    /// An admin token and a tenant token of `tenant`, made in the store as `keyhold token create` makes them.
    static func tokens(_ host: InProcessHost, tenant: String) async throws -> (admin: String, tenant: String) {
        try await host.store.write { tx in
            let admin = try tx.createAdminToken(name: "admin-\(UUID().uuidString.prefix(6))").token
            let scoped = try tx.createAdminToken(name: "tenant-\(UUID().uuidString.prefix(6))", tenantID: try tx.tenant(named: tenant).id).token
            return (admin, scoped)
        }
    }

    @Test func overTCPATokenIsRequiredAndATenantTokenReachesOnlyItsTenant() async throws {
        let host = try InProcessHost()
        let (tenant, _, _) = try await host.runningTenant("api")
        let other = InProcessTenants.name("other")
        try await host.tenant(other, key: InProcessTenants.canary())
        let (admin, scoped) = try await Self.tokens(host, tenant: tenant)
        let app = Application(router: Daemon.adminRouter(plane: host.plane, transport: .tcp, version: "test"))
        try await app.test(.live) { client in
            try await client.execute(uri: "/v1/tenants", method: .get) { response in
                #expect(response.status == .unauthorized)
                let error = try JSONDecoder().decode(AdminAPI.ErrorBody.self, from: Data(response.body.readableBytesView))
                #expect(error.error.message.contains("missing admin token"), "the refusal says what to send: \(error.error.message)")
            }
            try await client.execute(uri: "/v1/tenants", method: .get, headers: [.authorization: "Bearer \(admin)"]) { response in
                #expect(response.status == .ok)
                let names = try AdminJSON.decoder().decode([AdminAPI.Tenant].self, from: Data(response.body.readableBytesView)).map(\.name)
                #expect(Set(names).isSuperset(of: [tenant, other]))
            }
            try await client.execute(uri: "/v1/tenants/\(tenant)/sandbox", method: .get, headers: [.authorization: "Bearer \(scoped)"]) {
                response in
                #expect(response.status == .ok)
                let sandboxes = try AdminJSON.decoder().decode([AdminAPI.Sandbox].self, from: Data(response.body.readableBytesView))
                #expect(sandboxes.map(\.systemdState) == ["active/running"])
            }
            // Another tenant's name gets what an unknown tenant gets (nothing is revealed); an admin route, a 403.
            try await client.execute(uri: "/v1/tenants/\(other)/sandbox", method: .get, headers: [.authorization: "Bearer \(scoped)"]) {
                response in
                #expect(response.status == .notFound)
                #expect(!String(buffer: response.body).contains("forbidden"), "it does not say the tenant exists")
            }
            try await client.execute(uri: "/v1/tenants", method: .get, headers: [.authorization: "Bearer \(scoped)"]) { response in
                #expect(response.status == .forbidden)
            }
        }
    }

    @Test func aStartOverTheAPIReachesTheLauncherAndABadRequestGetsA400ThatNamesIt() async throws {
        let host = try InProcessHost()
        let tenant = InProcessTenants.name("http")
        let key = InProcessTenants.canary()
        try await host.tenant(tenant, key: key)
        let (admin, _) = try await Self.tokens(host, tenant: tenant)
        let app = Application(router: Daemon.adminRouter(plane: host.plane, transport: .tcp, version: "test"))
        try await app.test(.live) { client in
            let auth: HTTPFields = [.authorization: "Bearer \(admin)", .contentType: "application/json"]
            try await client.execute(uri: "/v1/tenants/\(tenant)/sandbox/start", method: .post, headers: auth, body: ByteBuffer(string: "{}")) {
                response in
                #expect(response.status == .ok || response.status == .created)
                let sandbox = try AdminJSON.decoder().decode(AdminAPI.Sandbox.self, from: Data(response.body.readableBytesView))
                #expect(await host.injected("ANTHROPIC_API_KEY", unit: sandbox.unit) == key)
                #expect(!String(buffer: response.body).contains(key), "the answer never holds the key")
            }
            try await client.execute(uri: "/v1/tenants", method: .post, headers: auth, body: ByteBuffer(string: #"{"name": "x"}"#)) { response in
                #expect(response.status == .badRequest)
                #expect(String(buffer: response.body).contains("plan"), "the 400 names the missing field: \(String(buffer: response.body))")
            }
            try await client.execute(uri: "/v1/tenants/nobody-\(UUID().uuidString.prefix(4))", method: .get, headers: auth) { response in
                #expect(response.status == .notFound)
            }
        }
    }
}
