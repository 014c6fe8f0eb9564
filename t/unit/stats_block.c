/*
 * Unit tests of the conversion counters' blocks (loyalty_stats_block.c):
 * a code's, campaign's or referrer's days in one record of 32 days
 * (kinds C, P, R) holding each day's running sums; a day's counters
 * spliced in, in any order, a day that comes back to none taken out;
 * the bytes as schema/lmdb-layout.md lays them out; a store of day
 * records (kinds c, p, r, as a build before blocks wrote them), one of
 * blocks and one of both answering every question the same; the
 * erasure's move of a referrer's counters; verify's check of damage.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loyalty_stats.h"
#include "store_fixture.h"
#include "tap.h"


#define BLOCK   20768               /* 2026-11-11: 20768 = 649 * 32 */
#define FIRST   (BLOCK - 10)
#define DAYS    70
#define NAMES   40


static char             tmp[3][FIXTURE_PATH_MAX];
static loyalty_store_t  st[3];      /* day records, blocks, both */


static void
add(loyalty_store_t *s, int kind, int64_t day, const char *name,
    int64_t clicks, int64_t revenue)
{
    int64_t   d[LOYALTY_STATS_COUNTERS];
    MDB_txn  *txn;

    memset(d, 0, sizeof(d));
    d[LOYALTY_STATS_CLICKS] = clicks;
    d[LOYALTY_STATS_REVENUE] = revenue;

    mdb_txn_begin(s->env, NULL, 0, &txn);
    loyalty_stats_add(s, txn, NULL, kind, day, name, strlen(name), d);
    mdb_txn_commit(txn);
}


/* the stored record of kind, day, name: its length, or -1 for none */
static int
get(loyalty_store_t *s, int kind, int64_t day, const char *name,
    uint8_t *buf)
{
    int       n;
    uint8_t   kbuf[LOYALTY_STATS_KEY_MAX];
    MDB_txn  *txn;
    MDB_val   key, val;

    key.mv_data = kbuf;
    key.mv_size = loyalty_stats_key(kind, day, name, strlen(name), kbuf);

    mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);

    n = -1;
    if (mdb_get(txn, s->dbi[LOYALTY_DB_STATS], &key, &val) == 0) {
        n = (int) val.mv_size;
        memcpy(buf, val.mv_data, val.mv_size);
    }

    mdb_txn_abort(txn);

    return n;
}


/* "clicks revenue" of the days from..to of a block record */
static const char *
sum(const uint8_t *buf, int len, int from, int to)
{
    static char  out[64];
    int64_t      c[LOYALTY_STATS_COUNTERS];

    memset(c, 0, sizeof(c));

    if (len < 0
        || loyalty_stats_block_sum(buf, (size_t) len,
                                   loyalty_stats_block_mask(0, from, to), c)
           < 0)
    {
        return "damage";
    }

    snprintf(out, sizeof(out), "%lld %lld",
             (long long) c[LOYALTY_STATS_CLICKS],
             (long long) c[LOYALTY_STATS_REVENUE]);

    return out;
}


static void
test_splice(void)
{
    int       n;
    int64_t   c[LOYALTY_STATS_COUNTERS];
    uint8_t   buf[LOYALTY_STATS_BLOCK_MAX];

    memset(c, 0, sizeof(c));

    is_int(loyalty_stats_block_day(BLOCK + 31), BLOCK, "a block's day");
    is_int(loyalty_stats_block_mask(BLOCK, BLOCK - 3, BLOCK + 1), 0x3,
           "the range's days of a block");
    is_int(loyalty_stats_block_mask(BLOCK, BLOCK + 30, BLOCK + 40),
           0xc0000000u, "to its last day");
    is_int(loyalty_stats_block_mask(BLOCK, BLOCK + 32, BLOCK + 40), 0,
           "none of them");

    add(&st[1], 'c', BLOCK + 5, "ANN", 3, 0);
    add(&st[1], 'c', BLOCK + 2, "ANN", 1, 100);
    add(&st[1], 'c', BLOCK + 5, "ANN", 2, 0);
    add(&st[1], 'c', BLOCK + 9, "ANN", 0, -50);

    is_int(get(&st[1], 'c', BLOCK + 5, "ANN", buf), -1, "no day record");
    n = get(&st[1], 'C', BLOCK, "ANN", buf);
    is_int(loyalty_stats_block_days(buf, n), 0x224, "one block record");
    is_str(sum(buf, n, 5, 5), "5 0", "a day added to twice");
    is_str(sum(buf, n, 2, 2), "1 100", "a day before it, written after");
    is_str(sum(buf, n, 0, 8), "6 100", "days 0-8");
    is_str(sum(buf, n, 3, 31), "5 -50", "days 3-31");
    is_str(sum(buf, n, 10, 31), "0 0", "days after the last");
    is_int(loyalty_stats_block_sum(buf, n, 0xfffffc00, c), 1,
           "none of the days asked for");
    ok(loyalty_stats_block_check(buf, n) == 0, "it checks");

    /* day 2 back to none: taken out, the days after it as they were */
    add(&st[1], 'c', BLOCK + 2, "ANN", -1, -100);
    n = get(&st[1], 'C', BLOCK, "ANN", buf);
    is_int(n, 14, "the layout: 14 bytes");
    is_mem(buf, "\x01\x20\x02\x00\x00" "\x04\x81\x00\x0a\x63"
                "\x03\x01\x00\x0a", 14,
           "version, days, each day's length and running sums, latest first");

    add(&st[1], 'c', BLOCK + 5, "ANN", -5, 0);
    add(&st[1], 'c', BLOCK + 9, "ANN", 0, 50);
    is_int(get(&st[1], 'C', BLOCK, "ANN", buf), -1,
           "a block without days is deleted");
}


