import Foundation
import KeyholdCore
import KeyholdTestTraits
import KeyholdVault
import NIOCore
import Testing

@testable import KeyholdProxy

/// The broker's byte-level rules: every echo of a key becomes its placeholder, and an agent's path maps onto the key's
/// base URL the way the provider's own clients map it.
@Suite(.offCooperativePool) struct BrokerUnitTests {
    static let key = "sk-real-key-0123456789"
    static let placeholder = "sk-keyhold-PLACEHOLDER"

    static func redacted(_ text: String) -> (text: String, found: Bool) {
        var buffer = ByteBuffer(string: text)
        let found = EchoRedaction.redact(&buffer, key: SecretBytes(Array(key.utf8)), placeholder: placeholder)
        return (String(buffer: buffer), found)
    }

    @Test(arguments: [
        ("\(key)", "\(placeholder)"),
        ("{\"error\":\"bad key \(key)\"}", "{\"error\":\"bad key \(placeholder)\"}"),
        ("\(key)\(key)", "\(placeholder)\(placeholder)"),
        ("a \(key) b \(key)", "a \(placeholder) b \(placeholder)"),
        ("data: {\"authorization\":\"Bearer \(key)\"}\n\n", "data: {\"authorization\":\"Bearer \(placeholder)\"}\n\n"),
    ])
    func everyEchoOfTheKeyBecomesThePlaceholder(echo: String, expected: String) {
        let result = Self.redacted(echo)
        #expect(result.found)
        #expect(result.text == expected)
    }

    @Test(arguments: ["", "sk-real-key-012345678", "no key here", "sk-real-key-0123456788 sk-real-key-012345678"])
    func textWithoutTheKeyIsLeftAlone(text: String) {
        let result = Self.redacted(text)
        #expect(!result.found)
        #expect(result.text == text)
    }

    @Test func anAgentsPathMapsOntoTheKeysBaseURLAsItsClientWould() throws {
        let base = try #require(Provider.openai.brokering).agentBasePath
        let own = try #require(UpstreamOrigin(baseURL: "https://api.groq.com/openai/v1"))
        func mapped(_ uri: String, clientBase: Bool) -> String {
            BrokeredKey.upstreamURI(uri, agentBasePath: base, isClientBaseURL: clientBase)
        }
        // The client's base URL ends in /v1: the agent's /v1 is the base's own.
        #expect(own.basePath + mapped("/v1/chat/completions", clientBase: true) == "/openai/v1/chat/completions")
        #expect(own.basePath + mapped("/v1/models?limit=2", clientBase: true) == "/openai/v1/models?limit=2")
        #expect(mapped("/v1beta/x", clientBase: true) == "/v1beta/x", "only a whole /v1 segment is the base path")
        // The provider's public API takes the agent's whole path.
        let official = try #require(UpstreamOrigin(baseURL: "https://api.openai.com"))
        #expect(official.basePath + mapped("/v1/chat/completions", clientBase: false) == "/v1/chat/completions")
        // Anthropic's clients add /v1 themselves: nothing to take away.
        #expect(BrokeredKey.upstreamURI("/v1/messages", agentBasePath: "", isClientBaseURL: true) == "/v1/messages")
    }
}
