/*
 * sync_log.c: preloaded into `nvmegate serve` (LD_PRELOAD) by BrokerLoadTests' restart test, so
 * the test can tell the broker made a Flush durable: every fsync and fdatasync is made as usual
 * and, first, written down as one line "fdatasync NAME" (NAME: the file's last path component)
 * appended to the file $NVMEGATE_SYNC_LOG. A broker that answered a Flush without syncing the
 * namespace's file (ns-1.img) passes a read-back after SIGKILL, since the page cache survives
 * the process; it does not pass this.
 *
 * Build: gcc -shared -fPIC -o sync_log.so sync_log.c
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static void note(int fd, const char *call) {
    const char *log = getenv("NVMEGATE_SYNC_LOG");
    if (!log) return;
    char link[64], path[4096], line[4200];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n < 0) return;
    path[n] = 0;
    const char *name = strrchr(path, '/');
    int length = snprintf(line, sizeof line, "%s %s\n", call, name ? name + 1 : path);
    int out = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (out < 0) return;
    if (write(out, line, (size_t)length) < 0) { /* the count will show it */ }
    close(out);
}

int fdatasync(int fd) {
    note(fd, "fdatasync");
    return (int)syscall(SYS_fdatasync, fd);
}

int fsync(int fd) {
    note(fd, "fsync");
    return (int)syscall(SYS_fsync, fd);
}
