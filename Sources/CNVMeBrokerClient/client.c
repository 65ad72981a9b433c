/*
 * client.c: the broker's C client (nvmegate_client.h), wire format version 1
 * (Sources/NVMeBroker/WireFormat.md).
 *
 * Every call takes the client's mutex, sends one request frame and reads its one reply before
 * letting go. Caller buffers are sent from and received into in place (sendmsg and recv
 * straight from and to addr / metadata), so a command costs no copy of its data here and no
 * allocation, and a bad caller pointer is the kernel's EFAULT, not a crash. Nothing a reply
 * says is trusted: its length, tag, type, errno and every length in it are checked against
 * what was asked before a byte lands in the caller's memory.
 */
#define _GNU_SOURCE
#include "nvmegate_client.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>
#include <linux/nvme_ioctl.h>

enum {
    WIRE_VERSION = 1,
    HEADER_SIZE = 16,
    /* An IOCTL request body before the argument struct. */
    IOCTL_FIXED = 32,
    /* The smallest max_frame a broker can announce: a header, the IOCTL fields, an 80-byte struct. */
    MIN_MAX_FRAME = HEADER_SIZE + IOCTL_FIXED + 80,
    CHECK_BATCH_FIXED = 16,
    /* ret and errno, at the start of every reply body. */
    REPLY_STATUS = 8,
    ENTRY_SIZE = 64,
    MAX_NODE_NAME = 255,
};

enum { T_HELLO = 1, T_OPEN = 2, T_CLOSE = 3, T_IOCTL = 4, T_CHECK_BATCH = 5, T_METRICS = 6 };

/* The LBA data and metadata sizes of an open handle: NVME_IOCTL_SUBMIT_IO's lengths are in blocks. */
struct handle_sizes {
    int handle;
    uint32_t lba_data_size, metadata_size;
};

struct nvmegate_client {
    pthread_mutex_t lock;
    int fd;
    /* The stream cannot be used any more: every call fails with EIO. */
    int broken;
    uint32_t tag;
    nvmegate_client_hello hello;
    struct handle_sizes *handles;
    size_t handle_count, handle_capacity;
};

static void put16(unsigned char *p, uint16_t v) { p[0] = (unsigned char)v; p[1] = (unsigned char)(v >> 8); }
static void put32(unsigned char *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i)); }
static void put64(unsigned char *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i)); }
static uint16_t get16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t get32(const unsigned char *p) { return get16(p) | (uint32_t)get16(p + 2) << 16; }
static uint64_t get64(const unsigned char *p) { return get32(p) | (uint64_t)get32(p + 4) << 32; }

/* Marks the stream unusable and shuts it down, so the broker sees the end and drops the
 * connection's handles; the descriptor stays open until nvmegate_client_destroy (its number
 * may be what a caller holds). */
static void break_connection(struct nvmegate_client *c) {
    if (!c->broken) shutdown(c->fd, SHUT_RDWR);
    c->broken = 1;
}

/* Sends a whole frame (iov, with empty parts allowed), through partial sends and EINTR, without
 * SIGPIPE. Returns 0 or an errno: EFAULT when a caller buffer could not be read (the stream is
 * broken only if part of the frame had gone), EIO when the connection failed. */
static int send_frame(struct nvmegate_client *c, struct iovec *iov, int count) {
    size_t sent = 0;
    while (count > 0) {
        if (iov->iov_len == 0) { iov++; count--; continue; }
        struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)count};
        ssize_t n = sendmsg(c->fd, &m, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            if (e == EFAULT && sent == 0) return EFAULT;
            break_connection(c);
            return e == EFAULT ? EFAULT : EIO;
        }
        sent += (size_t)n;
        while (count > 0 && (size_t)n >= iov->iov_len) { n -= (ssize_t)iov->iov_len; iov++; count--; }
        if (count > 0) { iov->iov_base = (char *)iov->iov_base + n; iov->iov_len -= (size_t)n; }
    }
    return 0;
}

/* Receives exactly `length` bytes into `buffer` (this file's memory), through partial reads and
 * EINTR. Returns 0, or EIO at the end of the stream or on a failure (the stream is then broken). */
