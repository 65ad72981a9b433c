/*
 * abi_tenants_test.c: tenant policies through the C ABI, against the emulated controller,
 * with exact return values: tenants matched by uid and by gid, the default section for a
 * caller matching none, namespace ownership for I/O and for the admin commands that name a
 * namespace, LBA ranges (ends, SLBA + NLB wrap-around), Dataset Management and Copy range
 * lists (checked, and what runs is what was checked even while another thread rewrites the
 * caller's buffer), read-only grants, confined partition handles, monitoring grants with
 * LSP / RAE limits, vendor opt-in vouched by effects overrides (model / firmware), fused
 * Compare + Write pairs through nvmegate_check_batch, refused commands changing nothing, and
 * nvmegate_reload, alone and racing 8 submitting threads.
 *
 * The gate runs the in-memory "emulated" target (one 1 GiB namespace); namespace 2 (16384
 * blocks of 512 bytes) is created and attached through the C ABI by a CAP_SYS_ADMIN caller.
 *
 * Usage: abi_tenants_test SCRATCH_DIR (the policy files are written there).
 * Prints "N passed, M failed"; exits non-zero on a failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/nvme_ioctl.h>

#include "nvmegate.h"

static int passed, failed;

#define CHECK(cond, what)                                                                 \
    do {                                                                                  \
        if (cond) { passed++; }                                                           \
        else { failed++; fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, what); } \
    } while (0)

#define SYS_ADMIN (1ull << 21)
static const nvmegate_caller root = {0, 0, SYS_ADMIN};
static const nvmegate_caller db = {1001, 1001, 0};          /* tenant "db" by uid: owns namespace 1 */
static const nvmegate_caller scratch = {1002, 1002, 0};     /* "scratch": LBAs 1024-2047 of namespace 2 */
static const nvmegate_caller auditor = {5555, 2000, 0};     /* "auditor" by gid 2000: reads 1 and 2 */
static const nvmegate_caller db_in_2000 = {1001, 2000, 0};  /* matches "db" and "auditor": the first wins */
static const nvmegate_caller part = {1005, 1005, 0};        /* "part": namespace 2, partitions confined */
static const nvmegate_caller whole2 = {1006, 1006, 0};      /* "whole2": namespace 2, partitions refused */
static const nvmegate_caller monitor = {3000, 3000, 0};     /* "monitor": named logs, RAE, LSP 0 */
static const nvmegate_caller vendor = {4000, 4000, 0};      /* "vendor": vendor commands C1h-C4h, C5h/C6h */
static const nvmegate_caller nobody = {9999, 9999, 0};      /* no tenant: the default section */
static const nvmegate_caller uid0 = {0, 0, 0};              /* uid 0 without CAP_SYS_ADMIN: no tenant either */
static const nvmegate_caller db_admin = {1001, 1001, SYS_ADMIN};
static const nvmegate_caller tenant_x_caller = {7001, 7001, 0}; /* "x": namespace 1, listed first in A, second in B */

static nvmegate *g;
static char policy_a[4096], policy_b[4096], policy_broken[4096];

/* Policy A; policy B moves db to namespace 2, takes Get Features 07h from it, moves
 * scratch's range to LBA 8192 and swaps the order of tenants x and y. Written with the
 * variant's values substituted. */
static const char *policy_text =
    "version = 1\n"
    "name = \"abi-tenants-%s\"\n"
    "\n"
    "[privileges]\n"
    "bypass = [\"CAP_SYS_ADMIN\"]\n"
    "management = [\"CAP_SYS_ADMIN\"]\n"
    "\n"
    "# The emulated controller's effects log marks no vendor opcode: these vouch for some.\n"
    "[[effects.override]]\n"
    "model = \"nvmegate emulated controller\"\n"
    "queue = \"io\"\n"
    "opcode = 0xC1\n"
    "effects = [\"CSUPP\"]\n"
    "[[effects.override]]\n"
    "model = \"another controller\"\n"
    "queue = \"io\"\n"
    "opcode = 0xC2\n"
    "effects = [\"CSUPP\"]\n"
    "[[effects.override]]\n"
    "model = \"nvmegate emulated controller\"\n"
    "firmware = \"9.9\"\n"
    "queue = \"io\"\n"
    "opcode = 0xC3\n"
    "effects = [\"CSUPP\"]\n"
    "[[effects.override]]\n"
    "model = \"nvmegate emulated controller\"\n"
    "firmware = \"1.*\"\n"
    "queue = \"io\"\n"
    "opcode = 0xC4\n"
    "effects = [\"CSUPP\"]\n"
    "[[effects.override]]\n"
    "model = \"nvmegate emulated*\"\n"
    "queue = \"admin\"\n"
    "opcode = 0xC5\n"
    "effects = [\"CSUPP\"]\n"
    "\n"
    "[default]\n"
    "partitions = false\n"
    "[default.admin]\n"
    "identify_cns = [0x01]\n"
    "[default.io]\n"
    "commands = \"none\"\n"
    "\n"
    "[[tenant]]\n"
    "name = \"db\"\n"
    "uids = [1001]\n"
    "rules = \"kernel\"\n"
    "namespaces = %s\n"
    "[tenant.admin]\n"
    "commands = [\"Format NVM\", \"Set Features\", \"Sanitize\"]\n"
    "identify_cns = [0x03]\n"
    "log_pages = [0x01, 0x02]\n"
    "features = [%s]\n"
    "\n"
    "[[tenant]]\n"
    "name = \"scratch\"\n"
    "uids = [1002]\n"
    "rules = \"kernel\"\n"
    "[tenant.io]\n"
    "fused_compare_write = true\n"
    "[[tenant.lba_range]]\n"
    "nsid = 2\n"
    "start = %d\n"
    "blocks = 1024\n"
    "\n"
    "[[tenant]]\n"
    "name = \"auditor\"\n"
    "gids = [2000]\n"
    "rules = \"kernel\"\n"
    "read_only_namespaces = [1, 2]\n"
    "\n"
    "[[tenant]]\n"
    "name = \"part\"\n"
    "uids = [1005]\n"
    "rules = \"kernel\"\n"
    "partitions = \"confined\"\n"
    "namespaces = [2]\n"
    "\n"
    "[[tenant]]\n"
    "name = \"whole2\"\n"
    "uids = [1006]\n"
    "rules = \"kernel\"\n"
    "namespaces = [2]\n"
    "\n"
    "[[tenant]]\n"
    "name = \"monitor\"\n"
    "uids = [3000]\n"
    "[tenant.admin]\n"
    "identify_cns = [0x01]\n"
    "log_pages = [0x01, 0x02, 0x05]\n"
    "log_page_lsp = [0x00]\n"
    "retain_async_event = \"required\"\n"
    "\n"
    "[[tenant]]\n"
    "name = \"vendor\"\n"
    "uids = [4000]\n"
    "rules = \"kernel\"\n"
    "namespaces = [1]\n"
    "[tenant.admin]\n"
    "commands = [0xC5, 0xC6]\n"
    "[tenant.io]\n"
    "vendor_commands = [0xC1, 0xC2, 0xC3, 0xC4]\n"
    "%s";

/* Tenants x (uid 7001, namespace 1) and y (uid 7002, namespace 2): A lists x first, B lists y
 * first, so their tenant numbers swap. A handle's tenant from one policy read with the other's
 * tables would let x reach namespace 2: the race checks that it never does. */
static const char *tenant_x =
    "\n[[tenant]]\nname = \"x\"\nuids = [7001]\nrules = \"kernel\"\nnamespaces = [1]\n";
static const char *tenant_y =
    "\n[[tenant]]\nname = \"y\"\nuids = [7002]\nrules = \"kernel\"\nnamespaces = [2]\n";

static int write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fputs(text, f);
    return fclose(f);
}

static int write_policy(const char *path, int b) {
    static char text[8192];
    char pair[512];
    snprintf(pair, sizeof pair, "%s%s", b ? tenant_y : tenant_x, b ? tenant_x : tenant_y);
    snprintf(text, sizeof text, policy_text, b ? "B" : "A", b ? "[2]" : "[1]", b ? "0x05" : "0x05, 0x07", b ? 8192 : 1024, pair);
    return write_file(path, text);
}

/* ---- Commands ---------------------------------------------------------------------- */

struct req {
    unsigned char opcode, flags;
    unsigned nsid, cdw10, cdw11, cdw12, cdw13, cdw14, cdw15;
    void *data;
    unsigned len;
};

/* The result field of the last command sent through cmd() (preset to all ones). */
static unsigned long long result;

/* Sends `r` on handle `h` with the 80-byte struct (the 64-bit ioctls): the ioctl's return,
 * or -errno when it returned -1. */
