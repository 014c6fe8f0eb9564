/*
 * nginx-loyalty: summing the conversion counters over a range of days.
 *
 * The stats database is keyed kind, day, name: the records of one kind
 * and day (or block of 32 days) are adjacent, in name order.  A
 * question walks each block of its range with a cursor (a block's days
 * of the range are two decodes straight into the totals,
 * loyalty_stats_decode.h; a block without a day of the range is passed
 * over as it is read), and the pending deltas' rows of the kind and
 * range (loyalty_stats_pend.c) as one more run in name order: those few
 * runs are merged name by name.  A store made before blocks has a run
 * more per day of day records: then the runs are read in rounds of
 * names, each round's sums of the counter the rows are sorted by in a
 * hash table that stays in the cache.  Every counter goes into the
 * totals, and a name's sum is what its records moved the totals' sort
 * counter by; the names are offered to a heap of the first offset + top
 * rows (loyalty_stats_top.c), and only those are summed in full at the
 * end, a read per block (and day).  The cost grows with the records of
 * the range, not with the store's members or codes; the memory with the
 * names of a round.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "loyalty_stats_decode.h"
#include "loyalty_stats_sum.h"


static const char  loyalty_stats_kinds[] = {
    LOYALTY_STATS_KIND_CODE, LOYALTY_STATS_KIND_CAMPAIGN,
    LOYALTY_STATS_KIND_REFERRER, LOYALTY_STATS_KIND_DAY
};



int64_t
loyalty_stats_key_day(const uint8_t *k)
{
    return loyalty_be32_get(k);
}


/*
 * The totals' sum of the counter the rows are sorted by (0 by key):
 * what a name's records move it by is the name's row's sum.  While
 * summing the totals are totals less minus: a block's days of a range
 * are the running sums of one day added and those of another taken.
 */
static inline int64_t
loyalty_stats_sort_total(const loyalty_stats_top_t *t)
{
    if (t->sort == LOYALTY_STATS_SORT_KEY) {
        return 0;
    }

    return (int64_t) ((uint64_t) t->totals[t->sort]
                      - (uint64_t) t->minus[t->sort]);
}


/* the totals once summed: minus taken from them */
static void
loyalty_stats_totals_done(loyalty_stats_top_t *t)
{
    int  i;

    for (i = 0; i < LOYALTY_STATS_COUNTERS; i++) {
        t->totals[i] = (int64_t) ((uint64_t) t->totals[i]
                                  - (uint64_t) t->minus[i]);
        t->minus[i] = 0;
    }
}


/* what the records since the sort total was before moved it by */
static inline int64_t
loyalty_stats_moved(const loyalty_stats_top_t *t, int64_t before)
{
    return (int64_t) ((uint64_t) loyalty_stats_sort_total(t)
                      - (uint64_t) before);
}


/*
 * A record into the totals: a day record (upto 0), or the days of a
 * block record from after low up to upto (loyalty_stats_block_add()):
 * 1; 0 for damage, which is verify's to report and counts nothing here
 * (the decoders take back what they added of it), and for a block
 * without days of the range
 */
static inline int
loyalty_stats_total(loyalty_stats_top_t *t, const uint8_t *v, size_t len,
    uint32_t low, uint32_t upto)
{
    if (upto) {
        return loyalty_stats_block_add(v, len, low, upto, t->totals,
                                       t->minus)
               == 0;
    }

    return loyalty_stats_decode_add(v, len, t->totals, t->minus) == 0;
}


/* a name's sum in the table of the range's names */
typedef struct {
    uint64_t               word;        /* loyalty_stats_name_word() */
    uint32_t               len;
    uint32_t               off;         /* of the name in the arena */
    uint32_t               hash;
    uint32_t               used;
    int64_t                v;
} loyalty_stats_sum_t;


/* every name of the range met so far, open addressing */
typedef struct {
    loyalty_stats_sum_t   *slots;
    size_t                 nslots;      /* a power of two */
    size_t                 n;
    char                  *arena;
    size_t                 arena_len;
    size_t                 arena_size;
} loyalty_stats_sums_t;


