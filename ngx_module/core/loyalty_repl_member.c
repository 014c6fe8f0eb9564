/*
 * nginx-loyalty: the replicated writes of members' data and retention
 * (see loyalty_repl.h): a member's PATCH, an erasure under the edge's
 * pseudonym, and a prune, each applied by the core function the local
 * write calls, so that every replica makes the same write.
 */

#include <string.h>

#include "loyalty_admin.h"
#include "loyalty_member_data.h"
#include "loyalty_prune.h"
#include "loyalty_repl.h"
#include "loyalty_util.h"


/* "key" and "fields": PATCH .../members/ID's changes */
int
loyalty_repl_patch(loyalty_store_t *st, MDB_txn *txn,
    const loyalty_repl_ctx_t *ctx, json_t *msg, int64_t at, char *err,
    size_t errlen)
{
    int          rc;
    size_t       klen;
    json_t      *fields;
    const char  *key;

    klen = 0;
    key = loyalty_repl_string(msg, "key", &klen);
    fields = json_object_get(msg, "fields");

    if (key == NULL || !json_is_object(fields)) {
        return loyalty_repl_refuse(err, errlen, "patch: needs a \"key\" and "
                                   "an object \"fields\"");
    }

    rc = loyalty_member_patch(st, txn, key, klen, fields, at, err, errlen);

    if (rc == MDB_NOTFOUND) {
        return loyalty_repl_refuse(err, errlen, "patch: no such member");
    }

    return (rc == -1 || rc == LOYALTY_ADMIN_CONFLICT) ? LOYALTY_REPL_REFUSED
                                                     : rc;
}


/*
 * "key" and "pseudonym", computed on the edge, so that every replica
 * names the erased member alike whatever key it holds; "erase_key" (hex)
 * when the edge made the store's first key for it, which every replica
 * then keeps (the first one it gets), so that later erasures on any edge
 * compute the same pseudonyms.
 */
int
loyalty_repl_erase(loyalty_store_t *st, MDB_txn *txn,
    const loyalty_repl_ctx_t *ctx, json_t *msg, int64_t at, char *err,
    size_t errlen)
{
    int          rc;
    size_t       klen, hlen;
    uint8_t      k[LOYALTY_ERASE_KEY_LEN];
    const char  *key, *p, *hex;

    klen = 0;
    hlen = 0;

    key = loyalty_repl_string(msg, "key", &klen);
    p = loyalty_repl_string(msg, "pseudonym", NULL);
    hex = loyalty_repl_string(msg, "erase_key", &hlen);

    if (key == NULL || p == NULL
        || (json_object_get(msg, "erase_key") != NULL
            && (hex == NULL || hlen != 2 * LOYALTY_ERASE_KEY_LEN
                || loyalty_hex_decode(hex, hlen, k, sizeof(k))
                   != LOYALTY_ERASE_KEY_LEN)))
    {
        return loyalty_repl_refuse(err, errlen, "erase: needs a \"key\", a "
                                   "\"pseudonym\" and, if any, an "
                                   "\"erase_key\" of 64 hex digits");
    }

    rc = loyalty_member_erase_as(st, txn, key, klen, p, hex ? k : NULL);

    if (rc == MDB_NOTFOUND) {
        return loyalty_repl_refuse(err, errlen, "erase: no such member");
    }

    if (rc == -1) {
        return loyalty_repl_refuse(err, errlen, "erase: not a pseudonym");
    }

    return rc;
}


/*
 * "before": loyaltyctl prune --nats, the events and acknowledged touches
 * of before that time deleted, the whole prune in the follower's
 * transaction (as a sweep is): every replica deletes the same records
 */
int
loyalty_repl_prune(loyalty_store_t *st, MDB_txn *txn,
    const loyalty_repl_ctx_t *ctx, json_t *msg, int64_t at, char *err,
    size_t errlen)
{
    int               rc;
    json_t           *before;
    loyalty_prune_t   pr;

    before = json_object_get(msg, "before");

    if (!json_is_integer(before)
        || !loyalty_time_in_window(json_integer_value(before)))
    {
        return loyalty_repl_refuse(err, errlen, "prune: needs an integer "
                                   "\"before\", a time");
    }

    memset(&pr, 0, sizeof(pr));

    do {
        rc = loyalty_prune_step(st, txn, json_integer_value(before),
                                LOYALTY_PRUNE_CHUNK, &pr);
        if (rc != 0) {
            return rc;
        }

    } while (!pr.done);

    return 0;
}
