/*
 * nginx-loyalty: a member's data under their control (PIPL, GDPR): the
 * partial update and the erasure.
 *
 * A partial update reads the member as a PUT would write it, changes the
 * fields named and writes it back through the PUT's own checks, so that
 * the rules of a member live in one place (loyalty_admin.c).
 *
 * An erasure is one write transaction.  The pseudonym is a keyed hash of
 * the id (HMAC-SHA256 under a random key kept in meta), so that nobody
 * without the store can tell whose it was, and the same id always gives
 * the same pseudonym in one store.  Every record that names the member
 * names the pseudonym instead, or goes if it holds no accounting; events,
 * share codes, attributions and referrer counters are found by one pass
 * over their databases, which an erasure, a rare request, can afford.
 * The export is in loyalty_member_export.c.
 */

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "loyalty_admin.h"
#include "loyalty_code.h"
#include "loyalty_due.h"
#include "loyalty_events.h"
#include "loyalty_ledger.h"
#include "loyalty_referral.h"
#include "loyalty_json.h"
#include "loyalty_member.h"
#include "loyalty_member_data.h"
#include "loyalty_record.h"
#include "loyalty_stats.h"
#include "loyalty_stats_sum.h"
#include "loyalty_walk.h"


/* what each step of an erasure walks with: the member and the pseudonym */
typedef struct {
    const char  *id;
    size_t       len;
    const char  *p;
} loyalty_erasing_t;


static int loyalty_member_erase_event(loyalty_walk_t *w);
static int loyalty_member_erase_stats(loyalty_store_t *st, MDB_txn *txn,
    loyalty_erasing_t *er);


int
loyalty_member_field(const char *name, int *clearable)
{
    const loyalty_json_field_t  *f;

    if (strcmp(name, "id") == 0) {
        return -1;
    }

    for (f = loyalty_member_fields; f->name; f++) {
        if (strcmp(f->name, name) == 0) {
            *clearable = !f->required && f->type == JSON_STRING;
            return f->type;
        }
    }

    return -1;
}


/* the names patch may use, each of the right type or a removal */
static int
loyalty_member_patch_check(json_t *patch, char *err, size_t errlen)
{
    int          type, clearable;
    json_t      *v;
    json_int_t   n;
    const char  *name;

    if (!json_is_object(patch)) {
        snprintf(err, errlen, "the changes must be a JSON object");
        return -1;
    }

    if (json_object_size(patch) == 0) {
        snprintf(err, errlen, "no field to change");
        return -1;
    }

    json_object_foreach(patch, name, v) {
        if (strcmp(name, "id") == 0) {
            snprintf(err, errlen, "\"id\" cannot change");
            return -1;
        }

        type = loyalty_member_field(name, &clearable);

        if (type == -1) {
            snprintf(err, errlen, "unknown field \"%.64s\"; a member has "
                     "tier, stage, referrer, joined_at, first_order_at, "
                     "last_order_at, orders, spend, points, birthday, "
                     "blocked", name);
            return -1;
        }

        if (json_is_null(v) && !clearable) {
            snprintf(err, errlen, "\"%s\" cannot be removed", name);
            return -1;
        }

        if (json_is_null(v)
            || (type == JSON_STRING && json_is_string(v))
            || (type == JSON_INTEGER && loyalty_json_is_integer(v, &n))
            || (type == JSON_TRUE && json_is_boolean(v)))
        {
            continue;
        }

        snprintf(err, errlen, "\"%s\" must be %s", name,
                 type == JSON_STRING ? "a string"
                 : type == JSON_INTEGER ? "an integer" : "true or false");
        return -1;
    }

    return 0;
}


int
loyalty_member_patch(loyalty_store_t *st, MDB_txn *txn, const char *id,
    size_t len, json_t *patch, int64_t now, char *err, size_t errlen)
{
    int          rc;
    json_t      *m, *v;
    const char  *name;

    err[0] = '\0';

    if (loyalty_member_patch_check(patch, err, errlen) != 0) {
        return -1;
    }

    m = loyalty_admin_get_member(st, txn, id, len);
    if (m == NULL) {
        return MDB_NOTFOUND;
    }

    json_object_foreach(patch, name, v) {
        if (json_is_null(v)) {
            json_object_del(m, name);

        } else {
            json_object_set(m, name, v);
        }
    }

    rc = loyalty_admin_put(st, txn, "member", id, len, m, NULL, NULL, 0,
                           now, err, errlen);
    json_decref(m);

    return rc;
}


