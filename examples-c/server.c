/*
 * privline-server: a privline/1 (or SHS1) echo server.
 *
 *   privline-server --listen HOST:PORT --network-key-file FILE --secret-file FILE
 *                   [--protocol privline1|shs1] [--allow PUBHEX]... [--allow-file FILE] [--once]
 *                   [--handshake-timeout SECONDS] [--idle-timeout SECONDS]
 *                   [--max-connections N] [--max-per-ip N]
 *
 * One thread serves every client with a poll() event loop over non-blocking
 * sockets, the way a C server would integrate privline. For each client it
 * runs the handshake (accepting only --allow keys if any are given), then
 * echoes each data record's payload back as a data record; when the client
 * sends close it answers with close and ends the connection.
 *
 * --protocol shs1 speaks Scuttlebutt's secret-handshake v1 and box-stream
 * instead (--network-key is then the network identifier, e.g. the main
 * network's d4a1cb88...9ffb): each box is echoed as boxes of at most 4096
 * bytes, and the client's goodbye is answered with a goodbye, exactly like
 * close. --secret takes the 32-byte seed (64 hex digits) or the 64-byte
 * libsodium / Scuttlebutt secret (128 hex digits: seed, then public key).
 * The identity is made once at start-up (privline_identity_new) and every
 * handshake is created from it.
 *
 * Keys from files: --secret-file (the seed or the 64-byte secret, raw or
 * hex; refused if group or others may read it) and --network-key-file (32
 * bytes, raw or hex), as privline-keygen --out writes them. --allow-file
 * lists accepted client keys, one per line ('#' comments); SIGHUP reloads
 * it (a reload that does not parse keeps the old list and says so). The
 * older --secret HEX and --network-key HEX still work but warn on stderr:
 * other local users can read a command line.
 *
 * stderr: "listening HOST:PORT" once bound (the real port, so port 0 works),
 * "accepted <client public hex>" per accepted client, and one line with the
 * reason per failed, refused or evicted connection ("refused ...",
 * "failed ...", "evicted ...").
 *
 * Per PROTOCOL.md, a failed or refused handshake gets no answer: its
 * library state is freed at once, but the socket stays open and silent (its
 * input read and discarded) until the handshake deadline, --handshake-timeout
 * seconds after accept (default 10), so the moment of the hang-up tells the
 * client nothing. A handshake not finished by the deadline is dropped.
 *
 * Limits, so that no client, and no crowd of clients, can take the server
 * away from the others:
 *
 * - Idle: a connection in any state (handshake, failed and silent, echoing,
 *   closing) that has received and sent no byte for --idle-timeout seconds
 *   (default 300) is closed; the handshake deadline applies as well. A
 *   silent (failed) handshake is closed by exactly the same two rules as a
 *   running one, so the hang-up still tells the client nothing.
 * - Connections: at most --max-connections at once (default: the soft
 *   descriptor limit, ulimit -n, minus FD_RESERVE (16), at most 65536; a
 *   larger value is refused at start-up, so the server does not run out of
 *   descriptors). When full, a new connection is taken by closing the
 *   oldest one that has not finished its handshake ("evicted ..."): it has
 *   proven nothing, so a flood of connections that never finish their
 *   handshake cannot lock out or delay a genuine client. If every
 *   connection is established, the new one is closed at once ("refused
 *   ...").
 * - Per source address: at most --max-per-ip at once (default 64) from one
 *   IPv4 address or IPv6 /64; more are closed at once, before any privline
 *   byte ("refused ..."), and evict nobody. The rules live in common.c
 *   (admission_decide, addr_counts_*) for other servers to share.
 * - Descriptors: should accept() still fail with EMFILE or ENFILE, a spare
 *   descriptor is given up to accept that connection and close it at once,
 *   so the loop neither spins nor leaves the client waiting.
 * - Memory: a connection holds at most IN_LIMIT (128 KiB) of input and
 *   OUT_LIMIT (128 KiB) of output: while the echo of one more record might
 *   not fit, the server neither opens records nor reads from that client. Add
 *   the library's state (about 1 KiB) and the connection's own entry: at most
 *   260 KiB per connection, however the client behaves. Buffers are freed
 *   whenever they are empty, so a client that stops sending, or reads
 *   again, does not keep its peak; one that never reads is closed after
 *   --idle-timeout once nothing moves.
 *
 * --once: serve one connection, then exit 0 if it completed the handshake
 * and closed cleanly, 1 otherwise.
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#define READ_CHUNK (64u * 1024u)
#define DEFAULT_HANDSHAKE_TIMEOUT 10.0
#define DEFAULT_IDLE_TIMEOUT 300.0
#define DEFAULT_MAX_PER_IP 64
/* Descriptors kept for everything but client sockets (stdio, the listener,
 * the signal pipe, the spare descriptor for EMFILE, the library, tools). */
#define FD_RESERVE 16
/* The default --max-connections is at most this, whatever ulimit -n says. */
#define MAX_CONNECTIONS_DEFAULT_CEILING 65536
#define MAX_COUNT_OPTION 1000000
/* What one connection may hold in its buffers. Input: a partial record
 * (at most PRIVLINE_RECORD_MAX_LEN, 65537 bytes) plus one READ_CHUNK, so a
 * record always fits. Output: a record is opened only while its largest
 * possible echo still fits under OUT_LIMIT. Both buffers grow by doubling
 * from 4 KiB and never past their limit (128 KiB each), and are freed
 * whenever they are empty. */
