/*
 * nginx-loyalty: the conversion counters: the attributions database,
 * and what each event and click flush adds to the stats database.
 *
 * Every count is a read-modify-write of one record in the caller's
 * write transaction (loyalty_stats_block.c): an order adds to its
 * code's, campaign's and referrers' blocks and the day's record on the
 * order's day, and a refund
 * subtracts from the very same records what it takes back, so that the
 * counters of any range of days stay the sum of what happened.  A
 * batch's adds to its codes', campaigns' and referrers' records wait in
 * one pending delta until a fold (loyalty_stats_pend.c).
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loyalty_record.h"
#include "loyalty_stats.h"


/*
 * bench/stats.sh's other side: a loyaltyctl built with this defined
 * (make build/bench/loyaltyctl-nocounters) writes no counters and no
 * attributions, so that their cost is measured against the same code.
 */
#ifdef LOYALTY_STATS_BENCH_OFF
#define LOYALTY_STATS_OFF  1
#else
#define LOYALTY_STATS_OFF  0
#endif


const char  *loyalty_stats_counter_names[LOYALTY_STATS_COUNTERS] = {
    "clicks", "unique_clicks", "bot_clicks", "attributed", "signups",
    "first_orders", "orders", "revenue", "refunds", "refunded",
    "points_l1", "points_l2"
};


const char  *loyalty_stats_by_names[LOYALTY_STATS_BY_COUNT] = {
    "code", "campaign", "referrer", "day", "funnel", "cadence"
};


int64_t
loyalty_stats_day(const loyalty_tz_t *tz, int64_t t)
{
    return loyalty_tz_day(tz, t);
}


int
loyalty_stats_parse_day(const char *s, size_t len, int64_t *day)
{
    int  y, m, d;

    if (len != LOYALTY_DAY_LEN || loyalty_parse_date(s, len, &y, &m, &d) != 0
        || y < 2000 || y > 2100)
    {
        return -1;
    }

    *day = loyalty_days_from_civil(y, m, d);

    return 0;
}


void
loyalty_stats_format_day(int64_t day, char *buf)
{
    int      m, d;
    int64_t  y;

    loyalty_civil(day * LOYALTY_DAY, &y, &m, &d);

    snprintf(buf, LOYALTY_DAY_LEN + 1, "%04d-%02d-%02d", (int) y, m, d);
}


/* the stats database's records */

size_t
loyalty_stats_key(int kind, int64_t day, const char *name, size_t len,
    uint8_t *key)
{
    key[0] = (uint8_t) kind;
    loyalty_be32_put(key + 1, (uint32_t) day);

    loyalty_cpymem(key + 5, name, len);

    return 5 + len;
}


/*
 * A stats record: the version, a u16 of the counters present (bit i:
 * counter i), then each of them, in order, as a zigzag LEB128 varint.
 * Most rows count a few things: a few bytes each, more rows to a page.
 */
size_t
loyalty_stats_encode(const int64_t *c, uint8_t *buf)
{
    int        i;
    uint8_t   *p;
    uint64_t   z;
    unsigned   mask;

    p = buf + 3;
    mask = 0;

    for (i = 0; i < LOYALTY_STATS_COUNTERS; i++) {
        if (c[i] == 0) {
            continue;
        }

        mask |= 1u << i;
        z = ((uint64_t) c[i] << 1) ^ (uint64_t) (c[i] >> 63);

        while (z >= 0x80) {
            *p++ = (uint8_t) (z | 0x80);
            z >>= 7;
        }

        *p++ = (uint8_t) z;
    }

    buf[0] = LOYALTY_STATS_VERSION;
    buf[1] = (uint8_t) mask;
    buf[2] = (uint8_t) (mask >> 8);

    return (size_t) (p - buf);
}


int
loyalty_stats_decode(const uint8_t *buf, size_t len, int64_t *c)
{
    unsigned  mask;

    /* it zeroes c itself */
    return loyalty_stats_decode_present(buf, len, c, &mask);
}


/* one row written with a cursor of its own */
static int
loyalty_stats_write_one(loyalty_store_t *st, MDB_txn *txn,
    const loyalty_stats_acc_entry_t *e)
{
    int          rc;
    MDB_cursor  *cur;

    rc = mdb_cursor_open(txn, st->dbi[LOYALTY_DB_STATS], &cur);
    if (rc != 0) {
        return rc;
    }

    rc = loyalty_stats_write_rows(cur, e, 1);

    mdb_cursor_close(cur);

    return rc;
}


