/*
 * preload.c: libnvmegate-preload.so. LD_PRELOADed into an unmodified program (nvme-cli,
 * smartctl, ...), it makes the NVMe device paths named in its configuration reach an nvmegate
 * broker (`nvmegate serve`) instead of the kernel; every other path and descriptor goes to libc
 * untouched.
 *
 * Configuration, read once, at the first call that needs it:
 *   NVMEGATE_PRELOAD="PATH=SOCKET[,PATH=SOCKET...]"
 *   NVMEGATE_PRELOAD_CONFIG=FILE, lines "PATH SOCKET" (blank lines and "#" comments ignored)
 *   NVMEGATE_PRELOAD_QUIET (set to anything): no messages on standard error
 * PATH is absolute and compared as written (no symlinks followed); the node opened on the broker
 * is its basename (/dev/nvme0 -> nvme0, /dev/ng0n1 -> ng0n1). A configuration with any error
 * redirects nothing, and says why on standard error.
 *
 * What a mapped path does:
 *   open, open64, __open_2, __open64_2, openat, openat64, __openat_2, __openat64_2 connect to
 *     the broker and OPEN the node with the open mode (O_RDONLY, O_WRONLY or O_RDWR; 3 as
 *     O_RDWR; O_CLOEXEC kept, other flags ignored). The descriptor returned is the connection's
 *     socket, so its number is real and nothing else can take it while it is open. When the
 *     broker cannot be reached the open fails, with one line on standard error naming the
 *     socket, and errno: ECONNREFUSED when nothing listens there (no socket file, or a stale
 *     one), else connect(2)'s errno (EACCES: the socket's mode), EAGAIN when the broker is at
 *     its connection limit. A node the broker refuses fails with the broker's errno (ENOENT...).
 *   ioctl on such a descriptor goes to the broker (nvmegate_client_ioctl): the NVMe ioctls as
 *     the kernel would answer them, ENOTTY for any other request.
 *   fstat, fstat64, fstatat(AT_EMPTY_PATH), and stat, lstat, fstatat on the path itself (also
 *     the pre-2.33 __fxstat / __xstat / __lxstat forms) report a device without asking anyone:
 *     a character device for nvmeX and ngXnY, a block device for nvmeXnY and nvmeXnYpZ, owned
 *     by root, with made-up device numbers (not the host's).
 *   close closes the connection; the broker closes the node's handle with it.
 * Not intercepted: read/write on the descriptor, fopen of the path, statx, sysfs (nvme list,
 * effects-log without --csi), and descriptors copied by dup or fcntl(F_DUPFD), which are plain
 * sockets (an NVMe ioctl on them fails with ENOTTY). A child made by fork shares the
 * connection: only one of the two may use it.
 *
 * No Swift here: the library loads into any process with libc alone.
 */
#define _GNU_SOURCE
#include "nvmegate_preload.h"
#include "nvmegate_client.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

_Static_assert(sizeof(struct stat) == sizeof(struct stat64), "struct stat and stat64 share a layout (64-bit Linux)");

#define EXPORT __attribute__((visibility("default")))

/* The made-up device numbers: controllers and generic nodes are character devices with
 * dynamic majors on Linux (these are typical), namespaces block devices of blkext (259). */
enum { CONTROLLER_MAJOR = 241, GENERIC_MAJOR = 240, BLOCK_MAJOR = 259 };
/* A configuration file larger than this is an error. */
enum { MAX_CONFIG_FILE = 1 << 20 };

struct mapping {
    char *path;
    char *socket;
    /* The basename of path: the node opened on the broker. */
    const char *node;
};

static struct mapping *mappings;
static size_t mapping_count;
static int quiet;
/* When the configuration was read: the times the made-up stat results carry. */
static struct timespec loaded;

