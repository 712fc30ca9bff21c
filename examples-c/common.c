/* common.c: helpers shared by the privline example peers; see common.h. */

#define _POSIX_C_SOURCE 200809L

#include "common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

bool hex_decode(const char *text, uint8_t *out, size_t len)
{
    size_t i;
    if (text == NULL || strlen(text) != 2 * len)
        return false;
    for (i = 0; i < len; i++) {
        int high = hex_digit(text[2 * i]);
        int low = hex_digit(text[2 * i + 1]);
        if (high < 0 || low < 0)
            return false;
        out[i] = (uint8_t)(high << 4 | low);
    }
    return true;
}

void hex_encode(const uint8_t *bytes, size_t len, char *text)
{
    static const char digits[] = "0123456789abcdef";
    size_t i;
    for (i = 0; i < len; i++) {
        text[2 * i] = digits[bytes[i] >> 4];
        text[2 * i + 1] = digits[bytes[i] & 0x0f];
    }
    text[2 * len] = '\0';
}

bool parse_protocol(const char *text, uint32_t *protocol_out)
{
    if (text != NULL && strcmp(text, "privline1") == 0) {
        *protocol_out = PRIVLINE_PROTOCOL_PRIVLINE1;
        return true;
    }
    if (text != NULL && strcmp(text, "shs1") == 0) {
        *protocol_out = PRIVLINE_PROTOCOL_SHS1;
        return true;
    }
    return false;
}

const char *protocol_name(uint32_t protocol)
{
    return protocol == PRIVLINE_PROTOCOL_SHS1 ? "shs1" : "privline1";
}

const char *close_name(uint32_t protocol)
{
    return protocol == PRIVLINE_PROTOCOL_SHS1 ? "goodbye" : "close";
}

bool parse_secret(const char *text, uint8_t *out, size_t *len_out)
{
    if (text == NULL)
        return false;
    if (strlen(text) == 2 * PRIVLINE_SEED_LEN && hex_decode(text, out, PRIVLINE_SEED_LEN)) {
        *len_out = PRIVLINE_SEED_LEN;
        return true;
    }
    if (strlen(text) == 2 * PRIVLINE_IDENTITY_KEYPAIR_LEN && hex_decode(text, out, PRIVLINE_IDENTITY_KEYPAIR_LEN)) {
        *len_out = PRIVLINE_IDENTITY_KEYPAIR_LEN;
        return true;
    }
    wipe(out, PRIVLINE_IDENTITY_KEYPAIR_LEN); /* a half-decoded secret */
    return false;
}

bool split_host_port(const char *text, char **host_out, const char **port_out)
{
    const char *host, *host_end, *port;
    char *host_copy;
    size_t host_len;

    if (text == NULL)
        return false;
    if (text[0] == '[') { /* [v6]:port */
        host = text + 1;
        host_end = strchr(host, ']');
        if (host_end == NULL || host_end[1] != ':')
            return false;
        port = host_end + 2;
    } else {
        host = text;
        host_end = strrchr(text, ':');
        if (host_end == NULL || memchr(text, ':', (size_t)(host_end - text)) != NULL)
            return false; /* no port, or an IPv6 address without brackets */
        port = host_end + 1;
    }
    host_len = (size_t)(host_end - host);
    if (host_len == 0 || *port == '\0' || strspn(port, "0123456789") != strlen(port) || strlen(port) > 5
        || atoi(port) > 65535)
        return false;
    host_copy = malloc(host_len + 1);
    if (host_copy == NULL)
        return false;
    memcpy(host_copy, host, host_len);
    host_copy[host_len] = '\0';
    *host_out = host_copy;
    *port_out = port;
    return true;
}

bool parse_seconds(const char *text, double *seconds_out)
{
    char *end = NULL;
    double value;
    if (text == NULL || *text == '\0')
        return false;
    errno = 0;
    value = strtod(text, &end);
    if (errno != 0 || end == text || *end != '\0' || !isfinite(value) || value <= 0 || value > 1e6)
        return false;
    *seconds_out = value;
    return true;
}

double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int poll_timeout_ms(double deadline, double now)
{
    double ms = (deadline - now) * 1000.0;
    if (ms <= 0)
        return 0;
    if (ms > 86400000.0)
        return 86400000;
    return (int)ceil(ms);
}

