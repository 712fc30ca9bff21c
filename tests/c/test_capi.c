/*
 * test_capi.c: the privline C ABI, exercised from C exactly as a C user would
 * call it (include/privline.h only), entirely in memory: two byte queues
 * stand in for the network. Both protocols: privline/1, and SHS1
 * (Scuttlebutt secret-handshake v1 + box-stream) through identity handles.
 *
 * Build (tests/c/run.sh does this):
 *   gcc -std=c99 -Wall -Wextra -Werror -pedantic -Iinclude \
 *       tests/c/test_capi.c target/release/libprivline.a -lpthread -ldl -lm
 *
 * Prints one line per failed check (file:line and the expression) and ends
 * with exactly one line "N passed, M failed"; exits non-zero on any failure.
 *
 * Misuse of the C ABI (NULL for each pointer, unknown protocols, calls in
 * the wrong state, ...) has one home, tests/misuse.rs, which tests/c/run.sh
 * also runs under valgrind. This file is what a C program does: complete
 * exchanges, buffers too small and retried, refusals and damaged input.
 */

#include "privline.h"
#include "check.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Helpers: byte queues, test data (checks and xmalloc: check.h)            */
/* ------------------------------------------------------------------------ */

/* A byte queue: what one side has sent and the other has not yet taken. */
typedef struct {
    uint8_t *data;
    size_t len;
    size_t cap;
} queue;

static void q_push(queue *q, const uint8_t *bytes, size_t n)
{
    if (n == 0)
        return;
    if (q->len + n > q->cap) {
        size_t cap = q->cap ? q->cap : 256;
        uint8_t *grown;
        while (cap < q->len + n)
            cap *= 2;
        grown = (uint8_t *)realloc(q->data, cap);
        if (grown == NULL) {
            fprintf(stderr, "out of memory\n");
            exit(2);
        }
        q->data = grown;
        q->cap = cap;
    }
    memcpy(q->data + q->len, bytes, n);
    q->len += n;
}

static void q_pop(queue *q, size_t n)
{
    if (n > q->len)
        n = q->len;
    if (n == 0)
        return;
    memmove(q->data, q->data + n, q->len - n);
    q->len -= n;
}

static void q_free(queue *q)
{
    free(q->data);
    q->data = NULL;
    q->len = q->cap = 0;
}

/* Deterministic, non-trivial test bytes (xorshift32). */
static void fill_pattern(uint8_t *buf, size_t n, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 1u;
    size_t i;
    for (i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        buf[i] = (uint8_t)(x >> 24);
    }
}

static int all_bytes_are(const uint8_t *buf, size_t n, uint8_t value)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (buf[i] != value)
            return 0;
    return 1;
}

