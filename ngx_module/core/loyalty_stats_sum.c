/*
 * nginx-loyalty: summing the conversion counters over a range of days.
 *
 * The stats database is keyed kind, day, name: the records of one kind
 * and one day are adjacent and in name order.  A question over a range
 * of days merges the days' runs, a cursor per day, by name, so that each
 * name's sum is complete as the merge passes it: no table of every name,
 * and the memory read in order.  The merge adds up only the counter the
 * rows are sorted by (and every counter into the totals); the first
 * offset + top rows are kept in a heap of that size, and only they are
 * summed in full at the end, a read per day.  The cost grows with the
 * records of the range, not with the store's members or codes.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "loyalty_stats_sum.h"


static const char  loyalty_stats_kinds[] = {
    LOYALTY_STATS_KIND_CODE, LOYALTY_STATS_KIND_CAMPAIGN,
    LOYALTY_STATS_KIND_REFERRER, LOYALTY_STATS_KIND_DAY
};



int64_t
loyalty_stats_key_day(const uint8_t *k)
{
    return ((int64_t) k[0] << 24) | (k[1] << 16) | (k[2] << 8) | k[3];
}


/* names in LMDB's order: bytewise, the shorter first */
static int
loyalty_stats_cmp_name(const void *a, size_t alen, const void *b,
    size_t blen)
{
    int  rc;

    rc = memcmp(a, b, alen < blen ? alen : blen);

    return rc ? rc : (alen > blen) - (alen < blen);
}


/* < 0 when a comes first: the larger sort counter, then the name */
static int
loyalty_stats_cmp(const loyalty_stats_row_t *a, const loyalty_stats_row_t *b,
    int sort)
{
    if (sort != LOYALTY_STATS_SORT_KEY && a->v != b->v) {
        return a->v > b->v ? -1 : 1;
    }

    return loyalty_stats_cmp_name(a->name, a->len, b->name, b->len);
}


#define loyalty_stats_top_cmp(t, i, j)                                        \
    loyalty_stats_cmp(&(t)->pool[(t)->heap[i]], &(t)->pool[(t)->heap[j]],     \
                      (t)->sort)


static void
loyalty_stats_top_swap(loyalty_stats_top_t *t, size_t i, size_t j)
{
    uint32_t  tmp;

    tmp = t->heap[i];
    t->heap[i] = t->heap[j];
    t->heap[j] = tmp;
}


static void
loyalty_stats_top_down(loyalty_stats_top_t *t, size_t n, size_t i)
{
    size_t  c;

    for ( ;; ) {
        c = 2 * i + 1;
        if (c >= n) {
            return;
        }

        if (c + 1 < n && loyalty_stats_top_cmp(t, c + 1, c) > 0) {
            c++;
        }

        if (loyalty_stats_top_cmp(t, c, i) <= 0) {
            return;
        }

        loyalty_stats_top_swap(t, i, c);
        i = c;
    }
}


static int
loyalty_stats_top_grow(loyalty_stats_top_t *t)
{
    uint32_t             *heap;
    loyalty_stats_row_t  *pool;

    t->nalloc = t->nalloc ? t->nalloc * 2 : 64;
    if (t->nalloc > t->k) {
        t->nalloc = t->k;
    }

    pool = realloc(t->pool, t->nalloc * sizeof(loyalty_stats_row_t));
    if (pool == NULL) {
        return ENOMEM;
    }

    t->pool = pool;

    heap = realloc(t->heap, t->nalloc * sizeof(uint32_t));
    if (heap == NULL) {
        return ENOMEM;
    }

    t->heap = heap;

    return 0;
}


/* a row summed: kept if it is among the first k; 0 or ENOMEM */
static int
loyalty_stats_top_offer(loyalty_stats_top_t *t, const void *name,
    size_t len, int64_t v)
{
    size_t               i;
    loyalty_stats_row_t  row;

    t->count++;

    if (t->k == 0) {
        return 0;
    }

    row.v = v;
    row.len = (uint32_t) len;
    memcpy(row.name, name, len);

    if (t->n == t->k) {
        if (loyalty_stats_cmp(&row, &t->pool[t->heap[0]], t->sort) >= 0) {
            return 0;
        }

        t->pool[t->heap[0]] = row;
        loyalty_stats_top_down(t, t->n, 0);

        return 0;
    }

    if (t->n == t->nalloc && loyalty_stats_top_grow(t) != 0) {
        return ENOMEM;
    }

    t->pool[t->n] = row;
    t->heap[t->n] = (uint32_t) t->n;

    for (i = t->n++; i > 0 && loyalty_stats_top_cmp(t, i, (i - 1) / 2) > 0;
         i = (i - 1) / 2)
    {
        loyalty_stats_top_swap(t, i, (i - 1) / 2);
    }

    return 0;
}


