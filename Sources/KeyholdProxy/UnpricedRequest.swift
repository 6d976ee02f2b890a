import Foundation
import NIOCore
import NIOHTTP1

/// What a request on the platform's key may not carry: anything whose price the proxy cannot bound before the call
/// runs. The reservation is what keeps caps from being overrun, so it must be an upper bound of the charge:
///
/// - inputs given by reference (an image or a document by URL, a file by id): the provider fetches them and charges
///   their tokens, while the body holds only a few bytes of address (inline `data:` URLs and base64 are counted);
/// - server-side tools (web search, file search, code execution, MCP servers, image generation): charged per call
///   and per fetched page on top of the tokens;
/// - price-changing options: a service tier other than the standard one, audio output, and `anthropic-beta` (betas
///   change what is billed, such as long-context pricing).
///
/// Everything else passes untouched. A refusal names the field, in the provider's error shape, with what to do.
enum UnpricedRequest {
    /// The refused field (a path such as `messages[0].content[1].image_url.url`) and why; nil when there is none.
    struct Finding: Equatable {
        var field: String
        var why: String
    }

    /// Checks a request's headers and body.
    static func first(in body: ByteBuffer, headers: HTTPHeaders, format: WireFormat, isResponses: Bool) -> Finding? {
        if format == .anthropic, headers.contains(name: "anthropic-beta") {
            return Finding(
                field: "anthropic-beta",
                why: "a beta can change what a request is billed, which the metered plan cannot price; send it without the header")
        }
        let bytes = Array(body.readableBytesView)
        // Most requests carry none of these keys: they pass on a byte scan, without a second parse.
        guard markers.contains(where: { contains(bytes, $0) }),
            let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any]
        else { return nil }
        if let finding = topLevel(object, format: format) { return finding }
        if let tools = object["tools"] as? [Any], let finding = serverTool(in: tools, format: format) { return finding }
        let roots = format == .anthropic ? ["messages", "system"] : isResponses ? ["input"] : ["messages"]
        for root in roots {
            if let value = object[root], let finding = reference(in: value, path: root, format: format) { return finding }
        }
        return nil
    }

    /// A key's name ends in a quote: `url"` is in `"url"`, `"image_url"` and `"file_url"`, not in text mentioning a URL.
    static let markers = [
        "url\"", "file_id\"", "\"tools\"", "\"service_tier\"", "\"modalities\"", "\"audio\"", "\"web_search_options\"", "\"mcp_servers\"",
        "\"container\"",
    ].map { Array($0.utf8) }

    private static func contains(_ bytes: [UInt8], _ needle: [UInt8]) -> Bool {
        guard bytes.count >= needle.count, let first = needle.first else { return false }
        var index = 0
        while index <= bytes.count - needle.count {
            if bytes[index] == first, bytes[index..<index + needle.count].elementsEqual(needle) { return true }
            index += 1
        }
        return false
    }

    private static func topLevel(_ object: [String: Any], format: WireFormat) -> Finding? {
        if let tier = object["service_tier"] as? String {
            let standard: Set<String> = format == .anthropic ? ["auto", "standard_only"] : ["auto", "default"]
            if !standard.contains(tier) {
                return Finding(field: "service_tier", why: "the '\(tier.prefix(40))' tier is priced apart from the plan's prices; omit service_tier")
            }
        }
        for (key, why) in [
            ("web_search_options", "web search is charged per call, beyond the plan's token prices"),
            ("mcp_servers", "remote MCP tools run on the provider, charged beyond the plan's token prices"),
            ("container", "code execution is charged per container hour, beyond the plan's token prices"),
            ("audio", "audio output is priced per audio token, apart from the plan's prices"),
        ] where object[key] != nil && !(object[key] is NSNull) {
            return Finding(field: key, why: why + "; send the request without it")
        }
        if let modalities = object["modalities"] as? [String], modalities.contains("audio") {
            return Finding(field: "modalities", why: "audio output is priced per audio token, apart from the plan's prices; ask for text only")
        }
        return nil
    }

    /// A tool the provider runs itself. Function (and custom) tools run in the agent and are plain tokens.
    private static func serverTool(in tools: [Any], format: WireFormat) -> Finding? {
        for (index, tool) in tools.enumerated() {
            guard let type = (tool as? [String: Any])?["type"] as? String else { continue }
            let serverSide =
                format == .anthropic
                ? ["web_search", "web_fetch", "code_execution", "mcp"].contains { type.hasPrefix($0) }
                : !["function", "custom"].contains(type)
            if serverSide {
                return Finding(
                    field: "tools[\(index)].type",
                    why:
                        "'\(type.prefix(40))' runs on the provider and is charged beyond the plan's token prices; give the agent a function tool instead"
                )
            }
        }
        return nil
    }

    /// An input given by reference anywhere under the conversation.
    private static func reference(in value: Any, path: String, format: WireFormat) -> Finding? {
        if let list = value as? [Any] {
            for (index, item) in list.enumerated() {
                if let finding = reference(in: item, path: "\(path)[\(index)]", format: format) { return finding }
            }
            return nil
        }
        guard let object = value as? [String: Any] else { return nil }
        let byReference = "is fetched by the provider and priced only after, so the reservation cannot cover it; send the content inline (base64)"
        if format == .anthropic {
            if let source = object["source"] as? [String: Any], let type = source["type"] as? String, type == "url" || type == "file" {
                return Finding(field: "\(path).source", why: "a \(type) source " + byReference)
            }
        } else {
            if let url = (object["image_url"] as? String) ?? ((object["image_url"] as? [String: Any])?["url"] as? String), !url.hasPrefix("data:") {
                return Finding(field: "\(path).image_url", why: "an image by URL " + byReference)
            }
            for key in ["file_url", "file_id"] where object[key] is String {
                return Finding(field: "\(path).\(key)", why: "a file by reference " + byReference)
            }
        }
        for key in object.keys.sorted() {
            if let finding = reference(in: object[key]!, path: "\(path).\(key)", format: format) { return finding }
        }
        return nil
    }
}
