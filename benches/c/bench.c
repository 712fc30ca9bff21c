/*
 * privline-bench-c: the in-memory handshake and channel benchmarks through
 * the C ABI, from C (item 4 of BENCHMARKS.md). Link it against the static
 * library:
 *
 *   cc -std=c99 -O2 -Iinclude benches/c/bench.c target/release/libprivline.a \
 *      -lpthread -ldl -lm -o privline-bench-c
 *
 * `cargo bench --bench ffi` builds and runs it next to the same benchmarks
 * through the Rust API; benches/run-c-python.sh runs it too.
 *
 * Output: one `RESULT key nanoseconds` line per measurement:
 *   c_handshake_ns                 a full handshake, both roles, with identity
 *                                  handles made once (privline_identity_new):
 *                                  new_client_with_identity,
 *                                  new_server_with_identity, 6 steps,
 *                                  authorize, two into_channel, two
 *                                  channel_free
 *   c_handshake_seeds_ns           the same with the seed constructors
 *                                  (privline_handshake_new_client /
 *                                  _new_server: each derives its identity
 *                                  from the seed again); measured interleaved
 *                                  with c_handshake_ns, round by round
 *   c_seal_open_ns_<size>          privline_channel_seal + privline_channel_open
 *                                  of one record of <size> payload bytes
 *   c_call_ns_sealed_len           privline_sealed_len (no handle: the bare
 *                                  cost of a call and its panic guard)
 *   c_call_ns_peer_closed          privline_channel_peer_closed (a handle)
 *
 * `--spaced-buffers` places the payload, wire and plaintext buffers of the
 * seal + open measurements in one block, 1 KiB and 2 KiB apart modulo
 * 4 KiB, instead of three malloc calls: malloc puts three 64 KiB buffers
 * a multiple of 4 KiB apart, so a seal's or open's output starts within a
 * few bytes (modulo 4 KiB) of its input and every store aliases the next
 * load ("4K aliasing"), which made a 65518-byte seal + open about 40 %
 * slower on an AMD Zen 3 while the library copied the record in one
 * `rep movsb` (before src/copy.rs; benches/before-after.sh runs both
 * layouts).
 * Without it the output is what it always was.
 *
 * Timing: each measurement is calibrated to batches of ~4 ms and repeated
 * in rounds; the fastest batch mean is reported (on a shared machine noise
 * only adds time). Measurements compared with each other run in the same
 * rounds, alternately. `--quick` shortens the runs.
 */

#define _POSIX_C_SOURCE 200809L

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "privline.h"

static int batches = 15;
static bool spaced_buffers = false;
static const int rounds = 5;
static const double batch_ns = 4e6;

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void check(privline_result r, const char *what)
{
    if (r != PRIVLINE_RESULT_OK) {
        fprintf(stderr, "privline-bench-c: %s: %s\n", what, privline_result_str((uint32_t)r));
        exit(1);
    }
}

typedef void (*bench_fn)(void *ctx);

/* How many calls of fn(ctx) fill one batch. */
static uint64_t calibrate(bench_fn fn, void *ctx)
{
    uint64_t n = 1;
    for (;;) {
        double t0 = now_ns();
        for (uint64_t i = 0; i < n; i++)
            fn(ctx);
        double took = now_ns() - t0;
        if (took >= batch_ns / 4 || n >= ((uint64_t)1 << 40)) {
            double per = took / (double)n;
            n = (uint64_t)(batch_ns / (per > 1e-3 ? per : 1e-3));
            return n == 0 ? 1 : n;
        }
        n *= 4;
    }
}

/* ns per call of each fns[i](ctxs[i]) into best[i]: calibrated batches,
 * the candidates alternating round by round, fastest batch mean kept. */
static void measure_interleaved(size_t count, const bench_fn *fns, void *const *ctxs, double *best)
{
    uint64_t n[8];
    if (count > 8)
        exit(2);
    for (size_t c = 0; c < count; c++) {
        n[c] = calibrate(fns[c], ctxs[c]);
        best[c] = 1e300;
    }
    for (int r = 0; r < rounds; r++) {
        for (size_t c = 0; c < count; c++) {
            for (int b = 0; b < batches; b++) {
                double t0 = now_ns();
                for (uint64_t i = 0; i < n[c]; i++)
                    fns[c](ctxs[c]);
                double per = (now_ns() - t0) / (double)n[c];
                if (per < best[c])
                    best[c] = per;
            }
        }
    }
}

