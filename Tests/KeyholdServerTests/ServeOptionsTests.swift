import Foundation
import KeyholdTestTraits
import KeyholdTesting
import Testing

/// `keyhold serve` refuses listen addresses it cannot honour, with one line naming the option, before anything
/// listens (it used to skip `--proxy localhost` silently and never report ready).
@Suite(.offCooperativePool) struct ServeOptionsTests {
    @Test func badListenAddressesAreRefusedBeforeAnythingListens() throws {
        let keyhold = try KeyholdHarness()
        let cases: [([String], String)] = [
            (["--proxy", "localhost"], "--proxy 'localhost' must be HOST:PORT"),
            (["--proxy", "127.0.0.1:0"], "--proxy '127.0.0.1:0' must be HOST:PORT with a port from 1 to 65535"),
            (["--proxy", ":8787"], "--proxy ':8787' must be HOST:PORT"),
            (["--proxy", "0.0.0.0:8787"], "--proxy must be a loopback address"),
            (["--proxy", "127.evil.example:8787"], "--proxy must be a loopback address"),
            (["--tcp", "10.0.0.1:8700"], "--tcp must be a loopback address"),
        ]
        for (arguments, error) in cases {
            let result = try ProcessRunner.run(
                "/usr/bin/timeout",
                ["20", BuildProducts.keyhold, "serve", "--no-systemd"] + keyhold.globalArguments + ["--plans", BuildProducts.plansDirectory]
                    + arguments,
                environment: keyhold.environment)
            #expect(result.status != 0 && result.status != 124 && result.stderr.contains(error), "\(arguments): \(result.stderr)")
            #expect(result.stderr.split(separator: "\n").count == 1, "one line: \(result.stderr)")
        }
        // Beyond loopback only when asked for.
        let port = try LoopbackPort.free()
        try keyhold.startDaemon(systemdBus: nil, extraArguments: ["--proxy", "0.0.0.0:\(port)", "--proxy-public"])
        #expect(keyhold.stopDaemon() == 0)
    }
}
