import Foundation
import KeyholdCore
import KeyholdEgress
import KeyholdProxy
import KeyholdSandbox
import KeyholdStore
import KeyholdVault
import Logging

extension SandboxService {
    /// What one start injects: environment entries, and the audit facts of each key (never the key).
    struct Injection: Sendable {
        var keys: [KeyVersionRecord]
        var proxyToken: String?
        /// Brokered delivery: each key's placeholder, written where the key would have been (the key is never decrypted
        /// for the start).
        var placeholders: [Provider: String] = [:]
        /// The sandbox whose placeholders the broker inside it takes (nil: keys in the environment, or managed).
        var brokeredSandboxID: Int64?
        /// Brokered delivery: the tenant's secrets' placeholders, the authority the sandbox trusts, and what its
        /// gateway asks about the secrets.
        var secretPlaceholders: [SecretPlaceholder] = []
        var authority: SandboxAuthority?
        var secrets: SandboxSecretBroker?
        /// Where the sandbox may connect (BYOK; empty for managed, whose only way out is the proxy).
        var policy: EgressPolicy
        /// Whether the agent's state is over the plan's limit (it is then mounted read-only).
        var stateReadOnly: Bool
        var versions: [String] { proxyToken == nil ? keys.map { "\($0.provider):\($0.version)" } : ["proxy-token"] }
    }

    /// A start that is part of a rotation: a second unit beside the running one, with the new credential.
    struct RolloutStart: Sendable {
        /// The pending key version replacing the active one of its provider; nil for a proxy-token rotation.
        var pendingKey: KeyVersionRecord?
        /// Records the new unit's name before systemd is asked to start it (so a crash can be cleaned up).
        var recordUnit: @Sendable (SandboxRecord) async throws -> Void
    }

