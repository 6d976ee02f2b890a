import Foundation
import KeyholdVault
import NIOCore

/// Replaces a key that a provider echoes back (in an error body, a header, an event) by the placeholder the agent
/// sent: the agent never reads its tenant's key, even from the provider's own words.
enum EchoRedaction {
    /// Replaces every occurrence of the key in `buffer`; returns whether there was one.
    @discardableResult
    static func redact(_ buffer: inout ByteBuffer, key: SecretBytes, placeholder: String) -> Bool {
        key.withBytes { keyBytes -> Bool in
            guard keyBytes.count > 0, buffer.readableBytes >= keyBytes.count else { return false }
            let found = buffer.withUnsafeReadableBytes { haystack -> [Int] in occurrences(of: keyBytes, in: haystack) }
            guard !found.isEmpty else { return false }
            var replaced = ByteBuffer()
            replaced.reserveCapacity(buffer.readableBytes + found.count * max(0, placeholder.utf8.count - keyBytes.count))
            var next = 0
            let view = buffer.readableBytesView
            for start in found {
                replaced.writeBytes(view[(view.startIndex + next)..<(view.startIndex + start)])
                replaced.writeString(placeholder)
                next = start + keyBytes.count
            }
            replaced.writeBytes(view[(view.startIndex + next)...])
            buffer = replaced
            return true
        }
    }

    /// The offsets of the non-overlapping occurrences of `needle` in `haystack`.
    static func occurrences(of needle: UnsafeRawBufferPointer, in haystack: UnsafeRawBufferPointer) -> [Int] {
        var found: [Int] = []
        let count = needle.count
        guard count > 0, haystack.count >= count, let first = needle.first else { return found }
        var index = 0
        while index <= haystack.count - count {
            guard let base = haystack.baseAddress, let hit = memchr(base + index, Int32(first), haystack.count - count + 1 - index) else { break }
            let offset = base.distance(to: UnsafeRawPointer(hit))
            if memcmp(base + offset, needle.baseAddress!, count) == 0 {
                found.append(offset)
                index = offset + count
            } else {
                index = offset + 1
            }
        }
        return found
    }
}
