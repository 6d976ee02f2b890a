// Testing comes with the toolchain's shared runtime only: a release build with the static one (deploy/package.sh
// builds every target) compiles this module without the trait.
#if canImport(Testing)
public import Testing

/// Runs each test of a suite, and every task it starts in structured concurrency, on threads of its own instead of
/// Swift concurrency's shared pool (see `OwnThreadExecutor`).
///
/// Give it to every suite whose tests wait without `await`: for `keyhold` and `keyholdd` processes, for systemd's
/// jobs, for a sandbox's log, for the shared PostgreSQL server that the first test to need it starts. Then the
/// suites run in parallel without starving each other, or the suites left on the shared pool (pure computation).
public struct OffCooperativePoolTrait: SuiteTrait, TestTrait, TestScoping {
    public var isRecursive: Bool { true }

    /// The scope is each test case's: a suite's own scope would cover only the tasks the runner starts inside it.
    public func scopeProvider(for test: Test, testCase: Test.Case?) -> Self? {
        testCase == nil ? nil : self
    }

    public func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        try await withTaskExecutorPreference(OwnThreadExecutor.shared) {
            try await function()
        }
    }
}

extension Trait where Self == OffCooperativePoolTrait {
    /// Runs the tests on threads of their own, not on Swift concurrency's shared pool: for tests that block.
    public static var offCooperativePool: Self { OffCooperativePoolTrait() }
}
#endif
