/*
 * Unit tests of the conversion counters' pending deltas
 * (loyalty_stats_pend.c): a batch's rows of codes, campaigns and
 * referrers go into one pending delta that questions add to what they
 * read; the batch that leaves LOYALTY_STATS_PENDING_MAX (MAX) folds them,
 * each counted once; a crash between a batch and the fold loses nothing; a
 * batch of more rows than a delta takes writes them straight; a damaged
 * key of the kind is passed over; verify's check of a delta.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loyalty_admin.h"
#include "loyalty_batch.h"
#include "loyalty_stats.h"
#include "store_fixture.h"
#include "tap.h"


#define DAY  "2026-11-01"
#define DAY2 "2026-11-02"


static char             tmp[FIXTURE_PATH_MAX];
static loyalty_store_t  st;
static char             last_err[LOYALTY_ERRLEN];
static int              people;


/* a batch of a signup by ANN-1 and the new member's order of 10.00 */
static int
batch(void)
{
    int              rc;
    char             body[512];
    MDB_txn         *txn;
    loyalty_batch_t  res;

    people++;
    snprintf(body, sizeof(body),
             "{\"type\":\"signup\",\"member\":\"p%d\",\"ref_code\":\"ANN-1\","
             "\"at\":\"" DAY "T10:00:00Z\"}\n"
             "{\"type\":\"order\",\"member\":\"p%d\",\"order_id\":\"o%d\","
             "\"amount\":1000,\"at\":\"" DAY "T11:00:00Z\"}\n",
             people, people, people);

    if (mdb_txn_begin(st.env, NULL, 0, &txn) != 0) {
        return -100;
    }

    rc = loyalty_batch_apply(&st, txn, body, strlen(body), 1000, 1800000000,
                             NULL, &res, last_err, sizeof(last_err));

    rc = (rc == 0) ? mdb_txn_commit(txn) : (mdb_txn_abort(txn), rc);

    loyalty_batch_free(&res);

    return rc;
}


/* the pending deltas in the store */
static int
pending(void)
{
    int          n;
    MDB_val      key, val;
    MDB_txn     *txn;
    MDB_cursor  *cur;

    n = 0;
    mdb_txn_begin(st.env, NULL, MDB_RDONLY, &txn);
    mdb_cursor_open(txn, st.dbi[LOYALTY_DB_STATS], &cur);

    while (mdb_cursor_get(cur, &key, &val, MDB_NEXT) == 0) {
        n += ((uint8_t *) key.mv_data)[0] == LOYALTY_STATS_KIND_PENDING
             && key.mv_size == LOYALTY_STATS_PENDING_KEY;
    }

    mdb_cursor_close(cur);
    mdb_txn_abort(txn);

    return n;
}


/*
 * counter i of the stored row (kind, DAY, name) itself: the day's in
 * its block for a code, campaign or referrer; -1: no row
 */
static long long
stored(int kind, const char *name, int i)
{
    int       bk;
    int64_t   day, block, c[LOYALTY_STATS_COUNTERS];
    uint8_t   kbuf[LOYALTY_STATS_KEY_MAX];
    uint32_t  want;
    MDB_txn  *txn;
    MDB_val   key, val;

    loyalty_stats_parse_day(DAY, 10, &day);
    bk = loyalty_stats_block_kind(kind);
    block = bk ? loyalty_stats_block_day(day) : day;
    want = (uint32_t) 1 << (day - block);

    key.mv_data = kbuf;
    key.mv_size = loyalty_stats_key(bk ? bk : kind, block, name,
                                    strlen(name), kbuf);

    mdb_txn_begin(st.env, NULL, MDB_RDONLY, &txn);

    memset(c, 0, sizeof(c));

    if (mdb_get(txn, st.dbi[LOYALTY_DB_STATS], &key, &val) != 0
        || (bk ? !(loyalty_stats_block_days(val.mv_data, val.mv_size) & want)
                 || loyalty_stats_block_sum(val.mv_data, val.mv_size, want,
                                            c) != 0
               : loyalty_stats_decode(val.mv_data, val.mv_size, c) != 0))
    {
        c[i] = -1;
    }

    mdb_txn_abort(txn);

    return (long long) c[i];
}


/*
 * A question's row named key: "signups orders revenue clicks" (and its
 * totals' signups after a "/"), or "none"
 */
