/*
 * shs1-adapter: privline's SHS1 handshake in the form the shs1-test suite
 * (npm package shs1-test) drives, over stdin and stdout. Uses the C ABI only.
 *
 *   shs1-adapter NETWORK_KEY SERVER_SK SERVER_PK    the server role
 *   shs1-adapter NETWORK_KEY SERVER_PK              the client role
 *
 * All arguments are hex: the 32-byte network key, the server's 64-byte
 * libsodium secret key (seed || public) and its 32-byte public key. The
 * number of arguments selects the role, since the suite passes no other.
 * The client picks a fresh identity of its own.
 *
 * On success the server writes msg2 and msg4, the client msg1 and msg3, and
 * both then write the 112-byte outcome (encryption key || encryption nonce
 * || decryption key || decryption nonce) and exit 0. As soon as the other
 * side misbehaves (a message that does not verify, or stdin ending early)
 * it exits 1 without writing anything more, with the reason on stderr.
 * Bad arguments exit 2.
 */

#define _POSIX_C_SOURCE 200809L

#include "common.h" /* examples-c/common.h: hex_decode, wipe */
#include "privline.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The most handshake input one side receives: msg1 + msg3 (server). */
#define INPUT_CAPACITY 256

static const char usage_text[] =
    "usage: shs1-adapter NETWORK_KEY SERVER_SK SERVER_PK   (server role)\n"
    "       shs1-adapter NETWORK_KEY SERVER_PK             (client role)\n"
    "  hex: 32-byte network key, 64-byte libsodium secret key, 32-byte public key\n";

