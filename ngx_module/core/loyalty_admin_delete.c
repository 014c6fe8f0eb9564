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
#include "loyalty_walk.h"


/* the member mid no longer has a referrer: their referrer is deleted */
static int
loyalty_admin_unrefer(loyalty_store_t *st, MDB_txn *txn, const char *mid,
    size_t mlen)
{
    int               rc;
    char              id[LOYALTY_ID_MAX];
    uint8_t           buf[LOYALTY_MEMBER_MAX], out[LOYALTY_MEMBER_MAX];
    loyalty_member_t  m;

    if (mlen > sizeof(id)) {
        return 0;
    }

    /* copied: the key is on a page the writes below may change */
    memcpy(id, mid, mlen);

    rc = loyalty_member_get_copy(txn, st, id, mlen, buf, &m);
    if (rc != 0) {
        return rc == MDB_NOTFOUND ? 0 : rc;
    }

    m.referrer_len = 0;

    return loyalty_store_put_rec(txn, st, &loyalty_member_rec, id, mlen, &m,
                                 out);
}


/* what the walks of a deletion need: the member */
typedef struct {
    const char  *id;
    size_t       len;
} loyalty_admin_forgetting_t;


/* a referrals key "ID\0MID" goes, and with it MID's referrer */
static int
loyalty_admin_forget_referral(loyalty_walk_t *w)
{
    int                          rc;
    size_t                       mlen;
    const char                  *mid;
    loyalty_admin_forgetting_t  *fg = w->data;

    if (loyalty_referral_member(&w->key, fg->len, &mid, &mlen) != 0) {
        return LOYALTY_WALK_STOP;
    }

    if (mlen > LOYALTY_ID_MAX) {
        mlen = LOYALTY_ID_MAX;
    }

    rc = mdb_del(w->txn, w->st->dbi[LOYALTY_DB_REFERRALS], &w->key, NULL);

    if (rc == 0) {
        rc = loyalty_admin_unrefer(w->st, w->txn, mid, mlen);
    }

    return loyalty_walk_wrote(rc);
}


/*
 * deletes every referrals key that starts with prefix and a zero byte,
 * and the referrer of each member it names
 */
int
loyalty_admin_forget_downline(loyalty_store_t *st, MDB_txn *txn,
    const char *id, size_t len)
{
    loyalty_admin_forgetting_t  fg;

    fg.id = id;
    fg.len = len;

    return loyalty_referral_walk(st, txn, id, len,
                                 loyalty_admin_forget_referral, &fg);
}


/* a share code of the member goes, and its click counts */
static int
loyalty_admin_forget_code(loyalty_walk_t *w, loyalty_code_t *c)
{
    int      rc;
    uint8_t  code[LOYALTY_CODE_MAX + 1];
    size_t   clen;

    clen = w->key.mv_size;
    memcpy(code, w->key.mv_data, clen);
    code[clen] = '\0';

    rc = mdb_del(w->txn, w->st->dbi[LOYALTY_DB_CODES], &w->key, NULL);

    /* the clicks key: the code, a zero byte, the day */
    if (rc == 0) {
        rc = loyalty_walk(w->st, w->txn, LOYALTY_DB_CLICKS, code, clen + 1,
                          clen + 1, loyalty_walk_del, NULL);
    }

    return loyalty_walk_wrote(rc);
}


/* a touch of the member and its due entry, if pending */
static int
loyalty_admin_forget_touch(loyalty_walk_t *w)
{
    int              rc;
    uint8_t          dkey[LOYALTY_DUE_KEY_MAX];
    MDB_val          due;
    loyalty_touch_t  t;

    if (w->key.mv_size <= LOYALTY_TOUCH_ID_MAX
        && loyalty_touch_decode(w->val.mv_data, w->val.mv_size, &t) == 0)
    {
        due.mv_data = dkey;
        due.mv_size = loyalty_due_key(t.due_at, w->key.mv_data,
                                      w->key.mv_size, dkey);

        rc = mdb_del(w->txn, w->st->dbi[LOYALTY_DB_DUE], &due, NULL);
        if (rc != 0 && rc != MDB_NOTFOUND) {
            return rc;
        }
    }

    return loyalty_walk_del(w);
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

        rc = loyalty_walk(st, txn, LOYALTY_DB_TOUCHES, seek, plen, plen,
                          loyalty_admin_forget_touch, NULL);
        if (rc != 0) {
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

        rc = loyalty_walk(st, txn, LOYALTY_DB_LEDGER, prefix, len + 1,
                          len + 1, loyalty_walk_del, NULL);
    }

    if (rc == 0) {
        rc = loyalty_code_walk_member(st, txn, id, len,
                                      loyalty_admin_forget_code, NULL);
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
