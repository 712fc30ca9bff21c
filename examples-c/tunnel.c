/*
 * privline-tunnel: puts an existing TCP server behind privline without
 * changing it, like spiped or stunnel.
 *
 *   privline-tunnel server --listen HOST:PORT --target HOST:PORT
 *                          --secret-file FILE --network-key-file FILE
 *                          [--allow-file FILE] [--allow PUBHEX]... [options]
 *   privline-tunnel client --listen HOST:PORT --connect HOST:PORT
 *                          --server-key PUBHEX
 *                          --secret-file FILE --network-key-file FILE [options]
 *
 * The server end accepts privline connections; for each client it accepts
 * (after the handshake, and only then) it opens a plain TCP connection to
 * --target and relays both ways. The client end accepts plain TCP
 * connections and carries each over its own privline connection to the
 * server end at --connect, whose public key must be --server-key.
 *
 * The relay is a real stream relay, each direction on its own:
 * - a FIN from a plain side becomes privline's close (the box-stream
 *   goodbye for --protocol shs1), and the peer's close becomes a FIN
 *   (shutdown(SHUT_WR)) on the other plain side, while the other direction
 *   goes on;
 * - a truncated privline stream (the connection ends without close), a
 *   record that does not open, a reset or any socket error ends the pair:
 *   the plain side gets an RST (SO_LINGER {1, 0}, then close), never a
 *   clean FIN, and the privline side is reset too, so the far end resets
 *   its plain side in turn.
 *
 * Memory per connection is bounded, whatever the two sides do: at most
 * IN_LIMIT (128 KiB) of ciphertext received and not yet opened, PLAIN_LIMIT
 * (128 KiB) of plaintext waiting for a plain side that does not read (no
 * record is opened while one more might not fit) and OUT_LIMIT (128 KiB) of
 * ciphertext waiting for a privline side that does not read (the plain side
 * is not read while one more sealed chunk might not fit). With the
 * library's state (about 1 KiB) and the connection's entry: at most 386 KiB
 * per connection. When one side stops reading, the tunnel stops reading the
 * other, and TCP flow control pushes back to the sender. Buffers are freed
 * whenever they are empty.
 *
 * The server end keeps PROTOCOL.md's silence: a failed or refused
 * handshake gets no answer (its input is read and discarded) and the
 * connection is closed only at the handshake deadline (--handshake-timeout
 * seconds after accept, default 10). The target is dialled only after the
 * client is accepted; if the target refuses or does not answer within the
 * handshake timeout, the privline connection is reset, so the client end
 * resets its plain connection.
 *
 * Keys are never on the command line: --secret-file holds the identity
 * secret (the 32-byte seed or the 64-byte libsodium secret, raw or as hex;
 * refused if group or others may read it, as ssh does), --network-key-file
 * the 32-byte network key (raw or hex). --allow-file lists the client keys
 * the server end accepts, one per line (64 hex digits, '#' comments);
 * SIGHUP reloads it without dropping connections, and a reload that fails
 * keeps the old list and says so on stderr. Without --allow-file or
 * --allow, every client that knows the network key is accepted.
 *
 * Scaling: --workers N threads (default: the number of CPUs), each with its
 * own epoll loop and its own listening socket on the same port
 * (SO_REUSEPORT: the kernel spreads new connections over them). A
 * connection lives and dies in one worker; the workers share only the
 * identity, the allow list and the admission counts.
 *
 * Limits, as privline-server has them (the same common.c helpers):
 * --idle-timeout (default 300 s without a byte either way: the pair is
 * reset), --max-connections (pairs at once; default from ulimit -n: (soft
 * limit - 32 - 2 per worker) / 2, at most 65536; when full, the oldest connection still
 * in its handshake is closed to take the new one, so a flood of unfinished
 * handshakes cannot keep a genuine client out), --max-per-ip (server end:
 * default 64 per IPv4 address or IPv6 /64; client end: no default, its
 * clients are local).
 *
 * SIGTERM or SIGINT: stop accepting (the listening sockets are closed) and
 * let open connections finish for --drain-timeout seconds (default 30);
 * what is still open then is reset. Exit status 0 after a drain.
 *
 * stderr: "listening HOST:PORT (N workers)" once bound (the real port, so
 * port 0 works); per connection (unless --quiet) "accepted <key> (ADDR)",
 * "refused ...", "failed ADDR: reason", "evicted ...".
 *
 * Built with -std=gnu99: epoll, accept4 and SO_REUSEPORT are Linux
 * interfaces that strict C99 headers do not declare.
 */

#define _GNU_SOURCE

#include "common.h"
#include "privline.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#define READ_CHUNK PRIVLINE_RECORD_MAX_PAYLOAD_LEN /* plain bytes per read: one privline/1 record */
#define IN_LIMIT (128u * 1024u)
#define PLAIN_LIMIT (128u * 1024u)
#define OUT_LIMIT (128u * 1024u)
#define DEFAULT_HANDSHAKE_TIMEOUT 10.0
#define DEFAULT_IDLE_TIMEOUT 300.0
#define DEFAULT_DRAIN_TIMEOUT 30.0
#define DEFAULT_MAX_PER_IP_SERVER 64
#define FD_RESERVE 32
#define MAX_CONNECTIONS_DEFAULT_CEILING 65536
#define MAX_COUNT_OPTION 1000000
#define MAX_WORKERS 256
#define ACCEPTS_PER_ROUND 64
#define EVENTS_PER_WAIT 256

