import Crypto
import Foundation

/// Envelope encryption of provider keys: a fresh AES-256-GCM data key per key version, wrapped by the KEK.
///
/// The ciphertext is bound to its tenant, provider and version through the AAD, so a row copied
/// elsewhere does not decrypt.
public struct Vault: Sendable {
    /// The KEK new keys are sealed with, and the one opened keys must match (or be in `previous`).
    public let kek: KeyEncryptionKey
    /// Older KEKs still able to open keys not yet rewrapped.
    public let previous: [KeyEncryptionKey]

    /// The ids of the KEKs this vault holds, the current one first.
    public var kekIDs: [String] { ([kek] + previous).map(\.id) }

    public init(kek: KeyEncryptionKey, previous: [KeyEncryptionKey] = []) {
        self.kek = kek
        self.previous = previous
    }

    /// Seals a key under a fresh data key.
    /// - Parameters:
    ///   - plaintext: the key; the caller wipes it afterwards.
    ///   - binding: what the ciphertext is bound to.
    public func seal(_ plaintext: SecretBytes, binding: KeyBinding) throws -> SealedKey {
        let dek = SymmetricKey(size: .bits256)
        let box = try plaintext.withBytes { bytes in
            try AES.GCM.seal(bytes, using: dek, authenticating: binding.additionalData)
        }
        let wrapped = try dek.withUnsafeBytes { dekBytes in
            try AES.GCM.seal(dekBytes, using: kek.key, authenticating: binding.dekAdditionalData(kekID: kek.id))
        }
        return SealedKey(
            ciphertext: Array(box.ciphertext), nonce: Array(box.nonce), tag: Array(box.tag),
            wrappedDEK: Array(wrapped.combined!), kekID: kek.id, fingerprint: fingerprint(of: plaintext)
        )
    }

    /// Opens a sealed key. The result is wiped when released; keep it as briefly as possible.
    /// - Throws: `VaultError` when the KEK does not match, the key was revoked, or the row was altered or moved.
    public func open(_ sealed: SealedKey, binding: KeyBinding) throws -> SecretBytes {
        let dek = try unwrapDEK(sealed, binding: binding)
        do {
            let box = try AES.GCM.SealedBox(nonce: AES.GCM.Nonce(data: sealed.nonce), ciphertext: sealed.ciphertext, tag: sealed.tag)
            var plain = Array(try AES.GCM.open(box, using: dek, authenticating: binding.additionalData))
            defer { SecretBytes.wipe(&plain) }
            return SecretBytes(plain)
        } catch {
            throw VaultError(
                .decryptionFailed,
                "the stored key for \(binding) does not decrypt: the row was altered or copied from another tenant, provider or version; set the key again"
            )
        }
    }

    /// Re-seals a key's data key under the current KEK without touching the key's ciphertext.
    public func rewrap(_ sealed: SealedKey, binding: KeyBinding) throws -> SealedKey {
        let dek = try unwrapDEK(sealed, binding: binding)
        let wrapped = try dek.withUnsafeBytes { dekBytes in
            try AES.GCM.seal(dekBytes, using: kek.key, authenticating: binding.dekAdditionalData(kekID: kek.id))
        }
        var result = sealed
        result.wrappedDEK = Array(wrapped.combined!)
        result.kekID = kek.id
        return result
    }

    /// The keyed fingerprint of a key: 16 hex characters, stable for the life of the key version.
    public func fingerprint(of plaintext: SecretBytes) -> String {
        let mac = plaintext.withBytes { HMAC<SHA256>.authenticationCode(for: $0, using: kek.fingerprintKey) }
        return mac.prefix(8).map { String(format: "%02x", $0) }.joined()
    }

    private func unwrapDEK(_ sealed: SealedKey, binding: KeyBinding) throws -> SymmetricKey {
        guard let wrapped = sealed.wrappedDEK else {
            throw VaultError(.destroyed, "the key for \(binding) was revoked and its data key destroyed: set a new key")
        }
        guard let wrapping = ([kek] + previous).first(where: { $0.id == sealed.kekID }) else {
            throw VaultError(
                .kekMismatch,
                "the key for \(binding) was sealed under KEK \(sealed.kekID), but the loaded KEK is \(kek.id): start keyhold with the right KEK file"
            )
        }
        do {
            let box = try AES.GCM.SealedBox(combined: wrapped)
            var dekBytes = Array(try AES.GCM.open(box, using: wrapping.key, authenticating: binding.dekAdditionalData(kekID: wrapping.id)))
            defer { SecretBytes.wipe(&dekBytes) }
            return SymmetricKey(data: dekBytes)
        } catch {
            throw VaultError(
                .decryptionFailed,
                "the data key for \(binding) does not unwrap: the row was altered or copied from another tenant, provider or version; set the key again"
            )
        }
    }
}
