/*
 * nginx-loyalty: the referrals index (who a referrer brought in) and the
 * chain of referrers that must never loop.
 */

#include <stdio.h>
#include <string.h>

#include "loyalty_record.h"
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
loyalty_referrer_loop(loyalty_store_t *st, MDB_txn *txn, const char *member,
    size_t mlen, const char *referrer, size_t rlen, char *err,
    size_t errlen)
{
    int               rc;
    char              cur[LOYALTY_ID_MAX];
    size_t            hops, len, n;
    MDB_val           key, val;
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

        key.mv_data = cur;
        key.mv_size = len;

        rc = mdb_get(txn, st->dbi[LOYALTY_DB_MEMBERS], &key, &val);
        if (rc == MDB_NOTFOUND) {
            break;
        }

        if (rc != 0) {
            return rc;
        }

        if (loyalty_member_decode(val.mv_data, val.mv_size, &m) != 0) {
            snprintf(err, errlen, "member \"%.*s\" does not decode",
                     (int) len, cur);
            return MDB_CORRUPTED;
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