static int cmd(int h, int io, struct req r) {
    struct nvme_passthru_cmd64 c;
    memset(&c, 0, sizeof c);
    c.opcode = r.opcode; c.flags = r.flags; c.nsid = r.nsid;
    c.cdw10 = r.cdw10; c.cdw11 = r.cdw11; c.cdw12 = r.cdw12; c.cdw13 = r.cdw13; c.cdw14 = r.cdw14; c.cdw15 = r.cdw15;
    c.addr = (unsigned long long)(uintptr_t)r.data; c.data_len = r.len;
    c.result = ~0ull;
    errno = 0;
    int rc = nvmegate_ioctl(g, h, io ? NVME_IOCTL_IO64_CMD : NVME_IOCTL_ADMIN64_CMD, &c);
    result = c.result;
    return rc == -1 ? -errno : rc;
}

/* The same with the 72-byte struct (NVME_IOCTL_ADMIN_CMD / _IO_CMD); `result` gets DW0. */
static int cmd72(int h, int io, struct req r) {
    struct nvme_passthru_cmd c;
    memset(&c, 0, sizeof c);
    c.opcode = r.opcode; c.flags = r.flags; c.nsid = r.nsid;
    c.cdw10 = r.cdw10; c.cdw11 = r.cdw11; c.cdw12 = r.cdw12; c.cdw13 = r.cdw13; c.cdw14 = r.cdw14; c.cdw15 = r.cdw15;
    c.addr = (unsigned long long)(uintptr_t)r.data; c.data_len = r.len;
    c.result = ~0u;
    errno = 0;
    int rc = nvmegate_ioctl(g, h, io ? NVME_IOCTL_IO_CMD : NVME_IOCTL_ADMIN_CMD, &c);
    result = c.result;
    return rc == -1 ? -errno : rc;
}

#define ADMIN(h, ...) cmd(h, 0, (struct req){__VA_ARGS__})
#define IO(h, ...) cmd(h, 1, (struct req){__VA_ARGS__})

static unsigned char page[4096], buf[1032 * 512], rd[8192];

static int all(const unsigned char *p, size_t n, unsigned char v) {
    for (size_t i = 0; i < n; i++) if (p[i] != v) return 0;
    return 1;
}
static unsigned long long le64(const unsigned char *p, int o) {
    unsigned long long v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[o + i];
    return v;
}
static void put16(unsigned char *p, int o, unsigned v) { p[o] = (unsigned char)v; p[o + 1] = (unsigned char)(v >> 8); }
static void put32(unsigned char *p, int o, unsigned v) { put16(p, o, v & 0xffff); put16(p, o + 2, v >> 16); }
static void put64(unsigned char *p, int o, unsigned long long v) { put32(p, o, (unsigned)v); put32(p, o + 4, (unsigned)(v >> 32)); }

/* Read / Write / Compare / Write Zeroes / Verify / Write Uncorrectable: `blocks` from `lba`. */
static int rw(int h, unsigned char opcode, unsigned nsid, unsigned long long lba, unsigned blocks, void *data) {
    return IO(h, .opcode = opcode, .nsid = nsid, .cdw10 = (unsigned)lba, .cdw11 = (unsigned)(lba >> 32),
              .cdw12 = blocks - 1, .data = data, .len = data ? blocks * 512 : 0);
}

static int fill(int h, unsigned nsid, unsigned long long lba, unsigned blocks, unsigned char byte) {
    memset(buf, byte, blocks * 512);
    return rw(h, 0x01, nsid, lba, blocks, buf);
}

/* Whether every block of [lba, lba + blocks) reads back (through handle h) as `byte`. */
static int holds(int h, unsigned nsid, unsigned long long lba, unsigned blocks, unsigned char byte) {
    for (unsigned i = 0; i < blocks; i++) {
        memset(rd, 0xEE, 512);
        if (rw(h, 0x02, nsid, lba + i, 1, rd) != 0 || !all(rd, 512, byte)) return 0;
    }
    return 1;
}

static int identify(int h, unsigned cns, unsigned nsid) {
    memset(page, 0xEE, sizeof page);
    return ADMIN(h, .opcode = 0x06, .nsid = nsid, .cdw10 = cns, .data = page, .len = 4096);
}

/* Get Log Page `lid`, `len` bytes, with LSP and RAE. */
static int get_log(int h, unsigned nsid, unsigned lid, unsigned lsp, int rae, unsigned len) {
    memset(page, 0xEE, sizeof page);
    return ADMIN(h, .opcode = 0x02, .nsid = nsid, .cdw10 = lid | lsp << 8 | (rae ? 1u << 15 : 0) | (len / 4 - 1) << 16,
                 .data = page, .len = len);
}

/* Dataset Management, deallocate (AD), the ranges in `list` (16 bytes each). */
static int dsm(int h, unsigned nsid, void *list, unsigned count) {
    return IO(h, .opcode = 0x09, .nsid = nsid, .cdw10 = count - 1, .cdw11 = 1 << 2, .data = list, .len = count * 16);
}

static void range16(unsigned char *list, int i, unsigned long long slba, unsigned blocks) {
    memset(list + 16 * i, 0, 16);
    put32(list, 16 * i + 4, blocks);
    put64(list, 16 * i + 8, slba);
}

/* Copy one source range (descriptor format 0) to `dest`. */
static int copy(int h, unsigned nsid, unsigned long long source, unsigned blocks, unsigned long long dest) {
    unsigned char d[32] = {0};
    put64(d, 8, source);
    put16(d, 16, blocks - 1);
    return IO(h, .opcode = 0x19, .nsid = nsid, .cdw10 = (unsigned)dest, .cdw11 = (unsigned)(dest >> 32), .cdw12 = 0,
              .data = d, .len = 32);
}

/* A 64-byte submission entry for nvmegate_check_batch. */
static void sqe(unsigned char *e, unsigned char opcode, unsigned char fuse, unsigned nsid, unsigned long long slba) {
    memset(e, 0, 64);
    e[0] = opcode;
    e[1] = fuse;
    put32(e, 4, nsid);
    put32(e, 40, (unsigned)slba);
    put32(e, 44, (unsigned)(slba >> 32));
}

/* ---- Setup: namespace 2 -------------------------------------------------------------- */

static int make_namespace_2(int ctrl) {
    unsigned char d[4096] = {0};
    put64(d, 0, 16384); put64(d, 8, 16384);
    int created = ADMIN(ctrl, .opcode = 0x0d, .cdw10 = 0, .data = d, .len = 4096);
    CHECK(created == 0 && result == 2, "Namespace Management create (CAP_SYS_ADMIN): NSID 2 in DW0");
    memset(d, 0, sizeof d);
    put16(d, 0, 1); put16(d, 2, 1);
    CHECK(ADMIN(ctrl, .opcode = 0x15, .nsid = 2, .cdw10 = 0, .data = d, .len = 4096) == 0,
          "Namespace Attachment: attach NSID 2 to controller 1");
    return created == 0;
}

/* ---- The items --------------------------------------------------------------------- */

static void matching(int r1, int r2) {
    CHECK(fill(r1, 1, 40, 1, 0x40) == 0 && fill(r2, 2, 40, 1, 0x41) == 0, "root writes LBA 40 of both namespaces");
    int nb_ctrl = nvmegate_open(g, "nvme0", O_RDONLY, &nobody), nb_ns = nvmegate_open(g, "nvme0n1", O_RDWR, &nobody);
    CHECK(nb_ctrl >= 0 && nb_ns >= 0, "a caller matching no tenant opens nvme0 and nvme0n1 (open checks no policy)");
    CHECK(identify(nb_ctrl, 0x01, 0) == 0 && memcmp(page + 24, "nvmegate emulated controller", 28) == 0,
          "default section: Identify Controller (CNS 01h) passes");
    CHECK(identify(nb_ctrl, 0x00, 1) == -EACCES, "default section: Identify Namespace (CNS 00h) is not granted: EACCES");
    CHECK(get_log(nb_ctrl, 0xffffffff, 0x02, 0, 1, 512) == -EACCES, "default section: Get Log Page: EACCES");
    CHECK(rw(nb_ns, 0x02, 1, 40, 1, rd) == -EACCES, "default section: io commands = \"none\": Read EACCES");
    int u0 = nvmegate_open(g, "nvme0n1", O_RDWR, &uid0);
    CHECK(rw(u0, 0x02, 1, 40, 1, rd) == -EACCES, "uid 0 without CAP_SYS_ADMIN is just another caller: default section, EACCES");

    int dbn = nvmegate_open(g, "nvme0n1", O_RDWR, &db);
    memset(rd, 0, 512);
    CHECK(rw(dbn, 0x02, 1, 40, 1, rd) == 0 && all(rd, 512, 0x40), "tenant by uid (1001 is db): reads namespace 1");
    int au1 = nvmegate_open(g, "nvme0n1", O_RDWR, &auditor), au2 = nvmegate_open(g, "nvme0n2", O_RDONLY, &auditor);
    memset(rd, 0, 512);
    CHECK(rw(au1, 0x02, 1, 40, 1, rd) == 0 && all(rd, 512, 0x40), "tenant by gid (gid 2000 is auditor): reads namespace 1");
    memset(rd, 0, 512);
    CHECK(rw(au2, 0x02, 2, 40, 1, rd) == 0 && all(rd, 512, 0x41), "auditor reads namespace 2");
    int both = nvmegate_open(g, "nvme0n1", O_RDWR, &db_in_2000);
    CHECK(fill(both, 1, 41, 1, 0x42) == 0, "uid 1001 in gid 2000 matches db first (file order): writes namespace 1");
    CHECK(fill(au1, 1, 41, 1, 0x43) == -EACCES, "the auditor's write of that block: EACCES");
    CHECK(holds(r1, 1, 41, 1, 0x42), "the block holds db's data");
    int dbp = nvmegate_open(g, "nvme0n2", O_RDWR, &db_admin);
    CHECK(fill(dbp, 2, 42, 1, 0x44) == 0 && holds(r2, 2, 42, 1, 0x44),
          "db with CAP_SYS_ADMIN: the privilege bypasses ownership (writes namespace 2)");
    nvmegate_close(g, nb_ctrl); nvmegate_close(g, nb_ns); nvmegate_close(g, u0); nvmegate_close(g, dbn);
    nvmegate_close(g, au1); nvmegate_close(g, au2); nvmegate_close(g, both); nvmegate_close(g, dbp);
}