static char *
answer(const char *by, const char *key)
{
    static char            buf[256];
    size_t                 j;
    json_t                *doc, *r;
    MDB_txn               *txn;
    loyalty_stats_args_t   a;
    loyalty_stats_query_t  q;

    memset(&a, 0, sizeof(a));
    a.by.data = by;
    a.by.len = strlen(by);
    a.from.data = a.to.data = DAY;
    a.from.len = a.to.len = 10;
    a.top.data = "1000";
    a.top.len = 4;

    snprintf(buf, sizeof(buf), "none");

    if (loyalty_stats_query_parse(&a, NULL, 0, &q, last_err,
                                  sizeof(last_err)) != 0)
    {
        return buf;
    }

    mdb_txn_begin(st.env, NULL, MDB_RDONLY, &txn);

    if (loyalty_stats_query(&st, txn, &q, 1800000000, &doc) != 0) {
        mdb_txn_abort(txn);
        return buf;
    }

    mdb_txn_abort(txn);

    json_array_foreach(json_object_get(doc, "rows"), j, r) {
        if (strcmp(json_string_value(json_object_get(r, "key")), key) != 0) {
            continue;
        }

        snprintf(buf, sizeof(buf), "%lld %lld %lld %lld/%lld",
                 (long long) json_integer_value(json_object_get(r,
                                                                "signups")),
                 (long long) json_integer_value(json_object_get(r, "orders")),
                 (long long) json_integer_value(json_object_get(r,
                                                                "revenue")),
                 (long long) json_integer_value(json_object_get(r, "clicks")),
                 (long long) json_integer_value(json_object_get(
                     json_object_get(doc, "totals"), "signups")));
    }

    json_decref(doc);

    return buf;
}


/* the answer of n batches: n signups and orders of 10.00 */
static char *
made(int n, int clicks, int total)
{
    static char  buf[64];

    snprintf(buf, sizeof(buf), "%d %d %d %d/%d", n, n, n * 1000, clicks,
             total);

    return buf;
}


static void
test_pending(void)
{
    int  i;

    ok(batch() == 0, "a batch");
    is_int(pending(), 1, "one pending delta");
    ok(stored(LOYALTY_STATS_KIND_CODE, "ANN-1", LOYALTY_STATS_SIGNUPS) == -1,
       "the code's row is not written yet");
    ok(stored(LOYALTY_STATS_KIND_DAY, "", LOYALTY_STATS_SIGNUPS) == 1,
       "the day's row is, at once");
    is_str(answer("code", "ANN-1"), made(1, 0, 1),
           "by=code sees the pending delta");
    is_str(answer("campaign", "tea"), made(1, 0, 1), "by=campaign too");
    is_str(answer("referrer", "ann"), made(1, 0, 1), "by=referrer too");

    for (i = 2; i < LOYALTY_STATS_PENDING_MAX; i++) {
        batch();
    }

    is_int(pending(), LOYALTY_STATS_PENDING_MAX - 1, "MAX - 1 pending");
    is_str(answer("code", "ANN-1"), made(LOYALTY_STATS_PENDING_MAX - 1, 0,
                                         LOYALTY_STATS_PENDING_MAX - 1),
           "a row summed over MAX - 1 deltas");

    ok(batch() == 0, "the MAX-th batch");
    is_int(pending(), 0, "folds them all");
    is_int(stored(LOYALTY_STATS_KIND_CODE, "ANN-1", LOYALTY_STATS_SIGNUPS),
           LOYALTY_STATS_PENDING_MAX,
           "into the code's row: each counted once");
    is_int(stored(LOYALTY_STATS_KIND_REFERRER, "ann", LOYALTY_STATS_REVENUE),
           LOYALTY_STATS_PENDING_MAX * 1000, "and the referrer's");
    is_str(answer("code", "ANN-1"), made(LOYALTY_STATS_PENDING_MAX, 0,
                                         LOYALTY_STATS_PENDING_MAX),
           "the answer is the same");
    is_str(answer("day", DAY), made(LOYALTY_STATS_PENDING_MAX, 0,
                                    LOYALTY_STATS_PENDING_MAX),
           "as by=day's");
}


