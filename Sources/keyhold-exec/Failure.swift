import Glibc

/// keyhold-exec's exit codes, one per failure class (sysexits.h where one fits).
enum ExitCode: Int32 {
    /// Bad command line.
    case usage = 64
    /// The payload does not follow the wire format, or is larger than 1 MiB.
    case malformedPayload = 65
    /// Standard input was empty or a terminal.
    case noPayload = 66
    /// libseccomp refused the filter.
    case seccomp = 67
    /// A system call keyhold-exec needs failed (read, open /dev/null, setenv).
    case system = 71
    /// The agent exists but cannot be executed.
    case notExecutable = 126
    /// The agent was not found or exec failed.
    case execFailed = 127
}

/// Writes `keyhold-exec: <message>` on standard error and exits with `code`.
/// Callers never put a payload value in `message`.
func fail(_ code: ExitCode, _ message: String) -> Never {
    var line = "keyhold-exec: " + message + "\n"
    line.withUTF8 { bytes in
        var offset = 0
        while offset < bytes.count {
            let written = write(2, bytes.baseAddress! + offset, bytes.count - offset)
            if written < 0 && errno == EINTR { continue }
            if written <= 0 { break }
            offset += written
        }
    }
    exit(code.rawValue)
}

/// The text of an errno value.
func describe(errno number: Int32) -> String {
    String(cString: strerror(number))
}
