/*
 * nginx-loyalty: the members database's accessor.
 */

#include <string.h>

#include "loyalty_member.h"


/* loyalty_member_decode() for loyalty_store_get_rec() */
static int
loyalty_member_decode_rec(const uint8_t *buf, size_t len, void *m)
{
    return loyalty_member_decode(buf, len, m);
}


int
loyalty_member_find(MDB_txn *txn, loyalty_store_t *st, const char *id,
    size_t len, MDB_val *val)
{
    MDB_val  key;

    key.mv_data = (void *) id;
    key.mv_size = len;

    return mdb_get(txn, st->dbi[LOYALTY_DB_MEMBERS], &key, val);
}


int
loyalty_member_get(MDB_txn *txn, loyalty_store_t *st, const char *id,
    size_t len, loyalty_member_t *m)
{
    int      rc;
    MDB_val  val;

    rc = loyalty_member_find(txn, st, id, len, &val);
    if (rc != 0) {
        return rc;
    }

    return loyalty_member_decode(val.mv_data, val.mv_size, m) == 0
           ? 0 : MDB_CORRUPTED;
}


int
loyalty_member_get_copy(MDB_txn *txn, loyalty_store_t *st, const char *id,
    size_t len, uint8_t *buf, loyalty_member_t *m)
{
    return loyalty_store_get_rec(txn, st->dbi[LOYALTY_DB_MEMBERS], id, len,
                                 buf, LOYALTY_MEMBER_MAX,
                                 loyalty_member_decode_rec, m);
}