/* Writes all of `data` to stdout; 0 on success. */
static int write_all(const uint8_t *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(STDOUT_FILENO, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            perror("shs1-adapter: write");
            return -1;
        }
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

static int report(const char *what, privline_result result)
{
    fprintf(stderr, "shs1-adapter: %s: %s\n", what, privline_result_str(result));
    return 1;
}

/*
 * Runs `handshake` to the end: sends what each step writes, feeds it what
 * arrives on stdin, accepts the client when asked (server), then writes the
 * outcome. The caller still owns (and frees) *handshake; on success it is
 * NULL. Returns the exit code.
 */
static int run(privline_handshake **handshake)
{
    uint8_t input[INPUT_CAPACITY];
    uint8_t output[PRIVLINE_HANDSHAKE_MAX_MESSAGE_LEN];
    uint8_t outcome[PRIVLINE_SHS1_KEYS_LEN];
    size_t have = 0;
    privline_handshake_status status = PRIVLINE_HANDSHAKE_NEED_INPUT;
    privline_channel *channel = NULL;
    privline_result result;
    int code = 1;

    /* The first step takes no input: the client writes msg1, the server
     * nothing yet. */
    for (;;) {
        size_t consumed = 0;
        size_t output_len = sizeof output;
        result = privline_handshake_step(*handshake, input, have, &consumed, output, &output_len, &status);
        if (result != PRIVLINE_RESULT_OK) {
            report("handshake step", result);
            goto out;
        }
        if (consumed > have) {
            fprintf(stderr, "shs1-adapter: the handshake consumed %zu of %zu bytes\n", consumed, have);
            goto out;
        }
        memmove(input, input + consumed, have - consumed);
        have -= consumed;
        if (output_len > 0 && write_all(output, output_len) != 0)
            goto out;

        if (status == PRIVLINE_HANDSHAKE_DONE)
            break;
        if (status == PRIVLINE_HANDSHAKE_AUTHORIZE_PEER) {
            /* The suite's clients are all welcome; stepping again yields msg4. */
            result = privline_handshake_authorize(*handshake, true);
            if (result != PRIVLINE_RESULT_OK) {
                report("authorize", result);
                goto out;
            }
            continue;
        }
        if (status != PRIVLINE_HANDSHAKE_NEED_INPUT) {
            fprintf(stderr, "shs1-adapter: unexpected handshake status %u\n", (unsigned)status);
            goto out;
        }
        if (have == sizeof input) {
            fprintf(stderr, "shs1-adapter: %zu bytes arrived and the handshake took none\n", have);
            goto out;
        }
        ssize_t n = read(STDIN_FILENO, input + have, sizeof input - have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            perror("shs1-adapter: read");
            goto out;
        }
        if (n == 0) {
            fprintf(stderr, "shs1-adapter: stdin ended in the middle of the handshake\n");
            goto out;
        }
        have += (size_t)n;
    }

    if (have != 0) {
        /* The suite sends nothing after the handshake. */
        fprintf(stderr, "shs1-adapter: %zu unexpected bytes after the handshake\n", have);
        goto out;
    }
    result = privline_handshake_into_channel(handshake, &channel);
    if (result != PRIVLINE_RESULT_OK) {
        report("into channel", result);
        goto out;
    }
    result = privline_channel_export_shs1_keys(channel, outcome);
    if (result != PRIVLINE_RESULT_OK) {
        report("export keys", result);
        goto out;
    }
    if (write_all(outcome, sizeof outcome) != 0)
        goto out;
    code = 0;

out:
    privline_channel_free(channel);
    wipe(input, sizeof input);
    wipe(output, sizeof output);
    wipe(outcome, sizeof outcome);
    return code;
}

int main(int argc, char **argv)
{
    uint8_t network_key[PRIVLINE_NETWORK_KEY_LEN];
    uint8_t secret[PRIVLINE_IDENTITY_KEYPAIR_LEN];
    uint8_t seed[PRIVLINE_SEED_LEN];
    uint8_t server_public[PRIVLINE_PUBLIC_KEY_LEN];
    uint8_t own_public[PRIVLINE_PUBLIC_KEY_LEN];
    privline_identity *identity = NULL;
    privline_handshake *handshake = NULL;
    privline_result result;
    int server = argc == 4;
    int code = 1;

    if (argc != 3 && argc != 4) {
        fputs(usage_text, stderr);
        return 2;
    }
    if (!hex_decode(argv[1], network_key, sizeof network_key)
        || !hex_decode(argv[argc - 1], server_public, sizeof server_public)
        || (server && !hex_decode(argv[2], secret, sizeof secret))) {
        wipe(secret, sizeof secret);
        fputs("shs1-adapter: an argument is not hex of the right length\n", stderr);
        fputs(usage_text, stderr);
        return 2;
    }

    if (server) {
        result = privline_identity_new(secret, sizeof secret, &identity);
        if (result != PRIVLINE_RESULT_OK) {
            report("server identity", result);
            goto out;
        }
        result = privline_identity_public_key(identity, own_public);
        if (result != PRIVLINE_RESULT_OK) {
            report("server public key", result);
            goto out;
        }
        if (memcmp(own_public, server_public, sizeof own_public) != 0) {
            fputs("shs1-adapter: SERVER_PK is not the public key of SERVER_SK\n", stderr);
            goto out;
        }
        result = privline_handshake_new_server_with_identity(PRIVLINE_PROTOCOL_SHS1, network_key, identity,
                                                             &handshake);
        if (result != PRIVLINE_RESULT_OK) {
            report("new server handshake", result);
            goto out;
        }
    } else {
        result = privline_identity_generate(seed, own_public);
        if (result != PRIVLINE_RESULT_OK) {
            report("generate client identity", result);
            goto out;
        }
        result = privline_identity_new(seed, sizeof seed, &identity);
        if (result != PRIVLINE_RESULT_OK) {
            report("client identity", result);
            goto out;
        }
        result = privline_handshake_new_client_with_identity(PRIVLINE_PROTOCOL_SHS1, network_key, identity,
                                                             server_public, &handshake);
        if (result != PRIVLINE_RESULT_OK) {
            report("new client handshake", result);
            goto out;
        }
    }

    code = run(&handshake);

out:
    privline_handshake_free(handshake);
    privline_identity_free(identity);
    wipe(secret, sizeof secret);
    wipe(seed, sizeof seed);
    return code;
}
