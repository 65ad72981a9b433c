/*
 * abi_emulated_test.c: every command family of the emulated controller through the C ABI,
 * as a C program sees it: nvmegate_open and nvmegate_ioctl with Linux's passthru structs,
 * first all 72-byte (struct nvme_passthru_cmd, NVME_IOCTL_ADMIN_CMD / _IO_CMD), then all
 * 80-byte (struct nvme_passthru_cmd64, the 64-bit ioctls). Statuses are compared exactly,
 * as the ioctl returns them: the status field with DNR (e.g. 0x4080). Then the policy: an
 * unprivileged caller is refused, a read-only handle cannot write, results are written back.
 *
 * Usage: abi_emulated_test SCRATCH_DIR (file-backed gates live under it).
 * Prints "N passed, M failed"; exits non-zero on a failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/nvme_ioctl.h>

#include "nvmegate.h"

static int passed, failed;

#define CHECK(cond, what)                                                                        \
    do {                                                                                         \
        if (cond) { passed++; }                                                                  \
        else { failed++; fprintf(stderr, "FAIL %s:%d (%s): %s\n", __FILE__, __LINE__, width, what); } \
    } while (0)

static const nvmegate_caller user = {1000, 1000, 0};
static const nvmegate_caller admin = {0, 0, 1ull << 21};

/* The pass in progress: 80-byte structs or 72-byte ones. */
static int wide;
static const char *width = "72-byte";
static nvmegate *g;
/* The result field of the last command, and 72-byte commands that wrote past their struct. */
static unsigned long long result;
static int overruns;

/* The fields of one passthru command. */
struct req {
    unsigned char opcode;
    unsigned nsid, cdw10, cdw11, cdw12, cdw13, cdw14, cdw15;
    void *data;
    unsigned len;
};

/* Sends `r` on handle `h` (admin or I/O queue) in the pass's struct size: the ioctl's
 * return, or -errno when it returned -1. `result` gets the struct's result field, which is
 * preset to all ones so a write-back is visible. */
static int submit(int h, int io, struct req r) {
    int rc;
    errno = 0;
    if (wide) {
        struct nvme_passthru_cmd64 c;
        memset(&c, 0, sizeof c);
        c.opcode = r.opcode; c.nsid = r.nsid;
        c.cdw10 = r.cdw10; c.cdw11 = r.cdw11; c.cdw12 = r.cdw12; c.cdw13 = r.cdw13; c.cdw14 = r.cdw14; c.cdw15 = r.cdw15;
        c.addr = (unsigned long long)(unsigned long)r.data; c.data_len = r.len;
        c.result = ~0ull;
        rc = nvmegate_ioctl(g, h, io ? NVME_IOCTL_IO64_CMD : NVME_IOCTL_ADMIN64_CMD, &c);
        result = c.result;
    } else {
        struct { struct nvme_passthru_cmd c; unsigned char after[8]; } s;
        memset(&s, 0xA5, sizeof s);
        memset(&s.c, 0, sizeof s.c);
        s.c.opcode = r.opcode; s.c.nsid = r.nsid;
        s.c.cdw10 = r.cdw10; s.c.cdw11 = r.cdw11; s.c.cdw12 = r.cdw12; s.c.cdw13 = r.cdw13; s.c.cdw14 = r.cdw14; s.c.cdw15 = r.cdw15;
        s.c.addr = (unsigned long long)(unsigned long)r.data; s.c.data_len = r.len;
        s.c.result = 0xffffffffu;
        rc = nvmegate_ioctl(g, h, io ? NVME_IOCTL_IO_CMD : NVME_IOCTL_ADMIN_CMD, &s.c);
        result = s.c.result;
        for (size_t i = 0; i < sizeof s.after; i++) overruns += s.after[i] != 0xA5;
    }
    return rc == -1 ? -errno : rc;
}

#define ADMIN(h, ...) submit(h, 0, (struct req){__VA_ARGS__})
#define IO(h, ...) submit(h, 1, (struct req){__VA_ARGS__})

static unsigned le16(const unsigned char *p, int o) { return p[o] | (unsigned)p[o + 1] << 8; }
static unsigned le32(const unsigned char *p, int o) { return le16(p, o) | le16(p, o + 2) << 16; }
static unsigned long long le64(const unsigned char *p, int o) { return le32(p, o) | (unsigned long long)le32(p, o + 4) << 32; }
static void put16(unsigned char *p, int o, unsigned v) { p[o] = (unsigned char)v; p[o + 1] = (unsigned char)(v >> 8); }
static void put64(unsigned char *p, int o, unsigned long long v) { for (int i = 0; i < 8; i++) p[o + i] = (unsigned char)(v >> (8 * i)); }
static int all(const unsigned char *p, size_t n, unsigned char v) { for (size_t i = 0; i < n; i++) if (p[i] != v) return 0; return 1; }

