/*
 * Unit tests of loyalty_sign.c: keys files, HMAC-SHA256 and member
 * cookies; and of loyalty_siphash.c.
 */

#include <stdlib.h>
#include <time.h>
#include <string.h>
#include <unistd.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "loyalty_sign.h"
#include "loyalty_siphash.h"
#include "store_fixture.h"
#include "tap.h"


/* the fixed test keys of t/lib/Loyalty/Harness.pm */
#define K1HEX      "5ddf6f585beb20501799d3b7b6370cac" \
                   "263cda66dc4a6ff968c1a9c5006a6158"
#define K0HEX      "55c91fc43a6dfb674fd6f8e4f0da91bd" \
                   "79b6afc2488d5b265efe6bc465a4afbc"

/* the known answer of t/00-harness.t, which openssl also computes */
#define ALICE_MAC  "1N3LKt3Zzb9GPB3D3I5oZtrv2fNgWsXZvMVeCbm8BJI"
#define ALICE      "alice~1700000000~k1~" ALICE_MAC
#define ALICE_EXP  1700000000
/* openssl dgst -sha256 -mac HMAC of "ref~SPRING24~alice~1700000000~k1" */
#define OLD_MAC    "bMYsWWeCTalb1Q6-xfK2bbW_zqQCZam5lRxp6sEFAmI"
#define OLD_REF    "SPRING24~alice~1700000000~k1~" OLD_MAC
/* HMAC of "ref2~SPRING24~1700000000~k1~alice": alice is not in the value */
#define REF_MAC    "OE0ZnbN5UC3GblifSK7hIPzjw4RuyMmCiOfw6teGfaw"
#define REF        "SPRING24~1700000000~k1~" REF_MAC
/* the same for bob, the code's owner after it was given to him */
#define BOB_MAC    "oGxB9xc94d7YQ3JinrwJ5vmM753vHczksKzHHr6U1fQ"
#define BENCH_N    200000

#define HEX16      "00112233445566778899aabbccddeeff"
#define HEX128     HEX16 HEX16 HEX16 HEX16 HEX16 HEX16 HEX16 HEX16

#define ID64       "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz" \
                   "0123456789_."
#define KID16      "abcdefghijklmnop"

#define BUFLEN     512


typedef struct {
    const char  *text;
    const char  *err;
    const char  *what;
} keys_error_t;


static const keys_error_t  keys_errors[] = {
    { "k0 " HEX16 "00112233445566778899aabbccddee",
      "line 1: secret must be 32 to 128 bytes written as hex",
      "secret of 31 bytes" },
    { "k0 " HEX128 "00", "line 1: secret must be 32 to 128 bytes",
      "secret of 129 bytes" },
    { "k0 " HEX16 HEX16 "0", "line 1: secret must be",
      "odd number of hex digits" },
    { "k0 " HEX16 "00112233445566778899aabbccddeefg",
      "line 1: secret must be", "non-hex digit in the secret" },
    { "k0 0x" HEX16 HEX16, "line 1: secret must be", "0x prefix" },
    { "# keys\n\nk0 " HEX16, "line 3: secret must be",
      "line number after a comment and a blank line" },
    { "# keys\r\n\r\nk0 " HEX16 "\r\n", "line 3: secret must be",
      "line number with CRLF" },
    { "k.0 " K0HEX, "line 1: key id must be 1-16 characters of [A-Za-z0-9_-]",
      "'.' in a kid" },
    { "k:0 " K0HEX, "line 1: key id must be", "':' in a kid" },
    { "\xc3\xa9 " K0HEX, "line 1: key id must be", "non-ASCII kid" },
    { KID16 "q " K0HEX, "line 1: key id must be", "kid of 17 characters" },
    { "k1 " K1HEX "\nk0 " K0HEX "\nk1 " K0HEX,
      "line 3: duplicate key id \"k1\"", "duplicate kid" },
    { "k0", "line 1: expected \"KID SECRET_HEX\"", "missing secret" },
    { "k1 " K1HEX "\nk0 \t \r\n", "line 2: expected \"KID SECRET_HEX\"",
      "missing secret after blanks" },
    { "k0 " K0HEX " extra", "line 1: expected \"KID SECRET_HEX\"",
      "extra field" },
    { "k0 " K0HEX " # old", "line 1: expected \"KID SECRET_HEX\"",
      "comment after a key" },
    { "", "no keys", "empty file" },
    { "# only a comment\n\n  \t\n\r\n", "no keys",
      "only comments and blank lines" },
};


