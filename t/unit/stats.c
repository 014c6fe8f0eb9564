/*
 * Unit tests of the conversion counters (loyalty_stats.c,
 * loyalty_stats_query.c): days, keys and records, the questions'
 * checks, the attribution kept for life with its click day, orders made
 * before the attribution (neither they nor their refunds count), the
 * refund on its order's day, top N over many names against a full sort,
 * names summed in rounds over days of different densities, the shop's
 * days in its time zone, and the cost of the counters to a
 * batch of events.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "loyalty_admin.h"
#include "loyalty_batch.h"
#include "loyalty_stats.h"
#include "store_fixture.h"
#include "tap.h"


static char             tmp[FIXTURE_PATH_MAX];
static loyalty_store_t  st;
static char             last_err[LOYALTY_ERRLEN];


static int
apply(const char *body)
{
    int              rc;
    MDB_txn         *txn;
    loyalty_batch_t  res;

    if (mdb_txn_begin(st.env, NULL, 0, &txn) != 0) {
        return -100;
    }

    rc = loyalty_batch_apply(&st, txn, body, strlen(body), 1000, 1800000000,
                             NULL, &res, last_err, sizeof(last_err));

    if (rc == 0) {
        mdb_txn_commit(txn);

    } else {
        mdb_txn_abort(txn);
    }

    loyalty_batch_free(&res);

    return rc;
}


static int
put(const char *kind, const char *key, const char *body)
{
    return fixture_admin_put(&st, kind, key, body, NULL, NULL, 0, last_err,
                             sizeof(last_err));
}


/* a question's answer, compact; "ERR: why" when refused */
static char *
ask(const char *by, const char *from, const char *to, const char *sort,
    const char *top, const char *offset)
{
    static char            buf[8192];
    int                    rc;
    char                  *s, err[LOYALTY_ERRLEN];
    json_t                *doc;
    MDB_txn               *txn;
    loyalty_stats_args_t   a;
    loyalty_stats_query_t  q;

    memset(&a, 0, sizeof(a));
    a.by.data = by; a.by.len = by ? strlen(by) : 0;
    a.from.data = from; a.from.len = from ? strlen(from) : 0;
    a.to.data = to; a.to.len = to ? strlen(to) : 0;
    a.sort.data = sort; a.sort.len = sort ? strlen(sort) : 0;
    a.top.data = top; a.top.len = top ? strlen(top) : 0;
    a.offset.data = offset; a.offset.len = offset ? strlen(offset) : 0;

    if (loyalty_stats_query_parse(&a, st.tz, 1800000000, &q, err,
                                  sizeof(err))
        != 0)
    {
        snprintf(buf, sizeof(buf), "ERR: %s", err);
        return buf;
    }

    mdb_txn_begin(st.env, NULL, MDB_RDONLY, &txn);
    rc = loyalty_stats_query(&st, txn, &q, 1800000000, &doc);
    mdb_txn_abort(txn);

    if (rc != 0) {
        snprintf(buf, sizeof(buf), "ERR: %s", mdb_strerror(rc));
        return buf;
    }

    s = json_dumps(doc, JSON_COMPACT);
    snprintf(buf, sizeof(buf), "%s", s ? s : "NULL");
    free(s);
    json_decref(doc);

    return buf;
}


/* one row's counters, "clicks ... points_l2", or "none" */
static char *
row(const char *by, const char *from, const char *to, const char *key)
{
    static char  buf[512];
    int          i;
    size_t       j, n;
    json_t      *doc, *rows, *r;

    doc = json_loads(ask(by, from, to, NULL, "1000", NULL), 0, NULL);
    rows = json_object_get(doc, "rows");
    snprintf(buf, sizeof(buf), "none");

    json_array_foreach(rows, j, r) {
        if (strcmp(json_string_value(json_object_get(r, "key")), key) != 0) {
            continue;
        }

        n = 0;
        for (i = 0; i < LOYALTY_STATS_COUNTERS; i++) {
            n += snprintf(buf + n, sizeof(buf) - n, "%s%lld", i ? " " : "",
                          (long long) json_integer_value(json_object_get(r,
                                          loyalty_stats_counter_names[i])));
        }
    }

    json_decref(doc);

    return buf;
}