static unsigned char page[4096], full[4096], buf[8192], other[8192];

/* Get Log Page `lid` (NSID FFFFFFFFh), `len` bytes from byte `offset`, into `page`. */
static int get_log(int h, unsigned lid, unsigned len, unsigned long long offset) {
    memset(page, 0xEE, sizeof page);
    return ADMIN(h, .opcode = 0x02, .nsid = 0xffffffff, .cdw10 = lid | (len / 4 - 1) << 16,
                 .cdw12 = (unsigned)offset, .cdw13 = (unsigned)(offset >> 32), .data = page, .len = len);
}

static int identify(int h, unsigned cns, unsigned nsid, unsigned csi) {
    memset(page, 0xEE, sizeof page);
    return ADMIN(h, .opcode = 0x06, .nsid = nsid, .cdw10 = cns, .cdw11 = csi << 24, .data = page, .len = 4096);
}

static int rw(int h, unsigned char opcode, unsigned nsid, unsigned long long lba, unsigned blocks, unsigned size, void *data) {
    return IO(h, .opcode = opcode, .nsid = nsid, .cdw10 = (unsigned)lba, .cdw11 = (unsigned)(lba >> 32),
              .cdw12 = blocks - 1, .data = data, .len = data ? blocks * size : 0);
}

static void identify_all(int ctrl) {
    CHECK(identify(ctrl, 0x00, 1, 0) == 0 && le64(page, 0) == 2097152 && page[26] == 0 && page[130] == 9,
          "Identify Namespace (00h): NSZE 1 GiB of 512-byte blocks, FLBAS 0, LBADS 9");
    unsigned char nguid[16], eui64[8];
    memcpy(nguid, page + 104, 16);
    memcpy(eui64, page + 120, 8);
    CHECK(identify(ctrl, 0x01, 0, 0) == 0 && memcmp(page + 24, "nvmegate emulated controller", 28) == 0
          && le16(page, 78) == 1 && le16(page, 520) == 0x1ff && le32(page, 516) == 32,
          "Identify Controller (01h): MN, CNTLID 1, ONCS 1FFh, NN 32");
    CHECK(identify(ctrl, 0x02, 0, 0) == 0 && le32(page, 0) == 1 && le32(page, 4) == 0, "Active Namespace ID list (02h): NSID 1");
    CHECK(identify(ctrl, 0x03, 1, 0) == 0 && page[0] == 1 && page[1] == 8 && memcmp(page + 4, eui64, 8) == 0
          && page[12] == 2 && page[13] == 16 && memcmp(page + 16, nguid, 16) == 0 && page[32] == 3 && page[33] == 16
          && page[52] == 4 && page[53] == 1 && page[56] == 0,
          "Namespace Identification Descriptors (03h): EUI-64 and NGUID as in Identify Namespace, UUID, CSI NVM");
    CHECK(identify(ctrl, 0x05, 1, 0) == 0 && all(page, 4096, 0), "NVM Identify Namespace (05h): no PI, no extended formats");
    CHECK(identify(ctrl, 0x05, 1, 2) == 0x4002, "CNS 05h for the Zoned command set: Invalid Field, 0x4002");
    CHECK(identify(ctrl, 0x06, 0, 0) == 0 && page[0] == 7, "NVM Identify Controller (06h): VSL 7");
    CHECK(identify(ctrl, 0x07, 0, 0) == 0 && le32(page, 0) == 1 && le32(page, 4) == 0, "NVM Active Namespace ID list (07h)");
    CHECK(identify(ctrl, 0x08, 1, 0) == 0 && page[1] == 1 && page[14] == 1, "Independent Identify Namespace (08h): NMIC, NSTAT ready");
    CHECK(identify(ctrl, 0x12, 1, 0) == 0 && le16(page, 0) == 1 && le16(page, 2) == 1, "controllers attached to NSID 1 (12h)");
    CHECK(identify(ctrl, 0x13, 0, 0) == 0 && le16(page, 0) == 1 && le16(page, 2) == 1, "controller list (13h): CNTLID 1");
    CHECK(identify(ctrl, 0x42, 0, 0) == 0x4002, "an unknown CNS: Invalid Field in Command with DNR, 0x4002");
    CHECK(identify(ctrl, 0x00, 0, 0) == 0x400b, "Identify Namespace for NSID 0: Invalid Namespace or Format, 0x400B");
}