static int contains(const uint8_t *hay, size_t hay_len, const uint8_t *needle, size_t needle_len)
{
    size_t i;
    if (needle_len == 0 || needle_len > hay_len)
        return 0;
    for (i = 0; i + needle_len <= hay_len; i++)
        if (memcmp(hay + i, needle, needle_len) == 0)
            return 1;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Identities                                                               */
/* ------------------------------------------------------------------------ */

static uint8_t network_key[PRIVLINE_NETWORK_KEY_LEN];
static uint8_t client_seed[PRIVLINE_SEED_LEN];
static uint8_t client_public[PRIVLINE_PUBLIC_KEY_LEN];
static uint8_t server_seed[PRIVLINE_SEED_LEN];
static uint8_t server_public[PRIVLINE_PUBLIC_KEY_LEN];
/* Identity handles for the same two identities: the client's made from its
 * 32-byte seed, the server's from its 64-byte secret (seed, then public). */
static privline_identity *client_identity;
static privline_identity *server_identity;

/* Something that is not a handle, to see out-pointers left untouched. */
static int not_a_handle;
#define SENTINEL_HANDSHAKE ((privline_handshake *)(void *)&not_a_handle)
#define SENTINEL_CHANNEL ((privline_channel *)(void *)&not_a_handle)
#define SENTINEL_IDENTITY ((privline_identity *)(void *)&not_a_handle)
#define SENTINEL_PROTOCOL 0xC0DEu
#define SENTINEL_STATUS ((privline_handshake_status)0xDEADu)
#define SENTINEL_TYPE ((privline_record_type)0xBEEFu)
#define SENTINEL_LEN ((size_t)0x5A5Au)

static void setup_identities(void)
{
    uint8_t derived[PRIVLINE_PUBLIC_KEY_LEN];
    CHECK_OK(privline_identity_generate(client_seed, client_public));
    CHECK_OK(privline_identity_generate(server_seed, server_public));
    CHECK(memcmp(client_seed, server_seed, PRIVLINE_SEED_LEN) != 0);
    CHECK(memcmp(client_public, server_public, PRIVLINE_PUBLIC_KEY_LEN) != 0);
    CHECK_OK(privline_identity_public_from_seed(client_seed, derived));
    CHECK(memcmp(derived, client_public, sizeof derived) == 0);
    CHECK_OK(privline_identity_public_from_seed(server_seed, derived));
    CHECK(memcmp(derived, server_public, sizeof derived) == 0);
    fill_pattern(network_key, sizeof network_key, 0x4e4b);
    {
        uint8_t keypair[PRIVLINE_IDENTITY_KEYPAIR_LEN];
        memcpy(keypair, server_seed, PRIVLINE_SEED_LEN);
        memcpy(keypair + PRIVLINE_SEED_LEN, server_public, PRIVLINE_PUBLIC_KEY_LEN);
        CHECK_OK(privline_identity_new(client_seed, sizeof client_seed, &client_identity));
        CHECK_OK(privline_identity_new(keypair, sizeof keypair, &server_identity));
        memset(keypair, 0, sizeof keypair);
    }
    if (client_identity == NULL || server_identity == NULL) {
        fprintf(stderr, "cannot make the identity handles\n");
        exit(2);
    }
}

/* ------------------------------------------------------------------------ */
/* Handshake driver                                                         */
/* ------------------------------------------------------------------------ */

typedef struct {
    uint32_t protocol; /* 0 (privline/1 from seeds) or a privline_protocol value */
    privline_handshake *client;
    privline_handshake *server;
    queue c2s; /* sent by the client, not yet taken by the server */
    queue s2c; /* sent by the server, not yet taken by the client */
    size_t client_msgs[4];
    size_t server_msgs[4];
    int n_client_msgs;
    int n_server_msgs;
    int client_done;
    int server_done;
} hs_pair;

static int new_pair(hs_pair *p)
{
    memset(p, 0, sizeof *p);
    if (!CHECK_OK(privline_handshake_new_client(network_key, client_seed, server_public, &p->client)))
        return 0;
    if (!CHECK_OK(privline_handshake_new_server(network_key, server_seed, &p->server)))
        return 0;
    return CHECK(p->client != NULL && p->server != NULL);
}

/* A pair created from the identity handles, speaking `protocol`. */
static int new_pair_protocol(hs_pair *p, uint32_t protocol)
{
    memset(p, 0, sizeof *p);
    p->protocol = protocol;
    if (!CHECK_OK(privline_handshake_new_client_with_identity(protocol, network_key, client_identity, server_public,
                                                              &p->client)))
        return 0;
    if (!CHECK_OK(privline_handshake_new_server_with_identity(protocol, network_key, server_identity, &p->server)))
        return 0;
    return CHECK(p->client != NULL && p->server != NULL);
}

static int is_shs1(uint32_t protocol)
{
    return protocol == PRIVLINE_PROTOCOL_SHS1;
}

static void free_pair(hs_pair *p)
{
    privline_handshake_free(p->client);
    privline_handshake_free(p->server);
    p->client = p->server = NULL;
    q_free(&p->c2s);
    q_free(&p->s2c);
}

/* privline/1: 64, 64, 144, 112; SHS1: 64, 64, 112, 80. */
static int is_message_len(size_t n)
{
    return n == 64 || n == 80 || n == 112 || n == 144;
}

/*
 * One step of `hs`: offers at most `chunk` bytes from the front of `in`,
 * removes what it consumed and appends what it wrote to `out`. With
 * `tight`, first tries a 1-byte output buffer: when that is too small, the
 * call must have changed nothing, and the retry uses exactly the size the
 * library reported.
 */
static privline_result pump(privline_handshake *hs, queue *in, queue *out, size_t chunk, int tight,
                            privline_handshake_status *status, size_t msgs[4], int *n_msgs)
{
    uint8_t buf[PRIVLINE_HANDSHAKE_MAX_MESSAGE_LEN];
    size_t feed = in->len < chunk ? in->len : chunk;
    size_t capacity = sizeof buf;
    size_t consumed = SENTINEL_LEN;
    size_t out_len;
    privline_result r;

    if (tight) {
        uint8_t small[1] = {0xA5};
        privline_handshake_status st = SENTINEL_STATUS;
        out_len = sizeof small;
        r = privline_handshake_step(hs, in->data, feed, &consumed, small, &out_len, &st);
        if (r == PRIVLINE_RESULT_OK) {
            /* Nothing to write: the small buffer was enough. */
            CHECK(out_len == 0);
            CHECK(consumed <= feed);
            q_pop(in, consumed);
            *status = st;
            return r;
        }
        CHECK_R(r, PRIVLINE_RESULT_BUFFER_TOO_SMALL);
        CHECK(consumed == 0);
        CHECK(is_message_len(out_len));
        CHECK(st == SENTINEL_STATUS);
        CHECK(small[0] == 0xA5);
        capacity = out_len;
        if (capacity > sizeof buf)
            capacity = sizeof buf;
    }

    out_len = capacity;
    consumed = SENTINEL_LEN;
    r = privline_handshake_step(hs, in->data, feed, &consumed, buf, &out_len, status);
    if (r != PRIVLINE_RESULT_OK)
        return r;
    CHECK(consumed <= feed);
    CHECK(out_len == 0 || is_message_len(out_len));
    if (tight)
        CHECK(out_len == capacity);
    q_pop(in, consumed);
    if (out_len > 0) {
        q_push(out, buf, out_len);
        if (CHECK(*n_msgs < 4))
            msgs[(*n_msgs)++] = out_len;
    }
    return r;
}

/*
 * Runs the handshake of `p` to the end. `chunk` is the most bytes a side is
 * handed per step (1 = one byte at a time). With `hold_m4` it stops once the
 * server has written M4, leaving M4 in p->s2c and the client waiting for it.
 */
static int drive_handshake(hs_pair *p, size_t chunk, int tight, int hold_m4)
{
    privline_handshake_status st = SENTINEL_STATUS;
    int iterations = 0;
    size_t total;
    const int shs1 = is_shs1(p->protocol);
    const size_t m3_len = shs1 ? 112 : 144, m4_len = shs1 ? 80 : 112;

    /* The client's first step, with empty input, writes M1. */
    if (!CHECK_OK(pump(p->client, &p->s2c, &p->c2s, chunk, tight, &st, p->client_msgs, &p->n_client_msgs)))
        return 0;
    CHECK(st == PRIVLINE_HANDSHAKE_NEED_INPUT);
    CHECK(p->c2s.len == 64);

    while (!p->server_done || (!p->client_done && !hold_m4)) {
        if (!CHECK(++iterations < 10000))
            return 0;
        if (!p->server_done) {
            if (!CHECK_OK(pump(p->server, &p->c2s, &p->s2c, chunk, tight, &st, p->server_msgs,
                               &p->n_server_msgs)))
                return 0;
            if (st == PRIVLINE_HANDSHAKE_AUTHORIZE_PEER) {
                uint8_t peer[PRIVLINE_PUBLIC_KEY_LEN];
                uint8_t empty_out[PRIVLINE_HANDSHAKE_MAX_MESSAGE_LEN];
                uint8_t stray[1] = {0xEE};
                size_t consumed = SENTINEL_LEN, out_len = sizeof empty_out;
                privline_handshake_status again = SENTINEL_STATUS;
                /* Stepping again before deciding takes no input and writes nothing. */
                CHECK_OK(privline_handshake_step(p->server, stray, sizeof stray, &consumed, empty_out, &out_len,
                                                 &again));
                CHECK(again == PRIVLINE_HANDSHAKE_AUTHORIZE_PEER && consumed == 0 && out_len == 0);
                CHECK_OK(privline_handshake_peer_key(p->server, peer));
                CHECK(memcmp(peer, client_public, sizeof peer) == 0);
                CHECK_OK(privline_handshake_authorize(p->server, true));
                /* One more step with empty input writes M4. */
                {
                    queue none = {NULL, 0, 0};
                    if (!CHECK_OK(pump(p->server, &none, &p->s2c, chunk, tight, &st, p->server_msgs,
                                       &p->n_server_msgs)))
                        return 0;
                }
                CHECK(st == PRIVLINE_HANDSHAKE_DONE);
            }
            if (st == PRIVLINE_HANDSHAKE_DONE)
                p->server_done = 1;
        }
        if (!p->client_done && !(hold_m4 && p->server_done)) {
            if (!CHECK_OK(pump(p->client, &p->s2c, &p->c2s, chunk, tight, &st, p->client_msgs,
                               &p->n_client_msgs)))
                return 0;
            CHECK(st == PRIVLINE_HANDSHAKE_NEED_INPUT || st == PRIVLINE_HANDSHAKE_DONE);
            if (st == PRIVLINE_HANDSHAKE_DONE)
                p->client_done = 1;
        }
    }

    /* One message per step: client M1, M3; server M2, M4. */
    CHECK(p->n_client_msgs == 2 && p->client_msgs[0] == 64 && p->client_msgs[1] == m3_len);
    CHECK(p->n_server_msgs == 2 && p->server_msgs[0] == 64 && p->server_msgs[1] == m4_len);
    total = p->client_msgs[0] + p->client_msgs[1] + p->server_msgs[0] + p->server_msgs[1];
    CHECK(total == (shs1 ? 64u + 64u + 112u + 80u : (size_t)PRIVLINE_HANDSHAKE_TOTAL_LEN));
    CHECK(p->c2s.len == 0);
    CHECK(p->s2c.len == (hold_m4 ? m4_len : 0u));
    return 1;
}

/* A finished handshake: stepping it is WRONG_STATE and changes nothing. */
static void check_finished_step(privline_handshake *hs)
{
    uint8_t out[PRIVLINE_HANDSHAKE_MAX_MESSAGE_LEN];
    uint8_t junk[3] = {1, 2, 3};
    size_t consumed = SENTINEL_LEN, out_len = sizeof out;
    privline_handshake_status st = SENTINEL_STATUS;
    CHECK_R(privline_handshake_step(hs, junk, sizeof junk, &consumed, out, &out_len, &st),
            PRIVLINE_RESULT_WRONG_STATE);
    CHECK(consumed == 0 && out_len == 0 && st == SENTINEL_STATUS);
}

/* Turns both finished handshakes into channels and checks what they agree on. */
static int establish(hs_pair *p, privline_channel **client_ch, privline_channel **server_ch)
{
    uint8_t sid_c[PRIVLINE_SESSION_ID_LEN], sid_s[PRIVLINE_SESSION_ID_LEN];
    uint8_t key[PRIVLINE_PUBLIC_KEY_LEN];
    bool closed = true;

    *client_ch = *server_ch = NULL;
    check_finished_step(p->client);
    check_finished_step(p->server);
    if (!CHECK_OK(privline_handshake_into_channel(&p->client, client_ch)))
        return 0;
    if (!CHECK_OK(privline_handshake_into_channel(&p->server, server_ch)))
        return 0;
    CHECK(p->client == NULL && p->server == NULL);
    CHECK(*client_ch != NULL && *server_ch != NULL);

    {
        uint32_t want = is_shs1(p->protocol) ? PRIVLINE_PROTOCOL_SHS1 : PRIVLINE_PROTOCOL_PRIVLINE1;
        uint32_t got_c = SENTINEL_PROTOCOL, got_s = SENTINEL_PROTOCOL;
        CHECK_OK(privline_channel_protocol(*client_ch, &got_c));
        CHECK_OK(privline_channel_protocol(*server_ch, &got_s));
        CHECK(got_c == want && got_s == want);
    }
    memset(sid_c, 0, sizeof sid_c);
    memset(sid_s, 0xFF, sizeof sid_s);
    if (is_shs1(p->protocol)) {
        /* SHS1 has no session id: NOT_SUPPORTED, nothing written. */
        CHECK_R(privline_channel_session_id(*client_ch, sid_c), PRIVLINE_RESULT_NOT_SUPPORTED);
        CHECK_R(privline_channel_session_id(*server_ch, sid_s), PRIVLINE_RESULT_NOT_SUPPORTED);
        CHECK(all_bytes_are(sid_c, sizeof sid_c, 0) && all_bytes_are(sid_s, sizeof sid_s, 0xFF));
    } else {
        CHECK_OK(privline_channel_session_id(*client_ch, sid_c));
        CHECK_OK(privline_channel_session_id(*server_ch, sid_s));
        CHECK(memcmp(sid_c, sid_s, sizeof sid_c) == 0);
        CHECK(!all_bytes_are(sid_c, sizeof sid_c, 0));
    }

    CHECK_OK(privline_channel_peer_key(*client_ch, key));
    CHECK(memcmp(key, server_public, sizeof key) == 0);
    CHECK_OK(privline_channel_peer_key(*server_ch, key));
    CHECK(memcmp(key, client_public, sizeof key) == 0);

    CHECK_OK(privline_channel_peer_closed(*client_ch, &closed));
    CHECK(closed == false);
    closed = true;
    CHECK_OK(privline_channel_peer_closed(*server_ch, &closed));
    CHECK(closed == false);
    return 1;
}

/* A full handshake; 1 on success with both channels set. */
static int connect_pair(size_t chunk, int tight, privline_channel **client_ch, privline_channel **server_ch)
{
    hs_pair p;
    int ok = new_pair(&p) && drive_handshake(&p, chunk, tight, 0) && establish(&p, client_ch, server_ch);
    free_pair(&p);
    return ok;
}

/* The same from the identity handles, speaking `protocol`. */
static int connect_pair_protocol(uint32_t protocol, size_t chunk, int tight, privline_channel **client_ch,
                                 privline_channel **server_ch)
{
    hs_pair p;
    int ok = new_pair_protocol(&p, protocol) && drive_handshake(&p, chunk, tight, 0)
             && establish(&p, client_ch, server_ch);
    free_pair(&p);
    return ok;
}

/* The protocol a channel speaks (0 if the call fails). */
static uint32_t protocol_of(const privline_channel *ch)
{
    uint32_t protocol = 0;
    if (!CHECK_OK(privline_channel_protocol(ch, &protocol)))
        return 0;
    return protocol;
}

/* ------------------------------------------------------------------------ */
/* Channel helpers                                                          */
/* ------------------------------------------------------------------------ */

/* Seals with the exact buffer size the library asks for; returns the wire
 * bytes (malloc'd) and their length in *wire_len, or NULL. */
static uint8_t *seal_exact(privline_channel *ch, const uint8_t *payload, size_t n, size_t pad, size_t *wire_len)
{
    size_t need = 0;
    size_t written;
    uint8_t *wire;
    const size_t predicted = privline_channel_sealed_len(ch, n, pad);
    if (predicted == 0) {
        /* SHS1 writes nothing for an empty payload: OK with no room at all. */
        CHECK(n == 0 && is_shs1(protocol_of(ch)));
        if (!CHECK_OK(privline_channel_seal(ch, payload, n, pad, NULL, &need)))
            return NULL;
        CHECK(need == 0);
        *wire_len = 0;
        return (uint8_t *)xmalloc(0);
    }
    /* A zero-capacity (NULL) buffer asks for the size. */
    if (!CHECK_R(privline_channel_seal(ch, payload, n, pad, NULL, &need), PRIVLINE_RESULT_BUFFER_TOO_SMALL))
        return NULL;
    CHECK(need == predicted); /* the exact size, for both protocols */
    if (pad <= 1 && !is_shs1(protocol_of(ch)))
        CHECK(need == privline_sealed_len(n));
    wire = (uint8_t *)xmalloc(need);
    written = need;
    if (!CHECK_OK(privline_channel_seal(ch, payload, n, pad, wire, &written))) {
        free(wire);
        return NULL;
    }
    CHECK(written == need);
    *wire_len = written;
    return wire;
}

/*
 * Delivers `wire` to `to` at most `chunk` bytes at a time, opening records
 * as soon as whole ones are there, and checks the result: exactly
 * `expect_records` records of type `expect_type`, whose DATA payloads
 * concatenated equal `payload`.
 */
static void deliver(privline_channel *to, const uint8_t *wire, size_t wire_len, size_t chunk,
                    privline_record_type expect_type, const uint8_t *payload, size_t n, size_t expect_records)
{
    uint8_t *out = (uint8_t *)xmalloc(PRIVLINE_OPEN_MAX_OUTPUT_LEN);
    uint8_t *got = (uint8_t *)xmalloc(n);
    size_t got_len = 0, records = 0, sent = 0;
    int bad_type = 0, incomplete_ok = 1, broke = 0;
    queue rx = {NULL, 0, 0};

    while (sent < wire_len || rx.len > 0) {
        size_t step = wire_len - sent < chunk ? wire_len - sent : chunk;
        q_push(&rx, wire + sent, step);
        sent += step;
        for (;;) {
            size_t consumed = SENTINEL_LEN, out_len = PRIVLINE_OPEN_MAX_OUTPUT_LEN;
            privline_record_type type = SENTINEL_TYPE;
            privline_result r = privline_channel_open(to, rx.data, rx.len, &consumed, out, &out_len, &type);
            if (r != PRIVLINE_RESULT_OK) {
                CHECK_R(r, PRIVLINE_RESULT_OK);
                broke = 1;
                break;
            }
            if (type == PRIVLINE_RECORD_NONE) {
                if (consumed != 0 || out_len != 0)
                    incomplete_ok = 0;
                break;
            }
            records++;
            if (type != expect_type)
                bad_type = 1;
            if (type == PRIVLINE_RECORD_DATA) {
                if (got_len + out_len <= n)
                    memcpy(got + got_len, out, out_len);
                got_len += out_len;
            } else if (out_len != 0) {
                bad_type = 1;
            }
            q_pop(&rx, consumed);
        }
        if (broke || (sent == wire_len && rx.len > 0))
            break;
    }
    CHECK(!broke);
    CHECK(incomplete_ok);
    CHECK(!bad_type);
    CHECK(rx.len == 0);
    CHECK(records == expect_records);
    CHECK(got_len == n);
    CHECK(got_len != n || n == 0 || memcmp(got, payload, n) == 0);
    q_free(&rx);
    free(got);
    free(out);
}

/* Records (privline/1) or boxes (SHS1, none for an empty payload) that
 * sealing `n` bytes writes. */
static size_t records_for(uint32_t protocol, size_t n)
{
    if (is_shs1(protocol))
        return (n + PRIVLINE_SHS1_MAX_BODY_LEN - 1) / PRIVLINE_SHS1_MAX_BODY_LEN;
    return n == 0 ? 1 : (n + PRIVLINE_RECORD_MAX_PAYLOAD_LEN - 1) / PRIVLINE_RECORD_MAX_PAYLOAD_LEN;
}

/* Seals `n` pattern bytes on `from` and delivers them to `to`. */
static void transfer(privline_channel *from, privline_channel *to, size_t n, size_t pad, size_t chunk, uint32_t seed)
{
    uint8_t *payload = (uint8_t *)xmalloc(n);
    uint8_t *wire;
    size_t wire_len = 0;
    fill_pattern(payload, n, seed);
    wire = seal_exact(from, payload, n, pad, &wire_len);
    if (wire != NULL) {
        deliver(to, wire, wire_len, chunk, PRIVLINE_RECORD_DATA, payload, n, records_for(protocol_of(from), n));
        free(wire);
    }
    free(payload);
}

/* Sends a control record (close or key update) and checks the peer sees it. */
static void control(privline_channel *from, privline_channel *to, int is_close, size_t pad, size_t expect_len)
{
    uint8_t wire[PRIVLINE_RECORD_MAX_LEN];
    size_t len = sizeof wire;
    privline_result r = is_close ? privline_channel_close(from, pad, wire, &len)
                                 : privline_channel_update_key(from, pad, wire, &len);
    if (!CHECK_OK(r))
        return;
    CHECK(len == expect_len);
    deliver(to, wire, len, len, is_close ? PRIVLINE_RECORD_CLOSE : PRIVLINE_RECORD_KEY_UPDATE, NULL, 0, 1);
}

/* The client closes first, a half-close in either protocol: the server sees
 * the close, the client has not seen one, and the client's channel refuses
 * to seal or close again. close_len: the size of the client's close record. */
static void client_closes_first(privline_channel *c, privline_channel *s, size_t close_len)
{
    uint8_t wire[PRIVLINE_RECORD_MAX_LEN];
    size_t len;
    bool closed = true;
    static const uint8_t one_byte[1] = {42};
    control(c, s, 1, 0, close_len);
    CHECK_OK(privline_channel_peer_closed(s, &closed));
    CHECK(closed == true);
    closed = true;
    CHECK_OK(privline_channel_peer_closed(c, &closed));
    CHECK(closed == false);
    len = sizeof wire;
    CHECK_R(privline_channel_seal(c, one_byte, 1, 0, wire, &len), PRIVLINE_RESULT_ALREADY_CLOSED);
    len = sizeof wire;
    CHECK_R(privline_channel_close(c, 0, wire, &len), PRIVLINE_RESULT_ALREADY_CLOSED);
}

/* After the server has closed as well: the client has seen it, the server
 * refuses to seal (empty or not), and empty input on either side is NONE,
 * not an error. */
static void check_both_closed(privline_channel *c, privline_channel *s)
{
    uint8_t wire[PRIVLINE_RECORD_MAX_LEN];
    size_t len, consumed = SENTINEL_LEN, out_len = sizeof wire;
    bool closed = false;
    privline_record_type type = SENTINEL_TYPE;
    static const uint8_t one_byte[1] = {42};
    CHECK_OK(privline_channel_peer_closed(c, &closed));
    CHECK(closed == true);
    len = sizeof wire;
    CHECK_R(privline_channel_seal(s, NULL, 0, 0, wire, &len), PRIVLINE_RESULT_ALREADY_CLOSED);
    len = sizeof wire;
    CHECK_R(privline_channel_seal(s, one_byte, 1, 0, wire, &len), PRIVLINE_RESULT_ALREADY_CLOSED);
    CHECK_OK(privline_channel_open(c, NULL, 0, &consumed, wire, &out_len, &type));
    CHECK(type == PRIVLINE_RECORD_NONE && consumed == 0);
    CHECK_OK(privline_channel_open(s, NULL, 0, &consumed, wire, &out_len, &type));
    CHECK(type == PRIVLINE_RECORD_NONE && consumed == 0);
}

/* ------------------------------------------------------------------------ */
/* Tests                                                                    */
/* ------------------------------------------------------------------------ */

static void test_constants(void)
{
    const char *version = privline_version();
    CHECK(version != NULL && version[0] != '\0');

    CHECK(privline_network_key_len() == PRIVLINE_NETWORK_KEY_LEN);
    CHECK(privline_seed_len() == PRIVLINE_SEED_LEN);
    CHECK(privline_public_key_len() == PRIVLINE_PUBLIC_KEY_LEN);
    CHECK(privline_session_id_len() == PRIVLINE_SESSION_ID_LEN);
    CHECK(privline_handshake_max_message_len() == PRIVLINE_HANDSHAKE_MAX_MESSAGE_LEN);
    CHECK(privline_handshake_total_len() == PRIVLINE_HANDSHAKE_TOTAL_LEN);
    CHECK(privline_record_overhead_len() == PRIVLINE_RECORD_OVERHEAD_LEN);
    CHECK(privline_record_max_payload_len() == PRIVLINE_RECORD_MAX_PAYLOAD_LEN);
    CHECK(privline_record_max_len() == PRIVLINE_RECORD_MAX_LEN);
    CHECK(privline_open_max_output_len() == PRIVLINE_OPEN_MAX_OUTPUT_LEN);

    /* The documented values themselves (PROTOCOL.md, "Sizes"). */
    CHECK(PRIVLINE_NETWORK_KEY_LEN == 32 && PRIVLINE_SEED_LEN == 32 && PRIVLINE_PUBLIC_KEY_LEN == 32);
    CHECK(PRIVLINE_SESSION_ID_LEN == 32 && PRIVLINE_HANDSHAKE_MAX_MESSAGE_LEN == 144);
    CHECK(PRIVLINE_HANDSHAKE_TOTAL_LEN == 64 + 64 + 144 + 112);
    CHECK(PRIVLINE_RECORD_OVERHEAD_LEN == 19 && PRIVLINE_RECORD_MAX_PAYLOAD_LEN == 65518);
    CHECK(PRIVLINE_RECORD_MAX_LEN == 65537 && PRIVLINE_OPEN_MAX_OUTPUT_LEN == 65519);

    CHECK(privline_sealed_len(0) == 19);
    CHECK(privline_sealed_len(1) == 20);
    CHECK(privline_sealed_len(65518) == 65537);
    CHECK(privline_sealed_len(65519) == 65519 + 38);
    CHECK(privline_sealed_len(200000) == 200000 + 4 * 19);
    CHECK(privline_sealed_len(SIZE_MAX) == SIZE_MAX);

    /* SHS1 and the 64-byte identity secret. */
    CHECK(PRIVLINE_IDENTITY_KEYPAIR_LEN == 64 && PRIVLINE_SHS1_MAX_BODY_LEN == 4096);
    CHECK(PRIVLINE_SHS1_HEADER_LEN == 34 && PRIVLINE_SHS1_KEYS_LEN == 112);
    CHECK(PRIVLINE_PROTOCOL_PRIVLINE1 == 1 && PRIVLINE_PROTOCOL_SHS1 == 2);
    CHECK(PRIVLINE_RESULT_NOT_SUPPORTED == 7 && PRIVLINE_RESULT_BUSY == 8
          && PRIVLINE_RESULT_RECORD_TOO_LONG == 48);
    /* An SHS1 body always fits the largest open output. */
    CHECK(PRIVLINE_SHS1_MAX_BODY_LEN <= PRIVLINE_OPEN_MAX_OUTPUT_LEN);
}

static void test_result_strings(void)
{
    static const uint32_t known[] = {
        PRIVLINE_RESULT_OK,
        PRIVLINE_RESULT_BUFFER_TOO_SMALL,
        PRIVLINE_RESULT_NULL_ARGUMENT,
        PRIVLINE_RESULT_INVALID_ARGUMENT,
        PRIVLINE_RESULT_WRONG_STATE,
        PRIVLINE_RESULT_RNG_FAILURE,
        PRIVLINE_RESULT_INTERNAL_ERROR,
        PRIVLINE_RESULT_NOT_SUPPORTED,
        PRIVLINE_RESULT_BUSY,
        PRIVLINE_RESULT_INVALID_SERVER_KEY,
        PRIVLINE_RESULT_M1_BAD_MAC,
        PRIVLINE_RESULT_M2_BAD_MAC,
        PRIVLINE_RESULT_LOW_ORDER_POINT,
        PRIVLINE_RESULT_M3_DOES_NOT_OPEN,
        PRIVLINE_RESULT_M3_INVALID_CLIENT_KEY,
        PRIVLINE_RESULT_M3_BAD_CLIENT_SIGNATURE,
        PRIVLINE_RESULT_CLIENT_REFUSED,
        PRIVLINE_RESULT_M4_DOES_NOT_OPEN,
        PRIVLINE_RESULT_M4_BAD_SERVER_SIGNATURE,
        PRIVLINE_RESULT_RECORD_TOO_SHORT,
        PRIVLINE_RESULT_RECORD_DOES_NOT_OPEN,
        PRIVLINE_RESULT_RECORD_ALL_ZEROS,
        PRIVLINE_RESULT_UNKNOWN_RECORD_TYPE,
        PRIVLINE_RESULT_CONTROL_RECORD_WITH_PAYLOAD,
        PRIVLINE_RESULT_RECORD_AFTER_CLOSE,
        PRIVLINE_RESULT_COUNTER_EXHAUSTED,
        PRIVLINE_RESULT_ALREADY_CLOSED,
        PRIVLINE_RESULT_RECORD_TOO_LONG,
    };
    static const uint32_t unknown[] = {9, 19, 30, 39, 49, 1000, 0x7FFFFFFFu, 0xFFFFFFFFu};
    const size_t n_known = sizeof known / sizeof known[0];
    size_t i, j;

    for (i = 0; i < n_known; i++) {
        const char *s = privline_result_str(known[i]);
        if (!CHECK(s != NULL && s[0] != '\0')) {
            fprintf(stderr, "  (result %u)\n", (unsigned)known[i]);
            continue;
        }
        CHECK(strcmp(s, "unknown result") != 0);
        for (j = 0; j < i; j++) {
            const char *t = privline_result_str(known[j]);
            if (t != NULL && strcmp(s, t) == 0) {
                CHECK(!"two results share one description");
                fprintf(stderr, "  (results %u and %u)\n", (unsigned)known[i], (unsigned)known[j]);
            }
        }
    }
    for (i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        const char *s = privline_result_str(unknown[i]);
        CHECK(s != NULL && s[0] != '\0');
        CHECK(s != NULL && strcmp(s, "unknown result") == 0);
    }
}

static void test_identities(void)
{
    /* RFC 8032, section 7.1, TEST 1. */
    static const uint8_t rfc_seed[32] = {
        0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec, 0x2c, 0xc4,
        0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae, 0x7f, 0x60};
    static const uint8_t rfc_public[32] = {
        0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe, 0xd3, 0xc9, 0x64, 0x07, 0x3a,
        0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6, 0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07, 0x51, 0x1a};
    uint8_t seed_copy[32], pub[32], seed2[32], pub2[32];

    memcpy(seed_copy, rfc_seed, sizeof seed_copy);
    CHECK_OK(privline_identity_public_from_seed(seed_copy, pub));
    CHECK(memcmp(pub, rfc_public, sizeof pub) == 0);
    CHECK(memcmp(seed_copy, rfc_seed, sizeof seed_copy) == 0); /* only read */

    CHECK_OK(privline_identity_generate(seed2, pub2));
    CHECK_OK(privline_identity_public_from_seed(seed2, pub));
    CHECK(memcmp(pub, pub2, sizeof pub) == 0);
    CHECK(memcmp(seed2, client_seed, sizeof seed2) != 0);
    CHECK(!all_bytes_are(seed2, sizeof seed2, 0));
}

static void test_invalid_server_key(void)
{
    /* Each fails the identity key check (PROTOCOL.md, "Primitives"). */
    static const uint8_t bad_keys[][32] = {
        /* 01 00..00: y = 1, the identity point (small order). */
        {0x01},
        /* 00..00: y = 0, a point of order 4. */
        {0x00},
        /* 01 00..80: the identity with the sign bit set (x = 0): not canonical. */
        {0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80},
        /* ec ff..ff 7f: y = p - 1 = -1, the point of order 2. */
        {0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
         0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
        /* ee ff..ff 7f: y = p + 1, a non-canonical encoding of y = 1. */
        {0xee, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
         0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
    };
    size_t i;
    for (i = 0; i < sizeof bad_keys / sizeof bad_keys[0]; i++) {
        privline_handshake *hs = SENTINEL_HANDSHAKE;
        if (!CHECK_R(privline_handshake_new_client(network_key, client_seed, bad_keys[i], &hs),
                     PRIVLINE_RESULT_INVALID_SERVER_KEY))
            fprintf(stderr, "  (bad key #%lu)\n", (unsigned long)i);
        CHECK(hs == SENTINEL_HANDSHAKE);
        if (hs != SENTINEL_HANDSHAKE)
            privline_handshake_free(hs);
    }
}

/* Too-small buffers for seal, open, close and update_key, each followed
 * by a successful retry that proves nothing had changed. */
static void test_buffer_too_small_channel(privline_channel *c, privline_channel *s)
{
    uint8_t payload[1000], wire[1200], out[1200];
    size_t wire_len, out_len, consumed, need;
    privline_record_type type;

    fill_pattern(payload, sizeof payload, 77);

    /* seal */
    need = privline_sealed_len(sizeof payload);
    memset(wire, 0xCC, sizeof wire);
    wire_len = need - 1;
    CHECK_R(privline_channel_seal(c, payload, sizeof payload, 0, wire, &wire_len), PRIVLINE_RESULT_BUFFER_TOO_SMALL);
    CHECK(wire_len == need);
    CHECK(all_bytes_are(wire, sizeof wire, 0xCC));
    /* with padding the need reported is the padded size */
    wire_len = 10;
    CHECK_R(privline_channel_seal(c, payload, sizeof payload, 256, wire, &wire_len),
            PRIVLINE_RESULT_BUFFER_TOO_SMALL);
    CHECK(wire_len == 2 + 1024 + 16);
    wire_len = need;
    CHECK_OK(privline_channel_seal(c, payload, sizeof payload, 0, wire, &wire_len));
    CHECK(wire_len == need);

    /* open: it needs room for the whole inner plaintext (payload + type) */
    out_len = sizeof payload; /* one byte short */
    consumed = SENTINEL_LEN;
    type = SENTINEL_TYPE;
    memset(out, 0xDD, sizeof out);
    CHECK_R(privline_channel_open(s, wire, wire_len, &consumed, out, &out_len, &type),
            PRIVLINE_RESULT_BUFFER_TOO_SMALL);
    CHECK(out_len == sizeof payload + 1);
    CHECK(consumed == 0);
    CHECK(type == SENTINEL_TYPE);
    CHECK(all_bytes_are(out, sizeof out, 0xDD));
    /* retry with exactly the size reported: the record (counter 0 after the
     * failed seal attempts) opens, so neither call changed any state */
    CHECK_OK(privline_channel_open(s, wire, wire_len, &consumed, out, &out_len, &type));
    CHECK(type == PRIVLINE_RECORD_DATA);
    CHECK(consumed == wire_len);
    CHECK(out_len == sizeof payload && memcmp(out, payload, sizeof payload) == 0);

    /* update_key: a too-small buffer must not switch the sending key */
    wire_len = PRIVLINE_RECORD_OVERHEAD_LEN - 1;
    CHECK_R(privline_channel_update_key(c, 0, wire, &wire_len), PRIVLINE_RESULT_BUFFER_TOO_SMALL);
    CHECK(wire_len == PRIVLINE_RECORD_OVERHEAD_LEN);
    transfer(c, s, 33, 0, SIZE_MAX, 5);

    /* close: a too-small buffer must not close the channel */
    wire_len = 0;
    CHECK_R(privline_channel_close(c, 0, wire, &wire_len), PRIVLINE_RESULT_BUFFER_TOO_SMALL);
    CHECK(wire_len == PRIVLINE_RECORD_OVERHEAD_LEN);
    wire_len = 5;
    CHECK_R(privline_channel_close(c, 64, wire, &wire_len), PRIVLINE_RESULT_BUFFER_TOO_SMALL);
    CHECK(wire_len == 2 + 64 + 16);
    transfer(c, s, 34, 0, SIZE_MAX, 6);

    /* An out-of-range pad_block is INVALID_ARGUMENT and not fatal. */
    wire_len = sizeof wire;
    CHECK_R(privline_channel_seal(c, payload, 10, PRIVLINE_OPEN_MAX_OUTPUT_LEN + 1, wire, &wire_len),
            PRIVLINE_RESULT_INVALID_ARGUMENT);
    wire_len = sizeof wire;
    CHECK_R(privline_channel_update_key(c, PRIVLINE_OPEN_MAX_OUTPUT_LEN + 1, wire, &wire_len),
            PRIVLINE_RESULT_INVALID_ARGUMENT);
    wire_len = sizeof wire;
    CHECK_R(privline_channel_close(c, PRIVLINE_OPEN_MAX_OUTPUT_LEN + 1, wire, &wire_len),
            PRIVLINE_RESULT_INVALID_ARGUMENT);
    transfer(c, s, 35, 0, SIZE_MAX, 7);
}

/* Handshake step: too-small buffers at each message, explicitly. */
static void test_buffer_too_small_handshake(void)
{
    hs_pair p;
    uint8_t out[PRIVLINE_HANDSHAKE_MAX_MESSAGE_LEN];
    size_t consumed, out_len;
    privline_handshake_status st;

    if (!new_pair(&p)) {
        free_pair(&p);
        return;
    }
    /* M1 needs 64 bytes. */
    memset(out, 0x99, sizeof out);
    out_len = 63;
    consumed = SENTINEL_LEN;
    st = SENTINEL_STATUS;
    CHECK_R(privline_handshake_step(p.client, NULL, 0, &consumed, out, &out_len, &st),
            PRIVLINE_RESULT_BUFFER_TOO_SMALL);
    CHECK(out_len == 64 && consumed == 0 && st == SENTINEL_STATUS);
    CHECK(all_bytes_are(out, sizeof out, 0x99));
    out_len = 0;
    CHECK_R(privline_handshake_step(p.client, NULL, 0, &consumed, NULL, &out_len, &st),
            PRIVLINE_RESULT_BUFFER_TOO_SMALL); /* a NULL, zero-capacity buffer asks for the size */
    CHECK(out_len == 64);
    CHECK_OK(privline_handshake_step(p.client, NULL, 0, &consumed, out, &out_len, &st));
    CHECK(out_len == 64 && consumed == 0 && st == PRIVLINE_HANDSHAKE_NEED_INPUT);
    q_push(&p.c2s, out, out_len);

    /* The server's M2 (64) on the full M1: nothing consumed when too small. */
    out_len = 10;
    CHECK_R(privline_handshake_step(p.server, p.c2s.data, p.c2s.len, &consumed, out, &out_len, &st),
            PRIVLINE_RESULT_BUFFER_TOO_SMALL);
    CHECK(out_len == 64 && consumed == 0);
    /* A partial M1 needs no output room at all. */
    out_len = 0;
    CHECK_OK(privline_handshake_step(p.server, p.c2s.data, 63, &consumed, NULL, &out_len, &st));
    CHECK(consumed == 63 && out_len == 0 && st == PRIVLINE_HANDSHAKE_NEED_INPUT);
    q_pop(&p.c2s, consumed);
    /* ... but the byte that completes it does. */
    out_len = 63;
    CHECK_R(privline_handshake_step(p.server, p.c2s.data, p.c2s.len, &consumed, out, &out_len, &st),
            PRIVLINE_RESULT_BUFFER_TOO_SMALL);
    CHECK(out_len == 64 && consumed == 0);
    /* Now with a 1-byte buffer first, then exactly the size reported. */
    {
        privline_handshake_status sst = SENTINEL_STATUS;
        if (CHECK_OK(pump(p.server, &p.c2s, &p.s2c, SIZE_MAX, 1, &sst, p.server_msgs, &p.n_server_msgs)))
            CHECK(sst == PRIVLINE_HANDSHAKE_NEED_INPUT && p.s2c.len == 64);
    }
    /* The client's M3 (144) needs room. */
    out_len = 143;
    CHECK_R(privline_handshake_step(p.client, p.s2c.data, p.s2c.len, &consumed, out, &out_len, &st),
            PRIVLINE_RESULT_BUFFER_TOO_SMALL);
    CHECK(out_len == 144 && consumed == 0);
    {
        privline_handshake_status cst = SENTINEL_STATUS, sst = SENTINEL_STATUS;
        if (CHECK_OK(pump(p.client, &p.s2c, &p.c2s, SIZE_MAX, 0, &cst, p.client_msgs, &p.n_client_msgs)))
            CHECK(cst == PRIVLINE_HANDSHAKE_NEED_INPUT && p.c2s.len == 144);
        if (CHECK_OK(pump(p.server, &p.c2s, &p.s2c, SIZE_MAX, 1, &sst, p.server_msgs, &p.n_server_msgs)))
            CHECK(sst == PRIVLINE_HANDSHAKE_AUTHORIZE_PEER);
        CHECK_OK(privline_handshake_authorize(p.server, true));
        /* M4 (112) needs room too. */
        out_len = 111;
        CHECK_R(privline_handshake_step(p.server, NULL, 0, &consumed, out, &out_len, &st),
                PRIVLINE_RESULT_BUFFER_TOO_SMALL);
        CHECK(out_len == 112 && consumed == 0);
        {
            queue none = {NULL, 0, 0};
            if (CHECK_OK(pump(p.server, &none, &p.s2c, SIZE_MAX, 0, &sst, p.server_msgs, &p.n_server_msgs)))
                CHECK(sst == PRIVLINE_HANDSHAKE_DONE && p.s2c.len == 112);
        }
        /* The client's last step writes nothing, so even no buffer is enough. */
        out_len = 0;
        CHECK_OK(privline_handshake_step(p.client, p.s2c.data, p.s2c.len, &consumed, NULL, &out_len, &cst));
        CHECK(cst == PRIVLINE_HANDSHAKE_DONE && consumed == 112 && out_len == 0);
        q_pop(&p.s2c, consumed);
    }
    {
        privline_channel *c = NULL, *s = NULL;
        if (establish(&p, &c, &s)) {
            transfer(c, s, 500, 0, SIZE_MAX, 8);
            transfer(s, c, 500, 0, SIZE_MAX, 9);
        }
        privline_channel_free(c);
        privline_channel_free(s);
    }
    free_pair(&p);
}

/* The full exchange over channels from a handshake fed `chunk` bytes at a time. */
static void test_full_exchange(size_t chunk, int tight)
{
    static const size_t sizes[] = {0, 1, 2, 1000, 65517, 65518, 65519, 131036, 131037, 200000};
    privline_channel *c = NULL, *s = NULL;
    size_t i;
    uint8_t *zeros;

    if (!connect_pair(chunk, tight, &c, &s))
        goto done;

    for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        transfer(c, s, sizes[i], 0, chunk, (uint32_t)(100 + i));
        transfer(s, c, sizes[i], 0, chunk, (uint32_t)(200 + i));
    }

    /* A payload of zero bytes survives (trailing zeros are not padding). */
    zeros = (uint8_t *)xmalloc(3000);
    memset(zeros, 0, 3000);
    {
        uint8_t *wire;
        size_t wire_len = 0;
        wire = seal_exact(c, zeros, 3000, 0, &wire_len);
        if (wire != NULL) {
            deliver(s, wire, wire_len, chunk, PRIVLINE_RECORD_DATA, zeros, 3000, 1);
            free(wire);
        }
    }
    free(zeros);

    /* Padding: record sizes are multiples of the block; payloads unchanged. */
    {
        uint8_t payload[10], wire[PRIVLINE_RECORD_MAX_LEN];
        size_t wire_len;
        fill_pattern(payload, sizeof payload, 5);
        wire_len = sizeof wire;
        CHECK_OK(privline_channel_seal(c, payload, sizeof payload, 64, wire, &wire_len));
        CHECK(wire_len == 2 + 64 + 16);
        deliver(s, wire, wire_len, chunk, PRIVLINE_RECORD_DATA, payload, sizeof payload, 1);
        wire_len = sizeof wire;
        CHECK_OK(privline_channel_seal(s, NULL, 0, 256, wire, &wire_len));
        CHECK(wire_len == 2 + 256 + 16);
        deliver(c, wire, wire_len, chunk, PRIVLINE_RECORD_DATA, NULL, 0, 1);
        wire_len = sizeof wire;
        CHECK_OK(privline_channel_seal(c, payload, sizeof payload, 1, wire, &wire_len));
        CHECK(wire_len == privline_sealed_len(sizeof payload)); /* 1 = no padding */
        deliver(s, wire, wire_len, chunk, PRIVLINE_RECORD_DATA, payload, sizeof payload, 1);
        /* the largest block: every record is the largest record */
        wire_len = sizeof wire;
        CHECK_OK(privline_channel_seal(s, payload, 5, PRIVLINE_OPEN_MAX_OUTPUT_LEN, wire, &wire_len));
        CHECK(wire_len == PRIVLINE_RECORD_MAX_LEN);
        deliver(c, wire, wire_len, chunk, PRIVLINE_RECORD_DATA, payload, 5, 1);
    }
    /* Padded multi-record payload: three full records, then 3447 -> 4096. */
    {
        uint8_t *payload = (uint8_t *)xmalloc(200000), *wire;
        size_t wire_len = 0;
        fill_pattern(payload, 200000, 6);
        wire = seal_exact(c, payload, 200000, 4096, &wire_len);
        if (wire != NULL) {
            CHECK(wire_len == 3 * PRIVLINE_RECORD_MAX_LEN + 2 + 4096 + 16);
            deliver(s, wire, wire_len, chunk, PRIVLINE_RECORD_DATA, payload, 200000, 4);
            free(wire);
        }
        free(payload);
    }

    /* Key update both ways, plain and padded, then data still flows. */
    control(c, s, 0, 0, PRIVLINE_RECORD_OVERHEAD_LEN);
    transfer(c, s, 1234, 0, chunk, 10);
    control(s, c, 0, 0, PRIVLINE_RECORD_OVERHEAD_LEN);
    control(s, c, 0, 128, 2 + 128 + 16);
    transfer(s, c, 4321, 0, chunk, 11);
    transfer(c, s, 99, 0, chunk, 12);

    /* Close: the client first (half-close), the server still sends. */
    client_closes_first(c, s, PRIVLINE_RECORD_OVERHEAD_LEN);
    {
        uint8_t wire[PRIVLINE_RECORD_MAX_LEN];
        size_t len = sizeof wire;
        CHECK_R(privline_channel_update_key(c, 0, wire, &len), PRIVLINE_RESULT_ALREADY_CLOSED);
    }
    /* ALREADY_CLOSED is not fatal: the client still opens the server's data. */
    transfer(s, c, 777, 0, chunk, 13);
    control(s, c, 0, 0, PRIVLINE_RECORD_OVERHEAD_LEN);
    transfer(s, c, 65519, 0, chunk, 14);
    control(s, c, 1, 64, 2 + 64 + 16);
    check_both_closed(c, s);
done:
    privline_channel_free(c);
    privline_channel_free(s);
}

/* M4 arrives in the same buffer as the server's first records: the client's
 * step must take exactly the 112 bytes of M4 and leave the records. */
static void test_m4_coalesced_with_first_record(void)
{
    hs_pair p;
    privline_channel *c = NULL, *s = NULL;
    uint8_t payload[300], out[PRIVLINE_HANDSHAKE_MAX_MESSAGE_LEN];
    uint8_t record[PRIVLINE_RECORD_MAX_LEN];
    size_t record_len, consumed, out_len;
    privline_handshake_status st = SENTINEL_STATUS;

    if (!new_pair(&p) || !drive_handshake(&p, SIZE_MAX, 0, 1))
        goto done;
    CHECK(p.server_done && !p.client_done && p.s2c.len == 112);
    if (!CHECK_OK(privline_handshake_into_channel(&p.server, &s)))
        goto done;
    fill_pattern(payload, sizeof payload, 42);
    record_len = sizeof record;
    CHECK_OK(privline_channel_seal(s, payload, sizeof payload, 0, record, &record_len));
    q_push(&p.s2c, record, record_len);
    record_len = sizeof record;
    CHECK_OK(privline_channel_update_key(s, 0, record, &record_len));
    q_push(&p.s2c, record, record_len);
    record_len = sizeof record;
    CHECK_OK(privline_channel_seal(s, payload, 7, 0, record, &record_len));
    q_push(&p.s2c, record, record_len);
    CHECK(p.s2c.len == 112 + (300 + 19) + 19 + (7 + 19));

    out_len = sizeof out;
    consumed = SENTINEL_LEN;
    CHECK_OK(privline_handshake_step(p.client, p.s2c.data, p.s2c.len, &consumed, out, &out_len, &st));
    CHECK(consumed == 112);
    CHECK(out_len == 0);
    CHECK(st == PRIVLINE_HANDSHAKE_DONE);
    q_pop(&p.s2c, consumed);
    if (!CHECK_OK(privline_handshake_into_channel(&p.client, &c)))
        goto done;

    /* The rest opens on the client's channel, one record per call. */
    {
        uint8_t *rx = p.s2c.data;
        size_t left = p.s2c.len;
        uint8_t plain[PRIVLINE_OPEN_MAX_OUTPUT_LEN];
        privline_record_type type = SENTINEL_TYPE;
        out_len = sizeof plain;
        CHECK_OK(privline_channel_open(c, rx, left, &consumed, plain, &out_len, &type));
        CHECK(type == PRIVLINE_RECORD_DATA && consumed == 319 && out_len == 300);
        CHECK(memcmp(plain, payload, 300) == 0);
        rx += consumed;
        left -= consumed;
        out_len = sizeof plain;
        CHECK_OK(privline_channel_open(c, rx, left, &consumed, plain, &out_len, &type));
        CHECK(type == PRIVLINE_RECORD_KEY_UPDATE && consumed == 19 && out_len == 0);
        rx += consumed;
        left -= consumed;
        out_len = sizeof plain;
        CHECK_OK(privline_channel_open(c, rx, left, &consumed, plain, &out_len, &type));
        CHECK(type == PRIVLINE_RECORD_DATA && consumed == 26 && out_len == 7);
        CHECK(memcmp(plain, payload, 7) == 0);
        CHECK(left == consumed);
    }
    {
        uint8_t sid_c[32], sid_s[32];
        CHECK_OK(privline_channel_session_id(c, sid_c));
        CHECK_OK(privline_channel_session_id(s, sid_s));
        CHECK(memcmp(sid_c, sid_s, 32) == 0);
    }
    transfer(c, s, 65519, 0, SIZE_MAX, 15);
done:
    privline_channel_free(c);
    privline_channel_free(s);
    free_pair(&p);
}

/* Server refuses the client: CLIENT_REFUSED, nothing written, and every
 * later call on that handle returns it again. */
static void test_refusal(void)
{
    hs_pair p;
    privline_handshake_status st = SENTINEL_STATUS;
    uint8_t out[PRIVLINE_HANDSHAKE_MAX_MESSAGE_LEN], key[32];
    size_t consumed, out_len;
    privline_channel *ch = SENTINEL_CHANNEL;
    privline_handshake *before;
    int i;

    if (!new_pair(&p))
        goto done;
    /* M1, M2, M3 */
    CHECK_OK(pump(p.client, &p.s2c, &p.c2s, SIZE_MAX, 0, &st, p.client_msgs, &p.n_client_msgs));
    CHECK_OK(pump(p.server, &p.c2s, &p.s2c, SIZE_MAX, 0, &st, p.server_msgs, &p.n_server_msgs));
    CHECK_OK(pump(p.client, &p.s2c, &p.c2s, SIZE_MAX, 0, &st, p.client_msgs, &p.n_client_msgs));
    CHECK_OK(pump(p.server, &p.c2s, &p.s2c, SIZE_MAX, 0, &st, p.server_msgs, &p.n_server_msgs));
    if (!CHECK(st == PRIVLINE_HANDSHAKE_AUTHORIZE_PEER))
        goto done;
    CHECK_OK(privline_handshake_peer_key(p.server, key));
    CHECK(memcmp(key, client_public, sizeof key) == 0);
    CHECK_R(privline_handshake_authorize(p.server, false), PRIVLINE_RESULT_CLIENT_REFUSED);
    CHECK(p.s2c.len == 0);

    for (i = 0; i < 2; i++) {
        uint8_t junk[4] = {1, 2, 3, 4};
        memset(out, 0x3C, sizeof out);
        out_len = sizeof out;
        consumed = SENTINEL_LEN;
        st = SENTINEL_STATUS;
        CHECK_R(privline_handshake_step(p.server, NULL, 0, &consumed, out, &out_len, &st),
                PRIVLINE_RESULT_CLIENT_REFUSED);
        CHECK(out_len == 0 && consumed == 0 && st == SENTINEL_STATUS);
        CHECK(all_bytes_are(out, sizeof out, 0x3C));
        out_len = sizeof out;
        CHECK_R(privline_handshake_step(p.server, junk, sizeof junk, &consumed, out, &out_len, &st),
                PRIVLINE_RESULT_CLIENT_REFUSED);
        CHECK(out_len == 0 && consumed == 0);
        memset(key, 0x5E, sizeof key);
        CHECK_R(privline_handshake_peer_key(p.server, key), PRIVLINE_RESULT_CLIENT_REFUSED);
        CHECK(all_bytes_are(key, sizeof key, 0x5E));
        CHECK_R(privline_handshake_authorize(p.server, true), PRIVLINE_RESULT_CLIENT_REFUSED);
        CHECK_R(privline_handshake_authorize(p.server, false), PRIVLINE_RESULT_CLIENT_REFUSED);
        before = p.server;
        CHECK_R(privline_handshake_into_channel(&p.server, &ch), PRIVLINE_RESULT_CLIENT_REFUSED);
        CHECK(p.server == before && ch == SENTINEL_CHANNEL);
    }
    /* The client hears nothing and waits. */
    out_len = sizeof out;
    CHECK_OK(privline_handshake_step(p.client, NULL, 0, &consumed, out, &out_len, &st));
    CHECK(st == PRIVLINE_HANDSHAKE_NEED_INPUT && out_len == 0 && consumed == 0);
done:
    free_pair(&p);
}

/* Wrong network key (M1_BAD_MAC at the server) and wrong server identity
 * (M3_DOES_NOT_OPEN): fatal, nothing sent. */
static void test_handshake_failures(void)
{
    hs_pair p;
    privline_handshake_status st = SENTINEL_STATUS;
    uint8_t other_key[PRIVLINE_NETWORK_KEY_LEN];
    uint8_t other_seed[32], other_public[32];
    uint8_t out[PRIVLINE_HANDSHAKE_MAX_MESSAGE_LEN];
    size_t consumed, out_len;

    /* wrong network key */
    memset(&p, 0, sizeof p);
    memcpy(other_key, network_key, sizeof other_key);
    other_key[0] ^= 1;
    CHECK_OK(privline_handshake_new_client(other_key, client_seed, server_public, &p.client));
    CHECK_OK(privline_handshake_new_server(network_key, server_seed, &p.server));
    if (p.client != NULL && p.server != NULL) {
        CHECK_OK(pump(p.client, &p.s2c, &p.c2s, SIZE_MAX, 0, &st, p.client_msgs, &p.n_client_msgs));
        out_len = sizeof out;
        CHECK_R(privline_handshake_step(p.server, p.c2s.data, p.c2s.len, &consumed, out, &out_len, &st),
                PRIVLINE_RESULT_M1_BAD_MAC);
        CHECK(out_len == 0 && consumed == 0);
        out_len = sizeof out;
        CHECK_R(privline_handshake_step(p.server, NULL, 0, &consumed, out, &out_len, &st),
                PRIVLINE_RESULT_M1_BAD_MAC);
    }
    free_pair(&p);

    /* the client dials a server key that is not this server's */
    memset(&p, 0, sizeof p);
    CHECK_OK(privline_identity_generate(other_seed, other_public));
    CHECK_OK(privline_handshake_new_client(network_key, client_seed, other_public, &p.client));
    CHECK_OK(privline_handshake_new_server(network_key, server_seed, &p.server));
    if (p.client != NULL && p.server != NULL) {
        CHECK_OK(pump(p.client, &p.s2c, &p.c2s, SIZE_MAX, 0, &st, p.client_msgs, &p.n_client_msgs));
        CHECK_OK(pump(p.server, &p.c2s, &p.s2c, SIZE_MAX, 0, &st, p.server_msgs, &p.n_server_msgs));
        CHECK_OK(pump(p.client, &p.s2c, &p.c2s, SIZE_MAX, 0, &st, p.client_msgs, &p.n_client_msgs));
        out_len = sizeof out;
        CHECK_R(privline_handshake_step(p.server, p.c2s.data, p.c2s.len, &consumed, out, &out_len, &st),
                PRIVLINE_RESULT_M3_DOES_NOT_OPEN);
        CHECK(out_len == 0 && consumed == 0);
        CHECK_R(privline_handshake_peer_key(p.server, other_public), PRIVLINE_RESULT_M3_DOES_NOT_OPEN);
    }
    free_pair(&p);
}

/* Every fatal call on the channel `ch` returns `want` from now on. */
static void check_channel_dead(privline_channel *ch, privline_result want, const uint8_t *good, size_t good_len)
{
    uint8_t out[PRIVLINE_RECORD_MAX_LEN];
    uint8_t id[32];
    size_t consumed = SENTINEL_LEN, out_len = sizeof out;
    privline_record_type type = SENTINEL_TYPE;
    bool closed = false;

    CHECK_R(privline_channel_open(ch, good, good_len, &consumed, out, &out_len, &type), want);
    CHECK(consumed == 0 && out_len == 0 && type == SENTINEL_TYPE);
    out_len = sizeof out;
    CHECK_R(privline_channel_seal(ch, good, 3, 0, out, &out_len), want);
    CHECK(out_len == 0);
    out_len = sizeof out;
    CHECK_R(privline_channel_update_key(ch, 0, out, &out_len), want);
    out_len = sizeof out;
    CHECK_R(privline_channel_close(ch, 0, out, &out_len), want);
    out_len = sizeof out;
    CHECK_R(privline_channel_seal(ch, good, 3, 0, out, &out_len), want); /* close did not change it */
    CHECK_R(privline_channel_session_id(ch, id), want);
    CHECK_R(privline_channel_peer_key(ch, id), want);
    CHECK_R(privline_channel_peer_closed(ch, &closed), want);
}

static const uint8_t secret_text[] = "attack at dawn, bring the big map";

/* `from` seals secret_text (a record of `overhead` bytes more) and `to` gets
 * it with the bits `mask` of byte `offset` flipped: RECORD_DOES_NOT_OPEN,
 * nothing consumed or written, no plaintext in the output buffer, and `to`
 * refuses everything afterwards, even the genuine record. The sender is
 * unaffected and still seals. */
static void check_flipped_bits_are_fatal(privline_channel *from, privline_channel *to, size_t overhead,
                                         size_t offset, uint8_t mask)
{
    uint8_t wire[128], bad[128], out[PRIVLINE_OPEN_MAX_OUTPUT_LEN];
    size_t wire_len = sizeof wire, consumed = SENTINEL_LEN, out_len = sizeof out;
    privline_record_type type = SENTINEL_TYPE;

    CHECK_OK(privline_channel_seal(from, secret_text, sizeof secret_text, 0, wire, &wire_len));
    if (!CHECK(wire_len == sizeof secret_text + overhead && offset < wire_len))
        return;
    memcpy(bad, wire, wire_len);
    bad[offset] ^= mask;
    memset(out, 0, sizeof out);
    CHECK_R(privline_channel_open(to, bad, wire_len, &consumed, out, &out_len, &type),
            PRIVLINE_RESULT_RECORD_DOES_NOT_OPEN);
    CHECK(consumed == 0 && out_len == 0 && type == SENTINEL_TYPE);
    CHECK(!contains(out, sizeof out, secret_text, 8)); /* no plaintext in the buffer */
    check_channel_dead(to, PRIVLINE_RESULT_RECORD_DOES_NOT_OPEN, wire, wire_len);
    wire_len = sizeof wire;
    CHECK_OK(privline_channel_seal(from, secret_text, 5, 0, wire, &wire_len));
}

/* `to` opens a record from `from`, then the same bytes again: the second time
 * is RECORD_DOES_NOT_OPEN (the receiving nonce has moved on) and fatal. */
static void check_replay_is_fatal(privline_channel *from, privline_channel *to)
{
    uint8_t wire[128], out[PRIVLINE_OPEN_MAX_OUTPUT_LEN];
    size_t wire_len = sizeof wire, consumed, out_len = sizeof out;
    privline_record_type type = SENTINEL_TYPE;

    CHECK_OK(privline_channel_seal(from, secret_text, 4, 0, wire, &wire_len));
    CHECK_OK(privline_channel_open(to, wire, wire_len, &consumed, out, &out_len, &type));
    CHECK(type == PRIVLINE_RECORD_DATA && out_len == 4);
    out_len = sizeof out;
    CHECK_R(privline_channel_open(to, wire, wire_len, &consumed, out, &out_len, &type),
            PRIVLINE_RESULT_RECORD_DOES_NOT_OPEN);
    check_channel_dead(to, PRIVLINE_RESULT_RECORD_DOES_NOT_OPEN, wire, wire_len);
}

/* A flipped byte: RECORD_DOES_NOT_OPEN, no plaintext, and the channel is dead. */
static void test_tampered_record(void)
{
    privline_channel *c = NULL, *s = NULL;

    /* One bit of the ciphertext (not the length field, which would change
     * the framing). */
    if (!connect_pair(SIZE_MAX, 0, &c, &s))
        goto done;
    check_flipped_bits_are_fatal(c, s, PRIVLINE_RECORD_OVERHEAD_LEN, 5, 0x40);
    privline_channel_free(c);
    privline_channel_free(s);
    c = s = NULL;

    /* A flipped tag byte is fatal too. */
    if (!connect_pair(SIZE_MAX, 0, &c, &s))
        goto done;
    check_flipped_bits_are_fatal(s, c, PRIVLINE_RECORD_OVERHEAD_LEN,
                                 sizeof secret_text + PRIVLINE_RECORD_OVERHEAD_LEN - 1, 1);
    privline_channel_free(c);
    privline_channel_free(s);
    c = s = NULL;

    if (!connect_pair(SIZE_MAX, 0, &c, &s))
        goto done;
    check_replay_is_fatal(c, s);
    {
        /* a length field of 16 is fatal as soon as the two header bytes are in */
        uint8_t short_hdr[2] = {0x00, 0x10}, out[64], junk[64];
        size_t consumed = SENTINEL_LEN, out_len = sizeof out;
        privline_record_type type = SENTINEL_TYPE;
        CHECK_R(privline_channel_open(c, short_hdr, sizeof short_hdr, &consumed, out, &out_len, &type),
                PRIVLINE_RESULT_RECORD_TOO_SHORT);
        CHECK(consumed == 0);
        fill_pattern(junk, sizeof junk, 7);
        check_channel_dead(c, PRIVLINE_RESULT_RECORD_TOO_SHORT, junk, sizeof junk);
    }
done:
    privline_channel_free(c);
    privline_channel_free(s);
}

/* Channel-level argument tests on a fresh pair. */
static void test_channel_arguments(void)
{
    privline_channel *c = NULL, *s = NULL;
    if (connect_pair(SIZE_MAX, 0, &c, &s)) {
        test_buffer_too_small_channel(c, s);
    }
    privline_channel_free(c);
    privline_channel_free(s);
}

/* ------------------------------------------------------------------------ */
/* Identity handles, protocols, SHS1                                        */
/* ------------------------------------------------------------------------ */

/* privline_identity_new, _public_key and _free: the two secret forms, every
 * other length, a keypair whose halves disagree, NULL pointers. */
static void test_identity_handles(void)
{
    static const size_t bad_lengths[] = {0, 1, 16, 31, 33, 48, 63, 65, 96, 128};
    uint8_t keypair[PRIVLINE_IDENTITY_KEYPAIR_LEN + 64], pub[PRIVLINE_PUBLIC_KEY_LEN];
    privline_identity *id = SENTINEL_IDENTITY, *from_seed = NULL, *from_keypair = NULL;
    size_t i;

    memcpy(keypair, client_seed, PRIVLINE_SEED_LEN);
    memcpy(keypair + PRIVLINE_SEED_LEN, client_public, PRIVLINE_PUBLIC_KEY_LEN);
    fill_pattern(keypair + PRIVLINE_IDENTITY_KEYPAIR_LEN, 64, 0x1d);

    /* 32 bytes (the seed) and 64 bytes (seed, then public): the same identity. */
    if (CHECK_OK(privline_identity_new(client_seed, PRIVLINE_SEED_LEN, &from_seed)) && CHECK(from_seed != NULL)) {
        memset(pub, 0, sizeof pub);
        CHECK_OK(privline_identity_public_key(from_seed, pub));
        CHECK(memcmp(pub, client_public, sizeof pub) == 0);
    }
    if (CHECK_OK(privline_identity_new(keypair, PRIVLINE_IDENTITY_KEYPAIR_LEN, &from_keypair))
        && CHECK(from_keypair != NULL)) {
        memset(pub, 0, sizeof pub);
        CHECK_OK(privline_identity_public_key(from_keypair, pub));
        CHECK(memcmp(pub, client_public, sizeof pub) == 0);
    }
    CHECK(from_seed != from_keypair);
    CHECK(memcmp(keypair, client_seed, PRIVLINE_SEED_LEN) == 0); /* only read */

    /* A 64-byte secret whose public half is not the seed's: the server's
     * public key, one flipped bit, all zeros. Nothing is created. */
    for (i = 0; i < 3; i++) {
        uint8_t wrong[PRIVLINE_IDENTITY_KEYPAIR_LEN];
        memcpy(wrong, keypair, sizeof wrong);
        if (i == 0)
            memcpy(wrong + PRIVLINE_SEED_LEN, server_public, PRIVLINE_PUBLIC_KEY_LEN);
        else if (i == 1)
            wrong[PRIVLINE_IDENTITY_KEYPAIR_LEN - 1] ^= 0x01;
        else
            memset(wrong + PRIVLINE_SEED_LEN, 0, PRIVLINE_PUBLIC_KEY_LEN);
        id = SENTINEL_IDENTITY;
        if (!CHECK_R(privline_identity_new(wrong, sizeof wrong, &id), PRIVLINE_RESULT_INVALID_ARGUMENT))
            fprintf(stderr, "  (mismatched keypair #%lu)\n", (unsigned long)i);
        CHECK(id == SENTINEL_IDENTITY);
    }
    /* The seed half wrong instead: as bad. */
    {
        uint8_t wrong[PRIVLINE_IDENTITY_KEYPAIR_LEN];
        memcpy(wrong, keypair, sizeof wrong);
        wrong[0] ^= 0x80;
        id = SENTINEL_IDENTITY;
        CHECK_R(privline_identity_new(wrong, sizeof wrong, &id), PRIVLINE_RESULT_INVALID_ARGUMENT);
        CHECK(id == SENTINEL_IDENTITY);
    }

    /* Every other length: INVALID_ARGUMENT, untouched. */
    for (i = 0; i < sizeof bad_lengths / sizeof bad_lengths[0]; i++) {
        id = SENTINEL_IDENTITY;
        if (!CHECK_R(privline_identity_new(keypair, bad_lengths[i], &id), PRIVLINE_RESULT_INVALID_ARGUMENT))
            fprintf(stderr, "  (secret_len %lu)\n", (unsigned long)bad_lengths[i]);
        CHECK(id == SENTINEL_IDENTITY);
    }
    id = SENTINEL_IDENTITY;
    CHECK_R(privline_identity_new(keypair, SIZE_MAX, &id), PRIVLINE_RESULT_INVALID_ARGUMENT);
    CHECK(id == SENTINEL_IDENTITY);


    privline_identity_free(from_seed);
    privline_identity_free(from_keypair);
    privline_identity_free(NULL); /* a no-op */
    CHECK(1);
}

/* Both _with_identity constructors, both protocols: a bad server key leaves
 * the out-pointer untouched; good arguments give a handle. */
static void test_with_identity_constructors(void)
{
    static const uint32_t protocols[] = {PRIVLINE_PROTOCOL_PRIVLINE1, PRIVLINE_PROTOCOL_SHS1};
    uint8_t bad_key[PRIVLINE_PUBLIC_KEY_LEN];
    size_t i;

    memset(bad_key, 0, sizeof bad_key);
    bad_key[0] = 1; /* the identity point: fails the identity key check */
    for (i = 0; i < 2; i++) {
        const uint32_t protocol = protocols[i];
        privline_handshake *hs = SENTINEL_HANDSHAKE;
        CHECK_R(privline_handshake_new_client_with_identity(protocol, network_key, client_identity, bad_key, &hs),
                PRIVLINE_RESULT_INVALID_SERVER_KEY);
        CHECK(hs == SENTINEL_HANDSHAKE);

        /* Success: a real handle, freed unused. */
        hs = NULL;
        CHECK_OK(privline_handshake_new_client_with_identity(protocol, network_key, client_identity, server_public,
                                                             &hs));
        CHECK(hs != NULL && hs != SENTINEL_HANDSHAKE);
        privline_handshake_free(hs);
        hs = NULL;
        CHECK_OK(privline_handshake_new_server_with_identity(protocol, network_key, server_identity, &hs));
        CHECK(hs != NULL && hs != SENTINEL_HANDSHAKE);
        privline_handshake_free(hs);
    }
}

/* An identity freed right after creating handshakes from it: they keep
 * working (each holds a reference). A privline/1 handshake from an
 * identity talks to one from a seed. */
static void test_identity_outlived_by_handshakes(void)
{
    static const uint32_t protocols[] = {PRIVLINE_PROTOCOL_PRIVLINE1, PRIVLINE_PROTOCOL_SHS1};
    size_t i;
    for (i = 0; i < 2; i++) {
        hs_pair p;
        privline_identity *c_id = NULL, *s_id = NULL;
        privline_channel *c = NULL, *s = NULL;
        uint8_t seed_copy[PRIVLINE_SEED_LEN];
        memset(&p, 0, sizeof p);
        p.protocol = protocols[i];
        memcpy(seed_copy, client_seed, sizeof seed_copy);
        CHECK_OK(privline_identity_new(seed_copy, sizeof seed_copy, &c_id));
        memset(seed_copy, 0, sizeof seed_copy); /* copied: the caller's may go */
        CHECK_OK(privline_identity_new(server_seed, sizeof server_seed, &s_id));
        CHECK_OK(privline_handshake_new_client_with_identity(p.protocol, network_key, c_id, server_public,
                                                             &p.client));
        CHECK_OK(privline_handshake_new_server_with_identity(p.protocol, network_key, s_id, &p.server));
        privline_identity_free(c_id);
        privline_identity_free(s_id);
        if (p.client != NULL && p.server != NULL && drive_handshake(&p, 5, 0, 0) && establish(&p, &c, &s)) {
            transfer(c, s, 5000, 0, SIZE_MAX, 300);
            transfer(s, c, 5000, 0, SIZE_MAX, 301);
        }
        privline_channel_free(c);
        privline_channel_free(s);
        free_pair(&p);
    }
    /* privline/1: a client from an identity handle, a server from a seed. */
    {
        hs_pair p;
        privline_channel *c = NULL, *s = NULL;
        memset(&p, 0, sizeof p);
        CHECK_OK(privline_handshake_new_client_with_identity(PRIVLINE_PROTOCOL_PRIVLINE1, network_key,
                                                             client_identity, server_public, &p.client));
        CHECK_OK(privline_handshake_new_server(network_key, server_seed, &p.server));
        if (p.client != NULL && p.server != NULL && drive_handshake(&p, SIZE_MAX, 0, 0) && establish(&p, &c, &s))
            transfer(c, s, 100, 0, SIZE_MAX, 302);
        privline_channel_free(c);
        privline_channel_free(s);
        free_pair(&p);
    }
}

/* The two ends' SHS1 keys: the client's encryption key and nonce are the
 * server's decryption key and nonce, and the other way round. */
static void check_shs1_keys_cross(privline_channel *c, privline_channel *s)
{
    uint8_t kc[PRIVLINE_SHS1_KEYS_LEN], ks[PRIVLINE_SHS1_KEYS_LEN];
    memset(kc, 0, sizeof kc);
    memset(ks, 0, sizeof ks);
    if (!CHECK_OK(privline_channel_export_shs1_keys(c, kc)) || !CHECK_OK(privline_channel_export_shs1_keys(s, ks)))
        return;
    CHECK(memcmp(kc, ks + 56, 56) == 0); /* client enc key+nonce == server dec key+nonce */
    CHECK(memcmp(ks, kc + 56, 56) == 0); /* server enc key+nonce == client dec key+nonce */
    CHECK(memcmp(kc, kc + 56, 32) != 0); /* a key per direction */
    CHECK(!all_bytes_are(kc, 32, 0) && !all_bytes_are(kc + 56, 32, 0));
    memset(kc, 0, sizeof kc);
    memset(ks, 0, sizeof ks);
}

/* A full SHS1 exchange through the C ABI: handshake fed `chunk` bytes at a
 * time, data both ways, export keys, half-close with goodbyes. */
static void test_shs1_exchange(size_t chunk, int tight)
{
    static const size_t sizes[] = {0, 1, 2, 4095, 4096, 4097, 8192, 8193, 65519, 100000};
    privline_channel *c = NULL, *s = NULL;
    size_t i;

    if (!connect_pair_protocol(PRIVLINE_PROTOCOL_SHS1, chunk, tight, &c, &s))
        goto done;
    check_shs1_keys_cross(c, s);
    for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        transfer(c, s, sizes[i], 0, chunk, (uint32_t)(400 + i));
        transfer(s, c, sizes[i], 0, chunk, (uint32_t)(500 + i));
    }
    /* The nonces moved the same way on both ends. */
    check_shs1_keys_cross(c, s);
    /* pad_block 1 means no padding, as 0. */
    {
        uint8_t payload[10], wire[64];
        size_t wire_len = sizeof wire;
        fill_pattern(payload, sizeof payload, 9);
        CHECK_OK(privline_channel_seal(c, payload, sizeof payload, 1, wire, &wire_len));
        CHECK(wire_len == PRIVLINE_SHS1_HEADER_LEN + sizeof payload);
        deliver(s, wire, wire_len, chunk, PRIVLINE_RECORD_DATA, payload, sizeof payload, 1);
    }

    /* The client says goodbye first; the server still sends. */
    client_closes_first(c, s, PRIVLINE_SHS1_HEADER_LEN);
    transfer(s, c, 4097, 0, chunk, 600);
    control(s, c, 1, 0, PRIVLINE_SHS1_HEADER_LEN);
    check_both_closed(c, s);
done:
    privline_channel_free(c);
    privline_channel_free(s);
}

/* SHS1 has no key update, padding or session id: NOT_SUPPORTED, nothing
 * written, nothing changed (the nonces did not move: data still opens). */
static void test_shs1_not_supported(void)
{
    privline_channel *c = NULL, *s = NULL;
    uint8_t out[256], keys_before[PRIVLINE_SHS1_KEYS_LEN], keys_after[PRIVLINE_SHS1_KEYS_LEN];
    uint8_t sid[PRIVLINE_SESSION_ID_LEN];
    size_t out_len;
    static const uint8_t payload[5] = {1, 2, 3, 4, 5};

    if (!connect_pair_protocol(PRIVLINE_PROTOCOL_SHS1, SIZE_MAX, 0, &c, &s))
        goto done;
    CHECK_OK(privline_channel_export_shs1_keys(c, keys_before));

    memset(out, 0x3C, sizeof out);
    out_len = sizeof out;
    CHECK_R(privline_channel_update_key(c, 0, out, &out_len), PRIVLINE_RESULT_NOT_SUPPORTED);
    CHECK(out_len == 0 && all_bytes_are(out, sizeof out, 0x3C));
    out_len = 0;
    CHECK_R(privline_channel_update_key(c, 0, NULL, &out_len), PRIVLINE_RESULT_NOT_SUPPORTED);
    out_len = sizeof out;
    CHECK_R(privline_channel_seal(c, payload, sizeof payload, 2, out, &out_len), PRIVLINE_RESULT_NOT_SUPPORTED);
    CHECK(out_len == 0 && all_bytes_are(out, sizeof out, 0x3C));
    out_len = sizeof out;
    CHECK_R(privline_channel_seal(c, payload, sizeof payload, 64, out, &out_len), PRIVLINE_RESULT_NOT_SUPPORTED);
    out_len = sizeof out;
    CHECK_R(privline_channel_close(c, 16, out, &out_len), PRIVLINE_RESULT_NOT_SUPPORTED);
    CHECK(out_len == 0 && all_bytes_are(out, sizeof out, 0x3C));
    memset(sid, 0x3C, sizeof sid);
    CHECK_R(privline_channel_session_id(c, sid), PRIVLINE_RESULT_NOT_SUPPORTED);
    CHECK_R(privline_channel_session_id(s, sid), PRIVLINE_RESULT_NOT_SUPPORTED);
    CHECK(all_bytes_are(sid, sizeof sid, 0x3C));
    CHECK(privline_channel_sealed_len(c, 10, 2) == SIZE_MAX);
    CHECK(privline_channel_sealed_len(c, 10, 4096) == SIZE_MAX);

    /* Nothing changed: same keys and nonces, not closed, data flows both ways. */
    CHECK_OK(privline_channel_export_shs1_keys(c, keys_after));
    CHECK(memcmp(keys_before, keys_after, sizeof keys_before) == 0);
    {
        bool closed = true;
        CHECK_OK(privline_channel_peer_closed(s, &closed));
        CHECK(closed == false);
    }
    transfer(c, s, 10, 0, SIZE_MAX, 700);
    transfer(s, c, 10, 0, SIZE_MAX, 701);
    check_shs1_keys_cross(c, s);
done:
    privline_channel_free(c);
    privline_channel_free(s);
}

/* privline_channel_export_shs1_keys and privline_channel_protocol: NULL
 * arguments, and NOT_SUPPORTED on privline/1. */
static void test_export_keys_and_protocol(void)
{
    privline_channel *c = NULL, *s = NULL, *pc = NULL, *ps = NULL;
    uint8_t keys[PRIVLINE_SHS1_KEYS_LEN];
    uint32_t protocol = SENTINEL_PROTOCOL;

    if (connect_pair(SIZE_MAX, 0, &pc, &ps)) {
        memset(keys, 0x4D, sizeof keys);
        CHECK_R(privline_channel_export_shs1_keys(pc, keys), PRIVLINE_RESULT_NOT_SUPPORTED);
        CHECK_R(privline_channel_export_shs1_keys(ps, keys), PRIVLINE_RESULT_NOT_SUPPORTED);
        CHECK(all_bytes_are(keys, sizeof keys, 0x4D));
        CHECK_OK(privline_channel_protocol(pc, &protocol));
        CHECK(protocol == PRIVLINE_PROTOCOL_PRIVLINE1);
        transfer(pc, ps, 10, 0, SIZE_MAX, 710); /* not fatal */
    }
    if (connect_pair_protocol(PRIVLINE_PROTOCOL_PRIVLINE1, SIZE_MAX, 0, &c, &s)) {
        CHECK_R(privline_channel_export_shs1_keys(c, keys), PRIVLINE_RESULT_NOT_SUPPORTED);
        privline_channel_free(c);
        privline_channel_free(s);
        c = s = NULL;
    }
    if (connect_pair_protocol(PRIVLINE_PROTOCOL_SHS1, SIZE_MAX, 0, &c, &s)) {
        memset(keys, 0x4D, sizeof keys);
        CHECK(all_bytes_are(keys, sizeof keys, 0x4D));
        protocol = SENTINEL_PROTOCOL;
        CHECK(protocol == SENTINEL_PROTOCOL);
        CHECK_OK(privline_channel_protocol(s, &protocol));
        CHECK(protocol == PRIVLINE_PROTOCOL_SHS1);
        check_shs1_keys_cross(c, s);
    }
    privline_channel_free(c);
    privline_channel_free(s);
    privline_channel_free(pc);
    privline_channel_free(ps);
}

/* privline_channel_sealed_len is what seal writes: both protocols, with and
 * without padding for privline/1; SIZE_MAX where nothing fits. */
static void test_channel_sealed_len(void)
{
    static const size_t sizes[] = {0, 1, 100, 4095, 4096, 4097, 65518, 65519, 100000, 200000};
    static const size_t pads[] = {0, 1, 2, 16, 64, 4096, 65519};
    privline_channel *c = NULL, *s = NULL, *sc = NULL, *ss = NULL;
    uint8_t *payload = (uint8_t *)xmalloc(200000), *wire = (uint8_t *)xmalloc(300000);
    size_t i, j;

    fill_pattern(payload, 200000, 800);
    CHECK(privline_channel_sealed_len(NULL, 10, 0) == SIZE_MAX);
    if (connect_pair(SIZE_MAX, 0, &c, &s)) {
        for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            for (j = 0; j < sizeof pads / sizeof pads[0]; j++) {
                size_t predicted = privline_channel_sealed_len(c, sizes[i], pads[j]);
                size_t wire_len = 300000;
                if (sizes[i] > 70000 && pads[j] == 65519)
                    continue; /* 4 MiB of padding; covered by the smaller sizes */
                if (!CHECK_OK(privline_channel_seal(c, payload, sizes[i], pads[j], wire, &wire_len)))
                    continue;
                if (!CHECK(wire_len == predicted))
                    fprintf(stderr, "  (privline/1, %lu bytes, pad %lu: %lu predicted, %lu written)\n",
                            (unsigned long)sizes[i], (unsigned long)pads[j], (unsigned long)predicted,
                            (unsigned long)wire_len);
                if (pads[j] <= 1)
                    CHECK(predicted == privline_sealed_len(sizes[i]));
                deliver(s, wire, wire_len, SIZE_MAX, PRIVLINE_RECORD_DATA, payload, sizes[i],
                        records_for(PRIVLINE_PROTOCOL_PRIVLINE1, sizes[i]));
            }
        }
        CHECK(privline_channel_sealed_len(c, 10, PRIVLINE_OPEN_MAX_OUTPUT_LEN + 1) == SIZE_MAX);
        CHECK(privline_channel_sealed_len(c, SIZE_MAX, 0) == SIZE_MAX);
        CHECK(privline_channel_sealed_len(c, SIZE_MAX - 10, 0) == SIZE_MAX);
    }
    if (connect_pair_protocol(PRIVLINE_PROTOCOL_SHS1, SIZE_MAX, 0, &sc, &ss)) {
        for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            size_t predicted = privline_channel_sealed_len(sc, sizes[i], 0);
            size_t boxes = (sizes[i] + 4095) / 4096;
            size_t wire_len = 300000;
            CHECK(predicted == sizes[i] + boxes * PRIVLINE_SHS1_HEADER_LEN);
            CHECK(privline_channel_sealed_len(sc, sizes[i], 1) == predicted);
            if (!CHECK_OK(privline_channel_seal(sc, payload, sizes[i], 0, wire, &wire_len)))
                continue;
            CHECK(wire_len == predicted);
            deliver(ss, wire, wire_len, SIZE_MAX, PRIVLINE_RECORD_DATA, payload, sizes[i], boxes);
        }
        CHECK(privline_channel_sealed_len(sc, SIZE_MAX, 0) == SIZE_MAX);
        CHECK(privline_channel_sealed_len(sc, SIZE_MAX - 10, 0) == SIZE_MAX);
    }
    privline_channel_free(c);
    privline_channel_free(s);
    privline_channel_free(sc);
    privline_channel_free(ss);
    free(payload);
    free(wire);
}