/* the accumulator */

void
loyalty_stats_acc_init(loyalty_stats_acc_t *acc)
{
    memset(acc, 0, sizeof(loyalty_stats_acc_t));
}


void
loyalty_stats_acc_free(loyalty_stats_acc_t *acc)
{
    free(acc->entries);
    free(acc->slots);
    loyalty_stats_acc_init(acc);
}


uint32_t
loyalty_stats_hash(const uint8_t *key, size_t len)
{
    size_t    i, k;
    uint64_t  h, w;

    /* eight bytes a step: keys and names are short */
    h = len * 0x9e3779b97f4a7c15ULL;

    for (i = 0; i < len; i += 8) {
        k = len - i < 8 ? len - i : 8;
        w = 0;
        memcpy(&w, key + i, k);
        h = (h ^ w) * 0xff51afd7ed558ccdULL;
        h ^= h >> 33;
    }

    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;

    return (uint32_t) h;
}


static int
loyalty_stats_acc_grow(loyalty_stats_acc_t *acc)
{
    size_t     i, n;
    uint32_t   h;
    uint64_t  *slots;

    n = acc->nslots ? acc->nslots * 2 : 256;

    slots = calloc(n, sizeof(uint64_t));
    if (slots == NULL) {
        return ENOMEM;
    }

    for (i = 0; i < acc->nslots; i++) {
        if (acc->slots[i] == 0) {
            continue;
        }

        h = (uint32_t) (acc->slots[i] >> 32) & (n - 1);
        while (slots[h]) {
            h = (h + 1) & (n - 1);
        }

        slots[h] = acc->slots[i];
    }

    free(acc->slots);
    acc->slots = slots;
    acc->nslots = n;

    return 0;
}


/* the key's entry, made if new; NULL for memory */
static loyalty_stats_acc_entry_t *
loyalty_stats_acc_entry(loyalty_stats_acc_t *acc, const uint8_t *key,
    size_t len)
{
    size_t                      h;
    uint32_t                    hash;
    loyalty_stats_acc_entry_t  *e, *entries;

    if ((acc->n + 1) * 2 > acc->nslots && loyalty_stats_acc_grow(acc) != 0) {
        return NULL;
    }

    hash = loyalty_stats_hash(key, len);
    h = hash & (acc->nslots - 1);

    while (acc->slots[h]) {
        if ((uint32_t) (acc->slots[h] >> 32) == hash) {
            e = &acc->entries[(uint32_t) acc->slots[h] - 1];

            if (e->len == len && memcmp(e->key, key, len) == 0) {
                return e;
            }
        }

        h = (h + 1) & (acc->nslots - 1);
    }

    if (acc->n == acc->nalloc) {
        acc->nalloc = acc->nalloc ? acc->nalloc * 2 : 128;
        entries = realloc(acc->entries,
                          acc->nalloc * sizeof(loyalty_stats_acc_entry_t));
        if (entries == NULL) {
            return NULL;
        }

        acc->entries = entries;
    }

    e = &acc->entries[acc->n];
    memset(e, 0, sizeof(loyalty_stats_acc_entry_t));
    memcpy(e->key, key, len);
    e->len = (uint8_t) len;

    acc->slots[h] = ((uint64_t) hash << 32) | ++acc->n;

    return e;
}


/* adds d to the entry of key (of at most LOYALTY_STATS_KEY_MAX bytes) */
static int
loyalty_stats_acc_add(loyalty_stats_acc_t *acc, const uint8_t *key,
    size_t len, const int64_t *d)
{
    int                         i;
    loyalty_stats_acc_entry_t  *e;

    e = loyalty_stats_acc_entry(acc, key, len);
    if (e == NULL) {
        return ENOMEM;
    }

    for (i = 0; i < LOYALTY_STATS_COUNTERS; i++) {
        e->d[i] += d[i];
    }

    return 0;
}


