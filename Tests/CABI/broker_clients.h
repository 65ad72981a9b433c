/*
 * broker_clients.h: what the broker's load and fault tests (broker_load_test.c,
 * broker_fault_test.c) share, under the policy Tests/Broker/load-test.toml on the emulated
 * controller (namespace 1: 2,097,152 blocks of 512 bytes):
 *
 * - the callers (roles): four tenants owning 65,536-block LBA ranges of namespace 1, a
 *   monitoring tenant owning nothing, a caller matching no tenant, and the fault tests' victim
 *   tenant; each client process drops to its role's uid, so the broker knows it by SO_PEERCRED;
 * - a seeded mix of commands for a client: Writes and Reads of its own blocks (a 1,024-block
 *   slot of its tenant's range), Reads of its tenant's other slots, Writes and Reads of another
 *   tenant's range or across the end of its own, a Write through a read-only handle, Write
 *   Zeroes, Flush, Identify, Get Log Page, Get Features, Format NVM, a vendor-specific command,
 *   NVME_IOCTL_ID, NVME_IOCTL_SUBMIT_IO; 72- and 80-byte structs;
 * - the expected outcome of each command: the same list replayed, before anything is timed, on
 *   an in-process gate (nvmegate_create(policy, "emulated")) with the caller's uid;
 * - the checks on what came back through the broker: ret, errno and the result field equal the
 *   in-process gate's; nothing written past the struct; a refused command's buffer untouched;
 *   every Write carries a pattern naming (role, client, sequence number, LBA) in every block,
 *   and every Read of the client's own blocks must return exactly what it last wrote there
 *   (zeroes where it never wrote or wrote zeroes); a Read of its tenant's other slots may only
 *   show zeroes or blocks another client of the same tenant wrote at that LBA; Identify data is
 *   the emulated controller's. A reply lost, duplicated, given to another connection or to
 *   another command, or another tenant's data, fails one of these.
 *
 * Everything here is static inline: each program includes it once and uses part of it.
 */
#ifndef BROKER_CLIENTS_H
#define BROKER_CLIENTS_H

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>
#include <linux/nvme_ioctl.h>

#include "nvmegate.h"

#define TENANT_BLOCKS 65536ull
#define SLOT_BLOCKS 1024u
#define SLOTS_PER_TENANT ((unsigned)(TENANT_BLOCKS / SLOT_BLOCKS))
/* Blocks no tenant owns: callers without a range address their "own" slot here (and are refused). */
#define UNOWNED_BASE 1048576ull
/* The largest command of the mix: 16 blocks, 8 KiB. */
#define MAX_BLOCKS 16u
#define BLOCK 512u
#define BUFFER_BYTES 8192u

/* ---- Callers ------------------------------------------------------------------------ */

enum role { T0, T1, T2, T3, MONITOR, NOBODY, VICTIM, ROLES };
/* The roles the load test cycles through: client i is role i % LOAD_ROLES, slot i / LOAD_ROLES. */
#define LOAD_ROLES 6

static const struct role_spec {
    uint32_t uid;
    const char *name;
    int tenant; /* its LBA range is [tenant * TENANT_BLOCKS, +TENANT_BLOCKS) of namespace 1; -1: none */
} roles[ROLES] = {
    {7100, "t0", 0}, {7101, "t1", 1}, {7102, "t2", 2}, {7103, "t3", 3},
    {7199, "monitor", -1}, {7299, "nobody", -1}, {7104, "victim", 4},
};

/* One client: who it is and which blocks are its own. */
struct client {
    int id;            /* 0..4095, written into its blocks */
    enum role role;
    unsigned slot;     /* its slot in its tenant's range */
    uint64_t own;      /* the first of its SLOT_BLOCKS own blocks */
    int64_t last[SLOT_BLOCKS]; /* per own block: the sequence number that last wrote it, -1 zeroes */
};

