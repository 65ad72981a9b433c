/* Tests/VM/direct-bench.c: the reference for the gate's overhead on the real ioctl path. It sends
 * the commands that `nvmegate bench DEVICE --rw randread|randwrite --bs B --iodepth 1 --numjobs 1
 * --number-ios N --offset O --size S --randseed R` sends through the gate, straight to the kernel:
 *
 *   direct-bench DEVICE --rw randread|randwrite --number-ios N [--bs B] [--offset O] [--size S]
 *                [--randseed R]
 *
 * The same command, built the same way: one struct nvme_passthru_cmd64 (NSID, buffer, length and
 * NLB set once; opcode and SLBA per command) sent with ioctl(NVME_IOCTL_IO64_CMD), which is all
 * libnvme's nvme_submit_io_passthru64 does for nvmegate's Linux backend. The same offsets: unit
 * = SplitMix64(seed) % units, as nvmegate's job 0 draws them, so both visit the same blocks in
 * the same order. The same data for writes (nvmegate's fill for job 0, slot 0), the same timing
 * (CLOCK_MONOTONIC around each ioctl, elapsed from the first command to the last completion).
 *
 * Prints one line: rw=… bs=… first_lba=… region_bytes=… ios=… completed=… refused=… errors=…
 * elapsed_ns=… iops=… lat_mean_ns=… lat_p50_ns=…, the names of `nvmegate bench -o json`
 * (refused: the ioctl failed with an errno; errors: the controller returned an NVMe status;
 * latencies of completed commands, the median as HdrHistogram picks it: the ceil(n/2)-th), and
 * when any command failed, failures=errno12:1,status4080h:2 (each errno and status, counted). Exits 2 when it cannot
 * start (arguments, device, Identify), 0 otherwise: the caller judges the counts.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/nvme_ioctl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_SEED 0x6E766D65ull   /* nvmegate bench's --randseed default */

static void die(const char *format, ...) {
    va_list args;
    va_start(args, format);
    fprintf(stderr, "direct-bench: ");
    vfprintf(stderr, format, args);
    fprintf(stderr, "\n");
    va_end(args);
    exit(2);
}

/* A size as nvmegate bench takes it: bytes, or with k, m, g, t (1024-based), "b" or "ib" after. */
static uint64_t parse_size(const char *flag, const char *text) {
    char *end;
    errno = 0;
    unsigned long long value = strtoull(text, &end, 10);
    if (errno || end == text || text[0] == '-') die("%s %s: not a size", flag, text);
    unsigned shift = 0;
    switch (*end) {
    case 'k': case 'K': shift = 10; end++; break;
    case 'm': case 'M': shift = 20; end++; break;
    case 'g': case 'G': shift = 30; end++; break;
    case 't': case 'T': shift = 40; end++; break;
    }
    if (shift && (strcmp(end, "b") == 0 || strcmp(end, "B") == 0 || strcmp(end, "ib") == 0 || strcmp(end, "iB") == 0))
        end += strlen(end);
    if (*end || (shift && value > (UINT64_MAX >> shift))) die("%s %s: not a size", flag, text);
    return (uint64_t)value << shift;
}

static uint64_t parse_number(const char *flag, const char *text) {
    char *end;
    errno = 0;
    unsigned long long value = strtoull(text, &end, 0);
    if (errno || end == text || *end || text[0] == '-') die("%s %s: not a number", flag, text);
    return value;
}

