/*
 * nginx-loyalty: SipHash-2-4, written out: a click's visitor tag is a
 * few dozen additions, rotations and exclusive ors, where OpenSSL's
 * EVP_MAC interface spent ten times that starting, feeding and
 * finishing a context through its provider.
 */

#include <string.h>

#include "loyalty_siphash.h"
#include "loyalty_util.h"


#define loyalty_rotl(x, b)  (((x) << (b)) | ((x) >> (64 - (b))))

#define loyalty_sipround(v0, v1, v2, v3)                                     \
    do {                                                                      \
        v0 += v1; v1 = loyalty_rotl(v1, 13); v1 ^= v0;                        \
        v0 = loyalty_rotl(v0, 32);                                            \
        v2 += v3; v3 = loyalty_rotl(v3, 16); v3 ^= v2;                        \
        v0 += v3; v3 = loyalty_rotl(v3, 21); v3 ^= v0;                        \
        v2 += v1; v1 = loyalty_rotl(v1, 17); v1 ^= v2;                        \
        v2 = loyalty_rotl(v2, 32);                                            \
    } while (0)


void
loyalty_siphash_key(loyalty_siphash_key_t *key,
    const uint8_t bytes[LOYALTY_SIPHASH_KEY_LEN])
{
    key->k0 = loyalty_le_get(bytes, 8);
    key->k1 = loyalty_le_get(bytes + 8, 8);
}


uint64_t
loyalty_siphash(const loyalty_siphash_key_t *key, const void *msg,
    size_t len)
{
    size_t          left;
    uint64_t        v0, v1, v2, v3, m;
    const uint8_t  *p;

    v0 = key->k0 ^ 0x736f6d6570736575ULL;
    v1 = key->k1 ^ 0x646f72616e646f6dULL;
    v2 = key->k0 ^ 0x6c7967656e657261ULL;
    v3 = key->k1 ^ 0x7465646279746573ULL;

    /* compression: each whole 8-byte word, little-endian, two rounds */
    for (p = msg, left = len; left >= 8; p += 8, left -= 8) {
        m = loyalty_le_get(p, 8);
        v3 ^= m;
        loyalty_sipround(v0, v1, v2, v3);
        loyalty_sipround(v0, v1, v2, v3);
        v0 ^= m;
    }

    /* the last word: what is left, and the length's low byte on top */
    m = ((uint64_t) len << 56) | (left ? loyalty_le_get(p, left) : 0);

    v3 ^= m;
    loyalty_sipround(v0, v1, v2, v3);
    loyalty_sipround(v0, v1, v2, v3);
    v0 ^= m;

    /* finalization: four rounds */
    v2 ^= 0xff;
    loyalty_sipround(v0, v1, v2, v3);
    loyalty_sipround(v0, v1, v2, v3);
    loyalty_sipround(v0, v1, v2, v3);
    loyalty_sipround(v0, v1, v2, v3);

    return v0 ^ v1 ^ v2 ^ v3;
}