static void ownership(int root_ctrl, int r1, int r2) {
    int ctrl = nvmegate_open(g, "nvme0", O_RDWR, &db);
    int n1 = nvmegate_open(g, "nvme0n1", O_RDWR, &db), n2 = nvmegate_open(g, "nvme0n2", O_RDWR, &db);
    CHECK(ctrl >= 0 && n1 >= 0 && n2 >= 0, "db opens nvme0, nvme0n1 and nvme0n2");
    CHECK(fill(r2, 2, 50, 4, 0x50) == 0, "root writes LBAs 50-53 of namespace 2");

    /* I/O */
    CHECK(fill(n1, 1, 50, 1, 0x51) == 0, "db writes its namespace 1");
    CHECK(fill(n2, 2, 50, 1, 0x52) == -EACCES, "db writes namespace 2: EACCES");
    CHECK(rw(n2, 0x02, 2, 50, 1, rd) == -EACCES, "db reads namespace 2: EACCES");
    CHECK(rw(n2, 0x08, 2, 51, 1, NULL) == -EACCES, "db's Write Zeroes on namespace 2: EACCES");
    CHECK(cmd72(ctrl, 1, (struct req){.opcode = 0x02, .nsid = 1, .cdw12 = 0, .data = rd, .len = 512}) == -EINVAL,
          "NVME_IOCTL_IO_CMD on the controller node with two namespaces: EINVAL (as Linux)");
    CHECK(IO(ctrl, .opcode = 0x02, .nsid = 1, .cdw12 = 0, .data = rd, .len = 512) == -ENOTTY,
          "NVME_IOCTL_IO64_CMD on the controller node: ENOTTY (as Linux)");
    CHECK(IO(n1, .opcode = 0x02, .nsid = 2, .cdw12 = 0, .data = rd, .len = 512) == -EINVAL,
          "an I/O NSID other than the handle's: EINVAL");

    /* Identify */
    CHECK(identify(ctrl, 0x00, 1) == 0 && le64(page, 0) == 2097152, "Identify Namespace (00h) of namespace 1: NSZE 2097152");
    CHECK(identify(ctrl, 0x00, 2) == -EACCES, "Identify Namespace (00h) of namespace 2: EACCES");
    CHECK(identify(ctrl, 0x05, 2) == -EACCES, "I/O Command Set Identify Namespace (05h) of namespace 2: EACCES");
    CHECK(identify(ctrl, 0x03, 2) == -EACCES, "Namespace Identification Descriptors (03h) of namespace 2: EACCES");
    CHECK(identify(ctrl, 0x03, 1) == 0 && page[0] == 1 && page[1] == 8, "CNS 03h of namespace 1: its descriptors");
    CHECK(identify(n1, 0x00, 2) == -EACCES, "Identify of namespace 2 through the nvme0n1 handle: EACCES");
    CHECK(identify(ctrl, 0x01, 2) == 0, "Identify Controller (01h) ignores the NSID: passes with NSID 2");
    CHECK(identify(ctrl, 0x02, 0) == -EACCES, "Active Namespace ID list (02h) is not granted: EACCES");

    /* Get Log Page */
    CHECK(get_log(ctrl, 0xffffffff, 0x02, 0, 0, 512) == 0, "SMART (02h) for the controller (FFFFFFFFh)");
    CHECK(get_log(ctrl, 2, 0x02, 0, 0, 512) == -EACCES, "SMART for NSID 2: EACCES");
    CHECK(get_log(ctrl, 2, 0x01, 0, 0, 64) == -EACCES, "Error Information with NSID 2: EACCES");
    CHECK(get_log(ctrl, 1, 0x01, 0, 0, 64) == 0, "Error Information with NSID 1 (owned)");
    CHECK(get_log(ctrl, 1, 0x02, 0, 0, 512) == 0x4002,
          "SMART for NSID 1: allowed, and the controller answers Invalid Field 0x4002 (no per-namespace SMART)");
    CHECK(get_log(ctrl, 0xffffffff, 0x03, 0, 0, 512) == -EACCES, "Firmware Slot (03h) is not granted: EACCES");

    /* Set Features, namespace-scoped Error Recovery (05h) */
    CHECK(ADMIN(ctrl, .opcode = 0x09, .nsid = 1, .cdw10 = 0x05, .cdw11 = 0x20) == 0, "Set Features 05h on NSID 1");
    CHECK(ADMIN(ctrl, .opcode = 0x09, .nsid = 2, .cdw10 = 0x05, .cdw11 = 0x30) == -EACCES, "Set Features 05h on NSID 2: EACCES");
    CHECK(ADMIN(ctrl, .opcode = 0x09, .nsid = 0xffffffff, .cdw10 = 0x05, .cdw11 = 0x30) == -EACCES,
          "Set Features 05h on FFFFFFFFh (every namespace): EACCES");
    CHECK(ADMIN(root_ctrl, .opcode = 0x0a, .nsid = 1, .cdw10 = 0x05) == 0 && result == 0x20, "root reads Error Recovery of NSID 1: 20h");
    CHECK(ADMIN(root_ctrl, .opcode = 0x0a, .nsid = 2, .cdw10 = 0x05) == 0 && result == 0, "Error Recovery of NSID 2 is unchanged: 0");
    CHECK(ADMIN(ctrl, .opcode = 0x09, .cdw10 = 0x07, .cdw11 = 0x000f000f) == 0x400c,
          "Set Features Number of Queues (controller-scoped): passes the gate; the controller answers Command Sequence Error 0x400C (its I/O queues exist)");
    CHECK(ADMIN(ctrl, .opcode = 0x0a, .cdw10 = 0x07) == 0 && result == 0x003f003f, "Get Features 07h (granted)");
    CHECK(ADMIN(ctrl, .opcode = 0x0a, .cdw10 = 0x06) == -EACCES, "Get Features 06h (not granted): EACCES");

    /* Format NVM and Sanitize */
    CHECK(ADMIN(ctrl, .opcode = 0x80, .nsid = 0xffffffff, .cdw10 = 0) == -EACCES, "Format NVM on FFFFFFFFh: EACCES");
    CHECK(ADMIN(ctrl, .opcode = 0x80, .nsid = 2, .cdw10 = 0) == -EACCES, "Format NVM on NSID 2: EACCES");
    CHECK(ADMIN(ctrl, .opcode = 0x84, .cdw10 = 2) == -EACCES, "Sanitize (granted, but it reaches every namespace): EACCES");
    CHECK(ADMIN(ctrl, .opcode = 0x84, .nsid = 1, .cdw10 = 2) == -EACCES, "Sanitize naming NSID 1: still EACCES");
    CHECK(holds(r2, 2, 50, 4, 0x50), "namespace 2 is unchanged: LBAs 50-53 still hold root's data");
    CHECK(ADMIN(ctrl, .opcode = 0x80, .nsid = 1, .cdw10 = 0) == 0, "Format NVM on NSID 1 (owned whole): passes");
    CHECK(holds(r1, 1, 50, 1, 0x00), "namespace 1 is erased");
    CHECK(holds(r2, 2, 50, 4, 0x50), "namespace 2 still holds its data");
    nvmegate_close(g, ctrl); nvmegate_close(g, n1); nvmegate_close(g, n2);
}