/* values with a correct MAC that still must not verify */
static const char  *bad_prefixes[] = {
    "alice~01700000000~k1",
    "alice~00~k1",
    "alice~17000000x0~k1",
    "alice~+1700000000~k1",
    "alice~-1~k1",
    "alice~~k1",
    "alice~ 1700000000~k1",
    "alice~1700000000 ~k1",
    "~1700000000~k1",
    "alice bob~1700000000~k1",
    ID64 "x~1700000000~k1",
    "alice~1700000000~",
    "alice~1700000000~k.1",
    "alice~1700000000~" KID16 "q",
};


static loyalty_keyring_t *
ring(const char *text)
{
    char                err[LOYALTY_ERRLEN];
    loyalty_keyring_t  *kr;

    kr = loyalty_keyring_parse(text, strlen(text), err, sizeof(err));
    if (kr == NULL) {
        diag("keys: %s", err);
    }

    return kr;
}


/* a value carrying a correct MAC over whatever prefix it is given */
static size_t
make_cookie(loyalty_keyring_t *kr, const char *prefix, char *out)
{
    size_t   n;
    uint8_t  mac[LOYALTY_MAC_LEN];

    n = strlen(prefix);
    memcpy(out, prefix, n);

    if (loyalty_keyring_mac(kr, &kr->keys[0], LOYALTY_DOMAIN_MEMBER, prefix,
                            n, mac)
        != 0)
    {
        diag("loyalty_keyring_mac failed");
    }

    out[n++] = '~';
    n += loyalty_base64url_encode(mac, sizeof(mac), out + n);
    out[n] = '\0';

    return n;
}


static loyalty_cookie_status_e
verify(loyalty_keyring_t *kr, const char *value, size_t len, int64_t now)
{
    size_t       id_len;
    int64_t      exp;
    const char  *id;

    return loyalty_member_cookie_verify(kr, value, len, now, &id, &id_len,
                                        &exp);
}


static void
test_keyring_parse(void)
{
    int                 i;
    char                err[LOYALTY_ERRLEN], text[17 * 80], *p;
    size_t              k;
    loyalty_keyring_t  *kr;

    kr = ring("# nginx-loyalty keys\n\n \t \n\tk1\t" K1HEX "  \r\n"
              "# the old key\r\n  k0 " K0HEX "\r\n");
    ok(kr && kr->nkeys == 2
       && kr->keys[0].kid_len == 2 && memcmp(kr->keys[0].kid, "k1", 2) == 0
       && kr->keys[1].kid_len == 2 && memcmp(kr->keys[1].kid, "k0", 2) == 0,
       "two keys among comments, blank lines, tabs and CRLF, in order");
    loyalty_keyring_free(kr);

    kr = ring("k1 " K1HEX);
    ok(kr && kr->nkeys == 1, "a key without a final newline");
    loyalty_keyring_free(kr);

    kr = ring(KID16 " " HEX128 "\n");
    ok(kr && kr->nkeys == 1 && kr->keys[0].kid_len == 16,
       "kid of 16 characters, secret of 128 bytes");
    loyalty_keyring_free(kr);

    kr = ring("A-_z " HEX16 HEX16 "\n");
    ok(kr != NULL, "kid of [A-Za-z0-9_-], secret of 32 bytes");
    loyalty_keyring_free(kr);

    for (k = 0; k < nelts(keys_errors); k++) {
        strcpy(err, "(no error)");
        kr = loyalty_keyring_parse(keys_errors[k].text,
                                   strlen(keys_errors[k].text), err,
                                   sizeof(err));
        if (kr) {
            loyalty_keyring_free(kr);
            strcpy(err, "(parsed)");
        }

        has_str(err, keys_errors[k].err, "keys error: %s",
                keys_errors[k].what);
    }

    p = text;
    for (i = 0; i < LOYALTY_KEYS_MAX; i++) {
        p += sprintf(p, "key%d %s\n", i, K1HEX);
    }

    kr = ring(text);
    ok(kr && kr->nkeys == LOYALTY_KEYS_MAX, "%d keys", LOYALTY_KEYS_MAX);
    loyalty_keyring_free(kr);

    sprintf(p, "key%d %s\n", i, K1HEX);
    kr = loyalty_keyring_parse(text, strlen(text), err, sizeof(err));
    ok(kr == NULL, "%d keys refused", LOYALTY_KEYS_MAX + 1);
    has_str(err, "line 17: more than 16 keys", "%d keys: error",
            LOYALTY_KEYS_MAX + 1);
    loyalty_keyring_free(kr);
}


