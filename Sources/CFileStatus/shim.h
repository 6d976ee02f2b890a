#ifndef KEYHOLD_CFILESTATUS_SHIM_H
#define KEYHOLD_CFILESTATUS_SHIM_H
#include <fcntl.h>
#include <sys/stat.h>

/// What Keyhold reads of a file's status, in a struct of its own. Several of the toolchain's C modules include
/// <sys/stat.h> (Glibc, CoreFoundation, Dispatch), so which Swift module "defines" struct stat differs between the
/// static and the shared Swift runtime, and MemberImportVisibility then asks for an import of whichever won.
struct keyhold_file_status {
    unsigned long long device;
    unsigned int uid;
    unsigned int gid;
    /// S_ISDIR(st_mode).
    int is_directory;
    /// st_blocks in bytes: what the file takes on disk.
    unsigned long long allocated_bytes;
};

static inline void keyhold_file_status_fill(const struct stat *info, struct keyhold_file_status *status) {
    status->device = (unsigned long long)info->st_dev;
    status->uid = (unsigned int)info->st_uid;
    status->gid = (unsigned int)info->st_gid;
    status->is_directory = S_ISDIR(info->st_mode) ? 1 : 0;
    status->allocated_bytes = (unsigned long long)info->st_blocks * 512ULL;
}

/// fstat(2): 0, or -1 with errno set.
static inline int keyhold_fstat(int fd, struct keyhold_file_status *status) {
    struct stat info;
    if (fstat(fd, &info) != 0) return -1;
    keyhold_file_status_fill(&info, status);
    return 0;
}

/// fstatat(2) with AT_SYMLINK_NOFOLLOW (a symbolic link is described, never followed): 0, or -1 with errno set.
static inline int keyhold_lstatat(int directory, const char *name, struct keyhold_file_status *status) {
    struct stat info;
    if (fstatat(directory, name, &info, AT_SYMLINK_NOFOLLOW) != 0) return -1;
    keyhold_file_status_fill(&info, status);
    return 0;
}
#endif
