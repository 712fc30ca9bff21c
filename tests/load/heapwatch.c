/*
 * heapwatch.so: an LD_PRELOAD probe that lets tests/load/load.py see how
 * much heap the (unmodified) privline-server has in use, so that "the server
 * frees every connection" is checked byte for byte, not only through RSS
 * (glibc keeps freed memory, so RSS stays near its peak after a load).
 *
 * When HEAPWATCH_FILE is set, a thread started at load time writes
 *   in_use BYTES mmapped BYTES arena BYTES
 * (glibc's mallinfo2(): bytes in allocated chunks, in mmapped chunks, and
 * the size of the heap arenas) to that file every 50 ms, replacing it
 * atomically (write to FILE.tmp, rename). It never allocates. Without
 * HEAPWATCH_FILE it does nothing. glibc 2.33 or newer.
 */

#define _GNU_SOURCE

#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char path[4096], tmp_path[4100];

static void *watch(void *unused)
{
    struct timespec period = {0, 50 * 1000 * 1000};
    (void)unused;
    for (;;) {
        struct mallinfo2 m = mallinfo2();
        char line[160];
        int len = snprintf(line, sizeof line, "in_use %zu mmapped %zu arena %zu\n", m.uordblks, m.hblkhd, m.arena);
        int fd = open(tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd >= 0) {
            ssize_t written = write(fd, line, (size_t)len);
            close(fd);
            if (written == len)
                rename(tmp_path, path);
        }
        nanosleep(&period, NULL);
    }
    return NULL;
}

__attribute__((constructor)) static void heapwatch_start(void)
{
    const char *file = getenv("HEAPWATCH_FILE");
    pthread_t thread;
    pthread_attr_t attr;
    if (file == NULL || *file == '\0' || strlen(file) >= sizeof path)
        return;
    strcpy(path, file);
    snprintf(tmp_path, sizeof tmp_path, "%s.tmp", path);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    if (pthread_create(&thread, &attr, watch, NULL) != 0)
        fputs("heapwatch: cannot start the thread\n", stderr);
    pthread_attr_destroy(&attr);
}