    func startLocked(
        tenant name: String, actor: String, restarts: Int, rollout: RolloutStart? = nil, placement: StartPlacement = .keep
    ) async throws -> AdminAPI.Sandbox {
        let systemd = try requireSystemd()
        let began = ContinuousClock.now
        var timing = StartTiming()
        let (tenant, plan, keys, tenantEgress) = try await store.read { tx in
            let tenant = try tx.tenant(named: name)
            let plan = try self.plans.effectivePlan(for: tenant)
            let allowed = Set(plan.kind == .byok ? plan.providers : [])
            var keys = try tx.activeKeys(tenantID: tenant.id).filter { allowed.contains($0.provider) }
            if let pending = rollout?.pendingKey {
                keys = keys.filter { $0.provider != pending.provider } + [pending]
            }
            return (tenant, plan, keys, try tx.egressRules(tenantID: tenant.id))
        }
        timing.mark("db-read")
        guard tenant.state == .active else {
            throw KeyholdError.conflict("tenant '\(name)' is suspended: `keyhold tenant resume \(name)` first")
        }
        if plan.kind == .byok && keys.isEmpty {
            throw KeyholdError.conflict("tenant '\(name)' has no active key on its BYOK plan: set one with `keyhold key set \(name) PROVIDER`")
        }
        let profile = try profiles.profile(named: plan.sandbox.profile, in: configuration.profilesDirectory)
        timing.mark("profile-load")
        guard FileManager.default.isExecutableFile(atPath: configuration.execPath) else {
            throw KeyholdError.unavailable("keyhold-exec is missing at \(configuration.execPath): build it or pass --exec-path")
        }
        guard let agentPath = tenant.agent.first, FileManager.default.isExecutableFile(atPath: agentPath) else {
            throw KeyholdError.invalidInput(
                "the agent of tenant '\(name)' (\(tenant.agent.first ?? "none")) is not an executable file on this host: fix it and recreate the tenant"
            )
        }
        timing.mark("file-checks")
        // A warm pool's unit, when the plan keeps some; it goes back only if the start is refused below. A notify agent
        // and a rotation's second unit start cold: their start job must wait for the agent, or start beside the running one.
        let pooled = rollout == nil && !tenant.agentNotify ? takeWarmUnit(plan: plan) : nil
        // Row first: its id names the unit; a managed sandbox's proxy token is bound to it.
        let written: (PlacementDecision, SandboxRecord?, StartCredentials)
        do {
            written = try await writeStartRow(
                tenant: tenant, plan: plan, keys: keys, restarts: restarts, rollout: rollout, placement: placement, unit: pooled?.name, actor: actor)
        } catch {
            // Refused before anything of the tenant reached the unit: it waits for the next start.
            if let pooled { warmPool.add(pooled) }
            throw error
        }
        let (decision, inserted, credentials) = written
        if let pooled, inserted == nil { warmPool.add(pooled) }
        switch decision {
        case .elsewhere(let host, let epoch): return try await waitForStart(tenant: tenant, on: host, epoch: epoch)
        case .superseded: throw StartSuperseded()
        case .here: break
        }
        guard let sandbox = inserted else { throw KeyholdError.failed("the start of '\(name)' wrote no sandbox") }
        timing.mark("db-insert")
        var injection = Injection(
            keys: keys, proxyToken: credentials.proxyToken, placeholders: credentials.placeholders,
            brokeredSandboxID: credentials.placeholders.isEmpty ? nil : sandbox.id, secretPlaceholders: credentials.secretPlaceholders,
            authority: credentials.authority, policy: Self.egressPolicy(plan: plan, keys: keys, tenantEgress: tenantEgress), stateReadOnly: false)
        if credentials.authority != nil {
            injection.secrets = try await secretBroker(tenant: tenant, sandboxID: sandbox.id, unit: sandbox.unit)
        }
        do {
            if let rollout {
                try await rollout.recordUnit(sandbox)
                await self.crashPoints.reach("rotation.before-new-unit")
            }
            let started =
                if let pooled {
                    try await injectWarm(
                        injection, into: sandbox, unit: pooled, tenant: tenant, plan: plan, profile: profile, systemd: systemd, actor: actor,
                        timing: &timing)
                } else {
                    try await inject(
                        injection, into: sandbox, tenant: tenant, plan: plan, profile: profile, systemd: systemd, actor: actor, timing: &timing)
                }
            Telemetry.sandboxStart(plan: plan.id, outcome: "ok", duration: ContinuousClock.now - began)
            Telemetry.keyInjected(kind: plan.kind.rawValue)
            return started
        } catch {
            await markFailed(sandbox, tenant: tenant, actor: actor, error: error)
            Telemetry.sandboxStart(plan: plan.id, outcome: "failed", duration: ContinuousClock.now - began)
            throw error
        }
    }

    /// What a new sandbox authenticates with, made with its row: a managed sandbox's proxy token, or a brokered
    /// plan's placeholders (one per key).
    struct StartCredentials: Sendable {
        var proxyToken: String?
        var placeholders: [Provider: String] = [:]
        var secretPlaceholders: [SecretPlaceholder] = []
        var authority: SandboxAuthority?
    }

    /// A generic secret's placeholder in a brokered sandbox, and the variable that holds it.
    struct SecretPlaceholder: Sendable {
        var secret: SecretRecord
        var placeholder: String
    }