static void lba_ranges(int r2) {
    int n2 = nvmegate_open(g, "nvme0n2", O_RDWR, &scratch), n1 = nvmegate_open(g, "nvme0n1", O_RDONLY, &scratch);
    CHECK(fill(r2, 2, 1020, 4, 0x6E) == 0 && fill(r2, 2, 2048, 8, 0x6E) == 0, "root writes 0x6E to LBAs 1020-1023 and 2048-2055");
    CHECK(fill(n2, 2, 1024, 1, 0x61) == 0, "scratch writes LBA 1024, the first of its range");
    CHECK(fill(n2, 2, 2047, 1, 0x61) == 0, "scratch writes LBA 2047, the last");
    CHECK(fill(n2, 2, 2040, 8, 0x61) == 0, "scratch writes 2040-2047, ending exactly at the range's end");
    CHECK(fill(n2, 2, 2040, 9, 0x62) == -EACCES, "2040 + 9 blocks runs one past the end: EACCES");
    CHECK(fill(n2, 2, 2048, 1, 0x62) == -EACCES, "LBA 2048: EACCES");
    CHECK(fill(n2, 2, 1023, 1, 0x62) == -EACCES, "LBA 1023, one before the start: EACCES");
    CHECK(fill(n2, 2, 1023, 2, 0x62) == -EACCES, "1023 + 2 blocks straddles the start: EACCES");
    CHECK(fill(n2, 2, 1024, 1024, 0x61) == 0, "the whole range, 1024 blocks in one Write (512 KiB)");
    CHECK(rw(n2, 0x01, 2, 0xffffffffffffffffull, 2, buf) == -EACCES, "SLBA FFFFFFFFFFFFFFFFh + 2 blocks wraps: EACCES");
    CHECK(rw(n2, 0x01, 2, 0xfffffffffffffff8ull, 1032, buf) == -EACCES,
          "SLBA 2^64 - 8 + 1032 blocks wraps to end at 1024: EACCES, not the controller's LBA Out of Range");
    CHECK(rw(n2, 0x02, 2, 0xfffffffffffffff0ull, 32, buf) == -EACCES, "a Read that wraps: EACCES");
    CHECK(rw(n2, 0x02, 2, 1024 + (1ull << 32), 1, rd) == -EACCES, "SLBA with a high dword set (4294968320): EACCES");
    CHECK(rw(n2, 0x08, 2, 1030, 2, NULL) == 0 && holds(r2, 2, 1030, 2, 0), "Write Zeroes inside");
    CHECK(rw(n2, 0x08, 2, 2047, 2, NULL) == -EACCES, "Write Zeroes over the end: EACCES");
    CHECK(rw(n2, 0x0c, 2, 2000, 100, NULL) == -EACCES, "Verify over the end: EACCES");
    CHECK(rw(n2, 0x04, 2, 1000, 1, NULL) == -EACCES, "Write Uncorrectable before the start: EACCES");
    CHECK(IO(n2, .opcode = 0x00, .nsid = 2) == 0, "Flush touches no one's blocks: passes");
    memset(buf, 0, 16);
    CHECK(IO(n2, .opcode = 0x0d, .nsid = 2, .cdw10 = 0, .data = buf, .len = 16) == -EACCES,
          "Reservation Register takes the whole namespace: EACCES");
    CHECK(rw(n1, 0x02, 1, 0, 1, rd) == -EACCES, "scratch reads namespace 1: EACCES");
    CHECK(holds(r2, 2, 1020, 4, 0x6E) && holds(r2, 2, 2048, 8, 0x6E), "refused commands changed nothing: 1020-1023, 2048-2055 intact");

    /* Dataset Management and Copy range lists */
    unsigned char list[64];
    CHECK(fill(r2, 2, 3000, 1, 0x6E) == 0 && fill(n2, 2, 1100, 2, 0x11) == 0, "root writes LBA 3000; scratch writes 1100-1101");
    range16(list, 0, 1100, 1); range16(list, 1, 3000, 1);
    CHECK(dsm(n2, 2, list, 2) == -EACCES, "DSM deallocate of 1100 and 3000 (outside): EACCES");
    CHECK(holds(r2, 2, 1100, 2, 0x11) && holds(r2, 2, 3000, 1, 0x6E), "nothing deallocated: 1100 and 3000 read back");
    range16(list, 0, 2047, 2);
    CHECK(dsm(n2, 2, list, 1) == -EACCES && holds(r2, 2, 2048, 1, 0x6E), "a DSM range over the end: EACCES, 2048 intact");
    range16(list, 0, 0xffffffffffffffffull, 2);
    CHECK(dsm(n2, 2, list, 1) == -EACCES, "a DSM range that wraps: EACCES");
    range16(list, 0, 1100, 1); range16(list, 1, 1500, 0); range16(list, 2, 1101, 1);
    CHECK(dsm(n2, 2, list, 3) == 0 && holds(r2, 2, 1100, 2, 0), "DSM of ranges inside (one empty): 1100-1101 read as zeroes");
    range16(list, 0, 1100, 1);
    CHECK(IO(n2, .opcode = 0x09, .nsid = 2, .cdw10 = 1, .cdw11 = 4, .data = list, .len = 16) == -EINVAL,
          "DSM whose NR names more ranges than data_len holds: EINVAL");
    CHECK(fill(n2, 2, 1200, 1, 0x12) == 0, "scratch writes LBA 1200");
    CHECK(copy(n2, 2, 3000, 1, 1300) == -EACCES, "Copy from LBA 3000 (outside) into the range: EACCES");
    CHECK(copy(n2, 2, 1200, 1, 2048) == -EACCES, "Copy from 1200 to LBA 2048 (outside): EACCES");
    CHECK(copy(n2, 2, 1200, 2, 2047) == -EACCES, "Copy of 2 blocks to 2047 (straddles the end): EACCES");
    CHECK(holds(r2, 2, 2048, 8, 0x6E) && holds(r2, 2, 3000, 1, 0x6E), "refused Copies changed nothing");
    CHECK(copy(n2, 2, 1200, 1, 1300) == 0 && holds(r2, 2, 1300, 1, 0x12), "Copy 1200 to 1300 (both inside): copied");
    nvmegate_close(g, n2); nvmegate_close(g, n1);
}

/* ---- A range list rewritten by another thread while DSM / Copy run --------------------- */

struct range { uint32_t attributes, blocks; uint64_t slba; };
static struct range hammered[2];
static struct nvme_passthru_cmd64 hammered_cmd;
static atomic_int hammer_stop;
static int hammer_mode;

static atomic_int hammer_running;

static void *hammer(void *arg) {
    (void)arg;
    unsigned k = 0;
    atomic_store(&hammer_running, 1);
    while (!atomic_load_explicit(&hammer_stop, memory_order_relaxed)) {
        switch (hammer_mode) {
        case 0: /* the first DSM range: inside, moved outside, widened past the end */
            switch (k++ % 3) {
            case 0: __atomic_store_n(&hammered[0].slba, 1100, __ATOMIC_RELAXED); __atomic_store_n(&hammered[0].blocks, 1, __ATOMIC_RELAXED); break;
            case 1: __atomic_store_n(&hammered[0].slba, 5000, __ATOMIC_RELAXED); break;
            default: __atomic_store_n(&hammered[0].slba, 1100, __ATOMIC_RELAXED); __atomic_store_n(&hammered[0].blocks, 3000, __ATOMIC_RELAXED); break;
            }
            break;
        case 1: /* NR in the caller's struct: one range (inside) or two (the second outside) */
            __atomic_store_n(&hammered_cmd.cdw10, k++ & 1, __ATOMIC_RELAXED);
            break;
        default: /* a Copy source descriptor: SLBA 1200 (inside) or 5000 (outside) */
            __atomic_store_n(&hammered[0].slba, (k++ & 1) ? 5000 : 1200, __ATOMIC_RELAXED);
            break;
        }
    }
    return NULL;
}

