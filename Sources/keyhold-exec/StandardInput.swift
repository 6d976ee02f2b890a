import Glibc

/// A malloc'd buffer holding everything read from standard input. The launcher owns it and must
/// call ``wipe()`` (zero and free) before exec.
struct InputBuffer {
    let base: UnsafeMutablePointer<UInt8>
    let count: Int
    let capacity: Int

    /// Zeroes what was read into the buffer and frees it. Only the first `count` bytes ever held data (the decoder
    /// writes within them): zeroing the untouched rest would only fault in a megabyte of fresh pages before exec.
    func wipe() {
        explicit_bzero(base, count)
        free(base)
    }
}

enum StandardInput {
    /// Reads standard input until end of file.
    /// Exits with ``ExitCode/noPayload`` if it is a terminal or empty, ``ExitCode/malformedPayload`` past `limit` bytes.
    static func readAll(limit: Int) -> InputBuffer {
        if isatty(0) == 1 { fail(.noPayload, "standard input is a terminal; expected a payload from keyhold") }
        let capacity = limit + 1
        guard let base = malloc(capacity)?.assumingMemoryBound(to: UInt8.self) else {
            fail(.system, "cannot allocate the input buffer")
        }
        var count = 0
        while count < capacity {
            let got = read(0, base + count, capacity - count)
            if got < 0 {
                let error = errno
                if error == EINTR { continue }
                InputBuffer(base: base, count: count, capacity: capacity).wipe()
                fail(.system, "cannot read standard input: \(describe(errno: error))")
            }
            if got == 0 { break }
            count += got
        }
        let buffer = InputBuffer(base: base, count: count, capacity: capacity)
        if count > limit {
            buffer.wipe()
            fail(.malformedPayload, "payload larger than \(limit) bytes")
        }
        if count == 0 {
            buffer.wipe()
            fail(.noPayload, "no payload on standard input")
        }
        return buffer
    }

    /// Points file descriptor 0 at /dev/null so the agent cannot read the payload's pipe again.
    static func redirectToDevNull() {
        let fd = open("/dev/null", O_RDONLY | O_CLOEXEC)
        if fd < 0 { fail(.system, "cannot open /dev/null: \(describe(errno: errno))") }
        while dup2(fd, 0) < 0 {
            let error = errno
            if error != EINTR { fail(.system, "cannot redirect standard input: \(describe(errno: error))") }
        }
        if fd != 0 { close(fd) }
    }
}