/* the store's pseudonym key; made the first time if make, else
 * MDB_NOTFOUND */
int
loyalty_member_erase_key(loyalty_store_t *st, MDB_txn *txn, uint8_t *k,
    int make)
{
    int      rc;
    MDB_val  val;

    rc = loyalty_store_meta_get(st, txn, LOYALTY_META_ERASE_KEY, &val);

    if (rc == 0 && val.mv_size == LOYALTY_ERASE_KEY_LEN) {
        memcpy(k, val.mv_data, LOYALTY_ERASE_KEY_LEN);
        return 0;
    }

    if (rc == 0) {
        return MDB_CORRUPTED;
    }

    if (rc != MDB_NOTFOUND || !make) {
        return rc;
    }

    if (RAND_bytes(k, LOYALTY_ERASE_KEY_LEN) != 1) {
        return EIO;
    }

    return loyalty_store_meta_put(st, txn, LOYALTY_META_ERASE_KEY, k,
                                  LOYALTY_ERASE_KEY_LEN);
}


/* "erased-" and the first 12 bytes of HMAC-SHA256(key, id) in hex */
static int
loyalty_member_pseudonym(loyalty_store_t *st, MDB_txn *txn, const char *id,
    size_t len, char *p)
{
    int           rc;
    uint8_t       k[LOYALTY_ERASE_KEY_LEN], mac[EVP_MAX_MD_SIZE];
    unsigned int  n;

    rc = loyalty_member_erase_key(st, txn, k, 1);
    if (rc != 0) {
        return rc;
    }

    if (HMAC(EVP_sha256(), k, sizeof(k), (const uint8_t *) id, len, mac, &n)
        == NULL)
    {
        return EIO;
    }

    memcpy(p, LOYALTY_PSEUDONYM_PREFIX, sizeof(LOYALTY_PSEUDONYM_PREFIX) - 1);
    p += sizeof(LOYALTY_PSEUDONYM_PREFIX) - 1;

    loyalty_hex_encode(mac, (LOYALTY_PSEUDONYM_LEN
                             - (sizeof(LOYALTY_PSEUDONYM_PREFIX) - 1)) / 2, p);

    return 0;
}


/*
 * What an earlier erasure of the same id left under the pseudonym (the
 * shop made the member again, and they asked again) is added in: orders,
 * spend and points, the first and the last order.
 */
static int
loyalty_member_erase_merge(loyalty_store_t *st, MDB_txn *txn,
    const char *p, loyalty_member_t *m)
{
    int               rc;
    loyalty_member_t  was;

    rc = loyalty_member_get(txn, st, p, LOYALTY_PSEUDONYM_LEN, &was);
    if (rc != 0) {
        return rc == MDB_NOTFOUND ? 0 : rc;
    }

    if (__builtin_add_overflow(m->orders, was.orders, &m->orders)
        || __builtin_add_overflow(m->spend, was.spend, &m->spend)
        || __builtin_add_overflow(m->points, was.points, &m->points))
    {
        return MDB_CORRUPTED;
    }

    if ((was.flags & LOYALTY_MEMBER_FIRST_ORDER)
        && (!(m->flags & LOYALTY_MEMBER_FIRST_ORDER)
            || was.first_order_at < m->first_order_at))
    {
        m->first_order_at = was.first_order_at;
        m->flags |= LOYALTY_MEMBER_FIRST_ORDER;
    }

    if ((was.flags & LOYALTY_MEMBER_LAST_ORDER)
        && (!(m->flags & LOYALTY_MEMBER_LAST_ORDER)
            || was.last_order_at > m->last_order_at))
    {
        m->last_order_at = was.last_order_at;
        m->flags |= LOYALTY_MEMBER_LAST_ORDER;
    }

    return 0;
}


/*
 * The member record under the pseudonym, with what stays: tier, stage,
 * orders, spend, points and the order times; blocked, so that nothing
 * treats it as a person.  The old record goes.
 */
