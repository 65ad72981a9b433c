/*
 * durability_test.c: what Flush and FUA promise across a crash, and who may open an
 * "emulated:DIR" another process holds, through the C ABI. Run by CABIProcessTests:
 *
 *   durability_test write DIR         writes distinct patterns to several LBAs, makes two
 *                                     uncorrectable, Flushes, writes with FUA to a fresh LBA
 *                                     and over one uncorrectable block, formats a second
 *                                     namespace, prints "flushed: N passed, M failed" and
 *                                     waits to be killed (SIGKILL; SIGALRM ends it after 60 s).
 *   durability_test second DIR PID    while PID holds DIR: refused, EBUSY, PID named.
 *   durability_test verify DIR        after the writer was killed: every flushed byte is there.
 *
 * This program defines fdatasync and fsync itself. The executable comes first in symbol
 * lookup, so the library's calls land here: each is counted by the file it names, then
 * made with syscall(2). That shows the sync is issued, on which file and before which
 * completion; the data check alone could not, because the page cache outlives a killed
 * process. Neither shows that the kernel, file system or disk keep the data through a
 * power cut. Each mode prints "N passed, M failed" and exits non-zero on a failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/nvme_ioctl.h>

#include "nvmegate.h"

static int passed, failed;

#define CHECK(cond, what)                                                       \
    do {                                                                        \
        if (cond) { passed++; }                                                 \
        else { failed++; fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, what); } \
    } while (0)

/* fdatasync / fsync calls on the files of namespaces 1 and 2 and on the state file being replaced. */
static int namespace_syncs, namespace2_syncs, state_syncs;

static void count_sync(int fd) {
    char link[64], path[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n < 0) return;
    path[n] = 0;
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    if (strcmp(base, "ns-1.img") == 0) namespace_syncs++;
    if (strcmp(base, "ns-2.img") == 0) namespace2_syncs++;
    if (strcmp(base, ".state.tmp") == 0) state_syncs++;
}

int fdatasync(int fd) { count_sync(fd); return (int)syscall(SYS_fdatasync, fd); }
int fsync(int fd) { count_sync(fd); return (int)syscall(SYS_fsync, fd); }

static const nvmegate_caller user = {1000, 1000, 0};
static const nvmegate_caller admin = {0, 0, 1ull << 21};

/* LBAs written before the Flush, one 512-byte block each (the last is the namespace's last). */
static const unsigned long long lbas[] = {0, 1, 7, 100, 4095, 65536, 2097151};
#define NLBAS (sizeof lbas / sizeof lbas[0])
/* UNC_LBA stays uncorrectable; REWRITTEN_LBA is made uncorrectable, then rewritten with FUA. */
enum { MULTI_LBA = 2048, MULTI_BLOCKS = 8, UNC_LBA = 50, REWRITTEN_LBA = 60, FUA_LBA = 3000, LATE_LBA = 5000 };

static unsigned char pattern(unsigned long long lba, int i) { return (unsigned char)(lba * 131 + (unsigned)i * 7 + 1); }

static void fill(unsigned char *buf, unsigned long long lba, int blocks) {
    for (int b = 0; b < blocks; b++)
        for (int i = 0; i < 512; i++) buf[b * 512 + i] = pattern(lba + (unsigned long long)b, i);
}

static int call(nvmegate *g, int h, unsigned long req, struct nvme_passthru_cmd *c) {
    errno = 0;
    int r = nvmegate_ioctl(g, h, req, c);
    return r == -1 ? -errno : r;
}

/* An NVM command on NSID 1 at `lba` for `blocks` blocks, cdw12 bits above NLB in `flags`. */
static int rw(nvmegate *g, int h, unsigned char opcode, unsigned long long lba, int blocks, unsigned flags, void *buf) {
    struct nvme_passthru_cmd c;
    memset(&c, 0, sizeof c);
    c.opcode = opcode;
    c.nsid = 1;
    c.addr = (unsigned long long)(unsigned long)buf;
    c.data_len = buf ? (unsigned)blocks * 512 : 0;
    c.cdw10 = (unsigned)lba;
    c.cdw11 = (unsigned)(lba >> 32);
    c.cdw12 = (unsigned)(blocks - 1) | flags;
    return call(g, h, NVME_IOCTL_IO_CMD, &c);
}

