/*
 * nginx-loyalty: questions to the conversion counters, for the admin
 * API's GET .../stats and loyaltyctl stats alike.
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

#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loyalty_due.h"
#include "loyalty_record.h"
#include "loyalty_rules.h"
#include "loyalty_stats.h"


/* one name's sum of the sort counter over the range */
typedef struct {
    int64_t                v;
    uint32_t               len;
    char                   name[LOYALTY_ID_MAX];
} loyalty_stats_row_t;


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
    size_t                 count;
    int64_t                totals[LOYALTY_STATS_COUNTERS];
} loyalty_stats_top_t;


/*
 * One day's cursor in the merge of the days, at its current record;
 * prefix is the name's first 8 bytes, big-endian and zero-padded, so
 * that most comparisons are of two integers.
 */
typedef struct {
    uint64_t               prefix;
    MDB_cursor            *cur;
    const uint8_t         *name;
    size_t                 len;
    const uint8_t         *val;
    size_t                 vlen;
} loyalty_stats_way_t;


static const char  loyalty_stats_kinds[] = {
    LOYALTY_STATS_KIND_CODE, LOYALTY_STATS_KIND_CAMPAIGN,
    LOYALTY_STATS_KIND_REFERRER, LOYALTY_STATS_KIND_DAY
};


/* checking a question */

/* digits only, at most max: 0, or -1 */
static int
loyalty_stats_number(const char *s, size_t len, size_t max, size_t *out)
{
    size_t  i, n;

    if (len == 0 || len > 7) {
        return -1;
    }

    n = 0;
    for (i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }

        n = n * 10 + (size_t) (s[i] - '0');
    }

    if (n > max) {
        return -1;
    }

    *out = n;

    return 0;
}


static int
loyalty_stats_range(const loyalty_stats_args_t *args, int64_t now,
    loyalty_stats_query_t *q, char *err, size_t errlen)
{
    int64_t  today;

    today = loyalty_stats_day(now);

    if (args->to_len
        && loyalty_stats_parse_day(args->to, args->to_len, &q->to) != 0)
    {
        snprintf(err, errlen, "\"to\" must be a day YYYY-MM-DD from "
                 "2000-01-01 to 2100-12-31");
        return -1;
    }

    if (args->from_len
        && loyalty_stats_parse_day(args->from, args->from_len, &q->from)
           != 0)
    {
        snprintf(err, errlen, "\"from\" must be a day YYYY-MM-DD from "
                 "2000-01-01 to 2100-12-31");
        return -1;
    }

    if (args->to_len == 0) {
        q->to = today;
    }

    if (args->from_len == 0) {
        q->from = q->to - 29;
    }

    if (q->from > q->to) {
        snprintf(err, errlen, "\"from\" is after \"to\"");
        return -1;
    }

    if (q->to - q->from + 1 > LOYALTY_STATS_DAYS_MAX) {
        snprintf(err, errlen, "the range covers more than %d days",
                 LOYALTY_STATS_DAYS_MAX);
        return -1;
    }

    return 0;
}


/* sort, top and offset: for the counters' questions only */
static int
loyalty_stats_order(const loyalty_stats_args_t *args,
    loyalty_stats_query_t *q, char *err, size_t errlen)
{
    int  keyed;

    keyed = (q->by <= LOYALTY_STATS_BY_DAY);

    if (!keyed && (args->sort_len || args->top_len || args->offset_len)) {
        snprintf(err, errlen, "\"sort\", \"top\" and \"offset\" apply to "
                 "by=code|campaign|referrer|day only");
        return -1;
    }

    q->sort = (q->by == LOYALTY_STATS_BY_DAY) ? LOYALTY_STATS_SORT_KEY
                                               : LOYALTY_STATS_REVENUE;

    if (args->sort_len) {
        if ((args->sort_len == 3 && memcmp(args->sort, "key", 3) == 0)
            || (args->sort_len == 3 && memcmp(args->sort, "day", 3) == 0
                && q->by == LOYALTY_STATS_BY_DAY))
        {
            q->sort = LOYALTY_STATS_SORT_KEY;

        } else {
            q->sort = loyalty_name_index(loyalty_stats_counter_names,
                                         LOYALTY_STATS_COUNTERS, args->sort,
                                         args->sort_len);
            if (q->sort < 0) {
                snprintf(err, errlen, "\"sort\" must be \"key\" or a "
                         "counter: clicks, unique_clicks, bot_clicks, "
                         "attributed, signups, first_orders, orders, "
                         "revenue, refunds, refunded, points_l1, "
                         "points_l2");
                return -1;
            }
        }
    }

    q->top = (q->by == LOYALTY_STATS_BY_DAY)
             ? (size_t) (q->to - q->from + 1) : LOYALTY_STATS_TOP_DEFAULT;

    if (args->top_len
        && (loyalty_stats_number(args->top, args->top_len,
                                 LOYALTY_STATS_TOP_MAX, &q->top) != 0
            || q->top == 0))
    {
        snprintf(err, errlen, "\"top\" must be a number from 1 to %d",
                 LOYALTY_STATS_TOP_MAX);
        return -1;
    }

    q->offset = 0;

    if (args->offset_len
        && loyalty_stats_number(args->offset, args->offset_len,
                                LOYALTY_STATS_OFFSET_MAX, &q->offset) != 0)
    {
        snprintf(err, errlen, "\"offset\" must be a number from 0 to %d",
                 LOYALTY_STATS_OFFSET_MAX);
        return -1;
    }

    return 0;
}