static const char usage_text[] =
    "usage: privline-tunnel server --listen HOST:PORT --target HOST:PORT\n"
    "                              --secret-file FILE --network-key-file FILE\n"
    "                              [--allow-file FILE] [--allow PUBHEX]... [options]\n"
    "       privline-tunnel client --listen HOST:PORT --connect HOST:PORT --server-key PUBHEX\n"
    "                              --secret-file FILE --network-key-file FILE [options]\n"
    "  server: accept privline connections on --listen; for each accepted client,\n"
    "          dial --target (plain TCP) and relay both ways\n"
    "  client: accept plain TCP connections on --listen; carry each over its own\n"
    "          privline connection to the server end at --connect\n"
    "  --secret-file FILE        this end's identity secret: the 32-byte seed or the\n"
    "                            64-byte libsodium secret, raw or hex; must not be\n"
    "                            readable by group or others\n"
    "  --network-key-file FILE   the 32-byte network key, raw or hex\n"
    "  --server-key PUBHEX       (client) the server end's public key, 64 hex digits\n"
    "  --allow-file FILE         (server) accept only the client keys listed, one per\n"
    "                            line ('#' comments); SIGHUP reloads it\n"
    "  --allow PUBHEX            (server) accept this client key too (repeatable)\n"
    "options:\n"
    "  --protocol NAME           privline1 (default) or shs1\n"
    "  --workers N               worker threads, each with its own epoll loop and\n"
    "                            listening socket (SO_REUSEPORT); default: CPUs\n"
    "  --handshake-timeout SECS  handshake deadline from accept (default 10)\n"
    "  --idle-timeout SECS       reset a pair after this long without a byte either\n"
    "                            way (default 300)\n"
    "  --drain-timeout SECS      after SIGTERM, let open connections finish for this\n"
    "                            long (default 30)\n"
    "  --max-connections N       pairs at once (default (ulimit -n - 32) / 2, at most\n"
    "                            65536); when full, the oldest unfinished handshake\n"
    "                            gives way\n"
    "  --max-per-ip N            connections at once from one IPv4 address or IPv6 /64\n"
    "                            (server default 64; client default: no limit)\n"
    "  --quiet                   no line per connection on stderr\n"
    "Memory: at most 386 KiB per connection (128 KiB each of received ciphertext,\n"
    "plaintext for the plain side, ciphertext for the privline side, and the\n"
    "library's state).\n";

typedef enum { ROLE_SERVER, ROLE_CLIENT } role_t;

typedef enum {
    ST_HANDSHAKE, /* privline handshake running (client end: maybe still connecting) */
    ST_SILENT,    /* server end: the handshake failed; silent until the deadline */
    ST_DIALING,   /* server end: accepted; connecting to the target */
    ST_RELAY,     /* relaying */
    ST_DONE       /* closed; freed after the current batch of events */
} conn_state;

typedef struct conn conn_t;

typedef struct {
    conn_t *conn;
    int side; /* 0: the privline socket, 1: the plain socket */
} endpoint_t;

struct conn {
    conn_t *prev, *next;
    int pfd, tfd;           /* privline socket, plain socket (-1: none) */
    uint32_t pev, tev;      /* events registered with epoll (0: not registered) */
    endpoint_t pep, tep;
    conn_state state;
    bool p_connecting;      /* client end: connect() to the server in progress */
    bool t_connecting;      /* server end: connect() to the target in progress */
    double accepted_at, deadline, last_active;
    addr_key_t key;         /* the accepted side's source address */
    char addr[64];          /* the accepted side's address, for messages */
    privline_handshake *handshake;
    privline_channel *channel;
    buffer_t pin;           /* ciphertext received, not yet opened */
    buffer_t pout;          /* ciphertext to send on the privline side */
    buffer_t tout;          /* plaintext to send on the plain side */
    bool plain_eof;         /* the plain side sent FIN */
    bool close_sent;        /* our close is queued */
    bool p_shut;            /* shutdown(pfd, SHUT_WR) done (after our close) */
    bool peer_closed;       /* the peer's close arrived */
    bool peer_eof;          /* the privline socket reached its end */
    bool t_shut;            /* shutdown(tfd, SHUT_WR) done (after the peer's close) */
};

typedef struct {
    pthread_t thread;
    int index;
    int epfd;
    int listen_fd;
    int wake[2];            /* the main thread writes a byte here on SIGTERM */
    int spare_fd;           /* given up to accept (and close) on EMFILE */
    conn_t *head, *tail;    /* open connections, oldest first */
    conn_t *dead;           /* closed during this batch, freed after it */
    size_t count;
    double now;
    bool draining;
    bool listener_counted;  /* this worker's closed listener is counted in listeners_open */
    uint8_t scratch[READ_CHUNK];
} worker_t;

/* Configuration, set before the workers start and then only read. */
static struct {
    role_t role;
    uint32_t protocol;
    char *listen_host;
    const char *listen_port;
    struct sockaddr_storage remote; /* --target (server) or --connect (client) */
    socklen_t remote_len;
    char remote_text[300];
    uint8_t network_key[PRIVLINE_NETWORK_KEY_LEN];
    uint8_t server_key[PRIVLINE_PUBLIC_KEY_LEN];
    const char *allow_file;
    uint8_t (*allow_args)[PRIVLINE_PUBLIC_KEY_LEN];
    size_t allow_args_count;
    size_t workers;
    double handshake_timeout, idle_timeout, drain_timeout;
    size_t max_connections, max_per_ip;
    bool quiet;
} cfg;

static privline_identity *identity;

/* The allow list (--allow-file plus --allow), replaced by SIGHUP. */
static pthread_rwlock_t allow_lock = PTHREAD_RWLOCK_INITIALIZER;
static uint8_t (*allow_keys)[PRIVLINE_PUBLIC_KEY_LEN];
static size_t allow_count;
static bool allow_any = true; /* no list given: every client is accepted */

/* Admission counts, shared by the workers (taken at accept and close only). */
static pthread_mutex_t admit_lock = PTHREAD_MUTEX_INITIALIZER;
static addr_counts_t addr_counts;
static size_t open_count;

static atomic_bool stopping;
static double drain_deadline;

/* Workers whose listening socket is still open. The main thread waits for
 * zero before it reports "draining: stopped accepting", so that whoever
 * reads that line (an operator, the tunnel test) finds new connections
 * refused already. */
static pthread_mutex_t listeners_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t listeners_closed = PTHREAD_COND_INITIALIZER;
static size_t listeners_open;
static worker_t *workers;

#define LOG(...)                                                                                            \
    do {                                                                                                    \
        if (!cfg.quiet)                                                                                     \
            fprintf(stderr, __VA_ARGS__);                                                                   \
    } while (0)

static void usage_error(const char *message, const char *detail)
{
    if (message != NULL)
        fprintf(stderr, "privline-tunnel: %s%s%s\n", message, detail ? ": " : "", detail ? detail : "");
    fputs(usage_text, stderr);
    exit(EXIT_USAGE);
}

static const char *option_value(int argc, char **argv, int *i)
{
    if (*i + 1 >= argc)
        usage_error("missing value after", argv[*i]);
    return argv[++*i];
}

static void resolve_remote(const char *text, const char *option)
{
    struct addrinfo *found = NULL;
    char *host;
    const char *port;
    int rc;
    if (!split_host_port(text, &host, &port))
        usage_error("must be HOST:PORT", option);
    rc = resolve_tcp(host, port, false, &found);
    if (rc != 0) {
        fprintf(stderr, "privline-tunnel: cannot resolve %s (%s): %s\n", text, option, gai_strerror(rc));
        free(host);
        exit(EXIT_USAGE);
    }
    memcpy(&cfg.remote, found->ai_addr, found->ai_addrlen);
    cfg.remote_len = found->ai_addrlen;
    describe_sockaddr(found->ai_addr, found->ai_addrlen, cfg.remote_text, sizeof cfg.remote_text);
    freeaddrinfo(found);
    free(host);
}

