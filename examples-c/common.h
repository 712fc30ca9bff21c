/*
 * common.h: small helpers shared by the privline example peers
 * (privline-keygen, privline-server, privline-client). Nothing here touches
 * privline internals: the peers use only include/privline.h.
 */

#ifndef PRIVLINE_EXAMPLES_COMMON_H
#define PRIVLINE_EXAMPLES_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "privline.h"

/* Exit statuses shared by the peers. */
#define EXIT_FAILED 1 /* the connection or the exchange failed */
#define EXIT_USAGE 2  /* bad command-line arguments */

/* Stop reading more input while this much output is waiting to be sent. */
#define PENDING_OUTPUT_LIMIT (1024u * 1024u)

/* Parses exactly `len` bytes written as 2 * len hex digits (either case,
 * nothing else) from `text` into `out`. Returns false if `text` is not that. */
bool hex_decode(const char *text, uint8_t *out, size_t len);

/* Writes `len` bytes as 2 * len lowercase hex digits and a NUL into `text`
 * (room for 2 * len + 1 characters). */
void hex_encode(const uint8_t *bytes, size_t len, char *text);

/* Splits "HOST:PORT" ("[v6addr]:PORT" for IPv6) into a freshly allocated
 * host (the caller frees it) and a port string pointing into `text`.
 * Returns false if `text` does not have that shape. */
bool split_host_port(const char *text, char **host_out, const char **port_out);

/* Parses --protocol: "privline1" (privline/1) or "shs1" (Scuttlebutt
 * secret-handshake v1 with box-stream) into a privline_protocol value.
 * Returns false for anything else. */
bool parse_protocol(const char *text, uint32_t *protocol_out);

/* The --protocol spelling of a privline_protocol value. */
const char *protocol_name(uint32_t protocol);

/* What this side sends to end its half of the stream, for messages:
 * "close" (privline/1) or "goodbye" (SHS1). */
const char *close_name(uint32_t protocol);

/* Parses --secret: 64 hex digits (the 32-byte Ed25519 seed) or 128 hex
 * digits (the 64-byte libsodium / Scuttlebutt secret: the seed, then the
 * public key) into `out` (PRIVLINE_IDENTITY_KEYPAIR_LEN bytes of room);
 * `*len_out` receives 32 or 64. Returns false if `text` is neither. */
bool parse_secret(const char *text, uint8_t *out, size_t *len_out);

/* Parses a positive, finite number of seconds ("10", "0.5"). */
bool parse_seconds(const char *text, double *seconds_out);

/* Seconds on a monotonic clock. */
double now_seconds(void);

/* Milliseconds until `deadline` (a now_seconds() value), rounded up, for
 * poll(): 0 when it has passed, capped at a day. */
int poll_timeout_ms(double deadline, double now);

/* Puts a descriptor into non-blocking mode. Returns false on failure. */
bool set_nonblocking(int fd);

/*
 * A byte buffer that is appended to at the end and consumed from the front:
 * the bytes waiting are data[start .. start + len]. Starts zeroed
 * ({NULL, 0, 0, 0}); free with buffer_free.
 */
typedef struct {
    uint8_t *data;
    size_t start;
    size_t len;
    size_t cap;
} buffer_t;

/* Makes room for `extra` more bytes after the waiting ones and returns a
 * pointer to that room (commit what was written there with buffer_commit),
 * or NULL when out of memory. */
uint8_t *buffer_reserve(buffer_t *buffer, size_t extra);

/* Adds `len` bytes written into the room from buffer_reserve. */
void buffer_commit(buffer_t *buffer, size_t len);

/* Appends a copy of `len` bytes. Returns false when out of memory. */
bool buffer_append(buffer_t *buffer, const uint8_t *bytes, size_t len);

/* Drops `len` bytes from the front. */
void buffer_consume(buffer_t *buffer, size_t len);

/* The first waiting byte. */
uint8_t *buffer_head(const buffer_t *buffer);

/* Wipes and frees the storage; the buffer is empty and reusable afterwards. */
void buffer_free(buffer_t *buffer);

/* Seals `len` payload bytes (NULL allowed when 0) as data onto `out`, or
 * with `close_record` this side's close (privline/1) or goodbye (SHS1),
 * asking the library for the exact size first. Returns NULL on success,
 * else a static description of the failure. */
const char *queue_sealed(buffer_t *out, privline_channel *channel, const uint8_t *payload, size_t len,
                         bool close_record);

/* Overwrites secrets in a way the compiler does not drop. */
void wipe(void *bytes, size_t len);

#endif /* PRIVLINE_EXAMPLES_COMMON_H */
