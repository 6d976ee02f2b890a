// keyhold-bench-cli: what a Keyhold program costs to start, side by side in one run: each program's size on disk,
// and the wall time and peak resident memory of `PROGRAM --version` and `PROGRAM --help` (spawned, waited for),
// the runs interleaved across programs so that the machine's load falls on each alike.
//
// Usage: keyhold-bench-cli [--runs N] PROGRAM...   (e.g. a client build against the one-binary build it replaces)
import ArgumentParser
import BenchmarkSupport
import Foundation

/// The command line.
struct Arguments: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keyhold-bench-cli", abstract: "The size and start-up of Keyhold's programs, side by side.")

    @Option(help: "Runs of each program and command (medians and 90th percentiles are printed).")
    var runs = 30
    @Argument(help: "The programs to compare (paths).")
    var programs: [String]

    func validate() throws {
        try require(runs, atLeast: 3, for: "--runs")
        for program in programs where !FileManager.default.isExecutableFile(atPath: program) {
            throw ValidationError("\(program) is not an executable file")
        }
    }
}

/// One spawn: wall time from `posix_spawn` to the end of `wait4`, and the child's peak resident set.
func spawnAndWait(_ program: String, _ argument: String) throws -> (milliseconds: Double, maxResidentKiB: Int) {
    var fileActions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&fileActions)
    defer { posix_spawn_file_actions_destroy(&fileActions) }
    posix_spawn_file_actions_addopen(&fileActions, 1, "/dev/null", O_WRONLY, 0)
    let argv = [strdup(program), strdup(argument), nil]
    defer { argv.forEach { free($0) } }
    var pid: pid_t = 0
    let started = ContinuousClock.now
    let spawned = posix_spawn(&pid, program, &fileActions, nil, argv, environ)
    guard spawned == 0 else { throw BenchError("cannot spawn \(program): \(String(cString: strerror(spawned)))") }
    var status: Int32 = 0
    var usage = rusage()
    guard wait4(pid, &status, 0, &usage) == pid else { throw BenchError("wait4 failed for \(program)") }
    let elapsed = ContinuousClock.now - started
    guard status == 0 else { throw BenchError("\(program) \(argument) exited with status \(status)") }
    return (elapsed / .milliseconds(1), usage.ru_maxrss)
}

let arguments = Arguments.parseOrExit()
let commands = ["--version", "--help"]
var milliseconds: [String: [Double]] = [:]
var residentKiB: [String: [Double]] = [:]
do {
    for program in arguments.programs {
        for command in commands { _ = try spawnAndWait(program, command) }  // warm the page cache
    }
    for _ in 0..<arguments.runs {
        for program in arguments.programs {
            for command in commands {
                let sample = try spawnAndWait(program, command)
                milliseconds[program + command, default: []].append(sample.milliseconds)
                residentKiB[program + command, default: []].append(Double(sample.maxResidentKiB))
            }
        }
    }
} catch {
    FileHandle.standardError.write(Data("keyhold-bench-cli: \(error)\n".utf8))
    exit(1)
}

print("keyhold-bench-cli: \(arguments.runs) runs each, interleaved; \(MachineFacts.cpuModel); load \(MachineFacts.loadAverage)")
let width = max(arguments.programs.map(\.count).max() ?? 0, 7)
print(pad("program", width) + "  " + pad("size", 10, left: true) + "  command     median     p90   peak RSS (median)")
for program in arguments.programs {
    let size = (try? FileManager.default.attributesOfItem(atPath: program)[.size] as? Int) ?? 0
    for command in commands {
        let samples = milliseconds[program + command] ?? []
        let memory = Percentiles.median(residentKiB[program + command] ?? [])
        print(
            pad(command == commands[0] ? program : "", width) + "  "
                + pad(command == commands[0] ? mebibytes(size / 1024) : "", 10, left: true) + "  " + pad(command, 10)
                + pad(String(format: "%.1f ms", Percentiles.median(samples)), 9, left: true)
                + pad(String(format: "%.1f ms", Percentiles.percentile(samples, 90)), 9, left: true)
                + pad(mebibytes(Int(memory)), 12, left: true))
    }
}