#define IN_LIMIT (128u * 1024u)
#define OUT_LIMIT (128u * 1024u)
/* Accepts per loop round, so a flood of connections cannot starve the
 * connections already open. */
#define ACCEPTS_PER_ROUND 64

static const char usage_text[] =
    "usage: privline-server --listen HOST:PORT --network-key-file FILE --secret-file FILE\n"
    "                       [--protocol privline1|shs1] [--allow PUBHEX]... [--allow-file FILE] [--once]\n"
    "                       [--handshake-timeout SECONDS] [--idle-timeout SECONDS]\n"
    "                       [--max-connections N] [--max-per-ip N]\n"
    "  --listen HOST:PORT        address to listen on (port 0: any free port)\n"
    "  --network-key-file FILE   the 32-byte network key, raw or 64 hex digits (for\n"
    "                            shs1 the network identifier)\n"
    "  --secret-file FILE        the server's identity secret: the 32-byte seed or the\n"
    "                            64-byte libsodium/Scuttlebutt secret (seed then public\n"
    "                            key), raw or hex (privline-keygen --out writes one);\n"
    "                            refused if group or others may read it\n"
    "  --network-key HEX, --secret HEX   the same on the command line (deprecated:\n"
    "                            others can read it; prints a warning)\n"
    "  --protocol NAME           privline1 (privline/1, the default) or shs1\n"
    "                            (Scuttlebutt secret-handshake v1 and box-stream)\n"
    "  --allow PUBHEX            accept only these client public keys (repeatable;\n"
    "                            without any, or --allow-file, every client is accepted)\n"
    "  --allow-file FILE         accept only the client keys listed in FILE, one per\n"
    "                            line ('#' comments); SIGHUP reloads it\n"
    "  --once                    exit after the first connection: 0 if it completed\n"
    "                            the handshake and a clean close, 1 otherwise\n"
    "  --handshake-timeout SECS  handshake deadline from accept (default 10)\n"
    "  --idle-timeout SECS       close a connection in any state (handshake, echoing,\n"
    "                            closing) after this long without a byte received\n"
    "                            or sent (default 300)\n"
    "  --max-connections N       connections held at once (default: ulimit -n minus 16,\n"
    "                            at most 65536; more than that is an error). When\n"
    "                            full, the oldest connection still in its handshake\n"
    "                            is closed to take the new one; if none is, the new\n"
    "                            one is closed at once\n"
    "  --max-per-ip N            connections held at once from one IPv4 address or\n"
    "                            IPv6 /64 (default 64); more are closed at once,\n"
    "                            unanswered\n"
    "Memory: each connection holds at most 128 KiB of input, 128 KiB of output\n"
    "waiting for a client that does not read, and the library's state (about 1 KiB),\n"
    "so at most 260 KiB; buffers are freed whenever they are empty.\n";

typedef enum {
    CONN_HANDSHAKE, /* handshake running */
    CONN_CHANNEL,   /* echoing */
    CONN_CLOSING,   /* close sent: flush, then hang up */
    CONN_SILENT,    /* handshake failed: wait silently for the deadline */
    CONN_DONE       /* to be removed */
} conn_state;

typedef struct {
    int fd;
    conn_state state;
    char addr[96];       /* the client's address, for messages */
    double deadline;     /* accept time + handshake timeout */
    double accepted_at;  /* when accepted: the oldest handshake is evicted first */
    double last_active;  /* when a byte was last received or sent */
    addr_key_t key;      /* the source address, for --max-per-ip */
    privline_handshake *handshake;
    privline_channel *channel;
    buffer_t in;         /* received, not yet processed */
    buffer_t out;        /* to send */
    bool peer_eof;       /* the client's half of the stream ended */
    bool clean;          /* handshake done, close exchanged */
} conn_t;

typedef struct {
    uint8_t network_key[PRIVLINE_NETWORK_KEY_LEN];
    uint8_t secret[PRIVLINE_IDENTITY_KEYPAIR_LEN];
    size_t secret_len; /* PRIVLINE_SEED_LEN or PRIVLINE_IDENTITY_KEYPAIR_LEN */
    uint32_t protocol; /* a privline_protocol value */
    uint8_t (*allow)[PRIVLINE_PUBLIC_KEY_LEN]; /* the --allow keys, then the --allow-file ones */
    size_t allow_count;
    size_t allow_arg_count; /* how many came from --allow */
    const char *allow_file;
    double handshake_timeout;
    double idle_timeout;
    size_t max_connections; /* 0 until set from the option or ulimit -n */
    size_t max_per_ip;
    bool once;
} config_t;

static config_t config;
static privline_identity *identity; /* made once from config.secret */
static char *listen_host; /* from --listen; freed on every exit path */
static const char *listen_port;
static conn_t **conns;
static size_t conn_count, conn_cap;
static size_t open_count;         /* connections whose socket is open */
static addr_counts_t addr_counts; /* open connections per source address */
static double loop_now;           /* now_seconds() after the last poll() */
static int listen_fd = -1;
static int spare_fd = -1;         /* given up to accept (and close) on EMFILE */
static int signal_pipe[2] = {-1, -1};
static uint8_t scratch[PRIVLINE_OPEN_MAX_OUTPUT_LEN]; /* opened payloads */

static void on_signal(int signo)
{
    int saved = errno;
    unsigned char byte = (unsigned char)signo;
    if (write(signal_pipe[1], &byte, 1) < 0) {
        /* the pipe is full: a wakeup is already pending */
    }
    errno = saved;
}