/* libc's functions, found once with dlsym(RTLD_NEXT). */
static int (*real_open)(const char *, int, ...);
static int (*real_open64)(const char *, int, ...);
static int (*real_open_2)(const char *, int);
static int (*real_open64_2)(const char *, int);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_openat64)(int, const char *, int, ...);
static int (*real_openat_2)(int, const char *, int);
static int (*real_openat64_2)(int, const char *, int);
static int (*real_close)(int);
static int (*real_ioctl)(int, unsigned long, ...);
static int (*real_fstat)(int, struct stat *);
static int (*real_fstat64)(int, struct stat64 *);
static int (*real_stat)(const char *, struct stat *);
static int (*real_stat64)(const char *, struct stat64 *);
static int (*real_lstat)(const char *, struct stat *);
static int (*real_lstat64)(const char *, struct stat64 *);
static int (*real_fstatat)(int, const char *, struct stat *, int);
static int (*real_fstatat64)(int, const char *, struct stat64 *, int);
static int (*real_fxstat)(int, int, struct stat *);
static int (*real_fxstat64)(int, int, struct stat64 *);
static int (*real_xstat)(int, const char *, struct stat *);
static int (*real_xstat64)(int, const char *, struct stat64 *);
static int (*real_lxstat)(int, const char *, struct stat *);
static int (*real_lxstat64)(int, const char *, struct stat64 *);

/* One line on standard error, unless NVMEGATE_PRELOAD_QUIET is set. */
static void say(const char *format, ...) {
    if (quiet) return;
    char line[1024];
    va_list ap;
    va_start(ap, format);
    int n = vsnprintf(line, sizeof line - 1, format, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n > sizeof line - 2) n = (int)sizeof line - 2;
    line[n++] = '\n';
    ssize_t ignored = write(STDERR_FILENO, line, (size_t)n);
    (void)ignored;
}

/* Adds PATH -> SOCKET (both copied) to `list`; NULL when fine, else what is wrong. */
static const char *add_mapping(struct mapping **list, size_t *count, const char *path, size_t path_length,
                               const char *socket, size_t socket_length) {
    if (path_length == 0 || path[0] != '/') return "PATH must be absolute";
    if (path_length >= PATH_MAX) return "PATH is too long";
    if (path[path_length - 1] == '/') return "PATH must name a node, not a directory";
    if (socket_length == 0) return "SOCKET is empty";
    if (socket_length >= sizeof(((struct sockaddr_un *)0)->sun_path)) return "SOCKET does not fit a Unix socket address";
    const char *node = memrchr(path, '/', path_length) + 1;
    if (path + path_length - node > 255) return "the node name (PATH's last part) is longer than 255 bytes";
    for (size_t i = 0; i < *count; i++)
        if (strlen((*list)[i].path) == path_length && memcmp((*list)[i].path, path, path_length) == 0)
            return "PATH is mapped twice";
    struct mapping *grown = realloc(*list, (*count + 1) * sizeof *grown);
    if (!grown) return "out of memory";
    *list = grown;
    struct mapping *m = &grown[*count];
    m->path = strndup(path, path_length);
    m->socket = strndup(socket, socket_length);
    if (!m->path || !m->socket) { free(m->path); free(m->socket); return "out of memory"; }
    m->node = m->path + (node - path);
    (*count)++;
    return NULL;
}

/* NVMEGATE_PRELOAD="PATH=SOCKET[,PATH=SOCKET...]": 0, or -1 after saying what is wrong. */
static int parse_list(const char *list, struct mapping **out, size_t *count) {
    size_t index = 1;
    for (const char *p = list; *p; index++) {
        const char *end = strchrnul(p, ',');
        const char *equals = memchr(p, '=', (size_t)(end - p));
        const char *problem = equals ? add_mapping(out, count, p, (size_t)(equals - p), equals + 1, (size_t)(end - equals - 1))
                                     : "expected PATH=SOCKET";
        if (problem) {
            say("nvmegate-preload: NVMEGATE_PRELOAD entry %zu (\"%.*s\"): %s; no path is redirected", index,
                (int)(end - p), p, problem);
            return -1;
        }
        p = *end ? end + 1 : end;
    }
    return 0;
}

/* Reads the whole file at `path` with raw system calls (this library's own open must not be
 * reentered while it loads): a NUL-terminated buffer to free, or NULL with errno. */
static char *read_file(const char *path) {
    int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return NULL;
    char *text = malloc(MAX_CONFIG_FILE + 1);
    size_t length = 0;
    int error = text ? 0 : ENOMEM;
    while (!error && length <= MAX_CONFIG_FILE) {
        ssize_t n = read(fd, text + length, MAX_CONFIG_FILE + 1 - length);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) error = errno;
        if (n <= 0) break;
        length += (size_t)n;
    }
    if (!error && length > MAX_CONFIG_FILE) error = EFBIG;
    syscall(SYS_close, fd);
    if (error) { free(text); errno = error; return NULL; }
    text[length] = 0;
    return text;
}

