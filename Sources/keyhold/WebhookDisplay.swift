import Foundation

/// How the CLI shows a webhook URL: scheme and host, the rest elided, because a webhook's path or query often
/// carries a secret (the audit log names the host only, for the same reason; `--json` output has the whole URL).
enum WebhookDisplay {
    static func origin(of url: String) -> String {
        guard let components = URLComponents(string: url), let scheme = components.scheme, let host = components.host else { return "(a URL)" }
        let port = components.port.map { ":\($0)" } ?? ""
        let rest = (components.path.isEmpty || components.path == "/") && components.query == nil ? "" : "/…"
        return "\(scheme)://\(host)\(port)\(rest)"
    }
}
