/*
 * abi_test.c: nvmegate's C ABI as a C program sees it. Includes nvmegate.h and Linux's
 * <linux/nvme_ioctl.h>, links libNVMeGateABI.so, and checks that nvmegate_ioctl behaves
 * like ioctl(2) on a Linux NVMe node. Prints "N passed, M failed"; exits non-zero on failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/ioctl.h>          /* _IOWR, which <linux/nvme_ioctl.h> uses */
#include <linux/nvme_ioctl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nvmegate.h"

static int passed, failed;

#define CHECK(cond, what)                                                       \
    do {                                                                        \
        if (cond) { passed++; }                                                 \
        else { failed++; fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, what); } \
    } while (0)

/* ioctl result and errno as one value: the return, or -errno when it returned -1. */
static int call(nvmegate *g, int h, unsigned long req, void *arg) {
    errno = 0;
    int r = nvmegate_ioctl(g, h, req, arg);
    return r == -1 ? -errno : r;
}

static struct nvme_passthru_cmd cmd(unsigned char opcode, unsigned nsid, void *buf, unsigned len) {
    struct nvme_passthru_cmd c;
    memset(&c, 0, sizeof c);
    c.opcode = opcode;
    c.nsid = nsid;
    c.addr = (unsigned long long)(unsigned long)buf;
    c.data_len = len;
    return c;
}

static const nvmegate_caller user = {1000, 1000, 0};
static const nvmegate_caller admin = {0, 0, 1ull << 21};

struct worker { nvmegate *gate; int writable; int allowed; int refused; int other; };

static void *submit_many(void *arg) {
    struct worker *w = arg;
    int h = nvmegate_open(w->gate, "nvme0n1", w->writable ? O_RDWR : O_RDONLY, &user);
    char buf[512];
    for (int i = 0; i < 20000; i++) {
        struct nvme_passthru_cmd c = cmd(i % 4 == 0 ? 0x01 : 0x02, 1, buf, sizeof buf);
        int r = call(w->gate, h, NVME_IOCTL_IO_CMD, &c);
        if (r == 0) w->allowed++; else if (r == -EACCES) w->refused++; else w->other++;
    }
    nvmegate_close(w->gate, h);
    return NULL;
}

