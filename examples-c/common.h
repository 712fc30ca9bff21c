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
#include <sys/socket.h>
#include <sys/types.h>

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

/* Receives onto the end of `in` what the non-blocking socket `fd` has: at
 * most `chunk` bytes, and never so many that `in` would hold more than
 * `limit`. Returns recv's answer: the number of bytes, 0 at the peer's end of
 * the stream, or -1 with errno set (EAGAIN, EWOULDBLOCK or EINTR: nothing
 * now, as when `in` is already at `limit`; ENOMEM: no memory for the room). */
ssize_t buffer_recv(int fd, buffer_t *in, size_t chunk, size_t limit);

/* Whether a non-blocking socket call that failed with errno `error` (EAGAIN,
 * EWOULDBLOCK, EINTR) is just to be tried again at the next poll. */
bool try_again_later(int error);

/* Reads and discards what the non-blocking socket `fd` has, for a
 * connection held open and silent after a failed handshake. Returns the
 * number of bytes (0: nothing now), or -1 when the peer has gone (the end
 * of the stream, or an error). */
ssize_t discard_input(int fd);

/* Sends what `out` holds on the non-blocking socket `fd`, as far as the
 * socket takes it now, and drops what went out. Returns the number of bytes
 * sent, or -1 with errno set on a connection error (what was not sent stays
 * in `out`). */
ssize_t buffer_send(int fd, buffer_t *out);

/* How far handshake_advance got. */
typedef enum {
    ADVANCE_WAITING, /* it needs more bytes from the peer */
    ADVANCE_DONE,    /* the channel is ready */
    ADVANCE_REFUSED, /* the server application refused the client */
    ADVANCE_FAILED   /* the handshake failed */
} advance_t;

/* Steps `*handshake` over the bytes waiting in `in` (dropping what it takes)
 * and appends every message it writes to `out`, until it needs more bytes
 * or ends. A server asks `allowed(key)` about the client's proven key (a
 * client, never asked, passes NULL). Returns
 *   ADVANCE_WAITING  more bytes are needed;
 *   ADVANCE_DONE     `*channel_out` holds the channel (`*handshake` was
 *                    consumed) and `peer_key` the peer's key;
 *   ADVANCE_REFUSED  `allowed` said no and the handshake was told so;
 *                    `peer_key` holds the refused key;
 *   ADVANCE_FAILED   `*failure_out` is a static description. */
advance_t handshake_advance(privline_handshake **handshake, buffer_t *in, buffer_t *out,
                            bool (*allowed)(const uint8_t *key), uint8_t peer_key[PRIVLINE_PUBLIC_KEY_LEN],
                            privline_channel **channel_out, const char **failure_out);

/*
 * Connection limits, for servers (privline-server; meant to be reused by any
 * daemon that accepts privline connections).
 *
 * Connections are counted per source address: an IPv4 address (also when it
 * arrives IPv4-mapped on an IPv6 socket) on its own, an IPv6 address by its
 * /64 prefix (one site's or one host's usual allocation, so an attacker
 * cannot dodge the limit by walking through its own /64).
 */
struct sockaddr;

typedef struct {
    uint8_t bytes[17]; /* 4 (IPv4) or 6 (IPv6 /64), then the address bytes */
} addr_key_t;

/* The key a connection from `sa` counts under. Returns false for an address
 * that is neither IPv4 nor IPv6 (the key is then all zeros: such
 * connections share one count). */
bool addr_key_from_sockaddr(const struct sockaddr *sa, addr_key_t *key_out);

/* Writes the key for messages: "127.0.0.2" or "2001:db8:1:2::/64". */
void addr_key_format(const addr_key_t *key, char *text, size_t size);

/* How many connections each source address has open now: a small hash
 * table (open addressing). Starts zeroed ({NULL, 0, 0, 0}); free with
 * addr_counts_free. */
typedef struct {
    struct addr_count_slot *slots;
    size_t cap;  /* slots allocated: 0 or a power of two */
    size_t used;  /* slots holding a key, including keys now at count 0 */
    size_t total; /* connections counted, all keys */
} addr_counts_t;

/* The number of open connections counted under `key`. */
size_t addr_counts_get(const addr_counts_t *counts, const addr_key_t *key);