static void
test_days(void)
{
    int64_t  d;
    char     buf[LOYALTY_DAY_LEN + 1];

    ok(loyalty_stats_parse_day("2026-11-01", 10, &d) == 0, "a day");
    is_int(d, 20758, "its number");
    loyalty_stats_format_day(d, buf);
    is_str(buf, "2026-11-01", "and back");
    ok(loyalty_stats_parse_day("2024-02-29", 10, &d) == 0, "29 Feb 2024");
    ok(loyalty_stats_parse_day("2100-12-31", 10, &d) == 0, "the last day");
    ok(loyalty_stats_parse_day("2026-02-29", 10, &d) != 0, "29 Feb 2026");
    ok(loyalty_stats_parse_day("2026-13-01", 10, &d) != 0, "month 13");
    ok(loyalty_stats_parse_day("1999-12-31", 10, &d) != 0, "before 2000");
    ok(loyalty_stats_parse_day("2026-1-01x", 10, &d) != 0, "not digits");
    ok(loyalty_stats_parse_day("2026-11-01", 9, &d) != 0, "too short");
    ok(loyalty_stats_parse_day("2026/11/01", 10, &d) != 0, "slashes");
    is_int(loyalty_stats_day(NULL, 1800000000), 20833, "a time's UTC day");
}


static void
test_records(void)
{
    int               i;
    size_t            n1, n2;
    int64_t           c[LOYALTY_STATS_COUNTERS], back[LOYALTY_STATS_COUNTERS];
    uint8_t           k1[LOYALTY_STATS_KEY_MAX], k2[LOYALTY_STATS_KEY_MAX];
    uint8_t           buf[LOYALTY_ATTRIB_REC_MAX];
    uint8_t           rec[LOYALTY_STATS_REC_MAX];
    loyalty_attrib_t  a, b;

    /* days sort in date order whatever the name, kinds apart */
    n1 = loyalty_stats_key('c', 300, "ZZZ", 3, k1);
    n2 = loyalty_stats_key('c', 301, "AAA", 3, k2);
    ok(memcmp(k1, k2, 5) < 0 && n1 == 8 && n2 == 8, "day before name");
    n1 = loyalty_stats_key('d', 0, NULL, 0, k1);
    is_int(n1, 5, "a day's key has no name");

    for (i = 0; i < LOYALTY_STATS_COUNTERS; i++) {
        c[i] = (i % 2 ? -1 : 1) * ((int64_t) 1 << (i * 5));
    }

n1 = loyalty_stats_encode(c, rec);
    ok(loyalty_stats_decode(rec, n1, back) == 0
       && memcmp(c, back, sizeof(c)) == 0, "counters round trip");
    ok(loyalty_stats_decode(rec, n1 - 1, back) != 0, "short");
    ok(loyalty_stats_decode(rec, n1 + 1, back) != 0, "a byte too many");
    rec[2] |= 0x10;
    ok(loyalty_stats_decode(rec, n1, back) != 0, "a 13th counter");
    rec[2] &= ~0x10;
    rec[0] = 2;
    ok(loyalty_stats_decode(rec, n1, back) != 0, "version 2");
    rec[0] = 1;

    memset(c, 0, sizeof(c));
    c[LOYALTY_STATS_SIGNUPS] = 1;
    c[LOYALTY_STATS_REVENUE] = -300;
    n1 = loyalty_stats_encode(c, rec);
    ok(n1 == 6 && memcmp(rec, "\x01\x90\x00\x02\xd7\x04", 6) == 0,
       "a signup and -300: 6 bytes, zigzag varints");
    ok(loyalty_stats_decode((const uint8_t *) "\x01\x10\x00\x00", 4, back)
       != 0, "a present counter of 0");
    c[0] = INT64_MIN;
    c[1] = INT64_MAX;
    n1 = loyalty_stats_encode(c, rec);
    ok(n1 <= LOYALTY_STATS_REC_MAX && loyalty_stats_decode(rec, n1, back) == 0
       && back[0] == INT64_MIN && back[1] == INT64_MAX, "the extremes");

    memset(&a, 0, sizeof(a));
    memcpy(a.code, "BOB-SHARE", 9);
    a.code_len = 9;
    memcpy(a.campaign, "spring", 6);
    a.campaign_len = 6;
    memcpy(a.r1, "bob", 3);
    a.r1_len = 3;
    memcpy(a.r2, "alice", 5);
    a.r2_len = 5;
    a.since = 1790000000;
    a.click_day = 20393;

    n1 = loyalty_attrib_encode(&a, buf);
    is_int(n1, 24 + 9 + 6 + 3 + 5, "attribution length");
    ok(loyalty_attrib_decode(buf, n1, &b) == 0 && b.since == a.since
       && b.click_day == a.click_day && b.r2_len == 5
       && memcmp(b.r2, "alice", 5) == 0 && b.campaign_len == 6,
       "attribution round trip");
    ok(loyalty_attrib_decode(buf, n1 + 1, &b) != 0, "a byte too many");
    buf[3] = 0;
    ok(loyalty_attrib_decode(buf, n1 - 3, &b) != 0, "no referrer");
}


