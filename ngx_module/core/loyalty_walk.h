/*
 * nginx-loyalty: one walk over a range of a store database's records,
 * for everything that reads or rewrites records in key order.  The walk
 * holds the cursor; a visitor sees one record at a time and may write
 * to the database: the walk then finds its place again, on from the
 * first key after the one visited.
 */

#ifndef _LOYALTY_WALK_H_INCLUDED_
#define _LOYALTY_WALK_H_INCLUDED_


#include <stddef.h>
#include <lmdb.h>

#include "loyalty_store.h"


/* LMDB's own limit on a key (mdb_env_get_maxkeysize() as built) */
#define LOYALTY_WALK_KEY_MAX        511

/*
 * What a visitor returns, besides an error that ends the walk: stop and
 * wrote lie outside errno's values (positive) and LMDB's (MDB_KEYEXIST
 * -30799 to MDB_LAST_ERRCODE), so no error is ever taken for either.
 */
#define LOYALTY_WALK_NEXT           0
#define LOYALTY_WALK_STOP           (-30600)
#define LOYALTY_WALK_WROTE          (-30601)


/*
 * What a visitor is handed: the walk's store, transaction and database,
 * the record visited, and the data given to loyalty_walk().  key is a
 * copy that stays valid across the visitor's writes; val points into
 * the map and does not: copy what is needed before writing.
 */
typedef struct {
    loyalty_store_t  *st;
    MDB_txn          *txn;
    loyalty_db_e      db;
    MDB_val           key;
    MDB_val           val;
    void             *data;
} loyalty_walk_t;

typedef int (*loyalty_walk_pt)(loyalty_walk_t *w);


/*
 * Visits the records of db from the first key at or past from (from the
 * first of all when from_len is 0), while their keys start with the
 * first prefix_len bytes of from.  Returns 0 when the range ended or the
 * visitor stopped the walk, or the LMDB error.
 */
int loyalty_walk(loyalty_store_t *st, MDB_txn *txn, loyalty_db_e db,
    const void *from, size_t from_len, size_t prefix_len,
    loyalty_walk_pt visit, void *data);
/*
 * The same from the first key after the after_len bytes of after (from
 * the first of all when after_len is 0): a walk done in steps resumes
 * past the last key its step before visited.
 */
int loyalty_walk_after(loyalty_store_t *st, MDB_txn *txn, loyalty_db_e db,
    const void *after, size_t after_len, loyalty_walk_pt visit, void *data);

/*
 * What a visitor that wrote returns: LOYALTY_WALK_WROTE when rc, its
 * writes' result, is 0, else rc
 */
#define loyalty_walk_wrote(rc)  ((rc) != 0 ? (rc) : LOYALTY_WALK_WROTE)

/* deletes the record visited: LOYALTY_WALK_WROTE or the LMDB error */
int loyalty_walk_del(loyalty_walk_t *w);
/* writes val under the key visited: LOYALTY_WALK_WROTE or the error */
int loyalty_walk_put(loyalty_walk_t *w, MDB_val *val);


#endif /* _LOYALTY_WALK_H_INCLUDED_ */
