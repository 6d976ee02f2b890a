public import KeyholdCore

/// Which brokered sandbox a key broker's connection serves, the destination the agent called, and who hears of a
/// placeholder presented where it does not belong.
public struct BrokeredListener: Sendable {
    /// The sandbox whose placeholders this connection takes.
    public var sandboxID: Int64
    /// Where the agent sent its request: the broker inside the sandbox (`127.0.0.1:8787`), or a key's host the egress
    /// gateway terminated (`api.openai.com:443`).
    public var destination: String
    /// For a key's host the gateway terminated: the providers whose keys go there. A placeholder of another provider
    /// is on its way to a host it is not bound to. Nil for the broker inside the sandbox, which serves every provider.
    public var providers: Set<Provider>?
    /// Told when a placeholder of this sandbox arrives that this connection may not use (a secret's, or a key's sent
    /// to another provider's host).
    public var misuse: (any PlaceholderMisuseReporter)?

    public init(sandboxID: Int64, destination: String, providers: Set<Provider>? = nil, misuse: (any PlaceholderMisuseReporter)? = nil) {
        self.sandboxID = sandboxID
        self.destination = destination
        self.providers = providers
        self.misuse = misuse
    }
}

/// What a key broker asks of a brokered sandbox when a placeholder is presented where it may not be used.
public protocol PlaceholderMisuseReporter: Sendable {
    /// What a token of this sandbox's placeholders stands for (a provider's name, or `secret:NAME`); nil otherwise.
    func placeholderLabel(of token: String) -> String?
    /// Audits `key.misuse` and posts it to the tenant's webhook (at most once a minute per placeholder and destination).
    func recordMisuse(label: String, destination: String, location: String)
}