/* ns per call of fn(ctx) alone. */
static double measure(bench_fn fn, void *ctx)
{
    double best;
    measure_interleaved(1, &fn, &ctx, &best);
    return best;
}

static uint8_t network_key[PRIVLINE_NETWORK_KEY_LEN];
static uint8_t client_seed[PRIVLINE_SEED_LEN];
static uint8_t server_seed[PRIVLINE_SEED_LEN];
static uint8_t server_public[PRIVLINE_PUBLIC_KEY_LEN];
/* The identity handles, made once as a C application makes its identity at
 * start-up; NULL selects the seed constructors. */
static privline_identity *client_identity, *server_identity;

/* One handshake, both roles, in memory; returns the two channels. With
 * `use_identities`, through the identity handles, otherwise through the seed
 * constructors. */
static void handshake(bool use_identities, privline_channel **client_out, privline_channel **server_out)
{
    privline_handshake *client = NULL, *server = NULL;
    uint8_t a[PRIVLINE_HANDSHAKE_MAX_MESSAGE_LEN], b[PRIVLINE_HANDSHAKE_MAX_MESSAGE_LEN];
    size_t a_len, b_len, used;
    privline_handshake_status st;

    if (use_identities) {
        check(privline_handshake_new_client_with_identity(PRIVLINE_PROTOCOL_PRIVLINE1, network_key,
                                                          client_identity, server_public, &client),
              "new_client_with_identity");
        check(privline_handshake_new_server_with_identity(PRIVLINE_PROTOCOL_PRIVLINE1, network_key,
                                                          server_identity, &server),
              "new_server_with_identity");
    } else {
        check(privline_handshake_new_client(network_key, client_seed, server_public, &client), "new_client");
        check(privline_handshake_new_server(network_key, server_seed, &server), "new_server");
    }
    a_len = sizeof a; /* M1 */
    check(privline_handshake_step(client, NULL, 0, &used, a, &a_len, &st), "step M1");
    b_len = sizeof b; /* M2 */
    check(privline_handshake_step(server, a, a_len, &used, b, &b_len, &st), "step M2");
    a_len = sizeof a; /* M3 */
    check(privline_handshake_step(client, b, b_len, &used, a, &a_len, &st), "step M3");
    b_len = sizeof b;
    check(privline_handshake_step(server, a, a_len, &used, b, &b_len, &st), "step read M3");
    if (st != PRIVLINE_HANDSHAKE_AUTHORIZE_PEER) {
        fprintf(stderr, "privline-bench-c: expected AUTHORIZE_PEER\n");
        exit(1);
    }
    check(privline_handshake_authorize(server, true), "authorize");
    b_len = sizeof b; /* M4 */
    check(privline_handshake_step(server, NULL, 0, &used, b, &b_len, &st), "step M4");
    a_len = sizeof a;
    check(privline_handshake_step(client, b, b_len, &used, a, &a_len, &st), "step read M4");
    if (st != PRIVLINE_HANDSHAKE_DONE) {
        fprintf(stderr, "privline-bench-c: expected DONE\n");
        exit(1);
    }
    check(privline_handshake_into_channel(&client, client_out), "into_channel client");
    check(privline_handshake_into_channel(&server, server_out), "into_channel server");
}

static void bench_handshake(void *ctx)
{
    const bool *use_identities = ctx;
    privline_channel *c = NULL, *s = NULL;
    handshake(*use_identities, &c, &s);
    privline_channel_free(c);
    privline_channel_free(s);
}

typedef struct {
    privline_channel *client, *server;
    uint8_t *payload, *wire, *plain;
    size_t size, wire_cap;
} channel_ctx;