/* Counts one more connection under `key`. Returns false (and counts
 * nothing) when out of memory. */
bool addr_counts_add(addr_counts_t *counts, const addr_key_t *key);

/* Counts one connection less under `key` (which must have been added). */
void addr_counts_remove(addr_counts_t *counts, const addr_key_t *key);

void addr_counts_free(addr_counts_t *counts);

/* What to do with a connection just accepted. */
typedef enum {
    ADMIT_YES,             /* take it */
    ADMIT_EVICT,           /* take it after closing the oldest connection
                              that has not finished its handshake */
    ADMIT_NO_PER_ADDRESS,  /* close it now: its address is at max_per_address */
    ADMIT_NO_FULL          /* close it now: at max_connections, none to evict */
} admission_t;

/* The admission rule: the per-address cap first (a flood from one address
 * never evicts anybody), then the overall cap, where a connection that is
 * still in its handshake (it has proven nothing yet) gives way to the new
 * one. `open_now`: connections held now; `can_evict`: whether one of them is
 * still in its handshake. */
admission_t admission_decide(const addr_counts_t *counts, const addr_key_t *key, size_t open_now,
                             size_t max_connections, size_t max_per_address, bool can_evict);

/* The default connection cap: the soft descriptor limit (RLIMIT_NOFILE)
 * minus `reserve` descriptors kept for everything else, at most `ceiling`;
 * 0 if the limit leaves no room. `*fd_limit_out` (may be NULL) receives the
 * limit itself (SIZE_MAX when unlimited). */
size_t connections_from_fd_limit(size_t reserve, size_t ceiling, size_t *fd_limit_out);

struct addrinfo;

/* Resolves HOST and PORT for TCP (IPv4 or IPv6; with `passive`, addresses to
 * listen on, where a NULL host means all of them). Returns 0 with
 * `*found_out` the list (freeaddrinfo it), or getaddrinfo's error code for
 * gai_strerror (EAI_NONAME when the list would be empty). */
int resolve_tcp(const char *host, const char *port, bool passive, struct addrinfo **found_out);

/* Writes a socket address for messages: "127.0.0.1:4000", "[::1]:4000", or
 * "unknown peer" when it cannot be written. */
void describe_sockaddr(const struct sockaddr *sa, socklen_t len, char *text, size_t size);

/* Parses a whole decimal number in 1..max ("64"). */
bool parse_positive_count(const char *text, size_t max, size_t *count_out);

/* Overwrites secrets in a way the compiler does not drop. */
void wipe(void *bytes, size_t len);

#endif /* PRIVLINE_EXAMPLES_COMMON_H */

/*
 * Key files (privline-tunnel, privline-server, privline-client,
 * privline-keygen --out): keys read from files, never from the command line.
 */

/* Reads a key file holding `len_a` or `len_b` bytes (pass the same value
 * twice for one length), written either as hex (2 * len digits, either
 * case, surrounding whitespace ignored) or raw (exactly that many bytes).
 * With `secret`, a file that group or others may read is refused, as ssh
 * refuses a private key that others can read. Returns NULL on success
 * (`out` holds the key, `*len_out` its length), else `error` holding a
 * description (`error_size` bytes of room). The copies of the file's bytes
 * are wiped. */
const char *read_key_file(const char *path, bool secret, size_t len_a, size_t len_b, uint8_t *out,
                          size_t *len_out, char *error, size_t error_size);

/* Parses an allow file: one public key (64 hex digits) per line; blank
 * lines, and everything from '#' to the end of a line, are ignored. On
 * success (NULL) `*keys_out` is a new array (free() it; NULL when the file
 * lists no key) of `*count_out` keys; otherwise a description in `error`. */
const char *read_allow_file(const char *path, uint8_t (**keys_out)[PRIVLINE_PUBLIC_KEY_LEN], size_t *count_out,
                            char *error, size_t error_size);

/* The warning for a key given on the command line (--secret, --network-key),
 * where other local users can read it (ps, /proc): "PROGRAM: warning: ...
 * use FILE_OPTION". One line on stderr, always (a terminal or not). */
void warn_key_on_command_line(const char *program, const char *option, const char *file_option);
