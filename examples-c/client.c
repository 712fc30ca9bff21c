/*
 * privline-client: sends stdin through a privline/1 (or SHS1) channel and
 * writes what comes back to stdout.
 *
 *   privline-client --connect HOST:PORT --network-key-file FILE --secret-file FILE
 *                   --server-key HEX [--protocol privline1|shs1]
 *
 * --secret-file and --network-key-file read the keys from files (raw or
 * hex; a secret file that group or others may read is refused), as
 * privline-keygen --out writes them. The older --secret HEX and
 * --network-key HEX still work but warn on stderr: other local users can
 * read a command line.
 *
 * Runs the handshake with the server whose public key is --server-key,
 * sends all of stdin as data records, then close, and writes every payload
 * byte the server sends to stdout until the server's close. stdin and the
 * socket are served together by one poll() loop, so a large echo cannot
 * deadlock.
 *
 * --protocol shs1 speaks Scuttlebutt's secret-handshake v1 and box-stream
 * instead (--network-key is then the network identifier, e.g. the main
 * network's d4a1cb88...9ffb): stdin goes out as boxes of at most 4096 bytes,
 * then the goodbye, and the server's goodbye counts as its clean close.
 * --secret takes the 32-byte seed (64 hex digits) or the 64-byte libsodium /
 * Scuttlebutt secret (128 hex digits: seed, then public key).
 *
 * Exit status: 0 after the server's clean close (goodbye); 1 with a one-line
 * reason on stderr on any failure (handshake failed, the server hung up
 * without close, a bad record, the server silent for 10 seconds while we
 * wait for it); 2 for bad arguments.
 */

#define _POSIX_C_SOURCE 200809L

#include "common.h"
#include "privline.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#define READ_CHUNK (64u * 1024u)
#define SILENCE_LIMIT 10.0 /* seconds the server may stay silent while we wait for it */

static const char usage_text[] =
    "usage: privline-client --connect HOST:PORT --network-key-file FILE --secret-file FILE --server-key HEX\n"
    "                       [--protocol privline1|shs1]\n"
    "  --connect HOST:PORT   the server's address\n"
    "  --network-key-file FILE  the 32-byte network key, raw or hex\n"
    "  --secret-file FILE    this client's identity secret (seed or 64-byte secret,\n"
    "                        raw or hex); refused if group or others may read it\n"
    "  --network-key HEX, --secret HEX  the same on the command line (deprecated:\n"
    "                        others can read it; prints a warning)\n"
    "  --network-key HEX     the 32-byte network key, 64 hex digits (for shs1 the\n"
    "                        network identifier)\n"
    "  --secret HEX          this client's identity secret: the 32-byte seed (64 hex\n"
    "                        digits) or the 64-byte libsodium/Scuttlebutt secret,\n"
    "                        seed then public key (128 hex digits)\n"
    "  --server-key HEX      the server's public key, 64 hex digits\n"
    "  --protocol NAME       privline1 (privline/1, the default) or shs1\n"
    "                        (Scuttlebutt secret-handshake v1 and box-stream)\n"
    "Sends stdin, writes the server's answer to stdout; exit 0 after the server's\n"
    "clean close (shs1: goodbye), 1 on any failure, 2 for bad arguments.\n";

/* Everything to free on the way out. */
static struct {
    char *host;
    const char *port;
    uint8_t network_key[PRIVLINE_NETWORK_KEY_LEN];
    uint8_t secret[PRIVLINE_IDENTITY_KEYPAIR_LEN];
    size_t secret_len; /* PRIVLINE_SEED_LEN or PRIVLINE_IDENTITY_KEYPAIR_LEN */
    uint32_t protocol; /* a privline_protocol value */
    uint8_t server_key[PRIVLINE_PUBLIC_KEY_LEN];
    int fd;
    privline_identity *identity;
    privline_handshake *handshake;
    privline_channel *channel;
    buffer_t in, out;
    uint8_t *payload; /* PRIVLINE_OPEN_MAX_OUTPUT_LEN bytes for opened records */
    uint8_t *chunk;   /* READ_CHUNK bytes of stdin */
} g = {NULL, NULL, {0}, {0}, 0, PRIVLINE_PROTOCOL_PRIVLINE1, {0}, -1, NULL, NULL, NULL, {NULL, 0, 0, 0},
       {NULL, 0, 0, 0}, NULL, NULL};