static nvmegate *open_gate(const char *dir, char *err, size_t len) {
    char spec[4200];
    snprintf(spec, sizeof spec, "emulated:%s", dir);
    return nvmegate_create(NULL, spec, err, len);
}

static int write_then_wait(const char *dir) {
    char err[512];
    nvmegate *g = open_gate(dir, err, sizeof err);
    if (!g) { fprintf(stderr, "%s\n", err); return 1; }
    int ns = nvmegate_open(g, "nvme0n1", O_RDWR, &user);
    int ctrl = nvmegate_open(g, "nvme0", O_RDONLY, &admin);
    struct nvme_passthru_cmd vwc = {.opcode = 0x0a, .cdw10 = 0x06};
    CHECK(call(g, ctrl, NVME_IOCTL_ADMIN_CMD, &vwc) == 0 && vwc.result == 1, "the volatile write cache is on: a plain write need not sync");

    unsigned char buf[MULTI_BLOCKS * 512];
    int before = namespace_syncs, ok = 1;
    for (size_t i = 0; i < NLBAS; i++) {
        fill(buf, lbas[i], 1);
        ok &= rw(g, ns, 0x01, lbas[i], 1, 0, buf) == 0;
    }
    fill(buf, MULTI_LBA, MULTI_BLOCKS);
    ok &= rw(g, ns, 0x01, MULTI_LBA, MULTI_BLOCKS, 0, buf) == 0;
    CHECK(ok, "Write of each pattern");
    CHECK(rw(g, ns, 0x04, UNC_LBA, 1, 0, NULL) == 0 && rw(g, ns, 0x04, REWRITTEN_LBA, 1, 0, NULL) == 0, "Write Uncorrectable");
    CHECK(namespace_syncs == before, "writes without FUA issue no fdatasync while the cache is on");

    int states = state_syncs;
    CHECK(rw(g, ns, 0x00, 0, 1, 0, NULL) == 0, "Flush");
    CHECK(namespace_syncs == before + 1, "Flush fdatasyncs the namespace file before it completes");
    CHECK(state_syncs > states, "Flush fsyncs the replaced state file (counters, uncorrectable blocks)");

    fill(buf, FUA_LBA, 1);
    CHECK(rw(g, ns, 0x01, FUA_LBA, 1, 1u << 30, buf) == 0, "Write with FUA");
    CHECK(namespace_syncs == before + 2, "a FUA write fdatasyncs the namespace file before it completes");
    states = state_syncs;
    fill(buf, REWRITTEN_LBA, 1);
    CHECK(rw(g, ns, 0x01, REWRITTEN_LBA, 1, 1u << 30, buf) == 0, "Write with FUA over the uncorrectable block");
    CHECK(namespace_syncs == before + 3 && state_syncs > states,
          "it fdatasyncs the data and fsyncs a state file that no longer lists the block");
    fill(buf, LATE_LBA, 1);
    CHECK(rw(g, ns, 0x01, LATE_LBA, 1, 0, buf) == 0 && namespace_syncs == before + 3, "a later plain write is not synced");

    /* Format NVM erases durably: a namespace 2 is created, attached and formatted. */
    unsigned char page[4096] = {0};
    page[0] = 8; page[8] = 8;                                   /* NSZE = NCAP = 8 blocks */
    struct nvme_passthru_cmd create = {.opcode = 0x0d, .addr = (unsigned long long)(unsigned long)page, .data_len = 4096};
    CHECK(call(g, ctrl, NVME_IOCTL_ADMIN_CMD, &create) == 0 && create.result == 2, "Namespace Management creates NSID 2");
    memset(page, 0, 16);
    page[0] = 1; page[2] = 1;                                   /* controller list: CNTLID 1 */
    struct nvme_passthru_cmd attach = {.opcode = 0x15, .nsid = 2, .addr = (unsigned long long)(unsigned long)page, .data_len = 4096};
    struct nvme_passthru_cmd format = {.opcode = 0x80, .nsid = 2, .cdw10 = 1 << 9};
    CHECK(call(g, ctrl, NVME_IOCTL_ADMIN_CMD, &attach) == 0 && call(g, ctrl, NVME_IOCTL_ADMIN_CMD, &format) == 0,
          "attach NSID 2 and Format NVM it, user data erase");
    CHECK(namespace2_syncs == 1, "Format NVM fdatasyncs the erased namespace file before it completes");

    printf("flushed: %d passed, %d failed\n", passed, failed);
    fflush(stdout);
    alarm(60);
    for (;;) pause();
}

