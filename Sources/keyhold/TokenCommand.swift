import ArgumentParser
import KeyholdCore
import KeyholdServer

struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token", abstract: "Admin API tokens for a hosting provider's onboarding system (TCP access).",
        subcommands: [Create.self, List.self, Revoke.self]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a token; it is printed once and stored hashed.")
        @OptionGroup var global: GlobalOptions
        @Argument var name: String

        func run() async throws {
            let token = try await AdminClient(socketPath: global.socket).call(
                "POST", "/v1/admin-tokens", body: AdminAPI.CreateAdminToken(name: name), as: AdminAPI.AdminToken.self
            )
            Output.stderr("admin token '\(name)' created; it is shown once, store it in your onboarding system's secret store:")
            print(token.token ?? "")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List live tokens (names only).")
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let tokens = try await AdminClient(socketPath: global.socket).call("GET", "/v1/admin-tokens", as: [AdminAPI.AdminToken].self)
            Output.table(["NAME", "CREATED"], tokens.map { [$0.name, $0.createdAt] })
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a token.")
        @OptionGroup var global: GlobalOptions
        @Argument var name: String

        func run() async throws {
            _ = try await AdminClient(socketPath: global.socket).send("DELETE", "/v1/admin-tokens/\(name.pathSegment)")
            print("revoked admin token \(name)")
        }
    }
}
