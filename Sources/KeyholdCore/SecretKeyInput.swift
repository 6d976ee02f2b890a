/// Checks a provider key as a user typed or piped it, before it reaches the vault.
///
/// The rules reject what is certainly a mistake (empty input, an embedded newline or NUL, a
/// key of another provider) without ever echoing the key back.
public enum SecretKeyInput {
    /// The longest key accepted, in bytes.
    public static let maximumLength = 4096

    /// Strips the line ending a terminal or `echo` adds, then validates the key's shape.
    /// - Parameters:
    ///   - raw: the bytes read from stdin or the prompt. Not copied beyond the returned array.
    ///   - provider: the provider the key is for; its known prefix is checked unless `skipShapeCheck`.
    /// - Returns: the key bytes, without the trailing line ending.
    /// - Throws: `KeyholdError.invalidInput` describing the problem, never quoting the key.
    public static func normalize(_ raw: [UInt8], provider: Provider, skipShapeCheck: Bool = false) throws -> [UInt8] {
        var bytes = raw
        if bytes.last == UInt8(ascii: "\n") { bytes.removeLast() }
        if bytes.last == UInt8(ascii: "\r") { bytes.removeLast() }
        if bytes.isEmpty || bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) {
            throw KeyholdError.invalidInput("the \(provider) key is empty: pipe the key on stdin or type it at the prompt")
        }
        if bytes.count > maximumLength {
            throw KeyholdError.invalidInput("the \(provider) key is \(bytes.count) bytes long; keys longer than \(maximumLength) bytes are refused")
        }
        if let bad = bytes.firstIndex(where: { $0 == 0 || $0 == 0x0A || $0 == 0x0D }) {
            let what = bytes[bad] == 0 ? "a NUL byte" : "a line break"
            throw KeyholdError.invalidInput(
                "the \(provider) key contains \(what) at byte \(bad + 1): a key is one line; check that only the key was pasted"
            )
        }
        if let bad = bytes.firstIndex(where: { $0 < 0x20 || $0 == 0x7F || $0 == 0x20 }) {
            throw KeyholdError.invalidInput(
                "the \(provider) key contains a space or control character at byte \(bad + 1): check that only the key was pasted"
            )
        }
        if !skipShapeCheck, let prefix = provider.keyPrefix, !bytes.starts(with: Array(prefix.utf8)) {
            throw KeyholdError.invalidInput(
                "this does not look like a \(provider) key (\(provider) keys start with '\(prefix)'): "
                    + "check the provider, or pass --skip-shape-check if your provider issues keys of another shape"
            )
        }
        return bytes
    }
}