static void logs(int ctrl, int ns) {
    CHECK(get_log(ctrl, 0x00, 1024, 0) == 0 && le32(page, 0) == 1 && le32(page, 4) == 1 && le32(page, 8) == 1
          && le32(page, 12) == 1 && le32(page, 16) == 1 && le32(page, 20) == 1 && le32(page, 24) == 1
          && le32(page, 4 * 0x81) == 1 && le32(page, 28) == 0, "Supported Log Pages (00h): 00h-06h and 81h");

    CHECK(get_log(ctrl, 0x02, 512, 0) == 0, "SMART / Health (02h)");
    unsigned long long units = le64(page, 48), writes = le64(page, 80), reads = le64(page, 64);
    memset(buf, 0x3C, 8192);
    CHECK(rw(ns, 0x01, 1, 0, 16, 512, buf) == 0 && rw(ns, 0x02, 1, 0, 16, 512, buf) == 0, "Write and Read 16 blocks");
    CHECK(get_log(ctrl, 0x02, 512, 0) == 0 && le64(page, 80) == writes + 1 && le64(page, 64) == reads + 1
          && le64(page, 48) >= units + 1, "SMART counters move: Host Write and Read Commands, Data Units Written");
    memcpy(full, page, 512);
    CHECK(get_log(ctrl, 0x02, 16, 64) == 0 && memcmp(page, full + 64, 16) == 0, "SMART with LPO 64: the slice of the whole page");

    CHECK(rw(ns, 0x02, 1, 1ull << 40, 1, 512, buf) == 0x4080, "Read past the end: LBA Out of Range, 0x4080");
    CHECK(get_log(ctrl, 0x01, 128, 0) == 0 && le64(page, 0) >= 1 && le16(page, 8) == 1 && le16(page, 12) >> 1 == 0x4080
          && le64(page, 16) == 1ull << 40 && le32(page, 24) == 1, "Error Information (01h): the failed Read, its status, LBA, NSID");
    CHECK(get_log(ctrl, 0x03, 512, 0) == 0 && page[0] == 1 && memcmp(page + 8, "1.0     ", 8) == 0, "Firmware Slot (03h): slot 1 active, 1.0");
    CHECK(get_log(ctrl, 0x04, 4096, 0) == 0 && le32(page, 0) == 0, "Changed Namespace List (04h): empty");

    CHECK(get_log(ctrl, 0x05, 4096, 0) == 0 && le32(page, 4 * 0x80) == 0x10007 && le32(page, 4 * 0x06) == 1
          && le32(page, 1024 + 4 * 0x01) == 3 && le32(page, 1024 + 4 * 0x02) == 1 && le32(page, 1024 + 4 * 0x7f) == 0,
          "Commands Supported and Effects (05h): Format NVM CSUPP LBCC NCC CSE=1, Write CSUPP LBCC, Read CSUPP");
    memcpy(full, page, 4096);
    CHECK(get_log(ctrl, 0x05, 64, 1024) == 0 && memcmp(page, full + 1024, 64) == 0, "effects log with LPO 1024: the I/O half's slice");
    CHECK(get_log(ctrl, 0x06, 564, 0) == 0 && page[0] == 0 && page[4] == 0x0f, "Device Self-test (06h): none run yet");
    CHECK(get_log(ctrl, 0x81, 512, 0) == 0 && le16(page, 0) == 0xffff && le16(page, 2) == 0, "Sanitize Status (81h): never sanitized");
    CHECK(get_log(ctrl, 0x7e, 512, 0) == 0x4109, "an unknown log page: Invalid Log Page, 0x4109");
    CHECK(get_log(ctrl, 0x05, 8, 2) == 0x4002, "an LPO that is not dword aligned: Invalid Field, 0x4002");
}

static int get_feature(int ctrl, unsigned fid, unsigned sel, unsigned nsid) {
    return ADMIN(ctrl, .opcode = 0x0a, .nsid = nsid, .cdw10 = fid | sel << 8);
}

