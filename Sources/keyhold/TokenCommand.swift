import ArgumentParser
import KeyholdClient
import KeyholdCommandLine
import KeyholdCore

struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "API tokens for TCP access: admin tokens for a hosting provider's onboarding system, tenant tokens for one tenant's own portal.",
        subcommands: [Create.self, List.self, Revoke.self]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a token; it is printed once and stored hashed.")
        @OptionGroup var global: GlobalOptions
        @Argument var name: String
        @Option(
            help:
                "Make a tenant token: it sets, rotates, revokes and validates this tenant's keys and reads its sandbox, usage, audit records and receipts; anything else answers 403."
        )
        var tenant: String?

        func run() async throws {
            let token = try await AdminClient(socketPath: global.socket).call(
                "POST", "/v1/admin-tokens", body: AdminAPI.CreateAdminToken(name: name, tenant: tenant), as: AdminAPI.AdminToken.self
            )
            let kind = tenant.map { "tenant token '\(name)' for tenant \($0)" } ?? "admin token '\(name)'"
            Output.stderr("\(kind) created; it is shown once, store it in a secret store:")
            print(token.token ?? "")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List live tokens (names only).")
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let tokens = try await AdminClient(socketPath: global.socket).call("GET", "/v1/admin-tokens", as: [AdminAPI.AdminToken].self)
            Output.table(["NAME", "SCOPE", "CREATED"], tokens.map { [$0.name, $0.tenant.map { "tenant \($0)" } ?? "admin", $0.createdAt] })
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a token.")
        @OptionGroup var global: GlobalOptions
        @Argument var name: String

        func run() async throws {
            _ = try await AdminClient(socketPath: global.socket).send("DELETE", "/v1/admin-tokens/\(name.pathSegment)")
            print("revoked token \(name)")
        }
    }
}
