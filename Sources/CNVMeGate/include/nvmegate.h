/*
 * nvmegate.h: the C ABI of nvmegate, an access-control filter for NVMe passthrough.
 *
 * A gate holds one controller (a loopback controller, an emulated NVMe controller or a real
 * device) behind a policy. Open a node as a caller, then call nvmegate_ioctl exactly
 * as ioctl(2) on a Linux NVMe node, with the request codes of <linux/nvme_ioctl.h>.
 *
 * Or a gate is a connection to a broker (`nvmegate serve`, target "unix:PATH"): the same calls,
 * decided by the broker's policy for the caller the broker sees connected (the kernel's
 * SO_PEERCRED), so a program moves from an in-process gate to the broker by changing the target
 * string. One connection per gate: calls from many threads are safe and run one at a time;
 * open one gate per thread for commands in parallel. What differs is said at each call below.
 *
 * Link: -lNVMeGateABI (libNVMeGateABI.so, built by `swift build -c release`).
 */
#ifndef NVMEGATE_H
#define NVMEGATE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** A gate: a controller behind a policy. Opaque. */
typedef struct nvmegate nvmegate;

/** Who sends commands. capabilities: bit N is Linux capability N (CAP_SYS_ADMIN = 21). */
typedef struct nvmegate_caller {
    uint32_t uid;
    uint32_t gid;
    uint64_t capabilities;
} nvmegate_caller;

/** Queues for nvmegate_check_batch. */
#define NVMEGATE_QUEUE_ADMIN 0
#define NVMEGATE_QUEUE_IO 1

/**
 * Creates a gate. policy_path NULL: the built-in kernel-compatible policy.
 * target: "loopback", "emulated" (in memory), "emulated:DIR" (file-backed, created on
 * first use), or a device path: "/dev/nvme0", "/dev/nvme0n1", "/dev/ng0n1" (the real
 * controller behind it, through libnvme; its nodes are then named by NSID: "nvme0n1" is
 * NSID 1 of that controller).
 * target "unix:PATH": a connection to the broker listening on the Unix socket PATH. policy_path
 * is then not read (the broker's policy applies).
 * Returns NULL on failure, with a message in err (err_len bytes, NUL-terminated) and
 * errno: EBUSY when another process has the "emulated:DIR" directory open (the message
 * names its pid); for a device path, the errno open(2) gave (ENOENT, EACCES), ENODEV when
 * the file is not an NVMe device node, or the errno of the command that failed at attach
 * (EACCES when Linux refuses this process Identify or the effects log); for "unix:PATH",
 * "PATH: " and strerror in err and connect(2)'s errno (ENOENT no socket there, ECONNREFUSED
 * nobody listening, EACCES the socket's mode), EAGAIN when the broker is at its connection
 * limit, EPROTONOSUPPORT or EPROTO when it does not speak this client's wire format; EINVAL
 * for any other failure.
 */
nvmegate *nvmegate_create(const char *policy_path, const char *target, char *err, size_t err_len);

/** Destroys a gate and closes its handles (for a "unix:" gate, its connection). NULL is ignored. */
void nvmegate_destroy(nvmegate *gate);

/**
 * Opens node "nvme0" (controller), "nvme0n1" (namespace), "ng0n1" (generic namespace node)
 * or "nvme0n1p1" (partition, where the namespace has one), O_RDONLY or O_RDWR, as caller.
 * caller NULL: this process's effective uid and gid, supplementary groups and effective capabilities.
 * On a "unix:" gate caller is ignored: the broker knows the process by its connection.
 * Returns a handle >= 0, or -1 with errno (ENOENT no such node, EINVAL bad flags,
 * EMFILE too many handles, EFAULT NULL node; on a "unix:" gate, EMFILE beyond the broker's
 * handles per connection (16 by default) and EIO once the broker is gone).
 */
int nvmegate_open(nvmegate *gate, const char *node, int oflags, const nvmegate_caller *caller);

/** Closes a handle: 0, or -1 with errno EBADF. */
int nvmegate_close(nvmegate *gate, int handle);

/**
 * As ioctl(2) on a Linux NVMe node: NVME_IOCTL_ID, _ADMIN_CMD, _IO_CMD, _SUBMIT_IO, _RESET,
 * _SUBSYS_RESET, _RESCAN, _ADMIN64_CMD, _IO64_CMD. Returns 0, the positive NVMe status
 * (the completion's status field without the phase bit), the NSID for NVME_IOCTL_ID, or -1
 * with errno: EACCES (policy), EINVAL (malformed), ENOTTY (unknown request), EFAULT (bad
 * address), EBADF (handle not open), ENODEV (I/O through a handle whose namespace was deleted
 * or detached since it was opened). The result is written back as the kernel writes it.
 * Safe to call from many threads at once.
 * On a "unix:" gate the data of a command whose opcode has bit 0 set is sent to the broker and
 * the data of the others comes back into the caller's buffers, only when the command ran; the
 * caller's struct and buffers are untouched on a refusal. Also: EINVAL for a data or metadata
 * length over the broker's max_transfer (checked before sending, as Linux checks its own
 * limit), EIO when the broker is gone (then for every later call on the gate), EPROTO for a
 * reply that breaks the wire format (the connection is then closed).
 */
int nvmegate_ioctl(nvmegate *gate, int handle, unsigned long request, void *arg);

/**
 * Decides `count` 64-byte submission entries in place, as `handle` would, without executing
 * them: queue 0 admin, 1 I/O; verdicts[i] = 0 allow or the errno the ioctl would return (I/O
 * through a controller node, as NVME_IOCTL_IO_CMD, goes to its only namespace).
 * Returns count, or -1 with errno. On a "unix:" gate a ring larger than one frame is sent in
 * several (verdicts unspecified on failure; EIO once the broker is gone).
 */
long nvmegate_check_batch(nvmegate *gate, int handle, int queue, const void *sqes, size_t count, uint8_t *verdicts);

/**
 * Replaces the gate's policy whole with the policy file at policy_path. Commands being decided
 * finish under the old policy, later ones see the new one; none is decided under a mix. Open
 * handles stay open and their callers are matched again to the new policy's tenants.
 * Returns 0, or -1 with errno: EINVAL when the file does not load (the policy error, naming
 * the file, line and key, in err: err_len bytes, NUL-terminated), the old policy staying in
 * force; EFAULT for a NULL gate or policy_path; EOPNOTSUPP on a "unix:" gate (send the broker
 * SIGHUP: it reloads its own --policy file).
 * Safe to call while other threads call nvmegate_ioctl and nvmegate_check_batch.
 */
int nvmegate_reload(nvmegate *gate, const char *policy_path, char *err, size_t err_len);

#ifdef __cplusplus
}
#endif

#endif /* NVMEGATE_H */
