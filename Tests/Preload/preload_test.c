/*
 * preload_test.c: libnvmegate-preload.so from inside a process, what nvme-cli and smartctl
 * cannot show: each open variant (open, open64, openat, openat64 and the FORTIFY forms
 * __open_2, __open64_2, __openat_2, __openat64_2), fstat / stat / lstat / fstatat of mapped
 * descriptors and paths, the 64-bit passthru ioctls and their 64-bit result, NVME_IOCTL_ID,
 * threads on one descriptor and on many, a descriptor number reused behind the library's back
 * (dup2 onto it), and paths and descriptors that are not mapped staying untouched.
 *
 * Run with LD_PRELOAD=libnvmegate-preload.so and
 * NVMEGATE_PRELOAD=/dev/nvme0=SOCKET,/dev/ng0n1=SOCKET,/dev/nvme0n1=SOCKET against
 * `nvmegate serve --policy Policies/monitoring.toml --target emulated`, as an unprivileged user.
 * Prints "N passed, M failed" (failures on standard error); exits non-zero on a failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <linux/nvme_ioctl.h>

/* The FORTIFY forms, declared here so they are called whatever the compiler's flags. */
extern int __open_2(const char *, int);
extern int __open64_2(const char *, int);
extern int __openat_2(int, const char *, int);
extern int __openat64_2(int, const char *, int);

static int passed, failed;

#define CHECK(cond, what)                                                                        \
    do {                                                                                         \
        if (cond) { passed++; }                                                                  \
        else { failed++; fprintf(stderr, "FAIL %s:%d: %s (errno %d)\n", __FILE__, __LINE__, what, errno); } \
    } while (0)

/* Identify Controller with a 72-byte struct: 0 and the emulated controller's model, or not. */
static int identify(int fd) {
    unsigned char data[4096];
    memset(data, 0, sizeof data);
    struct nvme_passthru_cmd c = {.opcode = 0x06, .cdw10 = 1, .addr = (uintptr_t)data, .data_len = sizeof data};
    return ioctl(fd, NVME_IOCTL_ADMIN_CMD, &c) == 0 && memcmp(data + 24, "nvmegate emulated controller", 28) == 0;
}

static int is_controller(int fd) {
    struct stat st;
    return fstat(fd, &st) == 0 && S_ISCHR(st.st_mode) && major(st.st_rdev) != 0;
}

static void opens(void) {
    struct { const char *name; int fd; } variants[] = {
        {"open", open("/dev/nvme0", O_RDONLY)},
        {"open64", open64("/dev/nvme0", O_RDONLY | O_CLOEXEC)},
        {"openat", openat(AT_FDCWD, "/dev/nvme0", O_RDONLY)},
        {"openat64", openat64(-1, "/dev/nvme0", O_RDONLY)},
        {"__open_2", __open_2("/dev/nvme0", O_RDONLY | O_NONBLOCK)},
        {"__open64_2", __open64_2("/dev/nvme0", O_RDONLY)},
        {"__openat_2", __openat_2(AT_FDCWD, "/dev/nvme0", O_RDONLY)},
        {"__openat64_2", __openat64_2(AT_FDCWD, "/dev/nvme0", O_RDONLY)},
    };
    for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++) {
        char what[128];
        snprintf(what, sizeof what, "%s(/dev/nvme0): a descriptor, a character device, Identify through the broker", variants[i].name);
        int fd = variants[i].fd;
        CHECK(fd >= 0 && is_controller(fd) && identify(fd), what);
        snprintf(what, sizeof what, "close of the %s descriptor", variants[i].name);
        CHECK(fd >= 0 && close(fd) == 0, what);
    }
    int fd = open64("/dev/nvme0", O_RDONLY | O_CLOEXEC);
    CHECK(fd >= 0 && (fcntl(fd, F_GETFD) & FD_CLOEXEC), "O_CLOEXEC is kept");
    close(fd);
    fd = open("/dev/nvme0", O_RDONLY);
    CHECK(fd >= 0 && (fcntl(fd, F_GETFD) & FD_CLOEXEC) == 0, "and not added");
    close(fd);
    struct stat st;
    errno = 0;
    CHECK(fstat(fd, &st) == -1 && errno == EBADF, "a closed descriptor is closed: fstat gives EBADF");
}

static void stats(void) {
    struct stat st;
    int fd = open("/dev/nvme0n1", O_RDONLY);
    CHECK(fd >= 0 && fstat(fd, &st) == 0 && S_ISBLK(st.st_mode) && st.st_blksize == 512,
          "fstat(/dev/nvme0n1): a block device, the namespace's 512-byte blocks");
    struct stat64 st64;
    CHECK(fd >= 0 && fstat64(fd, &st64) == 0 && S_ISBLK(st64.st_mode), "fstat64: the same");
    CHECK(fd >= 0 && fstatat(fd, "", &st, AT_EMPTY_PATH) == 0 && S_ISBLK(st.st_mode), "fstatat(fd, \"\", AT_EMPTY_PATH): the same");
    close(fd);
    CHECK(stat("/dev/ng0n1", &st) == 0 && S_ISCHR(st.st_mode), "stat(/dev/ng0n1): a character device, without the broker");
    CHECK(lstat("/dev/nvme0", &st) == 0 && S_ISCHR(st.st_mode), "lstat(/dev/nvme0): a character device, not a link");
    CHECK(stat64("/dev/nvme0n1", &st64) == 0 && S_ISBLK(st64.st_mode), "stat64(/dev/nvme0n1): a block device");
    CHECK(fstatat(AT_FDCWD, "/dev/nvme0", &st, 0) == 0 && S_ISCHR(st.st_mode), "fstatat(AT_FDCWD, /dev/nvme0)");
    errno = 0;
    CHECK(stat("/dev/nvme7", &st) == -1 && errno == ENOENT, "stat(/dev/nvme7), not mapped: the kernel's ENOENT");
    CHECK(stat("/dev/null", &st) == 0 && S_ISCHR(st.st_mode) && major(st.st_rdev) == 1 && minor(st.st_rdev) == 3,
          "stat(/dev/null): the real one");
}

