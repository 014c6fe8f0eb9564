/*
 * nginx-loyalty: retention.  Events and acknowledged touches older than
 * an age are deleted, a bounded number looked at in each transaction, so
 * that a prune of a large store never holds LMDB's writer lock for long.
 */

#ifndef _LOYALTY_PRUNE_H_INCLUDED_
#define _LOYALTY_PRUNE_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>
#include <lmdb.h>

#include "loyalty_due.h"
#include "loyalty_store.h"


/* records looked at in one transaction */
#define LOYALTY_PRUNE_CHUNK     1000


/* where a prune stands: zeroed before the first step */
typedef struct {
    unsigned    stage;          /* 0 events, 1 touches, 2 done */
    uint8_t     after[LOYALTY_TOUCH_ID_MAX];
    size_t      after_len;      /* the last key looked at; 0: none */
    uint64_t    events;         /* deleted so far */
    uint64_t    touches;
    unsigned    done:1;
} loyalty_prune_t;


/*
 * One step: looks at up to max records after pr->after, deleting the
 * events that happened before cutoff and the acknowledged touches that
 * were due before it (a pending touch stays, in the due queue).  0 or an
 * LMDB error; pr->done once every record was looked at.
 */
int loyalty_prune_step(loyalty_store_t *st, MDB_txn *txn, int64_t cutoff,
    size_t max, loyalty_prune_t *pr);


#endif /* _LOYALTY_PRUNE_H_INCLUDED_ */