static void load_allow_list(bool at_start)
{
    uint8_t (*keys)[PRIVLINE_PUBLIC_KEY_LEN] = NULL, (*merged)[PRIVLINE_PUBLIC_KEY_LEN];
    size_t count = 0, old_count;
    char error[600];
    if (cfg.allow_file != NULL && read_allow_file(cfg.allow_file, &keys, &count, error, sizeof error) != NULL) {
        if (at_start)
            usage_error(error, NULL);
        pthread_rwlock_rdlock(&allow_lock);
        old_count = allow_count;
        pthread_rwlock_unlock(&allow_lock);
        fprintf(stderr, "privline-tunnel: reloading the allow file failed, keeping the old list (%zu keys): %s\n",
                old_count, error);
        return;
    }
    merged = malloc((count + cfg.allow_args_count + 1) * sizeof *merged);
    if (merged == NULL) {
        free(keys);
        if (at_start)
            usage_error("out of memory", NULL);
        fprintf(stderr, "privline-tunnel: reloading the allow file failed, keeping the old list: out of memory\n");
        return;
    }
    if (count > 0)
        memcpy(merged, keys, count * sizeof *merged);
    if (cfg.allow_args_count > 0)
        memcpy(merged + count, cfg.allow_args, cfg.allow_args_count * sizeof *merged);
    free(keys);
    pthread_rwlock_wrlock(&allow_lock);
    free(allow_keys);
    allow_keys = merged;
    allow_count = count + cfg.allow_args_count;
    allow_any = cfg.allow_file == NULL && cfg.allow_args_count == 0;
    pthread_rwlock_unlock(&allow_lock);
    if (cfg.allow_file != NULL)
        fprintf(stderr, "%s %zu allowed keys from %s\n", at_start ? "loaded" : "reloaded", count, cfg.allow_file);
}

static bool client_allowed(const uint8_t *key)
{
    bool allowed;
    size_t i;
    pthread_rwlock_rdlock(&allow_lock);
    allowed = allow_any;
    for (i = 0; !allowed && i < allow_count; i++)
        allowed = memcmp(allow_keys[i], key, PRIVLINE_PUBLIC_KEY_LEN) == 0;
    pthread_rwlock_unlock(&allow_lock);
    return allowed;
}

static void parse_args(int argc, char **argv)
{
    const char *secret_file = NULL, *network_key_file = NULL, *listen = NULL, *remote = NULL;
    const char *server_key = NULL;
    bool have_protocol = false, have_per_ip = false, have_max = false;
    uint8_t secret[PRIVLINE_IDENTITY_KEYPAIR_LEN];
    size_t secret_len = 0, key_len = 0, fd_limit = 0, room;
    char error[600];
    privline_result result;
    int i;

    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(usage_text, stdout);
        exit(0);
    }
    if (argc < 2)
        usage_error("say server or client", NULL);
    if (strcmp(argv[1], "server") == 0)
        cfg.role = ROLE_SERVER;
    else if (strcmp(argv[1], "client") == 0)
        cfg.role = ROLE_CLIENT;
    else
        usage_error("the first argument must be server or client", argv[1]);
    cfg.protocol = PRIVLINE_PROTOCOL_PRIVLINE1;
    cfg.handshake_timeout = DEFAULT_HANDSHAKE_TIMEOUT;
    cfg.idle_timeout = DEFAULT_IDLE_TIMEOUT;
    cfg.drain_timeout = DEFAULT_DRAIN_TIMEOUT;
    {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        cfg.workers = cpus > 0 ? (size_t)cpus : 1;
        if (cfg.workers > MAX_WORKERS)
            cfg.workers = MAX_WORKERS;
    }
    for (i = 2; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            fputs(usage_text, stdout);
            exit(0);
        } else if (strcmp(arg, "--listen") == 0) {
            listen = option_value(argc, argv, &i);
        } else if (strcmp(arg, "--target") == 0 && cfg.role == ROLE_SERVER) {
            remote = option_value(argc, argv, &i);
        } else if (strcmp(arg, "--connect") == 0 && cfg.role == ROLE_CLIENT) {
            remote = option_value(argc, argv, &i);
        } else if (strcmp(arg, "--server-key") == 0 && cfg.role == ROLE_CLIENT) {
            server_key = option_value(argc, argv, &i);
        } else if (strcmp(arg, "--secret-file") == 0) {
            secret_file = option_value(argc, argv, &i);
        } else if (strcmp(arg, "--network-key-file") == 0) {
            network_key_file = option_value(argc, argv, &i);
        } else if (strcmp(arg, "--allow-file") == 0 && cfg.role == ROLE_SERVER) {
            if (cfg.allow_file != NULL)
                usage_error("--allow-file given twice", NULL);
            cfg.allow_file = option_value(argc, argv, &i);
        } else if (strcmp(arg, "--allow") == 0 && cfg.role == ROLE_SERVER) {
            const char *value = option_value(argc, argv, &i);
            void *grown = realloc(cfg.allow_args, (cfg.allow_args_count + 1) * sizeof *cfg.allow_args);
            if (grown == NULL)
                usage_error("out of memory", NULL);
            cfg.allow_args = grown;
            if (!hex_decode(value, cfg.allow_args[cfg.allow_args_count], PRIVLINE_PUBLIC_KEY_LEN))
                usage_error("--allow must be a public key, 64 hex digits", value);
            cfg.allow_args_count++;
        } else if (strcmp(arg, "--protocol") == 0) {
            const char *value = option_value(argc, argv, &i);
            if (have_protocol || !parse_protocol(value, &cfg.protocol))
                usage_error("--protocol must be given once, as privline1 or shs1", value);
            have_protocol = true;
        } else if (strcmp(arg, "--workers") == 0) {
            if (!parse_positive_count(option_value(argc, argv, &i), MAX_WORKERS, &cfg.workers))
                usage_error("--workers must be a whole number from 1 to 256", argv[i]);
        } else if (strcmp(arg, "--handshake-timeout") == 0) {
            if (!parse_seconds(option_value(argc, argv, &i), &cfg.handshake_timeout))
                usage_error("--handshake-timeout must be a positive number of seconds", argv[i]);
        } else if (strcmp(arg, "--idle-timeout") == 0) {
            if (!parse_seconds(option_value(argc, argv, &i), &cfg.idle_timeout))
                usage_error("--idle-timeout must be a positive number of seconds", argv[i]);
        } else if (strcmp(arg, "--drain-timeout") == 0) {
            if (!parse_seconds(option_value(argc, argv, &i), &cfg.drain_timeout))
                usage_error("--drain-timeout must be a positive number of seconds", argv[i]);
        } else if (strcmp(arg, "--max-connections") == 0) {
            if (!parse_positive_count(option_value(argc, argv, &i), MAX_COUNT_OPTION, &cfg.max_connections))
                usage_error("--max-connections must be a whole number from 1 to 1000000", argv[i]);
            have_max = true;
        } else if (strcmp(arg, "--max-per-ip") == 0) {
            if (!parse_positive_count(option_value(argc, argv, &i), MAX_COUNT_OPTION, &cfg.max_per_ip))
                usage_error("--max-per-ip must be a whole number from 1 to 1000000", argv[i]);
            have_per_ip = true;
        } else if (strcmp(arg, "--quiet") == 0) {
            cfg.quiet = true;
        } else if (strcmp(arg, "--secret") == 0 || strcmp(arg, "--network-key") == 0) {
            usage_error("keys are not taken on the command line (other users can read it with ps): use "
                        "--secret-file and --network-key-file",
                        arg);
        } else {
            usage_error("unknown argument", arg);
        }
    }
    if (listen == NULL || remote == NULL || secret_file == NULL || network_key_file == NULL
        || (cfg.role == ROLE_CLIENT && server_key == NULL))
        usage_error(cfg.role == ROLE_SERVER
                        ? "server needs --listen, --target, --secret-file and --network-key-file"
                        : "client needs --listen, --connect, --server-key, --secret-file and --network-key-file",
                    NULL);
    if (!split_host_port(listen, &cfg.listen_host, &cfg.listen_port))
        usage_error("--listen must be HOST:PORT", listen);
    resolve_remote(remote, cfg.role == ROLE_SERVER ? "--target" : "--connect");
    if (server_key != NULL && !hex_decode(server_key, cfg.server_key, sizeof cfg.server_key))
        usage_error("--server-key must be a public key, 64 hex digits", server_key);
    if (read_key_file(network_key_file, false, PRIVLINE_NETWORK_KEY_LEN, PRIVLINE_NETWORK_KEY_LEN,
                      cfg.network_key, &key_len, error, sizeof error)
        != NULL)
        usage_error(error, NULL);
    if (read_key_file(secret_file, true, PRIVLINE_SEED_LEN, PRIVLINE_IDENTITY_KEYPAIR_LEN, secret, &secret_len,
                      error, sizeof error)
        != NULL)
        usage_error(error, NULL);
    result = privline_identity_new(secret, secret_len, &identity);
    wipe(secret, sizeof secret);
    if (result != PRIVLINE_RESULT_OK)
        usage_error("--secret-file: not a usable identity secret", privline_result_str(result));
    if (cfg.role == ROLE_SERVER)
        load_allow_list(true);

    room = connections_from_fd_limit(FD_RESERVE + 2 * cfg.workers, SIZE_MAX, &fd_limit) / 2;
    if (room == 0)
        usage_error("too few file descriptors (ulimit -n) to serve anybody", NULL);
    if (!have_max)
        cfg.max_connections = room < MAX_CONNECTIONS_DEFAULT_CEILING ? room : MAX_CONNECTIONS_DEFAULT_CEILING;
    else if (cfg.max_connections > room) {
        char detail[200];
        snprintf(detail, sizeof detail, "%zu given, ulimit -n (%zu) allows at most %zu (two descriptors each)",
                 cfg.max_connections, fd_limit, room);
        usage_error("--max-connections is above what the descriptor limit allows", detail);
    }
    if (!have_per_ip)
        cfg.max_per_ip = cfg.role == ROLE_SERVER ? DEFAULT_MAX_PER_IP_SERVER : SIZE_MAX;
}

