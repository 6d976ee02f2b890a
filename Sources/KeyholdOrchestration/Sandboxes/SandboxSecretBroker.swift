import Crypto
import Foundation
import KeyholdCore
import KeyholdEgress
import KeyholdProxy
import KeyholdStore
import KeyholdVault
import Logging
import NIOCore
import Synchronization

/// What the egress gateway of one brokered sandbox knows of its tenant's secrets: their bindings and sealed newest
/// versions, and the sandbox's placeholders (as SHA-256), in memory. A request opens the sealed value at that
/// moment, so `secret set` and `secret revoke` hold from the next request on: this host refreshes its sandboxes at
/// once, and every snapshot older than `maximumAge` is read again (the fleet's other hosts).
final class SandboxSecretBroker: SecretBroker, PlaceholderMisuseReporter {
    struct Snapshot: Sendable {
        var secrets: [SecretRecord] = []
        var placeholders: [Data: String] = [:]
        /// `host:port` of each brokered key's HTTPS destination (its base URL, or its provider's API), and the
        /// providers whose keys go there.
        var keyDestinations: [String: Set<Provider>] = [:]
        var webhook: String?
        var readAt = ContinuousClock.now
    }

    let tenantID: Int64
    let tenantName: String
    let sandboxID: Int64
    let unit: String
    private let store: Store
    private let vaults: VaultRing
    private let proxy: MeteringProxy?
    private let plans: PlanCatalog
    private let webhooks: WebhookSender
    private let logger: Logger
    private let snapshot = Mutex(Snapshot())
    /// When each (placeholder, destination) misuse was last recorded, and how many were refused since without a record:
    /// an agent that loops on a leak gets one `key.misuse` record and one webhook POST a minute for it, not one each.
    private let misuses = Mutex<[String: (recordedAt: ContinuousClock.Instant, unrecorded: Int)]>([:])

    /// The most one misuse of a sandbox (a placeholder to one destination) is recorded and posted.
    static let misuseInterval: Duration = .seconds(60)
    private let refreshing = Atomic<Bool>(false)

    /// How old a snapshot may get before a request reads the store again (in the background).
    static let maximumAge: Duration = .seconds(2)

    init(
        tenantID: Int64, tenantName: String, sandboxID: Int64, unit: String, store: Store, vaults: VaultRing, proxy: MeteringProxy?,
        plans: PlanCatalog, webhooks: WebhookSender, logger: Logger
    ) {
        self.tenantID = tenantID
        self.tenantName = tenantName
        self.sandboxID = sandboxID
        self.unit = unit
        self.store = store
        self.vaults = vaults
        self.proxy = proxy
        self.plans = plans
        self.webhooks = webhooks
        self.logger = logger
    }

    /// Reads the tenant's secrets, the sandbox's placeholders and the tenant's webhook again.
    func refresh() async throws {
        let (tenantID, sandboxID, plans) = (self.tenantID, self.sandboxID, self.plans)
        let read = try await store.read { tx in
            let tenant = try tx.tenant(id: tenantID)
            let webhook = tenant.flatMap { tenant in tenant.alertWebhook ?? (try? plans.plan(tenant.plan))?.alertWebhook }
            var placeholders: [Data: String] = [:]
            for (hash, label) in try tx.placeholderHashes(sandboxID: sandboxID) { placeholders[hash] = label }
            var destinations: [String: Set<Provider>] = [:]
            for key in try tx.activeKeys(tenantID: tenantID) where key.provider.brokering != nil {
                guard let destination = Self.destination(ofBaseURL: key.baseURL ?? key.provider.defaultBaseURL) else { continue }
                destinations[destination, default: []].insert(key.provider)
            }
            return Snapshot(
                secrets: try tx.activeSecrets(tenantID: tenantID), placeholders: placeholders, keyDestinations: destinations, webhook: webhook,
                readAt: .now)
        }
        snapshot.withLock { $0 = read }
    }

    /// Reads the store again in the background when the snapshot is older than `maximumAge` (one read at a time).
    private func refreshIfStale(_ current: Snapshot) {
        guard ContinuousClock.now - current.readAt > Self.maximumAge,
            refreshing.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged
        else { return }
        Task {
            defer { self.refreshing.store(false, ordering: .releasing) }
            do { try await self.refresh() } catch { self.logger.warning("\(self.unit): secrets not refreshed: \(error)") }
        }
    }