int
loyalty_stats_query_parse(const loyalty_stats_args_t *args, int64_t now,
    loyalty_stats_query_t *q, char *err, size_t errlen)
{
    int  by;

    memset(q, 0, sizeof(loyalty_stats_query_t));

    if (args->by_len == 0) {
        snprintf(err, errlen, "\"by\" is required: code, campaign, "
                 "referrer, day, funnel or cadence");
        return -1;
    }

    by = loyalty_name_index(loyalty_stats_by_names, LOYALTY_STATS_BY_COUNT,
                            args->by, args->by_len);
    if (by < 0) {
        snprintf(err, errlen, "\"by\" must be code, campaign, referrer, "
                 "day, funnel or cadence");
        return -1;
    }

    q->by = (loyalty_stats_by_e) by;

    if (loyalty_stats_range(args, now, q, err, errlen) != 0) {
        return -1;
    }

    return loyalty_stats_order(args, q, err, errlen);
}


/* summing a range */

static int64_t
loyalty_stats_get64(const uint8_t *p)
{
    uint64_t  v;

    memcpy(&v, p, 8);

    return (int64_t) le64toh(v);
}


static int64_t
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
static void
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
    int  i;

    if (len != LOYALTY_STATS_REC_LEN || v[0] != LOYALTY_STATS_VERSION) {
        return 0;
    }

    *sound = 1;

    for (i = 0; i < LOYALTY_STATS_COUNTERS; i++) {
        t->totals[i] += loyalty_stats_get64(v + 8 + 8 * i);
    }

    return t->sort == LOYALTY_STATS_SORT_KEY
           ? 0 : loyalty_stats_get64(v + 8 + 8 * t->sort);
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
static int
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
static int
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
static int
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


/* answering */

static json_t *
loyalty_stats_counters(const int64_t *c)
{
    int      i;
    json_t  *o;

    o = json_object();
    if (o == NULL) {
        return NULL;
    }

    for (i = 0; i < LOYALTY_STATS_COUNTERS; i++) {
        if (json_object_set_new(o, loyalty_stats_counter_names[i],
                                json_integer(c[i]))
            != 0)
        {
            json_decref(o);
            return NULL;
        }
    }

    return o;
}


/* a code's member and campaign, as the code is now */
static void
loyalty_stats_code_info(loyalty_store_t *st, MDB_txn *txn, json_t *o,
    const loyalty_stats_row_t *r)
{
    MDB_val         key, val;
    loyalty_code_t  c;

    key.mv_data = (void *) r->name;
    key.mv_size = r->len;

    if (mdb_get(txn, st->dbi[LOYALTY_DB_CODES], &key, &val) != 0
        || loyalty_code_decode(val.mv_data, val.mv_size, &c) != 0)
    {
        return;
    }

    json_object_set_new(o, "member", json_stringn(c.member, c.member_len));

    if (c.campaign_len) {
        json_object_set_new(o, "campaign",
                            json_stringn(c.campaign, c.campaign_len));
    }
}