static int
loyalty_stats_sums_grow(loyalty_stats_sums_t *s)
{
    size_t                i, j, n;
    loyalty_stats_sum_t  *slots;

    n = s->nslots ? s->nslots * 2 : 4096;

    slots = calloc(n, sizeof(loyalty_stats_sum_t));
    if (slots == NULL) {
        return ENOMEM;
    }

    for (i = 0; i < s->nslots; i++) {
        if (!s->slots[i].used) {
            continue;
        }

        for (j = s->slots[i].hash & (n - 1); slots[j].used;
             j = (j + 1) & (n - 1))
        {
            /* void */
        }

        slots[j] = s->slots[i];
    }

    free(s->slots);
    s->slots = slots;
    s->nslots = n;

    return 0;
}


/* adds v to the name's sum, made if new: 0 or ENOMEM */
static int
loyalty_stats_sums_add(loyalty_stats_sums_t *s, const uint8_t *name,
    size_t len, int64_t v)
{
    char                 *arena;
    size_t                j, size;
    uint32_t              hash;
    uint64_t              word;
    loyalty_stats_sum_t  *e;

    if ((s->n + 1) * 2 > s->nslots && loyalty_stats_sums_grow(s) != 0) {
        return ENOMEM;
    }

    /* a name of 8 bytes or less is its word and length */
    word = loyalty_stats_name_word(name, len);
    hash = (uint32_t) (((word ^ len) * 0x9e3779b97f4a7c15ULL) >> 32);

    if (len > 8) {
        hash ^= loyalty_stats_hash(name + 8, len - 8);
    }

    for (j = hash & (s->nslots - 1); s->slots[j].used;
         j = (j + 1) & (s->nslots - 1))
    {
        e = &s->slots[j];

        if (e->word == word && e->len == len
            && (len <= 8
                || memcmp(s->arena + e->off + 8, name + 8, len - 8) == 0))
        {
            e->v += v;
            return 0;
        }
    }

    if (s->arena_len + len > s->arena_size) {
        size = s->arena_size ? s->arena_size * 2 : 65536;
        arena = realloc(s->arena, size);
        if (arena == NULL) {
            return ENOMEM;
        }

        s->arena = arena;
        s->arena_size = size;
    }

    e = &s->slots[j];
    e->word = word;
    e->hash = hash;
    e->len = (uint32_t) len;
    e->off = (uint32_t) s->arena_len;
    e->used = 1;
    e->v = v;

    memcpy(s->arena + s->arena_len, name, len);
    s->arena_len += len;
    s->n++;

    return 0;
}


/* the names a round sums: a table that stays in the cache */
#define LOYALTY_STATS_ROUND  2048


/*
 * One day's cursor, at its current record of the kind; or, without a
 * cursor, the range's pending rows, at the rows first..i of one name
 * (a round ends before a name, never inside its run), of n
 */
typedef struct {
    MDB_cursor            *cur;
    MDB_val                key;
    MDB_val                val;
    uint32_t               low;         /* a block's days before the */
    uint32_t               upto;        /* range, and up to its end; */
                                        /* upto 0: a day's records */
    uint64_t               word;        /* the name's first 8 bytes,
                                           for the merge of a few */
    uint8_t                head[5];     /* the kind and day of its keys */
    const loyalty_stats_pend_t  *pend;
    size_t                 first;
    size_t                 i;
    size_t                 n;
} loyalty_stats_way_t;


static void
loyalty_stats_way_close(loyalty_stats_way_t *w)
{
    if (w->cur != NULL) {
        mdb_cursor_close(w->cur);
    }
}


/* the pending way at its rows of the next name: 1, or 0 past them */
static int
loyalty_stats_way_pend(loyalty_stats_way_t *w)
{
    if (w->i == w->n) {
        return 0;
    }

    w->first = w->i;
    w->key = w->pend[w->i].key;
    w->val = w->pend[w->i].val;

    while (++w->i < w->n
           && loyalty_stats_cmp_name((uint8_t *) w->pend[w->i].key.mv_data + 5,
                                     w->pend[w->i].key.mv_size - 5,
                                     (uint8_t *) w->key.mv_data + 5,
                                     w->key.mv_size - 5)
              == 0)
    {
        /* the name's rows of other days and deltas */
    }

    return 1;
}


