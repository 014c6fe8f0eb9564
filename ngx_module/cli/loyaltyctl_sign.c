/*
 * loyaltyctl sign-member: a member cookie value, signed as nginx checks it.
 */

#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "loyalty_sign.h"
#include "loyaltyctl.h"


/* --ttl: a duration, up to a cookie's longest life */
static int
loyaltyctl_sign_ttl(const char *arg, void *dest)
{
    int64_t  ttl;

    ttl = loyalty_parse_duration(arg, strlen(arg));

    if (ttl <= 0 || ttl > LOYALTY_EXPIRES_MAX - time(NULL)) {
        return -1;
    }

    *(int64_t *) dest = ttl;
    return 0;
}


int
loyaltyctl_sign_member(const loyaltyctl_opts_t *o, int argc, char **argv)
{
    int                  rc;
    char                 err[LOYALTY_ERRLEN], out[LOYALTY_COOKIE_MAX + 1];
    long                 n;
    int64_t              ttl;
    const char          *keys, *id;
    loyalty_keyring_t   *kr;

    loyaltyctl_option_t  opts[] = {
        { "keys", 'k', 1, loyaltyctl_set_string, &keys, NULL },
        { "ttl", 't', 1, loyaltyctl_sign_ttl, &ttl, NULL },
        { NULL, 0, 0, NULL, NULL, NULL }
    };

    keys = NULL;
    ttl = 30 * LOYALTY_DAY;

    rc = loyaltyctl_options(o, argc, argv, opts, 1, 1);
    if (rc != LOYALTYCTL_OK) {
        return rc;
    }

    if (keys == NULL) {
        return loyaltyctl_usage(o->usage);
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