static void
test_questions(void)
{
    has_str(ask("code", NULL, NULL, NULL, NULL, NULL),
            "\"from\":\"2026-12-17\",\"to\":\"2027-01-15\"",
            "the 30 days to now by default");
    has_str(ask("code", NULL, NULL, NULL, NULL, NULL),
            "\"sort\":\"revenue\",\"top\":20,\"offset\":0", "defaults");
    has_str(ask("day", "2026-11-01", "2026-11-03", NULL, NULL, NULL),
            "\"sort\":\"key\",\"top\":3", "by=day: every day, by day");
    has_str(ask("code", "2026-11-01", NULL, NULL, NULL, NULL),
            "\"to\":\"2027-01-15\"", "from alone: to today");
    has_str(ask("code", NULL, "2026-11-30", NULL, NULL, NULL),
            "\"from\":\"2026-11-01\"", "to alone: the 30 days to it");
    has_str(ask("code", "2026-01-01", "2026-12-31", NULL, NULL, NULL),
            "\"count\":", "365 days");
    has_str(ask("code", "2024-01-01", "2024-12-31", NULL, NULL, NULL),
            "\"count\":", "366 days of a leap year");
    has_str(ask("code", "2024-01-01", "2025-01-01", NULL, NULL, NULL),
            "ERR: the range covers more than 366 days", "367 days");
    has_str(ask(NULL, NULL, NULL, NULL, NULL, NULL), "ERR: \"by\" is",
            "no by");
    has_str(ask("codes", NULL, NULL, NULL, NULL, NULL), "ERR: \"by\" must",
            "by=codes");
    has_str(ask("code", NULL, NULL, "clicks", "1000", "1000000"),
            "\"sort\":\"clicks\",\"top\":1000,\"offset\":1000000",
            "the largest top and offset");
    has_str(ask("code", NULL, NULL, NULL, "01", NULL), "\"top\":1",
            "top=01");
    has_str(ask("code", NULL, NULL, NULL, "+1", NULL), "ERR: \"top\"",
            "top=+1");
    has_str(ask("code", NULL, NULL, NULL, "99999999", NULL), "ERR: \"top\"",
            "top=99999999");
    has_str(ask("code", NULL, NULL, NULL, NULL, "1000001"),
            "ERR: \"offset\"", "offset=1000001");
    has_str(ask("code", NULL, NULL, "day", NULL, NULL), "ERR: \"sort\"",
            "sort=day is by=day's");
    has_str(ask("cadence", NULL, NULL, "key", NULL, NULL),
            "ERR: \"sort\", \"top\"", "by=cadence takes no sort");
}


