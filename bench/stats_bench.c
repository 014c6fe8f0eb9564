/*
 * The conversion counters' benchmark (bench/stats.sh):
 *
 *   stats_bench build DIR      a store of BENCH_MEMBERS members (1,000,000)
 *                              and BENCH_CODES codes (100,000), then
 *                              BENCH_DAYS days (60) of counters through
 *                              the real paths: each day BENCH_ACTIVE codes
 *                              (20,000) get clicks (loyalty_stats_clicks,
 *                              as the click flush), and BENCH_SIGNUPS
 *                              people (2,000) sign up by a random code,
 *                              half of them ordering (loyalty_batch_apply)
 *   stats_bench query DIR      each question over the last 30 days,
 *                              BENCH_RUNS times (200): p50, p99, max ms;
 *                              BENCH_BY=code (...): only that one
 *   stats_bench events N       N events, JSON Lines on stdout, 100 per
 *                              line group: signups by a code and orders
 *
 * The store is written with MDB_NOSYNC-free commits, as loyaltyctl does.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "loyalty_batch.h"
#include "loyalty_code.h"
#include "loyalty_record.h"
#include "loyalty_stats.h"


#define BENCH_DAY0      20000       /* 2024-10-04 */


static uint64_t  rng = 0x9e3779b97f4a7c15ULL;


static uint64_t
bench_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}


static long
bench_env(const char *name, long def)
{
    const char  *s = getenv(name);

    return s ? atol(s) : def;
}


static double
bench_now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}


static void
bench_check(int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "stats_bench: %s: %s\n", what, mdb_strerror(rc));
        exit(1);
    }
}


/* members m0000000.., in key order; the first codes' owners referred */
static void
bench_members(loyalty_store_t *st, long members, long codes)
{
    int               rc;
    char              id[24], ref[24];
    long              i;
    uint8_t           buf[LOYALTY_MEMBER_MAX];
    MDB_txn          *txn;
    MDB_val           key, val;
    loyalty_member_t  m;

    bench_check(mdb_txn_begin(st->env, NULL, 0, &txn), "begin");

    for (i = 0; i < members; i++) {
        memset(&m, 0, sizeof(m));
        m.stage = LOYALTY_STAGE_FAN;
        m.tier = "basic";
        m.tier_len = 5;

        if (i < codes) {
            snprintf(ref, sizeof(ref), "m%07ld", codes + i % (members - codes));
            m.referrer = ref;
            m.referrer_len = 8;
        }

        snprintf(id, sizeof(id), "m%07ld", i);
        key.mv_data = id;
        key.mv_size = 8;
        val.mv_data = buf;
        val.mv_size = loyalty_member_encode(&m, buf);

        rc = mdb_put(txn, st->dbi[LOYALTY_DB_MEMBERS], &key, &val,
                     MDB_APPEND);
        bench_check(rc, "members");
    }

    bench_check(mdb_txn_commit(txn), "commit members");
}


static void
bench_codes(loyalty_store_t *st, long codes)
{
    char            code[24], member[24], campaign[24];
    long            i;
    uint8_t         buf[LOYALTY_CODE_REC_MAX];
    MDB_txn        *txn;
    MDB_val         key, val;
    loyalty_code_t  c;
    loyalty_tier_t  t;

    bench_check(mdb_txn_begin(st->env, NULL, 0, &txn), "begin");

    memset(&t, 0, sizeof(t));
    t.label = "";
    key.mv_data = "basic";
    key.mv_size = 5;
    val.mv_data = buf;
    val.mv_size = loyalty_tier_encode(&t, buf);
    bench_check(mdb_put(txn, st->dbi[LOYALTY_DB_TIERS], &key, &val, 0),
                "tier");

    for (i = 0; i < codes; i++) {
        snprintf(code, sizeof(code), "C%06ld", i);
        snprintf(member, sizeof(member), "m%07ld", i);
        snprintf(campaign, sizeof(campaign), "camp%03ld", i % 1000);

        memset(&c, 0, sizeof(c));
        c.flags = LOYALTY_CODE_VANITY;
        c.member = member;
        c.member_len = 8;
        c.campaign = campaign;
        c.campaign_len = 7;
        c.created_at = BENCH_DAY0 * 86400LL;

        key.mv_data = code;
        key.mv_size = 7;
        val.mv_data = buf;
        val.mv_size = loyalty_code_encode(&c, buf);

        bench_check(mdb_put(txn, st->dbi[LOYALTY_DB_CODES], &key, &val,
                            MDB_APPEND), "codes");
    }

    bench_check(mdb_txn_commit(txn), "commit codes");
}


