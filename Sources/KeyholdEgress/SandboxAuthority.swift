import Crypto
import Foundation
import KeyholdCore
import NIOSSL
import SwiftASN1
import Synchronization
import X509

/// The certificate authority of one brokered sandbox, trusted inside that sandbox only: the egress gateway shows
/// its agent a certificate signed by it for each host that carries a brokered secret, and terminates TLS there.
/// Its private key stays in the daemon (sealed in the store, so that a restarted daemon serves on); the sandbox
/// gets the certificate alone. One leaf key serves every host of the sandbox; each host's certificate and TLS
/// context are made once, on first use.
public final class SandboxAuthority: Sendable {
    /// The authority's certificate, PEM: what the sandbox's bundle adds to the system's roots.
    public let certificatePEM: String
    private let certificate: Certificate
    private let key: P256.Signing.PrivateKey
    private let leafKey: P256.Signing.PrivateKey
    private let contexts = Mutex<[String: NIOSSLContext]>([:])

    /// How long an authority (and every certificate it signs) is valid: longer than any sandbox runs between restarts.
    static let lifetime: TimeInterval = 397 * 86_400

    /// A new authority for a sandbox of `tenant` (named in its certificate).
    public static func make(tenant: String) throws -> SandboxAuthority {
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName {
            OrganizationName("Keyhold")
            CommonName("Keyhold sandbox of \(tenant.prefix(40))")
        }
        let publicKey = Certificate.PublicKey(key.publicKey)
        let now = Date()
        let certificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: publicKey, notValidBefore: now - 3600,
            notValidAfter: now + lifetime, issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(hash: publicKey)
            },
            issuerPrivateKey: Certificate.PrivateKey(key))
        return try SandboxAuthority(certificatePEM: certificate.serializeAsPEM().pemString, privateKey: key.rawRepresentation)
    }

    /// An authority restored from its certificate and its private key's raw 32 bytes.
    public init(certificatePEM: String, privateKey: some ContiguousBytes) throws {
        self.certificatePEM = certificatePEM
        certificate = try Certificate(pemEncoded: certificatePEM)
        key = try P256.Signing.PrivateKey(rawRepresentation: privateKey)
        leafKey = P256.Signing.PrivateKey()
    }

    /// The private key's raw bytes, to be sealed. Wipe the copy after sealing it.
    public var privateKeyBytes: [UInt8] { [UInt8](key.rawRepresentation) }

    /// The TLS server context that presents `host`'s certificate (a DNS name, or an IP address).
    func serverContext(host: String) throws -> NIOSSLContext {
        if let context = contexts.withLock({ $0[host] }) { return context }
        var serializer = DER.Serializer()
        try serializer.serialize(try leafCertificate(host: host))
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: [.certificate(try NIOSSLCertificate(bytes: serializer.serializedBytes, format: .der))],
            privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(leafKey.pemRepresentation.utf8), format: .pem)))
        configuration.minimumTLSVersion = .tlsv12
        configuration.applicationProtocols = ["http/1.1"]
        let context = try NIOSSLContext(configuration: configuration)
        return contexts.withLock { all in
            if let raced = all[host] { return raced }
            all[host] = context
            return context
        }
    }

    private func leafCertificate(host: String) throws -> Certificate {
        let subject = try DistinguishedName { CommonName(String(host.prefix(64))) }
        let alternative: GeneralName =
            if let bytes = IPLiteral.ipv4(host) ?? IPLiteral.ipv6(host) {
                .ipAddress(ASN1OctetString(contentBytes: ArraySlice(bytes)))
            } else {
                .dnsName(host)
            }
        let publicKey = Certificate.PublicKey(leafKey.publicKey)
        let authorityKeyID = try certificate.extensions.subjectKeyIdentifier?.keyIdentifier
        return try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: publicKey, notValidBefore: certificate.notValidBefore,
            notValidAfter: certificate.notValidAfter, issuer: certificate.subject, subject: subject, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.serverAuth])
                SubjectAlternativeNames([alternative])
                SubjectKeyIdentifier(hash: publicKey)
                AuthorityKeyIdentifier(keyIdentifier: authorityKeyID)
            },
            issuerPrivateKey: Certificate.PrivateKey(key))
    }
}