/*
 * The way's next record, or its pending rows of the next name: 1, 0
 * past its kind and day's, or an LMDB error.  A block without a day of
 * the range is passed over here: it would add nothing, and most blocks
 * before a range's first days have none of them.
 */
static inline int
loyalty_stats_way_next(loyalty_stats_way_t *w, MDB_cursor_op op)
{
    int             rc;
    const uint8_t  *k, *v;

    if (w->cur == NULL) {
        return loyalty_stats_way_pend(w);
    }

    for ( ;; ) {
        rc = mdb_cursor_get(w->cur, &w->key, &w->val, op);

        if (rc != 0) {
            return (rc == MDB_NOTFOUND) ? 0 : rc;
        }

        k = w->key.mv_data;

        if (w->key.mv_size < 5 || w->key.mv_size > LOYALTY_STATS_KEY_MAX
            || memcmp(k, w->head, 5) != 0)
        {
            return 0;
        }

        v = w->val.mv_data;

        if (w->upto == 0 || w->val.mv_size < 5
            || v[0] != LOYALTY_STATS_VERSION
            || (loyalty_stats_days_field(v) & (w->upto ^ w->low)))
        {
            return 1;
        }

        op = MDB_NEXT;
    }
}


/*
 * The word of the way's name (loyalty_stats_name_word()) when it is at a
 * record (rc 1).  The kind and day before the name in its key let a name
 * of 3 to 7 bytes, most codes, be read as the key's last 8 bytes, those
 * before the name shifted out.
 */
static inline void
loyalty_stats_way_word(loyalty_stats_way_t *w, int rc)
{
    size_t          size;
    uint64_t        x;
    const uint8_t  *k;

    if (rc != 1) {
        return;
    }

    k = w->key.mv_data;
    size = w->key.mv_size;

    if (size >= 8 && size < 13) {
        memcpy(&x, k + size - 8, 8);
        w->word = __builtin_bswap64(x) << (8 * (13 - size));
        return;
    }

    w->word = loyalty_stats_name_word(k + 5, size - 5);
}


/* the names of two ways' records in order: their words first */
static inline int
loyalty_stats_way_cmp(const loyalty_stats_way_t *a,
    const loyalty_stats_way_t *b)
{
    if (a->word != b->word) {
        return a->word < b->word ? -1 : 1;
    }

    /* the same first 8 bytes: a name of 8 or fewer is its word */
    if (a->key.mv_size <= 13 || b->key.mv_size <= 13) {
        return (a->key.mv_size > b->key.mv_size)
               - (a->key.mv_size < b->key.mv_size);
    }

    return loyalty_stats_cmp_name((uint8_t *) a->key.mv_data + 5,
                                  a->key.mv_size - 5,
                                  (uint8_t *) b->key.mv_data + 5,
                                  b->key.mv_size - 5);
}


/*
 * The way's record, or its pending rows of one name, into the totals:
 * 1 if one of them decodes
 */
static inline int
loyalty_stats_way_total(loyalty_stats_way_t *w, loyalty_stats_top_t *t)
{
    int     sound;
    size_t  k;

    if (w->cur != NULL) {
        return loyalty_stats_total(t, w->val.mv_data, w->val.mv_size,
                                   w->low, w->upto);
    }

    sound = 0;

    for (k = w->first; k < w->i; k++) {
        sound |= loyalty_stats_total(t, w->pend[k].val.mv_data,
                                     w->pend[k].val.mv_size, 0, 0);
    }

    return sound;
}


