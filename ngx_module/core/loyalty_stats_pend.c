/*
 * nginx-loyalty: the conversion counters' pending deltas.
 *
 * A batch of events adds to a few hundred rows of codes, campaigns and
 * referrers, each on a page of its own somewhere in the stats database:
 * writing them in place makes the batch's commit write and sync a page
 * per row.  Instead the batch writes what it adds to them, summed, as
 * one record at the end of the database ("z" and a sequence number),
 * in the same transaction as its events; the batch that leaves
 * LOYALTY_STATS_PENDING_MAX of them pending folds them all into the day
 * counters and deletes them, in its transaction too, so that many
 * batches' rows share the pages they write.  A delta is in the store
 * exactly as long as its batch is and until its fold, never both in it
 * and in the counters: counted once, and nothing lost on a crash.
 * A question adds the pending deltas of its kind and days to what it
 * reads (loyalty_stats_sum.c), so answers stay exact.
 *
 * A delta's value: the version, then per row a byte of key length, the
 * key (kind, day, name, as the row's), a byte of value length, and the
 * value (the counters it adds, as a row's record).
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "loyalty_stats_sum.h"


/* the kinds whose rows go into pending deltas: those kept in blocks */
static int
loyalty_stats_pend_kind(int kind)
{
    return loyalty_stats_block_kind(kind) != 0;
}


static size_t
loyalty_stats_pend_key(uint64_t seq, uint8_t *key)
{
    key[0] = LOYALTY_STATS_KIND_PENDING;
    loyalty_be_put(key + 1, seq);

    return LOYALTY_STATS_PENDING_KEY;
}


static int
loyalty_stats_pend_is(const MDB_val *key)
{
    return key->mv_size == LOYALTY_STATS_PENDING_KEY
           && ((uint8_t *) key->mv_data)[0] == LOYALTY_STATS_KIND_PENDING;
}


/*
 * The cursor moved by op, then on by next past keys of the kind that
 * are not a delta's (damage, verify's to report): 0 at a delta,
 * MDB_NOTFOUND past the kind, or an LMDB error
 */
static int
loyalty_stats_pend_seek(MDB_cursor *cur, MDB_val *key, MDB_val *val,
    MDB_cursor_op op, MDB_cursor_op next)
{
    int  rc;

    for (rc = mdb_cursor_get(cur, key, val, op);
         rc == 0;
         rc = mdb_cursor_get(cur, key, val, next))
    {
        if (key->mv_size == 0
            || ((uint8_t *) key->mv_data)[0] != LOYALTY_STATS_KIND_PENDING)
        {
            return MDB_NOTFOUND;
        }

        if (loyalty_stats_pend_is(key)) {
            return 0;
        }
    }

    return rc;
}


/*
 * The next row of a delta from *p: 1 with key and val, 0 at its end,
 * -1 for damage
 */
static int
loyalty_stats_pend_next(const uint8_t **p, const uint8_t *end, MDB_val *key,
    MDB_val *val)
{
    size_t          klen, vlen;
    const uint8_t  *q = *p;

    if (q == end) {
        return 0;
    }

    klen = *q++;
    if (klen < 5 || klen > LOYALTY_STATS_KEY_MAX
        || (size_t) (end - q) < klen + 1 || !loyalty_stats_pend_kind(q[0]))
    {
        return -1;
    }

    key->mv_data = (void *) q;
    key->mv_size = klen;
    q += klen;

    vlen = *q++;
    if (vlen < 3 || vlen > LOYALTY_STATS_REC_MAX
        || (size_t) (end - q) < vlen)
    {
        return -1;
    }

    val->mv_data = (void *) q;
    val->mv_size = vlen;
    *p = q + vlen;

    return 1;
}


int
loyalty_stats_pend_check(const uint8_t *buf, size_t len)
{
    int             rc;
    int64_t         c[LOYALTY_STATS_COUNTERS];
    MDB_val         key, val;
    const uint8_t  *p;

    if (len < 1 || buf[0] != LOYALTY_STATS_VERSION) {
        return -1;
    }

    p = buf + 1;

    while ((rc = loyalty_stats_pend_next(&p, buf + len, &key, &val)) == 1) {
        if (loyalty_stats_decode(val.mv_data, val.mv_size, c) != 0) {
            return -1;
        }
    }

    return rc;
}


