/*
 * nginx-loyalty: a day's conversion counters decoded, inline.  The
 * records' writer and verify (loyalty_stats_block.c) decode a few days;
 * a question (loyalty_stats_sum.c) one or two days of every block it
 * walks, hundreds of thousands, each straight into its totals: the
 * running sums of one day added to them, those of the other to a second
 * array that is taken from them at the end, and what a day that does
 * not decode moved taken back by reading it again into the other one.
 * The bytes are those schema/lmdb-layout.md lays out.
 */

#ifndef _LOYALTY_STATS_DECODE_H_INCLUDED_
#define _LOYALTY_STATS_DECODE_H_INCLUDED_


#include "loyalty_stats.h"


/* a block record's days (at least 5 bytes): its u32, little-endian */
static inline uint32_t
loyalty_stats_days_field(const uint8_t *buf)
{
    return (uint32_t) buf[1] | (uint32_t) buf[2] << 8
           | (uint32_t) buf[3] << 16 | (uint32_t) buf[4] << 24;
}


/* a one-byte varint's value, zigzag undone: 0, -1, 1, -2, 2... */
#define LOYALTY_STATS_ZZ(z)     ((z) & 1 ? -((z) + 1) / 2 : (z) / 2)
#define LOYALTY_STATS_ZZ4(z)                                                  \
    LOYALTY_STATS_ZZ(z), LOYALTY_STATS_ZZ(z + 1), LOYALTY_STATS_ZZ(z + 2),    \
    LOYALTY_STATS_ZZ(z + 3)
#define LOYALTY_STATS_ZZ16(z)                                                 \
    LOYALTY_STATS_ZZ4(z), LOYALTY_STATS_ZZ4(z + 4), LOYALTY_STATS_ZZ4(z + 8), \
    LOYALTY_STATS_ZZ4(z + 12)

static const int8_t  loyalty_stats_zigzag[128] = {
    LOYALTY_STATS_ZZ16(0), LOYALTY_STATS_ZZ16(16), LOYALTY_STATS_ZZ16(32),
    LOYALTY_STATS_ZZ16(48), LOYALTY_STATS_ZZ16(64), LOYALTY_STATS_ZZ16(80),
    LOYALTY_STATS_ZZ16(96), LOYALTY_STATS_ZZ16(112)
};


/*
 * One day's counters from p added to c, their bits in *mask: the byte
 * after them, or NULL when they do not decode.  c is then moved by the
 * counters read before the damage, which the same call moves another
 * array by: c less that one is as it was.
 */
static inline const uint8_t *
loyalty_stats_body_add(const uint8_t *p, const uint8_t *end, int64_t *c,
    unsigned *mask)
{
    int       shift;
    size_t    i;
    unsigned  m;
    uint64_t  z;

    if (end - p < 2) {
        return NULL;
    }

    m = p[0] | (p[1] << 8);
    if (m >> LOYALTY_STATS_COUNTERS) {
        return NULL;
    }

    *mask = m;
    p += 2;

    /*
     * The counters present, in order: a question reads many, most of
     * them the first few counters, every one present
     */
    for (i = 0; m; i++, m >>= 1) {
        if (!(m & 1)) {
            continue;
        }

        if (p == end) {
            return NULL;
        }

        z = *p;

        if (z - 1 < 0x7f) {
            /* most counters: one byte, not 0 */
            c[i] = (int64_t) ((uint64_t) c[i]
                              + (uint64_t) loyalty_stats_zigzag[z]);
            p++;
            continue;
        }

        z = 0;

        for (shift = 0; ; shift += 7) {
            if (p == end || shift > 63) {
                return NULL;
            }

            z |= (uint64_t) (*p & 0x7f) << shift;

            if (!(*p++ & 0x80)) {
                break;
            }
        }

        /* one encoding for a value: a present counter is not zero */
        if (z == 0) {
            return NULL;
        }

        c[i] = (int64_t) ((uint64_t) c[i] + ((z >> 1) ^ -(z & 1)));
    }

    return p;
}


/*
 * A block's day from p: its length byte, then its running sums as a
 * day record's counters without the version; those added to c, their
 * bits in *mask: the byte after them, or NULL when they do not decode,
 * c then moved as the same call moves another array
 */
static inline const uint8_t *
loyalty_stats_day_add(const uint8_t *p, const uint8_t *end, int64_t *c,
    unsigned *mask)
{
    const uint8_t  *q;

    if (p == end || *p < 2 || end - p - 1 < *p) {
        return NULL;
    }

    q = p + 1 + *p;

    return loyalty_stats_body_add(p + 1, q, c, mask) == q ? q : NULL;
}


/* past a block's day from p: the byte after it, or NULL */
static inline const uint8_t *
loyalty_stats_day_skip(const uint8_t *p, const uint8_t *end)
{
    if (p == end || end - p - 1 < *p) {
        return NULL;
    }

    return p + 1 + *p;
}


/*
 * loyalty_stats_day_add() out of line, for a day read again to take
 * back what it moved (loyalty_stats_block.c)
 */
const uint8_t *loyalty_stats_day_again(const uint8_t *p, const uint8_t *end,
    int64_t *c);


/*
 * loyalty_stats_block_sum() of a range's days given as the block's days
 * before them (low) and those with them (upto), what a question works
 * out once a block of its range, not once a record: the range's days
 * summed as plus less minus.  The running sums of the last day at or
 * before the range's last are added to plus, those of the last day
 * before its first to minus; when a day read does not decode, each day
 * read is read again into the other array, so that plus less minus is
 * as it was.  0; 1 when the record has none of the days, -1 for damage.
 */
static inline int
loyalty_stats_block_add(const uint8_t *buf, size_t len, uint32_t low,
    uint32_t upto, int64_t *plus, int64_t *minus)
{
    int64_t        *c;
    unsigned        m;
    uint32_t        days, skip, in;
    const uint8_t  *p, *q, *hi, *end;

    if (len < 5 || buf[0] != LOYALTY_STATS_VERSION) {
        return -1;
    }

    days = loyalty_stats_days_field(buf);

    if (days == 0) {
        return -1;
    }

    in = days & (upto ^ low);

    if (in == 0) {
        /* no day of the range present */
        return 1;
    }

    p = buf + 5;
    end = buf + len;
    hi = NULL;
    c = plus;

    /* the latest day first: the days after the range's, skipped */
    skip = days & ~upto;

    for ( ;; ) {
        for ( /* void */ ; skip; skip &= skip - 1) {
            p = loyalty_stats_day_skip(p, end);
            if (p == NULL) {
                goto damage;
            }
        }

        q = loyalty_stats_day_add(p, end, c, &m);

        if (q == NULL) {
            /* what the day moved before its damage: into the other */
            loyalty_stats_day_again(p, end, (c == plus) ? minus : plus);
            goto damage;
        }

        if (c == minus || (days & low) == 0) {
            return 0;
        }

        /* the range's other days, then the last one before it: minus */
        hi = p;
        p = q;
        c = minus;
        skip = in & ~((uint32_t) 1 << (31 - __builtin_clz(in)));
    }

damage:

    /* the last day read again into minus */
    if (hi != NULL) {
        loyalty_stats_day_again(hi, end, minus);
    }

    return -1;
}


#endif /* _LOYALTY_STATS_DECODE_H_INCLUDED_ */