static void ioctls(void) {
    int ctrl = open("/dev/nvme0", O_RDONLY), ns = open("/dev/ng0n1", O_RDONLY);
    CHECK(ctrl >= 0 && ns >= 0, "open /dev/nvme0 and /dev/ng0n1");

    /* Get Features, Number of Queues (003F003Fh) with the 80-byte struct: all 64 bits written. */
    struct nvme_passthru_cmd64 c64 = {.opcode = 0x0a, .cdw10 = 0x07, .result = ~0ull};
    CHECK(ioctl(ctrl, NVME_IOCTL_ADMIN64_CMD, &c64) == 0 && c64.result == 0x003f003full,
          "NVME_IOCTL_ADMIN64_CMD Get Features: the 64-bit result 000000003F003Fh");
    struct { struct nvme_passthru_cmd c; uint32_t after; } s = {{.opcode = 0x0a, .cdw10 = 0x07, .result = ~0u}, 0xA5A5A5A5u};
    CHECK(ioctl(ctrl, NVME_IOCTL_ADMIN_CMD, &s.c) == 0 && s.c.result == 0x003f003fu && s.after == 0xA5A5A5A5u,
          "NVME_IOCTL_ADMIN_CMD: 32 bits written, nothing past the struct");

    unsigned char data[4096];
    memset(data, 0xEE, sizeof data);
    struct nvme_passthru_cmd64 read64 = {.opcode = 0x02, .nsid = 1, .addr = (uintptr_t)data, .data_len = 512, .result = ~0ull};
    errno = 0;
    CHECK(ioctl(ns, NVME_IOCTL_IO64_CMD, &read64) == -1 && errno == EACCES && read64.result == ~0ull && data[0] == 0xEE,
          "NVME_IOCTL_IO64_CMD Read under the monitoring policy: EACCES, result and buffer untouched");

    CHECK(ioctl(ns, NVME_IOCTL_ID) == 1, "NVME_IOCTL_ID on /dev/ng0n1: NSID 1");
    errno = 0;
    CHECK(ioctl(ctrl, NVME_IOCTL_ID) == -1 && errno == ENOTTY, "NVME_IOCTL_ID on /dev/nvme0: ENOTTY, as Linux");
    unsigned char termios[64];
    errno = 0;
    CHECK(ioctl(ctrl, TCGETS, termios) == -1 && errno == ENOTTY, "TCGETS on a mapped descriptor: ENOTTY");

    int null = open("/dev/null", O_RDWR);
    errno = 0;
    CHECK(null >= 0 && ioctl(null, NVME_IOCTL_ADMIN_CMD, &s.c) == -1 && errno == ENOTTY,
          "an NVMe ioctl on /dev/null (not mapped): the kernel's ENOTTY");

    /* dup2 onto a mapped descriptor replaces it: the number is /dev/null's now, not the broker's. */
    int doomed = open("/dev/nvme0", O_RDONLY);
    CHECK(doomed >= 0 && dup2(null, doomed) == doomed, "dup2(/dev/null, a mapped descriptor)");
    struct stat st;
    errno = 0;
    CHECK(ioctl(doomed, NVME_IOCTL_ADMIN_CMD, &s.c) == -1 && errno == ENOTTY && fstat(doomed, &st) == 0
          && major(st.st_rdev) == 1 && minor(st.st_rdev) == 3,
          "after it, ioctl and fstat reach /dev/null: the library noticed the socket is gone");
    CHECK(close(doomed) == 0 && close(null) == 0 && close(ctrl) == 0 && close(ns) == 0, "close them all");
    errno = 0;
    CHECK(close(ctrl) == -1 && errno == EBADF, "close again: EBADF");
}

struct worker { int fd, good; };

static void *identify_loop(void *argument) {
    struct worker *w = argument;
    int own = w->fd < 0;
    for (int i = 0; i < 100; i++) {
        int fd = own ? open("/dev/nvme0", O_RDONLY) : w->fd;
        w->good += is_controller(fd) && identify(fd);
        if (own) close(fd);
    }
    return NULL;
}

static void threads(void) {
    int shared = open("/dev/nvme0", O_RDONLY);
    struct worker workers[8];
    pthread_t t[8];
    for (int i = 0; i < 8; i++) {
        workers[i] = (struct worker){i < 4 ? shared : -1, 0};
        pthread_create(&t[i], NULL, identify_loop, &workers[i]);
    }
    int good = 0;
    for (int i = 0; i < 8; i++) { pthread_join(t[i], NULL); good += workers[i].good; }
    CHECK(good == 800, "8 threads: 4 on one descriptor, 4 opening and closing their own, 100 Identify each");
    CHECK(close(shared) == 0, "close the shared descriptor");
}

int main(void) {
    opens();
    stats();
    ioctls();
    threads();
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
