/*
 * Unit tests of loyalty_walk.c: the records a walk visits, in order, its
 * range (from a key, within a prefix), stops and errors, and visitors
 * that write: deleting, rewriting and adding records as they go.
 */

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "loyalty_util.h"
#include "loyalty_walk.h"
#include "store_fixture.h"
#include "tap.h"


/* got holds the literal s, NUL bytes and all */
#define is_same(got, s, ...)  is_mem(got, s, sizeof(s) - 1, __VA_ARGS__)


static char             tmp[FIXTURE_PATH_MAX];
static loyalty_store_t  st;


/* what a visitor saw, and what it is to do */
typedef struct {
    char   seen[256];       /* the keys visited, each followed by "|" */
    size_t seen_len;
    int    n;
    int    stop_at;         /* return STOP at this visit (from 1), or 0 */
    int    fail_at;         /* return MDB_CORRUPTED at this visit, or 0 */
    int    write;           /* 'd' delete, 'r' rewrite, 'b' add before;
                               'D', 'R' the walk's delete and put */
} visits_t;


/* appends n bytes of p to buf, of which len are used */
static void
append(char *buf, size_t *len, size_t size, const void *p, size_t n)
{
    if (n > size - *len) {
        n = size - *len;
    }

    memcpy(buf + *len, p, n);
    *len += n;
}


static void
put(MDB_txn *txn, const char *k, size_t klen, const char *v)
{
    MDB_val  key, val;

    key.mv_data = (void *) k;
    key.mv_size = klen;
    val.mv_data = (void *) v;
    val.mv_size = strlen(v);

    if (mdb_put(txn, st.dbi[LOYALTY_DB_REFERRALS], &key, &val, 0) != 0) {
        diag("put %.*s failed", (int) klen, k);
    }
}


/* the keys of the referrals database, each followed by "|" */
static void
keys(MDB_txn *txn, char *out, size_t size)
{
    size_t       n;
    MDB_val      key, val;
    MDB_cursor  *cur;

    memset(out, 0, size);
    n = 0;

    if (mdb_cursor_open(txn, st.dbi[LOYALTY_DB_REFERRALS], &cur) != 0) {
        return;
    }

    while (mdb_cursor_get(cur, &key, &val, MDB_NEXT) == 0) {
        append(out, &n, size, key.mv_data, key.mv_size);
        append(out, &n, size, "=", 1);
        append(out, &n, size, val.mv_data, val.mv_size);
        append(out, &n, size, "|", 1);
    }

    mdb_cursor_close(cur);
}


static int
visit(loyalty_walk_t *w)
{
    int        rc;
    char       k[64], orig[64];
    size_t     len;
    MDB_val    nk, nv;
    MDB_val   *key = &w->key;
    MDB_txn   *txn = w->txn;
    visits_t  *v = w->data;

    v->n++;
    len = key->mv_size;
    memcpy(k, key->mv_data, len);
    memcpy(orig, key->mv_data, len);

    append(v->seen, &v->seen_len, sizeof(v->seen), k, len);
    append(v->seen, &v->seen_len, sizeof(v->seen), "|", 1);

    if (v->n == v->fail_at) {
        return MDB_CORRUPTED;
    }

    if (v->n == v->stop_at) {
        return LOYALTY_WALK_STOP;
    }

    switch (v->write) {

    case 'd':
        rc = mdb_del(txn, w->st->dbi[LOYALTY_DB_REFERRALS], key, NULL);
        break;

    case 'r':
        nv.mv_data = "new";
        nv.mv_size = 3;
        rc = mdb_put(txn, w->st->dbi[LOYALTY_DB_REFERRALS], key, &nv, 0);
        break;

    case 'D':
        /* the walk's own: LOYALTY_WALK_WROTE, checked below */
        rc = loyalty_walk_del(w);
        if (rc != LOYALTY_WALK_WROTE) {
            return rc;
        }

        rc = 0;
        break;

    case 'R':
        nv.mv_data = "put";
        nv.mv_size = 3;
        rc = loyalty_walk_put(w, &nv);
        if (rc != LOYALTY_WALK_WROTE) {
            return rc;
        }

        rc = 0;
        break;

    case 'b':
        /* "0" and the key sorts before every key of the test */
        k[0] = '0';
        nk.mv_data = k;
        nk.mv_size = len;
        nv.mv_data = "b";
        nv.mv_size = 1;
        rc = mdb_put(txn, w->st->dbi[LOYALTY_DB_REFERRALS], &nk, &nv, 0);
        break;

    default:
        return LOYALTY_WALK_NEXT;
    }

    /* the key stays the one visited across the write */
    if (key->mv_size != len || memcmp(key->mv_data, orig, len) != 0) {
        return EINVAL;
    }

    return rc != 0 ? rc : LOYALTY_WALK_WROTE;
}


static int
walk(MDB_txn *txn, const char *from, size_t from_len, size_t prefix_len,
    visits_t *v)
{
    return loyalty_walk(&st, txn, LOYALTY_DB_REFERRALS, from, from_len,
                        prefix_len, visit, v);
}


static MDB_txn *
filled(void)
{
    MDB_txn  *txn;

    if (mdb_txn_begin(st.env, NULL, 0, &txn) != 0) {
        return NULL;
    }

    /* "a" NUL sorts before "ab": the prefix "a\0" holds only a's */
    put(txn, "a\0x", 3, "1");
    put(txn, "a\0y", 3, "2");
    put(txn, "a\0yz", 4, "3");
    put(txn, "ab\0z", 4, "4");
    put(txn, "b", 1, "5");

    return txn;
}