static void cleanup(void)
{
    privline_identity_free(g.identity);
    g.identity = NULL;
    privline_handshake_free(g.handshake);
    g.handshake = NULL;
    privline_channel_free(g.channel);
    g.channel = NULL;
    buffer_free(&g.in);
    buffer_free(&g.out);
    if (g.payload != NULL)
        wipe(g.payload, PRIVLINE_OPEN_MAX_OUTPUT_LEN);
    free(g.payload);
    g.payload = NULL;
    if (g.chunk != NULL)
        wipe(g.chunk, READ_CHUNK);
    free(g.chunk);
    g.chunk = NULL;
    free(g.host);
    g.host = NULL;
    if (g.fd >= 0)
        close(g.fd);
    g.fd = -1;
    wipe(g.secret, sizeof g.secret);
    wipe(g.network_key, sizeof g.network_key);
}

/* Prints "privline-client: <reason>" and exits 1. */
static void fail(const char *format, ...)
{
    va_list args;
    fputs("privline-client: ", stderr);
    va_start(args, format);
    vfprintf(stderr, format, args);
    va_end(args);
    fputc('\n', stderr);
    cleanup();
    exit(EXIT_FAILED);
}

static void usage_error(const char *message, const char *detail)
{
    fprintf(stderr, "privline-client: %s%s%s\n", message, detail ? ": " : "", detail ? detail : "");
    fputs(usage_text, stderr);
    cleanup();
    exit(EXIT_USAGE);
}

static void parse_args(int argc, char **argv)
{
    bool have_connect = false, have_network_key = false, have_secret = false, have_server_key = false;
    bool have_protocol = false;
    int i;

    for (i = 1; i < argc; i++) {
        const char *arg = argv[i], *value;
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            fputs(usage_text, stdout);
            cleanup();
            exit(0);
        }
        if (strcmp(arg, "--connect") != 0 && strcmp(arg, "--network-key") != 0 && strcmp(arg, "--secret") != 0
            && strcmp(arg, "--server-key") != 0 && strcmp(arg, "--protocol") != 0
            && strcmp(arg, "--secret-file") != 0 && strcmp(arg, "--network-key-file") != 0)
            usage_error("unknown argument", arg);
        if (i + 1 >= argc)
            usage_error("missing value after", arg);
        value = argv[++i];
        if (strcmp(arg, "--connect") == 0) {
            if (have_connect || !split_host_port(value, &g.host, &g.port))
                usage_error("--connect must be given once, as HOST:PORT", value);
            have_connect = true;
        } else if (strcmp(arg, "--network-key") == 0) {
            if (have_network_key || !hex_decode(value, g.network_key, sizeof g.network_key))
                usage_error("--network-key must be given once, as 64 hex digits", NULL);
            have_network_key = true;
            warn_key_on_command_line("privline-client", "--network-key", "--network-key-file");
        } else if (strcmp(arg, "--secret") == 0) {
            if (have_secret || !parse_secret(value, g.secret, &g.secret_len))
                usage_error("--secret must be given once, as 64 or 128 hex digits", NULL);
            have_secret = true;
            warn_key_on_command_line("privline-client", "--secret", "--secret-file");
        } else if (strcmp(arg, "--secret-file") == 0) {
            char error[600];
            if (have_secret)
                usage_error("give one of --secret and --secret-file, once", NULL);
            if (read_key_file(value, true, PRIVLINE_SEED_LEN, PRIVLINE_IDENTITY_KEYPAIR_LEN, g.secret, &g.secret_len,
                              error, sizeof error)
                != NULL)
                usage_error(error, NULL);
            have_secret = true;
        } else if (strcmp(arg, "--network-key-file") == 0) {
            char error[600];
            size_t len = 0;
            if (have_network_key)
                usage_error("give one of --network-key and --network-key-file, once", NULL);
            if (read_key_file(value, false, PRIVLINE_NETWORK_KEY_LEN, PRIVLINE_NETWORK_KEY_LEN, g.network_key, &len,
                              error, sizeof error)
                != NULL)
                usage_error(error, NULL);
            have_network_key = true;
        } else if (strcmp(arg, "--protocol") == 0) {
            if (have_protocol || !parse_protocol(value, &g.protocol))
                usage_error("--protocol must be given once, as privline1 or shs1", value);
            have_protocol = true;
        } else {
            if (have_server_key || !hex_decode(value, g.server_key, sizeof g.server_key))
                usage_error("--server-key must be given once, as 64 hex digits", value);
            have_server_key = true;
        }
    }
    if (!have_connect || !have_network_key || !have_secret || !have_server_key)
        usage_error("--connect, --network-key-file (or --network-key), --secret-file (or --secret) and "
                    "--server-key are required",
                    NULL);
}

/* Connects to g.host:g.port within SILENCE_LIMIT seconds; the socket is
 * left non-blocking. */
