/*
 * privline-keygen: makes a new privline identity and prints it as
 *
 *     secret <64 hex digits>
 *     public <64 hex digits>
 *
 * The secret is the 32-byte seed that privline-server and privline-client
 * take with --secret; the public key is what peers pass to --server-key or
 * --allow. The same identity serves both protocols (--protocol privline1 or
 * shs1); for tools that want Scuttlebutt's 64-byte secret, it is the secret
 * followed by the public key (the peers take that form too). Keep the secret
 * line secret.
 *
 *     privline-keygen --out FILE
 *
 * writes the secret seed (64 hex digits and a newline) to FILE instead,
 * created with mode 0600 (O_CREAT | O_EXCL: an existing file is never
 * overwritten), and prints only "public <64 hex digits>". That is the form
 * --secret-file reads (privline-tunnel, privline-server, privline-client),
 * so the secret never appears on a command line or a terminal.
 */

#define _POSIX_C_SOURCE 200809L

#include "common.h"
#include "privline.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define USAGE "usage: %s [--out FILE]\n  prints a new identity: 'secret <64 hex>' and 'public <64 hex>'\n" \
              "  --out FILE: write the secret to FILE (mode 0600, never overwritten), print the public key\n"

/* Writes the secret's hex and a newline to a new file only the owner may
 * read. Returns false (with a message on stderr) on any failure. */
static bool write_secret_file(const char *path, const char *seed_hex)
{
    size_t len = strlen(seed_hex), done = 0;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        fprintf(stderr, "privline-keygen: cannot create %s: %s%s\n", path, strerror(errno),
                errno == EEXIST ? " (refusing to overwrite it)" : "");
        return false;
    }
    if (fchmod(fd, 0600) != 0) {
        fprintf(stderr, "privline-keygen: cannot set the mode of %s: %s\n", path, strerror(errno));
        close(fd);
        unlink(path);
        return false;
    }
    while (done < len + 1) {
        const char *from = done < len ? seed_hex + done : "\n";
        size_t want = done < len ? len - done : 1;
        ssize_t n = write(fd, from, want);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            fprintf(stderr, "privline-keygen: cannot write %s: %s\n", path, strerror(errno));
            close(fd);
            unlink(path);
            return false;
        }
        done += (size_t)n;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        fprintf(stderr, "privline-keygen: cannot write %s: %s\n", path, strerror(errno));
        unlink(path);
        return false;
    }
    return true;
}

int main(int argc, char **argv)
{
    uint8_t seed[PRIVLINE_SEED_LEN], public_key[PRIVLINE_PUBLIC_KEY_LEN];
    char seed_hex[2 * PRIVLINE_SEED_LEN + 1], public_hex[2 * PRIVLINE_PUBLIC_KEY_LEN + 1];
    privline_result result;
    int status = 0;

    const char *out_path = NULL;

    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf(USAGE, argv[0]);
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "--out") == 0 && argv[2][0] != '\0') {
        out_path = argv[2];
    } else if (argc != 1) {
        fprintf(stderr, USAGE, argv[0]);
        return EXIT_USAGE;
    }

    result = privline_identity_generate(seed, public_key);
    if (result != PRIVLINE_RESULT_OK) {
        fprintf(stderr, "privline-keygen: cannot generate an identity: %s\n", privline_result_str(result));
        return EXIT_FAILED;
    }
    hex_encode(seed, sizeof seed, seed_hex);
    hex_encode(public_key, sizeof public_key, public_hex);
    if (out_path != NULL) {
        if (!write_secret_file(out_path, seed_hex))
            status = EXIT_FAILED;
        else if (printf("public %s\n", public_hex) < 0 || fflush(stdout) != 0) {
            fprintf(stderr, "privline-keygen: cannot write the public key\n");
            status = EXIT_FAILED;
        }
    } else if (printf("secret %s\npublic %s\n", seed_hex, public_hex) < 0 || fflush(stdout) != 0) {
        fprintf(stderr, "privline-keygen: cannot write the keys\n");
        status = EXIT_FAILED;
    }
    wipe(seed, sizeof seed);
    wipe(seed_hex, sizeof seed_hex);
    return status;
}