/* rows of an accumulator: a block's rows written at once, as one by one */
static void
test_rows(void)
{
    int                  i, n, m;
    int64_t              d[LOYALTY_STATS_COUNTERS];
    uint8_t              a[LOYALTY_STATS_BLOCK_MAX], b[LOYALTY_STATS_BLOCK_MAX];
    MDB_txn             *txn;
    loyalty_stats_acc_t  acc;

    loyalty_stats_acc_init(&acc);
    memset(d, 0, sizeof(d));
    mdb_txn_begin(st[1].env, NULL, 0, &txn);

    for (i = 0; i < 40; i++) {
        d[LOYALTY_STATS_CLICKS] = i + 1;
        d[LOYALTY_STATS_REVENUE] = (i % 3) * -70;
        loyalty_stats_add(&st[1], txn, &acc, 'p', BLOCK + (i * 7) % 45,
                          "spring", 6, d);
        loyalty_stats_add(&st[1], txn, NULL, 'p', BLOCK + (i * 7) % 45,
                          "summer", 6, d);
    }

    d[LOYALTY_STATS_CLICKS] = 1;
    d[LOYALTY_STATS_REVENUE] = 0;
    loyalty_stats_add(&st[1], txn, &acc, 'd', BLOCK, NULL, 0, d);
    is_int(loyalty_stats_write_acc(&st[1], txn, &acc), 0, "rows written");
    mdb_txn_commit(txn);
    loyalty_stats_acc_free(&acc);

    for (i = 0; i < 2; i++) {
        n = get(&st[1], 'P', BLOCK + 32 * i, "spring", a);
        m = get(&st[1], 'P', BLOCK + 32 * i, "summer", b);
        ok(n > 5 && n == m && memcmp(a, b, n) == 0,
           "a block's rows at once as one by one");
        ok(loyalty_stats_block_check(a, n) == 0, "and it checks");
    }

    is_int(get(&st[1], 'd', BLOCK, "", a), 4, "a day's row, as before");
}


/* the same counts as day records, blocks, and both */
static void
fill(void)
{
    int       i, day, k, blocks;
    char      name[16];
    int64_t   c[LOYALTY_STATS_COUNTERS];
    uint8_t   kbuf[LOYALTY_STATS_KEY_MAX], vbuf[LOYALTY_STATS_REC_MAX];
    uint32_t  r;
    MDB_txn  *txn;
    MDB_val   key, val;

    r = 12345;
    memset(c, 0, sizeof(c));

    for (i = 0; i < NAMES; i++) {
        /* 1 to 12 bytes, each a prefix of the next: "A", "AA"... */
        snprintf(name, sizeof(name), "%.*s", 1 + i % 12, "AAAAAAAAAAAA");
        name[0] = (char) ('A' + i / 12);

        for (day = FIRST; day < FIRST + DAYS; day++) {
            r = r * 1103515245 + 12345;
            if ((r >> 16) % 10 >= 3) {
                continue;
            }

            c[LOYALTY_STATS_CLICKS] = (r >> 8) % 300 + 1;
            c[LOYALTY_STATS_REVENUE] = (int64_t) ((r >> 4) % 9000) - 2000;

            for (k = 0; k < 3; k++) {
                /* the store of both: day records on even days */
                blocks = (k == 1) || (k == 2 && day % 2);

                if (blocks) {
                    add(&st[k], 'c', day, name, c[LOYALTY_STATS_CLICKS],
                        c[LOYALTY_STATS_REVENUE]);
                    continue;
                }

                key.mv_data = kbuf;
                key.mv_size = loyalty_stats_key('c', day, name,
                                                strlen(name), kbuf);
                val.mv_data = vbuf;
                val.mv_size = loyalty_stats_encode(c, vbuf);

                mdb_txn_begin(st[k].env, NULL, 0, &txn);
                mdb_put(txn, st[k].dbi[LOYALTY_DB_STATS], &key, &val, 0);
                mdb_txn_commit(txn);
            }
        }
    }
}


