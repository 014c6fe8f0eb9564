/*
 * loyaltyctl verify: every record decoded, every reference resolved.
 */

#include <stdio.h>
#include <string.h>

#include "loyalty_ledger.h"
#include "loyalty_member.h"
#include "loyalty_price.h"
#include "loyalty_record.h"
#include "loyaltyctl.h"


static void
loyaltyctl_verify_price(const loyalty_tierset_t *ts, MDB_val *key,
    MDB_val *val, size_t *problems)
{
    char                      what[LOYALTY_ERRLEN];
    size_t                    i;
    loyalty_price_t           p;
    loyalty_price_override_t  ov;

    if (!loyalty_valid_id(key->mv_data, key->mv_size)) {
        loyaltyctl_problem(problems, "prices", key, "invalid sku");
        return;
    }

    if (loyalty_price_decode(val->mv_data, val->mv_size, &p) != 0) {
        loyaltyctl_problem(problems, "prices", key, "record does not decode");
        return;
    }

    for (i = 0; i < p.noverrides; i++) {
        loyalty_price_override_at(&p, i, &ov);

        if (loyalty_tierset_find(ts, ov.tier, ov.tier_len) < 0) {
            snprintf(what, sizeof(what), "unknown tier \"%.*s\"",
                     (int) ov.tier_len, ov.tier);
            loyaltyctl_problem(problems, "prices", key, what);
        }
    }

    if (loyalty_price_check(&p, ts, what, sizeof(what)) != 0) {
        loyaltyctl_problem(problems, "prices", key, what);
    }
}


static int
loyaltyctl_verify_db(loyalty_store_t *st, MDB_txn *txn, int db,
    const loyalty_tierset_t *ts, size_t *problems)
{
    int                rc;
    char               what[LOYALTY_ERRLEN];
    size_t             entries;
    int64_t            sum;
    MDB_val            key, val, ref, tmp;
    MDB_cursor        *cur;
    loyalty_tier_t     tier;
    loyalty_member_t   m;
    const char        *name;

    name = loyalty_store_dbs[db];

    rc = mdb_cursor_open(txn, st->dbi[db], &cur);
    if (rc != 0) {
        return rc;
    }

    while ((rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) == 0) {

        if (db == LOYALTY_DB_PRICES) {
            loyaltyctl_verify_price(ts, &key, &val, problems);
            continue;
        }

        if (db == LOYALTY_DB_TIERS) {
            if (!loyalty_valid_tier_name(key.mv_data, key.mv_size)) {
                loyaltyctl_problem(problems, name, &key, "invalid name");

            } else if (loyalty_tier_decode(val.mv_data, val.mv_size, &tier))
            {
                loyaltyctl_problem(problems, name, &key,
                                   "record does not decode");
            }

            continue;
        }

        if (!loyalty_valid_id(key.mv_data, key.mv_size)) {
            loyaltyctl_problem(problems, name, &key, "invalid id");
            continue;
        }

        if (loyalty_member_decode(val.mv_data, val.mv_size, &m) != 0) {
            loyaltyctl_problem(problems, name, &key,
                               "record does not decode");
            continue;
        }

        /* a member's points are the sum of their ledger */
        rc = loyalty_ledger_sum(st, txn, key.mv_data, key.mv_size, &sum,
                                &entries);
        if (rc != 0) {
            break;
        }

        if (sum != m.points) {
            snprintf(what, sizeof(what), "points %lld, but the ledger's %zu "
                     "entries sum to %lld", (long long) m.points, entries,
                     (long long) sum);
            loyaltyctl_problem(problems, name, &key, what);
        }

        ref.mv_data = (void *) m.tier;
        ref.mv_size = m.tier_len;

        rc = mdb_get(txn, st->dbi[LOYALTY_DB_TIERS], &ref, &tmp);
        rc = loyaltyctl_problem_absent(rc, "tier", m.tier, m.tier_len,
                                       problems, name, &key);
        if (rc != 0) {
            break;
        }

        if (m.referrer_len == 0) {
            continue;
        }

        ref.mv_data = (void *) m.referrer;
        ref.mv_size = m.referrer_len;

        if (ref.mv_size == key.mv_size
            && memcmp(ref.mv_data, key.mv_data, key.mv_size) == 0)
        {
            loyaltyctl_problem(problems, name, &key, "refers themselves");
            continue;
        }

        rc = loyalty_member_find(txn, st, m.referrer, m.referrer_len, &tmp);
        rc = loyaltyctl_problem_absent(rc, "referrer", m.referrer,
                                       m.referrer_len, problems, name, &key);
        if (rc != 0) {
            break;
        }
    }

    mdb_cursor_close(cur);

    return rc == MDB_NOTFOUND ? 0 : rc;
}


