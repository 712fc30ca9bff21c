/*
 * check.h: the check counters and CHECK macros that tests/c/test_capi.c and
 * tests/c/threads.c share, and their allocator that exits on failure.
 * Header-only (static functions) so that each test stays one translation
 * unit and tests/c/run.sh compiles it with the same single command line.
 *
 * The counters are guarded by a mutex because threads.c checks from several
 * threads at once; test_capi.c is single-threaded and pays one uncontended
 * lock per check. Define CHECK_PRINT_LIMIT before including to print only the
 * first that many failures (threads.c: a broken lock would fail thousands of
 * times and bury the first, telling report).
 */

#ifndef PRIVLINE_TESTS_C_CHECK_H
#define PRIVLINE_TESTS_C_CHECK_H

#include "privline.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#ifndef CHECK_PRINT_LIMIT
#define CHECK_PRINT_LIMIT ((unsigned long)-1)
#endif

static pthread_mutex_t check_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long checks_passed;
static unsigned long checks_failed;

/* Counts one check; returns 1 when the failure should be printed. */
static int check_count(int ok)
{
    int print;
    pthread_mutex_lock(&check_lock);
    if (ok)
        checks_passed++;
    else
        checks_failed++;
    print = !ok && checks_failed <= CHECK_PRINT_LIMIT;
    pthread_mutex_unlock(&check_lock);
    return print;
}

static int check_at(int ok, const char *file, int line, const char *expr)
{
    if (check_count(ok))
        fprintf(stderr, "%s:%d: CHECK failed: %s\n", file, line, expr);
    return ok;
}

static int check_result_at(privline_result got, privline_result want, const char *file, int line,
                           const char *expr)
{
    if (check_count(got == want))
        fprintf(stderr, "%s:%d: CHECK failed: %s returned %u (%s), expected %u (%s)\n", file, line, expr,
                (unsigned)got, privline_result_str(got), (unsigned)want, privline_result_str(want));
    return got == want;
}

/* CHECK(expr): counts a passed or failed check; evaluates to whether it held. */
#define CHECK(expr) check_at((expr) ? 1 : 0, __FILE__, __LINE__, #expr)
/* CHECK_R(call, result): the call returns exactly that privline_result. */
#define CHECK_R(call, want) check_result_at((call), (want), __FILE__, __LINE__, #call)
#define CHECK_OK(call) CHECK_R((call), PRIVLINE_RESULT_OK)

/* A test that cannot get memory cannot say anything about the library. */
static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL) {
        fprintf(stderr, "out of memory (%lu bytes)\n", (unsigned long)n);
        exit(2);
    }
    return p;
}

#endif
