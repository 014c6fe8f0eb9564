/*
 * nginx-loyalty: questions to the conversion counters, for the admin
 * API's GET .../stats and loyaltyctl stats alike.
 *
 * The arguments are checked here; the sums are loyalty_stats_sum.c's.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loyalty_due.h"
#include "loyalty_record.h"
#include "loyalty_rules.h"
#include "loyalty_stats.h"
#include "loyalty_stats_sum.h"


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
loyalty_stats_range(const loyalty_stats_args_t *args,
    const loyalty_tz_t *tz, int64_t now, loyalty_stats_query_t *q, char *err,
    size_t errlen)
{
    int64_t  today;

    today = loyalty_stats_day(tz, now);

    if (args->to.len
        && loyalty_stats_parse_day(args->to.data, args->to.len, &q->to)
           != 0)
    {
        snprintf(err, errlen, "\"to\" must be a day YYYY-MM-DD from "
                 "2000-01-01 to 2100-12-31");
        return -1;
    }

    if (args->from.len
        && loyalty_stats_parse_day(args->from.data, args->from.len,
                                   &q->from)
           != 0)
    {
        snprintf(err, errlen, "\"from\" must be a day YYYY-MM-DD from "
                 "2000-01-01 to 2100-12-31");
        return -1;
    }

    if (args->to.len == 0) {
        q->to = today;
    }

    if (args->from.len == 0) {
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

    if (!keyed && (args->sort.len || args->top.len || args->offset.len)) {
        snprintf(err, errlen, "\"sort\", \"top\" and \"offset\" apply to "
                 "by=code|campaign|referrer|day only");
        return -1;
    }

    q->sort = (q->by == LOYALTY_STATS_BY_DAY) ? LOYALTY_STATS_SORT_KEY
                                               : LOYALTY_STATS_REVENUE;

    if (args->sort.len) {
        if ((args->sort.len == 3 && memcmp(args->sort.data, "key", 3) == 0)
            || (args->sort.len == 3
                && memcmp(args->sort.data, "day", 3) == 0
                && q->by == LOYALTY_STATS_BY_DAY))
        {
            q->sort = LOYALTY_STATS_SORT_KEY;

        } else {
            q->sort = loyalty_name_index(loyalty_stats_counter_names,
                                         LOYALTY_STATS_COUNTERS,
                                         args->sort.data, args->sort.len);
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

    if (args->top.len
        && (loyalty_stats_number(args->top.data, args->top.len,
                                 LOYALTY_STATS_TOP_MAX, &q->top) != 0
            || q->top == 0))
    {
        snprintf(err, errlen, "\"top\" must be a number from 1 to %d",
                 LOYALTY_STATS_TOP_MAX);
        return -1;
    }

    q->offset = 0;

    if (args->offset.len
        && loyalty_stats_number(args->offset.data, args->offset.len,
                                LOYALTY_STATS_OFFSET_MAX, &q->offset) != 0)
    {
        snprintf(err, errlen, "\"offset\" must be a number from 0 to %d",
                 LOYALTY_STATS_OFFSET_MAX);
        return -1;
    }

    return 0;
}


int
loyalty_stats_query_parse(const loyalty_stats_args_t *args,
    const loyalty_tz_t *tz, int64_t now, loyalty_stats_query_t *q,
    char *err, size_t errlen)
{
    int  by;

    memset(q, 0, sizeof(loyalty_stats_query_t));

    if (args->by.len == 0) {
        snprintf(err, errlen, "\"by\" is required: code, campaign, "
                 "referrer, day, funnel or cadence");
        return -1;
    }

    by = loyalty_name_index(loyalty_stats_by_names, LOYALTY_STATS_BY_COUNT,
                            args->by.data, args->by.len);
    if (by < 0) {
        snprintf(err, errlen, "\"by\" must be code, campaign, referrer, "
                 "day, funnel or cadence");
        return -1;
    }

    q->by = (loyalty_stats_by_e) by;

    if (loyalty_stats_range(args, tz, now, q, err, errlen) != 0) {
        return -1;
    }

    return loyalty_stats_order(args, q, err, errlen);
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
    loyalty_code_t  c;

    if (loyalty_code_get(st, txn, r->name, r->len, &c) != 0) {
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
    const loyalty_stats_query_t *q, const loyalty_stats_top_t *t,
    const loyalty_stats_row_t *r, int *rc)
{
    char     day[LOYALTY_DAY_LEN + 1];
    json_t  *o;
    int64_t  c[LOYALTY_STATS_COUNTERS];

    *rc = loyalty_stats_fill(st, txn, q, t, r, c);
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
        o = loyalty_stats_row_json(st, txn, q, t, &t->pool[t->heap[j]],
                                   &rc);

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
    loyalty_stats_top_floor(&t);

    rc = (q->by == LOYALTY_STATS_BY_DAY)
         ? loyalty_stats_days(st, txn, q, &t)
         : loyalty_stats_merge(st, txn, q, &t);

    if (rc == 0) {
        rc = loyalty_stats_rows(st, txn, q, &t, doc);
    }

    free(t.pool);
    free(t.heap);
    free(t.pend);

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
            || loyalty_stats_key_day(k + 1) > q->to)
        {
            break;
        }

        gt = memchr(k + 5, '>', key.mv_size - 5);

        if (gt == NULL || val.mv_size != LOYALTY_STATS_MOVE_LEN) {
            continue;
        }

        sep = (size_t) (gt - (k + 5));
        loyalty_stats_format_day(loyalty_stats_key_day(k + 1), day);

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
        rc = loyalty_due_stats(st, txn,
                               loyalty_tz_utc(st->tz, q->from * LOYALTY_DAY),
                               &cad);
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