/* a question's answer as JSON text (the caller frees it), or NULL */
static char *
ask(loyalty_store_t *s, int64_t from, int64_t to, const char *sort,
    const char *top, const char *offset)
{
    char                   f[16], t[16], err[LOYALTY_ERRLEN], *out;
    json_t                *doc;
    MDB_txn               *txn;
    loyalty_stats_args_t   a;
    loyalty_stats_query_t  q;

    loyalty_stats_format_day(from, f);
    loyalty_stats_format_day(to, t);

    memset(&a, 0, sizeof(a));
    a.by.data = "code"; a.by.len = 4;
    a.from.data = f; a.from.len = 10;
    a.to.data = t; a.to.len = 10;
    a.sort.data = sort; a.sort.len = strlen(sort);
    a.top.data = top; a.top.len = strlen(top);
    a.offset.data = offset; a.offset.len = strlen(offset);

    if (loyalty_stats_query_parse(&a, NULL, 0, &q, err, sizeof(err)) != 0) {
        return NULL;
    }

    mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    out = NULL;

    if (loyalty_stats_query(s, txn, &q, 0, &doc) == 0) {
        out = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(doc);
    }

    mdb_txn_abort(txn);

    return out;
}


static void
test_layouts(void)
{
    int          i, k, same;
    char        *a[3];
    static const struct {
        int          from, to;
        const char  *sort, *top, *offset;
    } qs[] = {
        { FIRST, FIRST + 29, "clicks", "1000", "0" },
        { FIRST + 5, FIRST + 40, "revenue", "5", "3" },
        { BLOCK + 8, BLOCK + 8, "clicks", "1000", "0" },
        { BLOCK, BLOCK + 31, "key", "1000", "0" },
        { FIRST, FIRST + DAYS - 1, "revenue", "1000", "0" },
        { BLOCK + 31, BLOCK + 32, "clicks", "10", "0" },
    };

    fill();

    for (i = 0; i < (int) (sizeof(qs) / sizeof(qs[0])); i++) {
        for (k = 0; k < 3; k++) {
            a[k] = ask(&st[k], qs[i].from, qs[i].to, qs[i].sort, qs[i].top,
                       qs[i].offset);
        }

        same = a[0] != NULL && a[1] != NULL && a[2] != NULL
               && strcmp(a[0], a[1]) == 0 && strcmp(a[0], a[2]) == 0;

        ok(same && strstr(a[0], "\"count\":0") == NULL,
           "question %d: day records, blocks and both answer the same", i);

        if (!same) {
            diag("%s\n%s\n%s", a[0] ? a[0] : "-", a[1] ? a[1] : "-",
                 a[2] ? a[2] : "-");
        }

        for (k = 0; k < 3; k++) {
            free(a[k]);
        }
    }
}


/* the erasure's move of a referrer's counters: a block, a day record */
static void
test_rename(void)
{
    int       n;
    uint8_t   kbuf[LOYALTY_STATS_KEY_MAX], buf[LOYALTY_STATS_BLOCK_MAX];
    MDB_txn  *txn;
    MDB_val   key, val;

    add(&st[2], 'r', BLOCK + 1, "bob", 4, 10);
    add(&st[2], 'r', BLOCK + 20, "bob", 1, 0);
    add(&st[2], 'r', BLOCK + 20, "pseu", 2, 0);

    key.mv_data = kbuf;
    val.mv_data = buf;

    mdb_txn_begin(st[2].env, NULL, 0, &txn);
    key.mv_size = loyalty_stats_key('R', BLOCK, "bob", 3, kbuf);
    val.mv_size = (size_t) get(&st[2], 'R', BLOCK, "bob", buf);
    is_int(loyalty_stats_rename(&st[2], txn, &key, &val, "pseu", 4), 0,
           "a block moved");
    mdb_txn_commit(txn);

    is_int(get(&st[2], 'R', BLOCK, "bob", buf), -1, "from the member");
    n = get(&st[2], 'R', BLOCK, "pseu", buf);
    ok(strcmp(sum(buf, n, 1, 1), "4 10") == 0
       && strcmp(sum(buf, n, 20, 20), "3 0") == 0,
       "to the pseudonym's days, added to what it had");
}