static int receive(struct nvmegate_client *c, void *buffer, size_t length) {
    char *p = buffer;
    while (length > 0) {
        ssize_t n = recv(c->fd, p, length, MSG_WAITALL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) { break_connection(c); return EIO; }
        p += n;
        length -= (size_t)n;
    }
    return 0;
}

/* Receives `length` bytes into the caller's `buffer`; if the buffer turns out not writable, reads
 * the rest of them into scratch memory so the stream stays in step. 0, EFAULT or EIO. */
static int receive_into_caller(struct nvmegate_client *c, void *buffer, size_t length) {
    char *p = buffer;
    size_t done = 0;
    while (done < length) {
        ssize_t n = recv(c->fd, p + done, length - done, MSG_WAITALL);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EFAULT) break;
        if (n <= 0) { break_connection(c); return EIO; }
        done += (size_t)n;
    }
    if (done == length) return 0;
    unsigned char scratch[4096];
    while (done < length) {
        size_t chunk = length - done < sizeof scratch ? length - done : sizeof scratch;
        int e = receive(c, scratch, chunk);
        if (e) return e;
        done += chunk;
    }
    return EFAULT;
}

/* The errno of a wire error; the broker closes the connection after 1, 4 and 5. */
static int wire_error(struct nvmegate_client *c, uint32_t error) {
    switch (error) {
    case 1: break_connection(c); return EPROTONOSUPPORT;
    case 2: return EOPNOTSUPP;
    case 3: return EINVAL;
    case 4: break_connection(c); return EMSGSIZE;
    case 5: break_connection(c); return EAGAIN;
    default: break_connection(c); return EPROTO;
    }
}

static int all_zero(const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++) if (p[i]) return 0;
    return 1;
}

/* Writes the 16-byte header of a request frame of `length` bytes. */
static void put_header(unsigned char *h, uint32_t length, uint16_t type, uint32_t tag) {
    put32(h, length);
    put16(h + 4, WIRE_VERSION);
    put16(h + 6, type);
    put32(h + 8, tag);
    put32(h + 12, 0);
}

/* A reply's status: ret and errno when ret is -1. */
struct status {
    int32_t ret;
    int error;
};

/* Reads the reply to request `type` / `tag`: its header, then ret and errno. The body must be
 * REPLY_STATUS to `max_body` bytes long, and exactly `failed_body` when ret is -1 (REPLY_STATUS;
 * an IOCTL's adds its result and lengths, all 0). On success returns 0 with *status and *rest
 * (the body bytes after ret and errno, still to be read); else an errno, the stream in step
 * (wire errors 2 and 3) or broken (anything that breaks the format: EPROTO). */
static int read_reply(struct nvmegate_client *c, uint16_t type, uint32_t tag, size_t max_body, size_t failed_body,
                      struct status *status, size_t *rest) {
    unsigned char h[HEADER_SIZE + REPLY_STATUS];
    int e = receive(c, h, HEADER_SIZE);
    if (e) return e;
    uint32_t length = get32(h), error = get32(h + 12), reply_tag = get32(h + 8);
    uint16_t version = get16(h + 4), reply_type = get16(h + 6);
    if (error == 5 && length == HEADER_SIZE && (reply_tag == 0 || reply_tag == tag)) return wire_error(c, error);
    if (reply_tag != tag || reply_type != type || length < HEADER_SIZE) { break_connection(c); return EPROTO; }
    if (error != 0) {
        if (length != HEADER_SIZE) { break_connection(c); return EPROTO; }
        return wire_error(c, error);
    }
    size_t body = length - HEADER_SIZE;
    if (version != WIRE_VERSION || body < REPLY_STATUS || body > max_body) { break_connection(c); return EPROTO; }
    e = receive(c, h + HEADER_SIZE, REPLY_STATUS);
    if (e) return e;
    status->ret = (int32_t)get32(h + HEADER_SIZE);
    int32_t code = (int32_t)get32(h + HEADER_SIZE + 4);
    if (status->ret == -1) {
        if (code <= 0 || code > 4095 || body != failed_body) { break_connection(c); return EPROTO; }
        status->error = code;
        if (body > REPLY_STATUS) {
            /* An IOCTL's result, data_length and metadata_length: all 0, nothing for the caller. */
            unsigned char fields[16];
            e = receive(c, fields, sizeof fields);
            if (e) return e;
            if (!all_zero(fields, sizeof fields)) { break_connection(c); return EPROTO; }
        }
        *rest = 0;
        return 0;
    }
    if (status->ret < -1 || code != 0) { break_connection(c); return EPROTO; }
    status->error = 0;
    *rest = body - REPLY_STATUS;
    return 0;
}

