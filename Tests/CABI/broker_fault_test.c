/*
 * broker_fault_test.c: the broker (`nvmegate serve`) under faults, through the C ABI's
 * "unix:PATH" target, run as root by Tests/IntegrationTests/BrokerLoadTests.swift (clients drop
 * to the uids of Tests/Broker/load-test.toml; broker_clients.h has the callers, the command mix
 * and the checks).
 *
 *   broker_fault_test kill SOCKET POLICY VICTIMS CONNECTIONS HANDLES
 *       4 verifying clients (tenants t0 to t3) send commands and check every reply while VICTIMS
 *       processes, one after another, are killed with SIGKILL at a random moment (0 to 8 ms
 *       after they start) in the middle of: a frame's header, a frame's body, 512 KiB Writes,
 *       512 KiB Reads, a 512 KiB Read whose reply they never take, check_batch rings of many
 *       frames. Each victim first opens HANDLES handles. Afterwards: the verifiers saw no
 *       mismatch and lost nothing; the broker counted every cut frame (wire error "truncated");
 *       nvmegate_connections_open is back to what it was; CONNECTIONS connections of HANDLES
 *       handles each open (the whole gate, for a broker run with --max-connections CONNECTIONS
 *       --max-handles-per-connection HANDLES: a handle or connection left behind by a victim
 *       would make one fail) and one more connection is refused busy; then 3,000 opens and
 *       closes on one connection and 300 connections made and dropped, and the count is back
 *       again.
 *   broker_fault_test reload SOCKET POLICY_FILE BROKER_PID POLICY_A POLICY_B CLIENTS COMMANDS
 *       CLIENTS clients (tenants t0 to t3) send COMMANDS commands each while this process
 *       rewrites POLICY_FILE (the broker's --policy; a new file renamed over it) with POLICY_A's
 *       or POLICY_B's text in turn and sends the broker SIGHUP, every 3 ms. Every outcome must be
 *       the one an in-process gate gives under A or the one it gives under B, both must be seen
 *       on commands where they differ, nothing may be lost, and every reload must succeed.
 *   broker_fault_test write SOCKET GENERATION SYNC_LOG
 *       writes 32 extents of 8 blocks with patterns of GENERATION (1 to 15), reads them back,
 *       Flushes namespace 1 and checks that the broker called fdatasync on the namespace's file
 *       for the Flush: SYNC_LOG is the file Tests/Broker/sync_log.c (preloaded into the broker)
 *       appends a line to per call ("-": not checked); the Writes alone must not have.
 *   broker_fault_test verify SOCKET GENERATIONS
 *       after the broker was restarted: the extents of generations 1 to GENERATIONS read back equal.
 *
 * Each mode prints a summary line and "N passed, M failed", and exits non-zero on a failure or
 * when 300 s pass (alarm; children are killed).
 */
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "broker_clients.h"
/* The broker client's own API (nvmegate_client.h, linked into libNVMeGateABI.so): METRICS. */
#include "../../Sources/CNVMeBrokerClient/include/nvmegate_client.h"

static int passed, failed;

#define CHECK(cond, ...)                                                                        \
    do {                                                                                        \
        if (cond) { passed++; }                                                                 \
        else { failed++; fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } \
    } while (0)

#define MAX_CHILDREN 64
static pid_t children[MAX_CHILDREN];
static int nchildren;
/* The victim of the moment (kill mode). */
static pid_t victim_pid;

static void on_alarm(int signal_number) {
    (void)signal_number;
    static const char message[] = "broker_fault_test: out of time; children killed\n";
    for (int i = 0; i < nchildren; i++) if (children[i] > 0) kill(children[i], SIGKILL);
    if (victim_pid > 0) kill(victim_pid, SIGKILL);
    if (write(2, message, sizeof message - 1) < 0) { /* nothing more to do */ }
    _exit(3);
}

static void pause_ms(double ms) {
    struct timespec t = {(time_t)(ms / 1000), (long)((ms - 1000 * (double)(time_t)(ms / 1000)) * 1e6)};
    while (nanosleep(&t, &t) != 0 && errno == EINTR) { }
}

/* ---- The broker's counters (as root) ------------------------------------------------------- */

