import Foundation

/// Plaintext secret bytes in memory that is zeroed when released.
///
/// Swift arrays may be copied silently; this class owns one allocation and wipes it in `deinit`
/// (and on `wipe()`), so a decrypted key lives in exactly one place for as short a time as possible.
public final class SecretBytes: @unchecked Sendable {
    /// Owned by this object; freed in `deinit`.
    private let buffer: UnsafeMutableRawBufferPointer

    /// Copies `bytes` into a fresh allocation. The caller should wipe its own copy.
    public init(_ bytes: some Collection<UInt8>) {
        buffer = .allocate(byteCount: max(bytes.count, 1), alignment: 16)
        buffer.initializeMemory(as: UInt8.self, repeating: 0)
        _ = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<bytes.count]).initializeMemory(as: UInt8.self, from: bytes)
        count = bytes.count
    }

    /// The number of secret bytes.
    public let count: Int

    /// Lends the bytes for the duration of `body`; do not let them escape.
    public func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
    }

    /// Zeroes the bytes now (also done on release).
    public func wipe() {
        SecretBytes.wipe(buffer)
    }

    deinit {
        SecretBytes.wipe(buffer)
        buffer.deallocate()
    }

    /// Zeroes memory in a way the optimiser does not remove. The corresponding C function is `explicit_bzero`.
    public static func wipe(_ memory: UnsafeMutableRawBufferPointer) {
        guard let base = memory.baseAddress, memory.count > 0 else { return }
        explicit_bzero(base, memory.count)
    }

    /// Zeroes an array in place (its current storage; earlier copies are the caller's concern).
    public static func wipe(_ array: inout [UInt8]) {
        array.withUnsafeMutableBytes { wipe($0) }
    }
}
