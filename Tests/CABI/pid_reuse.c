/* pid_reuse SOCKET: stages a PID reuse for the broker's identification test.
 *
 * A child connects to the Unix socket at SOCKET and exits. Once it is reaped, another child
 * is given its PID (through /proc/sys/kernel/ns_last_pid, which needs root) and the
 * supplementary group 4242 only, and waits until standard input closes. Prints "A B": the
 * first child's PID and the second's (0 when the PID could not be given again: not root, or
 * other processes kept taking it). Exits once the second child has.
 */
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: pid_reuse SOCKET\n"); return 2; }
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    snprintf(address.sun_path, sizeof address.sun_path, "%s", argv[1]);

    pid_t first = fork();
    if (first == 0) {
        int fd = socket(AF_UNIX, SOCK_STREAM, 0);
        _exit(fd >= 0 && connect(fd, (struct sockaddr *)&address, sizeof address) == 0 ? 0 : 1);
    }
    int status;
    if (first < 0 || waitpid(first, &status, 0) != first || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "pid_reuse: the first child could not connect to %s\n", argv[1]);
        return 1;
    }

    int ready[2];
    if (pipe(ready) != 0) { perror("pipe"); return 1; }
    pid_t second = 0;
    for (int attempt = 0; attempt < 50 && second == 0; attempt++) {
        FILE *last = fopen("/proc/sys/kernel/ns_last_pid", "w");
        if (!last) break;
        fprintf(last, "%d", (int)first - 1);
        if (fclose(last) != 0) break;
        pid_t p = fork();
        if (p == 0) {
            if (getpid() != first) _exit(0);
            gid_t group = 4242;
            if (setgroups(1, &group) != 0) _exit(3);
            close(ready[0]);
            if (write(ready[1], "r", 1) != 1) _exit(4);
            char c;
            while (read(STDIN_FILENO, &c, 1) > 0) {}
            _exit(0);
        }
        if (p == first) second = p;
        else if (p > 0) waitpid(p, NULL, 0);
    }
    close(ready[1]);
    char c;
    if (second && read(ready[0], &c, 1) != 1) {
        waitpid(second, NULL, 0);
        second = 0;
    }
    printf("%d %d\n", (int)first, (int)second);
    fflush(stdout);
    if (second) waitpid(second, NULL, 0);
    return 0;
}