/* NULL with *rc set */
static json_t *
loyalty_stats_row_json(loyalty_store_t *st, MDB_txn *txn,
    const loyalty_stats_query_t *q, const loyalty_stats_row_t *r, int *rc)
{
    char     day[LOYALTY_DAY_LEN + 1];
    json_t  *o;
    int64_t  c[LOYALTY_STATS_COUNTERS];

    *rc = loyalty_stats_fill(st, txn, q, r, c);
    if (*rc != 0) {
        return NULL;
    }

    *rc = ENOMEM;

    o = loyalty_stats_counters(c);
    if (o == NULL) {
        return NULL;
    }

    if (q->by == LOYALTY_STATS_BY_DAY) {
        loyalty_stats_format_day(
            loyalty_stats_key_day((const uint8_t *) r->name), day);
        json_object_set_new(o, "key", json_string(day));

    } else {
        json_object_set_new(o, "key", json_stringn(r->name, r->len));
    }

    if (q->by == LOYALTY_STATS_BY_CODE) {
        loyalty_stats_code_info(st, txn, o, r);
    }

    *rc = 0;

    return o;
}


/* the question's own fields, which every answer repeats */
static json_t *
loyalty_stats_head(const loyalty_stats_query_t *q)
{
    char     from[LOYALTY_DAY_LEN + 1], to[LOYALTY_DAY_LEN + 1];
    json_t  *doc;

    loyalty_stats_format_day(q->from, from);
    loyalty_stats_format_day(q->to, to);

    doc = json_pack("{s:s,s:s,s:s}", "by", loyalty_stats_by_names[q->by],
                    "from", from, "to", to);

    if (doc != NULL && q->by <= LOYALTY_STATS_BY_DAY) {
        json_object_set_new(doc, "sort", json_string(
                                q->sort == LOYALTY_STATS_SORT_KEY
                                ? "key"
                                : loyalty_stats_counter_names[q->sort]));
        json_object_set_new(doc, "top", json_integer((json_int_t) q->top));
        json_object_set_new(doc, "offset",
                            json_integer((json_int_t) q->offset));
    }

    return doc;
}


static int
loyalty_stats_rows(loyalty_store_t *st, MDB_txn *txn,
    const loyalty_stats_query_t *q, loyalty_stats_top_t *t, json_t *doc)
{
    int      rc;
    size_t   j;
    json_t  *rows, *o;

    loyalty_stats_top_sort(t);

    rows = json_array();

    json_object_set_new(doc, "count", json_integer((json_int_t) t->count));
    json_object_set_new(doc, "totals", loyalty_stats_counters(t->totals));
    json_object_set_new(doc, "rows", rows);

    rc = (rows == NULL || json_object_get(doc, "totals") == NULL)
         ? ENOMEM : 0;

    for (j = q->offset; rc == 0 && j < t->n; j++) {
        o = loyalty_stats_row_json(st, txn, q, &t->pool[t->heap[j]], &rc);

        if (o != NULL && json_array_append_new(rows, o) != 0) {
            rc = ENOMEM;
        }
    }

    return rc;
}


static int
loyalty_stats_keyed(loyalty_store_t *st, MDB_txn *txn,
    const loyalty_stats_query_t *q, json_t *doc)
{
    int                  rc;
    loyalty_stats_top_t  t;

    memset(&t, 0, sizeof(loyalty_stats_top_t));
    t.k = q->offset + q->top;
    t.sort = q->sort;

    rc = (q->by == LOYALTY_STATS_BY_DAY)
         ? loyalty_stats_days(st, txn, q, &t)
         : loyalty_stats_merge(st, txn, q, &t);

    if (rc == 0) {
        rc = loyalty_stats_rows(st, txn, q, &t, doc);
    }

    free(t.pool);
    free(t.heap);

    return rc;
}


/* by=funnel: members by stage and lifecycle now; moves per day */

static int
loyalty_stats_census(loyalty_store_t *st, MDB_txn *txn, int64_t now,
    json_t *doc)
{
    int               rc, has_rules, i;
    size_t            n;
    MDB_val           key, val;
    MDB_cursor       *cur;
    loyalty_rules_t   rules;
    loyalty_member_t  m;
    json_int_t        stages[LOYALTY_STAGE_COUNT];
    json_int_t        life[LOYALTY_LIFECYCLE_COUNT];
    json_t           *s, *l;

    rc = loyalty_rules_load(st, txn, &rules);
    if (rc != 0 && rc != MDB_NOTFOUND && rc != MDB_CORRUPTED) {
        return rc;
    }

    has_rules = (rc == 0);

    memset(stages, 0, sizeof(stages));
    memset(life, 0, sizeof(life));
    n = 0;

    rc = mdb_cursor_open(txn, st->dbi[LOYALTY_DB_MEMBERS], &cur);
    if (rc != 0) {
        return rc;
    }

    while ((rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) == 0) {
        if (loyalty_member_decode(val.mv_data, val.mv_size, &m) != 0
            || m.stage >= LOYALTY_STAGE_COUNT)
        {
            continue;
        }

        n++;
        stages[m.stage]++;

        if (has_rules) {
            life[loyalty_lifecycle(&rules, &m, now)]++;
        }
    }

    mdb_cursor_close(cur);

    if (rc != MDB_NOTFOUND) {
        return rc;
    }

    s = json_object();
    l = has_rules ? json_object() : json_null();

    for (i = 0; s != NULL && i < LOYALTY_STAGE_COUNT; i++) {
        json_object_set_new(s, loyalty_stage_names[i],
                            json_integer(stages[i]));
    }

    for (i = 0; has_rules && l != NULL && i < LOYALTY_LIFECYCLE_COUNT; i++) {
        json_object_set_new(l, loyalty_lifecycle_names[i],
                            json_integer(life[i]));
    }

    json_object_set_new(doc, "members", json_integer((json_int_t) n));
    json_object_set_new(doc, "stages", s);
    json_object_set_new(doc, "lifecycles", l);

    return (s == NULL || l == NULL) ? ENOMEM : 0;
}