static void racing_range_lists(int r2) {
    int n2 = nvmegate_open(g, "nvme0n2", O_RDWR, &scratch);
    CHECK(fill(r2, 2, 2048, 8, 0x6E) == 0 && fill(r2, 2, 3000, 1, 0x6E) == 0 && fill(r2, 2, 4095, 1, 0x6E) == 0
          && fill(r2, 2, 5000, 1, 0x6E) == 0, "root writes 0x6E to 2048-2055, 3000, 4095 and 5000 (other tenants' blocks)");
    const int rounds = 3000;
    for (hammer_mode = 0; hammer_mode < 3; hammer_mode++) {
        int ok = 0, refused = 0, other = 0, leaked = 0;
        hammered[0] = (struct range){0, 1, hammer_mode == 2 ? 1200 : 1100};
        hammered[1] = (struct range){0, 1, 5000};
        if (hammer_mode == 2) {
            memset(hammered, 0, sizeof hammered);
            hammered[0].slba = 1200;   /* descriptor format 0: SLBA at 8, NLB (0's based) at 16 */
            CHECK(fill(n2, 2, 1200, 1, 0x12) == 0 && fill(n2, 2, 1300, 1, 0x13) == 0, "scratch writes 1200 and 1300");
        }
        memset(&hammered_cmd, 0, sizeof hammered_cmd);
        hammered_cmd.opcode = hammer_mode == 2 ? 0x19 : 0x09;
        hammered_cmd.nsid = 2;
        hammered_cmd.cdw10 = hammer_mode == 2 ? 1300 : 0;
        hammered_cmd.cdw11 = hammer_mode == 2 ? 0 : 4;
        hammered_cmd.addr = (unsigned long long)(uintptr_t)hammered;
        hammered_cmd.data_len = 32;
        atomic_store(&hammer_stop, 0);
        atomic_store(&hammer_running, 0);
        pthread_t t;
        pthread_create(&t, NULL, hammer, NULL);
        while (!atomic_load(&hammer_running)) { /* the rewriting has begun */ }
        /* At least `rounds` ioctls, and on until both outcomes were seen (at most 30000). */
        int i;
        for (i = 0; i < rounds || ((ok == 0 || refused == 0) && i < 10 * rounds); i++) {
            errno = 0;
            int rc = nvmegate_ioctl(g, n2, NVME_IOCTL_IO64_CMD, &hammered_cmd);
            if (rc == 0) ok++;
            else if (rc == -1 && errno == EACCES) refused++;
            else other++;
            if (hammer_mode == 2 && rc == 0 && (i & 7) == 0) {
                memset(rd, 0, 512);
                if (rw(n2, 0x02, 2, 1300, 1, rd) != 0 || !all(rd, 512, 0x12)) leaked++;
            }
        }
        atomic_store(&hammer_stop, 1);
        pthread_join(t, NULL);
        char what[200];
        snprintf(what, sizeof what, "%s rewritten by another thread, %d ioctls: only 0 (%d) or EACCES (%d), %d other",
                 hammer_mode == 0 ? "DSM range list" : hammer_mode == 1 ? "DSM NR in the struct" : "Copy source descriptor",
                 i, ok, refused, other);
        printf("%s\n", what);
        CHECK(other == 0 && ok + refused == i, what);
        CHECK(ok > 0 && refused > 0, "the race was real: both outcomes happened");
        if (hammer_mode == 2) CHECK(leaked == 0, "no allowed Copy copied LBA 5000 (another tenant's) into LBA 1300");
    }
    CHECK(holds(r2, 2, 2048, 8, 0x6E) && holds(r2, 2, 3000, 1, 0x6E) && holds(r2, 2, 4095, 1, 0x6E)
          && holds(r2, 2, 5000, 1, 0x6E), "afterwards, every block outside the range is intact");
    nvmegate_close(g, n2);
}

static void read_only(int r1, int r2) {
    int a1 = nvmegate_open(g, "nvme0n1", O_RDWR, &auditor), a2 = nvmegate_open(g, "nvme0n2", O_RDWR, &auditor);
    int actrl = nvmegate_open(g, "nvme0", O_RDWR, &auditor);
    CHECK(fill(r1, 1, 60, 2, 0x70) == 0 && fill(r2, 2, 60, 2, 0x71) == 0, "root writes LBAs 60-61 of both namespaces");
    memset(rd, 0, 512);
    CHECK(rw(a1, 0x02, 1, 60, 1, rd) == 0 && all(rd, 512, 0x70), "read-only grant, handle opened O_RDWR: Read passes");
    CHECK(fill(a1, 1, 60, 1, 0x72) == -EACCES, "Write: EACCES (the grant is read-only, whatever the open mode)");
    CHECK(fill(a2, 2, 60, 1, 0x72) == -EACCES, "Write on namespace 2: EACCES");
    CHECK(rw(a1, 0x08, 1, 61, 1, NULL) == -EACCES, "Write Zeroes: EACCES");
    CHECK(rw(a1, 0x04, 1, 61, 1, NULL) == -EACCES, "Write Uncorrectable: EACCES");
    unsigned char list[16];
    range16(list, 0, 60, 2);
    CHECK(dsm(a1, 1, list, 1) == -EACCES, "DSM deallocate: EACCES");
    CHECK(copy(a2, 2, 60, 1, 61) == -EACCES, "Copy: EACCES");
    memcpy(buf, rd, 512);
    CHECK(rw(a1, 0x05, 1, 60, 1, buf) == -EACCES,
          "Compare: EACCES (opcode bit 0, data to the controller: a read-only grant treats it as Linux's nvme_is_write does)");
    CHECK(IO(a1, .opcode = 0x00, .nsid = 1) == 0, "Flush: passes");
    CHECK(ADMIN(actrl, .opcode = 0x80, .nsid = 1) == -EACCES, "Format NVM: EACCES");
    CHECK(holds(r1, 1, 60, 2, 0x70) && holds(r2, 2, 60, 2, 0x71), "nothing changed");
    nvmegate_close(g, a1); nvmegate_close(g, a2); nvmegate_close(g, actrl);
}

/* An MBR in LBA 0 of namespace 2: slot 1 LBAs 4096-6143, slot 2 empty, slot 3 LBAs 8192-9215. */
static void partitions(int r2) {
    unsigned char mbr[512] = {0};
    mbr[446 + 4] = 0x83; put32(mbr, 446 + 8, 4096); put32(mbr, 446 + 12, 2048);
    mbr[446 + 32 + 4] = 0x83; put32(mbr, 446 + 32 + 8, 8192); put32(mbr, 446 + 32 + 12, 1024);
    mbr[510] = 0x55; mbr[511] = 0xAA;
    CHECK(rw(r2, 0x01, 2, 0, 1, mbr) == 0, "root writes an MBR to LBA 0 of namespace 2");
    CHECK(fill(r2, 2, 4095, 1, 0x6E) == 0 && fill(r2, 2, 6144, 1, 0x6E) == 0 && fill(r2, 2, 4096, 1, 0x80) == 0,
          "root writes 4095 and 6144 (outside partition 1) and 4096 (inside)");
    int p1 = nvmegate_open(g, "nvme0n2p1", O_RDWR, &part);
    CHECK(p1 >= 0, "nvme0n2p1 opens: the target reports the partition");
    CHECK(nvmegate_ioctl(g, p1, NVME_IOCTL_ID, NULL) == 2, "NVME_IOCTL_ID on the partition: 2");
    errno = 0;
    int p2 = nvmegate_open(g, "nvme0n2p2", O_RDWR, &part);
    CHECK(p2 == -1 && errno == ENOENT, "nvme0n2p2, an empty MBR slot: no node, ENOENT (Linux creates none)");
    if (p2 >= 0) {
        CHECK(rw(p2, 0x02, 2, 0, 1, rd) == -EACCES, "(if it opened) the empty partition reaches no block");
        nvmegate_close(g, p2);
    }
    int p3 = nvmegate_open(g, "nvme0n2p3", O_RDONLY, &part);
    errno = 0;
    CHECK(p3 >= 0 && nvmegate_open(g, "nvme0n2p4", O_RDONLY, &part) == -1 && errno == ENOENT, "p3 exists, p4 does not");
    memset(rd, 0, 512);
    CHECK(rw(p1, 0x02, 2, 4096, 1, rd) == 0 && all(rd, 512, 0x80), "confined: Read of LBA 4096, the partition's first");
    CHECK(rw(p1, 0x02, 2, 6143, 1, rd) == 0, "Read of 6143, its last");
    CHECK(rw(p1, 0x02, 2, 6140, 4, rd) == 0, "Read of 6140-6143, ending at its end");
    CHECK(rw(p1, 0x02, 2, 6140, 5, rd) == -EACCES, "Read of 6140 + 5 blocks, one past: EACCES");
    CHECK(rw(p1, 0x02, 2, 4095, 1, rd) == -EACCES, "Read of 4095, before it: EACCES");
    CHECK(rw(p1, 0x02, 2, 0, 1, rd) == -EACCES, "Read of LBA 0 (the MBR): EACCES");
    CHECK(fill(p1, 2, 4095, 2, 0x81) == -EACCES, "Write of 4095-4096 (straddling the start): EACCES");
    CHECK(fill(p1, 2, 0xffffffffffffffffull, 2, 0x81) == -EACCES, "a Write that wraps: EACCES");
    CHECK(rw(p3, 0x02, 2, 8192, 1, rd) == 0 && rw(p3, 0x02, 2, 6143, 1, rd) == -EACCES, "p3 is confined to its own blocks");
    unsigned char list[32];
    CHECK(fill(p1, 2, 4100, 1, 0x82) == 0, "Write of 4100 inside");
    range16(list, 0, 4100, 1); range16(list, 1, 6144, 1);
    CHECK(dsm(p1, 2, list, 2) == -EACCES, "DSM with a range outside the partition: EACCES");
    CHECK(dsm(p1, 2, list, 1) == 0 && holds(r2, 2, 4100, 1, 0), "DSM inside: deallocated");
    CHECK(copy(p1, 2, 4096, 1, 6144) == -EACCES && copy(p1, 2, 4095, 1, 4200) == -EACCES, "Copy in or out of the partition: EACCES");
    CHECK(copy(p1, 2, 4096, 1, 4200) == 0 && holds(r2, 2, 4200, 1, 0x80), "Copy inside: copied");
    memset(buf, 0, 256);
    CHECK(IO(p1, .opcode = 0x0e, .nsid = 2, .cdw10 = 63, .data = buf, .len = 256) == -EACCES,
          "Reservation Report reaches the whole namespace: EACCES");
    CHECK(IO(p1, .opcode = 0x00, .nsid = 2) == 0, "Flush: passes");
    CHECK(holds(r2, 2, 4095, 1, 0x6E) && holds(r2, 2, 6144, 1, 0x6E), "refused commands changed nothing outside");
    int ns = nvmegate_open(g, "nvme0n2", O_RDONLY, &part);
    CHECK(rw(ns, 0x02, 2, 0, 1, rd) == 0 && rd[510] == 0x55, "the same tenant through nvme0n2 (owned whole) reads LBA 0");
    int w = nvmegate_open(g, "nvme0n2p1", O_RDONLY, &whole2), wn = nvmegate_open(g, "nvme0n2", O_RDONLY, &whole2);
    CHECK(rw(w, 0x02, 2, 4096, 1, rd) == -EACCES, "partitions = false (Linux's rule): a partition handle is refused, even inside");
    CHECK(rw(wn, 0x02, 2, 4096, 1, rd) == 0, "that tenant through nvme0n2: passes");
    int rp = nvmegate_open(g, "nvme0n2p1", O_RDONLY, &root);
    CHECK(rw(rp, 0x02, 2, 0, 1, rd) == 0, "CAP_SYS_ADMIN through the partition: bypasses");
    nvmegate_close(g, p1); nvmegate_close(g, p3); nvmegate_close(g, ns);
    nvmegate_close(g, w); nvmegate_close(g, wn); nvmegate_close(g, rp);
}

