/*
 * loadgen: a load driver for the privline echo server (examples-c/server.c).
 *
 *   loadgen --connect HOST:PORT --network-key HEX --secret HEX --server-key HEX
 *           [--clients N] [--total N] [--max-size BYTES] [--seed N]
 *           [--max-connecting N] [--no-barrier] [--time-limit SECONDS]
 *           [--stall-limit SECONDS] [--progress SECONDS]
 *   loadgen --selftest                 SHA-256 known-answer tests
 *   loadgen --hash-stream KEY LEN      the SHA-256 of a payload stream
 *   loadgen --emit-stream KEY LEN      the payload stream itself, on stdout
 *
 * One thread, one poll() loop over non-blocking sockets, like the server.
 * It keeps --clients connections open at once (default 1000) until --total
 * connections (default 10000) have been made. Each connection runs the
 * privline handshake, sends a payload of random length in 0..--max-size
 * (default 262144) in data records of random sizes (1..65536 bytes per
 * seal), then its close, and reads the echo until the server's close.
 *
 * Checking: the payload of connection i is a deterministic pseudo-random
 * stream (a counter-mode splitmix64 keyed by --seed and i), so it is never
 * stored: every echoed byte is compared with the stream regenerated at its
 * offset, and the SHA-256 of all bytes sent and of all bytes echoed are
 * computed per connection and must match. A connection succeeds only if the
 * echo is exactly the payload (same length, every byte, same digest) and
 * ends with the server's close. The SHA-256 is implemented here (FIPS 180-4,
 * checked by --selftest against the NIST vectors, and by run.sh against
 * Python's hashlib through --hash-stream / --emit-stream), so the driver
 * needs nothing but libprivline.
 *
 * The first --clients connections wait after their handshake until all of
 * them have finished theirs (unless --no-barrier), so the server really holds
 * --clients established channels at once; after that a finished connection
 * is replaced at once. At most --max-connecting connections are in the
 * connect/handshake phase at a time (default 128, the server's backlog).
 *
 * stdout, at the end, one line:
 *   loadgen: connections=N handshakes=N echoes=N failures=N bytes_sent=N
 *            bytes_checked=N peak_concurrent=N elapsed_s=S ... digest=HEX
 * (digest: SHA-256 over the per-connection digests in connection order; a
 * function of --seed, --total and --max-size only). stderr: one line per
 * failed connection (the first 50), progress lines with --progress.
 * Exit 0 only if every connection succeeded.
 */

#define _POSIX_C_SOURCE 200809L

#include "common.h"
#include "privline.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#define READ_CHUNK (64u * 1024u)
#define SEAL_CHUNK_MAX 65536u    /* payload bytes per seal: 1..this (above 65518: two records) */
#define OUT_HIGH_WATER (128u * 1024u) /* seal more only while less than this waits to be sent */
#define MAX_REPORTED_FAILURES 50

/* ---------------------------------------------------------------- SHA-256 */

typedef struct {
    uint32_t h[8];
    uint64_t total;
    uint8_t block[64];
    size_t used;
} sha256_ctx;

static const uint32_t sha256_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#define ROR32(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_init(sha256_ctx *c)
{
    static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(c->h, iv, sizeof iv);
    c->total = 0;
    c->used = 0;
}

