#ifndef KEYHOLD_CSECCOMP_SHIM_H
#define KEYHOLD_CSECCOMP_SHIM_H
#include <seccomp.h>
#include <errno.h>

/// SCMP_ACT_ERRNO is a function-like macro; Swift cannot import it.
static inline uint32_t keyhold_scmp_act_errno(uint16_t errno_value) { return SCMP_ACT_ERRNO(errno_value); }
/// SCMP_ACT_TRACE is a function-like macro; Swift cannot import it.
static inline uint32_t keyhold_scmp_act_trace(uint16_t msg) { return SCMP_ACT_TRACE(msg); }
static inline uint32_t keyhold_scmp_act_allow(void) { return SCMP_ACT_ALLOW; }
static inline uint32_t keyhold_scmp_act_log(void) { return SCMP_ACT_LOG; }
static inline uint32_t keyhold_scmp_act_kill_process(void) { return SCMP_ACT_KILL_PROCESS; }
static inline uint32_t keyhold_scmp_act_kill_thread(void) { return SCMP_ACT_KILL_THREAD; }
static inline uint32_t keyhold_scmp_act_trap(void) { return SCMP_ACT_TRAP; }
static inline uint32_t keyhold_scmp_arch_native(void) { return SCMP_ARCH_NATIVE; }
#endif
