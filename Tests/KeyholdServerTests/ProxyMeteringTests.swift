import AsyncHTTPClient
import Foundation
import GRDB
import KeyholdCore
import KeyholdStore
import KeyholdTestTraits
import KeyholdTesting
import NIOCore
import NIOHTTP1
import Testing

/// The metering proxy against a fake provider on 127.0.0.1: wire formats, exact metering, caps, crash safety.
@Suite(.offCooperativePool, .serialized)
struct ProxyMeteringTests {
    static let chat = #"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hi"}],"max_tokens":50}"#
    static let chatStream = #"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hi"}],"max_tokens":50,"stream":true}"#

    /// An agent that hangs up during a stream is charged what the provider reports for the call it started: the proxy
    /// reads the rest for no one, instead of charging nothing (usage not yet arrived) or the whole reservation.
    @Test func anAgentThatHangsUpMidStreamIsChargedWhatTheProviderReports() async throws {
        let proxy = try await ProxyHarness()
        proxy.provider.update {
            $0.usage = .init(inputTokens: 21, outputTokens: 9, cachedInputTokens: 0, reasoningTokens: 0)
            $0.streamChunkCount = 8
            $0.interChunkLatency = .milliseconds(150)
        }
        // A raw client: it reads the answer until its first event, then closes its socket.
        let client = """
            import socket, sys
            body = sys.argv[3].encode()
            s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
            s.sendall(b"POST /v1/chat/completions HTTP/1.1\\r\\nHost: x\\r\\nAuthorization: Bearer " + sys.argv[2].encode()
                      + b"\\r\\ncontent-type: application/json\\r\\ncontent-length: " + str(len(body)).encode() + b"\\r\\n\\r\\n" + body)
            seen = b""
            while b"data: " not in seen:
                chunk = s.recv(4096)
                if not chunk: break
                seen += chunk
            s.close()
            print("left" if b"data: " in seen and b"[DONE]" not in seen else "not mid-stream")
            """
        let left = try ProcessRunner.run("/usr/bin/python3", ["-c", client, String(proxy.port), proxy.token, Self.chatStream])
        #expect(left.stdout.contains("left"), "the client left mid-stream: \(left.stdout) \(left.stderr)")
        let row = try #require(try proxy.waitForUsageRows(1).first)
        #expect(row.status == 499 && row.charged == .usage, "\(row)")
        #expect(row.inputTokens == 21 && row.outputTokens == 9, "the provider's usage, not the reservation: \(row)")
        try await proxy.stop()
    }
    static let message = #"{"model":"claude-haiku-4-5","max_tokens":50,"messages":[{"role":"user","content":"Say hi"}]}"#
    static let messageStream = #"{"model":"claude-haiku-4-5","max_tokens":50,"messages":[{"role":"user","content":"Say hi"}],"stream":true}"#

    @Test func aRequestPassesThroughByteForByteWithThePlatformKeyAndIsMeteredExactly() async throws {
        let proxy = try await ProxyHarness()
        let answer = try await proxy.send("/v1/chat/completions", body: Self.chat)
        #expect(answer.status == 200)
        let upstream = try #require(proxy.provider.requests.last)
        #expect(upstream.bodyString == Self.chat, "the body reached the provider unchanged")
        #expect(upstream.header("authorization") == "Bearer \(FakeProvider.Configuration.defaultOpenAIKey)")
        #expect(!upstream.headers.contains { $0.value.contains(proxy.token) }, "the proxy token never reaches the provider")
        let usage = try #require(answer.json["usage"] as? [String: Any])
        #expect(usage["prompt_tokens"] as? Int == 11)

        let row = try #require(try proxy.waitForUsageRows(1).first)
        // OpenAI: 11 prompt tokens of which 3 cached, 7 completion tokens (2 of them reasoning).
        #expect(row.inputTokens == 8 && row.cachedTokens == 3)
        #expect(row.outputTokens == 7 && row.reasoningTokens == 2)
        #expect(row.charged == .usage)
        // gpt-4o-mini: 0.15 $/M input, 0.075 cached, 0.60 output → in pico-USD.
        #expect(row.costPicoUSD == 8 * 150_000 + 3 * 75_000 + 7 * 600_000)
        try await proxy.stop()
    }