static void usage_error(const char *message, const char *detail)
{
    if (message != NULL)
        fprintf(stderr, "privline-server: %s%s%s\n", message, detail ? ": " : "", detail ? detail : "");
    fputs(usage_text, stderr);
    free(config.allow);
    free(listen_host);
    wipe(config.secret, sizeof config.secret);
    exit(EXIT_USAGE);
}

static const char *option_value(int argc, char **argv, int *i)
{
    if (*i + 1 >= argc)
        usage_error("missing value after", argv[*i]);
    return argv[++*i];
}

static void set_connection_limit(bool given);

/* Reads --allow-file and puts its keys after the --allow ones. At start-up
 * a file that does not parse is a usage error; on SIGHUP the old list is
 * kept, with a line on stderr. Returns whether the list was replaced. */
static bool load_allow_file(bool at_start)
{
    uint8_t (*keys)[PRIVLINE_PUBLIC_KEY_LEN] = NULL, (*merged)[PRIVLINE_PUBLIC_KEY_LEN];
    size_t count = 0;
    char error[600];
    if (read_allow_file(config.allow_file, &keys, &count, error, sizeof error) != NULL) {
        if (at_start)
            usage_error(error, NULL);
        fprintf(stderr, "privline-server: reloading the allow file failed, keeping the old list (%zu keys): %s\n",
                config.allow_count - config.allow_arg_count, error);
        return false;
    }
    merged = realloc(config.allow, (config.allow_arg_count + count + 1) * sizeof *merged);
    if (merged == NULL) {
        free(keys);
        fprintf(stderr, "privline-server: reloading the allow file failed, keeping the old list: out of memory\n");
        return false;
    }
    if (count > 0)
        memcpy(merged + config.allow_arg_count, keys, count * sizeof *merged);
    free(keys);
    config.allow = merged;
    config.allow_count = config.allow_arg_count + count;
    fprintf(stderr, "%s %zu allowed keys from %s\n", at_start ? "loaded" : "reloaded", count, config.allow_file);
    return true;
}

static void parse_args(int argc, char **argv)
{
    bool have_listen = false, have_network_key = false, have_secret = false, have_timeout = false;
    bool have_protocol = false, have_idle = false, have_max = false, have_per_ip = false;
    int i;

    config.handshake_timeout = DEFAULT_HANDSHAKE_TIMEOUT;
    config.idle_timeout = DEFAULT_IDLE_TIMEOUT;
    config.max_per_ip = DEFAULT_MAX_PER_IP;
    config.protocol = PRIVLINE_PROTOCOL_PRIVLINE1;
    for (i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            fputs(usage_text, stdout);
            free(config.allow);
            free(listen_host);
            wipe(config.secret, sizeof config.secret);
            exit(0);
        } else if (strcmp(arg, "--listen") == 0) {
            const char *value = option_value(argc, argv, &i);
            if (have_listen)
                usage_error("--listen given twice", NULL);
            if (!split_host_port(value, &listen_host, &listen_port))
                usage_error("--listen must be HOST:PORT", value);
            have_listen = true;
        } else if (strcmp(arg, "--network-key") == 0) {
            const char *value = option_value(argc, argv, &i);
            if (have_network_key || !hex_decode(value, config.network_key, sizeof config.network_key))
                usage_error("--network-key must be given once, as 64 hex digits", NULL);
            have_network_key = true;
            warn_key_on_command_line("privline-server", "--network-key", "--network-key-file");
        } else if (strcmp(arg, "--secret") == 0) {
            const char *value = option_value(argc, argv, &i);
            if (have_secret || !parse_secret(value, config.secret, &config.secret_len))
                usage_error("--secret must be given once, as 64 or 128 hex digits", NULL);
            have_secret = true;
            warn_key_on_command_line("privline-server", "--secret", "--secret-file");
        } else if (strcmp(arg, "--secret-file") == 0) {
            const char *value = option_value(argc, argv, &i);
            char error[600];
            if (have_secret)
                usage_error("give one of --secret and --secret-file, once", NULL);
            if (read_key_file(value, true, PRIVLINE_SEED_LEN, PRIVLINE_IDENTITY_KEYPAIR_LEN, config.secret,
                              &config.secret_len, error, sizeof error)
                != NULL)
                usage_error(error, NULL);
            have_secret = true;
        } else if (strcmp(arg, "--network-key-file") == 0) {
            const char *value = option_value(argc, argv, &i);
            char error[600];
            size_t len = 0;
            if (have_network_key)
                usage_error("give one of --network-key and --network-key-file, once", NULL);
            if (read_key_file(value, false, PRIVLINE_NETWORK_KEY_LEN, PRIVLINE_NETWORK_KEY_LEN, config.network_key,
                              &len, error, sizeof error)
                != NULL)
                usage_error(error, NULL);
            have_network_key = true;
        } else if (strcmp(arg, "--allow-file") == 0) {
            if (config.allow_file != NULL)
                usage_error("--allow-file given twice", NULL);
            config.allow_file = option_value(argc, argv, &i);
        } else if (strcmp(arg, "--protocol") == 0) {
            const char *value = option_value(argc, argv, &i);
            if (have_protocol || !parse_protocol(value, &config.protocol))
                usage_error("--protocol must be given once, as privline1 or shs1", value);
            have_protocol = true;
        } else if (strcmp(arg, "--allow") == 0) {
            const char *value = option_value(argc, argv, &i);
            void *grown = realloc(config.allow, (config.allow_count + 1) * sizeof *config.allow);
            if (grown == NULL)
                usage_error("out of memory", NULL);
            config.allow = grown;
            if (!hex_decode(value, config.allow[config.allow_count], PRIVLINE_PUBLIC_KEY_LEN))
                usage_error("--allow must be a public key, 64 hex digits", value);
            config.allow_count++;
            config.allow_arg_count++;
        } else if (strcmp(arg, "--once") == 0) {
            config.once = true;
        } else if (strcmp(arg, "--handshake-timeout") == 0) {
            const char *value = option_value(argc, argv, &i);
            if (have_timeout || !parse_seconds(value, &config.handshake_timeout))
                usage_error("--handshake-timeout must be given once, as a positive number of seconds", value);
            have_timeout = true;
        } else if (strcmp(arg, "--idle-timeout") == 0) {
            const char *value = option_value(argc, argv, &i);
            if (have_idle || !parse_seconds(value, &config.idle_timeout))
                usage_error("--idle-timeout must be given once, as a positive number of seconds", value);
            have_idle = true;
        } else if (strcmp(arg, "--max-connections") == 0) {
            const char *value = option_value(argc, argv, &i);
            if (have_max || !parse_positive_count(value, MAX_COUNT_OPTION, &config.max_connections))
                usage_error("--max-connections must be given once, as a whole number from 1 to 1000000", value);
            have_max = true;
        } else if (strcmp(arg, "--max-per-ip") == 0) {
            const char *value = option_value(argc, argv, &i);
            if (have_per_ip || !parse_positive_count(value, MAX_COUNT_OPTION, &config.max_per_ip))
                usage_error("--max-per-ip must be given once, as a whole number from 1 to 1000000", value);
            have_per_ip = true;
        } else {
            usage_error("unknown argument", arg);
        }
    }
    if (!have_listen || !have_network_key || !have_secret)
        usage_error("--listen, --network-key-file (or --network-key) and --secret-file (or --secret) are required",
                    NULL);
    set_connection_limit(have_max);
    if (config.allow_file != NULL && !load_allow_file(true))
        exit(EXIT_USAGE);
}