/* a walk whose visitor writes, over the records of filled() */
static int
walk_filled(MDB_txn **txn, int write, const char *from, size_t from_len,
    size_t prefix_len, visits_t *v)
{
    *txn = filled();

    memset(v, 0, sizeof(*v));
    v->write = write;

    return walk(*txn, from, from_len, prefix_len, v);
}


static void
test_reads(void)
{
    MDB_txn   *txn;
    visits_t   v;

    if (mdb_txn_begin(st.env, NULL, 0, &txn) != 0) {
        return;
    }

    memset(&v, 0, sizeof(v));
    is_int(walk(txn, NULL, 0, 0, &v), 0, "an empty database: 0");
    is_int(v.n, 0, "and no visit");
    mdb_txn_abort(txn);

    txn = filled();

    memset(&v, 0, sizeof(v));
    is_int(walk(txn, NULL, 0, 0, &v), 0, "every record: 0");
    is_same(v.seen, "a\0x|a\0y|a\0yz|ab\0z|b|", "in key order");

    memset(&v, 0, sizeof(v));
    is_int(walk(txn, "a\0", 2, 2, &v), 0, "a prefix: 0");
    is_same(v.seen, "a\0x|a\0y|a\0yz|", "only its keys");
    is_int(v.n, 3, "three of them");

    memset(&v, 0, sizeof(v));
    walk(txn, "a\0xx", 4, 2, &v);
    is_same(v.seen, "a\0y|a\0yz|",
           "from a key that is not there: the next one on");

    memset(&v, 0, sizeof(v));
    walk(txn, "a\0y", 3, 0, &v);
    is_int(v.n, 4, "from a key, without a prefix: on to the last");

    memset(&v, 0, sizeof(v));
    is_int(walk(txn, "c", 1, 1, &v), 0, "past the last key: 0");
    is_int(v.n, 0, "and no visit");

    memset(&v, 0, sizeof(v));
    v.stop_at = 2;
    is_int(walk(txn, NULL, 0, 0, &v), 0, "a visitor's stop: 0");
    is_int(v.n, 2, "after its visit");

    memset(&v, 0, sizeof(v));
    v.fail_at = 2;
    is_int(walk(txn, NULL, 0, 0, &v), MDB_CORRUPTED,
           "a visitor's error: the walk's");
    is_int(v.n, 2, "no visit after it");

    is_int(walk(txn, "a", 1, 2, &v), EINVAL,
           "a prefix longer than the key it is of: EINVAL");

    mdb_txn_abort(txn);
}


static void
test_writes(void)
{
    char       all[256];
    MDB_txn   *txn;
    visits_t   v;

    is_int(walk_filled(&txn, 'd', "a\0", 2, 2, &v), 0,
           "deleting every record visited");
    is_int(v.n, 3, "each visited once");
    keys(txn, all, sizeof(all));
    is_same(all, "ab\0z=4|b=5|", "the prefix's records gone, no other");
    mdb_txn_abort(txn);

    is_int(walk_filled(&txn, 'r', NULL, 0, 0, &v), 0,
           "rewriting every record visited");
    is_int(v.n, 5, "each visited once");
    keys(txn, all, sizeof(all));
    is_same(all, "a\0x=new|a\0y=new|a\0yz=new|ab\0z=new|b=new|",
           "each rewritten");
    mdb_txn_abort(txn);

    is_int(walk_filled(&txn, 'b', "a", 1, 0, &v), 0,
           "adding a record before each one");
    is_same(v.seen, "a\0x|a\0y|a\0yz|ab\0z|b|",
           "each visited once, none of those added");
    keys(txn, all, sizeof(all));
    is_same(all, "0=b|0\0x=b|0\0y=b|0\0yz=b|0b\0z=b|a\0x=1|",
            "the records added are there, before the others");
    mdb_txn_abort(txn);
}


/* the walk's own writes, and a walk that resumes past a key */
static void
test_helpers(void)
{
    char       all[256];
    MDB_txn   *txn;
    visits_t   v;

    is_int(walk_filled(&txn, 'D', "a\0", 2, 2, &v), 0,
           "loyalty_walk_del() each: 0");
    keys(txn, all, sizeof(all));
    is_same(all, "ab\0z=4|b=5|", "the prefix's records gone, no other");
    mdb_txn_abort(txn);

    is_int(walk_filled(&txn, 'R', "ab", 2, 0, &v), 0,
           "loyalty_walk_put() each: 0");
    is_int(v.n, 2, "each visited once");
    keys(txn, all, sizeof(all));
    is_same(all, "a\0x=1|a\0y=2|a\0yz=3|ab\0z=put|b=put|",
            "the records visited rewritten, no other");

    memset(&v, 0, sizeof(v));
    is_int(loyalty_walk_after(&st, txn, LOYALTY_DB_REFERRALS, "a\0y", 3,
                              visit, &v),
           0, "a walk after a key: 0");
    is_same(v.seen, "a\0yz|ab\0z|b|", "from the first key past it");

    memset(&v, 0, sizeof(v));
    loyalty_walk_after(&st, txn, LOYALTY_DB_REFERRALS, "", 0, visit, &v);
    is_int(v.n, 5, "after no key: every record");

    memset(&v, 0, sizeof(v));
    is_int(loyalty_walk_after(&st, txn, LOYALTY_DB_REFERRALS, "b", 1, visit,
                              &v),
           0, "after the last key: 0");
    is_int(v.n, 0, "and no visit");

    mdb_txn_abort(txn);
}


int
main(void)
{
    char  err[LOYALTY_ERRLEN];

    plan(35);

    if (fixture_store_open(tmp, "walk", &st, err, sizeof(err)) != 0) {
        diag("%s", err);
        return 1;
    }

    test_reads();
    test_writes();
    test_helpers();

    fixture_store_remove(tmp, &st);

    return done();
}