bool set_nonblocking(int fd)
{
    int flags = fcntl(fd, F_GETFL);
    return flags >= 0 && fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0;
}

uint8_t *buffer_reserve(buffer_t *buffer, size_t extra)
{
    if (buffer->cap - buffer->start - buffer->len >= extra)
        return buffer->data + buffer->start + buffer->len;
    /* Move the waiting bytes to the front first; grow only if still short. */
    if (buffer->start > 0) {
        memmove(buffer->data, buffer->data + buffer->start, buffer->len);
        buffer->start = 0;
    }
    if (buffer->cap - buffer->len < extra) {
        size_t want = buffer->len + extra, cap = buffer->cap ? buffer->cap : 4096;
        uint8_t *grown;
        if (want < buffer->len) /* overflow */
            return NULL;
        while (cap < want)
            cap *= 2;
        grown = realloc(buffer->data, cap);
        if (grown == NULL)
            return NULL;
        buffer->data = grown;
        buffer->cap = cap;
    }
    return buffer->data + buffer->len;
}

void buffer_commit(buffer_t *buffer, size_t len)
{
    buffer->len += len;
}

bool buffer_append(buffer_t *buffer, const uint8_t *bytes, size_t len)
{
    uint8_t *room;
    if (len == 0)
        return true;
    room = buffer_reserve(buffer, len);
    if (room == NULL)
        return false;
    memcpy(room, bytes, len);
    buffer_commit(buffer, len);
    return true;
}

void buffer_consume(buffer_t *buffer, size_t len)
{
    buffer->start += len;
    buffer->len -= len;
    if (buffer->len == 0)
        buffer->start = 0;
}

uint8_t *buffer_head(const buffer_t *buffer)
{
    return buffer->data + buffer->start;
}

void buffer_free(buffer_t *buffer)
{
    if (buffer->data != NULL)
        wipe(buffer->data, buffer->cap);
    free(buffer->data);
    buffer->data = NULL;
    buffer->start = buffer->len = buffer->cap = 0;
}

const char *queue_sealed(buffer_t *out, privline_channel *channel, const uint8_t *payload, size_t len,
                         bool close_record)
{
    /* Data: the exact size from the library (with an automatic privline/1
     * key update when one is due; box-stream splits into 4096-byte bodies).
     * Close: a zero-capacity call reports the size without closing. */
    size_t need = close_record ? 0 : privline_channel_sealed_len(channel, len, 0);
    if (need == SIZE_MAX)
        return "the payload is too large to seal";
    for (;;) {
        uint8_t *room = NULL;
        size_t written = need;
        privline_result result;
        if (need > 0) {
            room = buffer_reserve(out, need);
            if (room == NULL)
                return "out of memory";
        }
        if (close_record)
            result = privline_channel_close(channel, 0, room, &written);
        else
            result = privline_channel_seal(channel, payload, len, 0, room, &written);
        if (result == PRIVLINE_RESULT_BUFFER_TOO_SMALL && written > need) {
            need = written;
            continue;
        }
        if (result != PRIVLINE_RESULT_OK)
            return privline_result_str(result);
        buffer_commit(out, written);
        return NULL;
    }
}

ssize_t buffer_recv(int fd, buffer_t *in, size_t chunk, size_t limit)
{
    size_t want = chunk;
    uint8_t *room;
    ssize_t n;
    if (in->len >= limit) {
        errno = EAGAIN; /* read again once the owner has taken some */
        return -1;
    }
    if (limit - in->len < want)
        want = limit - in->len;
    room = buffer_reserve(in, want);
    if (room == NULL) {
        errno = ENOMEM;
        return -1;
    }
    n = recv(fd, room, want, 0);
    if (n > 0)
        buffer_commit(in, (size_t)n);
    return n;
}

bool try_again_later(int error)
{
    return error == EAGAIN || error == EWOULDBLOCK || error == EINTR;
}

ssize_t discard_input(int fd)
{
    uint8_t discard[64 * 1024]; /* as much as one read of a live connection */
    ssize_t n = recv(fd, discard, sizeof discard, 0);
    if (n == 0 || (n < 0 && !try_again_later(errno)))
        return -1;
    return n < 0 ? 0 : n;
}

