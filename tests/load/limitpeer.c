/*
 * limitpeer: privline/1 clients for tests/load/limits.py, the test of the
 * echo server's limits (examples-c/server.c: --idle-timeout,
 * --max-connections, --max-per-ip, bounded output).
 *
 *   limitpeer --connect HOST:PORT --network-key HEX --server-key HEX
 *             --mode echo|idle|talk|push [--bind ADDRESS] [--timeout SECONDS]
 *             [--size BYTES] [--wait SECONDS] [--interval SECONDS]
 *             [--duration SECONDS] [--count N]
 *
 * The client's secret (64 hex digits, the seed) is the first line of stdin,
 * never an argument.
 *
 *   echo  one connection: the handshake, the echo of --size random bytes
 *         (default 1000, at most 65518: one record), close answered by
 *         close. "echo: ok handshake_ms=N total_ms=N", exit 0.
 *   idle  the handshake and one echo, then nothing for --wait seconds
 *         while watching the socket. "idle: closed_by_server after=S" (S:
 *         seconds since the last byte) if the server hangs up meanwhile,
 *         else another echo and "idle: still_served". Exit 0 either way.
 *   talk  the handshake, then an echo every --interval seconds (default
 *         0.5) for --duration seconds, then close. "talk: ok echoes=N",
 *         exit 0; "talk: failed after=S: REASON", exit 1.
 *   push  --count connections (default 1), each with the smallest receive
 *         buffer the kernel allows: the handshakes, then "push: established
 *         N"; then 64 KiB records are sent on every connection as fast as
 *         the server takes them, and nothing is ever read. When stdin ends
 *         (the test closes it): "push: sent=BYTES closed_by_server=K",
 *         every socket closed, exit 0.
 *
 * --bind: the local address to connect from (e.g. 127.0.0.2). --timeout
 * (default 30): the whole run of echo, idle and talk, and each handshake of
 * push; past it: "MODE: failed: timed out", exit 1. Any failure: one line
 * "MODE: failed ...", exit 1; bad arguments: exit 2.
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
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define PUSH_RECORD 65518u

static struct {
    char *host;
    const char *port;
    const char *bind_address;
    const char *mode;
    uint8_t network_key[PRIVLINE_NETWORK_KEY_LEN];
    uint8_t server_key[PRIVLINE_PUBLIC_KEY_LEN];
    double timeout, wait, interval, duration;
    size_t size, count;
} opt;

static privline_identity *identity;
static char failure[256];

typedef struct {
    int fd;
    privline_channel *channel;
    buffer_t in;
    double last_byte; /* when a byte last arrived or left */
} peer_t;

static void usage(const char *message)
{
    fprintf(stderr, "limitpeer: %s\n(see the comment at the top of tests/load/limitpeer.c)\n", message);
    exit(EXIT_USAGE);
}

static void fail(const char *what)
{
    snprintf(failure, sizeof failure, "%s", what);
}

static void fail_errno(const char *what)
{
    snprintf(failure, sizeof failure, "%s: %s", what, strerror(errno));
}

/* Waits for `events` on fd until `deadline`; false (with the reason) on
 * timeout or a poll error. */
static bool wait_for(int fd, short events, double deadline)
{
    for (;;) {
        struct pollfd pfd = {fd, events, 0};
        int ready = poll(&pfd, 1, poll_timeout_ms(deadline, now_seconds()));
        if (ready > 0)
            return true;
        if (ready == 0) {
            fail("timed out");
            return false;
        }
        if (errno != EINTR) {
            fail_errno("poll");
            return false;
        }
    }
}

static bool send_all(peer_t *p, const uint8_t *data, size_t len, double deadline)
{
    while (len > 0) {
        ssize_t n = send(p->fd, data, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                if (!wait_for(p->fd, POLLOUT, deadline))
                    return false;
                continue;
            }
            fail_errno("send");
            return false;
        }
        data += n;
        len -= (size_t)n;
        p->last_byte = now_seconds();
    }
    return true;
}

/* Reads what arrives (waiting until `deadline`) into p->in. Returns false
 * on the end of the stream, an error or the deadline. */
