/*
 * threads.c: the privline C ABI used from several threads at once, for both
 * protocols (privline/1 and SHS1), entirely in memory.
 *
 *   duplex      On each of two connected channels one writer thread seals
 *               messages of varied sizes (multi-record ones, and empty ones
 *               where the protocol seals something) while one reader thread
 *               opens the peer's records. Two ring-buffer byte queues
 *               (mutex + condition variables) are the network. Every byte
 *               arrives intact and in order, no call returns BUSY, and each
 *               side sees the other's close.
 *   contention  Two threads sealing on one channel: every result is OK or
 *               BUSY. The records of the OK calls are opened by the peer in
 *               the order given by tickets taken before and after each call
 *               (sound only when the OK calls did not overlap in time; a
 *               trial where they did is counted as not order-checked). SHS1:
 *               the sending nonce advanced by exactly two per OK seal.
 *               Afterwards the channel still seals and the peer opens.
 *               Two threads opening on one channel: one opens real records,
 *               the other a record prefix: OK (DATA or NONE) or BUSY only.
 *               Two threads on one handshake handle (step, peer_key,
 *               authorize): OK, BUSY or WRONG_STATE only, and the handshake
 *               completes.
 *   aliasing    Overlapping buffers / out-pointers for seal, open and
 *               handshake_step are INVALID_ARGUMENT and change nothing;
 *               privline_handshake_into_channel(&p, &p) leaves the channel in p.
 *
 * Usage: threads [SCALE]   (SCALE, default 100, sets the message and
 * iteration counts in percent; tests/c/run.sh uses a small one under
 * valgrind). Prints failed checks and ends with exactly one line
 * "threads: N passed, M failed"; exits non-zero on any failure.
 *
 * Build with -DTHREADS_OLD_HEADER against a header without
 * PRIVLINE_RESULT_BUSY (before the change that added it).
 */

#define _POSIX_C_SOURCE 200809L

/* Only the first failures: a broken lock would fail thousands of times. */
#define CHECK_PRINT_LIMIT 50ul

#include "privline.h"
#include "check.h"

#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef THREADS_OLD_HEADER
#define RESULT_BUSY ((privline_result)8u)
#else
#define RESULT_BUSY PRIVLINE_RESULT_BUSY
#endif

static int scale = 100; /* percent */

static int scaled(int n)
{
    int v = n * scale / 100;
    return v < 2 ? 2 : v;
}

static const char *protocol_name(uint32_t protocol)
{
    return protocol == PRIVLINE_PROTOCOL_SHS1 ? "shs1" : "privline1";
}

/* ------------------------------------------------------------------------ */
/* Test data: a deterministic byte stream per (seed)                        */
/* ------------------------------------------------------------------------ */

typedef struct {
    uint32_t x;
} gen;

static void gen_init(gen *g, uint32_t seed)
{
    g->x = seed * 2654435761u + 0x9E3779B9u;
    if (g->x == 0)
        g->x = 1;
}

static uint8_t gen_next(gen *g)
{
    g->x ^= g->x << 13;
    g->x ^= g->x >> 17;
    g->x ^= g->x << 5;
    return (uint8_t)(g->x >> 24);
}

static void fill(uint8_t *buf, size_t n, uint32_t seed)
{
    gen g;
    size_t i;
    gen_init(&g, seed);
    for (i = 0; i < n; i++)
        buf[i] = gen_next(&g);
}

/* ------------------------------------------------------------------------ */
/* A blocking byte queue: a ring buffer with a mutex and condition variables */
/* ------------------------------------------------------------------------ */

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t not_empty;
    pthread_cond_t not_full;
    uint8_t *ring;
    size_t cap, head, len;
    int aborted; /* a side failed: wake everyone, move nothing more */
} bqueue;

static void bq_init(bqueue *q, size_t cap)
{
    pthread_mutex_init(&q->lock, NULL);
    pthread_cond_init(&q->not_empty, NULL);
    pthread_cond_init(&q->not_full, NULL);
    q->ring = (uint8_t *)xmalloc(cap);
    q->cap = cap;
    q->head = q->len = 0;
    q->aborted = 0;
}

static void bq_destroy(bqueue *q)
{
    pthread_mutex_destroy(&q->lock);
    pthread_cond_destroy(&q->not_empty);
    pthread_cond_destroy(&q->not_full);
    free(q->ring);
}

static void bq_abort(bqueue *q)
{
    pthread_mutex_lock(&q->lock);
    q->aborted = 1;
    pthread_cond_broadcast(&q->not_empty);
    pthread_cond_broadcast(&q->not_full);
    pthread_mutex_unlock(&q->lock);
}

/* Appends all n bytes (blocking while full); 0 if the queue was aborted. */
static int bq_push(bqueue *q, const uint8_t *bytes, size_t n)
{
    pthread_mutex_lock(&q->lock);
    while (n > 0) {
        size_t tail, room, part;
        while (q->len == q->cap && !q->aborted)
            pthread_cond_wait(&q->not_full, &q->lock);
        if (q->aborted) {
            pthread_mutex_unlock(&q->lock);
            return 0;
        }
        tail = (q->head + q->len) % q->cap;
        room = q->cap - q->len;
        part = n < room ? n : room;
        if (part > q->cap - tail)
            part = q->cap - tail;
        memcpy(q->ring + tail, bytes, part);
        q->len += part;
        bytes += part;
        n -= part;
        pthread_cond_signal(&q->not_empty);
    }
    pthread_mutex_unlock(&q->lock);
    return 1;
}

/* Takes 1..max bytes (blocking while empty); 0 if the queue was aborted. */
static size_t bq_pop(bqueue *q, uint8_t *dst, size_t max)
{
    size_t part;
    pthread_mutex_lock(&q->lock);
    while (q->len == 0 && !q->aborted)
        pthread_cond_wait(&q->not_empty, &q->lock);
    if (q->aborted) {
        pthread_mutex_unlock(&q->lock);
        return 0;
    }
    part = q->len < max ? q->len : max;
    if (part > q->cap - q->head)
        part = q->cap - q->head;
    memcpy(dst, q->ring + q->head, part);
    q->head = (q->head + part) % q->cap;
    q->len -= part;
    pthread_cond_signal(&q->not_full);
    pthread_mutex_unlock(&q->lock);
    return part;
}

/* ------------------------------------------------------------------------ */
/* A growable byte buffer (single-threaded)                                 */
/* ------------------------------------------------------------------------ */

typedef struct {
    uint8_t *data;
    size_t len, cap;
} bytes;

