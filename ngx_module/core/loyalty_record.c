/*
 * nginx-loyalty: encoding and decoding of the store's binary records.
 */

#include <string.h>

#include "loyalty_record.h"


const char  *loyalty_stage_names[LOYALTY_STAGE_COUNT] = {
    "prospect", "fan", "customer", "member", "partner"
};


int
loyalty_stage_parse(const char *s, size_t len)
{
    return loyalty_name_index(loyalty_stage_names, LOYALTY_STAGE_COUNT, s,
                              len);
}


#define loyalty_put_u16(p, v)  loyalty_le_put(p, (uint16_t) (v), 2)
#define loyalty_put_u32(p, v)  loyalty_le_put(p, (uint32_t) (v), 4)
#define loyalty_put_i64(p, v)  loyalty_le_put(p, (uint64_t) (v), 8)
#define loyalty_get_u16(p)     ((uint16_t) loyalty_le_get(p, 2))
#define loyalty_get_u32(p)     ((uint32_t) loyalty_le_get(p, 4))
#define loyalty_get_i64(p)     ((int64_t) loyalty_le_get(p, 8))


/*
 * member v1:
 *   0 version, 1 stage, 2 flags (u16), 4 birth month, 5 birth day,
 *   6 tier length, 7 referrer length, 8 joined_at, 16 first_order_at,
 *   24 last_order_at, 32 spend, 40 points (i64), 48 orders (u32),
 *   52 reserved (u32, zero), 56 tier name, then referrer id
 */

size_t
loyalty_member_encode(const loyalty_member_t *m, uint8_t *buf)
{
    buf[0] = LOYALTY_MEMBER_VERSION;
    buf[1] = m->stage;
    loyalty_put_u16(buf + 2, m->flags);
    buf[4] = m->birth_month;
    buf[5] = m->birth_day;
    buf[6] = m->tier_len;
    buf[7] = m->referrer_len;
    loyalty_put_i64(buf + 8, m->joined_at);
    loyalty_put_i64(buf + 16, m->first_order_at);
    loyalty_put_i64(buf + 24, m->last_order_at);
    loyalty_put_i64(buf + 32, m->spend);
    loyalty_put_i64(buf + 40, m->points);
    loyalty_put_u32(buf + 48, m->orders);
    loyalty_put_u32(buf + 52, 0);

    memcpy(buf + LOYALTY_MEMBER_FIXED, m->tier, m->tier_len);
    if (m->referrer_len) {
        memcpy(buf + LOYALTY_MEMBER_FIXED + m->tier_len, m->referrer,
               m->referrer_len);
    }

    return LOYALTY_MEMBER_FIXED + m->tier_len + m->referrer_len;
}


int
loyalty_member_peek(const uint8_t *buf, size_t len, uint8_t *stage,
    uint16_t *flags, int64_t *points, const char **tier, size_t *tier_len)
{
    if (len < LOYALTY_MEMBER_FIXED + 1
        || buf[0] != LOYALTY_MEMBER_VERSION
        || buf[1] >= LOYALTY_STAGE_COUNT
        || buf[6] == 0 || buf[6] > LOYALTY_TIER_MAX
        || buf[7] > LOYALTY_ID_MAX
        || len != (size_t) LOYALTY_MEMBER_FIXED + buf[6] + buf[7])
    {
        return -1;
    }

    /* the name reaches headers and JSON: check it, not only its length */
    if (!loyalty_valid_tier_name((const char *) buf + LOYALTY_MEMBER_FIXED,
                                 buf[6]))
    {
        return -1;
    }

    *stage = buf[1];
    *flags = loyalty_get_u16(buf + 2);
    *points = loyalty_get_i64(buf + 40);
    *tier = (const char *) buf + LOYALTY_MEMBER_FIXED;
    *tier_len = buf[6];

    return 0;
}


/* a time in range when its flag is set, else zero: one encoding each */
static int
loyalty_member_time_ok(uint16_t flags, uint16_t flag, int64_t t)
{
    return (flags & flag) ? (t >= LOYALTY_TIME_MIN && t <= LOYALTY_TIME_MAX)
                          : t == 0;
}


