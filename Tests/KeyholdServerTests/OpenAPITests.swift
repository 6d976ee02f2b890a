import Foundation
import KeyholdCore
import KeyholdOrchestration
import KeyholdServer
import KeyholdTestTraits
import KeyholdTesting
import Testing
import Yams

/// `deploy/openapi.yaml` against what the daemon really serves: the same routes, and answers of the documented shape.
@Suite(.offCooperativePool) struct OpenAPITests {
    @Test func everyServedRouteIsDocumentedAndEveryDocumentedRouteIsServed() throws {
        let document = try OpenAPIDocument.load()
        let daemon = try IdleDaemon(label: "keyhold-openapi-test")
        let list = Daemon.routeList(plane: daemon.plane)
        let served = Set(list)
        #expect(served.count == list.count, "a route is registered twice: \(list.sorted())")
        #expect(!served.isEmpty)
        for route in served.subtracting(document.routes).sorted() {
            Issue.record("\(route) is served but not documented in deploy/openapi.yaml")
        }
        for route in document.routes.subtracting(served).sorted() {
            Issue.record("\(route) is documented in deploy/openapi.yaml but not served")
        }
    }

    /// The document's audit actions and outcomes are the sources' (`AuditAction`, `AuditOutcome`), and every cap it
    /// names is a `CapName`: a value added on one side only fails here.
    @Test func theDocumentsAuditVocabularyAndCapNamesAreTheSources() throws {
        let document = try OpenAPIDocument.load()
        let schemas = (document.root["components"] as? [String: Any])?["schemas"] as? [String: Any] ?? [:]
        let event = (schemas["AuditEvent"] as? [String: Any])?["properties"] as? [String: Any] ?? [:]
        func values(_ property: Any?) -> Set<String> { Set(((property as? [String: Any])?["enum"] as? [Any] ?? []).map { "\($0)" }) }
        #expect(values(event["action"]) == Set(AuditAction.allCases.map(\.rawValue)))
        #expect(values(event["outcome"]) == Set(AuditOutcome.allCases.map(\.rawValue)))
        var capEnums: [Set<String>] = []
        func collectCaps(_ node: Any) {
            if let map = node as? [String: Any] {
                if let cap = map["cap"] as? [String: Any], cap["enum"] != nil { capEnums.append(values(cap)) }
                map.values.forEach(collectCaps)
            } else if let list = node as? [Any] {
                list.forEach(collectCaps)
            }
        }
        collectCaps(document.root)
        #expect(!capEnums.isEmpty, "the document names caps")
        for names in capEnums { #expect(names.isSubset(of: Set(CapName.allCases.map(\.rawValue))), "\(names.sorted())") }
    }

    @Test func theDocumentDeclaresBothWaysToAuthenticate() throws {
        let document = try OpenAPIDocument.load()
        let schemes = (document.root["components"] as? [String: Any])?["securitySchemes"] as? [String: Any]
        let bearer = schemes?["adminToken"] as? [String: Any]
        #expect(bearer?["type"] as? String == "http")
        #expect(bearer?["scheme"] as? String == "bearer")
        let security = document.root["security"] as? [[String: Any]] ?? []
        #expect(security.contains { $0.isEmpty }, "the Unix socket (no HTTP authentication) is not an accepted alternative")
        #expect(security.contains { $0["adminToken"] != nil })
        let description = (document.root["info"] as? [String: Any])?["description"] as? String ?? ""
        #expect(description.contains("peer credentials"))
    }

    /// Calls every documented operation on the real daemon and checks each answer against its documented schema:
    /// the status is documented, required properties are present, no property is undocumented, types and enums match.
    @Test func everyAnswerHasItsDocumentedShape() async throws {
        let document = try OpenAPIDocument.load()
        let key = "sk-ant-test-" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        let newKey = "sk-ant-test-" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        let provider = try await FakeProvider.start(configuration: .init(anthropicKeys: [key]))
        let keyhold = try KeyholdHarness()
        try keyhold.startDaemon(systemdBus: nil, extraArguments: ["--provider-base-url", "anthropic=\(provider.baseURL)"])
        let api = SchemaChecker(document: document, http: AdminHTTP(.socket(keyhold.socketPath)))

        try await api.call("GET", "/v1/health", expect: 200)
        try await api.call("GET", "/v1/plans", expect: 200)
        try await api.call("GET", "/v1/plans/{plan}", ["plan": "managed"], expect: 200)
        try await api.call("GET", "/v1/plans/{plan}", ["plan": "gold"], expect: 404)
        try await api.call("POST", "/v1/tenants", body: #"{"name":"acme","plan":"byok"}"#, expect: 201)
        try await api.call("POST", "/v1/tenants", body: #"{"name":"acme","plan":"byok"}"#, expect: 409)
        try await api.call("POST", "/v1/tenants", body: #"{"name":"globex"}"#, expect: 400)
        try await api.call("GET", "/v1/tenants", expect: 200)
        try await api.call("GET", "/v1/tenants/{tenant}", ["tenant": "nobody"], expect: 404)

        let acme = ["tenant": "acme"]
        let anthropic = ["tenant": "acme", "provider": "anthropic"]
        let set = try await api.call(
            "PUT", "/v1/tenants/{tenant}/keys/{provider}", anthropic, body: #"{"key":"\#(key)","validate":true,"skip_shape_check":false}"#,
            expect: 201
        )
        #expect((set as? [String: Any])?["version"] as? Int == 1)
        try await api.call("GET", "/v1/tenants/{tenant}", acme, expect: 200)
        try await api.call("GET", "/v1/tenants/{tenant}/keys", acme, expect: 200)
        let validation = try await api.call("POST", "/v1/tenants/{tenant}/keys/{provider}/validate", anthropic, expect: 200)
        #expect((validation as? [String: Any])?["valid"] as? Bool == true)
        try await api.call(
            "POST", "/v1/tenants/{tenant}/keys/{provider}/rotate", anthropic,
            body: #"{"key":"\#(newKey)","validate":false,"skip_shape_check":false}"#, expect: 200
        )
        try await api.call("GET", "/v1/kek", expect: 200)
        try await api.call("POST", "/v1/kek/rotate", expect: 200)
        try await api.call("POST", "/v1/kek/retire", expect: 200)
        try await api.call("DELETE", "/v1/tenants/{tenant}/keys/{provider}", anthropic, query: "?version=x", expect: 400)
        try await api.call("DELETE", "/v1/tenants/{tenant}/keys/{provider}", anthropic, query: "?version=2", expect: 200)
        try await api.call("POST", "/v1/tenants/{tenant}/egress", acme, body: #"{"destination":"pypi.org"}"#, expect: 200)
        try await api.call("POST", "/v1/tenants/{tenant}/egress", acme, body: #"{"destination":"pypi.org"}"#, expect: 409)
        try await api.call("POST", "/v1/tenants/{tenant}/egress", acme, body: #"{"destination":"10.0.0.1"}"#, expect: 400)
        try await api.call("DELETE", "/v1/tenants/{tenant}/egress", acme, query: "?destination=pypi.org", expect: 200)
        try await api.call("DELETE", "/v1/tenants/{tenant}/egress", acme, query: "?destination=pypi.org", expect: 404)
        try await api.call("DELETE", "/v1/tenants/{tenant}/egress", acme, expect: 400)
        // Secrets: on the brokered plan, for a host the tenant may reach.
        try await api.call("PUT", "/v1/tenants/{tenant}/plan", acme, body: #"{"plan":"byok-brokered"}"#, expect: 200)
        try await api.call("POST", "/v1/tenants/{tenant}/egress", acme, body: #"{"destination":"api.github.com"}"#, expect: 200)
        let github = ["tenant": "acme", "secret": "github"]
        let secret = #"{"value":"ghp_test","host":"api.github.com","env":"GITHUB_TOKEN"}"#
        try await api.call("PUT", "/v1/tenants/{tenant}/secrets/{secret}", github, body: secret, expect: 201)
        try await api.call(
            "PUT", "/v1/tenants/{tenant}/secrets/{secret}", github, body: #"{"value":"ghp_test","host":"api.github.com","header":"a b"}"#,
            expect: 400)
        try await api.call(
            "PUT", "/v1/tenants/{tenant}/secrets/{secret}", github, body: #"{"value":"ghp_test","host":"example.org"}"#, expect: 409)
        try await api.call("GET", "/v1/tenants/{tenant}/secrets", acme, expect: 200)
        try await api.call("DELETE", "/v1/tenants/{tenant}/secrets/{secret}", github, expect: 200)
        try await api.call("DELETE", "/v1/tenants/{tenant}/secrets/{secret}", github, expect: 404)
        try await api.call("DELETE", "/v1/tenants/{tenant}/egress", acme, query: "?destination=api.github.com", expect: 200)
        try await api.call("PUT", "/v1/tenants/{tenant}/plan", acme, body: #"{"plan":"managed"}"#, expect: 200)
        try await api.call("GET", "/v1/tenants/{tenant}/usage", acme, query: "?by=model", expect: 200)
        try await api.call("GET", "/v1/tenants/{tenant}/usage", acme, query: "?by=week", expect: 400)
        try await api.call("GET", "/v1/usage", expect: 200)
        try await api.call(
            "PUT", "/v1/platform/keys/{provider}", ["provider": "openai"],
            body: #"{"key":"sk-platform-test","validate":false,"skip_shape_check":false}"#,
            expect: 201
        )
        try await api.call(
            "PUT", "/v1/platform/keys/{provider}", ["provider": "google"], body: #"{"key":"AIza-x","validate":false,"skip_shape_check":false}"#,
            expect: 400)
        try await api.call("PUT", "/v1/tenants/{tenant}/alert-webhook", acme, body: #"{"url":"https://hooks.example/alerts"}"#, expect: 200)
        try await api.call("PUT", "/v1/tenants/{tenant}/alert-webhook", acme, body: #"{"url":"hooks.example"}"#, expect: 400)
        // The path's characters as the document states them (schemathesis found a control character the daemon refused).
        try await api.call("PUT", "/v1/tenants/{tenant}/alert-webhook", acme, body: #"{"url":"http://hooks.example/a%20b?x=1#f"}"#, expect: 200)
        for path in [#"\u0002"#, "%zz", "a b", "é"] {
            try await api.call("PUT", "/v1/tenants/{tenant}/alert-webhook", acme, body: #"{"url":"http://hooks.example/\#(path)"}"#, expect: 400)
        }
        try await api.call("PUT", "/v1/tenants/{tenant}/alert-webhook", acme, body: #"{"url":null}"#, expect: 200)
        try await api.call("PUT", "/v1/tenants/{tenant}/key-caps", acme, body: #"{"requests_per_minute":60,"usd_per_month":12.5}"#, expect: 200)
        try await api.call("PUT", "/v1/tenants/{tenant}/key-caps", acme, body: #"{"tokens_per_day":0}"#, expect: 400)
        try await api.call("PUT", "/v1/tenants/{tenant}/key-caps", acme, body: #"{}"#, expect: 200)
        try await api.call("POST", "/v1/tenants/{tenant}/console-link", acme, body: #"{"ttl_seconds":600}"#, expect: 503)
        try await api.call("POST", "/v1/tenants/{tenant}/suspend", acme, expect: 200)
        try await api.call("POST", "/v1/tenants/{tenant}/resume", acme, expect: 200)

        try await api.call("GET", "/v1/sandboxes", expect: 200)
        try await api.call("GET", "/v1/tenants/{tenant}/sandbox", acme, expect: 200)
        try await api.call("POST", "/v1/tenants/{tenant}/sandbox/start", acme, expect: 503)
        // Nothing runs: the tenant is already stopped, as asked.
        try await api.call("POST", "/v1/tenants/{tenant}/sandbox/stop", acme, expect: 200)
        try await api.call("POST", "/v1/tenants/{tenant}/sandbox/restart", acme, expect: 503)
        try await api.call("GET", "/v1/tenants/{tenant}/sandbox/logs", acme, query: "?lines=5", expect: 404)

        let audit = try await api.call("GET", "/v1/audit", query: "?tenant=acme&action=key&since=1h&limit=50", expect: 200)
        let actions = (audit as? [[String: Any]] ?? []).compactMap { ($0["event"] as? [String: Any])?["action"] as? String }
        #expect(Set(actions) == ["key.set", "key.validate", "key.rotate", "key.retire", "key.revoke"], "\(actions)")
        try await api.call("GET", "/v1/audit", query: "?since=yesterday", expect: 400)

        try await api.call("POST", "/v1/admin-tokens", body: #"{"name":"ci"}"#, expect: 201)
        try await api.call("GET", "/v1/admin-tokens", expect: 200)
        try await api.call("DELETE", "/v1/admin-tokens/{name}", ["name": "ci"], expect: 204)
        try await api.call("DELETE", "/v1/admin-tokens/{name}", ["name": "ci"], expect: 404)
        try await api.call("GET", "/v1/tenants/{tenant}/audit", acme, expect: 200)
        try await api.call("GET", "/v1/tenants/{tenant}/audit", ["tenant": "nobody"], expect: 404)
        try await api.call("GET", "/v1/tenants/{tenant}/receipt", acme, expect: 200)
        try await api.call("DELETE", "/v1/tenants/{tenant}", acme, expect: 204)

        let hosts = try await api.call("GET", "/v1/hosts", expect: 200)
        let host = try #require((hosts as? [[String: Any]])?.first?["id"] as? String)
        try await api.call("DELETE", "/v1/hosts/{host}", ["host": host], expect: 409)
        try await api.call("DELETE", "/v1/hosts/{host}", ["host": "nowhere"], expect: 404)
        try await api.call("POST", "/v1/hosts/{host}/drain", ["host": "nowhere"], expect: 404)
        try await api.call("POST", "/v1/hosts/{host}/drain", ["host": host], expect: 200)
        try await api.call("POST", "/v1/hosts/{host}/activate", ["host": host], expect: 204)
        try await api.call("POST", "/v1/hosts/{host}/activate", ["host": "nowhere"], expect: 404)

        for route in document.routes.subtracting(api.exercised).sorted() { Issue.record("\(route) was not exercised by this test") }
        for answer in api.answers {
            #expect(!answer.contains(key) && !answer.contains(newKey), "an answer contains the key")
        }
        #expect(keyhold.stopDaemon() == 0)
        #expect(!keyhold.daemonLog.contains(key) && !keyhold.daemonLog.contains(newKey))
        try await provider.stop()
    }
}

/// Calls the real daemon and checks each answer against `deploy/openapi.yaml`.
final class SchemaChecker {
    let document: OpenAPIDocument
    let http: AdminHTTP
    private(set) var exercised: Set<String> = []
    /// Every answer body, for the key search.
    private(set) var answers: [String] = []

    init(document: OpenAPIDocument, http: AdminHTTP) {
        self.document = document
        self.http = http
    }

    /// Sends `METHOD template` (with `parameters` filled in), expects `status`, and checks the answer's shape.
    /// - Returns: the answer's JSON.
    @discardableResult
    func call(
        _ method: String, _ template: String, _ parameters: [String: String] = [:], query: String = "", body: String? = nil, expect status: Int,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> Any? {
        let route = "\(method) \(template)"
        exercised.insert(route)
        var path = template
        for (name, value) in parameters { path = path.replacingOccurrences(of: "{\(name)}", with: value) }
        let answer = try await http.send(method, path + query, body: body)
        answers.append(answer.text)
        #expect(answer.status == status, "\(method) \(path)\(query) answered \(answer.status): \(answer.text)", sourceLocation: sourceLocation)
        guard let operation = document.operation(route) else {
            Issue.record("\(route) is not in deploy/openapi.yaml", sourceLocation: sourceLocation)
            return answer.json
        }
        guard let documented = document.response(of: operation, status: answer.status) else {
            Issue.record("\(route) answered \(answer.status), which deploy/openapi.yaml does not document", sourceLocation: sourceLocation)
            return answer.json
        }
        guard let schema = document.jsonSchema(of: documented) else {
            #expect(answer.body.isEmpty, "\(route) \(answer.status) is documented without a body but has one", sourceLocation: sourceLocation)
            return nil
        }
        guard let json = answer.json else {
            Issue.record("\(route) \(answer.status) answered with no JSON: \(answer.text)", sourceLocation: sourceLocation)
            return nil
        }
        for problem in document.problems(of: json, against: schema, at: "") {
            Issue.record("\(route) \(answer.status): \(problem)", sourceLocation: sourceLocation)
        }
        return json
    }
}

/// `deploy/openapi.yaml`, parsed with Yams.
struct OpenAPIDocument {
    let root: [String: Any]

    static let methods: Set<String> = ["get", "put", "post", "delete", "patch", "head", "options"]

    static func load() throws -> OpenAPIDocument {
        let text = try String(contentsOfFile: BuildProducts.packageRoot + "/deploy/openapi.yaml", encoding: .utf8)
        guard let root = try Yams.load(yaml: text) as? [String: Any] else { throw HarnessError("deploy/openapi.yaml is not a YAML mapping") }
        return OpenAPIDocument(root: root)
    }

    var paths: [String: Any] { root["paths"] as? [String: Any] ?? [:] }

    /// Every documented operation, as `METHOD /path`.
    var routes: Set<String> {
        var result: Set<String> = []
        for (path, item) in paths {
            for method in (item as? [String: Any] ?? [:]).keys where Self.methods.contains(method) { result.insert("\(method.uppercased()) \(path)") }
        }
        return result
    }

    /// The operation object of `METHOD /path`.
    func operation(_ route: String) -> [String: Any]? {
        let parts = route.split(separator: " ", maxSplits: 1).map(String.init)
        guard parts.count == 2 else { return nil }
        return (paths[parts[1]] as? [String: Any])?[parts[0].lowercased()] as? [String: Any]
    }

    /// The documented response for `status` (its `$ref` followed), if any.
    func response(of operation: [String: Any], status: Int) -> [String: Any]? {
        let responses = operation["responses"] as? [String: Any] ?? [:]
        return resolve(responses[String(status)] ?? responses["default"])
    }

    /// The JSON schema of a response, nil when it has no body.
    func jsonSchema(of response: [String: Any]) -> [String: Any]? {
        let content = response["content"] as? [String: Any]
        return resolve((content?["application/json"] as? [String: Any])?["schema"])
    }

    /// Follows `$ref`s such as `#/components/schemas/Tenant`.
    func resolve(_ node: Any?) -> [String: Any]? {
        guard var object = node as? [String: Any] else { return nil }
        var hops = 0
        while let reference = object["$ref"] as? String, hops < 16 {
            var current: Any? = root
            for part in reference.dropFirst(2).split(separator: "/") { current = (current as? [String: Any])?[String(part)] }
            guard let next = current as? [String: Any] else { return nil }
            object = next
            hops += 1
        }
        return object
    }

    /// What is wrong with `value` against `schema`: a wrong JSON type, a missing required property, an undocumented
    /// property, a value outside an enum.
    func problems(of value: Any, against schema: [String: Any], at path: String) -> [String] {
        let location = path.isEmpty ? "the body" : "'\(path)'"
        if let type = schema["type"] as? String, !Self.matches(value, type: type) {
            return ["\(location) is not of type \(type): \(value)"]
        }
        if let allowed = schema["enum"] as? [Any], !allowed.contains(where: { "\($0)" == "\(value)" }) {
            return ["\(location) is \(value), not one of \(allowed)"]
        }
        if let constant = schema["const"], "\(constant)" != "\(value)" {
            return ["\(location) is \(value), not \(constant)"]
        }
        var found: [String] = []
        if let object = value as? [String: Any] {
            let properties = schema["properties"] as? [String: Any] ?? [:]
            for name in schema["required"] as? [String] ?? [] where object[name] == nil {
                found.append("\(location) lacks the required property '\(name)'")
            }
            let additional = resolve(schema["additionalProperties"])
            for (name, child) in object {
                let childPath = path.isEmpty ? name : "\(path).\(name)"
                if let property = resolve(properties[name]) {
                    found += problems(of: child, against: property, at: childPath)
                } else if let additional {
                    found += problems(of: child, against: additional, at: childPath)
                } else {
                    found.append("'\(childPath)' is not documented")
                }
            }
        } else if let array = value as? [Any], let items = resolve(schema["items"]) {
            for (index, element) in array.enumerated() { found += problems(of: element, against: items, at: "\(path)[\(index)]") }
        }
        return found
    }

    static func matches(_ value: Any, type: String) -> Bool {
        switch type {
        case "object": value is [String: Any]
        case "array": value is [Any]
        case "string": value is String
        case "boolean": value is Bool || value is NSNumber
        case "integer": value is Int || (value as? NSNumber).map { $0.doubleValue.rounded() == $0.doubleValue } ?? false
        case "number": value is Int || value is Double || value is NSNumber
        default: true
        }
    }
}
