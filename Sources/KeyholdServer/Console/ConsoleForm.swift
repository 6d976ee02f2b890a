import Hummingbird
import KeyholdCore
import KeyholdOrchestration
import NIOCore

/// A posted console form (`application/x-www-form-urlencoded`), read with a size limit and checked to be UTF-8.
///
/// It may hold a pasted key: it is never logged, and its values are never put back into a page.
struct ConsoleForm {
    /// The largest form body the console reads (a key is a few hundred bytes).
    static let maximumBytes = 16 * 1024

    private let form: FormURLEncoded

    /// Reads and decodes the request's body.
    /// - Throws: `ConsolePageError` 413 when it is larger than 16 KiB, 400 when it is not UTF-8 text.
    static func read(_ request: Request) async throws -> ConsoleForm {
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: maximumBytes)
        } catch is NIOTooManyBytesError {
            throw ConsolePageError(
                .contentTooLarge, "The form was larger than 16 KiB, so nothing was changed. A provider key is far shorter: copy just the key.")
        }
        return try ConsoleForm(bytes: Array(buffer.readableBytesView))
    }

    /// Decodes `name=value&...` (`+` is a space, `%XX` a byte); every name and value must be UTF-8.
    init(bytes: [UInt8]) throws {
        do {
            form = try FormURLEncoded(bytes: bytes)
        } catch {
            throw ConsolePageError(
                .badRequest, "What was pasted is not UTF-8 text, so nothing was changed. Copy the key again from your provider's dashboard.")
        }
    }

    /// The field's value, or nil when the form has no such field.
    subscript(_ name: String) -> String? { form[name] }
}
