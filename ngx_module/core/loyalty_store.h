/*
 * nginx-loyalty: the LMDB store: environment, sub-databases, schema.
 *
 * A store is an LMDB environment directory.  Sub-databases are listed in
 * loyalty_store_dbs; later layouts append to the list and bump
 * LOYALTY_SCHEMA_VERSION.  See schema/lmdb-layout.md.
 */

#ifndef _LOYALTY_STORE_H_INCLUDED_
#define _LOYALTY_STORE_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>
#include <lmdb.h>

#include "loyalty_tz.h"


#define LOYALTY_SCHEMA_VERSION      1
#define LOYALTY_MAXREADERS          510
#define LOYALTY_MAPSIZE_DEFAULT     ((size_t) 1 << 30)

#define LOYALTY_META_VERSION_KEY    "schema_version"
#define LOYALTY_META_CREATED_KEY    "created_at"

#define LOYALTY_STORE_RDONLY        0x01
#define LOYALTY_STORE_CREATE        0x02
/* no lock file: for a one-off check that must not create or follow it */
#define LOYALTY_STORE_NOLOCK        0x04


typedef enum {
    LOYALTY_DB_META = 0,
    LOYALTY_DB_MEMBERS,
    LOYALTY_DB_TIERS,
    LOYALTY_DB_PRICES,
    LOYALTY_DB_CODES,
    LOYALTY_DB_CLICKS,
    LOYALTY_DB_LEDGER,
    LOYALTY_DB_EVENTS,
    LOYALTY_DB_REFERRALS,
    LOYALTY_DB_TOUCHES,
    LOYALTY_DB_DUE,
    LOYALTY_DB_STATS,
    LOYALTY_DB_ATTRIB,
    LOYALTY_DB_CHANGES,         /* optional: 0 in a store made before it */
    LOYALTY_DB_COUNT
} loyalty_db_e;


typedef struct {
    MDB_env        *env;
    MDB_dbi         dbi[LOYALTY_DB_COUNT];
    /* the shop's zone, whose days the counters count; NULL: UTC */
    const loyalty_tz_t  *tz;
} loyalty_store_t;


extern const char  *loyalty_store_dbs[LOYALTY_DB_COUNT];


/*
 * Opens the environment at path, opens every sub-database and checks the
 * schema version.  With LOYALTY_STORE_CREATE, creates the directory,
 * the sub-databases and the meta records when they are missing.
 * On failure err says what and why, with LMDB's own message.
 */
int loyalty_store_open(loyalty_store_t *st, const char *path,
    unsigned flags, char *err, size_t errlen);
void loyalty_store_close(loyalty_store_t *st);

/* the meta record name: 0 with val (in the map), or an LMDB error */
int loyalty_store_meta_get(loyalty_store_t *st, MDB_txn *txn,
    const char *name, MDB_val *val);
/* writes the meta record name: 0 or an LMDB error */
int loyalty_store_meta_put(loyalty_store_t *st, MDB_txn *txn,
    const char *name, const void *data, size_t len);
/*
 * The meta record name as a little-endian integer of width bytes: 0,
 * MDB_NOTFOUND, MDB_CORRUPTED for another length, or an LMDB error.
 */
int loyalty_store_meta_int(loyalty_store_t *st, MDB_txn *txn,
    const char *name, size_t width, uint64_t *v);
/* writes v as the meta record name, loyalty_store_meta_int()'s form */
int loyalty_store_meta_put_int(loyalty_store_t *st, MDB_txn *txn,
    const char *name, size_t width, uint64_t v);

/* reads the schema version and creation time from meta */
int loyalty_store_meta(loyalty_store_t *st, MDB_txn *txn, uint32_t *version,
    int64_t *created);

/* the map's size and the bytes its pages use: 0, or an LMDB error */
int loyalty_store_usage(loyalty_store_t *st, size_t *size, size_t *used);

/* grows the map so that need more bytes fit; call with no transaction */
int loyalty_store_grow(loyalty_store_t *st, size_t need);