/* one day's clicks on active random codes, as one click flush */
static void
bench_clicks(loyalty_store_t *st, int64_t day, long active, long codes)
{
    char      code[24];
    long      i;
    uint64_t  d[LOYALTY_CLICK_COUNTERS];
    MDB_txn  *txn;

    bench_check(mdb_txn_begin(st->env, NULL, 0, &txn), "begin");

    for (i = 0; i < active; i++) {
        memset(d, 0, sizeof(d));
        d[LOYALTY_CLICK_TOTAL] = 1 + bench_rand() % 20;
        d[LOYALTY_CLICK_UNIQUE] = 1 + bench_rand() % d[LOYALTY_CLICK_TOTAL];
        d[LOYALTY_CLICK_BOT] = bench_rand() % 3;
        d[LOYALTY_CLICK_ATTRIBUTED] = bench_rand() % 2;

        snprintf(code, sizeof(code), "C%06ld", (long) (bench_rand() % codes));

        bench_check(loyalty_stats_clicks(st, txn, code, 7, day, d), "clicks");
    }

    bench_check(mdb_txn_commit(txn), "commit clicks");
}


/* n events from person number *next on: signups by a code, orders */
static size_t
bench_events_text(char *buf, size_t size, long n, long *next, int64_t day,
    long codes)
{
    long    i, p;
    size_t  len;
    char    at[LOYALTY_RFC3339_LEN + 1];

    len = 0;

    for (i = 0; i < n; i++) {
        loyalty_format_rfc3339(day * 86400 + 36000 + i, at);

        if (i % 2 == 0) {
            p = (*next)++;
            len += snprintf(buf + len, size - len,
                            "{\"type\":\"signup\",\"member\":\"n%07ld\","
                            "\"ref_code\":\"C%06ld\",\"at\":\"%s\"}\n",
                            p, (long) (bench_rand() % codes), at);
        } else {
            p = *next - 1;
            len += snprintf(buf + len, size - len,
                            "{\"type\":\"order\",\"member\":\"n%07ld\","
                            "\"order_id\":\"o%07ld\",\"amount\":%ld,"
                            "\"at\":\"%s\"}\n",
                            p, p, (long) (100 + bench_rand() % 50000), at);
        }
    }

    return len;
}


static void
bench_signups(loyalty_store_t *st, int64_t day, long signups, long *next,
    long codes)
{
    int              rc;
    long             done, n;
    char             err[LOYALTY_ERRLEN];
    static char      body[1 << 20];
    size_t           len;
    MDB_txn         *txn;
    loyalty_batch_t  res;

    for (done = 0; done < 2 * signups; done += n) {
        n = 2 * signups - done < 1000 ? 2 * signups - done : 1000;
        len = bench_events_text(body, sizeof(body), n, next, day, codes);

        bench_check(mdb_txn_begin(st->env, NULL, 0, &txn), "begin");
        rc = loyalty_batch_apply(st, txn, body, len, 1000, day * 86400,
                                 NULL, &res, err, sizeof(err));
        if (rc != 0) {
            fprintf(stderr, "stats_bench: batch: %d %s\n", rc, err);
            exit(1);
        }

        loyalty_batch_free(&res);
        bench_check(mdb_txn_commit(txn), "commit events");
    }
}


static int
bench_build(const char *dir)
{
    long             members, codes, days, active, signups, next;
    int64_t          day;
    double           t0;
    char             err[LOYALTY_ERRLEN];
    loyalty_store_t  st;

    members = bench_env("BENCH_MEMBERS", 1000000);
    codes = bench_env("BENCH_CODES", 100000);
    days = bench_env("BENCH_DAYS", 60);
    active = bench_env("BENCH_ACTIVE", 20000);
    signups = bench_env("BENCH_SIGNUPS", 2000);

    if (codes < 1 || members <= codes) {
        fprintf(stderr, "stats_bench: BENCH_MEMBERS must exceed "
                "BENCH_CODES\n");
        return 2;
    }

    if (loyalty_store_open(&st, dir, LOYALTY_STORE_CREATE, err, sizeof(err))
        != 0)
    {
        fprintf(stderr, "stats_bench: %s\n", err);
        return 1;
    }

    bench_check(mdb_env_set_mapsize(st.env, (size_t) 16 << 30), "mapsize");

    t0 = bench_now();
    bench_members(&st, members, codes);
    bench_codes(&st, codes);
    printf("store: %ld members, %ld codes in %.1f s\n", members, codes,
           bench_now() - t0);

    t0 = bench_now();
    next = 0;

    for (day = BENCH_DAY0; day < BENCH_DAY0 + days; day++) {
        bench_clicks(&st, day, active, codes);
        bench_signups(&st, day, signups, &next, codes);
    }

    printf("counters: %ld days of %ld codes clicked and %ld signups "
           "(half ordering) a day in %.1f s\n", days, active, signups,
           bench_now() - t0);

    loyalty_store_close(&st);

    return 0;
}