/* nvmegate's SplitMix64 (Sources/nvmegate/Bench/BenchJob.swift). */
static uint64_t splitmix64(uint64_t *state) {
    *state += 0x9E3779B97F4A7C15ull;
    uint64_t z = *state;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* The distinct errnos (negative) and NVMe statuses (positive) commands failed with, counted. */
#define FAILURE_KINDS 8
static struct { int code; uint64_t count; } failures[FAILURE_KINDS];
static uint64_t other_failures;

static void count_failure(int code) {
    for (int i = 0; i < FAILURE_KINDS; i++) {
        if (failures[i].count && failures[i].code != code) continue;
        failures[i].code = code;
        failures[i].count++;
        return;
    }
    other_failures++;
}

static int compare_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

int main(int argc, char **argv) {
    const char *device = NULL, *rw = NULL;
    uint64_t bs = 4096, offset = 0, size = 0, number = 0, seed = DEFAULT_SEED;
    int have_size = 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (arg[0] != '-') {
            if (device) die("one device, not %s and %s", device, arg);
            device = arg;
            continue;
        }
        if (i + 1 == argc) die("%s needs a value", arg);
        const char *value = argv[++i];
        if (strcmp(arg, "--rw") == 0) rw = value;
        else if (strcmp(arg, "--bs") == 0) bs = parse_size(arg, value);
        else if (strcmp(arg, "--offset") == 0) offset = parse_size(arg, value);
        else if (strcmp(arg, "--size") == 0) { size = parse_size(arg, value); have_size = 1; }
        else if (strcmp(arg, "--number-ios") == 0) number = parse_number(arg, value);
        else if (strcmp(arg, "--randseed") == 0) seed = parse_number(arg, value);
        else die("unknown option %s (usage: direct-bench DEVICE --rw randread|randwrite --number-ios N "
                 "[--bs B] [--offset O] [--size S] [--randseed R])", arg);
    }
    if (!device || !rw || number == 0)
        die("usage: direct-bench DEVICE --rw randread|randwrite --number-ios N [--bs B] [--offset O] [--size S] "
            "[--randseed R]");
    int reads;
    if (strcmp(rw, "randread") == 0) reads = 1;
    else if (strcmp(rw, "randwrite") == 0) reads = 0;
    else die("--rw %s: only randread and randwrite", rw);

    int fd = open(device, (reads ? O_RDONLY : O_RDWR) | O_CLOEXEC);
    if (fd < 0) die("%s: %s", device, strerror(errno));
    int nsid = ioctl(fd, NVME_IOCTL_ID);
    if (nsid <= 0) die("%s: NVME_IOCTL_ID: %s", device, nsid < 0 ? strerror(errno) : "no namespace");

    /* Identify Namespace: size (NSZE) and the LBA format in use (FLBAS, LBAF[n].LBADS). */
    static uint8_t id[4096] __attribute__((aligned(4096)));
    struct nvme_passthru_cmd64 identify = {.opcode = 0x06, .nsid = (uint32_t)nsid, .addr = (uint64_t)(uintptr_t)id,
                                           .data_len = sizeof id, .cdw10 = 0x00};
    int rc = ioctl(fd, NVME_IOCTL_ADMIN64_CMD, &identify);
    if (rc != 0)
        die("%s: Identify Namespace %d: %s", device, nsid, rc < 0 ? strerror(errno) : "NVMe error status");
    uint64_t blocks;
    memcpy(&blocks, id, sizeof blocks);
    unsigned format = (id[26] & 0x0F) | ((id[26] >> 5 & 0x03) << 4);
    unsigned lbads = id[128 + 4 * format + 2];
    if (lbads < 9 || lbads > 16) die("%s: Identify Namespace: LBA format %u has LBADS %u", device, format, lbads);
    uint64_t lba = 1ull << lbads;

    /* The region, checked as nvmegate bench checks it. */
    if (bs == 0 || bs % lba) die("--bs %" PRIu64 ": not a multiple of the %" PRIu64 "-byte logical block", bs, lba);
    if (bs / lba > 65536) die("--bs %" PRIu64 ": more than 65536 logical blocks", bs);
    if (offset % lba) die("--offset %" PRIu64 ": not a multiple of the %" PRIu64 "-byte logical block", offset, lba);
    uint64_t space = blocks * lba;
    if (offset >= space) die("--offset %" PRIu64 ": beyond the %" PRIu64 " bytes of %s", offset, space, device);
    if (!have_size) size = space - offset;
    if (size > space - offset)
        die("--size %" PRIu64 ": the region from --offset %" PRIu64 " runs past the %" PRIu64 " bytes of %s", size,
            offset, space, device);
    uint64_t units = size / bs, first = offset / lba;
    uint32_t per_io = (uint32_t)(bs / lba);
    if (units == 0) die("--size %" PRIu64 ": smaller than one block of --bs %" PRIu64, size, bs);

    void *buffer;
    uint64_t *latencies = number <= SIZE_MAX / sizeof(uint64_t) ? malloc(number * sizeof *latencies) : NULL;
    if (!latencies || posix_memalign(&buffer, 4096, bs) != 0) die("--number-ios %" PRIu64 ": out of memory", number);
    uint64_t fill = 0;   /* nvmegate's BenchJob.fill for job 0, slot 0 */
    for (uint64_t i = 0; i < bs / 8; i++) {
        fill = fill * 6364136223846793005ull + 1442695040888963407ull;
        memcpy((uint8_t *)buffer + i * 8, &fill, 8);
    }
    struct nvme_passthru_cmd64 cmd = {.opcode = reads ? 0x02 : 0x01, .nsid = (uint32_t)nsid,
                                      .addr = (uint64_t)(uintptr_t)buffer, .data_len = (uint32_t)bs,
                                      .cdw12 = per_io - 1};

    uint64_t state = seed, completed = 0, refused = 0, errors = 0, latency_sum = 0;
    uint64_t started = now_ns(), finished = started;
    for (uint64_t n = 0; n < number; n++) {
        uint64_t slba = first + splitmix64(&state) % units * per_io;
        cmd.cdw10 = (uint32_t)slba;
        cmd.cdw11 = (uint32_t)(slba >> 32);
        uint64_t start = now_ns();
        rc = ioctl(fd, NVME_IOCTL_IO64_CMD, &cmd);
        finished = now_ns();
        if (rc == 0) { latencies[completed++] = finished - start; latency_sum += finished - start; }
        else {
            if (rc > 0) errors++;
            else refused++;
            count_failure(rc > 0 ? rc : -errno);
        }
    }
    close(fd);
    uint64_t elapsed = finished - started ? finished - started : 1;
    qsort(latencies, completed, sizeof *latencies, compare_u64);
    printf("rw=%s bs=%" PRIu64 " first_lba=%" PRIu64 " region_bytes=%" PRIu64 " ios=%" PRIu64 " completed=%" PRIu64
           " refused=%" PRIu64 " errors=%" PRIu64 " elapsed_ns=%" PRIu64 " iops=%.3f lat_mean_ns=%.3f lat_p50_ns=%" PRIu64,
           rw, bs, first, units * bs, number, completed, refused, errors, elapsed, completed * 1e9 / elapsed,
           completed ? (double)latency_sum / completed : 0.0, completed ? latencies[(completed + 1) / 2 - 1] : 0);
    for (int i = 0; i < FAILURE_KINDS && failures[i].count; i++) {
        printf(i ? "," : " failures=");
        if (failures[i].code < 0) printf("errno%d:%" PRIu64, -failures[i].code, failures[i].count);
        else printf("status%Xh:%" PRIu64, (unsigned)failures[i].code, failures[i].count);
    }
    if (other_failures) printf(",other:%" PRIu64, other_failures);
    printf("\n");
    return 0;
}
