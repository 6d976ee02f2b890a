public import KeyholdCore
public import NIOCore

/// What the egress gateway asks the daemon about one brokered sandbox: which destinations carry a secret, the
/// secret's value at the moment a request needs it, which tokens are the sandbox's placeholders, and where uses and
/// misuses are reported. The daemon implements it (the store and the vault stay out of this module); every
/// method is synchronous and cheap, called on an event loop.
public protocol SecretBroker: Sendable {
    /// The secret bound to `host:port`, if any: a TLS connection there is terminated, all others are spliced.
    func secret(host: String, port: Int) -> BrokeredSecret?
    /// The active version of `secret` now, opened: nil when it was revoked since. The caller wipes `value`.
    func open(_ secret: BrokeredSecret) -> OpenedSecret?
    /// What a token of this sandbox's placeholders stands for (a provider's name, or `secret:NAME`); nil otherwise.
    func placeholderLabel(of token: String) -> String?
    /// Counts one request sent with the secret (the `key.use` batches).
    func recordUse(of secret: OpenedSecret, name: String, destination: String)
    /// Whether `host:port` is where one of the sandbox's brokered keys goes (its provider's API or its key's base
    /// URL): a TLS connection there is terminated and served by the key broker, as if the agent had called its base URL.
    func isKeyDestination(host: String, port: Int) -> Bool
    /// Hands a terminated connection to a key's destination `host:port` to the key broker (its TLS handler is in
    /// place); the broker takes only the placeholders of the keys bound there.
    func serveKeyConnection(_ channel: any Channel, host: String, port: Int) throws
    /// A placeholder on its way to a destination it is not bound to: audited as `key.misuse`, posted to the
    /// tenant's webhook. The request was refused and nothing was replaced.
    func recordMisuse(label: String, destination: String, location: String)
}

/// A secret bound to a destination, as the gateway routes on it (no value).
public struct BrokeredSecret: Sendable, Equatable {
    public var name: String
    public var binding: SecretBinding

    public init(name: String, binding: SecretBinding) {
        self.name = name
        self.binding = binding
    }

    /// What the secret's placeholders are labelled with.
    public var label: String { SecretBinding.sealingLabel(name: name) }
}

/// One version of a secret, opened for one request.
public struct OpenedSecret: Sendable {
    /// The secret's bytes: wipe them when the request is sent.
    public var value: [UInt8]
    public var version: Int
    public var fingerprint: String

    public init(value: [UInt8], version: Int, fingerprint: String) {
        self.value = value
        self.version = version
        self.fingerprint = fingerprint
    }
}