/* forgets every entry, keeping the memory */
static void
loyalty_stats_acc_empty(loyalty_stats_acc_t *acc)
{
    acc->n = 0;

    if (acc->slots) {
        memset(acc->slots, 0, acc->nslots * sizeof(uint64_t));
    }
}


int
loyalty_stats_add(loyalty_store_t *st, MDB_txn *txn,
    loyalty_stats_acc_t *acc, int kind, int64_t day, const char *name,
    size_t len, const int64_t *d)
{
    loyalty_stats_acc_entry_t  e;

    e.len = (uint8_t) loyalty_stats_key(kind, day, name, len, e.key);

    if (acc == NULL) {
        memcpy(e.d, d, sizeof(e.d));

        return loyalty_stats_write_one(st, txn, &e);
    }

    return loyalty_stats_acc_add(acc, e.key, e.len, d);
}


int
loyalty_stats_write_acc(loyalty_store_t *st, MDB_txn *txn,
    loyalty_stats_acc_t *acc)
{
    int          rc;
    MDB_cursor  *cur;

    if (acc->n == 0) {
        return 0;
    }

    /*
     * In key order, through one cursor: the writes walk the tree once,
     * and a block's rows are next to each other
     */
    qsort(acc->entries, acc->n, sizeof(loyalty_stats_acc_entry_t),
          loyalty_stats_row_cmp);

    rc = mdb_cursor_open(txn, st->dbi[LOYALTY_DB_STATS], &cur);

    if (rc == 0) {
        rc = loyalty_stats_write_rows(cur, acc->entries, acc->n);
        mdb_cursor_close(cur);
    }

    loyalty_stats_acc_empty(acc);

    return rc;
}


int
loyalty_stats_flush(loyalty_store_t *st, MDB_txn *txn,
    loyalty_stats_acc_t *acc)
{
    int       rc;
    uint64_t  pending;

    if (LOYALTY_STATS_OFF) {
        return 0;
    }

    if (acc->n == 0) {
        return 0;
    }

    /*
     * The rows of codes, campaigns and referrers lie all over the
     * database, a page each to write and sync: one pending delta instead,
     * folded into them once for many batches.  The day's and moves' rows
     * lie together, written now.
     */
    rc = loyalty_stats_pend_put(st, txn, acc, &pending);

    if (rc == 0) {
        rc = loyalty_stats_write_acc(st, txn, acc);
    }

    if (rc == 0 && pending >= LOYALTY_STATS_PENDING_MAX) {
        rc = loyalty_stats_fold(st, txn);
    }

    loyalty_stats_acc_empty(acc);

    return rc;
}


/* the attributions database */

size_t
loyalty_attrib_encode(const loyalty_attrib_t *a, uint8_t *buf)
{
    uint8_t  *p;

    memset(buf, 0, LOYALTY_ATTRIB_FIXED);
    buf[0] = LOYALTY_ATTRIB_VERSION;
    buf[1] = (uint8_t) a->code_len;
    buf[2] = (uint8_t) a->campaign_len;
    buf[3] = (uint8_t) a->r1_len;
    buf[4] = (uint8_t) a->r2_len;
    loyalty_le_put(buf + 8, (uint64_t) a->since, 8);
    loyalty_le_put(buf + 16, (uint64_t) a->click_day, 4);

    p = buf + LOYALTY_ATTRIB_FIXED;
    p = loyalty_cpymem(p, a->code, a->code_len);
    p = loyalty_cpymem(p, a->campaign, a->campaign_len);
    p = loyalty_cpymem(p, a->r1, a->r1_len);
    p = loyalty_cpymem(p, a->r2, a->r2_len);

    return (size_t) (p - buf);
}


