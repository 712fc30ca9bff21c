/*
 * privline-netbench: a load client for the C echo server
 * (examples-c/build/privline-server) over loopback, for BENCHMARKS.md item 6.
 *
 *   privline-netbench --connect HOST:PORT --network-key HEX --secret HEX
 *                     --server-key HEX [--mode handshake|bulk] [--clients N]
 *                     [--seconds S] [--warmup S] [--record BYTES]
 *                     [--window BYTES] [--server-pid PID]
 *
 * One thread, one poll() loop over N non-blocking connections. The client
 * identity is made once from --secret (64 hex digits, the seed, or 128, the
 * libsodium form) with privline_identity_new, and every handshake is created
 * from that handle, as the C peers do.
 *
 * --mode handshake (default): each of the N connections connects, runs the
 *   privline handshake, sends its close, waits for the server's close,
 *   hangs up and starts again at once. Counts handshakes completed (close
 *   exchanged) per second, and the latency from connect() to the client's
 *   DONE.
 * --mode bulk: each connection does one handshake, then streams data
 *   records of --record payload bytes (default 65518, one full record) to
 *   the echo server, keeping at most --window bytes (default 262144) sent
 *   but not yet echoed, and opens the echoes. Counts echoed payload bytes
 *   per second.
 *
 * Only what finishes between --warmup (default 1 s) and --warmup + --seconds
 * (default 3 s) counts. Output, one line each:
 *   RESULT <mode>_per_s <value>        handshakes/s or echoed bytes/s
 *   RESULT <mode>_latency_p50_us ...   (handshake mode) median and p99
 *   RESULT client_cpu_s <value>        this process's user+system CPU time
 *                                      during the measured window
 *   RESULT server_cpu_s <value>        with --server-pid: the server's CPU time
 *                                      in the same window (from /proc)
 *   RESULT errors <n>                  failed connections (any failure)
 * Exit status 0 when at least one handshake (or one echoed byte) counted
 * and no connection failed.
 *
 * It only ever connects to the address given; benches/run-c-python.sh runs
 * it against a server it started on 127.0.0.1.
 */

#define _POSIX_C_SOURCE 200809L

#include "common.h"
#include "privline.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

enum { MODE_HANDSHAKE, MODE_BULK };
enum { S_IDLE, S_CONNECTING, S_HANDSHAKE, S_CLOSING, S_BULK, S_DONE };

typedef struct {
    int fd;
    int state;
    double started;  /* connect() time */
    privline_handshake *hs;
    privline_channel *ch;
    buffer_t in, out;
    size_t in_flight; /* bulk: payload bytes sent, not yet echoed */
} slot_t;

static struct {
    char *host;
    const char *port;
    uint8_t network_key[PRIVLINE_NETWORK_KEY_LEN];
    uint8_t secret[PRIVLINE_IDENTITY_KEYPAIR_LEN];
    size_t secret_len;
    uint8_t server_key[PRIVLINE_PUBLIC_KEY_LEN];
    int mode;
    size_t clients;
    double seconds, warmup;
    size_t record, window;
    long server_pid;
} opt;

/* The client identity, made once from --secret (as the C peers do since
 * they have identity handles); every connection's handshake shares it. */
static privline_identity *identity;
static struct addrinfo *target;
static uint8_t scratch[PRIVLINE_OPEN_MAX_OUTPUT_LEN];
static uint8_t *payload;
static double window_start, window_end;
static unsigned long long counted, errors;
static double *latencies;
static size_t latency_count, latency_cap;

static void usage(void)
{
    fprintf(stderr,
            "usage: privline-netbench --connect HOST:PORT --network-key HEX --secret HEX --server-key HEX\n"
            "       [--mode handshake|bulk] [--clients N] [--seconds S] [--warmup S] [--record BYTES]\n"
            "       [--window BYTES] [--server-pid PID]\n");
    exit(EXIT_USAGE);
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec
           + (double)ru.ru_stime.tv_usec / 1e6;
}

