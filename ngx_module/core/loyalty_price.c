/*
 * nginx-loyalty: tier prices and the privilege guard.
 */

#include <stdio.h>
#include <string.h>

#include "loyalty_price.h"


int
loyalty_tierset_load(MDB_txn *txn, MDB_dbi dbi, loyalty_tierset_t *ts)
{
    int                  rc;
    MDB_val              key, val;
    MDB_cursor          *cur;
    loyalty_tier_t       t;
    loyalty_tier_ref_t  *ref;

    ts->n = 0;

    rc = mdb_cursor_open(txn, dbi, &cur);
    if (rc != 0) {
        return rc;
    }

    while ((rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) == 0) {
        if (ts->n == LOYALTY_TIERS_MAX
            || !loyalty_valid_tier_name(key.mv_data, key.mv_size)
            || loyalty_tier_decode(val.mv_data, val.mv_size, &t) != 0)
        {
            rc = MDB_CORRUPTED;
            break;
        }

        ref = &ts->tiers[ts->n++];
        ref->name = key.mv_data;
        ref->name_len = key.mv_size;
        ref->label = t.label;
        ref->label_len = t.label_len;
        ref->rank = t.rank;
        ref->discount_bp = t.discount_bp;
    }

    mdb_cursor_close(cur);

    return rc == MDB_NOTFOUND ? 0 : rc;
}


int
loyalty_tierset_find(const loyalty_tierset_t *ts, const char *name,
    size_t len)
{
    size_t  i;

    for (i = 0; i < ts->n; i++) {
        if (ts->tiers[i].name_len == len
            && memcmp(ts->tiers[i].name, name, len) == 0)
        {
            return (int) i;
        }
    }

    return -1;
}


int64_t
loyalty_price_raw(const loyalty_price_t *p, const loyalty_tier_ref_t *t)
{
    int64_t  price, f;

    price = loyalty_price_override(p, t->name, t->name_len);
    if (price >= 0) {
        return price;
    }

    /*
     * round(retail * f / 10^4) split as retail = 10^4 q + r, so that no
     * product exceeds 10^15: retail * f itself could overflow 63 bits
     */
    f = 10000 - t->discount_bp;

    return p->retail / 10000 * f + (p->retail % 10000 * f + 5000) / 10000;
}


int64_t
loyalty_price_guard(const loyalty_price_t *p, const loyalty_tierset_t *ts,
    size_t i, int64_t price, int *clamped)
{
    size_t   j;
    int64_t  bound, lower;

    bound = p->retail;

    for (j = 0; j < ts->n; j++) {
        if (ts->tiers[j].rank < ts->tiers[i].rank) {
            lower = loyalty_price_raw(p, &ts->tiers[j]);
            if (lower < bound) {
                bound = lower;
            }
        }
    }

    *clamped = price > bound;

    return *clamped ? bound : price;
}


int
loyalty_price_check(const loyalty_price_t *p, const loyalty_tierset_t *ts,
    char *err, size_t errlen)
{
    size_t                     i, j;
    int64_t                    pi, pj;
    const loyalty_tier_ref_t  *ti, *tj;

    for (i = 0; i < ts->n; i++) {
        ti = &ts->tiers[i];
        pi = loyalty_price_raw(p, ti);

        if (pi > p->retail) {
            snprintf(err, errlen, "tier \"%.*s\" price %lld is above retail "
                     "%lld", (int) ti->name_len, ti->name, (long long) pi,
                     (long long) p->retail);
            return -1;
        }

        for (j = 0; j < ts->n; j++) {
            tj = &ts->tiers[j];

            if (tj->rank >= ti->rank) {
                continue;
            }

            pj = loyalty_price_raw(p, tj);

            if (pi > pj) {
                snprintf(err, errlen, "tier \"%.*s\" (rank %d) price %lld "
                         "is above tier \"%.*s\" (rank %d) price %lld",
                         (int) ti->name_len, ti->name, ti->rank,
                         (long long) pi, (int) tj->name_len, tj->name,
                         tj->rank, (long long) pj);
                return -1;
            }
        }
    }

    return 0;
}