static void
test_keyring_load(void)
{
    int                 fd;
    char                path[FIXTURE_PATH_MAX];
    char                err[LOYALTY_ERRLEN], *big;
    loyalty_keyring_t  *kr;
    static const char   keys[] = "k1 " K1HEX "\nk0 " K0HEX "\n";

    fd = mkstemp(fixture_tmp(path, "keys"));
    if (fd == -1 || write(fd, keys, sizeof(keys) - 1) != sizeof(keys) - 1) {
        diag("cannot write %s", path);
    }

    kr = loyalty_keyring_load(path, err, sizeof(err));
    if (!ok(kr && kr->nkeys == 2, "keys file loaded")) {
        diag("%s", err);
    }
    loyalty_keyring_free(kr);

    /* a file that fills the loader's buffer is not read in part */
    big = malloc(16384);
    memset(big, '#', 16384);
    if (ftruncate(fd, 0) != 0 || pwrite(fd, big, 16384, 0) != 16384) {
        diag("cannot write %s", path);
    }
    free(big);
    close(fd);

    kr = loyalty_keyring_load(path, err, sizeof(err));
    ok(kr == NULL && strstr(err, "is too large") && strstr(err, path),
       "keys file of 16384 bytes: too large");
    loyalty_keyring_free(kr);

    unlink(path);

    kr = loyalty_keyring_load(path, err, sizeof(err));
    ok(kr == NULL && strstr(err, "cannot open") && strstr(err, path),
       "missing keys file: cannot open, with the path");
}


static int
hmac_agrees(loyalty_keyring_t *kr, const uint8_t *secret, size_t slen,
    const char *domain, const char *msg, size_t len)
{
    size_t        dlen;
    uint8_t       data[BUFLEN], want[EVP_MAX_MD_SIZE], got[LOYALTY_MAC_LEN];
    unsigned int  wlen;

    dlen = strlen(domain);
    memcpy(data, domain, dlen);
    data[dlen] = '~';
    memcpy(data + dlen + 1, msg, len);

    if (HMAC(EVP_sha256(), secret, (int) slen, data, dlen + 1 + len, want,
             &wlen)
        == NULL
        || loyalty_keyring_mac(kr, &kr->keys[0], domain, msg, len, got) != 0)
    {
        diag("HMAC failed");
        return 0;
    }

    if (wlen != LOYALTY_MAC_LEN || memcmp(got, want, wlen) != 0) {
        diag("secret of %zu bytes, %s~ and %zu bytes differ", slen, domain,
             len);
        return 0;
    }

    return 1;
}


static void
test_hmac(void)
{
    int                 good;
    char                text[8 + 2 * LOYALTY_SECRET_MAX], msg[300];
    char                b64[LOYALTY_MAC_B64_LEN + 1];
    size_t              k, i, n;
    uint8_t             secret[LOYALTY_SECRET_MAX], mac[LOYALTY_MAC_LEN];
    loyalty_keyring_t  *kr;

    /* around SHA-256's 64-byte block, beyond which HMAC hashes the key */
    static const size_t  lens[] = { 32, 33, 63, 64, 65, 100, 128 };

    for (i = 0; i < sizeof(msg); i++) {
        msg[i] = (char) rng_byte();
    }

    for (k = 0; k < nelts(lens); k++) {
        n = (size_t) sprintf(text, "k%zu ", k);
        for (i = 0; i < lens[k]; i++) {
            secret[i] = rng_byte();
            n += (size_t) sprintf(text + n, "%02x", secret[i]);
        }

        kr = ring(text);
        good = kr != NULL
               && hmac_agrees(kr, secret, lens[k], "member", "", 0)
               && hmac_agrees(kr, secret, lens[k], "member",
                              "alice~1700000000~k1", 19)
               && hmac_agrees(kr, secret, lens[k], "member", msg,
                              sizeof(msg))
               && hmac_agrees(kr, secret, lens[k], "tier", msg, 10);

        ok(good, "HMAC-SHA256 with a secret of %zu bytes agrees with "
           "OpenSSL's HMAC()", lens[k]);
        loyalty_keyring_free(kr);
    }

    /* a ring of raw secret bytes: the same HMAC */
    kr = loyalty_keyring_secret(secret, 32);
    ok(kr != NULL && kr->nkeys == 1 && kr->keys[0].kid_len == 0
       && hmac_agrees(kr, secret, 32, "visitor", msg, 40)
       && hmac_agrees(kr, secret, 32, "visitor", "", 0),
       "a ring of raw secret bytes: HMAC-SHA256 agrees with OpenSSL's "
       "HMAC()");
    loyalty_keyring_free(kr);

    kr = ring("k1 " K1HEX);
    n = 0;
    if (kr && loyalty_keyring_mac(kr, &kr->keys[0], "member",
                                  "alice~1700000000~k1", 19, mac) == 0)
    {
        n = loyalty_base64url_encode(mac, sizeof(mac), b64);
    }
    b64[n] = '\0';

    is_str(b64, ALICE_MAC, "MAC known answer of t/00-harness.t");
    loyalty_keyring_free(kr);
}


