/*
 * nginx-loyalty: libFuzzer harness for the attribution cookie
 * (loyalty_ref): loyalty_ref_cookie_parse() and
 * loyalty_ref_cookie_verify().
 *
 * The input is the referrer the store names as the code's owner, a
 * newline, then the cookie value (no newline: no referrer, and nothing
 * verifies), checked against the keyring of fuzz_cookie.c
 * (t/fuzz/keys.txt).  Invariants:
 *
 *   - parse: the code lies within the value, 1-32 bytes without "~",
 *     the time within 0..LOYALTY_EXPIRES_MAX; an old-form value's
 *     referrer lies within it and is a valid id, a new one has none;
 *   - verify accepts only what parse accepts, with the same code, time
 *     and form, for a valid referrer (the old form: the one it names),
 *     and then gives that referrer;
 *   - signed again (new form, bound to the referrer) the fields give
 *     exactly the value when it was a new-form value under the first
 *     key, and always one that verifies to the same fields for that
 *     referrer only, and stops verifying when any one bit changes;
 *   - an old-form value, signed again by hand with the first key, gives
 *     exactly the value when its kid is the first key's, and always one
 *     that verifies for its referrer only, and not after any bit flip.
 */

#include <string.h>

#include "loyalty_sign.h"
#include "fuzz.h"
#include "fuzz_keys.h"


static loyalty_keyring_t  *fuzz_kr;


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_kr = fuzz_keyring("fuzz_ref");

    return 0;
}


/* a valid id that is not the one given: the MAC must not hold for it */
static const char *
fuzz_other(const char *id, size_t len)
{
    return (len == 1 && id[0] == 'a') ? "b" : "a";
}


/* the old form CODE~REFERRER~AT~KID~MAC with the first key, by hand */
static size_t
fuzz_sign_legacy(const loyalty_ref_cookie_t *ref, char *out)
{
    int                   n;
    uint8_t               mac[LOYALTY_MAC_LEN];
    const loyalty_key_t  *key;

    key = &fuzz_kr->keys[0];

    n = snprintf(out, LOYALTY_REF_COOKIE_MAX + 1, "%.*s~%.*s~%lld~%.*s",
                 (int) ref->code_len, ref->code, (int) ref->referrer_len,
                 ref->referrer, (long long) ref->at, (int) key->kid_len,
                 key->kid);
    FUZZ_CHECK(n > 0
               && (size_t) n + 1 + LOYALTY_MAC_B64_LEN
                  <= LOYALTY_REF_COOKIE_MAX);

    FUZZ_CHECK(loyalty_keyring_mac(fuzz_kr, key, LOYALTY_DOMAIN_REF, out,
                                   (size_t) n, mac)
               == 0);

    out[n++] = '~';
    n += (int) loyalty_base64url_encode(mac, sizeof(mac), out + n);
    out[n] = '\0';

    return (size_t) n;
}


/*
 * out, of n bytes, verifies for referrer to ref's code and time, and not
 * for another referrer, nor once any one bit of it changes
 */
