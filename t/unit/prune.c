/*
 * Unit tests of loyalty_prune.c: retention steps of every size over a
 * store of old and new events and touches, acknowledged and pending.
 * However few records a step may look at, a prune resumes where the last
 * step stopped and deletes exactly the records past the cutoff.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loyalty_due.h"
#include "loyalty_events.h"
#include "loyalty_prune.h"
#include "store_fixture.h"
#include "tap.h"


#define EVENTS      25
#define TOUCHES     10
#define CUTOFF      500


/* events: the even ones at 100, before the cutoff; the odd ones at 1000 */
static int
put_events(loyalty_store_t *st, MDB_txn *txn)
{
    int                  rc, i;
    char                 id[8];
    uint8_t              key[LOYALTY_EVENT_KEY_MAX], val[LOYALTY_EVENT_REC_MAX];
    MDB_val              k, v;
    loyalty_event_rec_t  e;

    for (i = 0; i < EVENTS; i++) {
        memset(&e, 0, sizeof(loyalty_event_rec_t));
        e.type = LOYALTY_EVENT_ACTION;
        e.member = "m";
        e.member_len = 1;
        e.at = (i % 2) ? 1000 : 100;

        snprintf(id, sizeof(id), "A%02d", i);
        k.mv_data = key;
        k.mv_size = loyalty_event_key(LOYALTY_EVENT_ACTION, id, strlen(id),
                                      key);
        v.mv_data = val;
        v.mv_size = loyalty_event_rec_encode(&e, val);

        rc = mdb_put(txn, st->dbi[LOYALTY_DB_EVENTS], &k, &v, 0);
        if (rc != 0) {
            return rc;
        }
    }

    return 0;
}


/*
 * touches: the even ones acknowledged, the odd ones pending; the first
 * six due at 100, the others at 1000: three are past retention
 */
static int
put_touches(loyalty_store_t *st, MDB_txn *txn)
{
    int              rc, i;
    char             id[LOYALTY_TOUCH_ID_MAX];
    uint8_t          val[LOYALTY_TOUCH_REC_MAX];
    MDB_val          k, v;
    loyalty_touch_t  t;

    for (i = 0; i < TOUCHES; i++) {
        memset(&t, 0, sizeof(loyalty_touch_t));
        t.state = (i % 2) ? LOYALTY_OUTCOME_PENDING : LOYALTY_OUTCOME_DONE;
        t.acked_at = (i % 2) ? 0 : 2000;
        t.due_at = (i < 6) ? 100 : 1000;
        t.scheduled_at = 50;

        k.mv_data = id;
        k.mv_size = (size_t) snprintf(id, sizeof(id), "call:m:P%d", i);
        v.mv_data = val;
        v.mv_size = loyalty_touch_encode(&t, val);

        rc = mdb_put(txn, st->dbi[LOYALTY_DB_TOUCHES], &k, &v, 0);
        if (rc != 0) {
            return rc;
        }
    }

    return 0;
}


static size_t
entries(loyalty_store_t *st, int db)
{
    MDB_txn   *txn;
    MDB_stat   ms;

    if (mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn) != 0) {
        return (size_t) -1;
    }

    if (mdb_stat(txn, st->dbi[db], &ms) != 0) {
        ms.ms_entries = (size_t) -1;
    }

    mdb_txn_abort(txn);

    return ms.ms_entries;
}


/* a fresh store with the records, pruned in steps of max records */
static void
prune_in_steps(size_t max)
{
    int              rc;
    char             dir[FIXTURE_PATH_MAX];
    char             err[LOYALTY_ERRLEN];
    size_t           steps;
    MDB_txn         *txn;
    loyalty_store_t  st;
    loyalty_prune_t  pr;

    if (fixture_store_open(dir, "prune", &st, err, sizeof(err)) != 0) {
        ok(0, "a store in %s: %s", dir, err);
        return;
    }

    rc = mdb_txn_begin(st.env, NULL, 0, &txn);
    if (rc == 0) {
        rc = put_events(&st, txn);
        rc = rc ? rc : put_touches(&st, txn);
        rc = rc ? (mdb_txn_abort(txn), rc) : mdb_txn_commit(txn);
    }

    is_int(rc, 0, "max %zu: %d events and %d touches written", max, EVENTS,
           TOUCHES);

    memset(&pr, 0, sizeof(loyalty_prune_t));
    steps = 0;

    while (rc == 0 && !pr.done && steps < 1000) {
        rc = mdb_txn_begin(st.env, NULL, 0, &txn);
        if (rc == 0) {
            rc = loyalty_prune_step(&st, txn, CUTOFF, max, &pr);
            rc = rc ? (mdb_txn_abort(txn), rc) : mdb_txn_commit(txn);
        }

        steps++;
    }

    is_int(rc, 0, "max %zu: every step commits", max);
    ok(pr.done, "max %zu: done in %zu steps", max, steps);
    ok(steps >= (EVENTS + TOUCHES) / max,
       "max %zu: no step looked at more than %zu records", max, max);
    is_int((int) pr.events, (EVENTS + 1) / 2, "max %zu: the old events "
           "deleted", max);
    is_int((int) pr.touches, 3, "max %zu: the old acknowledged touches "
           "deleted", max);
    is_int((int) entries(&st, LOYALTY_DB_EVENTS), EVENTS / 2,
           "max %zu: the new events stay", max);
    is_int((int) entries(&st, LOYALTY_DB_TOUCHES), TOUCHES - 3,
           "max %zu: new and pending touches stay", max);

    /* again: nothing left to prune */
    memset(&pr, 0, sizeof(loyalty_prune_t));

    while (!pr.done && mdb_txn_begin(st.env, NULL, 0, &txn) == 0) {
        rc = loyalty_prune_step(&st, txn, CUTOFF, max, &pr);
        mdb_txn_commit(txn);

        if (rc != 0) {
            break;
        }
    }

    ok(rc == 0 && pr.events == 0 && pr.touches == 0,
       "max %zu: a second prune deletes nothing", max);

    fixture_store_remove(dir, &st);
}


int
main(void)
{
    size_t  i;

    static const size_t  sizes[] = { 1, 2, 3, 7, LOYALTY_PRUNE_CHUNK };

    plan((int) nelts(sizes) * 9);

    for (i = 0; i < nelts(sizes); i++) {
        prune_in_steps(sizes[i]);
    }

    return done();
}
