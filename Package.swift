// swift-tools-version: 6.1
import PackageDescription

/// `KEYHOLD_FUZZ=1`: Keyhold's own modules are built for libFuzzer with AddressSanitizer, and `keyhold-fuzz` runs
/// libFuzzer's driver (deploy/fuzz.sh). Dependencies are built as always.
let fuzzing = Context.environment["KEYHOLD_FUZZ"] != nil
let fuzzSanitizers = "-sanitize=fuzzer,address"

let swiftSettings: [SwiftSetting] =
    [
        .enableUpcomingFeature("ExistentialAny"),
        .enableUpcomingFeature("MemberImportVisibility"),
    ] + (fuzzing ? [.unsafeFlags([fuzzSanitizers]), .define("KEYHOLD_FUZZ")] : [])

let package = Package(
    name: "keyhold",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "keyhold", targets: ["keyhold"]),
        .executable(name: "keyholdd", targets: ["keyholdd"]),
        .executable(name: "keyhold-exec", targets: ["keyhold-exec"]),
        .executable(name: "keyhold-mount", targets: ["keyhold-mount"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.0"),
        .package(url: "https://github.com/apple/swift-crypto", "3.0.0"..<"5.0.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.0.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.21.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.0.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.24.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.70.0"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.0.0"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.20.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.30.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.1.0"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.1.1"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.10.0"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.3.0"),
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CSystemd",
            pkgConfig: "libsystemd",
            providers: [.apt(["libsystemd-dev"])]
        ),
        .systemLibrary(name: "CMountNamespace"),
        .systemLibrary(name: "CFileStatus"),
        .systemLibrary(name: "CCloexecPipe"),
        .systemLibrary(
            name: "CSeccomp",
            pkgConfig: "libseccomp",
            providers: [.apt(["libseccomp-dev"])]
        ),
        .target(
            name: "KeyholdCore",
            dependencies: [
                .product(name: "Yams", package: "Yams"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "KeyholdVault",
            dependencies: [
                "KeyholdCore",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "KeyholdStore",
            dependencies: [
                "KeyholdCore",
                "KeyholdVault",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "KeyholdSandbox",
            dependencies: [
                "KeyholdCore",
                "KeyholdExecPayload",
                "CSystemd",
                "CSeccomp",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "KeyholdEgress",
            dependencies: [
                "KeyholdCore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "KeyholdProxy",
            dependencies: [
                "KeyholdCore",
                "KeyholdVault",
                "KeyholdStore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOExtras", package: "swift-nio-extras"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "KeyholdClient",
            dependencies: [
                "KeyholdCore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "KeyholdOrchestration",
            dependencies: [
                "KeyholdProxy",
                "KeyholdEgress",
                "KeyholdCore",
                "KeyholdVault",
                "KeyholdStore",
                "KeyholdSandbox",
                "CFileStatus",
                "CCloexecPipe",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "KeyholdServer",
            dependencies: [
                "KeyholdClient",
                "KeyholdOrchestration",
                "KeyholdProxy",
                "KeyholdEgress",
                "KeyholdCore",
                "KeyholdVault",
                "KeyholdStore",
                "KeyholdSandbox",
                "CSystemd",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "KeyholdCommandLine",
            dependencies: ["KeyholdCore", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: swiftSettings
        ),
        // The client: what it links is what an admin's `keyhold tenant list` loads (no daemon, store or HTTP server).
        .executableTarget(
            name: "keyhold",
            dependencies: [
                "KeyholdCommandLine", "KeyholdClient", "KeyholdCore", "KeyholdVault",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        // The daemon and the commands that own the state directory, which `keyhold` hands over (DaemonCommand).
        .executableTarget(
            name: "keyholdd",
            dependencies: [
                "KeyholdCommandLine", "KeyholdCore", "KeyholdEgress", "KeyholdVault", "KeyholdStore", "KeyholdSandbox", "KeyholdClient",
                "KeyholdOrchestration", "KeyholdServer", "KeyholdProxy",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "KeyholdExecPayload",
            dependencies: ["CSeccomp"],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "keyhold-exec",
            dependencies: ["CSeccomp", "KeyholdExecPayload"],
            swiftSettings: swiftSettings
        ),
        .target(name: "CLibFuzzer"),
        .executableTarget(
            name: "keyhold-fuzz",
            dependencies: ["KeyholdCore", "KeyholdEgress", "KeyholdExecPayload", "KeyholdProxy", "CLibFuzzer"],
            swiftSettings: swiftSettings,
            // lld lets the executable's own main (SwiftPM's `--defsym main=`) stand in for libFuzzer's.
            linkerSettings: fuzzing ? [.unsafeFlags([fuzzSanitizers, "-use-ld=lld"])] : []
        ),
        .executableTarget(
            name: "keyhold-mount",
            dependencies: ["CMountNamespace"],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "keyhold-bench-sandbox",
            dependencies: [
                "BenchmarkSupport",
                "KeyholdCore", "KeyholdSandbox", "KeyholdClient", "KeyholdOrchestration", "KeyholdServer", "KeyholdTesting",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Benchmarks/SandboxStart",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "keyhold-bench-proxy",
            dependencies: [
                "BenchmarkSupport",
                "KeyholdCore", "KeyholdStore", "KeyholdClient", "KeyholdOrchestration", "KeyholdServer", "KeyholdTesting",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Benchmarks/ProxyThroughput",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "keyhold-bench-rotation",
            dependencies: [
                "BenchmarkSupport",
                "KeyholdCore", "KeyholdSandbox", "KeyholdClient", "KeyholdOrchestration", "KeyholdServer", "KeyholdStore", "KeyholdTesting",
                "KeyholdVault",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Benchmarks/Rotation",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "keyhold-bench-fleet",
            dependencies: [
                "BenchmarkSupport", "KeyholdCore", "KeyholdSandbox", "KeyholdClient", "KeyholdOrchestration", "KeyholdServer", "KeyholdStore",
                "KeyholdTesting",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Benchmarks/Fleet",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "keyhold-bench-keyhealth",
            dependencies: [
                "BenchmarkSupport", "KeyholdCore", "KeyholdClient", "KeyholdOrchestration", "KeyholdServer", "KeyholdStore", "KeyholdTesting",
                "KeyholdVault",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Benchmarks/KeyHealth",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "keyhold-bench-console",
            dependencies: [
                "BenchmarkSupport", "KeyholdCore", "KeyholdClient", "KeyholdOrchestration", "KeyholdServer", "KeyholdStore", "KeyholdTesting",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Benchmarks/Console",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "keyhold-bench-store",
            dependencies: [
                "BenchmarkSupport", "KeyholdCore", "KeyholdStore", "KeyholdTesting",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Benchmarks/Store",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "keyhold-fake-provider",
            dependencies: ["KeyholdTesting", .product(name: "NIOSSL", package: "swift-nio-ssl")],
            path: "Tests/FakeProviderServer",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "keyhold-bench-boundary",
            dependencies: [
                "BenchmarkSupport", "KeyholdSandbox", "KeyholdStore", "KeyholdTesting",
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Benchmarks/Boundary",
            exclude: ["client.py"],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "keyhold-bench-cli",
            dependencies: ["BenchmarkSupport", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Benchmarks/CLIStart",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "BenchmarkSupport",
            dependencies: [.product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Benchmarks/Support",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "KeyholdTesting",
            dependencies: [
                "KeyholdCore",
                "KeyholdSandbox",
                "KeyholdClient", "KeyholdOrchestration", "KeyholdServer",
                "KeyholdStore",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // Test traits shared by the test targets (not by the benchmarks, which link KeyholdTesting without Testing).
        .target(
            name: "KeyholdTestTraits",
            path: "Tests/KeyholdTestTraits",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "KeyholdCoreTests",
            dependencies: ["KeyholdCore"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "KeyholdEgressTests",
            dependencies: ["KeyholdEgress", "KeyholdCore"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "KeyholdProxyTests",
            dependencies: [
                "KeyholdProxy", "KeyholdCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "KeyholdVaultTests",
            dependencies: ["KeyholdVault", "KeyholdCore"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "KeyholdStoreTests",
            dependencies: [
                "KeyholdStore", "KeyholdVault", "KeyholdCore", "KeyholdTesting", "KeyholdTestTraits",
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "KeyholdSandboxTests",
            dependencies: ["KeyholdSandbox", "KeyholdCore", "KeyholdTesting", "KeyholdTestTraits"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "KeyholdServerTests",
            dependencies: [
                "KeyholdClient", "KeyholdOrchestration", "KeyholdServer", "KeyholdStore", "KeyholdVault", "KeyholdCore", "KeyholdSandbox",
                "KeyholdTesting", "KeyholdTestTraits",
                "KeyholdProxy",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            exclude: ["Agents"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "KeyholdTestingTests",
            dependencies: [
                "KeyholdTesting",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
