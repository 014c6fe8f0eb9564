/*
 * nginx-loyalty: the conversion counters' records and their one writer.
 *
 * A day's counters are a u16 of the counters present, then each present
 * one as a zigzag LEB128 varint: after a version byte, that is a day
 * record (kind "d", and the "c", "p", "r" records a store made before
 * blocks keeps); 32 of them after a version byte and a u32 of the days
 * present are a block record (kinds "C", "P", "R": one a name and 32
 * days).  A question over 30 days reads at most two blocks a name
 * instead of a record a name and day; a write splices one day's
 * counters into its block.  schema/lmdb-layout.md documents both.
 */

#include <string.h>

#include "loyalty_stats_decode.h"


const uint8_t *
loyalty_stats_day_again(const uint8_t *p, const uint8_t *end, int64_t *c)
{
    unsigned  m;

    return loyalty_stats_day_add(p, end, c, &m);
}


int
loyalty_stats_decode_present(const uint8_t *buf, size_t len, int64_t *c,
    unsigned *present)
{
    const uint8_t  *p;

    memset(c, 0, sizeof(int64_t) * LOYALTY_STATS_COUNTERS);

    if (len < 3 || buf[0] != LOYALTY_STATS_VERSION) {
        return -1;
    }

    p = loyalty_stats_body_add(buf + 1, buf + len, c, present);

    return p == buf + len ? 0 : -1;
}


int
loyalty_stats_decode_add(const uint8_t *buf, size_t len, int64_t *c,
    int64_t *undo)
{
    unsigned  m;

    if (len < 3 || buf[0] != LOYALTY_STATS_VERSION) {
        return -1;
    }

    if (loyalty_stats_body_add(buf + 1, buf + len, c, &m) == buf + len) {
        return 0;
    }

    /* what the counters before the damage added, added to undo too */
    loyalty_stats_body_add(buf + 1, buf + len, undo, &m);

    return -1;
}


int
loyalty_stats_block_kind(int kind)
{
    switch (kind) {

    case LOYALTY_STATS_KIND_CODE:
        return LOYALTY_STATS_KIND_CODE_BLOCK;

    case LOYALTY_STATS_KIND_CAMPAIGN:
        return LOYALTY_STATS_KIND_CAMPAIGN_BLOCK;

    case LOYALTY_STATS_KIND_REFERRER:
        return LOYALTY_STATS_KIND_REFERRER_BLOCK;

    default:
        return 0;
    }
}


int64_t
loyalty_stats_block_day(int64_t day)
{
    return day - day % LOYALTY_STATS_BLOCK_DAYS;
}


uint32_t
loyalty_stats_block_mask(int64_t block, int64_t from, int64_t to)
{
    int64_t  lo, hi;

    lo = from > block ? from : block;
    hi = to < block + LOYALTY_STATS_BLOCK_DAYS - 1
         ? to : block + LOYALTY_STATS_BLOCK_DAYS - 1;

    if (lo > hi) {
        return 0;
    }

    return (uint32_t) (((uint64_t) 2 << (hi - block))
                       - ((uint64_t) 1 << (lo - block)));
}


uint32_t
loyalty_stats_block_days(const uint8_t *buf, size_t len)
{
    if (len < 5 || buf[0] != LOYALTY_STATS_VERSION) {
        return 0;
    }

    return loyalty_stats_days_field(buf);
}


int
loyalty_stats_block_sum(const uint8_t *buf, size_t len, uint32_t want,
    int64_t *c)
{
    int       i, rc;
    int64_t   minus[LOYALTY_STATS_COUNTERS];
    uint32_t  low;

    if (want == 0) {
        return -1;
    }

    low = ((uint32_t) 1 << __builtin_ctz(want)) - 1;
    memset(minus, 0, sizeof(minus));

    rc = loyalty_stats_block_add(buf, len, low, want | low, c, minus);

    for (i = 0; rc != 1 && i < LOYALTY_STATS_COUNTERS; i++) {
        c[i] = (int64_t) ((uint64_t) c[i] - (uint64_t) minus[i]);
    }

    return rc;
}


