import Foundation
import KeyholdCore
import Testing

@Suite struct InputValidationTests {
    @Test(arguments: ["acme", "acme-corp", "a", "t42", "abcdefghijklmnopqrstuvwxyz12"])
    func validTenantNames(name: String) throws {
        #expect(try TenantName(name).value == name)
    }

    @Test(arguments: [
        "", "Acme", "1acme", "acme-", "ac--me", "acme_corp", "acme.corp", "acme corp", "ac/me", "acme\n", "abcdefghijklmnopqrstuvwxyz123",
    ])
    func invalidTenantNamesAreRefused(name: String) {
        #expect(throws: KeyholdError.self) { try TenantName(name) }
    }

    @Test func aTrailingLineEndingIsStrippedAndTheKeyKept() throws {
        #expect(try SecretKeyInput.normalize(Array("sk-ant-abc\r\n".utf8), provider: .anthropic) == Array("sk-ant-abc".utf8))
        #expect(try SecretKeyInput.normalize(Array("gsk_abc\n".utf8), provider: .openaiCompatible) == Array("gsk_abc".utf8))
    }

    @Test(arguments: [
        ("", "is empty"), (" \t", "is empty"), ("\n", "is empty"), ("sk-ant-a\nb", "line break"), ("sk-ant-a\u{0}b", "NUL byte"),
        ("sk-ant-a b", "space or control character"), ("sk-proj-123", "does not look like a anthropic key"),
    ])
    func badKeysAreRefusedWithoutEchoingThem(key: String, message: String) {
        #expect {
            try SecretKeyInput.normalize(Array(key.utf8), provider: .anthropic)
        } throws: { error in
            let text = "\(error)"
            return text.contains(message) && (key.count < 4 || !text.contains(key))
        }
    }

    @Test func theShapeCheckCanBeSkipped() throws {
        #expect(try SecretKeyInput.normalize(Array("custom-key".utf8), provider: .openai, skipShapeCheck: true).count == 10)
    }

    @Test func providersKnowTheirVariablesAndValidationCalls() throws {
        #expect(try Provider.named("Anthropic") == .anthropic)
        #expect(throws: KeyholdError.self) { try Provider.named("mistral") }
        #expect(Provider.google.keyEnvironmentNames.first == "GEMINI_API_KEY")
        let request = Provider.anthropic.validationRequest(baseURL: "http://127.0.0.1:9/", key: "k")
        #expect(request.url == "http://127.0.0.1:9/v1/models?limit=1")
        #expect(request.headers.contains { $0 == ("x-api-key", "k") })
    }

    @Test func timestampsAreUTCWithMilliseconds() throws {
        let text = Timestamp.now()
        #expect(text.hasSuffix("Z"))
        #expect(text.count == 24)
        #expect(Timestamp.parse(text) != nil)
    }

    @Test func timestampsMatchFoundationsISO8601Style() {
        let style = Date.ISO8601FormatStyle().year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted)
        // Epoch, leap day, the last millisecond of a year, an instant just before the epoch, now.
        let seconds: [Double] = [0, 951_782_400.5, 1_798_761_599.999, -0.25, 1_700_000_000.0429, Date().timeIntervalSince1970]
        for value in seconds {
            let date = Date(timeIntervalSince1970: value)
            #expect(Timestamp.format(date) == date.formatted(style), "\(value)")
        }
    }
}
