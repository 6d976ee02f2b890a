import Foundation
import GRDB
import KeyholdCore
import KeyholdStore
import KeyholdTesting
import NIOHTTP1
import NIOSSL
import Testing

#if canImport(Glibc)
import Glibc
import KeyholdTestTraits
#endif

/// The proxy's behaviour at the edges of a connection: slow agents, unknown routes, and providers that fail,
/// stall or cannot be reached (each answered in the provider's own error shape).
@Suite(.offCooperativePool, .serialized) struct ProxyConnectionTests {
    @Test func aClientThatSendsTooSlowlyGets408AndHoldsNothing() async throws {
        let proxy = try await ProxyHarness(tokensPerDay: 400, daemonArguments: ["--proxy-request-timeout", "1"])
        // A request announcing 200 bytes that sends 20 and then nothing.
        let body = ProxyMeteringTests.chat
        let partial =
            "POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer \(proxy.token)\r\n"
            + "content-type: application/json\r\ncontent-length: \(body.utf8.count)\r\n\r\n" + body.prefix(20)
        let started = ContinuousClock.now
        let answer = try RawConnection.exchange(port: proxy.port, send: partial, timeoutSeconds: 10)
        let waited = ContinuousClock.now - started
        #expect(answer.hasPrefix("HTTP/1.1 408"), "\(answer)")
        #expect(answer.contains("not received within 1 s"))
        #expect(waited >= .milliseconds(900) && waited < .seconds(8), "closed after the timeout, not before, not never: \(waited)")
        #expect(proxy.provider.requestCount == 0, "nothing reached the provider")
        #expect(try proxy.usageRows().isEmpty, "nothing was reserved or charged")
        // Nothing is held against the cap: the next request passes.
        #expect(try await proxy.send("/v1/chat/completions", body: ProxyMeteringTests.chat).status == 200)
        try await proxy.stop()
    }

    @Test func unknownRoutesAndWrongMethodsAreRefusedInTheProvidersShape() async throws {
        let proxy = try await ProxyHarness()
        let unknown = try await proxy.send("/v1/completions", body: ProxyMeteringTests.chat)
        #expect(unknown.status == 404)
        #expect(((unknown.json["error"] as? [String: Any])?["message"] as? String)?.contains("POST /v1/chat/completions") == true)
        let raw = try RawConnection.exchange(
            port: proxy.port, send: "GET /v1/messages HTTP/1.1\r\nhost: x\r\nx-api-key: \(proxy.token)\r\nconnection: close\r\n\r\n",
            timeoutSeconds: 10
        )
        #expect(raw.hasPrefix("HTTP/1.1 405"), "\(raw)")
        #expect(raw.lowercased().contains("allow: post"))
        #expect(raw.contains(#""type":"error""#), "Anthropic's error shape")
        #expect(proxy.provider.requestCount == 0)
        try await proxy.stop()
    }

    @Test func providerErrorsPassThroughAndCostNothing() async throws {
        let proxy = try await ProxyHarness()
        proxy.provider.update { $0.failure = .init(status: 429, message: "slow down", remaining: 1, retryAfter: "7") }
        let limited = try await proxy.send("/v1/chat/completions", body: ProxyMeteringTests.chat)
        #expect(limited.status == 429)
        #expect(limited.headers.first(name: "retry-after") == "7")
        #expect(((limited.json["error"] as? [String: Any])?["message"] as? String) == "slow down", "the provider's own body: \(limited.text)")
        proxy.provider.update { $0.failure = .init(status: 529, message: "overloaded", remaining: 1) }
        let overloaded = try await proxy.send("/v1/messages", body: ProxyMeteringTests.message, anthropic: true)
        #expect(overloaded.status == 529 && overloaded.json["type"] as? String == "error", "\(overloaded.text)")
        let rows = try proxy.waitForUsageRows(2)
        #expect(rows.map { $0.status } == [429, 529])
        #expect(rows.allSatisfy { $0.inputTokens == 0 && $0.outputTokens == 0 && $0.costPicoUSD == 0 })
        try await proxy.stop()
    }

    @Test func aStalledProviderGets504AndAnUnreachableOne502() async throws {
        let proxy = try await ProxyHarness(daemonArguments: ["--proxy-upstream-timeout", "1"])
        proxy.provider.update { $0.firstByteLatency = .seconds(4) }
        let stalled = try await proxy.send("/v1/messages", body: ProxyMeteringTests.message, anthropic: true)
        #expect(stalled.status == 504, "\(stalled.text)")
        #expect(stalled.json["type"] as? String == "error" && stalled.text.contains("no answer for 1 s"))
        proxy.provider.update { $0.firstByteLatency = .zero }
        // Sent and unanswered: it may have cost the platform, so it is charged its reservation, never zero.
        let stalledRow = try #require(try proxy.waitForUsageRows(1).first)
        #expect(stalledRow.charged == .reservation && stalledRow.inputTokens > 0)

        try await proxy.provider.stop()
        let unreachable = try await proxy.send("/v1/chat/completions", body: ProxyMeteringTests.chat)
        #expect(unreachable.status == 502, "\(unreachable.text)")
        #expect(((unreachable.json["error"] as? [String: Any])?["type"] as? String) == "upstream_error")
        let rows = try proxy.waitForUsageRows(2)
        #expect(rows[1].charged == .nothing, "never sent: nothing to charge")
        #expect(!unreachable.text.contains(FakeProvider.Configuration.defaultOpenAIKey), "the platform key is never sent back")
        _ = proxy.keyhold.stopDaemon()
    }
}