/*
 * zed ordered before the attribution: o1 does not count, nor its
 * refund; o2, which carried the code, counts (not as a first order)
 */
static void
test_attribution(void)
{
    MDB_txn          *txn;
    loyalty_attrib_t  a;

    ok(put("member", "ann", "{\"tier\":\"basic\",\"stage\":\"member\"}")
       == 0, "ann");
    ok(put("member", "bob", "{\"tier\":\"basic\",\"stage\":\"fan\","
                             "\"referrer\":\"ann\"}") == 0, "bob");
    ok(put("code", "BOB-1", "{\"member\":\"bob\",\"campaign\":\"tea\","
                             "\"vanity\":true}") == 0, "BOB-1");

    ok(apply("{\"type\":\"signup\",\"member\":\"cat\",\"ref_code\":\"bob-1\","
             "\"at\":\"2026-11-01T10:00:00Z\","
             "\"ref_at\":\"2026-10-30T22:00:00Z\"}\n"
             "{\"type\":\"signup\",\"member\":\"zed\","
             "\"at\":\"2026-11-01T10:00:00Z\"}\n"
             "{\"type\":\"order\",\"member\":\"zed\",\"order_id\":\"z1\","
             "\"amount\":3000,\"at\":\"2026-11-02T10:00:00Z\"}\n"
             "{\"type\":\"order\",\"member\":\"zed\",\"order_id\":\"z2\","
             "\"amount\":700,\"ref_code\":\"BOB-1\","
             "\"at\":\"2026-11-03T10:00:00Z\"}\n"
             "{\"type\":\"refund\",\"refund_id\":\"zr1\",\"order_id\":\"z1\","
             "\"amount\":3000}\n"
             "{\"type\":\"signup\",\"member\":\"cat\",\"ref_code\":\"OTHER\","
             "\"at\":\"2026-11-05T10:00:00Z\"}\n") == 0,
       "events applied: %s", last_err);

    mdb_txn_begin(st.env, NULL, MDB_RDONLY, &txn);
    ok(loyalty_attrib_get(&st, txn, "cat", 3, &a) == 0, "cat attributed");
    ok(a.code_len == 5 && memcmp(a.code, "BOB-1", 5) == 0
       && a.campaign_len == 3 && memcmp(a.campaign, "tea", 3) == 0
       && a.r1_len == 3 && a.r2_len == 3 && memcmp(a.r2, "ann", 3) == 0,
       "cat: the code, its campaign, both referrers");
    is_int(a.click_day, 20756, "cat: the click's day, not the signup's");
    ok(loyalty_attrib_get(&st, txn, "zed", 3, &a) == 0, "zed attributed");
    /* 2026-11-03T10:00:00Z, after z1's 2026-11-02 */
    is_int(a.since, 1793700000, "zed: orders count from z2's time");
    is_int(a.click_day, 20760, "zed: no ref_at, the order's day");
    mdb_txn_abort(txn);

    is_str(row("code", "2026-11-01", "2026-11-30", "BOB-1"),
           "0 0 0 0 1 0 1 700 0 0 0 0",
           "BOB-1: cat's signup; zed's z2 alone, not first, no refund");
    is_str(row("day", "2026-11-01", "2026-11-30", "2026-11-02"),
           "0 0 0 0 0 0 0 0 0 0 0 0", "z1's day: nothing");
    is_str(row("referrer", "2026-11-01", "2026-11-30", "ann"),
           "0 0 0 0 1 0 1 700 0 0 0 0", "ann: level 2");
}


/*
 * Names on several days of different densities, the sparsest first:
 * every name's sum is whole whichever round of the walk it falls in
 */
