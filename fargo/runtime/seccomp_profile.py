"""Docker's default seccomp profile, as data, rendered into the OCI `linux.seccomp` object.

Default action: fail with EPERM. The syscall lists mirror moby's profiles/seccomp/default.json; rules that
depend on a capability (e.g. ptrace family with SYS_PTRACE) or the kernel version are applied here.

One difference from moby: on x86_64 the filter names the x32 ABI only when the kernel serves x32 syscalls.
Most distributions' kernels leave x32 off (Debian's needs `syscall.x32=y`), and there every x32 syscall fails
with ENOSYS whatever a filter says, so no x32 program can run either way; left out of the filter, such a
syscall is killed by it instead. runc compiles the filter for each container, per architecture named, and the
third one cost 8 of its 20 ms (libseccomp 2.5, 360 syscalls).
"""
from __future__ import annotations

import functools
import os
import platform
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

# Allowed for every container.
ALWAYS_ALLOWED: tuple[str, ...] = (
    "accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk", "capget", "capset", "chdir", "chmod",
    "chown", "chown32", "clock_adjtime", "clock_adjtime64", "clock_getres", "clock_getres_time64",
    "clock_gettime", "clock_gettime64", "clock_nanosleep", "clock_nanosleep_time64", "close", "close_range",
    "connect", "copy_file_range", "creat", "dup", "dup2", "dup3", "epoll_create", "epoll_create1",
    "epoll_ctl", "epoll_ctl_old", "epoll_pwait", "epoll_pwait2", "epoll_wait", "epoll_wait_old", "eventfd",
    "eventfd2", "execve", "execveat", "exit", "exit_group", "faccessat", "faccessat2", "fadvise64",
    "fadvise64_64", "fallocate", "fanotify_mark", "fchdir", "fchmod", "fchmodat", "fchown", "fchown32",
    "fchownat", "fcntl", "fcntl64", "fdatasync", "fgetxattr", "flistxattr", "flock", "fork", "fremovexattr",
    "fsetxattr", "fstat", "fstat64", "fstatat64", "fstatfs", "fstatfs64", "fsync", "ftruncate",
    "ftruncate64", "futex", "futex_time64", "futex_waitv", "futimesat", "getcpu", "getcwd", "getdents",
    "getdents64", "getegid", "getegid32", "geteuid", "geteuid32", "getgid", "getgid32", "getgroups",
    "getgroups32", "getitimer", "getpeername", "getpgid", "getpgrp", "getpid", "getppid", "getpriority",
    "getrandom", "getresgid", "getresgid32", "getresuid", "getresuid32", "getrlimit", "get_robust_list",
    "getrusage", "getsid", "getsockname", "getsockopt", "get_thread_area", "gettid", "gettimeofday", "getuid",
    "getuid32", "getxattr", "inotify_add_watch", "inotify_init", "inotify_init1", "inotify_rm_watch",
    "io_cancel", "ioctl", "io_destroy", "io_getevents", "io_pgetevents", "io_pgetevents_time64", "ioprio_get",
    "ioprio_set", "io_setup", "io_submit", "io_uring_enter", "io_uring_register", "io_uring_setup", "ipc",
    "kill", "landlock_add_rule", "landlock_create_ruleset", "landlock_restrict_self", "lchown", "lchown32",
    "lgetxattr", "link", "linkat", "listen", "listxattr", "llistxattr", "_llseek", "lremovexattr", "lseek",
    "lsetxattr", "lstat", "lstat64", "madvise", "membarrier", "memfd_create", "memfd_secret", "mincore",
    "mkdir", "mkdirat", "mknod", "mknodat", "mlock", "mlock2", "mlockall", "mmap", "mmap2", "mprotect",
    "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive", "mq_timedreceive_time64", "mq_timedsend",
    "mq_timedsend_time64", "mq_unlink", "mremap", "msgctl", "msgget", "msgrcv", "msgsnd", "msync", "munlock",
    "munlockall", "munmap", "name_to_handle_at", "nanosleep", "newfstatat", "_newselect", "open", "openat",
    "openat2", "pause", "pidfd_open", "pidfd_send_signal", "pipe", "pipe2", "pkey_alloc", "pkey_free",
    "pkey_mprotect", "poll", "ppoll", "ppoll_time64", "prctl", "pread64", "preadv", "preadv2", "prlimit64",
    "process_mrelease", "pselect6", "pselect6_time64", "pwrite64", "pwritev", "pwritev2", "read", "readahead",
    "readlink", "readlinkat", "readv", "recv", "recvfrom", "recvmmsg", "recvmmsg_time64", "recvmsg",
    "remap_file_pages", "removexattr", "rename", "renameat", "renameat2", "restart_syscall", "rmdir", "rseq",
    "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend",
    "rt_sigtimedwait", "rt_sigtimedwait_time64", "rt_tgsigqueueinfo", "sched_getaffinity", "sched_getattr",
    "sched_getparam", "sched_get_priority_max", "sched_get_priority_min", "sched_getscheduler",
    "sched_rr_get_interval", "sched_rr_get_interval_time64", "sched_setaffinity", "sched_setattr",
    "sched_setparam", "sched_setscheduler", "sched_yield", "seccomp", "select", "semctl", "semget", "semop",
    "semtimedop", "semtimedop_time64", "send", "sendfile", "sendfile64", "sendmmsg", "sendmsg", "sendto",
    "setfsgid", "setfsgid32", "setfsuid", "setfsuid32", "setgid", "setgid32", "setgroups", "setgroups32",
    "setitimer", "setpgid", "setpriority", "setregid", "setregid32", "setresgid", "setresgid32", "setresuid",
    "setresuid32", "setreuid", "setreuid32", "setrlimit", "set_robust_list", "setsid", "setsockopt",
    "set_thread_area", "set_tid_address", "setuid", "setuid32", "setxattr", "shmat", "shmctl", "shmdt",
    "shmget", "shutdown", "sigaltstack", "signalfd", "signalfd4", "sigprocmask", "sigreturn", "socketcall",
    "socketpair", "splice", "stat", "stat64", "statfs", "statfs64", "statx", "symlink", "symlinkat", "sync",
    "sync_file_range", "syncfs", "sysinfo", "tee", "tgkill", "time", "timer_create", "timer_delete",
    "timer_getoverrun", "timer_gettime", "timer_gettime64", "timer_settime", "timer_settime64",
    "timerfd_create", "timerfd_gettime", "timerfd_gettime64", "timerfd_settime", "timerfd_settime64", "times",
    "tkill", "truncate", "truncate64", "ugetrlimit", "umask", "uname", "unlink", "unlinkat", "utime",
    "utimensat", "utimensat_time64", "utimes", "vfork", "vmsplice", "wait4", "waitid", "waitpid", "write",
    "writev",
)