static int
loyalty_stats_moves(loyalty_store_t *st, MDB_txn *txn,
    const loyalty_stats_query_t *q, json_t *doc)
{
    int             rc;
    char            day[LOYALTY_DAY_LEN + 1];
    size_t          sep;
    uint8_t         kbuf[LOYALTY_STATS_KEY_MAX];
    json_t         *moves, *o;
    MDB_val         key, val;
    MDB_cursor     *cur;
    const uint8_t  *k, *gt;

    moves = json_array();
    if (moves == NULL || json_object_set_new(doc, "movements", moves) != 0) {
        return ENOMEM;
    }

    rc = mdb_cursor_open(txn, st->dbi[LOYALTY_DB_STATS], &cur);
    if (rc != 0) {
        return rc;
    }

    key.mv_data = kbuf;
    key.mv_size = loyalty_stats_key(LOYALTY_STATS_KIND_MOVE, q->from, NULL, 0,
                                    kbuf);

    for (rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
         rc == 0;
         rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT))
    {
        k = key.mv_data;

        if (key.mv_size < 5 || k[0] != LOYALTY_STATS_KIND_MOVE
            || (((int64_t) k[1] << 24) | (k[2] << 16) | (k[3] << 8) | k[4])
               > q->to)
        {
            break;
        }

        gt = memchr(k + 5, '>', key.mv_size - 5);

        if (gt == NULL || val.mv_size != LOYALTY_STATS_MOVE_LEN) {
            continue;
        }

        sep = (size_t) (gt - (k + 5));
        loyalty_stats_format_day(((int64_t) k[1] << 24) | (k[2] << 16)
                                 | (k[3] << 8) | k[4], day);

        o = json_pack("{s:s,s:s%,s:s%,s:I}", "day", day,
                      "from", (const char *) k + 5, sep,
                      "to", (const char *) gt + 1,
                      key.mv_size - 5 - sep - 1,
                      "count", (json_int_t)
                      loyalty_le_get((uint8_t *) val.mv_data + 8, 8));

        if (o == NULL || json_array_append_new(moves, o) != 0) {
            rc = ENOMEM;
            break;
        }
    }

    mdb_cursor_close(cur);

    return rc == MDB_NOTFOUND ? 0 : rc;
}


int
loyalty_stats_query(loyalty_store_t *st, MDB_txn *txn,
    const loyalty_stats_query_t *q, int64_t now, json_t **out)
{
    int      rc;
    json_t  *doc, *cad;

    doc = loyalty_stats_head(q);
    if (doc == NULL) {
        return ENOMEM;
    }

    switch (q->by) {

    case LOYALTY_STATS_BY_FUNNEL:
        rc = loyalty_stats_census(st, txn, now, doc);
        if (rc == 0) {
            rc = loyalty_stats_moves(st, txn, q, doc);
        }
        break;

    case LOYALTY_STATS_BY_CADENCE:
        /* touches due from the first day on, as cadence-stats --since */
        json_object_del(doc, "to");
        cad = NULL;
        rc = loyalty_due_stats(st, txn, q->from * 86400, &cad);
        if (rc == 0) {
            json_object_update(doc, cad);
            json_decref(cad);
        }
        break;

    default:
        rc = loyalty_stats_keyed(st, txn, q, doc);
        break;
    }

    if (rc != 0) {
        json_decref(doc);
        return rc;
    }

    *out = doc;

    return 0;
}
