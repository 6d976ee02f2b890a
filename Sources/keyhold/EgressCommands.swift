import ArgumentParser
import Foundation
import KeyholdClient
import KeyholdCommandLine
import KeyholdCore

extension TenantCommand {
    struct AllowEgress: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "allow-egress",
            abstract: "Let the tenant's BYOK sandbox reach one more destination (audited).",
            discussion: """
                DESTINATION is HOST[:PORT] for HTTPS (port 443 by default), or http://HOST[:PORT] for plain HTTP. HOST may be \
                a name, *.example.com (its subdomains), or an IP address. Its keys' provider hosts are always allowed. A \
                loopback or private address, or a name that resolves to one, is the host's own network: it needs --private, \
                for exactly this destination. Link-local addresses (cloud metadata) are never reachable.
                """
        )
        @OptionGroup var global: GlobalOptions
        @Argument var name: String
        @Argument(help: ArgumentHelp("HOST[:PORT] or http://HOST[:PORT].", valueName: "destination")) var destination: String
        @Flag(help: "Allow a loopback or private address (the host's own network) for this destination.") var `private` = false
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let tenant = try await AdminClient(socketPath: global.socket).call(
                "POST", "/v1/tenants/\(name.pathSegment)/egress", body: AdminAPI.AllowEgress(destination: destination, allowPrivate: `private`),
                as: AdminAPI.Tenant.self
            )
            if output.json { return try Output.json(tenant) }
            print("tenant \(tenant.name) may now reach \(destination)\n\(TenantCommand.egressLines(tenant.egress ?? []))")
        }
    }

    struct DenyEgress: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "deny-egress", abstract: "Remove a destination added with allow-egress (audited; new connections are refused at once)."
        )
        @OptionGroup var global: GlobalOptions
        @Argument var name: String
        @Argument(help: ArgumentHelp("As given to allow-egress.", valueName: "destination")) var destination: String
        @OptionGroup var output: OutputOptions

        func run() async throws {
            var allowed = CharacterSet.urlQueryAllowed
            allowed.remove(charactersIn: "&=+#")
            let query = destination.addingPercentEncoding(withAllowedCharacters: allowed) ?? destination
            let tenant = try await AdminClient(socketPath: global.socket).call(
                "DELETE", "/v1/tenants/\(name.pathSegment)/egress?destination=\(query)", as: AdminAPI.Tenant.self)
            if output.json { return try Output.json(tenant) }
            print("tenant \(tenant.name) may no longer reach \(destination)\n\(TenantCommand.egressLines(tenant.egress ?? []))")
        }
    }

    /// The tenant's destinations, one per line, with their sources.
    static func egressLines(_ entries: [AdminAPI.EgressEntry]) -> String {
        guard !entries.isEmpty else { return "egress   none" }
        return entries.enumerated().map { index, entry in
            "\(index == 0 ? "egress  " : "        ") \(entry.destination)\(entry.allowPrivate ? " (private)" : "")  from \(entry.source)"
        }.joined(separator: "\n")
    }
}