static void monitoring(void) {
    int m = nvmegate_open(g, "nvme0", O_RDONLY, &monitor), mn = nvmegate_open(g, "nvme0n1", O_RDONLY, &monitor);
    CHECK(get_log(m, 0xffffffff, 0x02, 0, 1, 512) == 0, "monitor: SMART with RAE, LSP 0: passes");
    CHECK(get_log(m, 0xffffffff, 0x02, 0, 0, 512) == -EACCES, "SMART without RAE: EACCES");
    CHECK(get_log(m, 0xffffffff, 0x02, 1, 1, 512) == -EACCES, "SMART with LSP 1: EACCES");
    CHECK(get_log(m, 0xffffffff, 0x02, 0x7f, 1, 512) == -EACCES, "SMART with LSP 7Fh: EACCES");
    CHECK(get_log(m, 0xffffffff, 0x05, 0, 1, 4096) == 0 && page[4 * 6] == 1, "Commands Supported and Effects with RAE: passes");
    CHECK(get_log(m, 0xffffffff, 0x01, 0, 1, 64) == 0, "Error Information with RAE: passes");
    CHECK(get_log(m, 0xffffffff, 0x03, 0, 1, 512) == -EACCES, "Firmware Slot (not named): EACCES");
    CHECK(get_log(m, 0xffffffff, 0x04, 0, 0, 4096) == -EACCES, "Changed Namespace List without RAE (would clear it): EACCES");
    CHECK(get_log(m, 1, 0x01, 0, 1, 64) == -EACCES, "Error Information naming NSID 1 (owns no namespace): EACCES");
    CHECK(identify(m, 0x01, 0) == 0, "Identify Controller: passes");
    CHECK(identify(m, 0x00, 1) == -EACCES, "Identify Namespace: EACCES");
    CHECK(ADMIN(m, .opcode = 0x0a, .cdw10 = 0x07) == -EACCES, "Get Features: EACCES");
    CHECK(ADMIN(m, .opcode = 0x09, .cdw10 = 0x06, .cdw11 = 0) == -EACCES, "Set Features: EACCES");
    CHECK(ADMIN(m, .opcode = 0x14, .nsid = 0xffffffff, .cdw10 = 1) == -EACCES, "Device Self-test: EACCES");
    CHECK(rw(mn, 0x02, 1, 0, 1, rd) == -EACCES, "Read through nvme0n1 (rules = none): EACCES");
    nvmegate_close(g, m); nvmegate_close(g, mn);
}

static void vendor_commands(void) {
    int v = nvmegate_open(g, "nvme0n1", O_RDWR, &vendor), vc = nvmegate_open(g, "nvme0", O_RDWR, &vendor);
    int d = nvmegate_open(g, "nvme0n1", O_RDWR, &db);
    CHECK(IO(v, .opcode = 0xc1, .nsid = 1) == 0x4001,
          "C1h (named; an override for this model says CSUPP): reaches the controller, Invalid Opcode 0x4001");
    CHECK(IO(v, .opcode = 0xc2, .nsid = 1) == -EACCES, "C2h (named; the override is for another model): EACCES");
    CHECK(IO(v, .opcode = 0xc3, .nsid = 1) == -EACCES, "C3h (named; the override is for firmware 9.9, this is 1.0): EACCES");
    CHECK(IO(v, .opcode = 0xc4, .nsid = 1) == 0x4001, "C4h (named; override for firmware 1.*): reaches the controller, 0x4001");
    CHECK(IO(v, .opcode = 0xc5, .nsid = 1) == -EACCES, "C5h on the I/O queue (not named): EACCES");
    CHECK(ADMIN(vc, .opcode = 0xc5) == 0x4001, "admin C5h (named; override by model prefix): reaches the controller, 0x4001");
    CHECK(ADMIN(vc, .opcode = 0xc6) == -EACCES, "admin C6h (named, not vouched for by the log): EACCES");
    CHECK(IO(d, .opcode = 0xc1, .nsid = 1) == -EACCES, "C1h from db (not granted vendor commands): EACCES");
    int vr = nvmegate_open(g, "nvme0n1", O_RDONLY, &vendor);
    CHECK(IO(vr, .opcode = 0xc1, .nsid = 1) == -EACCES, "C1h (opcode bit 0: data to the controller) on an O_RDONLY handle: EACCES");
    unsigned char ring[4 * 64], verdicts[6];
    for (int i = 0; i < 4; i++) sqe(ring + 64 * i, (unsigned char)(0xc1 + i), 0, 1, 0);
    memset(verdicts, 0xA5, sizeof verdicts);
    CHECK(nvmegate_check_batch(g, v, NVMEGATE_QUEUE_IO, ring, 4, verdicts) == 4 && verdicts[0] == 0 && verdicts[1] == EACCES
          && verdicts[2] == EACCES && verdicts[3] == 0 && verdicts[4] == 0xA5 && verdicts[5] == 0xA5,
          "check_batch C1h-C4h: 0, EACCES, EACCES, 0, and nothing written past the verdicts");
    nvmegate_close(g, v); nvmegate_close(g, vc); nvmegate_close(g, d); nvmegate_close(g, vr);
}