static void report(char *err, size_t err_len, const char *path, const char *what, int error) {
    if (err && err_len > 0) snprintf(err, err_len, "%s: %s%s", path, what, strerror(error));
}

/* After a failed send of HELLO: whether the broker had answered busy and closed before the
 * frame went (its busy header is then waiting, already received). Never blocks. */
static int busy_pending(struct nvmegate_client *c) {
    unsigned char h[HEADER_SIZE];
    ssize_t n = recv(c->fd, h, sizeof h, MSG_DONTWAIT);
    return n == HEADER_SIZE && get32(h) == HEADER_SIZE && get32(h + 12) == 5;
}

static int hello(struct nvmegate_client *c) {
    unsigned char f[HEADER_SIZE + 4];
    put_header(f, sizeof f, T_HELLO, ++c->tag);
    put16(f + HEADER_SIZE, WIRE_VERSION);
    put16(f + HEADER_SIZE + 2, WIRE_VERSION);
    struct iovec iov = {f, sizeof f};
    int e = send_frame(c, &iov, 1);
    if (e == EIO && busy_pending(c)) return EAGAIN;
    if (e) return e;
    struct status s;
    size_t rest;
    e = read_reply(c, T_HELLO, c->tag, REPLY_STATUS + 24, REPLY_STATUS, &s, &rest);
    if (e) return e;
    if (s.ret == -1) { break_connection(c); return s.error; }
    unsigned char b[24];
    if (rest != sizeof b) { break_connection(c); return EPROTO; }
    e = receive(c, b, sizeof b);
    if (e) return e;
    c->hello = (nvmegate_client_hello){
        .version = get16(b), .max_frame = get32(b + 4), .max_transfer = get32(b + 8),
        .uid = get32(b + 12), .gid = get32(b + 16), .pid = get32(b + 20)};
    if (c->hello.version != WIRE_VERSION || c->hello.max_frame < MIN_MAX_FRAME) { break_connection(c); return EPROTO; }
    return 0;
}

/* Connects, waiting out a signal: connect(2)'s errno or 0. */
static int connect_socket(int fd, const struct sockaddr_un *address) {
    if (connect(fd, (const struct sockaddr *)address, sizeof *address) == 0) return 0;
    if (errno != EINTR) return errno;
    /* Interrupted: the connection goes on in the background; wait for its outcome. */
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    while (poll(&p, 1, -1) < 0)
        if (errno != EINTR) return errno;
    int error = 0;
    socklen_t length = sizeof error;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0) return errno;
    return error;
}

nvmegate_client *nvmegate_client_connect(const char *socket_path, int flags, char *err, size_t err_len) {
    if (!socket_path) { report(err, err_len, "(null)", "", EFAULT); errno = EFAULT; return NULL; }
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    size_t length = strlen(socket_path);
    if (length == 0 || length >= sizeof address.sun_path) {
        int e = length == 0 ? ENOENT : ENAMETOOLONG;
        report(err, err_len, socket_path, "", e);
        errno = e;
        return NULL;
    }
    memcpy(address.sun_path, socket_path, length);
    if (flags & ~NVMEGATE_CLIENT_CLOEXEC) { report(err, err_len, socket_path, "flags: ", EINVAL); errno = EINVAL; return NULL; }
    struct nvmegate_client *c = calloc(1, sizeof *c);
    if (!c) { report(err, err_len, socket_path, "", ENOMEM); errno = ENOMEM; return NULL; }
    pthread_mutex_init(&c->lock, NULL);
    c->fd = socket(AF_UNIX, SOCK_STREAM | (flags & NVMEGATE_CLIENT_CLOEXEC ? SOCK_CLOEXEC : 0), 0);
    int e = c->fd < 0 ? errno : connect_socket(c->fd, &address);
    const char *what = "";
    if (!e) { e = hello(c); what = "HELLO: "; }
    if (e) {
        report(err, err_len, socket_path, what, e);
        nvmegate_client_destroy(c);
        errno = e;
        return NULL;
    }
    return c;
}

