import CSystemd
import Foundation
import KeyholdOrchestration
import ServiceLifecycle

/// Tells systemd about the daemon's state when it runs as `Type=notify` (`$NOTIFY_SOCKET` set).
public enum SystemdNotifier {
    /// Sends `state` (e.g. `READY=1`). The corresponding C function is `sd_notify`; a no-op without `$NOTIFY_SOCKET`.
    public static func notify(_ state: String) {
        _ = sd_notify(0, state)
    }

    /// The watchdog interval systemd asked for (`WatchdogSec=`), if any. The corresponding C function is `sd_watchdog_enabled`.
    static var watchdogInterval: Duration? {
        var usec: UInt64 = 0
        guard sd_watchdog_enabled(0, &usec) > 0, usec > 0 else { return nil }
        return .microseconds(Int64(usec))
    }
}

/// Pings systemd's watchdog at half its interval while the daemon runs.
struct WatchdogService: Service {
    func run() async throws {
        guard let interval = SystemdNotifier.watchdogInterval else { return }
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            SystemdNotifier.notify("WATCHDOG=1")
            try? await Task.sleep(for: interval / 2)
        }
    }
}
