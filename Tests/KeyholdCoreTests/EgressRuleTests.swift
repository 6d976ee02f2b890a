import KeyholdCore
import Testing

/// What a hosting provider may allow a BYOK sandbox to reach, and what it may not.
@Suite struct EgressRuleTests {
    @Test func destinationsAreReadAsAdminsWriteThem() throws {
        #expect(try EgressRule.parse("api.example.com").description == "api.example.com:443")
        #expect(try EgressRule.parse("API.Example.com.:8443").description == "api.example.com:8443")
        #expect(try EgressRule.parse("https://api.example.com/").description == "api.example.com:443")
        #expect(try EgressRule.parse("http://mirror.example.org").description == "http://mirror.example.org:80")
        #expect(try EgressRule.parse("*.example.com").isWildcard)
        #expect(try EgressRule.parse("[2606:4700::1111]:443").host == "2606:4700::1111")
        #expect(try EgressRule.parse("8.8.8.8:53").literalClass == .global)
        #expect(throws: KeyholdError.self) { try EgressRule.parse("203.0.113.7:9000", allowPrivate: true) }
    }

    @Test(arguments: [
        ("*", "only as the first label"), ("*.com", "registrable domain"), ("*.*.example.com", "only as the first label"),
        ("api.*.com", "only as the first label"), ("example.com:0", "port"), ("example.com:65536", "port"), ("example.com:http", "port"),
        ("ftp://example.com", "http:// and https://"), ("example.com/v1", "without a path"), ("user@example.com", "without a path"),
        ("-bad-.example.com", "DNS label"), ("exa mple.com", "DNS label"), ("", "empty"), ("2001:db8::1", "brackets"),
        ("10.0.0.5", "--private"), ("127.0.0.1:5432", "--private"), ("192.168.1.1", "--private"), ("[::1]:80", "--private"),
        ("169.254.169.254", "never reachable"), ("[fe80::1]", "never reachable"), ("0.0.0.0", "never reachable"),
    ])
    func badDestinationsAreRefusedWithTheirReason(text: String, reason: String) {
        do {
            _ = try EgressRule.parse(text)
            Issue.record("'\(text)' was accepted")
        } catch let error as KeyholdError {
            #expect(error.code == .invalidInput)
            #expect(error.message.contains(reason), "\(error.message)")
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test func whatIsCheckedIsExactlyWhatIsResolved() {
        #expect(EgressRule.canonicalDestination("API.Example.COM.") == "api.example.com")
        #expect(EgressRule.canonicalDestination("[2001:DB8::1]") == "2001:db8::1")
        #expect(EgressRule.canonicalDestination("10.0.0.1") == "10.0.0.1")
        // A NUL byte would end the name a C resolver sees; a Kelvin sign lowercases into an ASCII k.
        #expect(EgressRule.canonicalDestination("evil.com\u{0}.example.com") == nil)
        #expect(EgressRule.canonicalDestination("\u{212A}eyhold.example.com") == nil)
        #expect(EgressRule.canonicalDestination("a b.example.com") == nil)
        #expect(EgressRule.canonicalDestination("") == nil)
        #expect(EgressRule.canonicalDestination(String(repeating: "a", count: 64) + ".com") == nil)
    }

    @Test func aWildcardNeverReachesPrivateAddresses() {
        #expect(throws: KeyholdError.self) { try EgressRule.parse("*.corp.example.com", allowPrivate: true) }
        #expect(throws: Never.self) { try EgressRule.parse("*.corp.example.com", allowPrivate: false) }
    }

    @Test func privateAddressesNeedTheExplicitFlagAndLinkLocalNeverPasses() throws {
        #expect(try EgressRule.parse("10.0.0.5:8080", allowPrivate: true).allowPrivate)
        #expect(try EgressRule.parse("http://127.0.0.1:9000", allowPrivate: true).literalClass == .loopback)
        #expect(throws: KeyholdError.self) { try EgressRule.parse("169.254.169.254", allowPrivate: true) }
    }

    @Test func addressesAreClassifiedAsTheyReach() {
        let cases: [(String, AddressClass)] = [
            ("127.0.0.1", .loopback), ("127.8.9.10", .loopback), ("::1", .loopback), ("10.1.2.3", .private), ("172.16.0.1", .private),
            ("172.31.255.255", .private), ("172.32.0.1", .global), ("192.168.0.1", .private), ("100.64.0.1", .private),
            ("fd00::1", .private), ("169.254.169.254", .linkLocal), ("fe80::1", .linkLocal), ("::ffff:127.0.0.1", .loopback),
            ("::ffff:169.254.169.254", .linkLocal), ("0.0.0.0", .special), ("224.0.0.1", .special), ("::", .special),
            ("93.184.216.34", .global), ("2606:4700::1111", .global),
            // IPv6 forms that carry an IPv4 address are what that address is.
            ("64:ff9b::10.0.0.1", .private), ("64:ff9b::169.254.169.254", .linkLocal), ("64:ff9b:1::1", .special),
            ("::127.0.0.1", .loopback), ("::ffff:0:10.1.1.1", .private), ("2002:7f00:1::1", .loopback), ("2002:a9fe:a9fe::1", .linkLocal),
            ("fec0::1", .private),
        ]
        for (text, expected) in cases { #expect(AddressClass.of(literal: text) == expected, "\(text)") }
        #expect(AddressClass.of(literal: "example.com") == nil)
        #expect(AddressClass.of(literal: "1.2.3") == nil)
        #expect(AddressClass.of(literal: "01.2.3.4") == nil)
    }

    @Test func aPolicyAllowsItsDestinationsAndPlainHTTPOnlyWhenSaid() throws {
        let plan = try PlanLoader.parse(PlanLoaderTests.valid, file: "starter.yaml")
        let policy = EgressPolicy.of(
            keyBaseURLs: [("anthropic", "https://api.anthropic.com"), ("openai-compatible", "http://127.0.0.1:9000/v1")], plan: plan,
            tenant: [
                try EgressRule.parse("*.example.com"), try EgressRule.parse("http://mirror.example.org"),
                try EgressRule.parse("127.0.0.1:9000", allowPrivate: true),
            ]
        )
        // A key's base URL never opens the host's loopback by itself: the admin's entry does.
        #expect(policy.entries.map(\.source) == ["key anthropic", "tenant", "tenant", "tenant"])
        #expect(policy.decide(host: "api.anthropic.com", port: 443, tls: true) == .allow(allowPrivate: false))
        #expect(policy.decide(host: "API.ANTHROPIC.COM.", port: 443, tls: true) == .allow(allowPrivate: false))
        #expect(policy.decide(host: "api.anthropic.com", port: 80, tls: false) == .refuse(reason: "not an allowed destination"))
        #expect(policy.decide(host: "x.example.com", port: 443, tls: true) == .allow(allowPrivate: false))
        #expect(policy.decide(host: "example.com", port: 443, tls: true) == .refuse(reason: "not an allowed destination"))
        #expect(policy.decide(host: "evilexample.com", port: 443, tls: true) == .refuse(reason: "not an allowed destination"))
        #expect(policy.decide(host: "mirror.example.org", port: 80, tls: false) == .allow(allowPrivate: false))
        if case .refuse = policy.decide(host: "127.0.0.1", port: 9000, tls: false) {} else { Issue.record("plain HTTP without http://") }
        #expect(policy.decide(host: "127.0.0.1", port: 9000, tls: true) == .allow(allowPrivate: true))
        #expect(policy.hostNames == ["api.anthropic.com", "mirror.example.org"])
        #expect(
            policy.listenAddresses(proxyPort: 3128).map(\.description) == ["127.0.0.1:3128", "127.0.0.1:443", "127.0.0.1:80", "127.0.0.1:9000"])
    }

    @Test func aKeysBaseURLElsewhereThanItsProvidersAPINeedsAnAdminsRule() throws {
        let plan = try PlanLoader.parse(PlanLoaderTests.valid, file: "starter.yaml")
        func refusal(_ url: String, _ provider: Provider = .openaiCompatible, rules: [EgressRule] = []) -> String? {
            KeyBaseURLRule.refusal(of: url, provider: provider, plan: plan, tenant: "acme", tenantRules: rules)
        }
        #expect(refusal("https://api.anthropic.com", .anthropic) == nil)
        #expect(refusal("https://API.anthropic.com/v1/", .anthropic) == nil, "a path and the host's case change nothing")
        #expect(refusal("https://api.openai.com/v1", .anthropic) != nil, "another provider's API is not this one's")
        #expect(refusal("https://api.anthropic.com.evil.example", .anthropic) != nil)
        #expect(refusal("https://api.anthropic.com:8443", .anthropic) != nil)
        let groq = try #require(refusal("https://api.groq.com/openai/v1"))
        #expect(groq.contains("keyhold tenant allow-egress acme api.groq.com:443"), "\(groq)")
        #expect(refusal("https://api.groq.com/openai/v1", rules: [try EgressRule.parse("api.groq.com")]) == nil)
        #expect(refusal("https://x.groq.com/v1", rules: [try EgressRule.parse("*.groq.com")]) == nil)
        #expect(refusal("http://api.groq.com/openai/v1", rules: [try EgressRule.parse("api.groq.com")]) != nil, "plain HTTP needs an http:// rule")
        #expect(refusal("http://127.0.0.1:9000", .openai)?.contains("http://127.0.0.1:9000 --private") == true)
        #expect(refusal("http://127.0.0.1:9000", rules: [try EgressRule.parse("http://127.0.0.1:9000", allowPrivate: true)]) == nil)
        #expect(refusal("ftp://example.com") != nil)
        // A base URL elsewhere adds no destination of its own to the sandbox: the admin's rule is the one there.
        let policy = EgressPolicy.of(
            keyBaseURLs: [("openai-compatible", "https://api.groq.com/openai/v1"), ("openai", "https://evil.example/v1")], plan: plan, tenant: [])
        #expect(policy.entries.isEmpty, "\(policy.entries)")
    }

    @Test func plansCarryTheirEgressAndStateLimit() throws {
        let text =
            PlanLoaderTests.valid + """

                  state_max: 256M
                  egress_allow:
                    - pypi.org
                    - http://deb.debian.org
                    - {destination: "10.0.0.5:8080", allow_private: true}
                """
        let plan = try PlanLoader.parse(text, file: "starter.yaml")
        #expect(plan.sandbox.stateMaxBytes == 256 << 20)
        #expect(plan.sandbox.egressAllow.map(\.description) == ["pypi.org:443", "http://deb.debian.org:80", "10.0.0.5:8080"])
        #expect(plan.sandbox.egressAllow.last?.allowPrivate == true)
        #expect(try PlanLoader.parse(PlanLoaderTests.valid, file: "s.yaml").sandbox.stateMaxBytes == SandboxLimits.defaultStateMaxBytes)
    }

    @Test(arguments: [
        ("  egress_allow: ['*']", "sandbox.egress_allow[0]", "first label"),
        ("  egress_allow: ['*.com']", "sandbox.egress_allow[0]", "registrable"),
        ("  egress_allow: [example.com:99999]", "sandbox.egress_allow[0]", "port"),
        ("  egress_allow: ['10.0.0.5']", "sandbox.egress_allow[0]", "allow_private"),
        ("  egress_allow: [{destination: 10.0.0.5, allow_private: maybe}]", "allow_private", "true or false"),
        ("  egress_allow: [{host: 10.0.0.5}]", "sandbox.egress_allow[0]", "destination"),
        ("  egress_allow: pypi.org", "sandbox.egress_allow", "list"),
        ("  state_max: lots", "sandbox.state_max", "at least 1M"),
        ("  state_max: 10K", "sandbox.state_max", "at least 1M"),
    ])
    func malformedPlanFieldsNameTheField(line: String, field: String, problem: String) {
        do {
            _ = try PlanLoader.parse(PlanLoaderTests.valid + "\n" + line, file: "starter.yaml")
            Issue.record("accepted: \(line)")
        } catch {
            #expect(error.field.hasPrefix(field) || error.field.contains(field), "\(error)")
            #expect("\(error)".contains(problem), "\(error)")
        }
    }
}