/* the value of key, klen bytes, in dbi, in the map: mdb_get()'s answer */
int loyalty_store_get(MDB_txn *txn, MDB_dbi dbi, const void *key,
    size_t klen, MDB_val *val);

/*
 * The value of key in dbi, copied into buf (max bytes), so that it
 * outlives the writes that follow in txn: 0 with *len, MDB_NOTFOUND,
 * MDB_CORRUPTED for a value longer than max, or an LMDB error.
 */
int loyalty_store_get_copy(MDB_txn *txn, MDB_dbi dbi, const void *key,
    size_t klen, uint8_t *buf, size_t max, size_t *len);

/* a decoder of a kind of record: 0 when the record decodes into rec */
typedef int (*loyalty_store_decode_pt)(const uint8_t *buf, size_t len,
    void *rec);

/* an encoder of a kind of record: the length of what it wrote to buf */
typedef size_t (*loyalty_store_encode_pt)(const void *rec, uint8_t *buf);

/* a kind of record: its database, its largest size, its decoder, encoder */
typedef struct {
    loyalty_db_e             db;
    size_t                   max;
    loyalty_store_decode_pt  decode;
    loyalty_store_encode_pt  encode;
} loyalty_store_rec_t;

/*
 * Defines the loyalty_store_rec_t name, of records of type in db (max
 * bytes at most) that decode(const uint8_t *, size_t, type *) decodes
 * and encode(const type *, uint8_t *) encodes
 */
#define LOYALTY_STORE_REC(name, db, max, type, decode, encode)               \
    static int                                                               \
    name##_decode(const uint8_t *buf, size_t len, void *rec)                 \
    {                                                                        \
        return decode(buf, len, (type *) rec);                               \
    }                                                                        \
                                                                             \
    static size_t                                                            \
    name##_encode(const void *rec, uint8_t *buf)                             \
    {                                                                        \
        return encode((const type *) rec, buf);                              \
    }                                                                        \
                                                                             \
    const loyalty_store_rec_t  name = { db, max, name##_decode,              \
                                        name##_encode }

/*
 * The record of kind rec under key, decoded into out: from a copy in buf
 * (rec->max bytes), as loyalty_store_get_copy() makes, or in the map
 * (valid until txn writes) when buf is NULL.  0, MDB_NOTFOUND,
 * MDB_CORRUPTED for a value that does not decode or is too long, or an
 * LMDB error.
 */
int loyalty_store_get_rec(MDB_txn *txn, loyalty_store_t *st,
    const loyalty_store_rec_t *rec, const void *key, size_t klen,
    uint8_t *buf, void *out);
/*
 * Writes in, a record of kind rec, under key: encoded into buf (rec->max
 * bytes) first, so that its strings may point into the map.  0 or an
 * LMDB error.
 */
int loyalty_store_put_rec(MDB_txn *txn, loyalty_store_t *st,
    const loyalty_store_rec_t *rec, const void *key, size_t klen,
    const void *in, uint8_t *buf);

/*
 * The members a transaction changed, for the workers' member caches (see
 * schema/lmdb-layout.md, "changes").  loyalty_changes_note() records one
 * member written in txn; loyalty_changes_seal() then says that every
 * member write of txn was noted, and drops the notes of transactions
 * older than the last LOYALTY_CHANGES_KEEP.  Only a caller that writes
 * nothing else the member cache keeps (tiers, a member not noted) in the
 * same transaction may seal it.  Both do nothing in a store without the
 * database.
 */
#define LOYALTY_CHANGES_KEEP        64

int loyalty_changes_note(loyalty_store_t *st, MDB_txn *txn, const char *id,
    size_t len);
int loyalty_changes_seal(loyalty_store_t *st, MDB_txn *txn);
/*
 * Removes the notes that name a member (an erasure keeps no id); the
 * transaction that does so, unsealed, retires every cached member.
 */
int loyalty_changes_forget(loyalty_store_t *st, MDB_txn *txn,
    const char *id, size_t len);

#endif /* _LOYALTY_STORE_H_INCLUDED_ */