    /// Writes the new sandbox's row (placement decided): refused when the tenant already runs one, unless a rotation.
    private func writeStartRow(
        tenant: TenantRecord, plan: Plan, keys: [KeyVersionRecord], restarts: Int, rollout: RolloutStart?, placement: StartPlacement, unit: String?,
        actor: String
    ) async throws -> (PlacementDecision, SandboxRecord?, StartCredentials) {
        let name = tenant.name
        // A brokered sandbox's own authority: made (a key pair, a signature) before the write, which holds the store's lock.
        let authority = plan.isBrokered ? try SandboxAuthority.make(tenant: name) : nil
        return try await store.write { tx -> (PlacementDecision, SandboxRecord?, StartCredentials) in
            try tx.lockTenant(id: tenant.id)
            try tx.clearFailedSandboxes(tenantID: tenant.id)
            // A pending start may find the sandbox it replaces on another host (a move); anything else starts alone.
            var live = try tx.liveSandboxes(tenantID: tenant.id)
            if case .claimed = placement { live = live.filter(self.isOurs) }
            if rollout == nil, let live = live.first {
                if !self.isOurs(live), let host = live.host {
                    throw KeyholdError.conflict(
                        "tenant '\(name)' already has sandbox \(live.unit) (\(live.state)), which runs on host '\(host)': restart it there")
                }
                throw KeyholdError.conflict(
                    "tenant '\(name)' already has sandbox \(live.unit) (\(live.state)): use `keyhold sandbox restart \(name)`")
            }
            let decision = try self.resolvePlacement(placement, tenant: tenant, actor: actor, tx: tx)
            guard case .here(let epoch) = decision else { return (decision, nil, StartCredentials()) }
            let sandbox = try tx.insertSandbox(
                tenantID: tenant.id, tenantName: tenant.name, restarts: restarts, host: self.configuration.hostID, epoch: epoch, unit: unit)
            var credentials = StartCredentials()
            if plan.kind == .managed { credentials.proxyToken = try tx.createProxyToken(tenantID: tenant.id, sandboxID: sandbox.id) }
            if plan.isBrokered {
                for key in keys {
                    guard let brokering = key.provider.brokering else {
                        throw KeyholdError.conflict(
                            "plan '\(plan.id)' brokers keys, and the \(key.provider) key of '\(name)' cannot be brokered: revoke it or move the tenant to a plan that delivers keys in the environment"
                        )
                    }
                    credentials.placeholders[key.provider] = try tx.createPlaceholder(
                        tenantID: tenant.id, sandboxID: sandbox.id, provider: key.provider, prefix: brokering.placeholderPrefix)
                }
                for secret in try tx.activeSecrets(tenantID: tenant.id) {
                    let placeholder = try tx.createSecretPlaceholder(tenantID: tenant.id, sandboxID: sandbox.id, name: secret.name)
                    credentials.secretPlaceholders.append(SecretPlaceholder(secret: secret, placeholder: placeholder))
                }
            }
            // Its authority's key sealed like a tenant's key: a restarted daemon serves its secrets on.
            if let authority {
                let key = SecretBytes(authority.privateKeyBytes)
                defer { key.wipe() }
                let binding = KeyBinding(tenantID: tenant.id, provider: StoreTransaction.authorityLabel(sandboxID: sandbox.id), version: 1)
                try tx.insertSandboxAuthority(
                    sandboxID: sandbox.id, tenantID: tenant.id, certificate: authority.certificatePEM,
                    sealed: try self.vaults.current.seal(key, binding: binding))
                credentials.authority = authority
            }
            return (decision, sandbox, credentials)
        }
    }

