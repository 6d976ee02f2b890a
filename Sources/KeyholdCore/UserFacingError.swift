/// An error whose `description` is written for the person at the keyboard: one line that says what went wrong and
/// what to do next, never a key. Keyhold's programs print it as is (`keyhold: error: ...`, exit 1), without a trace.
public protocol UserFacingError: Error, CustomStringConvertible {}