static void features(int ctrl) {
    CHECK(get_feature(ctrl, 0x01, 0, 0) == 0 && result == 7, "Arbitration (01h): no burst limit");
    CHECK(ADMIN(ctrl, .opcode = 0x09, .cdw10 = 0x04 | 1u << 31, .cdw11 = 0x150) == 0, "Set Temperature Threshold 150h, saved");
    CHECK(get_feature(ctrl, 0x04, 0, 0) == 0 && result == 0x150, "Temperature Threshold, SEL current: 150h");
    CHECK(get_feature(ctrl, 0x04, 1, 0) == 0 && result == 0x157, "Temperature Threshold, SEL default: 157h");
    CHECK(get_feature(ctrl, 0x04, 2, 0) == 0 && result == 0x150, "Temperature Threshold, SEL saved: 150h");
    CHECK(get_feature(ctrl, 0x04, 3, 0) == 0 && result == 5, "Temperature Threshold, SEL supported: saveable, changeable");
    CHECK(get_feature(ctrl, 0x06, 0, 0) == 0 && result == 1, "Volatile Write Cache (06h): enabled");
    CHECK(get_feature(ctrl, 0x05, 3, 1) == 0 && result == 7, "Error Recovery (05h), SEL supported: saveable, namespace specific, changeable");
    CHECK(ADMIN(ctrl, .opcode = 0x09, .cdw10 = 0x07 | 1u << 31, .cdw11 = 0x000f000f) == 0x410d,
          "Set Number of Queues with SV: Feature Identifier Not Saveable, 0x410D");
    CHECK(ADMIN(ctrl, .opcode = 0x09, .cdw10 = 0x07, .cdw11 = 0x000f000f) == 0x400c,
          "Set Number of Queues once the I/O queues exist: Command Sequence Error, 0x400C (as QEMU's controller)");
    CHECK(get_feature(ctrl, 0x07, 0, 0) == 0 && result == 0x003f003f, "Number of Queues stays 64 and 64 allocated");
    CHECK(ADMIN(ctrl, .opcode = 0x09, .nsid = 1, .cdw10 = 0x06, .cdw11 = 1) == 0x410f,
          "Set Volatile Write Cache for NSID 1: Feature Not Namespace Specific, 0x410F");
    put64(buf, 0, 1000000);
    CHECK(ADMIN(ctrl, .opcode = 0x09, .cdw10 = 0x0e, .data = buf, .len = 8) == 0, "Set Timestamp");
    CHECK(ADMIN(ctrl, .opcode = 0x0a, .cdw10 = 0x0e, .data = page, .len = 8) == 0
          && (le64(page, 0) & 0xffffffffffffull) - 1000000 < 10000 && (page[6] >> 1 & 7) == 1,
          "Get Timestamp: the value set, running, origin host");
    CHECK(ADMIN(ctrl, .opcode = 0x0a, .cdw10 = 0x55) == 0x4002, "an unknown feature: Invalid Field, 0x4002");
}

