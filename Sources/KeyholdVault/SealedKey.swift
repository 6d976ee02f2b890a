/// A provider key as stored: everything needed to decrypt it given the KEK, and nothing more.
public struct SealedKey: Sendable, Equatable {
    /// AES-256-GCM ciphertext of the key under the data key.
    public var ciphertext: [UInt8]
    /// 12 bytes.
    public var nonce: [UInt8]
    /// 16 bytes of GCM authentication tag.
    public var tag: [UInt8]
    /// The data key sealed by the KEK (nonce, ciphertext and tag combined); `nil` once revoked.
    public var wrappedDEK: [UInt8]?
    /// The id of the KEK that wrapped the data key.
    public var kekID: String
    /// Keyed hash of the key, 16 hex characters.
    public var fingerprint: String

    public init(ciphertext: [UInt8], nonce: [UInt8], tag: [UInt8], wrappedDEK: [UInt8]?, kekID: String, fingerprint: String) {
        self.ciphertext = ciphertext
        self.nonce = nonce
        self.tag = tag
        self.wrappedDEK = wrappedDEK
        self.kekID = kekID
        self.fingerprint = fingerprint
    }
}

/// What a sealed key is bound to: decrypting it under any other binding fails.
public struct KeyBinding: Sendable, Equatable, CustomStringConvertible {
    public var tenantID: Int64
    public var provider: String
    public var version: Int

    public init(tenantID: Int64, provider: String, version: Int) {
        self.tenantID = tenantID
        self.provider = provider
        self.version = version
    }

    /// Additional authenticated data for the key's ciphertext.
    var additionalData: [UInt8] { Array("keyhold-key-v1|tenant=\(tenantID)|provider=\(provider)|version=\(version)".utf8) }

    /// Additional authenticated data for the wrapped data key.
    func dekAdditionalData(kekID: String) -> [UInt8] {
        Array("keyhold-dek-v1|kek=\(kekID)|tenant=\(tenantID)|provider=\(provider)|version=\(version)".utf8)
    }

    public var description: String { "tenant #\(tenantID), provider \(provider), version \(version)" }
}