/* ------------------------------------------------------------ connections */

static void set_events(worker_t *w, int fd, uint32_t *registered, uint32_t want, endpoint_t *ep)
{
    struct epoll_event ev;
    if (fd < 0 || *registered == want)
        return;
    memset(&ev, 0, sizeof ev);
    ev.events = want;
    ev.data.ptr = ep;
    if (want == 0)
        epoll_ctl(w->epfd, EPOLL_CTL_DEL, fd, &ev);
    else if (*registered == 0)
        epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev);
    else
        epoll_ctl(w->epfd, EPOLL_CTL_MOD, fd, &ev);
    *registered = want;
}

static bool pout_has_room(const conn_t *c)
{
    size_t largest = privline_channel_sealed_len(c->channel, READ_CHUNK, 0);
    return largest != SIZE_MAX && c->pout.len + largest <= OUT_LIMIT;
}

static bool tout_has_room(const conn_t *c)
{
    return c->tout.len + PRIVLINE_OPEN_MAX_OUTPUT_LEN <= PLAIN_LIMIT;
}

static void update_events(worker_t *w, conn_t *c)
{
    uint32_t p = 0, t = 0;
    if (c->state == ST_DONE)
        return;
    if (c->p_connecting)
        p = EPOLLOUT;
    else {
        if (c->pout.len > 0)
            p |= EPOLLOUT;
        switch (c->state) {
        case ST_HANDSHAKE:
            if (!c->peer_eof && c->pin.len < IN_LIMIT)
                p |= EPOLLIN;
            break;
        case ST_SILENT:
            if (!c->peer_eof)
                p |= EPOLLIN;
            break;
        case ST_RELAY:
            if (!c->peer_eof && c->pin.len < IN_LIMIT && tout_has_room(c))
                p |= EPOLLIN;
            break;
        default:
            break;
        }
    }
    if (c->t_connecting)
        t = EPOLLOUT;
    else if (c->state == ST_RELAY) {
        if (c->tout.len > 0)
            t |= EPOLLOUT;
        if (!c->plain_eof && !c->close_sent && pout_has_room(c))
            t |= EPOLLIN;
    }
    set_events(w, c->pfd, &c->pev, p, &c->pep);
    set_events(w, c->tfd, &c->tev, t, &c->tep);
}

static void reset_fd(int fd)
{
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
}

/* Closes one side's socket (if open), first taking it off epoll; `reset`
 * ends the connection with a TCP reset instead of a FIN. */
static void close_side(worker_t *w, int fd, uint32_t *registered, endpoint_t *ep, bool reset)
{
    if (fd < 0)
        return;
    if (*registered)
        set_events(w, fd, registered, 0, ep);
    if (reset)
        reset_fd(fd);
    else
        close(fd);
}

/* Ends the connection: frees its library state and buffers, closes (or
 * with `reset`, resets) its sockets. The entry is freed after the batch. */
