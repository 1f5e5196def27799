/*
 * driver.c - a program with no errinj points of its own, run under errinj-run by
 * test_safety.py: it makes the libc calls the tests name, one command per stdin line, and prints
 * what libc gave back, so the tests see each wrapper from the program's side.
 *
 *   write PATH        open PATH (append), write one byte with errno set to 77 first; prints
 *                     "write RC ERRNO" (ERRNO 77 means a pass-through left errno alone)
 *   writes N PATH     N one-byte writes to PATH: prints "writes " and a 1 or 0 per call (1: failed)
 *   open PATH         opens PATH (append) and keeps it: prints "opened FD"
 *   dup FD            prints "duped NEWFD" (dup), "duped2 NEWFD" (dup2 to 100) and "dupedfd NEWFD"
 *                     (fcntl F_DUPFD_CLOEXEC from 200)
 *   closefd FD        close: prints "closed RC"
 *   variadic DIR      the variadic calls' last argument, passed on: creates DIR/o (open, mode
 *                     0640), DIR/o64 (open64, 0604), DIR/at (openat, 0611), DIR/at64 (openat64,
 *                     0660) with umask 0, and prints "variadic MODE MODE MODE MODE" (octal, from
 *                     stat); then fcntl with an int (F_SETFD FD_CLOEXEC, F_SETFL O_NONBLOCK) and a
 *                     pointer (F_GETLK) on DIR/o: prints "fcntl CLOEXEC NONBLOCK LOCKTYPE" (1 1 1
 *                     when each came back as set: FD_CLOEXEC, O_NONBLOCK, F_UNLCK)
 *   writefd FD        writes one byte to FD: prints "writefd RC ERRNO"
 *   malloc N          prints "malloc ok ERRNO" or "malloc null ERRNO"
 *   threads T N PATH  T threads write N bytes each to PATH, one call a byte; prints
 *                     "threads FAILED" (the calls that failed)
 *   mallocs T N       starts T threads (prints "mallocs-ready"), then on the line "go" each
 *                     mallocs and frees N times; prints "mallocs FAILED"
 *   fork PATH         the child runs "write PATH" and exits; prints "child write RC ERRNO",
 *                     then "forked STATUS"
 *   spawn             fork and exec this program with "child": prints "spawned STATUS" and the
 *                     child's own line "exec-child ok"
 *   exec              exec this program in place (same pid), which starts over
 *   quit              exits 0
 * Before main, a constructor writes one byte to $DRIVER_BEFORE_MAIN (if set) and main prints
 * "before-main RC ERRNO" first.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int g_before_rc = 1, g_before_errno;

__attribute__((constructor)) static void before_main(void)
{
    const char *path = getenv("DRIVER_BEFORE_MAIN");
    if (path == NULL)
        return;
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    errno = 0;
    g_before_rc = fd < 0 ? -2 : (int)write(fd, "b", 1);
    g_before_errno = errno;
    if (fd >= 0)
        close(fd);
}

static void do_write(const char *label, const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd < 0) {
        printf("%s open-failed %d\n", label, errno);
        return;
    }
    errno = 77;
    ssize_t rc = write(fd, "x", 1);
    printf("%s %zd %d\n", label, rc, errno);
    close(fd);
}

static unsigned mode_of(const char *dir, const char *name)
{
    char path[4096];
    struct stat st;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return stat(path, &st) == 0 ? (unsigned)(st.st_mode & 07777) : 0;
}

/* Each open creates its file with a mode only the variadic argument carries. */
static void do_variadic(const char *dir)
{
    char path[4096];
    mode_t old = umask(0);
    int fds[4];
    snprintf(path, sizeof(path), "%s/o", dir);
    fds[0] = open(path, O_RDWR | O_CREAT | O_EXCL, 0640);
    snprintf(path, sizeof(path), "%s/o64", dir);
    fds[1] = open64(path, O_RDWR | O_CREAT | O_EXCL, 0604);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    fds[2] = openat(dfd, "at", O_RDWR | O_CREAT | O_EXCL, 0611);
    fds[3] = openat64(dfd, "at64", O_RDWR | O_CREAT | O_EXCL, 0660);
    umask(old);
    printf("variadic %o %o %o %o\n", mode_of(dir, "o"), mode_of(dir, "o64"), mode_of(dir, "at"), mode_of(dir, "at64"));
    int fd = fds[0];
    int cloexec = fcntl(fd, F_SETFD, FD_CLOEXEC) == 0 && fcntl(fd, F_GETFD) == FD_CLOEXEC;
    int nonblock = fcntl(fd, F_SETFL, O_NONBLOCK) == 0 && (fcntl(fd, F_GETFL) & O_NONBLOCK) != 0;
    struct flock lock = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
    int unlocked = fcntl(fd, F_GETLK, &lock) == 0 && lock.l_type == F_UNLCK;
    printf("fcntl %d %d %d\n", cloexec, nonblock, unlocked);
    for (int i = 0; i < 4; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    if (dfd >= 0)
        close(dfd);
}

struct job {
    const char *path;
    int n;
    int failed;
    pthread_barrier_t *go; /* NULL, or passed before the work starts */
};

static void *write_job(void *arg)
{
    struct job *j = arg;
    int fd = open(j->path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    for (int i = 0; i < j->n; i++)
        if (write(fd, "t", 1) != 1)
            j->failed++;
    close(fd);
    return NULL;
}

static void *malloc_job(void *arg)
{
    struct job *j = arg;
    if (j->go != NULL)
        pthread_barrier_wait(j->go);
    for (int i = 0; i < j->n; i++) {
        void *p = malloc(64 + (size_t)(i % 512));
        if (p == NULL)
            j->failed++;
        free(p);
    }
    return NULL;
}

/* With `go`, the threads start their work only when the line "go" arrives: so that thread
 * creation (which allocates) happens before a malloc fault is enabled. */
static void run_threads(void *(*fn)(void *), int t, int n, const char *path, const char *label, bool go)
{
    pthread_t th[64];
    struct job jobs[64];
    pthread_barrier_t barrier;
    if (t > 64)
        t = 64;
    if (go)
        pthread_barrier_init(&barrier, NULL, (unsigned)t + 1);
    for (int i = 0; i < t; i++) {
        jobs[i] = (struct job){path, n, 0, go ? &barrier : NULL};
        if (pthread_create(&th[i], NULL, fn, &jobs[i]) != 0) {
            printf("%s cannot-start-threads\n", label);
            exit(1);
        }
    }
    if (go) {
        char line[64];
        printf("%s-ready\n", label);
        while (fgets(line, sizeof(line), stdin) != NULL && strcmp(line, "go\n") != 0)
            ;
        pthread_barrier_wait(&barrier);
    }
    int failed = 0;
    for (int i = 0; i < t; i++) {
        pthread_join(th[i], NULL);
        failed += jobs[i].failed;
    }
    printf("%s %d\n", label, failed);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 1 && strcmp(argv[1], "child") == 0) {
        printf("exec-child ok\n");
        return 0;
    }
    if (getenv("DRIVER_BEFORE_MAIN") != NULL)
        printf("before-main %d %d\n", g_before_rc, g_before_errno);
    printf("ready %ld\n", (long)getpid());
    char line[4096];
    while (fgets(line, sizeof(line), stdin) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        char path[4000];
        int t, n;
        size_t size;
        int fd;
        if (sscanf(line, "writes %d %3999s", &n, path) == 2) {
            int out = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
            char *marks = calloc((size_t)n + 1, 1);
            for (int i = 0; i < n; i++)
                marks[i] = write(out, "w", 1) == 1 ? '0' : '1';
            close(out);
            printf("writes %s\n", marks);
            free(marks);
        } else if (sscanf(line, "open %3999s", path) == 1) {
            printf("opened %d\n", open(path, O_WRONLY | O_CREAT | O_APPEND, 0644));
        } else if (sscanf(line, "dup %d", &fd) == 1) {
            printf("duped %d\n", dup(fd));
            printf("duped2 %d\n", dup2(fd, 100));
            printf("dupedfd %d\n", fcntl(fd, F_DUPFD_CLOEXEC, 200));
        } else if (sscanf(line, "variadic %3999s", path) == 1) {
            do_variadic(path);
        } else if (sscanf(line, "closefd %d", &fd) == 1) {
            printf("closed %d\n", close(fd));
        } else if (sscanf(line, "writefd %d", &fd) == 1) {
            errno = 77;
            ssize_t rc = write(fd, "w", 1);
            printf("writefd %zd %d\n", rc, errno);
        } else if (sscanf(line, "write %3999s", path) == 1) {
            do_write("write", path);
        } else if (sscanf(line, "malloc %zu", &size) == 1) {
            errno = 77;
            void *p = malloc(size);
            printf("malloc %s %d\n", p != NULL ? "ok" : "null", errno);
            free(p);
        } else if (sscanf(line, "threads %d %d %3999s", &t, &n, path) == 3) {
            run_threads(write_job, t, n, path, "threads", false);
        } else if (sscanf(line, "mallocs %d %d", &t, &n) == 2) {
            run_threads(malloc_job, t, n, NULL, "mallocs", true);
        } else if (sscanf(line, "fork %3999s", path) == 1) {
            fflush(stdout);
            pid_t pid = fork();
            if (pid == 0) {
                do_write("child write", path);
                fflush(stdout);
                _exit(0);
            }
            int status = -1;
            waitpid(pid, &status, 0);
            printf("forked %d\n", status);
        } else if (strcmp(line, "spawn") == 0) {
            fflush(stdout);
            pid_t pid = fork();
            if (pid == 0) {
                execl("/proc/self/exe", argv[0], "child", (char *)NULL);
                _exit(126);
            }
            int status = -1;
            waitpid(pid, &status, 0);
            printf("spawned %d\n", status);
        } else if (strcmp(line, "exec") == 0) {
            fflush(stdout);
            execl("/proc/self/exe", argv[0], (char *)NULL);
            printf("exec-failed %d\n", errno);
        } else if (strcmp(line, "quit") == 0) {
            return 0;
        } else {
            printf("unknown %s\n", line);
        }
    }
    return 0;
}
