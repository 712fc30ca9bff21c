/*
 * ct_open.c: the work of privline_channel_open on padded records must not
 * depend on where the padding starts. Makes a privline/1 channel pair in
 * memory, seals RECORDS data records of PAYLOAD_LEN bytes with pad_block
 * 4096 (for any PAYLOAD_LEN up to 4095 every record is 4096 bytes of inner
 * plaintext, so all are the same length on the wire), and opens each in
 * its own call of privline_channel_open.
 *
 * Usage: ct_open PAYLOAD_LEN   (decimal; ct_open.sh writes every length with
 *                               four digits so that argv, and with it the
 *                               stack's alignment, is the same for all)
 *
 * Run under `valgrind --tool=callgrind --toggle-collect=privline_channel_open`
 * once per payload length: the instruction count (Ir) collected is the
 * work of the opens alone, and tests/c/ct_open.sh requires it to be the
 * same for every length. The program itself checks that every record has
 * the same wire length and opens to the payload sealed; it prints
 * "ct_open: PAYLOAD_LEN bytes, RECORDS records of WIRE bytes opened".
 */

#include "privline.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAD_BLOCK 4096u
#define RECORDS 4
#define WIRE_LEN (PAD_BLOCK + 16u + 2u) /* length field, inner plaintext, tag */

static int fail(const char *what, privline_result r)
{
    fprintf(stderr, "ct_open: %s: %u (%s)\n", what, (unsigned)r, privline_result_str(r));
    return 1;
}

/* One step of `hs` on `in` (consumed bytes removed), what it writes
 * appended to `out`; returns the result. */
static privline_result step(privline_handshake *hs, uint8_t *in, size_t *in_len, uint8_t *out, size_t *out_len,
                            privline_handshake_status *st)
{
    uint8_t buf[PRIVLINE_HANDSHAKE_MAX_MESSAGE_LEN];
    size_t consumed = 0, written = sizeof buf;
    privline_result r = privline_handshake_step(hs, in, *in_len, &consumed, buf, &written, st);
    if (r != PRIVLINE_RESULT_OK)
        return r;
    memmove(in, in + consumed, *in_len - consumed);
    *in_len -= consumed;
    memcpy(out + *out_len, buf, written);
    *out_len += written;
    return r;
}

static int connect_pair(privline_channel **c, privline_channel **s)
{
    uint8_t seed[PRIVLINE_SEED_LEN], server_public[PRIVLINE_PUBLIC_KEY_LEN], client_public[PRIVLINE_PUBLIC_KEY_LEN];
    uint8_t network_key[PRIVLINE_NETWORK_KEY_LEN];
    uint8_t c2s[1024], s2c[1024];
    size_t c2s_len = 0, s2c_len = 0;
    privline_identity *ci = NULL, *si = NULL;
    privline_handshake *hc = NULL, *hs = NULL;
    privline_handshake_status st;
    privline_result r;
    int ok = 0;

    memset(network_key, 0x42, sizeof network_key);
    if ((r = privline_identity_generate(seed, client_public)) != PRIVLINE_RESULT_OK
        || (r = privline_identity_new(seed, sizeof seed, &ci)) != PRIVLINE_RESULT_OK
        || (r = privline_identity_generate(seed, server_public)) != PRIVLINE_RESULT_OK
        || (r = privline_identity_new(seed, sizeof seed, &si)) != PRIVLINE_RESULT_OK
        || (r = privline_handshake_new_client_with_identity(PRIVLINE_PROTOCOL_PRIVLINE1, network_key, ci, server_public,
                                                            &hc))
               != PRIVLINE_RESULT_OK
        || (r = privline_handshake_new_server_with_identity(PRIVLINE_PROTOCOL_PRIVLINE1, network_key, si, &hs))
               != PRIVLINE_RESULT_OK) {
        fail("setup", r);
        goto out;
    }
    /* M1; M2; M3; authorize; M4; the client finishes. */
    if ((r = step(hc, s2c, &s2c_len, c2s, &c2s_len, &st)) != PRIVLINE_RESULT_OK
        || (r = step(hs, c2s, &c2s_len, s2c, &s2c_len, &st)) != PRIVLINE_RESULT_OK
        || (r = step(hc, s2c, &s2c_len, c2s, &c2s_len, &st)) != PRIVLINE_RESULT_OK
        || (r = step(hs, c2s, &c2s_len, s2c, &s2c_len, &st)) != PRIVLINE_RESULT_OK) {
        fail("handshake", r);
        goto out;
    }
    if (st != PRIVLINE_HANDSHAKE_AUTHORIZE_PEER || (r = privline_handshake_authorize(hs, true)) != PRIVLINE_RESULT_OK
        || (r = step(hs, c2s, &c2s_len, s2c, &s2c_len, &st)) != PRIVLINE_RESULT_OK
        || st != PRIVLINE_HANDSHAKE_DONE) {
        fail("handshake (server)", r);
        goto out;
    }
    if ((r = step(hc, s2c, &s2c_len, c2s, &c2s_len, &st)) != PRIVLINE_RESULT_OK || st != PRIVLINE_HANDSHAKE_DONE) {
        fail("handshake (client)", r);
        goto out;
    }
    if ((r = privline_handshake_into_channel(&hc, c)) != PRIVLINE_RESULT_OK
        || (r = privline_handshake_into_channel(&hs, s)) != PRIVLINE_RESULT_OK) {
        fail("into_channel", r);
        goto out;
    }
    ok = 1;
out:
    privline_handshake_free(hc);
    privline_handshake_free(hs);
    privline_identity_free(ci);
    privline_identity_free(si);
    return ok;
}

