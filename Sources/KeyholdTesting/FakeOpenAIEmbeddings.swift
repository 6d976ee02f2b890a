import Crypto
import Foundation
import Hummingbird

/// OpenAI `POST /v1/embeddings`: deterministic unit vectors derived from SHA-256 of each input.
enum FakeOpenAIEmbeddings {
    static func respond(to call: FakeProviderCall) -> Response {
        guard let body = call.jsonObject, let inputs = inputs(from: body["input"]) else {
            return FakeOpenAI.error(
                status: 400,
                message: "'input' is a required property",
                type: "invalid_request_error"
            )
        }
        let model = body["model"] as? String ?? "text-embedding-3-small"
        let dimensions = max(1, body["dimensions"] as? Int ?? call.configuration.embeddingDimensions)
        let base64 = body["encoding_format"] as? String == "base64"
        let data = inputs.enumerated().map { index, input in
            let vector = embedding(of: input, dimensions: dimensions)
            let encoded: FakeJSON = base64 ? .string(base64Encoded(vector)) : .array(vector.map(FakeJSON.float))
            return FakeJSON.object([("object", .string("embedding")), ("index", .int(index)), ("embedding", encoded)])
        }
        let tokens = call.configuration.usage.inputTokens
        return FakeResponses.json(
            .object([
                ("object", .string("list")),
                ("data", .array(data)),
                ("model", .string(model)),
                ("usage", .object([("prompt_tokens", .int(tokens)), ("total_tokens", .int(tokens))])),
            ])
        )
    }

    /// `input` may be a string, an array of strings, or token arrays (rendered as text).
    private static func inputs(from value: Any?) -> [String]? {
        switch value {
        case let string as String: return [string]
        case let strings as [String]: return strings.isEmpty ? nil : strings
        case let tokens as [Int]: return [tokens.map(String.init).joined(separator: " ")]
        case let arrays as [[Int]]: return arrays.map { $0.map(String.init).joined(separator: " ") }
        default: return nil
        }
    }

    /// A unit-length vector of `dimensions` floats, the same for the same input every time.
    static func embedding(of input: String, dimensions: Int) -> [Float] {
        var values: [Float] = []
        values.reserveCapacity(dimensions)
        var block = 0
        while values.count < dimensions {
            let digest = SHA256.hash(data: Data((input + "#\(block)").utf8))
            for byte in digest where values.count < dimensions {
                values.append(Float(Int(byte) - 128) / 128)
            }
            block += 1
        }
        let norm = values.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return norm > 0 ? values.map { $0 / norm } : values
    }

    private static func base64Encoded(_ vector: [Float]) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(vector.count * 4)
        for value in vector {
            withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
        }
        return Data(bytes).base64EncodedString()
    }
}