/* the heap in order, first to last: the last row to the end, again */
void
loyalty_stats_top_sort(loyalty_stats_top_t *t)
{
    size_t  i;

    for (i = t->n; i-- > 1; ) {
        loyalty_stats_top_swap(t, 0, i);
        loyalty_stats_top_down(t, i, 0);
    }
}


/*
 * A record into the totals; its sort counter, *sound set; 0 for damage,
 * which is verify's to report and counts nothing here
 */
static int64_t
loyalty_stats_total(loyalty_stats_top_t *t, const uint8_t *v, size_t len,
    int *sound)
{
    int      i;
    int64_t  c[LOYALTY_STATS_COUNTERS];

    if (loyalty_stats_decode(v, len, c) != 0) {
        return 0;
    }

    *sound = 1;

    for (i = 0; i < LOYALTY_STATS_COUNTERS; i++) {
        t->totals[i] += c[i];
    }

    return t->sort == LOYALTY_STATS_SORT_KEY ? 0 : c[t->sort];
}


/* the way at a record: 1, or 0 when it is past its day's records */
static int
loyalty_stats_way_at(loyalty_stats_way_t *w, const MDB_val *key,
    const MDB_val *val, int kind, const uint8_t *day)
{
    size_t          i;
    uint64_t        p;
    const uint8_t  *k = key->mv_data;

    if (key->mv_size < 5 || key->mv_size > LOYALTY_STATS_KEY_MAX
        || k[0] != kind || memcmp(k + 1, day, 4) != 0)
    {
        return 0;
    }

    w->name = k + 5;
    w->len = key->mv_size - 5;
    w->val = val->mv_data;
    w->vlen = val->mv_size;

    p = 0;
    for (i = 0; i < 8; i++) {
        p = (p << 8) | (i < w->len ? w->name[i] : 0);
    }

    w->prefix = p;

    return 1;
}


static int
loyalty_stats_way_cmp(const loyalty_stats_way_t *a,
    const loyalty_stats_way_t *b)
{
    if (a->prefix != b->prefix) {
        return a->prefix < b->prefix ? -1 : 1;
    }

    return loyalty_stats_cmp_name(a->name, a->len, b->name, b->len);
}


/* a heap of ways whose root has the first name */
static void
loyalty_stats_way_down(loyalty_stats_way_t *w, size_t n, size_t i)
{
    size_t               c;
    loyalty_stats_way_t  tmp;

    for ( ;; ) {
        c = 2 * i + 1;
        if (c >= n) {
            return;
        }

        if (c + 1 < n && loyalty_stats_way_cmp(&w[c + 1], &w[c]) < 0) {
            c++;
        }

        if (loyalty_stats_way_cmp(&w[c], &w[i]) >= 0) {
            return;
        }

        tmp = w[i];
        w[i] = w[c];
        w[c] = tmp;
        i = c;
    }
}


/*
 * A cursor per day of the range at its first record of the kind, in a
 * heap of *n; days without one have none.  On failure the caller closes
 * the cursors of w[0..*n).
 */
static int
loyalty_stats_ways(loyalty_store_t *st, MDB_txn *txn,
    const loyalty_stats_query_t *q, int kind, loyalty_stats_way_t *w,
    size_t *n)
{
    int       rc;
    size_t    i;
    int64_t   day;
    uint8_t   kbuf[LOYALTY_STATS_KEY_MAX];
    MDB_val   key, val;

    *n = 0;

    for (day = q->from; day <= q->to; day++) {
        i = *n;

        rc = mdb_cursor_open(txn, st->dbi[LOYALTY_DB_STATS], &w[i].cur);
        if (rc != 0) {
            return rc;
        }

        key.mv_data = kbuf;
        key.mv_size = loyalty_stats_key(kind, day, NULL, 0, kbuf);

        rc = mdb_cursor_get(w[i].cur, &key, &val, MDB_SET_RANGE);

        if (rc == 0 && loyalty_stats_way_at(&w[i], &key, &val, kind,
                                            kbuf + 1))
        {
            (*n)++;
            continue;
        }

        mdb_cursor_close(w[i].cur);

        if (rc != 0 && rc != MDB_NOTFOUND) {
            return rc;
        }
    }

    for (i = *n / 2; i-- > 0; ) {
        loyalty_stats_way_down(w, *n, i);
    }

    return 0;
}