static int
loyaltyctl_verify_orphans(loyalty_store_t *st, MDB_txn *txn, int db,
    int owner, const char *what, size_t *problems)
{
    int          rc;
    size_t       len, last_len;
    uint8_t      last[LOYALTY_ID_MAX];
    MDB_val      key, val, id, tmp;
    MDB_cursor  *cur;
    const void  *zero;

    rc = mdb_cursor_open(txn, st->dbi[db], &cur);
    if (rc != 0) {
        return rc;
    }

    last_len = 0;

    while ((rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) == 0) {
        zero = memchr(key.mv_data, '\0', key.mv_size);
        if (zero == NULL) {
            continue;
        }

        len = (size_t) ((const uint8_t *) zero - (uint8_t *) key.mv_data);

        if (len == 0 || len > sizeof(last)
            || (len == last_len && memcmp(last, key.mv_data, len) == 0))
        {
            continue;
        }

        memcpy(last, key.mv_data, len);
        last_len = len;

        id.mv_data = last;
        id.mv_size = len;

        rc = mdb_get(txn, st->dbi[owner], &id, &tmp);
        if (rc == MDB_NOTFOUND) {
            loyaltyctl_problem(problems, loyalty_store_dbs[db], &id, what);

        } else if (rc != 0) {
            break;
        }
    }

    mdb_cursor_close(cur);

    return rc == MDB_NOTFOUND ? 0 : rc;
}


/* every check, in a read transaction; problems (size_t) counted */
static int
loyaltyctl_verify_all(loyalty_store_t *st, MDB_txn *txn, void *problems)
{
    int                rc;
    loyalty_tierset_t  ts;

    rc = loyaltyctl_verify_db(st, txn, LOYALTY_DB_TIERS, NULL, problems);

    /*
     * Prices are checked against the tier set the module would use; a
     * damaged tier empties it, and was reported above.
     */
    if (rc == 0) {
        rc = loyalty_tierset_load(txn, st->dbi[LOYALTY_DB_TIERS], &ts);
        if (rc == MDB_CORRUPTED) {
            ts.n = 0;
            rc = 0;
        }
    }

    if (rc == 0) {
        rc = loyaltyctl_verify_db(st, txn, LOYALTY_DB_MEMBERS, NULL,
                                  problems);
    }

    if (rc == 0) {
        rc = loyaltyctl_verify_db(st, txn, LOYALTY_DB_PRICES, &ts, problems);
    }

    if (rc == 0) {
        rc = loyaltyctl_verify_codes(st, txn, problems);
    }

    if (rc == 0) {
        rc = loyaltyctl_verify_stats(st, txn, problems);
    }

    /* what a deleted member leaves would be inherited */
    if (rc == 0) {
        rc = loyaltyctl_verify_orphans(st, txn, LOYALTY_DB_LEDGER,
                                       LOYALTY_DB_MEMBERS,
                                       "ledger entries of no member",
                                       problems);
    }

    return rc;
}


int
loyaltyctl_verify(const loyaltyctl_opts_t *o, int argc, char **argv)
{
    int     rc;
    size_t  problems;

    problems = 0;

    rc = loyaltyctl_read(o, "verify", loyaltyctl_verify_all, &problems);
    if (rc != LOYALTYCTL_OK) {
        return rc;
    }

    if (problems) {
        fprintf(stderr, "loyaltyctl: %zu problem%s found\n", problems,
                problems == 1 ? "" : "s");
        return LOYALTYCTL_DATA;
    }

    fprintf(stderr, "loyaltyctl: store is consistent\n");
    return LOYALTYCTL_OK;
}