static void namespaces(int ctrl) {
    unsigned char d[4096] = {0};
    put64(d, 0, 2048); put64(d, 8, 2048);
    CHECK(ADMIN(ctrl, .opcode = 0x0d, .cdw10 = 0, .data = d, .len = 4096) == 0 && result == 2,
          "Namespace Management create: NSID 2 in the result");
    CHECK(identify(ctrl, 0x10, 0, 0) == 0 && le32(page, 4) == 2 && identify(ctrl, 0x02, 0, 0) == 0 && le32(page, 4) == 0,
          "NSID 2 is allocated (10h) but not active (02h)");
    memset(d, 0, sizeof d);
    put16(d, 0, 1); put16(d, 2, 1);
    CHECK(ADMIN(ctrl, .opcode = 0x15, .nsid = 2, .cdw10 = 0, .data = d, .len = 4096) == 0, "Namespace Attachment: attach NSID 2");
    CHECK(ADMIN(ctrl, .opcode = 0x15, .nsid = 2, .cdw10 = 0, .data = d, .len = 4096) == 0x4118, "attach again: Namespace Already Attached, 0x4118");
    CHECK(ADMIN(ctrl, .opcode = 0x15, .nsid = 0, .cdw10 = 0, .data = d, .len = 4096) == 0x400b, "attach NSID 0: Invalid Namespace or Format, 0x400B");
    CHECK(ADMIN(ctrl, .opcode = 0x15, .nsid = 9, .cdw10 = 0, .data = d, .len = 4096) == 0x4002, "attach an unallocated NSID: Invalid Field, 0x4002");
    CHECK(get_log(ctrl, 0x04, 4096, 0) == 0 && le32(page, 0) == 2 && le32(page, 4) == 0, "Changed Namespace List: NSID 2");
    CHECK(get_log(ctrl, 0x04, 4096, 0) == 0 && le32(page, 0) == 0, "reading the list cleared it");

    int ns2 = nvmegate_open(g, "nvme0n2", O_RDWR, &admin);
    CHECK(ns2 >= 0, "nvme0n2 opens once attached");
    memset(buf, 0x6B, 512);
    CHECK(rw(ns2, 0x01, 2, 2047, 1, 512, buf) == 0 && rw(ns2, 0x02, 2, 2047, 1, 512, other) == 0 && all(other, 512, 0x6B),
          "Write and Read NSID 2");
    nvmegate_close(g, ns2);

    CHECK(ADMIN(ctrl, .opcode = 0x80, .nsid = 2, .cdw10 = 1 | 1 << 9) == 0, "Format NVM NSID 2 to LBA format 1 (4 KiB), user data erase");
    CHECK(identify(ctrl, 0x00, 2, 0) == 0 && page[26] == 1 && le64(page, 0) == 256, "Identify Namespace: FLBAS 1, NSZE 256");
    ns2 = nvmegate_open(g, "nvme0n2", O_RDWR, &admin);
    CHECK(rw(ns2, 0x02, 2, 255, 1, 4096, other) == 0 && all(other, 4096, 0), "a 4 KiB block reads back erased");
    CHECK(rw(ns2, 0x02, 2, 256, 1, 4096, other) == 0x4080, "LBA 256 of 4 KiB blocks is out of range, 0x4080");
    nvmegate_close(g, ns2);
    CHECK(ADMIN(ctrl, .opcode = 0x80, .nsid = 2, .cdw10 = 0) == 0 && identify(ctrl, 0x00, 2, 0) == 0 && page[26] == 0
          && le64(page, 0) == 2048, "Format NVM back to LBA format 0 (512 B): NSZE 2048");
    CHECK(ADMIN(ctrl, .opcode = 0x80, .nsid = 2, .cdw10 = 2) == 0x410a, "Format NVM to LBA format 2: Invalid Format, 0x410A");

    ns2 = nvmegate_open(g, "nvme0n2", O_RDWR, &admin);
    CHECK(ADMIN(ctrl, .opcode = 0x15, .nsid = 2, .cdw10 = 1, .data = d, .len = 4096) == 0, "Namespace Attachment: detach NSID 2");
    CHECK(ADMIN(ctrl, .opcode = 0x15, .nsid = 2, .cdw10 = 1, .data = d, .len = 4096) == 0x411a, "detach again: Namespace Not Attached, 0x411A");
    CHECK(rw(ns2, 0x02, 2, 0, 1, 512, other) == -ENODEV,
          "I/O through a handle on the detached namespace: ENODEV, as on Linux's node of a removed namespace");
    nvmegate_close(g, ns2);
    CHECK(ADMIN(ctrl, .opcode = 0x0d, .nsid = 2, .cdw10 = 1) == 0, "Namespace Management delete NSID 2");
    CHECK(ADMIN(ctrl, .opcode = 0x0d, .nsid = 2, .cdw10 = 1) == 0x400b, "delete it again: Invalid Namespace or Format, 0x400B");
    CHECK(identify(ctrl, 0x10, 0, 0) == 0 && le32(page, 0) == 1 && le32(page, 4) == 0, "the allocated list is NSID 1 again");
}