static void b_reserve(bytes *b, size_t extra)
{
    if (b->len + extra > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        uint8_t *grown;
        while (cap < b->len + extra)
            cap *= 2;
        grown = (uint8_t *)realloc(b->data, cap);
        if (grown == NULL) {
            fprintf(stderr, "out of memory\n");
            exit(2);
        }
        b->data = grown;
        b->cap = cap;
    }
}

static void b_push(bytes *b, const uint8_t *src, size_t n)
{
    if (n == 0)
        return;
    b_reserve(b, n);
    memcpy(b->data + b->len, src, n);
    b->len += n;
}

static void b_pop(bytes *b, size_t n)
{
    if (n > b->len)
        n = b->len;
    if (n == 0)
        return;
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

static void b_free(bytes *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* ------------------------------------------------------------------------ */
/* Identities and an in-memory handshake                                    */
/* ------------------------------------------------------------------------ */

static uint8_t network_key[PRIVLINE_NETWORK_KEY_LEN];
static uint8_t client_public[PRIVLINE_PUBLIC_KEY_LEN];
static uint8_t server_public[PRIVLINE_PUBLIC_KEY_LEN];
static privline_identity *client_identity;
static privline_identity *server_identity;

static void setup_identities(void)
{
    uint8_t seed[PRIVLINE_SEED_LEN];
    CHECK_OK(privline_identity_generate(seed, client_public));
    CHECK_OK(privline_identity_new(seed, sizeof seed, &client_identity));
    CHECK_OK(privline_identity_generate(seed, server_public));
    CHECK_OK(privline_identity_new(seed, sizeof seed, &server_identity));
    memset(seed, 0, sizeof seed);
    fill(network_key, sizeof network_key, 0x4e4b);
    if (client_identity == NULL || server_identity == NULL) {
        fprintf(stderr, "cannot make the identities\n");
        exit(2);
    }
}

static int new_handshakes(uint32_t protocol, privline_handshake **client, privline_handshake **server)
{
    *client = *server = NULL;
    return CHECK_OK(privline_handshake_new_client_with_identity(protocol, network_key, client_identity,
                                                                server_public, client))
           && CHECK_OK(privline_handshake_new_server_with_identity(protocol, network_key, server_identity, server));
}

/*
 * One step of `hs` on the bytes in `in` (consumed ones removed), appending
 * what it writes to `out`. Retries while the result is BUSY (only the
 * handshake contention test makes that possible); *busy counts them.
 */
static privline_result step_once(privline_handshake *hs, bytes *in, bytes *out, privline_handshake_status *st,
                                 unsigned long *busy)
{
    uint8_t buf[PRIVLINE_HANDSHAKE_MAX_MESSAGE_LEN];
    for (;;) {
        size_t consumed = 0, out_len = sizeof buf;
        privline_result r = privline_handshake_step(hs, in->data, in->len, &consumed, buf, &out_len, st);
        if (r == RESULT_BUSY && busy != NULL) {
            /* Let the thread inside the call finish it (under valgrind,
             * which runs one thread at a time, spinning would hold it off). */
            (*busy)++;
            sched_yield();
            continue;
        }
        if (r == PRIVLINE_RESULT_OK) {
            b_pop(in, consumed);
            b_push(out, buf, out_len);
        }
        return r;
    }
}

/*
 * Runs a whole handshake in memory. `stolen_m4` (may be NULL) is where
 * another thread that happened to step the server at the moment M4 was due
 * leaves it (see the handshake contention test).
 */
typedef struct {
    pthread_mutex_t lock;
    bytes m4;
} m4_slot;

static int run_handshake(privline_handshake *client, privline_handshake *server, const bytes *m1,
                         unsigned long *busy, m4_slot *stolen_m4)
{
    bytes c2s = {NULL, 0, 0}, s2c = {NULL, 0, 0};
    privline_handshake_status st = PRIVLINE_HANDSHAKE_NEED_INPUT;
    int ok = 0, guard = 0;
    int client_done = 0, server_done = 0;

    if (m1 != NULL)
        b_push(&c2s, m1->data, m1->len); /* the client's first step was taken */
    else if (!CHECK_OK(step_once(client, &s2c, &c2s, &st, busy)))
        goto out;
    while (!(client_done && server_done)) {
        if (!CHECK(++guard < 100))
            goto out;
        if (!server_done) {
            if (!CHECK_OK(step_once(server, &c2s, &s2c, &st, busy)))
                goto out;
            if (st == PRIVLINE_HANDSHAKE_AUTHORIZE_PEER) {
                uint8_t peer[PRIVLINE_PUBLIC_KEY_LEN];
                privline_result r;
                while ((r = privline_handshake_peer_key(server, peer)) == RESULT_BUSY && busy) {
                    (*busy)++;
                    sched_yield();
                }
                CHECK_OK(r);
                CHECK(memcmp(peer, client_public, sizeof peer) == 0);
                while ((r = privline_handshake_authorize(server, true)) == RESULT_BUSY && busy) {
                    (*busy)++;
                    sched_yield();
                }
                if (!CHECK_OK(r))
                    goto out;
                {
                    bytes none = {NULL, 0, 0};
                    privline_result r4 = step_once(server, &none, &s2c, &st, busy);
                    if (stolen_m4 != NULL && r4 == PRIVLINE_RESULT_WRONG_STATE) {
                        /* The other thread's empty step came first and wrote
                         * M4 (the server is finished): it hands M4 over. */
                        int got = 0;
                        while (!got) {
                            pthread_mutex_lock(&stolen_m4->lock);
                            if (stolen_m4->m4.len > 0) {
                                b_push(&s2c, stolen_m4->m4.data, stolen_m4->m4.len);
                                stolen_m4->m4.len = 0;
                                got = 1;
                            }
                            pthread_mutex_unlock(&stolen_m4->lock);
                            if (!got)
                                sched_yield();
                        }
                        st = PRIVLINE_HANDSHAKE_DONE;
                    } else if (!CHECK_OK(r4)) {
                        goto out;
                    }
                }
                if (!CHECK(st == PRIVLINE_HANDSHAKE_DONE))
                    goto out;
            }
            if (st == PRIVLINE_HANDSHAKE_DONE)
                server_done = 1;
        }
        if (!client_done) {
            if (!CHECK_OK(step_once(client, &s2c, &c2s, &st, busy)))
                goto out;
            if (st == PRIVLINE_HANDSHAKE_DONE)
                client_done = 1;
        }
    }
    ok = CHECK(c2s.len == 0 && s2c.len == 0);
out:
    b_free(&c2s);
    b_free(&s2c);
    return ok;
}

/* A connected pair of channels speaking `protocol`. */
static int connect_pair(uint32_t protocol, privline_channel **c, privline_channel **s)
{
    privline_handshake *hc, *hs;
    int ok;
    *c = *s = NULL;
    if (!new_handshakes(protocol, &hc, &hs)) {
        privline_handshake_free(hc);
        privline_handshake_free(hs);
        return 0;
    }
    ok = run_handshake(hc, hs, NULL, NULL, NULL) && CHECK_OK(privline_handshake_into_channel(&hc, c))
         && CHECK_OK(privline_handshake_into_channel(&hs, s));
    privline_handshake_free(hc);
    privline_handshake_free(hs);
    return ok && CHECK(*c != NULL && *s != NULL);
}

/* Seals n bytes (retrying on BUSY when busy != NULL) into a new buffer. */
static uint8_t *seal_all(privline_channel *ch, const uint8_t *payload, size_t n, size_t *wire_len)
{
    size_t need = privline_channel_sealed_len(ch, n, 0);
    uint8_t *wire;
    if (!CHECK(need != (size_t)-1))
        return NULL;
    wire = (uint8_t *)xmalloc(need);
    *wire_len = need;
    if (!CHECK_OK(privline_channel_seal(ch, payload, n, 0, wire, wire_len)) || !CHECK(*wire_len == need)) {
        free(wire);
        return NULL;
    }
    return wire;
}

/* Opens every record of `wire` on `ch` (single thread) and checks that the
 * DATA payloads, concatenated, are `expect`. */
static void open_all(privline_channel *ch, const uint8_t *wire, size_t wire_len, const uint8_t *expect, size_t n,
                     size_t expect_records)
{
    uint8_t *out = (uint8_t *)xmalloc(PRIVLINE_OPEN_MAX_OUTPUT_LEN);
    size_t pos = 0, got = 0, records = 0;
    int same = 1, ok = 1;
    while (pos < wire_len) {
        size_t consumed = 0, out_len = PRIVLINE_OPEN_MAX_OUTPUT_LEN;
        privline_record_type type = PRIVLINE_RECORD_NONE;
        privline_result r = privline_channel_open(ch, wire + pos, wire_len - pos, &consumed, out, &out_len, &type);
        if (!CHECK_OK(r) || !CHECK(type == PRIVLINE_RECORD_DATA) || !CHECK(consumed > 0)) {
            ok = 0;
            break;
        }
        if (got + out_len > n || memcmp(out, expect + got, out_len) != 0)
            same = 0;
        got += out_len;
        pos += consumed;
        records++;
    }
    if (ok) {
        CHECK(same);
        CHECK(got == n);
        CHECK(records == expect_records);
    }
    free(out);
}

static size_t records_for(uint32_t protocol, size_t n)
{
    if (protocol == PRIVLINE_PROTOCOL_SHS1)
        return (n + PRIVLINE_SHS1_MAX_BODY_LEN - 1) / PRIVLINE_SHS1_MAX_BODY_LEN;
    return n == 0 ? 1 : (n + PRIVLINE_RECORD_MAX_PAYLOAD_LEN - 1) / PRIVLINE_RECORD_MAX_PAYLOAD_LEN;
}

/* One message each way and back: the pair works. */
static void check_pair_works(privline_channel *from, privline_channel *to, uint32_t seed)
{
    uint8_t payload[300];
    uint8_t *wire;
    size_t wire_len = 0;
    fill(payload, sizeof payload, seed);
    wire = seal_all(from, payload, sizeof payload, &wire_len);
    if (wire != NULL) {
        open_all(to, wire, wire_len, payload, sizeof payload, 1);
        free(wire);
    }
}

/* ------------------------------------------------------------------------ */
/* 1. Full duplex: one writer and one reader thread per channel             */
/* ------------------------------------------------------------------------ */

static const size_t sizes_privline1[] = {0, 1, 100, 65518, 65519, 140000, 4096, 17, 0, 3000, 70000, 255};
static const size_t sizes_shs1[] = {1, 4096, 4097, 9000, 100, 12289, 2, 8192, 4095, 30000};

typedef struct {
    uint32_t protocol;
    privline_channel *ch;
    bqueue *out; /* writer: where its records go */
    bqueue *in;  /* reader: where the peer's records come from */
    uint32_t seed_base;
    int messages;
    int key_update_every; /* privline/1 writer: a key update every N messages */
    /* results */
    unsigned long busy, records, data_records, key_updates, bytes_checked;
    int failed, saw_close;
} duplex_side;

static size_t message_size(uint32_t protocol, int i)
{
    if (protocol == PRIVLINE_PROTOCOL_SHS1)
        return sizes_shs1[(size_t)i % (sizeof sizes_shs1 / sizeof sizes_shs1[0])];
    return sizes_privline1[(size_t)i % (sizeof sizes_privline1 / sizeof sizes_privline1[0])];
}

static void *duplex_writer(void *arg)
{
    duplex_side *d = (duplex_side *)arg;
    size_t max = 140000 + 1000;
    uint8_t *payload = (uint8_t *)xmalloc(max);
    uint8_t *wire = (uint8_t *)xmalloc(privline_sealed_len(max) + 4096);
    int i;
    for (i = 0; i < d->messages && !d->failed; i++) {
        size_t n = message_size(d->protocol, i);
        size_t need = privline_channel_sealed_len(d->ch, n, 0);
        size_t len = need;
        privline_result r;
        fill(payload, n, d->seed_base + (uint32_t)i);
        r = privline_channel_seal(d->ch, payload, n, 0, wire, &len);
        if (r == RESULT_BUSY)
            d->busy++;
        if (!CHECK_OK(r) || !CHECK(len == need) || !bq_push(d->out, wire, len)) {
            d->failed = 1;
            break;
        }
        if (d->key_update_every > 0 && i % d->key_update_every == d->key_update_every - 1) {
            len = PRIVLINE_RECORD_MAX_LEN;
            r = privline_channel_update_key(d->ch, 0, wire, &len);
            if (r == RESULT_BUSY)
                d->busy++;
            if (!CHECK_OK(r) || !CHECK(len == PRIVLINE_RECORD_OVERHEAD_LEN) || !bq_push(d->out, wire, len)) {
                d->failed = 1;
                break;
            }
        }
    }
    if (!d->failed) {
        size_t len = PRIVLINE_RECORD_MAX_LEN;
        privline_result r = privline_channel_close(d->ch, 0, wire, &len);
        if (r == RESULT_BUSY)
            d->busy++;
        if (!CHECK_OK(r) || !bq_push(d->out, wire, len))
            d->failed = 1;
        else {
            len = PRIVLINE_RECORD_MAX_LEN;
            /* Closed: this side seals nothing more. */
            CHECK_R(privline_channel_seal(d->ch, payload, 1, 0, wire, &len), PRIVLINE_RESULT_ALREADY_CLOSED);
        }
    }
    if (d->failed)
        bq_abort(d->out);
    free(payload);
    free(wire);
    return NULL;
}

/* The reader of the channel whose peer's writer is `peer`: what it expects
 * comes from the peer's parameters. */
typedef struct {
    duplex_side *self; /* the channel it opens on (and its counters) */
    const duplex_side *peer;
} duplex_reader_arg;

static void *duplex_reader(void *arg)
{
    duplex_reader_arg *a = (duplex_reader_arg *)arg;
    duplex_side *d = a->self;
    const duplex_side *p = a->peer;
    bytes rx = {NULL, 0, 0};
    uint8_t *out = (uint8_t *)xmalloc(PRIVLINE_OPEN_MAX_OUTPUT_LEN);
    uint8_t *chunk = (uint8_t *)xmalloc(65536);
    /* The expected stream: message `msg`, byte `off` of it. */
    int msg = 0;
    size_t off = 0, msg_len;
    unsigned long expect_records = 0, expect_data = 0, expect_updates = 0;
    gen g;
    int i, mismatch = 0;

    for (i = 0; i < p->messages; i++) {
        expect_records += records_for(p->protocol, message_size(p->protocol, i));
        if (p->key_update_every > 0 && i % p->key_update_every == p->key_update_every - 1)
            expect_updates++;
    }
    expect_data = expect_records;
    expect_records += expect_updates + 1; /* and the close */

    msg_len = message_size(p->protocol, 0);
    gen_init(&g, p->seed_base);
    for (;;) {
        size_t consumed = 0, out_len = PRIVLINE_OPEN_MAX_OUTPUT_LEN, k;
        privline_record_type type = PRIVLINE_RECORD_NONE;
        privline_result r = privline_channel_open(d->ch, rx.data, rx.len, &consumed, out, &out_len, &type);
        if (r == RESULT_BUSY)
            d->busy++;
        if (!CHECK_OK(r)) {
            d->failed = 1;
            break;
        }
        if (type == PRIVLINE_RECORD_NONE) {
            size_t got = bq_pop(a->self->in, chunk, 65536);
            if (got == 0) {
                CHECK(!"the peer's writer failed before its close");
                d->failed = 1;
                break;
            }
            b_push(&rx, chunk, got);
            continue;
        }
        b_pop(&rx, consumed);
        d->records++;
        if (type == PRIVLINE_RECORD_KEY_UPDATE) {
            d->key_updates++;
            continue;
        }
        if (type == PRIVLINE_RECORD_CLOSE) {
            d->saw_close = 1;
            break;
        }
        d->data_records++;
        for (k = 0; k < out_len; k++) {
            while (msg < p->messages && off == msg_len) {
                msg++;
                off = 0;
                if (msg < p->messages) {
                    msg_len = message_size(p->protocol, msg);
                    gen_init(&g, p->seed_base + (uint32_t)msg);
                }
            }
            if (msg >= p->messages || gen_next(&g) != out[k]) {
                mismatch = 1;
                break;
            }
            off++;
        }
        d->bytes_checked += out_len;
        if (mismatch)
            break;
    }
    if (!mismatch && !d->failed) {
        /* Everything up to the close: all messages, complete. */
        while (msg < p->messages && off == msg_len) {
            msg++;
            off = 0;
            if (msg < p->messages)
                msg_len = message_size(p->protocol, msg);
        }
        CHECK(msg == p->messages);
    }
    CHECK(!mismatch);
    CHECK(d->saw_close);
    CHECK(rx.len == 0);
    CHECK(d->records == expect_records);
    CHECK(d->data_records == expect_data);
    CHECK(d->key_updates == expect_updates);
    if (d->saw_close) {
        bool closed = false;
        CHECK_OK(privline_channel_peer_closed(d->ch, &closed));
        CHECK(closed);
    }
    if (d->failed || mismatch || !d->saw_close)
        bq_abort(a->self->in);
    b_free(&rx);
    free(out);
    free(chunk);
    return NULL;
}

static void test_duplex(uint32_t protocol)
{
    privline_channel *c, *s;
    bqueue c2s, s2c;
    duplex_side client, server;
    duplex_reader_arg client_reader, server_reader;
    pthread_t t[4];
    int messages = scaled(240);

    if (!connect_pair(protocol, &c, &s))
        return;
    bq_init(&c2s, 1u << 18);
    bq_init(&s2c, 1u << 18);
    memset(&client, 0, sizeof client);
    memset(&server, 0, sizeof server);
    client.protocol = server.protocol = protocol;
    client.ch = c;
    client.out = &c2s;
    client.in = &s2c;
    client.seed_base = 0x10000u;
    client.messages = messages;
    server.ch = s;
    server.out = &s2c;
    server.in = &c2s;
    server.seed_base = 0x20000u;
    server.messages = messages + 7; /* the two directions differ */
    if (protocol == PRIVLINE_PROTOCOL_PRIVLINE1) {
        client.key_update_every = 25;
        server.key_update_every = 31;
    }
    client_reader.self = &client;
    client_reader.peer = &server;
    server_reader.self = &server;
    server_reader.peer = &client;

    /* The writer and the reader of a side share its channel handle; their
     * counters are separate fields written by one thread each. */
    pthread_create(&t[0], NULL, duplex_writer, &client);
    pthread_create(&t[1], NULL, duplex_reader, &client_reader);
    pthread_create(&t[2], NULL, duplex_writer, &server);
    pthread_create(&t[3], NULL, duplex_reader, &server_reader);
    pthread_join(t[0], NULL);
    pthread_join(t[1], NULL);
    pthread_join(t[2], NULL);
    pthread_join(t[3], NULL);

    CHECK(client.busy == 0);
    CHECK(server.busy == 0);
    CHECK(!client.failed && !server.failed);
    {
        bool closed = false;
        CHECK_OK(privline_channel_peer_closed(c, &closed));
        CHECK(closed);
        closed = false;
        CHECK_OK(privline_channel_peer_closed(s, &closed));
        CHECK(closed);
    }
    printf("duplex %s: %d + %d messages, %lu + %lu payload bytes checked, %lu + %lu key updates, BUSY %lu\n",
           protocol_name(protocol), client.messages, server.messages, server.bytes_checked, client.bytes_checked,
           server.key_updates, client.key_updates, client.busy + server.busy);
    privline_channel_free(c);
    privline_channel_free(s);
    bq_destroy(&c2s);
    bq_destroy(&s2c);
}

/* ------------------------------------------------------------------------ */
/* 2. Contention                                                            */
/* ------------------------------------------------------------------------ */

/* Tickets: a global order of events, taken just before and just after
 * each call (not around the library's work itself, so the calls still
 * contend). A sequentially consistent atomic counter (GCC/Clang builtin:
 * C99 has no atomics), so taking one never sleeps. */
static unsigned long ticket_next;

static unsigned long ticket(void)
{
    return __atomic_add_fetch(&ticket_next, 1ul, __ATOMIC_SEQ_CST);
}

typedef struct {
    unsigned long before, after;
    uint32_t seed;
    size_t n;
    uint8_t *wire;
    size_t wire_len;
} sealed_rec;

typedef struct {
    uint32_t protocol;
    privline_channel *ch;
    int id, attempts;
    pthread_barrier_t *start;
    sealed_rec *ok; /* the OK calls, in this thread's order */
    int n_ok;
    unsigned long busy, other;
} sealer;

static void *contending_sealer(void *arg)
{
    sealer *s = (sealer *)arg;
    uint8_t payload[4096];
    int i;
    pthread_barrier_wait(s->start);
    for (i = 0; i < s->attempts; i++) {
        uint32_t seed = (uint32_t)(s->id * 100000 + i);
        size_t n = 1 + (seed * 2654435761u >> 7) % 1500;
        size_t cap = privline_sealed_len(n) + 64; /* enough for both protocols */
        uint8_t *wire = (uint8_t *)xmalloc(cap);
        size_t len = cap;
        unsigned long before, after;
        privline_result r;
        fill(payload, n, seed);
        before = ticket();
        r = privline_channel_seal(s->ch, payload, n, 0, wire, &len);
        after = ticket();
        if (r == PRIVLINE_RESULT_OK) {
            sealed_rec *rec = &s->ok[s->n_ok++];
            rec->before = before;
            rec->after = after;
            rec->seed = seed;
            rec->n = n;
            rec->wire = wire;
            rec->wire_len = len;
        } else {
            free(wire);
            if (r == RESULT_BUSY)
                s->busy++;
            else
                s->other++;
        }
    }
    return NULL;
}

/* The low 64 bits of SHS1's sending nonce (big-endian, bytes 16..23 of the
 * nonce, which is bytes 32..55 of the exported keys). */
static uint64_t shs1_send_nonce(privline_channel *ch)
{
    uint8_t keys[PRIVLINE_SHS1_KEYS_LEN];
    uint64_t v = 0;
    int i;
    if (!CHECK_OK(privline_channel_export_shs1_keys(ch, keys)))
        return 0;
    for (i = 32 + 16; i < 32 + 24; i++)
        v = (v << 8) | keys[i];
    memset(keys, 0, sizeof keys);
    return v;
}

static void test_contention_seal(uint32_t protocol, int attempts, int *trials_ordered, int *trials_total,
                                 unsigned long *busy_total)
{
    privline_channel *c, *s;
    sealer th[2];
    pthread_t t[2];
    pthread_barrier_t start;
    uint64_t nonce_before = 0, nonce_after;
    int k, n_ok, ambiguous = 0;
    sealed_rec *all;
    int ia = 0, ib = 0, broken = 0;

    if (!connect_pair(protocol, &c, &s))
        return;
    if (protocol == PRIVLINE_PROTOCOL_SHS1)
        nonce_before = shs1_send_nonce(c);
    pthread_barrier_init(&start, NULL, 2);
    for (k = 0; k < 2; k++) {
        memset(&th[k], 0, sizeof th[k]);
        th[k].protocol = protocol;
        th[k].ch = c;
        th[k].id = k + 1;
        th[k].attempts = attempts;
        th[k].start = &start;
        th[k].ok = (sealed_rec *)xmalloc(sizeof(sealed_rec) * (size_t)attempts);
    }
    pthread_create(&t[0], NULL, contending_sealer, &th[0]);
    pthread_create(&t[1], NULL, contending_sealer, &th[1]);
    pthread_join(t[0], NULL);
    pthread_join(t[1], NULL);
    pthread_barrier_destroy(&start);

    /* (a) Every result was OK or BUSY. */
    CHECK(th[0].other == 0 && th[1].other == 0);
    CHECK(th[0].n_ok + (int)th[0].busy + (int)th[0].other == attempts);
    n_ok = th[0].n_ok + th[1].n_ok;
    CHECK(n_ok > 0);
    *busy_total += th[0].busy + th[1].busy;

    /* SHS1: two nonces per box, so exactly 2 per OK seal (each < 4096 bytes):
     * no seal lost its nonce increment and no nonce was used twice. */
    if (protocol == PRIVLINE_PROTOCOL_SHS1) {
        nonce_after = shs1_send_nonce(c);
        CHECK(nonce_after - nonce_before == 2u * (uint64_t)n_ok);
    }

    /* Merge the two lists by the ticket taken before each call. */
    all = (sealed_rec *)xmalloc(sizeof(sealed_rec) * (size_t)(n_ok ? n_ok : 1));
    for (k = 0; k < n_ok; k++) {
        if (ib >= th[1].n_ok || (ia < th[0].n_ok && th[0].ok[ia].before < th[1].ok[ib].before))
            all[k] = th[0].ok[ia++];
        else
            all[k] = th[1].ok[ib++];
    }
    /* The library's order is the ticket order only if no two OK calls
     * overlapped in time: each returned before the next began. */
    for (k = 1; k < n_ok; k++)
        if (all[k - 1].after > all[k].before)
            ambiguous = 1;
    (*trials_total)++;
    if (!ambiguous) {
        /* (b) The peer opens every OK record, in that order, intact. */
        uint8_t *out = (uint8_t *)xmalloc(PRIVLINE_OPEN_MAX_OUTPUT_LEN);
        uint8_t expect[4096];
        (*trials_ordered)++;
        for (k = 0; k < n_ok && !broken; k++) {
            size_t consumed = 0, out_len = PRIVLINE_OPEN_MAX_OUTPUT_LEN;
            privline_record_type type = PRIVLINE_RECORD_NONE;
            fill(expect, all[k].n, all[k].seed);
            if (!CHECK_OK(privline_channel_open(s, all[k].wire, all[k].wire_len, &consumed, out, &out_len, &type))
                || !CHECK(type == PRIVLINE_RECORD_DATA && consumed == all[k].wire_len && out_len == all[k].n
                          && memcmp(out, expect, all[k].n) == 0))
                broken = 1;
        }
        free(out);
    }
    /* (c) The channel still works: sealed_len, a seal, and (when the peer
     * is in step) the peer opens it. */
    {
        uint8_t payload[300];
        size_t need = privline_channel_sealed_len(c, sizeof payload, 0);
        size_t len;
        uint8_t *wire;
        CHECK(need == (protocol == PRIVLINE_PROTOCOL_SHS1 ? sizeof payload + 34 : privline_sealed_len(sizeof payload)));
        fill(payload, sizeof payload, 77);
        wire = (uint8_t *)xmalloc(need);
        len = need;
        CHECK_OK(privline_channel_seal(c, payload, sizeof payload, 0, wire, &len));
        CHECK(len == need);
        if (!ambiguous && !broken)
            open_all(s, wire, len, payload, sizeof payload, 1);
        free(wire);
        if (!ambiguous && !broken)
            check_pair_works(s, c, 78);
    }
    for (k = 0; k < th[0].n_ok; k++)
        free(th[0].ok[k].wire);
    for (k = 0; k < th[1].n_ok; k++)
        free(th[1].ok[k].wire);
    free(th[0].ok);
    free(th[1].ok);
    free(all);
    privline_channel_free(c);
    privline_channel_free(s);
}

/* A flag the main thread or one worker raises to end the other workers' loops. */
typedef struct {
    pthread_mutex_t lock;
    int raised;
} stop_flag;

static void stop_init(stop_flag *f)
{
    pthread_mutex_init(&f->lock, NULL);
    f->raised = 0;
}

static void stop_raise(stop_flag *f)
{
    pthread_mutex_lock(&f->lock);
    f->raised = 1;
    pthread_mutex_unlock(&f->lock);
}

static int stop_raised(stop_flag *f)
{
    int raised;
    pthread_mutex_lock(&f->lock);
    raised = f->raised;
    pthread_mutex_unlock(&f->lock);
    return raised;
}

/* Two openers: one opens the real records, the other a prefix of a record
 * (never a whole one), so the only possible results are OK with DATA (the
 * first) or NONE (the second), or BUSY. */
typedef struct {
    privline_channel *ch;
    const uint8_t *wire;
    size_t wire_len;
    int records;
    uint32_t seed_base;
    stop_flag *stop;
    unsigned long busy, other, opened, mismatched;
} opener;

static void *real_opener(void *arg)
{
    opener *o = (opener *)arg;
    uint8_t *out = (uint8_t *)xmalloc(PRIVLINE_OPEN_MAX_OUTPUT_LEN);
    uint8_t expect[2000];
    size_t pos = 0;
    int i = 0;
    while (pos < o->wire_len && i < o->records) {
        size_t consumed = 0, out_len = PRIVLINE_OPEN_MAX_OUTPUT_LEN;
        privline_record_type type = PRIVLINE_RECORD_NONE;
        privline_result r = privline_channel_open(o->ch, o->wire + pos, o->wire_len - pos, &consumed, out, &out_len,
                                                  &type);
        if (r == RESULT_BUSY) {
            o->busy++;
            sched_yield();
            continue;
        }
        if (r != PRIVLINE_RESULT_OK || type != PRIVLINE_RECORD_DATA) {
            o->other++;
            break;
        }
        fill(expect, 1000 + (size_t)(i % 7), o->seed_base + (uint32_t)i);
        if (out_len != 1000 + (size_t)(i % 7) || memcmp(out, expect, out_len) != 0)
            o->mismatched++;
        o->opened++;
        pos += consumed;
        i++;
    }
    stop_raise(o->stop);
    free(out);
    return NULL;
}

static void *prefix_opener(void *arg)
{
    opener *o = (opener *)arg;
    uint8_t out[64];
    for (;;) {
        size_t consumed = 7, out_len = sizeof out;
        privline_record_type type = PRIVLINE_RECORD_DATA;
        privline_result r;
        if (stop_raised(o->stop))
            break;
        /* Two bytes: not even a whole length field. */
        r = privline_channel_open(o->ch, o->wire, 2, &consumed, out, &out_len, &type);
        if (r == RESULT_BUSY)
            o->busy++;
        else if (r == PRIVLINE_RESULT_OK && type == PRIVLINE_RECORD_NONE && consumed == 0 && out_len == 0)
            o->opened++;
        else
            o->other++;
    }
    return NULL;
}

static void test_contention_open(uint32_t protocol, unsigned long *busy_total)
{
    privline_channel *c, *s;
    bytes wire = {NULL, 0, 0};
    int records = scaled(400), i;
    stop_flag stop;
    opener a, b;
    pthread_t t[2];

    if (!connect_pair(protocol, &c, &s))
        return;
    stop_init(&stop);
    for (i = 0; i < records; i++) {
        uint8_t payload[2000];
        size_t n = 1000 + (size_t)(i % 7), len = 0;
        uint8_t *w;
        fill(payload, n, 0x30000u + (uint32_t)i);
        w = seal_all(c, payload, n, &len);
        if (w == NULL)
            break;
        b_push(&wire, w, len);
        free(w);
    }
    memset(&a, 0, sizeof a);
    a.ch = s;
    a.wire = wire.data;
    a.wire_len = wire.len;
    a.records = records;
    a.seed_base = 0x30000u;
    a.stop = &stop;
    b = a;
    pthread_create(&t[0], NULL, real_opener, &a);
    pthread_create(&t[1], NULL, prefix_opener, &b);
    pthread_join(t[0], NULL);
    pthread_join(t[1], NULL);
    CHECK(a.other == 0 && b.other == 0);
    CHECK(a.opened == (unsigned long)records);
    CHECK(a.mismatched == 0);
    *busy_total += a.busy + b.busy;
    /* Still in step both ways. */
    check_pair_works(c, s, 91);
    check_pair_works(s, c, 92);
    b_free(&wire);
    pthread_mutex_destroy(&stop.lock);
    privline_channel_free(c);
    privline_channel_free(s);
}

/* Two threads on one handshake handle: the main thread runs the handshake
 * (retrying on BUSY), a second one keeps calling step with no input and
 * peer_key on both handles. Its step on the server may be the one that
 * writes M4 (when it runs between authorize and the main thread's step):
 * it then hands M4 over. */
typedef struct {
    privline_handshake *client, *server;
    m4_slot *slot;
    stop_flag *stop;
    unsigned long busy, ok, wrong_state, other, calls;
} hs_poker;

static void *handshake_poker(void *arg)
{
    hs_poker *h = (hs_poker *)arg;
    uint8_t buf[PRIVLINE_HANDSHAKE_MAX_MESSAGE_LEN];
    uint8_t key[PRIVLINE_PUBLIC_KEY_LEN];
    unsigned long i;
    for (i = 0;; i++) {
        privline_result r;
        if (stop_raised(h->stop))
            break;
        if (i % 3 == 0) {
            size_t consumed = 0, out_len = sizeof buf;
            privline_handshake_status st = PRIVLINE_HANDSHAKE_NEED_INPUT;
            privline_handshake *hs = (i % 2) ? h->server : h->client;
            r = privline_handshake_step(hs, NULL, 0, &consumed, buf, &out_len, &st);
            if (r == PRIVLINE_RESULT_OK && out_len > 0) {
                /* Only the server's M4 can come out of an empty step here. */
                if (hs == h->server && st == PRIVLINE_HANDSHAKE_DONE) {
                    pthread_mutex_lock(&h->slot->lock);
                    b_push(&h->slot->m4, buf, out_len);
                    pthread_mutex_unlock(&h->slot->lock);
                } else {
                    h->other++;
                }
            }
        } else {
            r = privline_handshake_peer_key((i % 3 == 1) ? h->server : h->client, key);
        }
        h->calls++;
        if (r == PRIVLINE_RESULT_OK)
            h->ok++;
        else if (r == RESULT_BUSY) {
            h->busy++;
            sched_yield();
        } else if (r == PRIVLINE_RESULT_WRONG_STATE)
            h->wrong_state++;
        else
            h->other++;
    }
    return NULL;
}

static void test_contention_handshake(uint32_t protocol, int rounds, unsigned long *busy_total)
{
    int round;
    for (round = 0; round < rounds; round++) {
        privline_handshake *hc, *hs;
        privline_channel *c = NULL, *s = NULL;
        stop_flag stop;
        m4_slot slot;
        hs_poker poker;
        pthread_t t;
        unsigned long busy = 0;
        int ok;
        bytes none = {NULL, 0, 0}, m1 = {NULL, 0, 0};
        privline_handshake_status st;

        if (!new_handshakes(protocol, &hc, &hs)) {
            privline_handshake_free(hc);
            privline_handshake_free(hs);
            return;
        }
        pthread_mutex_init(&slot.lock, NULL);
        stop_init(&stop);
        slot.m4.data = NULL;
        slot.m4.len = slot.m4.cap = 0;
        memset(&poker, 0, sizeof poker);
        poker.client = hc;
        poker.server = hs;
        poker.slot = &slot;
        poker.stop = &stop;
        /* The client's first step writes M1 from no input: take it before
         * the poker starts (its empty steps would otherwise write it). */
        CHECK_OK(step_once(hc, &none, &m1, &st, NULL));
        CHECK(m1.len == 64);
        pthread_create(&t, NULL, handshake_poker, &poker);
        ok = run_handshake(hc, hs, &m1, &busy, &slot);
        stop_raise(&stop);
        pthread_join(t, NULL);
        CHECK(poker.other == 0);
        CHECK(poker.calls == poker.ok + poker.busy + poker.wrong_state + poker.other);
        *busy_total += busy + poker.busy;
        if (ok && CHECK_OK(privline_handshake_into_channel(&hc, &c))
            && CHECK_OK(privline_handshake_into_channel(&hs, &s))) {
            check_pair_works(c, s, 101);
            check_pair_works(s, c, 102);
        }
        privline_channel_free(c);
        privline_channel_free(s);
        privline_handshake_free(hc);
        privline_handshake_free(hs);
        b_free(&m1);
        b_free(&slot.m4);
        pthread_mutex_destroy(&slot.lock);
        pthread_mutex_destroy(&stop.lock);
    }
}

/* ------------------------------------------------------------------------ */
/* 3. Aliasing: overlapping arguments are refused and change nothing        */
/* ------------------------------------------------------------------------ */

#define SENTINEL_LEN ((size_t)0x5A5Au)
#define SENTINEL_TYPE ((privline_record_type)0xBEEFu)
#define SENTINEL_STATUS ((privline_handshake_status)0xDEADu)

static void test_aliasing_channel(uint32_t protocol)
{
    privline_channel *c, *s;
    uint8_t *area, *snapshot, *wire;
    uint8_t payload[100];
    size_t area_len = 4 * 65536, wire_len = 0;

    if (!connect_pair(protocol, &c, &s))
        return;
    area = (uint8_t *)xmalloc(area_len);
    snapshot = (uint8_t *)xmalloc(area_len);
    fill(area, area_len, 5);
    memcpy(snapshot, area, area_len);

    /* seal: the payload inside the output buffer. */
    {
        size_t len = 4096;
        CHECK_R(privline_channel_seal(c, area + 8, 100, 0, area, &len), PRIVLINE_RESULT_INVALID_ARGUMENT);
        CHECK(len == 4096);
        len = 4096;
        /* ... and the output inside the payload. */
        CHECK_R(privline_channel_seal(c, area, 2000, 0, area + 100, &len), PRIVLINE_RESULT_INVALID_ARGUMENT);
        CHECK(len == 4096);
        CHECK(memcmp(area, snapshot, area_len) == 0);
    }
    /* seal and close: *output_len inside the output buffer. */
    {
        size_t cell[512];
        size_t i;
        for (i = 0; i < 512; i++)
            cell[i] = SENTINEL_LEN;
        cell[3] = sizeof cell;
        CHECK_R(privline_channel_seal(c, payload, sizeof payload, 0, (uint8_t *)cell, &cell[3]),
                PRIVLINE_RESULT_INVALID_ARGUMENT);
        CHECK(cell[3] == sizeof cell && cell[0] == SENTINEL_LEN && cell[511] == SENTINEL_LEN);
        CHECK_R(privline_channel_close(c, 0, (uint8_t *)cell, &cell[3]), PRIVLINE_RESULT_INVALID_ARGUMENT);
        CHECK(cell[3] == sizeof cell && cell[0] == SENTINEL_LEN && cell[511] == SENTINEL_LEN);
    }
    /* Nothing was sealed (no record, no nonce used, not closed): the next
     * record is the first the peer opens. */
    check_pair_works(c, s, 201);

    /* open: input and output overlap. */
    fill(payload, sizeof payload, 202);
    wire = seal_all(s, payload, sizeof payload, &wire_len);
    if (wire != NULL && CHECK(wire_len < 4096)) {
        size_t consumed = SENTINEL_LEN, out_len = 65536, v;
        privline_record_type type = SENTINEL_TYPE;
        memcpy(area, wire, wire_len);
        memcpy(snapshot, area, area_len);
        CHECK_R(privline_channel_open(c, area, wire_len, &consumed, area + 16, &out_len, &type),
                PRIVLINE_RESULT_INVALID_ARGUMENT);
        CHECK(consumed == SENTINEL_LEN && out_len == 65536 && type == SENTINEL_TYPE);
        out_len = 65536;
        /* The output before the input, overlapping its start. */
        CHECK_R(privline_channel_open(c, area + 1000, wire_len, &consumed, area, &out_len, &type),
                PRIVLINE_RESULT_INVALID_ARGUMENT);
        CHECK(consumed == SENTINEL_LEN && out_len == 65536 && type == SENTINEL_TYPE);
        CHECK(memcmp(area, snapshot, area_len) == 0);
        /* consumed and output_len: one variable. */
        v = 65536;
        CHECK_R(privline_channel_open(c, area, wire_len, &v, area + 8192, &v, &type),
                PRIVLINE_RESULT_INVALID_ARGUMENT);
        CHECK(v == 65536 && type == SENTINEL_TYPE);
        /* record_type inside the output. */
        out_len = 65536;
        CHECK_R(privline_channel_open(c, area, wire_len, &consumed, area + 8192, &out_len,
                                      (privline_record_type *)(void *)(area + 8192 + 64)),
                PRIVLINE_RESULT_INVALID_ARGUMENT);
        CHECK(consumed == SENTINEL_LEN && out_len == 65536);
        CHECK(memcmp(area, snapshot, area_len) == 0);
        /* Nothing was opened: the same record opens now. */
        open_all(c, wire, wire_len, payload, sizeof payload, 1);
    }
    free(wire);
    check_pair_works(s, c, 203);
    check_pair_works(c, s, 204);
    free(area);
    free(snapshot);
    privline_channel_free(c);
    privline_channel_free(s);
}

static void test_aliasing_handshake(uint32_t protocol)
{
    privline_handshake *hc, *hs;
    bytes none = {NULL, 0, 0}, m1 = {NULL, 0, 0};
    privline_handshake_status st = SENTINEL_STATUS;
    uint8_t area[512], snapshot[512];
    int ok;

    if (!new_handshakes(protocol, &hc, &hs)) {
        privline_handshake_free(hc);
        privline_handshake_free(hs);
        return;
    }
    if (!CHECK_OK(step_once(hc, &none, &m1, &st, NULL)) || !CHECK(m1.len == 64))
        goto out;
    memset(area, 0xA7, sizeof area);
    memcpy(area, m1.data, m1.len);
    memcpy(snapshot, area, sizeof area);
    {
        size_t consumed = SENTINEL_LEN, out_len = PRIVLINE_HANDSHAKE_MAX_MESSAGE_LEN, v;
        st = SENTINEL_STATUS;
        /* M1 as input, the output over its second half. */
        CHECK_R(privline_handshake_step(hs, area, 64, &consumed, area + 32, &out_len, &st),
                PRIVLINE_RESULT_INVALID_ARGUMENT);
        CHECK(consumed == SENTINEL_LEN && out_len == PRIVLINE_HANDSHAKE_MAX_MESSAGE_LEN && st == SENTINEL_STATUS);
        /* The output ending inside the input. */
        CHECK_R(privline_handshake_step(hs, area + 200, 64, &consumed, area + 100, &out_len, &st),
                PRIVLINE_RESULT_INVALID_ARGUMENT);
        CHECK(consumed == SENTINEL_LEN && out_len == PRIVLINE_HANDSHAKE_MAX_MESSAGE_LEN && st == SENTINEL_STATUS);
        CHECK(memcmp(area, snapshot, sizeof area) == 0);
        /* consumed and output_len: one variable. */
        v = PRIVLINE_HANDSHAKE_MAX_MESSAGE_LEN;
        CHECK_R(privline_handshake_step(hs, m1.data, m1.len, &v, area + 256, &v, &st),
                PRIVLINE_RESULT_INVALID_ARGUMENT);
        CHECK(v == PRIVLINE_HANDSHAKE_MAX_MESSAGE_LEN && st == SENTINEL_STATUS);
        CHECK(memcmp(area, snapshot, sizeof area) == 0);
    }
    /* The server consumed nothing: the handshake completes from M1. */
    ok = run_handshake(hc, hs, &m1, NULL, NULL);
    if (ok) {
        /* One variable for both: it holds the channel afterwards. */
        privline_handshake *p = hs;
        privline_channel *c = NULL, *s;
        CHECK_OK(privline_handshake_into_channel(&p, (privline_channel **)(void *)&p));
        s = (privline_channel *)(void *)p;
        CHECK(s != NULL && (void *)s != (void *)hs);
        hs = NULL;
        if (CHECK_OK(privline_handshake_into_channel(&hc, &c)) && s != NULL) {
            uint8_t key[PRIVLINE_PUBLIC_KEY_LEN];
            uint32_t proto = 0;
            CHECK_OK(privline_channel_peer_key(s, key));
            CHECK(memcmp(key, client_public, sizeof key) == 0);
            CHECK_OK(privline_channel_protocol(s, &proto));
            CHECK(proto == protocol);
            check_pair_works(c, s, 301);
            check_pair_works(s, c, 302);
        }
        privline_channel_free(c);
        privline_channel_free(s);
    }
out:
    privline_handshake_free(hc);
    privline_handshake_free(hs);
    b_free(&m1);
}

int main(int argc, char **argv)
{
    static const uint32_t protocols[2] = {PRIVLINE_PROTOCOL_PRIVLINE1, PRIVLINE_PROTOCOL_SHS1};
    int i;

    if (argc > 1) {
        scale = atoi(argv[1]);
        if (scale < 1 || scale > 10000) {
            fprintf(stderr, "usage: %s [SCALE in percent, 1..10000]\n", argv[0]);
            return 2;
        }
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    setup_identities();

    for (i = 0; i < 2; i++) {
        const uint32_t protocol = protocols[i];
        int trials = scaled(30), t, ordered = 0, total = 0;
        unsigned long busy_seal = 0, busy_open = 0, busy_hs = 0;

        test_duplex(protocol);
        /* Short trials (the OK calls rarely overlap in time, so the peer
         * can check the order) up to long ones (more contention). */
        for (t = 0; t < trials; t++)
            test_contention_seal(protocol, 10 + 300 * t / trials, &ordered, &total, &busy_seal);
        printf("contention %s: %d trials of 2 threads x 10..%d seals on one channel, BUSY seen %lu times, "
               "%d trials order-checked by the peer\n",
               protocol_name(protocol), total, 10 + 300 * (trials - 1) / trials, busy_seal, ordered);
        test_contention_open(protocol, &busy_open);
        printf("contention %s: 2 openers, BUSY seen %lu times\n", protocol_name(protocol), busy_open);
        test_contention_handshake(protocol, scaled(20), &busy_hs);
        printf("contention %s: %d handshakes with a second thread on the handles, BUSY seen %lu times\n",
               protocol_name(protocol), scaled(20), busy_hs);
        test_aliasing_channel(protocol);
        test_aliasing_handshake(protocol);
        printf("aliasing %s: done\n", protocol_name(protocol));
    }

    privline_identity_free(client_identity);
    privline_identity_free(server_identity);
    printf("threads: %lu passed, %lu failed\n", checks_passed, checks_failed);
    return checks_failed == 0 ? 0 : 1;
}