    @Test func aStreamedCallIsMeteredExactlyLikeTheSameCallUnstreamed() async throws {
        let proxy = try await ProxyHarness()
        proxy.provider.update { $0.interChunkLatency = .milliseconds(2) }
        _ = try await proxy.send("/v1/chat/completions", body: Self.chat)
        let streamed = try await proxy.send("/v1/chat/completions", body: Self.chatStream)
        #expect(streamed.status == 200)
        #expect(streamed.text.contains("data: [DONE]"))
        #expect(!streamed.text.contains("\"usage\":{"), "the usage chunk the client did not ask for is stripped")
        #expect(proxy.provider.requests.last?.bodyString.contains("include_usage") == true, "but it was asked for upstream")
        _ = try await proxy.send("/v1/messages", body: Self.message, anthropic: true)
        let anthropicStream = try await proxy.send("/v1/messages", body: Self.messageStream, anthropic: true)
        #expect(anthropicStream.text.contains("event: message_stop"))
        #expect(proxy.provider.requests.last?.bodyString == Self.messageStream)

        let rows = try proxy.waitForUsageRows(4)
        func metered(_ row: UsageRow) -> [Int64] {
            [
                Int64(row.inputTokens), Int64(row.cachedTokens), Int64(row.cacheWriteTokens), Int64(row.outputTokens), Int64(row.reasoningTokens),
                row.costPicoUSD,
            ]
        }
        #expect(metered(rows[0]) == metered(rows[1]), "OpenAI streamed = unstreamed")
        #expect(metered(rows[2]) == metered(rows[3]), "Anthropic streamed = unstreamed")
        // Anthropic (claude-haiku-4-5: 1.00 $/M input, 0.10 read, 1.25 written, 5.00 output): 11 input, 5 written, 4 read, 7 output.
        let anthropicCost: Int64 = 11 * 1_000_000 + 4 * 100_000 + 5 * 1_250_000 + 7 * 5_000_000
        let expected: [Int64] = [11, 4, 5, 7, 0, anthropicCost]
        #expect(metered(rows[2]) == expected)
        #expect(rows.allSatisfy { $0.charged == .usage })
        try await proxy.stop()
    }