static void
test_sign_verify(void)
{
    int                      bad;
    long                     n;
    char                     out[LOYALTY_COOKIE_MAX + 1];
    size_t                   i, k, id_len;
    int64_t                  exp;
    const char              *id;
    loyalty_keyring_t       *kr, *kr16;
    loyalty_cookie_status_e  rc;

    static const char     *ids[] = { "a", "alice.b-c_9", ID64 };
    static const int64_t   exps[] = { 0, 1, 9, 10, ALICE_EXP,
                                      INT64_C(999999999999) };
    static const int64_t   far[] = { INT64_C(1000000000000), INT64_MAX };

    kr = ring("# first key signs\nk1 " K1HEX "\nk0 " K0HEX "\n");
    kr16 = ring(KID16 " " HEX128);

    n = loyalty_member_cookie_sign(kr, "alice", 5, ALICE_EXP, out);
    is_str(n > 0 ? out : NULL, ALICE,
           "cookie known answer of t/00-harness.t, signed by the first key");
    is_int(n, strlen(ALICE), "sign returns the length");

    for (i = 0; i < nelts(ids); i++) {
        bad = 0;

        for (k = 0; k < nelts(exps); k++) {
            n = loyalty_member_cookie_sign(kr, ids[i], strlen(ids[i]),
                                           exps[k], out);
            id = NULL;
            id_len = 0;
            rc = loyalty_member_cookie_verify(kr, out, (size_t) n, 0, &id,
                                              &id_len, &exp);

            if ((n < 0 || n != (long) strlen(out)
                 || rc != LOYALTY_COOKIE_VALID
                 || id != out || id_len != strlen(ids[i])
                 || exp != exps[k])
                && bad++ < 5)
            {
                diag("expiry %lld: sign %ld \"%s\", verify %d",
                     (long long) exps[k], n, n > 0 ? out : "", rc);
            }
        }

        ok(bad == 0, "sign and verify, id of %zu characters",
           strlen(ids[i]));
    }

    n = loyalty_member_cookie_sign(kr16, ID64, 64, INT64_C(999999999999),
                                   out);
    is_int(n, 64 + 1 + 12 + 1 + 16 + 1 + 43,
           "longest id, kid and expiry: 138 bytes");
    is_int(verify(kr16, out, (size_t) n, 0), LOYALTY_COOKIE_VALID,
           "longest cookie verifies");

    ok(loyalty_member_cookie_sign(kr, "", 0, ALICE_EXP, out) == -1
       && loyalty_member_cookie_sign(kr, ID64 "x", 65, ALICE_EXP, out) == -1
       && loyalty_member_cookie_sign(kr, "a~b", 3, ALICE_EXP, out) == -1
       && loyalty_member_cookie_sign(kr, "a b", 3, ALICE_EXP, out) == -1,
       "sign refuses ids that are not member ids");
    is_int(loyalty_member_cookie_sign(kr, "alice", 5, -1, out), -1,
           "sign refuses a negative expiry");

    /* whatever sign writes, verify must read back */
    for (k = 0; k < nelts(far); k++) {
        n = loyalty_member_cookie_sign(kr, "alice", 5, far[k], out);
        rc = n < 0 ? LOYALTY_COOKIE_VALID : verify(kr, out, (size_t) n, 0);

        if (!ok(rc == LOYALTY_COOKIE_VALID,
                "expiry %lld: sign refuses it or verify accepts it",
                (long long) far[k]))
        {
            diag("sign wrote \"%s\", verify returned %d", out, rc);
        }
    }

    loyalty_keyring_free(kr);
    loyalty_keyring_free(kr16);
}