/* the way's record, or its pending rows of one name, into the sums */
static int
loyalty_stats_way_add(loyalty_stats_way_t *w, loyalty_stats_top_t *t,
    loyalty_stats_sums_t *s)
{
    int64_t  before;

    before = loyalty_stats_sort_total(t);

    if (!loyalty_stats_way_total(w, t)) {
        return 0;
    }

    return loyalty_stats_sums_add(s, (uint8_t *) w->key.mv_data + 5,
                                  w->key.mv_size - 5,
                                  loyalty_stats_moved(t, before));
}


/*
 * A way at its first record of kind and day (want: the block's days of
 * the range; 0 for a day's) added to w[0..*n) if there is one
 */
static int
loyalty_stats_way_open(loyalty_store_t *st, MDB_txn *txn, int kind,
    int64_t day, uint32_t want, loyalty_stats_way_t *w, size_t *n)
{
    int       rc;
    uint8_t   kbuf[LOYALTY_STATS_KEY_MAX];

    memset(&w[*n], 0, sizeof(loyalty_stats_way_t));

    rc = mdb_cursor_open(txn, st->dbi[LOYALTY_DB_STATS], &w[*n].cur);
    if (rc != 0) {
        return rc;
    }

    w[*n].low = want ? ((uint32_t) 1 << __builtin_ctz(want)) - 1 : 0;
    w[*n].upto = want | w[*n].low;
    w[*n].key.mv_data = kbuf;
    w[*n].key.mv_size = loyalty_stats_key(kind, day, NULL, 0, kbuf);
    memcpy(w[*n].head, kbuf, 5);

    rc = loyalty_stats_way_next(&w[*n], MDB_SET_RANGE);

    if (rc == 1) {
        (*n)++;
        return 0;
    }

    mdb_cursor_close(w[*n].cur);

    return rc;
}


/*
 * A way per block of the range, one per day of the range that has day
 * records of the kind (a store made before blocks), and one of the
 * range's pending rows if it has some.  On failure the caller closes
 * w[0..*n).
 */
static int
loyalty_stats_ways(loyalty_store_t *st, MDB_txn *txn,
    const loyalty_stats_query_t *q, int kind, loyalty_stats_top_t *t,
    loyalty_stats_way_t *w, size_t *n)
{
    int       rc;
    size_t    blocks;
    int64_t   day;

    *n = 0;
    rc = 0;

    for (day = loyalty_stats_block_day(q->from); rc == 0 && day <= q->to;
         day += LOYALTY_STATS_BLOCK_DAYS)
    {
        rc = loyalty_stats_way_open(st, txn, loyalty_stats_block_kind(kind),
                                    day,
                                    loyalty_stats_block_mask(day, q->from,
                                                             q->to),
                                    w, n);
    }

    blocks = *n;

    for (day = q->from; rc == 0 && day <= q->to; day++) {
        rc = loyalty_stats_way_open(st, txn, kind, day, 0, w, n);
    }

    t->days = *n - blocks;

    if (rc == 0) {
        rc = loyalty_stats_pend_load(st, txn, kind, q->from, q->to, &t->pend,
                                     &t->npend);
    }

    if (rc != 0 || t->npend == 0) {
        return rc;
    }

    memset(&w[*n], 0, sizeof(loyalty_stats_way_t));
    w[*n].pend = t->pend;
    w[*n].n = t->npend;

    *n += loyalty_stats_way_next(&w[*n], MDB_NEXT);

    return 0;
}


/*
 * The way's records before the name bound (NULL: all of them) into the
 * sums: 1 at a record at or after it, 0 at the end of its day, or an
 * error
 */
static int
loyalty_stats_way_drain(loyalty_stats_way_t *w, const char *bound,
    size_t blen, loyalty_stats_top_t *t, loyalty_stats_sums_t *s)
{
    int  rc;

    while (bound == NULL
           || loyalty_stats_cmp_name((uint8_t *) w->key.mv_data + 5,
                                     w->key.mv_size - 5, bound, blen) < 0)
    {
        rc = loyalty_stats_way_add(w, t, s);
        if (rc != 0) {
            return rc;
        }

        rc = loyalty_stats_way_next(w, MDB_NEXT);
        if (rc != 1) {
            return rc;
        }
    }

    return 1;
}