    @Test func refusedRequestsNeverReachTheProvider() async throws {
        let proxy = try await ProxyHarness()
        let before = proxy.provider.requestCount
        let disallowed = try await proxy.send("/v1/chat/completions", body: #"{"model":"gpt-5-pro","messages":[]}"#)
        #expect(disallowed.status == 403)
        #expect(((disallowed.json["error"] as? [String: Any])?["message"] as? String)?.contains("not in plan") == true, "\(disallowed.text)")
        let anthropicDisallowed = try await proxy.send(
            "/v1/messages", body: #"{"model":"claude-opus-4","max_tokens":5,"messages":[]}"#, anthropic: true)
        #expect(anthropicDisallowed.status == 403 && anthropicDisallowed.json["type"] as? String == "error")
        let malformed = try await proxy.send("/v1/chat/completions", body: "{not json")
        #expect(malformed.status == 400 && malformed.text.contains("not a JSON object"))
        let oversized = try await proxy.send("/v1/chat/completions", body: String(repeating: "x", count: 2 << 20))
        #expect(oversized.status == 413)
        let unknown = try await proxy.send("/v1/chat/completions", body: Self.chat, token: "kh_proxy_forged")
        #expect(unknown.status == 401 && unknown.text.contains("invalid_api_key"))
        #expect(proxy.provider.requestCount == before, "no upstream call for a refused request")

        // A revoked token (its sandbox stopped) is refused too.
        try proxy.keyhold.tamper("UPDATE proxy_tokens SET revoked_at = '2026-01-01T00:00:00.000Z'")
        #expect(try await proxy.proxyCaughtUp(), "the proxy follows a change made outside this daemon")
        let revoked = try await proxy.send("/v1/messages", body: Self.message, anthropic: true)
        #expect(revoked.status == 401 && revoked.json["type"] as? String == "error")
        #expect(proxy.provider.requestCount == before)
        try await proxy.stop()
    }

    @Test func twoHundredConcurrentRequestsOvershootANearlySpentCapByAtMostTheirReservations() async throws {
        // 1,500 tokens a day; each request reserves its body/3 (~40) plus max_tokens 50, and uses 18.
        let proxy = try await ProxyHarness(tokensPerDay: 1_500)
        let answers = try await withThrowingTaskGroup(of: ProxyHarness.Answer.self) { group in
            for _ in 0..<200 { group.addTask { try await proxy.send("/v1/chat/completions", body: Self.chat) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        let served = answers.filter { $0.status == 200 }.count
        let refused = answers.filter { $0.status == 429 }
        #expect(served + refused.count == 200)
        #expect(served > 0 && !refused.isEmpty)
        let refusal = try #require(refused.first)
        #expect(refusal.text.contains("tokens_per_day cap reached") && refusal.text.contains("resets at"), "\(refusal.text)")
        #expect(refusal.headers.first(name: "retry-after").flatMap(Int.init) ?? 0 > 0)
        let rows = try proxy.waitForUsageRows(served)
        let total = rows.reduce(0) { $0 + $1.inputTokens + $1.cachedTokens + $1.outputTokens }
        let reservation = (Self.chat.utf8.count + 2) / 3 + 50
        #expect(total <= 1_500 + reservation, "spent \(total) of 1,500: overshoot bounded by one reservation")
        #expect(proxy.provider.requestCount == served, "refused requests never reached the provider")
        try await proxy.stop()
    }

    @Test func aKilledProxyLosesNoSettledUsageAndChargesWhatWasInFlight() async throws {
        let proxy = try await ProxyHarness()
        for _ in 0..<20 { #expect(try await proxy.send("/v1/chat/completions", body: Self.chat).status == 200) }
        // One request hangs upstream while the daemon is killed.
        proxy.provider.update { $0.firstByteLatency = .seconds(30) }
        let hanging = Task { try? await proxy.send("/v1/chat/completions", body: Self.chat) }
        let deadline = Date().addingTimeInterval(10)
        while proxy.provider.requestCount < 21 && Date() < deadline { usleep(10_000) }
        #expect(proxy.keyhold.stopDaemon(signal: SIGKILL) != 0)
        _ = await hanging.value
        proxy.provider.update { $0.firstByteLatency = .zero }

        try proxy.startDaemon()
        let rows = try proxy.waitForUsageRows(21)
        #expect(rows.count == 21, "20 settled requests and the one in flight, none lost, none twice")
        #expect(rows.filter { $0.charged == .usage }.count == 20)
        let inFlight = try #require(rows.first { $0.charged == .reservation })
        #expect(inFlight.inputTokens > 0, "a request that died is charged its reservation, never zero")
        try await proxy.stop()
    }

    @Test func aRequestInFlightIsChargedItsReservationInTheDatabaseUntilItSettles() async throws {
        let proxy = try await ProxyHarness()
        proxy.provider.update { $0.firstByteLatency = .seconds(3) }
        let slow = Task { try await proxy.send("/v1/chat/completions", body: Self.chat) }
        // Within a flush, the fleet sees the request charged its reservation: if this host died now, that is what
        // its tenant would pay for it.
        let deadline = Date().addingTimeInterval(2.5)
        var charged = try proxy.usageRows().first
        while charged == nil && Date() < deadline {
            usleep(20_000)
            charged = try proxy.usageRows().first
        }
        #expect(charged?.charged == .inFlight && (charged?.costPicoUSD ?? 0) > 0, "\(String(describing: charged))")
        #expect(try await slow.value.status == 200)
        proxy.provider.update { $0.firstByteLatency = .zero }
        let rows = try proxy.waitForUsageRows(1)
        #expect(rows.count == 1 && rows.first?.requestID == charged?.requestID, "the settlement replaced the row")
        #expect(rows.first?.charged == .usage && rows.first?.inputTokens == 8 && rows.first?.outputTokens == 7)
        try await proxy.stop()
    }

    @Test func aJournalThatCannotBeWrittenRefusesRequestsInsteadOfSendingThemUnmetered() async throws {
        let proxy = try await ProxyHarness(journalDisk: 256 * 1024)
        #expect(try await proxy.send("/v1/chat/completions", body: Self.chat).status == 200)
        // The journal's disk fills up.
        let filler = proxy.journalDirectory + "/filler"
        _ = try ProcessRunner.run("/bin/dd", ["if=/dev/zero", "of=\(filler)", "bs=4096"])
        // Every request is now either refused before it is sent, or sent and journaled (the page the open segment
        // holds takes a few more lines, and the flusher frees the segments it stores): never sent unmetered.
        let sentBefore = proxy.provider.requestCount
        var passed = 0
        var refused = 0
        for _ in 0..<200 {
            let answer = try await proxy.send("/v1/chat/completions", body: Self.chat)
            if answer.status == 200 {
                passed += 1
            } else {
                #expect(answer.status == 503 && answer.text.contains("cannot record usage"), "\(answer.text)")
                refused += 1
            }
            if refused >= 5 { break }
        }
        #expect(refused >= 5, "the full disk refused reservations (\(passed) passed)")
        #expect(proxy.provider.requestCount - sentBefore == passed, "only journaled requests reached the provider")
        let health = try await AdminHTTP(.socket(proxy.keyhold.socketPath)).send("GET", "/v1/health")
        #expect(((health.json as? [String: Any])?["usage_journal_write_failures"] as? Int ?? 0) >= refused, "\(health.text)")
        let reports = proxy.keyhold.daemonLog.split(separator: "\n").filter { $0.contains("usage journal: the disk refused") }
        #expect(reports.count == 1 && reports[0].contains("No space left on device"), "one line for the burst: \(reports)")
        // Room again: requests pass and are metered.
        try FileManager.default.removeItem(atPath: filler)
        // (A request whose reservation fit before the disk filled but whose settlement did not stays charged its
        // reservation: never less.)
        let usage = { try proxy.usageRows().filter { $0.charged == .usage }.count }
        let metered = try usage()
        #expect(try await proxy.send("/v1/chat/completions", body: Self.chat).status == 200)
        let deadline = Date().addingTimeInterval(10)
        while try usage() <= metered && Date() < deadline { usleep(50_000) }
        #expect(try usage() > metered, "the next request is metered")
        try await proxy.stop()
    }

    @Test func aClientThatDisconnectsMidStreamIsChargedAndReleasesItsReservation() async throws {
        let proxy = try await ProxyHarness(tokensPerDay: 400)
        proxy.provider.update {
            $0.streamChunkCount = 50
            $0.interChunkLatency = .milliseconds(20)
        }
        // Read the first bytes of a stream, then hang up.
        var request = HTTPClientRequest(url: proxy.baseURL + "/v1/chat/completions")
        request.method = .POST
        request.headers.add(name: "authorization", value: "Bearer \(proxy.token)")
        request.body = .bytes(ByteBuffer(string: Self.chatStream))
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        let response = try await client.execute(request, timeout: .seconds(30))
        var iterator = response.body.makeAsyncIterator()
        _ = try await iterator.next()
        try await client.shutdown()

        // A stored row means the request was settled, which releases its reservation in the same step.
        let row = try #require(try proxy.waitForUsageRows(1).first)
        #expect(row.charged == .reservation || row.charged == .usage)
        #expect(row.inputTokens + (row.outputTokens) > 0, "never charged zero")
        proxy.provider.update { $0.interChunkLatency = .zero }
        #expect(try await proxy.send("/v1/chat/completions", body: Self.chat).status == 200)
        try await proxy.stop()
    }
}
