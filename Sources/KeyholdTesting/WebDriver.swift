import AsyncHTTPClient
public import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1

/// A small W3C WebDriver client (JSON over HTTP) for driving Debian's headless Chromium through `chromedriver`.
///
/// `ChromeDriver.start()` runs the driver on a free loopback port; `session()` opens a browser. Nothing is downloaded:
/// both come from the `chromium` and `chromium-driver` packages.
public final class ChromeDriver {
    /// Where Debian installs the two.
    public static let chromiumPath = "/usr/bin/chromium"
    public static let driverPath = "/usr/bin/chromedriver"

    /// Whether both are installed.
    public static var isInstalled: Bool {
        FileManager.default.isExecutableFile(atPath: chromiumPath) && FileManager.default.isExecutableFile(atPath: driverPath)
    }

    public let baseURL: String
    /// The driver process this object started (the only one it ever stops, by this pid).
    private let process: Process

    private init(baseURL: String, process: Process) {
        self.baseURL = baseURL
        self.process = process
    }

    /// Starts `chromedriver` on a free loopback port and waits (at most 20 s) until it answers.
    /// - Parameter log: where the driver's own log goes.
    public static func start(log: String) async throws -> ChromeDriver {
        let port = try LoopbackPort.free()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: driverPath)
        process.arguments = ["--port=\(port)", "--allowed-ips=127.0.0.1", "--log-path=\(log)"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let driver = ChromeDriver(baseURL: "http://127.0.0.1:\(port)", process: process)
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            if let value = try? await WebDriverSession.request(driver.baseURL, "GET", "/status", nil) as? [String: Any],
                value["ready"] as? Bool == true
            {
                return driver
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        driver.stop()
        throw WebDriverError("chromedriver did not answer on \(driver.baseURL) within 20 s (see \(log))")
    }

    /// Opens a headless Chromium, phone-sized unless told otherwise.
    public func session(width: Int = 390, height: Int = 844) async throws -> WebDriverSession {
        let capabilities: [String: Any] = [
            "capabilities": [
                "alwaysMatch": [
                    "browserName": "chrome",
                    "goog:chromeOptions": [
                        "binary": Self.chromiumPath,
                        "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=\(width),\(height)"],
                    ] as [String: Any],
                ] as [String: Any]
            ]
        ]
        let answer = try await WebDriverSession.request(baseURL, "POST", "/session", capabilities)
        guard let value = answer as? [String: Any], let id = value["sessionId"] as? String else {
            throw WebDriverError("chromedriver opened no session: \(String(describing: answer).prefix(300))")
        }
        return WebDriverSession(driverURL: baseURL, id: id)
    }

    /// Stops the driver this object started (and with it any browser it still runs).
    public func stop() {
        guard process.isRunning else { return }
        // chromedriver may ignore SIGTERM while it holds a session: give it 3 s, then SIGKILL (this pid only).
        kill(process.processIdentifier, SIGTERM)
        let deadline = Date().addingTimeInterval(3)
        while process.isRunning && Date() < deadline { usleep(50_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }
}

/// One browser session.
public struct WebDriverSession: Sendable {
    let driverURL: String
    public let id: String

    /// The element id key of the W3C protocol.
    static let elementKey = "element-6066-11e4-a52e-4f735466cecf"

    public func navigate(_ url: String) async throws { _ = try await command("POST", "/url", ["url": url]) }

    public func currentURL() async throws -> String { try await command("GET", "/url") as? String ?? "" }

    /// The page's HTML as the browser holds it now.
    public func source() async throws -> String { try await command("GET", "/source") as? String ?? "" }

    /// The first element matching a CSS selector.
    public func element(_ selector: String) async throws -> String {
        let value = try await command("POST", "/element", ["using": "css selector", "value": selector])
        guard let object = value as? [String: Any], let id = object[Self.elementKey] as? String else {
            throw WebDriverError("no element matches '\(selector)'")
        }
        return id
    }

    /// Whether an element matches a CSS selector now.
    public func exists(_ selector: String) async throws -> Bool {
        let value = try await command("POST", "/elements", ["using": "css selector", "value": selector])
        return !((value as? [Any]) ?? []).isEmpty
    }

    public func type(_ text: String, into selector: String) async throws {
        _ = try await command("POST", "/element/\(try await element(selector))/value", ["text": text])
    }

    public func click(_ selector: String) async throws { _ = try await command("POST", "/element/\(try await element(selector))/click", [:]) }

    public func text(_ selector: String) async throws -> String {
        try await command("GET", "/element/\(try await element(selector))/text") as? String ?? ""
    }

    /// The value of an input (what is typed in it now).
    public func property(_ name: String, of selector: String) async throws -> String? {
        try await command("GET", "/element/\(try await element(selector))/property/\(name)") as? String
    }

    /// Accepts a `confirm()` dialog.
    public func acceptAlert() async throws { _ = try await command("POST", "/alert/accept", [:]) }

    /// The browser's cookies as WebDriver reports them (name, value, httpOnly, sameSite, secure...).
    public func cookies() async throws -> [[String: Any]] { (try await command("GET", "/cookie") as? [[String: Any]]) ?? [] }

    /// A PNG of the viewport.
    public func screenshot() async throws -> Data {
        guard let text = try await command("GET", "/screenshot") as? String, let data = Data(base64Encoded: text) else {
            throw WebDriverError("the screenshot was not base64 PNG")
        }
        return data
    }

    /// Closes the browser.
    public func delete() async throws { _ = try await Self.request(driverURL, "DELETE", "/session/\(id)", nil) }

    /// Polls `check` every 100 ms until it returns true, at most `timeout` seconds.
    public func wait(_ what: String, timeout: Double = 30, _ check: () async throws -> Bool) async throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if (try? await check()) == true { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw WebDriverError("waited \(Int(timeout)) s for \(what); the page was at \((try? await currentURL()) ?? "?")")
    }

    private func command(_ method: String, _ path: String, _ body: [String: Any]? = nil) async throws -> Any? {
        try await Self.request(driverURL, method, "/session/\(id)\(path)", body)
    }

    /// Sends one command and returns its `value`; a WebDriver error becomes a `WebDriverError`.
    static func request(_ base: String, _ method: String, _ path: String, _ body: [String: Any]?) async throws -> Any? {
        var request = HTTPClientRequest(url: base + path)
        request.method = .init(rawValue: method)
        if let body {
            request.headers.add(name: "content-type", value: "application/json")
            request.body = .bytes(ByteBuffer(data: try JSONSerialization.data(withJSONObject: body)))
        }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
        let data = Data(buffer: try await response.body.collect(upTo: 64 << 20))
        let object = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]) as? [String: Any]
        let value = object?["value"]
        guard response.status.code < 300 else {
            let message = ((value as? [String: Any])?["message"] as? String) ?? String(decoding: data.prefix(300), as: UTF8.self)
            throw WebDriverError("WebDriver \(method) \(path) answered \(response.status.code): \(message.prefix(400))")
        }
        return value is NSNull ? nil : value
    }
}

/// A WebDriver command that failed, with the driver's message.
public struct WebDriverError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