static void sanitize_firmware_selftest(int ctrl, int ns) {
    memset(buf, 0x99, 512);
    CHECK(rw(ns, 0x01, 1, 10, 1, 512, buf) == 0 && ADMIN(ctrl, .opcode = 0x84, .cdw10 = 2) == 0, "Sanitize, Block Erase");
    CHECK(rw(ns, 0x02, 1, 10, 1, 512, other) == 0 && all(other, 512, 0), "sanitized data reads as zeroes");
    CHECK(get_log(ctrl, 0x81, 512, 0) == 0 && le16(page, 0) == 0xffff && le16(page, 2) == 0x101 && le32(page, 4) == 2,
          "Sanitize Status: completed, global data erased, SCDW10 2");
    CHECK(ADMIN(ctrl, .opcode = 0x84, .cdw10 = 3 | 1 << 4, .cdw11 = 0xddccbbaa) == 0 && rw(ns, 0x02, 1, 10, 1, 512, other) == 0
          && le32(other, 0) == 0xddccbbaa && le32(other, 508) == 0xddccbbaa, "Sanitize, Overwrite: the pattern everywhere");
    CHECK(ADMIN(ctrl, .opcode = 0x84, .cdw10 = 5) == 0x4002, "Sanitize action 5: Invalid Field, 0x4002");

    CHECK(ADMIN(ctrl, .opcode = 0x10, .cdw10 = 2 | 1 << 3) == 0x4107, "Firmware Commit with nothing downloaded: Invalid Firmware Image, 0x4107");
    memset(buf, 0, 4096);
    memcpy(buf, "2.0", 3);
    CHECK(ADMIN(ctrl, .opcode = 0x11, .cdw10 = 1023, .cdw11 = 0, .data = buf, .len = 4096) == 0, "Firmware Image Download, 4 KiB");
    CHECK(ADMIN(ctrl, .opcode = 0x10, .cdw10 = 2 | 3 << 3) == 0, "Firmware Commit: slot 2, activate now");
    CHECK(identify(ctrl, 0x01, 0, 0) == 0 && memcmp(page + 64, "2.0     ", 8) == 0, "Identify Controller FR is 2.0");
    CHECK(get_log(ctrl, 0x03, 512, 0) == 0 && page[0] == 2 && memcmp(page + 16, "2.0     ", 8) == 0, "Firmware Slot log: slot 2 active, 2.0");
    CHECK(ADMIN(ctrl, .opcode = 0x10, .cdw10 = 5 | 2 << 3) == 0x4106, "Firmware Commit to slot 5: Invalid Firmware Slot, 0x4106");

    CHECK(ADMIN(ctrl, .opcode = 0x14, .nsid = 0xffffffff, .cdw10 = 1) == 0, "Device Self-test, short");
    CHECK(get_log(ctrl, 0x06, 564, 0) == 0 && page[0] == 0 && page[4] == 0x10 && page[32] == 0x0f, "Self-test log: short, completed");
    CHECK(ADMIN(ctrl, .opcode = 0x14, .cdw10 = 2) == 0 && get_log(ctrl, 0x06, 564, 0) == 0 && page[0] == 2, "an extended self-test runs");
    CHECK(ADMIN(ctrl, .opcode = 0x14, .cdw10 = 1) == 0x011d, "another while it runs: Device Self-test In Progress, 0x011D");
    CHECK(ADMIN(ctrl, .opcode = 0x14, .cdw10 = 0xf) == 0 && get_log(ctrl, 0x06, 564, 0) == 0 && page[0] == 0 && page[4] == 0x21,
          "abort it: the log says extended, aborted");

    CHECK(ADMIN(ctrl, .opcode = 0x08, .cdw10 = 0x00010000) == 0 && result == 1, "Abort: completes, DW0 bit 0 (not aborted)");
    CHECK(ADMIN(ctrl, .opcode = 0x18) == 0, "Keep Alive");
}

static void io(int ns) {
    for (int i = 0; i < 2048; i++) buf[i] = (unsigned char)(i * 13 + 5);
    CHECK(IO(ns, .opcode = 0x00, .nsid = 1) == 0, "Flush");
    CHECK(rw(ns, 0x01, 1, 100, 4, 512, buf) == 0 && rw(ns, 0x02, 1, 100, 4, 512, other) == 0 && memcmp(buf, other, 2048) == 0,
          "Write then Read 4 blocks: the same bytes");
    CHECK(IO(ns, .opcode = 0x01, .nsid = 1, .cdw10 = 100, .cdw12 = 3 | 1u << 30, .data = buf, .len = 2048) == 0, "Write with FUA");
    CHECK(rw(ns, 0x04, 1, 101, 1, 512, NULL) == 0, "Write Uncorrectable LBA 101");
    CHECK(rw(ns, 0x02, 1, 100, 4, 512, other) == 0x4281 && rw(ns, 0x02, 1, 101, 1, 512, other) == 0x4281,
          "Read over it: Unrecovered Read Error, 0x4281");
    CHECK(rw(ns, 0x0c, 1, 101, 1, 512, NULL) == 0x4281, "Verify over it: 0x4281");
    CHECK(rw(ns, 0x01, 1, 101, 1, 512, buf + 512) == 0 && rw(ns, 0x02, 1, 100, 4, 512, other) == 0 && memcmp(buf, other, 2048) == 0,
          "rewritten, it reads again");
    CHECK(rw(ns, 0x05, 1, 100, 4, 512, buf) == 0, "Compare, matching");
    memcpy(other, buf, 2048);
    other[2047] ^= 1;
    CHECK(rw(ns, 0x05, 1, 100, 4, 512, other) == 0x4285, "Compare, one bit off: Compare Failure, 0x4285");
    CHECK(rw(ns, 0x08, 1, 102, 1, 512, NULL) == 0 && rw(ns, 0x02, 1, 102, 1, 512, other) == 0 && all(other, 512, 0), "Write Zeroes");
    unsigned char range[16] = {0};
    range[4] = 1; put64(range, 8, 103);
    CHECK(IO(ns, .opcode = 0x09, .nsid = 1, .cdw10 = 0, .cdw11 = 4, .data = range, .len = 16) == 0
          && rw(ns, 0x02, 1, 103, 1, 512, other) == 0 && all(other, 512, 0), "Dataset Management deallocate: reads zeroes");
    CHECK(rw(ns, 0x0c, 1, 100, 4, 512, NULL) == 0, "Verify");
    CHECK(IO(ns, .opcode = 0x0c, .nsid = 1, .cdw12 = 1024) == 0x4002, "Verify over VSL (512 KiB): Invalid Field, 0x4002");
    unsigned char desc[32] = {0};
    put64(desc, 8, 100);
    CHECK(IO(ns, .opcode = 0x19, .nsid = 1, .cdw10 = 200, .cdw12 = 0, .data = desc, .len = 32) == 0
          && rw(ns, 0x02, 1, 200, 1, 512, other) == 0 && memcmp(other, buf, 512) == 0, "Copy LBA 100 to LBA 200");
}