static bool receive_some(peer_t *p, double deadline)
{
    for (;;) {
        uint8_t *room = buffer_reserve(&p->in, 65536);
        ssize_t n;
        if (room == NULL) {
            fail("out of memory");
            return false;
        }
        n = recv(p->fd, room, 65536, 0);
        if (n > 0) {
            buffer_commit(&p->in, (size_t)n);
            p->last_byte = now_seconds();
            return true;
        }
        if (n == 0) {
            fail("the server hung up");
            return false;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            fail_errno("recv");
            return false;
        }
        if (!wait_for(p->fd, POLLIN, deadline))
            return false;
    }
}

/* A non-blocking socket connected to the server (from --bind if given). */
static bool peer_connect(peer_t *p, int rcvbuf, double deadline)
{
    struct addrinfo hints, *found = NULL;
    int rc, one = 1, error = 0;
    socklen_t error_len = sizeof error;

    memset(p, 0, sizeof *p);
    p->fd = -1;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    rc = getaddrinfo(opt.host, opt.port, &hints, &found);
    if (rc != 0) {
        snprintf(failure, sizeof failure, "cannot resolve %s: %s", opt.host, gai_strerror(rc));
        return false;
    }
    p->fd = socket(found->ai_family, found->ai_socktype, found->ai_protocol);
    if (p->fd < 0 || !set_nonblocking(p->fd)) {
        fail_errno("socket");
        freeaddrinfo(found);
        return false;
    }
    setsockopt(p->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (rcvbuf > 0)
        setsockopt(p->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    if (opt.bind_address != NULL) {
        struct addrinfo *local = NULL;
        hints.ai_family = found->ai_family;
        hints.ai_flags = AI_NUMERICHOST;
        rc = getaddrinfo(opt.bind_address, "0", &hints, &local);
        if (rc != 0 || bind(p->fd, local->ai_addr, local->ai_addrlen) != 0) {
            snprintf(failure, sizeof failure, "cannot bind to %s: %s", opt.bind_address,
                     rc != 0 ? gai_strerror(rc) : strerror(errno));
            if (local != NULL)
                freeaddrinfo(local);
            freeaddrinfo(found);
            return false;
        }
        freeaddrinfo(local);
    }
    rc = connect(p->fd, found->ai_addr, found->ai_addrlen);
    freeaddrinfo(found);
    if (rc != 0 && errno != EINPROGRESS) {
        fail_errno("connect");
        return false;
    }
    if (rc != 0) {
        if (!wait_for(p->fd, POLLOUT, deadline))
            return false;
        if (getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &error, &error_len) != 0 || error != 0) {
            errno = error;
            fail_errno("connect");
            return false;
        }
    }
    p->last_byte = now_seconds();
    return true;
}

/* The privline/1 handshake as the client. */
static bool peer_handshake(peer_t *p, double deadline)
{
    privline_handshake *handshake = NULL;
    buffer_t out = {NULL, 0, 0, 0};
    privline_result result = privline_handshake_new_client_with_identity(
        PRIVLINE_PROTOCOL_PRIVLINE1, opt.network_key, identity, opt.server_key, &handshake);
    if (result != PRIVLINE_RESULT_OK) {
        snprintf(failure, sizeof failure, "handshake: %s", privline_result_str(result));
        return false;
    }
    for (;;) {
        uint8_t server_key[PRIVLINE_PUBLIC_KEY_LEN];
        const char *why = "refused";
        advance_t progress = handshake_advance(&handshake, &p->in, &out, NULL, server_key, &p->channel, &why);
        bool sent = out.len == 0 || send_all(p, buffer_head(&out), out.len, deadline);
        buffer_free(&out);
        if (progress == ADVANCE_FAILED || progress == ADVANCE_REFUSED) /* a client is never asked */
            snprintf(failure, sizeof failure, "handshake: %s", why);
        if (progress == ADVANCE_DONE && sent)
            return true; /* (else p->channel goes with the peer) */
        if (progress != ADVANCE_WAITING || !sent || !receive_some(p, deadline)) {
            privline_handshake_free(handshake);
            return false;
        }
    }
}

/* Opens the next record (reading as needed): its type, the payload
 * appended to `payload` (may be NULL to discard). */
static bool next_record(peer_t *p, buffer_t *payload, privline_record_type *type, double deadline)
{
    static uint8_t scratch[PRIVLINE_OPEN_MAX_OUTPUT_LEN];
    for (;;) {
        size_t consumed = 0, len = sizeof scratch;
        privline_result result;
        *type = PRIVLINE_RECORD_NONE;
        if (p->in.len > 0) {
            result = privline_channel_open(p->channel, buffer_head(&p->in), p->in.len, &consumed, scratch, &len,
                                           type);
            if (result != PRIVLINE_RESULT_OK) {
                snprintf(failure, sizeof failure, "open: %s", privline_result_str(result));
                return false;
            }
            buffer_consume(&p->in, consumed);
        }
        if (*type == PRIVLINE_RECORD_DATA && payload != NULL && !buffer_append(payload, scratch, len)) {
            fail("out of memory");
            return false;
        }
        if (*type == PRIVLINE_RECORD_DATA || *type == PRIVLINE_RECORD_CLOSE)
            return true;
        if (*type == PRIVLINE_RECORD_NONE && !receive_some(p, deadline))
            return false;
    }
}

static bool peer_echo(peer_t *p, size_t size, double deadline)
{
    buffer_t out = {NULL, 0, 0, 0}, back = {NULL, 0, 0, 0};
    uint8_t *data = malloc(size ? size : 1);
    const char *error;
    bool ok = false;
    size_t i;
    if (data == NULL) {
        fail("out of memory");
        return false;
    }
    for (i = 0; i < size; i++)
        data[i] = (uint8_t)(rand() >> 7);
    error = queue_sealed(&out, p->channel, data, size, false);
    if (error != NULL) {
        snprintf(failure, sizeof failure, "seal: %s", error);
        goto done;
    }
    if (!send_all(p, buffer_head(&out), out.len, deadline))
        goto done;
    while (back.len < size) {
        privline_record_type type;
        if (!next_record(p, &back, &type, deadline))
            goto done;
        if (type != PRIVLINE_RECORD_DATA) {
            fail("close instead of the echo");
            goto done;
        }
    }
    if (back.len != size || memcmp(buffer_head(&back), data, size) != 0) {
        fail("the echo differs from what was sent");
        goto done;
    }
    ok = true;
done:
    buffer_free(&out);
    buffer_free(&back);
    free(data);
    return ok;
}

static bool peer_close(peer_t *p, double deadline)
{
    buffer_t out = {NULL, 0, 0, 0};
    privline_record_type type;
    const char *error = queue_sealed(&out, p->channel, NULL, 0, true);
    bool ok;
    if (error != NULL) {
        snprintf(failure, sizeof failure, "close: %s", error);
        return false;
    }
    ok = send_all(p, buffer_head(&out), out.len, deadline);
    buffer_free(&out);
    if (!ok || !next_record(p, NULL, &type, deadline))
        return false;
    if (type != PRIVLINE_RECORD_CLOSE) {
        fail("data instead of the server's close");
        return false;
    }
    return true;
}

static void peer_free(peer_t *p)
{
    privline_channel_free(p->channel);
    p->channel = NULL;
    buffer_free(&p->in);
    if (p->fd >= 0)
        close(p->fd);
    p->fd = -1;
}

static int mode_echo(void)
{
    double start = now_seconds(), deadline = start + opt.timeout, shaken;
    peer_t p;
    bool ok = peer_connect(&p, 0, deadline) && peer_handshake(&p, deadline);
    shaken = now_seconds();
    ok = ok && peer_echo(&p, opt.size, deadline) && peer_close(&p, deadline);
    peer_free(&p);
    if (!ok) {
        printf("echo: failed: %s\n", failure);
        return EXIT_FAILED;
    }
    printf("echo: ok handshake_ms=%.0f total_ms=%.0f\n", (shaken - start) * 1000, (now_seconds() - start) * 1000);
    return 0;
}

static int mode_idle(void)
{
    double deadline = now_seconds() + opt.timeout, quiet_until;
    peer_t p;
    if (!peer_connect(&p, 0, deadline) || !peer_handshake(&p, deadline) || !peer_echo(&p, 100, deadline)) {
        printf("idle: failed: %s\n", failure);
        peer_free(&p);
        return EXIT_FAILED;
    }
    quiet_until = p.last_byte + opt.wait;
    for (;;) {
        struct pollfd pfd = {p.fd, POLLIN, 0};
        int ready = poll(&pfd, 1, poll_timeout_ms(quiet_until, now_seconds()));
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready <= 0)
            break;
        {
            uint8_t byte;
            ssize_t n = recv(p.fd, &byte, 1, MSG_PEEK);
            if (n > 0) {
                printf("idle: failed: the server sent something unasked\n");
                peer_free(&p);
                return EXIT_FAILED;
            }
            if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
                printf("idle: closed_by_server after=%.2f\n", now_seconds() - p.last_byte);
                peer_free(&p);
                return 0;
            }
        }
    }
    deadline = now_seconds() + opt.timeout;
    if (!peer_echo(&p, 100, deadline) || !peer_close(&p, deadline)) {
        printf("idle: failed after the wait: %s\n", failure);
        peer_free(&p);
        return EXIT_FAILED;
    }
    printf("idle: still_served\n");
    peer_free(&p);
    return 0;
}