/* NVMEGATE_PRELOAD_CONFIG=FILE, lines "PATH SOCKET": 0, or -1 after saying what is wrong. */
static int parse_file(const char *file, struct mapping **out, size_t *count) {
    char *text = read_file(file);
    if (!text) {
        say("nvmegate-preload: NVMEGATE_PRELOAD_CONFIG %s: %s; no path is redirected", file, strerror(errno));
        return -1;
    }
    int status = 0;
    size_t number = 1;
    for (char *line = text; *line && status == 0; number++) {
        char *end = strchrnul(line, '\n');
        char *next_line = *end ? end + 1 : end;
        *end = 0;
        char *comment = strchr(line, '#');
        if (comment) *comment = 0;
        char *state, *path = strtok_r(line, " \t\r", &state), *socket = strtok_r(NULL, " \t\r", &state);
        if (path) {
            const char *problem = !socket || strtok_r(NULL, " \t\r", &state) ? "expected \"PATH SOCKET\""
                                  : add_mapping(out, count, path, strlen(path), socket, strlen(socket));
            if (problem) {
                say("nvmegate-preload: %s:%zu: %s; no path is redirected", file, number, problem);
                status = -1;
            }
        }
        line = next_line;
    }
    free(text);
    return status;
}

static void *next(const char *name) { return dlsym(RTLD_NEXT, name); }

/* Calls libc's `function`, or fails with ENOSYS when this libc has none (a program built for
 * another one). */
#define REAL(function, ...) ((function) ? (function)(__VA_ARGS__) : (errno = ENOSYS, -1))

static void load(void) {
    real_open = next("open");
    real_open64 = next("open64");
    real_open_2 = next("__open_2");
    real_open64_2 = next("__open64_2");
    real_openat = next("openat");
    real_openat64 = next("openat64");
    real_openat_2 = next("__openat_2");
    real_openat64_2 = next("__openat64_2");
    real_close = next("close");
    real_ioctl = next("ioctl");
    real_fstat = next("fstat");
    real_fstat64 = next("fstat64");
    real_stat = next("stat");
    real_stat64 = next("stat64");
    real_lstat = next("lstat");
    real_lstat64 = next("lstat64");
    real_fstatat = next("fstatat");
    real_fstatat64 = next("fstatat64");
    real_fxstat = next("__fxstat");
    real_fxstat64 = next("__fxstat64");
    real_xstat = next("__xstat");
    real_xstat64 = next("__xstat64");
    real_lxstat = next("__lxstat");
    real_lxstat64 = next("__lxstat64");

    quiet = getenv("NVMEGATE_PRELOAD_QUIET") != NULL;
    clock_gettime(CLOCK_REALTIME, &loaded);
    const char *list = getenv("NVMEGATE_PRELOAD"), *file = getenv("NVMEGATE_PRELOAD_CONFIG");
    struct mapping *found = NULL;
    size_t count = 0;
    if ((list && parse_list(list, &found, &count) != 0) || (file && *file && parse_file(file, &found, &count) != 0)) {
        for (size_t i = 0; i < count; i++) { free(found[i].path); free(found[i].socket); }
        free(found);
        return;
    }
    mappings = found;
    mapping_count = count;
}

static pthread_once_t once = PTHREAD_ONCE_INIT;

static inline void init(void) { pthread_once(&once, load); }

/* The mapping for a path as the program wrote it, NULL when the path is not redirected. Mapped
 * paths are absolute, so openat's directory never matters. */
static const struct mapping *mapped(const char *path) {
    if (mapping_count == 0 || !path || path[0] != '/') return NULL;
    for (size_t i = 0; i < mapping_count; i++)
        if (strcmp(mappings[i].path, path) == 0) return &mappings[i];
    return NULL;
}

/* An open mapped descriptor. The table holds one reference, each call in progress another;
 * the last one closes the connection. */
struct device {
    int fd;
    int handle;
    atomic_int references;
    nvmegate_client *client;
    const struct mapping *mapping;
    nvmegate_client_node info;
    /* The socket's identity: a descriptor number reused behind this library's back (dup2 onto
     * it, close_range) is no longer this device, and then `stale`: its socket is gone already. */
    dev_t socket_device;
    ino_t socket_inode;
    atomic_int stale;
};

static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
/* Indexed by descriptor; `open_devices` lets calls on other descriptors skip the lock. */
static struct device **table;
static size_t table_size;
static atomic_size_t open_devices;

/* Drops a reference; the last closes the connection (or only frees the client when its socket
 * was closed behind this library's back). */
