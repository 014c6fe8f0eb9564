/*
 * nginx-loyalty: the admin API's reads of one member: the record, who
 * they referred (two levels), and the ledger, newest first.
 */

#include <errno.h>
#include <string.h>

#include "loyalty_admin.h"
#include "loyalty_json.h"
#include "loyalty_ledger.h"
#include "loyalty_member.h"
#include "loyalty_referral.h"
#include "loyalty_walk.h"


json_t *
loyalty_admin_get_member(loyalty_store_t *st, MDB_txn *txn, const char *id,
    size_t len)
{
    loyalty_member_t  m;

    if (!loyalty_valid_id(id, len)) {
        return NULL;
    }

    if (loyalty_member_get(txn, st, id, len, &m) != 0) {
        return NULL;
    }

    return loyalty_member_to_json(id, len, &m);
}


/* a downline walk: whose referrals, where they go, and who asked */
typedef struct {
    const char  *id;
    size_t       len;
    json_t      *arr;
    int          via;
    const char  *self;
    size_t       self_len;
} loyalty_admin_downline_t;


/* a referrals key "ID\0MID": {"id","stage"[,"via"]} for MID */
static int
loyalty_admin_referred(loyalty_walk_t *w)
{
    int                        rc;
    size_t                     mlen;
    json_t                    *e;
    const char                *mid;
    loyalty_member_t           m;
    loyalty_admin_downline_t  *d = w->data;

    if (loyalty_referral_member(&w->key, d->len, &mid, &mlen) != 0) {
        return LOYALTY_WALK_STOP;
    }

    /* a cycle in imported records must not list the member itself */
    if (mlen == d->self_len && memcmp(mid, d->self, d->self_len) == 0) {
        return LOYALTY_WALK_NEXT;
    }

    /* a member gone, or whose record does not decode, is left out */
    rc = loyalty_member_get(w->txn, w->st, mid, mlen, &m);
    if (rc == MDB_NOTFOUND || rc == MDB_CORRUPTED) {
        return LOYALTY_WALK_NEXT;
    }

    if (rc != 0) {
        return rc;
    }

    e = json_object();
    if (e == NULL) {
        return ENOMEM;
    }

    json_object_set_new(e, "id", json_stringn(mid, mlen));
    json_object_set_new(e, "stage", json_string(loyalty_stage_names[m.stage]));

    if (d->via) {
        json_object_set_new(e, "via", json_stringn(d->id, d->len));
    }

    json_array_append_new(d->arr, e);

    return LOYALTY_WALK_NEXT;
}


/* appends to d->arr {"id","stage"[,"via"]} for each member id referred */
static int
loyalty_admin_downline(loyalty_store_t *st, MDB_txn *txn,
    loyalty_admin_downline_t *d, const char *id, size_t len)
{
    d->id = id;
    d->len = len;

    return loyalty_referral_walk(st, txn, id, len, loyalty_admin_referred,
                                 d);
}


/*
 * What an answer about a member holds besides {"member": id}: added to
 * obj, which the answer frees on an error; val is the member's record.
 */
typedef int (*loyalty_admin_fill_pt)(loyalty_store_t *st, MDB_txn *txn,
    const char *id, size_t len, MDB_val *val, json_t *obj, size_t limit);


/* {"member": id, ...fill}, or NULL when id names no member, or on errors */
static json_t *
loyalty_admin_answer(loyalty_store_t *st, MDB_txn *txn, const char *id,
    size_t len, loyalty_admin_fill_pt fill, size_t limit)
{
    json_t   *obj;
    MDB_val   val;

    if (!loyalty_valid_id(id, len)
        || loyalty_member_find(txn, st, id, len, &val) != 0)
    {
        return NULL;
    }

    obj = json_object();

    if (obj == NULL
        || json_object_set_new(obj, "member", json_stringn(id, len)) != 0
        || fill(st, txn, id, len, &val, obj, limit) != 0)
    {
        json_decref(obj);
        return NULL;
    }

    return obj;
}


/* a new array added to obj as name; NULL when memory ran out */
static json_t *
loyalty_admin_array(json_t *obj, const char *name)
{
    json_t  *arr;

    arr = json_array();

    return json_object_set_new(obj, name, arr) == 0 ? arr : NULL;
}