/* a batch committed, its fold never: the delta stays and counts */
static void
test_crash(void)
{
    MDB_txn  *txn;
    char      err[LOYALTY_ERRLEN];

    ok(batch() == 0, "one batch more");
    is_int(pending(), 1, "pending");

    mdb_txn_begin(st.env, NULL, 0, &txn);
    is_int(loyalty_stats_fold(&st, txn), 0, "a fold");
    mdb_txn_abort(txn);

    loyalty_store_close(&st);
    ok(loyalty_store_open(&st, tmp, 0, err, sizeof(err)) == 0,
       "the store reopened after a crash before the fold's commit");

    is_int(pending(), 1, "the delta is still pending");
    is_str(answer("code", "ANN-1"), made(people, 0, people), "and counted");

    mdb_txn_begin(st.env, NULL, 0, &txn);
    is_int(loyalty_stats_fold(&st, txn), 0, "the fold again");
    is_int(mdb_txn_commit(txn), 0, "committed");

    is_int(pending(), 0, "nothing pending");
    is_int(stored(LOYALTY_STATS_KIND_CODE, "ANN-1", LOYALTY_STATS_SIGNUPS),
           people, "all of them in the row");
    is_str(answer("code", "ANN-1"), made(people, 0, people),
           "and in the answer");
}


/* a key of the kind that is no delta's, before the deltas: passed over */
static void
test_damage(void)
{
    MDB_txn  *txn;
    MDB_val   key, val;

    /* after the first delta's key could be, before any delta's */
    key.mv_data = "z\0\0\0\0\0\0\0\0\0";
    key.mv_size = 10;
    val.mv_data = "x";
    val.mv_size = 1;

    mdb_txn_begin(st.env, NULL, 0, &txn);
    mdb_put(txn, st.dbi[LOYALTY_DB_STATS], &key, &val, 0);
    is_int(mdb_txn_commit(txn), 0, "a damaged key of kind z");

    ok(batch() == 0 && batch() == 0, "two batches after it");
    is_int(pending(), 2, "two deltas");
    is_str(answer("code", "ANN-1"), made(people, 0, people),
           "a question sees both");

    mdb_txn_begin(st.env, NULL, 0, &txn);
    is_int(loyalty_stats_fold(&st, txn), 0, "a fold");
    mdb_txn_commit(txn);
    ok(pending() == 0
       && stored(LOYALTY_STATS_KIND_CODE, "ANN-1", LOYALTY_STATS_SIGNUPS)
          == people, "folds both");

    mdb_txn_begin(st.env, NULL, 0, &txn);
    mdb_del(txn, st.dbi[LOYALTY_DB_STATS], &key, NULL);
    mdb_txn_commit(txn);
}


/* loyalty_stats_flush of an accumulator of n code rows of one click */
static int
flush_day(const char *when, int n)
{
    int                  i, rc;
    char                 name[16];
    int64_t              day, d[LOYALTY_STATS_COUNTERS];
    MDB_txn             *txn;
    loyalty_stats_acc_t  acc;

    loyalty_stats_parse_day(when, 10, &day);
    loyalty_stats_acc_init(&acc);
    memset(d, 0, sizeof(d));
    d[LOYALTY_STATS_CLICKS] = 1;

    mdb_txn_begin(st.env, NULL, 0, &txn);

    for (i = 0; i < n; i++) {
        snprintf(name, sizeof(name), "R%05d", i);
        loyalty_stats_add(&st, txn, &acc, LOYALTY_STATS_KIND_CODE, day, name,
                          strlen(name), d);
    }

    rc = loyalty_stats_flush(&st, txn, &acc);
    mdb_txn_commit(txn);
    loyalty_stats_acc_free(&acc);

    return rc;
}


static int
flush_rows(int n)
{
    return flush_day(DAY, n);
}


static void
test_large(void)
{
    ok(flush_rows(LOYALTY_STATS_PENDING_ROWS + 1) == 0,
       "a batch of 1,025 rows");
    is_int(pending(), 0, "takes no delta");
    is_int(stored(LOYALTY_STATS_KIND_CODE, "R01024", LOYALTY_STATS_CLICKS), 1,
           "writes its rows straight");

    ok(flush_rows(LOYALTY_STATS_PENDING_ROWS) == 0, "a batch of 1,024");
    is_int(pending(), 1, "takes one");
    is_int(stored(LOYALTY_STATS_KIND_CODE, "R01023", LOYALTY_STATS_CLICKS), 1,
           "its rows wait in it");
    is_str(answer("code", "R00000"), made(0, 2, people),
           "a question adds them to the stored rows");
}