static inline void client_init(struct client *c, int id, enum role role, unsigned slot) {
    memset(c, 0, sizeof *c);
    c->id = id;
    c->role = role;
    c->slot = slot;
    int t = roles[role].tenant;
    c->own = t >= 0 ? (uint64_t)t * TENANT_BLOCKS + (uint64_t)slot * SLOT_BLOCKS
                    : UNOWNED_BASE + (uint64_t)(id % 512) * SLOT_BLOCKS;
    for (unsigned i = 0; i < SLOT_BLOCKS; i++) c->last[i] = -1;
}

/* The caller an in-process gate decides as: the uid (and gid) the process drops to, no capability. */
static inline nvmegate_caller caller_of(enum role role) {
    return (nvmegate_caller){roles[role].uid, roles[role].uid, 0};
}

/* Drops this process (root) to `role`'s uid and gid, with no supplementary groups and so no
 * capabilities: -1 with errno if it cannot. */
static inline int become(enum role role) {
    uid_t id = roles[role].uid;
    if (setgroups(0, NULL) != 0 || setresgid(id, id, id) != 0 || setresuid(id, id, id) != 0) return -1;
    return geteuid() == id && getegid() == id ? 0 : -1;
}

/* ---- Block patterns ------------------------------------------------------------------- */

/* Block `lba` as written by client `id` (of `role`) with sequence number `seq`: word 0 names
 * the writer and the LBA, word 1 the sequence number, the rest are derived from both. */
static inline void pattern(unsigned char *block, enum role role, int id, uint64_t seq, uint64_t lba) {
    uint64_t w0 = 0xA5ull << 56 | (uint64_t)role << 48 | (uint64_t)(id & 0xFFFF) << 32 | (lba & 0xFFFFFFFFull);
    uint64_t w[BLOCK / 8];
    w[0] = w0;
    w[1] = seq;
    for (unsigned j = 2; j < BLOCK / 8; j++) w[j] = (w0 ^ seq << 17) + j * 0x9E3779B97F4A7C15ull;
    memcpy(block, w, BLOCK);
}

static inline int all_bytes(const unsigned char *p, size_t n, unsigned char v) {
    for (size_t i = 0; i < n; i++) if (p[i] != v) return 0;
    return 1;
}

/* Whether `block`, read at `lba`, is zeroes or a whole pattern some client of `role` wrote at
 * that very LBA (another tenant's data, a block from elsewhere or a torn one are not). */
static inline int plausible(const unsigned char *block, enum role role, uint64_t lba) {
    if (all_bytes(block, BLOCK, 0)) return 1;
    uint64_t w0, seq;
    memcpy(&w0, block, 8);
    memcpy(&seq, block + 8, 8);
    if (w0 >> 56 != 0xA5 || (w0 >> 48 & 0xFF) != (uint64_t)role || (w0 & 0xFFFFFFFFull) != lba) return 0;
    unsigned char expected[BLOCK];
    pattern(expected, role, (int)(w0 >> 32 & 0xFFFF), seq, lba);
    return memcmp(expected, block, BLOCK) == 0;
}

/* ---- Commands ------------------------------------------------------------------------- */

/* The handles each client opens: the controller, the block namespace node read-write, the
 * generic namespace node read-only. */
enum { H_CTRL, H_NS, H_NG, HANDLES };
static const struct { const char *node; int oflags; } handle_nodes[HANDLES] = {
    {"nvme0", O_RDONLY}, {"nvme0n1", O_RDWR}, {"ng0n1", O_RDONLY},
};

