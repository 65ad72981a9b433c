/* Tests/VM/kernel-cases.c: a real Linux kernel's passthrough decisions, case by case, against
 * nvmegate's kernel policy (Policies/kernel.toml). One static program, four modes:
 *
 *   kernel-cases generate > CASES        the decision cases, one a line (on the host)
 *   kernel-cases json < CASES            the same cases as `nvmegate policy check --jsonl` lines
 *   kernel-cases run CASES               (in the VM, as root) issues every case to the kernel
 *                                        through the passthru ioctls: root's cases as root, then
 *                                        drops CAP_SYS_ADMIN for the "noadmin" caller's, then
 *                                        drops to uid 1000 with no capabilities for the user's;
 *                                        prints the outcomes as VMKERNEL lines on stdout
 *   kernel-cases compare CASES CONSOLE VERDICTS
 *                                        the kernel's outcomes (from the VM's console) against
 *                                        nvmegate's verdicts, outcome by outcome; exits 1 when a
 *                                        difference is not the documented one
 *
 * The cases (see generate below): every I/O opcode through NVME_IOCTL_IO_CMD and
 * NVME_IOCTL_IO64_CMD on the namespace, generic and partition nodes (and IO_CMD on the
 * controller node), every admin opcode and every Identify CNS through NVME_IOCTL_ADMIN_CMD and
 * NVME_IOCTL_ADMIN64_CMD on every node, flags and NSID envelope cases, and random lines; each
 * with the node opened read-only and read-write, by three callers: root (uid 0, every
 * capability), noadmin (uid 0, every capability but CAP_SYS_ADMIN: what bypasses Linux's rules
 * is that capability, not uid 0 or another one) and user (uid 1000, no capabilities).
 *
 * Harmless to the throw-away disk: transfers are at most 4 KiB into a 4 KiB buffer; I/O
 * addresses scratch blocks (SCRATCH_LBA, outside everything Tests/VM checks); admin commands
 * sent as root carry fields the controller refuses (NSID 0, CDW10 0: queue ID 0, FID 0, action
 * 0; Format NVM an LBA format beyond NLBAF), except Identify, which only reads. Two admin
 * commands would not come back or would break the controller even so (Asynchronous Event
 * Request waits for an event, Doorbell Buffer Config moves the doorbells): they are "probed",
 * their data buffer at a kernel address, which Linux refuses with EFAULT when it maps the
 * buffer, after its decision and before the controller sees anything. For them EFAULT means
 * "passed the decision".
 *
 * What a case's outcome is: the ioctl's return, as the kernel gives it: 0 or a positive NVMe
 * status (the command passed Linux's checks and reached the device, whatever it answered), or
 * an errno (EACCES: Linux's rules refused it; EINVAL: its envelope checks; ENOTTY: no such
 * ioctl on the node).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <linux/capability.h>
#include <linux/nvme_ioctl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

enum { ROOT, NOADMIN, USER, CALLERS };
enum { CTRL, NS, NG, PART, NODES };
enum { ADMIN, IO, ADMIN64, IO64, IOCTLS };

static const char *caller_names[] = {"root", "noadmin", "user"};
static const char *caller_descriptions[] = {"root", "uid 0 without CAP_SYS_ADMIN", "uid 1000"};
static const char *node_names[] = {"ctrl", "ns", "ng", "part"};
static const char *node_paths[] = {"/dev/nvme0", "/dev/nvme0n1", "/dev/ng0n1", "/dev/nvme0n1p1"};
static const char *node_kinds[] = {"controller", "namespace", "generic", "partition"};
static const char *mode_names[] = {"ro", "rw"};
static const char *ioctl_names[] = {"admin", "io", "admin64", "io64"};
static const char *ioctl_requests[] = {"NVME_IOCTL_ADMIN_CMD", "NVME_IOCTL_IO_CMD", "NVME_IOCTL_ADMIN64_CMD",
                                       "NVME_IOCTL_IO64_CMD"};

#define USER_ID 1000
#define NSID 1                   /* the VM's only namespace */
/* Blocks 300h-307h: nothing else in Tests/VM uses them, and CDW10 = 300h read as another
   command's field still fits the buffer (Reservation Report: NUMD 300h, 3076 bytes; Dataset
   Management: NR 0), so nvmegate's buffer-length check never refuses what Linux passes. */
