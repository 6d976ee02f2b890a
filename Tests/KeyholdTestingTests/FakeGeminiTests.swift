import Foundation
import KeyholdTesting
import Testing

@Suite("FakeProvider: Gemini")
struct FakeGeminiTests {
    @Test func modelsAcceptsRightKeyAndRejectsWrongKey() async throws {
        try await withFakeProvider { provider in
            let ok = try await send(provider, "GET", "/v1beta/models", headers: geminiAuth)
            #expect(ok.status == 200)
            let first = try #require((ok.json["models"] as? [[String: Any]])?.first)
            #expect((first["name"] as? String)?.hasPrefix("models/") == true)

            let viaQuery = try await send(provider, "GET", "/v1beta/models?key=" + FakeProvider.Configuration.defaultGeminiKey)
            #expect(viaQuery.status == 200)

            let wrong = try await send(provider, "GET", "/v1beta/models", headers: [("x-goog-api-key", "wrong")])
            #expect(wrong.status == 400)
            let error = try #require(wrong.json["error"] as? [String: Any])
            #expect(error["code"] as? Int == 400)
            #expect(error["status"] as? String == "INVALID_ARGUMENT")
            let reason = (error["details"] as? [[String: Any]])?.first?["reason"] as? String
            #expect(reason == "API_KEY_INVALID")

            let missing = try await send(provider, "GET", "/v1beta/models")
            #expect(missing.status == 403)
            #expect((missing.json["error"] as? [String: Any])?["status"] as? String == "PERMISSION_DENIED")
        }
    }
}