int
loyalty_stats_block_check(const uint8_t *buf, size_t len)
{
    int             k, first;
    int64_t         run[2][LOYALTY_STATS_COUNTERS];
    unsigned        m;
    uint32_t        days;
    const uint8_t  *p, *end;

    days = loyalty_stats_block_days(buf, len);
    if (days == 0) {
        return -1;
    }

    p = buf + 5;
    end = buf + len;
    first = 1;

    /*
     * Every day decodes and has counts of its own: its running sums
     * differ from those of the earlier day after it, the earliest's
     * from none
     */
    for (k = 0; days; days &= days - 1, k ^= 1) {
        memset(run[k], 0, sizeof(run[k]));

        p = loyalty_stats_day_add(p, end, run[k], &m);

        if (p == NULL
            || (!first && memcmp(run[k], run[k ^ 1], sizeof(run[k])) == 0))
        {
            return -1;
        }

        first = 0;
    }

    memset(run[k], 0, sizeof(run[k]));

    if (memcmp(run[k], run[k ^ 1], sizeof(run[k])) == 0) {
        return -1;
    }

    return p == end ? 0 : -1;
}


/* a day's running sums at o: its length byte and counters; the length */
static size_t
loyalty_stats_day_put(const int64_t *run, uint8_t *o)
{
    size_t  n;

    /* a length byte in place of a day record's version byte */
    n = loyalty_stats_encode(run, o);
    o[0] = (uint8_t) (n - 1);

    return n;
}


/*
 * Adds d to day i of the block record in buf (*len bytes, 0 for none;
 * LOYALTY_STATS_BLOCK_MAX bytes of room), in place: 0 with its new
 * length in *len (0 when it has no day left), or -1 when the days it
 * reads do not decode.  The days after i (before it in the record) are
 * written again, their running sums moved by d, then day i; the days
 * before it stay as they are (their lengths read, the first one's sums
 * too).  Most writes are to a block's last day: its first.
 */
static int
loyalty_stats_block_splice(uint8_t *buf, size_t *len, int i,
    const int64_t *d)
{
    int             j, k;
    int64_t         prev[LOYALTY_STATS_COUNTERS], run[LOYALTY_STATS_COUNTERS];
    uint8_t         out[LOYALTY_STATS_BLOCK_MAX], *o;
    unsigned        m;
    uint32_t        days, bit, b;
    const uint8_t  *p, *end, *rest;

    if (*len == 0) {
        memset(buf, 0, 5);
        buf[0] = LOYALTY_STATS_VERSION;
        *len = 5;
    }

    days = loyalty_stats_block_days(buf, *len);
    bit = (uint32_t) 1 << i;
    end = buf + *len;
    p = buf + 5;
    o = out;

    /* the days after i, the latest first: moved by d */
    for (b = days & ~(uint32_t) (((uint64_t) bit << 1) - 1); b;
         b &= ~((uint32_t) 1 << k))
    {
        k = 31 - __builtin_clz(b);

        memset(run, 0, sizeof(run));
        p = loyalty_stats_day_add(p, end, run, &m);
        if (p == NULL) {
            return -1;
        }

        for (j = 0; j < LOYALTY_STATS_COUNTERS; j++) {
            run[j] = (int64_t) ((uint64_t) run[j] + (uint64_t) d[j]);
        }

        o += loyalty_stats_day_put(run, o);
    }

    /* day i, and the running sums of the day present before it */
    memset(run, 0, sizeof(run));
    if ((days & bit)
        && (p = loyalty_stats_day_add(p, end, run, &m)) == NULL)
    {
        return -1;
    }

    rest = p;
    memset(prev, 0, sizeof(prev));

    if ((days & (bit - 1))
        && loyalty_stats_day_add(rest, end, prev, &m) == NULL)
    {
        return -1;
    }

    if (!(days & bit)) {
        memcpy(run, prev, sizeof(run));
    }

    for (j = 0; j < LOYALTY_STATS_COUNTERS; j++) {
        run[j] = (int64_t) ((uint64_t) run[j] + (uint64_t) d[j]);
    }

    /* kept while it has counts of its own */
    if (memcmp(run, prev, sizeof(run)) != 0) {
        o += loyalty_stats_day_put(run, o);
        days |= bit;

    } else {
        days &= ~bit;
    }

    /* the days before it as they are */
    for (b = days & (bit - 1); b && p != NULL; b &= b - 1) {
        p = loyalty_stats_day_skip(p, end);
    }

    if (p != end) {
        return -1;
    }

    o = loyalty_cpymem(o, rest, (size_t) (end - rest));

    memcpy(buf + 5, out, (size_t) (o - out));
    *len = days ? 5 + (size_t) (o - out) : 0;
    loyalty_le_put(buf + 1, days, 4);

    return 0;
}


