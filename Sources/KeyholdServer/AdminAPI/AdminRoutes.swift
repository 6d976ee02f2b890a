import Foundation
import Hummingbird
import KeyholdCore
import KeyholdEgress
import KeyholdOrchestration
import KeyholdProxy
import KeyholdStore
import NIOCore
import NIOFoundationCompat

/// The admin API's routes (documented in `deploy/openapi.yaml`).
enum AdminRoutes {
    /// Registers every route on `table`.
    /// - Parameter consoleURL: the tenant console's public base URL, when the daemon serves one.
    static func register(on table: RouteTable, plane: ControlPlane, version: String, consoleURL: String? = nil) {
        table.on(.get, "/v1/health") { _, _ in
            JSONResponse.make(
                AdminAPI.Health(
                    status: "ok", version: version, systemd: plane.sandboxes.systemdDescription,
                    egressRefused: plane.sandboxes.egressRefusedConnections,
                    proxyGeneration: plane.sandboxes.attachedProxy?.lookupGeneration,
                    usageJournalWriteFailures: plane.sandboxes.attachedProxy?.journalWriteFailures))
        }
        registerPlans(on: table, plane: plane)
        registerTenants(on: table, plane: plane)
        registerConsole(on: table, plane: plane, consoleURL: consoleURL)
        registerKeys(on: table, plane: plane)
        registerSecrets(on: table, plane: plane)
        registerSandboxes(on: table, plane: plane)
        registerAudit(on: table, plane: plane)
        registerTokens(on: table, plane: plane)
        registerKEK(on: table, plane: plane)
        registerUsage(on: table, plane: plane)
        registerHosts(on: table, plane: plane)
        table.refuseOtherMethods()
    }

    static func registerHosts(on table: RouteTable, plane: ControlPlane) {
        table.on(.get, "/v1/hosts") { _, _ in JSONResponse.make(try await plane.listHosts()) }
        table.on(.delete, "/v1/hosts/{host}") { _, context in
            try await plane.forgetHost(try context.parameter("host"), actor: context.actor)
            return Response(status: .noContent)
        }
        table.on(.post, "/v1/hosts/{host}/drain") { _, context in
            JSONResponse.make(try await plane.drainHost(try context.parameter("host"), actor: context.actor))
        }
        table.on(.post, "/v1/hosts/{host}/activate") { _, context in
            try await plane.activateHost(try context.parameter("host"), actor: context.actor)
            return Response(status: .noContent)
        }
    }

    static func registerUsage(on table: RouteTable, plane: ControlPlane) {
        table.on(.get, "/v1/usage") { _, _ in JSONResponse.make(try await plane.usageOfAllTenants()) }
        table.on(.get, "/v1/tenants/{tenant}/usage", access: .tenant) { request, context in
            let group: String? = request.uri.queryParameters.get("by").map { String($0) }
            return JSONResponse.make(try await plane.usage(tenant: try context.parameter("tenant"), by: group))
        }
        table.on(.put, "/v1/platform/keys/{provider}") { request, context in
            let body = try await request.decodeAdmin(AdminAPI.SetKey.self, context: context)
            let key = try await plane.setPlatformKey(provider: try context.parameter("provider"), body, actor: context.actor)
            return JSONResponse.make(key, status: .created)
        }
    }

    static func registerKEK(on table: RouteTable, plane: ControlPlane) {
        table.on(.get, "/v1/kek") { _, _ in JSONResponse.make(try await plane.kekStatus()) }
        table.on(.post, "/v1/kek/rotate") { _, context in JSONResponse.make(try await plane.rotateKEK(actor: context.actor)) }
        table.on(.post, "/v1/kek/retire") { _, context in JSONResponse.make(try await plane.retireKEKs(actor: context.actor)) }
    }

