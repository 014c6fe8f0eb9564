/*
 * nginx-loyalty: deleting a member and everything that names them: the
 * referrals both ways, the ledger, their share codes and click counts,
 * their touches and what is due of them.
 */

#include <string.h>

#include "loyalty_admin.h"
#include "loyalty_due.h"
#include "loyalty_member.h"
#include "loyalty_referral.h"
#include "loyalty_stats.h"


/* the member mid no longer has a referrer: their referrer is deleted */
static int
loyalty_admin_unrefer(loyalty_store_t *st, MDB_txn *txn, const char *mid,
    size_t mlen)
{
    int               rc;
    char              id[LOYALTY_ID_MAX];
    uint8_t           buf[LOYALTY_MEMBER_MAX], out[LOYALTY_MEMBER_MAX];
    MDB_val           key, val;
    loyalty_member_t  m;

    if (mlen > sizeof(id)) {
        return 0;
    }

    /* copied: the key is on a page the writes below may change */
    memcpy(id, mid, mlen);
    key.mv_data = id;
    key.mv_size = mlen;

    rc = loyalty_member_get_copy(txn, st, id, mlen, buf, &m);
    if (rc != 0) {
        return rc == MDB_NOTFOUND ? 0 : rc;
    }

    m.referrer_len = 0;

    val.mv_data = out;
    val.mv_size = loyalty_member_encode(&m, out);

    return mdb_put(txn, st->dbi[LOYALTY_DB_MEMBERS], &key, &val, 0);
}


/*
 * deletes every referrals key that starts with prefix and a zero byte,
 * and the referrer of each member it names
 */
int
loyalty_admin_forget_downline(loyalty_store_t *st, MDB_txn *txn,
    const char *id, size_t len)
{
    int          rc;
    char         mid[LOYALTY_ID_MAX];
    size_t       mlen;
    uint8_t      buf[LOYALTY_ID_MAX + 1];
    MDB_val      key, val;
    MDB_cursor  *cur;

    rc = mdb_cursor_open(txn, st->dbi[LOYALTY_DB_REFERRALS], &cur);
    if (rc != 0) {
        return rc;
    }

    memcpy(buf, id, len);
    buf[len] = '\0';

    /* each search starts afresh: a delete leaves the cursor in between */
    for ( ;; ) {
        key.mv_data = buf;
        key.mv_size = len + 1;

        rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);

        if (rc != 0 || key.mv_size <= len + 1
            || memcmp(key.mv_data, buf, len + 1) != 0)
        {
            break;
        }

        mlen = key.mv_size - len - 1;
        if (mlen > sizeof(mid)) {
            mlen = sizeof(mid);
        }

        memcpy(mid, (uint8_t *) key.mv_data + len + 1, mlen);

        rc = mdb_cursor_del(cur, 0);

        if (rc == 0) {
            rc = loyalty_admin_unrefer(st, txn, mid, mlen);
        }

        if (rc != 0) {
            break;
        }
    }

    mdb_cursor_close(cur);

    return rc == MDB_NOTFOUND ? 0 : rc;
}


/* deletes every key of db that starts with prefix */
static int
loyalty_admin_forget_prefix(loyalty_store_t *st, MDB_txn *txn, int db,
    const uint8_t *prefix, size_t len)
{
    int          rc;
    MDB_val      key, val;
    MDB_cursor  *cur;

    rc = mdb_cursor_open(txn, st->dbi[db], &cur);
    if (rc != 0) {
        return rc;
    }

    for ( ;; ) {
        key.mv_data = (void *) prefix;
        key.mv_size = len;

        rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);

        if (rc != 0 || key.mv_size < len
            || memcmp(key.mv_data, prefix, len) != 0)
        {
            break;
        }

        rc = mdb_cursor_del(cur, 0);
        if (rc != 0) {
            break;
        }
    }

    mdb_cursor_close(cur);

    return rc == MDB_NOTFOUND ? 0 : rc;
}


/* the member's share codes and their click counts: one pass over codes */
static int
loyalty_admin_forget_codes(loyalty_store_t *st, MDB_txn *txn,
    const char *id, size_t len)
{
    int              rc;
    uint8_t          code[LOYALTY_CODE_MAX + 1];
    size_t           clen;
    MDB_val          key, val;
    MDB_cursor      *cur;
    MDB_cursor_op    op;
    loyalty_code_t   c;

    rc = mdb_cursor_open(txn, st->dbi[LOYALTY_DB_CODES], &cur);
    if (rc != 0) {
        return rc;
    }

    op = MDB_FIRST;

    for ( ;; ) {
        rc = mdb_cursor_get(cur, &key, &val, op);
        if (rc != 0) {
            break;
        }

        op = MDB_NEXT;

        if (key.mv_size > LOYALTY_CODE_MAX
            || loyalty_code_decode(val.mv_data, val.mv_size, &c) != 0
            || c.member_len != len || memcmp(c.member, id, len) != 0)
        {
            continue;
        }

        clen = key.mv_size;
        memcpy(code, key.mv_data, clen);
        code[clen] = '\0';

        rc = mdb_cursor_del(cur, 0);

        /* the clicks key: the code, a zero byte, the day */
        if (rc == 0) {
            rc = loyalty_admin_forget_prefix(st, txn, LOYALTY_DB_CLICKS,
                                             code, clen + 1);
        }

        if (rc != 0) {
            break;
        }

        /* on from the first code after the deleted one */
        key.mv_data = code;
        key.mv_size = clen;
        op = MDB_SET_RANGE;
    }

    mdb_cursor_close(cur);

    return rc == MDB_NOTFOUND ? 0 : rc;
}
/* a touch of the member and its due entry, if pending */
static int
loyalty_admin_forget_touch(loyalty_store_t *st, MDB_txn *txn,
    MDB_cursor *cur, MDB_val *key, MDB_val *val)
{
    int              rc;
    char             id[LOYALTY_TOUCH_ID_MAX];
    size_t           len;
    uint8_t          dkey[LOYALTY_DUE_KEY_MAX];
    MDB_val          due;
    loyalty_touch_t  t;

    len = key->mv_size;

    if (len <= sizeof(id)
        && loyalty_touch_decode(val->mv_data, val->mv_size, &t) == 0)
    {
        memcpy(id, key->mv_data, len);

        due.mv_data = dkey;
        due.mv_size = loyalty_due_key(t.due_at, id, len, dkey);

        rc = mdb_del(txn, st->dbi[LOYALTY_DB_DUE], &due, NULL);
        if (rc != 0 && rc != MDB_NOTFOUND) {
            return rc;
        }
    }

    return mdb_cursor_del(cur, 0);
}


