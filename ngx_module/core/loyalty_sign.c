/*
 * nginx-loyalty: signing keys and signed cookie values.
 *
 * HMAC is computed from hash states precomputed per key: copying two
 * digest contexts costs far less than a one-shot HMAC(), which looks up
 * the algorithm's provider on every call.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/crypto.h>

#include "loyalty_code.h"
#include "loyalty_sign.h"


#define LOYALTY_SHA256_BLOCK  64
/* a message that loyalty_keyring_mac_bound() hashes in one update */
#define LOYALTY_MAC_MSG_MAX   256


static int
loyalty_key_init(loyalty_key_t *key, const uint8_t *secret, size_t len)
{
    uint8_t       block[LOYALTY_SHA256_BLOCK], pad[LOYALTY_SHA256_BLOCK];
    unsigned int  n;
    size_t        i;
    int           rc;

    memset(block, 0, sizeof(block));

    if (len > LOYALTY_SHA256_BLOCK) {
        if (EVP_Digest(secret, len, block, &n, EVP_sha256(), NULL) != 1) {
            return -1;
        }

    } else {
        memcpy(block, secret, len);
    }

    key->inner = EVP_MD_CTX_new();
    key->outer = EVP_MD_CTX_new();

    if (key->inner == NULL || key->outer == NULL) {
        return -1;
    }

    for (i = 0; i < sizeof(pad); i++) {
        pad[i] = block[i] ^ 0x36;
    }

    rc = EVP_DigestInit_ex(key->inner, EVP_sha256(), NULL) == 1
         && EVP_DigestUpdate(key->inner, pad, sizeof(pad)) == 1;

    for (i = 0; i < sizeof(pad); i++) {
        pad[i] = block[i] ^ 0x5c;
    }

    rc = rc && EVP_DigestInit_ex(key->outer, EVP_sha256(), NULL) == 1
         && EVP_DigestUpdate(key->outer, pad, sizeof(pad)) == 1;

    OPENSSL_cleanse(block, sizeof(block));
    OPENSSL_cleanse(pad, sizeof(pad));

    return rc ? 0 : -1;
}


void
loyalty_keyring_free(loyalty_keyring_t *kr)
{
    size_t  i;

    if (kr == NULL) {
        return;
    }

    for (i = 0; i < kr->nkeys; i++) {
        EVP_MD_CTX_free(kr->keys[i].inner);
        EVP_MD_CTX_free(kr->keys[i].outer);
    }

    EVP_MD_CTX_free(kr->work);
    free(kr);
}


/*
 * A ring of one key, of raw secret bytes and no kid: for MACs a process
 * makes and checks itself, such as the click zone's visitor tags.
 */
loyalty_keyring_t *
loyalty_keyring_secret(const uint8_t *secret, size_t len)
{
    loyalty_keyring_t  *kr;

    kr = calloc(1, sizeof(loyalty_keyring_t));
    if (kr == NULL) {
        return NULL;
    }

    kr->nkeys = 1;

    kr->work = EVP_MD_CTX_new();

    if (kr->work == NULL || loyalty_key_init(&kr->keys[0], secret, len) != 0)
    {
        loyalty_keyring_free(kr);
        return NULL;
    }

    return kr;
}


