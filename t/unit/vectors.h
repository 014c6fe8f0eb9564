/*
 * What the cookies' test vector programs (cookie_vectors.c, ref_vectors.c)
 * share: the keys, writing the keys and genuine MACs, and the checks of a
 * vectors file against the code.  A program defines, before it includes
 * this file,
 *
 *     VECTORS     the vectors file, from the repository root
 *     VEC_NAME    its own name, for its error messages
 *     VEC_NKEYS   how many keys its vec_keys[] holds
 *
 * and then defines vec_keys[VEC_NKEYS], in the keys file's order.
 */

#ifndef LOYALTY_T_UNIT_VECTORS_H
#define LOYALTY_T_UNIT_VECTORS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <openssl/hmac.h>

#include "loyalty_sign.h"
#include "tap.h"


#define DUMP_FLAGS  (JSON_INDENT(2) | JSON_ENSURE_ASCII | JSON_PRESERVE_ORDER)

/* the keys of t/lib/Loyalty/Harness.pm (k1 and k0), and a long one */
#define K1HEX       "5ddf6f585beb20501799d3b7b6370cac" \
                    "263cda66dc4a6ff968c1a9c5006a6158"
#define K0HEX       "55c91fc43a6dfb674fd6f8e4f0da91bd" \
                    "79b6afc2488d5b265efe6bc465a4afbc"
#define K128HEX     "0159e4a8abee86c6a7c6c97a223b67be" \
                    "1d066be6b9e9ca528d6377fd75077a27" \
                    "a2acc13c61e6ae5cdd390180d649421d" \
                    "eefcfc594e528582cefa93984a00a377" \
                    "143813f19723711eca73145dfa8221d3" \
                    "7f84b28adcdded84b3cce8a8b6e18f95" \
                    "19ab0304e20692c30239cd38f51c303e" \
                    "1225ed0c55c7026ddfd8cb3fabfa54e9"
#define KID16       "rotation-2027_Q1"

#define ID64        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz" \
                    "0123456789_."

/* alice's member cookie of t/00-harness.t expires at T */
#define T           INT64_C(1700000000)
#define HOUR        3600
#define DAY         86400

#define BUFLEN      4200

#define KEY_TEXT_LEN  (LOYALTY_KID_MAX + 2 + 2 * LOYALTY_SECRET_MAX + 1)


typedef struct {
    const char  *kid;
    const char  *hex;
} vec_key_t;


/* in the keys file's order: the first signs */
static const vec_key_t     vec_keys[VEC_NKEYS];
static loyalty_keyring_t  *vec_rings[VEC_NKEYS];


static void
fail(const char *what)
{
    fprintf(stderr, VEC_NAME ": %s\n", what);
    exit(1);
}


/* a keyring of one key, which therefore signs */
static loyalty_keyring_t *
key_ring(const char *kid)
{
    char    text[KEY_TEXT_LEN];
    char    err[LOYALTY_ERRLEN];
    size_t  i;

    for (i = 0; i < nelts(vec_keys); i++) {
        if (strcmp(vec_keys[i].kid, kid) != 0) {
            continue;
        }

        if (vec_rings[i] == NULL) {
            if ((size_t) snprintf(text, sizeof(text), "%s %s", kid,
                                  vec_keys[i].hex)
                >= sizeof(text))
            {
                fail("key too long");
            }

            vec_rings[i] = loyalty_keyring_parse(text, strlen(text), err,
                                                 sizeof(err));
            if (vec_rings[i] == NULL) {
                fail(err);
            }
        }

        return vec_rings[i];
    }

    fail("no such key");
    return NULL;
}


/*
 * prefix "~" MAC, the MAC over domain "~" prefix, then "~" bound unless
 * bound is NULL, with kid's secret: genuine MACs over anything
 */
static size_t
seal(const char *kid, const char *domain, const char *prefix, size_t len,
    const char *bound, char *out)
{
    uint8_t             mac[LOYALTY_MAC_LEN];
    loyalty_keyring_t  *kr;

    kr = key_ring(kid);

    if (len + 2 + LOYALTY_MAC_B64_LEN > BUFLEN
        || loyalty_keyring_mac_bound(kr, &kr->keys[0], domain, prefix, len,
                                     bound, bound ? strlen(bound) : 0, mac)
           != 0)
    {
        fail("cannot MAC");
    }

    memmove(out, prefix, len);
    out[len++] = '~';
    len += loyalty_base64url_encode(mac, sizeof(mac), out + len);
    out[len] = '\0';

    return len;
}


/* prefix "~" MAC, with a MAC made as the specification does not say */
static size_t
seal_raw(const void *key, size_t key_len, const char *msg, size_t msg_len,
    const char *prefix, char *out)
{
    size_t        n;
    uint8_t       mac[EVP_MAX_MD_SIZE];
    unsigned int  mac_len;

    if (HMAC(EVP_sha256(), key, (int) key_len, (const uint8_t *) msg,
             msg_len, mac, &mac_len)
        == NULL)
    {
        fail("cannot HMAC");
    }

    n = (size_t) sprintf(out, "%s~", prefix);
    n += loyalty_base64url_encode(mac, mac_len, out + n);
    out[n] = '\0';

    return n;
}


static json_t *
make_keys(void)
{
    size_t   i;
    json_t  *keys;

    keys = json_array();

    for (i = 0; i < nelts(vec_keys); i++) {
        json_array_append_new(keys, json_pack("{s:s, s:s}",
                                              "kid", vec_keys[i].kid,
                                              "secret_hex", vec_keys[i].hex));
    }

    return keys;
}