static void connect_to_server(void)
{
    struct addrinfo *found = NULL, *ai;
    int rc, saved_errno = 0, one = 1;

    rc = resolve_tcp(g.host, g.port, false, &found);
    if (rc != 0)
        fail("cannot resolve %s: %s", g.host, gai_strerror(rc));
    for (ai = found; ai != NULL; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0) {
            saved_errno = errno;
            continue;
        }
        if (!set_nonblocking(fd)) {
            saved_errno = errno;
            close(fd);
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            if (errno == EINPROGRESS || errno == EINTR) {
                struct pollfd pfd;
                double deadline = now_seconds() + SILENCE_LIMIT;
                int ready, error = 0;
                socklen_t error_len = sizeof error;
                pfd.fd = fd;
                pfd.events = POLLOUT;
                do {
                    ready = poll(&pfd, 1, poll_timeout_ms(deadline, now_seconds()));
                } while (ready < 0 && errno == EINTR);
                if (ready == 0)
                    error = ETIMEDOUT;
                else if (ready < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &error_len) != 0)
                    error = errno;
                if (error != 0) {
                    saved_errno = error;
                    close(fd);
                    continue;
                }
            } else {
                saved_errno = errno;
                close(fd);
                continue;
            }
        }
        g.fd = fd;
        break;
    }
    freeaddrinfo(found);
    if (g.fd < 0)
        fail("cannot connect to %s:%s: %s", g.host, g.port, strerror(saved_errno));
    setsockopt(g.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* Writes all of `len` bytes to stdout. */
static void write_stdout(const uint8_t *bytes, size_t len)
{
    while (len > 0) {
        ssize_t n = write(STDOUT_FILENO, bytes, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) { /* someone made stdout non-blocking */
            struct pollfd pfd;
            pfd.fd = STDOUT_FILENO;
            pfd.events = POLLOUT;
            poll(&pfd, 1, -1);
            continue;
        }
        if (n <= 0)
            fail("cannot write to stdout: %s", n < 0 ? strerror(errno) : "nothing written");
        bytes += n;
        len -= (size_t)n;
    }
}

/* Seals a data record (or, with `close_record`, this side's close or
 * goodbye) onto the output. */
static void queue_record(const uint8_t *payload, size_t len, bool close_record)
{
    const char *failure = queue_sealed(&g.out, g.channel, payload, len, close_record);
    if (failure != NULL)
        fail("cannot seal: %s", failure);
}

/* Opens the records that have arrived. Returns true once the server's
 * close has arrived. `*received` adds the payload bytes written out. */
static bool channel_process(size_t *received)
{
    for (;;) {
        size_t consumed = 0, len = PRIVLINE_OPEN_MAX_OUTPUT_LEN;
        privline_record_type type = PRIVLINE_RECORD_NONE;
        privline_result result;

        if (g.in.len == 0)
            return false;
        result = privline_channel_open(g.channel, buffer_head(&g.in), g.in.len, &consumed, g.payload, &len,
                                       &type);
        if (result != PRIVLINE_RESULT_OK)
            fail("bad record from the server: %s", privline_result_str(result));
        buffer_consume(&g.in, consumed);
        switch (type) {
        case PRIVLINE_RECORD_NONE:
            return false;
        case PRIVLINE_RECORD_DATA:
            write_stdout(g.payload, len);
            *received += len;
            break;
        case PRIVLINE_RECORD_CLOSE: /* privline/1 close, or the SHS1 goodbye */
            return true;
        case PRIVLINE_RECORD_KEY_UPDATE:
            break;
        default:
            fail("bad record from the server: unexpected record type %u", (unsigned)type);
        }
    }
}

/* Steps the handshake over the bytes that have arrived. Returns true when
 * it is complete (the channel is then in g.channel). */
static bool handshake_process(void)
{
    uint8_t server_key[PRIVLINE_PUBLIC_KEY_LEN];
    const char *failure = "refused";
    advance_t progress = handshake_advance(&g.handshake, &g.in, &g.out, NULL, server_key, &g.channel, &failure);
    /* A client is never asked to authorize, so it never refuses. */
    if (progress == ADVANCE_FAILED || progress == ADVANCE_REFUSED)
        fail("handshake failed: %s", failure);
    return progress == ADVANCE_DONE;
}

int main(int argc, char **argv)
{
    struct sigaction sa;
    privline_result result;
    bool stdin_eof = false, close_sent = false, server_closed = false;
    size_t sent_payload = 0, received_payload = 0, handshake_received = 0;
    double last_activity;

    parse_args(argc, argv);
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGPIPE, &sa, NULL); /* a closed stdout or socket is an error return, not a signal */

    g.payload = malloc(PRIVLINE_OPEN_MAX_OUTPUT_LEN);
    g.chunk = malloc(READ_CHUNK);
    if (g.payload == NULL || g.chunk == NULL)
        fail("out of memory");

    result = privline_identity_new(g.secret, g.secret_len, &g.identity);
    wipe(g.secret, sizeof g.secret); /* the identity has its own copy */
    if (result == PRIVLINE_RESULT_INVALID_ARGUMENT)
        usage_error("the secret's public key half does not belong to the seed", NULL);
    if (result != PRIVLINE_RESULT_OK)
        fail("cannot make the identity: %s", privline_result_str(result));
    result = privline_handshake_new_client_with_identity(g.protocol, g.network_key, g.identity, g.server_key,
                                                         &g.handshake);
    if (result == PRIVLINE_RESULT_INVALID_SERVER_KEY)
        usage_error("--server-key is not a valid identity public key", NULL);
    if (result != PRIVLINE_RESULT_OK)
        fail("cannot start the handshake: %s", privline_result_str(result));
    /* The handshake holds its own reference to the identity. */
    privline_identity_free(g.identity);
    g.identity = NULL;

    connect_to_server();
    if (handshake_process()) /* writes M1 */
        fail("handshake failed: finished without the server");
    last_activity = now_seconds();

    while (!server_closed) {
        struct pollfd fds[2];
        bool waiting, read_stdin;
        double now;
        int ready;

        /* We wait for the server during the handshake, once everything is
         * sent, and while it owes us an echo; then silence is a failure. */
        waiting = g.channel == NULL || close_sent || received_payload < sent_payload || g.out.len > 0;
        read_stdin = g.channel != NULL && !stdin_eof && g.out.len <= PENDING_OUTPUT_LIMIT;
        fds[0].fd = g.fd;
        fds[0].events = POLLIN | (g.out.len > 0 ? POLLOUT : 0);
        fds[0].revents = 0;
        fds[1].fd = read_stdin ? STDIN_FILENO : -1;
        fds[1].events = POLLIN;
        fds[1].revents = 0;
        ready = poll(fds, 2, waiting ? poll_timeout_ms(last_activity + SILENCE_LIMIT, now_seconds()) : -1);
        if (ready < 0 && errno != EINTR)
            fail("poll: %s", strerror(errno));
        now = now_seconds();
        if (ready <= 0) {
            if (waiting && now >= last_activity + SILENCE_LIMIT)
                fail("the server was silent for %.0f seconds%s", SILENCE_LIMIT,
                     g.channel == NULL ? " during the handshake" : "");
            continue;
        }

        /* From the server. */
        if (fds[0].revents & (POLLIN | POLLERR | POLLHUP)) {
            ssize_t n = buffer_recv(g.fd, &g.in, READ_CHUNK, SIZE_MAX);
            if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                fail("%s: %s", g.channel == NULL ? "handshake failed" : "connection lost", strerror(errno));
            if (n == 0) {
                if (g.channel == NULL && handshake_received == 0)
                    fail("handshake failed: the server hung up without answering (wrong network key?)");
                if (g.channel == NULL)
                    fail("handshake failed: the server hung up after M2 (wrong --server-key, or this client "
                         "is not allowed)");
                /* Records that arrived whole were opened already. */
                fail("truncated: the server hung up without %s", close_name(g.protocol));
            }
            if (n > 0) {
                last_activity = now;
                if (g.channel == NULL)
                    handshake_received += (size_t)n;
                if (g.channel == NULL && handshake_process()) {
                    /* Records right after M4 belong to the channel. */
                }
                if (g.channel != NULL)
                    server_closed = channel_process(&received_payload);
            }
        }

        /* From stdin. */
        if (!server_closed && read_stdin && (fds[1].revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL))) {
            ssize_t n = (fds[1].revents & POLLNVAL) ? 0 : read(STDIN_FILENO, g.chunk, READ_CHUNK);
            if (n < 0 && errno != EINTR && errno != EAGAIN)
                fail("cannot read stdin: %s", strerror(errno));
            if (n > 0) {
                queue_record(g.chunk, (size_t)n, false);
                sent_payload += (size_t)n;
            } else if (n == 0) {
                stdin_eof = true;
                queue_record(NULL, 0, true);
                close_sent = true;
            }
        }

        /* To the server. */
        if (!server_closed && g.out.len > 0) {
            ssize_t n = buffer_send(g.fd, &g.out);
            if (n < 0)
                fail("connection lost: %s", strerror(errno));
            if (n > 0)
                last_activity = now;
        }
    }

    cleanup();
    return 0;
}
