/// The commands `keyholdd` carries out: those that own the state directory (`init`, `serve`, the `demo`, which
/// runs a daemon of its own) and `audit`, which reads the store directly so that it works while the daemon is down.
/// `keyhold` hands each of them to `keyholdd`, so that the client links none of the daemon, the store or NIO's
/// server side, while the commands people type stay `keyhold serve`, `keyhold audit verify`, and so on.
public enum DaemonCommand: String, CaseIterable, Sendable {
    case initialize = "init"
    case serve
    case demo
    case audit

    /// The one-line summary both programs' help shows.
    public var abstract: String {
        switch self {
        case .initialize:
            "Create the state directory: a KEK (32 random bytes, mode 0600), an audit signing key and the database."
        case .serve:
            "Run the daemon: the admin API on a Unix socket (and optionally loopback TCP), sandboxes under systemd."
        case .demo:
            "Show each plan at work in a throwaway installation: real sandboxes, metered calls, a cap, a rotation, the audit."
        case .audit:
            "Read and verify the hash-chained audit log (works without the daemon)."
        }
    }

    /// What `keyhold`'s help says of a command it hands over.
    public var handOverNote: String {
        "keyhold hands this command to keyholdd, installed beside it: `keyhold \(rawValue) --help` prints its options, "
            + "and `man keyholdd-\(rawValue)` documents them."
    }

    /// The arguments to give `keyholdd` when `arguments` (after the program's name) name one of its commands, or ask
    /// for its help (`help serve`); nil when `keyhold` carries them out itself.
    public static func handedOver(_ arguments: [String]) -> [String]? {
        let names = Set(allCases.map(\.rawValue))
        if let first = arguments.first, names.contains(first) { return arguments }
        if arguments.count >= 2, arguments[0] == "help", names.contains(arguments[1]) { return arguments }
        return nil
    }
}