static void
test_rotation(void)
{
    long                n;
    char                out[LOYALTY_COOKIE_MAX + 1];
    loyalty_keyring_t  *k0, *k1k0, *k1, *k0other;

    k0 = ring("k0 " K0HEX);
    k1k0 = ring("k1 " K1HEX "\nk0 " K0HEX);
    k1 = ring("k1 " K1HEX);
    k0other = ring("k0 " K1HEX);

    n = loyalty_member_cookie_sign(k0, "bob", 3, ALICE_EXP, out);
    ok(n > 0 && strstr(out, "~k0~") != NULL, "ring of k0 signs with k0");

    is_int(verify(k1k0, out, (size_t) n, 0), LOYALTY_COOKIE_VALID,
           "cookie of k0 verifies with \"k1 ..., k0 ...\"");
    is_int(verify(k1, out, (size_t) n, 0), LOYALTY_COOKIE_INVALID,
           "cookie of k0 does not verify once k0 is gone");
    is_int(verify(k0other, out, (size_t) n, 0), LOYALTY_COOKIE_INVALID,
           "cookie of k0 does not verify with another secret named k0");

    n = loyalty_member_cookie_sign(k1k0, "bob", 3, ALICE_EXP, out);
    ok(n > 0 && strstr(out, "~k1~") != NULL
       && verify(k1, out, (size_t) n, 0) == LOYALTY_COOKIE_VALID
       && verify(k0, out, (size_t) n, 0) == LOYALTY_COOKIE_INVALID,
       "ring \"k1 ..., k0 ...\" signs with k1");

    loyalty_keyring_free(k0);
    loyalty_keyring_free(k1k0);
    loyalty_keyring_free(k1);
    loyalty_keyring_free(k0other);
}


/* why a cookie was refused, for the log */
static void
test_why(void)
{
    loyalty_keyring_t  *k1, *k0;
    static const char   forged[] =
        "alice~1700000000~k1~AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

    k1 = ring("k1 " K1HEX);
    k0 = ring("k0 " K0HEX);

    is_str(loyalty_member_cookie_why(k1, ALICE, sizeof(ALICE) - 1,
                                     ALICE_EXP),
           "valid", "why: a good cookie is valid");
    is_str(loyalty_member_cookie_why(k1, ALICE, sizeof(ALICE) - 1,
                                     ALICE_EXP + 1),
           "expired", "why: expired");
    is_str(loyalty_member_cookie_why(k0, ALICE, sizeof(ALICE) - 1,
                                     ALICE_EXP),
           "unknown key id", "why: a key id the ring lacks");
    is_str(loyalty_member_cookie_why(k1, forged, sizeof(forged) - 1,
                                     ALICE_EXP),
           "bad MAC", "why: a forged MAC");
    is_str(loyalty_member_cookie_why(k1, "alice~tomorrow", 14, ALICE_EXP),
           "malformed", "why: two fields");
    is_str(loyalty_member_cookie_why(NULL, ALICE, sizeof(ALICE) - 1,
                                     ALICE_EXP),
           "no keys", "why: no keys");

    loyalty_keyring_free(k1);
    loyalty_keyring_free(k0);
}