    private func inject(
        _ injection: Injection, into sandbox: SandboxRecord, tenant: TenantRecord, plan: Plan, profile: SandboxProfile, systemd: any SystemdControl,
        actor: String, timing: inout StartTiming
    ) async throws -> AdminAPI.Sandbox {
        let pipe = try InjectionPipe()
        defer { pipe.closeWriteEnd() }
        let state = agentState(tenant: tenant.name)
        var injection = injection
        injection.stateReadOnly = try await checkStateLimit(state, tenant: tenant, plan: plan, unit: sandbox.unit, actor: actor)
        let files = try boundary.writeNameFiles(unit: sandbox.unit, policy: injection.policy, authority: injection.authority)
        let properties = SandboxUnit.properties(
            tenant: tenant.name, plan: plan, profile: profile, agent: tenant.agent, agentNotify: tenant.agentNotify, execPath: configuration.execPath,
            stdinDescriptor: pipe.readEnd,
            boundary: .init(
                hostsFile: files.hosts, resolvConfFile: files.resolvConf,
                trustBundleFile: SandboxBoundary.hasTrustBundle ? files.trustBundle : nil, state: state, stateReadOnly: injection.stateReadOnly)
        )
        let timeout = configuration.jobTimeout
        let deadline = ContinuousClock.now + timeout
        timing.mark("pipe-properties")
        // Audit first, synced, then the key: if the record cannot be written, the pipe closes empty and keyhold-exec
        // exits without a key. A notify agent's start job ends only at READY=1, which it can only send once it has its
        // key: for it this happens as soon as its process exists, inside the start call.
        // The way out first: the agent must find its proxy or gateway listening when it starts.
        let openBoundary: @Sendable (StartedUnit) throws -> Void = { [injection] started in
            do {
                try self.boundary.open(
                    unit: sandbox.unit, tenant: tenant.name, plan: plan, policy: injection.policy, mainPID: started.mainPID,
                    stateReadOnly: injection.stateReadOnly, deadline: deadline, brokeredSandboxID: injection.brokeredSandboxID,
                    secrets: injection.secrets, authority: injection.authority)
                try self.boundTemporaryDirectories(unit: sandbox.unit, mainPID: started.mainPID, plan: plan, deadline: deadline)
            } catch {
                pipe.closeWriteEnd()
                throw error
            }
        }
        let audit: @Sendable (StartedUnit) throws -> Void = { [injection] started in
            try self.recordInjection(injection, sandbox: sandbox, tenant: tenant, plan: plan, started: started, actor: actor, pipe: pipe)
            try self.writePayload(injection, tenant: tenant.name, profile: profile, agentArguments: nil, to: pipe)
        }
        let started: StartedUnit
        do {
            let notify = tenant.agentNotify
            let openThenAudit: @Sendable (StartedUnit) throws -> Void = { started in
                try openBoundary(started)
                try audit(started)
            }
            let hook: (@Sendable (StartedUnit) throws -> Void)? = notify ? openThenAudit : nil
            started = try await systemd.startTransientUnit(name: sandbox.unit, properties: properties, timeout: timeout, whenForked: hook)
            pipe.closeReadEnd()
            timing.mark("systemd-start")
            if !notify {
                // One hop off the async threads for both: the way out, then the audit records and the key.
                let opened = try await Blocking.run {
                    try openBoundary(started)
                    let opened = ContinuousClock.now
                    try audit(started)
                    return opened
                }
                timing.mark("boundary", at: opened)
            }
            timing.mark("audit-payload")
        } catch {
            pipe.closeReadEnd()
            pipe.closeWriteEnd()
            boundary.close(unit: sandbox.unit)
            try? await systemd.stopUnit(name: sandbox.unit, timeout: timeout)
            throw error
        }
        timing.log(unit: sandbox.unit, logger: logger)
        return Self.running(sandbox, started: started, keyVersions: injection.versions, tenant: tenant.name)
    }

    /// The sandbox as a start leaves it: running as `started`, holding `keyVersions`.
    static func running(_ sandbox: SandboxRecord, started: StartedUnit, keyVersions: [String], tenant: String) -> AdminAPI.Sandbox {
        var record = sandbox
        record.state = .running
        record.invocationID = started.invocationID
        record.mainPID = Int(started.mainPID)
        record.keyVersions = keyVersions
        return record.api(tenant: tenant, systemdState: "active/running")
    }

    /// Writes the sandbox's new state and its `key.inject` records in one synced transaction: the step before
    /// `writePayload`. When the records cannot be written the pipe is closed empty: keyhold-exec exits without a key.
    func recordInjection(
        _ injection: Injection, sandbox: SandboxRecord, tenant: TenantRecord, plan: Plan, started: StartedUnit, actor: String, pipe: InjectionPipe
    ) throws {
        // A host fenced meanwhile injects nothing: its agents must all be gone before its lease can pass.
        if let reason = lease.fencedReason {
            pipe.closeWriteEnd()
            throw KeyholdError.unavailable(reason)
        }
        do {
            try store.writeNow { tx in
                // The fencing check: this host still holds the tenant under the sandbox's epoch, within its lease.
                if let host = self.configuration.hostID, let epoch = sandbox.epoch {
                    try tx.requireLease(tenantID: tenant.id, host: host, epoch: epoch)
                }
                try tx.updateSandbox(
                    sandbox.id, state: .running, invocationID: started.invocationID, mainPID: Int(started.mainPID), keyVersions: injection.versions
                )
                for event in self.injectEvents(injection, sandbox: sandbox, tenant: tenant, plan: plan, started: started, actor: actor) {
                    try tx.appendAudit(event)
                }
            }
        } catch let error as KeyholdError where error.code == .conflict {
            pipe.closeWriteEnd()
            throw error
        } catch {
            pipe.closeWriteEnd()
            throw KeyholdError.unavailable(
                "the key.inject audit record could not be written (\(error)): no key was injected and the unit was stopped")
        }
    }