/* CPU seconds (user + system) of process `pid` from /proc, or -1. */
static double process_cpu_seconds(long pid)
{
    char path[64], line[1024];
    unsigned long utime = 0, stime = 0;
    const char *p;
    FILE *f;
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    f = fopen(path, "r");
    if (f == NULL)
        return -1;
    if (fgets(line, sizeof line, f) == NULL) {
        fclose(f);
        return -1;
    }
    fclose(f);
    p = strrchr(line, ')'); /* fields after the command name: state is field 3 */
    if (p == NULL || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2)
        return -1;
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

static bool in_window(double t)
{
    return t >= window_start && t < window_end;
}

static void slot_reset(slot_t *s)
{
    if (s->fd >= 0)
        close(s->fd);
    privline_handshake_free(s->hs);
    privline_channel_free(s->ch);
    buffer_free(&s->in);
    buffer_free(&s->out);
    memset(s, 0, sizeof *s);
    s->fd = -1;
    s->state = S_IDLE;
}

static void slot_fail(slot_t *s, const char *why)
{
    if (errors < 10)
        fprintf(stderr, "privline-netbench: connection failed: %s\n", why);
    errors++;
    slot_reset(s);
}

static void slot_connect(slot_t *s, double now)
{
    int one = 1;
    s->fd = socket(target->ai_family, target->ai_socktype, target->ai_protocol);
    if (s->fd < 0 || !set_nonblocking(s->fd)) {
        slot_fail(s, strerror(errno));
        return;
    }
    setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(s->fd, target->ai_addr, target->ai_addrlen) != 0 && errno != EINPROGRESS) {
        slot_fail(s, strerror(errno));
        return;
    }
    s->started = now;
    s->state = S_CONNECTING;
}

static bool seal_into_out(slot_t *s, const uint8_t *data, size_t len, bool close_record)
{
    size_t need = privline_sealed_len(len) + PRIVLINE_RECORD_OVERHEAD_LEN, written = need;
    uint8_t *room = buffer_reserve(&s->out, need);
    privline_result r;
    if (room == NULL)
        return false;
    r = close_record ? privline_channel_close(s->ch, 0, room, &written)
                     : privline_channel_seal(s->ch, data, len, 0, room, &written);
    if (r != PRIVLINE_RESULT_OK)
        return false;
    buffer_commit(&s->out, written);
    return true;
}

static void bulk_fill(slot_t *s)
{
    while (s->in_flight + opt.record <= opt.window) {
        if (!seal_into_out(s, payload, opt.record, false)) {
            slot_fail(s, "seal failed");
            return;
        }
        s->in_flight += opt.record;
    }
}

/* Handshake steps over what arrived; on DONE moves to the next state. */
static void handshake_progress(slot_t *s, double now)
{
    for (;;) {
        uint8_t msg[PRIVLINE_HANDSHAKE_MAX_MESSAGE_LEN];
        size_t used = 0, msg_len = sizeof msg;
        privline_handshake_status st = PRIVLINE_HANDSHAKE_NEED_INPUT;
        privline_result r =
            privline_handshake_step(s->hs, buffer_head(&s->in), s->in.len, &used, msg, &msg_len, &st);
        if (r != PRIVLINE_RESULT_OK) {
            slot_fail(s, privline_result_str((uint32_t)r));
            return;
        }
        buffer_consume(&s->in, used);
        if (msg_len > 0 && !buffer_append(&s->out, msg, msg_len)) {
            slot_fail(s, "out of memory");
            return;
        }
        if (st == PRIVLINE_HANDSHAKE_DONE)
            break;
        if (used == 0 && msg_len == 0)
            return;
    }
    if (privline_handshake_into_channel(&s->hs, &s->ch) != PRIVLINE_RESULT_OK) {
        slot_fail(s, "into_channel failed");
        return;
    }
    if (opt.mode == MODE_HANDSHAKE) {
        if (in_window(now)) {
            if (latency_count == latency_cap) {
                latency_cap = latency_cap ? 2 * latency_cap : 4096;
                latencies = realloc(latencies, latency_cap * sizeof *latencies);
                if (latencies == NULL)
                    exit(1);
            }
            latencies[latency_count++] = now - s->started;
        }
        if (!seal_into_out(s, NULL, 0, true)) {
            slot_fail(s, "close failed");
            return;
        }
        s->state = S_CLOSING;
    } else {
        s->state = S_BULK;
        bulk_fill(s);
    }
}

