/* common.c: helpers shared by the privline example peers; see common.h. */

#define _POSIX_C_SOURCE 200809L

#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

void wipe(void *bytes, size_t len)
{
    volatile uint8_t *p = bytes;
    while (len-- > 0)
        *p++ = 0;
}
