import KeyholdCore

/// Entry points for the fuzzer (`keyhold-fuzz`, `deploy/fuzz.sh`): each hands a connection's or a datagram's first
/// bytes to a parser the way the gateway does, and stops the process when a promise the gateway relies on breaks.
/// The daemon never calls them.
public enum EgressFuzzTargets {
    /// A TLS ClientHello, whole and cut short: an incomplete one always asks for more bytes than it has, so the
    /// router's wait for them ends; a server name found is routed only once it is canonical.
    public static func clientHello(_ bytes: [UInt8]) {
        for cut in [bytes.count, bytes.count / 2] {
            let prefix = Array(bytes.prefix(cut))
            switch ClientHello.parse(prefix) {
            case .incomplete(let needed): precondition(needed > prefix.count, "an incomplete ClientHello asks for no more bytes")
            case .complete(let name?): _ = EgressRule.canonicalDestination(name)
            case .complete(nil), .malformed: break
            }
        }
    }

    /// A plain request head (CONNECT or Host): its length lies within the bytes, and its authority splits into a
    /// host and a port in range.
    public static func requestHead(_ bytes: [UInt8]) {
        guard case .complete(let head) = RequestHead.parse(bytes) else { return }
        precondition(head.length > 0 && head.length <= bytes.count, "a request head longer than the bytes read")
        guard let authority = head.authority, let (host, port) = RequestHead.split(authority: authority, defaultPort: 443) else { return }
        precondition((1...65_535).contains(port), "a port out of range")
        _ = EgressRule.canonicalDestination(host)
    }

    /// A DNS query to the sandbox's resolver: the answer echoes its id and question, and is at most 512 bytes.
    public static func dnsQuery(_ bytes: [UInt8]) {
        guard let query = DNSQuery.parse(bytes) else { return }
        for (exists, address) in [(true, [127, 0, 0, 1] as [UInt8]?), (true, nil), (false, nil)] {
            let answer = query.answer(exists: exists, address: address)
            precondition(answer.count <= 512 && answer.prefix(2).elementsEqual(bytes.prefix(2)), "an answer that is not the query's")
        }
    }
}