static int
loyalty_member_erase_record(loyalty_store_t *st, MDB_txn *txn,
    const char *id, size_t len, const char *p, char *ref, size_t *ref_len)
{
    int               rc;
    uint8_t           out[LOYALTY_MEMBER_MAX];
    MDB_val           key, val;
    loyalty_member_t  m;

    rc = loyalty_member_get(txn, st, id, len, &m);
    if (rc != 0) {
        return rc;
    }

    *ref_len = m.referrer_len;
    loyalty_cpymem(ref, m.referrer, m.referrer_len);

    m.flags &= ~(LOYALTY_MEMBER_BIRTHDAY|LOYALTY_MEMBER_JOINED);
    m.flags |= LOYALTY_MEMBER_BLOCKED;
    m.birth_month = 0;
    m.birth_day = 0;
    m.joined_at = 0;
    m.referrer_len = 0;
    m.referrer = NULL;

    rc = loyalty_member_erase_merge(st, txn, p, &m);
    if (rc != 0) {
        return rc;
    }

    /* encoded before the page changes: m points into it */
    val.mv_data = out;
    val.mv_size = loyalty_member_encode(&m, out);

    key.mv_data = (void *) id;
    key.mv_size = len;

    rc = mdb_del(txn, st->dbi[LOYALTY_DB_MEMBERS], &key, NULL);
    if (rc != 0) {
        return rc;
    }

    key.mv_data = (void *) p;
    key.mv_size = LOYALTY_PSEUDONYM_LEN;

    return mdb_put(txn, st->dbi[LOYALTY_DB_MEMBERS], &key, &val, 0);
}


/*
 * The ledger entries "ID\0SEQ" move to the pseudonym, in order, after
 * any it has (from an earlier erasure of the same id).
 */
static int
loyalty_member_erase_entry(loyalty_walk_t *w)
{
    int                     rc;
    uint8_t                 rec[LOYALTY_LEDGER_REC_MAX];
    loyalty_erasing_t      *er = w->data;
    loyalty_ledger_entry_t  e;

    if (w->key.mv_size <= er->len + 1) {
        return LOYALTY_WALK_STOP;
    }

    /* copied: e points into the page the delete changes */
    if (w->val.mv_size > sizeof(rec)) {
        return MDB_CORRUPTED;
    }

    memcpy(rec, w->val.mv_data, w->val.mv_size);

    if (loyalty_ledger_decode(rec, w->val.mv_size, &e) != 0) {
        return MDB_CORRUPTED;
    }

    rc = mdb_del(w->txn, w->st->dbi[LOYALTY_DB_LEDGER], &w->key, NULL);
    if (rc == 0) {
        rc = loyalty_ledger_append(w->st, w->txn, er->p,
                                   LOYALTY_PSEUDONYM_LEN, &e);
    }

    return loyalty_walk_wrote(rc);
}


static int
loyalty_member_erase_ledger(loyalty_store_t *st, MDB_txn *txn,
    loyalty_erasing_t *er)
{
    uint8_t  from[LOYALTY_ID_MAX + 1];

    memcpy(from, er->id, er->len);
    from[er->len] = '\0';

    return loyalty_walk(st, txn, LOYALTY_DB_LEDGER, from, er->len + 1,
                        er->len + 1, loyalty_member_erase_entry, er);
}


/* the member's share codes: revoked, and naming the pseudonym */
static int
loyalty_member_erase_code(loyalty_walk_t *w, loyalty_code_t *c)
{
    uint8_t             buf[LOYALTY_CODE_REC_MAX];
    MDB_val             val;
    loyalty_erasing_t  *er = w->data;

    /* encoded before the page changes: c points into it */
    c->flags |= LOYALTY_CODE_REVOKED;
    c->member = er->p;
    c->member_len = LOYALTY_PSEUDONYM_LEN;
    val.mv_data = buf;
    val.mv_size = loyalty_code_encode(c, buf);

    return loyalty_walk_put(w, &val);
}


int
loyalty_member_erase(loyalty_store_t *st, MDB_txn *txn, const char *id,
    size_t len, char *pseudonym)
{
    int  rc;

    if (!loyalty_valid_id(id, len)) {
        return MDB_NOTFOUND;
    }

    rc = loyalty_member_pseudonym(st, txn, id, len, pseudonym);
    if (rc != 0) {
        return rc;
    }

    return loyalty_member_erase_as(st, txn, id, len, pseudonym, NULL);
}


