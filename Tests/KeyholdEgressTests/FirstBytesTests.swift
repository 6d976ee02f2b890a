import Foundation
import Testing

@testable import KeyholdEgress

/// The gateway routes on what a client says first: a real OpenSSL ClientHello's SNI, a CONNECT line, a Host header.
struct FirstBytesTests {
    /// A ClientHello made by Python's ssl module (OpenSSL) for `serverName`, written to memory, never sent.
    static func clientHello(serverName: String?) throws -> [UInt8] {
        let script = """
            import ssl, sys
            ctx = ssl.create_default_context()
            incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
            name = sys.argv[1] if len(sys.argv) > 1 else None
            if name is None:
                ctx.check_hostname = False
            conn = ctx.wrap_bio(incoming, outgoing, server_hostname=name)
            try:
                conn.do_handshake()
            except ssl.SSLWantReadError:
                pass
            sys.stdout.buffer.write(outgoing.read())
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = ["-c", script] + (serverName.map { [$0] } ?? [])
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0 && !data.isEmpty)
        return Array(data)
    }

    @Test func theServerNameOfARealClientHelloIsRead() throws {
        let hello = try Self.clientHello(serverName: "api.anthropic.com")
        #expect(ClientHello.parse(hello) == .complete(serverName: "api.anthropic.com"))
        // Byte by byte, it is incomplete until the last byte arrives.
        for cut in [1, 5, 6, hello.count / 2, hello.count - 1] {
            guard case .incomplete(let needed) = ClientHello.parse(Array(hello.prefix(cut))) else {
                Issue.record("cut at \(cut) is not incomplete")
                continue
            }
            #expect(needed > cut && needed <= hello.count, "cut at \(cut): needs \(needed)")
        }
    }

    @Test func aClientHelloWithoutServerNameHasNone() throws {
        #expect(ClientHello.parse(try Self.clientHello(serverName: nil)) == .complete(serverName: nil))
    }

    @Test func aClientHelloSplitAcrossRecordsIsReassembled() throws {
        let hello = try Self.clientHello(serverName: "gen.example.org")
        let body = Array(hello[5...])
        let half = body.count / 2
        func record(_ part: ArraySlice<UInt8>) -> [UInt8] { [0x16, 3, 1, UInt8(part.count >> 8), UInt8(part.count & 0xff)] + part }
        let split = record(body[..<half]) + record(body[half...])
        #expect(ClientHello.parse(split) == .complete(serverName: "gen.example.org"))
        #expect(ClientHello.parse(Array(split.prefix(5 + half + 3))) == .incomplete(needed: 5 + half + 5), "the second record's header")
    }

    @Test func bytesThatAreNotAClientHelloAreRefused() {
        if case .malformed = ClientHello.parse([0x16, 3, 1, 0, 4, 2, 0, 0, 0]) {} else { Issue.record("a ServerHello is not a ClientHello") }
        if case .malformed = ClientHello.parse([0x17, 3, 3, 0, 1, 0]) {} else { Issue.record("application data is not a handshake") }
    }

    @Test func connectAndHostHeadsNameTheirDestination() {
        let connect = Array("CONNECT api.openai.com:443 HTTP/1.1\r\nHost: api.openai.com:443\r\n\r\nTLS".utf8)
        guard case .complete(let head) = RequestHead.parse(connect) else {
            Issue.record("CONNECT not parsed")
            return
        }
        #expect(head.isConnect && head.authority == "api.openai.com:443" && head.length == connect.count - 3)

        let get = Array("GET /v1/models HTTP/1.1\r\nUser-Agent: x\r\nhost:  127.0.0.1:8080 \r\n\r\n".utf8)
        #expect(RequestHead.parse(get) == .complete(RequestHead(method: "GET", authority: "127.0.0.1:8080", length: get.count)))
        #expect(RequestHead.parse(Array("GET / HTTP/1.1\r\nHost: a".utf8)) == .incomplete)
        if case .malformed = RequestHead.parse(Array("\u{1}\u{2}garbage\r\n\r\n".utf8)) {} else { Issue.record("garbage accepted") }
        if case .malformed = RequestHead.parse(Array(repeating: UInt8(ascii: "A"), count: 20_000)) {} else { Issue.record("huge head accepted") }
    }

    @Test func destinationsAreLoggedPrintableAndShort() {
        #expect(EgressRouter.printable("api.example.com:443") == "api.example.com:443")
        #expect(EgressRouter.printable("evil\n2026 fake log line\u{0}") == "evil\\x0a2026 fake log line\\x00")
        #expect(EgressRouter.printable(String(repeating: "a", count: 1000)).count == 258)
    }

    @Test func aClientHelloInTooManyRecordsIsRefused() throws {
        let hello = try Self.clientHello(serverName: "api.example.com")
        let body = Array(hello[5...])
        var tiny: [UInt8] = []
        for byte in body { tiny += [0x16, 3, 1, 0, 1, byte] }
        if case .malformed = ClientHello.parse(tiny) {} else { Issue.record("a ClientHello in one-byte records was accepted") }
    }

    /// A stub resolver's query for `name` (RFC 1035 section 4.1), as glibc sends it: recursion desired, one question.
    static func query(_ name: String, type: UInt16, id: UInt16 = 0x1234) -> [UInt8] {
        var bytes: [UInt8] = [UInt8(id >> 8), UInt8(id & 0xff), 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]
        for label in name.split(separator: ".") { bytes += [UInt8(label.utf8.count)] + Array(label.utf8) }
        return bytes + [0, UInt8(type >> 8), UInt8(type & 0xff), 0, 1]
    }

    @Test func dnsQuestionsAreAnsweredWithTheGatewayOrNoSuchName() throws {
        let query = try #require(DNSQuery.parse(Self.query("API.Example.com", type: DNSQuery.typeA)))
        #expect(query.name == "api.example.com" && query.type == 1 && query.recursionDesired)
        let answer = query.answer(exists: true, address: [127, 0, 0, 1])
        #expect(Array(answer[0..<2]) == [0x12, 0x34] && answer[3] & 0x0f == 0 && answer[7] == 1, "one answer, no error")
        #expect(Array(answer.suffix(4)) == [127, 0, 0, 1])
        let missing = query.answer(exists: false, address: [127, 0, 0, 1])
        #expect(missing[3] & 0x0f == 3 && missing[7] == 0, "NXDOMAIN, no answer")
        let aaaa = try #require(DNSQuery.parse(Self.query("api.example.com", type: DNSQuery.typeAAAA)))
        #expect(aaaa.answer(exists: true, address: [127, 0, 0, 1])[7] == 0, "an allowed name has no IPv6 address")
        // A label with a NUL byte or a dot inside is not a host name's.
        var odd = Self.query("evil.example.com", type: 1)
        odd[13] = 0
        #expect(try #require(DNSQuery.parse(odd)).name == nil)
        #expect(DNSQuery.parse(Array(Self.query("a.example.com", type: 1).prefix(20))) == nil, "truncated")
        var response = Self.query("a.example.com", type: 1)
        response[2] |= 0x80
        #expect(DNSQuery.parse(response) == nil, "an answer is not a question")
    }

    @Test func authoritiesSplitIntoHostAndPort() {
        #expect(RequestHead.split(authority: "example.com", defaultPort: 80)! == ("example.com", 80))
        #expect(RequestHead.split(authority: "example.com:8443", defaultPort: 80)! == ("example.com", 8443))
        #expect(RequestHead.split(authority: "[2001:db8::1]:443", defaultPort: 80)! == ("2001:db8::1", 443))
        #expect(RequestHead.split(authority: "example.com:0", defaultPort: 80) == nil)
        #expect(RequestHead.split(authority: "a:b:c", defaultPort: 80) == nil)
    }
}
