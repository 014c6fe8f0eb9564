/*
 * nginx-loyalty: libFuzzer harness for loyalty_ref_cookie_verify(), the
 * attribution cookie (loyalty_ref).
 *
 * The input is a cookie value, checked against the keyring of
 * fuzz_cookie.c (t/fuzz/keys.txt).  Invariants:
 *
 *   - a genuine value's code, referrer and time lie within the input;
 *     the code is 1-32 bytes without "~", the referrer a valid id, the
 *     time within 0..LOYALTY_EXPIRES_MAX;
 *   - signed again with the first key, the fields give exactly the
 *     input when the input's kid is the first key's (one encoding), and
 *     always a value that verifies to the same fields;
 *   - that value stops verifying when any one of its bytes changes.
 */

#include <string.h>

#include "loyalty_sign.h"
#include "fuzz.h"


static const char  fuzz_keys[] =
    "# fuzz keys: the first signs, both verify\n"
    "fz-new  94a2b9c021d7ae0cb51d67aa2dd2adb40ada67bf88d0f041c7ac4fc607721f31"
    "ff985addafac91a8e930738409d4ba7f915558dde92fc5938720f475625dedb2b8fea9"
    "8a4ae79ebaab3520c269405d25\n"
    "\n"
    "fz_old\tf1bdb4210c293b6d35faa641b7fe87ed27fc2c5aab02637dd90e088b5bc22367"
    "\r\n";


static loyalty_keyring_t  *fuzz_kr;


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char  err[LOYALTY_ERRLEN];

    fuzz_kr = loyalty_keyring_parse(fuzz_keys, sizeof(fuzz_keys) - 1, err,
                                    sizeof(err));
    if (fuzz_kr == NULL || fuzz_kr->nkeys != 2) {
        fprintf(stderr, "fuzz_ref: bad built-in keys: %s\n",
                fuzz_kr ? "not two keys" : err);
        abort();
    }

    return 0;
}


static void
fuzz_same(const loyalty_ref_cookie_t *a, const loyalty_ref_cookie_t *b)
{
    FUZZ_CHECK(a->code_len == b->code_len);
    FUZZ_CHECK(memcmp(a->code, b->code, a->code_len) == 0);
    FUZZ_CHECK(a->referrer_len == b->referrer_len);
    FUZZ_CHECK(memcmp(a->referrer, b->referrer, a->referrer_len) == 0);
    FUZZ_CHECK(a->at == b->at);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                    rc;
    long                   n;
    char                  *value, *kid;
    size_t                 i, tildes;
    loyalty_ref_cookie_t   ref, ref2;
    char                   out[LOYALTY_REF_COOKIE_MAX + 1];

    /* exactly the input's size, so that a read past it is seen */
    value = malloc(size ? size : 1);
    FUZZ_CHECK(value != NULL);
    memcpy(value, data, size);

    rc = loyalty_ref_cookie_verify(fuzz_kr, value, size, &ref);
    FUZZ_CHECK(rc == 0 || rc == -1);

    if (rc != 0) {
        goto done;
    }

    FUZZ_CHECK(ref.code >= value && ref.code + ref.code_len <= value + size);
    FUZZ_CHECK(ref.referrer >= value
               && ref.referrer + ref.referrer_len <= value + size);
    FUZZ_CHECK(ref.code_len >= 1 && ref.code_len <= LOYALTY_REF_CODE_MAX);
    FUZZ_CHECK(memchr(ref.code, '~', ref.code_len) == NULL);
    FUZZ_CHECK(loyalty_valid_id(ref.referrer, ref.referrer_len));
    FUZZ_CHECK(ref.at >= 0 && ref.at <= LOYALTY_EXPIRES_MAX);

    n = loyalty_ref_cookie_sign(fuzz_kr, ref.code, ref.code_len,
                                ref.referrer, ref.referrer_len, ref.at, out);
    FUZZ_CHECK(n > 0 && n <= LOYALTY_REF_COOKIE_MAX);

    /* the kid follows the third "~" */
    for (i = 0, tildes = 0, kid = NULL; i < size; i++) {
        if (value[i] == '~' && ++tildes == 3) {
            kid = value + i + 1;
            break;
        }
    }

    FUZZ_CHECK(kid != NULL);

    if ((size_t) (value + size - kid) > fuzz_kr->keys[0].kid_len
        && memcmp(kid, fuzz_kr->keys[0].kid, fuzz_kr->keys[0].kid_len) == 0
        && kid[fuzz_kr->keys[0].kid_len] == '~')
    {
        FUZZ_CHECK((size_t) n == size && memcmp(out, value, size) == 0);
    }

    FUZZ_CHECK(loyalty_ref_cookie_verify(fuzz_kr, out, (size_t) n, &ref2)
               == 0);
    fuzz_same(&ref, &ref2);

    for (i = 0; i < (size_t) n; i++) {
        out[i] ^= 0x01;
        FUZZ_CHECK(loyalty_ref_cookie_verify(fuzz_kr, out, (size_t) n, &ref2)
                   != 0);
        out[i] ^= 0x01;
    }

done:

    free(value);

    return 0;
}