int main(int argc, char **argv)
{
    static uint8_t wire[RECORDS][WIRE_LEN];
    static uint8_t payload[PAD_BLOCK], out[PRIVLINE_OPEN_MAX_OUTPUT_LEN];
    privline_channel *c = NULL, *s = NULL;
    long n;
    size_t len, i;
    int k, status = 1;

    if (argc != 2 || (n = strtol(argv[1], NULL, 10)) < 0 || n > (long)PAD_BLOCK - 1) {
        fprintf(stderr, "usage: %s PAYLOAD_LEN (0..%u)\n", argv[0], PAD_BLOCK - 1);
        return 2;
    }
    len = (size_t)n;
    if (!connect_pair(&c, &s))
        goto out;
    for (k = 0; k < RECORDS; k++) {
        size_t written = WIRE_LEN;
        privline_result r;
        for (i = 0; i < len; i++)
            payload[i] = (uint8_t)(i * 31u + (size_t)k + 1u); /* no zero-byte pattern to lean on */
        r = privline_channel_seal(c, payload, len, PAD_BLOCK, wire[k], &written);
        if (r != PRIVLINE_RESULT_OK) {
            fail("seal", r);
            goto out;
        }
        if (written != WIRE_LEN) {
            fprintf(stderr, "ct_open: record of %lu bytes, expected %u\n", (unsigned long)written, WIRE_LEN);
            goto out;
        }
    }
    /* The measured part: one call per record. */
    for (k = 0; k < RECORDS; k++) {
        size_t consumed = 0, out_len = sizeof out;
        privline_record_type type = PRIVLINE_RECORD_NONE;
        privline_result r = privline_channel_open(s, wire[k], WIRE_LEN, &consumed, out, &out_len, &type);
        if (r != PRIVLINE_RESULT_OK) {
            fail("open", r);
            goto out;
        }
        for (i = 0; i < len; i++)
            payload[i] = (uint8_t)(i * 31u + (size_t)k + 1u);
        if (type != PRIVLINE_RECORD_DATA || consumed != WIRE_LEN || out_len != len
            || memcmp(out, payload, len) != 0) {
            fprintf(stderr, "ct_open: record %d did not open to its payload\n", k);
            goto out;
        }
    }
    printf("ct_open: %lu bytes, %d records of %u bytes opened\n", (unsigned long)len, RECORDS, WIRE_LEN);
    status = 0;
out:
    privline_channel_free(c);
    privline_channel_free(s);
    return status;
}
