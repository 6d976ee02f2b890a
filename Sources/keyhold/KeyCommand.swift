import ArgumentParser
import Foundation
import KeyholdClient
import KeyholdCommandLine
import KeyholdCore
import KeyholdVault

struct KeyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "key", abstract: "Set, list, validate and revoke tenants' provider keys (read from stdin or a prompt, never argv).",
        subcommands: [Set.self, List.self, Validate.self, Rotate.self, Revoke.self]
    )

    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Store a new version of a provider key, read from stdin or a prompt without echo.",
            discussion: "Example: printf %s \"$ANTHROPIC_KEY\" | keyhold key set acme anthropic"
        )
        @OptionGroup var global: GlobalOptions
        @Argument var tenant: String
        @Argument(help: "anthropic, openai, google or openai-compatible.") var provider: String
        @Option(help: "The endpoint of an openai-compatible provider (or another base URL).") var baseURL: String?
        @Flag(help: "Store the key without asking the provider whether it works.") var noValidate = false
        @Flag(help: "Accept a key whose prefix is not the provider's usual one.") var skipShapeCheck = false

        func run() async throws {
            let parsedProvider = try Provider.named(provider)
            let request = try KeyInput.request(
                provider: parsedProvider, prompt: "\(parsedProvider) key for \(tenant): ", baseURL: baseURL, validate: !noValidate,
                skipShapeCheck: skipShapeCheck
            )
            let stored = try await AdminClient(socketPath: global.socket).call(
                "PUT", "/v1/tenants/\(tenant.pathSegment)/keys/\(parsedProvider.rawValue)", body: request, as: AdminAPI.Key.self
            )
            print(
                "stored \(stored.provider) key version \(stored.version) for \(tenant): fingerprint \(stored.fingerprint)\(noValidate ? " (not validated)" : " (validated)")"
            )
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List a tenant's key versions (fingerprints, never keys).")
        @OptionGroup var global: GlobalOptions
        @Argument var tenant: String
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let keys = try await AdminClient(socketPath: global.socket).call("GET", "/v1/tenants/\(tenant.pathSegment)/keys", as: [AdminAPI.Key].self)
            if output.json { return try Output.json(keys) }
            Self.printKeys(keys)
        }

        static func printKeys(_ keys: [AdminAPI.Key]) {
            guard !keys.isEmpty else { return print("no keys") }
            Output.table(
                ["PROVIDER", "VERSION", "STATE", "FINGERPRINT", "HEALTH", "LAST VALIDATED", "KEK", "CREATED"],
                keys.map {
                    [
                        $0.provider, String($0.version), $0.state, $0.fingerprint, $0.health ?? "unchecked", $0.validatedAt ?? "-", $0.kekID,
                        $0.createdAt,
                    ]
                }
            )
        }
    }

    struct Validate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Ask the provider whether the tenant's active key works now, and record its health (exit 1 unless ok or rate-limited).")
        @OptionGroup var global: GlobalOptions
        @Argument var tenant: String
        @Argument var provider: String

        func run() async throws {
            let result = try await AdminClient(socketPath: global.socket).call(
                "POST", "/v1/tenants/\(tenant.pathSegment)/keys/\(provider.pathSegment)/validate", as: AdminAPI.Validation.self
            )
            print("\(result.provider) key version \(result.version) (\(result.fingerprint)): \(result.health ?? "-"): \(result.message)")
            if !result.valid { throw ExitCode(1) }
        }
    }

    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Replace a provider key without downtime: new agents start with the new key before the old ones stop.",
            discussion:
                "The new key is read from stdin or a prompt. For a managed tenant, `keyhold key rotate TENANT proxy-token` rotates its proxy tokens."
        )
        @OptionGroup var global: GlobalOptions
        @Argument var tenant: String
        @Argument(help: "anthropic, openai, google, openai-compatible, or proxy-token (managed plans).") var provider: String
        @Option(help: "A new base URL for the key (default: the current key's).") var baseURL: String?
        @Flag(help: "Rotate without asking the provider whether the new key works.") var noValidate = false
        @Flag(help: "Accept a key whose prefix is not the provider's usual one.") var skipShapeCheck = false
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let client = AdminClient(socketPath: global.socket)
            let path = "/v1/tenants/\(tenant.pathSegment)/keys/\(provider.pathSegment)/rotate"
            let rotation: AdminAPI.Rotation
            if provider == "proxy-token" {
                rotation = try await client.call("POST", path, as: AdminAPI.Rotation.self)
            } else {
                let parsedProvider = try Provider.named(provider)
                let body = try KeyInput.request(
                    provider: parsedProvider, prompt: "new \(parsedProvider) key for \(tenant): ", baseURL: baseURL, validate: !noValidate,
                    skipShapeCheck: skipShapeCheck
                )
                rotation = try await client.call("POST", path, body: body, as: AdminAPI.Rotation.self)
            }
            if output.json { return try Output.json(rotation) }
            let from = rotation.fromVersion.map { "version \($0) (\(rotation.fromFingerprint ?? "?"))" } ?? "the old credential"
            let to = rotation.toVersion.map { "version \($0) (\(rotation.toFingerprint ?? "?"))" } ?? "a new credential"
            print("rotated \(tenant)'s \(rotation.provider) from \(from) to \(to) in \(String(format: "%.2f", rotation.seconds)) s")
            if rotation.newUnits.isEmpty && !rotation.oldUnits.isEmpty {
                print("brokered: \(rotation.oldUnits.joined(separator: ", ")) use the new key from their next request, without a restart")
            } else if rotation.newUnits.isEmpty {
                print("no sandbox was running: the new key is used from the next start")
            } else {
                print(
                    "started \(rotation.newUnits.joined(separator: ", ")) (ready after \(String(format: "%.2f", rotation.readinessSeconds)) s), then stopped \(rotation.oldUnits.joined(separator: ", "))"
                )
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a provider key: stop the sandboxes holding it and destroy its data key.")
        @OptionGroup var global: GlobalOptions
        @Argument var tenant: String
        @Argument var provider: String
        @Option(help: "Revoke only this version (default: every live version).") var version: Int?

        func run() async throws {
            let query = version.map { "?version=\($0)" } ?? ""
            let result = try await AdminClient(socketPath: global.socket).call(
                "DELETE", "/v1/tenants/\(tenant.pathSegment)/keys/\(provider.pathSegment)\(query)", as: AdminAPI.Revoked.self
            )
            print(
                "revoked \(result.provider) key version(s) \(result.versions.map(String.init).joined(separator: ", ")) of \(tenant); data keys destroyed"
            )
            if !result.stoppedSandboxes.isEmpty {
                print("stopped sandbox(es) holding it: \(result.stoppedSandboxes.joined(separator: ", ")) — the tenant's agent is not running")
            }
        }
    }
}