static void release(struct device *d) {
    if (atomic_fetch_sub(&d->references, 1) != 1) return;
    if (atomic_load(&d->stale)) nvmegate_client_forget(d->client);
    else nvmegate_client_destroy(d->client);
    free(d);
}

/* Takes `fd`'s device out of the table, only if it is `expected` when that is not NULL; the
 * device taken (the caller gets the table's reference), or NULL. */
static struct device *take(int fd, const struct device *expected) {
    struct device *d = NULL;
    pthread_mutex_lock(&table_lock);
    if (fd >= 0 && (size_t)fd < table_size && table[fd] && (!expected || table[fd] == expected)) {
        d = table[fd];
        table[fd] = NULL;
        atomic_fetch_sub(&open_devices, 1);
    }
    pthread_mutex_unlock(&table_lock);
    return d;
}

/* Whether `fd` still is `d`'s socket. */
static int still_ours(const struct device *d) {
    struct stat64 st;
    return REAL(real_fstat64, d->fd, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == d->socket_device
        && st.st_ino == d->socket_inode;
}

/* The device open on `fd` with a reference for the caller to release, or NULL (the call then
 * goes to libc). A device whose descriptor was reused is forgotten here. */
static struct device *acquire(int fd) {
    if (atomic_load_explicit(&open_devices, memory_order_acquire) == 0) return NULL;
    struct device *d = NULL;
    pthread_mutex_lock(&table_lock);
    if (fd >= 0 && (size_t)fd < table_size && (d = table[fd])) atomic_fetch_add(&d->references, 1);
    pthread_mutex_unlock(&table_lock);
    if (!d || still_ours(d)) return d;
    atomic_store(&d->stale, 1);
    if (take(fd, d)) release(d);
    release(d);
    return NULL;
}

/* Enters `d` in the table at d->fd: 0, or ENOMEM. */
static int enter(struct device *d) {
    int error = 0;
    pthread_mutex_lock(&table_lock);
    size_t fd = (size_t)d->fd;
    if (fd >= table_size) {
        size_t size = table_size ? table_size : 64;
        while (size <= fd) size *= 2;
        struct device **grown = realloc(table, size * sizeof *grown);
        if (grown) {
            memset(grown + table_size, 0, (size - table_size) * sizeof *grown);
            table = grown;
            table_size = size;
        } else {
            error = ENOMEM;
        }
    }
    if (!error) {
        /* A number still in the table is a descriptor closed behind this library's back and
         * now reused by this very socket: that device's socket is gone. */
        struct device *old = table[fd];
        table[fd] = d;
        if (old) atomic_store(&old->stale, 1);
        else atomic_fetch_add(&open_devices, 1);
        pthread_mutex_unlock(&table_lock);
        if (old) release(old);
        return 0;
    }
    pthread_mutex_unlock(&table_lock);
    return error;
}

/* Opens a mapped path on its broker: the connection's descriptor, or -1 with errno. */
static int open_device(const struct mapping *m, int flags) {
    char reason[512];
    nvmegate_client *c = nvmegate_client_connect(m->socket, flags & O_CLOEXEC ? NVMEGATE_CLIENT_CLOEXEC : 0, reason,
                                                 sizeof reason);
    if (!c) {
        int error = errno;
        say("nvmegate-preload: %s: cannot reach the nvmegate broker at %s", m->path, reason);
        /* No socket file means no broker: "No such file or directory" would name the device. */
        errno = error == ENOENT ? ECONNREFUSED : error;
        return -1;
    }
    int access = flags & O_ACCMODE;
    struct device *d = calloc(1, sizeof *d);
    struct stat64 st;
    int error = !d ? ENOMEM : REAL(real_fstat64, nvmegate_client_fd(c), &st) != 0 ? errno : 0;
    if (!error) {
        /* 3 (read and write, ioctl only) needs both permissions on Linux: open read-write. */
        d->handle = nvmegate_client_open(c, m->node, access == O_ACCMODE ? O_RDWR : access, &d->info);
        if (d->handle < 0) error = errno;
    }
    if (!error) {
        d->fd = nvmegate_client_fd(c);
        d->client = c;
        d->mapping = m;
        d->socket_device = st.st_dev;
        d->socket_inode = st.st_ino;
        atomic_init(&d->references, 1);
        error = enter(d);
    }
    if (error) {
        free(d);
        nvmegate_client_destroy(c);
        errno = error;
        return -1;
    }
    return d->fd;
}

/* The mode argument of open and openat, present only when the flags need one. */
#define MODE_ARGUMENT(flags, last)                                                               \
    mode_t mode = 0;                                                                             \
    if (__OPEN_NEEDS_MODE(flags)) {                                                              \
        va_list ap;                                                                              \
        va_start(ap, last);                                                                      \
        mode = va_arg(ap, mode_t);                                                               \
        va_end(ap);                                                                              \
    }

EXPORT int open(const char *path, int flags, ...) {
    MODE_ARGUMENT(flags, flags)
    init();
    const struct mapping *m = mapped(path);
    return m ? open_device(m, flags) : REAL(real_open, path, flags, mode);
}

EXPORT int open64(const char *path, int flags, ...) {
    MODE_ARGUMENT(flags, flags)
    init();
    const struct mapping *m = mapped(path);
    return m ? open_device(m, flags) : REAL(real_open64, path, flags, mode);
}

/* The FORTIFY_SOURCE forms (nvme-cli calls __open64_2, smartctl __open_2). */
EXPORT int __open_2(const char *path, int flags) {
    init();
    const struct mapping *m = mapped(path);
    return m ? open_device(m, flags) : REAL(real_open_2, path, flags);
}

EXPORT int __open64_2(const char *path, int flags) {
    init();
    const struct mapping *m = mapped(path);
    return m ? open_device(m, flags) : REAL(real_open64_2, path, flags);
}

EXPORT int openat(int dirfd, const char *path, int flags, ...) {
    MODE_ARGUMENT(flags, flags)
    init();
    const struct mapping *m = mapped(path);
    return m ? open_device(m, flags) : REAL(real_openat, dirfd, path, flags, mode);
}

EXPORT int openat64(int dirfd, const char *path, int flags, ...) {
    MODE_ARGUMENT(flags, flags)
    init();
    const struct mapping *m = mapped(path);
    return m ? open_device(m, flags) : REAL(real_openat64, dirfd, path, flags, mode);
}

EXPORT int __openat_2(int dirfd, const char *path, int flags) {
    init();
    const struct mapping *m = mapped(path);
    return m ? open_device(m, flags) : REAL(real_openat_2, dirfd, path, flags);
}

EXPORT int __openat64_2(int dirfd, const char *path, int flags) {
    init();
    const struct mapping *m = mapped(path);
    return m ? open_device(m, flags) : REAL(real_openat64_2, dirfd, path, flags);
}

EXPORT int close(int fd) {
    init();
    struct device *d = atomic_load_explicit(&open_devices, memory_order_acquire) ? take(fd, NULL) : NULL;
    if (!d) return REAL(real_close, fd);
    if (still_ours(d)) {
        /* The connection closes with the last reference: now, or when a call in progress on
         * another thread returns (the number stays taken until then, as a file stays open
         * under a running ioctl). */
        release(d);
        return 0;
    }
    atomic_store(&d->stale, 1);
    release(d);
    return REAL(real_close, fd);
}

EXPORT int ioctl(int fd, unsigned long request, ...) {
    va_list ap;
    va_start(ap, request);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    init();
    struct device *d = acquire(fd);
    if (!d) return REAL(real_ioctl, fd, request, arg);
    int r = nvmegate_client_ioctl(d->client, d->handle, request, arg);
    int error = errno;
    release(d);
    errno = error;
    return r;
}

/* The made-up stat of node `name` (a path's basename): a character device for controllers
 * (nvmeX) and generic nodes (ngXnY), a block device for namespaces and partitions (nvmeXnY,
 * nvmeXnYpZ), root's, mode 0600 (0660 and group disk for block devices, as udev makes them). */
static void device_stat(const char *name, uint32_t block_size, struct stat *st) {
    unsigned controller = 0, ns = 0, partition = 0;
    int generic = sscanf(name, "ng%un%u", &controller, &ns) == 2;
    int fields = generic ? 2 : sscanf(name, "nvme%un%up%u", &controller, &ns, &partition);
    int block = !generic && fields >= 2;
    memset(st, 0, sizeof *st);
    st->st_dev = makedev(0, 5);
    /* A stable inode per name, as devtmpfs gives each node one. */
    unsigned long hash = 5381;
    for (const char *p = name; *p; p++) hash = hash * 33 + (unsigned char)*p;
    st->st_ino = hash;
    st->st_nlink = 1;
    st->st_mode = block ? S_IFBLK | 0660 : S_IFCHR | 0600;
    st->st_gid = block ? 6 : 0;
    unsigned minor = (controller << 12 | ns << 4 | partition) & 0xfffff;
    st->st_rdev = block ? makedev(BLOCK_MAJOR, minor) : generic ? makedev(GENERIC_MAJOR, minor)
                                                                : makedev(CONTROLLER_MAJOR, controller);
    st->st_blksize = block_size ? block_size : 4096;
    st->st_atim = st->st_mtim = st->st_ctim = loaded;
}

/* fstat of a mapped descriptor into `out` (a struct stat or stat64): 0, or 1 when `fd` is not
 * one (the caller asks libc). */
static int device_fstat(int fd, void *out) {
    struct device *d = acquire(fd);
    if (!d) return 1;
    struct stat st;
    device_stat(d->mapping->node, d->info.lba_data_size, &st);
    release(d);
    memcpy(out, &st, sizeof st);
    return 0;
}

/* stat of a mapped path into `out` (a struct stat or stat64): 0, or 1 when it is not mapped. */
static int path_stat(const char *path, void *out) {
    const struct mapping *m = mapped(path);
    if (!m) return 1;
    struct stat st;
    device_stat(m->node, 0, &st);
    memcpy(out, &st, sizeof st);
    return 0;
}

EXPORT int fstat(int fd, struct stat *st) {
    init();
    return device_fstat(fd, st) == 0 ? 0 : REAL(real_fstat, fd, st);
}

EXPORT int fstat64(int fd, struct stat64 *st) {
    init();
    return device_fstat(fd, st) == 0 ? 0 : REAL(real_fstat64, fd, st);
}

EXPORT int stat(const char *path, struct stat *st) {
    init();
    return path_stat(path, st) == 0 ? 0 : REAL(real_stat, path, st);
}

EXPORT int stat64(const char *path, struct stat64 *st) {
    init();
    return path_stat(path, st) == 0 ? 0 : REAL(real_stat64, path, st);
}

/* A mapped path is a device node, never a symbolic link: lstat is stat. */
EXPORT int lstat(const char *path, struct stat *st) {
    init();
    return path_stat(path, st) == 0 ? 0 : REAL(real_lstat, path, st);
}

EXPORT int lstat64(const char *path, struct stat64 *st) {
    init();
    return path_stat(path, st) == 0 ? 0 : REAL(real_lstat64, path, st);
}

/* fstatat: the descriptor itself with AT_EMPTY_PATH and "", else the path. */
static int at_stat(int dirfd, const char *path, void *st, int flags) {
    if ((flags & AT_EMPTY_PATH) && path && !*path) return device_fstat(dirfd, st);
    return path_stat(path, st);
}

EXPORT int fstatat(int dirfd, const char *path, struct stat *st, int flags) {
    init();
    return at_stat(dirfd, path, st, flags) == 0 ? 0 : REAL(real_fstatat, dirfd, path, st, flags);
}

EXPORT int fstatat64(int dirfd, const char *path, struct stat64 *st, int flags) {
    init();
    return at_stat(dirfd, path, st, flags) == 0 ? 0 : REAL(real_fstatat64, dirfd, path, st, flags);
}

/* The forms programs built against glibc before 2.33 call (`version` is the struct's layout,
 * the one above on 64-bit Linux). */
EXPORT int __fxstat(int version, int fd, struct stat *st) {
    init();
    return device_fstat(fd, st) == 0 ? 0 : REAL(real_fxstat, version, fd, st);
}

EXPORT int __fxstat64(int version, int fd, struct stat64 *st) {
    init();
    return device_fstat(fd, st) == 0 ? 0 : REAL(real_fxstat64, version, fd, st);
}

EXPORT int __xstat(int version, const char *path, struct stat *st) {
    init();
    return path_stat(path, st) == 0 ? 0 : REAL(real_xstat, version, path, st);
}

EXPORT int __xstat64(int version, const char *path, struct stat64 *st) {
    init();
    return path_stat(path, st) == 0 ? 0 : REAL(real_xstat64, version, path, st);
}

EXPORT int __lxstat(int version, const char *path, struct stat *st) {
    init();
    return path_stat(path, st) == 0 ? 0 : REAL(real_lxstat, version, path, st);
}

EXPORT int __lxstat64(int version, const char *path, struct stat64 *st) {
    init();
    return path_stat(path, st) == 0 ? 0 : REAL(real_lxstat64, version, path, st);
}
