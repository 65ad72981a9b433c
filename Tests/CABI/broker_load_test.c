/*
 * broker_load_test.c: the broker (`nvmegate serve --policy Tests/Broker/load-test.toml --target
 * emulated`) under load, through the C ABI's "unix:PATH" target. Run as root: each client
 * process drops to its own uid (broker_clients.h has the callers, the command mix and the checks).
 *
 *   broker_load_test load SOCKET POLICY CLIENTS COMMANDS [SECONDS]
 *       forks CLIENTS processes; client i is role i % 6 (tenants t0 to t3, each client on its
 *       own 1,024 blocks of its tenant's range; the monitoring tenant; a caller matching no
 *       tenant). Each works out, on an in-process gate under POLICY with its uid, what each of its
 *       COMMANDS commands must give, then drops to its uid, connects, opens nvme0, nvme0n1 and
 *       ng0n1, and waits; all start together and send their commands one at a time, timing each
 *       (CLOCK_MONOTONIC) and checking each reply. Prints one line:
 *         broker-load: clients N, commands N, elapsed S, N commands/s, p50 .. p99 .. p99.9 ..
 *         max .. us, mismatches N, lost N
 *       and one with the executed and refused counts.
 *   broker_load_test hop SOCKET POLICY COMMANDS [SECONDS]
 *       one client (tenant t0) sends the same commands through the broker and through an
 *       in-process gate (nvmegate_create(POLICY, "emulated")) in the same process, alternating
 *       blocks of 100, both checked; prints both p50s and their ratio: what the socket hop costs.
 *
 * Lost: a command that got no reply (EIO or EPROTO from the client), or every command of a client
 * process that died or never reported. Exits non-zero on any mismatch, any loss, or when SECONDS
 * (default 600) pass first (alarm; the children are killed).
 */
#include <sys/wait.h>

#include "broker_clients.h"

#define MAX_CLIENTS 256

static pid_t children[MAX_CLIENTS];
static int nchildren;

static void on_alarm(int signal_number) {
    (void)signal_number;
    static const char message[] = "broker_load_test: out of time; clients killed\n";
    for (int i = 0; i < nchildren; i++) if (children[i] > 0) kill(children[i], SIGKILL);
    if (write(2, message, sizeof message - 1) < 0) { /* nothing more to do */ }
    _exit(3);
}

/* What a client process sends its parent when it is done; `count` latencies (ns) follow. */
struct report {
    int32_t client, ok;
    struct tally tally;
    int64_t start_ns, end_ns, count;
};

/* One client process of the load: 0, or 1 when it could not set up (the report says so). */
static int load_client(int id, const char *target, const char *policy, size_t count, int ready, int go, int out) {
    struct report r;
    memset(&r, 0, sizeof r);
    r.client = id;
    static struct client c;
    client_init(&c, id, (enum role)(id % LOAD_ROLES), (unsigned)(id / LOAD_ROLES));
    struct cmd *commands = calloc(count, sizeof *commands);
    struct outcome *expected = calloc(count, sizeof *expected);
    int64_t *latency = calloc(count, sizeof *latency);
    static unsigned char buffer[BUFFER_BYTES];
    char err[256] = "";
    nvmegate *g = NULL;
    int h[HANDLES];
    int ok = commands && expected && latency;
    if (ok) make_commands(&c, (uint64_t)id + 1, commands, count);
    ok = ok && reference_outcomes(policy, &c, commands, count, expected) == 0;
    if (ok && become(c.role) != 0) { fprintf(stderr, "client %d: cannot become uid %u: %s\n", id, roles[c.role].uid, strerror(errno)); ok = 0; }
    if (ok && !(g = nvmegate_create(NULL, target, err, sizeof err))) { fprintf(stderr, "client %d: %s\n", id, err); ok = 0; }
    ok = ok && open_handles(g, h, NULL) == 0 && zero_own(g, h, &c) == 0;
    char byte = ok ? 'R' : 'F';
    write_all(ready, &byte, 1);
    while (read(go, &byte, 1) > 0) { /* the parent closes it: go */ }
    if (ok) {
        r.start_ns = now_ns();
        for (size_t s = 0; s < count; s++) {
            int64_t t0 = now_ns();
            struct outcome o = run_command(g, h, &c, &commands[s], s, buffer);
            latency[s] = now_ns() - t0;
            check_command(&c, &r.tally, s, &commands[s], &o, &expected[s], 1, buffer);
        }
        r.end_ns = now_ns();
        r.count = (int64_t)count;
    }
    r.ok = ok;
    int sent = write_all(out, &r, sizeof r) == 0 && write_all(out, latency, (size_t)r.count * sizeof *latency) == 0;
    nvmegate_destroy(g);
    return ok && sent ? 0 : 1;
}