    static func registerPlans(on table: RouteTable, plane: ControlPlane) {
        table.on(.get, "/v1/plans") { _, _ in JSONResponse.make(plane.plans.plans) }
        table.on(.get, "/v1/plans/{plan}") { _, context in JSONResponse.make(try plane.plans.plan(try context.parameter("plan"))) }
    }

    static func registerTenants(on table: RouteTable, plane: ControlPlane) {
        table.on(.post, "/v1/tenants") { request, context in
            let body = try await request.decodeAdmin(AdminAPI.CreateTenant.self, context: context)
            return JSONResponse.make(try await plane.createTenant(body, actor: context.actor), status: .created)
        }
        table.on(.get, "/v1/tenants") { _, _ in JSONResponse.make(try await plane.listTenants()) }
        table.on(.get, "/v1/tenants/{tenant}", access: .tenant) { _, context in
            JSONResponse.make(try await plane.showTenant(try context.parameter("tenant")))
        }
        table.on(.delete, "/v1/tenants/{tenant}") { _, context in
            try await plane.deleteTenant(try context.parameter("tenant"), actor: context.actor)
            return Response(status: .noContent)
        }
        table.on(.put, "/v1/tenants/{tenant}/plan") { request, context in
            let body = try await request.decodeAdmin(AdminAPI.SetPlan.self, context: context)
            return JSONResponse.make(try await plane.setPlan(try context.parameter("tenant"), plan: body.plan, actor: context.actor))
        }
        table.on(.put, "/v1/tenants/{tenant}/alert-webhook", access: .tenant) { request, context in
            let body = try await request.decodeAdmin(AdminAPI.SetAlertWebhook.self, context: context)
            return JSONResponse.make(try await plane.setAlertWebhook(try context.parameter("tenant"), url: body.url, actor: context.actor))
        }
        table.on(.put, "/v1/tenants/{tenant}/key-caps", access: .tenant) { request, context in
            let body = try await request.decodeAdmin(KeyCaps.self, context: context)
            return JSONResponse.make(try await plane.setKeyCaps(try context.parameter("tenant"), caps: body, actor: context.actor))
        }
        table.on(.post, "/v1/tenants/{tenant}/egress") { request, context in
            let body = try await request.decodeAdmin(AdminAPI.AllowEgress.self, context: context)
            return JSONResponse.make(try await plane.allowEgress(try context.parameter("tenant"), body, actor: context.actor))
        }
        table.on(.delete, "/v1/tenants/{tenant}/egress") { request, context in
            guard let destination = request.uri.queryParameters.get("destination"), !destination.isEmpty else {
                throw KeyholdError.invalidInput("name the destination to remove: ?destination=HOST[:PORT]")
            }
            return JSONResponse.make(try await plane.denyEgress(try context.parameter("tenant"), destination: destination, actor: context.actor))
        }
        table.on(.post, "/v1/tenants/{tenant}/suspend") { _, context in
            JSONResponse.make(try await plane.suspendTenant(try context.parameter("tenant"), actor: context.actor))
        }
        table.on(.post, "/v1/tenants/{tenant}/resume") { _, context in
            JSONResponse.make(try await plane.resumeTenant(try context.parameter("tenant"), actor: context.actor))
        }
    }

    static func registerConsole(on table: RouteTable, plane: ControlPlane, consoleURL: String?) {
        table.on(.post, "/v1/tenants/{tenant}/console-link") { request, context in
            guard let consoleURL else {
                throw KeyholdError.unavailable("this daemon serves no tenant console: start it with --console 127.0.0.1:PORT (and --console-url)")
            }
            let buffer = try await request.body.collect(upTo: context.maxUploadSize)
            let body =
                buffer.readableBytes == 0
                ? AdminAPI.CreateConsoleLink() : try AdminJSON.decoder().decode(AdminAPI.CreateConsoleLink.self, from: buffer)
            let link = try await plane.createConsoleLink(
                tenant: try context.parameter("tenant"), seconds: body.ttlSeconds, baseURL: consoleURL, actor: context.actor)
            return JSONResponse.make(link, status: .created)
        }
    }