static void sha256_block(uint32_t h[8], const uint8_t *p)
{
    uint32_t w[64], a, b, cc, d, e, f, g, hh, t1, t2;
    int i;
    for (i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8
               | (uint32_t)p[4 * i + 3];
    for (i = 16; i < 64; i++) {
        uint32_t s0 = ROR32(w[i - 15], 7) ^ ROR32(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROR32(w[i - 2], 17) ^ ROR32(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    a = h[0], b = h[1], cc = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (i = 0; i < 64; i++) {
        t1 = hh + (ROR32(e, 6) ^ ROR32(e, 11) ^ ROR32(e, 25)) + ((e & f) ^ (~e & g)) + sha256_k[i] + w[i];
        t2 = (ROR32(a, 2) ^ ROR32(a, 13) ^ ROR32(a, 22)) + ((a & b) ^ (a & cc) ^ (b & cc));
        hh = g, g = f, f = e, e = d + t1, d = cc, cc = b, b = a, a = t1 + t2;
    }
    h[0] += a, h[1] += b, h[2] += cc, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += hh;
}

static void sha256_update(sha256_ctx *c, const uint8_t *p, size_t n)
{
    c->total += n;
    if (c->used > 0) {
        size_t take = 64 - c->used < n ? 64 - c->used : n;
        memcpy(c->block + c->used, p, take);
        c->used += take, p += take, n -= take;
        if (c->used < 64)
            return;
        sha256_block(c->h, c->block);
        c->used = 0;
    }
    for (; n >= 64; p += 64, n -= 64)
        sha256_block(c->h, p);
    memcpy(c->block, p, n);
    c->used = n;
}

static void sha256_final(sha256_ctx *c, uint8_t out[32])
{
    uint64_t bits = c->total * 8;
    int i;
    c->block[c->used++] = 0x80;
    if (c->used > 56) {
        memset(c->block + c->used, 0, 64 - c->used);
        sha256_block(c->h, c->block);
        c->used = 0;
    }
    memset(c->block + c->used, 0, 56 - c->used);
    for (i = 0; i < 8; i++)
        c->block[56 + i] = (uint8_t)(bits >> (56 - 8 * i));
    sha256_block(c->h, c->block);
    for (i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(c->h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(c->h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(c->h[i] >> 8);
        out[4 * i + 3] = (uint8_t)c->h[i];
    }
}

/* ------------------------------------------------------- payload streams */

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Byte `offset` .. `offset + len` of the stream `key`: byte j is byte j % 8
 * (little-endian) of mix64(key + (j / 8 + 1) * golden). Random access, so
 * the echo is checked without keeping what was sent. */
static void stream_bytes(uint64_t key, uint64_t offset, uint8_t *out, size_t len)
{
    uint64_t word = offset / 8;
    size_t skip = (size_t)(offset % 8), i = 0;
    while (i < len) {
        uint64_t v = mix64(key + (word + 1) * 0x9e3779b97f4a7c15ULL);
        uint8_t bytes[8];
        size_t b;
        for (b = 0; b < 8; b++)
            bytes[b] = (uint8_t)(v >> (8 * b));
        for (b = skip; b < 8 && i < len; b++)
            out[i++] = bytes[b];
        skip = 0;
        word++;
    }
}

/* A small generator for sizes and chunk lengths. */
static uint64_t rng_next(uint64_t *state)
{
    *state += 0x9e3779b97f4a7c15ULL;
    return mix64(*state);
}

/* ------------------------------------------------------------ the driver */

typedef enum { SLOT_FREE, SLOT_CONNECTING, SLOT_HANDSHAKE, SLOT_BARRIER, SLOT_CHANNEL } slot_state;

typedef struct {
    int fd;
    slot_state state;
    uint64_t number; /* connection number, 0 .. total-1 */
    uint64_t key;    /* payload stream key */
    uint64_t rng;    /* chunk sizes */
    size_t size;     /* payload bytes to send */
    size_t sealed;   /* payload bytes sealed so far */
    size_t checked;  /* echoed payload bytes received and checked */
    bool close_sealed;
    privline_handshake *handshake;
    privline_channel *channel;
    buffer_t in, out;
    sha256_ctx sent_hash, echo_hash;
    double started, established, last_progress;
} slot_t;

static struct {
    char *host;
    const char *port;
    uint8_t network_key[PRIVLINE_NETWORK_KEY_LEN];
    uint8_t secret[PRIVLINE_SEED_LEN];
    uint8_t server_key[PRIVLINE_PUBLIC_KEY_LEN];
    size_t clients, total, max_size, max_connecting;
    uint64_t seed;
    bool barrier;
    double time_limit, stall_limit, progress;
} opt;

static struct sockaddr_storage server_addr;
static socklen_t server_addr_len;
static slot_t *slots;
static uint8_t (*digests)[32]; /* per connection, in connection order */
static double *hs_latency;     /* seconds from connect to handshake done, per connection */
static double *echo_latency;   /* seconds from handshake done to the server's close */
static uint8_t gen_buf[SEAL_CHUNK_MAX], expect_buf[PRIVLINE_OPEN_MAX_OUTPUT_LEN], open_buf[PRIVLINE_OPEN_MAX_OUTPUT_LEN];

static struct {
    uint64_t launched, handshakes, echoes, failures, bytes_sent, bytes_checked, connect_retries;
    size_t open_now, connecting_now, peak_concurrent, peak_established, established_now;
    size_t barrier_waiting;
    bool barrier_released;
} st;

static void usage(const char *message)
{
    if (message)
        fprintf(stderr, "loadgen: %s\n", message);
    fputs("usage: loadgen --connect HOST:PORT --network-key HEX --secret HEX --server-key HEX\n"
          "               [--clients N] [--total N] [--max-size BYTES] [--seed N] [--max-connecting N]\n"
          "               [--no-barrier] [--time-limit SECONDS] [--stall-limit SECONDS] [--progress SECONDS]\n"
          "       loadgen --selftest | --hash-stream KEY LEN | --emit-stream KEY LEN\n",
          stderr);
    exit(EXIT_USAGE);
}

static size_t parse_count(const char *text, const char *what, size_t min, size_t max)
{
    char *end = NULL;
    unsigned long long v;
    errno = 0;
    v = strtoull(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < min || v > max) {
        fprintf(stderr, "loadgen: %s must be a whole number in %zu..%zu\n", what, min, max);
        usage(NULL);
    }
    return (size_t)v;
}

static void hex32(const uint8_t d[32], char out[65])
{
    hex_encode(d, 32, out);
}

/* Ends the connection in `s` (library state, socket) and frees the slot;
 * its buffers' storage is kept for the slot's next connection. */
static void slot_release(slot_t *s)
{
    privline_handshake_free(s->handshake);
    s->handshake = NULL;
    privline_channel_free(s->channel);
    s->channel = NULL;
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    if (s->state == SLOT_CONNECTING || s->state == SLOT_HANDSHAKE)
        st.connecting_now--;
    if (s->state == SLOT_BARRIER || s->state == SLOT_CHANNEL)
        st.established_now--;
    if (s->state == SLOT_BARRIER)
        st.barrier_waiting--;
    /* Keep the buffers' storage for the next connection of this slot. */
    s->in.start = s->in.len = 0;
    s->out.start = s->out.len = 0;
    s->state = SLOT_FREE;
    st.open_now--;
}

static void slot_fail(slot_t *s, const char *format, ...)
{
    va_list args;
    st.failures++;
    if (st.failures <= MAX_REPORTED_FAILURES) {
        fprintf(stderr, "loadgen: connection %" PRIu64 " (payload %zu bytes, %zu sent, %zu checked) failed: ",
                s->number, s->size, s->sealed, s->checked);
        va_start(args, format);
        vfprintf(stderr, format, args);
        va_end(args);
        fputc('\n', stderr);
    }
    slot_release(s);
}

static bool resolve_server(void)
{
    struct addrinfo *found = NULL;
    int rc = resolve_tcp(opt.host, opt.port, false, &found);
    if (rc != 0) {
        fprintf(stderr, "loadgen: cannot resolve %s: %s\n", opt.host, gai_strerror(rc));
        return false;
    }
    memcpy(&server_addr, found->ai_addr, found->ai_addrlen);
    server_addr_len = found->ai_addrlen;
    freeaddrinfo(found);
    return true;
}

/* Starts connection number st.launched in slot `s`. */
static void slot_start(slot_t *s, double now)
{
    int one = 1;
    privline_result result;

    s->number = st.launched++;
    s->key = mix64(opt.seed * 0x2545f4914f6cdd1dULL + s->number + 1);
    s->rng = s->key ^ 0x5851f42d4c957f2dULL;
    s->size = (size_t)(rng_next(&s->rng) % (opt.max_size + 1));
    s->sealed = s->checked = 0;
    s->close_sealed = false;
    s->started = s->last_progress = now;
    s->established = 0;
    sha256_init(&s->sent_hash);
    sha256_init(&s->echo_hash);
    st.open_now++;
    st.connecting_now++;
    s->state = SLOT_CONNECTING;
    if (st.open_now > st.peak_concurrent)
        st.peak_concurrent = st.open_now;

    s->fd = socket(server_addr.ss_family, SOCK_STREAM, 0);
    if (s->fd < 0) {
        slot_fail(s, "socket: %s", strerror(errno));
        return;
    }
    if (!set_nonblocking(s->fd)) {
        slot_fail(s, "fcntl: %s", strerror(errno));
        return;
    }
    setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    result = privline_handshake_new_client(opt.network_key, opt.secret, opt.server_key, &s->handshake);
    if (result != PRIVLINE_RESULT_OK) {
        slot_fail(s, "cannot start the handshake: %s", privline_result_str(result));
        return;
    }
    if (connect(s->fd, (struct sockaddr *)&server_addr, server_addr_len) != 0 && errno != EINPROGRESS) {
        slot_fail(s, "connect: %s", strerror(errno));
        return;
    }
}

/* Seals payload (and then the close) while the output backlog is small. */
static void slot_fill(slot_t *s)
{
    while (s->state == SLOT_CHANNEL && s->out.len < OUT_HIGH_WATER && !s->close_sealed) {
        size_t chunk = 0, need, written;
        uint8_t *room;
        privline_result result;
        if (s->sealed < s->size) {
            chunk = (size_t)(rng_next(&s->rng) % SEAL_CHUNK_MAX) + 1;
            if (chunk > s->size - s->sealed)
                chunk = s->size - s->sealed;
            stream_bytes(s->key, s->sealed, gen_buf, chunk);
            sha256_update(&s->sent_hash, gen_buf, chunk);
            need = privline_sealed_len(chunk);
        } else {
            need = PRIVLINE_RECORD_OVERHEAD_LEN;
        }
        for (;;) {
            room = buffer_reserve(&s->out, need);
            if (room == NULL) {
                slot_fail(s, "out of memory");
                return;
            }
            written = need;
            if (s->sealed < s->size)
                result = privline_channel_seal(s->channel, gen_buf, chunk, 0, room, &written);
            else
                result = privline_channel_close(s->channel, 0, room, &written);
            if (result == PRIVLINE_RESULT_BUFFER_TOO_SMALL && written > need) {
                need = written;
                continue;
            }
            break;
        }
        if (result != PRIVLINE_RESULT_OK) {
            slot_fail(s, "cannot seal: %s", privline_result_str(result));
            return;
        }
        buffer_commit(&s->out, written);
        if (s->sealed < s->size) {
            s->sealed += chunk;
            st.bytes_sent += chunk;
        } else {
            s->close_sealed = true;
        }
    }
}

static void slot_succeed(slot_t *s, double now)
{
    uint8_t sent[32], echoed[32];
    char a[65], b[65];
    bool closed = false;
    if (s->checked != s->size || !s->close_sealed) {
        slot_fail(s, "the server closed after %zu of %zu echoed bytes", s->checked, s->size);
        return;
    }
    if (privline_channel_peer_closed(s->channel, &closed) != PRIVLINE_RESULT_OK || !closed) {
        slot_fail(s, "close record seen but peer_closed is false");
        return;
    }
    sha256_final(&s->sent_hash, sent);
    sha256_final(&s->echo_hash, echoed);
    if (memcmp(sent, echoed, 32) != 0) {
        hex32(sent, a);
        hex32(echoed, b);
        slot_fail(s, "SHA-256 mismatch: sent %s, echoed %s", a, b);
        return;
    }
    memcpy(digests[s->number], sent, 32);
    echo_latency[s->number] = now - s->established;
    st.echoes++;
    slot_release(s);
}

/* Opens what has arrived and checks it. */
static void slot_open(slot_t *s, double now)
{
    while (s->state == SLOT_CHANNEL && s->in.len > 0) {
        size_t consumed = 0, len = sizeof open_buf;
        privline_record_type type = PRIVLINE_RECORD_NONE;
        privline_result result =
            privline_channel_open(s->channel, buffer_head(&s->in), s->in.len, &consumed, open_buf, &len, &type);
        if (result != PRIVLINE_RESULT_OK) {
            slot_fail(s, "bad record from the server: %s", privline_result_str(result));
            return;
        }
        buffer_consume(&s->in, consumed);
        if (type == PRIVLINE_RECORD_NONE)
            return;
        if (type == PRIVLINE_RECORD_KEY_UPDATE)
            continue;
        if (type == PRIVLINE_RECORD_CLOSE) {
            slot_succeed(s, now);
            return;
        }
        if (type != PRIVLINE_RECORD_DATA) {
            slot_fail(s, "unexpected record type %u", (unsigned)type);
            return;
        }
        if (len > s->sealed - s->checked) {
            slot_fail(s, "echo of %zu bytes at offset %zu, but only %zu were sent", len, s->checked, s->sealed);
            return;
        }
        stream_bytes(s->key, s->checked, expect_buf, len);
        if (memcmp(expect_buf, open_buf, len) != 0) {
            size_t i = 0;
            while (expect_buf[i] == open_buf[i])
                i++;
            slot_fail(s, "echoed byte %zu differs (0x%02x, sent 0x%02x)", s->checked + i, open_buf[i],
                      expect_buf[i]);
            return;
        }
        sha256_update(&s->echo_hash, open_buf, len);
        s->checked += len;
        st.bytes_checked += len;
        s->last_progress = now;
    }
}

static void slot_release_barrier(double now)
{
    size_t i;
    st.barrier_released = true;
    for (i = 0; i < opt.clients; i++) {
        slot_t *s = &slots[i];
        if (s->state == SLOT_BARRIER) {
            s->state = SLOT_CHANNEL;
            st.barrier_waiting--;
            s->last_progress = now;
            slot_fill(s);
        }
    }
}

/* Steps the handshake over what has arrived. */
static void slot_handshake(slot_t *s, double now)
{
    uint8_t server_key[PRIVLINE_PUBLIC_KEY_LEN];
    const char *failure = "refused";
    switch (handshake_advance(&s->handshake, &s->in, &s->out, NULL, server_key, &s->channel, &failure)) {
    case ADVANCE_WAITING:
        return;
    case ADVANCE_FAILED:
    case ADVANCE_REFUSED: /* never: a client is not asked to authorize */
        slot_fail(s, "handshake failed: %s", failure);
        return;
    case ADVANCE_DONE:
        break;
    }
    st.handshakes++;
    st.connecting_now--;
    st.established_now++;
    if (st.established_now > st.peak_established)
        st.peak_established = st.established_now;
    s->established = s->last_progress = now;
    hs_latency[s->number] = now - s->started;
    if (opt.barrier && !st.barrier_released) {
        s->state = SLOT_BARRIER;
        st.barrier_waiting++;
        if (st.barrier_waiting == opt.clients || st.barrier_waiting == opt.total)
            slot_release_barrier(now);
    } else {
        s->state = SLOT_CHANNEL;
        slot_fill(s);
        slot_open(s, now); /* records right after M4 */
    }
}

static void slot_send(slot_t *s, double now)
{
    while (s->out.len > 0) {
        ssize_t n = send(s->fd, buffer_head(&s->out), s->out.len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            slot_fail(s, "send: %s", strerror(errno));
            return;
        }
        buffer_consume(&s->out, (size_t)n);
        s->last_progress = now;
        if (s->state == SLOT_CHANNEL && s->out.len < OUT_HIGH_WATER)
            slot_fill(s);
    }
}

static void slot_recv(slot_t *s, double now)
{
    ssize_t n = buffer_recv(s->fd, &s->in, READ_CHUNK, SIZE_MAX);
    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            slot_fail(s, "recv: %s", strerror(errno));
        return;
    }
    if (n == 0) {
        slot_fail(s, s->state == SLOT_CHANNEL ? "truncated: the server hung up without close"
                                              : "the server hung up during the handshake");
        return;
    }
    s->last_progress = now;
    if (s->state == SLOT_HANDSHAKE)
        slot_handshake(s, now);
    else if (s->state == SLOT_CHANNEL)
        slot_open(s, now);
    else if (s->state == SLOT_BARRIER && s->in.len > 0)
        slot_fail(s, "the server sent a record before we sent anything");
}

static void slot_connected(slot_t *s, double now)
{
    int error = 0;
    socklen_t len = sizeof error;
    if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &error, &len) != 0)
        error = errno;
    if (error != 0) {
        slot_fail(s, "connect: %s", strerror(error));
        return;
    }
    s->state = SLOT_HANDSHAKE;
    s->last_progress = now;
    slot_handshake(s, now); /* M1 */
    if (s->state == SLOT_HANDSHAKE)
        slot_send(s, now);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Quantile q of the first n values of `v` (sorted in place). */
static double quantile(double *v, size_t n, double q)
{
    size_t i;
    if (n == 0)
        return 0;
    qsort(v, n, sizeof *v, cmp_double);
    i = (size_t)(q * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

static int selftest(void)
{
    static const struct {
        const char *msg;
        size_t repeat;
        const char *hex;
    } vectors[] = {
        {"", 1, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", 1, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 1,
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
        {"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrst"
         "nopqrstu",
         1, "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"},
        {"a", 1000000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"},
    };
    size_t i, r;
    int bad = 0;
    for (i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        sha256_ctx c;
        uint8_t d[32];
        char hex[65];
        sha256_init(&c);
        for (r = 0; r < vectors[i].repeat; r++) /* byte-wise updates exercise the partial-block path */
            sha256_update(&c, (const uint8_t *)vectors[i].msg, strlen(vectors[i].msg));
        sha256_final(&c, d);
        hex32(d, hex);
        if (strcmp(hex, vectors[i].hex) != 0) {
            fprintf(stderr, "loadgen: SHA-256 vector %zu: got %s, want %s\n", i, hex, vectors[i].hex);
            bad = 1;
        }
    }
    printf("loadgen selftest: %s\n", bad ? "FAILED" : "ok");
    return bad;
}

/* --hash-stream / --emit-stream: the stream in odd-sized pieces. */
static int stream_tool(bool emit, const char *key_text, const char *len_text)
{
    uint64_t key = strtoull(key_text, NULL, 0);
    size_t len = parse_count(len_text, "LEN", 0, (size_t)1 << 34), off = 0, piece = 1;
    sha256_ctx c;
    uint8_t d[32];
    char hex[65];
    sha256_init(&c);
    while (off < len) {
        size_t n = piece < len - off ? piece : len - off;
        stream_bytes(key, off, gen_buf, n);
        if (emit) {
            if (fwrite(gen_buf, 1, n, stdout) != n)
                return 1;
        } else {
            sha256_update(&c, gen_buf, n);
        }
        off += n;
        piece = piece * 7 % 65521 + 1; /* 1, 8, 57, ...: every alignment */
    }
    if (!emit) {
        sha256_final(&c, d);
        hex32(d, hex);
        printf("%s\n", hex);
    }
    return fflush(stdout) == 0 ? 0 : 1;
}

static void parse_args(int argc, char **argv)
{
    bool have_connect = false, have_nk = false, have_secret = false, have_server = false;
    int i;
    opt.clients = 1000;
    opt.total = 10000;
    opt.max_size = 256 * 1024;
    opt.max_connecting = 128;
    opt.seed = 1;
    opt.barrier = true;
    opt.time_limit = 600;
    opt.stall_limit = 60;
    opt.progress = 0;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--no-barrier") == 0) {
            opt.barrier = false;
            continue;
        }
        if (i + 1 >= argc)
            usage("missing value");
        if (strcmp(a, "--connect") == 0) {
            if (!split_host_port(argv[++i], &opt.host, &opt.port))
                usage("--connect must be HOST:PORT");
            have_connect = true;
        } else if (strcmp(a, "--network-key") == 0) {
            have_nk = hex_decode(argv[++i], opt.network_key, sizeof opt.network_key);
        } else if (strcmp(a, "--secret") == 0) {
            have_secret = hex_decode(argv[++i], opt.secret, sizeof opt.secret);
        } else if (strcmp(a, "--server-key") == 0) {
            have_server = hex_decode(argv[++i], opt.server_key, sizeof opt.server_key);
        } else if (strcmp(a, "--clients") == 0) {
            opt.clients = parse_count(argv[++i], "--clients", 1, 100000);
        } else if (strcmp(a, "--total") == 0) {
            opt.total = parse_count(argv[++i], "--total", 1, 100000000);
        } else if (strcmp(a, "--max-size") == 0) {
            opt.max_size = parse_count(argv[++i], "--max-size", 0, (size_t)1 << 30);
        } else if (strcmp(a, "--max-connecting") == 0) {
            opt.max_connecting = parse_count(argv[++i], "--max-connecting", 1, 100000);
        } else if (strcmp(a, "--seed") == 0) {
            opt.seed = parse_count(argv[++i], "--seed", 0, SIZE_MAX);
        } else if (strcmp(a, "--time-limit") == 0) {
            if (!parse_seconds(argv[++i], &opt.time_limit))
                usage("--time-limit must be a positive number of seconds");
        } else if (strcmp(a, "--stall-limit") == 0) {
            if (!parse_seconds(argv[++i], &opt.stall_limit))
                usage("--stall-limit must be a positive number of seconds");
        } else if (strcmp(a, "--progress") == 0) {
            if (!parse_seconds(argv[++i], &opt.progress))
                usage("--progress must be a positive number of seconds");
        } else {
            usage("unknown argument");
        }
    }
    if (!have_connect || !have_nk || !have_secret || !have_server)
        usage("--connect, --network-key, --secret and --server-key are required (keys: 64 hex digits)");
    if (opt.clients > opt.total)
        opt.clients = opt.total;
}

int main(int argc, char **argv)
{
    struct pollfd *fds;
    size_t *fd_slot;
    struct rlimit rl;
    struct sigaction sa;
    double start, now, next_progress;
    size_t i;
    uint8_t all_digest[32];
    char all_hex[65];
    sha256_ctx all;
    bool timed_out = false;

    if (argc == 2 && strcmp(argv[1], "--selftest") == 0)
        return selftest();
    if (argc == 4 && (strcmp(argv[1], "--hash-stream") == 0 || strcmp(argv[1], "--emit-stream") == 0))
        return stream_tool(strcmp(argv[1], "--emit-stream") == 0, argv[2], argv[3]);
    parse_args(argc, argv);

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < opt.clients + 16) {
        fprintf(stderr, "loadgen: the file descriptor limit (%llu) is too low for %zu clients (ulimit -n)\n",
                (unsigned long long)rl.rlim_cur, opt.clients);
        return EXIT_FAILED;
    }
    if (!resolve_server())
        return EXIT_FAILED;

    slots = calloc(opt.clients, sizeof *slots);
    fds = calloc(opt.clients, sizeof *fds);
    fd_slot = calloc(opt.clients, sizeof *fd_slot);
    digests = calloc(opt.total, sizeof *digests);
    hs_latency = calloc(opt.total, sizeof *hs_latency);
    echo_latency = calloc(opt.total, sizeof *echo_latency);
    if (!slots || !fds || !fd_slot || !digests || !hs_latency || !echo_latency) {
        fprintf(stderr, "loadgen: out of memory\n");
        return EXIT_FAILED;
    }
    for (i = 0; i < opt.clients; i++)
        slots[i].fd = -1;

    start = now = now_seconds();
    next_progress = start + opt.progress;
    while (st.launched < opt.total || st.open_now > 0) {
        size_t nfds = 0;
        int ready;

        now = now_seconds();
        if (now - start > opt.time_limit) {
            timed_out = true;
            break;
        }
        /* New connections into free slots. */
        for (i = 0; i < opt.clients && st.launched < opt.total && st.connecting_now < opt.max_connecting; i++)
            if (slots[i].state == SLOT_FREE)
                slot_start(&slots[i], now);
        if (opt.barrier && !st.barrier_released && st.launched == (uint64_t)opt.clients
            && st.barrier_waiting > 0 && st.barrier_waiting == st.open_now)
            slot_release_barrier(now); /* some of the first wave failed: go on with the rest */
        /* Connections that stopped moving. */
        for (i = 0; i < opt.clients; i++) {
            slot_t *s = &slots[i];
            if (s->state != SLOT_FREE && s->state != SLOT_BARRIER && now - s->last_progress > opt.stall_limit)
                slot_fail(s, "no progress for %.0f seconds (state %d)", opt.stall_limit, (int)s->state);
        }
        for (i = 0; i < opt.clients; i++) {
            slot_t *s = &slots[i];
            short events;
            if (s->state == SLOT_FREE)
                continue;
            if (s->state == SLOT_CONNECTING)
                events = POLLOUT;
            else
                events = POLLIN | (s->out.len > 0 ? POLLOUT : 0);
            fds[nfds].fd = s->fd;
            fds[nfds].events = events;
            fds[nfds].revents = 0;
            fd_slot[nfds++] = i;
        }
        if (nfds == 0)
            continue;
        ready = poll(fds, nfds, 100);
        if (ready < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "loadgen: poll: %s\n", strerror(errno));
            return EXIT_FAILED;
        }
        now = now_seconds();
        for (i = 0; i < nfds && ready > 0; i++) {
            slot_t *s = &slots[fd_slot[i]];
            short re = fds[i].revents;
            if (re == 0)
                continue;
            if (s->state == SLOT_CONNECTING) {
                slot_connected(s, now);
                continue;
            }
            if (re & (POLLIN | POLLERR | POLLHUP))
                slot_recv(s, now);
            if (s->state != SLOT_FREE && s->out.len > 0)
                slot_send(s, now);
        }
        if (opt.progress > 0 && now >= next_progress) {
            fprintf(stderr,
                    "loadgen: %.1fs launched=%" PRIu64 " echoes=%" PRIu64 " failures=%" PRIu64
                    " open=%zu established=%zu checked=%.1fMiB\n",
                    now - start, st.launched, st.echoes, st.failures, st.open_now, st.established_now,
                    (double)st.bytes_checked / 1048576.0);
            next_progress = now + opt.progress;
        }
    }
    now = now_seconds();
    if (timed_out) {
        size_t left = st.open_now;
        for (i = 0; i < opt.clients; i++)
            if (slots[i].state != SLOT_FREE)
                slot_fail(&slots[i], "still running at the --time-limit");
        st.failures += opt.total - st.launched;
        fprintf(stderr, "loadgen: time limit of %.0f s reached with %zu connections open, %" PRIu64
                        " not started\n",
                opt.time_limit, left, (uint64_t)opt.total - st.launched);
    }

    sha256_init(&all);
    for (i = 0; i < opt.total; i++)
        sha256_update(&all, digests[i], 32);
    sha256_final(&all, all_digest);
    hex32(all_digest, all_hex);
    {
        double elapsed = now - start;
        uint64_t n_hs = st.handshakes;
        double hs50 = quantile(hs_latency, opt.total, 0.5), hs99 = quantile(hs_latency, opt.total, 0.99),
               hsmax = quantile(hs_latency, opt.total, 1.0);
        double e50 = quantile(echo_latency, opt.total, 0.5), e99 = quantile(echo_latency, opt.total, 0.99),
               emax = quantile(echo_latency, opt.total, 1.0);
        printf("loadgen: connections=%" PRIu64 " handshakes=%" PRIu64 " echoes=%" PRIu64 " failures=%" PRIu64
               " bytes_sent=%" PRIu64 " bytes_checked=%" PRIu64 " peak_concurrent=%zu peak_established=%zu"
               " elapsed_s=%.2f handshakes_per_s=%.0f echo_mib_per_s=%.1f"
               " handshake_ms_p50=%.1f handshake_ms_p99=%.1f handshake_ms_max=%.1f"
               " echo_ms_p50=%.1f echo_ms_p99=%.1f echo_ms_max=%.1f digest=%s\n",
               st.launched, n_hs, st.echoes, st.failures, st.bytes_sent, st.bytes_checked, st.peak_concurrent,
               st.peak_established, elapsed, elapsed > 0 ? (double)n_hs / elapsed : 0,
               elapsed > 0 ? (double)st.bytes_checked / 1048576.0 / elapsed : 0, hs50 * 1e3, hs99 * 1e3,
               hsmax * 1e3, e50 * 1e3, e99 * 1e3, emax * 1e3, all_hex);
    }
    fflush(stdout);

    for (i = 0; i < opt.clients; i++) {
        buffer_free(&slots[i].in);
        buffer_free(&slots[i].out);
    }
    free(slots);
    free(fds);
    free(fd_slot);
    free(digests);
    free(hs_latency);
    free(echo_latency);
    free(opt.host);
    wipe(opt.secret, sizeof opt.secret);
    return (st.failures == 0 && st.echoes == opt.total) ? 0 : EXIT_FAILED;
}