static int load(const char *target, const char *policy, int clients, size_t count) {
    int ready[2], go[2], out[MAX_CLIENTS];
    if (pipe(ready) || pipe(go)) { perror("pipe"); return 2; }
    for (int i = 0; i < clients; i++) {
        int p[2];
        if (pipe(p)) { perror("pipe"); return 2; }
        pid_t pid = fork();
        if (pid < 0) { perror("fork"); return 2; }
        if (pid == 0) {
            close(p[0]);
            close(ready[0]);
            close(go[1]);
            for (int j = 0; j < i; j++) close(out[j]);
            _exit(load_client(i, target, policy, count, ready[1], go[0], p[1]));
        }
        close(p[1]);
        out[i] = p[0];
        children[nchildren++] = pid;
    }
    close(ready[1]);
    close(go[0]);
    int set_up = 0;
    for (int i = 0; i < clients; i++) {
        char byte;
        if (read_all(ready[0], &byte, 1) == 0 && byte == 'R') set_up++;
    }
    int64_t started = now_ns();
    close(go[1]);

    int64_t *all = calloc((size_t)clients * count, sizeof *all);
    size_t n = 0;
    struct tally total = {0, 0, 0, 0, 0};
    int64_t last_end = started;
    int failed[MAX_CLIENTS] = {0};
    for (int i = 0; i < clients; i++) {
        struct report r;
        if (read_all(out[i], &r, sizeof r) != 0 || !r.ok || r.count != (int64_t)count
            || read_all(out[i], all + n, count * sizeof *all) != 0) {
            fprintf(stderr, "FAIL client %d: no complete report (not set up, or died): its %zu commands count as lost\n", i, count);
            total.lost += (long)count;
            failed[i] = 1;
            continue;
        }
        n += count;
        total.done += r.tally.done;
        total.mismatches += r.tally.mismatches;
        total.lost += r.tally.lost;
        total.executed += r.tally.executed;
        total.refused += r.tally.refused;
        if (r.end_ns > last_end) last_end = r.end_ns;
        close(out[i]);
    }
    int failed_clients = 0;
    for (int i = 0; i < nchildren; i++) {
        int status;
        waitpid(children[i], &status, 0);
        children[i] = 0;
        failed_clients += failed[i] || !WIFEXITED(status) || WEXITSTATUS(status) != 0;
    }
    qsort(all, n, sizeof *all, compare_i64);
    double elapsed = (double)(last_end - started) / 1e9;
    printf("broker-load: clients %d, commands %ld, elapsed %.2f s, %.0f commands/s, p50 %.1f us, p99 %.1f us, "
           "p99.9 %.1f us, max %.1f us, mismatches %ld, lost %ld\n",
           clients, total.done, elapsed, elapsed > 0 ? (double)total.done / elapsed : 0.0,
           (double)quantile(all, n, 0.50) / 1e3, (double)quantile(all, n, 0.99) / 1e3, (double)quantile(all, n, 0.999) / 1e3,
           n ? (double)all[n - 1] / 1e3 : 0.0, total.mismatches, total.lost);
    printf("broker-load: %d of %d clients set up and reported; executed %ld, refused %ld (EACCES)\n",
           clients - failed_clients, clients, total.executed, total.refused);
    free(all);
    int good = set_up == clients && failed_clients == 0 && total.mismatches == 0 && total.lost == 0
               && total.done == (long)clients * (long)count && total.executed > 0 && total.refused > 0;
    return good ? 0 : 1;
}

/* ---- The socket hop: one client, the broker against an in-process gate ------------------- */

#define HOP_BLOCK 100