ssize_t buffer_send(int fd, buffer_t *out)
{
    ssize_t total = 0;
    while (out->len > 0) {
        /* MSG_NOSIGNAL: a peer that went away is an error return, not SIGPIPE. */
        ssize_t n = send(fd, buffer_head(out), out->len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue; /* interrupted before anything went out: at once */
            if (try_again_later(errno))
                break;
            return -1;
        }
        buffer_consume(out, (size_t)n);
        total += n;
    }
    return total;
}

advance_t handshake_advance(privline_handshake **handshake, buffer_t *in, buffer_t *out,
                            bool (*allowed)(const uint8_t *key), uint8_t peer_key[PRIVLINE_PUBLIC_KEY_LEN],
                            privline_channel **channel_out, const char **failure_out)
{
    for (;;) {
        uint8_t message[PRIVLINE_HANDSHAKE_MAX_MESSAGE_LEN];
        size_t consumed = 0, message_len = sizeof message;
        privline_handshake_status status = PRIVLINE_HANDSHAKE_NEED_INPUT;
        privline_result result;

        result = privline_handshake_step(*handshake, in->len ? buffer_head(in) : NULL, in->len, &consumed,
                                         message, &message_len, &status);
        if (result != PRIVLINE_RESULT_OK) {
            *failure_out = privline_result_str(result);
            return ADVANCE_FAILED;
        }
        buffer_consume(in, consumed);
        if (!buffer_append(out, message, message_len)) {
            *failure_out = "out of memory";
            return ADVANCE_FAILED;
        }
        if (status == PRIVLINE_HANDSHAKE_NEED_INPUT) {
            if (consumed == 0 && message_len == 0)
                return ADVANCE_WAITING;
        } else if (status == PRIVLINE_HANDSHAKE_AUTHORIZE_PEER && allowed != NULL) {
            bool accept;
            result = privline_handshake_peer_key(*handshake, peer_key);
            if (result != PRIVLINE_RESULT_OK) {
                *failure_out = privline_result_str(result);
                return ADVANCE_FAILED;
            }
            accept = allowed(peer_key);
            result = privline_handshake_authorize(*handshake, accept);
            if (!accept)
                return ADVANCE_REFUSED;
            if (result != PRIVLINE_RESULT_OK) {
                *failure_out = privline_result_str(result);
                return ADVANCE_FAILED;
            }
            /* Step again (empty input is fine) to get M4. */
        } else if (status == PRIVLINE_HANDSHAKE_DONE) {
            result = privline_handshake_into_channel(handshake, channel_out);
            if (result == PRIVLINE_RESULT_OK)
                result = privline_channel_peer_key(*channel_out, peer_key);
            if (result != PRIVLINE_RESULT_OK) {
                privline_channel_free(*channel_out);
                *channel_out = NULL;
                *failure_out = privline_result_str(result);
                return ADVANCE_FAILED;
            }
            return ADVANCE_DONE;
        } else {
            *failure_out = "unexpected handshake status";
            return ADVANCE_FAILED;
        }
    }
}

int resolve_tcp(const char *host, const char *port, bool passive, struct addrinfo **found_out)
{
    struct addrinfo hints;
    int rc;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = passive ? AI_PASSIVE : 0;
    *found_out = NULL;
    rc = getaddrinfo(host, port, &hints, found_out);
    if (rc == 0 && *found_out == NULL)
        rc = EAI_NONAME;
    return rc;
}

void describe_sockaddr(const struct sockaddr *sa, socklen_t len, char *text, size_t size)
{
    char host[64], port[16];
    if (getnameinfo(sa, len, host, sizeof host, port, sizeof port, NI_NUMERICHOST | NI_NUMERICSERV)
        != 0)
        snprintf(text, size, "unknown peer");
    else if (strchr(host, ':') != NULL)
        snprintf(text, size, "[%s]:%s", host, port);
    else
        snprintf(text, size, "%s:%s", host, port);
}

/* ------------------------------------------------------------ limits */

struct addr_count_slot {
    addr_key_t key;
    bool taken;   /* the slot holds a key (its count may have dropped to 0) */
    size_t count;
};