void nvmegate_client_forget(nvmegate_client *c) {
    if (!c) return;
    pthread_mutex_destroy(&c->lock);
    free(c->handles);
    free(c);
}

void nvmegate_client_destroy(nvmegate_client *c) {
    if (!c) return;
    if (c->fd >= 0) close(c->fd);
    nvmegate_client_forget(c);
}

int nvmegate_client_fd(const nvmegate_client *c) { return c ? c->fd : -1; }

nvmegate_client_hello nvmegate_client_info(const nvmegate_client *c) {
    return c ? c->hello : (nvmegate_client_hello){0};
}

static struct handle_sizes *find_handle(struct nvmegate_client *c, int handle) {
    for (size_t i = 0; i < c->handle_count; i++)
        if (c->handles[i].handle == handle) return &c->handles[i];
    return NULL;
}

/* Remembers an open handle's block sizes; 0 or ENOMEM. */
static int remember_handle(struct nvmegate_client *c, int handle, uint32_t lba_data_size, uint32_t metadata_size) {
    struct handle_sizes *h = find_handle(c, handle);
    if (!h) {
        if (c->handle_count == c->handle_capacity) {
            size_t capacity = c->handle_capacity ? 2 * c->handle_capacity : 8;
            struct handle_sizes *grown = realloc(c->handles, capacity * sizeof *grown);
            if (!grown) return ENOMEM;
            c->handles = grown;
            c->handle_capacity = capacity;
        }
        h = &c->handles[c->handle_count++];
    }
    *h = (struct handle_sizes){handle, lba_data_size, metadata_size};
    return 0;
}

static long open_locked(struct nvmegate_client *c, const char *node, size_t length, int oflags,
                        nvmegate_client_node *info, int *error) {
    unsigned char f[HEADER_SIZE + 8 + MAX_NODE_NAME];
    size_t total = HEADER_SIZE + 8 + length;
    put_header(f, (uint32_t)total, T_OPEN, ++c->tag);
    put32(f + HEADER_SIZE, (uint32_t)oflags);
    put32(f + HEADER_SIZE + 4, (uint32_t)length);
    memcpy(f + HEADER_SIZE + 8, node, length);
    struct iovec iov = {f, total};
    struct status s;
    size_t rest;
    unsigned char b[16];
    if ((*error = send_frame(c, &iov, 1))) return -1;
    if ((*error = read_reply(c, T_OPEN, c->tag, REPLY_STATUS + sizeof b, REPLY_STATUS, &s, &rest))) return -1;
    if (s.ret == -1) { *error = s.error; return -1; }
    if (rest != sizeof b) { break_connection(c); *error = EPROTO; return -1; }
    if ((*error = receive(c, b, sizeof b))) return -1;
    nvmegate_client_node n = {get32(b), get32(b + 4), get32(b + 8), get32(b + 12)};
    if (n.kind > NVMEGATE_CLIENT_PARTITION) { break_connection(c); *error = EPROTO; return -1; }
    if ((*error = remember_handle(c, s.ret, n.lba_data_size, n.metadata_size))) {
        /* Without its sizes the handle would misbehave later: give it back. */
        unsigned char g[HEADER_SIZE + 4];
        put_header(g, sizeof g, T_CLOSE, ++c->tag);
        put32(g + HEADER_SIZE, (uint32_t)s.ret);
        struct iovec close_iov = {g, sizeof g};
        struct status ignored;
        if (!send_frame(c, &close_iov, 1)) read_reply(c, T_CLOSE, c->tag, REPLY_STATUS, REPLY_STATUS, &ignored, &rest);
        return -1;
    }
    if (info) *info = n;
    return s.ret;
}