# Allowed on kernels >= 4.8, where seccomp can no longer be bypassed through ptrace.
PTRACE_ON_NEW_KERNELS: tuple[str, ...] = ("process_vm_readv", "process_vm_writev", "ptrace")

# Allowed only when the container holds the capability.
BY_CAPABILITY: dict[str, tuple[str, ...]] = {
    "CAP_DAC_READ_SEARCH": ("open_by_handle_at",),
    "CAP_SYS_ADMIN": (
        "bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick", "lookup_dcookie",
        "mount", "mount_setattr", "move_mount", "open_tree", "perf_event_open", "quotactl", "quotactl_fd",
        "setdomainname", "sethostname", "setns", "syslog", "umount", "umount2", "unshare",
    ),
    "CAP_SYS_BOOT": ("reboot",),
    "CAP_SYS_CHROOT": ("chroot",),
    "CAP_SYS_MODULE": ("delete_module", "init_module", "finit_module"),
    "CAP_SYS_PACCT": ("acct",),
    "CAP_SYS_PTRACE": ("kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev", "ptrace"),
    "CAP_SYS_RAWIO": ("iopl", "ioperm"),
    "CAP_SYS_TIME": ("settimeofday", "stime", "clock_settime", "clock_settime64"),
    "CAP_SYS_TTY_CONFIG": ("vhangup",),
    "CAP_SYS_NICE": ("get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"),
    "CAP_SYSLOG": ("syslog",),
    "CAP_BPF": ("bpf",),
    "CAP_PERFMON": ("perf_event_open",),
}

# Allowed only on these machine architectures (platform.machine()).
BY_ARCH: dict[str, tuple[str, ...]] = {
    "x86_64": ("arch_prctl", "modify_ldt"),
    "aarch64": ("arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint", "cacheflush", "set_tls"),
    "s390x": ("s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr"),
    "riscv64": ("riscv_flush_icache",),
}