static void
test_check(void)
{
    int            n;
    size_t         i;
    int64_t        c[LOYALTY_STATS_COUNTERS];
    uint8_t        kbuf[LOYALTY_STATS_KEY_MAX], buf[LOYALTY_STATS_BLOCK_MAX];
    MDB_txn       *txn;
    MDB_val        key, val;
    static const struct {
        const char  *rec;
        size_t       len;
        const char  *what;
    } bad[] = {
        { "\x01\x01\x00\x00", 4, "short" },
        { "\x02\x01\x00\x00\x00\x03\x01\x00\x02", 9, "version 2" },
        { "\x01\x00\x00\x00\x00", 5, "no day" },
        { "\x01\x01\x00\x00\x00\x04\x01\x00\x02", 9, "a day past the end" },
        { "\x01\x01\x00\x00\x00\x03\x01\x00\x02\x00", 10, "a byte after" },
        { "\x01\x03\x00\x00\x00\x03\x01\x00\x02\x03\x01\x00\x02", 13,
          "a day without counts of its own" },
        { "\x01\x01\x00\x00\x00\x03\x00\x10\x02", 9, "a 13th counter" },
        { "\x01\x01\x00\x00\x00\x03\x01\x00\x00", 9, "a counter of 0" },
        { "\x01\x03\x00\x00\x00\x03\x01\x00\x02", 9, "a day missing" },
    };

    ok(loyalty_stats_block_check((const uint8_t *)
                                 "\x01\x03\x00\x00\x00\x02\x00\x00"
                                 "\x03\x01\x00\x02", 12) == 0,
       "a day whose running sums are back to none is sound");

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ok(loyalty_stats_block_check((const uint8_t *) bad[i].rec,
                                     bad[i].len) != 0,
           "damage: %s", bad[i].what);
    }

    memset(c, 0, sizeof(c));
    ok(loyalty_stats_block_sum((const uint8_t *) bad[3].rec, bad[3].len, 1,
                               c) != 0 && c[0] == 0,
       "a question counts nothing of a day it cannot read");

    /* a write to a block that does not decode: counting starts again */
    key.mv_data = kbuf;
    key.mv_size = loyalty_stats_key('C', BLOCK, "DMG", 3, kbuf);
    val.mv_data = (void *) bad[8].rec;
    val.mv_size = bad[8].len;
    mdb_txn_begin(st[0].env, NULL, 0, &txn);
    mdb_put(txn, st[0].dbi[LOYALTY_DB_STATS], &key, &val, 0);
    mdb_txn_commit(txn);

    add(&st[0], 'c', BLOCK + 3, "DMG", 4, 0);
    n = get(&st[0], 'C', BLOCK, "DMG", buf);
    ok(loyalty_stats_block_check(buf, n) == 0
       && loyalty_stats_block_days(buf, n) == 0x8
       && strcmp(sum(buf, n, 0, 31), "4 0") == 0,
       "a write to a damaged block: the block from none");
}


/* a raw record of kind, day and name in s */
static void
put_raw(loyalty_store_t *s, int kind, int64_t day, const char *name,
    const char *rec, size_t len)
{
    uint8_t   kbuf[LOYALTY_STATS_KEY_MAX];
    MDB_txn  *txn;
    MDB_val   key, val;

    key.mv_data = kbuf;
    key.mv_size = loyalty_stats_key(kind, day, name, strlen(name), kbuf);
    val.mv_data = (void *) rec;
    val.mv_size = len;

    mdb_txn_begin(s->env, NULL, 0, &txn);
    mdb_put(txn, s->dbi[LOYALTY_DB_STATS], &key, &val, 0);
    mdb_txn_commit(txn);
}


/*
 * A question decodes a block's days straight into its totals, one day
 * added and another taken: a day that does not decode part way, or a
 * day skipped past the end, takes back what was already moved, so that
 * the totals are exactly as before the record
 */