/*
 * The names of a day that only pending rows have, more of them than a
 * question's first round takes, a name's rows of two deltas on either
 * side of its end: the name is one row all the same
 */
static void
test_split(void)
{
    size_t                 j, n;
    json_t                *doc, *r;
    MDB_txn               *txn;
    loyalty_stats_args_t   a;
    loyalty_stats_query_t  q;

    /* R00682's third row is the 2,050th: past the first round's 2,049 */
    ok(flush_day(DAY2, 700) == 0 && flush_day(DAY2, 700) == 0
       && flush_day(DAY2, 700) == 0 && flush_day(DAY2, 1) == 0,
       "2,101 pending rows of 700 names");

    memset(&a, 0, sizeof(a));
    a.by.data = "code";
    a.by.len = 4;
    a.from.data = a.to.data = DAY2;
    a.from.len = a.to.len = 10;
    a.top.data = "1000";
    a.top.len = 4;

    doc = NULL;
    mdb_txn_begin(st.env, NULL, MDB_RDONLY, &txn);
    ok(loyalty_stats_query_parse(&a, NULL, 0, &q, last_err,
                                 sizeof(last_err)) == 0
       && loyalty_stats_query(&st, txn, &q, 1800000000, &doc) == 0,
       "by=code over the day");
    mdb_txn_abort(txn);

    is_int(json_integer_value(json_object_get(doc, "count")),
           700, "each name counted once");

    n = 0;
    json_array_foreach(json_object_get(doc, "rows"), j, r) {
        n += strcmp(json_string_value(json_object_get(r, "key")), "R00682")
             == 0;
    }

    is_int(n, 1, "the name across the round's end is one row");
    is_int(json_integer_value(json_object_get(json_object_get(doc, "totals"),
                                              "clicks")),
           2101, "the totals count every row");
    json_decref(doc);
}


static void
test_check(void)
{
    uint8_t   buf[64];
    size_t    n;
    int64_t   c[LOYALTY_STATS_COUNTERS];

    memset(c, 0, sizeof(c));
    c[LOYALTY_STATS_SIGNUPS] = 2;

    buf[0] = LOYALTY_STATS_VERSION;
    buf[1] = 9;
    n = 2 + loyalty_stats_key(LOYALTY_STATS_KIND_CODE, 20758, "ABCD", 4,
                              buf + 2);
    buf[n] = (uint8_t) loyalty_stats_encode(c, buf + n + 1);
    n += 1 + buf[n];

    is_int(loyalty_stats_pend_check(buf, n), 0, "a delta of one row");
    is_int(loyalty_stats_pend_check(buf, 1), 0, "of none");
    ok(loyalty_stats_pend_check(buf, n - 1) != 0, "a byte short");
    ok(loyalty_stats_pend_check(buf, 0) != 0, "empty");
    buf[2] = LOYALTY_STATS_KIND_DAY;
    ok(loyalty_stats_pend_check(buf, n) != 0, "a day's row");
    buf[2] = LOYALTY_STATS_KIND_CODE;
    buf[0] = 2;
    ok(loyalty_stats_pend_check(buf, n) != 0, "version 2");
    buf[0] = LOYALTY_STATS_VERSION;
    buf[n - 1] = 0;
    ok(loyalty_stats_pend_check(buf, n) != 0, "a counter of 0");
}


int
main(void)
{
    char  err[LOYALTY_ERRLEN];

    plan(52);

    if (fixture_store_open(tmp, "stats-pend", &st, err, sizeof(err)) != 0) {
        diag("%s", err);
        return 1;
    }

    ok(fixture_put_tier(&st, "basic", 0) == 0
       && fixture_admin_put(&st, "member", "ann",
                            "{\"tier\":\"basic\",\"stage\":\"member\"}", NULL,
                            NULL, 0, err, sizeof(err)) == 0
       && fixture_admin_put(&st, "code", "ANN-1",
                            "{\"member\":\"ann\",\"campaign\":\"tea\","
                            "\"vanity\":true}", NULL, NULL, 0, err,
                            sizeof(err)) == 0,
       "a member with a code");

    test_pending();
    test_crash();
    test_damage();
    test_large();
    test_split();
    test_check();

    fixture_store_remove(tmp, &st);

    return done();
}
