/*
 * nginx-loyalty: the referrals index (who a referrer brought in) and the
 * chain of referrers that must never loop.
 */

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "loyalty_member.h"
#include "loyalty_referral.h"


size_t
loyalty_referral_key(const char *referrer, size_t rlen, const char *member,
    size_t mlen, uint8_t *key)
{
    memcpy(key, referrer, rlen);
    key[rlen] = '\0';
    memcpy(key + rlen + 1, member, mlen);

    return rlen + 1 + mlen;
}


int
loyalty_referral_put(loyalty_store_t *st, MDB_txn *txn, const char *referrer,
    size_t rlen, const char *member, size_t mlen, int64_t at)
{
    uint8_t  kbuf[LOYALTY_REFERRAL_KEY_MAX], vbuf[LOYALTY_REFERRAL_REC_LEN];
    MDB_val  key, val;

    memset(vbuf, 0, sizeof(vbuf));
    vbuf[0] = LOYALTY_REFERRAL_VERSION;
    loyalty_le_put(vbuf + 8, (uint64_t) at, 8);

    key.mv_data = kbuf;
    key.mv_size = loyalty_referral_key(referrer, rlen, member, mlen, kbuf);
    val.mv_data = vbuf;
    val.mv_size = sizeof(vbuf);

    return mdb_put(txn, st->dbi[LOYALTY_DB_REFERRALS], &key, &val, 0);
}


int
loyalty_referral_delete(loyalty_store_t *st, MDB_txn *txn,
    const char *referrer, size_t rlen, const char *member, size_t mlen)
{
    int      rc;
    uint8_t  kbuf[LOYALTY_REFERRAL_KEY_MAX];
    MDB_val  key;

    key.mv_data = kbuf;
    key.mv_size = loyalty_referral_key(referrer, rlen, member, mlen, kbuf);

    rc = mdb_del(txn, st->dbi[LOYALTY_DB_REFERRALS], &key, NULL);

    return rc == MDB_NOTFOUND ? 0 : rc;
}


int
loyalty_referral_walk(loyalty_store_t *st, MDB_txn *txn,
    const char *referrer, size_t rlen, loyalty_walk_pt visit, void *data)
{
    uint8_t  prefix[LOYALTY_ID_MAX + 1];

    if (rlen > LOYALTY_ID_MAX) {
        return EINVAL;
    }

    memcpy(prefix, referrer, rlen);
    prefix[rlen] = '\0';

    return loyalty_walk(st, txn, LOYALTY_DB_REFERRALS, prefix, rlen + 1,
                        rlen + 1, visit, data);
}


int
loyalty_referral_member(const MDB_val *key, size_t rlen,
    const char **member, size_t *mlen)
{
    if (key->mv_size <= rlen + 1) {
        return -1;
    }

    *member = (const char *) key->mv_data + rlen + 1;
    *mlen = key->mv_size - rlen - 1;

    return 0;
}


int
loyalty_referrer_loop(loyalty_store_t *st, MDB_txn *txn, const char *member,
    size_t mlen, const char *referrer, size_t rlen, char *err,
    size_t errlen)
{
    int               rc;
    char              cur[LOYALTY_ID_MAX];
    size_t            hops, len, n;
    loyalty_member_t  m;

    n = (size_t) snprintf(err, errlen, "referrer \"%.*s\" would make a "
                          "loop: %.*s", (int) rlen, referrer, (int) mlen,
                          member);
    len = rlen;
    memcpy(cur, referrer, len);

    for (hops = 0; /* void */; hops++) {

        /* the path so far, as long as it fits */
        if (n < errlen) {
            n += (size_t) snprintf(err + n, errlen - n, " -> %.*s",
                                   (int) len, cur);
        }

        if (len == mlen && memcmp(cur, member, mlen) == 0) {
            return -1;
        }

        if (hops == LOYALTY_REFERRER_CHAIN_MAX) {
            snprintf(err, errlen, "the referrer chain from \"%.*s\" is "
                     "longer than %d members, or loops",
                     (int) rlen, referrer, LOYALTY_REFERRER_CHAIN_MAX);
            return -1;
        }

        rc = loyalty_member_get(txn, st, cur, len, &m);
        if (rc == MDB_NOTFOUND) {
            break;
        }

        if (rc == MDB_CORRUPTED) {
            snprintf(err, errlen, "member \"%.*s\" does not decode",
                     (int) len, cur);
        }

        if (rc != 0) {
            return rc;
        }

        if (m.referrer_len == 0) {
            break;
        }

        len = m.referrer_len;
        memcpy(cur, m.referrer, len);
    }

    err[0] = '\0';

    return 0;
}