ARCHITECTURES: dict[str, list[str]] = {
    "x86_64": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
    "aarch64": ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
    "s390x": ["SCMP_ARCH_S390X", "SCMP_ARCH_S390"],
    "riscv64": ["SCMP_ARCH_RISCV64"],
}

# getpid through the x32 ABI (x32's numbers are x86_64's with this bit set), in a child: a seccomp filter
# around Fargo itself that left x32 out would kill the process that asks.
_X32_PROBE = "import ctypes, os; os._exit(0 if ctypes.CDLL(None).syscall(0x40000000 | 39) == os.getpid() else 1)"

AF_VSOCK = 40
# personality(2) personas that are allowed: PER_LINUX, PER_LINUX32, UNAME26, UNAME26|PER_LINUX32, query.
ALLOWED_PERSONALITIES = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)
# clone(2) without any namespace flag (CLONE_NEWNS|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET|NEWCGROUP).
CLONE_NAMESPACE_FLAGS = 0x7E020000
ENOSYS = 38


@dataclass(frozen=True)
class _Rule:
    names: tuple[str, ...]
    action: str = "SCMP_ACT_ALLOW"
    args: list[dict[str, Any]] = field(default_factory=list)
    errno: int | None = None

    def render(self) -> dict[str, Any]:
        rule: dict[str, Any] = {"names": sorted(self.names), "action": self.action}
        if self.args:
            rule["args"] = self.args
        if self.errno is not None:
            rule["errnoRet"] = self.errno
        return rule


def _kernel_at_least(major: int, minor: int) -> bool:
    try:
        parts = os.uname().release.split(".")
        return (int(parts[0]), int(parts[1].split("-")[0])) >= (major, minor)
    except (ValueError, IndexError):
        return False


@functools.cache
def kernel_serves_x32() -> bool:
    """Whether this x86_64 kernel runs x32 syscalls (asked once, in a child process: about 20 ms)."""
    if platform.machine() != "x86_64":
        return False
    try:
        probe = subprocess.run([sys.executable, "-I", "-S", "-c", _X32_PROBE], capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return True  # unknown: name x32 in the filter, as moby does
    return probe.returncode == 0


def architectures(machine: str, x32: bool) -> list[str]:
    """The filter's architectures on `machine`; x32 among them only when the kernel serves it (`x32`)."""
    return [arch for arch in ARCHITECTURES.get(machine, []) if arch != "SCMP_ARCH_X32" or x32]


def default_seccomp_profile(capabilities: set[str], machine: str | None = None) -> dict[str, Any]:
    """Docker's default profile for a container holding `capabilities` (names like "CAP_SYS_PTRACE"), for
    this host (or for `machine`, with x32 named)."""
    x32 = kernel_serves_x32() if machine is None else True
    machine = machine or platform.machine()
    rules = [_Rule(ALWAYS_ALLOWED)]
    if _kernel_at_least(4, 8):
        rules.append(_Rule(PTRACE_ON_NEW_KERNELS))
    rules.append(_Rule(("socket",), args=[{"index": 0, "value": AF_VSOCK, "op": "SCMP_CMP_NE"}]))
    rules.extend(
        _Rule(("personality",), args=[{"index": 0, "value": persona, "op": "SCMP_CMP_EQ"}])
        for persona in ALLOWED_PERSONALITIES
    )
    if machine in BY_ARCH:
        rules.append(_Rule(BY_ARCH[machine]))
    for capability, names in BY_CAPABILITY.items():
        if capability in capabilities:
            rules.append(_Rule(names))
    if "CAP_SYS_ADMIN" not in capabilities:
        # Threads and fork are fine; new namespaces are not. s390 swaps clone's first two arguments.
        flags_arg = 1 if machine == "s390x" else 0
        rules.append(_Rule(("clone",), args=[
            {"index": flags_arg, "value": CLONE_NAMESPACE_FLAGS, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}
        ]))
        # clone3 hides its flags in a struct seccomp cannot read: ENOSYS makes libc fall back to clone.
        rules.append(_Rule(("clone3",), action="SCMP_ACT_ERRNO", errno=ENOSYS))
    return {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "architectures": architectures(machine, x32),
        "syscalls": [rule.render() for rule in rules],
    }