/*
 * The rows e[0..n) of one block record (the same kind, block and
 * name) added to it at the cursor: a read, the days spliced, a write
 * or a delete.  A record that does not decode is damage that only
 * loyaltyctl verify may report: counting starts again from none.
 */
static int
loyalty_stats_write_block(MDB_cursor *cur, const loyalty_stats_acc_entry_t *e,
    size_t n)
{
    int        rc, found;
    size_t     k, len;
    int64_t    block;
    uint8_t    kbuf[LOYALTY_STATS_KEY_MAX], vbuf[LOYALTY_STATS_BLOCK_MAX];
    MDB_val    key, val;

    block = loyalty_stats_block_day(loyalty_be32_get(e[0].key + 1));

    key.mv_data = kbuf;
    key.mv_size = loyalty_stats_key(loyalty_stats_block_kind(e[0].key[0]),
                                    block, (const char *) e[0].key + 5,
                                    e[0].len - 5, kbuf);

    /* MDB_SET leaves key as it is: the put below may move the page */
    rc = mdb_cursor_get(cur, &key, &val, MDB_SET);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        return rc;
    }

    found = (rc == 0);
    len = 0;

    if (found && val.mv_size <= sizeof(vbuf)
        && loyalty_stats_block_days(val.mv_data, val.mv_size) != 0)
    {
        len = val.mv_size;
        memcpy(vbuf, val.mv_data, len);
    }

    for (k = 0; k < n; k++) {
        if (loyalty_stats_block_splice(vbuf, &len,
                            (int) (loyalty_be32_get(e[k].key + 1) - block),
                            e[k].d)
            != 0)
        {
            /* damage: the rows again, from none (that cannot fail) */
            len = 0;
            k = (size_t) -1;
        }
    }

    if (len == 0) {
        return found ? mdb_cursor_del(cur, 0) : 0;
    }

    val.mv_data = vbuf;
    val.mv_size = len;

    return mdb_cursor_put(cur, &key, &val, found ? MDB_CURRENT : 0);
}


/* adds d to the day record or move record of key at the cursor */
static int
loyalty_stats_write_day(MDB_cursor *cur, MDB_val *key, const int64_t *d)
{
    int        rc, i, found;
    int64_t    c[LOYALTY_STATS_COUNTERS];
    uint8_t    vbuf[LOYALTY_STATS_REC_MAX];
    uint64_t   n;
    MDB_val    val;

    rc = mdb_cursor_get(cur, key, &val, MDB_SET);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        return rc;
    }

    found = (rc == 0);

    if (((uint8_t *) key->mv_data)[0] == LOYALTY_STATS_KIND_MOVE) {
        n = 0;

        if (found && val.mv_size == LOYALTY_STATS_MOVE_LEN
            && ((uint8_t *) val.mv_data)[0] == LOYALTY_STATS_VERSION)
        {
            n = loyalty_le_get((uint8_t *) val.mv_data + 8, 8);
        }

        memset(vbuf, 0, LOYALTY_STATS_MOVE_LEN);
        vbuf[0] = LOYALTY_STATS_VERSION;
        loyalty_le_put(vbuf + 8, n + (uint64_t) d[0], 8);

        val.mv_size = LOYALTY_STATS_MOVE_LEN;

    } else {
        if (!found || loyalty_stats_decode(val.mv_data, val.mv_size, c)
                      != 0)
        {
            memset(c, 0, sizeof(c));
        }

        for (i = 0; i < LOYALTY_STATS_COUNTERS; i++) {
            c[i] = (int64_t) ((uint64_t) c[i] + (uint64_t) d[i]);
        }

        val.mv_size = loyalty_stats_encode(c, vbuf);
    }

    val.mv_data = vbuf;

    return mdb_cursor_put(cur, key, &val, found ? MDB_CURRENT : 0);
}


