/*
 * broker_test.c: the C ABI's "unix:PATH" target, as a C program sees it, against a running
 * broker (`nvmegate serve --policy Tests/Broker/broker-test.toml --target emulated --socket
 * PATH`), run as an unprivileged user: the broker decides by who connected, not by what the
 * program says it is.
 *
 * Then the client against a fake broker in this process that breaks the wire format one way
 * per connection (data longer than asked, a wrong tag, a huge length, a hang-up mid-reply...):
 * each is an errno, never a crash or a byte written where it was not asked for.
 *
 * Between them, the broker client's own API (nvmegate_client.h, linked into libNVMeGateABI.so):
 * what HELLO said, and METRICS.
 *
 * Last, it prints "kill the broker now" and waits: the broker's death must turn into EIO.
 *
 * Usage: broker_test SOCKET
 * Prints "N passed, M failed" (failures on standard error); exits non-zero on a failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <linux/nvme_ioctl.h>

#include "nvmegate.h"
/* The client under the unix: target, whose symbols libNVMeGateABI.so carries. */
#include "../../Sources/CNVMeBrokerClient/include/nvmegate_client.h"

static int passed, failed;

#define CHECK(cond, what)                                                                        \
    do {                                                                                         \
        if (cond) { passed++; }                                                                  \
        else { failed++; fprintf(stderr, "FAIL %s:%d: %s (errno %d)\n", __FILE__, __LINE__, what, errno); } \
    } while (0)

static nvmegate *g;

/* The fields of one passthru command. */
struct req {
    unsigned char opcode;
    unsigned nsid, cdw10, cdw11, cdw12;
    void *data;
    unsigned len;
};

/* The result field after the last command, and whether a 72-byte command wrote past its struct. */
static unsigned long long result;
static int overrun;

/* Sends `r` on handle `h` (admin or I/O queue) in a 72- or 80-byte struct whose result is preset
 * to all ones: the ioctl's return, or -errno when it returned -1. */
static int submit(int h, int io, int wide, struct req r) {
    int rc;
    errno = 0;
    if (wide) {
        struct nvme_passthru_cmd64 c;
        memset(&c, 0, sizeof c);
        c.opcode = r.opcode; c.nsid = r.nsid; c.cdw10 = r.cdw10; c.cdw11 = r.cdw11; c.cdw12 = r.cdw12;
        c.addr = (unsigned long long)(uintptr_t)r.data; c.data_len = r.len;
        c.result = ~0ull;
        rc = nvmegate_ioctl(g, h, io ? NVME_IOCTL_IO64_CMD : NVME_IOCTL_ADMIN64_CMD, &c);
        result = c.result;
    } else {
        struct { struct nvme_passthru_cmd c; unsigned char after[8]; } s;
        memset(&s, 0xA5, sizeof s);
        memset(&s.c, 0, sizeof s.c);
        s.c.opcode = r.opcode; s.c.nsid = r.nsid; s.c.cdw10 = r.cdw10; s.c.cdw11 = r.cdw11; s.c.cdw12 = r.cdw12;
        s.c.addr = (unsigned long long)(uintptr_t)r.data; s.c.data_len = r.len;
        s.c.result = 0xffffffffu;
        rc = nvmegate_ioctl(g, h, io ? NVME_IOCTL_IO_CMD : NVME_IOCTL_ADMIN_CMD, &s.c);
        result = s.c.result;
        overrun = 0;
        for (size_t i = 0; i < sizeof s.after; i++) overrun |= s.after[i] != 0xA5;
    }
    return rc == -1 ? -errno : rc;
}

#define ADMIN(h, wide, ...) submit(h, 0, wide, (struct req){__VA_ARGS__})
#define IO(h, wide, ...) submit(h, 1, wide, (struct req){__VA_ARGS__})

static unsigned char page[4096], blocks[4096], readback[4096];

static int all(const unsigned char *p, size_t n, unsigned char v) {
    for (size_t i = 0; i < n; i++) if (p[i] != v) return 0;
    return 1;
}

static void entry(unsigned char *sqe, unsigned char opcode, unsigned nsid, unsigned cdw10) {
    memset(sqe, 0, 64);
    sqe[0] = opcode;
    memcpy(sqe + 4, &nsid, 4);
    memcpy(sqe + 40, &cdw10, 4);
}

/* Identify Controller from several threads on one gate and handle: one connection, commands one
 * at a time, each reply to its own caller. */