int
loyalty_member_decode(const uint8_t *buf, size_t len, loyalty_member_t *m)
{
    size_t  tier_len;

    if (loyalty_member_peek(buf, len, &m->stage, &m->flags, &m->points,
                            &m->tier, &tier_len)
        != 0)
    {
        return -1;
    }

    if ((m->flags & ~LOYALTY_MEMBER_FLAGS) || loyalty_get_u32(buf + 52)) {
        return -1;
    }

    m->birth_month = buf[4];
    m->birth_day = buf[5];
    m->tier_len = (uint8_t) tier_len;
    m->referrer_len = buf[7];
    m->joined_at = loyalty_get_i64(buf + 8);
    m->first_order_at = loyalty_get_i64(buf + 16);
    m->last_order_at = loyalty_get_i64(buf + 24);
    m->spend = loyalty_get_i64(buf + 32);
    m->orders = loyalty_get_u32(buf + 48);
    m->referrer = m->referrer_len ? m->tier + tier_len : NULL;

    if (!loyalty_valid_tier_name(m->tier, tier_len)
        || (m->referrer_len
            && !loyalty_valid_id(m->referrer, m->referrer_len))
        || m->spend < 0
        || !loyalty_member_time_ok(m->flags, LOYALTY_MEMBER_JOINED,
                                   m->joined_at)
        || !loyalty_member_time_ok(m->flags, LOYALTY_MEMBER_FIRST_ORDER,
                                   m->first_order_at)
        || !loyalty_member_time_ok(m->flags, LOYALTY_MEMBER_LAST_ORDER,
                                   m->last_order_at))
    {
        return -1;
    }

    if ((m->flags & LOYALTY_MEMBER_BIRTHDAY)
        ? !loyalty_valid_birthday(m->birth_month, m->birth_day)
        : (m->birth_month || m->birth_day))
    {
        return -1;
    }

    return 0;
}


/*
 * tier v1:
 *   0 version, 1 reserved (zero), 2 discount_bp (u16), 4 rank (i32),
 *   8 label length (u16), 10 label (UTF-8)
 */

size_t
loyalty_tier_encode(const loyalty_tier_t *t, uint8_t *buf)
{
    buf[0] = LOYALTY_TIER_VERSION;
    buf[1] = 0;
    loyalty_put_u16(buf + 2, t->discount_bp);
    loyalty_put_u32(buf + 4, (uint32_t) t->rank);
    loyalty_put_u16(buf + 8, t->label_len);
    memcpy(buf + LOYALTY_TIER_FIXED, t->label, t->label_len);

    return LOYALTY_TIER_FIXED + t->label_len;
}


int
loyalty_tier_decode(const uint8_t *buf, size_t len, loyalty_tier_t *t)
{
    long  chars;

    if (len < LOYALTY_TIER_FIXED || buf[0] != LOYALTY_TIER_VERSION
        || buf[1] != 0)
    {
        return -1;
    }

    t->discount_bp = loyalty_get_u16(buf + 2);
    t->rank = (int32_t) loyalty_get_u32(buf + 4);
    t->label_len = loyalty_get_u16(buf + 8);
    t->label = (const char *) buf + LOYALTY_TIER_FIXED;

    if (t->discount_bp > 10000 || t->label_len > LOYALTY_LABEL_MAX
        || len != (size_t) LOYALTY_TIER_FIXED + t->label_len)
    {
        return -1;
    }

    chars = loyalty_utf8_chars(t->label, t->label_len);

    if (chars < 0 || chars > LOYALTY_LABEL_CHARS) {
        return -1;
    }

    return 0;
}


/*
 * price v1:
 *   0 version, 1 override count N (0-16), 2 currency (3 bytes of A-Z, or
 *   zeros), 5 reserved (3 bytes, zero), 8 retail (i64), 16 N entries of
 *   48 bytes: 0 price (i64), 8 tier length, 9 tier name (32 bytes, zero
 *   padded), 41 reserved (7 bytes, zero)
 */