/* The value of the sample `series` (name and labels as printed) in the broker's counters; -1 when
 * the broker cannot be asked, 0 when the series is absent. */
static double metric(const char *socket_path, const char *series) {
    nvmegate_client *c = nvmegate_client_connect(socket_path, 0, NULL, 0);
    char *text = c ? nvmegate_client_metrics(c, NULL) : NULL;
    nvmegate_client_destroy(c);
    if (!text) return -1;
    double value = 0;
    size_t n = strlen(series);
    for (char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
        if (strncmp(line, series, n) == 0 && line[n] == ' ') { value = atof(line + n + 1); break; }
    free(text);
    return value;
}

/* nvmegate_connections_open as seen from a connection of its own (which it counts). */
static double connections_open(const char *socket_path) { return metric(socket_path, "nvmegate_connections_open"); }

/* Polls until connections_open is `want` (up to 5 s): the last value seen. */
static double settle_connections(const char *socket_path, double want) {
    double now = -1;
    for (int i = 0; i < 500 && (now = connections_open(socket_path)) != want; i++) pause_ms(10);
    return now;
}

/* ---- Verifying clients ----------------------------------------------------------------------- */

/* What a verifying client reports: its tally, and for each policy the commands (among those on
 * which the policies disagree) whose outcome was that policy's. */
struct verdicts {
    int32_t ok;
    struct tally tally;
    long as_policy[2];
};

/* A client: works out what each of `count` commands gives under `policies` (1 or 2 files) on
 * in-process gates, drops to its role's uid, connects and zeroes its blocks, says it is ready and
 * waits for `go` to close; then sends the commands, over and over when `stop` is given (until it
 * becomes readable), once otherwise; reports on `out`. Runs in a child; returns its exit status. */
static int verifier(int id, enum role role, unsigned slot, const char *target, const char *const *policies, int npolicies,
                    size_t count, int ready, int go, int stop, int out) {
    struct verdicts v;
    memset(&v, 0, sizeof v);
    static struct client c;
    client_init(&c, id, role, slot);
    struct cmd *commands = calloc(count, sizeof *commands);
    struct outcome *expected = calloc(2 * count, sizeof *expected);
    static unsigned char buffer[BUFFER_BYTES];
    char err[256] = "";
    nvmegate *g = NULL;
    int h[HANDLES];
    int ok = commands && expected;
    if (ok) make_commands(&c, (uint64_t)id + 100, commands, count);
    for (int p = 0; p < npolicies && ok; p++) ok = reference_outcomes(policies[p], &c, commands, count, expected + p * count) == 0;
    if (ok && become(role) != 0) { fprintf(stderr, "client %d: cannot become uid %u: %s\n", id, roles[role].uid, strerror(errno)); ok = 0; }
    if (ok && !(g = nvmegate_create(NULL, target, err, sizeof err))) { fprintf(stderr, "client %d: %s\n", id, err); ok = 0; }
    ok = ok && open_handles(g, h, NULL) == 0 && zero_own(g, h, &c) == 0;
    char byte = ok ? 'R' : 'F';
    write_all(ready, &byte, 1);
    while (read(go, &byte, 1) > 0) { }
    for (uint64_t seq = 0; ok; seq++) {
        size_t i = seq % count;
        if (stop >= 0 && i == 0) {
            struct pollfd p = {.fd = stop, .events = POLLIN};
            if (poll(&p, 1, 0) > 0) break;
        } else if (stop < 0 && seq == count) {
            break;
        }
        struct outcome o = run_command(g, h, &c, &commands[i], seq, buffer);
        struct outcome choices[2] = {expected[i], npolicies > 1 ? expected[count + i] : expected[i]};
        int matched = check_command(&c, &v.tally, seq, &commands[i], &o, choices, npolicies, buffer);
        if (matched >= 0 && npolicies > 1 && !same_outcome(&choices[0], &choices[1])) v.as_policy[matched]++;
    }
    v.ok = ok;
    write_all(out, &v, sizeof v);
    nvmegate_destroy(g);
    return ok ? 0 : 1;
}

/* Verifying clients in child processes. */
struct crew {
    int count;
    pid_t pid[MAX_CHILDREN];
    int out[MAX_CHILDREN];
    int go, stop, done_read;
};

/* Starts `n` verifying clients (client i: tenant i % 4, slot i / 4) and waits until each is ready
 * (or failed to set up): the number ready. */
static int start_crew(struct crew *crew, int n, const char *target, const char *const *policies, int npolicies, size_t count,
                      int run_until_stopped) {
    int ready[2], go[2], stop[2];
    if (pipe(ready) || pipe(go) || pipe(stop)) { perror("pipe"); exit(2); }
    crew->count = n;
    for (int i = 0; i < n; i++) {
        int p[2];
        if (pipe(p)) { perror("pipe"); exit(2); }
        pid_t pid = fork();
        if (pid < 0) { perror("fork"); exit(2); }
        if (pid == 0) {
            close(p[0]); close(ready[0]); close(go[1]); close(stop[1]);
            for (int j = 0; j < i; j++) close(crew->out[j]);
            _exit(verifier(i, (enum role)(T0 + i % 4), (unsigned)(i / 4), target, policies, npolicies, count, ready[1], go[0],
                           run_until_stopped ? stop[0] : -1, p[1]));
        }
        close(p[1]);
        crew->out[i] = p[0];
        crew->pid[i] = pid;
        children[nchildren++] = pid;
    }
    close(ready[1]); close(go[0]); close(stop[0]);
    crew->go = go[1];
    crew->stop = stop[1];
    int up = 0;
    for (int i = 0; i < n; i++) {
        char byte;
        if (read_all(ready[0], &byte, 1) == 0 && byte == 'R') up++;
    }
    close(ready[0]);
    return up;
}

/* Collects the crew's reports (stopping it first if it runs until stopped) into `total`: the number
 * of clients that reported. */
static int finish_crew(struct crew *crew, struct verdicts *total) {
    close(crew->stop);
    memset(total, 0, sizeof *total);
    int reported = 0;
    for (int i = 0; i < crew->count; i++) {
        struct verdicts v;
        if (read_all(crew->out[i], &v, sizeof v) == 0 && v.ok) {
            reported++;
            total->tally.done += v.tally.done;
            total->tally.mismatches += v.tally.mismatches;
            total->tally.lost += v.tally.lost;
            total->tally.executed += v.tally.executed;
            total->tally.refused += v.tally.refused;
            total->as_policy[0] += v.as_policy[0];
            total->as_policy[1] += v.as_policy[1];
        }
        close(crew->out[i]);
        int status;
        waitpid(crew->pid[i], &status, 0);
    }
    return reported;
}

/* ---- kill: clients killed mid-request -------------------------------------------------------- */

enum victim_kind { V_HEADER, V_BODY, V_WRITES, V_READS, V_UNREAD_REPLY, V_RINGS, VICTIM_KINDS };
static const char *const victim_names[VICTIM_KINDS] = {
    "a frame's header", "a 512 KiB Write frame's body", "512 KiB Writes", "512 KiB Reads", "a reply never taken",
    "check_batch rings",
};

static void put32(unsigned char *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> 8 * i); }
static void put64(unsigned char *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> 8 * i); }