struct worker { int handle, good; };

static void *identify_loop(void *argument) {
    struct worker *w = argument;
    unsigned char data[4096];
    for (int i = 0; i < 200; i++) {
        struct nvme_passthru_cmd c = {.opcode = 0x06, .cdw10 = 1, .addr = (uintptr_t)data, .data_len = sizeof data};
        memset(data, 0, sizeof data);
        if (nvmegate_ioctl(g, w->handle, NVME_IOCTL_ADMIN_CMD, &c) == 0 && memcmp(data + 24, "nvmegate emulated", 17) == 0)
            w->good++;
    }
    return NULL;
}

static void against_broker(const char *target) {
    char err[256] = "";
    g = nvmegate_create(NULL, target, err, sizeof err);
    CHECK(g != NULL, "nvmegate_create(unix:SOCKET) connects");
    if (!g) { fprintf(stderr, "  %s\n", err); return; }

    /* The caller argument is not sent: the broker knows the process as the unprivileged user it is. */
    const nvmegate_caller root = {0, 0, 1ull << 21};
    int ctrl = nvmegate_open(g, "nvme0", O_RDONLY, &root);
    int rw = nvmegate_open(g, "nvme0n1", O_RDWR, NULL);
    int ro = nvmegate_open(g, "ng0n1", O_RDONLY, NULL);
    CHECK(ctrl >= 0 && rw >= 0 && ro >= 0, "open nvme0, nvme0n1 read-write, ng0n1 read-only");
    errno = 0;
    CHECK(nvmegate_open(g, "nvme9", O_RDONLY, NULL) == -1 && errno == ENOENT, "open nvme9: ENOENT, from the broker");
    errno = 0;
    CHECK(nvmegate_open(g, "nvme0", O_WRONLY | O_RDWR, NULL) == -1 && errno == EINVAL, "open mode 3: EINVAL");

    for (int wide = 0; wide <= 1; wide++) {
        memset(page, 0xEE, sizeof page);
        CHECK(ADMIN(ctrl, wide, .opcode = 0x06, .cdw10 = 1, .data = page, .len = 4096) == 0
              && memcmp(page + 24, "nvmegate emulated controller", 28) == 0 && result == 0 && !overrun,
              wide ? "80-byte Identify Controller: the data and a 64-bit result of 0" : "72-byte Identify Controller: the data and result 0");

        /* Get Features, Number of Queues: result 003F003Fh, 32 bits into 72 bytes, 64 into 80. */
        int r = ADMIN(ctrl, wide, .opcode = 0x0a, .cdw10 = 0x07);
        CHECK(r == 0 && (wide ? result == 0x003f003full : result == 0x003f003fu) && !overrun,
              wide ? "80-byte Get Features: all 64 bits written back" : "72-byte Get Features: 32 bits written back, nothing past the struct");

        /* A Write and a Read of the same 8 blocks through the read-write namespace handle. */
        for (size_t i = 0; i < sizeof blocks; i++) blocks[i] = (unsigned char)(i * 7 + wide);
        memset(readback, 0, sizeof readback);
        CHECK(IO(rw, wide, .opcode = 0x01, .nsid = 1, .cdw10 = 64, .cdw12 = 7, .data = blocks, .len = 4096) == 0
              && IO(rw, wide, .opcode = 0x02, .nsid = 1, .cdw10 = 64, .cdw12 = 7, .data = readback, .len = 4096) == 0
              && memcmp(blocks, readback, sizeof blocks) == 0, "Write then Read 8 blocks: the same bytes come back");

        /* Refused: the struct's result and the caller's buffer stay as they were. */
        memset(page, 0xEE, sizeof page);
        r = ADMIN(ctrl, wide, .opcode = 0x02, .nsid = 0xffffffff, .cdw10 = 0x03 | 127u << 16, .data = page, .len = 512);
        CHECK(r == -EACCES && all(page, sizeof page, 0xEE) && result == (wide ? ~0ull : 0xffffffffu),
              "Get Log Page Firmware Slot, not granted: EACCES, buffer and result untouched");
        memset(readback, 0xEE, sizeof readback);
        r = IO(ro, wide, .opcode = 0x01, .nsid = 1, .cdw10 = 64, .cdw12 = 7, .data = blocks, .len = 4096);
        CHECK(r == -EACCES, "Write on the read-only handle: EACCES");
        CHECK(IO(rw, wide, .opcode = 0x02, .nsid = 1, .cdw10 = 64, .cdw12 = 7, .data = readback, .len = 4096) == 0
              && memcmp(blocks, readback, sizeof blocks) == 0, "the refused Write changed nothing");
        CHECK(ADMIN(ctrl, wide, .opcode = 0x80, .nsid = 1) == -EACCES, "Format NVM: EACCES (the caller argument gave no privilege)");

        /* An NVMe error comes back as the positive status, its result written back. */
        r = IO(ro, wide, .opcode = 0x02, .nsid = 1, .cdw10 = 0, .cdw11 = 0x100, .data = readback, .len = 512);
        CHECK(r == 0x4080, "Read beyond the namespace: status 4080h (LBA Out of Range, DNR)");
    }

    /* NVME_IOCTL_SUBMIT_IO: lengths in blocks of the handle's format (512 bytes here). */
    memset(readback, 0, sizeof readback);
    struct nvme_user_io uio = {.opcode = 0x02, .nblocks = 7, .addr = (uintptr_t)readback, .slba = 64};
    CHECK(nvmegate_ioctl(g, rw, NVME_IOCTL_SUBMIT_IO, &uio) == 0 && memcmp(blocks, readback, sizeof blocks) == 0,
          "SUBMIT_IO Read of 8 blocks: 4096 bytes");

    CHECK(nvmegate_ioctl(g, ro, NVME_IOCTL_ID, NULL) == 1, "NVME_IOCTL_ID on ng0n1: NSID 1");
    errno = 0;
    CHECK(nvmegate_ioctl(g, ctrl, NVME_IOCTL_ID, NULL) == -1 && errno == ENOTTY, "NVME_IOCTL_ID on the controller: ENOTTY");
    errno = 0;
    CHECK(nvmegate_ioctl(g, ctrl, NVME_IOCTL_RESET, NULL) == -1 && errno == EACCES, "NVME_IOCTL_RESET: EACCES");
    errno = 0;
    CHECK(nvmegate_ioctl(g, ctrl, 0x5401 /* TCGETS */, page) == -1 && errno == ENOTTY, "a request that is not NVMe: ENOTTY");
    errno = 0;
    CHECK(nvmegate_ioctl(g, ctrl, NVME_IOCTL_ADMIN_CMD, NULL) == -1 && errno == EFAULT, "no struct: EFAULT");
    errno = 0;
    CHECK(ADMIN(ctrl, 0, .opcode = 0x06, .cdw10 = 1, .data = NULL, .len = 4096) == -EFAULT, "a NULL buffer with a length: EFAULT");
    errno = 0;
    CHECK(ADMIN(ctrl, 0, .opcode = 0x06, .cdw10 = 1, .data = page, .len = 64u << 20) == -EINVAL,
          "64 MiB: over max_transfer, EINVAL (as Linux beyond its transfer limit)");

    errno = 0;
    CHECK(nvmegate_ioctl(g, 4242, NVME_IOCTL_ADMIN_CMD, &(struct nvme_passthru_cmd){.opcode = 0x06}) == -1 && errno == EBADF,
          "a handle never opened: EBADF");

    /* check_batch: a Read and a Write on the read-only handle; and a ring larger than a frame. */
    unsigned char sqes[2 * 64];
    uint8_t verdicts[2] = {0xff, 0xff};
    entry(sqes, 0x02, 1, 0);
    entry(sqes + 64, 0x01, 1, 0);
    CHECK(nvmegate_check_batch(g, ro, NVMEGATE_QUEUE_IO, sqes, 2, verdicts) == 2 && verdicts[0] == 0 && verdicts[1] == EACCES,
          "check_batch: Read allowed, Write EACCES on the read-only handle");
    size_t many = 40000; /* 2.5 MiB of entries: several frames */
    unsigned char *ring = malloc(many * 64);
    uint8_t *many_verdicts = malloc(many);
    if (ring && many_verdicts) {
        for (size_t i = 0; i < many; i++) entry(ring + 64 * i, i % 3 ? 0x06 : 0x80, i % 3 ? 0 : 1, 1);
        memset(many_verdicts, 0xff, many);
        int right = nvmegate_check_batch(g, ctrl, NVMEGATE_QUEUE_ADMIN, ring, many, many_verdicts) == (long)many;
        for (size_t i = 0; i < many && right; i++) right = many_verdicts[i] == (i % 3 ? 0 : EACCES);
        CHECK(right, "check_batch of 40,000 admin entries, sent in several frames: Identify allowed, Format NVM EACCES");
    }
    free(ring);
    free(many_verdicts);
    errno = 0;
    CHECK(nvmegate_check_batch(g, 4242, NVMEGATE_QUEUE_IO, sqes, 2, verdicts) == -1 && errno == EBADF, "check_batch, unknown handle: EBADF");
    errno = 0;
    CHECK(nvmegate_check_batch(g, ro, NVMEGATE_QUEUE_IO, sqes, 0, verdicts) == 0, "check_batch of nothing: 0");
    errno = 0;
    CHECK(nvmegate_check_batch(g, ro, 2, sqes, 2, verdicts) == -1 && errno == EINVAL, "check_batch, queue 2: EINVAL");

    struct worker workers[4];
    pthread_t threads[4];
    for (int i = 0; i < 4; i++) {
        workers[i] = (struct worker){ctrl, 0};
        pthread_create(&threads[i], NULL, identify_loop, &workers[i]);
    }
    int good = 0;
    for (int i = 0; i < 4; i++) { pthread_join(threads[i], NULL); good += workers[i].good; }
    CHECK(good == 800, "4 threads x 200 Identify Controller on one connection: every reply to its caller");

    errno = 0;
    err[0] = 0;
    CHECK(nvmegate_reload(g, "Policies/kernel.toml", err, sizeof err) == -1 && errno == EOPNOTSUPP && strstr(err, "SIGHUP"),
          "nvmegate_reload on a unix: gate: EOPNOTSUPP, the broker reloads on SIGHUP");

    CHECK(nvmegate_close(g, ro) == 0, "close ng0n1");
    errno = 0;
    CHECK(nvmegate_close(g, ro) == -1 && errno == EBADF, "close it again: EBADF");
    errno = 0;
    CHECK(ADMIN(ro, 0, .opcode = 0x06, .cdw10 = 1, .data = page, .len = 4096) == -EBADF, "ioctl on the closed handle: EBADF");
    nvmegate_destroy(g);
    g = NULL;
}