    private func injectEvents(
        _ injection: Injection, sandbox: SandboxRecord, tenant: TenantRecord, plan: Plan, started: StartedUnit, actor: String
    ) -> [AuditEvent] {
        if injection.proxyToken != nil {
            return [
                AuditEvent(
                    actor: actor, action: .keyInject, tenant: tenant.name, provider: "keyhold-proxy", unit: sandbox.unit,
                    invocationID: started.invocationID, details: ["plan": plan.id, "credential": "proxy-token"]
                )
            ]
        }
        let secretEvents = injection.secretPlaceholders.map { entry in
            AuditEvent(
                actor: actor, action: .keyInject, tenant: tenant.name, provider: SecretBinding.sealingLabel(name: entry.secret.name),
                keyVersion: entry.secret.version, fingerprint: entry.secret.sealed.fingerprint, unit: sandbox.unit,
                invocationID: started.invocationID,
                details: [
                    "plan": plan.id, "delivery": KeyDelivery.brokered.rawValue,
                    "placeholder_fingerprint": Self.placeholderFingerprint(entry.placeholder),
                    "destination": entry.secret.binding.destination, "header": entry.secret.binding.header,
                ])
        }
        return secretEvents
            + injection.keys.map { key in
                var details = ["plan": plan.id, "delivery": KeyDelivery.environment.rawValue]
                if let placeholder = injection.placeholders[key.provider] {
                    // The placeholder's fingerprint only: the placeholder itself is a credential inside the sandbox.
                    details["delivery"] = KeyDelivery.brokered.rawValue
                    details["placeholder_fingerprint"] = Self.placeholderFingerprint(placeholder)
                }
                return AuditEvent(
                    actor: actor, action: .keyInject, tenant: tenant.name, provider: key.provider.rawValue, keyVersion: key.version,
                    fingerprint: key.sealed.fingerprint, unit: sandbox.unit, invocationID: started.invocationID, details: details
                )
            }
    }

