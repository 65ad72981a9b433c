/*
 * stress_test.c: 8 threads submit a mix of commands through the C ABI (72- and 80-byte
 * structs on admin and I/O queues, Dataset Management range lists, check_batch rings) while
 * another thread reloads the policy back and forth between two that disagree on most of them
 * (tenants' LBA ranges move, grants come and go, a namespace turns read-only, tenant order
 * swaps). Afterwards every command is replayed, one at a time, on a fresh gate under the
 * policy that was in force, and its return, errno, result and verdicts must be the same.
 *
 * Which policy was in force: the reloader counts generations in `generation`, odd while a
 * reload is under way, even once it returned (generation 2k: policy A for k even, B for k
 * odd). A submitter reads it before and after each command; the same even value both times
 * means that policy decided it (a newer snapshot would have been published after the odd
 * store, an older one was replaced before the even store the submitter saw). Otherwise the
 * command overlapped a reload, and its outcome must be one of the two policies'.
 *
 * No torn write-back: each struct sits between guard bytes that must stay intact, an
 * executed command's result must be exactly the replay's (DW1:DW0 in the 80-byte struct),
 * and a refused one must leave the caller's preset result alone.
 *
 * Usage: stress_test SCRATCH_DIR. Prints "N passed, M failed"; exits non-zero on a failure.
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
#include <time.h>
#include <linux/nvme_ioctl.h>

#include "nvmegate.h"

static int passed, failed;

#define CHECK(cond, what)                                                                 \
    do {                                                                                  \
        if (cond) { passed++; }                                                           \
        else { failed++; fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, what); } \
    } while (0)

#define THREADS 8
#define PER_THREAD 6000

/* A and B differ for tenant x (its LBA range moves from 0-1023 to 1024-2047, it loses Get
 * Features and gains CNS 02h), tenant y (namespace 1 writable in A, read-only in B, CNS 03h
 * only in A), callers matching no tenant (Identify Namespace only in B), and the tenants'
 * order (so their numbers swap between the two). */
static const char *policy_a =
    "version = 1\nname = \"stress-a\"\n"
    "[default.admin]\nidentify_cns = [0x01]\n[default.io]\ncommands = \"none\"\n"
    "[[tenant]]\nname = \"x\"\nuids = [7001]\nrules = \"kernel\"\n"
    "[tenant.admin]\nlog_pages = [0x02]\nretain_async_event = \"required\"\nfeatures = [0x07]\n"
    "[[tenant.lba_range]]\nnsid = 1\nstart = 0\nblocks = 1024\n"
    "[[tenant]]\nname = \"y\"\nuids = [7002]\nrules = \"kernel\"\nnamespaces = [1]\n"
    "[tenant.admin]\nidentify_cns = [0x03]\n";
static const char *policy_b =
    "version = 1\nname = \"stress-b\"\n"
    "[default.admin]\nidentify_cns = [0x00, 0x01]\n[default.io]\ncommands = \"none\"\n"
    "[[tenant]]\nname = \"y\"\nuids = [7002]\nrules = \"kernel\"\nread_only_namespaces = [1]\n"
    "[[tenant]]\nname = \"x\"\nuids = [7001]\nrules = \"kernel\"\n"
    "[tenant.admin]\nlog_pages = [0x02]\nretain_async_event = \"required\"\nidentify_cns = [0x02]\n"
    "[[tenant.lba_range]]\nnsid = 1\nstart = 1024\nblocks = 1024\n";

/* ---- Handles and commands ----------------------------------------------------------- */

struct handle_spec { const char *node; int oflags; nvmegate_caller caller; };
static const struct handle_spec handle_specs[] = {
    {"nvme0n1", O_RDWR, {7001, 7001, 0}}, {"ng0n1", O_RDONLY, {7001, 7001, 0}}, {"nvme0", O_RDONLY, {7001, 7001, 0}},
    {"nvme0n1", O_RDWR, {7002, 7002, 0}}, {"nvme0", O_RDWR, {7002, 7002, 0}},
    {"nvme0n1", O_RDWR, {9999, 9999, 0}}, {"nvme0", O_RDONLY, {9999, 9999, 0}},
};
#define HANDLES (int)(sizeof handle_specs / sizeof handle_specs[0])