enum kind {
    K_WRITE,          /* own blocks */
    K_READ,           /* own blocks, through nvme0n1 or ng0n1 */
    K_READ_SIBLING,   /* another slot of its tenant's range */
    K_WRITE_OTHER,    /* another tenant's range */
    K_READ_OTHER,
    K_WRITE_STRADDLE, /* across the end of its tenant's range */
    K_WRITE_RO,       /* own blocks through the read-only handle */
    K_WRITE_ZEROES,   /* own blocks */
    K_FLUSH,
    K_ID_CTRL,        /* Identify Controller */
    K_ID_NS,          /* Identify Namespace 1 */
    K_LOG_SMART,      /* Get Log Page SMART / Health */
    K_LOG_FW,         /* Get Log Page Firmware Slot */
    K_GET_FEATURES,   /* Number of Queues: result 003F003Fh */
    K_FORMAT,         /* Format NVM: refused */
    K_VENDOR,         /* I/O C1h: refused */
    K_ID_IOCTL,       /* NVME_IOCTL_ID on ng0n1: 1 */
    K_ID_IOCTL_CTRL,  /* NVME_IOCTL_ID on the controller: ENOTTY */
    K_SUBMIT_IO,      /* NVME_IOCTL_SUBMIT_IO Read of own blocks */
    KINDS
};
static const char *const kind_names[KINDS] = {
    "Write", "Read", "Read (sibling)", "Write (other tenant)", "Read (other tenant)", "Write (straddling)",
    "Write (read-only handle)", "Write Zeroes", "Flush", "Identify Controller", "Identify Namespace",
    "Get Log Page SMART", "Get Log Page Firmware Slot", "Get Features", "Format NVM", "vendor C1h",
    "NVME_IOCTL_ID", "NVME_IOCTL_ID (controller)", "SUBMIT_IO Read",
};
/* Per mille of the mix (they add up to 1000). */
static const unsigned kind_weights[KINDS] = {
    230, 230, 50, 40, 40, 20, 20, 30, 30, 60, 30, 50, 20, 40, 20, 20, 30, 10, 30,
};

struct cmd {
    uint8_t kind, wide, handle, blocks;
    uint64_t slba;
};

static inline uint64_t next_random(uint64_t *state) {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return *state * 0x2545F4914F6CDD1Dull;
}

/* `count` commands for client `c`, the same for the same seed. */
static inline void make_commands(const struct client *c, uint64_t seed, struct cmd *out, size_t count) {
    uint64_t state = seed * 0x9E3779B97F4A7C15ull + 1;
    int t = roles[c->role].tenant;
    for (size_t i = 0; i < count; i++) {
        struct cmd *m = &out[i];
        memset(m, 0, sizeof *m);
        unsigned total = 0, k = 0;
        for (int j = 0; j < KINDS; j++) total += kind_weights[j];
        unsigned pick = (unsigned)(next_random(&state) % total);
        while (pick >= kind_weights[k]) pick -= kind_weights[k++];
        m->kind = (uint8_t)k;
        m->wide = (uint8_t)(next_random(&state) & 1);
        static const uint8_t sizes[] = {1, 8, 8, 8, 16, 2, 4, 12};
        m->blocks = sizes[next_random(&state) % 8];
        uint64_t offset = next_random(&state) % (SLOT_BLOCKS - m->blocks + 1);
        uint64_t other = (uint64_t)((t < 0 ? 0 : t) + 1 + (int)(next_random(&state) % 4)) % 5; /* never its own */
        m->handle = k <= K_WRITE_ZEROES || k == K_FLUSH || k == K_VENDOR || k == K_SUBMIT_IO ? H_NS : H_CTRL;
        switch (k) {
        case K_WRITE: case K_WRITE_ZEROES: case K_SUBMIT_IO:
            m->slba = c->own + offset;
            break;
        case K_READ:
            m->slba = c->own + offset;
            if (next_random(&state) & 1) m->handle = H_NG;
            break;
        case K_WRITE_RO:
            m->slba = c->own + offset;
            m->handle = H_NG;
            break;
        case K_READ_SIBLING: {
            unsigned slot = (c->slot + 1 + (unsigned)(next_random(&state) % (SLOTS_PER_TENANT - 1))) % SLOTS_PER_TENANT;
            m->slba = (t < 0 ? UNOWNED_BASE : (uint64_t)t * TENANT_BLOCKS) + (uint64_t)slot * SLOT_BLOCKS + offset;
            break;
        }
        case K_WRITE_OTHER: case K_READ_OTHER:
            m->slba = other * TENANT_BLOCKS + next_random(&state) % (TENANT_BLOCKS - m->blocks + 1);
            break;
        case K_WRITE_STRADDLE: /* half its blocks in the range, half in the next tenant's */
            if (m->blocks < 2) m->blocks = 2;
            m->slba = (uint64_t)(t < 0 ? 0 : t) * TENANT_BLOCKS + TENANT_BLOCKS - m->blocks / 2;
            break;
        case K_ID_IOCTL:
            m->handle = H_NG;
            break;
        default:
            break;
        }
    }
}