static void conn_finish(worker_t *w, conn_t *c, bool reset)
{
    if (c->state == ST_DONE)
        return;
    privline_handshake_free(c->handshake);
    c->handshake = NULL;
    privline_channel_free(c->channel);
    c->channel = NULL;
    buffer_free(&c->pin);
    buffer_free(&c->pout);
    buffer_free(&c->tout);
    close_side(w, c->pfd, &c->pev, &c->pep, reset);
    close_side(w, c->tfd, &c->tev, &c->tep, reset);
    c->pfd = c->tfd = -1;
    c->state = ST_DONE;
    /* Unlink, and hold until the batch of events is through. */
    if (c->prev)
        c->prev->next = c->next;
    else
        w->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        w->tail = c->prev;
    c->next = w->dead;
    c->prev = NULL;
    w->dead = c;
    w->count--;
    pthread_mutex_lock(&admit_lock);
    open_count--;
    addr_counts_remove(&addr_counts, &c->key);
    pthread_mutex_unlock(&admit_lock);
}

/* A failure of the pair: one line, both sides reset. */
static void conn_fail(worker_t *w, conn_t *c, const char *reason, const char *detail)
{
    LOG("failed %s: %s%s%s\n", c->addr, reason, detail ? ": " : "", detail ? detail : "");
    conn_finish(w, c, true);
}

/* Server end: a failed or refused handshake. No answer; the connection
 * stays open, its input discarded, until the handshake deadline. */
static void conn_go_silent(conn_t *c)
{
    privline_handshake_free(c->handshake);
    c->handshake = NULL;
    buffer_free(&c->pin);
    c->state = ST_SILENT;
}

static void handshake_failed(worker_t *w, conn_t *c, const char *reason, const char *detail)
{
    if (cfg.role == ROLE_SERVER) {
        LOG("failed %s: %s%s%s\n", c->addr, reason, detail ? ": " : "", detail ? detail : "");
        conn_go_silent(c);
    } else {
        conn_fail(w, c, reason, detail);
    }
}

static int start_connect(const struct sockaddr_storage *sa, socklen_t len, bool *in_progress)
{
    int one = 1;
    int fd = socket(sa->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (const struct sockaddr *)sa, len) == 0) {
        *in_progress = false;
        return fd;
    }
    if (errno == EINPROGRESS) {
        *in_progress = true;
        return fd;
    }
    {
        int saved = errno;
        close(fd);
        errno = saved;
    }
    return -1;
}

static void handshake_process(worker_t *w, conn_t *c);

/* The handshake is done: the server end dials the target, the client end
 * starts relaying. */
static void channel_ready(worker_t *w, conn_t *c, const uint8_t *key)
{
    char key_hex[2 * PRIVLINE_PUBLIC_KEY_LEN + 1];
    hex_encode(key, PRIVLINE_PUBLIC_KEY_LEN, key_hex);
    if (cfg.role == ROLE_SERVER)
        LOG("accepted %s (%s)\n", key_hex, c->addr);
    if (cfg.role == ROLE_CLIENT) {
        c->state = ST_RELAY;
        return;
    }
    c->tfd = start_connect(&cfg.remote, cfg.remote_len, &c->t_connecting);
    if (c->tfd < 0) {
        conn_fail(w, c, "cannot connect to the target", strerror(errno));
        return;
    }
    c->tep.conn = c;
    c->tep.side = 1;
    c->deadline = w->now + cfg.handshake_timeout; /* for the target's answer */
    c->state = c->t_connecting ? ST_DIALING : ST_RELAY;
}

static void handshake_process(worker_t *w, conn_t *c)
{
    uint8_t key[PRIVLINE_PUBLIC_KEY_LEN];
    char key_hex[2 * PRIVLINE_PUBLIC_KEY_LEN + 1];
    const char *failure = NULL;

    switch (handshake_advance(&c->handshake, &c->pin, &c->pout, cfg.role == ROLE_SERVER ? client_allowed : NULL,
                              key, &c->channel, &failure)) {
    case ADVANCE_WAITING:
        return;
    case ADVANCE_FAILED:
        handshake_failed(w, c, "handshake", failure);
        return;
    case ADVANCE_REFUSED:
        hex_encode(key, sizeof key, key_hex);
        LOG("refused %s (%s): not in the allow list\n", key_hex, c->addr);
        conn_go_silent(c);
        return;
    case ADVANCE_DONE:
        channel_ready(w, c, key);
        return;
    }
}

/* Sends queued ciphertext on the privline side. */
static void flush_p(worker_t *w, conn_t *c)
{
    ssize_t sent;
    if (c->state == ST_DONE)
        return;
    sent = buffer_send(c->pfd, &c->pout);
    if (sent < 0) {
        if (c->state == ST_SILENT) {
            buffer_free(&c->pout); /* the client is gone; still wait */
            c->peer_eof = true;
        } else if (c->state == ST_HANDSHAKE && cfg.role == ROLE_SERVER) {
            handshake_failed(w, c, "connection error during the handshake", strerror(errno));
        } else {
            conn_fail(w, c, "privline connection error", strerror(errno));
        }
        return;
    }
    if (sent > 0)
        c->last_active = w->now;
}

/* Sends queued plaintext on the plain side. */
static void flush_t(worker_t *w, conn_t *c)
{
    ssize_t sent;
    if (c->state != ST_RELAY)
        return;
    sent = buffer_send(c->tfd, &c->tout);
    if (sent < 0)
        conn_fail(w, c, "plain connection error", strerror(errno));
    else if (sent > 0)
        c->last_active = w->now;
}

/* Opens the records that have arrived into the plain side's queue, while
 * it has room. */
static void open_records(worker_t *w, conn_t *c)
{
    while (c->state == ST_RELAY && c->pin.len > 0 && tout_has_room(c)) {
        size_t consumed = 0, len = PRIVLINE_OPEN_MAX_OUTPUT_LEN;
        privline_record_type type = PRIVLINE_RECORD_NONE;
        privline_result result;
        uint8_t *room = buffer_reserve(&c->tout, PRIVLINE_OPEN_MAX_OUTPUT_LEN);
        if (room == NULL) {
            conn_fail(w, c, "out of memory", NULL);
            return;
        }
        result = privline_channel_open(c->channel, buffer_head(&c->pin), c->pin.len, &consumed, room, &len, &type);
        if (result != PRIVLINE_RESULT_OK) {
            conn_fail(w, c, "bad record", privline_result_str(result));
            return;
        }
        buffer_consume(&c->pin, consumed);
        if (type == PRIVLINE_RECORD_NONE)
            break;
        if (type == PRIVLINE_RECORD_DATA)
            buffer_commit(&c->tout, len);
        else if (type == PRIVLINE_RECORD_CLOSE)
            c->peer_closed = true;
    }
}