bool addr_key_from_sockaddr(const struct sockaddr *sa, addr_key_t *key_out)
{
    static const uint8_t v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    memset(key_out, 0, sizeof *key_out);
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)(const void *)sa;
        key_out->bytes[0] = 4;
        memcpy(key_out->bytes + 1, &v4->sin_addr, 4);
        return true;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)(const void *)sa;
        const uint8_t *a = v6->sin6_addr.s6_addr;
        if (memcmp(a, v4_mapped, sizeof v4_mapped) == 0) {
            key_out->bytes[0] = 4;
            memcpy(key_out->bytes + 1, a + 12, 4);
        } else {
            key_out->bytes[0] = 6;
            memcpy(key_out->bytes + 1, a, 8); /* the /64 prefix */
        }
        return true;
    }
    return false;
}

void addr_key_format(const addr_key_t *key, char *text, size_t size)
{
    char address[INET6_ADDRSTRLEN];
    if (key->bytes[0] == 4 && inet_ntop(AF_INET, key->bytes + 1, address, sizeof address) != NULL) {
        snprintf(text, size, "%s", address);
    } else if (key->bytes[0] == 6) {
        uint8_t full[16];
        memset(full, 0, sizeof full);
        memcpy(full, key->bytes + 1, 8);
        if (inet_ntop(AF_INET6, full, address, sizeof address) != NULL)
            snprintf(text, size, "%s/64", address);
        else
            snprintf(text, size, "an IPv6 /64");
    } else {
        snprintf(text, size, "an unknown address");
    }
}

/* FNV-1a over the key: the table is sized to keep probes short, and its
 * entries are bounded by the connection cap. */
static size_t addr_key_hash(const addr_key_t *key)
{
    uint64_t h = 14695981039346656037u;
    size_t i;
    for (i = 0; i < sizeof key->bytes; i++) {
        h ^= key->bytes[i];
        h *= 1099511628211u;
    }
    return (size_t)(h ^ (h >> 29));
}

/* The slot holding `key`, or NULL. */
static struct addr_count_slot *addr_counts_find(const addr_counts_t *counts, const addr_key_t *key)
{
    size_t i, mask = counts->cap - 1;
    if (counts->cap == 0)
        return NULL;
    for (i = addr_key_hash(key) & mask;; i = (i + 1) & mask) {
        struct addr_count_slot *slot = &counts->slots[i];
        if (!slot->taken)
            return NULL;
        if (memcmp(&slot->key, key, sizeof *key) == 0)
            return slot;
    }
}

/* Rebuilds the table with `cap` slots, dropping keys at count 0. */
static bool addr_counts_rebuild(addr_counts_t *counts, size_t cap)
{
    struct addr_count_slot *slots = calloc(cap, sizeof *slots);
    size_t i, used = 0;
    if (slots == NULL)
        return false;
    for (i = 0; i < counts->cap; i++) {
        const struct addr_count_slot *old = &counts->slots[i];
        size_t j;
        if (!old->taken || old->count == 0)
            continue;
        for (j = addr_key_hash(&old->key) & (cap - 1); slots[j].taken; j = (j + 1) & (cap - 1)) {
        }
        slots[j] = *old;
        used++;
    }
    free(counts->slots);
    counts->slots = slots;
    counts->cap = cap;
    counts->used = used;
    return true;
}

size_t addr_counts_get(const addr_counts_t *counts, const addr_key_t *key)
{
    const struct addr_count_slot *slot = addr_counts_find(counts, key);
    return slot != NULL ? slot->count : 0;
}

bool addr_counts_add(addr_counts_t *counts, const addr_key_t *key)
{
    struct addr_count_slot *slot = addr_counts_find(counts, key);
    size_t i, mask;
    if (slot != NULL) {
        slot->count++;
        counts->total++;
        return true;
    }
    /* A new key: keep at most half the slots taken (keys at count 0 are
     * dropped by the rebuild, so the table follows the open connections). */
    if (2 * (counts->used + 1) > counts->cap) {
        size_t live = 0, cap = 16;
        for (i = 0; i < counts->cap; i++)
            live += counts->slots[i].taken && counts->slots[i].count > 0;
        while (cap < 4 * (live + 1)) {
            if (cap > SIZE_MAX / 2 / sizeof *counts->slots)
                return false;
            cap *= 2;
        }
        if (!addr_counts_rebuild(counts, cap))
            return false;
    }
    mask = counts->cap - 1;
    for (i = addr_key_hash(key) & mask; counts->slots[i].taken; i = (i + 1) & mask) {
    }
    counts->slots[i].key = *key;
    counts->slots[i].taken = true;
    counts->slots[i].count = 1;
    counts->used++;
    counts->total++;
    return true;
}