/* What one command gave. */
struct outcome {
    int rc, err;
    uint64_t result;
    int intact; /* nothing written around the struct */
};

static inline int same_outcome(const struct outcome *a, const struct outcome *b) {
    return a->rc == b->rc && a->err == b->err && a->result == b->result;
}

/* The struct between guard bytes, and its data buffer. */
struct guarded {
    unsigned char before[16];
    struct nvme_passthru_cmd64 c;
    unsigned char after[16];
};

/* Sends `m` on gate `g` (handles `h`) with `buffer` (BUFFER_BYTES) as its data: Writes carry
 * client `c`'s pattern for sequence number `seq`; reads find the buffer preset to EEh. */
static inline struct outcome run_command(nvmegate *g, const int *h, const struct client *c, const struct cmd *m,
                                         uint64_t seq, unsigned char *buffer) {
    struct outcome o = {0, 0, 0, 1};
    unsigned len = (unsigned)m->blocks * BLOCK;
    unsigned char opcode = 0;
    unsigned nsid = 1, cdw10 = 0, cdw11 = 0, cdw12 = 0;
    int io = 1, data = 0;
    memset(buffer, 0xEE, BUFFER_BYTES);
    switch (m->kind) {
    case K_WRITE: case K_WRITE_OTHER: case K_WRITE_STRADDLE: case K_WRITE_RO:
        opcode = 0x01;
        data = 1;
        for (unsigned b = 0; b < m->blocks; b++) pattern(buffer + b * BLOCK, c->role, c->id, seq, m->slba + b);
        break;
    case K_READ: case K_READ_SIBLING: case K_READ_OTHER:
        opcode = 0x02;
        data = 1;
        break;
    case K_WRITE_ZEROES:
        opcode = 0x08;
        break;
    case K_FLUSH:
        opcode = 0x00;
        break;
    case K_VENDOR:
        opcode = 0xC1;
        break;
    case K_ID_CTRL: io = 0; opcode = 0x06; nsid = 0; cdw10 = 0x01; data = 1; len = 4096; break;
    case K_ID_NS: io = 0; opcode = 0x06; nsid = 1; cdw10 = 0x00; data = 1; len = 4096; break;
    case K_LOG_SMART: io = 0; opcode = 0x02; nsid = 0xFFFFFFFF; cdw10 = 0x02 | 127u << 16; data = 1; len = 512; break;
    case K_LOG_FW: io = 0; opcode = 0x02; nsid = 0xFFFFFFFF; cdw10 = 0x03 | 127u << 16; data = 1; len = 512; break;
    case K_GET_FEATURES: io = 0; opcode = 0x0A; nsid = 0; cdw10 = 0x07; break;
    case K_FORMAT: io = 0; opcode = 0x80; nsid = 1; break;
    case K_ID_IOCTL: case K_ID_IOCTL_CTRL:
        errno = 0;
        o.rc = nvmegate_ioctl(g, h[m->handle], NVME_IOCTL_ID, NULL);
        o.err = o.rc == -1 ? errno : 0;
        return o;
    case K_SUBMIT_IO: {
        struct { unsigned char before[16]; struct nvme_user_io u; unsigned char after[16]; } s;
        memset(&s, 0xA5, sizeof s);
        memset(&s.u, 0, sizeof s.u);
        s.u.opcode = 0x02;
        s.u.nblocks = (uint16_t)(m->blocks - 1);
        s.u.addr = (uint64_t)(uintptr_t)buffer;
        s.u.slba = m->slba;
        errno = 0;
        o.rc = nvmegate_ioctl(g, h[m->handle], NVME_IOCTL_SUBMIT_IO, &s.u);
        o.err = o.rc == -1 ? errno : 0;
        o.intact = all_bytes(s.before, 16, 0xA5) && all_bytes(s.after, 16, 0xA5);
        return o;
    }
    }
    if (io && opcode != 0x00 && opcode != 0xC1) {
        cdw10 = (unsigned)m->slba;
        cdw11 = (unsigned)(m->slba >> 32);
        cdw12 = m->blocks - 1u;
    }
    struct guarded s;
    memset(&s, 0xA5, sizeof s);
    memset(&s.c, 0, sizeof s.c);
    s.c.opcode = opcode;
    s.c.nsid = nsid;
    s.c.cdw10 = cdw10;
    s.c.cdw11 = cdw11;
    s.c.cdw12 = cdw12;
    s.c.addr = data ? (uint64_t)(uintptr_t)buffer : 0;
    s.c.data_len = data ? len : 0;
    unsigned long request = io ? (m->wide ? NVME_IOCTL_IO64_CMD : NVME_IOCTL_IO_CMD)
                               : (m->wide ? NVME_IOCTL_ADMIN64_CMD : NVME_IOCTL_ADMIN_CMD);
    struct nvme_passthru_cmd *narrow = (struct nvme_passthru_cmd *)&s.c;
    if (m->wide) {
        s.c.result = ~0ull;
    } else { /* the 72-byte struct is the 80-byte one's first 72 bytes; bytes 72-79 stay guards */
        memset((unsigned char *)&s.c + 72, 0xA5, 8);
        narrow->result = 0xFFFFFFFFu;
    }
    errno = 0;
    o.rc = nvmegate_ioctl(g, h[m->handle], request, &s.c);
    o.err = o.rc == -1 ? errno : 0;
    o.result = m->wide ? s.c.result : narrow->result;
    o.intact = all_bytes(s.before, 16, 0xA5) && all_bytes(s.after, 16, 0xA5)
               && (m->wide || all_bytes((unsigned char *)&s.c + 72, 8, 0xA5));
    return o;
}