int
loyalty_attrib_decode(const uint8_t *buf, size_t len, loyalty_attrib_t *a)
{
    size_t          i;
    const uint8_t  *p;

    if (len < LOYALTY_ATTRIB_FIXED || buf[0] != LOYALTY_ATTRIB_VERSION
        || buf[1] > LOYALTY_CODE_MAX || buf[2] > LOYALTY_CAMPAIGN_MAX
        || buf[3] == 0 || buf[3] > LOYALTY_ID_MAX || buf[4] > LOYALTY_ID_MAX
        || len != (size_t) LOYALTY_ATTRIB_FIXED + buf[1] + buf[2] + buf[3]
                  + buf[4])
    {
        return -1;
    }

    for (i = 5; i < 8; i++) {
        if (buf[i] != 0) {
            return -1;
        }
    }

    for (i = 20; i < 24; i++) {
        if (buf[i] != 0) {
            return -1;
        }
    }

    a->code_len = buf[1];
    a->campaign_len = buf[2];
    a->r1_len = buf[3];
    a->r2_len = buf[4];
    a->since = (int64_t) loyalty_le_get(buf + 8, 8);
    a->click_day = (int64_t) loyalty_le_get(buf + 16, 4);

    p = buf + LOYALTY_ATTRIB_FIXED;
    loyalty_cpymem(a->code, p, a->code_len);
    p += a->code_len;
    loyalty_cpymem(a->campaign, p, a->campaign_len);
    p += a->campaign_len;
    loyalty_cpymem(a->r1, p, a->r1_len);
    p += a->r1_len;
    loyalty_cpymem(a->r2, p, a->r2_len);

    return 0;
}


/* 0, MDB_NOTFOUND, MDB_CORRUPTED, or an LMDB error */
int
loyalty_attrib_get(loyalty_store_t *st, MDB_txn *txn, const char *member,
    size_t len, loyalty_attrib_t *a)
{
    int      rc;
    MDB_val  key, val;

    key.mv_data = (void *) member;
    key.mv_size = len;

    rc = mdb_get(txn, st->dbi[LOYALTY_DB_ATTRIB], &key, &val);
    if (rc != 0) {
        return rc;
    }

    if (loyalty_attrib_decode(val.mv_data, val.mv_size, a) != 0) {
        return MDB_CORRUPTED;
    }

    return 0;
}


int
loyalty_attrib_delete(loyalty_store_t *st, MDB_txn *txn, const char *member,
    size_t len)
{
    int      rc;
    MDB_val  key;

    key.mv_data = (void *) member;
    key.mv_size = len;

    rc = mdb_del(txn, st->dbi[LOYALTY_DB_ATTRIB], &key, NULL);

    return rc == MDB_NOTFOUND ? 0 : rc;
}


int
loyalty_stats_attribute(loyalty_store_t *st, MDB_txn *txn,
    const char *member, size_t len, const loyalty_stats_source_t *src,
    int64_t at, int64_t clicked_at, uint32_t orders, int64_t last_order_at)
{
    int               rc;
    uint8_t           buf[LOYALTY_ATTRIB_REC_MAX];
    MDB_val           key, val;
    loyalty_attrib_t  a;

    if (LOYALTY_STATS_OFF) {
        return 0;
    }

    rc = loyalty_attrib_get(st, txn, member, len, &a);
    if (rc != MDB_NOTFOUND) {
        /* kept for life: the first attribution stays */
        return rc == MDB_CORRUPTED ? 0 : rc;
    }

    memset(&a, 0, sizeof(loyalty_attrib_t));

    a.code_len = src->code_len;
    loyalty_cpymem(a.code, src->code, src->code_len);
    a.campaign_len = src->code_len ? src->campaign_len : 0;
    loyalty_cpymem(a.campaign, src->campaign, a.campaign_len);
    a.r1_len = src->r1_len;
    loyalty_cpymem(a.r1, src->r1, src->r1_len);
    a.r2_len = src->r2_len;
    loyalty_cpymem(a.r2, src->r2, src->r2_len);

    /* the orders before the attribution were no one's */
    a.since = at;
    if (orders && last_order_at >= a.since) {
        a.since = last_order_at + 1;
    }

    a.click_day = loyalty_stats_day(st->tz, clicked_at ? clicked_at : at);

    key.mv_data = (void *) member;
    key.mv_size = len;
    val.mv_data = buf;
    val.mv_size = loyalty_attrib_encode(&a, buf);

    return mdb_put(txn, st->dbi[LOYALTY_DB_ATTRIB], &key, &val, 0);
}