void addr_counts_remove(addr_counts_t *counts, const addr_key_t *key)
{
    struct addr_count_slot *slot = addr_counts_find(counts, key);
    if (slot != NULL && slot->count > 0) {
        slot->count--;
        counts->total--;
    }
    if (counts->total == 0)
        addr_counts_free(counts); /* nothing open: give the memory back */
}

void addr_counts_free(addr_counts_t *counts)
{
    free(counts->slots);
    counts->slots = NULL;
    counts->cap = counts->used = counts->total = 0;
}

admission_t admission_decide(const addr_counts_t *counts, const addr_key_t *key, size_t open_now,
                             size_t max_connections, size_t max_per_address, bool can_evict)
{
    if (addr_counts_get(counts, key) >= max_per_address)
        return ADMIT_NO_PER_ADDRESS;
    if (open_now < max_connections)
        return ADMIT_YES;
    return can_evict ? ADMIT_EVICT : ADMIT_NO_FULL;
}

size_t connections_from_fd_limit(size_t reserve, size_t ceiling, size_t *fd_limit_out)
{
    struct rlimit limit;
    size_t fds = SIZE_MAX;
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < SIZE_MAX)
        fds = (size_t)limit.rlim_cur;
    if (fd_limit_out != NULL)
        *fd_limit_out = fds;
    if (fds <= reserve)
        return 0;
    return fds - reserve < ceiling ? fds - reserve : ceiling;
}

bool parse_positive_count(const char *text, size_t max, size_t *count_out)
{
    size_t value = 0;
    const char *p;
    if (text == NULL || *text == '\0')
        return false;
    for (p = text; *p != '\0'; p++) {
        if (*p < '0' || *p > '9')
            return false;
        size_t digit = (size_t)(*p - '0');
        if (value > max / 10 || digit > max - value * 10)
            return false; /* above max */
        value = value * 10 + digit;
    }
    if (value == 0)
        return false;
    *count_out = value;
    return true;
}

void wipe(void *bytes, size_t len)
{
    volatile uint8_t *p = bytes;
    while (len-- > 0)
        *p++ = 0;
}

/* ------------------------------------------------------------ key files */

/* Reads a whole small file (at most `max` bytes) into `buf`. Returns the
 * length, or -1 with errno set (EFBIG when longer). */
static long read_small_file(int fd, uint8_t *buf, size_t max)
{
    size_t len = 0;
    for (;;) {
        ssize_t n;
        if (len == max) {
            uint8_t extra;
            n = read(fd, &extra, 1);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0)
                return -1;
            if (n > 0) {
                errno = EFBIG;
                return -1;
            }
            return (long)len;
        }
        n = read(fd, buf + len, max - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            return (long)len;
        len += (size_t)n;
    }
}