/* ---- A broker that breaks the wire format, one way per connection ---- */

enum fake {
    FAKE_BUSY, FAKE_VERSION, FAKE_SMALL_FRAME, FAKE_LONG_DATA, FAKE_WRONG_TAG, FAKE_BAD_ERRNO, FAKE_HUGE_LENGTH,
    FAKE_HANGUP, FAKE_REFUSED_WITH_DATA, FAKE_MALFORMED_ONCE, FAKE_SHORT_DATA, FAKE_BUSY_AT_ACCEPT,
};

static volatile enum fake scenario;
static int listener;

static void put32(unsigned char *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i)); }
static uint32_t get32(const unsigned char *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }

static int full(int fd, void *buffer, size_t n, int writing) {
    for (char *p = buffer; n > 0;) {
        ssize_t done = writing ? send(fd, p, n, MSG_NOSIGNAL) : recv(fd, p, n, 0);
        if (done <= 0) return -1;
        p += done;
        n -= (size_t)done;
    }
    return 0;
}

/* Sends a frame: the header (length given, so it can lie), then `body`. */
static void frame(int fd, uint32_t length, unsigned type, uint32_t tag, uint32_t error, const unsigned char *body, size_t n) {
    unsigned char h[16];
    put32(h, length);
    h[4] = 1; h[5] = 0; h[6] = (unsigned char)type; h[7] = 0;
    put32(h + 8, tag);
    put32(h + 12, error);
    full(fd, h, 16, 1);
    if (n) full(fd, (void *)body, n, 1);
}