/* A raw connection to the broker (no HELLO: it is optional), or -1. */
static int raw_connect(const char *socket_path) {
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", socket_path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) return -1;
    return fd;
}

/* An OPEN frame for nvme0n1 read-write (the victim's handle 0 on a raw connection). */
static int raw_open(int fd) {
    unsigned char f[16 + 8 + 7], r[16 + 24];
    put32(f, sizeof f); put32(f + 4, 1 | 2u << 16); put32(f + 8, 1); put32(f + 12, 0);
    put32(f + 16, O_RDWR); put32(f + 20, 7); memcpy(f + 24, "nvme0n1", 7);
    return write_all(fd, f, sizeof f) == 0 && read_all(fd, r, sizeof r) == 0 && r[16] == 0 ? 0 : -1;
}

/* The start of an IOCTL frame: NVME_IOCTL_IO64_CMD on handle 0, `opcode` on 1,024 blocks of the
 * victim's range, `sent` data bytes announced to follow (the frame's length counts them). */
static size_t ioctl_frame(unsigned char *f, unsigned char opcode, uint32_t sent) {
    memset(f, 0, 16 + 32 + 80);
    put32(f, 16 + 32 + 80 + sent); put32(f + 4, 1 | 4u << 16); put32(f + 8, 2);
    unsigned char *b = f + 16;
    put32(b, 0); put64(b + 8, NVME_IOCTL_IO64_CMD); put32(b + 16, 80); put32(b + 20, sent);
    unsigned char *s = b + 32;
    s[0] = opcode; put32(s + 4, 1); put64(s + 24, 0x1000); put32(s + 36, 512 * 1024);
    put32(s + 40, (uint32_t)(4 * TENANT_BLOCKS)); put32(s + 48, 1023);
    return 16 + 32 + 80;
}