/* SHS1: too-small buffers for seal, close and open, each followed by a
 * retry that proves nothing had changed. */
static void test_shs1_buffer_too_small(void)
{
    privline_channel *c = NULL, *s = NULL;
    uint8_t payload[5000], wire[6000], out[5000];
    size_t need, wire_len, out_len, consumed;
    privline_record_type type;

    if (!connect_pair_protocol(PRIVLINE_PROTOCOL_SHS1, SIZE_MAX, 0, &c, &s))
        goto done;
    fill_pattern(payload, sizeof payload, 900);
    need = privline_channel_sealed_len(c, sizeof payload, 0);
    CHECK(need == sizeof payload + 2 * PRIVLINE_SHS1_HEADER_LEN);
    memset(wire, 0xCC, sizeof wire);
    wire_len = need - 1;
    CHECK_R(privline_channel_seal(c, payload, sizeof payload, 0, wire, &wire_len), PRIVLINE_RESULT_BUFFER_TOO_SMALL);
    CHECK(wire_len == need && all_bytes_are(wire, sizeof wire, 0xCC));
    wire_len = 0;
    CHECK_R(privline_channel_seal(c, payload, sizeof payload, 0, NULL, &wire_len), PRIVLINE_RESULT_BUFFER_TOO_SMALL);
    CHECK(wire_len == need);
    CHECK_OK(privline_channel_seal(c, payload, sizeof payload, 0, wire, &wire_len));
    CHECK(wire_len == need);

    /* Open: the first box needs room for its 4096-byte body. */
    memset(out, 0xDD, sizeof out);
    out_len = 4095;
    consumed = SENTINEL_LEN;
    type = SENTINEL_TYPE;
    CHECK_R(privline_channel_open(s, wire, wire_len, &consumed, out, &out_len, &type),
            PRIVLINE_RESULT_BUFFER_TOO_SMALL);
    CHECK(out_len == 4096 && consumed == 0 && type == SENTINEL_TYPE);
    CHECK(all_bytes_are(out, sizeof out, 0xDD));
    CHECK_OK(privline_channel_open(s, wire, wire_len, &consumed, out, &out_len, &type));
    CHECK(type == PRIVLINE_RECORD_DATA && consumed == PRIVLINE_SHS1_HEADER_LEN + 4096 && out_len == 4096);
    CHECK(memcmp(out, payload, 4096) == 0);
    /* A partial box: NONE, nothing consumed. */
    out_len = sizeof out;
    CHECK_OK(privline_channel_open(s, wire + consumed, 40, &consumed, out, &out_len, &type));
    CHECK(type == PRIVLINE_RECORD_NONE && consumed == 0 && out_len == 0);
    out_len = 5000 - 4096;
    CHECK_OK(privline_channel_open(s, wire + PRIVLINE_SHS1_HEADER_LEN + 4096,
                                   wire_len - PRIVLINE_SHS1_HEADER_LEN - 4096, &consumed, out, &out_len, &type));
    CHECK(type == PRIVLINE_RECORD_DATA && out_len == 5000 - 4096);
    CHECK(memcmp(out, payload + 4096, 5000 - 4096) == 0);

    /* close: a too-small buffer does not say goodbye. */
    wire_len = PRIVLINE_SHS1_HEADER_LEN - 1;
    CHECK_R(privline_channel_close(c, 0, wire, &wire_len), PRIVLINE_RESULT_BUFFER_TOO_SMALL);
    CHECK(wire_len == PRIVLINE_SHS1_HEADER_LEN);
    wire_len = 0;
    CHECK_R(privline_channel_close(c, 0, NULL, &wire_len), PRIVLINE_RESULT_BUFFER_TOO_SMALL);
    CHECK(wire_len == PRIVLINE_SHS1_HEADER_LEN);
    transfer(c, s, 100, 0, SIZE_MAX, 901);
    control(c, s, 1, 0, PRIVLINE_SHS1_HEADER_LEN);
done:
    privline_channel_free(c);
    privline_channel_free(s);
}

