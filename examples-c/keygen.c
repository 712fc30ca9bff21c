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
 */

#include "common.h"
#include "privline.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    uint8_t seed[PRIVLINE_SEED_LEN], public_key[PRIVLINE_PUBLIC_KEY_LEN];
    char seed_hex[2 * PRIVLINE_SEED_LEN + 1], public_hex[2 * PRIVLINE_PUBLIC_KEY_LEN + 1];
    privline_result result;
    int status = 0;

    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("usage: %s\n  prints a new identity: 'secret <64 hex>' and 'public <64 hex>'\n", argv[0]);
        return 0;
    }
    if (argc != 1) {
        fprintf(stderr, "usage: %s\n  prints a new identity: 'secret <64 hex>' and 'public <64 hex>'\n",
                argv[0]);
        return EXIT_USAGE;
    }

    result = privline_identity_generate(seed, public_key);
    if (result != PRIVLINE_RESULT_OK) {
        fprintf(stderr, "privline-keygen: cannot generate an identity: %s\n", privline_result_str(result));
        return EXIT_FAILED;
    }
    hex_encode(seed, sizeof seed, seed_hex);
    hex_encode(public_key, sizeof public_key, public_hex);
    if (printf("secret %s\npublic %s\n", seed_hex, public_hex) < 0 || fflush(stdout) != 0) {
        fprintf(stderr, "privline-keygen: cannot write the keys\n");
        status = EXIT_FAILED;
    }
    wipe(seed, sizeof seed);
    wipe(seed_hex, sizeof seed_hex);
    return status;
}