/* A victim: connects as the victim tenant, opens `handles` handles, tells the parent it started
 * (a byte on `started`) and does `kind` until killed. */
static void victim(enum victim_kind kind, const char *socket_path, const char *target, int handles, int started) {
    if (become(VICTIM) != 0) _exit(2);
    static unsigned char big[512 * 1024 + 256];
    memset(big, 0x77, sizeof big);
    if (kind == V_HEADER || kind == V_BODY || kind == V_UNREAD_REPLY) {
        int fd = raw_connect(socket_path);
        if (fd < 0 || raw_open(fd) != 0) _exit(2);
        char byte = 'S';
        /* The cut frames are sent before the parent hears of the start, so every kill cuts one. */
        if (kind == V_HEADER) {
            unsigned char f[16 + 32 + 80];
            ioctl_frame(f, 0x01, 512 * 1024);
            write_all(fd, f, 7);
            write_all(started, &byte, 1);
        } else if (kind == V_BODY) {
            size_t n = ioctl_frame(big, 0x01, 512 * 1024);
            write_all(fd, big, n + 200 * 1024); /* 200 of the 512 KiB announced */
            write_all(started, &byte, 1);
        } else {
            unsigned char f[16 + 32 + 80];
            write_all(started, &byte, 1);
            for (;;) write_all(fd, f, ioctl_frame(f, 0x02, 0)); /* Reads, replies never read */
        }
        for (;;) pause();
    }
    char err[256];
    nvmegate *g = nvmegate_create(NULL, target, err, sizeof err);
    if (!g) _exit(2);
    int h = -1;
    for (int i = 0; i < handles; i++) h = nvmegate_open(g, i % 2 ? "ng0n1" : "nvme0n1", O_RDWR, NULL);
    if (h < 0) _exit(2);
    h = 0; /* nvme0n1, read-write */
    char byte = 'S';
    write_all(started, &byte, 1);
    static unsigned char ring[40000 * 64];
    for (size_t i = 0; i < 40000; i++) { ring[64 * i] = i % 3 ? 0x02 : 0x80; ring[64 * i + 4] = 1; }
    static uint8_t verdicts[40000];
    for (uint64_t i = 0;; i++) {
        struct nvme_passthru_cmd64 c = {.opcode = kind == V_WRITES ? 0x01 : 0x02, .nsid = 1, .addr = (uintptr_t)big,
                                        .data_len = 512 * 1024, .cdw10 = (uint32_t)(4 * TENANT_BLOCKS + (i % 64) * 1024),
                                        .cdw12 = 1023};
        if (kind == V_RINGS) nvmegate_check_batch(g, h, NVMEGATE_QUEUE_IO, ring, 40000, verdicts);
        else nvmegate_ioctl(g, h, NVME_IOCTL_IO64_CMD, &c);
    }
}

/* A connection; a busy refusal (EAGAIN: the broker has not yet seen the end of connections just
 * closed) is retried for up to a second. */
static nvmegate *connect_retrying(const char *target) {
    char err[256];
    nvmegate *g = NULL;
    for (int i = 0; i < 100 && !(g = nvmegate_create(NULL, target, err, sizeof err)) && errno == EAGAIN; i++) pause_ms(10);
    if (!g) fprintf(stderr, "connect: %s\n", err);
    return g;
}