/*
 * After the step of way i (rc: 1 at a record, 0 past its run, or an
 * error): i on to the next way, or the way at its end closed and the
 * last one in its place; 0, or the error
 */
static int
loyalty_stats_way_after(loyalty_stats_way_t *w, size_t *n, size_t *i, int rc)
{
    if (rc == 1) {
        (*i)++;
        return 0;
    }

    if (rc != 0) {
        return rc;
    }

    loyalty_stats_way_close(&w[*i]);
    w[*i] = w[--*n];

    return 0;
}


/*
 * One round: the first way's next step records and every way's records
 * before the name it stops at, summed by name; a way at the end of its
 * day is closed and dropped.  Every name of the round is complete when
 * it ends: the days' runs are in name order.
 */
static int
loyalty_stats_round(loyalty_stats_way_t *w, size_t *n, size_t step,
    loyalty_stats_top_t *t, loyalty_stats_sums_t *s)
{
    int      rc;
    char     bound[LOYALTY_ID_MAX], *b;
    size_t   i, j, blen;

    b = NULL;
    blen = 0;
    rc = 1;

    for (j = 0; rc == 1; j++) {
        if (j == step) {
            blen = w[0].key.mv_size - 5;
            b = memcpy(bound, (uint8_t *) w[0].key.mv_data + 5, blen);
            break;
        }

        rc = loyalty_stats_way_add(&w[0], t, s);
        if (rc == 0) {
            rc = loyalty_stats_way_next(&w[0], MDB_NEXT);
        }
    }

    /* the first way, then every other, up to the bound */
    i = 0;
    rc = loyalty_stats_way_after(w, n, &i, rc);

    while (rc == 0 && i < *n) {
        rc = loyalty_stats_way_after(w, n, &i,
                                     loyalty_stats_way_drain(&w[i], b, blen,
                                                             t, s));
    }

    return rc;
}


/* the round's names offered to the heap; the table emptied */
static int
loyalty_stats_sums_offer(loyalty_stats_sums_t *s, loyalty_stats_top_t *t)
{
    int                   rc;
    size_t                i;
    loyalty_stats_sum_t  *e;

    rc = 0;

    for (i = 0; i < s->nslots; i++) {
        e = &s->slots[i];

        if (e->used) {
            if (rc == 0) {
                rc = loyalty_stats_top_offer(t, s->arena + e->off, e->len,
                                             e->v);
            }

            e->used = 0;
        }
    }

    s->n = 0;
    s->arena_len = 0;

    return rc;
}


/* the ways a merge walks without a table: blocks and the pending rows */
#define LOYALTY_STATS_FEW  4


/*
 * A few ways (a range's blocks and pending rows): the name that comes
 * first among them summed over the ways at it, and offered to the
 * heap; no table.  The ways at their end are closed and dropped.
 */
static int
loyalty_stats_merge_few(loyalty_stats_way_t *w, size_t *n,
    loyalty_stats_top_t *t)
{
    int                   rc, d, sound;
    size_t                i, j;
    int64_t               before;
    MDB_val               name;
    unsigned              at;
    loyalty_stats_way_t  *v;

    for (i = 0; i < *n; i++) {
        loyalty_stats_way_word(&w[i], 1);
    }

    while (*n > 0) {
        /* the ways at the first name (bit i: way i), a compare a way */
        j = 0;
        at = 1;

        for (i = 1; i < *n; i++) {
            d = loyalty_stats_way_cmp(&w[i], &w[j]);

            if (d < 0) {
                j = i;
                at = 0;
            }

            if (d <= 0) {
                at |= 1u << i;
            }
        }

        /* in the map or the pending rows: it stays as the ways move on */
        name = w[j].key;
        before = loyalty_stats_sort_total(t);
        sound = 0;

        /* the last first: a way at its end takes the last one's place */
        for (i = *n; i-- > 0; /* void */) {
            if (!(at & (1u << i))) {
                continue;
            }

            v = &w[i];

            if (v->cur != NULL) {
                sound |= loyalty_stats_total(t, v->val.mv_data,
                                             v->val.mv_size, v->low,
                                             v->upto);
            } else {
                sound |= loyalty_stats_way_total(v, t);
            }

            rc = loyalty_stats_way_next(v, MDB_NEXT);

            if (rc == 1) {
                loyalty_stats_way_word(v, rc);
                continue;
            }

            if (rc != 0) {
                return rc;
            }

            loyalty_stats_way_close(v);
            *v = w[--*n];
        }

        if (sound) {
            rc = loyalty_stats_top_offer(t, (uint8_t *) name.mv_data + 5,
                                         name.mv_size - 5,
                                         loyalty_stats_moved(t, before));
            if (rc != 0) {
                return rc;
            }
        }
    }

    return 0;
}