/*
 * The member's touches, "CADENCE:ID:PERIOD", and their due entries: a
 * range per cadence, the next cadence found by seeking past "CADENCE:".
 */
int
loyalty_admin_forget_touches(loyalty_store_t *st, MDB_txn *txn,
    const char *id, size_t len)
{
    int             rc;
    size_t          clen, plen;
    uint8_t         seek[LOYALTY_TOUCH_ID_MAX];
    MDB_val         key, val;
    MDB_cursor     *cur;
    MDB_cursor_op   op;
    const uint8_t  *colon;

    rc = mdb_cursor_open(txn, st->dbi[LOYALTY_DB_TOUCHES], &cur);
    if (rc != 0) {
        return rc;
    }

    for (op = MDB_FIRST; /* void */; op = MDB_SET_RANGE) {
        rc = mdb_cursor_get(cur, &key, &val, op);
        if (rc != 0) {
            break;
        }

        colon = memchr(key.mv_data, ':', key.mv_size);
        if (colon == NULL
            || (size_t) (colon - (uint8_t *) key.mv_data)
               > LOYALTY_CADENCE_NAME_MAX)
        {
            /* not a touch id: on to the next key */
            rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
            if (rc != 0) {
                break;
            }

            plen = key.mv_size < sizeof(seek) ? key.mv_size : sizeof(seek);
            memcpy(seek, key.mv_data, plen);
            key.mv_data = seek;
            key.mv_size = plen;
            continue;
        }

        clen = (size_t) (colon - (uint8_t *) key.mv_data);
        memcpy(seek, key.mv_data, clen + 1);
        memcpy(seek + clen + 1, id, len);
        seek[clen + 1 + len] = ':';
        plen = clen + len + 2;

        for ( ;; ) {
            key.mv_data = seek;
            key.mv_size = plen;

            rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
            if (rc != 0 || key.mv_size < plen
                || memcmp(key.mv_data, seek, plen) != 0)
            {
                break;
            }

            rc = loyalty_admin_forget_touch(st, txn, cur, &key, &val);
            if (rc != 0) {
                break;
            }
        }

        if (rc != 0 && rc != MDB_NOTFOUND) {
            break;
        }

        /* ';' follows ':': past every touch of this cadence */
        seek[clen] = ':' + 1;
        key.mv_data = seek;
        key.mv_size = clen + 1;
    }

    mdb_cursor_close(cur);

    return rc == MDB_NOTFOUND ? 0 : rc;
}


int
loyalty_admin_delete_member(loyalty_store_t *st, MDB_txn *txn,
    const char *id, size_t len)
{
    int               rc;
    char              ref[LOYALTY_ID_MAX];
    size_t            ref_len;
    uint8_t           prefix[LOYALTY_ID_MAX + 1];
    MDB_val           key;
    loyalty_member_t  m;

    if (!loyalty_valid_id(id, len)) {
        return MDB_NOTFOUND;
    }

    key.mv_data = (void *) id;
    key.mv_size = len;

    /* a record that does not decode is deleted all the same */
    rc = loyalty_member_get(txn, st, id, len, &m);
    if (rc != 0 && rc != MDB_CORRUPTED) {
        return rc;
    }

    ref_len = 0;

    if (rc == 0) {
        ref_len = m.referrer_len;
        loyalty_cpymem(ref, m.referrer, ref_len);
    }

    rc = mdb_del(txn, st->dbi[LOYALTY_DB_MEMBERS], &key, NULL);

    if (rc == 0 && ref_len) {
        rc = loyalty_referral_delete(st, txn, ref, ref_len, id, len);
    }

    if (rc == 0) {
        rc = loyalty_admin_forget_downline(st, txn, id, len);
    }

    /* the ledger: a member made again under this id starts empty */
    if (rc == 0) {
        memcpy(prefix, id, len);
        prefix[len] = '\0';

        rc = loyalty_admin_forget_prefix(st, txn, LOYALTY_DB_LEDGER, prefix,
                                         len + 1);
    }

    if (rc == 0) {
        rc = loyalty_admin_forget_codes(st, txn, id, len);
    }

    if (rc == 0) {
        rc = loyalty_admin_forget_touches(st, txn, id, len);
    }

    /* what brought them; the counters are the days', and stay */
    if (rc == 0) {
        rc = loyalty_attrib_delete(st, txn, id, len);
    }

    return rc;
}