    static func registerSecrets(on table: RouteTable, plane: ControlPlane) {
        table.on(.get, "/v1/tenants/{tenant}/secrets", access: .tenant) { _, context in
            JSONResponse.make(try await plane.listSecrets(tenant: try context.parameter("tenant")))
        }
        table.on(.put, "/v1/tenants/{tenant}/secrets/{secret}", access: .tenant) { request, context in
            let body = try await request.decodeAdmin(AdminAPI.SetSecret.self, context: context)
            let secret = try await plane.setSecret(
                tenant: try context.parameter("tenant"), secret: try context.parameter("secret"), body, actor: context.actor)
            return JSONResponse.make(secret, status: .created)
        }
        table.on(.delete, "/v1/tenants/{tenant}/secrets/{secret}", access: .tenant) { _, context in
            JSONResponse.make(
                try await plane.revokeSecret(tenant: try context.parameter("tenant"), secret: try context.parameter("secret"), actor: context.actor))
        }
    }

    static func registerKeys(on table: RouteTable, plane: ControlPlane) {
        table.on(.get, "/v1/tenants/{tenant}/keys", access: .tenant) { _, context in
            JSONResponse.make(try await plane.listKeys(tenant: try context.parameter("tenant")))
        }
        table.on(.put, "/v1/tenants/{tenant}/keys/{provider}", access: .tenant) { request, context in
            let body = try await request.decodeAdmin(AdminAPI.SetKey.self, context: context)
            let key = try await plane.setKey(
                tenant: try context.parameter("tenant"), provider: try context.parameter("provider"), body, actor: context.actor
            )
            return JSONResponse.make(key, status: .created)
        }
        table.on(.post, "/v1/tenants/{tenant}/keys/{provider}/validate", access: .tenant) { _, context in
            let result = try await plane.validateKey(
                tenant: try context.parameter("tenant"), provider: try context.parameter("provider"), actor: context.actor
            )
            return JSONResponse.make(result)
        }
        table.on(.post, "/v1/tenants/{tenant}/keys/{provider}/rotate", access: .tenant) { request, context in
            let provider = try context.parameter("provider")
            let body =
                provider == ControlPlane.proxyTokenProvider ? nil : try await request.decodeAdmin(AdminAPI.SetKey.self, context: context)
            let result = try await plane.rotateKey(tenant: try context.parameter("tenant"), provider: provider, body, actor: context.actor)
            return JSONResponse.make(result)
        }
        table.on(.delete, "/v1/tenants/{tenant}/keys/{provider}", access: .tenant) { request, context in
            let version = try request.integerQuery("version", in: 1...Int(Int32.max))
            let result = try await plane.revokeKey(
                tenant: try context.parameter("tenant"), provider: try context.parameter("provider"), version: version, actor: context.actor
            )
            return JSONResponse.make(result)
        }
    }

    static func registerSandboxes(on table: RouteTable, plane: ControlPlane) {
        table.on(.get, "/v1/sandboxes") { _, _ in JSONResponse.make(try await plane.sandboxes.list()) }
        table.on(.get, "/v1/tenants/{tenant}/sandbox", access: .tenant) { _, context in
            JSONResponse.make(try await plane.sandboxes.status(tenant: try context.parameter("tenant")))
        }
        table.on(.post, "/v1/tenants/{tenant}/sandbox/start") { request, context in
            let host = try request.uri.queryParameters.get("host").map { try HostOptions.validated(id: $0) }
            return JSONResponse.make(
                try await plane.sandboxes.start(tenant: try context.parameter("tenant"), actor: context.actor, host: host), status: .created)
        }
        table.on(.post, "/v1/tenants/{tenant}/sandbox/stop") { _, context in
            JSONResponse.make(try await plane.sandboxes.stop(tenant: try context.parameter("tenant"), actor: context.actor))
        }
        table.on(.post, "/v1/tenants/{tenant}/sandbox/restart") { _, context in
            JSONResponse.make(try await plane.sandboxes.restart(tenant: try context.parameter("tenant"), actor: context.actor))
        }
        table.on(.get, "/v1/tenants/{tenant}/sandbox/logs", access: .tenant) { request, context in
            let lines = try request.integerQuery("lines", in: 1...10_000) ?? 100
            return JSONResponse.make(try await plane.sandboxes.logs(tenant: try context.parameter("tenant"), lines: lines))
        }
    }

