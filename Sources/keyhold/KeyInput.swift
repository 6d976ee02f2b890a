import Foundation
import KeyholdCore

/// Reads a provider key from stdin, or from the terminal without echo. Never from argv.
enum KeyInput {
    /// The raw bytes typed or piped. The caller wipes them.
    static func read(prompt: String) throws -> [UInt8] {
        if isatty(STDIN_FILENO) == 1 {
            return try readFromTerminal(prompt: prompt)
        }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        defer { buffer.withUnsafeMutableBytes { explicit_bzero($0.baseAddress!, $0.count) } }
        while true {
            let count = Foundation.read(STDIN_FILENO, &buffer, buffer.count)
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            bytes += buffer[0..<count]
            if bytes.count > SecretKeyInput.maximumLength + 2 { break }
        }
        return bytes
    }

    private static func readFromTerminal(prompt: String) throws -> [UInt8] {
        FileHandle.standardError.write(Data(prompt.utf8))
        var original = termios()
        tcgetattr(STDIN_FILENO, &original)
        var silent = original
        silent.c_lflag &= ~tcflag_t(ECHO)
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &silent)
        defer {
            tcsetattr(STDIN_FILENO, TCSAFLUSH, &original)
            FileHandle.standardError.write(Data("\n".utf8))
        }
        var bytes: [UInt8] = []
        var byte: UInt8 = 0
        while Foundation.read(STDIN_FILENO, &byte, 1) == 1, byte != UInt8(ascii: "\n") {
            bytes.append(byte)
            if bytes.count > SecretKeyInput.maximumLength + 2 { break }
        }
        return bytes
    }
}