/* "erased-" and 24 lowercase hex digits */
static int
loyalty_member_is_pseudonym(const char *p)
{
    size_t  i, n;

    n = sizeof(LOYALTY_PSEUDONYM_PREFIX) - 1;

    if (strlen(p) != LOYALTY_PSEUDONYM_LEN
        || memcmp(p, LOYALTY_PSEUDONYM_PREFIX, n) != 0)
    {
        return 0;
    }

    for (i = n; i < LOYALTY_PSEUDONYM_LEN; i++) {
        if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
        {
            return 0;
        }
    }

    return 1;
}


int
loyalty_member_erase_as(loyalty_store_t *st, MDB_txn *txn, const char *id,
    size_t len, const char *pseudonym, const uint8_t *key)
{
    int                rc;
    char               ref[LOYALTY_ID_MAX];
    size_t             ref_len;
    uint8_t            k[LOYALTY_ERASE_KEY_LEN];
    loyalty_erasing_t  er;

    if (!loyalty_valid_id(id, len)) {
        return MDB_NOTFOUND;
    }

    if (!loyalty_member_is_pseudonym(pseudonym)) {
        return -1;
    }

    er.id = id;
    er.len = len;
    er.p = pseudonym;

    /* the key the edge made: every replica keeps the first one it gets */
    if (key) {
        rc = loyalty_member_erase_key(st, txn, k, 0);

        if (rc == MDB_NOTFOUND) {
            rc = loyalty_store_meta_put(st, txn, LOYALTY_META_ERASE_KEY, key,
                                        LOYALTY_ERASE_KEY_LEN);
        }

        if (rc != 0) {
            return rc;
        }
    }

    ref_len = 0;

    rc = loyalty_member_erase_record(st, txn, id, len, pseudonym, ref,
                                     &ref_len);

    /* the link to whoever referred them, and to those they referred */
    if (rc == 0 && ref_len) {
        rc = loyalty_referral_delete(st, txn, ref, ref_len, id, len);
    }

    if (rc == 0) {
        rc = loyalty_admin_forget_downline(st, txn, id, len);
    }

    if (rc == 0) {
        rc = loyalty_member_erase_ledger(st, txn, &er);
    }

    if (rc == 0) {
        rc = loyalty_code_walk_member(st, txn, id, len,
                                      loyalty_member_erase_code, &er);
    }

    if (rc == 0) {
        rc = loyalty_admin_forget_touches(st, txn, id, len);
    }

    if (rc == 0) {
        rc = loyalty_walk(st, txn, LOYALTY_DB_EVENTS, NULL, 0, 0,
                          loyalty_member_erase_event, &er);
    }

    if (rc == 0) {
        rc = loyalty_member_erase_stats(st, txn, &er);
    }

    if (rc == 0) {
        rc = loyalty_changes_forget(st, txn, id, len);
    }

    return rc;
}


/*
 * An event naming the member (as the buyer, or a referrer credited)
 * names the pseudonym; a signup's or follow's key, which is the member's
 * id, becomes the pseudonym's.  The events are keyed by their own ids:
 * one pass over them all.
 */