static int kill_mode(const char *socket_path, const char *target, const char *policy, int victims, int connections, int handles) {
    double baseline = connections_open(socket_path);
    double truncated_before = metric(socket_path, "nvmegate_wire_errors_total{error=\"truncated\"}");
    CHECK(baseline >= 1, "the broker's counters as root: connections_open %.0f", baseline);

    const char *policies[1] = {policy};
    struct crew crew;
    int up = start_crew(&crew, 4, target, policies, 1, 2000, 1);
    CHECK(up == 4, "4 verifying clients set up (%d)", up);
    close(crew.go);

    uint64_t state = 42;
    int killed[VICTIM_KINDS] = {0}, cut_frames = 0, stillborn = 0;
    for (int v = 0; v < victims && stillborn < 3; v++) {
        enum victim_kind kind = (enum victim_kind)(v % VICTIM_KINDS);
        int started[2];
        if (pipe(started)) { perror("pipe"); return 2; }
        pid_t pid = fork();
        if (pid == 0) { close(started[0]); victim(kind, socket_path, target, handles, started[1]); }
        close(started[1]);
        victim_pid = pid;
        char byte;
        struct pollfd p = {.fd = started[0], .events = POLLIN};
        int began = poll(&p, 1, 10000) == 1 && read(started[0], &byte, 1) == 1;
        close(started[0]);
        CHECK(began, "victim %d (%s) connected and opened %d handles", v, victim_names[kind], handles);
        stillborn += !began; /* after 3, the broker is broken: stop waiting for more */
        pause_ms((double)(next_random(&state) % 8000) / 1000.0 + (kind == V_HEADER || kind == V_BODY ? 1 : 0));
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        victim_pid = 0;
        CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "victim %d ended by SIGKILL (status %d)", v, status);
        killed[kind]++;
        if (kind == V_HEADER || kind == V_BODY) cut_frames++;
    }

    struct verdicts total;
    int reported = finish_crew(&crew, &total);
    CHECK(reported == 4 && total.tally.mismatches == 0 && total.tally.lost == 0 && total.tally.done > 0,
          "while victims died: 4 verifying clients reported %ld commands, %ld mismatches, %ld lost",
          total.tally.done, total.tally.mismatches, total.tally.lost);

    double open_after = settle_connections(socket_path, baseline);
    CHECK(open_after == baseline, "connections_open back to %.0f after the victims (%.0f)", baseline, open_after);
    double truncated = metric(socket_path, "nvmegate_wire_errors_total{error=\"truncated\"}") - truncated_before;
    CHECK(truncated >= cut_frames, "every frame cut by a kill counted as truncated (%.0f, at least %d)", truncated, cut_frames);

    /* The whole gate: CONNECTIONS connections of HANDLES handles each. */
    nvmegate *gates[MAX_CHILDREN] = {0};
    int connected = 0, opened = 0;
    char err[256];
    for (int i = 0; i < connections && i < MAX_CHILDREN; i++) {
        gates[i] = connect_retrying(target);
        if (!gates[i]) continue;
        connected++;
        for (int j = 0; j < handles; j++) opened += nvmegate_open(gates[i], j % 2 ? "nvme0" : "nvme0n1", O_RDWR, NULL) >= 0;
    }
    CHECK(connected == connections && opened == connections * handles,
          "afterwards %d connections and %d handles open, the broker's whole limit (%d, %d): nothing was left behind",
          connected, opened, connections, connections * handles);
    errno = 0;
    nvmegate *extra = nvmegate_create(NULL, target, err, sizeof err);
    CHECK(extra == NULL && errno == EAGAIN, "one connection more is refused busy (EAGAIN): errno %d", errno);
    nvmegate_destroy(extra);
    errno = 0;
    CHECK(gates[0] && nvmegate_open(gates[0], "nvme0", O_RDONLY, NULL) == -1 && errno == EMFILE,
          "one handle more on a full connection: EMFILE (errno %d)", errno);
    for (int i = 0; i < connections && i < MAX_CHILDREN; i++) nvmegate_destroy(gates[i]);
    settle_connections(socket_path, baseline);

    /* Churn: opens and closes on one connection, connections made and dropped. */
    nvmegate *g = connect_retrying(target);
    int churned = 0;
    for (int i = 0; g && i < 3000; i++) {
        int h = nvmegate_open(g, "nvme0n1", O_RDWR, NULL);
        churned += h == 0 && nvmegate_close(g, h) == 0;
    }
    CHECK(churned == 3000, "3000 opens and closes on one connection, each getting handle 0 back (%d)", churned);
    int reconnected = 0;
    for (int i = 0; i < 300; i++) {
        nvmegate *c = connect_retrying(target);
        int h = c ? nvmegate_open(c, "nvme0", O_RDONLY, NULL) : -1;
        unsigned char id[4096];
        struct nvme_passthru_cmd cmd = {.opcode = 0x06, .cdw10 = 1, .addr = (uintptr_t)id, .data_len = sizeof id};
        reconnected += h == 0 && nvmegate_ioctl(c, h, NVME_IOCTL_ADMIN_CMD, &cmd) == 0 && memcmp(id + 24, "nvmegate emulated", 17) == 0;
        nvmegate_destroy(c);
    }
    CHECK(reconnected == 300, "300 connections made, an Identify on each, and dropped (%d)", reconnected);
    nvmegate_destroy(g);
    double open_end = settle_connections(socket_path, baseline);
    CHECK(open_end == baseline, "connections_open back to %.0f at the end (%.0f)", baseline, open_end);

    int all_killed = 0;
    for (int k = 0; k < VICTIM_KINDS; k++) all_killed += killed[k];
    printf("broker-kill: %d victims killed with SIGKILL mid-request (", all_killed);
    for (int k = 0; k < VICTIM_KINDS; k++) printf("%s%d in %s", k ? ", " : "", killed[k], victim_names[k]);
    printf("); %.0f cut frames counted truncated; 4 verifying clients: %ld commands, %ld mismatches, %ld lost; "
           "connections_open %.0f before, %.0f after; then %d connections with %d handles open of the broker's %d x %d, "
           "%d of 3000 open/close, %d of 300 connections\n",
           truncated, total.tally.done, total.tally.mismatches, total.tally.lost, baseline, open_after, connected, opened,
           connections, handles, churned, reconnected);
    return 0;
}

