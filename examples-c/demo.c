/*
 * demo.c: privline from C, in memory.
 *
 * Alice (the client) dials Bob (the server), they run the privline/1
 * handshake, exchange one message each way and close the channel. Two byte
 * queues stand in for the network connection; a real program moves the same
 * bytes over a socket instead. Run it with `make -C examples-c demo`.
 */

#include "privline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Stops the demo with privline's description of a failed call. */
static void check(privline_result result, const char *what)
{
    if (result != PRIVLINE_RESULT_OK) {
        fprintf(stderr, "demo: %s failed: %s\n", what, privline_result_str(result));
        exit(1);
    }
}

/* One direction of the "connection": bytes sent and not yet read. */
typedef struct {
    const char *name; /* "client -> server" */
    uint8_t data[4096];
    size_t len;
} pipe_t;

static void pipe_send(pipe_t *pipe, const uint8_t *bytes, size_t len)
{
    if (len > sizeof pipe->data - pipe->len) {
        fprintf(stderr, "demo: pipe full\n");
        exit(1);
    }
    memcpy(pipe->data + pipe->len, bytes, len);
    pipe->len += len;
}

static void pipe_consume(pipe_t *pipe, size_t len)
{
    memmove(pipe->data, pipe->data + len, pipe->len - len);
    pipe->len -= len;
}

/* A short fingerprint of a key for printing: "ab12..ef" (one at a time:
 * the text lives in a static buffer). */
static const char *short_hex(const uint8_t *bytes, size_t len)
{
    static char text[16];
    sprintf(text, "%02x%02x..%02x", bytes[0], bytes[1], bytes[len - 1]);
    return text;
}

/* The network key: 32 uniformly random bytes shared by every peer. */
static void random_bytes(uint8_t *buf, size_t len)
{
    FILE *urandom = fopen("/dev/urandom", "rb");
    if (urandom == NULL || fread(buf, 1, len, urandom) != len) {
        fprintf(stderr, "demo: cannot read /dev/urandom\n");
        exit(1);
    }
    fclose(urandom);
}

/*
 * One handshake step: hands the handshake every byte that has arrived,
 * drops what it consumed, and sends the message it wrote (if any).
 */
static privline_handshake_status step(privline_handshake *hs, pipe_t *in, pipe_t *out)
{
    static int next_message = 1; /* M1 .. M4, alternating sides */
    uint8_t message[PRIVLINE_HANDSHAKE_MAX_MESSAGE_LEN];
    size_t consumed = 0;
    size_t message_len = sizeof message; /* in: capacity; out: bytes written */
    privline_handshake_status status;

    check(privline_handshake_step(hs, in->data, in->len, &consumed, message, &message_len, &status),
          "privline_handshake_step");
    pipe_consume(in, consumed);
    if (message_len > 0) {
        printf("%s  M%d (%zu bytes)\n", out->name, next_message++, message_len);
        pipe_send(out, message, message_len);
    }
    return status;
}

/* Seals `text` on `channel` and sends the record(s). */
static void send_text(privline_channel *channel, const char *text, pipe_t *out)
{
    size_t record_len = privline_sealed_len(strlen(text)); /* enough without padding */
    uint8_t *record = malloc(record_len);
    if (record == NULL)
        exit(1);
    check(privline_channel_seal(channel, (const uint8_t *)text, strlen(text), 0, record, &record_len),
          "privline_channel_seal");
    printf("%s  \"%s\" (%zu bytes)\n", out->name, text, record_len);
    pipe_send(out, record, record_len);
    free(record);
}

/* Seals this side's close record and sends it. */
static void send_close(privline_channel *channel, pipe_t *out)
{
    uint8_t record[PRIVLINE_RECORD_OVERHEAD_LEN];
    size_t record_len = sizeof record;
    check(privline_channel_close(channel, 0, record, &record_len), "privline_channel_close");
    printf("%s  close (%zu bytes)\n", out->name, record_len);
    pipe_send(out, record, record_len);
}

/* Opens the next record waiting in `in`, which must be of type `expected`;
 * a DATA payload lands in `payload[0 .. *payload_len]`. */
static void receive(privline_channel *channel, pipe_t *in, privline_record_type expected, uint8_t *payload,
                    size_t *payload_len)
{
    size_t consumed = 0;
    privline_record_type type;
    *payload_len = PRIVLINE_OPEN_MAX_OUTPUT_LEN; /* capacity of `payload`: always enough */
    check(privline_channel_open(channel, in->data, in->len, &consumed, payload, payload_len, &type),
          "privline_channel_open");
    pipe_consume(in, consumed);
    if (type != expected) {
        /* NONE would mean: read more from the connection and call again. */
        fprintf(stderr, "demo: got record type %u, expected %u\n", (unsigned)type, (unsigned)expected);
        exit(1);
    }
}