/* the first and last pending sequence numbers: 0, MDB_NOTFOUND or error */
static int
loyalty_stats_pend_bounds(MDB_cursor *cur, uint64_t *first, uint64_t *last)
{
    int      rc;
    uint8_t  kbuf[LOYALTY_STATS_PENDING_KEY];
    MDB_val  key, val;

    key.mv_data = kbuf;
    key.mv_size = loyalty_stats_pend_key(0, kbuf);

    rc = loyalty_stats_pend_seek(cur, &key, &val, MDB_SET_RANGE, MDB_NEXT);
    if (rc != 0) {
        return rc;
    }

    *first = loyalty_be_get((uint8_t *) key.mv_data + 1);

    /* the last key of the kind: before the first key after it, if any */
    key.mv_data = kbuf;
    key.mv_size = loyalty_stats_pend_key(UINT64_MAX, kbuf);

    rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
    rc = loyalty_stats_pend_seek(cur, &key, &val,
                                 rc == 0 ? MDB_PREV : MDB_LAST, MDB_PREV);
    if (rc != 0) {
        return rc;
    }

    *last = loyalty_be_get((uint8_t *) key.mv_data + 1);

    return 0;
}


/* the rows of names in acc as one delta's value: its length, 0 for none */
static size_t
loyalty_stats_pend_encode(loyalty_stats_acc_t *acc, uint8_t *buf)
{
    size_t                      i;
    uint8_t                    *p;
    loyalty_stats_acc_entry_t  *e;

    p = buf;
    *p++ = LOYALTY_STATS_VERSION;

    for (i = 0; i < acc->n; i++) {
        e = &acc->entries[i];

        if (e->len == 0 || !loyalty_stats_pend_kind(e->key[0])) {
            continue;
        }

        *p++ = e->len;
        p = loyalty_cpymem(p, e->key, e->len);
        p[0] = (uint8_t) loyalty_stats_encode(e->d, p + 1);

        /* a row that adds nothing is no row */
        if (p[0] == 3) {
            p -= e->len + 1;

        } else {
            p += 1 + p[0];
        }
    }

    return p == buf + 1 ? 0 : (size_t) (p - buf);
}


/* the rows of names in acc, now in a delta: len 0, not written again */
static void
loyalty_stats_pend_taken(loyalty_stats_acc_t *acc)
{
    size_t  i;

    for (i = 0; i < acc->n; i++) {
        if (loyalty_stats_pend_kind(acc->entries[i].key[0])) {
            acc->entries[i].len = 0;
        }
    }
}


int
loyalty_stats_pend_put(loyalty_store_t *st, MDB_txn *txn,
    loyalty_stats_acc_t *acc, uint64_t *pending)
{
    int          rc;
    size_t       i, rows;
    uint8_t      kbuf[LOYALTY_STATS_PENDING_KEY], *buf;
    uint64_t     first, last;
    MDB_val      key, val;
    MDB_cursor  *cur;

    rows = 0;

    for (i = 0; i < acc->n; i++) {
        rows += loyalty_stats_pend_kind(acc->entries[i].key[0]);
    }

    rc = mdb_cursor_open(txn, st->dbi[LOYALTY_DB_STATS], &cur);
    if (rc != 0) {
        return rc;
    }

    /* none pending: the next is the first */
    first = 1;
    last = 0;

    rc = loyalty_stats_pend_bounds(cur, &first, &last);

    if (rc == MDB_NOTFOUND) {
        first = 1;
        last = 0;
        rc = 0;
    }

    *pending = last + 1 - first;

    /* a large batch writes its rows as well as a fold would */
    if (rc != 0 || rows == 0 || rows > LOYALTY_STATS_PENDING_ROWS) {
        mdb_cursor_close(cur);
        return rc;
    }

    buf = malloc(1 + rows * (2 + LOYALTY_STATS_KEY_MAX
                             + LOYALTY_STATS_REC_MAX));
    if (buf == NULL) {
        mdb_cursor_close(cur);
        return ENOMEM;
    }

    val.mv_data = buf;
    val.mv_size = loyalty_stats_pend_encode(acc, buf);

    if (val.mv_size) {
        key.mv_data = kbuf;
        key.mv_size = loyalty_stats_pend_key(last + 1, kbuf);

        /*
         * The last key of the database, unless damage follows it or
         * hides a delta from the bounds: then no delta, the rows are
         * written in place
         */
        rc = mdb_cursor_put(cur, &key, &val, MDB_APPEND);
        if (rc == MDB_KEYEXIST) {
            rc = mdb_cursor_put(cur, &key, &val, MDB_NOOVERWRITE);
        }

        if (rc == 0) {
            loyalty_stats_pend_taken(acc);
            (*pending)++;
        }

        rc = (rc == MDB_KEYEXIST) ? 0 : rc;
    }

    mdb_cursor_close(cur);
    free(buf);

    return rc;
}


/* a delta's rows into acc; a row that does not decode is verify's */
static int
loyalty_stats_pend_sum(loyalty_store_t *st, MDB_txn *txn,
    loyalty_stats_acc_t *acc, const MDB_val *delta)
{
    int             rc;
    int64_t         c[LOYALTY_STATS_COUNTERS];
    MDB_val         key, val;
    const uint8_t  *p, *end, *k;

    p = delta->mv_data;
    end = p + delta->mv_size;

    if (delta->mv_size < 1 || *p++ != LOYALTY_STATS_VERSION) {
        return 0;
    }

    while (loyalty_stats_pend_next(&p, end, &key, &val) == 1) {
        if (loyalty_stats_decode(val.mv_data, val.mv_size, c) != 0) {
            continue;
        }

        k = key.mv_data;

        rc = loyalty_stats_add(st, txn, acc, k[0], loyalty_stats_key_day(k + 1),
                               (const char *) k + 5, key.mv_size - 5, c);
        if (rc != 0) {
            return rc;
        }
    }

    return 0;
}


