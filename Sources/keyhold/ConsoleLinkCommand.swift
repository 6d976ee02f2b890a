import ArgumentParser
import Foundation
import KeyholdClient
import KeyholdCommandLine
import KeyholdCore

extension TenantCommand {
    struct ConsoleLink: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "console-link",
            abstract: "Print a one-time sign-in link to the tenant's console.",
            discussion: """
                Opening the link signs the browser in (a session cookie) and spends it: it works once, until it expires. \
                Hand it to the tenant over a channel you trust. The daemon must serve the console (`keyhold serve --console`).
                """
        )
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The tenant.") var name: String
        @Option(help: ArgumentHelp("How long the link works: seconds, or with a unit (90s, 15m, 2h); 1 minute to 1 day.", valueName: "duration"))
        var ttl: String = "15m"
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let seconds = try Self.seconds(ttl)
            let link = try await AdminClient(socketPath: global.socket).call(
                "POST", "/v1/tenants/\(name.pathSegment)/console-link", body: AdminAPI.CreateConsoleLink(ttlSeconds: seconds),
                as: AdminAPI.ConsoleLink.self
            )
            if output.json { return try Output.json(link) }
            print(link.url)
            Output.stderr("one-time sign-in link for \(link.tenant), valid until \(link.expiresAt)")
        }

        /// `900`, `90s`, `15m`, `2h`, `1d` as seconds.
        static func seconds(_ text: String) throws -> Int {
            let units: [Character: Int] = ["s": 1, "m": 60, "h": 3600, "d": 86400]
            let unit = text.last.flatMap { units[$0] }
            guard let amount = Int(unit == nil ? Substring(text) : text.dropLast()), amount > 0 else {
                throw ValidationError("--ttl '\(text.prefix(40))' must be a duration such as 15m, 2h or 900s")
            }
            return amount * (unit ?? 1)
        }
    }
}
