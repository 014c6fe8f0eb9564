/*
 * nginx-loyalty: SipHash-2-4 (Aumasson and Bernstein), 64-bit tags under
 * a 16-byte key: a keyed hash of short inputs, for tables that must not
 * name what they hold (the click zone's recent visitors).
 */

#ifndef _LOYALTY_SIPHASH_H_INCLUDED_
#define _LOYALTY_SIPHASH_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


#define LOYALTY_SIPHASH_KEY_LEN  16


/* the key as two little-endian words, read once */
typedef struct {
    uint64_t  k0;
    uint64_t  k1;
} loyalty_siphash_key_t;


void loyalty_siphash_key(loyalty_siphash_key_t *key,
    const uint8_t bytes[LOYALTY_SIPHASH_KEY_LEN]);
/* msg's tag, as the reference implementation gives it */
uint64_t loyalty_siphash(const loyalty_siphash_key_t *key, const void *msg,
    size_t len);


#endif /* _LOYALTY_SIPHASH_H_INCLUDED_ */