loyalty_keyring_t *
loyalty_keyring_parse(const char *buf, size_t len, char *err, size_t errlen)
{
    const char         *p, *end, *eol, *kid, *hex;
    size_t              kid_len, hex_len, i, line;
    long                n;
    uint8_t             secret[LOYALTY_SECRET_MAX];
    loyalty_key_t      *key;
    loyalty_keyring_t  *kr;

    kr = calloc(1, sizeof(loyalty_keyring_t));
    if (kr == NULL || (kr->work = EVP_MD_CTX_new()) == NULL) {
        snprintf(err, errlen, "out of memory");
        goto failed;
    }

    p = buf;
    end = buf + len;

    for (line = 1; p < end; line++, p = eol + 1) {
        eol = memchr(p, '\n', (size_t) (end - p));
        if (eol == NULL) {
            eol = end;
        }

        while (p < eol && (*p == ' ' || *p == '\t')) {
            p++;
        }

        if (p == eol || *p == '#' || (*p == '\r' && p + 1 == eol)) {
            continue;
        }

        kid = p;
        while (p < eol && *p != ' ' && *p != '\t') {
            p++;
        }
        kid_len = (size_t) (p - kid);

        while (p < eol && (*p == ' ' || *p == '\t')) {
            p++;
        }

        hex = p;
        while (p < eol && *p != ' ' && *p != '\t' && *p != '\r') {
            p++;
        }
        hex_len = (size_t) (p - hex);

        while (p < eol && (*p == ' ' || *p == '\t' || *p == '\r')) {
            p++;
        }

        if (p != eol || hex_len == 0) {
            snprintf(err, errlen, "line %zu: expected \"KID SECRET_HEX\"",
                     line);
            goto failed;
        }

        if (!loyalty_valid_kid(kid, kid_len)) {
            snprintf(err, errlen, "line %zu: key id must be 1-%d characters "
                     "of [A-Za-z0-9_-]", line, LOYALTY_KID_MAX);
            goto failed;
        }

        n = loyalty_hex_decode(hex, hex_len, secret, sizeof(secret));
        if (n < LOYALTY_SECRET_MIN) {
            snprintf(err, errlen, "line %zu: secret must be %d to %d bytes "
                     "written as hex", line, LOYALTY_SECRET_MIN,
                     LOYALTY_SECRET_MAX);
            goto failed;
        }

        for (i = 0; i < kr->nkeys; i++) {
            if (kr->keys[i].kid_len == kid_len
                && memcmp(kr->keys[i].kid, kid, kid_len) == 0)
            {
                snprintf(err, errlen, "line %zu: duplicate key id \"%.*s\"",
                         line, (int) kid_len, kid);
                goto failed;
            }
        }

        if (kr->nkeys == LOYALTY_KEYS_MAX) {
            snprintf(err, errlen, "line %zu: more than %d keys", line,
                     LOYALTY_KEYS_MAX);
            goto failed;
        }

        key = &kr->keys[kr->nkeys++];
        memcpy(key->kid, kid, kid_len);
        key->kid_len = kid_len;

        if (loyalty_key_init(key, secret, (size_t) n) != 0) {
            snprintf(err, errlen, "line %zu: cannot set up HMAC-SHA256",
                     line);
            goto failed;
        }
    }

    OPENSSL_cleanse(secret, sizeof(secret));

    if (kr->nkeys == 0) {
        snprintf(err, errlen, "no keys");
        loyalty_keyring_free(kr);
        return NULL;
    }

    return kr;

failed:

    OPENSSL_cleanse(secret, sizeof(secret));
    loyalty_keyring_free(kr);
    return NULL;
}


loyalty_keyring_t *
loyalty_keyring_load(const char *path, char *err, size_t errlen)
{
    int                 fd;
    char                buf[16384];
    ssize_t             n;
    size_t              len;
    loyalty_keyring_t  *kr;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        snprintf(err, errlen, "cannot open \"%s\": %s", path,
                 strerror(errno));
        return NULL;
    }

    len = 0;

    do {
        n = read(fd, buf + len, sizeof(buf) - len);
        if (n > 0) {
            len += (size_t) n;
        }
    } while (n > 0 && len < sizeof(buf));

    close(fd);

    if (n < 0) {
        snprintf(err, errlen, "cannot read \"%s\": %s", path,
                 strerror(errno));
        return NULL;
    }

    if (len == sizeof(buf)) {
        snprintf(err, errlen, "\"%s\" is too large", path);
        return NULL;
    }

    kr = loyalty_keyring_parse(buf, len, err, errlen);
    OPENSSL_cleanse(buf, sizeof(buf));

    return kr;
}


int
loyalty_keyring_mac(loyalty_keyring_t *kr, const loyalty_key_t *key,
    const char *domain, const char *msg, size_t len,
    uint8_t mac[LOYALTY_MAC_LEN])
{
    return loyalty_keyring_mac_bound(kr, key, domain, msg, len, NULL, 0,
                                     mac);
}


/*
 * The message is put together in one buffer when it fits (every cookie's
 * does): one digest update, not five.
 */