/* Answers one connection according to `scenario` until the client goes. */
static void fake_serve(int fd) {
    static unsigned char body[1 << 16];
    int ioctls = 0;
    /* As the real broker refuses a connection over its limits: busy at once, HELLO unread. */
    if (scenario == FAKE_BUSY_AT_ACCEPT) { frame(fd, 16, 0, 0, 5, NULL, 0); return; }
    for (;;) {
        unsigned char h[16];
        if (full(fd, h, 16, 0)) return;
        uint32_t length = get32(h), tag = get32(h + 8);
        unsigned type = h[6];
        if (length < 16 || length - 16 > sizeof body || full(fd, body, length - 16, 0)) return;
        unsigned char r[24 + 8192];
        memset(r, 0, sizeof r);
        if (type == 1) {
            if (scenario == FAKE_BUSY) { frame(fd, 16, 0, 0, 5, NULL, 0); return; }
            if (scenario == FAKE_VERSION) { frame(fd, 16, 1, tag, 1, NULL, 0); return; }
            r[8] = 1;
            put32(r + 12, scenario == FAKE_SMALL_FRAME ? 64 : 1u << 20);
            put32(r + 16, 8192);
            frame(fd, 16 + 32, 1, tag, 0, r, 32);
        } else if (type == 2) {
            frame(fd, 16 + 24, 2, tag, 0, r, 24); /* handle 0, a controller */
        } else if (type == 4) {
            ioctls++;
            memset(r + 24, 0x5A, 8192);
            switch (scenario) {
            case FAKE_LONG_DATA: put32(r + 16, 8192); frame(fd, 16 + 24 + 8192, 4, tag, 0, r, 24 + 8192); break;
            case FAKE_WRONG_TAG: put32(r + 16, 4096); frame(fd, 16 + 24 + 4096, 4, tag + 1, 0, r, 24 + 4096); break;
            case FAKE_BAD_ERRNO: put32(r, 0xffffffffu); frame(fd, 16 + 24, 4, tag, 0, r, 24); break;
            case FAKE_HUGE_LENGTH: frame(fd, 0xfffffff0u, 4, tag, 0, r, 24); break;
            case FAKE_HANGUP: frame(fd, 16 + 24 + 4096, 4, tag, 0, NULL, 0); return;
            case FAKE_REFUSED_WITH_DATA:
                put32(r, 0xffffffffu); put32(r + 4, EACCES); put32(r + 16, 4096);
                frame(fd, 16 + 24 + 4096, 4, tag, 0, r, 24 + 4096);
                break;
            case FAKE_MALFORMED_ONCE:
                if (ioctls == 1) { frame(fd, 16, 4, tag, 3, NULL, 0); break; }
                put32(r + 16, 4096);
                frame(fd, 16 + 24 + 4096, 4, tag, 0, r, 24 + 4096);
                break;
            default: /* FAKE_SHORT_DATA */
                put32(r + 16, 100);
                frame(fd, 16 + 24 + 100, 4, tag, 0, r, 24 + 100);
                break;
            }
        } else if (type == 6) {
            static const char text[] = "nvmegate_up 1\n";
            memcpy(r + 8, text, sizeof text - 1);
            frame(fd, (uint32_t)(16 + 8 + sizeof text - 1), 6, tag, 0, r, 8 + sizeof text - 1);
        } else {
            frame(fd, 16, type, tag, 2, NULL, 0);
        }
    }
}