int nvmegate_client_open(nvmegate_client *c, const char *node, int oflags, nvmegate_client_node *info) {
    if (!c || !node) { errno = EFAULT; return -1; }
    int access = oflags & O_ACCMODE;
    if (access != O_RDONLY && access != O_WRONLY && access != O_RDWR) { errno = EINVAL; return -1; }
    size_t length = strnlen(node, MAX_NODE_NAME + 1);
    if (length == 0) { errno = ENOENT; return -1; }
    if (length > MAX_NODE_NAME) { errno = ENAMETOOLONG; return -1; }
    pthread_mutex_lock(&c->lock);
    int error = EIO;
    long r = c->broken ? -1 : open_locked(c, node, length, oflags, info, &error);
    pthread_mutex_unlock(&c->lock);
    if (r < 0) errno = error;
    return (int)r;
}

static long close_locked(struct nvmegate_client *c, int handle, int *error) {
    unsigned char f[HEADER_SIZE + 4];
    put_header(f, sizeof f, T_CLOSE, ++c->tag);
    put32(f + HEADER_SIZE, (uint32_t)handle);
    struct iovec iov = {f, sizeof f};
    struct status s;
    size_t rest;
    if ((*error = send_frame(c, &iov, 1))) return -1;
    if ((*error = read_reply(c, T_CLOSE, c->tag, REPLY_STATUS, REPLY_STATUS, &s, &rest))) return -1;
    if (s.ret == -1) { *error = s.error; return -1; }
    struct handle_sizes *h = find_handle(c, handle);
    if (h) *h = c->handles[--c->handle_count];
    return s.ret;
}

int nvmegate_client_close(nvmegate_client *c, int handle) {
    if (!c) { errno = EFAULT; return -1; }
    pthread_mutex_lock(&c->lock);
    int error = EIO;
    long r = c->broken ? -1 : close_locked(c, handle, &error);
    pthread_mutex_unlock(&c->lock);
    if (r < 0) errno = error;
    return (int)r;
}

/* One ioctl's request and what its reply may carry. */
struct ioctl_plan {
    unsigned char frame[HEADER_SIZE + IOCTL_FIXED + 80];
    size_t arg_length;
    /* Caller buffers: where the data and metadata are, how long, and whether they are sent. */
    uint64_t data_address, metadata_address;
    uint64_t data_length, metadata_length;
    int to_controller;
};

/* The argument struct's length for `request`: 0, 48, 72 or 80; -1 for a request that is not an
 * NVMe ioctl. */
static long argument_length(unsigned long request) {
    switch (request) {
    case NVME_IOCTL_ID: case NVME_IOCTL_RESET: case NVME_IOCTL_SUBSYS_RESET: case NVME_IOCTL_RESCAN: return 0;
    case NVME_IOCTL_SUBMIT_IO: return sizeof(struct nvme_user_io);
    case NVME_IOCTL_ADMIN_CMD: case NVME_IOCTL_IO_CMD: return sizeof(struct nvme_passthru_cmd);
    case NVME_IOCTL_ADMIN64_CMD: case NVME_IOCTL_IO64_CMD: return sizeof(struct nvme_passthru_cmd64);
    default: return -1;
    }
}

