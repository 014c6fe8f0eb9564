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


/* the events that name the member, and the touches scheduled for them */
static int
loyalty_member_export_events(loyalty_store_t *st, MDB_txn *txn,
    const char *id, size_t len, json_t *events, json_t *touches)
{
    int                  rc;
    size_t               clen, mlen, plen;
    MDB_val              key, val;
    MDB_cursor          *cur;
    const char          *m, *period;
    loyalty_touch_t      t;
    loyalty_event_rec_t  e;

    rc = mdb_cursor_open(txn, st->dbi[LOYALTY_DB_EVENTS], &cur);
    if (rc != 0) {
        return rc;
    }

    while ((rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) == 0) {
        if (key.mv_size > 1
            && loyalty_event_rec_decode(val.mv_data, val.mv_size, &e) == 0
            && (loyalty_member_named(e.member, e.member_len, id, len)
                || loyalty_member_named(e.r1, e.r1_len, id, len)
                || loyalty_member_named(e.r2, e.r2_len, id, len)))
        {
            json_array_append_new(events,
                                  loyalty_member_event_json(&key, &e, id,
                                                            len));
        }
    }

    mdb_cursor_close(cur);

    if (rc != MDB_NOTFOUND) {
        return rc;
    }

    rc = mdb_cursor_open(txn, st->dbi[LOYALTY_DB_TOUCHES], &cur);
    if (rc != 0) {
        return rc;
    }

    while ((rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) == 0) {
        if (loyalty_touch_id_split(key.mv_data, key.mv_size, &clen, &m,
                                   &mlen, &period, &plen)
            == 0
            && loyalty_member_named(m, mlen, id, len)
            && loyalty_touch_decode(val.mv_data, val.mv_size, &t) == 0)
        {
            json_array_append_new(touches,
                                  loyalty_touch_json(key.mv_data,
                                                     key.mv_size, &t, 0));
        }
    }

    mdb_cursor_close(cur);

    return rc == MDB_NOTFOUND ? 0 : rc;
}


/* the member's share codes, each with its click counts per day */
static int
loyalty_member_export_codes(loyalty_store_t *st, MDB_txn *txn,
    const char *id, size_t len, json_t *codes)
{
    int              rc;
    size_t           code_len;
    int64_t          day;
    uint8_t          start[LOYALTY_CLICKS_KEY_MAX];
    uint64_t         counts[LOYALTY_CLICK_COUNTERS];
    json_t          *o, *days;
    MDB_val          key, val, ck, cv;
    MDB_cursor      *cur, *clicks;
    const char      *code;
    loyalty_code_t   c;

    clicks = NULL;

    rc = mdb_cursor_open(txn, st->dbi[LOYALTY_DB_CODES], &cur);
    if (rc == 0) {
        rc = mdb_cursor_open(txn, st->dbi[LOYALTY_DB_CLICKS], &clicks);
        if (rc != 0) {
            mdb_cursor_close(cur);
        }
    }

    if (rc != 0) {
        return rc;
    }

    while ((rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) == 0) {
        if (loyalty_code_decode(val.mv_data, val.mv_size, &c) != 0
            || !loyalty_member_named(c.member, c.member_len, id, len))
        {
            continue;
        }

        o = loyalty_code_to_json(key.mv_data, key.mv_size, &c);
        days = json_array();
        json_object_set_new(o, "clicks", days);
        json_array_append_new(codes, o);

        ck.mv_data = start;
        ck.mv_size = loyalty_clicks_key(key.mv_data, key.mv_size, 0, start);

        if (ck.mv_size == 0) {
            continue;
        }

        for (rc = mdb_cursor_get(clicks, &ck, &cv, MDB_SET_RANGE);
             rc == 0;
             rc = mdb_cursor_get(clicks, &ck, &cv, MDB_NEXT))
        {
            if (loyalty_clicks_key_parse(ck.mv_data, ck.mv_size, &code,
                                         &code_len, &day) != 0
                || code_len != key.mv_size
                || memcmp(code, key.mv_data, code_len) != 0)
            {
                break;
            }

            if (loyalty_clicks_decode(cv.mv_data, cv.mv_size, counts) == 0) {
                json_array_append_new(days,
                                      loyalty_clicks_to_json(code, code_len,
                                                             day, counts));
            }
        }

        if (rc != 0 && rc != MDB_NOTFOUND) {
            break;
        }
    }

    mdb_cursor_close(clicks);
    mdb_cursor_close(cur);

    return rc == MDB_NOTFOUND ? 0 : rc;
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

    *rc = loyalty_member_export_codes(st, txn, id, len, codes);

    if (*rc == 0) {
        *rc = loyalty_member_export_attribution(st, txn, id, len, doc);
    }

    if (*rc == 0) {
        *rc = loyalty_member_export_events(st, txn, id, len, events,
                                           touches);
    }

    if (*rc != 0) {
        json_decref(doc);
        return NULL;
    }

    return doc;
}
