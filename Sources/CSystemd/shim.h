#ifndef KEYHOLD_CSYSTEMD_SHIM_H
#define KEYHOLD_CSYSTEMD_SHIM_H
#include <systemd/sd-bus.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>
#include <sys/syscall.h>
#include <unistd.h>

/// setns(2) for network namespaces (glibc declares setns only with _GNU_SOURCE, which a module header cannot set).
static inline int keyhold_enter_network_namespace(int fd) {
    return (int)syscall(SYS_setns, fd, 0x40000000 /* CLONE_NEWNET */);
}
#endif