/* Reservation commands on NSID 1: Register (cdw10 action | CPTPL << 30), Acquire, Release. */
static int reserve(int ns, unsigned char opcode, unsigned cdw10, unsigned long long key, unsigned long long other_key) {
    unsigned char d[16] = {0};
    put64(d, 0, key); put64(d, 8, other_key);
    return IO(ns, .opcode = opcode, .nsid = 1, .cdw10 = cdw10, .data = d, .len = opcode == 0x15 ? 8 : 16);
}

static int report(int ns) {
    memset(page, 0, 256);
    return IO(ns, .opcode = 0x0e, .nsid = 1, .cdw10 = 63, .data = page, .len = 256);
}

static int set_host_id(int ctrl, unsigned char id) {
    unsigned char d[8];
    memset(d, id, 8);
    return ADMIN(ctrl, .opcode = 0x09, .cdw10 = 0x81, .data = d, .len = 8);
}

static void reservations(int ctrl, int ns) {
    CHECK(set_host_id(ctrl, 0xA0) == 0, "Set Features Host Identifier");
    CHECK(reserve(ns, 0x0d, 0, 0, 0xAAAA) == 0, "Reservation Register");
    CHECK(reserve(ns, 0x0d, 0, 0, 0xBBBB) == 0x4083, "Register again with another key: Reservation Conflict, 0x4083");
    CHECK(reserve(ns, 0x11, 1 << 8, 0xAAAA, 0) == 0, "Reservation Acquire, Write Exclusive");
    CHECK(report(ns) == 0 && le32(page, 0) == 1 && page[4] == 1 && le16(page, 5) == 1 && le16(page, 24) == 1 && page[26] == 1
          && all(page + 32, 8, 0xA0) && le64(page, 40) == 0xAAAA, "Reservation Report: type, registrant, host identifier, key");
    CHECK(reserve(ns, 0x15, 1 << 8, 0x1234, 0) == 0x4083, "Release with a wrong key: 0x4083");
    CHECK(set_host_id(ctrl, 0xC0) == 0x400c, "changing the Host Identifier while registered: Command Sequence Error, 0x400C");
    CHECK(reserve(ns, 0x15, 1 << 8, 0xAAAA, 0) == 0 && reserve(ns, 0x0d, 1, 0xAAAA, 0) == 0 && report(ns) == 0
          && page[4] == 0 && le16(page, 5) == 0, "Release, Unregister: nothing left");
}

/* Two hosts, one after the other on one file-backed subsystem: host A holds a Write
 * Exclusive reservation that persists through power loss; host B, with its own Host
 * Identifier, is refused writes until it preempts A. */