static void
test_rounds(void)
{
    int       i, day, rc;
    char      name[16];
    int64_t   c[LOYALTY_STATS_COUNTERS];
    uint8_t   kbuf[LOYALTY_STATS_KEY_MAX], vbuf[LOYALTY_STATS_REC_MAX];
    MDB_txn  *txn;
    MDB_val   k, v;
    json_t   *doc, *rows, *r;
    char     *s;

    static const int  every[] = { 13, 7, 1 };

    mdb_txn_begin(st.env, NULL, 0, &txn);

    for (day = 0; day < 3; day++) {
        for (i = 0; i < 30000; i += every[day]) {
            memset(c, 0, sizeof(c));
            c[LOYALTY_STATS_SIGNUPS] = 1;
            c[LOYALTY_STATS_ORDERS] = i;
            snprintf(name, sizeof(name), "R%05d", i);
            k.mv_data = kbuf;
            k.mv_size = loyalty_stats_key('p', 21000 + day, name, 6, kbuf);
            v.mv_data = vbuf;
            v.mv_size = loyalty_stats_encode(c, vbuf);
            mdb_put(txn, st.dbi[LOYALTY_DB_STATS], &k, &v, 0);
        }
    }

    rc = mdb_txn_commit(txn);
    is_int(rc, 0, "30000 names over 3 days");

    /* 2027-07-01..03: 30000 + 4286 + 2308 records, in rounds */
    s = ask("campaign", "2027-07-01", "2027-07-03", "signups", "5", NULL);
    doc = json_loads(s, 0, NULL);
    rows = json_object_get(doc, "rows");
    is_int(json_integer_value(json_object_get(doc, "count")), 30000,
           "rounds: every name once");
    is_int(json_integer_value(json_object_get(json_object_get(doc, "totals"),
                                              "signups")), 36594,
           "rounds: every record in the totals");
    r = json_array_get(rows, 4);
    ok(json_array_size(rows) == 5
       && json_integer_value(json_object_get(r, "signups")) == 3
       && strcmp(json_string_value(json_object_get(r, "key")), "R00364")
          == 0, "rounds: the names on all three days first, whole");
    json_decref(doc);

    s = ask("campaign", "2027-07-01", "2027-07-03", "key", "3", "4550");
    doc = json_loads(s, 0, NULL);
    r = json_array_get(json_object_get(doc, "rows"), 0);
    ok(strcmp(json_string_value(json_object_get(r, "key")), "R04550") == 0
       && json_integer_value(json_object_get(r, "signups")) == 3
       && json_integer_value(json_object_get(r, "orders")) == 3 * 4550,
       "rounds: R04550 (13 x 7 x 50) counted on its three days");
    json_decref(doc);
}


/*
 * The shop's days: in Asia/Shanghai (UTC+8) an order at 23:30 UTC is
 * placed at 07:30 the next morning, and counts on that day; today and
 * the default range are the shop's too
 */
static void
test_timezone(void)
{
    char                    err[LOYALTY_ERRLEN];
    MDB_txn                *txn;
    loyalty_attrib_t        a;
    loyalty_stats_args_t    args;
    loyalty_stats_query_t   q;
    static loyalty_tz_t     zone;

    if (loyalty_tz_load(&zone, NULL, "Asia/Shanghai", err, sizeof(err))
        != 0)
    {
        diag("Asia/Shanghai: %s (tzdata)", err);
    }

    /* 2024-10-09T23:30:00Z is 2024-10-10 07:30 in Shanghai */
    is_int(loyalty_stats_day(&zone, 1728516600), 20006,
           "23:30 UTC: the next day in Shanghai");
    is_int(loyalty_stats_day(NULL, 1728516600), 20005, "the UTC day");

    st.tz = &zone;

    ok(put("code", "TZ-1", "{\"member\":\"bob\",\"campaign\":\"tz\","
                           "\"vanity\":true}") == 0, "TZ-1");
    ok(apply("{\"type\":\"signup\",\"member\":\"tzz\","
             "\"ref_code\":\"TZ-1\",\"at\":\"2024-10-09T23:30:00Z\"}\n"
             "{\"type\":\"order\",\"member\":\"tzz\",\"order_id\":"
             "\"tz1\",\"amount\":500,\"at\":\"2024-10-09T23:30:00Z\"}\n")
       == 0, "an order at 23:30 UTC: %s", last_err);

    mdb_txn_begin(st.env, NULL, MDB_RDONLY, &txn);
    ok(loyalty_attrib_get(&st, txn, "tzz", 3, &a) == 0
       && a.click_day == 20006, "the click day is the shop's");
    mdb_txn_abort(txn);

    is_str(row("code", "2024-10-10", "2024-10-10", "TZ-1"),
           "0 0 0 0 1 1 1 500 0 0 0 0", "counted on the shop's 10 Oct");
    is_str(row("code", "2024-10-09", "2024-10-09", "TZ-1"), "none",
           "not on the UTC day, 9 Oct");
    is_str(row("day", "2024-10-09", "2024-10-10", "2024-10-10"),
           "0 0 0 0 1 1 1 500 0 0 0 0", "by=day: the shop's day");

    memset(&args, 0, sizeof(args));
    args.by.data = "day";
    args.by.len = 3;
    ok(loyalty_stats_query_parse(&args, &zone, 1728516600, &q, err,
                                 sizeof(err)) == 0
       && q.to == 20006 && q.from == 20006 - 29,
       "the default range ends on the shop's today");

    st.tz = NULL;
}