size_t
loyalty_price_encode(const loyalty_price_t *p,
    const loyalty_price_override_t *ov, uint8_t *buf)
{
    size_t    i;
    uint8_t  *e;

    memset(buf, 0, LOYALTY_PRICE_FIXED + p->noverrides * LOYALTY_PRICE_ENTRY);

    buf[0] = LOYALTY_PRICE_VERSION;
    buf[1] = p->noverrides;
    memcpy(buf + 2, p->currency, 3);
    loyalty_put_i64(buf + 8, p->retail);

    for (i = 0; i < p->noverrides; i++) {
        e = buf + LOYALTY_PRICE_FIXED + i * LOYALTY_PRICE_ENTRY;
        loyalty_put_i64(e, ov[i].price);
        e[8] = (uint8_t) ov[i].tier_len;
        memcpy(e + 9, ov[i].tier, ov[i].tier_len);
    }

    return LOYALTY_PRICE_FIXED + p->noverrides * LOYALTY_PRICE_ENTRY;
}


static int
loyalty_zero(const uint8_t *p, size_t n)
{
    while (n--) {
        if (*p++) {
            return 0;
        }
    }

    return 1;
}


int
loyalty_price_decode(const uint8_t *buf, size_t len, loyalty_price_t *p)
{
    size_t          i, j;
    int64_t         price;
    const uint8_t  *e;

    if (len < LOYALTY_PRICE_FIXED || buf[0] != LOYALTY_PRICE_VERSION
        || buf[1] > LOYALTY_PRICE_OVERRIDES
        || len != (size_t) LOYALTY_PRICE_FIXED
                  + buf[1] * LOYALTY_PRICE_ENTRY
        || !loyalty_zero(buf + 5, 3))
    {
        return -1;
    }

    p->noverrides = buf[1];
    memcpy(p->currency, buf + 2, 3);
    p->retail = loyalty_get_i64(buf + 8);
    p->overrides = buf + LOYALTY_PRICE_FIXED;

    if (p->retail < 0 || p->retail > LOYALTY_PRICE_MAX) {
        return -1;
    }

    if (!loyalty_zero((const uint8_t *) p->currency, 3)
        && !loyalty_valid_currency(p->currency, 3))
    {
        return -1;
    }

    for (i = 0; i < p->noverrides; i++) {
        e = p->overrides + i * LOYALTY_PRICE_ENTRY;
        price = loyalty_get_i64(e);

        if (price < 0 || price > LOYALTY_PRICE_MAX
            || !loyalty_valid_tier_name((const char *) e + 9, e[8])
            || !loyalty_zero(e + 9 + e[8], LOYALTY_TIER_MAX - e[8] + 7))
        {
            return -1;
        }

        /* one override per tier */
        for (j = 0; j < i; j++) {
            if (memcmp(e + 8, p->overrides + j * LOYALTY_PRICE_ENTRY + 8,
                       1 + LOYALTY_TIER_MAX)
                == 0)
            {
                return -1;
            }
        }
    }

    return 0;
}


int64_t
loyalty_price_override(const loyalty_price_t *p, const char *tier,
    size_t tier_len)
{
    size_t          i;
    const uint8_t  *e;

    for (i = 0; i < p->noverrides; i++) {
        e = p->overrides + i * LOYALTY_PRICE_ENTRY;

        if (e[8] == tier_len && memcmp(e + 9, tier, tier_len) == 0) {
            return loyalty_get_i64(e);
        }
    }

    return -1;
}


void
loyalty_price_override_at(const loyalty_price_t *p, size_t i,
    loyalty_price_override_t *ov)
{
    const uint8_t  *e;

    e = p->overrides + i * LOYALTY_PRICE_ENTRY;
    ov->price = loyalty_get_i64(e);
    ov->tier_len = e[8];
    ov->tier = (const char *) e + 9;
}