static void fused(int r2) {
    int n2 = nvmegate_open(g, "nvme0n2", O_RDWR, &scratch), n2ro = nvmegate_open(g, "nvme0n2", O_RDONLY, &scratch);
    int d1 = nvmegate_open(g, "nvme0n1", O_RDWR, &db);
    unsigned char ring[12 * 64], v[12];
    int n = 0;
    sqe(ring + 64 * n++, 0x05, 1, 2, 1100); sqe(ring + 64 * n++, 0x01, 2, 2, 1100);   /* pair inside: 0, 0 */
    sqe(ring + 64 * n++, 0x05, 1, 2, 1100); sqe(ring + 64 * n++, 0x01, 2, 2, 3000);   /* write half outside */
    sqe(ring + 64 * n++, 0x05, 1, 2, 3000); sqe(ring + 64 * n++, 0x01, 2, 2, 1100);   /* compare half outside */
    sqe(ring + 64 * n++, 0x05, 1, 2, 1100);                                            /* lone first half */
    sqe(ring + 64 * n++, 0x02, 0, 2, 1100);                                            /* a plain Read */
    sqe(ring + 64 * n++, 0x01, 2, 2, 1100);                                            /* lone second half */
    sqe(ring + 64 * n++, 0x05, 1, 2, 1100); sqe(ring + 64 * n++, 0x02, 2, 2, 1100);   /* Compare + Read: not a pair */
    sqe(ring + 64 * n++, 0x09, 0, 2, 0);                                               /* DSM: its list is not here */
    memset(v, 0xFF, sizeof v);
    long count = nvmegate_check_batch(g, n2, NVMEGATE_QUEUE_IO, ring, (size_t)n, v);
    const unsigned char want[12] = {0, 0, EACCES, EACCES, EACCES, EACCES, EINVAL, 0, EINVAL, EINVAL, EINVAL, EACCES};
    CHECK(count == n && memcmp(v, want, (size_t)n) == 0,
          "check_batch: pair inside 0 0; either half outside: EACCES for both; lone halves and Compare + Read EINVAL; "
          "a DSM whose ranges the ring cannot show: EACCES");
    if (count != n || memcmp(v, want, (size_t)n) != 0) {
        fprintf(stderr, "  verdicts:");
        for (int i = 0; i < n; i++) fprintf(stderr, " %d", v[i]);
        fprintf(stderr, "\n");
    }
    memset(v, 0xFF, sizeof v);
    CHECK(nvmegate_check_batch(g, n2ro, NVMEGATE_QUEUE_IO, ring, 2, v) == 2 && v[0] == EACCES && v[1] == EACCES,
          "the pair on an O_RDONLY handle: the Write half needs writing, so both EACCES");
    unsigned char pair1[128];
    sqe(pair1, 0x05, 1, 1, 10); sqe(pair1 + 64, 0x01, 2, 1, 10);
    memset(v, 0xFF, sizeof v);
    CHECK(nvmegate_check_batch(g, d1, NVMEGATE_QUEUE_IO, pair1, 2, v) == 2 && v[0] == EINVAL && v[1] == EINVAL,
          "db (no fused_compare_write): FUSE bits are refused as Linux refuses them, EINVAL");
    memset(v, 0xFF, sizeof v);
    CHECK(nvmegate_check_batch(g, n2, NVMEGATE_QUEUE_ADMIN, ring, 2, v) == 2 && v[0] == EINVAL && v[1] == EINVAL,
          "fused entries on the admin queue: EINVAL");
    CHECK(IO(n2, .opcode = 0x05, .flags = 1, .nsid = 2, .cdw10 = 1100, .data = rd, .len = 512) == -EINVAL,
          "a fused half through nvmegate_ioctl (flags must be 0): EINVAL");
    CHECK(holds(r2, 2, 3000, 1, 0x6E), "check_batch executed nothing: LBA 3000 intact");
    nvmegate_close(g, n2); nvmegate_close(g, n2ro); nvmegate_close(g, d1);
}

/* db's Read of LBA 7 of namespace 1 through handle h: what policy A (0) or B (-EACCES) gives. */
static int db_read(int h) {
    return rw(h, 0x02, 1, 7, 1, rd);
}

static void reload_alone(int r1) {
    char err[512];
    int d = nvmegate_open(g, "nvme0n1", O_RDONLY, &db);
    CHECK(fill(r1, 1, 7, 1, 0x5D) == 0 && db_read(d) == 0, "under A, db reads namespace 1");
    errno = 0;
    CHECK(nvmegate_reload(g, policy_b, err, sizeof err) == 0, "nvmegate_reload to B: 0");
    CHECK(db_read(d) == -EACCES, "under B the open handle is re-matched: db owns namespace 2 now, EACCES");
    err[0] = 0;
    errno = 0;
    int rc = nvmegate_reload(g, policy_broken, err, sizeof err);
    CHECK(rc == -1 && errno == EINVAL, "a broken policy file: -1, EINVAL");
    CHECK(strstr(err, "broken.toml:") != NULL && strstr(err, "default.partitions") != NULL,
          "the message names the file, line and key");
    if (!strstr(err, "default.partitions")) fprintf(stderr, "  err: %s\n", err);
    CHECK(db_read(d) == -EACCES, "B stays in force");
    char missing[4200];
    snprintf(missing, sizeof missing, "%s.missing", policy_a);
    errno = 0;
    CHECK(nvmegate_reload(g, missing, err, sizeof err) == -1 && errno == EINVAL && strstr(err, "cannot read") != NULL,
          "a missing file: -1, EINVAL, \"cannot read the file\"");
    char tiny[8];
    errno = 0;
    CHECK(nvmegate_reload(g, policy_broken, tiny, sizeof tiny) == -1 && errno == EINVAL && strlen(tiny) == 7,
          "a short err buffer gets a truncated, NUL-terminated message");
    errno = 0;
    CHECK(nvmegate_reload(g, NULL, err, sizeof err) == -1 && errno == EFAULT, "NULL policy_path: -1, EFAULT");
    errno = 0;
    CHECK(nvmegate_reload(NULL, policy_a, err, sizeof err) == -1 && errno == EFAULT, "NULL gate: -1, EFAULT");
    CHECK(nvmegate_reload(g, policy_a, NULL, 0) == 0 && db_read(d) == 0, "back to A (err NULL is fine): db reads again");
    nvmegate_close(g, d);
}

/* ---- Reload racing 8 submitting threads ----------------------------------------------- */

static atomic_int race_done, race_started;
static atomic_long race_a, race_b, race_same, race_bad;

struct guarded72 { unsigned char before[16]; struct nvme_passthru_cmd c; unsigned char after[16]; };
struct guarded80 { unsigned char before[16]; struct nvme_passthru_cmd64 c; unsigned char after[16]; };

static int guards_intact(const unsigned char *before, const unsigned char *after) {
    return all(before, 16, 0xA5) && all(after, 16, 0xA5);
}

static void bad(const char *what, long i, int rc, int err, unsigned long long res) {
    if (atomic_fetch_add(&race_bad, 1) < 10)
        fprintf(stderr, "FAIL race: %s (iteration %ld): rc %d errno %d result %llx\n", what, i, rc, err, res);
}