static void
test_verify_rejects(void)
{
    int                 bad, c;
    char                buf[BUFLEN];
    size_t              len, i, id_len;
    int64_t             now;
    int64_t             exp;
    const char         *id;
    loyalty_keyring_t  *kr;

    static const char   alice[] = ALICE;

    kr = ring("k1 " K1HEX "\nk0 " K0HEX "\n");
    len = strlen(ALICE);

    /* expired, so that a forgery taken for genuine would not be INVALID */
    now = ALICE_EXP + 1;

    is_int(verify(kr, ALICE, len, now), LOYALTY_COOKIE_EXPIRED,
           "the cookie under test is genuine");

    bad = 0;
    memcpy(buf, ALICE, len);

    for (i = 0; i < len; i++) {
        for (c = 0; c < 256; c++) {
            if (c == (unsigned char) alice[i]) {
                continue;
            }

            buf[i] = (char) c;

            if (verify(kr, buf, len, now) != LOYALTY_COOKIE_INVALID
                && bad++ < 5)
            {
                diag("byte %zu changed to 0x%02x: not INVALID", i, c);
            }
        }

        buf[i] = alice[i];
    }

    ok(bad == 0, "every single-byte change (%zu positions x 255) is INVALID",
       len);

    bad = 0;

    for (i = 0; i < len; i++) {
        if (verify(kr, ALICE, i, now) != LOYALTY_COOKIE_INVALID
            && bad++ < 5)
        {
            diag("cut to %zu bytes: not INVALID", i);
        }

        memcpy(buf, ALICE, i);
        memcpy(buf + i, alice + i + 1, len - i - 1);

        if (verify(kr, buf, len - 1, now) != LOYALTY_COOKIE_INVALID
            && bad++ < 5)
        {
            diag("byte %zu deleted: not INVALID", i);
        }
    }

    ok(bad == 0, "every truncation and every single deletion is INVALID");

    is_int(verify(kr, "alice~1700000000~" ALICE_MAC, len - 3, now),
           LOYALTY_COOKIE_INVALID, "value with 2 '~' (no kid)");

    snprintf(buf, sizeof(buf), "%s~", ALICE);
    is_int(verify(kr, buf, len + 1, now), LOYALTY_COOKIE_INVALID,
           "value with 4 '~' (one at the end)");

    snprintf(buf, sizeof(buf), "x~%s", ALICE);
    is_int(verify(kr, buf, len + 2, now), LOYALTY_COOKIE_INVALID,
           "value with 4 '~' (one at the start)");

    snprintf(buf, sizeof(buf), "%sA", ALICE);
    is_int(verify(kr, buf, len + 1, now), LOYALTY_COOKIE_INVALID,
           "MAC of 44 characters");
    is_int(verify(kr, ALICE, len - 1, now), LOYALTY_COOKIE_INVALID,
           "MAC of 42 characters");

    make_cookie(kr, "alice~1700000000~k1", buf);
    is_str(buf, ALICE, "the test's own MAC helper makes the known answer");

    for (i = 0; i < nelts(bad_prefixes); i++) {
        len = make_cookie(kr, bad_prefixes[i], buf);
        is_int(verify(kr, buf, len, 0), LOYALTY_COOKIE_INVALID,
               "correctly MACed \"%s\" is INVALID", bad_prefixes[i]);
    }

    len = make_cookie(kr, "alice~0~k1", buf);
    is_int(verify(kr, buf, len, 0), LOYALTY_COOKIE_VALID,
           "expiry \"0\" is one digit, not a leading zero");

    len = make_cookie(kr, "alice~1700000000~k9", buf);
    is_int(verify(kr, buf, len, 0), LOYALTY_COOKIE_INVALID, "unknown kid");

    memset(buf, 'a', sizeof(buf));
    memcpy(buf + LOYALTY_COOKIE_MAX + 1 - strlen(ALICE), ALICE,
           strlen(ALICE));
    is_int(verify(kr, buf, LOYALTY_COOKIE_MAX + 1, 0),
           LOYALTY_COOKIE_INVALID, "value of LOYALTY_COOKIE_MAX + 1 bytes");

    is_int(verify(NULL, ALICE, strlen(ALICE), 0), LOYALTY_COOKIE_INVALID,
           "no keyring: INVALID");

    snprintf(buf, sizeof(buf), "%s~junk", ALICE);
    is_int(verify(kr, buf, strlen(ALICE), 0), LOYALTY_COOKIE_VALID,
           "verify reads only len bytes");

    len = strlen(ALICE);
    id = NULL;
    id_len = 0;
    is_int(loyalty_member_cookie_verify(kr, alice, len, ALICE_EXP + 1, &id,
                                        &id_len, &exp),
           LOYALTY_COOKIE_EXPIRED, "expiry < now: EXPIRED");
    ok(id == alice && id_len == 5, "EXPIRED still reports the id");
    is_int(exp, ALICE_EXP, "and the expiry");

    id = NULL;
    id_len = 0;
    is_int(loyalty_member_cookie_verify(kr, alice, len, ALICE_EXP, &id,
                                        &id_len, &exp),
           LOYALTY_COOKIE_VALID, "expiry == now: VALID");
    ok(id == alice && id_len == 5, "VALID reports the id");
    is_int(exp, ALICE_EXP, "and the expiry");
    is_int(verify(kr, ALICE, len, ALICE_EXP - 1), LOYALTY_COOKIE_VALID,
           "expiry > now: VALID");

    loyalty_keyring_free(kr);
}


static double
bench_verify(loyalty_keyring_t *kr, const char *value)
{
    size_t                 i;
    struct timespec        t0, t1;
    loyalty_ref_cookie_t   ref;

    clock_gettime(CLOCK_MONOTONIC, &t0);

    for (i = 0; i < BENCH_N; i++) {
        if (loyalty_ref_cookie_verify(kr, value, strlen(value), "alice", 5,
                                      &ref)
            != 0)
        {
            return -1;
        }
    }

    clock_gettime(CLOCK_MONOTONIC, &t1);

    return ((double) (t1.tv_sec - t0.tv_sec) * 1e9
            + (double) (t1.tv_nsec - t0.tv_nsec)) / BENCH_N;
}