static void
fuzz_genuine(char *out, size_t n, const char *referrer, size_t referrer_len,
    const loyalty_ref_cookie_t *ref, unsigned legacy)
{
    size_t                i;
    unsigned              bit;
    const char           *other;
    loyalty_ref_cookie_t  ref2;

    FUZZ_CHECK(loyalty_ref_cookie_verify(fuzz_kr, out, n, referrer,
                                         referrer_len, &ref2)
               == 0);
    FUZZ_CHECK(ref2.legacy == legacy);
    FUZZ_CHECK(ref2.code == out && ref2.code_len == ref->code_len);
    FUZZ_CHECK(memcmp(ref2.code, ref->code, ref->code_len) == 0);
    FUZZ_CHECK(ref2.at == ref->at);
    FUZZ_CHECK(ref2.referrer == referrer
               && ref2.referrer_len == referrer_len);

    other = fuzz_other(referrer, referrer_len);
    FUZZ_CHECK(loyalty_ref_cookie_verify(fuzz_kr, out, n, other,
                                         strlen(other), &ref2)
               != 0);

    for (i = 0; i < n; i++) {
        for (bit = 0; bit < 8; bit++) {
            out[i] ^= (char) (1u << bit);
            FUZZ_CHECK(loyalty_ref_cookie_verify(fuzz_kr, out, n, referrer,
                                                 referrer_len, &ref2)
                       != 0);
            out[i] ^= (char) (1u << bit);
        }
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                    rc, parsed;
    long                   n;
    char                  *value, *referrer, *kid, *end;
    size_t                 i, len, referrer_len, tildes;
    const uint8_t         *nl;
    loyalty_ref_cookie_t   ref, got;
    char                   out[LOYALTY_REF_COOKIE_MAX + 1];

    /* REFERRER "\n" VALUE; each in a buffer of exactly its size */
    nl = memchr(data, '\n', size);
    referrer_len = nl ? (size_t) (nl - data) : 0;
    len = nl ? size - referrer_len - 1 : size;

    referrer = malloc(referrer_len ? referrer_len : 1);
    value = malloc(len ? len : 1);
    FUZZ_CHECK(referrer != NULL && value != NULL);
    memcpy(referrer, data, referrer_len);
    memcpy(value, data + size - len, len);
    end = value + len;

    memset(&got, 0x5a, sizeof(got));

    parsed = loyalty_ref_cookie_parse(value, len, &got);
    FUZZ_CHECK(parsed == 0 || parsed == -1);

    if (parsed == 0) {
        FUZZ_CHECK(got.code == value && got.code + got.code_len <= end);
        FUZZ_CHECK(got.code_len >= 1
                   && got.code_len <= LOYALTY_REF_CODE_MAX);
        FUZZ_CHECK(memchr(got.code, '~', got.code_len) == NULL);
        FUZZ_CHECK(got.at >= 0 && got.at <= LOYALTY_EXPIRES_MAX);

        if (got.legacy) {
            FUZZ_CHECK(got.referrer > value
                       && got.referrer + got.referrer_len <= end);
            FUZZ_CHECK(loyalty_valid_id(got.referrer, got.referrer_len));

        } else {
            FUZZ_CHECK(got.referrer == NULL && got.referrer_len == 0);
        }
    }

    rc = loyalty_ref_cookie_verify(fuzz_kr, value, len, referrer,
                                   referrer_len, &ref);
    FUZZ_CHECK(rc == 0 || rc == -1);

    if (rc != 0) {
        goto done;
    }

    /* only what parses, to the same fields, for a valid referrer */
    FUZZ_CHECK(parsed == 0);
    FUZZ_CHECK(loyalty_valid_id(referrer, referrer_len));
    FUZZ_CHECK(ref.legacy == got.legacy);
    FUZZ_CHECK(ref.code == got.code && ref.code_len == got.code_len);
    FUZZ_CHECK(ref.at == got.at);
    FUZZ_CHECK(ref.referrer == referrer && ref.referrer_len == referrer_len);

    if (got.legacy) {
        FUZZ_CHECK(got.referrer_len == referrer_len
                   && memcmp(got.referrer, referrer, referrer_len) == 0);
    }

    /* the kid follows the second "~", the third in the old form */
    for (i = 0, tildes = 0, kid = NULL; i < len; i++) {
        if (value[i] == '~' && ++tildes == (ref.legacy ? 3u : 2u)) {
            kid = value + i + 1;
            break;
        }
    }

    FUZZ_CHECK(kid != NULL);

    if ((size_t) (end - kid) > fuzz_kr->keys[0].kid_len
        && memcmp(kid, fuzz_kr->keys[0].kid, fuzz_kr->keys[0].kid_len) == 0
        && kid[fuzz_kr->keys[0].kid_len] == '~')
    {
        kid = NULL;     /* the first key's: signing again gives the value */
    }

    n = loyalty_ref_cookie_sign(fuzz_kr, ref.code, ref.code_len, referrer,
                                referrer_len, ref.at, out);
    FUZZ_CHECK(n > 0 && n <= LOYALTY_REF_COOKIE_MAX);

    if (!ref.legacy && kid == NULL) {
        FUZZ_CHECK((size_t) n == len && memcmp(out, value, len) == 0);
    }

    fuzz_genuine(out, (size_t) n, referrer, referrer_len, &ref, 0);

    if (ref.legacy) {
        ref.referrer = got.referrer;
        n = (long) fuzz_sign_legacy(&ref, out);

        if (kid == NULL) {
            FUZZ_CHECK((size_t) n == len && memcmp(out, value, len) == 0);
        }

        fuzz_genuine(out, (size_t) n, referrer, referrer_len, &ref, 1);
    }

done:

    free(referrer);
    free(value);

    return 0;
}
