/*
 * nginx-loyalty: the binary records kept in the LMDB store.
 *
 * Values are fixed-layout, little-endian and versioned, so that the module
 * reads them in place from the memory map.  The layout is documented in
 * schema/lmdb-layout.md; keep the two in step.
 */

#ifndef _LOYALTY_RECORD_H_INCLUDED_
#define _LOYALTY_RECORD_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>

#include "loyalty_util.h"


#define LOYALTY_MEMBER_VERSION      1
#define LOYALTY_TIER_VERSION        1

#define LOYALTY_MEMBER_FIXED        56
#define LOYALTY_MEMBER_MAX          (LOYALTY_MEMBER_FIXED + LOYALTY_TIER_MAX \
                                     + LOYALTY_ID_MAX)
#define LOYALTY_TIER_FIXED          10
#define LOYALTY_LABEL_CHARS         64
#define LOYALTY_LABEL_MAX           (LOYALTY_LABEL_CHARS * 4)  /* UTF-8 */
#define LOYALTY_TIER_REC_MAX        (LOYALTY_TIER_FIXED + LOYALTY_LABEL_MAX)

#define LOYALTY_PRICE_VERSION       1
#define LOYALTY_PRICE_FIXED         16
#define LOYALTY_PRICE_ENTRY         48
#define LOYALTY_PRICE_OVERRIDES     16
#define LOYALTY_PRICE_REC_MAX       (LOYALTY_PRICE_FIXED \
                                     + LOYALTY_PRICE_OVERRIDES \
                                     * LOYALTY_PRICE_ENTRY)
/* 10^15 minor units: far above any price; see loyalty_price_raw() */
#define LOYALTY_PRICE_MAX           1000000000000000LL
/*
 * 10^12 points: the most one event gives or takes, and the bound of a
 * member's balance either way, so that sums stay far from overflow
 */
#define LOYALTY_POINTS_MAX          1000000000000LL
/* 10^12 minor units: the most one order or refund of an event can be */
#define LOYALTY_AMOUNT_MAX          1000000000000LL

#define LOYALTY_MEMBER_BLOCKED      0x0001
#define LOYALTY_MEMBER_BIRTHDAY     0x0002
#define LOYALTY_MEMBER_JOINED       0x0004
#define LOYALTY_MEMBER_FIRST_ORDER  0x0008
#define LOYALTY_MEMBER_LAST_ORDER   0x0010
#define LOYALTY_MEMBER_FLAGS        0x001f


typedef enum {
    LOYALTY_STAGE_PROSPECT = 0,
    LOYALTY_STAGE_FAN,
    LOYALTY_STAGE_CUSTOMER,
    LOYALTY_STAGE_MEMBER,
    LOYALTY_STAGE_PARTNER,
    LOYALTY_STAGE_COUNT
} loyalty_stage_e;


/*
 * A decoded member.  tier and referrer point into the buffer that was
 * decoded (the memory map, in the module): valid only while it is.
 */
typedef struct {
    uint16_t        flags;
    uint8_t         stage;
    uint8_t         birth_month;
    uint8_t         birth_day;
    uint8_t         tier_len;
    uint8_t         referrer_len;
    uint32_t        orders;
    int64_t         joined_at;
    int64_t         first_order_at;
    int64_t         last_order_at;
    int64_t         spend;
    int64_t         points;
    const char     *tier;
    const char     *referrer;
} loyalty_member_t;


typedef struct {
    int32_t         rank;
    uint16_t        discount_bp;
    uint16_t        label_len;
    const char     *label;
} loyalty_tier_t;


/*
 * A price record, read in place: the override entries stay in the buffer
 * and are found with loyalty_price_override().
 */
typedef struct {
    int64_t         retail;
    char            currency[3];    /* all zero: the configured default */
    uint8_t         noverrides;
    const uint8_t  *overrides;
} loyalty_price_t;


/* one override as the encoder takes it */
typedef struct {
    const char     *tier;
    size_t          tier_len;
    int64_t         price;
} loyalty_price_override_t;


extern const char  *loyalty_stage_names[LOYALTY_STAGE_COUNT];

int loyalty_stage_parse(const char *s, size_t len);

/* encoders return the record length; buf holds LOYALTY_*_MAX bytes */
size_t loyalty_member_encode(const loyalty_member_t *m, uint8_t *buf);
size_t loyalty_tier_encode(const loyalty_tier_t *t, uint8_t *buf);

/* decoders return 0, or -1 on a record that is not a valid v1 record */
int loyalty_member_decode(const uint8_t *buf, size_t len,
    loyalty_member_t *m);
int loyalty_tier_decode(const uint8_t *buf, size_t len, loyalty_tier_t *t);

size_t loyalty_price_encode(const loyalty_price_t *p,
    const loyalty_price_override_t *ov, uint8_t *buf);
int loyalty_price_decode(const uint8_t *buf, size_t len, loyalty_price_t *p);
/* the tier's override price, or -1 when the tier has none */
int64_t loyalty_price_override(const loyalty_price_t *p, const char *tier,
    size_t tier_len);
/* the i-th override, for listing */
void loyalty_price_override_at(const loyalty_price_t *p, size_t i,
    loyalty_price_override_t *ov);

/* the fields the request path needs, without decoding the whole record */
int loyalty_member_peek(const uint8_t *buf, size_t len, uint8_t *stage,
    uint16_t *flags, int64_t *points, const char **tier, size_t *tier_len);


#endif /* _LOYALTY_RECORD_H_INCLUDED_ */
