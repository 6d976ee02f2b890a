import ArgumentParser
import Foundation
import KeyholdClient
import KeyholdCommandLine
import KeyholdCore

struct TenantCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tenant", abstract: "Onboard tenants onto plans, move, suspend and delete them.",
        subcommands: [
            Create.self, List.self, Show.self, SetPlan.self, SetCaps.self, SetAlertWebhook.self, AllowEgress.self, DenyEgress.self, Suspend.self,
            Resume.self,
            Delete.self, ConsoleLink.self,
        ]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a tenant on a plan.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The tenant's name (lowercase letters, digits, hyphens).") var name: String
        @Option(help: "The plan (see `keyhold plan list`).") var plan: String
        @Option(help: ArgumentHelp("The agent's command line in the sandbox (absolute path first).", valueName: "cmd args")) var agent: String?
        @Flag(help: "The agent sends READY=1 through sd_notify when ready (rotations wait for it).") var agentNotify = false
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let agentArgv = try agent.map { try ShellWords.split($0) }
            let tenant = try await AdminClient(socketPath: global.socket).call(
                "POST", "/v1/tenants", body: AdminAPI.CreateTenant(name: name, plan: plan, agent: agentArgv, agentNotify: agentNotify),
                as: AdminAPI.Tenant.self
            )
            if output.json { return try Output.json(tenant) }
            print("created tenant \(tenant.name) on plan \(tenant.plan)")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List tenants.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let tenants = try await AdminClient(socketPath: global.socket).call("GET", "/v1/tenants", as: [AdminAPI.Tenant].self)
            if output.json { return try Output.json(tenants) }
            Output.table(
                ["TENANT", "PLAN", "STATE", "KEYS", "CREATED"],
                tenants.map { tenant in
                    let live = (tenant.keys ?? []).filter { $0.state == "active" }.map { "\($0.provider) \($0.fingerprint)" }
                    return [tenant.name, tenant.plan, tenant.state, live.isEmpty ? "-" : live.joined(separator: ", "), tenant.createdAt]
                }
            )
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a tenant, its keys (fingerprints only) and its sandbox.")
        @OptionGroup var global: GlobalOptions
        @Argument var name: String
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let client = AdminClient(socketPath: global.socket)
            let tenant = try await client.call("GET", "/v1/tenants/\(name.pathSegment)", as: AdminAPI.Tenant.self)
            if output.json { return try Output.json(tenant) }
            print("tenant   \(tenant.name)\nplan     \(tenant.plan)\nstate    \(tenant.state)\nagent    \(tenant.agent.joined(separator: " "))")
            if let webhook = tenant.alertWebhook { print("alerts   POST \(WebhookDisplay.origin(of: webhook))") }
            if let caps = tenant.keyCaps { print("key caps \(SetCaps.describe(caps))") }
            print("created  \(tenant.createdAt)")
            if let egress = tenant.egress { print(TenantCommand.egressLines(egress)) }
            print("")
            KeyCommand.List.printKeys(tenant.keys ?? [])
        }
    }

    struct SetPlan: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "set-plan", abstract: "Move a tenant to another plan.")
        @OptionGroup var global: GlobalOptions
        @Argument var name: String
        @Argument var plan: String

        func run() async throws {
            let tenant = try await AdminClient(socketPath: global.socket).call(
                "PUT", "/v1/tenants/\(name.pathSegment)/plan", body: AdminAPI.SetPlan(plan: plan), as: AdminAPI.Tenant.self
            )
            print("tenant \(tenant.name) is now on plan \(tenant.plan) (a running sandbox gets the new limits at its next start)")
        }
    }

    struct SetCaps: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set-caps",
            abstract: "Limit the brokered use of a tenant's own keys (plans with key_delivery: brokered).",
            discussion: """
                The broker inside the tenant's sandboxes meters each call made with its keys and refuses one that would \
                pass a limit (429 in the provider's shape, saying when the limit resets), from the next request on. \
                A limit not given is no limit; --clear removes them all. Tenant tokens may set their own.
                """
        )
        @OptionGroup var global: GlobalOptions
        @Argument var name: String
        @Option(help: "Tokens (input and output) per UTC day.") var tokensPerDay: Int?
        @Option(help: "Tokens per calendar month (UTC).") var tokensPerMonth: Int?
        @Option(help: "Requests per rolling minute.") var requestsPerMinute: Int?
        @Option(help: "Dollars per month, at the prices this host lists for the models.") var usdPerMonth: Double?
        @Flag(help: "Remove every limit.") var clear = false

        func validate() throws {
            let caps = KeyCaps(
                tokensPerDay: tokensPerDay, tokensPerMonth: tokensPerMonth, requestsPerMinute: requestsPerMinute, usdPerMonth: usdPerMonth)
            guard caps.isEmpty == clear else { throw ValidationError("give at least one limit, or --clear (not both)") }
        }

        func run() async throws {
            let caps = KeyCaps(
                tokensPerDay: tokensPerDay, tokensPerMonth: tokensPerMonth, requestsPerMinute: requestsPerMinute, usdPerMonth: usdPerMonth)
            let tenant = try await AdminClient(socketPath: global.socket).call(
                "PUT", "/v1/tenants/\(name.pathSegment)/key-caps", body: caps, as: AdminAPI.Tenant.self)
            print(
                tenant.keyCaps.map { "tenant \(tenant.name)'s keys are limited to \(Self.describe($0))" }
                    ?? "tenant \(tenant.name)'s keys have no limits")
        }

        /// The limits as one line.
        static func describe(_ caps: KeyCaps) -> String {
            var parts: [String] = []
            if let value = caps.tokensPerDay { parts.append("\(value) tokens/day") }
            if let value = caps.tokensPerMonth { parts.append("\(value) tokens/month") }
            if let value = caps.requestsPerMinute { parts.append("\(value) requests/minute") }
            if let value = caps.usdPerMonth { parts.append(String(format: "USD %.2f/month", value)) }
            return parts.joined(separator: ", ")
        }
    }

    struct SetAlertWebhook: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set-alert-webhook",
            abstract: "POST this tenant's usage alerts (50/80/100% of a cap) to a URL, instead of the plan's webhook.",
            discussion: """
                `--clear` goes back to the plan's webhook. Each alert is also an audit record (`usage.alert`). A URL that \
                carries a secret (a token in its path or query) is better given as `-` and piped on stdin: arguments \
                are visible to every user in the process list.
                """
        )
        @OptionGroup var global: GlobalOptions
        @Argument var name: String
        @Argument(help: "An http:// or https:// URL, or - to read it from stdin.") var url: String?
        @Flag(help: "Remove the tenant's webhook.") var clear = false

        func validate() throws {
            guard (url == nil) == clear else { throw ValidationError("give either a URL or --clear") }
        }

        func run() async throws {
            var webhook = url
            if url == "-" {
                let raw = try KeyInput.read(prompt: "webhook URL for \(name): ")
                webhook = String(decoding: raw, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                guard webhook?.isEmpty == false else { throw ValidationError("no URL on stdin: pipe one line with the webhook's URL") }
            }
            let tenant = try await AdminClient(socketPath: global.socket).call(
                "PUT", "/v1/tenants/\(name.pathSegment)/alert-webhook", body: AdminAPI.SetAlertWebhook(url: webhook), as: AdminAPI.Tenant.self
            )
            print(
                tenant.alertWebhook.map { "tenant \(tenant.name) alerts are POSTed to \(WebhookDisplay.origin(of: $0))" }
                    ?? "tenant \(tenant.name) alerts follow its plan")
        }
    }

    struct Suspend: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Suspend a tenant: stop its sandboxes, keep them stopped.")
        @OptionGroup var global: GlobalOptions
        @Argument var name: String

        func run() async throws {
            _ = try await AdminClient(socketPath: global.socket).call("POST", "/v1/tenants/\(name.pathSegment)/suspend", as: AdminAPI.Tenant.self)
            print("suspended tenant \(name)")
        }
    }

    struct Resume: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Resume a suspended tenant.")
        @OptionGroup var global: GlobalOptions
        @Argument var name: String

        func run() async throws {
            _ = try await AdminClient(socketPath: global.socket).call("POST", "/v1/tenants/\(name.pathSegment)/resume", as: AdminAPI.Tenant.self)
            print("resumed tenant \(name) (start its sandbox with `keyhold sandbox start \(name)`)")
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a tenant: stop its sandboxes and destroy its keys.")
        @OptionGroup var global: GlobalOptions
        @Argument var name: String
        @Flag(help: "Confirm the deletion (its keys cannot be recovered).") var yes = false

        func run() async throws {
            guard yes else { throw KeyholdError.invalidInput("deleting tenant '\(name)' destroys its keys: add --yes to confirm") }
            _ = try await AdminClient(socketPath: global.socket).send("DELETE", "/v1/tenants/\(name.pathSegment)")
            print("deleted tenant \(name): its keys destroyed, its agent state deleted")
        }
    }
}
