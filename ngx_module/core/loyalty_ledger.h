/*
 * nginx-loyalty: the points ledger, every change to a member's points
 * with its reason and the event that made it; keys are in order per
 * member, oldest first (schema/lmdb-layout.md).
 */

#ifndef _LOYALTY_LEDGER_H_INCLUDED_
#define _LOYALTY_LEDGER_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>
#include <lmdb.h>

#include "loyalty_store.h"
#include "loyalty_util.h"


#define LOYALTY_LEDGER_VERSION      1
#define LOYALTY_LEDGER_FIXED        24
#define LOYALTY_LEDGER_REC_MAX      (LOYALTY_LEDGER_FIXED + LOYALTY_ID_MAX)
/* member id, a zero byte, an 8-byte big-endian sequence */
#define LOYALTY_LEDGER_KEY_MAX      (LOYALTY_ID_MAX + 9)


typedef enum {
    LOYALTY_LEDGER_ORDER = 1,
    LOYALTY_LEDGER_REFUND,
    LOYALTY_LEDGER_ACTION,
    LOYALTY_LEDGER_REFERRAL_L1,
    LOYALTY_LEDGER_REFERRAL_L2,
    LOYALTY_LEDGER_ADJUST,
    LOYALTY_LEDGER_CADENCE,
    LOYALTY_LEDGER_REASONS
} loyalty_ledger_reason_e;


/* one entry of the ledger; event points into the decoded buffer */
typedef struct {
    uint8_t             reason;         /* loyalty_ledger_reason_e */
    uint8_t             event_len;      /* 0: none (adjust) */
    int64_t             delta;
    int64_t             at;
    const char         *event;
} loyalty_ledger_entry_t;


/* by reason; [0] is NULL */
extern const char  *loyalty_ledger_reasons[LOYALTY_LEDGER_REASONS];


size_t loyalty_ledger_key(const char *id, size_t len, uint64_t seq,
    uint8_t *key);
size_t loyalty_ledger_encode(const loyalty_ledger_entry_t *e, uint8_t *buf);
int loyalty_ledger_decode(const uint8_t *buf, size_t len,
    loyalty_ledger_entry_t *e);
/* appends an entry after the member's last: 0 or an LMDB error */
int loyalty_ledger_append(loyalty_store_t *st, MDB_txn *txn, const char *id,
    size_t len, const loyalty_ledger_entry_t *e);
/*
 * The sum and count of a member's entries: 0, MDB_CORRUPTED for an entry
 * that does not decode, or an LMDB error.
 */
int loyalty_ledger_sum(loyalty_store_t *st, MDB_txn *txn, const char *id,
    size_t len, int64_t *sum, size_t *n);


#endif /* _LOYALTY_LEDGER_H_INCLUDED_ */