#define SCRATCH_LBA 0x300
#define BUFFER 4096              /* every transfer fits (at most 8 blocks of 512 bytes) */
#define PROBE_ADDRESS 0xffff800000000000ull  /* a kernel address: access_ok() fails, EFAULT */
#define LAST_CAPABILITY 40       /* Linux 6.12's CAP_LAST_CAP (CAP_CHECKPOINT_RESTORE) */
#define EVERY_CAPABILITY ((1ull << (LAST_CAPABILITY + 1)) - 1)

struct kcase {
    char group[16];
    int caller, node, write, ioctl, probe;
    uint32_t opcode, flags, nsid, cdw2, cdw3, cdw[6], data_len;
};

static int admin_queue(const struct kcase *c) { return c->ioctl == ADMIN || c->ioctl == ADMIN64; }

static void die(const char *format, ...) {
    va_list args;
    va_start(args, format);
    fprintf(stderr, "kernel-cases: ");
    vfprintf(stderr, format, args);
    fprintf(stderr, "\n");
    va_end(args);
    exit(2);
}

/* ------------------------------------------------------------------------------------------ */
/* generate                                                                                    */

static uint64_t rng = 0x6b65726e656c3132ull;  /* fixed seed: the same cases every run */
static uint32_t next_random(void) {
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}

/* A command on the I/O queue: SCRATCH_LBA, one block, through the node's namespace. */
static struct kcase io_case(const char *group, uint32_t opcode) {
    struct kcase c = {.opcode = opcode, .nsid = NSID, .data_len = BUFFER};
    snprintf(c.group, sizeof c.group, "%s", group);
    c.cdw[0] = SCRATCH_LBA;
    return c;
}

/* A command on the admin queue with fields the controller refuses (see the top of the file). */
static struct kcase admin_case(const char *group, uint32_t opcode) {
    struct kcase c = {.opcode = opcode, .data_len = BUFFER};
    snprintf(c.group, sizeof c.group, "%s", group);
    if (opcode == 0x80) c.cdw[0] = 0xF;     /* Format NVM: LBA format 15, beyond NLBAF */
    return c;
}

static void emit(struct kcase c, int caller, int node, int write, int ioctl) {
    c.caller = caller; c.node = node; c.write = write; c.ioctl = ioctl;
    c.probe = admin_queue(&c) && (c.opcode == 0x0C || c.opcode == 0x7C);
    printf("%s %s %s %s %s %s %02" PRIx32 " %02" PRIx32 " %" PRIx32 " %" PRIx32 " %" PRIx32,
           c.group, caller_names[caller], node_names[node], mode_names[write], ioctl_names[ioctl],
           c.probe ? "probe" : "-", c.opcode, c.flags, c.nsid, c.cdw2, c.cdw3);
    for (int i = 0; i < 6; i++) printf(" %" PRIx32, c.cdw[i]);
    printf(" %" PRIx32 "\n", c.data_len);
}

/* Every (caller, node, open mode) for one ioctl. */
#define FOR_EACH_HANDLE(caller, node, write) \
    for (int caller = 0; caller < CALLERS; caller++) \
        for (int node = 0; node < NODES; node++) \
            for (int write = 0; write < 2; write++)

