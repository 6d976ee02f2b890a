import Foundation

/// The demo's plans: the shipped ones, plus a managed plan with a cap small enough to be reached within the demo.
enum DemoPlans {
    /// The plan the demo's managed tenant is on.
    static let managedPlan = "managed-demo"

    static let managedYAML = """
        # The demo's managed plan: the shipped Managed plan's way of working, with a cap of 3 requests a minute so that
        # the demo's agent reaches it on its fourth call.
        id: managed-demo
        name: Managed (demo caps)
        price_usd_per_month: 39
        kind: managed
        models:
          - id: claude-sonnet-4-5
            provider: anthropic
            input_usd_per_mtok: 3.00
            cached_input_usd_per_mtok: 0.30
            cache_write_usd_per_mtok: 3.75
            output_usd_per_mtok: 15.00
        caps:
          tokens_per_day: 2000000
          tokens_per_month: 20000000
          requests_per_minute: 3
          usd_per_month: 25
          default_max_tokens: 1024
        sandbox:
          profile: strict
          memory_max: 256M
          cpu_quota_percent: 50
          tasks_max: 64

        """

    /// Copies the shipped plans into `directory` and adds the demo's managed plan.
    /// - Returns: `directory`.
    static func write(shippedPlans: String, into directory: String) throws -> String {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        for name in try FileManager.default.contentsOfDirectory(atPath: shippedPlans) where name.hasSuffix(".yaml") {
            try FileManager.default.copyItem(atPath: shippedPlans + "/" + name, toPath: directory + "/" + name)
        }
        try managedYAML.write(toFile: directory + "/\(managedPlan).yaml", atomically: true, encoding: .utf8)
        return directory
    }
}