/* Opens the records that arrived. */
static void channel_progress(slot_t *s, double now)
{
    while (s->state == S_CLOSING || s->state == S_BULK) {
        size_t used = 0, len = sizeof scratch;
        privline_record_type type = PRIVLINE_RECORD_NONE;
        privline_result r;
        if (s->in.len == 0)
            return;
        r = privline_channel_open(s->ch, buffer_head(&s->in), s->in.len, &used, scratch, &len, &type);
        if (r != PRIVLINE_RESULT_OK) {
            slot_fail(s, privline_result_str((uint32_t)r));
            return;
        }
        buffer_consume(&s->in, used);
        if (type == PRIVLINE_RECORD_NONE)
            return;
        if (type == PRIVLINE_RECORD_CLOSE) {
            if (s->state == S_CLOSING && in_window(now))
                counted++;
            s->state = S_DONE;
            return;
        }
        if (type == PRIVLINE_RECORD_DATA && s->state == S_BULK) {
            if (in_window(now))
                counted += len;
            s->in_flight -= len < s->in_flight ? len : s->in_flight;
            bulk_fill(s);
        }
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    bool have_nk = false, have_secret = false, have_server = false, have_connect = false;
    struct addrinfo hints;
    slot_t *slots;
    struct pollfd *fds;
    double cpu_start = 0, server_cpu_start = -1, t_start;
    bool cpu_started = false;

    signal(SIGPIPE, SIG_IGN);
    opt.mode = MODE_HANDSHAKE;
    opt.clients = 1;
    opt.seconds = 3;
    opt.warmup = 1;
    opt.record = PRIVLINE_RECORD_MAX_PAYLOAD_LEN;
    opt.window = 256 * 1024;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc)
            usage();
        if (strcmp(a, "--connect") == 0)
            have_connect = split_host_port(argv[++i], &opt.host, &opt.port);
        else if (strcmp(a, "--network-key") == 0)
            have_nk = hex_decode(argv[++i], opt.network_key, sizeof opt.network_key);
        else if (strcmp(a, "--secret") == 0)
            have_secret = parse_secret(argv[++i], opt.secret, &opt.secret_len);
        else if (strcmp(a, "--server-key") == 0)
            have_server = hex_decode(argv[++i], opt.server_key, sizeof opt.server_key);
        else if (strcmp(a, "--mode") == 0) {
            const char *m = argv[++i];
            if (strcmp(m, "handshake") == 0)
                opt.mode = MODE_HANDSHAKE;
            else if (strcmp(m, "bulk") == 0)
                opt.mode = MODE_BULK;
            else
                usage();
        } else if (strcmp(a, "--clients") == 0)
            opt.clients = strtoul(argv[++i], NULL, 10);
        else if (strcmp(a, "--seconds") == 0) {
            if (!parse_seconds(argv[++i], &opt.seconds))
                usage();
        } else if (strcmp(a, "--warmup") == 0) {
            if (!parse_seconds(argv[++i], &opt.warmup))
                usage();
        } else if (strcmp(a, "--record") == 0)
            opt.record = strtoul(argv[++i], NULL, 10);
        else if (strcmp(a, "--window") == 0)
            opt.window = strtoul(argv[++i], NULL, 10);
        else if (strcmp(a, "--server-pid") == 0)
            opt.server_pid = strtol(argv[++i], NULL, 10);
        else
            usage();
    }
    if (!have_connect || !have_nk || !have_secret || !have_server || opt.clients == 0 || opt.clients > 100000
        || opt.record == 0 || opt.record > PRIVLINE_RECORD_MAX_PAYLOAD_LEN || opt.window < opt.record)
        usage();
    if (privline_identity_new(opt.secret, opt.secret_len, &identity) != PRIVLINE_RESULT_OK) {
        fprintf(stderr, "privline-netbench: --secret is not a valid identity secret\n");
        return EXIT_USAGE;
    }
    wipe(opt.secret, sizeof opt.secret);

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(opt.host, opt.port, &hints, &target) != 0) {
        fprintf(stderr, "privline-netbench: cannot resolve %s\n", opt.host);
        return EXIT_FAILED;
    }
    payload = malloc(opt.record);
    slots = calloc(opt.clients, sizeof *slots);
    fds = calloc(opt.clients, sizeof *fds);
    if (payload == NULL || slots == NULL || fds == NULL)
        return EXIT_FAILED;
    memset(payload, 0x5a, opt.record);
    for (size_t i = 0; i < opt.clients; i++) {
        slots[i].fd = -1;
        slots[i].state = S_IDLE;
    }

    t_start = now_seconds();
    window_start = t_start + opt.warmup;
    window_end = window_start + opt.seconds;
    for (;;) {
        double now = now_seconds();
        int ready;
        if (!cpu_started && now >= window_start) {
            cpu_start = cpu_seconds();
            if (opt.server_pid > 0)
                server_cpu_start = process_cpu_seconds(opt.server_pid);
            cpu_started = true;
        }
        if (now >= window_end)
            break;
        for (size_t i = 0; i < opt.clients; i++) {
            slot_t *s = &slots[i];
            if (s->state == S_DONE)
                slot_reset(s);
            if (s->state == S_IDLE)
                slot_connect(s, now);
            fds[i].fd = s->fd;
            fds[i].events = 0;
            fds[i].revents = 0;
            if (s->fd < 0)
                continue;
            if (s->state == S_CONNECTING || s->out.len > 0)
                fds[i].events |= POLLOUT;
            if (s->state != S_CONNECTING)
                fds[i].events |= POLLIN;
        }
        ready = poll(fds, opt.clients, poll_timeout_ms(window_end, now));
        if (ready < 0) {
            if (errno == EINTR)
                continue;
            perror("poll");
            return EXIT_FAILED;
        }
        now = now_seconds();
        for (size_t i = 0; i < opt.clients; i++) {
            slot_t *s = &slots[i];
            short ev = fds[i].revents;
            if (s->fd < 0 || ev == 0)
                continue;
            if (s->state == S_CONNECTING) {
                int err = 0;
                socklen_t len = sizeof err;
                getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len);
                if (err != 0) {
                    slot_fail(s, strerror(err));
                    continue;
                }
                if (privline_handshake_new_client_with_identity(PRIVLINE_PROTOCOL_PRIVLINE1, opt.network_key,
                                                                identity, opt.server_key, &s->hs)
                    != PRIVLINE_RESULT_OK) {
                    slot_fail(s, "new_client failed");
                    continue;
                }
                s->state = S_HANDSHAKE;
                handshake_progress(s, now); /* M1 */
                continue;
            }
            if (ev & (POLLIN | POLLHUP | POLLERR)) {
                uint8_t *room = buffer_reserve(&s->in, 64 * 1024);
                ssize_t n;
                if (room == NULL) {
                    slot_fail(s, "out of memory");
                    continue;
                }
                n = read(s->fd, room, 64 * 1024);
                if (n > 0) {
                    buffer_commit(&s->in, (size_t)n);
                    if (s->state == S_HANDSHAKE)
                        handshake_progress(s, now);
                    if (s->state == S_CLOSING || s->state == S_BULK)
                        channel_progress(s, now);
                } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
                    slot_fail(s, n == 0 ? "the server hung up" : strerror(errno));
                    continue;
                }
            }
            if (s->fd >= 0 && s->out.len > 0 && (ev & POLLOUT)) {
                ssize_t n = write(s->fd, buffer_head(&s->out), s->out.len);
                if (n > 0)
                    buffer_consume(&s->out, (size_t)n);
                else if (n < 0 && errno != EAGAIN && errno != EINTR)
                    slot_fail(s, strerror(errno));
            }
        }
    }
    double cpu = cpu_seconds() - cpu_start;
    double server_cpu = opt.server_pid > 0 ? process_cpu_seconds(opt.server_pid) : -1;
    const char *name = opt.mode == MODE_HANDSHAKE ? "handshakes" : "echo_bytes";
    printf("RESULT %s_per_s %.1f\n", name, (double)counted / opt.seconds);
    if (opt.mode == MODE_HANDSHAKE && latency_count > 0) {
        qsort(latencies, latency_count, sizeof *latencies, cmp_double);
        printf("RESULT handshake_latency_p50_us %.1f\n", 1e6 * latencies[latency_count / 2]);
        printf("RESULT handshake_latency_p99_us %.1f\n", 1e6 * latencies[latency_count * 99 / 100]);
    }
    printf("RESULT client_cpu_s %.3f\n", cpu);
    if (server_cpu >= 0 && server_cpu_start >= 0)
        printf("RESULT server_cpu_s %.3f\n", server_cpu - server_cpu_start);
    printf("RESULT errors %llu\n", errors);
    for (size_t i = 0; i < opt.clients; i++)
        slot_reset(&slots[i]);
    privline_identity_free(identity);
    freeaddrinfo(target);
    free(opt.host);
    free(payload);
    free(slots);
    free(fds);
    free(latencies);
    return counted > 0 && errors == 0 ? 0 : EXIT_FAILED;
}
