/*
 * nginx-loyalty: summing the conversion counters over a range of days,
 * for loyalty_stats_query.c: the range's records summed by name in one
 * walk, the first rows kept in a heap.  Not for other callers.
 */

#ifndef _LOYALTY_STATS_SUM_H_INCLUDED_
#define _LOYALTY_STATS_SUM_H_INCLUDED_


#include <string.h>

#include "loyalty_stats.h"


/* one name's sum of the sort counter over the range */
typedef struct {
    int64_t                v;
    uint32_t               len;
    char                   name[LOYALTY_ID_MAX];
} loyalty_stats_row_t;


/* a pending delta's row: its key and value, in the map */
typedef struct {
    MDB_val                key;
    MDB_val                val;
} loyalty_stats_pend_t;


/*
 * The first k rows met so far, in a heap (indices into pool) whose root
 * is the row that comes last; and what every row adds up to.
 */
typedef struct {
    loyalty_stats_row_t   *pool;
    uint32_t              *heap;
    size_t                 n;
    size_t                 nalloc;
    size_t                 k;
    int                    sort;
    int64_t                floor;       /* a row below it is not kept */
    size_t                 count;
    int64_t                totals[LOYALTY_STATS_COUNTERS];
    int64_t                minus[LOYALTY_STATS_COUNTERS];  /* while */
                                        /* summing: totals less it */
    loyalty_stats_pend_t  *pend;        /* the range's pending rows, */
    size_t                 npend;       /* by name; the caller frees */
    size_t                 days;        /* days with day records met */
} loyalty_stats_top_t;


/*
 * A name's first 8 bytes as a big-endian number, zeros past its end,
 * reading none of the bytes after it: most names are 4 to 8 bytes long,
 * and a question compares and hashes a name per record it reads
 */
static inline uint64_t
loyalty_stats_name_word(const uint8_t *p, size_t len)
{
    size_t    i;
    uint64_t  w, lo;
    uint32_t  x;

    if (len >= 8) {
        memcpy(&w, p, 8);
        return __builtin_bswap64(w);
    }

    if (len >= 4) {
        /* the first and last 4, overlapping */
        memcpy(&x, p, 4);
        w = (uint64_t) __builtin_bswap32(x) << 32;
        memcpy(&x, p + len - 4, 4);
        lo = (uint64_t) __builtin_bswap32(x) << (8 * (8 - len));

        return w | lo;
    }

    w = 0;

    for (i = 0; i < len; i++) {
        w |= (uint64_t) p[i] << (56 - 8 * i);
    }

    return w;
}


/* names in LMDB's order: bytewise, the shorter first */
static inline int
loyalty_stats_cmp_name(const void *a, size_t alen, const void *b,
    size_t blen)
{
    uint64_t  x, y;

    x = loyalty_stats_name_word(a, alen);
    y = loyalty_stats_name_word(b, blen);

    if (x != y) {
        return x < y ? -1 : 1;
    }

    /* the same first 8 bytes, zeros counted as the end */
    if (alen > 8 && blen > 8) {
        return loyalty_key_cmp((const uint8_t *) a + 8, alen - 8,
                               (const uint8_t *) b + 8, blen - 8);
    }

    return (alen > blen) - (alen < blen);
}


/* by=code, campaign, referrer: the range's records summed by name */
int loyalty_stats_merge(loyalty_store_t *st, MDB_txn *txn,
    const loyalty_stats_query_t *q, loyalty_stats_top_t *t);
/* by=day: every day of the range, those without counts too */
int loyalty_stats_days(loyalty_store_t *st, MDB_txn *txn,
    const loyalty_stats_query_t *q, loyalty_stats_top_t *t);
/*
 * a row that may be among the first k, kept if it is: 0 or ENOMEM
 * (loyalty_stats_top.c)
 */
int loyalty_stats_top_insert(loyalty_stats_top_t *t, const void *name,
    size_t len, int64_t v);
/*
 * t->floor as the heap is: the sum of a full heap's last row when rows
 * are sorted by a counter (a row below it comes after it), the largest
 * sum when no row is kept (k 0), else the least (any row may enter)
 */
void loyalty_stats_top_floor(loyalty_stats_top_t *t);
/*
 * the kept rows in order, first to last: t->pool[t->heap[0..n)]
 * (loyalty_stats_top.c)
 */
void loyalty_stats_top_sort(loyalty_stats_top_t *t);
/*
 * a kept row's every counter over the range: a read per block, one per
 * day when the range has day records (t->days), and t's pending rows
 */
int loyalty_stats_fill(loyalty_store_t *st, MDB_txn *txn,
    const loyalty_stats_query_t *q, const loyalty_stats_top_t *t,
    const loyalty_stats_row_t *r, int64_t *c);
/*
 * The pending deltas' rows of kind over days from..to, sorted by name,
 * in *out (the caller frees it): 0, ENOMEM or an LMDB error
 */
int loyalty_stats_pend_load(loyalty_store_t *st, MDB_txn *txn, int kind,
    int64_t from, int64_t to, loyalty_stats_pend_t **out, size_t *n);
/* the day of a big-endian 4-byte key part */
int64_t loyalty_stats_key_day(const uint8_t *k);


/*
 * A row summed: counted, and kept if it is among the first k; 0 or
 * ENOMEM.  Most rows of a full heap come after its last, told by v
 * alone against the floor (loyalty_stats_top_floor()) without a call.
 */
static inline int
loyalty_stats_top_offer(loyalty_stats_top_t *t, const void *name,
    size_t len, int64_t v)
{
    t->count++;

    if (v < t->floor) {
        return 0;
    }

    return loyalty_stats_top_insert(t, name, len, v);
}


#endif /* _LOYALTY_STATS_SUM_H_INCLUDED_ */