    /// Decrypts the keys, writes them with the seccomp policy into the pipe, closes it; the plaintext is wiped on return.
    /// - Parameter agentArguments: the agent's argv, for a warm pool's unit (`keyhold-exec --pooled`); nil otherwise.
    func writePayload(
        _ injection: Injection, tenant: String, profile: SandboxProfile, agentArguments: [String]?, to pipe: InjectionPipe
    ) throws {
        let user = "kh-\(tenant)"
        let state = agentState(tenant: tenant).pathInSandbox
        var environment: [ExecPayload.EnvironmentEntry] = [
            // Names a DynamicUser cannot look up (its user database is hidden with /run): what most programs read instead.
            .init(name: "USER", value: user), .init(name: "LOGNAME", value: user), .init(name: "HOME", value: state),
        ]
        // systemd sets it for a unit with StateDirectory=; a warm pool's unit had no state when it started.
        if agentArguments != nil { environment.append(.init(name: "STATE_DIRECTORY", value: state)) }
        if let token = injection.proxyToken {
            let base = "http://127.0.0.1:\(SandboxBoundary.proxyPort)"
            environment += [
                .init(name: "KEYHOLD_PROXY_TOKEN", value: token), .init(name: "OPENAI_API_KEY", value: token),
                .init(name: "ANTHROPIC_API_KEY", value: token), .init(name: "OPENAI_BASE_URL", value: base + "/v1"),
                .init(name: "ANTHROPIC_BASE_URL", value: base),
            ]
        } else {
            let gateway = "http://127.0.0.1:\(SandboxBoundary.egressProxyPort)"
            let direct = "localhost,127.0.0.1,::1"
            environment += [
                .init(name: "HTTPS_PROXY", value: gateway), .init(name: "https_proxy", value: gateway),
                .init(name: "NO_PROXY", value: direct), .init(name: "no_proxy", value: direct),
            ]
        }
        // A database from before the refusal at `key set` may hold clashing keys: inject neither rather than one at random.
        for key in injection.keys {
            if let clash = key.provider.environmentClash(among: injection.keys.map(\.provider)) {
                throw KeyholdError.conflict(
                    "tenant '\(tenant)' has both \(key.provider) and \(clash.provider) keys, which both set \(clash.variables.joined(separator: " and ")): revoke one of them"
                )
            }
        }
        for key in injection.keys {
            let provider = key.provider
            if let placeholder = injection.placeholders[provider], let brokering = provider.brokering {
                // Brokered: the key stays sealed; the agent's client calls the broker inside its sandbox with the placeholder.
                environment += provider.keyEnvironmentNames.map { .init(name: $0, value: placeholder) }
                let base = "http://127.0.0.1:\(SandboxBoundary.proxyPort)" + brokering.agentBasePath
                environment.append(.init(name: provider.baseURLEnvironmentName, value: base))
                continue
            }
            let secret = try vaults.current.open(key.sealed, binding: key.binding)
            defer { secret.wipe() }
            let value = secret.withBytes { String(decoding: $0, as: UTF8.self) }
            environment += provider.keyEnvironmentNames.map { .init(name: $0, value: value) }
            if let baseURL = key.baseURL { environment.append(.init(name: provider.baseURLEnvironmentName, value: baseURL)) }
        }
        for entry in injection.secretPlaceholders {
            environment.append(.init(name: entry.secret.binding.environment, value: entry.placeholder))
        }
        if injection.authority != nil {
            // Clients that read a bundle from the environment rather than Debian's path get the same one.
            let bundle = SandboxBoundary.trustBundlePath
            for name in ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS"] {
                environment.append(.init(name: name, value: bundle))
            }
        }
        let payload = try ExecPayload(environment: environment, policy: profile.seccomp, arguments: agentArguments ?? [])
        try payload.withEncoded { bytes in try pipe.writeAll(bytes) }
        pipe.closeWriteEnd()
    }

    func markFailed(_ sandbox: SandboxRecord, tenant: TenantRecord, actor: String, error: any Error) async {
        boundary.close(unit: sandbox.unit)
        let message = String("\(error)".prefix(500))
        do {
            try await store.write { tx in
                try tx.updateSandbox(sandbox.id, state: .stopped, lastError: message)
                try tx.revokeProxyTokens(sandboxID: sandbox.id)
                // A failed start leaves the tenant stopped, unless it was placed again meanwhile.
                if let epoch = sandbox.epoch, try tx.liveSandboxes(tenantID: tenant.id).allSatisfy({ $0.id == sandbox.id }) {
                    try tx.stopPlacement(tenantID: tenant.id, epoch: epoch)
                }
                try tx.appendAudit(
                    AuditEvent(
                        actor: actor, action: .sandboxStart, tenant: tenant.name, outcome: .failed, unit: sandbox.unit, details: ["error": message]
                    )
                )
            }
        } catch {
            logger.error("could not record the failed start of \(sandbox.unit): \(error)")
        }
        await releaseUsageWindows(tenantID: tenant.id)
        try? await systemd?.resetFailedUnit(name: sandbox.unit)
    }
}

extension SandboxService {
    /// What the gateway of a brokered sandbox asks about its tenant's secrets, read once now.
    func secretBroker(tenant: TenantRecord, sandboxID: Int64, unit: String) async throws -> SandboxSecretBroker {
        let broker = SandboxSecretBroker(
            tenantID: tenant.id, tenantName: tenant.name, sandboxID: sandboxID, unit: unit, store: store, vaults: vaults,
            proxy: boundary.attachedProxy, plans: plans, webhooks: WebhookSender(destinations: configuration.tenantDestinations, logger: logger),
            logger: logger)
        try await broker.refresh()
        return broker
    }

    /// What the audit records of a placeholder: the first 16 hex digits of its SHA-256, enough to tell two apart.
    static func placeholderFingerprint(_ placeholder: String) -> String {
        String(TokenStore.hash(placeholder).map { String(format: "%02x", $0) }.joined().prefix(16))
    }
}