static void *racer(void *arg) {
    (void)arg;
    int d1 = nvmegate_open(g, "nvme0n1", O_RDONLY, &db), dc = nvmegate_open(g, "nvme0", O_RDONLY, &db);
    int s2 = nvmegate_open(g, "nvme0n2", O_RDWR, &scratch), nc = nvmegate_open(g, "nvme0", O_RDONLY, &nobody);
    int x1 = nvmegate_open(g, "nvme0n1", O_RDONLY, &tenant_x_caller), x2 = nvmegate_open(g, "nvme0n2", O_RDONLY, &tenant_x_caller);
    atomic_fetch_add(&race_started, 1);
    if (d1 < 0 || dc < 0 || s2 < 0 || nc < 0 || x1 < 0 || x2 < 0) { bad("open", 0, -1, errno, 0); return NULL; }
    static _Thread_local unsigned char data[4096], wbuf[512];
    memset(wbuf, 0x3C, sizeof wbuf);
    long a = 0, b = 0, same = 0;
    for (long i = 0; !atomic_load(&race_done) || i < 50; i++) {
        int rc, e;
        switch (i % 6) {
        case 0: { /* db Read, 72-byte struct: A 0 (data, result 0), B EACCES (nothing written) */
            struct guarded72 s;
            memset(&s, 0xA5, sizeof s);
            memset(&s.c, 0, sizeof s.c);
            s.c.opcode = 0x02; s.c.nsid = 1; s.c.cdw10 = 7; s.c.cdw12 = 0;
            s.c.addr = (unsigned long long)(uintptr_t)data; s.c.data_len = 512; s.c.result = 0xffffffffu;
            memset(data, 0xEE, 512);
            errno = 0;
            rc = nvmegate_ioctl(g, d1, NVME_IOCTL_IO_CMD, &s.c); e = errno;
            if (!guards_intact(s.before, s.after)) bad("72-byte Read: guard bytes", i, rc, e, s.c.result);
            else if (rc == 0 && s.c.result == 0 && all(data, 512, 0x5D)) a++;
            else if (rc == -1 && e == EACCES && s.c.result == 0xffffffffu && all(data, 512, 0xEE)) b++;
            else bad("db Read", i, rc, e, s.c.result);
            break;
        }
        case 1: { /* db Get Features 07h, 80-byte: A 0 with result exactly 003F003Fh (DW1 0), B EACCES */
            struct guarded80 s;
            memset(&s, 0xA5, sizeof s);
            memset(&s.c, 0, sizeof s.c);
            s.c.opcode = 0x0a; s.c.cdw10 = 0x07; s.c.result = ~0ull;
            errno = 0;
            rc = nvmegate_ioctl(g, dc, NVME_IOCTL_ADMIN64_CMD, &s.c); e = errno;
            if (!guards_intact(s.before, s.after)) bad("80-byte Get Features: guard bytes", i, rc, e, s.c.result);
            else if (rc == 0 && s.c.result == 0x003f003full) a++;
            else if (rc == -1 && e == EACCES && s.c.result == ~0ull) b++;
            else bad("db Get Features 07h", i, rc, e, s.c.result);
            break;
        }
        case 2: { /* scratch Write of LBA 1100, 80-byte: A 0 (result 0), B EACCES */
            struct guarded80 s;
            memset(&s, 0xA5, sizeof s);
            memset(&s.c, 0, sizeof s.c);
            s.c.opcode = 0x01; s.c.nsid = 2; s.c.cdw10 = 1100;
            s.c.addr = (unsigned long long)(uintptr_t)wbuf; s.c.data_len = 512; s.c.result = ~0ull;
            errno = 0;
            rc = nvmegate_ioctl(g, s2, NVME_IOCTL_IO64_CMD, &s.c); e = errno;
            if (!guards_intact(s.before, s.after)) bad("80-byte Write: guard bytes", i, rc, e, s.c.result);
            else if (rc == 0 && s.c.result == 0) a++;
            else if (rc == -1 && e == EACCES && s.c.result == ~0ull) b++;
            else bad("scratch Write", i, rc, e, s.c.result);
            break;
        }
        case 3: { /* no tenant: Identify Controller, 72-byte: 0 under both */
            struct guarded72 s;
            memset(&s, 0xA5, sizeof s);
            memset(&s.c, 0, sizeof s.c);
            s.c.opcode = 0x06; s.c.cdw10 = 1;
            s.c.addr = (unsigned long long)(uintptr_t)data; s.c.data_len = 4096; s.c.result = 0xffffffffu;
            errno = 0;
            rc = nvmegate_ioctl(g, nc, NVME_IOCTL_ADMIN_CMD, &s.c); e = errno;
            if (!guards_intact(s.before, s.after)) bad("72-byte Identify: guard bytes", i, rc, e, s.c.result);
            else if (rc == 0 && s.c.result == 0 && memcmp(data + 24, "nvmegate emulated controller", 28) == 0) same++;
            else bad("Identify Controller", i, rc, e, s.c.result);
            break;
        }
        case 4: { /* tenant x: namespace 1 under both (0), namespace 2 under neither (EACCES) */
            struct guarded80 s;
            int ns = (int)(i / 6 % 2) + 1;
            memset(&s, 0xA5, sizeof s);
            memset(&s.c, 0, sizeof s.c);
            s.c.opcode = 0x02; s.c.nsid = (unsigned)ns; s.c.cdw10 = 7;
            s.c.addr = (unsigned long long)(uintptr_t)data; s.c.data_len = 512; s.c.result = ~0ull;
            errno = 0;
            rc = nvmegate_ioctl(g, ns == 1 ? x1 : x2, NVME_IOCTL_IO64_CMD, &s.c); e = errno;
            if (!guards_intact(s.before, s.after)) bad("80-byte Read by x: guard bytes", i, rc, e, s.c.result);
            else if (ns == 1 && rc == 0 && s.c.result == 0) same++;
            else if (ns == 2 && rc == -1 && e == EACCES && s.c.result == ~0ull) same++;
            else bad(ns == 1 ? "x reads namespace 1" : "x reads namespace 2 (a tenant number read with the other policy)",
                     i, rc, e, s.c.result);
            break;
        }
        default: { /* scratch's fused pair and a Read, one batch: A 0 0 0, B EACCES x3, never mixed */
            unsigned char ring[3 * 64], v[5];
            sqe(ring, 0x05, 1, 2, 1100); sqe(ring + 64, 0x01, 2, 2, 1100); sqe(ring + 128, 0x02, 0, 2, 1100);
            memset(v, 0xA5, sizeof v);
            long n = nvmegate_check_batch(g, s2, NVMEGATE_QUEUE_IO, ring, 3, v);
            if (n != 3 || v[3] != 0xA5 || v[4] != 0xA5) bad("check_batch count or overrun", i, (int)n, errno, 0);
            else if (v[0] == 0 && v[1] == 0 && v[2] == 0) a++;
            else if (v[0] == EACCES && v[1] == EACCES && v[2] == EACCES) b++;
            else bad("check_batch verdicts mixed", i, v[0] | v[1] << 8 | v[2] << 16, 0, 0);
            break;
        }
        }
    }
    atomic_fetch_add(&race_a, a);
    atomic_fetch_add(&race_b, b);
    atomic_fetch_add(&race_same, same);
    nvmegate_close(g, d1); nvmegate_close(g, dc); nvmegate_close(g, s2); nvmegate_close(g, nc);
    nvmegate_close(g, x1); nvmegate_close(g, x2);
    return NULL;
}

static void reload_race(int r1) {
    char err[512];
    CHECK(fill(r1, 1, 7, 1, 0x5D) == 0, "root writes 0x5D to LBA 7 of namespace 1");
    int d = nvmegate_open(g, "nvme0n1", O_RDONLY, &db);
    pthread_t t[8];
    for (int i = 0; i < 8; i++) pthread_create(&t[i], NULL, racer, NULL);
    while (atomic_load(&race_started) < 8) { /* every racer has its handles */ }
    int reload_failures = 0, broken_ok = 0, kept = 0, switched = 0;
    for (int i = 0; i < 200; i++) {
        const char *path = i % 2 == 0 ? policy_b : policy_a;
        if (nvmegate_reload(g, path, err, sizeof err) != 0) reload_failures++;
        if (i == 100) {   /* B is in force: a broken file now must leave it so */
            errno = 0;
            err[0] = 0;
            broken_ok = nvmegate_reload(g, policy_broken, err, sizeof err) == -1 && errno == EINVAL
                        && strstr(err, "default.partitions") != NULL;
            kept = db_read(d) == -EACCES;
        }
        if (i == 101) switched = db_read(d) == 0;
    }
    atomic_store(&race_done, 1);
    for (int i = 0; i < 8; i++) pthread_join(t[i], NULL);
    CHECK(reload_failures == 0, "200 alternating reloads of A and B while 8 threads submit: every one returns 0");
    CHECK(broken_ok, "a broken file in the middle of the race: -1, EINVAL, the message naming the key");
    CHECK(kept, "after it, the previous policy (B) stays in force");
    CHECK(switched, "the next reload (A) takes effect");
    char what[200];
    snprintf(what, sizeof what, "every return was one whole policy's: %ld as A, %ld as B, %ld the same under both, %ld otherwise",
             atomic_load(&race_a), atomic_load(&race_b), atomic_load(&race_same), atomic_load(&race_bad));
    printf("reload race: %s\n", what);
    CHECK(atomic_load(&race_bad) == 0, what);
    CHECK(atomic_load(&race_a) > 0 && atomic_load(&race_b) > 0, "both policies were seen by the submitting threads");
    CHECK(db_read(d) == 0, "the last reload (A) is in force");
    nvmegate_close(g, d);
}

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: abi_tenants_test SCRATCH_DIR\n"); return 2; }
    snprintf(policy_a, sizeof policy_a, "%s/a.toml", argv[1]);
    snprintf(policy_b, sizeof policy_b, "%s/b.toml", argv[1]);
    snprintf(policy_broken, sizeof policy_broken, "%s/broken.toml", argv[1]);
    if (write_policy(policy_a, 0) || write_policy(policy_b, 1)
        || write_file(policy_broken, "version = 1\n[default]\npartitions = 7\n")) {
        fprintf(stderr, "cannot write the policy files under %s\n", argv[1]);
        return 2;
    }
    char err[512];
    g = nvmegate_create(policy_a, "emulated", err, sizeof err);
    CHECK(g != NULL, "nvmegate_create with policy A on the emulated target");
    if (!g) { fprintf(stderr, "%s\n", err); printf("%d passed, %d failed\n", passed, failed); return 1; }
    int root_ctrl = nvmegate_open(g, "nvme0", O_RDWR, &root);
    CHECK(root_ctrl >= 0, "root opens nvme0");
    if (!make_namespace_2(root_ctrl)) { printf("%d passed, %d failed\n", passed, failed); return 1; }
    int r1 = nvmegate_open(g, "nvme0n1", O_RDWR, &root), r2 = nvmegate_open(g, "nvme0n2", O_RDWR, &root);
    CHECK(r1 >= 0 && r2 >= 0, "root opens nvme0n1 and nvme0n2");

    matching(r1, r2);
    ownership(root_ctrl, r1, r2);
    lba_ranges(r2);
    racing_range_lists(r2);
    read_only(r1, r2);
    partitions(r2);
    monitoring();
    vendor_commands();
    fused(r2);
    reload_alone(r1);
    reload_race(r1);

    nvmegate_destroy(g);
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