enum kind { IO72, IO80, ADMIN72, ADMIN80, DSM, RING };
struct command_spec {
    enum kind kind;
    unsigned char opcode;
    unsigned nsid, cdw10, cdw11, cdw12;
    unsigned len;
};
static const struct command_spec command_specs[] = {
    {IO72, 0x02, 1, 10, 0, 7, 4096},          /* Read 8 blocks at 10: x's in A */
    {IO80, 0x01, 1, 1500, 0, 0, 512},         /* Write 1 block at 1500: x's in B */
    {IO72, 0x01, 1, 1020, 0, 7, 4096},        /* Write across x's A and B ranges: neither */
    {IO80, 0x08, 1, 100, 0, 3, 0},            /* Write Zeroes at 100 */
    {IO72, 0x00, 1, 0, 0, 0, 0},              /* Flush */
    {IO72, 0x02, 1, 5000, 0, 0, 512},         /* Read at 5000: y (whole namespace) only */
    {IO80, 0x01, 1, 5000, 0, 0, 512},         /* Write at 5000: y in A */
    {IO72, 0x02, 2, 0, 0, 0, 512},            /* another NSID: EINVAL on a namespace node */
    {ADMIN72, 0x06, 0, 0x01, 0, 0, 4096},     /* Identify Controller */
    {ADMIN80, 0x06, 1, 0x00, 0, 0, 4096},     /* Identify Namespace */
    {ADMIN72, 0x06, 1, 0x03, 0, 0, 4096},     /* Namespace Identification Descriptors */
    {ADMIN80, 0x06, 0, 0x02, 0, 0, 4096},     /* Active Namespace ID list */
    {ADMIN80, 0x0a, 0, 0x07, 0, 0, 0},        /* Get Features, Number of Queues: DW0 003F003Fh */
    {ADMIN72, 0x02, 0xffffffff, 0x02 | 1u << 15 | 127u << 16, 0, 0, 512},   /* SMART, RAE */
    {ADMIN80, 0x02, 0xffffffff, 0x02 | 127u << 16, 0, 0, 512},              /* SMART without RAE */
    {DSM, 0x09, 1, 0, 4, 50, 16},             /* Dataset Management, deallocate one range at 50 */
    {DSM, 0x09, 1, 1, 4, 1200, 32},           /* two ranges from 1200 */
    {RING, 0x02, 1, 10, 1500, 5000, 0},       /* ring: Reads at 10, 1500, 5000 and a Write at 10 */
};
#define COMMANDS (int)(sizeof command_specs / sizeof command_specs[0])

/* What one command gave. */
struct outcome { int rc, err; unsigned long long result; unsigned char verdicts[4]; int intact; };

struct guarded { unsigned char before[16]; struct nvme_passthru_cmd64 c; unsigned char after[16]; };

static void put32(unsigned char *p, unsigned v) { for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> 8 * i); }
static void put64(unsigned char *p, unsigned long long v) { for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> 8 * i); }

static void entry(unsigned char *e, unsigned char opcode, unsigned nsid, unsigned slba) {
    memset(e, 0, 64);
    e[0] = opcode;
    put32(e + 4, nsid);
    put32(e + 40, slba);
}

static int all(const unsigned char *p, size_t n, unsigned char v) {
    for (size_t i = 0; i < n; i++) if (p[i] != v) return 0;
    return 1;
}