/* ---- reload: SIGHUP under load ----------------------------------------------------------------- */

static char *slurp(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    static char text[2][65536];
    static int which;
    char *t = text[which++ % 2];
    size_t n = fread(t, 1, sizeof text[0] - 1, f);
    t[n] = 0;
    fclose(f);
    return t;
}

/* Puts `text` in place of `path` whole: a new file renamed over it. */
static int replace_file(const char *path, const char *text) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.new", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return -1;
    int ok = fputs(text, f) >= 0;
    ok = fclose(f) == 0 && ok;
    return ok && rename(tmp, path) == 0 ? 0 : -1;
}

static int reload_mode(const char *socket_path, const char *target, const char *policy_file, pid_t broker,
                       const char *policy_a, const char *policy_b, int clients, size_t count) {
    char *text[2] = {slurp(policy_a), slurp(policy_b)};
    CHECK(text[0] && text[1], "read %s and %s", policy_a, policy_b);
    if (!text[0] || !text[1]) return 1;
    double ok_before = metric(socket_path, "nvmegate_policy_reloads_total{result=\"ok\"}");
    double failed_before = metric(socket_path, "nvmegate_policy_reloads_total{result=\"failed\"}");

    const char *policies[2] = {policy_a, policy_b};
    struct crew crew;
    int up = start_crew(&crew, clients, target, policies, 2, count, 0);
    CHECK(up == clients, "%d clients set up under A (%d)", clients, up);
    close(crew.go);

    /* Reload until every client has reported (its pipe readable). */
    int reloads = 0;
    for (int finished = 0; finished < clients;) {
        CHECK(replace_file(policy_file, text[(reloads + 1) % 2]) == 0, "rewrite %s", policy_file);
        CHECK(kill(broker, SIGHUP) == 0, "SIGHUP to the broker (pid %d)", (int)broker);
        reloads++;
        pause_ms(3);
        finished = 0;
        for (int i = 0; i < clients; i++) {
            struct pollfd p = {.fd = crew.out[i], .events = POLLIN};
            finished += poll(&p, 1, 0) == 1;
        }
    }
    struct verdicts total;
    int reported = finish_crew(&crew, &total);
    CHECK(reported == clients && total.tally.done == (long)clients * (long)count, "%d of %d clients reported all %ld commands",
          reported, clients, (long)clients * (long)count);
    CHECK(total.tally.mismatches == 0 && total.tally.lost == 0,
          "every outcome was A's or B's: %ld mismatches, %ld lost", total.tally.mismatches, total.tally.lost);
    CHECK(total.as_policy[0] > 0 && total.as_policy[1] > 0,
          "both policies' verdicts seen where they differ (A %ld, B %ld)", total.as_policy[0], total.as_policy[1]);
    pause_ms(100); /* the last SIGHUP's reload */
    double ok = metric(socket_path, "nvmegate_policy_reloads_total{result=\"ok\"}") - ok_before;
    double bad = metric(socket_path, "nvmegate_policy_reloads_total{result=\"failed\"}") - failed_before;
    CHECK(ok >= 2 && bad == 0, "reloads counted by the broker: %.0f ok, %.0f failed", ok, bad);
    printf("broker-reload: %d SIGHUPs (%.0f reloads counted, %.0f failed) while %d clients sent %ld commands: A's outcome on %ld "
           "and B's on %ld of the commands they disagree on, mismatches %ld, lost %ld\n",
           reloads, ok, bad, clients, total.tally.done, total.as_policy[0], total.as_policy[1], total.tally.mismatches, total.tally.lost);
    return 0;
}

