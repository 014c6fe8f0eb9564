/*
 * nginx-loyalty: retention of events and touches (see loyalty_prune.h).
 *
 * A deleted event no longer makes its replay a duplicate, and a refund of
 * an order whose event is gone is refused as one of an unknown order; a
 * deleted touch may be scheduled again if its cadence's period comes
 * round again (an "inactive" member still inactive).  So the age is the
 * shop's choice: beyond its refund window and its replay horizon.
 */

#include <string.h>

#include "loyalty_events.h"
#include "loyalty_prune.h"


static const int  loyalty_prune_dbs[] = {
    LOYALTY_DB_EVENTS, LOYALTY_DB_TOUCHES
};


/* whether the record is past retention */
static int
loyalty_prune_old(int db, MDB_val *val, int64_t cutoff)
{
    loyalty_touch_t      t;
    loyalty_event_rec_t  e;

    if (db == LOYALTY_DB_EVENTS) {
        return loyalty_event_rec_decode(val->mv_data, val->mv_size, &e) == 0
               && e.at < cutoff;
    }

    return loyalty_touch_decode(val->mv_data, val->mv_size, &t) == 0
           && t.acked_at != 0 && t.due_at < cutoff;
}


int
loyalty_prune_step(loyalty_store_t *st, MDB_txn *txn, int64_t cutoff,
    size_t max, loyalty_prune_t *pr)
{
    int             rc, db;
    size_t          n;
    MDB_val         key, val;
    MDB_cursor     *cur;
    MDB_cursor_op   op;

    if (pr->stage >= 2) {
        pr->done = 1;
        return 0;
    }

    db = loyalty_prune_dbs[pr->stage];

    rc = mdb_cursor_open(txn, st->dbi[db], &cur);
    if (rc != 0) {
        return rc;
    }

    op = MDB_FIRST;
    rc = 0;

    /* on from where the last step stopped, the key it looked at last */
    if (pr->after_len) {
        key.mv_data = pr->after;
        key.mv_size = pr->after_len;

        rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);

        op = (rc == 0 && key.mv_size == pr->after_len
              && memcmp(key.mv_data, pr->after, pr->after_len) == 0)
             ? MDB_NEXT : MDB_GET_CURRENT;
    }

    for (n = 0; rc == 0 && n < max; n++) {
        rc = mdb_cursor_get(cur, &key, &val, op);
        if (rc != 0) {
            break;
        }

        op = MDB_NEXT;

        if (key.mv_size > sizeof(pr->after)) {
            continue;
        }

        memcpy(pr->after, key.mv_data, key.mv_size);
        pr->after_len = key.mv_size;

        if (!loyalty_prune_old(db, &val, cutoff)) {
            continue;
        }

        /* the cursor is left on the next record: NEXT returns it */
        rc = mdb_cursor_del(cur, 0);
        if (rc != 0) {
            break;
        }

        if (db == LOYALTY_DB_EVENTS) {
            pr->events++;

        } else {
            pr->touches++;
        }
    }

    mdb_cursor_close(cur);

    if (rc == MDB_NOTFOUND) {
        /* on to the next database, from its start */
        pr->stage++;
        pr->after_len = 0;
        pr->done = (pr->stage >= 2);
        return 0;
    }

    return rc;
}
