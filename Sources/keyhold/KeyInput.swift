import Foundation
import KeyholdCore
import KeyholdVault

/// Reads a provider key from stdin, or from the terminal without echo. Never from argv.
enum KeyInput {
    /// Reads a key for `provider`, checks its shape here too (a bad key is refused before it leaves this process),
    /// and wraps it in the admin API's body. The raw bytes are wiped.
    static func request(
        provider: Provider, prompt: String, baseURL: String?, validate: Bool, skipShapeCheck: Bool
    ) throws -> AdminAPI.SetKey {
        var raw = try read(prompt: prompt)
        defer { SecretBytes.wipe(&raw) }
        var key = try SecretKeyInput.normalize(raw, provider: provider, skipShapeCheck: skipShapeCheck)
        defer { SecretBytes.wipe(&key) }
        return AdminAPI.SetKey(key: String(decoding: key, as: UTF8.self), baseURL: baseURL, validate: validate, skipShapeCheck: skipShapeCheck)
    }

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