int
loyalty_stats_fold(loyalty_store_t *st, MDB_txn *txn)
{
    int                  rc;
    uint8_t              kbuf[LOYALTY_STATS_PENDING_KEY];
    MDB_val              key, val;
    MDB_cursor          *cur;
    loyalty_stats_acc_t  acc;

    rc = mdb_cursor_open(txn, st->dbi[LOYALTY_DB_STATS], &cur);
    if (rc != 0) {
        return rc;
    }

    loyalty_stats_acc_init(&acc);

    /* every delta summed, then deleted; the next is the first again */
    for ( ;; ) {
        key.mv_data = kbuf;
        key.mv_size = loyalty_stats_pend_key(0, kbuf);

        rc = loyalty_stats_pend_seek(cur, &key, &val, MDB_SET_RANGE,
                                     MDB_NEXT);
        if (rc != 0) {
            break;
        }

        rc = loyalty_stats_pend_sum(st, txn, &acc, &val);

        if (rc == 0) {
            rc = mdb_cursor_del(cur, 0);
        }

        if (rc != 0) {
            break;
        }
    }

    mdb_cursor_close(cur);

    if (rc == MDB_NOTFOUND || rc == 0) {
        rc = loyalty_stats_write_acc(st, txn, &acc);
    }

    loyalty_stats_acc_free(&acc);

    return rc;
}


/* by name, as LMDB orders them: a question's pending rows in its ways' order */
static int
loyalty_stats_pend_cmp(const void *pa, const void *pb)
{
    const loyalty_stats_pend_t  *x = pa, *y = pb;

    return loyalty_key_cmp((const uint8_t *) x->key.mv_data + 5,
                           x->key.mv_size - 5,
                           (const uint8_t *) y->key.mv_data + 5,
                           y->key.mv_size - 5);
}


/* grows *out for one more row: 0 or ENOMEM */
static int
loyalty_stats_pend_room(loyalty_stats_pend_t **out, size_t n, size_t *nalloc)
{
    loyalty_stats_pend_t  *p;

    if (n < *nalloc) {
        return 0;
    }

    *nalloc = *nalloc ? *nalloc * 2 : 256;

    p = realloc(*out, *nalloc * sizeof(loyalty_stats_pend_t));
    if (p == NULL) {
        return ENOMEM;
    }

    *out = p;

    return 0;
}


int
loyalty_stats_pend_load(loyalty_store_t *st, MDB_txn *txn, int kind,
    int64_t from, int64_t to, loyalty_stats_pend_t **out, size_t *n)
{
    int             rc, more;
    size_t          nalloc;
    int64_t         day;
    uint8_t         kbuf[LOYALTY_STATS_PENDING_KEY];
    MDB_val         key, val, rk, rv;
    MDB_cursor     *cur;
    const uint8_t  *p, *end;

    *out = NULL;
    *n = 0;
    nalloc = 0;

    rc = mdb_cursor_open(txn, st->dbi[LOYALTY_DB_STATS], &cur);
    if (rc != 0) {
        return rc;
    }

    key.mv_data = kbuf;
    key.mv_size = loyalty_stats_pend_key(0, kbuf);

    for (rc = loyalty_stats_pend_seek(cur, &key, &val, MDB_SET_RANGE,
                                      MDB_NEXT);
         rc == 0;
         rc = loyalty_stats_pend_seek(cur, &key, &val, MDB_NEXT, MDB_NEXT))
    {
        p = val.mv_data;
        end = p + val.mv_size;

        if (val.mv_size < 1 || *p++ != LOYALTY_STATS_VERSION) {
            continue;
        }

        while ((more = loyalty_stats_pend_next(&p, end, &rk, &rv)) == 1) {
            day = loyalty_stats_key_day((uint8_t *) rk.mv_data + 1);

            if (((uint8_t *) rk.mv_data)[0] != kind || day < from
                || day > to)
            {
                continue;
            }

            if (loyalty_stats_pend_room(out, *n, &nalloc) != 0) {
                mdb_cursor_close(cur);
                return ENOMEM;
            }

            (*out)[*n].key = rk;
            (*out)[(*n)++].val = rv;
        }
    }

    mdb_cursor_close(cur);

    if (rc != 0 && rc != MDB_NOTFOUND) {
        return rc;
    }

    if (*n > 1) {
        qsort(*out, *n, sizeof(loyalty_stats_pend_t), loyalty_stats_pend_cmp);
    }

    return 0;
}
