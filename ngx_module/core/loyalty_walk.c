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
    int            rc;
    size_t         len;
    uint8_t        at[LOYALTY_WALK_KEY_MAX + 1];
    MDB_val        key, val;
    MDB_cursor    *cur;
    MDB_cursor_op  op;

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

    key.mv_data = at;
    key.mv_size = from_len;
    op = from_len ? MDB_SET_RANGE : MDB_FIRST;

    for ( ;; ) {
        rc = mdb_cursor_get(cur, &key, &val, op);
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
        key.mv_data = at;

        rc = visit(data, st, txn, &key, &val);

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