/* Checks --max-connections against the descriptor limit, or derives it
 * from that limit: the server must never run out of descriptors. */
static void set_connection_limit(bool given)
{
    size_t fd_limit = 0;
    size_t room = connections_from_fd_limit(FD_RESERVE, SIZE_MAX, &fd_limit);
    char detail[160];
    if (room == 0) {
        snprintf(detail, sizeof detail, "ulimit -n is %zu; raise it above %d", fd_limit, FD_RESERVE);
        usage_error("too few file descriptors to serve anybody", detail);
    }
    if (!given) {
        config.max_connections = room < MAX_CONNECTIONS_DEFAULT_CEILING ? room : MAX_CONNECTIONS_DEFAULT_CEILING;
    } else if (config.max_connections > room) {
        snprintf(detail, sizeof detail, "%zu given, but ulimit -n (%zu) allows at most %zu (it minus %d)",
                 config.max_connections, fd_limit, room, FD_RESERVE);
        usage_error("--max-connections is above what the descriptor limit allows", detail);
    }
}

/* Makes the server's identity from --secret, once; the secret is wiped. */
static void make_identity(void)
{
    privline_result result = privline_identity_new(config.secret, config.secret_len, &identity);
    wipe(config.secret, sizeof config.secret);
    if (result == PRIVLINE_RESULT_INVALID_ARGUMENT)
        usage_error("the secret's public key half does not belong to the seed", NULL);
    if (result != PRIVLINE_RESULT_OK) {
        fprintf(stderr, "privline-server: cannot make the identity: %s\n", privline_result_str(result));
        free(config.allow);
        free(listen_host);
        exit(EXIT_FAILED);
    }
}

/* Binds and listens; prints "listening HOST:PORT". Returns false on failure
 * (after printing why). */
static bool start_listening(const char *host, const char *port)
{
    struct addrinfo *found = NULL, *ai;
    struct sockaddr_storage bound;
    socklen_t bound_len = sizeof bound;
    char bound_host[64], bound_port[16];
    int rc, fd = -1, one = 1, saved_errno = 0;

    rc = resolve_tcp(host, port, true, &found);
    if (rc != 0) {
        fprintf(stderr, "privline-server: cannot resolve %s: %s\n", host, gai_strerror(rc));
        return false;
    }
    for (ai = found; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0) {
            saved_errno = errno;
            continue;
        }
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, SOMAXCONN) == 0)
            break;
        saved_errno = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(found);
    if (fd < 0) {
        fprintf(stderr, "privline-server: cannot listen on %s:%s: %s\n", host, port, strerror(saved_errno));
        return false;
    }
    if (!set_nonblocking(fd) || fcntl(fd, F_SETFD, FD_CLOEXEC) != 0
        || getsockname(fd, (struct sockaddr *)&bound, &bound_len) != 0
        || getnameinfo((struct sockaddr *)&bound, bound_len, bound_host, sizeof bound_host, bound_port,
                       sizeof bound_port, NI_NUMERICHOST | NI_NUMERICSERV)
               != 0) {
        fprintf(stderr, "privline-server: cannot set up the listening socket: %s\n", strerror(errno));
        close(fd);
        return false;
    }
    listen_fd = fd;
    if (strchr(bound_host, ':') != NULL)
        fprintf(stderr, "listening [%s]:%s\n", bound_host, bound_port);
    else
        fprintf(stderr, "listening %s:%s\n", bound_host, bound_port);
    fflush(stderr);
    return true;
}

