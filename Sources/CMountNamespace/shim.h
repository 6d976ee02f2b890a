#ifndef KEYHOLD_CMOUNTNAMESPACE_SHIM_H
#define KEYHOLD_CMOUNTNAMESPACE_SHIM_H
#include <sys/syscall.h>
#include <unistd.h>

/// setns(2) for mount namespaces (glibc declares setns only with _GNU_SOURCE, which a module header cannot set).
/// The caller must be single-threaded.
static inline int keyhold_enter_mount_namespace(int fd) {
    return (int)syscall(SYS_setns, fd, 0x00020000 /* CLONE_NEWNS */);
}

/// AT_EMPTY_PATH, which glibc defines only with _GNU_SOURCE.
static inline unsigned int keyhold_at_empty_path(void) { return 0x1000; }
#endif
