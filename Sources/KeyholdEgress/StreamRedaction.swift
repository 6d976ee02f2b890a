/// Replaces every occurrence of a secret in a stream of chunks by its replacement, across chunk boundaries: only
/// the bytes that may begin an occurrence are held back (usually none), so a streamed answer is not delayed.
struct StreamRedaction {
    private let secret: [UInt8]
    private let replacement: [UInt8]
    private var held: [UInt8] = []

    init(secret: [UInt8], replacement: [UInt8]) {
        self.secret = secret
        self.replacement = replacement
    }

    /// What may be passed on of `chunk` now.
    mutating func pass(_ chunk: some Collection<UInt8>) -> [UInt8] {
        guard !secret.isEmpty else { return Array(chunk) }
        let data = held + chunk
        held = []
        var output: [UInt8] = []
        output.reserveCapacity(data.count)
        var index = 0
        while index < data.count {
            if data[index] == secret[0] {
                let available = min(secret.count, data.count - index)
                if data[index..<(index + available)].elementsEqual(secret[0..<available]) {
                    if available == secret.count {
                        output += replacement
                        index += secret.count
                        continue
                    }
                    // A possible start of the secret at the end of the chunk: wait for the next one.
                    held = Array(data[index...])
                    return output
                }
            }
            output.append(data[index])
            index += 1
        }
        return output
    }

    /// What was held back, at the end of the stream.
    mutating func finish() -> [UInt8] {
        defer { held = [] }
        return held
    }

    /// `text` with every occurrence of the secret replaced (a header's value).
    func redacted(_ text: String) -> String {
        var once = StreamRedaction(secret: secret, replacement: replacement)
        let bytes = once.pass(Array(text.utf8)) + once.finish()
        return String(decoding: bytes, as: UTF8.self)
    }
}
