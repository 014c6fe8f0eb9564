/*
 * loyaltyctl sign-member: a member cookie value, signed as nginx checks it.
 */

#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "loyalty_sign.h"
#include "loyaltyctl.h"


static const char  loyaltyctl_usage_sign[] =
    "usage: loyaltyctl sign-member ID --keys FILE [--ttl DURATION]\n"
    "Prints a member cookie value signed with the first key in FILE.\n"
    "DURATION uses nginx's units (30m, 12h, 30d); the default is 30d.\n";


int
loyaltyctl_sign_member(const loyaltyctl_opts_t *o, int argc, char **argv)
{
    int                 c;
    char                err[LOYALTY_ERRLEN], out[LOYALTY_COOKIE_MAX + 1];
    long                n;
    int64_t             ttl;
    const char         *keys, *id;
    loyalty_keyring_t  *kr;

    static const struct option  longopts[] = {
        { "keys", required_argument, NULL, 'k' },
        { "ttl",  required_argument, NULL, 't' },
        { "help", no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };

    keys = NULL;
    ttl = 30 * LOYALTY_DAY;

    /* 0 restarts glibc's getopt, which then lets options follow the ID */
    optind = 0;

    while ((c = getopt_long(argc, argv, "k:t:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'k':
            keys = optarg;
            break;

        case 't':
            ttl = loyalty_parse_duration(optarg, strlen(optarg));
            if (ttl <= 0 || ttl > LOYALTY_EXPIRES_MAX - time(NULL)) {
                fprintf(stderr, "loyaltyctl: invalid --ttl \"%s\"\n",
                        optarg);
                return LOYALTYCTL_USAGE;
            }
            break;

        case 'h':
            fputs(loyaltyctl_usage_sign, stdout);
            return LOYALTYCTL_OK;

        default:
            return loyaltyctl_usage(loyaltyctl_usage_sign);
        }
    }

    if (optind + 1 != argc || keys == NULL) {
        return loyaltyctl_usage(loyaltyctl_usage_sign);
    }

    id = argv[optind];

    if (!loyalty_valid_id(id, strlen(id))) {
        fprintf(stderr, "loyaltyctl: \"%s\" is not a valid member id\n", id);
        return LOYALTYCTL_DATA;
    }

    kr = loyalty_keyring_load(keys, err, sizeof(err));
    if (kr == NULL) {
        fprintf(stderr, "loyaltyctl: keys: %s\n", err);
        return LOYALTYCTL_DATA;
    }

    n = loyalty_member_cookie_sign(kr, id, strlen(id),
                                   (int64_t) time(NULL) + ttl, out);
    loyalty_keyring_free(kr);

    if (n < 0) {
        fprintf(stderr, "loyaltyctl: cannot sign\n");
        return LOYALTYCTL_DATA;
    }

    printf("%s\n", out);
    return LOYALTYCTL_OK;
}