    /// `host:port` of an https:// base URL (port 443 unless given); nil for anything else.
    static func destination(ofBaseURL url: String?) -> String? {
        guard let url, let components = URLComponents(string: url), components.scheme?.lowercased() == "https",
            let host = components.host.flatMap(EgressRule.canonicalDestination)
        else { return nil }
        return "\(host):\(components.port ?? 443)"
    }

    // MARK: SecretBroker

    func isKeyDestination(host: String, port: Int) -> Bool {
        let current = snapshot.withLock { $0 }
        refreshIfStale(current)
        return current.keyDestinations["\(host):\(port)"] != nil
    }

    func serveKeyConnection(_ channel: any Channel, host: String, port: Int) throws {
        guard let proxy else { throw KeyholdError.unavailable("this daemon runs no metering proxy (--proxy): no key broker") }
        let destination = "\(host):\(port)"
        let providers = snapshot.withLock { $0.keyDestinations[destination] } ?? []
        try proxy.adoptBrokered(
            channel, brokered: BrokeredListener(sandboxID: sandboxID, destination: destination, providers: providers, misuse: self))
    }

    /// How the key broker inside the sandbox (`127.0.0.1:8787`) serves this sandbox.
    var brokerListener: BrokeredListener {
        BrokeredListener(sandboxID: sandboxID, destination: "127.0.0.1:\(SandboxBoundary.proxyPort)", misuse: self)
    }

    func secret(host: String, port: Int) -> BrokeredSecret? {
        let current = snapshot.withLock { $0 }
        refreshIfStale(current)
        guard let record = current.secrets.first(where: { $0.binding.host == host && $0.binding.port == port }) else { return nil }
        return BrokeredSecret(name: record.name, binding: record.binding)
    }

    func open(_ secret: BrokeredSecret) -> OpenedSecret? {
        guard let record = snapshot.withLock({ $0.secrets.first { $0.name == secret.name } }), record.isActive else { return nil }
        do {
            let opened = try vaults.current.open(record.sealed, binding: record.sealingBinding)
            defer { opened.wipe() }
            return OpenedSecret(value: opened.withBytes { [UInt8]($0) }, version: record.version, fingerprint: record.sealed.fingerprint)
        } catch {
            logger.error("\(unit): the secret '\(secret.name)' cannot be opened: \(error)")
            return nil
        }
    }

    func placeholderLabel(of token: String) -> String? {
        let hash = Data(SHA256.hash(data: Array(token.utf8)))
        return snapshot.withLock { $0.placeholders[hash] }
    }

    func recordUse(of secret: OpenedSecret, name: String, destination: String) {
        proxy?.countSecretUse(
            tenantID: tenantID, tenantName: tenantName, sandboxID: sandboxID, label: SecretBinding.sealingLabel(name: name), version: secret.version,
            fingerprint: secret.fingerprint, destination: destination)
    }

    func recordMisuse(label: String, destination: String, location: String) {
        let now = ContinuousClock.now
        // nil: recorded less than a minute ago (counted); else how many were refused unrecorded since the last record.
        let unrecorded = misuses.withLock { all -> Int? in
            let key = label + " " + destination
            if let last = all[key], now - last.recordedAt < Self.misuseInterval {
                all[key] = (last.recordedAt, last.unrecorded + 1)
                return nil
            }
            let since = all[key]?.unrecorded ?? 0
            all[key] = (now, 0)
            return since
        }
        guard let unrecorded else { return }
        let (store, logger, tenant, unit) = (self.store, self.logger, self.tenantName, self.unit)
        let webhook = snapshot.withLock { $0.webhook }
        logger.warning("\(unit): a placeholder of \(label) was sent to \(destination): refused", metadata: ["tenant": .string(tenant)])
        Task {
            let time = Timestamp.now()
            do {
                try await store.write { tx in
                    _ = try tx.appendAudit(
                        AuditEvent(
                            actor: "keyhold-gateway", action: .keyMisuse, tenant: tenant, provider: label, outcome: .refused, unit: unit,
                            details: [
                                "destination": destination, "location": location, "refused_unrecorded_before": String(unrecorded),
                            ]))
                }
            } catch {
                logger.error("\(unit): the key.misuse record could not be written: \(error)")
            }
            guard let webhook else { return }
            let payload: [String: Any] = [
                "event": "key.misuse", "tenant": tenant, "sandbox": unit, "placeholder_of": label, "destination": destination,
                "location": location, "time": time,
            ]
            await webhooks.post(payload, to: webhook, about: "key.misuse for \(tenant)", tenant: tenant)
        }
    }
}