/* Replays `count` commands on a fresh in-process gate under `policy` as `role`: the outcome each
 * must have. 0, or -1 with a message on standard error. */
static inline int reference_outcomes(const char *policy, const struct client *c, const struct cmd *commands, size_t count,
                                     struct outcome *out) {
    char err[512] = "";
    nvmegate *g = nvmegate_create(policy, "emulated", err, sizeof err);
    if (!g) { fprintf(stderr, "in-process gate under %s: %s\n", policy, err); return -1; }
    nvmegate_caller who = caller_of(c->role);
    int h[HANDLES];
    for (int i = 0; i < HANDLES; i++) {
        h[i] = nvmegate_open(g, handle_nodes[i].node, handle_nodes[i].oflags, &who);
        if (h[i] < 0) { fprintf(stderr, "in-process open %s: %s\n", handle_nodes[i].node, strerror(errno)); nvmegate_destroy(g); return -1; }
    }
    static unsigned char buffer[BUFFER_BYTES];
    for (size_t i = 0; i < count; i++) out[i] = run_command(g, h, c, &commands[i], i, buffer);
    nvmegate_destroy(g);
    return 0;
}

/* ---- Checks ---------------------------------------------------------------------------- */

struct tally {
    long done, mismatches, lost, executed, refused;
};

