/*
 * nginx-loyalty: single-record operations of the admin API, shared with
 * loyaltyctl import so that both check a record the same way: members
 * need tiers in the store, prices keep the privilege guard, codes need
 * their member and an allowed host.
 *
 * Returns follow the store's: 0; -1 with err for invalid input;
 * LOYALTY_ADMIN_CONFLICT with err for a record that conflicts with the
 * store (a referrer loop); any other value is an LMDB error
 * (mdb_strerror).
 */

#ifndef _LOYALTY_ADMIN_H_INCLUDED_
#define _LOYALTY_ADMIN_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include <lmdb.h>

#include "loyalty_code.h"
#include "loyalty_price.h"
#include "loyalty_record.h"
#include "loyalty_store.h"


#define LOYALTY_ADMIN_CONFLICT      (-2)

/* a checked record, ready to write; see loyalty_admin_prepare() */
typedef struct {
    int                 db;             /* LOYALTY_DB_MEMBERS, _PRICES,
                                           _CODES */
    char                key[LOYALTY_ID_MAX];
    size_t              key_len;
    size_t              val_len;
    int64_t             now;
    char                warning[LOYALTY_ERRLEN];    /* "": none */
    loyalty_member_t    m;              /* members: tier and referrer
                                           point into the JSON */
    union {
        uint8_t         member[LOYALTY_MEMBER_MAX];
        uint8_t         price[LOYALTY_PRICE_REC_MAX];
        uint8_t         code[LOYALTY_CODE_REC_MAX];
    } val;
} loyalty_admin_rec_t;


/* the member as JSON (schema/member.schema.json); NULL when absent */
json_t *loyalty_admin_get_member(loyalty_store_t *st, MDB_txn *txn,
    const char *id, size_t len);

/*
 * Creates or replaces one record: kind "member", "code", "price" or
 * "rules".  key is the id in the URL (the code, any case; the SKU); the
 * body's id must equal it or be absent, and is then filled in.  For
 * "rules" key is not used.  On success err holds a warning, or "".  A
 * member's points are its balance: the difference from its ledger is
 * written there as an "adjust" entry.
 */
int loyalty_admin_put(loyalty_store_t *st, MDB_txn *txn, const char *kind,
    const char *key, size_t key_len, json_t *body, const char *const *hosts,
    const size_t *host_lens, size_t nhosts, int64_t now, char *err,
    size_t errlen);

/*
 * Deletes a member: 0, MDB_NOTFOUND, or an LMDB error.  With the member
 * go its ledger entries, its share codes and their click counts, its
 * touches and their due entries, and the referrals index on both sides;
 * the members it referred no longer have a referrer.  A member made
 * again under this id inherits nothing.  The events database keeps the
 * events applied (so that a replay stays a duplicate).
 */
int loyalty_admin_delete_member(loyalty_store_t *st, MDB_txn *txn,
    const char *id, size_t len);

/*
 * Parts of a deletion, for an erasure too: the referrals index of the
 * members id referred, and their referrer; the touches of id and their
 * due entries.  0 or an LMDB error.
 */
int loyalty_admin_forget_downline(loyalty_store_t *st, MDB_txn *txn,
    const char *id, size_t len);
int loyalty_admin_forget_touches(loyalty_store_t *st, MDB_txn *txn,
    const char *id, size_t len);

/*
 * {"member":ID,"level1":[{"id","stage"}],"level2":[{"id","stage","via"}]}
 * (schema/referrals.schema.json); NULL when the member is absent.
 */
json_t *loyalty_admin_referrals(loyalty_store_t *st, MDB_txn *txn,
    const char *id, size_t len);

/*
 * {"member","balance","entries":[{"delta","reason","event","at"}]},
 * the last limit entries (0: all), oldest first
 * (schema/ledger.schema.json); NULL when the member is absent.
 */
json_t *loyalty_admin_ledger(loyalty_store_t *st, MDB_txn *txn,
    const char *id, size_t len, size_t limit);

/*
 * Checks obj as a record for db and encodes it into rec, without
 * writing: members need their tier in the store, price overrides tiers
 * in ts and the privilege guard, codes their member in the store and a
 * target host among hosts.  -1 with err, or an LMDB error.
 */
int loyalty_admin_prepare(loyalty_store_t *st, MDB_txn *txn, int db,
    json_t *obj, const loyalty_tierset_t *ts, const char *const *hosts,
    const size_t *host_lens, size_t nhosts, int64_t now,
    loyalty_admin_rec_t *rec, char *err, size_t errlen);

/*
 * Writes a prepared record, with MDB_APPEND first when append is set (a
 * key above every other), and keeps a member's ledger and referrals
 * index in step with it.
 */
int loyalty_admin_write(loyalty_store_t *st, MDB_txn *txn,
    loyalty_admin_rec_t *rec, int append);


#endif /* _LOYALTY_ADMIN_H_INCLUDED_ */