static int generate(void) {
    printf("# kernel-cases generate: group caller node mode ioctl probe opcode flags nsid cdw2 cdw3 "
           "cdw10..cdw15 data_len (numbers in hex)\n");
    /* Every I/O opcode on the namespace, generic and partition nodes through both I/O ioctls,
       and through NVME_IOCTL_IO_CMD on the controller node (its only namespace). */
    FOR_EACH_HANDLE(caller, node, write)
        for (int ioctl = IO; ioctl < IOCTLS; ioctl += 2) {   /* NVME_IOCTL_IO_CMD, NVME_IOCTL_IO64_CMD */
            if (node == CTRL && ioctl == IO64) continue;   /* ENOTTY: among the envelope cases */
            for (uint32_t op = 0; op < 256; op++) emit(io_case("io-opcode", op), caller, node, write, ioctl);
        }
    /* Every admin opcode, and every Identify CNS, on every node through both admin ioctls. */
    FOR_EACH_HANDLE(caller, node, write)
        for (int ioctl = ADMIN; ioctl < IOCTLS; ioctl += 2)   /* NVME_IOCTL_ADMIN_CMD, _ADMIN64_CMD */
            for (uint32_t op = 0; op < 256; op++) emit(admin_case("admin-opcode", op), caller, node, write, ioctl);
    FOR_EACH_HANDLE(caller, node, write)
        for (int ioctl = ADMIN; ioctl < IOCTLS; ioctl += 2)
            for (uint32_t cns = 0; cns < 256; cns++) {
                struct kcase c = admin_case("identify-cns", 0x06);
                c.nsid = NSID;
                c.cdw[0] = cns;
                emit(c, caller, node, write, ioctl);
            }
    /* The envelope: flags, NSIDs, and both together with commands the rules refuse, on every
       ioctl (NVME_IOCTL_IO64_CMD on the controller node included). Admin: Identify Controller
       (Get Log Page for the refused one); I/O: Read (Write and a vendor opcode). */
    static const uint32_t flags[] = {0x01, 0x02, 0x03, 0x40, 0x80, 0xC0, 0xFF};
    static const uint32_t nsids[] = {0, 2, 0xFFFFFFFF, 0x80000001};
    FOR_EACH_HANDLE(caller, node, write)
        for (int ioctl = 0; ioctl < IOCTLS; ioctl++) {
            int admin = ioctl == ADMIN || ioctl == ADMIN64;
            for (size_t i = 0; i < sizeof flags / sizeof *flags; i++) {
                struct kcase c = admin ? admin_case("envelope", 0x06) : io_case("envelope", 0x02);
                if (admin) c.cdw[0] = 0x01;
                c.flags = flags[i];
                emit(c, caller, node, write, ioctl);
            }
            for (size_t i = 0; i < sizeof nsids / sizeof *nsids; i++) {
                struct kcase c = admin ? admin_case("envelope", 0x06) : io_case("envelope", 0x02);
                c.nsid = nsids[i];   /* admin: Identify Namespace (CNS 00h) of that NSID */
                emit(c, caller, node, write, ioctl);
            }
            struct kcase refused = admin ? admin_case("envelope", 0x02) : io_case("envelope", 0x01);
            refused.flags = 0x01;
            emit(refused, caller, node, write, ioctl);
            refused = admin ? admin_case("envelope", 0x02) : io_case("envelope", 0x81);
            refused.nsid = 2;
            emit(refused, caller, node, write, ioctl);
        }
    /* Random lines: any handle, ioctl and opcode; flags and NSID usually right; Identify with
       any CDW10 (CNS, CNTID, CSI); I/O with 1 to 8 blocks and any CDW2, CDW3, CDW13 to CDW15;
       other admin commands with any fields from the unprivileged callers (Linux refuses those
       commands before the device sees them) and refusable fields from root. */
    for (int i = 0; i < 2048; i++) {
        int caller = next_random() % CALLERS, node = next_random() % NODES, write = next_random() % 2;
        int ioctl = next_random() % IOCTLS;
        uint32_t op = next_random() % 256;
        int admin = ioctl == ADMIN || ioctl == ADMIN64;
        struct kcase c = admin ? admin_case("random", op) : io_case("random", op);
        if (next_random() % 8 == 0) c.flags = next_random() % 256;
        if (next_random() % 8 == 0 && (!admin || caller != ROOT || op == 0x06))
            c.nsid = next_random() % 4 == 0 ? 0xFFFFFFFF : next_random() % 4;
        if (admin && op == 0x06) {
            c.cdw[0] = next_random();
        } else if (admin && caller != ROOT) {
            for (int d = 0; d < 6; d++) c.cdw[d] = next_random();
        } else if (!admin) {
            c.cdw2 = next_random(); c.cdw3 = next_random();
            c.cdw[2] = next_random() % 8;
            for (int d = 3; d < 6; d++) c.cdw[d] = next_random();
        }
        emit(c, caller, node, write, ioctl);
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* reading cases                                                                                */

static int lookup(const char *word, const char *const *names, int count) {
    for (int i = 0; i < count; i++) if (strcmp(word, names[i]) == 0) return i;
    return -1;
}

static struct kcase *read_cases(FILE *file, const char *name, size_t *count) {
    size_t capacity = 32768, n = 0;
    struct kcase *cases = malloc(capacity * sizeof *cases);
    char line[512];
    int number = 0;
    if (!cases) die("out of memory");
    while (fgets(line, sizeof line, file)) {
        number++;
        if (line[0] == '#' || line[0] == '\n') continue;
        if (n == capacity && !(cases = realloc(cases, (capacity *= 2) * sizeof *cases))) die("out of memory");
        struct kcase *c = &cases[n];
        char caller[8], node[8], mode[8], ioctl[8], probe[8];
        int fields = sscanf(line, "%15s %7s %7s %7s %7s %7s %" SCNx32 " %" SCNx32 " %" SCNx32 " %" SCNx32
                            " %" SCNx32 " %" SCNx32 " %" SCNx32 " %" SCNx32 " %" SCNx32 " %" SCNx32 " %" SCNx32
                            " %" SCNx32,
                            c->group, caller, node, mode, ioctl, probe, &c->opcode, &c->flags, &c->nsid,
                            &c->cdw2, &c->cdw3, &c->cdw[0], &c->cdw[1], &c->cdw[2], &c->cdw[3], &c->cdw[4],
                            &c->cdw[5], &c->data_len);
        c->caller = lookup(caller, caller_names, CALLERS);
        c->node = lookup(node, node_names, NODES);
        c->write = lookup(mode, mode_names, 2);
        c->ioctl = lookup(ioctl, ioctl_names, IOCTLS);
        c->probe = strcmp(probe, "probe") == 0;
        if (fields != 18 || c->caller < 0 || c->node < 0 || c->write < 0 || c->ioctl < 0 || c->opcode > 0xFF ||
            c->flags > 0xFF || c->data_len > BUFFER)
            die("%s:%d: not a case line (expected: group caller node mode ioctl probe opcode flags nsid cdw2 "
                "cdw3 cdw10..cdw15 data_len): %s", name, number, line);
        n++;
    }
    *count = n;
    return cases;
}

static struct kcase *read_case_file(const char *path, size_t *count) {
    FILE *file = fopen(path, "r");
    if (!file) die("%s: %s", path, strerror(errno));
    struct kcase *cases = read_cases(file, path, count);
    fclose(file);
    if (*count == 0) die("%s: no cases", path);
    return cases;
}

/* ------------------------------------------------------------------------------------------ */
/* json                                                                                         */

static int json(void) {
    size_t count;
    struct kcase *cases = read_cases(stdin, "standard input", &count);
    for (size_t i = 0; i < count; i++) {
        const struct kcase *c = &cases[i];
        printf("{\"case\":%zu,\"group\":\"%s\",\"ioctl\":\"%s\",\"handle\":{\"kind\":\"%s\",", i + 1, c->group,
               ioctl_names[c->ioctl], node_kinds[c->node]);
        if (c->node != CTRL) printf("\"nsid\":%d,", NSID);
        printf("\"write\":%s},", c->write ? "true" : "false");
        if (c->caller != USER) {   /* root holds every capability; noadmin all but CAP_SYS_ADMIN */
            printf("\"caller\":{\"uid\":0,\"gid\":0,\"caps\":[");
            for (int cap = 0, first = 1; cap <= LAST_CAPABILITY; cap++)
                if (c->caller == ROOT || cap != CAP_SYS_ADMIN) { printf(first ? "%d" : ",%d", cap); first = 0; }
            printf("]},");
        } else {
            printf("\"caller\":{\"uid\":%d,\"gid\":%d,\"caps\":[]},", USER_ID, USER_ID);
        }
        printf("\"cmd\":{\"opcode\":%" PRIu32 ",\"flags\":%" PRIu32 ",\"nsid\":%" PRIu32 ",\"cdw2\":%" PRIu32
               ",\"cdw3\":%" PRIu32, c->opcode, c->flags, c->nsid, c->cdw2, c->cdw3);
        for (int d = 0; d < 6; d++) printf(",\"cdw%d\":%" PRIu32, d + 10, c->cdw[d]);
        printf(",\"data_len\":%" PRIu32 ",\"metadata_len\":0}}\n", c->data_len);
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* run (in the VM)                                                                              */

static uint64_t effective_capabilities(void) {
    FILE *status = fopen("/proc/self/status", "r");
    char line[256];
    uint64_t caps = UINT64_MAX;
    if (!status) die("/proc/self/status: %s", strerror(errno));
    while (fgets(line, sizeof line, status))
        if (sscanf(line, "CapEff: %" SCNx64, &caps) == 1) break;
    fclose(status);
    if (caps == UINT64_MAX) die("/proc/self/status has no CapEff line");
    return caps;
}

/* Clears CAP_SYS_ADMIN from this process's effective capabilities. */
static void drop_sys_admin(void) {
    struct __user_cap_header_struct header = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
    if (syscall(SYS_capget, &header, data) != 0) die("capget: %s", strerror(errno));
    data[0].effective &= ~(1u << CAP_SYS_ADMIN);
    if (syscall(SYS_capset, &header, data) != 0) die("capset: %s", strerror(errno));
}

/* Issues `c` through `fd`: the ioctl's return value, or -errno. */
static long issue(int fd, const struct kcase *c, void *buffer) {
    uint64_t address = c->probe ? PROBE_ADDRESS : (uint64_t)(uintptr_t)buffer;
    int rc;
    memset(buffer, 0, BUFFER);
    if (c->ioctl == ADMIN || c->ioctl == IO) {
        struct nvme_passthru_cmd cmd = {
            .opcode = (uint8_t)c->opcode, .flags = (uint8_t)c->flags, .nsid = c->nsid, .cdw2 = c->cdw2,
            .cdw3 = c->cdw3, .addr = address, .data_len = c->data_len, .cdw10 = c->cdw[0], .cdw11 = c->cdw[1],
            .cdw12 = c->cdw[2], .cdw13 = c->cdw[3], .cdw14 = c->cdw[4], .cdw15 = c->cdw[5]};
        rc = ioctl(fd, c->ioctl == ADMIN ? NVME_IOCTL_ADMIN_CMD : NVME_IOCTL_IO_CMD, &cmd);
    } else {
        struct nvme_passthru_cmd64 cmd = {
            .opcode = (uint8_t)c->opcode, .flags = (uint8_t)c->flags, .nsid = c->nsid, .cdw2 = c->cdw2,
            .cdw3 = c->cdw3, .addr = address, .data_len = c->data_len, .cdw10 = c->cdw[0], .cdw11 = c->cdw[1],
            .cdw12 = c->cdw[2], .cdw13 = c->cdw[3], .cdw14 = c->cdw[4], .cdw15 = c->cdw[5]};
        rc = ioctl(fd, c->ioctl == ADMIN64 ? NVME_IOCTL_ADMIN64_CMD : NVME_IOCTL_IO64_CMD, &cmd);
    }
    return rc >= 0 ? rc : -errno;
}

/* Opens every node both ways, issues `caller`'s cases, closes the nodes. */
static void run_caller(int caller, const struct kcase *cases, size_t count, long *outcomes, void *buffer) {
    int fds[NODES][2];
    for (int node = 0; node < NODES; node++)
        for (int write = 0; write < 2; write++) {
            fds[node][write] = open(node_paths[node], (write ? O_RDWR : O_RDONLY) | O_CLOEXEC);
            if (fds[node][write] < 0)
                die("%s: open %s as uid %d: %s", node_paths[node], write ? "read-write" : "read-only",
                    (int)getuid(), strerror(errno));
        }
    for (size_t i = 0; i < count; i++)
        if (cases[i].caller == caller) outcomes[i] = issue(fds[cases[i].node][cases[i].write], &cases[i], buffer);
    for (int node = 0; node < NODES; node++)
        for (int write = 0; write < 2; write++) close(fds[node][write]);
}

static int run(const char *path) {
    size_t count;
    struct kcase *cases = read_case_file(path, &count);
    long *outcomes = calloc(count, sizeof *outcomes);
    void *buffer;
    if (!outcomes || posix_memalign(&buffer, 4096, BUFFER) != 0) die("out of memory");
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);

    if (getuid() != 0) die("run needs root (it drops to uid %d itself)", USER_ID);
    uint64_t root_caps = effective_capabilities();
    if (root_caps != EVERY_CAPABILITY) die("root holds capabilities %" PRIx64 ", not every one", root_caps);
    run_caller(ROOT, cases, count, outcomes, buffer);
    drop_sys_admin();
    uint64_t noadmin_caps = effective_capabilities();
    if (noadmin_caps != (EVERY_CAPABILITY & ~(1ull << CAP_SYS_ADMIN)))
        die("after dropping CAP_SYS_ADMIN, uid 0 holds capabilities %" PRIx64, noadmin_caps);
    run_caller(NOADMIN, cases, count, outcomes, buffer);
    if (setgroups(0, NULL) != 0 || setgid(USER_ID) != 0 || setuid(USER_ID) != 0)
        die("cannot drop to uid %d: %s", USER_ID, strerror(errno));
    uint64_t user_caps = effective_capabilities();
    if (user_caps != 0) die("uid %d still holds capabilities %" PRIx64, USER_ID, user_caps);
    run_caller(USER, cases, count, outcomes, buffer);

    clock_gettime(CLOCK_MONOTONIC, &end);
    long ms = (end.tv_sec - start.tv_sec) * 1000 + (end.tv_nsec - start.tv_nsec) / 1000000;
    printf("VMKERNEL-CAPS root %" PRIx64 " noadmin %" PRIx64 " user %" PRIx64 "\n", root_caps, noadmin_caps,
           user_caps);
    /* Outcomes: "0", "s<NVMe status, hex>" or "e<errno>", 32 to a line, each line starting with
       the index of its first case (so the host can tell a line went missing). */
    for (size_t i = 0; i < count; i++) {
        if (i % 32 == 0) printf("%sVMKERNEL-OUT %zu", i ? "\n" : "", i);
        if (outcomes[i] == 0) printf(" 0");
        else if (outcomes[i] > 0) printf(" s%lx", outcomes[i]);
        else printf(" e%ld", -outcomes[i]);
    }
    printf("\nVMKERNEL-TIME %zu cases in %ld ms\n", count, ms);
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* compare (on the host)                                                                        */

/* The documented difference: 6.12's NVME_IOCTL_IO_CMD skips the partition rule. */
static const char *partition_reason =
    "Linux 6.12's 72-byte NVME_IOCTL_IO_CMD path hands nvme_cmd_allowed() 0 instead of the partition "
    "flag, so an unprivileged caller reaches the whole namespace through a partition node (the 64-bit "
    "ioctl refuses it); nvmegate keeps the rule's intent on both ioctls (README, \"The kernel policy "
    "and Linux\")";

struct verdict { int allow, errno_value; char reason[48]; char detail[400]; };

/* Reads one `policy check` output line: {"allow":…,"errno":N,"reason":"…","detail":"…"}. */
static int parse_verdict(const char *line, struct verdict *v) {
    const char *errno_at = strstr(line, "\"errno\":"), *reason = strstr(line, "\"reason\":\"");
    const char *detail = strstr(line, "\"detail\":\"");
    if (strncmp(line, "{\"allow\":", 9) != 0 || !errno_at || !reason || !detail) return 0;
    v->allow = strncmp(line + 9, "true", 4) == 0;
    v->errno_value = atoi(errno_at + 8);
    reason += 10;
    size_t n = strcspn(reason, "\"");
    snprintf(v->reason, sizeof v->reason, "%.*s", (int)n, reason);
    detail += 10;
    n = strlen(detail);
    while (n > 0 && (detail[n - 1] == '\n' || detail[n - 1] == '}' || detail[n - 1] == '"')) n--;
    snprintf(v->detail, sizeof v->detail, "%.*s", (int)n, detail);
    return 1;
}

static const char *errno_name(long e) {
    switch (e) {
    case 0: return "passed";
    case EACCES: return "EACCES";
    case EINVAL: return "EINVAL";
    case ENOTTY: return "ENOTTY";
    case EFAULT: return "EFAULT";
    default: return strerror((int)e);
    }
}

/* Thousands separated by commas, in one of a few static buffers. */
static const char *number(size_t n) {
    static char buffers[8][32];
    static int next;
    char *out = buffers[next++ % 8], digits[32];
    int len = snprintf(digits, sizeof digits, "%zu", n), o = 0;
    for (int i = 0; i < len; i++) {
        if (i > 0 && (len - i) % 3 == 0) out[o++] = ',';
        out[o++] = digits[i];
    }
    out[o] = 0;
    return out;
}

static void describe_case(const struct kcase *c, size_t index) {
    printf("    #%zu %s: %s on %s opened %s, %s opcode %02" PRIX32 "h flags %02" PRIX32 "h nsid %" PRIX32
           "h cdw10 %" PRIX32 "h\n",
           index + 1, c->group, caller_descriptions[c->caller], node_paths[c->node],
           c->write ? "read-write" : "read-only", ioctl_requests[c->ioctl], c->opcode, c->flags, c->nsid, c->cdw[0]);
}

static void describe_kernel(const char *token, int probe) {
    if (token[0] == '0') printf("passed to the device (status 0)");
    else if (token[0] == 's') printf("passed to the device (NVMe status %sh)", token + 1);
    else if (probe && atol(token + 1) == EFAULT) printf("passed (EFAULT mapping the probe's buffer)");
    else printf("%s", errno_name(atol(token + 1)));
}

static int compare(const char *cases_path, const char *console_path, const char *verdicts_path) {
    size_t count;
    struct kcase *cases = read_case_file(cases_path, &count);
    char (*tokens)[12] = calloc(count, sizeof *tokens);
    struct verdict *verdicts = calloc(count, sizeof *verdicts);
    if (!tokens || !verdicts) die("out of memory");

    /* The guest's outcomes, from the console. */
    FILE *console = fopen(console_path, "r");
    if (!console) die("%s: %s", console_path, strerror(errno));
    static char line[8192];
    size_t outcomes = 0;
    int capabilities_seen = 0;
    long guest_ms = -1;
    while (fgets(line, sizeof line, console)) {
        char *at;
        if ((at = strstr(line, "VMKERNEL-CAPS "))) {
            uint64_t root, noadmin, user;
            if (sscanf(at, "VMKERNEL-CAPS root %" SCNx64 " noadmin %" SCNx64 " user %" SCNx64, &root, &noadmin,
                       &user) != 3)
                die("%s: unreadable line: %s", console_path, at);
            if (root != EVERY_CAPABILITY || noadmin != (EVERY_CAPABILITY & ~(1ull << CAP_SYS_ADMIN)) || user != 0)
                die("%s: the guest's callers did not hold the capabilities their cases say (CapEff %" PRIx64
                    ", %" PRIx64 " and %" PRIx64 ")", console_path, root, noadmin, user);
            capabilities_seen = 1;
        } else if ((at = strstr(line, "VMKERNEL-TIME "))) {
            sscanf(at, "VMKERNEL-TIME %*u cases in %ld ms", &guest_ms);
        } else if ((at = strstr(line, "VMKERNEL-OUT "))) {
            char *save, *word = strtok_r(at + 13, " \n", &save);
            if (!word || strtoull(word, NULL, 10) != outcomes)
                die("%s: outcome line for case %s where case %zu was next (a console line went missing?)",
                    console_path, word ? word : "?", outcomes);
            while ((word = strtok_r(NULL, " \n", &save))) {
                if (outcomes == count) die("%s: more outcomes than the %zu cases", console_path, count);
                if ((word[0] != '0' || word[1]) && word[0] != 's' && word[0] != 'e')
                    die("%s: unreadable outcome \"%s\" for case %zu", console_path, word, outcomes + 1);
                snprintf(tokens[outcomes++], sizeof *tokens, "%s", word);
            }
        }
    }
    fclose(console);
    if (!capabilities_seen || outcomes != count)
        die("%s: the guest reported %zu outcomes for %zu cases (did the VM run kernel-cases?)", console_path,
            outcomes, count);

    /* nvmegate's verdicts. */
    FILE *file = fopen(verdicts_path, "r");
    if (!file) die("%s: %s", verdicts_path, strerror(errno));
    size_t n = 0;
    while (fgets(line, sizeof line, file)) {
        if (n == count) die("%s: more verdicts than the %zu cases", verdicts_path, count);
        if (!parse_verdict(line, &verdicts[n])) die("%s:%zu: not a policy check verdict: %s", verdicts_path, n + 1, line);
        if (strcmp(verdicts[n].reason, "malformed-input") == 0)
            die("%s:%zu: nvmegate could not read case %zu: %s", verdicts_path, n + 1, n + 1, verdicts[n].detail);
        n++;
    }
    fclose(file);
    if (n != count) die("%s: %zu verdicts for %zu cases", verdicts_path, n, count);

    /* Outcome by outcome: agreed, the documented difference, or not. */
    enum { AGREED, DOCUMENTED, UNDOCUMENTED };
    char *kinds = calloc(count, 1);
    if (!kinds) die("out of memory");
    size_t agree = 0, documented = 0, undocumented = 0, passed = 0, probed = 0, refused[3] = {0};
    for (size_t i = 0; i < count; i++) {
        const struct kcase *c = &cases[i];
        long kernel_errno = tokens[i][0] == 'e' ? atol(tokens[i] + 1) : 0;
        if (c->probe && kernel_errno == EFAULT) { kernel_errno = 0; probed++; }
        else if (kernel_errno == 0) passed++;
        else if (kernel_errno == EACCES) refused[0]++;
        else if (kernel_errno == EINVAL) refused[1]++;
        else if (kernel_errno == ENOTTY) refused[2]++;
        long gate_errno = verdicts[i].allow ? 0 : verdicts[i].errno_value;
        if (kernel_errno == gate_errno) { agree++; continue; }
        int partition_escape = kernel_errno == 0 && gate_errno == EACCES && strcmp(verdicts[i].reason, "partition") == 0 &&
                               c->ioctl == IO && c->node == PART && c->caller != ROOT;
        kinds[i] = partition_escape ? DOCUMENTED : UNDOCUMENTED;
        if (partition_escape) documented++; else undocumented++;
    }
    for (int kind = DOCUMENTED; kind <= UNDOCUMENTED; kind++) {
        if (kind == DOCUMENTED && documented)
            printf("Documented difference, nvmegate refuses where Linux 6.12 lets through: %s.\n", partition_reason);
        if (kind == UNDOCUMENTED && undocumented)
            printf("UNDOCUMENTED differences (find out who is right: the README, Linux's ioctl.c; fix nvmegate's "
                   "kernel policy or document the difference here):\n");
        for (size_t i = 0; i < count; i++) {
            if (kinds[i] != kind) continue;
            describe_case(&cases[i], i);
            printf("      Linux 6.12: ");
            describe_kernel(tokens[i], cases[i].probe);
            printf("; nvmegate: %s [%s] %s\n", verdicts[i].allow ? "allowed" : errno_name(verdicts[i].errno_value),
                   verdicts[i].reason, verdicts[i].detail);
        }
    }
    printf("Linux 6.12 decided %s cases: %s passed to the device, %s passed the decision and were stopped "
           "by the probe's buffer (EFAULT), %s EACCES, %s EINVAL, %s ENOTTY (guest: %ld ms).\n",
           number(count), number(passed), number(probed), number(refused[0]), number(refused[1]),
           number(refused[2]), guest_ms);
    printf("agrees with Linux 6.12 on %s of %s cases; refuses %s partition escapes that 6.12 allows", number(agree),
           number(count), number(documented));
    if (undocumented) printf("; %s UNDOCUMENTED differences", number(undocumented));
    printf("\n");
    if (documented == 0)
        printf("The documented difference is gone (this kernel applies the partition rule to NVME_IOCTL_IO_CMD): "
               "update the README and kernel-cases.c.\n");
    return undocumented == 0 && documented > 0 ? 0 : 1;
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "generate") == 0) return generate();
    if (argc == 2 && strcmp(argv[1], "json") == 0) return json();
    if (argc == 3 && strcmp(argv[1], "run") == 0) return run(argv[2]);
    if (argc == 5 && strcmp(argv[1], "compare") == 0) return compare(argv[2], argv[3], argv[4]);
    fprintf(stderr, "usage: kernel-cases generate > CASES\n"
                    "       kernel-cases json < CASES > JSONL\n"
                    "       kernel-cases run CASES                      (in the VM, as root)\n"
                    "       kernel-cases compare CASES CONSOLE VERDICTS\n");
    return 2;
}