/* the row's kind, block (or day) and name, then day: the writes' order */
int
loyalty_stats_row_cmp(const void *pa, const void *pb)
{
    int                               ka, kb, rc;
    int64_t                           da, db;
    const loyalty_stats_acc_entry_t  *a = pa, *b = pb;

    /* rows taken into a pending delta first */
    if (a->len == 0 || b->len == 0) {
        return (b->len == 0) - (a->len == 0);
    }

    ka = loyalty_stats_block_kind(a->key[0]);
    kb = loyalty_stats_block_kind(b->key[0]);
    da = loyalty_be32_get(a->key + 1);
    db = loyalty_be32_get(b->key + 1);

    ka = ka ? ka : a->key[0];
    kb = kb ? kb : b->key[0];

    if (ka != kb) {
        return ka < kb ? -1 : 1;
    }

    if (loyalty_stats_block_kind(a->key[0])) {
        if (loyalty_stats_block_day(da) != loyalty_stats_block_day(db)) {
            return da < db ? -1 : 1;
        }
    }

    rc = loyalty_key_cmp(a->key + 5, a->len - 5u, b->key + 5, b->len - 5u);
    if (rc != 0) {
        return rc;
    }

    return (da > db) - (da < db);
}


int
loyalty_stats_write_rows(MDB_cursor *cur, const loyalty_stats_acc_entry_t *e,
    size_t n)
{
    int      rc;
    size_t   i, j;
    MDB_val  key;

    rc = 0;

    for (i = 0; rc == 0 && i < n; i = j) {
        j = i + 1;

        /* a row taken into a pending delta */
        if (e[i].len == 0) {
            continue;
        }

        if (!loyalty_stats_block_kind(e[i].key[0])) {
            key.mv_data = (void *) e[i].key;
            key.mv_size = e[i].len;

            rc = loyalty_stats_write_day(cur, &key, e[i].d);
            continue;
        }

        /* the rows of one block record: one read and one write */
        while (j < n && e[j].len == e[i].len && e[j].key[0] == e[i].key[0]
               && loyalty_stats_block_day(loyalty_be32_get(e[j].key + 1))
                  == loyalty_stats_block_day(loyalty_be32_get(e[i].key + 1))
               && memcmp(e[j].key + 5, e[i].key + 5, e[i].len - 5u) == 0)
        {
            j++;
        }

        rc = loyalty_stats_write_block(cur, &e[i], j - i);
    }

    return rc;
}


int
loyalty_stats_rename(loyalty_store_t *st, MDB_txn *txn, const MDB_val *key,
    const MDB_val *val, const char *to, size_t len)
{
    int                  rc, i, kind;
    int64_t              day, c[LOYALTY_STATS_COUNTERS];
    uint8_t              kbuf[LOYALTY_STATS_KEY_MAX];
    uint8_t              vbuf[LOYALTY_STATS_BLOCK_MAX];
    uint32_t             days;
    MDB_val              k, v;
    loyalty_stats_acc_t  acc;

    kind = ((uint8_t *) key->mv_data)[0];
    day = loyalty_be32_get((uint8_t *) key->mv_data + 1);

    if (key->mv_size > sizeof(kbuf) || val->mv_size > sizeof(vbuf)) {
        return 0;
    }

    /* copies: the delete below may move the page they are on */
    k.mv_data = memcpy(kbuf, key->mv_data, key->mv_size);
    k.mv_size = key->mv_size;
    v.mv_data = memcpy(vbuf, val->mv_data, val->mv_size);
    v.mv_size = val->mv_size;

    loyalty_stats_acc_init(&acc);
    rc = 0;

    if (kind == LOYALTY_STATS_KIND_REFERRER) {
        if (loyalty_stats_decode(vbuf, v.mv_size, c) != 0) {
            return 0;
        }

        rc = loyalty_stats_add(st, txn, &acc, kind, day, to, len, c);

    } else {
        if (loyalty_stats_block_check(vbuf, v.mv_size) != 0) {
            return 0;
        }

        days = loyalty_stats_block_days(vbuf, v.mv_size);

        for (i = 0; rc == 0 && i < LOYALTY_STATS_BLOCK_DAYS; i++) {
            if (!(days & ((uint32_t) 1 << i))) {
                continue;
            }

            memset(c, 0, sizeof(c));
            loyalty_stats_block_sum(vbuf, v.mv_size, (uint32_t) 1 << i, c);

            rc = loyalty_stats_add(st, txn, &acc, LOYALTY_STATS_KIND_REFERRER,
                                   day + i, to, len, c);
        }
    }

    if (rc == 0) {
        rc = mdb_del(txn, st->dbi[LOYALTY_DB_STATS], &k, NULL);
    }

    if (rc == 0) {
        rc = loyalty_stats_write_acc(st, txn, &acc);
    }

    loyalty_stats_acc_free(&acc);

    return rc;
}
