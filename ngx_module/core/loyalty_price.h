/*
 * nginx-loyalty: tier prices and the privilege guard.
 *
 * A tier's price is its override, else retail less the tier's discount
 * rounded half up to the minor unit.  The guard: no tier pays more than
 * retail, and no tier pays more than any tier of a lower rank.
 */

#ifndef _LOYALTY_PRICE_H_INCLUDED_
#define _LOYALTY_PRICE_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>
#include <lmdb.h>

#include "loyalty_record.h"


#define LOYALTY_TIERS_MAX   64


typedef struct {
    const char      *name;
    size_t           name_len;
    const char      *label;
    size_t           label_len;
    int32_t          rank;
    uint16_t         discount_bp;
} loyalty_tier_ref_t;


/* every tier of the store; names and labels point into the transaction */
typedef struct {
    loyalty_tier_ref_t  tiers[LOYALTY_TIERS_MAX];
    size_t              n;
} loyalty_tierset_t;


/* 0, MDB_CORRUPTED for a record that does not decode, or an LMDB error;
 * more than LOYALTY_TIERS_MAX tiers is MDB_CORRUPTED too */
int loyalty_tierset_load(MDB_txn *txn, MDB_dbi dbi, loyalty_tierset_t *ts);
/* the index of the named tier, or -1 */
int loyalty_tierset_find(const loyalty_tierset_t *ts, const char *name,
    size_t len);

int64_t loyalty_price_raw(const loyalty_price_t *p,
    const loyalty_tier_ref_t *t);

/*
 * The price tier i may be charged, given a proposed price: at most retail
 * and at most the price of every lower-ranked tier.  *clamped tells
 * whether the guard lowered it.
 */
int64_t loyalty_price_guard(const loyalty_price_t *p,
    const loyalty_tierset_t *ts, size_t i, int64_t price, int *clamped);

/* 0 when every tier's price keeps the guard, else -1 naming the tiers */
int loyalty_price_check(const loyalty_price_t *p,
    const loyalty_tierset_t *ts, char *err, size_t errlen);


#endif /* _LOYALTY_PRICE_H_INCLUDED_ */