/* Moves whatever can move, applies the half-closes, ends a finished pair. */
static void pump(worker_t *w, conn_t *c)
{
    if (c->state == ST_HANDSHAKE || c->state == ST_SILENT) {
        flush_p(w, c);
        return;
    }
    if (c->state != ST_RELAY)
        return;
    for (;;) { /* open records and send them on while either moves */
        size_t in_before = c->pin.len, out_before = c->tout.len;
        open_records(w, c);
        if (c->state != ST_RELAY)
            return;
        flush_t(w, c);
        if (c->state != ST_RELAY)
            return;
        if (c->pin.len == in_before && c->tout.len == out_before)
            break;
    }
    flush_p(w, c);
    if (c->state != ST_RELAY)
        return;
    /* The privline side ended without the peer's close: truncated. */
    if (c->peer_eof && !c->peer_closed && (c->pin.len == 0 || tout_has_room(c))) {
        conn_fail(w, c, "truncated",
                  cfg.protocol == PRIVLINE_PROTOCOL_SHS1 ? "the peer hung up without goodbye"
                                                        : "the peer hung up without close");
        return;
    }
    if (c->peer_closed && c->tout.len == 0 && !c->t_shut) {
        shutdown(c->tfd, SHUT_WR); /* the peer's close becomes a FIN */
        c->t_shut = true;
    }
    if (c->close_sent && c->pout.len == 0 && !c->p_shut) {
        shutdown(c->pfd, SHUT_WR);
        c->p_shut = true;
    }
    if (c->t_shut && c->p_shut) {
        conn_finish(w, c, false); /* both directions ended cleanly */
        return;
    }
}

/* Reads from the privline socket. */
static void read_p(worker_t *w, conn_t *c)
{
    ssize_t n;
    if (c->state == ST_SILENT) {
        n = discard_input(c->pfd);
        if (n > 0)
            c->last_active = w->now;
        if (n < 0)
            c->peer_eof = true;
        return;
    }
    n = buffer_recv(c->pfd, &c->pin, READ_CHUNK, IN_LIMIT);
    if (n < 0) {
        if (try_again_later(errno))
            return;
        if (c->state == ST_HANDSHAKE)
            handshake_failed(w, c, "connection error during the handshake", strerror(errno));
        else
            conn_fail(w, c, "privline connection error", strerror(errno));
        return;
    }
    if (n == 0) {
        c->peer_eof = true;
        if (c->state == ST_HANDSHAKE)
            handshake_failed(w, c, "handshake",
                             cfg.role == ROLE_SERVER
                                 ? "the client hung up during the handshake"
                                 : "the server hung up during the handshake (wrong --server-key, or this "
                                   "client is not allowed)");
        return;
    }
    c->last_active = w->now;
    if (c->state == ST_HANDSHAKE)
        handshake_process(w, c);
}

/* Reads from the plain socket and seals what came. */
static void read_t(worker_t *w, conn_t *c)
{
    const char *failure;
    ssize_t n = recv(c->tfd, w->scratch, READ_CHUNK, 0);
    if (n < 0) {
        if (try_again_later(errno))
            return;
        conn_fail(w, c, "plain connection error", strerror(errno));
        return;
    }
    c->last_active = w->now;
    if (n == 0) {
        c->plain_eof = true; /* FIN: becomes our close */
        failure = queue_sealed(&c->pout, c->channel, NULL, 0, true);
        c->close_sent = true;
    } else {
        failure = queue_sealed(&c->pout, c->channel, w->scratch, (size_t)n, false);
        wipe(w->scratch, (size_t)n);
    }
    if (failure != NULL)
        conn_fail(w, c, "cannot seal", failure);
}

static bool connect_finished(int fd, int *error_out)
{
    int error = 0;
    socklen_t len = sizeof error;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) != 0)
        error = errno;
    *error_out = error;
    return error == 0;
}

static void on_event(worker_t *w, endpoint_t *ep, uint32_t events)
{
    conn_t *c = ep->conn;
    int error;
    if (c->state == ST_DONE)
        return;
    if (ep->side == 0) {
        if (c->p_connecting) {
            if (!connect_finished(c->pfd, &error)) {
                conn_fail(w, c, "cannot connect to the server end", strerror(error));
                return;
            }
            c->p_connecting = false;
            handshake_process(w, c); /* M1 */
        } else {
            if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && (c->pev & EPOLLIN))
                read_p(w, c);
            else if ((events & EPOLLERR) && c->state != ST_DONE) {
                connect_finished(c->pfd, &error);
                if (c->state == ST_SILENT)
                    c->peer_eof = true;
                else if (c->state == ST_HANDSHAKE)
                    handshake_failed(w, c, "connection error during the handshake", strerror(error));
                else
                    conn_fail(w, c, "privline connection error", strerror(error));
            }
        }
    } else {
        if (c->t_connecting) {
            if (!connect_finished(c->tfd, &error)) {
                conn_fail(w, c, "cannot connect to the target", strerror(error));
                return;
            }
            c->t_connecting = false;
            c->state = ST_RELAY;
        } else if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && (c->tev & EPOLLIN)) {
            read_t(w, c);
        } else if (events & EPOLLERR) {
            connect_finished(c->tfd, &error);
            conn_fail(w, c, "plain connection error", strerror(error));
        }
    }
    if (c->state != ST_DONE)
        pump(w, c);
    if (c->state != ST_DONE)
        update_events(w, c);
}

/* ------------------------------------------------------------ accepting */

static conn_t *oldest_unfinished(worker_t *w)
{
    conn_t *c;
    for (c = w->head; c != NULL; c = c->next)
        if (c->state == ST_HANDSHAKE || c->state == ST_SILENT)
            return c;
    return NULL;
}