static int hop(const char *target, const char *policy, size_t count) {
    static struct client through_broker, in_process;
    client_init(&through_broker, 0, T0, 0);
    struct cmd *commands = calloc(count, sizeof *commands);
    struct outcome *expected = calloc(count, sizeof *expected);
    int64_t *broker_ns = calloc(count, sizeof *broker_ns), *local_ns = calloc(count, sizeof *local_ns);
    int64_t *broker_read = calloc(count, sizeof *broker_read), *local_read = calloc(count, sizeof *local_read);
    if (!commands || !expected || !broker_ns || !local_ns || !broker_read || !local_read) { perror("calloc"); return 2; }
    make_commands(&through_broker, 1, commands, count);
    if (reference_outcomes(policy, &through_broker, commands, count, expected) != 0) return 2;
    in_process = through_broker;

    char err[512] = "";
    nvmegate_caller who = caller_of(T0);
    nvmegate *local = nvmegate_create(policy, "emulated", err, sizeof err);
    int lh[HANDLES], bh[HANDLES];
    if (!local || open_handles(local, lh, &who) != 0) { fprintf(stderr, "in-process gate: %s\n", err); return 2; }
    if (become(T0) != 0) { fprintf(stderr, "cannot become uid %u: %s\n", roles[T0].uid, strerror(errno)); return 2; }
    nvmegate *broker = nvmegate_create(NULL, target, err, sizeof err);
    if (!broker || open_handles(broker, bh, NULL) != 0 || zero_own(broker, bh, &through_broker) != 0) {
        fprintf(stderr, "broker: %s\n", err);
        return 2;
    }

    static unsigned char buffer[BUFFER_BYTES];
    struct tally bt = {0, 0, 0, 0, 0}, lt = {0, 0, 0, 0, 0};
    size_t broker_reads = 0, local_reads = 0;
    for (size_t first = 0; first < count; first += HOP_BLOCK) {
        size_t end = first + HOP_BLOCK < count ? first + HOP_BLOCK : count;
        for (int side = 0; side < 2; side++) {
            nvmegate *g = side == 0 ? broker : local;
            int *h = side == 0 ? bh : lh;
            struct client *c = side == 0 ? &through_broker : &in_process;
            for (size_t s = first; s < end; s++) {
                int64_t t0 = now_ns();
                struct outcome o = run_command(g, h, c, &commands[s], s, buffer);
                int64_t ns = now_ns() - t0;
                check_command(c, side == 0 ? &bt : &lt, s, &commands[s], &o, &expected[s], 1, buffer);
                (side == 0 ? broker_ns : local_ns)[s] = ns;
                if (commands[s].kind == K_READ && commands[s].blocks == 8) {
                    if (side == 0) broker_read[broker_reads++] = ns; else local_read[local_reads++] = ns;
                }
            }
        }
    }
    qsort(broker_ns, count, sizeof *broker_ns, compare_i64);
    qsort(local_ns, count, sizeof *local_ns, compare_i64);
    qsort(broker_read, broker_reads, sizeof *broker_read, compare_i64);
    qsort(local_read, local_reads, sizeof *local_read, compare_i64);
    double bp50 = (double)quantile(broker_ns, count, 0.5) / 1e3, lp50 = (double)quantile(local_ns, count, 0.5) / 1e3;
    double brp50 = (double)quantile(broker_read, broker_reads, 0.5) / 1e3, lrp50 = (double)quantile(local_read, local_reads, 0.5) / 1e3;
    printf("broker-hop: 1 client, %zu commands each way in alternating blocks of %d: broker p50 %.1f us, in-process p50 %.1f us, "
           "ratio %.2fx (+%.1f us a command); 4 KiB Read p50 %.1f us vs %.1f us (%.2fx); mismatches %ld, lost %ld\n",
           count, HOP_BLOCK, bp50, lp50, lp50 > 0 ? bp50 / lp50 : 0.0, bp50 - lp50, brp50, lrp50, lrp50 > 0 ? brp50 / lrp50 : 0.0,
           bt.mismatches + lt.mismatches, bt.lost + lt.lost);
    nvmegate_destroy(broker);
    nvmegate_destroy(local);
    free(commands); free(expected); free(broker_ns); free(local_ns); free(broker_read); free(local_read);
    return bt.mismatches + lt.mismatches + bt.lost + lt.lost == 0 && bt.done == (long)count && lt.done == (long)count ? 0 : 1;
}

int main(int argc, char **argv) {
    int is_load = argc >= 6 && strcmp(argv[1], "load") == 0, is_hop = argc >= 5 && strcmp(argv[1], "hop") == 0;
    if (!is_load && !is_hop) {
        fprintf(stderr, "usage: broker_load_test load SOCKET POLICY CLIENTS COMMANDS [SECONDS]\n"
                        "       broker_load_test hop SOCKET POLICY COMMANDS [SECONDS]\n");
        return 2;
    }
    if (geteuid() != 0) { fprintf(stderr, "broker_load_test: run it as root (each client drops to a uid of its own)\n"); return 2; }
    char target[200];
    snprintf(target, sizeof target, "unix:%s", argv[2]);
    const char *seconds = argv[is_load ? 6 : 5];
    signal(SIGALRM, on_alarm);
    alarm(seconds ? (unsigned)atoi(seconds) : 600);
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (is_hop) return hop(target, argv[3], (size_t)atol(argv[4]));
    int clients = atoi(argv[4]);
    long count = atol(argv[5]);
    if (clients < 1 || clients > MAX_CLIENTS || count < 1 || count > 1000000) { fprintf(stderr, "1 to %d clients, 1 to 1000000 commands\n", MAX_CLIENTS); return 2; }
    return load(target, argv[3], clients, (size_t)count);
}