static long ioctl_locked(struct nvmegate_client *c, int handle, unsigned long request, void *arg,
                         struct ioctl_plan *p, int *error) {
    const unsigned char *s = p->frame + HEADER_SIZE + IOCTL_FIXED;
    if (request == NVME_IOCTL_SUBMIT_IO) {
        /* Lengths in blocks of the handle's format; the gate checks the rest (unknown handle: EBADF). */
        struct handle_sizes *h = find_handle(c, handle);
        uint64_t blocks = (uint64_t)get16(s + 4) + 1;
        p->metadata_address = get64(s + 8);
        p->data_address = get64(s + 16);
        p->data_length = h ? blocks * h->lba_data_size : 0;
        p->metadata_length = h && p->metadata_address ? blocks * h->metadata_size : 0;
    }
    uint32_t max = c->hello.max_transfer;
    if (p->data_length > max || p->metadata_length > max) { *error = EINVAL; return -1; }
    uint64_t sent_data = p->to_controller && p->data_address ? p->data_length : 0;
    uint64_t sent_metadata = p->to_controller && p->metadata_address ? p->metadata_length : 0;
    uint64_t back_data = !p->to_controller && p->data_address ? p->data_length : 0;
    uint64_t back_metadata = !p->to_controller && p->metadata_address ? p->metadata_length : 0;
    uint64_t total = HEADER_SIZE + IOCTL_FIXED + p->arg_length + sent_data + sent_metadata;
    if (total > c->hello.max_frame || HEADER_SIZE + REPLY_STATUS + 16 + back_data + back_metadata > c->hello.max_frame) {
        *error = EINVAL;
        return -1;
    }
    unsigned char *b = p->frame + HEADER_SIZE;
    put_header(p->frame, (uint32_t)total, T_IOCTL, ++c->tag);
    put32(b, (uint32_t)handle);
    put32(b + 4, 0);
    put64(b + 8, request);
    put32(b + 16, (uint32_t)p->arg_length);
    put32(b + 20, (uint32_t)sent_data);
    put32(b + 24, (uint32_t)sent_metadata);
    put32(b + 28, 0);
    struct iovec iov[3] = {
        {p->frame, HEADER_SIZE + IOCTL_FIXED + p->arg_length},
        {(void *)(uintptr_t)p->data_address, (size_t)sent_data},
        {(void *)(uintptr_t)p->metadata_address, (size_t)sent_metadata},
    };
    if ((*error = send_frame(c, iov, 3))) return -1;
    struct status st;
    size_t rest;
    if ((*error = read_reply(c, T_IOCTL, c->tag, REPLY_STATUS + 16 + back_data + back_metadata, REPLY_STATUS + 16,
                             &st, &rest)))
        return -1;
    if (st.ret == -1) { *error = st.error; return -1; }
    unsigned char r[16];
    if (rest < sizeof r) { break_connection(c); *error = EPROTO; return -1; }
    if ((*error = receive(c, r, sizeof r))) return -1;
    uint64_t result = get64(r);
    uint32_t data = get32(r + 8), metadata = get32(r + 12);
    if (data > back_data || metadata > back_metadata || rest != sizeof r + (uint64_t)data + metadata) {
        break_connection(c);
        *error = EPROTO;
        return -1;
    }
    int fault = data ? receive_into_caller(c, (void *)(uintptr_t)p->data_address, data) : 0;
    if (fault && fault != EFAULT) { *error = fault; return -1; }
    int metadata_fault = metadata ? receive_into_caller(c, (void *)(uintptr_t)p->metadata_address, metadata) : 0;
    if (metadata_fault) fault = metadata_fault;
    if (fault) { *error = fault; return -1; }
    /* Written back as the kernel does, only for an executed command. */
    if (p->arg_length == sizeof(struct nvme_passthru_cmd)) {
        uint32_t low = (uint32_t)result;
        memcpy((char *)arg + offsetof(struct nvme_passthru_cmd, result), &low, sizeof low);
    } else if (p->arg_length == sizeof(struct nvme_passthru_cmd64)) {
        memcpy((char *)arg + offsetof(struct nvme_passthru_cmd64, result), &result, sizeof result);
    }
    return st.ret;
}

int nvmegate_client_ioctl(nvmegate_client *c, int handle, unsigned long request, void *arg) {
    if (!c) { errno = EFAULT; return -1; }
    long length = argument_length(request);
    if (length < 0) { errno = ENOTTY; return -1; }
    if (length > 0 && !arg) { errno = EFAULT; return -1; }
    struct ioctl_plan p = {.arg_length = (size_t)length};
    /* One copy of the struct: what is checked is what is sent, whatever the caller does meanwhile. */
    if (length) memcpy(p.frame + HEADER_SIZE + IOCTL_FIXED, arg, (size_t)length);
    const unsigned char *s = p.frame + HEADER_SIZE + IOCTL_FIXED;
    p.to_controller = length > 0 && (s[0] & 1);
    if (length == sizeof(struct nvme_passthru_cmd) || length == sizeof(struct nvme_passthru_cmd64)) {
        p.metadata_address = get64(s + offsetof(struct nvme_passthru_cmd, metadata));
        p.data_address = get64(s + offsetof(struct nvme_passthru_cmd, addr));
        p.metadata_length = get32(s + offsetof(struct nvme_passthru_cmd, metadata_len));
        p.data_length = get32(s + offsetof(struct nvme_passthru_cmd, data_len));
    }
    pthread_mutex_lock(&c->lock);
    int error = EIO;
    long r = c->broken ? -1 : ioctl_locked(c, handle, request, arg, &p, &error);
    pthread_mutex_unlock(&c->lock);
    if (r < 0) errno = error;
    return (int)r;
}