static void accept_clients(worker_t *w)
{
    int tries;
    for (tries = 0; tries < ACCEPTS_PER_ROUND && w->listen_fd >= 0; tries++) {
        struct sockaddr_storage sa;
        socklen_t sa_len = sizeof sa;
        conn_t *c, *evict = NULL;
        addr_key_t key;
        char addr[64], key_text[64];
        admission_t admit;
        size_t open_now;
        privline_result result;
        int one = 1;
        int fd = accept4(w->listen_fd, (struct sockaddr *)&sa, &sa_len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if ((errno == EMFILE || errno == ENFILE) && w->spare_fd >= 0) {
                close(w->spare_fd);
                fd = accept(w->listen_fd, NULL, NULL);
                if (fd >= 0) {
                    LOG("refused a connection: out of file descriptors\n");
                    close(fd);
                }
                w->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
            }
            return;
        }
        describe_sockaddr((struct sockaddr *)&sa, sa_len, addr, sizeof addr);
        addr_key_from_sockaddr((struct sockaddr *)&sa, &key);
        pthread_mutex_lock(&admit_lock);
        admit = admission_decide(&addr_counts, &key, open_count, cfg.max_connections, cfg.max_per_ip,
                                 w->head != NULL);
        if (admit == ADMIT_EVICT && (evict = oldest_unfinished(w)) == NULL)
            admit = ADMIT_NO_FULL; /* this worker holds no unfinished handshake */
        open_now = open_count;
        if (admit == ADMIT_YES || admit == ADMIT_EVICT) {
            if (!addr_counts_add(&addr_counts, &key)) {
                pthread_mutex_unlock(&admit_lock);
                close(fd);
                continue;
            }
            open_count++;
        }
        pthread_mutex_unlock(&admit_lock);
        if (admit == ADMIT_NO_PER_ADDRESS) {
            addr_key_format(&key, key_text, sizeof key_text);
            LOG("refused %s: too many connections from %s (--max-per-ip %zu)\n", addr, key_text, cfg.max_per_ip);
            close(fd);
            continue;
        }
        if (admit == ADMIT_NO_FULL) {
            LOG("refused %s: %zu connections, none in its handshake here (--max-connections %zu)\n", addr,
                open_now, cfg.max_connections);
            close(fd);
            continue;
        }
        if (admit == ADMIT_EVICT) {
            LOG("evicted %s: handshake unfinished after %.1f s, to take %s (--max-connections %zu reached)\n",
                evict->addr, w->now - evict->accepted_at, addr, cfg.max_connections);
            conn_finish(w, evict, cfg.role == ROLE_CLIENT); /* a plain client gets an RST */
        }
        c = calloc(1, sizeof *c);
        if (c == NULL) {
            pthread_mutex_lock(&admit_lock);
            open_count--;
            addr_counts_remove(&addr_counts, &key);
            pthread_mutex_unlock(&admit_lock);
            close(fd);
            continue;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        c->key = key;
        memcpy(c->addr, addr, sizeof c->addr);
        c->accepted_at = c->last_active = w->now;
        c->deadline = w->now + cfg.handshake_timeout;
        c->state = ST_HANDSHAKE;
        c->pep.conn = c->tep.conn = c;
        c->pep.side = 0;
        c->tep.side = 1;
        c->pfd = c->tfd = -1;
        /* Link at the tail: the list stays in accept order. */
        c->prev = w->tail;
        if (w->tail)
            w->tail->next = c;
        else
            w->head = c;
        w->tail = c;
        w->count++;
        if (cfg.role == ROLE_SERVER) {
            c->pfd = fd;
            result = privline_handshake_new_server_with_identity(cfg.protocol, cfg.network_key, identity,
                                                                 &c->handshake);
            if (result != PRIVLINE_RESULT_OK)
                handshake_failed(w, c, "handshake", privline_result_str(result));
        } else {
            c->tfd = fd;
            result = privline_handshake_new_client_with_identity(cfg.protocol, cfg.network_key, identity,
                                                                 cfg.server_key, &c->handshake);
            if (result != PRIVLINE_RESULT_OK) {
                conn_fail(w, c, "handshake", privline_result_str(result));
                continue;
            }
            c->pfd = start_connect(&cfg.remote, cfg.remote_len, &c->p_connecting);
            if (c->pfd < 0) {
                conn_fail(w, c, "cannot connect to the server end", strerror(errno));
                continue;
            }
            if (!c->p_connecting)
                handshake_process(w, c);
        }
        if (c->state != ST_DONE)
            pump(w, c);
        if (c->state != ST_DONE)
            update_events(w, c);
    }
}

/* Deadlines: unfinished handshakes, target connects, idle pairs, the
 * drain. Returns the earliest deadline still ahead. */
static double expire(worker_t *w)
{
    double next = w->now + 0.25;
    conn_t *c, *following;
    char detail[96];
    bool drain_over = w->draining && w->now >= drain_deadline;
    for (c = w->head; c != NULL; c = following) {
        double idle_at = c->last_active + cfg.idle_timeout;
        following = c->next;
        if (drain_over) {
            conn_fail(w, c, "reset", "still open at the end of --drain-timeout");
            continue;
        }
        switch (c->state) {
        case ST_HANDSHAKE:
            if (w->now >= c->deadline) {
                if (cfg.role == ROLE_SERVER) {
                    LOG("failed %s: handshake: timed out\n", c->addr);
                    conn_finish(w, c, false);
                } else {
                    conn_fail(w, c, "handshake", "timed out");
                }
            }
            break;
        case ST_SILENT:
            if (w->now >= c->deadline)
                conn_finish(w, c, false); /* the hang-up, at the deadline only */
            break;
        case ST_DIALING:
            if (w->now >= c->deadline)
                conn_fail(w, c, "cannot connect to the target", "timed out");
            break;
        case ST_RELAY:
            if (w->now >= idle_at) {
                snprintf(detail, sizeof detail, "nothing received or sent for %g s", cfg.idle_timeout);
                conn_fail(w, c, "idle timeout", detail);
            }
            break;
        default:
            break;
        }
        if (c->state == ST_DONE)
            continue;
        if (c->state == ST_RELAY) {
            if (idle_at < next)
                next = idle_at;
        } else if (c->deadline < next) {
            next = c->deadline;
        }
    }
    if (w->draining && drain_deadline < next)
        next = drain_deadline;
    return next;
}

static void free_dead(worker_t *w)
{
    while (w->dead != NULL) {
        conn_t *c = w->dead;
        w->dead = c->next;
        free(c);
    }
}

/* Closes this worker's listening socket (once) and counts it closed. */
static void stop_listening(worker_t *w)
{
    if (w->listen_fd >= 0) {
        epoll_ctl(w->epfd, EPOLL_CTL_DEL, w->listen_fd, NULL);
        close(w->listen_fd);
        w->listen_fd = -1;
    }
    pthread_mutex_lock(&listeners_lock);
    if (!w->listener_counted) {
        w->listener_counted = true;
        listeners_open--;
        pthread_cond_broadcast(&listeners_closed);
    }
    pthread_mutex_unlock(&listeners_lock);
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    struct epoll_event events[EVENTS_PER_WAIT];
    struct epoll_event ev;
    endpoint_t listen_ep = {NULL, 2}, wake_ep = {NULL, 3};
    double next = 0;

    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN;
    ev.data.ptr = &listen_ep;
    epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->listen_fd, &ev);
    ev.data.ptr = &wake_ep;
    epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->wake[0], &ev);
    w->now = now_seconds();
    for (;;) {
        int n, i, timeout;
        w->now = now_seconds();
        if (w->now >= next)
            next = expire(w);
        free_dead(w);
        if (w->draining && w->head == NULL)
            break;
        timeout = poll_timeout_ms(next, w->now);
        n = epoll_wait(w->epfd, events, EVENTS_PER_WAIT, timeout);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "privline-tunnel: epoll_wait: %s\n", strerror(errno));
            break;
        }
        w->now = now_seconds();
        for (i = 0; i < n; i++) {
            endpoint_t *ep = events[i].data.ptr;
            if (ep == &wake_ep) {
                unsigned char byte;
                while (read(w->wake[0], &byte, 1) > 0) {
                }
                if (atomic_load(&stopping) && !w->draining) {
                    w->draining = true;
                    stop_listening(w);
                    next = 0;
                }
            } else if (ep == &listen_ep) {
                if (w->listen_fd >= 0)
                    accept_clients(w);
            } else {
                on_event(w, ep, events[i].events);
            }
        }
        free_dead(w);
    }
    stop_listening(w); /* also when the loop ended on an error */
    while (w->head != NULL)
        conn_finish(w, w->head, true);
    free_dead(w);
    return NULL;
}

