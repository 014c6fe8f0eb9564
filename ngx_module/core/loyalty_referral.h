/*
 * nginx-loyalty: the referrals index, a referrer's referred members in
 * order (schema/lmdb-layout.md), and the chain of referrers, which must
 * never loop.
 */

#ifndef _LOYALTY_REFERRAL_H_INCLUDED_
#define _LOYALTY_REFERRAL_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>
#include <lmdb.h>

#include "loyalty_store.h"
#include "loyalty_util.h"
#include "loyalty_walk.h"


#define LOYALTY_REFERRAL_VERSION    1
#define LOYALTY_REFERRAL_REC_LEN    16
/* referrer id, a zero byte, member id */
#define LOYALTY_REFERRAL_KEY_MAX    (2 * LOYALTY_ID_MAX + 1)
/* the longest chain of referrers followed to find a loop */
#define LOYALTY_REFERRER_CHAIN_MAX  10000


size_t loyalty_referral_key(const char *referrer, size_t rlen,
    const char *member, size_t mlen, uint8_t *key);
/* records that member was referred by referrer at the time at */
int loyalty_referral_put(loyalty_store_t *st, MDB_txn *txn,
    const char *referrer, size_t rlen, const char *member, size_t mlen,
    int64_t at);
int loyalty_referral_delete(loyalty_store_t *st, MDB_txn *txn,
    const char *referrer, size_t rlen, const char *member, size_t mlen);
/*
 * Walks the referrals of referrer, its keys "REFERRER\0MEMBER" in order;
 * loyalty_referral_member() tells the visitor whom each names.
 */
int loyalty_referral_walk(loyalty_store_t *st, MDB_txn *txn,
    const char *referrer, size_t rlen, loyalty_walk_pt visit, void *data);
/*
 * The member a referrals key of a referrer of rlen bytes names, pointing
 * into the key: 0, or -1 when the key holds no member after the referrer.
 */
int loyalty_referral_member(const MDB_val *key, size_t rlen,
    const char **member, size_t *mlen);

/*
 * Whether referrer, as member's referrer, would close a loop: the chain
 * of referrers from referrer, walked for at most LOYALTY_REFERRER_CHAIN_MAX
 * members, reaches member.  0 when it does not (it ends, or at a member
 * not in the store); -1 with err naming the loop ("A -> B -> A") or a
 * chain too long to follow; or an LMDB error.
 */
int loyalty_referrer_loop(loyalty_store_t *st, MDB_txn *txn,
    const char *member, size_t mlen, const char *referrer, size_t rlen,
    char *err, size_t errlen);


#endif /* _LOYALTY_REFERRAL_H_INCLUDED_ */
