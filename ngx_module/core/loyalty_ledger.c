/*
 * nginx-loyalty: the points ledger, every change to a member's points
 * with its reason, oldest first (schema/lmdb-layout.md).
 */

#include <string.h>

#include "loyalty_ledger.h"
#include "loyalty_record.h"
#include "loyalty_walk.h"


const char  *loyalty_ledger_reasons[LOYALTY_LEDGER_REASONS] = {
    NULL, "order", "refund", "action", "referral_l1", "referral_l2", "adjust",
    "cadence"
};



size_t
loyalty_ledger_key(const char *id, size_t len, uint64_t seq, uint8_t *key)
{
    memcpy(key, id, len);
    key[len] = '\0';
    loyalty_be_put(key + len + 1, seq);

    return len + 9;
}


size_t
loyalty_ledger_encode(const loyalty_ledger_entry_t *e, uint8_t *buf)
{
    memset(buf, 0, LOYALTY_LEDGER_FIXED);

    buf[0] = LOYALTY_LEDGER_VERSION;
    buf[1] = e->reason;
    buf[2] = e->event_len;
    loyalty_le_put(buf + 8, (uint64_t) e->delta, 8);
    loyalty_le_put(buf + 16, (uint64_t) e->at, 8);
    loyalty_cpymem(buf + LOYALTY_LEDGER_FIXED, e->event, e->event_len);

    return LOYALTY_LEDGER_FIXED + e->event_len;
}


int
loyalty_ledger_decode(const uint8_t *buf, size_t len,
    loyalty_ledger_entry_t *e)
{
    if (len < LOYALTY_LEDGER_FIXED
        || buf[0] != LOYALTY_LEDGER_VERSION
        || buf[1] == 0 || buf[1] >= LOYALTY_LEDGER_REASONS
        || buf[2] > LOYALTY_ID_MAX
        || len != (size_t) LOYALTY_LEDGER_FIXED + buf[2]
        || loyalty_le_get(buf + 3, 5) != 0)
    {
        return -1;
    }

    e->reason = buf[1];
    e->event_len = buf[2];
    e->delta = (int64_t) loyalty_le_get(buf + 8, 8);
    e->at = (int64_t) loyalty_le_get(buf + 16, 8);
    e->event = (const char *) buf + LOYALTY_LEDGER_FIXED;

    if (e->event_len && !loyalty_valid_id(e->event, e->event_len)) {
        return -1;
    }

    return 0;
}


int
loyalty_ledger_key_of(const MDB_val *key, const char *id, size_t len)
{
    return key->mv_size == len + 9 && memcmp(key->mv_data, id, len) == 0
           && ((uint8_t *) key->mv_data)[len] == '\0';
}


int
loyalty_ledger_newest(MDB_cursor *cur, const char *id, size_t len,
    uint8_t *buf, MDB_val *key, MDB_val *val)
{
    int  rc;

    key->mv_data = buf;
    key->mv_size = loyalty_ledger_key(id, len, UINT64_MAX, buf);

    /* the entry before the member's largest possible key */
    rc = mdb_cursor_get(cur, key, val, MDB_SET_RANGE);
    if (rc == 0) {
        return mdb_cursor_get(cur, key, val, MDB_PREV);
    }

    return rc == MDB_NOTFOUND ? mdb_cursor_get(cur, key, val, MDB_LAST) : rc;
}


/* the sequence after the member's last entry */
static int
loyalty_ledger_next(loyalty_store_t *st, MDB_txn *txn, const char *id,
    size_t len, uint64_t *seq)
{
    int          rc;
    uint8_t      buf[LOYALTY_LEDGER_KEY_MAX];
    MDB_val      key, val;
    MDB_cursor  *cur;

    rc = mdb_cursor_open(txn, st->dbi[LOYALTY_DB_LEDGER], &cur);
    if (rc != 0) {
        return rc;
    }

    rc = loyalty_ledger_newest(cur, id, len, buf, &key, &val);

    *seq = 0;

    if (rc == 0 && loyalty_ledger_key_of(&key, id, len)) {
        *seq = loyalty_be_get((uint8_t *) key.mv_data + len + 1) + 1;
    }

    mdb_cursor_close(cur);

    return rc == MDB_NOTFOUND ? 0 : rc;
}


int
loyalty_ledger_append(loyalty_store_t *st, MDB_txn *txn, const char *id,
    size_t len, const loyalty_ledger_entry_t *e)
{
    int       rc;
    uint8_t   kbuf[LOYALTY_LEDGER_KEY_MAX], vbuf[LOYALTY_LEDGER_REC_MAX];
    MDB_val   key, val;
    uint64_t  seq;

    rc = loyalty_ledger_next(st, txn, id, len, &seq);
    if (rc != 0) {
        return rc;
    }

    key.mv_data = kbuf;
    key.mv_size = loyalty_ledger_key(id, len, seq, kbuf);
    val.mv_data = vbuf;
    val.mv_size = loyalty_ledger_encode(e, vbuf);

    return mdb_put(txn, st->dbi[LOYALTY_DB_LEDGER], &key, &val,
                   MDB_NOOVERWRITE);
}


typedef struct {
    const char  *id;
    size_t       len;
    int64_t     *sum;
    size_t      *n;
} loyalty_ledger_summing_t;


static int
loyalty_ledger_sum_one(loyalty_walk_t *w)
{
    loyalty_ledger_entry_t     e;
    loyalty_ledger_summing_t  *s = w->data;

    if (!loyalty_ledger_key_of(&w->key, s->id, s->len)) {
        return LOYALTY_WALK_STOP;
    }

    if (loyalty_ledger_decode(w->val.mv_data, w->val.mv_size, &e) != 0
        || __builtin_add_overflow(*s->sum, e.delta, s->sum))
    {
        return MDB_CORRUPTED;
    }

    (*s->n)++;

    return LOYALTY_WALK_NEXT;
}


int
loyalty_ledger_sum(loyalty_store_t *st, MDB_txn *txn, const char *id,
    size_t len, int64_t *sum, size_t *n)
{
    uint8_t                   buf[LOYALTY_LEDGER_KEY_MAX];
    loyalty_ledger_summing_t  s;

    *sum = 0;
    *n = 0;

    s.id = id;
    s.len = len;
    s.sum = sum;
    s.n = n;

    return loyalty_walk(st, txn, LOYALTY_DB_LEDGER, buf,
                        loyalty_ledger_key(id, len, 0, buf), 0,
                        loyalty_ledger_sum_one, &s);
}
