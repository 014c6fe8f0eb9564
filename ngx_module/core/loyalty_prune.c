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
#include "loyalty_walk.h"


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


typedef struct {
    loyalty_prune_t  *pr;
    int64_t           cutoff;
    size_t            max;
    size_t            n;
} loyalty_pruning_t;


/* loyalty_walk()'s visitor: one record, deleted if old */
static int
loyalty_prune_one(loyalty_walk_t *w)
{
    int                 rc;
    loyalty_pruning_t  *p = w->data;

    if (p->n == p->max) {
        return LOYALTY_WALK_STOP;
    }

    p->n++;

    if (w->key.mv_size > sizeof(p->pr->after)) {
        return LOYALTY_WALK_NEXT;
    }

    memcpy(p->pr->after, w->key.mv_data, w->key.mv_size);
    p->pr->after_len = w->key.mv_size;

    if (!loyalty_prune_old(w->db, &w->val, p->cutoff)) {
        return LOYALTY_WALK_NEXT;
    }

    rc = loyalty_walk_del(w);
    if (rc != LOYALTY_WALK_WROTE) {
        return rc;
    }

    if (w->db == LOYALTY_DB_EVENTS) {
        p->pr->events++;

    } else {
        p->pr->touches++;
    }

    return rc;
}


int
loyalty_prune_step(loyalty_store_t *st, MDB_txn *txn, int64_t cutoff,
    size_t max, loyalty_prune_t *pr)
{
    int                rc;
    int                db;
    loyalty_pruning_t  p;

    if (pr->stage >= 2) {
        pr->done = 1;
        return 0;
    }

    p.pr = pr;
    p.cutoff = cutoff;
    p.max = max;
    p.n = 0;

    /* on from after the key the last step looked at last */
    db = loyalty_prune_dbs[pr->stage];

    rc = loyalty_walk_after(st, txn, db, pr->after, pr->after_len,
                            loyalty_prune_one, &p);
    if (rc != 0) {
        return rc;
    }

    if (p.n < max) {
        /* on to the next database, from its start */
        pr->stage++;
        pr->after_len = 0;
        pr->done = (pr->stage >= 2);
    }

    return 0;
}