int
loyalty_keyring_mac_bound(loyalty_keyring_t *kr, const loyalty_key_t *key,
    const char *domain, const char *msg, size_t len, const char *bound,
    size_t bound_len, uint8_t mac[LOYALTY_MAC_LEN])
{
    char          buf[LOYALTY_MAC_MSG_MAX], *p;
    size_t        dlen;
    uint8_t       inner[LOYALTY_MAC_LEN];
    unsigned int  n;

    dlen = strlen(domain);

    if (EVP_MD_CTX_copy_ex(kr->work, key->inner) != 1) {
        return -1;
    }

    if (len <= sizeof(buf) && bound_len <= sizeof(buf)
        && dlen + len + bound_len + 2 <= sizeof(buf))
    {
        p = buf;
        memcpy(p, domain, dlen);
        p += dlen;
        *p++ = '~';
        memcpy(p, msg, len);
        p += len;

        if (bound) {
            *p++ = '~';
            memcpy(p, bound, bound_len);
            p += bound_len;
        }

        if (EVP_DigestUpdate(kr->work, buf, (size_t) (p - buf)) != 1) {
            return -1;
        }

    } else if (EVP_DigestUpdate(kr->work, domain, dlen) != 1
               || EVP_DigestUpdate(kr->work, "~", 1) != 1
               || EVP_DigestUpdate(kr->work, msg, len) != 1
               || (bound
                   && (EVP_DigestUpdate(kr->work, "~", 1) != 1
                       || EVP_DigestUpdate(kr->work, bound, bound_len)
                          != 1)))
    {
        return -1;
    }

    if (EVP_DigestFinal_ex(kr->work, inner, &n) != 1
        || EVP_MD_CTX_copy_ex(kr->work, key->outer) != 1
        || EVP_DigestUpdate(kr->work, inner, sizeof(inner)) != 1
        || EVP_DigestFinal_ex(kr->work, mac, &n) != 1)
    {
        return -1;
    }

    return 0;
}


/*
 * Writes "NAME~T~KID~MAC" into out (a buffer of max + 1 bytes), MAC over
 * domain "~" NAME "~" T "~" KID, then "~" bound if bound is not NULL (a
 * value the cookie does not carry); returns the length, or -1.
 */
static long
loyalty_cookie_seal(loyalty_keyring_t *kr, const char *domain, char *out,
    size_t max, const char *name, size_t name_len, int64_t t,
    const char *bound, size_t bound_len)
{
    int                   len;
    size_t                n;
    uint8_t               mac[LOYALTY_MAC_LEN];
    const loyalty_key_t  *key;

    /* NAME "~" T: without snprintf where it can (a tenth of the
     * instructions, on every new attribution cookie) */
    if (t >= 0 && name_len + 1 + 20 <= max) {
        memcpy(out, name, name_len);
        out[name_len] = '~';
        n = name_len + 1 + loyalty_format_u64((uint64_t) t,
                                               out + name_len + 1);

    } else {
        len = snprintf(out, max + 1, "%.*s~%lld", (int) name_len, name,
                       (long long) t);
        if (len < 0) {
            return -1;
        }

        n = (size_t) len;
    }

    key = &kr->keys[0];

    if (n + 2 + key->kid_len + LOYALTY_MAC_B64_LEN > max) {
        return -1;
    }

    out[n++] = '~';
    memcpy(out + n, key->kid, key->kid_len);
    n += key->kid_len;

    if (loyalty_keyring_mac_bound(kr, key, domain, out, n, bound, bound_len,
                                  mac)
        != 0)
    {
        return -1;
    }

    out[n++] = '~';
    n += loyalty_base64url_encode(mac, sizeof(mac), out + n);
    out[n] = '\0';

    return (long) n;
}


/*
 * Splits a sealed value into exactly nfields fields, then its KID and
 * MAC, and checks the MAC with the key the KID names (in constant time),
 * bound as loyalty_cookie_seal() was given it.  0, or why not:
 * LOYALTY_COOKIE_MALFORMED, _UNKNOWN_KEY or _BAD_MAC (negative).
 */
