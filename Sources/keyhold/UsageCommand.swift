import ArgumentParser
import Foundation
import KeyholdClient
import KeyholdCommandLine
import KeyholdCore

struct UsageCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "usage", abstract: "Managed-plan usage against caps (metered by the proxy).", subcommands: [Show.self, List.self]
    )

    static func capLines(_ report: AdminAPI.UsageReport) -> [String] {
        report.caps.map { cap in
            let used = cap.cap.hasPrefix("usd") ? String(format: "USD %.4f", cap.used) : String(Int(cap.used))
            let limit = cap.cap.hasPrefix("usd") ? String(format: "USD %.2f", cap.limit) : String(Int(cap.limit))
            return "\(cap.cap) \(used) / \(limit) (\(cap.percent)%)"
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A tenant's usage against every cap of its plan.")
        @OptionGroup var global: GlobalOptions
        @Argument var tenant: String
        @Option(help: "Break this month down by model, day or key (the tenant's key version that served brokered requests).") var by: String?
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let query = by.map { "?by=\($0.pathSegment)" } ?? ""
            let report = try await AdminClient(socketPath: global.socket).call(
                "GET", "/v1/tenants/\(tenant.pathSegment)/usage\(query)", as: AdminAPI.UsageReport.self
            )
            if output.json { return try Output.json(report) }
            let clamped = report.clampedThisMonth ?? 0
            print(
                "tenant \(report.tenant) on plan \(report.plan): \(report.requestsThisMonth) requests this month"
                    + (clamped > 0 ? " (\(clamped) clamped to what the caps had left)" : ""))
            if report.caps.isEmpty { print("(no caps: not a managed plan, and no limits set with `keyhold tenant set-caps`)") }
            Output.table(
                ["CAP", "USED", "LIMIT", "PERCENT"],
                report.caps.map { cap in
                    let money = cap.cap.hasPrefix("usd")
                    return [
                        cap.cap, money ? String(format: "%.4f", cap.used) : String(Int(cap.used)),
                        money ? String(format: "%.2f", cap.limit) : String(Int(cap.limit)), String(format: "%.1f%%", cap.percent),
                    ]
                }
            )
            if !report.breakdown.isEmpty {
                print("")
                Output.table(
                    [by == "day" ? "DAY" : by == "key" ? "KEY" : "MODEL", "REQUESTS", "TOKENS", "USD"],
                    report.breakdown.map { [$0.key, String($0.requests), String($0.tokens), String(format: "%.6f", $0.usd)] }
                )
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every tenant's usage against its caps.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let reports = try await AdminClient(socketPath: global.socket).call("GET", "/v1/usage", as: [AdminAPI.UsageReport].self)
            if output.json { return try Output.json(reports) }
            Output.table(
                ["TENANT", "PLAN", "REQUESTS", "CAPS"],
                reports.map { [$0.tenant, $0.plan, String($0.requestsThisMonth), UsageCommand.capLines($0).joined(separator: "; ")] }
            )
        }
    }
}

struct PlatformCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "platform", abstract: "The platform's own provider keys, used by the metering proxy for managed tenants.",
        subcommands: [KeySet.self]
    )

    struct KeySet: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set-key", abstract: "Store the platform's openai or anthropic key (stdin or prompt).")
        @OptionGroup var global: GlobalOptions
        @Argument var provider: String
        @Flag(help: "Store the key without asking the provider whether it works.") var noValidate = false
        @Flag(help: "Accept a key whose prefix is not the provider's usual one.") var skipShapeCheck = false

        func run() async throws {
            let parsed = try Provider.named(provider)
            let body = try KeyInput.request(
                provider: parsed, prompt: "platform \(parsed) key: ", baseURL: nil, validate: !noValidate, skipShapeCheck: skipShapeCheck
            )
            let stored = try await AdminClient(socketPath: global.socket).call(
                "PUT", "/v1/platform/keys/\(parsed.rawValue)", body: body, as: AdminAPI.Key.self)
            print("stored the platform's \(stored.provider) key version \(stored.version): fingerprint \(stored.fingerprint)")
        }
    }
}