static void two_hosts(const char *scratch) {
    char spec[4200], err[256];
    snprintf(spec, sizeof spec, "emulated:%s/hosts-%s", scratch, wide ? "80" : "72");
    nvmegate *keep = g;
    g = nvmegate_create(NULL, spec, err, sizeof err);
    CHECK(g != NULL, "emulated:DIR gate for host A");
    if (!g) { g = keep; return; }
    int ctrl = nvmegate_open(g, "nvme0", O_RDWR, &admin), ns = nvmegate_open(g, "nvme0n1", O_RDWR, &admin);
    CHECK(set_host_id(ctrl, 0xA0) == 0 && reserve(ns, 0x0d, 3u << 30, 0, 0xA) == 0 && reserve(ns, 0x11, 1 << 8, 0xA, 0) == 0,
          "host A registers with Persist Through Power Loss and acquires Write Exclusive");
    nvmegate_destroy(g);

    g = nvmegate_create(NULL, spec, err, sizeof err);
    CHECK(g != NULL, "emulated:DIR gate for host B");
    if (!g) { g = keep; return; }
    ctrl = nvmegate_open(g, "nvme0", O_RDWR, &admin);
    ns = nvmegate_open(g, "nvme0n1", O_RDWR, &admin);
    memset(buf, 0x42, 512);
    CHECK(set_host_id(ctrl, 0xB0) == 0 && report(ns) == 0 && page[4] == 1 && page[9] == 1 && all(page + 32, 8, 0xA0),
          "host B sees A's reservation: Write Exclusive, PTPLS, A's host identifier");
    CHECK(rw(ns, 0x01, 1, 0, 1, 512, buf) == 0x4083, "host B's Write: Reservation Conflict, 0x4083");
    CHECK(rw(ns, 0x02, 1, 0, 1, 512, other) == 0, "host B's Read passes (Write Exclusive)");
    CHECK(reserve(ns, 0x0d, 0, 0, 0xB) == 0 && rw(ns, 0x01, 1, 0, 1, 512, buf) == 0x4083, "registered, B still may not write");
    CHECK(reserve(ns, 0x11, 1 | 1 << 8, 0xB, 0xA) == 0 && report(ns) == 0 && le16(page, 5) == 1 && all(page + 32, 8, 0xB0)
          && page[26] == 1, "B preempts A: B alone is registered and holds it");
    CHECK(rw(ns, 0x01, 1, 0, 1, 512, buf) == 0, "now B writes");
    CHECK(reserve(ns, 0x15, 1, 0xB, 0) == 0, "Reservation Release, Clear");
    nvmegate_destroy(g);
    g = keep;
}

static void policy(int ns) {
    int ctrl_user = nvmegate_open(g, "nvme0", O_RDONLY, &user);
    int ns_ro = nvmegate_open(g, "nvme0n1", O_RDONLY, &user);
    memset(buf, 0x77, 512);
    CHECK(rw(ns, 0x01, 1, 300, 1, 512, buf) == 0, "the administrator writes LBA 300");
    CHECK(ADMIN(ctrl_user, .opcode = 0x80, .nsid = 1, .cdw10 = 0) == -EACCES, "Format NVM, unprivileged: -1, EACCES");
    CHECK(get_log(ctrl_user, 0x02, 512, 0) == -EACCES, "Get Log Page, unprivileged: -1, EACCES");
    CHECK(identify(ctrl_user, 0x01, 0, 0) == 0, "Identify Controller, unprivileged: allowed");
    memset(other, 0x11, 512);
    CHECK(rw(ns_ro, 0x01, 1, 300, 1, 512, other) == -EACCES, "Write on a read-only handle: EACCES");
    CHECK(rw(ns_ro, 0x02, 1, 300, 1, 512, other) == 0 && all(other, 512, 0x77), "the data did not change");
    CHECK(ADMIN(ns, .opcode = 0x0a, .cdw10 = 0x07) == 0 && result == 0x003f003f,
          wide ? "80-byte struct: the 64-bit result is DW0 and DW1" : "72-byte struct: the result is DW0");
    CHECK(overruns == 0, "no 72-byte command wrote past its struct");
    nvmegate_close(g, ctrl_user);
    nvmegate_close(g, ns_ro);
}

static void run_pass(const char *scratch) {
    char err[256];
    g = nvmegate_create(NULL, "emulated", err, sizeof err);
    CHECK(g != NULL, "in-memory emulated gate");
    if (!g) { fprintf(stderr, "%s\n", err); return; }
    int ctrl = nvmegate_open(g, "nvme0", O_RDWR, &admin), ns = nvmegate_open(g, "nvme0n1", O_RDWR, &admin);
    CHECK(ctrl >= 0 && ns >= 0, "open nvme0 and nvme0n1 with CAP_SYS_ADMIN");
    identify_all(ctrl);
    logs(ctrl, ns);
    features(ctrl);
    namespaces(ctrl);
    io(ns);
    reservations(ctrl, ns);
    two_hosts(scratch);
    sanitize_firmware_selftest(ctrl, ns);
    policy(ns);
    nvmegate_destroy(g);
}

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: abi_emulated_test SCRATCH_DIR\n"); return 2; }
    run_pass(argv[1]);
    wide = 1;
    width = "80-byte";
    run_pass(argv[1]);
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