static int mode_talk(void)
{
    double start = now_seconds(), deadline = start + opt.timeout, end = start + opt.duration;
    size_t echoes = 0;
    peer_t p;
    bool ok = peer_connect(&p, 0, deadline) && peer_handshake(&p, deadline);
    while (ok && now_seconds() < end) {
        struct timespec pause;
        ok = peer_echo(&p, 100, deadline);
        echoes += ok;
        pause.tv_sec = (time_t)opt.interval;
        pause.tv_nsec = (long)((opt.interval - (double)pause.tv_sec) * 1e9);
        if (ok)
            nanosleep(&pause, NULL);
    }
    ok = ok && peer_close(&p, deadline);
    peer_free(&p);
    if (!ok) {
        printf("talk: failed after=%.2f: %s\n", now_seconds() - start, failure);
        return EXIT_FAILED;
    }
    printf("talk: ok echoes=%zu\n", echoes);
    return 0;
}

static int mode_push(void)
{
    peer_t *peers = calloc(opt.count, sizeof *peers);
    struct pollfd *fds = calloc(opt.count + 1, sizeof *fds);
    uint8_t *payload = calloc(1, PUSH_RECORD);
    size_t i, closed = 0;
    unsigned long long sent = 0;
    bool stdin_open = true;
    const char *error;

    if (peers == NULL || fds == NULL || payload == NULL) {
        printf("push: failed: out of memory\n");
        return EXIT_FAILED;
    }
    for (i = 0; i < opt.count; i++) {
        double deadline = now_seconds() + opt.timeout;
        /* The smallest receive buffer: the server's output backs up at once. */
        if (!peer_connect(&peers[i], 1, deadline) || !peer_handshake(&peers[i], deadline)) {
            printf("push: failed: connection %zu: %s\n", i, failure);
            return EXIT_FAILED;
        }
    }
    printf("push: established %zu\n", opt.count);
    fflush(stdout);
    /* A fresh record is sealed for a connection whenever the last is out. */
    while (stdin_open) {
        fds[0].fd = STDIN_FILENO;
        fds[0].events = POLLIN;
        for (i = 0; i < opt.count; i++) {
            fds[i + 1].fd = peers[i].fd;
            fds[i + 1].events = POLLOUT;
        }
        if (poll(fds, opt.count + 1, -1) < 0) {
            if (errno == EINTR)
                continue;
            printf("push: failed: poll: %s\n", strerror(errno));
            return EXIT_FAILED;
        }
        if (fds[0].revents != 0) {
            char line[256];
            if (read(STDIN_FILENO, line, sizeof line) <= 0)
                stdin_open = false;
        }
        for (i = 0; i < opt.count; i++) {
            peer_t *p = &peers[i];
            if (p->fd < 0 || fds[i + 1].revents == 0)
                continue;
            if (fds[i + 1].revents & (POLLERR | POLLHUP)) {
                close(p->fd);
                p->fd = -1;
                closed++;
                continue;
            }
            if (p->in.len == 0) { /* p->in holds the record being sent */
                error = queue_sealed(&p->in, p->channel, payload, PUSH_RECORD, false);
                if (error != NULL) {
                    printf("push: failed: seal: %s\n", error);
                    return EXIT_FAILED;
                }
            }
            for (;;) {
                ssize_t n = send(p->fd, buffer_head(&p->in), p->in.len, MSG_NOSIGNAL);
                if (n > 0) {
                    buffer_consume(&p->in, (size_t)n);
                    sent += (unsigned long long)n;
                    if (p->in.len == 0)
                        break;
                    continue;
                }
                if (n < 0 && errno == EINTR)
                    continue;
                if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                    break;
                close(p->fd); /* the server hung up */
                p->fd = -1;
                closed++;
                break;
            }
        }
    }
    for (i = 0; i < opt.count; i++)
        peer_free(&peers[i]);
    printf("push: sent=%llu closed_by_server=%zu\n", sent, closed);
    free(peers);
    free(fds);
    free(payload);
    return 0;
}

