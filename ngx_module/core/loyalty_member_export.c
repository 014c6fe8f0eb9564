/*
 * nginx-loyalty: everything the store holds about a member, for a
 * subject access request (schema/member-export.schema.json): the record,
 * the ledger, the downline, what brought them, their share codes with
 * their click counts, the events that name them and their touches.
 * Events and touches are keyed by their own ids: one pass over each.
 */

#include <errno.h>
#include <string.h>

#include "loyalty_admin.h"
#include "loyalty_code.h"
#include "loyalty_due.h"
#include "loyalty_events.h"
#include "loyalty_json.h"
#include "loyalty_member_data.h"
#include "loyalty_stats.h"
#include "loyalty_walk.h"


/* an event that names the member, as the export shows it */
static json_t *
loyalty_member_event_json(MDB_val *key, loyalty_event_rec_t *e,
    const char *id, size_t len)
{
    char     when[LOYALTY_RFC3339_LEN + 1];
    json_t  *o;

    o = json_object();
    if (o == NULL || e->type >= LOYALTY_EVENT_COUNT) {
        json_decref(o);
        return NULL;
    }

    json_object_set_new(o, "type", json_string(loyalty_event_names[e->type]));
    json_object_set_new(o, "id", json_stringn((char *) key->mv_data + 1,
                                              key->mv_size - 1));
    loyalty_format_rfc3339(e->at, when);
    json_object_set_new(o, "at", json_string(when));

    if (!loyalty_member_named(e->member, e->member_len, id, len)) {
        /* the member as a referrer credited for another's order */
        json_object_set_new(o, "referral_level",
                            json_integer(loyalty_member_named(e->r1,
                                                              e->r1_len, id,
                                                              len) ? 1 : 2));
        json_object_set_new(o, "points",
                            json_integer(loyalty_member_named(e->r1,
                                                              e->r1_len, id,
                                                              len)
                                         ? e->l1_points : e->l2_points));
        return o;
    }

    json_object_set_new(o, "points", json_integer(e->points));

    if (e->type == LOYALTY_EVENT_ORDER || e->type == LOYALTY_EVENT_REFUND) {
        json_object_set_new(o, "amount", json_integer(e->amount));
    }

    if (e->type == LOYALTY_EVENT_ORDER) {
        json_object_set_new(o, "refunded", json_integer(e->refunded));
    }

    if (e->order_len) {
        json_object_set_new(o, "order_id", json_stringn(e->order,
                                                        e->order_len));
    }

    return o;
}


/* what the walks of an export need: the member, and where it goes */
typedef struct {
    const char     *id;
    size_t          len;
    json_t         *arr;
    const MDB_val  *code;       /* the share code whose clicks are read */
} loyalty_exporting_t;


/* an event that names the member */
static int
loyalty_member_export_event(loyalty_walk_t *w)
{
    loyalty_event_rec_t   e;
    loyalty_exporting_t  *x = w->data;

    if (w->key.mv_size > 1
        && loyalty_event_rec_decode(w->val.mv_data, w->val.mv_size, &e) == 0
        && loyalty_event_rec_names(&e, x->id, x->len))
    {
        json_array_append_new(x->arr,
                              loyalty_member_event_json(&w->key, &e, x->id,
                                                        x->len));
    }

    return LOYALTY_WALK_NEXT;
}


/* a touch scheduled for the member */
static int
loyalty_member_export_touch(loyalty_walk_t *w)
{
    size_t                clen, mlen, plen;
    const char           *m, *period;
    loyalty_touch_t       t;
    loyalty_exporting_t  *x = w->data;

    if (loyalty_touch_id_split(w->key.mv_data, w->key.mv_size, &clen, &m,
                               &mlen, &period, &plen)
        == 0
        && loyalty_member_named(m, mlen, x->id, x->len)
        && loyalty_touch_decode(w->val.mv_data, w->val.mv_size, &t) == 0)
    {
        json_array_append_new(x->arr,
                              loyalty_touch_json(w->key.mv_data,
                                                 w->key.mv_size, &t, 0));
    }

    return LOYALTY_WALK_NEXT;
}


/* a day's click counts of x->code, while the keys are its */
static int
loyalty_member_export_clicks(loyalty_walk_t *w)
{
    size_t                code_len;
    int64_t               day;
    uint64_t              counts[LOYALTY_CLICK_COUNTERS];
    const char           *code;
    loyalty_exporting_t  *x = w->data;

    if (loyalty_clicks_key_parse(w->key.mv_data, w->key.mv_size, &code,
                                 &code_len, &day) != 0
        || code_len != x->code->mv_size
        || memcmp(code, x->code->mv_data, code_len) != 0)
    {
        return LOYALTY_WALK_STOP;
    }

    if (loyalty_clicks_decode(w->val.mv_data, w->val.mv_size, counts) == 0) {
        json_array_append_new(x->arr,
                              loyalty_clicks_to_json(code, code_len, day,
                                                     counts));
    }

    return LOYALTY_WALK_NEXT;
}