static void
test_ref_cookie(void)
{
    long                   n;
    char                   out[LOYALTY_REF_COOKIE_MAX + 1];
    char                   buf[BUFLEN];
    double                 old_ns, new_ns;
    size_t                 i;
    loyalty_keyring_t     *kr;
    loyalty_ref_cookie_t   ref;

    static const char     *bad[] = {
        "SPRING24~1700000000~k1~" REF_MAC "x",
        "SPRING24~1700000001~k1~" REF_MAC,
        /* replayed on another code */
        "SPRING25~1700000000~k1~" REF_MAC,
        "SPRING2~1700000000~k1~" REF_MAC,
        "SPRING24~01700000000~k1~" REF_MAC,
        "SPRING24~1700000000~k0~" REF_MAC,
        "SPRING24~1700000000~k9~" REF_MAC,
        "SPRING24~k1~" REF_MAC,
        "x~SPRING24~1700000000~k1~" REF_MAC,
        "~1700000000~k1~" REF_MAC,
        "SPRING24~alice~1700000000~k1~" REF_MAC,
        /* the old form with the new MAC, and the other way round */
        "SPRING24~1700000000~k1~" OLD_MAC,
        "SPRING24~alicf~1700000000~k1~" OLD_MAC,
        "SPRING25~alice~1700000000~k1~" OLD_MAC,
        ""
    };

    kr = ring("k1 " K1HEX "\nk0 " K0HEX);

    n = loyalty_ref_cookie_sign(kr, "SPRING24", 8, "alice", 5, ALICE_EXP,
                                out);
    is_str(n > 0 ? out : "", REF, "attribution cookie: known answer");

    ok(n > 0 && strstr(out, "alice") == NULL,
       "the cookie does not carry the referrer");

    ok(loyalty_ref_cookie_verify(kr, REF, strlen(REF), "alice", 5, &ref) == 0
       && ref.code_len == 8 && memcmp(ref.code, "SPRING24", 8) == 0
       && ref.referrer_len == 5 && memcmp(ref.referrer, "alice", 5) == 0
       && ref.at == ALICE_EXP && !ref.legacy,
       "the known answer verifies for its referrer, with its fields");

    ok(loyalty_ref_cookie_verify(kr, REF, strlen(REF), "bob", 3, &ref) != 0,
       "a code given to another member since: refused");

    ok(loyalty_ref_cookie_verify(kr, "SPRING24~1700000000~k1~" BOB_MAC,
                                 strlen(REF), "bob", 3, &ref) == 0,
       "signed for bob, it verifies for bob");

    ok(loyalty_ref_cookie_parse(REF, strlen(REF), &ref) == 0
       && ref.code_len == 8 && ref.at == ALICE_EXP && !ref.legacy
       && ref.referrer_len == 0,
       "parse: the code and the time, no referrer");

    for (i = 0; i < nelts(bad); i++) {
        ok(loyalty_ref_cookie_verify(kr, bad[i], strlen(bad[i]), "alice", 5,
                                     &ref)
           != 0,
           "forged attribution cookie refused: %s", bad[i]);
    }

    /* the old form: accepted (to be replaced) for the referrer it names */
    ok(loyalty_ref_cookie_parse(OLD_REF, strlen(OLD_REF), &ref) == 0
       && ref.legacy && ref.referrer_len == 5
       && memcmp(ref.referrer, "alice", 5) == 0 && ref.at == ALICE_EXP,
       "parse: an old-form cookie and its referrer");

    ok(loyalty_ref_cookie_verify(kr, OLD_REF, strlen(OLD_REF), "alice", 5,
                                 &ref)
       == 0 && ref.legacy && ref.code_len == 8,
       "an old-form cookie verifies for the code's owner");

    ok(loyalty_ref_cookie_verify(kr, OLD_REF, strlen(OLD_REF), "bob", 3,
                                 &ref)
       != 0,
       "an old-form cookie for another owner is refused");

    /* the member cookie's MAC does not make an attribution cookie */
    n = snprintf(buf, sizeof(buf), "SPRING24~1700000000~k1~%s", ALICE_MAC);
    ok(loyalty_ref_cookie_verify(kr, buf, (size_t) n, "alice", 5, &ref) != 0,
       "a MAC from the member domain is refused");

    n = loyalty_ref_cookie_sign(kr, "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345", 32,
                                ID64, 64, INT64_C(999999999999), out);
    ok(n > 0 && n <= LOYALTY_REF_COOKIE_MAX
       && loyalty_ref_cookie_verify(kr, out, (size_t) n, ID64, 64, &ref) == 0,
       "the longest attribution cookie fits (%ld bytes)", n);

    ok(loyalty_ref_cookie_sign(kr, "A~B", 3, "alice", 5, 1, out) == -1
       && loyalty_ref_cookie_sign(kr, "", 0, "alice", 5, 1, out) == -1
       && loyalty_ref_cookie_sign(kr, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456",
                                  33, "alice", 5, 1, out) == -1
       && loyalty_ref_cookie_sign(kr, "AB", 2, "a b", 3, 1, out) == -1
       && loyalty_ref_cookie_sign(kr, "AB", 2, "alice", 5, -1, out) == -1,
       "nothing unsignable is signed");

    /* what a request pays to verify, before (old form) and after */
    old_ns = bench_verify(kr, OLD_REF);
    new_ns = bench_verify(kr, REF);
    ok(old_ns > 0 && new_ns > 0,
       "verify cost: old form %.0f ns, new form %.0f ns a cookie", old_ns,
       new_ns);

    loyalty_keyring_free(kr);
}