static void *fake_broker(void *unused) {
    (void)unused;
    for (;;) {
        int fd = accept(listener, NULL, NULL);
        if (fd < 0) return NULL;
        fake_serve(fd);
        close(fd);
    }
}

/* An Identify Controller into `page` (preset to 0xEE) through a fresh connection to the fake. */
static int fake_identify(const char *target, nvmegate **out) {
    char err[256];
    *out = nvmegate_create(NULL, target, err, sizeof err);
    if (!*out) return -errno;
    g = *out;
    int h = nvmegate_open(g, "nvme0", O_RDONLY, NULL);
    memset(page, 0xEE, sizeof page);
    return h < 0 ? -1000 : ADMIN(h, 0, .opcode = 0x06, .cdw10 = 1, .data = page, .len = 4096);
}

static void against_fake(void) {
    char directory[] = "/tmp/broker_test.XXXXXX";
    if (!mkdtemp(directory)) { CHECK(0, "mkdtemp"); return; }
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    snprintf(address.sun_path, sizeof address.sun_path, "%s/fake.sock", directory);
    char target[128];
    snprintf(target, sizeof target, "unix:%s", address.sun_path);
    listener = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK(bind(listener, (struct sockaddr *)&address, sizeof address) == 0 && listen(listener, 4) == 0, "the fake broker listens");
    pthread_t thread;
    pthread_create(&thread, NULL, fake_broker, NULL);

    nvmegate *f;
    scenario = FAKE_BUSY;
    CHECK(fake_identify(target, &f) == -EAGAIN, "busy (wire error 5, tag 0) at HELLO: nvmegate_create fails, EAGAIN");
    /* The client's HELLO may go before the busy reply and close, or find the socket closed
     * already (EPIPE); either way the answer is busy, never EIO. */
    scenario = FAKE_BUSY_AT_ACCEPT;
    int busy = 0, other = 0;
    for (int i = 0; i < 400; i++) {
        errno = 0;
        nvmegate *b = nvmegate_create(NULL, target, NULL, 0);
        if (!b && errno == EAGAIN) busy++;
        else if (other++ == 0) fprintf(stderr, "  busy at accept, try %d: %s, errno %d\n", i, b ? "connected" : "refused", errno);
        nvmegate_destroy(b);
    }
    if (busy != 400) fprintf(stderr, "  busy at accept: EAGAIN %d of 400\n", busy);
    CHECK(busy == 400, "busy before HELLO is read, whether HELLO went first or hit the closed socket: EAGAIN");
    scenario = FAKE_VERSION;
    CHECK(fake_identify(target, &f) == -EPROTONOSUPPORT, "unsupported-version at HELLO: EPROTONOSUPPORT");
    scenario = FAKE_SMALL_FRAME;
    CHECK(fake_identify(target, &f) == -EPROTO, "a max_frame too small for one command: EPROTO");

    struct { enum fake s; int expected; const char *what; } broken[] = {
        {FAKE_LONG_DATA, -EPROTO, "8192 data bytes for a 4096-byte buffer: EPROTO, nothing copied"},
        {FAKE_WRONG_TAG, -EPROTO, "a reply with another tag: EPROTO, nothing copied"},
        {FAKE_BAD_ERRNO, -EPROTO, "ret -1 with errno 0: EPROTO"},
        {FAKE_HUGE_LENGTH, -EPROTO, "a frame length of 4 GiB: EPROTO, nothing allocated or copied"},
        {FAKE_HANGUP, -EIO, "the broker hangs up after a reply's header: EIO"},
        {FAKE_REFUSED_WITH_DATA, -EPROTO, "EACCES carrying data: EPROTO, nothing copied"},
    };
    for (size_t i = 0; i < sizeof broken / sizeof broken[0]; i++) {
        scenario = broken[i].s;
        int r = fake_identify(target, &f);
        CHECK(r == broken[i].expected && all(page, sizeof page, 0xEE), broken[i].what);
        errno = 0;
        CHECK(f && ADMIN(0, 0, .opcode = 0x06, .cdw10 = 1, .data = page, .len = 4096) == -EIO,
              "after it, the connection is closed: EIO");
        nvmegate_destroy(f);
    }

    scenario = FAKE_MALFORMED_ONCE;
    CHECK(fake_identify(target, &f) == -EINVAL, "wire error malformed: EINVAL");
    CHECK(f && ADMIN(0, 0, .opcode = 0x06, .cdw10 = 1, .data = page, .len = 4096) == 0 && all(page, 4096, 0x5A),
          "after malformed the connection stays usable");
    nvmegate_destroy(f);

    scenario = FAKE_SHORT_DATA;
    CHECK(fake_identify(target, &f) == 0 && all(page, 100, 0x5A) && all(page + 100, 4096 - 100, 0xEE),
          "100 data bytes for 4096 asked: those 100 copied, the rest untouched");
    nvmegate_destroy(f);

    nvmegate_client *c = nvmegate_client_connect(address.sun_path, 0, NULL, 0);
    size_t length = 0;
    char *text = c ? nvmegate_client_metrics(c, &length) : NULL;
    CHECK(text && length == 14 && strcmp(text, "nvmegate_up 1\n") == 0, "nvmegate_client_metrics: the text, NUL-terminated, and its length");
    free(text);
    nvmegate_client_destroy(c);

    shutdown(listener, SHUT_RDWR);
    close(listener);
    pthread_join(thread, NULL);
    unlink(address.sun_path);
    rmdir(directory);
}

