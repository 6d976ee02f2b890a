import Foundation
import KeyholdVault
import Testing

@Suite struct VaultTests {
    let vault = Vault(kek: .generate())
    let binding = KeyBinding(tenantID: 1, provider: "anthropic", version: 1)

    @Test func aSealedKeyOpensUnderItsBindingOnly() throws {
        let sealed = try vault.seal(SecretBytes(Array("sk-ant-secret".utf8)), binding: binding)
        #expect(sealed.nonce.count == 12 && sealed.tag.count == 16)
        #expect(sealed.wrappedDEK?.count == 12 + 32 + 16)
        let opened = try vault.open(sealed, binding: binding)
        #expect(opened.withBytes { Array($0) } == Array("sk-ant-secret".utf8))

        for moved in [
            KeyBinding(tenantID: 2, provider: "anthropic", version: 1), KeyBinding(tenantID: 1, provider: "openai", version: 1),
            KeyBinding(tenantID: 1, provider: "anthropic", version: 2),
        ] {
            #expect {
                try vault.open(sealed, binding: moved)
            } throws: { error in
                (error as? VaultError)?.code == .decryptionFailed && "\(error)".contains("copied from another tenant")
            }
        }
    }

    @Test func eachVersionHasItsOwnDataKey() throws {
        let secret = SecretBytes(Array("sk-ant-secret".utf8))
        let first = try vault.seal(secret, binding: binding)
        let second = try vault.seal(secret, binding: binding)
        #expect(first.wrappedDEK != second.wrappedDEK)
        #expect(first.ciphertext != second.ciphertext)
        #expect(first.fingerprint == second.fingerprint, "the fingerprint identifies the key")
        #expect(first.fingerprint.count == 16)
        #expect(try vault.seal(SecretBytes(Array("sk-ant-other".utf8)), binding: binding).fingerprint != first.fingerprint)
    }

    @Test func aWrongKEKIsRecognisedAndRewrapMovesKeysToANewKEK() throws {
        let sealed = try vault.seal(SecretBytes(Array("sk-ant-secret".utf8)), binding: binding)
        let other = Vault(kek: .generate())
        #expect { try other.open(sealed, binding: binding) } throws: { ($0 as? VaultError)?.code == .kekMismatch }
        let rotated = Vault(kek: other.kek, previous: [vault.kek])
        let rewrapped = try rotated.rewrap(sealed, binding: binding)
        #expect(rewrapped.kekID == other.kek.id)
        #expect(try other.open(rewrapped, binding: binding).count == 13, "the new KEK alone opens it")
    }

    @Test func aDestroyedDataKeyCannotBeOpened() throws {
        var sealed = try vault.seal(SecretBytes(Array("sk-ant-secret".utf8)), binding: binding)
        sealed.wrappedDEK = nil
        #expect { try vault.open(sealed, binding: binding) } throws: { ($0 as? VaultError)?.code == .destroyed }
    }

    @Test func kekFilesAreCheckedForSizeAndMode() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kh-kek-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/kek"
        let kek = KeyEncryptionKey.generate()
        try kek.write(to: path)
        #expect((try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int) == 0o600)
        #expect(try KeyEncryptionKey.load(path: path).id == kek.id)
        #expect(throws: VaultError.self) { try kek.write(to: path) }

        let truncated = directory + "/truncated"
        _ = FileManager.default.createFile(atPath: truncated, contents: Data(repeating: 7, count: 20), attributes: [.posixPermissions: 0o600])
        #expect { try KeyEncryptionKey.load(path: truncated) } throws: { "\($0)".contains("holds 20 bytes") }

        let loose = directory + "/loose"
        _ = FileManager.default.createFile(atPath: loose, contents: Data(repeating: 7, count: 32), attributes: [.posixPermissions: 0o644])
        #expect { try KeyEncryptionKey.load(path: loose) } throws: { "\($0)".contains("chmod 600") }
        #expect { try KeyEncryptionKey.load(path: directory + "/missing") } throws: { "\($0)".contains("keyhold init") }
    }
}