/* what the event adds to the counters of its member's conversions */
static void
loyalty_stats_deltas(const loyalty_stats_event_t *e, int64_t *d,
    int64_t *l1, int64_t *l2)
{
    int64_t  sign;

    memset(d, 0, sizeof(int64_t) * LOYALTY_STATS_COUNTERS);

    sign = (e->kind == LOYALTY_STATS_EV_REFUND) ? -1 : 1;

    switch (e->kind) {

    case LOYALTY_STATS_EV_SIGNUP:
        d[LOYALTY_STATS_SIGNUPS] = 1;
        break;

    case LOYALTY_STATS_EV_ORDER:
        d[LOYALTY_STATS_ORDERS] = 1;
        d[LOYALTY_STATS_FIRST_ORDERS] = e->first ? 1 : 0;
        d[LOYALTY_STATS_REVENUE] = e->amount;
        break;

    case LOYALTY_STATS_EV_REFUND:
        d[LOYALTY_STATS_REFUNDS] = 1;
        d[LOYALTY_STATS_REFUNDED] = e->amount;
        d[LOYALTY_STATS_REVENUE] = -e->amount;
        break;

    default: /* LOYALTY_STATS_EV_ACTION: only its points count */
        break;
    }

    *l1 = e->r1_len ? sign * e->l1 : 0;
    *l2 = e->r2_len ? sign * e->l2 : 0;
}


/* the member's conversions: against the code, campaign, referrers, day */
static int
loyalty_stats_convert(loyalty_store_t *st, MDB_txn *txn,
    loyalty_stats_acc_t *acc, const loyalty_attrib_t *a, int64_t day,
    int64_t *d)
{
    int  rc;

    rc = 0;

    if (a->code_len) {
        rc = loyalty_stats_add(st, txn, acc, LOYALTY_STATS_KIND_CODE, day,
                               a->code, a->code_len, d);
    }

    if (rc == 0 && a->campaign_len) {
        rc = loyalty_stats_add(st, txn, acc, LOYALTY_STATS_KIND_CAMPAIGN, day,
                               a->campaign, a->campaign_len, d);
    }

    if (rc == 0) {
        rc = loyalty_stats_add(st, txn, acc, LOYALTY_STATS_KIND_DAY, day,
                               NULL, 0, d);
    }

    /* the referrers' rows count the people, not each other's points */
    d[LOYALTY_STATS_POINTS_L1] = 0;
    d[LOYALTY_STATS_POINTS_L2] = 0;

    if (rc == 0) {
        rc = loyalty_stats_add(st, txn, acc, LOYALTY_STATS_KIND_REFERRER, day,
                               a->r1, a->r1_len, d);
    }

    if (rc == 0 && a->r2_len) {
        rc = loyalty_stats_add(st, txn, acc, LOYALTY_STATS_KIND_REFERRER, day,
                               a->r2, a->r2_len, d);
    }

    return rc;
}


/* the points paid: to the referrers who got them, whoever the buyer */
static int
loyalty_stats_paid(loyalty_store_t *st, MDB_txn *txn,
    loyalty_stats_acc_t *acc, const loyalty_stats_event_t *e, int64_t day,
    int64_t l1, int64_t l2)
{
    int      rc;
    int64_t  d[LOYALTY_STATS_COUNTERS];

    rc = 0;
    memset(d, 0, sizeof(d));

    if (l1) {
        d[LOYALTY_STATS_POINTS_L1] = l1;
        rc = loyalty_stats_add(st, txn, acc, LOYALTY_STATS_KIND_REFERRER, day,
                               e->r1, e->r1_len, d);
        d[LOYALTY_STATS_POINTS_L1] = 0;
    }

    if (rc == 0 && l2) {
        d[LOYALTY_STATS_POINTS_L2] = l2;
        rc = loyalty_stats_add(st, txn, acc, LOYALTY_STATS_KIND_REFERRER, day,
                               e->r2, e->r2_len, d);
    }

    return rc;
}