extension ProxyConnectionTests {
    @Test func aStreamTheProviderCutsEndsWithAnErrorEventAndIsChargedItsReservation() async throws {
        let proxy = try await ProxyHarness()
        proxy.provider.update { $0.cutStreamAfterEvents = 3 }
        let openAI = try await proxy.send("/v1/chat/completions", body: ProxyMeteringTests.chatStream)
        #expect(openAI.status == 200)
        #expect(openAI.text.hasPrefix("data: "), "the events before the cut were forwarded: \(openAI.text)")
        #expect(openAI.text.contains(#""type":"upstream_error""#), "a final error event in OpenAI's shape")
        let anthropic = try await proxy.send("/v1/messages", body: ProxyMeteringTests.messageStream, anthropic: true)
        #expect(anthropic.text.contains("event: message_start"))
        #expect(anthropic.text.contains("event: error") && anthropic.text.contains(#""type":"api_error""#), "\(anthropic.text)")
        let rows = try proxy.waitForUsageRows(2)
        #expect(rows.allSatisfy { $0.charged == .reservation }, "a stream whose usage never came is charged its reservation")
        #expect(rows.allSatisfy { $0.inputTokens + $0.outputTokens > 0 }, "never zero")
        try await proxy.stop()
    }

    @Test func aStreamThatRunsPastItsReservationIsCut() async throws {
        let proxy = try await ProxyHarness()
        // 2,000 characters (about 500 tokens) for a request that allows 5.
        proxy.provider.update {
            $0.responseText = String(repeating: "lorem ipsum ", count: 170)
            $0.streamChunkCount = 100
        }
        let body = #"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hi"}],"max_tokens":5,"stream":true}"#
        let answer = try await proxy.send("/v1/chat/completions", body: body)
        #expect(answer.text.contains("reached its reservation of 5 output tokens"), "\(answer.text.suffix(300))")
        #expect(!answer.text.contains("[DONE]"), "the rest of the stream was not forwarded")
        let row = try #require(try proxy.waitForUsageRows(1).first)
        #expect(row.charged == .reservation && row.outputTokens == 5)
        try await proxy.stop()
    }
}

extension ProxyConnectionTests {
    @Test func aProviderOverTLSIsReachedOnlyWhenItsCertificateIsTrusted() async throws {
        let certificate = try SelfSignedCertificate(address: "127.0.0.1")
        defer { certificate.remove() }
        let proxy = try await ProxyHarness(providerTLS: try certificate.serverConfiguration())
        #expect(proxy.provider.baseURL.hasPrefix("https://127.0.0.1:"))

        // The system's roots do not vouch for it: refused during the handshake, nothing sent, nothing charged.
        let untrusted = try await proxy.send("/v1/chat/completions", body: ProxyMeteringTests.chat)
        #expect(untrusted.status == 502, "\(untrusted.text)")
        #expect(untrusted.text.lowercased().contains("certificate"), "the answer says why: \(untrusted.text)")
        #expect(proxy.provider.requestCount == 0)

        _ = proxy.keyhold.stopDaemon()
        proxy.daemonArguments = ["--provider-ca-file", certificate.certificatePath]
        try proxy.startDaemon()
        let trusted = try await proxy.send("/v1/chat/completions", body: ProxyMeteringTests.chat)
        #expect(trusted.status == 200, "\(trusted.text)")
        let streamed = try await proxy.send("/v1/messages", body: ProxyMeteringTests.messageStream, anthropic: true)
        #expect(streamed.status == 200 && streamed.text.contains("event: message_stop"), "\(streamed.text)")
        let rows = try proxy.waitForUsageRows(3)
        #expect(rows.map(\.charged) == [.nothing, .usage, .usage])
        try await proxy.stop()
    }
}

/// A throwaway self-signed certificate for an address, made with the openssl command.
struct SelfSignedCertificate {
    let directory: String
    var certificatePath: String { directory + "/cert.pem" }
    var keyPath: String { directory + "/key.pem" }

    /// - Parameters:
    ///   - address: an IP address, or with `dnsName` a host name, that the certificate names.
    ///   - parent: where its directory goes (sandboxes see /opt, not the test's /tmp).
    init(address: String, dnsName: Bool = false, parent: String = NSTemporaryDirectory()) throws {
        directory = (parent as NSString).appendingPathComponent("keyhold-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        let made = try ProcessRunner.run(
            "/usr/bin/openssl",
            [
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj", "/CN=\(address)",
                "-addext", "subjectAltName=\(dnsName ? "DNS" : "IP"):\(address)", "-keyout", keyPath, "-out", certificatePath,
            ])
        try #require(made.status == 0, "openssl: \(made.stderr)")
        chmod(certificatePath, 0o644)
    }

    func serverConfiguration() throws -> TLSConfiguration {
        TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMFile(certificatePath).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(file: keyPath, format: .pem)))
    }

    func remove() { try? FileManager.default.removeItem(atPath: directory) }
}

/// A plain TCP connection on loopback, for requests no HTTP client library would send.
enum RawConnection {
    /// Sends `text` and returns everything the server sends until it closes the connection (or the timeout).
    static func exchange(port: Int, send text: String, timeoutSeconds: Int) throws -> String {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw POSIXError(.EIO) }
        defer { close(descriptor) }
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw POSIXError(.ECONNREFUSED) }
        let bytes = Array(text.utf8)
        guard write(descriptor, bytes, bytes.count) == bytes.count else { throw POSIXError(.EIO) }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = read(descriptor, &buffer, buffer.count)
            if count <= 0 { break }
            received += buffer[0..<count]
        }
        return String(decoding: received, as: UTF8.self)
    }
}