/*
 * by=code, campaign, referrer: the days' runs read in rounds of names,
 * each round's names summed in a table that stays in the cache, then
 * offered to the heap of the first rows
 */
int
loyalty_stats_merge(loyalty_store_t *st, MDB_txn *txn,
    const loyalty_stats_query_t *q, loyalty_stats_top_t *t)
{
    int                    rc, kind;
    size_t                 i, n, step, names;
    loyalty_stats_way_t   *w;
    loyalty_stats_sums_t   s;

    kind = loyalty_stats_kinds[q->by];

    /* the days, the blocks (a day before the first: one more), pending */
    w = malloc((size_t) ((q->to - q->from + 1) * 2 + 3)
               * sizeof(loyalty_stats_way_t));
    if (w == NULL) {
        return ENOMEM;
    }

    memset(&s, 0, sizeof(loyalty_stats_sums_t));

    rc = loyalty_stats_ways(st, txn, q, kind, t, w, &n);

    /*
     * The first way's step sized so that a round holds about
     * LOYALTY_STATS_ROUND names, whatever the days' densities
     */
    step = n ? LOYALTY_STATS_ROUND / n + 1 : 1;

    if (rc == 0 && n <= LOYALTY_STATS_FEW) {
        rc = loyalty_stats_merge_few(w, &n, t);
    }

    while (rc == 0 && n > 0) {
        rc = loyalty_stats_round(w, &n, step, t, &s);
        names = s.n;

        if (rc == 0) {
            rc = loyalty_stats_sums_offer(&s, t);
        }

        step = step * LOYALTY_STATS_ROUND / (names ? names : 1);
        step = step < 1 ? 1 : (step > (1 << 20) ? (1 << 20) : step);
    }

    for (i = 0; i < n; i++) {
        loyalty_stats_way_close(&w[i]);
    }

    free(w);
    free(s.slots);
    free(s.arena);

    loyalty_stats_totals_done(t);

    return rc;
}


/* by=day: every day of the range, those without counts too */
int
loyalty_stats_days(loyalty_store_t *st, MDB_txn *txn,
    const loyalty_stats_query_t *q, loyalty_stats_top_t *t)
{
    int       rc;
    int64_t   day, before;
    uint8_t   kbuf[LOYALTY_STATS_KEY_MAX];
    MDB_val   key, val;

    for (day = q->from; day <= q->to; day++) {
        key.mv_data = kbuf;
        key.mv_size = loyalty_stats_key(LOYALTY_STATS_KIND_DAY, day, NULL, 0,
                                        kbuf);

        rc = mdb_get(txn, st->dbi[LOYALTY_DB_STATS], &key, &val);

        if (rc != 0 && rc != MDB_NOTFOUND) {
            return rc;
        }

        before = loyalty_stats_sort_total(t);

        if (rc == 0) {
            (void) loyalty_stats_total(t, val.mv_data, val.mv_size, 0, 0);
        }

        /* the row's name: the day, big-endian, in date order */
        rc = loyalty_stats_top_offer(t, kbuf + 1, 4,
                                     loyalty_stats_moved(t, before));
        if (rc != 0) {
            return rc;
        }
    }

    loyalty_stats_totals_done(t);

    return 0;
}


