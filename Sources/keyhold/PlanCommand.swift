import ArgumentParser
import Foundation
import KeyholdClient
import KeyholdCommandLine
import KeyholdCore

struct PlanCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan", abstract: "Show the plans this host sells.", subcommands: [List.self, Show.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List plans.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let plans = try await AdminClient(socketPath: global.socket).call("GET", "/v1/plans", as: [Plan].self)
            if output.json { return try Output.json(plans) }
            Output.table(
                ["PLAN", "NAME", "KIND", "USD/MONTH", "PROFILE", "MEMORY", "CPU", "TASKS"],
                plans.map {
                    [
                        $0.id, $0.displayName, $0.kind.rawValue, String(format: "%.2f", $0.monthlyPriceUSD), $0.sandbox.profile,
                        "\($0.sandbox.memoryMaxBytes >> 20)M", "\($0.sandbox.cpuQuotaPercent)%", String($0.sandbox.tasksMax),
                    ]
                }
            )
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one plan.")
        @OptionGroup var global: GlobalOptions
        @Argument var plan: String
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let plan = try await AdminClient(socketPath: global.socket).call("GET", "/v1/plans/\(plan.pathSegment)", as: Plan.self)
            if output.json { return try Output.json(plan) }
            print("plan       \(plan.id) (\(plan.displayName)), \(plan.kind.rawValue), USD \(String(format: "%.2f", plan.monthlyPriceUSD))/month")
            print(
                "sandbox    profile \(plan.sandbox.profile), memory \(plan.sandbox.memoryMaxBytes >> 20)M, CPU \(plan.sandbox.cpuQuotaPercent)%, \(plan.sandbox.tasksMax) tasks"
            )
            print(
                "alerts     at \(plan.alertThresholds.map { "\($0)%" }.joined(separator: ", "))\(plan.alertWebhook.map { " → \(WebhookDisplay.origin(of: $0))" } ?? "")"
            )
            if plan.kind == .byok {
                print("providers  \(plan.providers.map(\.rawValue).joined(separator: ", "))")
                print(
                    plan.isBrokered
                        ? "keys       brokered: the agent holds placeholders; the broker in its sandbox adds each key per request"
                        : "keys       in the agent's environment, decrypted at injection")
            }
            if let caps = plan.caps {
                print(
                    "caps       \(caps.tokensPerDay) tokens/day, \(caps.tokensPerMonth) tokens/month, \(caps.requestsPerMinute) requests/minute, USD \(caps.usdPerMonth)/month"
                )
            }
            if !plan.models.isEmpty {
                print("")
                Output.table(
                    ["MODEL", "PROVIDER", "IN $/MTOK", "CACHED $/MTOK", "OUT $/MTOK"],
                    plan.models.map {
                        [$0.id, $0.provider.rawValue, "\($0.inputUSDPerMillion)", "\($0.cachedInputUSDPerMillion)", "\($0.outputUSDPerMillion)"]
                    }
                )
            }
        }
    }
}