int
loyalty_stats_event(loyalty_store_t *st, MDB_txn *txn,
    loyalty_stats_acc_t *acc, const loyalty_stats_event_t *e)
{
    int               rc, counted;
    int64_t           day, l1, l2;
    int64_t           d[LOYALTY_STATS_COUNTERS];
    loyalty_attrib_t  a;

    if (LOYALTY_STATS_OFF) {
        return 0;
    }

    loyalty_stats_deltas(e, d, &l1, &l2);

    rc = loyalty_attrib_get(st, txn, e->member, e->member_len, &a);

    if (rc != 0 && rc != MDB_NOTFOUND && rc != MDB_CORRUPTED) {
        return rc;
    }

    /* an order, and so its refunds, counts if made once attributed */
    counted = (rc == 0)
              && (e->kind == LOYALTY_STATS_EV_SIGNUP || e->at >= a.since);

    day = loyalty_stats_day(st->tz, e->at);

    if (counted) {
        d[LOYALTY_STATS_POINTS_L1] = l1;
        d[LOYALTY_STATS_POINTS_L2] = l2;

        rc = loyalty_stats_convert(st, txn, acc, &a, day, d);

    } else if (l1 || l2) {
        d[LOYALTY_STATS_POINTS_L1] = l1;
        d[LOYALTY_STATS_POINTS_L2] = l2;

        rc = loyalty_stats_add(st, txn, acc, LOYALTY_STATS_KIND_DAY, day,
                               NULL, 0, d);
    } else {
        rc = 0;
    }

    if (rc != 0) {
        return rc;
    }

    return loyalty_stats_paid(st, txn, acc, e, day, l1, l2);
}


int
loyalty_stats_move(loyalty_store_t *st, MDB_txn *txn,
    loyalty_stats_acc_t *acc, int from, int to, int64_t at)
{
    char     name[32];
    size_t   len;
    int64_t  d[LOYALTY_STATS_COUNTERS];

    if (LOYALTY_STATS_OFF) {
        return 0;
    }

    if (from == to || to < 0 || to >= LOYALTY_STAGE_COUNT
        || from >= LOYALTY_STAGE_COUNT)
    {
        return 0;
    }

    len = (size_t) snprintf(name, sizeof(name), "%s>%s",
                            from < 0 ? "new" : loyalty_stage_names[from],
                            loyalty_stage_names[to]);

    memset(d, 0, sizeof(d));
    d[0] = 1;

    return loyalty_stats_add(st, txn, acc, LOYALTY_STATS_KIND_MOVE,
                             loyalty_stats_day(st->tz, at), name, len, d);
}


int
loyalty_stats_clicks(loyalty_store_t *st, MDB_txn *txn, const char *code,
    size_t len, int64_t day, const uint64_t *delta)
{
    int             rc;
    char            owner[LOYALTY_ID_MAX], campaign[LOYALTY_CAMPAIGN_MAX];
    int64_t         d[LOYALTY_STATS_COUNTERS];
    loyalty_code_t  c;

    memset(d, 0, sizeof(d));
    d[LOYALTY_STATS_CLICKS] = (int64_t) delta[LOYALTY_CLICK_TOTAL];
    d[LOYALTY_STATS_UNIQUE] = (int64_t) delta[LOYALTY_CLICK_UNIQUE];
    d[LOYALTY_STATS_BOT] = (int64_t) delta[LOYALTY_CLICK_BOT];
    d[LOYALTY_STATS_ATTRIBUTED] = (int64_t) delta[LOYALTY_CLICK_ATTRIBUTED];

    if ((d[0] | d[1] | d[2] | d[3]) == 0) {
        return 0;
    }

    rc = loyalty_stats_add(st, txn, NULL, LOYALTY_STATS_KIND_CODE, day, code,
                           len, d);

    if (rc == 0) {
        rc = loyalty_stats_add(st, txn, NULL, LOYALTY_STATS_KIND_DAY, day,
                               NULL, 0, d);
    }

    if (rc != 0) {
        return rc;
    }

    rc = loyalty_code_get(st, txn, code, len, &c);

    /* a code deleted since its clicks: only its own row and the day's */
    if (rc == MDB_NOTFOUND || rc == MDB_CORRUPTED) {
        return 0;
    }

    if (rc != 0) {
        return rc;
    }

    /* copies: the writes below may move the page they are on */
    loyalty_cpymem(owner, c.member, c.member_len);
    loyalty_cpymem(campaign, c.campaign, c.campaign_len);

    if (c.campaign_len) {
        rc = loyalty_stats_add(st, txn, NULL, LOYALTY_STATS_KIND_CAMPAIGN, day,
                               campaign, c.campaign_len, d);
    }

    if (rc == 0) {
        rc = loyalty_stats_add(st, txn, NULL, LOYALTY_STATS_KIND_REFERRER, day,
                               owner, c.member_len, d);
    }

    return rc;
}