    static func registerAudit(on table: RouteTable, plane: ControlPlane) {
        table.on(.get, "/v1/audit") { request, _ in
            let query = request.uri.queryParameters
            let limit = try request.integerQuery("limit", in: 1...1_000_000)
            let records = try await plane.auditRecords(
                tenant: query.get("tenant"), tenantID: try request.integerQuery("tenant_id", in: 1...Int.max).map { Int64($0) },
                action: query.get("action"), since: query.get("since"), limit: limit
            )
            return JSONResponse.make(records)
        }
        table.on(.get, "/v1/tenants/{tenant}/audit", access: .tenant) { request, context in
            let query = request.uri.queryParameters
            let records = try await plane.tenantAuditRecords(
                tenant: try context.parameter("tenant"), action: query.get("action"), since: query.get("since"),
                limit: try request.integerQuery("limit", in: 1...1_000_000))
            return JSONResponse.make(records)
        }
        table.on(.get, "/v1/tenants/{tenant}/receipt", access: .tenant) { request, context in
            let since = request.uri.queryParameters.get("since").map { String($0) }
            return JSONResponse.make(try await plane.injectionReceipt(tenant: try context.parameter("tenant"), since: since))
        }
    }

    /// Token management is for the host's admins: a token holder over TCP can neither mint, list nor revoke tokens.
    static func requireSocket(_ context: AdminContext) throws {
        guard !context.viaToken else {
            throw KeyholdError.forbidden("admin tokens are managed on the host, over the admin socket")
        }
    }

    static func registerTokens(on table: RouteTable, plane: ControlPlane) {
        table.on(.get, "/v1/admin-tokens") { _, context in
            try Self.requireSocket(context)
            return JSONResponse.make(
                try await plane.store.read { tx in try tx.adminTokens() }.map {
                    AdminAPI.AdminToken(name: $0.name, token: nil, createdAt: $0.createdAt, tenant: $0.tenant)
                })
        }
        table.on(.post, "/v1/admin-tokens") { request, context in
            try Self.requireSocket(context)
            let body = try await request.decodeAdmin(AdminAPI.CreateAdminToken.self, context: context)
            let created = try await plane.audited { tx in
                let tenantID = try body.tenant.map { name in
                    guard name != ControlPlane.platformTenant else { throw KeyholdError.unknownTenant(name) }
                    return try tx.tenant(named: name).id
                }
                let created = try tx.createAdminToken(name: body.name, tenantID: tenantID)
                let event = AuditEvent(
                    actor: context.actor, action: .tokenCreate, tenant: body.tenant,
                    details: ["name": body.name, "scope": body.tenant == nil ? "admin" : "tenant"])
                return (created, [event])
            }
            return JSONResponse.make(
                AdminAPI.AdminToken(name: body.name, token: created.token, createdAt: created.createdAt, tenant: body.tenant), status: .created)
        }
        table.on(.delete, "/v1/admin-tokens/{name}") { _, context in
            try Self.requireSocket(context)
            let name = try context.parameter("name")
            try await plane.audited { tx in
                try tx.revokeAdminToken(name: name)
                return ((), [AuditEvent(actor: context.actor, action: .tokenRevoke, details: ["name": name])])
            }
            return Response(status: .noContent)
        }
    }
}