/* the MAC over input (domain "~" ...), in hex, with kid's secret */
static void
mac_hex(const char *kid, const char *input, char *hex)
{
    char                domain[8];
    size_t              k, dlen;
    uint8_t             mac[LOYALTY_MAC_LEN];
    loyalty_keyring_t  *kr;

    kr = key_ring(kid);
    dlen = (size_t) (strchr(input, '~') - input);

    if (dlen >= sizeof(domain)) {
        fail("domain");
    }

    memcpy(domain, input, dlen);
    domain[dlen] = '\0';

    if (loyalty_keyring_mac(kr, &kr->keys[0], domain, input + dlen + 1,
                            strlen(input) - dlen - 1, mac)
        != 0)
    {
        fail("cannot MAC");
    }

    for (k = 0; k < sizeof(mac); k++) {
        sprintf(hex + 2 * k, "%02x", mac[k]);
    }
}


/* the checks, against the file as checked in */


static loyalty_keyring_t *
ring_of(const char *text, size_t len)
{
    char                err[LOYALTY_ERRLEN];
    loyalty_keyring_t  *kr;

    kr = loyalty_keyring_parse(text, len, err, sizeof(err));
    if (kr == NULL) {
        diag("keys: %s", err);
    }

    return kr;
}


/* the secret of kid in the file's "keys", as bytes; its length or -1 */
static long
secret_of(json_t *doc, const char *kid, uint8_t *secret)
{
    size_t       i;
    json_t      *key;
    const char  *hex;

    json_array_foreach(json_object_get(doc, "keys"), i, key) {
        if (strcmp(json_string_value(json_object_get(key, "kid")), kid)
            == 0)
        {
            hex = json_string_value(json_object_get(key, "secret_hex"));
            return loyalty_hex_decode(hex, strlen(hex), secret,
                                      LOYALTY_SECRET_MAX);
        }
    }

    return -1;
}


/* a keyring of the file's key kid alone, so that it signs */
static loyalty_keyring_t *
signer_of(json_t *doc, const char *kid)
{
    char     text[KEY_TEXT_LEN];
    size_t   i;
    json_t  *key;

    json_array_foreach(json_object_get(doc, "keys"), i, key) {
        if (strcmp(json_string_value(json_object_get(key, "kid")), kid)
            == 0)
        {
            snprintf(text, sizeof(text), "%s %s", kid,
                     json_string_value(json_object_get(key, "secret_hex")));
            return ring_of(text, strlen(text));
        }
    }

    return NULL;
}


/*
 * HMAC-SHA256 over v's mac_input with the secret of v's kid, by OpenSSL's
 * one-shot HMAC: the MAC in mac (len bytes) and in hex; 0 if none
 */
static int
input_hmac(json_t *doc, json_t *v, uint8_t mac[EVP_MAX_MD_SIZE],
    unsigned int *len, char hex[2 * EVP_MAX_MD_SIZE + 1])
{
    long         n;
    size_t       k;
    uint8_t      secret[LOYALTY_SECRET_MAX];
    const char  *input;

    input = json_string_value(json_object_get(v, "mac_input"));
    n = secret_of(doc, json_string_value(json_object_get(v, "kid")), secret);

    if (n < 0
        || HMAC(EVP_sha256(), secret, (int) n, (const uint8_t *) input,
                strlen(input), mac, len)
           == NULL)
    {
        return 0;
    }

    for (k = 0; k < *len; k++) {
        sprintf(hex + 2 * k, "%02x", mac[k]);
    }

    return 1;
}


static int
check_file(json_t *generated)
{
    int     same;
    char   *want, *got;
    long    len;
    FILE   *f;

    want = json_dumps(generated, DUMP_FLAGS);
    f = fopen(VECTORS, "rb");
    got = NULL;
    len = -1;

    if (f && fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) > 0
        && fseek(f, 0, SEEK_SET) == 0 && (got = malloc((size_t) len)))
    {
        len = (long) fread(got, 1, (size_t) len, f);
    }

    if (f) {
        fclose(f);
    }

    same = want && got && len == (long) strlen(want) + 1
           && memcmp(got, want, (size_t) len - 1) == 0
           && got[len - 1] == '\n';

    if (!ok(same, VECTORS " is what the code makes")) {
        diag("run \"make vectors\", then check the difference");
    }

    free(want);
    free(got);

    return same;
}


/* the file as checked in; NULL once a plan of one failed test is out */
static json_t *
vec_load(void)
{
    json_t        *doc;
    json_error_t   jerr;

    doc = json_load_file(VECTORS, JSON_ALLOW_NUL, &jerr);
    if (doc == NULL) {
        plan(1);
        ok(0, "%s: %s (run from the repository root)", VECTORS, jerr.text);
    }

    return doc;
}


/* "--write" prints the vectors made, else checks the file against them */
static int
vec_main(int argc, char **argv, json_t *(*make)(void),
    int (*check)(json_t *generated))
{
    int      rc;
    size_t   i;
    json_t  *vectors;

    vectors = make();
    if (vectors == NULL) {
        fail("cannot make the vectors");
    }

    if (argc == 2 && strcmp(argv[1], "--write") == 0) {
        rc = json_dumpf(vectors, stdout, DUMP_FLAGS) == 0
             && fputc('\n', stdout) != EOF ? 0 : 1;

    } else {
        rc = check(vectors);
    }

    json_decref(vectors);

    for (i = 0; i < nelts(vec_rings); i++) {
        loyalty_keyring_free(vec_rings[i]);
    }

    return rc;
}


#endif /* LOYALTY_T_UNIT_VECTORS_H */