/* ------------------------------------------------------------ start-up */

static bool start_listening(void)
{
    struct addrinfo *found = NULL, *ai;
    struct sockaddr_storage bound;
    socklen_t bound_len = sizeof bound;
    char text[96];
    int rc, one = 1;
    size_t i;

    rc = resolve_tcp(cfg.listen_host, cfg.listen_port, true, &found);
    if (rc != 0) {
        fprintf(stderr, "privline-tunnel: cannot resolve %s: %s\n", cfg.listen_host, gai_strerror(rc));
        return false;
    }
    ai = found;
    for (i = 0; i < cfg.workers; i++) {
        /* The first socket binds the given port (0: any); the others the
         * port it got, all with SO_REUSEPORT. */
        const struct sockaddr *addr = i == 0 ? ai->ai_addr : (const struct sockaddr *)&bound;
        socklen_t addr_len = i == 0 ? ai->ai_addrlen : bound_len;
        int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0
            || setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0 || bind(fd, addr, addr_len) != 0
            || listen(fd, SOMAXCONN) != 0) {
            fprintf(stderr, "privline-tunnel: cannot listen on %s:%s: %s\n", cfg.listen_host, cfg.listen_port,
                    strerror(errno));
            if (fd >= 0)
                close(fd);
            freeaddrinfo(found);
            return false;
        }
        if (i == 0 && getsockname(fd, (struct sockaddr *)&bound, &bound_len) != 0) {
            fprintf(stderr, "privline-tunnel: getsockname: %s\n", strerror(errno));
            close(fd);
            freeaddrinfo(found);
            return false;
        }
        workers[i].listen_fd = fd;
    }
    freeaddrinfo(found);
    describe_sockaddr((struct sockaddr *)&bound, bound_len, text, sizeof text);
    fprintf(stderr, "listening %s (%zu workers, %s, %s %s)\n", text, cfg.workers, protocol_name(cfg.protocol),
            cfg.role == ROLE_SERVER ? "target" : "server end", cfg.remote_text);
    fflush(stderr);
    return true;
}

int main(int argc, char **argv)
{
    sigset_t signals;
    struct sigaction sa;
    size_t i;
    int status = 0;

    setvbuf(stderr, NULL, _IOLBF, 0);
    parse_args(argc, argv);
    if (cfg.role == ROLE_SERVER && cfg.allow_file == NULL && cfg.allow_args_count == 0)
        fprintf(stderr, "privline-tunnel: no --allow-file: every client that knows the network key is accepted\n");

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    /* The workers never see the signals: the main thread waits for them. */
    sigemptyset(&signals);
    sigaddset(&signals, SIGHUP);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &signals, NULL);

    workers = calloc(cfg.workers, sizeof *workers);
    if (workers == NULL) {
        fprintf(stderr, "privline-tunnel: out of memory\n");
        return EXIT_FAILED;
    }
    for (i = 0; i < cfg.workers; i++)
        workers[i].listen_fd = -1;
    listeners_open = cfg.workers;
    if (!start_listening())
        return EXIT_FAILED;
    for (i = 0; i < cfg.workers; i++) {
        worker_t *w = &workers[i];
        w->index = (int)i;
        w->epfd = epoll_create1(EPOLL_CLOEXEC);
        w->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (w->epfd < 0 || pipe2(w->wake, O_NONBLOCK | O_CLOEXEC) != 0
            || pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            fprintf(stderr, "privline-tunnel: cannot start worker %zu: %s\n", i, strerror(errno));
            return EXIT_FAILED;
        }
    }

    for (;;) {
        int signo = 0;
        if (sigwait(&signals, &signo) != 0)
            continue;
        if (signo == SIGHUP) {
            if (cfg.role == ROLE_SERVER)
                load_allow_list(false);
            continue;
        }
        break; /* SIGTERM or SIGINT */
    }
    drain_deadline = now_seconds() + cfg.drain_timeout;
    atomic_store(&stopping, true);
    for (i = 0; i < cfg.workers; i++) {
        unsigned char byte = 1;
        if (write(workers[i].wake[1], &byte, 1) < 0)
            status = EXIT_FAILED;
    }
    pthread_mutex_lock(&listeners_lock);
    while (listeners_open > 0 && status != EXIT_FAILED)
        pthread_cond_wait(&listeners_closed, &listeners_lock);
    pthread_mutex_unlock(&listeners_lock);
    pthread_mutex_lock(&admit_lock);
    fprintf(stderr, "draining: stopped accepting; %zu connections open, --drain-timeout %g s\n", open_count,
            cfg.drain_timeout);
    pthread_mutex_unlock(&admit_lock);
    for (i = 0; i < cfg.workers; i++) {
        pthread_join(workers[i].thread, NULL);
        close(workers[i].epfd);
        close(workers[i].wake[0]);
        close(workers[i].wake[1]);
        if (workers[i].spare_fd >= 0)
            close(workers[i].spare_fd);
    }
    fprintf(stderr, "drained: every worker stopped\n");
    free(workers);
    free(allow_keys);
    free(cfg.allow_args);
    free(cfg.listen_host);
    addr_counts_free(&addr_counts);
    privline_identity_free(identity);
    wipe(cfg.network_key, sizeof cfg.network_key);
    return status;
}
