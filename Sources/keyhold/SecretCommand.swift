import ArgumentParser
import Foundation
import KeyholdClient
import KeyholdCommandLine
import KeyholdCore
import KeyholdVault

/// `keyhold secret`: a tenant's generic secrets (a GitHub or Slack token...), brokered to one host each.
struct SecretCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "secret",
        abstract: "Store, list and revoke a tenant's generic secrets, which its brokered sandboxes use without holding them.",
        discussion: """
            A secret is bound to one HTTPS host. Inside the tenant's sandboxes (plans with key_delivery: brokered) its \
            variable holds a placeholder; the egress gateway terminates TLS to that host only, with a certificate the \
            sandbox alone trusts, and writes the secret into the named header of each request. A placeholder sent \
            anywhere else is refused and recorded as key.misuse.
            """,
        subcommands: [Set.self, List.self, Revoke.self]
    )

    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Store a new version of a secret, read from stdin or a prompt without echo (never argv).",
            discussion: """
                Example: printf %s "$GITHUB_TOKEN" | keyhold secret set acme github --host api.github.com --env GITHUB_TOKEN
                The host must be allowed by the tenant's egress policy. Running sandboxes write the new version into \
                their next request, without a restart.
                """
        )
        @OptionGroup var global: GlobalOptions
        @Argument var tenant: String
        @Argument(help: "The secret's name: lowercase letters, digits and hyphens.") var name: String
        @Option(help: ArgumentHelp("The only host the secret is sent to.", valueName: "host[:port]")) var host: String
        @Option(help: "The request header it is written into.") var header = SecretBinding.defaultHeader
        @Option(help: "The header's value, {} where the secret goes.") var format = SecretBinding.defaultFormat
        @Option(help: "The variable that holds its placeholder in the sandbox (default: the name in capitals).") var env: String?
        @Flag(help: "The host may be a loopback or private address (its egress entry must say so too).") var `private` = false

        func validate() throws {
            _ = try SecretBinding.validated(
                name: name, destination: host, header: header, format: format, environment: env, allowPrivate: `private`)
        }

        func run() async throws {
            var raw = try KeyInput.read(prompt: "secret \(name) for \(tenant): ")
            defer { SecretBytes.wipe(&raw) }
            while let last = raw.last, last == UInt8(ascii: "\n") || last == UInt8(ascii: "\r") { raw.removeLast() }
            guard !raw.isEmpty else { throw ValidationError("no secret on stdin: pipe it in, e.g. printf %s \"$TOKEN\" | keyhold secret set ...") }
            let request = AdminAPI.SetSecret(
                value: String(decoding: raw, as: UTF8.self), host: host, header: header, format: format, env: env, private: `private`)
            let stored = try await AdminClient(socketPath: global.socket).call(
                "PUT", "/v1/tenants/\(tenant.pathSegment)/secrets/\(name.pathSegment)", body: request, as: AdminAPI.Secret.self)
            print(
                "stored secret \(stored.name) version \(stored.version) for \(tenant): fingerprint \(stored.fingerprint), sent to \(stored.host) in \(stored.header), placeholder in $\(stored.env)"
            )
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List a tenant's secrets (bindings and fingerprints, never values).")
        @OptionGroup var global: GlobalOptions
        @Argument var tenant: String
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let secrets = try await AdminClient(socketPath: global.socket).call(
                "GET", "/v1/tenants/\(tenant.pathSegment)/secrets", as: [AdminAPI.Secret].self)
            if output.json { return try Output.json(secrets) }
            guard !secrets.isEmpty else { return print("no secrets") }
            Output.table(
                ["NAME", "HOST", "HEADER", "ENV", "VERSION", "STATE", "FINGERPRINT", "UPDATED"],
                secrets.map { [$0.name, $0.host, $0.header, $0.env, String($0.version), $0.state, $0.fingerprint, $0.updatedAt] })
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revoke a secret: its data keys are destroyed and sandboxes stop sending it from their next request.")
        @OptionGroup var global: GlobalOptions
        @Argument var tenant: String
        @Argument var name: String

        func run() async throws {
            let revoked = try await AdminClient(socketPath: global.socket).call(
                "DELETE", "/v1/tenants/\(tenant.pathSegment)/secrets/\(name.pathSegment)", as: AdminAPI.Secret.self)
            print("revoked secret \(revoked.name) of \(tenant) (version \(revoked.version), \(revoked.host))")
        }
    }
}