/*
 * Moves the first way to its next record, or drops it from the heap at
 * the end of its day: 0 or an LMDB error
 */
static int
loyalty_stats_way_next(loyalty_stats_way_t *w, size_t *n, int kind)
{
    int      rc;
    uint8_t  day[4];
    MDB_val  key, val;

    memcpy(day, w[0].name - 4, 4);

    rc = mdb_cursor_get(w[0].cur, &key, &val, MDB_NEXT);

    if (rc == 0 && loyalty_stats_way_at(&w[0], &key, &val, kind, day)) {
        loyalty_stats_way_down(w, *n, 0);
        return 0;
    }

    if (rc != 0 && rc != MDB_NOTFOUND) {
        return rc;
    }

    mdb_cursor_close(w[0].cur);
    w[0] = w[--*n];
    loyalty_stats_way_down(w, *n, 0);

    return 0;
}


/*
 * by=code, campaign, referrer: the days' runs merged by name, each
 * name's sum complete when the merge passes it
 */
int
loyalty_stats_merge(loyalty_store_t *st, MDB_txn *txn,
    const loyalty_stats_query_t *q, loyalty_stats_top_t *t)
{
    int                   rc, kind, sound;
    char                  name[LOYALTY_ID_MAX];
    size_t                i, n, len;
    int64_t               v;
    uint64_t              prefix;
    loyalty_stats_way_t  *w;

    kind = loyalty_stats_kinds[q->by];

    w = malloc((size_t) (q->to - q->from + 1) * sizeof(loyalty_stats_way_t));
    if (w == NULL) {
        return ENOMEM;
    }

    rc = loyalty_stats_ways(st, txn, q, kind, w, &n);

    while (rc == 0 && n > 0) {
        prefix = w[0].prefix;
        len = w[0].len;
        memcpy(name, w[0].name, len);
        v = 0;
        sound = 0;

        do {
            v += loyalty_stats_total(t, w[0].val, w[0].vlen, &sound);
            rc = loyalty_stats_way_next(w, &n, kind);

        } while (rc == 0 && n > 0 && w[0].prefix == prefix
                 && w[0].len == len && memcmp(w[0].name, name, len) == 0);

        if (rc == 0 && sound) {
            rc = loyalty_stats_top_offer(t, name, len, v);
        }
    }

    for (i = 0; i < n; i++) {
        mdb_cursor_close(w[i].cur);
    }

    free(w);

    return rc;
}


/* by=day: every day of the range, those without counts too */
int
loyalty_stats_days(loyalty_store_t *st, MDB_txn *txn,
    const loyalty_stats_query_t *q, loyalty_stats_top_t *t)
{
    int       rc, sound;
    int64_t   day, v;
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

        v = (rc == 0) ? loyalty_stats_total(t, val.mv_data, val.mv_size,
                                            &sound)
                      : 0;

        /* the row's name: the day, big-endian, in date order */
        rc = loyalty_stats_top_offer(t, kbuf + 1, 4, v);
        if (rc != 0) {
            return rc;
        }
    }

    return 0;
}


/* a row's every counter over the range: a read per day of it */
int
loyalty_stats_fill(loyalty_store_t *st, MDB_txn *txn,
    const loyalty_stats_query_t *q, const loyalty_stats_row_t *r,
    int64_t *c)
{
    int       rc, i, kind;
    int64_t   day, from, to, d[LOYALTY_STATS_COUNTERS];
    uint8_t   kbuf[LOYALTY_STATS_KEY_MAX];
    MDB_val   key, val;

    memset(c, 0, sizeof(int64_t) * LOYALTY_STATS_COUNTERS);

    kind = loyalty_stats_kinds[q->by];
    from = q->from;
    to = q->to;

    if (q->by == LOYALTY_STATS_BY_DAY) {
        from = to = loyalty_stats_key_day((const uint8_t *) r->name);
    }

    for (day = from; day <= to; day++) {
        key.mv_data = kbuf;
        key.mv_size = (q->by == LOYALTY_STATS_BY_DAY)
                      ? loyalty_stats_key(kind, day, NULL, 0, kbuf)
                      : loyalty_stats_key(kind, day, r->name, r->len, kbuf);

        rc = mdb_get(txn, st->dbi[LOYALTY_DB_STATS], &key, &val);
        if (rc == MDB_NOTFOUND) {
            continue;
        }

        if (rc != 0) {
            return rc;
        }

        if (loyalty_stats_decode(val.mv_data, val.mv_size, d) != 0) {
            continue;
        }

        for (i = 0; i < LOYALTY_STATS_COUNTERS; i++) {
            c[i] += d[i];
        }
    }

    return 0;
}