/* Ends the connection now: frees its library state and buffers, closes the
 * socket. The entry is removed from the table by the main loop. */
static void conn_finish(conn_t *conn)
{
    privline_handshake_free(conn->handshake);
    conn->handshake = NULL;
    privline_channel_free(conn->channel);
    conn->channel = NULL;
    buffer_free(&conn->in);
    buffer_free(&conn->out);
    if (conn->fd >= 0) {
        close(conn->fd);
        open_count--;
        addr_counts_remove(&addr_counts, &conn->key);
    }
    conn->fd = -1;
    conn->state = CONN_DONE;
}

/* Frees the buffers that are empty: a connection that waits holds no
 * buffer memory, and one that was busy does not keep its peak. */
static void conn_trim(conn_t *conn)
{
    if (conn->in.len == 0 && conn->in.data != NULL)
        buffer_free(&conn->in);
    if (conn->out.len == 0 && conn->out.data != NULL)
        buffer_free(&conn->out);
}

/* Whether the largest echo of one record still fits under OUT_LIMIT: only
 * then is the next record opened. */
static bool out_has_room(const conn_t *conn)
{
    size_t largest = privline_channel_sealed_len(conn->channel, PRIVLINE_OPEN_MAX_OUTPUT_LEN, 0);
    return largest != SIZE_MAX && conn->out.len + largest <= OUT_LIMIT;
}

/* A failure after the handshake (or of the socket): one line, hang up now. */
static void conn_fail(conn_t *conn, const char *reason, const char *detail)
{
    fprintf(stderr, "failed %s: %s%s%s\n", conn->addr, reason, detail ? ": " : "", detail ? detail : "");
    conn_finish(conn);
}

/* A failed handshake: one line now, the library state freed now, the socket
 * silent until the deadline. What was already queued (M2) still goes out:
 * it was sent before the failure. */
static void conn_go_silent(conn_t *conn)
{
    privline_handshake_free(conn->handshake);
    conn->handshake = NULL;
    buffer_free(&conn->in);
    conn->state = CONN_SILENT;
}

static void handshake_fail(conn_t *conn, const char *reason, const char *detail)
{
    fprintf(stderr, "failed %s: %s%s%s\n", conn->addr, reason, detail ? ": " : "", detail ? detail : "");
    conn_go_silent(conn);
}

static bool client_allowed(const uint8_t *key)
{
    size_t i;
    if (config.allow_count == 0 && config.allow_file == NULL)
        return true;
    for (i = 0; i < config.allow_count; i++)
        if (memcmp(config.allow[i], key, PRIVLINE_PUBLIC_KEY_LEN) == 0)
            return true;
    return false;
}

/* Opens the records that have arrived and queues the echoes, while the
 * output backlog allows. */
static void channel_process(conn_t *conn)
{
    while (conn->state == CONN_CHANNEL && out_has_room(conn)) {
        size_t consumed = 0, len = sizeof scratch;
        privline_record_type type = PRIVLINE_RECORD_NONE;
        privline_result result;
        const char *failure;

        if (conn->in.len == 0) {
            type = PRIVLINE_RECORD_NONE;
        } else {
            result = privline_channel_open(conn->channel, buffer_head(&conn->in), conn->in.len, &consumed,
                                           scratch, &len, &type);
            if (result != PRIVLINE_RESULT_OK) {
                conn_fail(conn, "bad record", privline_result_str(result));
                return;
            }
            buffer_consume(&conn->in, consumed);
        }
        switch (type) {
        case PRIVLINE_RECORD_NONE: /* need more input */
            if (conn->peer_eof)
                conn_fail(conn, "truncated",
                          config.protocol == PRIVLINE_PROTOCOL_SHS1 ? "the client hung up without goodbye"
                                                                    : "the client hung up without close");
            return;
        case PRIVLINE_RECORD_DATA:
            failure = queue_sealed(&conn->out, conn->channel, scratch, len, false);
            wipe(scratch, len);
            if (failure != NULL) {
                conn_fail(conn, "cannot seal the echo", failure);
                return;
            }
            break;
        case PRIVLINE_RECORD_CLOSE: /* privline/1 close, or the SHS1 goodbye */
            failure = queue_sealed(&conn->out, conn->channel, NULL, 0, true);
            if (failure != NULL) {
                conn_fail(conn, config.protocol == PRIVLINE_PROTOCOL_SHS1 ? "cannot seal the goodbye"
                                                                          : "cannot seal close",
                          failure);
                return;
            }
            /* Anything after the client's close would be an error; it sends
             * nothing more, so stop reading and just flush. */
            buffer_free(&conn->in);
            privline_channel_free(conn->channel);
            conn->channel = NULL;
            conn->clean = true;
            conn->state = CONN_CLOSING;
            return;
        case PRIVLINE_RECORD_KEY_UPDATE:
            break;
        default:
            conn_fail(conn, "bad record", "unexpected record type");
            return;
        }
    }
}

