import KeyholdCore

/// Splits a command line the way a POSIX shell splits words: spaces separate, 'single' and "double"
/// quotes group, a backslash escapes the next character (outside single quotes). No expansion.
enum ShellWords {
    static func split(_ line: String) throws -> [String] {
        var words: [String] = []
        var current = ""
        var inWord = false
        var quote: Character?
        var escaped = false
        for character in line {
            if escaped {
                current.append(character)
                escaped = false
            } else if quote == "'" {
                if character == "'" { quote = nil } else { current.append(character) }
            } else if character == "\\" {
                escaped = true
                inWord = true
            } else if quote == "\"" {
                if character == "\"" { quote = nil } else { current.append(character) }
            } else if character == "'" || character == "\"" {
                quote = character
                inWord = true
            } else if character == " " || character == "\t" {
                if inWord { words.append(current) }
                current = ""
                inWord = false
            } else {
                current.append(character)
                inWord = true
            }
        }
        guard quote == nil, !escaped else { throw KeyholdError.invalidInput("--agent has an unterminated quote or a trailing backslash") }
        if inWord { words.append(current) }
        return words
    }
}