static double seconds_option(const char *value, const char *name)
{
    double seconds;
    if (!parse_seconds(value, &seconds)) {
        char message[128];
        snprintf(message, sizeof message, "%s must be a positive number of seconds", name);
        usage(message);
    }
    return seconds;
}

int main(int argc, char **argv)
{
    char line[256];
    uint8_t secret[PRIVLINE_SEED_LEN];
    size_t len;
    bool have_connect = false, have_network_key = false, have_server_key = false;
    privline_result result;
    int i, status;

    opt.timeout = 30;
    opt.wait = 5;
    opt.interval = 0.5;
    opt.duration = 5;
    opt.size = 1000;
    opt.count = 1;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v == NULL)
            usage("every option takes a value");
        i++;
        if (strcmp(a, "--connect") == 0) {
            if (!split_host_port(v, &opt.host, &opt.port))
                usage("--connect must be HOST:PORT");
            have_connect = true;
        } else if (strcmp(a, "--network-key") == 0) {
            have_network_key = hex_decode(v, opt.network_key, sizeof opt.network_key);
        } else if (strcmp(a, "--server-key") == 0) {
            have_server_key = hex_decode(v, opt.server_key, sizeof opt.server_key);
        } else if (strcmp(a, "--mode") == 0) {
            if (strcmp(v, "echo") != 0 && strcmp(v, "idle") != 0 && strcmp(v, "talk") != 0
                && strcmp(v, "push") != 0)
                usage("--mode must be echo, idle, talk or push");
            opt.mode = v;
        } else if (strcmp(a, "--bind") == 0) {
            opt.bind_address = v;
        } else if (strcmp(a, "--timeout") == 0) {
            opt.timeout = seconds_option(v, a);
        } else if (strcmp(a, "--wait") == 0) {
            opt.wait = seconds_option(v, a);
        } else if (strcmp(a, "--interval") == 0) {
            opt.interval = seconds_option(v, a);
        } else if (strcmp(a, "--duration") == 0) {
            opt.duration = seconds_option(v, a);
        } else if (strcmp(a, "--size") == 0) {
            if (!parse_positive_count(v, PRIVLINE_RECORD_MAX_PAYLOAD_LEN, &opt.size))
                usage("--size must be 1..65518");
        } else if (strcmp(a, "--count") == 0) {
            if (!parse_positive_count(v, 10000, &opt.count))
                usage("--count must be 1..10000");
        } else {
            usage("unknown argument");
        }
    }
    if (!have_connect || !have_network_key || !have_server_key || opt.mode == NULL)
        usage("--connect, --network-key, --server-key (64 hex digits each) and --mode are required");

    /* The secret: the first line of stdin. */
    if (fgets(line, sizeof line, stdin) == NULL)
        usage("the client's secret (64 hex digits) must be the first line of stdin");
    len = strcspn(line, "\r\n");
    line[len] = '\0';
    if (!hex_decode(line, secret, sizeof secret)) {
        wipe(line, sizeof line);
        usage("the first line of stdin must be the client's secret, 64 hex digits");
    }
    wipe(line, sizeof line);
    result = privline_identity_new(secret, sizeof secret, &identity);
    wipe(secret, sizeof secret);
    if (result != PRIVLINE_RESULT_OK) {
        printf("%s: failed: identity: %s\n", opt.mode, privline_result_str(result));
        return EXIT_FAILED;
    }
    signal(SIGPIPE, SIG_IGN);
    srand((unsigned)getpid());

    if (strcmp(opt.mode, "echo") == 0)
        status = mode_echo();
    else if (strcmp(opt.mode, "idle") == 0)
        status = mode_idle();
    else if (strcmp(opt.mode, "talk") == 0)
        status = mode_talk();
    else
        status = mode_push();
    privline_identity_free(identity);
    free(opt.host);
    return status;
}