/* One CHECK_BATCH frame of `count` entries (at most what a frame holds). */
static long check_locked(struct nvmegate_client *c, int handle, int queue, const unsigned char *sqes, size_t count,
                         uint8_t *verdicts, int *error) {
    unsigned char f[HEADER_SIZE + CHECK_BATCH_FIXED];
    put_header(f, (uint32_t)(sizeof f + count * ENTRY_SIZE), T_CHECK_BATCH, ++c->tag);
    put32(f + HEADER_SIZE, (uint32_t)handle);
    put32(f + HEADER_SIZE + 4, (uint32_t)queue);
    put32(f + HEADER_SIZE + 8, (uint32_t)count);
    put32(f + HEADER_SIZE + 12, 0);
    struct iovec iov[2] = {{f, sizeof f}, {(void *)sqes, count * ENTRY_SIZE}};
    struct status s;
    size_t rest;
    if ((*error = send_frame(c, iov, 2))) return -1;
    if ((*error = read_reply(c, T_CHECK_BATCH, c->tag, REPLY_STATUS + count, REPLY_STATUS, &s, &rest))) return -1;
    if (s.ret == -1) { *error = s.error; return -1; }
    if ((size_t)s.ret != count || rest != count) { break_connection(c); *error = EPROTO; return -1; }
    if (count && (*error = receive_into_caller(c, verdicts, count))) return -1;
    return s.ret;
}

long nvmegate_client_check_batch(nvmegate_client *c, int handle, int queue, const void *sqes, size_t count,
                                 uint8_t *verdicts) {
    if (!c) { errno = EFAULT; return -1; }
    if (queue != 0 && queue != 1) { errno = EINVAL; return -1; }
    if (count > 0 && (!sqes || !verdicts)) { errno = EFAULT; return -1; }
    if (count > LONG_MAX) { errno = EINVAL; return -1; }
    size_t per_frame = (c->hello.max_frame - HEADER_SIZE - CHECK_BATCH_FIXED) / ENTRY_SIZE;
    size_t done = 0;
    do {
        size_t n = count - done < per_frame ? count - done : per_frame;
        long r;
        pthread_mutex_lock(&c->lock);
        int error = EIO;
        r = c->broken ? -1 : check_locked(c, handle, queue, (const unsigned char *)sqes + done * ENTRY_SIZE, n,
                                           verdicts + done, &error);
        pthread_mutex_unlock(&c->lock);
        if (r < 0) { errno = error; return -1; }
        done += n;
    } while (done < count);
    return (long)count;
}

static long metrics_locked(struct nvmegate_client *c, char **text, int *error) {
    unsigned char f[HEADER_SIZE];
    put_header(f, sizeof f, T_METRICS, ++c->tag);
    struct iovec iov = {f, sizeof f};
    struct status s;
    size_t rest;
    if ((*error = send_frame(c, &iov, 1))) return -1;
    if ((*error = read_reply(c, T_METRICS, c->tag, c->hello.max_frame - HEADER_SIZE, REPLY_STATUS, &s, &rest))) return -1;
    if (s.ret == -1) { *error = s.error; return -1; }
    char *t = malloc(rest + 1);
    unsigned char scratch[4096];
    for (size_t done = 0; done < rest;) {
        size_t n = rest - done < sizeof scratch ? rest - done : sizeof scratch;
        if ((*error = receive(c, t ? (unsigned char *)t + done : scratch, n))) { free(t); return -1; }
        done += n;
    }
    if (!t) { *error = ENOMEM; return -1; }
    t[rest] = 0;
    *text = t;
    return (long)rest;
}

char *nvmegate_client_metrics(nvmegate_client *c, size_t *length) {
    if (!c) { errno = EFAULT; return NULL; }
    char *text = NULL;
    pthread_mutex_lock(&c->lock);
    int error = EIO;
    long n = c->broken ? -1 : metrics_locked(c, &text, &error);
    pthread_mutex_unlock(&c->lock);
    if (n < 0) { errno = error; return NULL; }
    if (length) *length = (size_t)n;
    return text;
}
