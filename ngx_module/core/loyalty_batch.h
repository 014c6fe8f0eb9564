/*
 * nginx-loyalty: batches of events, a JSON array or JSON Lines.
 *
 * A batch is applied in the caller's write transaction, all or nothing:
 * every event is checked, and effects that depend on the store (an
 * unknown member, an unknown order, a refund of more than was paid) are
 * found by applying the batch in a nested transaction that is committed
 * into the caller's only when every event was good.
 */

#ifndef _LOYALTY_BATCH_H_INCLUDED_
#define _LOYALTY_BATCH_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include <lmdb.h>

#include "loyalty_apply.h"
#include "loyalty_events.h"
#include "loyalty_store.h"


#define LOYALTY_BATCH_INVALID       (-1)
#define LOYALTY_BATCH_TOO_MANY      (-2)
/* as invalid, but every bad event reuses an id with other data */
#define LOYALTY_BATCH_CONFLICT      (-3)


typedef struct {
    size_t              events;
    size_t              applied;
    size_t              duplicates;
    size_t              conflicts;      /* errors that are conflicts */
    json_t             *errors;         /* [{"index":N,"error":"...",
                                            "conflict":{...}}] */
} loyalty_batch_t;


/*
 * Applies a body of events: a JSON array, or JSON Lines when its first
 * non-blank byte is not "[".  Every event is checked and, if all are
 * good, the batch is applied in order in txn; the caller commits.
 * Returns 0; LOYALTY_BATCH_INVALID with res->errors listing every bad
 * event (nothing applied); LOYALTY_BATCH_CONFLICT likewise when every
 * bad event is an id applied before with other data (an order_id with
 * another member or amount, a refund_id with another order or amount, an
 * action id with another member or kind: the error's "conflict" names
 * the field, the stored value and the given one); an exact replay is a
 * duplicate and no error; LOYALTY_BATCH_TOO_MANY for more than
 * max_events; or an LMDB error (> 0), err saying where.  res is filled
 * in every case and released with loyalty_batch_free().  hook, when not
 * NULL, is asked about every order and action, and its cadences are
 * scheduled from orders in the same transaction.
 */
int loyalty_batch_apply(loyalty_store_t *st, MDB_txn *txn, const char *body,
    size_t len, size_t max_events, int64_t now,
    const loyalty_event_hook_t *hook, loyalty_batch_t *res, char *err,
    size_t errlen);
void loyalty_batch_free(loyalty_batch_t *res);



#endif /* _LOYALTY_BATCH_H_INCLUDED_ */