/* many names: the heap's top N is the full sort's first N */
static void
test_top(void)
{
    int       i, rc;
    char      name[16];
    int64_t   c[LOYALTY_STATS_COUNTERS];
    uint8_t   kbuf[LOYALTY_STATS_KEY_MAX], vbuf[LOYALTY_STATS_REC_MAX];
    MDB_txn  *txn;
    MDB_val   k, v;
    json_t   *doc, *rows;
    char     *s;

    mdb_txn_begin(st.env, NULL, 0, &txn);

    for (i = 0; i < 5000; i++) {
        memset(c, 0, sizeof(c));
        c[LOYALTY_STATS_CLICKS] = (i * 7919) % 1000;
        snprintf(name, sizeof(name), "T%05d", i);
        k.mv_data = kbuf;
        k.mv_size = loyalty_stats_key('c', 20000 + i % 3, name, 6, kbuf);
        v.mv_data = vbuf;
        v.mv_size = loyalty_stats_encode(c, vbuf);
        mdb_put(txn, st.dbi[LOYALTY_DB_STATS], &k, &v, 0);
    }

    rc = mdb_txn_commit(txn);
    is_int(rc, 0, "5000 names");

    /* 1000 values, each name once: clicks 999 has 5 names */
    s = ask("code", "2024-10-04", "2024-10-06", "clicks", "7", "2");
    doc = json_loads(s, 0, NULL);
    rows = json_object_get(doc, "rows");
    is_int(json_array_size(rows), 7, "top=7");
    is_int(json_integer_value(json_object_get(doc, "count")), 5000, "count");

    ok(json_integer_value(json_object_get(json_array_get(rows, 0),
                                          "clicks")) == 999
       && json_integer_value(json_object_get(json_array_get(rows, 2),
                                             "clicks")) == 999
       && json_integer_value(json_object_get(json_array_get(rows, 3),
                                             "clicks")) == 998,
       "offset 2: the 3rd to 9th largest");
    ok(strcmp(json_string_value(json_object_get(json_array_get(rows, 0),
                                                "key")),
              json_string_value(json_object_get(json_array_get(rows, 1),
                                                "key"))) < 0,
       "ties by key");
    json_decref(doc);
}


int
main(void)
{
    char  err[LOYALTY_ERRLEN];

    plan(76);

    if (fixture_store_open(tmp, "stats", &st, err, sizeof(err)) != 0) {
        diag("%s", err);
        return 1;
    }

    ok(fixture_put_tier(&st, "basic", 0) == 0, "a tier");

    test_days();
    test_records();
    test_questions();
    test_attribution();
    test_top();
    test_rounds();
    test_timezone();

    fixture_store_remove(tmp, &st);

    return done();
}