int main(void)
{
    static uint8_t payload[PRIVLINE_OPEN_MAX_OUTPUT_LEN];
    uint8_t network_key[PRIVLINE_NETWORK_KEY_LEN];
    uint8_t alice_seed[PRIVLINE_SEED_LEN], alice_public[PRIVLINE_PUBLIC_KEY_LEN];
    uint8_t bob_seed[PRIVLINE_SEED_LEN], bob_public[PRIVLINE_PUBLIC_KEY_LEN];
    uint8_t peer[PRIVLINE_PUBLIC_KEY_LEN];
    uint8_t client_sid[PRIVLINE_SESSION_ID_LEN], server_sid[PRIVLINE_SESSION_ID_LEN];
    static pipe_t to_server = {"client -> server", {0}, 0};
    static pipe_t to_client = {"server -> client", {0}, 0};
    privline_handshake *client = NULL, *server = NULL;
    privline_channel *client_ch = NULL, *server_ch = NULL;
    privline_handshake_status client_status, server_status = PRIVLINE_HANDSHAKE_NEED_INPUT;
    size_t len;
    bool closed = false;
    int rounds = 0;

    printf("privline %s\n", privline_version());

    /* Identities: each side's secret seed stays with it; public keys are
     * exchanged out of band (Alice must know Bob's before she dials). */
    check(privline_identity_generate(alice_seed, alice_public), "privline_identity_generate");
    check(privline_identity_generate(bob_seed, bob_public), "privline_identity_generate");
    random_bytes(network_key, sizeof network_key);
    printf("alice (client): key %s\n", short_hex(alice_public, sizeof alice_public));
    printf("bob (server):   key %s\n", short_hex(bob_public, sizeof bob_public));

    check(privline_handshake_new_client(network_key, alice_seed, bob_public, &client), "new_client");
    check(privline_handshake_new_server(network_key, bob_seed, &server), "new_server");
    /* The handshakes copied the secrets: wipe ours (a real program should
     * use a wipe the compiler cannot drop, such as explicit_bzero). */
    memset(alice_seed, 0, sizeof alice_seed);
    memset(bob_seed, 0, sizeof bob_seed);

    /* The handshake. The client's first step, with no input, writes M1. Over
     * a network each side would step whenever bytes arrive from the other. */
    client_status = step(client, &to_client, &to_server);
    while (client_status != PRIVLINE_HANDSHAKE_DONE || server_status != PRIVLINE_HANDSHAKE_DONE) {
        if (++rounds > 10) {
            fprintf(stderr, "demo: the handshake does not finish\n");
            return 1;
        }
        if (server_status != PRIVLINE_HANDSHAKE_DONE) {
            server_status = step(server, &to_server, &to_client);
            if (server_status == PRIVLINE_HANDSHAKE_AUTHORIZE_PEER) {
                /* The client proved its key: the application decides. */
                bool allowed;
                check(privline_handshake_peer_key(server, peer), "privline_handshake_peer_key");
                allowed = memcmp(peer, alice_public, sizeof peer) == 0; /* an allow-list of one */
                printf("server: client %s wants in: %s\n", short_hex(peer, sizeof peer),
                       allowed ? "accepting" : "refusing");
                check(privline_handshake_authorize(server, allowed), "privline_handshake_authorize");
                server_status = step(server, &to_server, &to_client); /* writes M4 */
            }
        }
        if (client_status != PRIVLINE_HANDSHAKE_DONE)
            client_status = step(client, &to_client, &to_server);
    }

    /* Both done: the handshakes become channels (and the handles are freed). */
    check(privline_handshake_into_channel(&client, &client_ch), "into_channel (client)");
    check(privline_handshake_into_channel(&server, &server_ch), "into_channel (server)");
    check(privline_channel_session_id(client_ch, client_sid), "session_id");
    check(privline_channel_session_id(server_ch, server_sid), "session_id");
    printf("client: session %s\n", short_hex(client_sid, sizeof client_sid));
    printf("server: session %s\n", short_hex(server_sid, sizeof server_sid));
    check(privline_channel_peer_key(client_ch, peer), "peer_key");
    printf("client: talking to %s\n", short_hex(peer, sizeof peer));
    if (memcmp(client_sid, server_sid, sizeof client_sid) != 0
        || memcmp(peer, bob_public, sizeof peer) != 0) {
        fprintf(stderr, "demo: the two ends disagree\n");
        return 1;
    }

    /* One message each way. */
    send_text(client_ch, "hello, bob", &to_server);
    receive(server_ch, &to_server, PRIVLINE_RECORD_DATA, payload, &len);
    printf("server: received \"%.*s\"\n", (int)len, (const char *)payload);
    send_text(server_ch, "hello, alice", &to_client);
    receive(client_ch, &to_client, PRIVLINE_RECORD_DATA, payload, &len);
    printf("client: received \"%.*s\"\n", (int)len, (const char *)payload);

    /* Close both ways: each side says it sends nothing more. */
    send_close(client_ch, &to_server);
    receive(server_ch, &to_server, PRIVLINE_RECORD_CLOSE, payload, &len);
    printf("server: client closed\n");
    send_close(server_ch, &to_client);
    receive(client_ch, &to_client, PRIVLINE_RECORD_CLOSE, payload, &len);
    /* A connection that ends before this is true was cut short. */
    check(privline_channel_peer_closed(client_ch, &closed), "peer_closed");
    printf("client: server closed\n");

    privline_channel_free(client_ch);
    privline_channel_free(server_ch);
    memset(client_sid, 0, sizeof client_sid);
    memset(server_sid, 0, sizeof server_sid);
    if (!closed || to_server.len != 0 || to_client.len != 0) {
        fprintf(stderr, "demo: the channel did not end cleanly\n");
        return 1;
    }
    printf("demo: OK\n");
    return 0;
}
