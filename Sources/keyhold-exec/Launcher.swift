import Glibc

/// The whole of keyhold-exec: `keyhold-exec [--] /path/to/agent [args...]`.
enum Launcher {
    static let usage = "usage: keyhold-exec [--] /path/to/agent [args...] (payload on standard input)"
    static let maximumPayload = 1 << 20

    static func run() -> Never {
        let agentIndex = parseArguments()
        let argv = CommandLine.unsafeArgv
        guard let path = argv[agentIndex] else { fail(.usage, usage) }

        let input = StandardInput.readAll(limit: maximumPayload)
        StandardInput.redirectToDevNull()

        let payload: Payload
        do {
            payload = try Payload(decoding: input)
        } catch {
            input.wipe()
            fail(.malformedPayload, "malformed payload: \(error.message)")
        }
        for (index, entry) in payload.environment.enumerated() where setenv(entry.name, entry.value, 1) != 0 {
            let error = errno
            input.wipe()
            fail(.system, "environment entry \(index): setenv: \(describe(errno: error))")
        }
        if let filter = payload.filter {
            // Loaded last, so the filter cannot interfere with keyhold-exec's own work.
            filter.load()
        }
        input.wipe()

        execv(path, argv + agentIndex)
        let error = errno
        let agent = String(cString: path)
        switch error {
        case EACCES, ENOEXEC, EPERM, EISDIR:
            fail(.notExecutable, "\(agent): cannot execute: \(describe(errno: error))")
        case ENOENT, ENOTDIR:
            fail(.execFailed, "\(agent): not found")
        default:
            fail(.execFailed, "\(agent): exec failed: \(describe(errno: error))")
        }
    }

    /// Returns the index in argv of the agent's path; exits on a bad command line.
    private static func parseArguments() -> Int {
        let arguments = CommandLine.arguments
        var index = 1
        if index < arguments.count, arguments[index] == "-h" || arguments[index] == "--help" {
            print(usage)
            exit(0)
        }
        if index < arguments.count, arguments[index] == "--" { index += 1 }
        guard index < arguments.count else { fail(.usage, usage) }
        let agent = arguments[index]
        if agent.hasPrefix("-") { fail(.usage, "unknown option \(agent); " + usage) }
        if !agent.hasPrefix("/") { fail(.usage, "the agent's path must be absolute; " + usage) }
        return index
    }
}
