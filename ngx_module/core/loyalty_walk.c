/*
 * nginx-loyalty: one walk over a range of a store database's records.
 *
 * A visitor that writes (puts, deletes) may leave LMDB's cursor
 * anywhere: the walk keeps a copy of the key it visited and, when told
 * that the visitor wrote, looks for the first key after it (the key and
 * a zero byte, with SET_RANGE) instead of stepping on.  Reads step on.
 */

#include <errno.h>
#include <string.h>

#include "loyalty_walk.h"


int
loyalty_walk(loyalty_store_t *st, MDB_txn *txn, loyalty_db_e db,
    const void *from, size_t from_len, size_t prefix_len,
    loyalty_walk_pt visit, void *data)
{
    int             rc;
    size_t          len;
    uint8_t         at[LOYALTY_WALK_KEY_MAX + 1];
    MDB_val         key;
    MDB_cursor     *cur;
    MDB_cursor_op   op;
    loyalty_walk_t  w;

    if (from_len > LOYALTY_WALK_KEY_MAX || prefix_len > from_len) {
        return EINVAL;
    }

    rc = mdb_cursor_open(txn, st->dbi[db], &cur);
    if (rc != 0) {
        return rc;
    }

    if (from_len) {
        memcpy(at, from, from_len);
    }

    w.st = st;
    w.txn = txn;
    w.db = db;
    w.data = data;

    key.mv_data = at;
    key.mv_size = from_len;
    op = from_len ? MDB_SET_RANGE : MDB_FIRST;

    for ( ;; ) {
        rc = mdb_cursor_get(cur, &key, &w.val, op);
        if (rc != 0) {
            break;
        }

        /* at keeps the prefix: every key it copies starts with it */
        if (key.mv_size < prefix_len
            || memcmp(key.mv_data, at, prefix_len) != 0)
        {
            rc = MDB_NOTFOUND;
            break;
        }

        if (key.mv_size > LOYALTY_WALK_KEY_MAX) {
            rc = MDB_BAD_VALSIZE;
            break;
        }

        len = key.mv_size;
        memcpy(at, key.mv_data, len);
        w.key.mv_data = at;
        w.key.mv_size = len;

        rc = visit(&w);

        if (rc == LOYALTY_WALK_NEXT) {
            op = MDB_NEXT;
            continue;
        }

        if (rc != LOYALTY_WALK_WROTE) {
            break;
        }

        /* the first key after the one visited */
        at[len] = '\0';
        key.mv_data = at;
        key.mv_size = len + 1;
        op = MDB_SET_RANGE;
    }

    mdb_cursor_close(cur);

    return (rc == MDB_NOTFOUND || rc == LOYALTY_WALK_STOP) ? 0 : rc;
}


int
loyalty_walk_after(loyalty_store_t *st, MDB_txn *txn, loyalty_db_e db,
    const void *after, size_t after_len, loyalty_walk_pt visit, void *data)
{
    uint8_t  from[LOYALTY_WALK_KEY_MAX + 1];

    if (after_len == 0) {
        return loyalty_walk(st, txn, db, NULL, 0, 0, visit, data);
    }

    if (after_len > LOYALTY_WALK_KEY_MAX) {
        return EINVAL;
    }

    /* the first key after it: the key and a zero byte, or past them */
    memcpy(from, after, after_len);
    from[after_len] = '\0';

    return loyalty_walk(st, txn, db, from, after_len + 1, 0, visit, data);
}


int
loyalty_walk_del(loyalty_walk_t *w)
{
    int  rc;

    rc = mdb_del(w->txn, w->st->dbi[w->db], &w->key, NULL);

    return loyalty_walk_wrote(rc);
}


int
loyalty_walk_put(loyalty_walk_t *w, MDB_val *val)
{
    int  rc;

    rc = mdb_put(w->txn, w->st->dbi[w->db], &w->key, val, 0);

    return loyalty_walk_wrote(rc);
}
