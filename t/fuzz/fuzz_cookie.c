/*
 * nginx-loyalty: libFuzzer harness for loyalty_member_cookie_verify().
 *
 * The input is a member cookie value, checked against a fixed keyring at
 * a fixed time.  Invariants:
 *
 *   - on VALID or EXPIRED the id lies within the input and is a valid id;
 *   - on VALID or EXPIRED, signing that id again with the same expiry and
 *     key gives back exactly the input: one cookie per (id, exp, kid);
 *   - a value loyalty_member_cookie_sign() made from the input verifies,
 *     and stops verifying when any one of its bytes changes.
 */

#include <string.h>

#include "loyalty_sign.h"
#include "fuzz.h"
#include "fuzz_keys.h"


/* 2027-01-15T08:00:00Z: cookies signed today with --ttl 30d have expired */
#define FUZZ_NOW  INT64_C(1800000000)


static loyalty_keyring_t  *fuzz_kr;


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_kr = fuzz_keyring("fuzz_cookie");

    return 0;
}


/* what the value would be if signed with key: the long way, by hand */
static size_t
fuzz_sign(const loyalty_key_t *key, const char *id, size_t id_len,
    int64_t expires, char *out)
{
    int      n;
    uint8_t  mac[LOYALTY_MAC_LEN];

    n = snprintf(out, LOYALTY_COOKIE_MAX + 1, "%.*s~%lld~%.*s", (int) id_len,
                 id, (long long) expires, (int) key->kid_len, key->kid);

    FUZZ_CHECK(n > 0 && n + 1 + LOYALTY_MAC_B64_LEN <= LOYALTY_COOKIE_MAX);
    FUZZ_CHECK(loyalty_keyring_mac(fuzz_kr, key, LOYALTY_DOMAIN_MEMBER, out,
                                   (size_t) n, mac)
               == 0);

    out[n++] = '~';
    n += (int) loyalty_base64url_encode(mac, sizeof(mac), out + n);
    out[n] = '\0';

    return (size_t) n;
}


static void
fuzz_check_accepted(loyalty_cookie_status_e rc, const char *value,
    size_t len, const char *id, size_t id_len)
{
    long                  n;
    char                  out[LOYALTY_COOKIE_MAX + 1];
    size_t                i, kid_len;
    int64_t               expires;
    const char           *p, *end, *kid;
    const loyalty_key_t  *key;

    end = value + len;

    FUZZ_CHECK(id >= value && id_len <= len && id + id_len <= end);
    FUZZ_CHECK(loyalty_valid_id(id, id_len));

    /* the expiry and the kid, read independently of the code under test */
    p = id + id_len;
    FUZZ_CHECK(p < end && *p == '~');

    expires = 0;
    for (p++; p < end && *p >= '0' && *p <= '9'; p++) {
        FUZZ_CHECK(expires < INT64_C(100000000000000));
        expires = expires * 10 + (*p - '0');
    }

    FUZZ_CHECK(p < end && *p == '~');
    FUZZ_CHECK(rc == (expires < FUZZ_NOW ? LOYALTY_COOKIE_EXPIRED
                                         : LOYALTY_COOKIE_VALID));

    kid = ++p;
    p = memchr(kid, '~', (size_t) (end - kid));
    FUZZ_CHECK(p != NULL);
    kid_len = (size_t) (p - kid);

    key = NULL;
    for (i = 0; i < fuzz_kr->nkeys; i++) {
        if (fuzz_kr->keys[i].kid_len == kid_len
            && memcmp(fuzz_kr->keys[i].kid, kid, kid_len) == 0)
        {
            key = &fuzz_kr->keys[i];
            break;
        }
    }

    FUZZ_CHECK(key != NULL);

    if (key == &fuzz_kr->keys[0]) {
        n = loyalty_member_cookie_sign(fuzz_kr, id, id_len, expires, out);
        FUZZ_CHECK(n >= 0 && (size_t) n == len);
        FUZZ_CHECK(memcmp(out, value, len) == 0);
    }

    /* cookie_sign() only signs with the first key: check the rest by hand */
    FUZZ_CHECK(fuzz_sign(key, id, id_len, expires, out) == len);
    FUZZ_CHECK(memcmp(out, value, len) == 0);
}


/* signs an id taken from the input, then tampers with the result */
static void
fuzz_sign_verify(const uint8_t *data, size_t size)
{
    long                      n;
    char                      out[LOYALTY_COOKIE_MAX + 1];
    size_t                    id_len, got_len;
    int64_t                   expires;
    int64_t                   got_expires;
    const char               *id, *got, *tilde;
    loyalty_cookie_status_e   rc;

    id = (const char *) data;
    tilde = memchr(id, '~', size);
    id_len = tilde ? (size_t) (tilde - id) : size;

    /* half of the inputs sign a value that has already expired */
    expires = FUZZ_NOW + (int64_t) (size % 64) * 1000 - 32000;

    n = loyalty_member_cookie_sign(fuzz_kr, id, id_len, expires, out);

    if (!loyalty_valid_id(id, id_len)) {
        FUZZ_CHECK(n == -1);
        return;
    }

    FUZZ_CHECK(n > 0 && n <= LOYALTY_COOKIE_MAX);
    FUZZ_CHECK(out[n] == '\0' && strlen(out) == (size_t) n);

    got = NULL;
    got_len = 0;
    rc = loyalty_member_cookie_verify(fuzz_kr, out, (size_t) n, FUZZ_NOW,
                                      &got, &got_len, &got_expires);

    FUZZ_CHECK(rc == (expires < FUZZ_NOW ? LOYALTY_COOKIE_EXPIRED
                                         : LOYALTY_COOKIE_VALID));
    FUZZ_CHECK(got == out && got_len == id_len && got_expires == expires);
    FUZZ_CHECK(memcmp(got, id, id_len) == 0);

    /*
     * Any one changed byte must be caught: the id, expiry and kid are
     * under the MAC, and the MAC's unused low bits must be zero.
     */
    out[size % (size_t) n] ^= (char) (1 + size % 255);

    rc = loyalty_member_cookie_verify(fuzz_kr, out, (size_t) n, FUZZ_NOW,
                                      &got, &got_len, &got_expires);
    FUZZ_CHECK(rc == LOYALTY_COOKIE_INVALID);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char                     *value;
    size_t                    id_len;
    int64_t                   exp;
    const char               *id;
    loyalty_cookie_status_e   rc;

    /* a copy of exactly the input's size, so ASan sees any over-read */
    value = malloc(size ? size : 1);
    FUZZ_CHECK(value != NULL);
    memcpy(value, data, size);

    id = NULL;
    id_len = 0;

    rc = loyalty_member_cookie_verify(fuzz_kr, value, size, FUZZ_NOW, &id,
                                      &id_len, &exp);

    FUZZ_CHECK(rc == LOYALTY_COOKIE_VALID || rc == LOYALTY_COOKIE_EXPIRED
               || rc == LOYALTY_COOKIE_INVALID);

    if (rc != LOYALTY_COOKIE_INVALID) {
        fuzz_check_accepted(rc, value, size, id, id_len);
    }

    free(value);

    fuzz_sign_verify(data, size);

    return 0;
}