static int refused_while_held(const char *dir, const char *pid) {
    char err[512] = "", expected[64];
    errno = 0;
    nvmegate *g = open_gate(dir, err, sizeof err);
    int e = errno;
    CHECK(g == NULL, "a second process cannot open the directory while the first holds it");
    CHECK(e == EBUSY, "errno is EBUSY");
    snprintf(expected, sizeof expected, "in use by another process (pid %s)", pid);
    CHECK(strstr(err, expected) != NULL && strstr(err, dir) != NULL, "the message names the directory and the holder's pid");
    if (failed) fprintf(stderr, "message: %s (errno %d)\n", err, e);
    if (g) nvmegate_destroy(g);
    return 0;
}

static int verify(const char *dir) {
    char err[512];
    nvmegate *g = open_gate(dir, err, sizeof err);
    CHECK(g != NULL, "the directory opens again once the writer is gone");
    if (!g) { fprintf(stderr, "%s\n", err); return 1; }
    int ns = nvmegate_open(g, "nvme0n1", O_RDONLY, &user);
    int ctrl = nvmegate_open(g, "nvme0", O_RDONLY, &admin);
    unsigned char got[MULTI_BLOCKS * 512], want[MULTI_BLOCKS * 512];
    for (size_t i = 0; i < NLBAS; i++) {
        fill(want, lbas[i], 1);
        memset(got, 0, sizeof got);
        CHECK(rw(g, ns, 0x02, lbas[i], 1, 0, got) == 0 && memcmp(got, want, 512) == 0, "a block written before the Flush reads back byte for byte");
    }
    fill(want, MULTI_LBA, MULTI_BLOCKS);
    CHECK(rw(g, ns, 0x02, MULTI_LBA, MULTI_BLOCKS, 0, got) == 0 && memcmp(got, want, sizeof want) == 0, "the 8-block write reads back");
    fill(want, FUA_LBA, 1);
    CHECK(rw(g, ns, 0x02, FUA_LBA, 1, 0, got) == 0 && memcmp(got, want, 512) == 0, "the FUA write reads back");
    fill(want, REWRITTEN_LBA, 1);
    CHECK(rw(g, ns, 0x02, REWRITTEN_LBA, 1, 0, got) == 0 && memcmp(got, want, 512) == 0,
          "the FUA write over the uncorrectable block reads back, not Unrecovered Read Error");
    CHECK(rw(g, ns, 0x02, UNC_LBA, 1, 0, got) == 0x4281, "the uncorrectable block still fails: Unrecovered Read Error");

    unsigned char smart[512];
    struct nvme_passthru_cmd log = {.opcode = 0x02, .nsid = 0xffffffff, .cdw10 = 0x02 | (127u << 16),
                                    .addr = (unsigned long long)(unsigned long)smart, .data_len = sizeof smart};
    CHECK(call(g, ctrl, NVME_IOCTL_ADMIN_CMD, &log) == 0, "SMART / Health log");
    unsigned long long host_writes, power_cycles, unsafe_shutdowns;
    memcpy(&host_writes, smart + 80, 8);
    memcpy(&power_cycles, smart + 112, 8);
    memcpy(&unsafe_shutdowns, smart + 144, 8);
    CHECK(host_writes >= NLBAS + 3, "the write counters saved at the Flush survive");
    CHECK(power_cycles == 2 && unsafe_shutdowns == 1, "the kill counts as an unsafe shutdown");
    nvmegate_destroy(g);
    return 0;
}

int main(int argc, char **argv) {
    int status = 2;
    if (argc == 3 && strcmp(argv[1], "write") == 0) status = write_then_wait(argv[2]);
    else if (argc == 4 && strcmp(argv[1], "second") == 0) status = refused_while_held(argv[2], argv[3]);
    else if (argc == 3 && strcmp(argv[1], "verify") == 0) status = verify(argv[2]);
    else fprintf(stderr, "usage: durability_test write DIR | second DIR PID | verify DIR\n");
    printf("%d passed, %d failed\n", passed, failed);
    return status != 0 || failed != 0 ? 1 : 0;
}