static int
bench_cmp(const void *a, const void *b)
{
    double  x = *(const double *) a, y = *(const double *) b;

    return x < y ? -1 : x > y;
}


static int
bench_query(const char *dir)
{
    int                    i, b, rc;
    long                   runs, days;
    char                   err[LOYALTY_ERRLEN], from[16], to[16];
    char                  *s;
    const char            *only;
    double                *t, t0;
    json_t                *doc;
    MDB_txn               *txn;
    loyalty_store_t        st;
    loyalty_stats_args_t   a;
    loyalty_stats_query_t  q;

    static const char  *bys[] = { "code", "campaign", "referrer", "day" };

    runs = bench_env("BENCH_RUNS", 200);
    days = bench_env("BENCH_DAYS", 60);
    only = getenv("BENCH_BY");

    if (loyalty_store_open(&st, dir, LOYALTY_STORE_RDONLY, err, sizeof(err))
        != 0)
    {
        fprintf(stderr, "stats_bench: %s\n", err);
        return 1;
    }

    loyalty_stats_format_day(BENCH_DAY0 + days - 30, from);
    loyalty_stats_format_day(BENCH_DAY0 + days - 1, to);

    t = malloc(runs * sizeof(double));

    for (b = 0; b < 4; b++) {
        if (only != NULL && strcmp(only, bys[b]) != 0) {
            continue;
        }

        memset(&a, 0, sizeof(a));
        a.by.data = bys[b];
        a.by.len = strlen(bys[b]);
        a.from.data = from;
        a.from.len = 10;
        a.to.data = to;
        a.to.len = 10;

        if (loyalty_stats_query_parse(&a, NULL, 0, &q, err, sizeof(err))
            != 0)
        {
            fprintf(stderr, "stats_bench: %s\n", err);
            return 1;
        }

        for (i = 0; i < runs; i++) {
            t0 = bench_now();

            bench_check(mdb_txn_begin(st.env, NULL, MDB_RDONLY, &txn),
                        "begin");
            rc = loyalty_stats_query(&st, txn, &q, 0, &doc);
            bench_check(rc, "query");
            s = json_dumps(doc, JSON_COMPACT);
            mdb_txn_abort(txn);

            t[i] = (bench_now() - t0) * 1000;

            if (i == 0) {
                printf("by=%s: %lld rows in %s..%s\n", bys[b],
                       (long long) json_integer_value(
                           json_object_get(doc, "count")), from, to);
            }

            free(s);
            json_decref(doc);
        }

        qsort(t, runs, sizeof(double), bench_cmp);
        printf("by=%s 30 days top 20: p50 %.2f ms, p99 %.2f ms, max %.2f ms "
               "(%ld runs)\n", bys[b], t[runs / 2],
               t[(runs * 99 + 99) / 100 - 1], t[runs - 1], runs);
    }

    free(t);
    loyalty_store_close(&st);

    return 0;
}


static int
bench_events(long n)
{
    long          next, done, k;
    size_t        len;
    static char   buf[1 << 16];

    next = 10000000;

    for (done = 0; done < n; done += k) {
        k = n - done < 100 ? n - done : 100;
        len = bench_events_text(buf, sizeof(buf), k, &next,
                                BENCH_DAY0 + 100, bench_env("BENCH_CODES",
                                                            100000));
        fwrite(buf, 1, len, stdout);
    }

    return 0;
}


int
main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "build") == 0) {
        return bench_build(argv[2]);
    }

    if (argc == 3 && strcmp(argv[1], "query") == 0) {
        return bench_query(argv[2]);
    }

    if (argc == 3 && strcmp(argv[1], "events") == 0) {
        return bench_events(atol(argv[2]));
    }

    fprintf(stderr, "usage: stats_bench build DIR | query DIR | events N\n");
    return 2;
}