/* The client's own API against the real broker: HELLO's identification and limits, METRICS
 * refused to a user that is neither root nor the broker's. */
static void client_api(const char *socket) {
    char err[256];
    nvmegate_client *c = nvmegate_client_connect(socket, NVMEGATE_CLIENT_CLOEXEC, err, sizeof err);
    CHECK(c != NULL, "nvmegate_client_connect");
    if (!c) return;
    nvmegate_client_hello hello = nvmegate_client_info(c);
    CHECK(hello.version == 1 && hello.uid == geteuid() && hello.gid == getegid() && hello.pid == (uint32_t)getpid(),
          "HELLO: version 1, and this process as the kernel told the broker (SO_PEERCRED)");
    CHECK(hello.max_transfer == 512 * 1024 && hello.max_frame == 16 + 32 + 80 + 2 * hello.max_transfer,
          "HELLO: max_transfer the emulated controller's MDTS (512 KiB), max_frame from it");
    CHECK(fcntl(nvmegate_client_fd(c), F_GETFD) & FD_CLOEXEC, "NVMEGATE_CLIENT_CLOEXEC: the socket is close-on-exec");
    nvmegate_client_node node;
    int h = nvmegate_client_open(c, "nvme0n1", O_RDONLY, &node);
    CHECK(h >= 0 && node.kind == NVMEGATE_CLIENT_NAMESPACE && node.nsid == 1 && node.lba_data_size == 512 && node.metadata_size == 0,
          "nvmegate_client_open(nvme0n1): a namespace, NSID 1, 512-byte blocks, no metadata");
    errno = 0;
    CHECK(nvmegate_client_metrics(c, NULL) == NULL && errno == EACCES, "METRICS as an unprivileged user: EACCES");
    nvmegate_client_destroy(c);
}