static int
loyalty_cookie_open(loyalty_keyring_t *kr, const char *domain,
    const char *value, size_t len, size_t max, size_t nfields,
    const char *bound, size_t bound_len, const char **field,
    size_t *field_len)
{
    size_t                i, n, kid_len;
    uint8_t               mac[LOYALTY_MAC_LEN], want[LOYALTY_MAC_LEN];
    const char           *p, *end, *sep[LOYALTY_FIELDS_MAX + 2], *kid;
    const loyalty_key_t  *key;

    if (len > max || kr == NULL || nfields > LOYALTY_FIELDS_MAX) {
        return -LOYALTY_COOKIE_MALFORMED;
    }

    end = value + len;
    n = 0;

    for (p = value; p < end; p++) {
        if (*p == '~') {
            if (n == nfields + 1) {
                return -LOYALTY_COOKIE_MALFORMED;
            }
            sep[n++] = p;
        }
    }

    if (n != nfields + 1) {
        return -LOYALTY_COOKIE_MALFORMED;
    }

    kid = sep[nfields - 1] + 1;
    kid_len = (size_t) (sep[nfields] - kid);

    if (!loyalty_valid_kid(kid, kid_len)
        || end - sep[nfields] - 1 != LOYALTY_MAC_B64_LEN
        || loyalty_base64url_decode(sep[nfields] + 1, LOYALTY_MAC_B64_LEN,
                                    mac, sizeof(mac))
           != LOYALTY_MAC_LEN)
    {
        return -LOYALTY_COOKIE_MALFORMED;
    }

    key = NULL;
    for (i = 0; i < kr->nkeys; i++) {
        if (kr->keys[i].kid_len == kid_len
            && memcmp(kr->keys[i].kid, kid, kid_len) == 0)
        {
            key = &kr->keys[i];
            break;
        }
    }

    if (key == NULL) {
        return -LOYALTY_COOKIE_UNKNOWN_KEY;
    }

    if (loyalty_keyring_mac_bound(kr, key, domain, value,
                                  (size_t) (sep[nfields] - value), bound,
                                  bound_len, want)
        != 0
        || CRYPTO_memcmp(mac, want, LOYALTY_MAC_LEN) != 0)
    {
        return -LOYALTY_COOKIE_BAD_MAC;
    }

    p = value;
    for (i = 0; i < nfields; i++) {
        field[i] = p;
        field_len[i] = (size_t) (sep[i] - p);
        p = sep[i] + 1;
    }

    return 0;
}


/* decimal seconds, 1-12 digits without a leading zero: one encoding */
static int
loyalty_cookie_time(const char *p, size_t len, int64_t *out)
{
    if (len == 0 || len > 12 || (*p == '0' && len > 1)) {
        return -1;
    }

    return loyalty_decimal(p, len, out);
}


long
loyalty_member_cookie_sign(loyalty_keyring_t *kr, const char *id,
    size_t id_len, int64_t expires, char *out)
{
    if (!loyalty_valid_id(id, id_len) || expires < 0
        || expires > LOYALTY_EXPIRES_MAX)
    {
        return -1;
    }

    return loyalty_cookie_seal(kr, LOYALTY_DOMAIN_MEMBER, out,
                               LOYALTY_COOKIE_MAX, id, id_len, expires,
                               NULL, 0);
}


loyalty_cookie_status_e
loyalty_member_cookie_verify(loyalty_keyring_t *kr, const char *value,
    size_t len, int64_t now, const char **id, size_t *id_len,
    int64_t *expires)
{
    size_t       flen[2];
    int64_t      exp;
    const char  *f[2];

    if (loyalty_cookie_open(kr, LOYALTY_DOMAIN_MEMBER, value, len,
                            LOYALTY_COOKIE_MAX, 2, NULL, 0, f, flen)
        != 0
        || !loyalty_valid_id(f[0], flen[0])
        || loyalty_cookie_time(f[1], flen[1], &exp) != 0)
    {
        return LOYALTY_COOKIE_INVALID;
    }

    *id = f[0];
    *id_len = flen[0];
    *expires = exp;

    return exp < now ? LOYALTY_COOKIE_EXPIRED : LOYALTY_COOKIE_VALID;
}


/*
 * Why a member cookie was refused, for the log: only on the refusal's
 * path, so it checks again rather than slow down the verification.
 */
const char *
loyalty_member_cookie_why(loyalty_keyring_t *kr, const char *value,
    size_t len, int64_t now)
{
    int          rc;
    size_t       flen[2];
    int64_t      exp;
    const char  *f[2];

    if (kr == NULL) {
        return "no keys";
    }

    rc = loyalty_cookie_open(kr, LOYALTY_DOMAIN_MEMBER, value, len,
                             LOYALTY_COOKIE_MAX, 2, NULL, 0, f, flen);

    switch (rc) {

    case 0:
        break;

    case -LOYALTY_COOKIE_UNKNOWN_KEY:
        return "unknown key id";

    case -LOYALTY_COOKIE_BAD_MAC:
        return "bad MAC";

    default:
        return "malformed";
    }

    if (!loyalty_valid_id(f[0], flen[0])
        || loyalty_cookie_time(f[1], flen[1], &exp) != 0)
    {
        return "malformed";
    }

    return exp < now ? "expired" : "valid";
}