/* A damaged box (header or body), a replayed box, bytes after the goodbye:
 * fatal, no plaintext, and the channel refuses everything afterwards. */
static void test_shs1_tampered(void)
{
    privline_channel *c = NULL, *s = NULL;
    uint8_t wire[128], out[PRIVLINE_OPEN_MAX_OUTPUT_LEN];
    size_t wire_len, consumed, out_len, where;
    privline_record_type type;

    /* a flipped bit in the header's tag, its encrypted length, the body */
    for (where = 0; where < 3; where++) {
        static const size_t offsets[3] = {3, 17, PRIVLINE_SHS1_HEADER_LEN + 5};
        if (!connect_pair_protocol(PRIVLINE_PROTOCOL_SHS1, SIZE_MAX, 0, &c, &s))
            goto done;
        check_flipped_bits_are_fatal(c, s, PRIVLINE_SHS1_HEADER_LEN, offsets[where], 0x40);
        {
            uint8_t keys[PRIVLINE_SHS1_KEYS_LEN];
            uint32_t protocol = SENTINEL_PROTOCOL;
            memset(keys, 0x4D, sizeof keys);
            CHECK_R(privline_channel_export_shs1_keys(s, keys), PRIVLINE_RESULT_RECORD_DOES_NOT_OPEN);
            CHECK(all_bytes_are(keys, sizeof keys, 0x4D));
            /* Sizes and the protocol are no secret: still answered (or refused). */
            (void)privline_channel_sealed_len(s, 10, 0);
            (void)privline_channel_protocol(s, &protocol);
        }
        privline_channel_free(c);
        privline_channel_free(s);
        c = s = NULL;
    }

    /* a replayed box */
    if (!connect_pair_protocol(PRIVLINE_PROTOCOL_SHS1, SIZE_MAX, 0, &c, &s))
        goto done;
    check_replay_is_fatal(s, c);
    privline_channel_free(c);
    privline_channel_free(s);
    c = s = NULL;

    /* bytes after the goodbye */
    if (!connect_pair_protocol(PRIVLINE_PROTOCOL_SHS1, SIZE_MAX, 0, &c, &s))
        goto done;
    wire_len = sizeof wire;
    CHECK_OK(privline_channel_close(c, 0, wire, &wire_len));
    CHECK(wire_len == PRIVLINE_SHS1_HEADER_LEN);
    wire[wire_len] = 0;
    out_len = sizeof out;
    CHECK_OK(privline_channel_open(s, wire, wire_len + 1, &consumed, out, &out_len, &type));
    CHECK(type == PRIVLINE_RECORD_CLOSE && consumed == PRIVLINE_SHS1_HEADER_LEN && out_len == 0);
    out_len = sizeof out;
    CHECK_R(privline_channel_open(s, wire + consumed, 1, &consumed, out, &out_len, &type),
            PRIVLINE_RESULT_RECORD_AFTER_CLOSE);
    check_channel_dead(s, PRIVLINE_RESULT_RECORD_AFTER_CLOSE, wire, 1);
done:
    privline_channel_free(c);
    privline_channel_free(s);
}