/* Whether `o` is a transport failure rather than a verdict: the broker's reply never came. */
static inline int transport_failure(const struct outcome *o) {
    return o->rc == -1 && (o->err == EIO || o->err == EPROTO || o->err == ECONNRESET || o->err == EPIPE);
}

/* Prints one failure (the first few of a client) on standard error. */
static inline void complain(const struct client *c, struct tally *t, uint64_t seq, const struct cmd *m, const char *what,
                            const struct outcome *got, const struct outcome *want) {
    if (t->mismatches + t->lost > 5) return;
    fprintf(stderr, "FAIL client %d (%s) command %llu: %s %s at LBA %llu+%u (%d bytes struct): %s: got rc %d errno %d result %llx",
            c->id, roles[c->role].name, (unsigned long long)seq, kind_names[m->kind], m->handle == H_NG ? "on ng0n1" : "",
            (unsigned long long)m->slba, m->blocks, m->wide ? 80 : 72, what, got->rc, got->err, (unsigned long long)got->result);
    if (want) fprintf(stderr, ", expected rc %d errno %d result %llx", want->rc, want->err, (unsigned long long)want->result);
    fputc('\n', stderr);
}

/* Checks what command `m` (sequence number `seq`) gave through the broker against what it must
 * have given (`choices`: one outcome, or two for "either policy"), and its data against the
 * client's record of its own blocks, which it then brings up to date. Returns the index of the
 * choice it matched, or -1 (counted as a mismatch or as lost). */
static inline int check_command(struct client *c, struct tally *t, uint64_t seq, const struct cmd *m,
                                const struct outcome *got, const struct outcome *choices, int nchoices,
                                const unsigned char *buffer) {
    t->done++;
    int matched = -1;
    for (int i = 0; i < nchoices && matched < 0; i++) if (same_outcome(got, &choices[i])) matched = i;
    if (matched < 0) {
        if (transport_failure(got)) { t->lost++; complain(c, t, seq, m, "no reply (lost)", got, &choices[0]); return -1; }
        complain(c, t, seq, m, "verdict differs from the in-process gate's", got, &choices[0]);
        if (nchoices > 1) complain(c, t, seq, m, "(or, under the other policy)", got, &choices[1]);
        t->mismatches++;
        return -1;
    }
    if (got->rc == -1 && got->err == EACCES) t->refused++; else t->executed++;
    if (!got->intact) { complain(c, t, seq, m, "bytes written outside the struct", got, NULL); t->mismatches++; return -1; }
    unsigned len = (unsigned)m->blocks * BLOCK;
    int read_kind = m->kind == K_READ || m->kind == K_READ_SIBLING || m->kind == K_READ_OTHER || m->kind == K_SUBMIT_IO;
    int admin_data = m->kind == K_ID_CTRL || m->kind == K_ID_NS || m->kind == K_LOG_SMART || m->kind == K_LOG_FW;
    if (got->rc != 0) {
        /* Not executed (or an NVMe error): a Read's buffer stays as the caller left it. */
        if ((read_kind || admin_data) && got->rc == -1 && !all_bytes(buffer, read_kind ? len : 4096, 0xEE)) {
            complain(c, t, seq, m, "refused, but the buffer was written", got, NULL);
            t->mismatches++;
            return -1;
        }
        return matched;
    }
    int bad = 0;
    switch (m->kind) {
    case K_WRITE: case K_WRITE_RO:
        for (unsigned b = 0; b < m->blocks; b++) c->last[m->slba - c->own + b] = (int64_t)seq;
        break;
    case K_WRITE_ZEROES:
        for (unsigned b = 0; b < m->blocks; b++) c->last[m->slba - c->own + b] = -1;
        break;
    case K_READ: case K_SUBMIT_IO:
        for (unsigned b = 0; b < m->blocks && !bad; b++) {
            int64_t last = c->last[m->slba - c->own + b];
            unsigned char want[BLOCK];
            if (last < 0) memset(want, 0, BLOCK); else pattern(want, c->role, c->id, (uint64_t)last, m->slba + b);
            bad = memcmp(want, buffer + b * BLOCK, BLOCK) != 0;
        }
        if (bad) complain(c, t, seq, m, "a block read is not what this client last wrote there", got, NULL);
        break;
    case K_READ_SIBLING: case K_READ_OTHER:
        for (unsigned b = 0; b < m->blocks && !bad; b++) bad = !plausible(buffer + b * BLOCK, c->role, m->slba + b);
        if (bad) complain(c, t, seq, m, "a block read is neither zeroes nor its tenant's own at that LBA", got, NULL);
        break;
    case K_ID_CTRL:
        bad = memcmp(buffer + 24, "nvmegate emulated controller", 28) != 0;
        if (bad) complain(c, t, seq, m, "Identify Controller data is not the emulated controller's", got, NULL);
        break;
    case K_ID_NS: {
        uint64_t nsze;
        memcpy(&nsze, buffer, 8);
        bad = nsze != 2097152;
        if (bad) complain(c, t, seq, m, "Identify Namespace NSZE is not 2097152", got, NULL);
        break;
    }
    case K_LOG_SMART:
        bad = buffer[1] != 0x43 || buffer[2] != 0x01 || !all_bytes(buffer + 512, BUFFER_BYTES - 512, 0xEE);
        if (bad) complain(c, t, seq, m, "SMART log: not 323 K, or written past its 512 bytes", got, NULL);
        break;
    default:
        break;
    }
    if (bad) { t->mismatches++; return -1; }
    return matched;
}

