import Glibc
import KeyholdExecPayload

/// The whole of keyhold-exec: `keyhold-exec [--] /path/to/agent [args...]`, or `keyhold-exec --pooled` (a warm
/// pool's unit, which learns its agent's argv from the payload, with its key).
enum Launcher {
    static let usage = "usage: keyhold-exec [--] /path/to/agent [args...] | keyhold-exec --pooled (payload on standard input)"
    static let maximumPayload = 1 << 20

    static func run() -> Never {
        let agentIndex = parseArguments()

        let input = StandardInput.readAll(limit: maximumPayload)
        StandardInput.redirectToDevNull()

        let payload: Payload
        do {
            payload = try Payload(decoding: input.base, count: input.count)
        } catch {
            input.wipe()
            fail(.malformedPayload, "malformed payload: \(error.message)")
        }
        // The agent's argv: from the command line, or (pooled) copied out of the payload, whose buffer is wiped below.
        var argv: [UnsafeMutablePointer<CChar>?]
        if let agentIndex {
            guard payload.arguments.isEmpty else {
                input.wipe()
                fail(.malformedPayload, "the payload names an agent, but so does the command line (use --pooled)")
            }
            argv = Array(UnsafeBufferPointer(start: CommandLine.unsafeArgv + agentIndex, count: Int(CommandLine.argc) - agentIndex + 1))
        } else {
            guard let first = payload.arguments.first ?? nil, first.pointee == 0x2F else {
                input.wipe()
                fail(.malformedPayload, "a pooled launch needs the agent's absolute path in its payload")
            }
            argv = payload.arguments.map { argument in argument.flatMap { strdup($0) } }
        }
        guard let path = argv[0] else { fail(.usage, usage) }
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

        execv(path, argv)
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

    /// Returns the index in argv of the agent's path, nil for `--pooled`; exits on a bad command line.
    private static func parseArguments() -> Int? {
        let arguments = CommandLine.arguments
        var index = 1
        if index < arguments.count, arguments[index] == "-h" || arguments[index] == "--help" {
            print(usage)
            exit(0)
        }
        if arguments.count == 2, arguments[1] == "--pooled" { return nil }
        if index < arguments.count, arguments[index] == "--" { index += 1 }
        guard index < arguments.count else { fail(.usage, usage) }
        let agent = arguments[index]
        if agent.hasPrefix("-") { fail(.usage, "unknown option \(agent); " + usage) }
        if !agent.hasPrefix("/") { fail(.usage, "the agent's path must be absolute; " + usage) }
        return index
    }
}
