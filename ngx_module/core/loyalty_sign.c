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

#include "loyalty_sign.h"


#define LOYALTY_SHA256_BLOCK  64


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
    uint8_t       inner[LOYALTY_MAC_LEN];
    unsigned int  n;

    if (EVP_MD_CTX_copy_ex(kr->work, key->inner) != 1
        || EVP_DigestUpdate(kr->work, domain, strlen(domain)) != 1
        || EVP_DigestUpdate(kr->work, "~", 1) != 1
        || EVP_DigestUpdate(kr->work, msg, len) != 1
        || EVP_DigestFinal_ex(kr->work, inner, &n) != 1
        || EVP_MD_CTX_copy_ex(kr->work, key->outer) != 1
        || EVP_DigestUpdate(kr->work, inner, sizeof(inner)) != 1
        || EVP_DigestFinal_ex(kr->work, mac, &n) != 1)
    {
        return -1;
    }

    return 0;
}


long
loyalty_member_cookie_sign(loyalty_keyring_t *kr, const char *id,
    size_t id_len, int64_t expires, char *out)
{
    int                   n;
    uint8_t               mac[LOYALTY_MAC_LEN];
    const loyalty_key_t  *key;

    if (!loyalty_valid_id(id, id_len) || expires < 0
        || expires > LOYALTY_EXPIRES_MAX)
    {
        return -1;
    }

    key = &kr->keys[0];

    n = snprintf(out, LOYALTY_COOKIE_MAX + 1, "%.*s~%lld~%.*s",
                 (int) id_len, id, (long long) expires,
                 (int) key->kid_len, key->kid);

    if (n < 0 || n + 1 + LOYALTY_MAC_B64_LEN > LOYALTY_COOKIE_MAX
        || loyalty_keyring_mac(kr, key, LOYALTY_DOMAIN_MEMBER, out,
                               (size_t) n, mac)
           != 0)
    {
        return -1;
    }

    out[n++] = '~';
    n += (int) loyalty_base64url_encode(mac, sizeof(mac), out + n);
    out[n] = '\0';

    return n;
}


loyalty_cookie_status_e
loyalty_member_cookie_verify(loyalty_keyring_t *kr, const char *value,
    size_t len, int64_t now, const char **id, size_t *id_len,
    int64_t *expires)
{
    const char           *p, *end, *sep[3], *last;
    size_t                i, nsep, signed_len;
    int64_t               exp;
    uint8_t               mac[LOYALTY_MAC_LEN], want[LOYALTY_MAC_LEN];
    const loyalty_key_t  *key;

    if (len > LOYALTY_COOKIE_MAX || kr == NULL) {
        return LOYALTY_COOKIE_INVALID;
    }

    end = value + len;
    nsep = 0;
    last = NULL;

    for (p = value; p < end; p++) {
        if (*p == '~') {
            if (nsep == 3) {
                return LOYALTY_COOKIE_INVALID;
            }
            sep[nsep++] = p;
            last = p;
        }
    }

    if (nsep != 3) {
        return LOYALTY_COOKIE_INVALID;
    }

    if (!loyalty_valid_id(value, (size_t) (sep[0] - value))
        || !loyalty_valid_kid(sep[1] + 1, (size_t) (sep[2] - sep[1] - 1))
        || end - last - 1 != LOYALTY_MAC_B64_LEN
        || loyalty_base64url_decode(last + 1, LOYALTY_MAC_B64_LEN, mac,
                                    sizeof(mac))
           != LOYALTY_MAC_LEN)
    {
        return LOYALTY_COOKIE_INVALID;
    }

    /* expiry: decimal seconds without a leading zero, so one encoding */
    p = sep[0] + 1;
    if (p == sep[1] || sep[1] - p > 12 || (*p == '0' && sep[1] - p > 1)) {
        return LOYALTY_COOKIE_INVALID;
    }

    exp = 0;
    for ( /* void */ ; p < sep[1]; p++) {
        if (*p < '0' || *p > '9') {
            return LOYALTY_COOKIE_INVALID;
        }
        exp = exp * 10 + (*p - '0');
    }

    key = NULL;
    for (i = 0; i < kr->nkeys; i++) {
        if (kr->keys[i].kid_len == (size_t) (sep[2] - sep[1] - 1)
            && memcmp(kr->keys[i].kid, sep[1] + 1, kr->keys[i].kid_len) == 0)
        {
            key = &kr->keys[i];
            break;
        }
    }

    if (key == NULL) {
        return LOYALTY_COOKIE_INVALID;
    }

    signed_len = (size_t) (last - value);

    if (loyalty_keyring_mac(kr, key, LOYALTY_DOMAIN_MEMBER, value,
                            signed_len, want)
        != 0
        || CRYPTO_memcmp(mac, want, LOYALTY_MAC_LEN) != 0)
    {
        return LOYALTY_COOKIE_INVALID;
    }

    *id = value;
    *id_len = (size_t) (sep[0] - value);
    *expires = exp;

    return exp < now ? LOYALTY_COOKIE_EXPIRED : LOYALTY_COOKIE_VALID;
}