/* Runs command `c` on handle `h` of gate `g` with `data` (4096 bytes) as its buffer. */
static struct outcome run(nvmegate *g, int h, const struct command_spec *c, unsigned char *data) {
    struct outcome o;
    memset(&o, 0, sizeof o);
    o.intact = 1;
    if (c->kind == RING) {
        unsigned char ring[4 * 64];
        entry(ring, 0x02, c->nsid, c->cdw10);
        entry(ring + 64, 0x02, c->nsid, c->cdw11);
        entry(ring + 128, 0x02, c->nsid, c->cdw12);
        entry(ring + 192, 0x01, c->nsid, c->cdw10);
        unsigned char verdicts[5];
        memset(verdicts, 0xA5, sizeof verdicts);
        errno = 0;
        long n = nvmegate_check_batch(g, h, NVMEGATE_QUEUE_IO, ring, 4, verdicts);
        o.rc = (int)n;
        o.err = n < 0 ? errno : 0;
        memcpy(o.verdicts, verdicts, 4);
        o.intact = verdicts[4] == 0xA5;
        return o;
    }
    struct guarded s;
    memset(&s, 0xA5, sizeof s);
    memset(&s.c, 0, sizeof s.c);
    s.c.opcode = c->opcode;
    s.c.nsid = c->nsid;
    s.c.cdw10 = c->cdw10;
    s.c.cdw11 = c->cdw11;
    s.c.cdw12 = c->cdw12;
    s.c.addr = c->len ? (unsigned long long)(uintptr_t)data : 0;
    s.c.data_len = c->len;
    if (c->kind == DSM) {   /* ranges: (cdw12 + 100 i, 8 blocks); the list is this thread's own */
        s.c.cdw12 = 0;
        memset(data, 0, 32);
        for (unsigned i = 0; i <= c->cdw10; i++) { put32(data + 16 * i + 4, 8); put64(data + 16 * i + 8, c->cdw12 + 100 * i); }
    }
    int is64 = c->kind == IO80 || c->kind == ADMIN80;
    int io = c->kind == IO72 || c->kind == IO80 || c->kind == DSM;
    s.c.result = ~0ull;
    unsigned long request = io ? (is64 ? NVME_IOCTL_IO64_CMD : NVME_IOCTL_IO_CMD) : (is64 ? NVME_IOCTL_ADMIN64_CMD : NVME_IOCTL_ADMIN_CMD);
    void *arg = &s.c;
    if (!is64) {   /* the 72-byte struct is the 80-byte one's first 72 bytes; bytes 72-79 stay guards */
        memset((unsigned char *)&s.c + 64, 0, 8);
        memset((unsigned char *)&s.c + 72, 0xA5, 8);
        ((struct nvme_passthru_cmd *)arg)->result = 0xffffffffu;
    }
    errno = 0;
    o.rc = nvmegate_ioctl(g, h, request, arg);
    o.err = o.rc == -1 ? errno : 0;
    o.result = is64 ? s.c.result : ((struct nvme_passthru_cmd *)arg)->result;
    o.intact = all(s.before, 16, 0xA5) && all(s.after, 16, 0xA5) && (is64 || all((unsigned char *)&s.c + 72, 8, 0xA5));
    return o;
}

/* ---- The race ---------------------------------------------------------------------- */

struct record { unsigned char handle, command, policy; struct outcome o; };   /* policy: 0 A, 1 B, 2 either */

static nvmegate *g;
static char path_a[4096], path_b[4096];
static atomic_ulong generation;
static atomic_int started, finished;
static struct record records[THREADS][PER_THREAD];
static int handles[THREADS][HANDLES];

static unsigned next(unsigned *state) { *state = *state * 1103515245u + 12345u; return *state >> 8; }

static void *submitter(void *arg) {
    int t = (int)(intptr_t)arg;
    static _Thread_local unsigned char data[4096];
    unsigned state = 0x9E37u * (unsigned)(t + 1);
    atomic_fetch_add(&started, 1);
    while (atomic_load(&started) < THREADS + 1) { /* every thread and the reloader are ready */ }
    for (int i = 0; i < PER_THREAD; i++) {
        struct record *r = &records[t][i];
        r->handle = (unsigned char)(next(&state) % HANDLES);
        r->command = (unsigned char)(next(&state) % COMMANDS);
        unsigned long before = atomic_load(&generation);
        r->o = run(g, handles[t][r->handle], &command_specs[r->command], data);
        unsigned long after = atomic_load(&generation);
        r->policy = before == after && before % 2 == 0 ? (unsigned char)(before / 2 % 2) : 2;
    }
    atomic_fetch_add(&finished, 1);
    return NULL;
}

/* Reloads B, A, B, … until every submitter is done, letting each policy stand a moment. */
static void *reloader(void *arg) {
    (void)arg;
    char err[512];
    long *counts = calloc(2, sizeof *counts);   /* reloads, failed reloads */
    atomic_fetch_add(&started, 1);
    while (atomic_load(&started) < THREADS + 1) { }
    for (unsigned long k = 0; atomic_load(&finished) < THREADS; k++) {
        atomic_store(&generation, 2 * k + 1);
        if (nvmegate_reload(g, k % 2 == 0 ? path_b : path_a, err, sizeof err) != 0) counts[1]++;
        atomic_store(&generation, 2 * k + 2);
        counts[0]++;
        struct timespec pause = {0, 200 * 1000};
        nanosleep(&pause, NULL);
    }
    return counts;
}

