/*
 * nginx-loyalty: a member's data under their control, for the admin API
 * and loyaltyctl alike: a partial update, an erasure that keeps the
 * shop's accounting true under a pseudonym, and an export of everything
 * the store holds about a member (schema/member-export.schema.json).
 *
 * Returns follow loyalty_admin.h: 0; -1 with err for invalid input;
 * LOYALTY_ADMIN_CONFLICT with err (a referrer loop); MDB_NOTFOUND for an
 * unknown member; any other value is an LMDB error.
 */

#ifndef _LOYALTY_MEMBER_DATA_H_INCLUDED_
#define _LOYALTY_MEMBER_DATA_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <jansson.h>
#include <lmdb.h>

#include "loyalty_store.h"
#include "loyalty_util.h"


/* "erased-" and 24 hex digits */
#define LOYALTY_PSEUDONYM_PREFIX    "erased-"
#define LOYALTY_PSEUDONYM_LEN       31
/* meta: the key of the pseudonyms, 32 random bytes made at the first */
#define LOYALTY_META_ERASE_KEY      "erase_key"
#define LOYALTY_ERASE_KEY_LEN       32


/* whether the string s of n bytes is the id */
static inline int
loyalty_member_named(const char *s, size_t n, const char *id, size_t len)
{
    return n == len && memcmp(s, id, len) == 0;
}


/*
 * The JSON type a member's field takes (JSON_STRING, JSON_INTEGER, or
 * JSON_TRUE for a boolean), and in *clearable whether null removes it;
 * -1 for a name that is no field a change may name ("id" is none).
 */
int loyalty_member_field(const char *name, int *clearable);

/*
 * Changes the fields patch names, and only those, of member id: each a
 * value of the field's type, or null to remove an optional string field.
 * The member then passes every check of a PUT, and the ledger and the
 * referrals index follow it as they do for a PUT.
 */
int loyalty_member_patch(loyalty_store_t *st, MDB_txn *txn, const char *id,
    size_t len, json_t *patch, int64_t now, char *err, size_t errlen);

/*
 * Erases member id: what identifies them goes, what the shop's
 * accounting needs stays under the pseudonym written into pseudonym
 * (LOYALTY_PSEUDONYM_LEN + 1 bytes).  The record moves to the pseudonym,
 * blocked, without birthday, joined_at or referrer; the ledger moves with
 * it; events name the pseudonym instead; share codes are revoked and name
 * it (their click counts stay); touches and their due entries go, and so
 * does the referrer of every member id referred.
 */
int loyalty_member_erase(loyalty_store_t *st, MDB_txn *txn, const char *id,
    size_t len, char *pseudonym);

/*
 * The erasure under a pseudonym given (NUL-terminated), as a cluster's
 * replica applies an edge's: the same on every replica, whatever key the
 * replica holds.  key, if not NULL, is the key the edge made for the
 * erasure (LOYALTY_ERASE_KEY_LEN bytes), kept unless the store has one.
 * -1 for a pseudonym of the wrong form.
 */
int loyalty_member_erase_as(loyalty_store_t *st, MDB_txn *txn,
    const char *id, size_t len, const char *pseudonym, const uint8_t *key);

/*
 * The store's pseudonym key (LOYALTY_ERASE_KEY_LEN bytes) into key;
 * with make, made (random) when the store has none, else MDB_NOTFOUND.
 */
int loyalty_member_erase_key(loyalty_store_t *st, MDB_txn *txn,
    uint8_t *key, int make);

/* everything the store holds about member id, as JSON; NULL with *rc */
json_t *loyalty_member_export(loyalty_store_t *st, MDB_txn *txn,
    const char *id, size_t len, int *rc);


#endif /* _LOYALTY_MEMBER_DATA_H_INCLUDED_ */