/* ---- write / verify: a restart of a file-backed broker ------------------------------------------ */

#define EXTENTS 32
#define EXTENT_BLOCKS 8

static uint64_t extent_lba(int generation, int k) { return 4096ull * (uint64_t)generation + 16ull * (uint64_t)k; }

/* Fsyncs and fdatasyncs of the namespace's file that the broker made, as sync_log.c wrote them down. */
static long namespace_syncs(const char *log) {
    FILE *f = fopen(log, "r");
    if (!f) return 0;
    long n = 0;
    char line[4096];
    while (fgets(line, sizeof line, f)) n += strstr(line, " ns-1.img") != NULL;
    fclose(f);
    return n;
}

static nvmegate *open_namespace(const char *target, int *h) {
    char err[256];
    nvmegate *g = nvmegate_create(NULL, target, err, sizeof err);
    *h = g ? nvmegate_open(g, "nvme0n1", O_RDWR, NULL) : -1;
    CHECK(g && *h >= 0, "connect and open nvme0n1: %s", g ? strerror(errno) : err);
    return g;
}

static int io(nvmegate *g, int h, unsigned char opcode, uint64_t lba, unsigned char *data, unsigned blocks) {
    struct nvme_passthru_cmd64 c = {.opcode = opcode, .nsid = 1, .addr = (uintptr_t)data, .data_len = blocks * BLOCK,
                                    .cdw10 = (uint32_t)lba, .cdw11 = (uint32_t)(lba >> 32), .cdw12 = blocks ? blocks - 1 : 0};
    if (!blocks) c.addr = 0;
    return nvmegate_ioctl(g, h, NVME_IOCTL_IO64_CMD, &c);
}

static void extent(unsigned char *data, int generation, int k) {
    for (unsigned b = 0; b < EXTENT_BLOCKS; b++)
        pattern(data + b * BLOCK, NOBODY, generation, (uint64_t)k, extent_lba(generation, k) + b);
}