/* a row's pending rows, by name: the first at or after it, then on */
static void
loyalty_stats_fill_pend(const loyalty_stats_top_t *t,
    const loyalty_stats_row_t *r, int64_t *c)
{
    int                          i;
    size_t                       lo, hi, mid;
    int64_t                      d[LOYALTY_STATS_COUNTERS];
    const loyalty_stats_pend_t  *p;

    if (t->npend == 0) {
        return;
    }

    lo = 0;
    hi = t->npend;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        p = &t->pend[mid];

        if (loyalty_stats_cmp_name((uint8_t *) p->key.mv_data + 5,
                                   p->key.mv_size - 5, r->name, r->len) < 0)
        {
            lo = mid + 1;

        } else {
            hi = mid;
        }
    }

    for (p = &t->pend[lo]; p < t->pend + t->npend; p++) {
        if (loyalty_stats_cmp_name((uint8_t *) p->key.mv_data + 5,
                                   p->key.mv_size - 5, r->name, r->len) != 0)
        {
            break;
        }

        if (loyalty_stats_decode(p->val.mv_data, p->val.mv_size, d) != 0) {
            continue;
        }

        for (i = 0; i < LOYALTY_STATS_COUNTERS; i++) {
            c[i] += d[i];
        }
    }
}


/*
 * The counters of the record of kind, day and name into c: the days of
 * want of a block record, or a day record (want 0); 0, or an LMDB error
 */
static int
loyalty_stats_fill_one(loyalty_store_t *st, MDB_txn *txn, int kind,
    int64_t day, const char *name, size_t len, uint32_t want, int64_t *c)
{
    int       rc, i;
    int64_t   d[LOYALTY_STATS_COUNTERS];
    uint8_t   kbuf[LOYALTY_STATS_KEY_MAX];
    MDB_val   key, val;

    key.mv_data = kbuf;
    key.mv_size = loyalty_stats_key(kind, day, name, len, kbuf);

    rc = mdb_get(txn, st->dbi[LOYALTY_DB_STATS], &key, &val);
    if (rc != 0) {
        return rc == MDB_NOTFOUND ? 0 : rc;
    }

    memset(d, 0, sizeof(d));

    rc = want ? loyalty_stats_block_sum(val.mv_data, val.mv_size, want, d)
              : loyalty_stats_decode(val.mv_data, val.mv_size, d);

    /* damage is verify's to report, and counts nothing; nor no day */
    if (rc != 0) {
        return 0;
    }

    for (i = 0; i < LOYALTY_STATS_COUNTERS; i++) {
        c[i] += d[i];
    }

    return 0;
}


/* a row's every counter over the range: a read per block, and per day */
int
loyalty_stats_fill(loyalty_store_t *st, MDB_txn *txn,
    const loyalty_stats_query_t *q, const loyalty_stats_top_t *t,
    const loyalty_stats_row_t *r, int64_t *c)
{
    int       rc, kind;
    int64_t   day;

    memset(c, 0, sizeof(int64_t) * LOYALTY_STATS_COUNTERS);

    kind = loyalty_stats_kinds[q->by];
    rc = 0;

    if (q->by == LOYALTY_STATS_BY_DAY) {
        day = loyalty_stats_key_day((const uint8_t *) r->name);

        return loyalty_stats_fill_one(st, txn, kind, day, NULL, 0, 0, c);
    }

    for (day = loyalty_stats_block_day(q->from); rc == 0 && day <= q->to;
         day += LOYALTY_STATS_BLOCK_DAYS)
    {
        rc = loyalty_stats_fill_one(st, txn, loyalty_stats_block_kind(kind),
                                    day, r->name, r->len,
                                    loyalty_stats_block_mask(day, q->from,
                                                             q->to),
                                    c);
    }

    /* a store made before blocks: its day records of the range too */
    for (day = q->from; rc == 0 && t->days && day <= q->to; day++) {
        rc = loyalty_stats_fill_one(st, txn, kind, day, r->name, r->len, 0,
                                    c);
    }

    if (rc == 0) {
        loyalty_stats_fill_pend(t, r, c);
    }

    return rc;
}