static int same(const struct outcome *a, const struct outcome *b) {
    return a->rc == b->rc && a->err == b->err && a->result == b->result && memcmp(a->verdicts, b->verdicts, 4) == 0;
}

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: stress_test SCRATCH_DIR\n"); return 2; }
    snprintf(path_a, sizeof path_a, "%s/stress-a.toml", argv[1]);
    snprintf(path_b, sizeof path_b, "%s/stress-b.toml", argv[1]);
    FILE *fa = fopen(path_a, "w"), *fb = fopen(path_b, "w");
    if (!fa || !fb) { fprintf(stderr, "cannot write under %s\n", argv[1]); return 2; }
    fputs(policy_a, fa); fputs(policy_b, fb); fclose(fa); fclose(fb);

    char err[512];
    g = nvmegate_create(path_a, "emulated", err, sizeof err);
    nvmegate *replay[2] = {nvmegate_create(path_a, "emulated", err, sizeof err), nvmegate_create(path_b, "emulated", err, sizeof err)};
    CHECK(g && replay[0] && replay[1], "three gates on the emulated target: one raced, one per policy for the replay");
    if (!g || !replay[0] || !replay[1]) { fprintf(stderr, "%s\n", err); printf("%d passed, %d failed\n", passed, failed); return 1; }
    int replay_handles[2][HANDLES], opened = 1;
    for (int t = 0; t < THREADS; t++)
        for (int i = 0; i < HANDLES; i++)
            opened &= (handles[t][i] = nvmegate_open(g, handle_specs[i].node, handle_specs[i].oflags, &handle_specs[i].caller)) >= 0;
    for (int p = 0; p < 2; p++)
        for (int i = 0; i < HANDLES; i++)
            opened &= (replay_handles[p][i] = nvmegate_open(replay[p], handle_specs[i].node, handle_specs[i].oflags,
                                                            &handle_specs[i].caller)) >= 0;
    CHECK(opened, "every handle opens (before the race: opening is not what is raced)");

    pthread_t threads[THREADS], reload_thread;
    pthread_create(&reload_thread, NULL, reloader, NULL);
    for (int t = 0; t < THREADS; t++) pthread_create(&threads[t], NULL, submitter, (void *)(intptr_t)t);
    for (int t = 0; t < THREADS; t++) pthread_join(threads[t], NULL);
    void *reloads;
    pthread_join(reload_thread, &reloads);
    long reload_count = ((long *)reloads)[0];
    CHECK(((long *)reloads)[1] == 0, "every reload returned 0");
    free(reloads);

    /* The replay: each command alone, on the gate holding the policy in force. */
    static unsigned char data[4096];
    long known[2] = {0, 0}, either = 0, mismatched = 0, torn = 0, differing = 0;
    for (int t = 0; t < THREADS; t++) {
        for (int i = 0; i < PER_THREAD; i++) {
            const struct record *r = &records[t][i];
            const struct command_spec *c = &command_specs[r->command];
            struct outcome under[2];
            for (int p = 0; p < 2; p++) under[p] = run(replay[p], replay_handles[p][r->handle], c, data);
            if (!same(&under[0], &under[1])) differing++;
            if (!r->o.intact) torn++;
            int ok = r->policy == 2 ? same(&r->o, &under[0]) || same(&r->o, &under[1]) : same(&r->o, &under[r->policy]);
            if (r->policy == 2) either++; else known[r->policy]++;
            if (!ok && mismatched++ < 10)
                fprintf(stderr, "FAIL thread %d command %d (%d on %s as uid %u) under %s: rc %d errno %d result %llx; "
                        "A gives rc %d errno %d result %llx, B rc %d errno %d result %llx\n",
                        t, i, r->command, handle_specs[r->handle].node, handle_specs[r->handle].caller.uid,
                        r->policy == 2 ? "A or B" : r->policy ? "B" : "A", r->o.rc, r->o.err, r->o.result,
                        under[0].rc, under[0].err, under[0].result, under[1].rc, under[1].err, under[1].result);
        }
    }
    char what[320];
    snprintf(what, sizeof what, "%d commands from %d threads over %ld reloads, %ld decided under A, %ld under B, %ld during "
             "a reload (%ld on which A and B disagree): every outcome is the single-threaded replay's (%ld are not)",
             THREADS * PER_THREAD, THREADS, reload_count, known[0], known[1], either, differing, mismatched);
    printf("stress: %s\n", what);
    CHECK(mismatched == 0, what);
    CHECK(torn == 0, "no struct written past its result field, no verdict past the ring");
    CHECK(known[0] > 0 && known[1] > 0, "both policies were in force while commands ran");
    CHECK(differing > THREADS * PER_THREAD / 5, "the two policies disagree on a good share of the commands sent");
    nvmegate_destroy(g);
    nvmegate_destroy(replay[0]);
    nvmegate_destroy(replay[1]);
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
