/*
 * nvmegate_client.h: a small C client of the nvmegate broker (`nvmegate serve`), speaking
 * the wire format of Sources/NVMeBroker/WireFormat.md (version 1) over a Unix stream socket.
 *
 * One client object is one connection. Calls on it are serialized by a mutex (the broker runs
 * one command at a time per connection), so a client may be shared by threads; for commands in
 * parallel, open more clients. Handles belong to the connection that opened them.
 *
 * Errors are -1 (or NULL) with errno, as the calls they mirror:
 *   - what the broker returns (ret -1 and its errno), unchanged: EACCES (policy), EINVAL,
 *     ENOTTY, EFAULT, EBADF, ENOENT, ENODEV...;
 *   - the broker is gone or the stream broke (end of stream, ECONNRESET, EPIPE, a send or
 *     receive failure): EIO, and EIO for every later call on that client (its handles are
 *     closed on the broker's side with the connection);
 *   - a reply that breaks the wire format (wrong tag or type, a length beyond what was asked,
 *     an errno out of range): EPROTO, and the connection is closed (EIO afterwards);
 *   - wire errors: 1 unsupported-version EPROTONOSUPPORT, 2 unknown-type EOPNOTSUPP,
 *     3 malformed EINVAL (the connection stays usable), 4 too-large EMSGSIZE, 5 busy EAGAIN
 *     (the broker closes the connection after 1, 4 and 5: EIO afterwards);
 *   - checked here before anything is sent: EFAULT (NULL client, node or argument struct),
 *     ENOTTY (a request code that is not an NVMe ioctl), EINVAL (a data or metadata length
 *     over the broker's max_transfer, which Linux also refuses with EINVAL; bad flags).
 *
 * The broker identifies the caller by the connection (SO_PEERCRED), never by anything sent.
 */
#ifndef NVMEGATE_CLIENT_H
#define NVMEGATE_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** A connection to a broker. Opaque. */
typedef struct nvmegate_client nvmegate_client;

/** What the broker said in its HELLO reply when the client connected. */
typedef struct nvmegate_client_hello {
    /** The wire format version spoken: 1. */
    uint32_t version;
    /** The largest frame the broker accepts, in bytes. */
    uint32_t max_frame;
    /** The largest data (and metadata) length of one command, in bytes. */
    uint32_t max_transfer;
    /** The caller as the broker identified it (SO_PEERCRED). */
    uint32_t uid, gid, pid;
} nvmegate_client_hello;

/** What an opened node is (the OPEN reply). */
typedef struct nvmegate_client_node {
    /** NVMEGATE_CLIENT_CONTROLLER, _NAMESPACE or _PARTITION. */
    uint32_t kind;
    /** 0 for a controller. */
    uint32_t nsid;
    /** Bytes per logical block of the namespace's format; 0 for a controller. */
    uint32_t lba_data_size;
    /** Metadata bytes per logical block; 0 when none. */
    uint32_t metadata_size;
} nvmegate_client_node;

#define NVMEGATE_CLIENT_CONTROLLER 0
#define NVMEGATE_CLIENT_NAMESPACE 1
#define NVMEGATE_CLIENT_PARTITION 2

/** nvmegate_client_connect flags: the socket gets FD_CLOEXEC. */
#define NVMEGATE_CLIENT_CLOEXEC 1

/**
 * Connects to the broker listening on the Unix socket at socket_path and says HELLO (learning
 * max_transfer and max_frame). Returns a client, or NULL with errno and a message naming the
 * path in err (err_len bytes, NUL-terminated; err may be NULL): connect(2)'s errno (ENOENT no
 * socket there, ECONNREFUSED nobody listening, EACCES the socket's mode), ENAMETOOLONG for a
 * path that does not fit a sockaddr_un, EAGAIN when the broker is at its connection limit,
 * EPROTONOSUPPORT when it does not speak version 1, EIO or EPROTO when the HELLO fails.
 * flags: 0 or NVMEGATE_CLIENT_CLOEXEC.
 */
nvmegate_client *nvmegate_client_connect(const char *socket_path, int flags, char *err, size_t err_len);

/** Closes the connection (the broker closes its handles) and frees the client. NULL is ignored. */
void nvmegate_client_destroy(nvmegate_client *client);

/**
 * Frees the client without closing its descriptor: for a caller that finds the descriptor
 * already closed behind its back, its number possibly reused by another file that must not be
 * closed. NULL is ignored.
 */
void nvmegate_client_forget(nvmegate_client *client);

/** The connection's socket descriptor (owned by the client: do not close it), or -1 for NULL. */
int nvmegate_client_fd(const nvmegate_client *client);

/** The HELLO reply the client received when it connected. */
nvmegate_client_hello nvmegate_client_info(const nvmegate_client *client);

/**
 * Opens node (as nvmegate_open: "nvme0", "nvme0n1", "ng0n1", "nvme0n1p1"; 1 to 255 bytes),
 * oflags O_RDONLY, O_WRONLY or O_RDWR (other bits ignored), as the connection's caller.
 * Returns a handle >= 0 and, when node_info is not NULL, what the node is; or -1 with errno.
 */
int nvmegate_client_open(nvmegate_client *client, const char *node, int oflags, nvmegate_client_node *node_info);

/** Closes a handle of this connection: 0, or -1 with errno (EBADF). */
int nvmegate_client_close(nvmegate_client *client, int handle);

/**
 * As ioctl(2) on a Linux NVMe node, through the broker: NVME_IOCTL_ID, _RESET, _SUBSYS_RESET,
 * _RESCAN, _SUBMIT_IO (struct nvme_user_io), _ADMIN_CMD and _IO_CMD (struct nvme_passthru_cmd,
 * 72 bytes), _ADMIN64_CMD and _IO64_CMD (struct nvme_passthru_cmd64, 80 bytes). arg points at
 * the caller's struct, whose addr and metadata are pointers into this process.
 *
 * For a command whose opcode has bit 0 set (host to controller), the data and metadata buffers
 * are sent; for the others, the buffers the broker returns are received straight into the
 * caller's, only when the command was executed (ret >= 0). The result is written back as the
 * kernel writes it, only when ret >= 0: 32 bits into a 72-byte struct's result, 64 into an
 * 80-byte one's; a refused command leaves the struct and the buffers untouched.
 *
 * Returns 0, the positive NVMe status, the NSID for NVME_IOCTL_ID, or -1 with errno.
 */
int nvmegate_client_ioctl(nvmegate_client *client, int handle, unsigned long request, void *arg);

/**
 * As nvmegate_check_batch, through the broker: decides `count` 64-byte submission entries as
 * `handle` would, without executing them; queue 0 admin, 1 I/O; verdicts[i] = 0 allow or the
 * errno the ioctl would return. Batches larger than one frame holds are sent in several.
 * Returns count, or -1 with errno (verdicts then unspecified).
 */
long nvmegate_client_check_batch(nvmegate_client *client, int handle, int queue, const void *sqes, size_t count,
                                 uint8_t *verdicts);

/**
 * The broker's counters in Prometheus's text exposition format, NUL-terminated, in memory the
 * caller frees with free(); *length (when not NULL) gets the text's length. NULL with errno on
 * failure: EACCES for a caller other than root and the broker's own uid.
 */
char *nvmegate_client_metrics(nvmegate_client *client, size_t *length);

#ifdef __cplusplus
}
#endif

#endif /* NVMEGATE_CLIENT_H */