static int write_mode(const char *target, int generation, const char *sync_log) {
    int h;
    nvmegate *g = open_namespace(target, &h);
    if (!g || h < 0) return 1;
    static unsigned char data[EXTENT_BLOCKS * BLOCK], back[EXTENT_BLOCKS * BLOCK];
    int written = 0, equal = 0;
    for (int k = 0; k < EXTENTS; k++) {
        extent(data, generation, k);
        written += io(g, h, 0x01, extent_lba(generation, k), data, EXTENT_BLOCKS) == 0;
        equal += io(g, h, 0x02, extent_lba(generation, k), back, EXTENT_BLOCKS) == 0 && memcmp(data, back, sizeof data) == 0;
    }
    CHECK(written == EXTENTS && equal == EXTENTS, "generation %d: %d extents written, %d read back equal", generation, written, equal);
    int check_syncs = strcmp(sync_log, "-") != 0;
    long before = namespace_syncs(sync_log);
    int flushed = io(g, h, 0x00, 0, NULL, 0);
    long after = namespace_syncs(sync_log);
    CHECK(flushed == 0, "Flush: %d", flushed);
    if (check_syncs) CHECK(after > before, "the Flush made the broker fdatasync ns-1.img before it replied (%ld calls before, %ld after)", before, after);
    printf("written: generation %d, %d extents of %d blocks, flushed (ns-1.img syncs %ld before the Flush, %ld after)\n",
           generation, written, EXTENT_BLOCKS, before, after);
    nvmegate_destroy(g);
    return 0;
}

static int verify_mode(const char *target, int generations) {
    int h;
    nvmegate *g = open_namespace(target, &h);
    if (!g || h < 0) return 1;
    static unsigned char data[EXTENT_BLOCKS * BLOCK], back[EXTENT_BLOCKS * BLOCK];
    int equal = 0;
    for (int generation = 1; generation <= generations; generation++)
        for (int k = 0; k < EXTENTS; k++) {
            extent(data, generation, k);
            memset(back, 0xEE, sizeof back);
            equal += io(g, h, 0x02, extent_lba(generation, k), back, EXTENT_BLOCKS) == 0 && memcmp(data, back, sizeof data) == 0;
        }
    CHECK(equal == EXTENTS * generations, "after the restart, generations 1 to %d: %d of %d extents read back equal",
          generations, equal, EXTENTS * generations);
    printf("verified: generations 1 to %d, %d of %d extents equal\n", generations, equal, EXTENTS * generations);
    nvmegate_destroy(g);
    return 0;
}

int main(int argc, char **argv) {
    const char *mode = argc > 2 ? argv[1] : "";
    int usage = !((strcmp(mode, "kill") == 0 && argc == 7) || (strcmp(mode, "reload") == 0 && argc == 9)
                  || (strcmp(mode, "write") == 0 && argc == 5) || (strcmp(mode, "verify") == 0 && argc == 4));
    if (usage) {
        fprintf(stderr, "usage: broker_fault_test kill SOCKET POLICY VICTIMS CONNECTIONS HANDLES\n"
                        "       broker_fault_test reload SOCKET POLICY_FILE BROKER_PID POLICY_A POLICY_B CLIENTS COMMANDS\n"
                        "       broker_fault_test write SOCKET GENERATION SYNC_LOG\n"
                        "       broker_fault_test verify SOCKET GENERATIONS\n");
        return 2;
    }
    if (geteuid() != 0) { fprintf(stderr, "broker_fault_test: run it as root (clients drop to uids of their own)\n"); return 2; }
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGALRM, on_alarm);
    alarm(300);
    char target[200];
    snprintf(target, sizeof target, "unix:%s", argv[2]);
    int r;
    if (strcmp(mode, "kill") == 0) {
        int connections = atoi(argv[5]);
        if (connections > MAX_CHILDREN) { fprintf(stderr, "at most %d connections\n", MAX_CHILDREN); return 2; }
        r = kill_mode(argv[2], target, argv[3], atoi(argv[4]), connections, atoi(argv[6]));
    } else if (strcmp(mode, "reload") == 0) {
        int clients = atoi(argv[7]);
        if (clients < 1 || clients > MAX_CHILDREN - 1) { fprintf(stderr, "1 to %d clients\n", MAX_CHILDREN - 1); return 2; }
        r = reload_mode(argv[2], target, argv[3], (pid_t)atoi(argv[4]), argv[5], argv[6], clients, (size_t)atol(argv[8]));
    } else if (strcmp(mode, "write") == 0) {
        r = write_mode(target, atoi(argv[3]), argv[4]);
    } else {
        r = verify_mode(target, atoi(argv[3]));
    }
    printf("%d passed, %d failed\n", passed, failed);
    return r != 0 || failed != 0;
}
