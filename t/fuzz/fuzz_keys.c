/*
 * nginx-loyalty: libFuzzer harness for loyalty_keyring_parse().
 *
 * The input is the text of a keys file.  Besides "no crash, no leak"
 * (LeakSanitizer runs after every input), the invariants are:
 *
 *   - on failure err holds a message that fits the buffer;
 *   - on success there are 1-16 keys, each kid valid and distinct, one key
 *     per line that is neither blank nor a comment, in file order;
 *   - each key's MAC, from the precomputed hash states, is the one-shot
 *     HMAC-SHA256 of the line's secret.
 */

#include <string.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "loyalty_sign.h"
#include "fuzz.h"


#define FUZZ_MSG_MAX  200


static int
fuzz_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}


/*
 * The next line holding a key, split on blanks, checked only on inputs
 * the parser accepted; returns 0 at the end of the text.
 */
static int
fuzz_next_key(const char **pos, const char *end, const char **kid,
    size_t *kid_len, const char **hex, size_t *hex_len)
{
    const char  *p, *eol;

    for (p = *pos; p < end; p = eol + 1) {
        eol = memchr(p, '\n', (size_t) (end - p));
        if (eol == NULL) {
            eol = end;
        }

        while (p < eol && fuzz_space(*p)) {
            p++;
        }

        if (p == eol || *p == '#') {
            continue;
        }

        *kid = p;
        while (p < eol && !fuzz_space(*p)) {
            p++;
        }
        *kid_len = (size_t) (p - *kid);

        while (p < eol && fuzz_space(*p)) {
            p++;
        }

        *hex = p;
        while (p < eol && !fuzz_space(*p)) {
            p++;
        }
        *hex_len = (size_t) (p - *hex);

        while (p < eol && fuzz_space(*p)) {
            p++;
        }

        FUZZ_CHECK(p == eol);

        *pos = (eol < end) ? eol + 1 : end;
        return 1;
    }

    *pos = end;
    return 0;
}


static void
fuzz_check_keyring(loyalty_keyring_t *kr, const char *text, size_t len)
{
    long            n;
    size_t          i, j, kid_len, hex_len, msg_len;
    uint8_t         secret[LOYALTY_SECRET_MAX];
    uint8_t         msg[5 + FUZZ_MSG_MAX];
    uint8_t         mac[LOYALTY_MAC_LEN], want[EVP_MAX_MD_SIZE];
    unsigned int    want_len;
    const char     *pos, *end, *kid, *hex;
    loyalty_key_t  *key;

    FUZZ_CHECK(kr->nkeys >= 1 && kr->nkeys <= LOYALTY_KEYS_MAX);
    FUZZ_CHECK(kr->work != NULL);

    pos = text;
    end = text + len;

    /* sign a part of the input itself, so the message varies too */
    msg_len = len < FUZZ_MSG_MAX ? len : FUZZ_MSG_MAX;
    memcpy(msg, "fuzz~", 5);
    memcpy(msg + 5, text, msg_len);

    for (i = 0; i < kr->nkeys; i++) {
        key = &kr->keys[i];

        FUZZ_CHECK(loyalty_valid_kid(key->kid, key->kid_len));
        FUZZ_CHECK(key->inner != NULL && key->outer != NULL);

        for (j = 0; j < i; j++) {
            FUZZ_CHECK(kr->keys[j].kid_len != key->kid_len
                       || memcmp(kr->keys[j].kid, key->kid, key->kid_len));
        }

        FUZZ_CHECK(fuzz_next_key(&pos, end, &kid, &kid_len, &hex, &hex_len));
        FUZZ_CHECK(kid_len == key->kid_len);
        FUZZ_CHECK(memcmp(kid, key->kid, kid_len) == 0);

        n = loyalty_hex_decode(hex, hex_len, secret, sizeof(secret));
        FUZZ_CHECK(n >= LOYALTY_SECRET_MIN && n <= LOYALTY_SECRET_MAX);

        FUZZ_CHECK(loyalty_keyring_mac(kr, key, "fuzz", text, msg_len, mac)
                   == 0);

        /* the keyring MACs the domain, "~", then the message */
        FUZZ_CHECK(HMAC(EVP_sha256(), secret, (int) n, msg, 5 + msg_len,
                        want, &want_len)
                   != NULL);

        FUZZ_CHECK(want_len == LOYALTY_MAC_LEN);
        FUZZ_CHECK(memcmp(mac, want, LOYALTY_MAC_LEN) == 0);
    }

    /* no line with a key was left out */
    FUZZ_CHECK(!fuzz_next_key(&pos, end, &kid, &kid_len, &hex, &hex_len));
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char               *err;
    size_t              errlen;
    loyalty_keyring_t  *kr;

    /* a short error buffer now and then: messages must be cut, not spill */
    errlen = (size % 7 == 0) ? 1 + size % 40 : LOYALTY_ERRLEN;

    err = malloc(errlen);
    FUZZ_CHECK(err != NULL);
    memset(err, 0xa5, errlen);

    kr = loyalty_keyring_parse((const char *) data, size, err, errlen);

    if (kr == NULL) {
        FUZZ_CHECK(memchr(err, '\0', errlen) != NULL);
        FUZZ_CHECK(errlen == 1 || err[0] != '\0');

    } else {
        fuzz_check_keyring(kr, (const char *) data, size);
        loyalty_keyring_free(kr);
    }

    free(err);

    return 0;
}
