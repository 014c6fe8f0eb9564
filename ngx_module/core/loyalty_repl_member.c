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
loyalty_repl_patch(loyalty_repl_run_t *r)
{
    int  rc;

    rc = loyalty_member_patch(r->st, r->txn, r->m.key.data, r->m.key.len,
                              r->m.fields, r->m.at, r->err, r->errlen);

    if (rc == MDB_NOTFOUND) {
        return loyalty_repl_refuse(r, "patch: no such member");
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
loyalty_repl_erase(loyalty_repl_run_t *r)
{
    int          rc;
    size_t       hlen;
    uint8_t      k[LOYALTY_ERASE_KEY_LEN];
    const char  *hex;

    hex = json_string_value(r->m.erase_key);
    hlen = json_string_length(r->m.erase_key);

    if (r->m.erase_key != NULL
        && (hex == NULL || hlen != 2 * LOYALTY_ERASE_KEY_LEN
            || loyalty_hex_decode(hex, hlen, k, sizeof(k))
               != LOYALTY_ERASE_KEY_LEN))
    {
        return LOYALTY_REPL_MALFORMED;
    }

    rc = loyalty_member_erase_as(r->st, r->txn, r->m.key.data, r->m.key.len,
                                 r->m.pseudonym.data, hex ? k : NULL);

    if (rc == MDB_NOTFOUND) {
        return loyalty_repl_refuse(r, "erase: no such member");
    }

    if (rc == -1) {
        return loyalty_repl_refuse(r, "erase: not a pseudonym");
    }

    return rc;
}


/*
 * "before": loyaltyctl prune --nats, the events and acknowledged touches
 * of before that time deleted, the whole prune in the follower's
 * transaction (as a sweep is): every replica deletes the same records
 */
int
loyalty_repl_prune(loyalty_repl_run_t *r)
{
    int              rc;
    loyalty_prune_t  pr;

    if (!loyalty_time_in_window(r->m.before)) {
        return LOYALTY_REPL_MALFORMED;
    }

    memset(&pr, 0, sizeof(pr));

    do {
        rc = loyalty_prune_step(r->st, r->txn, r->m.before,
                                LOYALTY_PRUNE_CHUNK, &pr);
        if (rc != 0) {
            return rc;
        }

    } while (!pr.done);

    return 0;
}