static void bench_seal_open(void *p)
{
    channel_ctx *c = p;
    size_t wire_len = c->wire_cap, used, plain_len = PRIVLINE_OPEN_MAX_OUTPUT_LEN;
    privline_record_type type;
    check(privline_channel_seal(c->client, c->payload, c->size, 0, c->wire, &wire_len), "seal");
    check(privline_channel_open(c->server, c->wire, wire_len, &used, c->plain, &plain_len, &type), "open");
    if (type != PRIVLINE_RECORD_DATA || plain_len != c->size || used != wire_len) {
        fprintf(stderr, "privline-bench-c: bad open\n");
        exit(1);
    }
}

static volatile size_t sink;

static void bench_sealed_len(void *ctx)
{
    (void)ctx;
    sink = privline_sealed_len(sink & 1023);
}

static void bench_peer_closed(void *p)
{
    channel_ctx *c = p;
    bool closed;
    check(privline_channel_peer_closed(c->client, &closed), "peer_closed");
    sink += closed;
}

int main(int argc, char **argv)
{
    static const size_t sizes[] = {0, 64, 1024, 16384, 65518};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            batches = 5;
        else if (strcmp(argv[i], "--spaced-buffers") == 0)
            spaced_buffers = true;
        else {
            fprintf(stderr, "usage: privline-bench-c [--quick] [--spaced-buffers]\n");
            return 2;
        }
    }
    /* The same fixed keys as the Rust benches (benches/common/mod.rs). */
    memset(network_key, 0x4e, sizeof network_key);
    memset(client_seed, 0xa1, sizeof client_seed);
    memset(server_seed, 0xb2, sizeof server_seed);
    check(privline_identity_public_from_seed(server_seed, server_public), "public_from_seed");
    check(privline_identity_new(client_seed, sizeof client_seed, &client_identity), "identity_new client");
    check(privline_identity_new(server_seed, sizeof server_seed, &server_identity), "identity_new server");

    printf("privline-bench-c (library %s)\n", privline_version());
    {
        static bool with_identities = true, with_seeds = false;
        const bench_fn fns[2] = {bench_handshake, bench_handshake};
        void *const ctxs[2] = {&with_identities, &with_seeds};
        double best[2];
        measure_interleaved(2, fns, ctxs, best);
        printf("RESULT c_handshake_ns %.1f\n", best[0]);
        printf("RESULT c_handshake_seeds_ns %.1f\n", best[1]);
    }
    fflush(stdout);

    channel_ctx ctx;
    ctx.wire_cap = privline_sealed_len(65518);
    uint8_t *block = NULL;
    if (spaced_buffers) {
        /* Room for each buffer rounded up to 4 KiB, plus the offsets. */
        const size_t stride = (PRIVLINE_OPEN_MAX_OUTPUT_LEN + 64 + 4095) / 4096 * 4096;
        if (ctx.wire_cap > stride)
            return 1;
        block = malloc(3 * stride + 3 * 4096);
        if (!block)
            return 1;
        uint8_t *base = block + (4096 - (uintptr_t)block % 4096) % 4096;
        ctx.payload = base;
        ctx.wire = base + stride + 1024;
        ctx.plain = base + 2 * stride + 2048;
    } else {
        ctx.payload = malloc(65518);
        ctx.wire = malloc(ctx.wire_cap);
        ctx.plain = malloc(PRIVLINE_OPEN_MAX_OUTPUT_LEN);
        if (!ctx.payload || !ctx.wire || !ctx.plain)
            return 1;
    }
    memset(ctx.payload, 0x5a, 65518);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        handshake(true, &ctx.client, &ctx.server);
        ctx.size = sizes[i];
        printf("RESULT c_seal_open_ns_%zu %.1f\n", sizes[i], measure(bench_seal_open, &ctx));
        fflush(stdout);
        if (i + 1 < sizeof sizes / sizeof sizes[0]) {
            privline_channel_free(ctx.client);
            privline_channel_free(ctx.server);
        }
    }
    printf("RESULT c_call_ns_sealed_len %.1f\n", measure(bench_sealed_len, NULL));
    printf("RESULT c_call_ns_peer_closed %.1f\n", measure(bench_peer_closed, &ctx));
    privline_channel_free(ctx.client);
    privline_channel_free(ctx.server);
    privline_identity_free(client_identity);
    privline_identity_free(server_identity);
    if (block) {
        free(block);
    } else {
        free(ctx.payload);
        free(ctx.wire);
        free(ctx.plain);
    }
    return 0;
}