static int
loyalty_member_erase_event(loyalty_walk_t *w)
{
    int                  rc;
    uint8_t              buf[LOYALTY_EVENT_REC_MAX];
    uint8_t              nk[LOYALTY_EVENT_KEY_MAX];
    MDB_val              nkey, val;
    MDB_val             *key = &w->key;
    loyalty_erasing_t   *er = w->data;
    loyalty_event_rec_t  e;

    if (key->mv_size > LOYALTY_EVENT_KEY_MAX
        || loyalty_event_rec_decode(w->val.mv_data, w->val.mv_size, &e) != 0
        || !loyalty_event_rec_rename(&e, er->id, er->len, er->p,
                                     LOYALTY_PSEUDONYM_LEN))
    {
        return LOYALTY_WALK_NEXT;
    }

    nkey = *key;

    /* encoded before the page changes: e points into it */
    val.mv_data = buf;
    val.mv_size = loyalty_event_rec_encode(&e, buf);

    rc = 0;

    if ((e.type == LOYALTY_EVENT_SIGNUP || e.type == LOYALTY_EVENT_FOLLOW)
        && loyalty_member_named((char *) key->mv_data + 1, key->mv_size - 1,
                                er->id, er->len))
    {
        rc = mdb_del(w->txn, w->st->dbi[LOYALTY_DB_EVENTS], key, NULL);
        nk[0] = ((uint8_t *) key->mv_data)[0];
        memcpy(nk + 1, er->p, LOYALTY_PSEUDONYM_LEN);
        nkey.mv_data = nk;
        nkey.mv_size = LOYALTY_PSEUDONYM_LEN + 1;
    }

    if (rc == 0) {
        rc = mdb_put(w->txn, w->st->dbi[LOYALTY_DB_EVENTS], &nkey, &val, 0);
    }

    return loyalty_walk_wrote(rc);
}


/*
 * What brought other members names the pseudonym where it named the
 * member as their referrer; the member's own attribution goes, as for a
 * deletion.
 */
static int
loyalty_member_erase_attribution(loyalty_walk_t *w)
{
    uint8_t             buf[LOYALTY_ATTRIB_REC_MAX];
    MDB_val             val;
    loyalty_attrib_t    a;
    loyalty_erasing_t  *er = w->data;

    if (w->key.mv_size > LOYALTY_ID_MAX
        || loyalty_attrib_decode(w->val.mv_data, w->val.mv_size, &a) != 0
        || !(loyalty_member_named(a.r1, a.r1_len, er->id, er->len)
             || loyalty_member_named(a.r2, a.r2_len, er->id, er->len)))
    {
        return LOYALTY_WALK_NEXT;
    }

    if (loyalty_member_named(a.r1, a.r1_len, er->id, er->len)) {
        memcpy(a.r1, er->p, LOYALTY_PSEUDONYM_LEN);
        a.r1_len = LOYALTY_PSEUDONYM_LEN;
    }

    if (loyalty_member_named(a.r2, a.r2_len, er->id, er->len)) {
        memcpy(a.r2, er->p, LOYALTY_PSEUDONYM_LEN);
        a.r2_len = LOYALTY_PSEUDONYM_LEN;
    }

    val.mv_data = buf;
    val.mv_size = loyalty_attrib_encode(&a, buf);

    return loyalty_walk_put(w, &val);
}


/*
 * The counters of the member as a referrer ("R", a block, the id; "r",
 * a day, the id in a store made before blocks) move to the
 * pseudonym's, added to any it has: counts stay counts.
 */
static int
loyalty_member_erase_counters(loyalty_walk_t *w)
{
    const uint8_t      *k;
    loyalty_erasing_t  *er = w->data;

    k = w->key.mv_data;

    if (w->key.mv_size != 5 + er->len || memcmp(k + 5, er->id, er->len) != 0)
    {
        return LOYALTY_WALK_NEXT;
    }

    return loyalty_walk_wrote(loyalty_stats_rename(w->st, w->txn, &w->key,
                                                   &w->val, er->p,
                                                   LOYALTY_PSEUDONYM_LEN));
}


static int
loyalty_member_erase_stats(loyalty_store_t *st, MDB_txn *txn,
    loyalty_erasing_t *er)
{
    int            rc, i;
    const uint8_t  kinds[] = { LOYALTY_STATS_KIND_REFERRER,
                               LOYALTY_STATS_KIND_REFERRER_BLOCK };

    rc = loyalty_attrib_delete(st, txn, er->id, er->len);

    /* the pending deltas' rows too: folded into the rows walked below */
    if (rc == 0) {
        rc = loyalty_stats_fold(st, txn);
    }

    if (rc == 0) {
        rc = loyalty_walk(st, txn, LOYALTY_DB_ATTRIB, NULL, 0, 0,
                          loyalty_member_erase_attribution, er);
    }

    for (i = 0; rc == 0 && i < 2; i++) {
        rc = loyalty_walk(st, txn, LOYALTY_DB_STATS, &kinds[i], 1, 1,
                          loyalty_member_erase_counters, er);
    }

    return rc;
}
