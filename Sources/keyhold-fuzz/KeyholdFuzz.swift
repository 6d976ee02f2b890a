import Foundation
import KeyholdCore

#if KEYHOLD_FUZZ
import CLibFuzzer
#endif

/// `keyhold-fuzz TARGET [ARGS...]`: built by `deploy/fuzz.sh` with libFuzzer, ARGS are libFuzzer's (a corpus
/// directory, `-max_total_time=`, ...); built as usual, ARGS are files and directories of inputs, each run once
/// (a regression run of the corpus). Exits non-zero on a bad target name, an unreadable input, or a crash.
@main
struct KeyholdFuzz {
    /// The target libFuzzer's callback runs (a C callback cannot capture it).
    nonisolated(unsafe) static var target = FuzzTarget.requestBody

    static func main() {
        let arguments = CommandLine.arguments
        guard arguments.count >= 2, let target = FuzzTarget(rawValue: arguments[1]) else {
            let names = FuzzTarget.allCases.map(\.rawValue).joined(separator: ", ")
            fail("usage: keyhold-fuzz TARGET [ARGS...], where TARGET is one of: \(names)")
        }
        Self.target = target
        if target == .requestBody {
            let path = ProcessInfo.processInfo.environment["KEYHOLD_FUZZ_PLAN"] ?? "plans/managed.yaml"
            do {
                FuzzTarget.plan = try PlanLoader.load(path: path)
            } catch {
                fail("cannot load the plan \(path) (\(error)); run from the repository's root or set KEYHOLD_FUZZ_PLAN")
            }
        }
        #if KEYHOLD_FUZZ
        // A fuzzing build run as a corpus replay (a test before `swift build`) would fuzz for ever, into the seeds.
        guard arguments.contains(where: { $0.hasPrefix("-max_total_time=") || $0.hasPrefix("-runs=") }) else {
            fail("this keyhold-fuzz was built for fuzzing: give -max_total_time=N or -runs=N (deploy/fuzz.sh does), or `swift build` again")
        }
        // libFuzzer sees the program name and its own arguments, without the target's name.
        var argv: [UnsafeMutablePointer<CChar>?] =
            [CommandLine.unsafeArgv[0]] + (2..<Int(CommandLine.argc)).map { CommandLine.unsafeArgv[$0] } + [nil]
        var argc = CommandLine.argc - 1
        let status = argv.withUnsafeMutableBufferPointer { buffer in
            var pointer: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = buffer.baseAddress
            return LLVMFuzzerRunDriver(&argc, &pointer) { data, size in
                KeyholdFuzz.target.run(UnsafeBufferPointer(start: data, count: size))
                return 0
            }
        }
        exit(status)
        #else
        replay(target, paths: Array(arguments.dropFirst(2)))
        #endif
    }

    /// Runs every file named, and every file in the directories named, through `target` once.
    static func replay(_ target: FuzzTarget, paths: [String]) {
        var files: [String] = []
        for path in paths {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { fail("\(path): no such file or directory") }
            if isDirectory.boolValue {
                let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
                files += names.sorted().map { "\(path)/\($0)" }
            } else {
                files.append(path)
            }
        }
        for file in files {
            guard let data = FileManager.default.contents(atPath: file) else { fail("\(file): cannot read it") }
            data.withUnsafeBytes { target.run($0.bindMemory(to: UInt8.self)) }
        }
        print("keyhold-fuzz \(target.rawValue): \(files.count) inputs ran without a failure")
    }

    static func fail(_ message: String) -> Never {
        FileHandle.standardError.write(Data("keyhold-fuzz: \(message)\n".utf8))
        exit(64)
    }
}

#if KEYHOLD_FUZZ
/// libFuzzer's callback, under the name its own `main` would call (linked in, though ours runs instead).
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    KeyholdFuzz.target.run(UnsafeBufferPointer(start: data, count: size))
    return 0
}
#endif
