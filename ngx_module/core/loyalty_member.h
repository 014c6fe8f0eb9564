/*
 * nginx-loyalty: the members database, read by one accessor.  Every read
 * of a member by id, in the core, the CLI and the module, goes through
 * loyalty_member_get() (the decoded record) or loyalty_member_find()
 * (the raw bytes, for a check of existence or a partial decode).
 */

#ifndef _LOYALTY_MEMBER_H_INCLUDED_
#define _LOYALTY_MEMBER_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>
#include <lmdb.h>

#include "loyalty_record.h"
#include "loyalty_store.h"


/*
 * The member's record as stored: 0 with val pointing into the map (valid
 * until the next write in txn, or its end), MDB_NOTFOUND, or an LMDB
 * error.
 */
int loyalty_member_find(MDB_txn *txn, loyalty_store_t *st, const char *id,
    size_t len, MDB_val *val);

/*
 * The member's record, decoded: 0 with m (its strings point into the map,
 * valid until the next write in txn, or its end), MDB_NOTFOUND,
 * MDB_CORRUPTED for a record that does not decode, or an LMDB error.
 */
int loyalty_member_get(MDB_txn *txn, loyalty_store_t *st, const char *id,
    size_t len, loyalty_member_t *m);

/*
 * As loyalty_member_get(), with the record copied into buf
 * (LOYALTY_MEMBER_MAX bytes) first, so that m stays valid across writes.
 */
int loyalty_member_get_copy(MDB_txn *txn, loyalty_store_t *st,
    const char *id, size_t len, uint8_t *buf, loyalty_member_t *m);

/*
 * The kind of the members' records: a decoded member is written back by
 * loyalty_store_put_rec() (buf of LOYALTY_MEMBER_MAX bytes)
 */
extern const loyalty_store_rec_t  loyalty_member_rec;


#endif /* _LOYALTY_MEMBER_H_INCLUDED_ */