/* Steps the handshake over the bytes that have arrived. */
static void handshake_process(conn_t *conn)
{
    uint8_t key[PRIVLINE_PUBLIC_KEY_LEN];
    char key_hex[2 * PRIVLINE_PUBLIC_KEY_LEN + 1];
    const char *failure = NULL;

    switch (handshake_advance(&conn->handshake, &conn->in, &conn->out, client_allowed, key, &conn->channel,
                              &failure)) {
    case ADVANCE_WAITING:
        return;
    case ADVANCE_FAILED:
        handshake_fail(conn, "handshake", failure);
        return;
    case ADVANCE_REFUSED:
        hex_encode(key, sizeof key, key_hex);
        fprintf(stderr, "refused %s (%s): not in the --allow list\n", key_hex, conn->addr);
        conn_go_silent(conn);
        return;
    case ADVANCE_DONE:
        hex_encode(key, sizeof key, key_hex);
        fprintf(stderr, "accepted %s\n", key_hex);
        conn->state = CONN_CHANNEL;
        /* Bytes after M3 in the same read belong to the channel. */
        channel_process(conn);
        return;
    }
}

/* Reads what the socket has (one chunk) and processes it. */
static void conn_read(conn_t *conn)
{
    ssize_t n;

    if (conn->state == CONN_SILENT) {
        n = discard_input(conn->fd);
        if (n > 0)
            conn->last_active = loop_now;
        if (n < 0)
            conn->peer_eof = true;
        return;
    }
    /* At IN_LIMIT it is not polled for, and reads nothing: a record is
     * never that long. */
    n = buffer_recv(conn->fd, &conn->in, READ_CHUNK, IN_LIMIT);
    if (n < 0) {
        if (try_again_later(errno))
            return;
        if (conn->state == CONN_HANDSHAKE)
            handshake_fail(conn, "connection error during the handshake", strerror(errno));
        else
            conn_fail(conn, "connection error", strerror(errno));
        return;
    }
    if (n == 0) {
        conn->peer_eof = true;
        if (conn->state == CONN_HANDSHAKE)
            handshake_fail(conn, "handshake", "the client hung up during the handshake");
        else if (conn->state == CONN_CHANNEL)
            channel_process(conn); /* whatever is left, then: truncated */
        return;
    }
    conn->last_active = loop_now;
    if (conn->state == CONN_HANDSHAKE)
        handshake_process(conn);
    else if (conn->state == CONN_CHANNEL)
        channel_process(conn);
}

/* Sends what is queued, as far as the socket takes it. */
static void conn_write(conn_t *conn)
{
    ssize_t sent = buffer_send(conn->fd, &conn->out);
    if (sent < 0) {
        if (conn->state == CONN_SILENT) {
            buffer_free(&conn->out); /* the client is gone; still wait */
            conn->peer_eof = true;
        } else {
            conn_fail(conn, "connection error", strerror(errno));
        }
        return;
    }
    if (sent > 0)
        conn->last_active = loop_now;
    if (conn->state == CONN_CHANNEL && out_has_room(conn) && (conn->in.len > 0 || conn->peer_eof))
        channel_process(conn); /* records held back by the output backlog */
    if (conn->state == CONN_CLOSING && conn->out.len == 0) {
        shutdown(conn->fd, SHUT_WR);
        conn_finish(conn);
    }
}

/* The events to poll for (0: not polled now). */
static short conn_events(const conn_t *conn)
{
    short events = conn->out.len > 0 ? POLLOUT : 0;
    switch (conn->state) {
    case CONN_HANDSHAKE:
        return conn->in.len < IN_LIMIT ? events | POLLIN : events;
    case CONN_CHANNEL:
        if (!conn->peer_eof && out_has_room(conn) && conn->in.len < IN_LIMIT)
            events |= POLLIN;
        return events;
    case CONN_SILENT:
        if (!conn->peer_eof)
            events |= POLLIN;
        return events;
    default:
        return events;
    }
}

static bool add_conn(conn_t *conn)
{
    if (conn_count == conn_cap) {
        size_t cap = conn_cap ? 2 * conn_cap : 16;
        conn_t **grown = realloc(conns, cap * sizeof *grown);
        if (grown == NULL)
            return false;
        conns = grown;
        conn_cap = cap;
    }
    conns[conn_count++] = conn;
    return true;
}

/* The connection to give way when the server is full: the oldest one that
 * has not finished its handshake (running, or failed and silent); NULL if
 * every connection is established or closing. */
static conn_t *oldest_unfinished(void)
{
    conn_t *oldest = NULL;
    size_t i;
    for (i = 0; i < conn_count; i++) {
        conn_t *conn = conns[i];
        if ((conn->state == CONN_HANDSHAKE || conn->state == CONN_SILENT)
            && (oldest == NULL || conn->accepted_at < oldest->accepted_at))
            oldest = conn;
    }
    return oldest;
}

/* accept() failed with EMFILE or ENFILE: give up the spare descriptor,
 * accept the waiting connection with it and close that at once, then take
 * the spare back. So the listener does not stay readable (the loop does not
 * spin) and the client is not left waiting. Returns false if that did not
 * work (the caller then pauses accepting). */
static bool refuse_without_descriptors(int accept_errno)
{
    struct sockaddr_storage sa;
    socklen_t sa_len = sizeof sa;
    char addr[96];
    int fd;
    if (spare_fd < 0)
        return false;
    close(spare_fd);
    fd = accept(listen_fd, (struct sockaddr *)&sa, &sa_len);
    if (fd >= 0) {
        describe_sockaddr((struct sockaddr *)&sa, sa_len, addr, sizeof addr);
        fprintf(stderr, "refused %s: out of file descriptors (%s)\n", addr, strerror(accept_errno));
        close(fd);
    }
    spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    return fd >= 0 && spare_fd >= 0;
}