/* a share code as the store keys it: 3-32 characters of [A-Za-z0-9_-] */
static int
loyalty_ref_code_valid(const char *code, size_t len)
{
    char  name[LOYALTY_CODE_MAX];

    return len <= LOYALTY_CODE_MAX
           && loyalty_code_normalize(code, len, name) >= 0;
}


long
loyalty_ref_cookie_sign(loyalty_keyring_t *kr, const char *code,
    size_t code_len, const char *referrer, size_t referrer_len, int64_t at,
    char *out)
{
    if (!loyalty_ref_code_valid(code, code_len)
        || !loyalty_valid_id(referrer, referrer_len)
        || at < 0 || at > LOYALTY_EXPIRES_MAX)
    {
        return -1;
    }

    /* the referrer is in the MAC, not in the cookie */
    return loyalty_cookie_seal(kr, LOYALTY_DOMAIN_REF2, out,
                               LOYALTY_REF_COOKIE_MAX, code, code_len, at,
                               referrer, referrer_len);
}


int
loyalty_ref_cookie_parse(const char *value, size_t len,
    loyalty_ref_cookie_t *ref)
{
    size_t       i, n, at;
    const char  *sep[4];

    if (len > LOYALTY_REF_COOKIE_MAX) {
        return -1;
    }

    n = 0;

    for (i = 0; i < len; i++) {
        if (value[i] == '~') {
            if (n == 4) {
                return -1;
            }
            sep[n++] = value + i;
        }
    }

    /* CODE~AT~KID~MAC, or the old CODE~REFERRER~AT~KID~MAC */
    if (n != 3 && n != 4) {
        return -1;
    }

    ref->legacy = (n == 4);
    ref->code = value;
    ref->code_len = (size_t) (sep[0] - value);
    ref->referrer = NULL;
    ref->referrer_len = 0;

    if (ref->legacy) {
        ref->referrer = sep[0] + 1;
        ref->referrer_len = (size_t) (sep[1] - ref->referrer);

        if (!loyalty_valid_id(ref->referrer, ref->referrer_len)) {
            return -1;
        }
    }

    at = ref->legacy ? 1 : 0;

    if (!loyalty_ref_code_valid(ref->code, ref->code_len)
        || loyalty_cookie_time(sep[at] + 1,
                               (size_t) (sep[at + 1] - sep[at] - 1),
                               &ref->at)
           != 0)
    {
        return -1;
    }

    return 0;
}


int
loyalty_ref_cookie_verify(loyalty_keyring_t *kr, const char *value,
    size_t len, const char *referrer, size_t referrer_len,
    loyalty_ref_cookie_t *ref)
{
    if (loyalty_ref_cookie_parse(value, len, ref) != 0) {
        return -1;
    }

    return loyalty_ref_cookie_check(kr, value, len, referrer, referrer_len,
                                    ref);
}


int
loyalty_ref_cookie_check(loyalty_keyring_t *kr, const char *value,
    size_t len, const char *referrer, size_t referrer_len,
    loyalty_ref_cookie_t *ref)
{
    size_t       flen[3];
    const char  *f[3];

    if (!loyalty_valid_id(referrer, referrer_len)) {
        return -1;
    }

    if (ref->legacy) {
        if (loyalty_cookie_open(kr, LOYALTY_DOMAIN_REF, value, len,
                                LOYALTY_REF_COOKIE_MAX, 3, NULL, 0, f, flen)
            != 0
            || ref->referrer_len != referrer_len
            || memcmp(ref->referrer, referrer, referrer_len) != 0)
        {
            return -1;
        }

    } else if (loyalty_cookie_open(kr, LOYALTY_DOMAIN_REF2, value, len,
                                   LOYALTY_REF_COOKIE_MAX, 2, referrer,
                                   referrer_len, f, flen)
               != 0)
    {
        return -1;
    }

    ref->referrer = referrer;
    ref->referrer_len = referrer_len;

    return 0;
}


loyalty_cookie_status_e
loyalty_ref_cookie_window(int64_t at, int64_t now, int64_t window)
{
    if (at > now + LOYALTY_REF_CLOCK_SKEW) {
        return LOYALTY_COOKIE_INVALID;
    }

    return now - at >= window ? LOYALTY_COOKIE_EXPIRED : LOYALTY_COOKIE_VALID;
}