static bool is_space_byte(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

const char *read_key_file(const char *path, bool secret, size_t len_a, size_t len_b, uint8_t *out,
                          size_t *len_out, char *error, size_t error_size)
{
    uint8_t content[2 * PRIVLINE_IDENTITY_KEYPAIR_LEN + 64];
    char hex[2 * PRIVLINE_IDENTITY_KEYPAIR_LEN + 1];
    const char *what = secret ? "secret file" : "key file";
    struct stat st;
    size_t start = 0, end, i;
    long got;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        snprintf(error, error_size, "cannot open the %s %s: %s", what, path, strerror(errno));
        return error;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(error, error_size, "the %s %s is not a regular file", what, path);
        close(fd);
        return error;
    }
    if (secret && (st.st_mode & 077) != 0) {
        snprintf(error, error_size,
                 "permissions %04o for the secret file %s are too open: it must not be readable by group "
                 "or others (chmod 600 %s)",
                 (unsigned)(st.st_mode & 07777), path, path);
        close(fd);
        return error;
    }
    got = read_small_file(fd, content, sizeof content);
    close(fd);
    if (got < 0) {
        snprintf(error, error_size, "cannot read the %s %s: %s", what, path,
                 errno == EFBIG ? "it is too long to hold a key" : strerror(errno));
        wipe(content, sizeof content);
        return error;
    }
    end = (size_t)got;
    /* Raw: exactly one of the lengths. Checked after hex, which needs
     * twice as many bytes, all of them hex digits. */
    while (start < end && is_space_byte(content[start]))
        start++;
    while (end > start && is_space_byte(content[end - 1]))
        end--;
    for (i = 0; i < 2; i++) {
        size_t len = i == 0 ? len_a : len_b;
        if (end - start == 2 * len && len <= PRIVLINE_IDENTITY_KEYPAIR_LEN) {
            memcpy(hex, content + start, 2 * len);
            hex[2 * len] = '\0';
            if (hex_decode(hex, out, len)) {
                *len_out = len;
                wipe(hex, sizeof hex);
                wipe(content, sizeof content);
                return NULL;
            }
        }
    }
    for (i = 0; i < 2; i++) {
        size_t len = i == 0 ? len_a : len_b;
        if ((size_t)got == len) {
            memcpy(out, content, len);
            *len_out = len;
            wipe(hex, sizeof hex);
            wipe(content, sizeof content);
            return NULL;
        }
    }
    wipe(hex, sizeof hex);
    wipe(content, sizeof content);
    if (len_a == len_b)
        snprintf(error, error_size, "the %s %s holds neither %zu raw bytes nor %zu hex digits", what, path, len_a,
                 2 * len_a);
    else
        snprintf(error, error_size, "the %s %s holds neither %zu or %zu raw bytes nor %zu or %zu hex digits", what,
                 path, len_a, len_b, 2 * len_a, 2 * len_b);
    return error;
}

const char *read_allow_file(const char *path, uint8_t (**keys_out)[PRIVLINE_PUBLIC_KEY_LEN], size_t *count_out,
                            char *error, size_t error_size)
{
    FILE *file = fopen(path, "r");
    uint8_t (*keys)[PRIVLINE_PUBLIC_KEY_LEN] = NULL;
    size_t count = 0, cap = 0, line_no = 0;
    char line[512];

    if (file == NULL) {
        snprintf(error, error_size, "cannot open the allow file %s: %s", path, strerror(errno));
        return error;
    }
    while (fgets(line, sizeof line, file) != NULL) {
        char *p = line, *hash, *stop;
        size_t len = strlen(line);
        line_no++;
        if (len == sizeof line - 1 && line[len - 1] != '\n' && !feof(file)) {
            snprintf(error, error_size, "%s:%zu: the line is too long", path, line_no);
            goto fail;
        }
        hash = strchr(p, '#');
        if (hash != NULL)
            *hash = '\0';
        while (*p != '\0' && is_space_byte((uint8_t)*p))
            p++;
        stop = p + strlen(p);
        while (stop > p && is_space_byte((uint8_t)stop[-1]))
            *--stop = '\0';
        if (*p == '\0')
            continue;
        if (count == cap) {
            size_t new_cap = cap ? 2 * cap : 16;
            void *grown = realloc(keys, new_cap * sizeof *keys);
            if (grown == NULL) {
                snprintf(error, error_size, "%s: out of memory", path);
                goto fail;
            }
            keys = grown;
            cap = new_cap;
        }
        if (!hex_decode(p, keys[count], PRIVLINE_PUBLIC_KEY_LEN)) {
            snprintf(error, error_size, "%s:%zu: not a public key (64 hex digits): %.80s", path, line_no, p);
            goto fail;
        }
        count++;
    }
    if (ferror(file)) {
        snprintf(error, error_size, "cannot read the allow file %s", path);
        goto fail;
    }
    fclose(file);
    *keys_out = keys;
    *count_out = count;
    return NULL;
fail:
    fclose(file);
    free(keys);
    return error;
}

void warn_key_on_command_line(const char *program, const char *option, const char *file_option)
{
    fprintf(stderr,
            "%s: warning: %s puts the key on the command line, where other local users can read it (ps); "
            "use %s\n",
            program, option, file_option);
}
