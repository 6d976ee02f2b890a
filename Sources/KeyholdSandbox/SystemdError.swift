public import KeyholdCore

/// An error talking to systemd, with a message that says what to do next.
public struct SystemdError: UserFacingError, Sendable, Equatable {
    /// What kind of failure this is.
    public enum Code: String, Sendable, Equatable {
        /// The bus could not be reached (no socket, connection refused or dropped twice).
        case unreachable
        /// systemd ran the job but it did not finish with `done` (for example `failed`).
        case jobFailed
        /// A D-Bus call returned an error (for example `Cannot set property`).
        case callFailed
        /// A job or call did not finish before the deadline.
        case timeout
        /// A reply did not have the expected shape.
        case protocolError
        /// Booting or stopping a private systemd failed.
        case bootFailed
        /// A sandbox's namespace could not be entered or set up (its network boundary).
        case namespace
    }

    /// The kind of failure.
    public var code: Code
    /// A sentence describing what failed and what to do next.
    public var message: String
    /// The D-Bus error name (`org.freedesktop.systemd1.NoSuchUnit`, `System.Error.ENOENT`...), if any.
    public var busErrorName: String?
    /// The D-Bus error message, if any.
    public var busErrorMessage: String?
    /// The positive errno value sd-bus returned, if any.
    public var errno: Int32?

    /// Creates an error.
    public init(
        code: Code, message: String, busErrorName: String? = nil, busErrorMessage: String? = nil,
        errno: Int32? = nil
    ) {
        self.code = code
        self.message = message
        self.busErrorName = busErrorName
        self.busErrorMessage = busErrorMessage
        self.errno = errno
    }

    /// The message followed by the D-Bus error, when there is one.
    public var description: String {
        var text = "systemd \(code.rawValue): \(message)"
        if let busErrorName {
            text += " [\(busErrorName)"
            if let busErrorMessage, !busErrorMessage.isEmpty { text += ": \(busErrorMessage)" }
            text += "]"
        } else if let busErrorMessage, !busErrorMessage.isEmpty {
            text += " [\(busErrorMessage)]"
        }
        return text
    }

    /// The hint appended to every `unreachable` error.
    static let addressHint =
        "Pass the bus of a running systemd with `--systemd-bus unix:path=...`: "
        + "`unix:path=/run/systemd/private` for the host's systemd (as root), or "
        + "`unix:path=/proc/<pid>/root/run/dbus/system_bus_socket` for a private systemd started with "
        + "`deploy/private-systemd.sh start <dir>` (its `address` command prints it)."
}
