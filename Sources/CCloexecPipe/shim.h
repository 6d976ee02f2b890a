#ifndef KEYHOLD_CCLOEXECPIPE_SHIM_H
#define KEYHOLD_CCLOEXECPIPE_SHIM_H
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <unistd.h>

/// A pipe whose two ends are close-on-exec from the moment they exist (pipe2, which Glibc's Swift module does not
/// export): a process that another thread spawns meanwhile inherits neither end. pipe() then fcntl() leaves a window
/// in which a child can keep the write end open, and its reader then never sees the end of the pipe.
/// Returns 0, or -1 with errno set.
static inline int keyhold_cloexec_pipe(int ends[2]) {
    return pipe2(ends, O_CLOEXEC);
}

#endif
