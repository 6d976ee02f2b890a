import Foundation
import KeyholdCore
public import KeyholdVault

extension StoreTransaction {
    /// The label a sandbox's certificate authority key is sealed under (with its tenant, version 1).
    public static func authorityLabel(sandboxID: Int64) -> String { "sandbox-ca:\(sandboxID)" }

    /// Stores the certificate authority made for a brokered sandbox: its certificate (PEM) and its private key, sealed.
    public func insertSandboxAuthority(sandboxID: Int64, tenantID: Int64, certificate: String, sealed: SealedKey) throws {
        try execute(
            """
            INSERT INTO sandbox_authorities (sandbox_id, tenant_id, label, version, certificate, ciphertext, nonce, tag, wrapped_dek, kek_id, fingerprint, created_at)
            VALUES (?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?)
            """, sandboxID, tenantID, Self.authorityLabel(sandboxID: sandboxID), certificate, Data(sealed.ciphertext), Data(sealed.nonce),
            Data(sealed.tag), sealed.wrappedDEK.map { Data($0) }, sealed.kekID, sealed.fingerprint, Timestamp.now())
    }

    /// A live sandbox's certificate authority: its certificate (PEM), its sealed private key and what that is bound to.
    public func sandboxAuthority(sandboxID: Int64) throws -> (certificate: String, sealed: SealedKey, binding: KeyBinding)? {
        guard let row = try row("SELECT * FROM sandbox_authorities WHERE sandbox_id = ?", sandboxID) else { return nil }
        let sealed = SealedKey(
            ciphertext: [UInt8](row["ciphertext"] as Data), nonce: [UInt8](row["nonce"] as Data), tag: [UInt8](row["tag"] as Data),
            wrappedDEK: (row["wrapped_dek"] as Data?).map { [UInt8]($0) }, kekID: row["kek_id"], fingerprint: row["fingerprint"])
        return (row["certificate"], sealed, KeyBinding(tenantID: row["tenant_id"], provider: row["label"], version: 1))
    }
}