static void
test_take_back(void)
{
    int          i, k, same;
    char        *out;
    int64_t      c[LOYALTY_STATS_COUNTERS], was[LOYALTY_STATS_COUNTERS];
    int64_t      undo[LOYALTY_STATS_COUNTERS];
    static const struct {
        const char  *rec;
        size_t       len;
        uint32_t     want;
        const char  *what;
    } bad[] = {
        /* day 2: clicks 5, revenue 100; day 1: clicks 3, then cut */
        { "\x01\x06\x00\x00\x00" "\x05\x81\x00\x0a\xc8\x01"
          "\x04\x81\x00\x06\x80", 16, 0x4,
          "the day before the range's cut after a counter" },
        { "\x01\x04\x00\x00\x00" "\x04\x81\x00\x06\x80", 10, 0x4,
          "the range's last day cut after a counter" },
        { "\x01\x04\x00\x00\x00" "\x04\x01\x00\x06\x02\x02", 11,
          0x4, "the range's last day longer than its counters" },
        /* days 3, 2 (skipped, past the end) and 0 */
        { "\x01\x0d\x00\x00\x00" "\x03\x01\x00\x0a"
          "\x09\x01\x00\x02", 13, 0xc,
          "a day skipped past the end" },
        { "\x01\x06\x00\x00\x00" "\x05\x81\x00\x0a\xc8\x01"
          "\x05\x81\x00\x06\x06\x06", 17, 0x4,
          "the day before the range's with a byte after" },
    };

    for (i = 0; i < (int) nelts(was); i++) {
        was[i] = (int64_t) (i * 1000003) - 4000000;
    }

    was[LOYALTY_STATS_REVENUE] = INT64_MAX;

    for (i = 0; i < (int) nelts(bad); i++) {
        memcpy(c, was, sizeof(c));

        k = loyalty_stats_block_sum((const uint8_t *) bad[i].rec, bad[i].len,
                                    bad[i].want, c);

        ok(k == -1 && memcmp(c, was, sizeof(c)) == 0,
           "take back: %s", bad[i].what);
    }

    memcpy(c, was, sizeof(c));
    memset(undo, 0, sizeof(undo));
    k = loyalty_stats_decode_add((const uint8_t *) "\x01\x81\x00\x06\x80",
                                 5, c, undo);

    for (i = 0; i < (int) nelts(c); i++) {
        c[i] = (int64_t) ((uint64_t) c[i] - (uint64_t) undo[i]);
    }

    ok(k == -1 && memcmp(c, was, sizeof(c)) == 0,
       "take back: a day record cut after a counter, in undo");
    memset(undo, 0, sizeof(undo));
    ok(loyalty_stats_decode_add((const uint8_t *) "\x01\x81\x00\x06\x02",
                                5, c, undo) == 0
       && c[LOYALTY_STATS_CLICKS] == was[LOYALTY_STATS_CLICKS] + 3
       && c[LOYALTY_STATS_REVENUE] == INT64_MIN
       && undo[LOYALTY_STATS_CLICKS] == 0,
       "a sound day record added, a sum past the largest wraps");

    /* a question: the damaged code counts nothing, the totals the other's */
    put_raw(&st[1], 'C', BLOCK + 320, "DMG-A",
            "\x01\x06\x00\x00\x00" "\x03\x01\x00\x64"
            "\x04\x81\x00\x06\x80", 14);
    put_raw(&st[1], 'C', BLOCK + 320, "DMG-B",
            "\x01\x06\x00\x00\x00" "\x05\x81\x00\x0a\xc8\x01"
            "\x05\x81\x00\x06\xc8\x01", 17);

    out = ask(&st[1], BLOCK + 322, BLOCK + 322, "clicks", "10", "0");
    same = out != NULL
           && strstr(out, "\"count\":1,") != NULL
           && strstr(out, "\"totals\":{\"attributed\":0,\"bot_clicks\":0,"
                          "\"clicks\":2,") != NULL
           && strstr(out, "DMG-A") == NULL;
    ok(same, "a question: a damaged block counts nothing, in the totals too");

    if (!same) {
        diag("%s", out ? out : "-");
    }

    free(out);
}


int
main(void)
{
    int   k;
    char  err[LOYALTY_ERRLEN];

    plan(51);

    for (k = 0; k < 3; k++) {
        if (fixture_store_open(tmp[k], "stats_block", &st[k], err,
                               sizeof(err))
            != 0)
        {
            diag("%s", err);
            return 1;
        }
    }

    test_splice();
    test_rows();
    test_layouts();
    test_rename();
    test_check();
    test_take_back();

    for (k = 0; k < 3; k++) {
        fixture_store_remove(tmp[k], &st[k]);
    }

    return done();
}