/*
 * SipHash-2-4 against the reference implementation's vectors (key 00..0f,
 * message 00..len-1), and against OpenSSL's SIPHASH for every length of
 * 0 to 63 bytes: each way through the last, partial word.
 */
static uint64_t
openssl_siphash(const uint8_t *key, const uint8_t *msg, size_t len)
{
    size_t        size, n;
    uint8_t       out[8];
    EVP_MAC      *mac;
    OSSL_PARAM    params[2];
    EVP_MAC_CTX  *ctx;

    mac = EVP_MAC_fetch(NULL, "SIPHASH", NULL);
    ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
    EVP_MAC_free(mac);

    size = 8;
    params[0] = OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &size);
    params[1] = OSSL_PARAM_construct_end();

    n = 0;

    if (ctx == NULL || EVP_MAC_init(ctx, key, 16, params) != 1
        || EVP_MAC_update(ctx, msg, len) != 1
        || EVP_MAC_final(ctx, out, &n, sizeof(out)) != 1 || n != 8)
    {
        memset(out, 0, sizeof(out));
    }

    EVP_MAC_CTX_free(ctx);

    return loyalty_le_get(out, 8);
}


static void
test_siphash(void)
{
    size_t                 i, len, bad;
    uint8_t                key[16], msg[64];
    uint64_t               tag, want;
    loyalty_siphash_key_t  k;

    static const struct {
        size_t    len;
        uint64_t  tag;
    } vectors[] = {
        { 0, 0x726fdb47dd0e0e31ULL },
        { 15, 0xa129ca6149be45e5ULL },
    };

    for (i = 0; i < 16; i++) {
        key[i] = (uint8_t) i;
    }

    for (i = 0; i < sizeof(msg); i++) {
        msg[i] = (uint8_t) i;
    }

    loyalty_siphash_key(&k, key);

    for (i = 0; i < nelts(vectors); i++) {
        len = vectors[i].len;
        tag = loyalty_siphash(&k, msg, len);
        ok(tag == vectors[i].tag,
           "siphash: %zu bytes, the reference tag (got %016llx)", len,
           (unsigned long long) tag);
    }

    bad = 0;

    for (len = 0; len < sizeof(msg); len++) {
        tag = loyalty_siphash(&k, msg, len);
        want = openssl_siphash(key, msg, len);

        if (tag != want) {
            diag("siphash: %zu bytes: %016llx, OpenSSL %016llx", len,
                 (unsigned long long) tag, (unsigned long long) want);
            bad++;
        }
    }

    ok(bad == 0, "siphash: OpenSSL's tag for each of 0 to 63 bytes");
}

int
main(void)
{
    plan(4 + nelts(keys_errors) + 3 + 3 + 8 + 1 + 11 + 7
         + 9 + nelts(bad_prefixes) + 10 + 11 + 5 + 12 + 6 + 3);

    test_keyring_parse();
    test_keyring_load();
    test_hmac();
    test_sign_verify();
    test_rotation();
    test_verify_rejects();
    test_ref_cookie();
    test_why();
    test_siphash();

    return done();
}
