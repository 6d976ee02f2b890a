/// Finds the placeholders in text a sandbox sends (a request head): every run of token characters around
/// `keyhold-`, which every placeholder holds (`sk-keyhold-…`, `sk-ant-keyhold-…`, `keyhold-secret-…`), looked up
/// by the sandbox's broker. Bounded: at most 16 candidates per text are looked up.
enum PlaceholderScan {
    private static let marker = Array("keyhold-".utf8)

    /// The labels of the placeholders of `broker`'s sandbox found in `bytes`, in order, without repeats.
    static func labels(in bytes: some Collection<UInt8>, broker: any SecretBroker) -> [String] {
        var labels: [String] = []
        for found in placeholders(in: bytes, broker: broker) where !labels.contains(found.label) { labels.append(found.label) }
        return labels
    }

    /// The placeholders of `broker`'s sandbox found in `bytes`, in order, each with what it stands for.
    static func placeholders(in bytes: some Collection<UInt8>, broker: any SecretBroker) -> [(token: String, label: String)] {
        let text = Array(bytes)
        var found: [(token: String, label: String)] = []
        var index = 0
        var candidates = 0
        while index + marker.count <= text.count, candidates < 16 {
            guard text[index..<(index + marker.count)].elementsEqual(marker) else {
                index += 1
                continue
            }
            var start = index
            while start > 0, isTokenByte(text[start - 1]) { start -= 1 }
            var end = index + marker.count
            while end < text.count, isTokenByte(text[end]) { end += 1 }
            candidates += 1
            let token = String(decoding: text[start..<end], as: UTF8.self)
            if end - start <= 128, let label = broker.placeholderLabel(of: token) { found.append((token, label)) }
            index = end
        }
        return found
    }

    /// Letters, digits, `-` and `_`: a placeholder's alphabet (base64url after its prefix).
    static func isTokenByte(_ byte: UInt8) -> Bool {
        (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a) || byte == 0x2d || byte == 0x5f
    }
}