int main(void) {
    char err[256];
    char page[4096];

    /* create */
    nvmegate *bad = nvmegate_create(NULL, "no-such-target", err, sizeof err);
    CHECK(bad == NULL && strstr(err, "no-such-target") != NULL, "an unknown target fails with a message naming it");

    /* device paths: open(2)'s errno, or ENODEV for what is not an NVMe device node, naming the path */
    errno = 0;
    bad = nvmegate_create(NULL, "/nonexistent/nvme0", err, sizeof err);
    CHECK(bad == NULL && errno == ENOENT && strstr(err, "/nonexistent/nvme0: No such file or directory") != NULL,
          "a device path that does not exist: NULL, ENOENT, the path in the message");
    errno = 0;
    bad = nvmegate_create(NULL, "/dev/null", err, sizeof err);
    CHECK(bad == NULL && errno == ENODEV && strstr(err, "/dev/null is not an NVMe device node") != NULL,
          "/dev/null: NULL, ENODEV, not an NVMe device node");
    errno = 0;
    bad = nvmegate_create(NULL, "/etc/passwd", err, sizeof err);
    CHECK(bad == NULL && errno == ENODEV && strstr(err, "/etc/passwd is not a block or character device") != NULL,
          "a regular file: NULL, ENODEV, not a block or character device");

    /* the emulated controller, file-backed: a write through one gate is read back through another */
    char dir[] = "/tmp/nvmegate-abi-XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "temporary directory");
    char spec[64];
    snprintf(spec, sizeof spec, "emulated:%s", dir);
    nvmegate *e = nvmegate_create(NULL, spec, err, sizeof err);
    CHECK(e != NULL, "emulated:DIR gate");
    if (e) {
        int w = nvmegate_open(e, "nvme0n1", O_RDWR, &user);
        char out[512], in[512];
        for (int i = 0; i < 512; i++) out[i] = (char)(i * 7);
        struct nvme_passthru_cmd wr = cmd(0x01, 1, out, 512);
        wr.cdw10 = 100;
        CHECK(call(e, w, NVME_IOCTL_IO_CMD, &wr) == 0, "emulated Write");
        struct nvme_passthru_cmd fl = cmd(0x00, 1, NULL, 0);
        CHECK(call(e, w, NVME_IOCTL_IO_CMD, &fl) == 0, "emulated Flush");
        errno = 0;
        CHECK(nvmegate_create(NULL, spec, err, sizeof err) == NULL && strstr(err, "in use") != NULL, "a second gate on the same DIR is refused while the first holds it");
        nvmegate_destroy(e);
        nvmegate *e2 = nvmegate_create(NULL, spec, err, sizeof err);
        CHECK(e2 != NULL, "reopen emulated:DIR");
        if (e2) {
            int r = nvmegate_open(e2, "nvme0n1", O_RDONLY, &user);
            struct nvme_passthru_cmd rd = cmd(0x02, 1, in, 512);
            rd.cdw10 = 100;
            memset(in, 0, sizeof in);
            CHECK(call(e2, r, NVME_IOCTL_IO_CMD, &rd) == 0 && memcmp(in, out, 512) == 0, "data written before is read back after reopening");
            rd.cdw10 = 0xffffffff; rd.cdw11 = 0xffffffff;
            CHECK(call(e2, r, NVME_IOCTL_IO_CMD, &rd) == 0x4080, "LBA Out of Range with DNR: 0x4080");
            nvmegate_destroy(e2);
        }
    }
    bad = nvmegate_create("/nonexistent/policy.toml", "loopback", err, sizeof err);
    CHECK(bad == NULL && strstr(err, "/nonexistent/policy.toml") != NULL, "a missing policy file fails with its path");
    nvmegate *g = nvmegate_create(NULL, "loopback", err, sizeof err);
    CHECK(g != NULL, "loopback gate with the built-in kernel policy");
    if (!g) { fprintf(stderr, "%s\n", err); return 1; }

    /* open */
    int ctrl = nvmegate_open(g, "nvme0", O_RDONLY, &user);
    int ns_ro = nvmegate_open(g, "nvme0n1", O_RDONLY, &user);
    int ns_rw = nvmegate_open(g, "ng0n1", O_RDWR, &user);
    int root_ctrl = nvmegate_open(g, "nvme0", O_RDWR, &admin);
    int self = nvmegate_open(g, "nvme0", O_RDONLY, NULL);
    CHECK(ctrl >= 0 && ns_ro >= 0 && ns_rw >= 0 && root_ctrl >= 0 && self >= 0, "open nodes");
    errno = 0;
    CHECK(nvmegate_open(g, "nvme9", O_RDONLY, &user) == -1 && errno == ENOENT, "no such controller: ENOENT");
    errno = 0;
    CHECK(nvmegate_open(g, "nvme0n7", O_RDONLY, &user) == -1 && errno == ENOENT, "no such namespace: ENOENT");
    errno = 0;
    CHECK(nvmegate_open(g, "nvme0", O_ACCMODE, &user) == -1 && errno == EINVAL, "bad open flags: EINVAL");

    /* allowed: Identify Controller, unprivileged */
    struct nvme_passthru_cmd c = cmd(0x06, 0, page, sizeof page);
    c.cdw10 = 1;
    CHECK(call(g, ctrl, NVME_IOCTL_ADMIN_CMD, &c) == 0, "Identify Controller passes");
    CHECK(memcmp(page + 24, "nvmegate loopback controller", 28) == 0, "Identify Controller data: MN");

    /* refused by policy: EACCES */
    c = cmd(0x02, 0xffffffff, page, 512);
    c.cdw10 = 0x02 | (127u << 16);
    CHECK(call(g, ctrl, NVME_IOCTL_ADMIN_CMD, &c) == -EACCES, "Get Log Page unprivileged: EACCES");
    c = cmd(0x01, 1, page, 512);
    CHECK(call(g, ns_ro, NVME_IOCTL_IO_CMD, &c) == -EACCES, "Write on a read-only handle: EACCES");
    CHECK(call(g, ns_rw, NVME_IOCTL_IO_CMD, &c) == 0, "Write on a read-write handle passes");
    c = cmd(0x02, 1, page, 512);
    CHECK(call(g, ns_ro, NVME_IOCTL_IO_CMD, &c) == 0, "Read on a read-only handle passes");

    /* malformed: EINVAL, EFAULT, ENOTTY */
    c = cmd(0x02, 1, page, 512);
    c.flags = 1;
    CHECK(call(g, ns_rw, NVME_IOCTL_IO_CMD, &c) == -EINVAL, "flags != 0: EINVAL");
    c = cmd(0x02, 2, page, 512);
    CHECK(call(g, ns_rw, NVME_IOCTL_IO_CMD, &c) == -EINVAL, "NSID mismatch: EINVAL");
    c = cmd(0x02, 1, page, 512);
    c.cdw12 = 15; /* 16 blocks into 512 bytes */
    CHECK(call(g, ns_rw, NVME_IOCTL_IO_CMD, &c) == -EINVAL, "buffer shorter than the transfer: EINVAL");
    CHECK(call(g, ns_rw, NVME_IOCTL_IO_CMD, NULL) == -EFAULT, "NULL argument: EFAULT");
    c = cmd(0x02, 1, NULL, 512);
    CHECK(call(g, ns_rw, NVME_IOCTL_IO_CMD, &c) == -EFAULT, "NULL buffer with a length: EFAULT");
    CHECK(call(g, ns_rw, 0x5401 /* TCGETS */, page) == -ENOTTY, "unknown request: ENOTTY");
    CHECK(call(g, 999, NVME_IOCTL_ID, NULL) == -EBADF, "unknown handle: EBADF");

    /* NVME_IOCTL_ID */
    CHECK(call(g, ns_ro, NVME_IOCTL_ID, NULL) == 1, "NVME_IOCTL_ID on a namespace node returns the NSID");
    CHECK(call(g, ctrl, NVME_IOCTL_ID, NULL) == -ENOTTY, "NVME_IOCTL_ID on the controller node: ENOTTY");

    /* management ioctls */
    CHECK(call(g, ctrl, NVME_IOCTL_RESET, NULL) == -EACCES, "RESET unprivileged: EACCES");
    CHECK(call(g, root_ctrl, NVME_IOCTL_RESET, NULL) == 0, "RESET with CAP_SYS_ADMIN");
    CHECK(call(g, root_ctrl, NVME_IOCTL_SUBSYS_RESET, NULL) == 0, "SUBSYS_RESET with CAP_SYS_ADMIN");
    CHECK(call(g, root_ctrl, NVME_IOCTL_RESCAN, NULL) == 0, "RESCAN with CAP_SYS_ADMIN");
    CHECK(call(g, ns_rw, NVME_IOCTL_RESCAN, NULL) == -ENOTTY, "RESCAN on a namespace node: ENOTTY");

    /* results: 32-bit into nvme_passthru_cmd, 64-bit into nvme_passthru_cmd64 */
    c = cmd(0x0a, 0, NULL, 0);
    c.cdw10 = 0x07; /* Get Features, Number of Queues */
    c.result = 0xdeadbeef;
    CHECK(call(g, root_ctrl, NVME_IOCTL_ADMIN_CMD, &c) == 0 && c.result == 0x003f003f, "32-bit result written back");
    struct nvme_passthru_cmd64 c64;
    memset(&c64, 0, sizeof c64);
    c64.opcode = 0x0a;
    c64.cdw10 = 0x07;
    c64.result = 0xffffffffffffffffull;
    CHECK(call(g, root_ctrl, NVME_IOCTL_ADMIN64_CMD, &c64) == 0 && c64.result == 0x003f003full, "64-bit result written back");
    CHECK(call(g, ctrl, NVME_IOCTL_ADMIN64_CMD, &c64) == -EACCES, "Get Features unprivileged: EACCES");

    /* a positive NVMe status: a vendor admin command the loopback does not implement */
    c = cmd(0xc1, 0, NULL, 0);
    CHECK(call(g, root_ctrl, NVME_IOCTL_ADMIN_CMD, &c) == 0x4001, "Invalid Command Opcode with DNR: 0x4001");

    /* SUBMIT_IO */
    struct nvme_user_io io;
    memset(&io, 0, sizeof io);
    io.opcode = 0x02;
    io.nblocks = 0;
    io.addr = (unsigned long long)(unsigned long)page;
    CHECK(call(g, ns_ro, NVME_IOCTL_SUBMIT_IO, &io) == 0, "SUBMIT_IO Read passes");
    io.opcode = 0x08;
    CHECK(call(g, ns_ro, NVME_IOCTL_SUBMIT_IO, &io) == -EINVAL, "SUBMIT_IO Write Zeroes: EINVAL");

    /* check_batch: decide a ring in place without executing it */
    unsigned char ring[4][64];
    memset(ring, 0, sizeof ring);
    ring[0][0] = 0x02; ring[0][4] = 1;               /* Read */
    ring[1][0] = 0x01; ring[1][4] = 1;               /* Write, read-only handle */
    ring[2][0] = 0x02; ring[2][1] = 0x01; ring[2][4] = 1; /* fused half */
    ring[3][0] = 0xc1; ring[3][4] = 1;               /* vendor */
    unsigned char verdicts[4] = {0xff, 0xff, 0xff, 0xff};
    CHECK(nvmegate_check_batch(g, ns_ro, NVMEGATE_QUEUE_IO, ring, 4, verdicts) == 4, "check_batch returns count");
    CHECK(verdicts[0] == 0 && verdicts[1] == EACCES && verdicts[2] == EINVAL && verdicts[3] == EACCES, "check_batch verdicts");
    errno = 0;
    CHECK(nvmegate_check_batch(g, ns_ro, 7, ring, 4, verdicts) == -1 && errno == EINVAL, "check_batch bad queue: EINVAL");

    /* many threads at once */
    pthread_t threads[8];
    struct worker workers[8];
    for (int i = 0; i < 8; i++) {
        workers[i] = (struct worker){g, i % 2, 0, 0, 0};
        pthread_create(&threads[i], NULL, submit_many, &workers[i]);
    }
    int allowed = 0, refused = 0, other = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(threads[i], NULL);
        allowed += workers[i].allowed; refused += workers[i].refused; other += workers[i].other;
    }
    CHECK(other == 0 && refused == 4 * 5000 && allowed == 8 * 20000 - refused, "concurrent callers: every verdict as alone");

    /* close */
    CHECK(nvmegate_close(g, ns_ro) == 0, "close");
    c = cmd(0x02, 1, page, 512);
    CHECK(call(g, ns_ro, NVME_IOCTL_IO_CMD, &c) == -EBADF, "ioctl on a closed handle: EBADF");
    errno = 0;
    CHECK(nvmegate_close(g, ns_ro) == -1 && errno == EBADF, "closing twice: EBADF");

    nvmegate_destroy(g);
    nvmegate_destroy(NULL);
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
