/*
 * nginx-loyalty: the members database's accessor.
 */

#include <string.h>

#include "loyalty_member.h"


LOYALTY_STORE_REC(loyalty_member_rec, LOYALTY_DB_MEMBERS, LOYALTY_MEMBER_MAX,
                  loyalty_member_t, loyalty_member_decode,
                  loyalty_member_encode);


int
loyalty_member_find(MDB_txn *txn, loyalty_store_t *st, const char *id,
    size_t len, MDB_val *val)
{
    return loyalty_store_get(txn, st->dbi[LOYALTY_DB_MEMBERS], id, len, val);
}


int
loyalty_member_get(MDB_txn *txn, loyalty_store_t *st, const char *id,
    size_t len, loyalty_member_t *m)
{
    return loyalty_store_get_rec(txn, st, &loyalty_member_rec, id, len, NULL,
                                 m);
}


int
loyalty_member_get_copy(MDB_txn *txn, loyalty_store_t *st, const char *id,
    size_t len, uint8_t *buf, loyalty_member_t *m)
{
    return loyalty_store_get_rec(txn, st, &loyalty_member_rec, id, len, buf,
                                 m);
}