/* Accepts waiting connections (at most ACCEPTS_PER_ROUND), applying
 * --max-per-ip and --max-connections. Returns the number taken. */
static size_t accept_clients(double now, bool *out_of_fds)
{
    size_t accepted = 0, tries;
    for (tries = 0; tries < ACCEPTS_PER_ROUND; tries++) {
        struct sockaddr_storage sa;
        socklen_t sa_len = sizeof sa;
        privline_result result;
        conn_t *conn, *evict = NULL;
        addr_key_t key;
        char addr[96], key_text[64];
        int one = 1;
        int fd = accept(listen_fd, (struct sockaddr *)&sa, &sa_len);
        if (fd < 0) {
            int saved = errno;
            if (saved == EINTR || saved == ECONNABORTED)
                continue;
            if ((saved == EMFILE || saved == ENFILE) && refuse_without_descriptors(saved))
                continue;
            if (saved == EMFILE || saved == ENFILE || saved == ENOBUFS || saved == ENOMEM) {
                fprintf(stderr, "privline-server: accept: %s\n", strerror(saved));
                *out_of_fds = true;
            }
            return accepted;
        }
        describe_sockaddr((struct sockaddr *)&sa, sa_len, addr, sizeof addr);
        addr_key_from_sockaddr((struct sockaddr *)&sa, &key);
        if (!config.once) {
            switch (admission_decide(&addr_counts, &key, open_count, config.max_connections, config.max_per_ip,
                                     (evict = oldest_unfinished()) != NULL)) {
            case ADMIT_YES:
                evict = NULL;
                break;
            case ADMIT_EVICT:
                fprintf(stderr, "evicted %s: handshake unfinished after %.1f s, to take %s "
                                "(--max-connections %zu reached)\n",
                        evict->addr, now - evict->accepted_at, addr, config.max_connections);
                break;
            case ADMIT_NO_PER_ADDRESS:
                addr_key_format(&key, key_text, sizeof key_text);
                fprintf(stderr, "refused %s: %zu connections from %s already (--max-per-ip %zu)\n", addr,
                        addr_counts_get(&addr_counts, &key), key_text, config.max_per_ip);
                close(fd);
                continue;
            case ADMIT_NO_FULL:
                fprintf(stderr, "refused %s: %zu connections, none in its handshake (--max-connections %zu)\n",
                        addr, open_count, config.max_connections);
                close(fd);
                continue;
            }
        }
        conn = calloc(1, sizeof *conn);
        if (conn == NULL || !set_nonblocking(fd) || !addr_counts_add(&addr_counts, &key)) {
            fprintf(stderr, "privline-server: cannot take a connection: out of resources\n");
            free(conn);
            close(fd);
            continue;
        }
        if (!add_conn(conn)) {
            fprintf(stderr, "privline-server: cannot take a connection: out of resources\n");
            addr_counts_remove(&addr_counts, &key);
            free(conn);
            close(fd);
            continue;
        }
        if (evict != NULL)
            conn_finish(evict); /* only now that the new one is surely taken */
        fcntl(fd, F_SETFD, FD_CLOEXEC);
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        conn->fd = fd;
        conn->key = key;
        open_count++;
        conn->accepted_at = conn->last_active = now;
        conn->deadline = now + config.handshake_timeout;
        memcpy(conn->addr, addr, sizeof conn->addr);
        conn->state = CONN_HANDSHAKE;
        result = privline_handshake_new_server_with_identity(config.protocol, config.network_key, identity,
                                                             &conn->handshake);
        if (result != PRIVLINE_RESULT_OK)
            handshake_fail(conn, "handshake", privline_result_str(result));
        accepted++;
        if (config.once)
            return accepted; /* the only one */
    }
    return accepted;
}

/* Closes what has run out of time: an unfinished handshake at its deadline
 * (--handshake-timeout after accept), and a connection in any state with no
 * byte received or sent for --idle-timeout. A failed handshake (silent) is
 * closed by the same two rules as a running one, without a further line, so
 * the moment of the hang-up does not tell the client that it failed, nor
 * why. Returns the earliest such moment still ahead. */
static double expire_connections(double now)
{
    double next = now + 3600;
    size_t i;
    for (i = 0; i < conn_count; i++) {
        conn_t *conn = conns[i];
        double idle_at = conn->last_active + config.idle_timeout;
        char detail[96];
        snprintf(detail, sizeof detail, "nothing received or sent for %g s", config.idle_timeout);
        switch (conn->state) {
        case CONN_HANDSHAKE:
            if (now >= conn->deadline)
                conn_fail(conn, "handshake", "timed out");
            else if (now >= idle_at)
                conn_fail(conn, "handshake: idle timeout", detail);
            break;
        case CONN_SILENT:
            if (now >= conn->deadline || now >= idle_at)
                conn_finish(conn);
            break;
        case CONN_CHANNEL:
            if (now >= idle_at)
                conn_fail(conn, "idle timeout", detail);
            break;
        case CONN_CLOSING:
            if (conn->out.len == 0) {
                shutdown(conn->fd, SHUT_WR);
                conn_finish(conn);
            } else if (now >= idle_at) {
                conn->clean = false; /* its close never reached the client */
                conn_fail(conn, "idle timeout while closing", detail);
            }
            break;
        default:
            break;
        }
        if (conn->state == CONN_DONE)
            continue;
        if (idle_at < next)
            next = idle_at;
        if ((conn->state == CONN_HANDSHAKE || conn->state == CONN_SILENT) && conn->deadline < next)
            next = conn->deadline;
    }
    return next;
}