/* The broker is killed while the gate is connected: calls fail with EIO, nothing crashes, and a
 * new gate cannot connect. */
static void broker_gone(const char *target) {
    char err[256];
    g = nvmegate_create(NULL, target, err, sizeof err);
    int ctrl = g ? nvmegate_open(g, "nvme0", O_RDONLY, NULL) : -1;
    CHECK(ctrl >= 0, "a fresh gate and handle before the broker goes");
    if (ctrl < 0) return;
    printf("kill the broker now\n");
    fflush(stdout);
    int r = 0;
    for (int i = 0; i < 2000 && r == 0; i++) {
        r = ADMIN(ctrl, 1, .opcode = 0x06, .cdw10 = 1, .data = page, .len = 4096);
        if (r == 0) nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    }
    CHECK(r == -EIO, "the broker killed: the next ioctl fails with EIO");
    CHECK(ADMIN(ctrl, 0, .opcode = 0x06, .cdw10 = 1, .data = page, .len = 4096) == -EIO, "and the one after");
    errno = 0;
    CHECK(nvmegate_open(g, "nvme0", O_RDONLY, NULL) == -1 && errno == EIO, "open: EIO");
    uint8_t v;
    unsigned char sqe[64] = {0x06};
    errno = 0;
    CHECK(nvmegate_check_batch(g, ctrl, NVMEGATE_QUEUE_ADMIN, sqe, 1, &v) == -1 && errno == EIO, "check_batch: EIO");
    nvmegate_destroy(g);
    /* While the dying broker's listening socket is still open, a connection can be queued on it
     * and then dropped unanswered: EIO. Once it is closed: ECONNREFUSED. */
    nvmegate *again = NULL;
    for (int i = 0; i < 500; i++) {
        errno = 0;
        err[0] = 0;
        again = nvmegate_create(NULL, target, err, sizeof err);
        if (again || errno != EIO) break;
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    }
    CHECK(again == NULL && errno == ECONNREFUSED && strstr(err, target + 5) && strstr(err, "refused"),
          "a new gate: NULL, ECONNREFUSED, the message names the socket");
}

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: broker_test SOCKET\n"); return 2; }
    if (geteuid() == 0) { fprintf(stderr, "broker_test: run it as an unprivileged user (root bypasses the policy)\n"); return 2; }
    char target[200];
    snprintf(target, sizeof target, "unix:%s", argv[1]);

    char err[256] = "";
    errno = 0;
    CHECK(nvmegate_create(NULL, "unix:/nonexistent/nvmegate.sock", err, sizeof err) == NULL && errno == ENOENT
          && strstr(err, "/nonexistent/nvmegate.sock: No such file or directory"),
          "no socket there: NULL, ENOENT, \"PATH: No such file or directory\" in err");
    nvmegate *ignored = nvmegate_create("/nonexistent/policy.toml", target, err, sizeof err);
    CHECK(ignored != NULL, "the policy path is not read for a unix: target (the broker's policy applies)");
    nvmegate_destroy(ignored);

    against_broker(target);
    client_api(argv[1]);
    against_fake();
    printf("before the broker goes: %d passed, %d failed\n", passed, failed);
    broker_gone(target);
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
