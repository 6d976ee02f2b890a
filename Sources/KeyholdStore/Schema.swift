import GRDB

/// The versioned migrations of Keyhold's SQLite schema. Add new ones at the end; never edit a shipped one.
enum Schema {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE tenants (
                        id INTEGER PRIMARY KEY,
                        name TEXT NOT NULL UNIQUE,
                        plan TEXT NOT NULL,
                        state TEXT NOT NULL CHECK (state IN ('active', 'suspended')),
                        agent TEXT NOT NULL,
                        agent_notify INTEGER NOT NULL DEFAULT 0,
                        created_at TEXT NOT NULL,
                        updated_at TEXT NOT NULL
                    );
                    CREATE TABLE key_versions (
                        id INTEGER PRIMARY KEY,
                        tenant_id INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
                        provider TEXT NOT NULL,
                        version INTEGER NOT NULL,
                        state TEXT NOT NULL CHECK (state IN ('pending', 'active', 'retired', 'revoked', 'failed')),
                        ciphertext BLOB NOT NULL,
                        nonce BLOB NOT NULL,
                        tag BLOB NOT NULL,
                        wrapped_dek BLOB,
                        kek_id TEXT NOT NULL,
                        fingerprint TEXT NOT NULL,
                        base_url TEXT,
                        created_at TEXT NOT NULL,
                        retired_at TEXT,
                        revoked_at TEXT,
                        UNIQUE (tenant_id, provider, version)
                    );
                    CREATE INDEX key_versions_kek ON key_versions(kek_id);
                    CREATE TABLE sandboxes (
                        id INTEGER PRIMARY KEY,
                        tenant_id INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
                        unit TEXT NOT NULL UNIQUE,
                        state TEXT NOT NULL CHECK (state IN ('starting', 'running', 'stopping', 'stopped', 'failed')),
                        desired TEXT NOT NULL CHECK (desired IN ('running', 'stopped')),
                        invocation_id TEXT,
                        main_pid INTEGER,
                        key_versions TEXT NOT NULL DEFAULT '',
                        restarts INTEGER NOT NULL DEFAULT 0,
                        last_error TEXT,
                        created_at TEXT NOT NULL,
                        updated_at TEXT NOT NULL
                    );
                    CREATE TABLE proxy_tokens (
                        id INTEGER PRIMARY KEY,
                        tenant_id INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
                        sandbox_id INTEGER REFERENCES sandboxes(id) ON DELETE SET NULL,
                        token_hash BLOB NOT NULL UNIQUE,
                        created_at TEXT NOT NULL,
                        revoked_at TEXT
                    );
                    CREATE TABLE admin_tokens (
                        id INTEGER PRIMARY KEY,
                        name TEXT NOT NULL UNIQUE,
                        token_hash BLOB NOT NULL UNIQUE,
                        created_at TEXT NOT NULL,
                        revoked_at TEXT
                    );
                    CREATE TABLE usage_requests (
                        id INTEGER PRIMARY KEY,
                        request_id TEXT NOT NULL UNIQUE,
                        tenant_id INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
                        sandbox_id INTEGER,
                        model TEXT NOT NULL,
                        input_tokens INTEGER NOT NULL,
                        output_tokens INTEGER NOT NULL,
                        cached_tokens INTEGER NOT NULL DEFAULT 0,
                        cache_write_tokens INTEGER NOT NULL DEFAULT 0,
                        reasoning_tokens INTEGER NOT NULL DEFAULT 0,
                        cost_picousd INTEGER NOT NULL,
                        status INTEGER NOT NULL,
                        charged TEXT NOT NULL,
                        latency_ms REAL NOT NULL,
                        created_at TEXT NOT NULL
                    );
                    CREATE TABLE usage_alerts (
                        tenant_id INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
                        cap TEXT NOT NULL,
                        window TEXT NOT NULL,
                        threshold INTEGER NOT NULL,
                        fired_at TEXT NOT NULL,
                        PRIMARY KEY (tenant_id, cap, window, threshold)
                    );
                    CREATE INDEX usage_requests_tenant_time ON usage_requests(tenant_id, created_at);
                    CREATE TABLE audit (
                        seq INTEGER PRIMARY KEY,
                        time TEXT NOT NULL,
                        actor TEXT NOT NULL,
                        action TEXT NOT NULL,
                        tenant TEXT,
                        provider TEXT,
                        key_version INTEGER,
                        fingerprint TEXT,
                        outcome TEXT NOT NULL,
                        unit TEXT,
                        invocation_id TEXT,
                        details TEXT NOT NULL,
                        prev_hash TEXT NOT NULL,
                        hash TEXT NOT NULL
                    );
                    CREATE INDEX audit_tenant ON audit(tenant, seq);
                    CREATE TABLE rotations (
                        id INTEGER PRIMARY KEY,
                        tenant_id INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
                        provider TEXT NOT NULL,
                        from_version INTEGER,
                        to_version INTEGER,
                        step TEXT NOT NULL,
                        state TEXT NOT NULL CHECK (state IN ('running', 'done', 'failed')),
                        old_units TEXT NOT NULL DEFAULT '',
                        new_units TEXT NOT NULL DEFAULT '',
                        error TEXT,
                        started_at TEXT NOT NULL,
                        updated_at TEXT NOT NULL
                    );
                    CREATE UNIQUE INDEX rotations_one_running ON rotations(tenant_id) WHERE state = 'running';
                    """
            )
        }
        migrator.registerMigration("v2: tenant alert webhooks, proxy lookup generation") { db in
            try db.execute(sql: "ALTER TABLE tenants ADD COLUMN alert_webhook TEXT")
            // Counts every change to what the metering proxy caches (tokens, tenants, keys), so that its caches
            // survive the commits that do not touch them, such as its own usage rows five times a second.
            try db.execute(sql: "CREATE TABLE proxy_generation (id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL)")
            try db.execute(sql: "INSERT INTO proxy_generation (id, n) VALUES (1, 0)")
            for table in ["proxy_tokens", "tenants", "key_versions"] {
                for event in ["INSERT", "UPDATE", "DELETE"] {
                    try db.execute(
                        sql: """
                            CREATE TRIGGER \(table)_\(event.lowercased())_proxy_generation AFTER \(event) ON \(table)
                            BEGIN UPDATE proxy_generation SET n = n + 1; END
                            """
                    )
                }
            }
        }
        migrator.registerMigration("v3: tenant egress destinations") { db in
            try db.execute(
                sql: """
                    CREATE TABLE tenant_egress (
                        tenant_id INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
                        destination TEXT NOT NULL,
                        allow_private INTEGER NOT NULL DEFAULT 0,
                        created_at TEXT NOT NULL,
                        PRIMARY KEY (tenant_id, destination)
                    )
                    """
            )
        }
        migrator.registerMigration("v4: hosts") { db in
            for statement in Schema.hostStatements(bigint: "INTEGER") { try db.execute(sql: statement) }
        }
        migrator.registerMigration("v5: placements") { db in
            for statement in Schema.placementStatements(bigint: "INTEGER") { try db.execute(sql: statement) }
        }
        migrator.registerMigration("v6: tenant self-service") { db in
            for statement in Schema.selfServiceStatements(bigint: "INTEGER", blob: "BLOB") { try db.execute(sql: statement) }
        }
        migrator.registerMigration("v7: brokered keys") { db in
            for statement in Schema.brokeredKeyStatements { try db.execute(sql: statement) }
        }
        migrator.registerMigration("v8: brokered secrets") { db in
            for statement in Schema.secretStatements(identity: "INTEGER PRIMARY KEY", bigint: "INTEGER", blob: "BLOB") {
                try db.execute(sql: statement)
            }
        }
        migrator.registerMigration("v9: usage by key version, clamps, responses") { db in
            for statement in Schema.usageKeyStatements(bigint: "INTEGER") { try db.execute(sql: statement) }
        }
        migrator.registerMigration("v10: audit by tenant id") { db in
            for statement in Schema.auditTenantStatements(bigint: "INTEGER") { try db.execute(sql: statement) }
        }
        return migrator
    }

    /// v10: each audit record bound to its tenant's id, so that history follows the tenant and not its name (a tenant
    /// created again under a deleted one's name starts with none). Records written before are bound to the live
    /// tenant of their name from that tenant's own `tenant.create` on; a deleted tenant's stay unbound.
    static func auditTenantStatements(bigint: String) -> [String] {
        [
            "ALTER TABLE audit ADD COLUMN tenant_id \(bigint)",
            // One pass: each live tenant's creation record is found once (not once per record of the tenant).
            """
            UPDATE audit SET tenant_id = bound.id FROM (
                SELECT tenants.id, tenants.name, COALESCE(MAX(created.seq), 0) AS since FROM tenants
                LEFT JOIN audit AS created ON created.tenant = tenants.name AND created.action = 'tenant.create' AND created.outcome = 'ok'
                GROUP BY tenants.id, tenants.name
            ) AS bound
            WHERE audit.tenant = bound.name AND audit.seq >= bound.since
            """,
            "CREATE INDEX audit_tenant_id ON audit(tenant_id, seq)",
        ]
    }

    /// v9: the tenant key (provider and version) a brokered request was sent with (NULL for the platform's key); the
    /// output maximum a request asked for when the caps lowered it (NULL when not clamped); the Responses API
    /// response a request made (so that no other tenant can read, continue or cancel it).
    static func usageKeyStatements(bigint: String) -> [String] {
        [
            "ALTER TABLE usage_requests ADD COLUMN key_provider TEXT",
            "ALTER TABLE usage_requests ADD COLUMN key_version \(bigint)",
            "ALTER TABLE usage_requests ADD COLUMN clamped_from \(bigint)",
            "ALTER TABLE usage_requests ADD COLUMN response_id TEXT",
            "CREATE INDEX usage_requests_response ON usage_requests(response_id) WHERE response_id IS NOT NULL",
        ]
    }

    /// v7: a placeholder is a proxy token bound to one provider key of its sandbox's tenant (`provider`; NULL for a
    /// managed sandbox's token); the caps a tenant sets on its own keys' brokered use (JSON, NULL for none).
    static let brokeredKeyStatements = [
        "ALTER TABLE proxy_tokens ADD COLUMN provider TEXT",
        "ALTER TABLE tenants ADD COLUMN key_caps TEXT",
    ]

    /// v8: tenants' generic secrets (bound to one host and header, sealed and versioned like provider keys), and the
    /// certificate authority each brokered sandbox trusts (its private key sealed: a restarted daemon serves on with it).
    /// The sealed tables share their columns, so that a KEK rotation rewraps them all (`KEKStore.sealedTables`).
    static func secretStatements(identity: String, bigint: String, blob: String) -> [String] {
        let sealed = """
            ciphertext \(blob) NOT NULL,
                nonce \(blob) NOT NULL,
                tag \(blob) NOT NULL,
                wrapped_dek \(blob),
                kek_id TEXT NOT NULL,
                fingerprint TEXT NOT NULL
            """
        return [
            """
            CREATE TABLE secrets (
                id \(identity),
                tenant_id \(bigint) NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
                name TEXT NOT NULL,
                host TEXT NOT NULL,
                port INTEGER NOT NULL,
                header TEXT NOT NULL,
                format TEXT NOT NULL,
                env TEXT NOT NULL,
                allow_private INTEGER NOT NULL,
                created_at TEXT NOT NULL,
                updated_at TEXT NOT NULL,
                UNIQUE (tenant_id, name)
            )
            """,
            """
            CREATE TABLE secret_versions (
                id \(identity),
                secret_id \(bigint) NOT NULL REFERENCES secrets(id) ON DELETE CASCADE,
                tenant_id \(bigint) NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
                label TEXT NOT NULL,
                version INTEGER NOT NULL,
                state TEXT NOT NULL CHECK (state IN ('active', 'retired', 'revoked')),
                \(sealed),
                created_at TEXT NOT NULL,
                revoked_at TEXT,
                UNIQUE (secret_id, version)
            )
            """,
            """
            CREATE TABLE sandbox_authorities (
                id \(identity),
                sandbox_id \(bigint) NOT NULL UNIQUE REFERENCES sandboxes(id) ON DELETE CASCADE,
                tenant_id \(bigint) NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
                label TEXT NOT NULL,
                version INTEGER NOT NULL,
                certificate TEXT NOT NULL,
                \(sealed),
                created_at TEXT NOT NULL
            )
            """,
        ]
    }

    /// v4: the hosts of a fleet (one, the local host, on SQLite), and the host each sandbox runs on. Heartbeats are
    /// milliseconds on the database's clock, never a host's.
    static func hostStatements(bigint: String) -> [String] {
        [
            """
            CREATE TABLE hosts (
                id TEXT PRIMARY KEY,
                instance TEXT NOT NULL,
                state TEXT NOT NULL CHECK (state IN ('active', 'draining')),
                max_sandboxes \(bigint) NOT NULL,
                lease_ms \(bigint) NOT NULL,
                started_at TEXT NOT NULL,
                heartbeat_ms \(bigint) NOT NULL
            )
            """,
            "ALTER TABLE sandboxes ADD COLUMN host TEXT",
            "ALTER TABLE rotations ADD COLUMN host TEXT",
        ]
    }

    /// v5: where each tenant should run, with its epoch (the fencing token every start on that host presents), the
    /// epoch each sandbox was started under, and the KEKs each host holds (its current one first). Live sandboxes
    /// of v4 become placements of epoch 1 on their host.
    static func placementStatements(bigint: String) -> [String] {
        [
            """
            CREATE TABLE placements (
                tenant_id \(bigint) PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
                host TEXT NOT NULL,
                epoch \(bigint) NOT NULL,
                desired TEXT NOT NULL CHECK (desired IN ('running', 'stopped')),
                moved_from TEXT,
                actor TEXT NOT NULL,
                updated_at TEXT NOT NULL
            )
            """,
            "CREATE INDEX placements_host ON placements(host, desired)",
            "ALTER TABLE hosts ADD COLUMN keks TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE sandboxes ADD COLUMN epoch \(bigint)",
            """
            INSERT INTO placements (tenant_id, host, epoch, desired, actor, updated_at)
            SELECT tenant_id, MAX(host), 1, 'running', 'migration', MAX(updated_at) FROM sandboxes
            WHERE state != 'stopped' AND host IS NOT NULL GROUP BY tenant_id
            """,
            "UPDATE sandboxes SET epoch = 1 WHERE state != 'stopped' AND host IS NOT NULL",
        ]
    }

    /// v6: tenant tokens (an admin token row bound to one tenant), the console's one-time sign-in links and sessions
    /// (stored hashed, like every token), each key version's health as last validated, and whether a tenant's agent
    /// runs on the managed path because its own key turned invalid.
    static func selfServiceStatements(bigint: String, blob: String) -> [String] {
        [
            "ALTER TABLE admin_tokens ADD COLUMN tenant_id \(bigint) REFERENCES tenants(id) ON DELETE CASCADE",
            """
            CREATE TABLE console_links (
                token_hash \(blob) PRIMARY KEY,
                tenant_id \(bigint) NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
                actor TEXT NOT NULL,
                created_at TEXT NOT NULL,
                expires_at TEXT NOT NULL,
                used_at TEXT
            )
            """,
            """
            CREATE TABLE console_sessions (
                session_hash \(blob) PRIMARY KEY,
                tenant_id \(bigint) NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
                csrf_token TEXT NOT NULL,
                created_at TEXT NOT NULL,
                expires_at TEXT NOT NULL
            )
            """,
            "ALTER TABLE key_versions ADD COLUMN health TEXT",
            "ALTER TABLE key_versions ADD COLUMN health_detail TEXT",
            "ALTER TABLE key_versions ADD COLUMN validated_at TEXT",
            "ALTER TABLE tenants ADD COLUMN fallback_provider TEXT",
        ]
    }
}