int main(int argc, char **argv)
{
    struct pollfd *fds = NULL;
    size_t fds_cap = 0;
    struct sigaction sa;
    double listen_paused_until = 0;
    bool once_taken = false, once_clean = false, stop = false;
    int status;
    size_t i;

    parse_args(argc, argv);
    make_identity();

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    if (pipe(signal_pipe) != 0 || !set_nonblocking(signal_pipe[0]) || !set_nonblocking(signal_pipe[1])) {
        fprintf(stderr, "privline-server: pipe: %s\n", strerror(errno));
        free(listen_host);
        free(config.allow);
        privline_identity_free(identity);
        return EXIT_FAILED;
    }
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);

    if (!start_listening(listen_host, listen_port)) {
        free(listen_host);
        free(config.allow);
        close(signal_pipe[0]);
        close(signal_pipe[1]);
        privline_identity_free(identity);
        return EXIT_FAILED;
    }
    free(listen_host);
    listen_host = NULL;
    spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    loop_now = now_seconds();

    while (!stop) {
        double now = now_seconds(), next;
        size_t nfds = 0, kept;
        int timeout, ready;
        bool poll_listener;

        /* Deadlines: unfinished handshakes, idle connections. */
        next = expire_connections(now);
        /* Drop finished connections. */
        for (i = 0, kept = 0; i < conn_count; i++) {
            if (conns[i]->state == CONN_DONE) {
                once_clean = conns[i]->clean;
                free(conns[i]);
            } else {
                conns[kept++] = conns[i];
            }
        }
        conn_count = kept;
        if (config.once && once_taken && conn_count == 0)
            break;

        /* What to wait for. */
        if (fds_cap < conn_count + 2) {
            size_t cap = conn_count + 2 + 16;
            struct pollfd *grown = realloc(fds, cap * sizeof *grown);
            if (grown == NULL) {
                fprintf(stderr, "privline-server: out of memory\n");
                break;
            }
            fds = grown;
            fds_cap = cap;
        }
        fds[nfds].fd = signal_pipe[0];
        fds[nfds++].events = POLLIN;
        poll_listener = listen_fd >= 0 && now >= listen_paused_until;
        if (listen_fd >= 0 && !poll_listener && listen_paused_until < next)
            next = listen_paused_until;
        fds[nfds].fd = poll_listener ? listen_fd : -1;
        fds[nfds++].events = POLLIN;
        for (i = 0; i < conn_count; i++) {
            conn_t *conn = conns[i];
            short events = conn_events(conn);
            fds[nfds].fd = events != 0 ? conn->fd : -1;
            fds[nfds++].events = events;
        }
        timeout = poll_timeout_ms(next, now);
        ready = poll(fds, nfds, timeout);
        if (ready < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "privline-server: poll: %s\n", strerror(errno));
            break;
        }
        now = loop_now = now_seconds();

        if (fds[0].revents != 0) { /* SIGINT / SIGTERM stop; SIGHUP reloads --allow-file */
            unsigned char byte;
            bool reload = false;
            while (read(signal_pipe[0], &byte, 1) > 0) {
                if (byte == SIGHUP)
                    reload = true;
                else
                    stop = true;
            }
            if (stop)
                break;
            if (reload && config.allow_file != NULL)
                load_allow_file(false);
        }
        if (poll_listener && (fds[1].revents & POLLIN)) {
            bool out_of_fds = false;
            size_t taken = accept_clients(now, &out_of_fds);
            if (out_of_fds)
                listen_paused_until = now + 0.1; /* let connections end first */
            if (config.once && taken > 0) {
                once_taken = true;
                close(listen_fd); /* one connection only */
                listen_fd = -1;
            }
        }
        /* Connections accepted just now are past the end of fds. */
        for (i = 0; i + 2 < nfds; i++) {
            conn_t *conn = conns[i];
            short revents = fds[i + 2].revents;
            if (revents == 0 || fds[i + 2].fd < 0 || conn->state == CONN_DONE) /* e.g. evicted */
                continue;
            if ((revents & POLLOUT) || ((revents & (POLLERR | POLLHUP)) && conn->out.len > 0))
                conn_write(conn);
            if (conn->state == CONN_DONE)
                continue;
            if (revents & (POLLIN | POLLERR | POLLHUP)) {
                if (conn_events(conn) & POLLIN)
                    conn_read(conn);
            }
            if (conn->state != CONN_DONE && conn->out.len > 0)
                conn_write(conn); /* try at once: usually the socket has room */
            if (conn->state != CONN_DONE)
                conn_trim(conn);
        }
    }

    /* Exit: free everything. */
    for (i = 0; i < conn_count; i++) {
        if (conns[i]->state != CONN_DONE)
            conn_finish(conns[i]);
        free(conns[i]);
    }
    free(conns);
    free(fds);
    free(config.allow);
    addr_counts_free(&addr_counts);
    if (spare_fd >= 0)
        close(spare_fd);
    if (listen_fd >= 0)
        close(listen_fd);
    close(signal_pipe[0]);
    close(signal_pipe[1]);
    privline_identity_free(identity);
    wipe(config.network_key, sizeof config.network_key);

    if (config.once)
        status = (once_taken && once_clean && !stop) ? 0 : EXIT_FAILED;
    else
        status = stop ? 0 : EXIT_FAILED;
    return status;
}