/* "level1" and "level2": whom the member referred, and whom they did */
static int
loyalty_admin_levels(loyalty_store_t *st, MDB_txn *txn, const char *id,
    size_t len, MDB_val *val, json_t *obj, size_t limit)
{
    int                       rc;
    size_t                    i;
    json_t                   *l1, *l2, *v, *e;
    loyalty_admin_downline_t  d;

    l1 = loyalty_admin_array(obj, "level1");
    l2 = l1 ? loyalty_admin_array(obj, "level2") : NULL;

    if (l2 == NULL) {
        return ENOMEM;
    }

    /* the member asked about is left out of both levels */
    d.self = id;
    d.self_len = len;
    d.arr = l1;
    d.via = 0;

    rc = loyalty_admin_downline(st, txn, &d, id, len);

    d.arr = l2;
    d.via = 1;

    json_array_foreach(l1, i, e) {
        if (rc != 0) {
            break;
        }

        v = json_object_get(e, "id");
        rc = loyalty_admin_downline(st, txn, &d, json_string_value(v),
                                    json_string_length(v));
    }

    return rc;
}


json_t *
loyalty_admin_referrals(loyalty_store_t *st, MDB_txn *txn, const char *id,
    size_t len)
{
    return loyalty_admin_answer(st, txn, id, len, loyalty_admin_levels, 0);
}


static json_t *
loyalty_admin_entry(const loyalty_ledger_entry_t *le)
{
    json_t  *e;

    e = json_object();
    if (e == NULL) {
        return NULL;
    }

    json_object_set_new(e, "delta", json_integer(le->delta));
    json_object_set_new(e, "reason",
                        json_string(loyalty_ledger_reasons[le->reason]));

    if (le->event_len) {
        json_object_set_new(e, "event",
                            json_stringn(le->event, le->event_len));
    }

    loyalty_json_set_time(e, "at", le->at);

    return e;
}


/* "balance" and "entries": the last limit entries (0: all), oldest first */
static int
loyalty_admin_entries(loyalty_store_t *st, MDB_txn *txn, const char *id,
    size_t len, MDB_val *val, json_t *obj, size_t limit)
{
    int                     rc;
    size_t                  n;
    uint8_t                 buf[LOYALTY_LEDGER_KEY_MAX];
    json_t                 *entries, *e;
    MDB_val                 key;
    MDB_cursor             *cur;
    loyalty_member_t        m;
    loyalty_ledger_entry_t  le;

    if (loyalty_member_decode(val->mv_data, val->mv_size, &m) != 0) {
        return MDB_CORRUPTED;
    }

    if (json_object_set_new(obj, "balance", json_integer(m.points)) != 0) {
        return ENOMEM;
    }

    entries = loyalty_admin_array(obj, "entries");
    if (entries == NULL) {
        return ENOMEM;
    }

    rc = mdb_cursor_open(txn, st->dbi[LOYALTY_DB_LEDGER], &cur);
    if (rc != 0) {
        return rc;
    }

    /* from the newest back, so that a limit costs only what it shows */
    rc = loyalty_ledger_newest(cur, id, len, buf, &key, val);

    for (n = 0; rc == 0 && (limit == 0 || n < limit); n++) {
        if (!loyalty_ledger_key_of(&key, id, len)) {
            break;
        }

        if (loyalty_ledger_decode(val->mv_data, val->mv_size, &le) != 0) {
            rc = MDB_CORRUPTED;
            break;
        }

        e = loyalty_admin_entry(&le);
        if (e == NULL || json_array_insert_new(entries, 0, e) != 0) {
            rc = ENOMEM;
            break;
        }

        rc = mdb_cursor_get(cur, &key, val, MDB_PREV);
    }

    mdb_cursor_close(cur);

    return rc == MDB_NOTFOUND ? 0 : rc;
}


json_t *
loyalty_admin_ledger(loyalty_store_t *st, MDB_txn *txn, const char *id,
    size_t len, size_t limit)
{
    return loyalty_admin_answer(st, txn, id, len, loyalty_admin_entries,
                                limit);
}