/* a share code of the member, with its click counts per day */
static int
loyalty_member_export_code(loyalty_walk_t *w)
{
    uint8_t               start[LOYALTY_CLICKS_KEY_MAX];
    size_t                start_len;
    json_t               *o;
    MDB_val              *key = &w->key;
    loyalty_code_t        c;
    loyalty_exporting_t   clicks;
    loyalty_exporting_t  *x = w->data;

    if (loyalty_code_decode(w->val.mv_data, w->val.mv_size, &c) != 0
        || !loyalty_member_named(c.member, c.member_len, x->id, x->len))
    {
        return LOYALTY_WALK_NEXT;
    }

    o = loyalty_code_to_json(key->mv_data, key->mv_size, &c);
    clicks = *x;
    clicks.arr = json_array();
    clicks.code = key;
    json_object_set_new(o, "clicks", clicks.arr);
    json_array_append_new(x->arr, o);

    start_len = loyalty_clicks_key(key->mv_data, key->mv_size, 0, start);

    if (start_len == 0) {
        return LOYALTY_WALK_NEXT;
    }

    return loyalty_walk(w->st, w->txn, LOYALTY_DB_CLICKS, start, start_len, 0,
                        loyalty_member_export_clicks, &clicks);
}


/* the member's share codes, the events that name them, their touches */
static int
loyalty_member_export_walk(loyalty_store_t *st, MDB_txn *txn,
    const char *id, size_t len, loyalty_db_e db, json_t *arr)
{
    loyalty_exporting_t  x;

    static const loyalty_walk_pt  visit[LOYALTY_DB_COUNT] = {
        [LOYALTY_DB_CODES] = loyalty_member_export_code,
        [LOYALTY_DB_EVENTS] = loyalty_member_export_event,
        [LOYALTY_DB_TOUCHES] = loyalty_member_export_touch
    };

    x.id = id;
    x.len = len;
    x.arr = arr;
    x.code = NULL;

    return loyalty_walk(st, txn, db, NULL, 0, 0, visit[db], &x);
}


/* what brought the member, if anything did: into doc's "attribution" */
static int
loyalty_member_export_attribution(loyalty_store_t *st, MDB_txn *txn,
    const char *id, size_t len, json_t *doc)
{
    int               rc;
    char              day[LOYALTY_DAY_LEN + 1];
    json_t           *o;
    loyalty_attrib_t  a;

    rc = loyalty_attrib_get(st, txn, id, len, &a);
    if (rc != 0) {
        return rc == MDB_NOTFOUND ? 0 : rc;
    }

    o = json_object();
    if (o == NULL) {
        return ENOMEM;
    }

    if (a.code_len) {
        json_object_set_new(o, "code", json_stringn(a.code, a.code_len));
    }

    if (a.campaign_len) {
        json_object_set_new(o, "campaign",
                            json_stringn(a.campaign, a.campaign_len));
    }

    json_object_set_new(o, "referrer", json_stringn(a.r1, a.r1_len));

    if (a.r2_len) {
        json_object_set_new(o, "referrer2", json_stringn(a.r2, a.r2_len));
    }

    loyalty_stats_format_day(a.click_day, day);
    json_object_set_new(o, "click_day", json_string(day));

    return json_object_set_new(doc, "attribution", o) == 0 ? 0 : ENOMEM;
}


json_t *
loyalty_member_export(loyalty_store_t *st, MDB_txn *txn, const char *id,
    size_t len, int *rc)
{
    json_t  *doc, *member, *codes, *events, *touches;

    member = loyalty_admin_get_member(st, txn, id, len);
    if (member == NULL) {
        *rc = MDB_NOTFOUND;
        return NULL;
    }

    codes = json_array();
    events = json_array();
    touches = json_array();

    doc = json_pack("{s:o,s:o,s:o,s:o,s:o,s:o}",
                    "member", member,
                    "ledger", loyalty_admin_ledger(st, txn, id, len, 0),
                    "referrals", loyalty_admin_referrals(st, txn, id, len),
                    "codes", codes, "events", events, "touches", touches);
    if (doc == NULL) {
        *rc = ENOMEM;
        return NULL;
    }

    *rc = loyalty_member_export_walk(st, txn, id, len, LOYALTY_DB_CODES,
                                     codes);

    if (*rc == 0) {
        *rc = loyalty_member_export_attribution(st, txn, id, len, doc);
    }

    if (*rc == 0) {
        *rc = loyalty_member_export_walk(st, txn, id, len, LOYALTY_DB_EVENTS,
                                         events);
    }

    if (*rc == 0) {
        *rc = loyalty_member_export_walk(st, txn, id, len,
                                         LOYALTY_DB_TOUCHES, touches);
    }

    if (*rc != 0) {
        json_decref(doc);
        return NULL;
    }

    return doc;
}