/* ---- Latencies -------------------------------------------------------------------------- */

static inline int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline int compare_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The q-quantile (0..1) of `n` sorted values: the smallest value with at least q of them at or below it. */
static inline int64_t quantile(const int64_t *sorted, size_t n, double q) {
    if (n == 0) return 0;
    size_t rank = (size_t)(q * (double)n + 0.999999);
    if (rank < 1) rank = 1;
    if (rank > n) rank = n;
    return sorted[rank - 1];
}

/* ---- Pipes ------------------------------------------------------------------------------- */

static inline int write_all(int fd, const void *p, size_t n) {
    for (const char *b = p; n > 0;) {
        ssize_t w = write(fd, b, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads exactly n bytes; 0, or -1 at an early end. */
static inline int read_all(int fd, void *p, size_t n) {
    for (char *b = p; n > 0;) {
        ssize_t r = read(fd, b, n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        b += r;
        n -= (size_t)r;
    }
    return 0;
}

/* Opens the client's handles on `g`; 0, or -1 with a message. */
static inline int open_handles(nvmegate *g, int *h, const nvmegate_caller *who) {
    for (int i = 0; i < HANDLES; i++) {
        h[i] = nvmegate_open(g, handle_nodes[i].node, handle_nodes[i].oflags, who);
        if (h[i] < 0) { fprintf(stderr, "open %s: %s\n", handle_nodes[i].node, strerror(errno)); return -1; }
    }
    return 0;
}

/* Zeroes a tenant client's own blocks (Write Zeroes, one command), so that a run does not depend
 * on what an earlier run against the same broker left there: 0, or -1 with a message. */
static inline int zero_own(nvmegate *g, const int *h, const struct client *c) {
    if (roles[c->role].tenant < 0) return 0;
    struct nvme_passthru_cmd z = {.opcode = 0x08, .nsid = 1, .cdw10 = (uint32_t)c->own, .cdw11 = (uint32_t)(c->own >> 32),
                                  .cdw12 = SLOT_BLOCKS - 1};
    int rc = nvmegate_ioctl(g, h[H_NS], NVME_IOCTL_IO_CMD, &z);
    if (rc != 0) fprintf(stderr, "client %d: Write Zeroes of its own blocks: %d (%s)\n", c->id, rc, rc == -1 ? strerror(errno) : "status");
    return rc == 0 ? 0 : -1;
}

#endif /* BROKER_CLIENTS_H */