/* An SHS1 client against a privline/1 server, and the other way round:
 * the server refuses M1 (its MAC is not privline/1's), nothing is sent. */
static void test_protocol_mismatch(void)
{
    size_t k;
    for (k = 0; k < 2; k++) {
        hs_pair p;
        privline_handshake_status st = SENTINEL_STATUS;
        uint8_t out[PRIVLINE_HANDSHAKE_MAX_MESSAGE_LEN];
        size_t consumed = SENTINEL_LEN, out_len = sizeof out;
        const uint32_t client_protocol = k == 0 ? PRIVLINE_PROTOCOL_SHS1 : PRIVLINE_PROTOCOL_PRIVLINE1;
        const uint32_t server_protocol = k == 0 ? PRIVLINE_PROTOCOL_PRIVLINE1 : PRIVLINE_PROTOCOL_SHS1;
        memset(&p, 0, sizeof p);
        CHECK_OK(privline_handshake_new_client_with_identity(client_protocol, network_key, client_identity,
                                                             server_public, &p.client));
        CHECK_OK(privline_handshake_new_server_with_identity(server_protocol, network_key, server_identity,
                                                             &p.server));
        if (p.client != NULL && p.server != NULL) {
            CHECK_OK(pump(p.client, &p.s2c, &p.c2s, SIZE_MAX, 0, &st, p.client_msgs, &p.n_client_msgs));
            CHECK(p.c2s.len == 64);
            CHECK_R(privline_handshake_step(p.server, p.c2s.data, p.c2s.len, &consumed, out, &out_len, &st),
                    PRIVLINE_RESULT_M1_BAD_MAC);
            CHECK(consumed == 0 && out_len == 0);
        }
        free_pair(&p);
    }
}

