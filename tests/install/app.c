/*
 * app.c: a consumer of an installed libprivline, compiled by
 * tests/install/run.sh with nothing but pkg-config's flags (shared and
 * static). Both peers live in this process: a privline/1 handshake through
 * two in-memory byte queues, one record each way, close both ways.
 *
 * Prints "app: privline VERSION, handshake and records OK" and exits 0, or
 * names the failed step and exits 1.
 */

#include <privline.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void must(privline_result result, const char *what)
{
    if (result != PRIVLINE_RESULT_OK) {
        fprintf(stderr, "app: %s: %s\n", what, privline_result_str(result));
        exit(1);
    }
}

static void fail(const char *why)
{
    fprintf(stderr, "app: %s\n", why);
    exit(1);
}

/* Bytes in flight in one direction. */
struct queue {
    uint8_t bytes[2 * PRIVLINE_RECORD_MAX_LEN];
    size_t len;
};

static void push(struct queue *q, const uint8_t *bytes, size_t len)
{
    if (len > sizeof q->bytes - q->len)
        fail("queue full");
    memcpy(q->bytes + q->len, bytes, len);
    q->len += len;
}

static void pop(struct queue *q, size_t len)
{
    memmove(q->bytes, q->bytes + len, q->len - len);
    q->len -= len;
}

/* One step of one side; returns its status. */
static privline_handshake_status step(privline_handshake *hs, struct queue *in, struct queue *out)
{
    uint8_t message[PRIVLINE_HANDSHAKE_MAX_MESSAGE_LEN];
    size_t used = 0, message_len = sizeof message;
    privline_handshake_status status;
    must(privline_handshake_step(hs, in->bytes, in->len, &used, message, &message_len, &status),
         "handshake step");
    pop(in, used);
    push(out, message, message_len);
    return status;
}

/* Seals `text` on `from` and opens it on `to`; the payload must come out equal. */
static void send_and_check(privline_channel *from, privline_channel *to, const char *text)
{
    static struct queue wire;
    static uint8_t plain[PRIVLINE_OPEN_MAX_OUTPUT_LEN];
    uint8_t record[256];
    size_t len = strlen(text), record_len = sizeof record, used = 0, plain_len = sizeof plain;
    privline_record_type type;

    must(privline_channel_seal(from, (const uint8_t *)text, len, 0, record, &record_len), "seal");
    if (record_len != privline_sealed_len(len))
        fail("sealed length differs from privline_sealed_len");
    push(&wire, record, record_len);
    must(privline_channel_open(to, wire.bytes, wire.len, &used, plain, &plain_len, &type), "open");
    pop(&wire, used);
    if (type != PRIVLINE_RECORD_DATA || plain_len != len || memcmp(plain, text, len) != 0)
        fail("the opened record differs from the sealed one");
    if (wire.len != 0)
        fail("bytes left over after one record");
}

static void close_and_check(privline_channel *from, privline_channel *to)
{
    uint8_t record[64], plain[16];
    size_t record_len = sizeof record, used = 0, plain_len = sizeof plain;
    privline_record_type type;
    bool closed = false;

    must(privline_channel_close(from, 0, record, &record_len), "close");
    must(privline_channel_open(to, record, record_len, &used, plain, &plain_len, &type), "open close");
    must(privline_channel_peer_closed(to, &closed), "peer_closed");
    if (type != PRIVLINE_RECORD_CLOSE || used != record_len || !closed)
        fail("the close record did not arrive as a close");
}

int main(void)
{
    uint8_t network_key[PRIVLINE_NETWORK_KEY_LEN] = {7};
    uint8_t seed[PRIVLINE_SEED_LEN], server_public[PRIVLINE_PUBLIC_KEY_LEN];
    uint8_t client_public[PRIVLINE_PUBLIC_KEY_LEN], seen[PRIVLINE_PUBLIC_KEY_LEN];
    uint8_t id_a[PRIVLINE_SESSION_ID_LEN], id_b[PRIVLINE_SESSION_ID_LEN];
    privline_identity *server_id = NULL, *client_id = NULL;
    privline_handshake *client = NULL, *server = NULL;
    privline_channel *alice = NULL, *bob = NULL;
    static struct queue to_server, to_client;
    privline_handshake_status cs, ss;
    int rounds;

    must(privline_identity_generate(seed, server_public), "identity_generate");
    must(privline_identity_new(seed, sizeof seed, &server_id), "identity_new (server)");
    must(privline_identity_generate(seed, client_public), "identity_generate");
    must(privline_identity_new(seed, sizeof seed, &client_id), "identity_new (client)");
    memset(seed, 0, sizeof seed);

    must(privline_handshake_new_client_with_identity(PRIVLINE_PROTOCOL_PRIVLINE1, network_key, client_id,
                                                     server_public, &client), "new client");
    must(privline_handshake_new_server_with_identity(PRIVLINE_PROTOCOL_PRIVLINE1, network_key, server_id,
                                                     &server), "new server");
    privline_identity_free(server_id);
    privline_identity_free(client_id);

    cs = ss = PRIVLINE_HANDSHAKE_NEED_INPUT;
    for (rounds = 0; rounds < 8 && !(cs == PRIVLINE_HANDSHAKE_DONE && ss == PRIVLINE_HANDSHAKE_DONE); rounds++) {
        if (cs != PRIVLINE_HANDSHAKE_DONE)
            cs = step(client, &to_client, &to_server);
        if (ss != PRIVLINE_HANDSHAKE_DONE)
            ss = step(server, &to_server, &to_client);
        if (ss == PRIVLINE_HANDSHAKE_AUTHORIZE_PEER) {
            must(privline_handshake_peer_key(server, seen), "peer_key");
            if (memcmp(seen, client_public, sizeof seen) != 0)
                fail("the server sees another client key");
            must(privline_handshake_authorize(server, true), "authorize");
            ss = step(server, &to_server, &to_client);
        }
    }
    if (cs != PRIVLINE_HANDSHAKE_DONE || ss != PRIVLINE_HANDSHAKE_DONE || to_server.len || to_client.len)
        fail("the handshake did not finish cleanly");

    must(privline_handshake_into_channel(&client, &alice), "into_channel (client)");
    must(privline_handshake_into_channel(&server, &bob), "into_channel (server)");
    if (client != NULL || server != NULL)
        fail("into_channel left a handshake handle");
    must(privline_channel_session_id(alice, id_a), "session_id");
    must(privline_channel_session_id(bob, id_b), "session_id");
    if (memcmp(id_a, id_b, sizeof id_a) != 0)
        fail("the two ends have different session ids");

    send_and_check(alice, bob, "hello from the client");
    send_and_check(bob, alice, "hello from the server");
    close_and_check(alice, bob);
    close_and_check(bob, alice);
    privline_channel_free(alice);
    privline_channel_free(bob);

    printf("app: privline %s, handshake and records OK\n", privline_version());
    return 0;
}