int main(void)
{
    test_constants();
    test_result_strings();
    setup_identities();
    test_identities();
    test_invalid_server_key();
    test_channel_arguments();
    test_buffer_too_small_handshake();
    test_refusal();
    test_handshake_failures();
    test_tampered_record();
    test_m4_coalesced_with_first_record();
    /* whole messages, then one byte at a time, then an awkward 7-byte
     * fragmentation with 1-byte output buffers tried first at every step */
    test_full_exchange(SIZE_MAX, 0);
    test_full_exchange(1, 0);
    test_full_exchange(7, 1);

    /* Identity handles, the protocol-aware constructors and SHS1. */
    test_identity_handles();
    test_with_identity_constructors();
    test_identity_outlived_by_handshakes();
    test_export_keys_and_protocol();
    test_channel_sealed_len();
    test_shs1_not_supported();
    test_shs1_buffer_too_small();
    test_shs1_tampered();
    test_protocol_mismatch();
    test_shs1_exchange(SIZE_MAX, 0);
    test_shs1_exchange(1, 0);
    test_shs1_exchange(7, 1);

    privline_identity_free(client_identity);
    privline_identity_free(server_identity);
    printf("%lu passed, %lu failed\n", checks_passed, checks_failed);
    return checks_failed == 0 ? 0 : 1;
}
