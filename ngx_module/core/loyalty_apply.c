/*
 * nginx-loyalty: the apply engine, what one event does to the store:
 * signups and follows, orders, refunds and actions, the referrers' points,
 * and the record that makes a retry a no-op (a duplicate) or a conflict.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loyalty_apply.h"
#include "loyalty_cadence.h"


/*
 * Counts an applied event in the conversion counters: rec names the
 * member, paid the referrers its points went to (a refund's order).
 */
static int
loyalty_apply_count(loyalty_apply_t *ap, loyalty_stats_ev_e kind,
    const loyalty_event_rec_t *rec, const loyalty_event_rec_t *paid,
    int64_t at, int64_t amount, int first, int64_t l1, int64_t l2)
{
    loyalty_stats_event_t  e;

    e.kind = kind;
    e.member = rec->member;
    e.member_len = rec->member_len;
    e.at = at;
    e.amount = amount;
    e.first = first;
    e.r1 = paid->r1;
    e.r1_len = paid->r1_len;
    e.l1 = l1;
    e.r2 = paid->r2;
    e.r2_len = paid->r2_len;
    e.l2 = l2;

    return loyalty_stats_event(ap->st, ap->txn, &ap->stats, &e);
}


static int
loyalty_apply_join(loyalty_apply_t *ap, const loyalty_event_t *ev,
    loyalty_event_rec_t *rec)
{
    int              rc;
    loyalty_mcopy_t  mc;

    rc = loyalty_apply_member_load(ap, ev->member, ev->member_len, &mc);

    if (rc == MDB_NOTFOUND) {
        memset(&mc, 0, sizeof(loyalty_mcopy_t));
        memcpy(mc.id, ev->member, ev->member_len);
        mc.id_len = ev->member_len;
        mc.m.tier = mc.tier;
        mc.m.referrer = mc.referrer;
        mc.stored = -1;

        rc = loyalty_apply_new_tier(ap, &mc);
    }

    if (rc != 0) {
        return rc;
    }

    if (mc.m.stage < LOYALTY_STAGE_FAN) {
        mc.m.stage = LOYALTY_STAGE_FAN;
    }

    if (!(mc.m.flags & LOYALTY_MEMBER_JOINED) || ev->at < mc.m.joined_at) {
        mc.m.joined_at = ev->at;
        mc.m.flags |= LOYALTY_MEMBER_JOINED;
    }

    rc = loyalty_apply_refer(ap, &mc, ev);
    if (rc != 0) {
        return rc;
    }

    rec->member = ev->member;
    rec->member_len = (uint8_t) ev->member_len;

    rc = loyalty_apply_member_save(ap, &mc);

    if (rc == 0 && ev->type == LOYALTY_EVENT_SIGNUP) {
        rc = loyalty_apply_count(ap, LOYALTY_STATS_EV_SIGNUP, rec, rec,
                                 ev->at, 0, 0, 0, 0);
    }

    return rc;
}


/*
 * One level of referral points: the referrer of who, when in the store,
 * gets points for the event; *id and *id_len (the event record's r1 or
 * r2) name them, and stay as they were for a referrer not in the store.
 */
static int
loyalty_referral_level(loyalty_apply_t *ap, const loyalty_mcopy_t *who,
    int64_t points, loyalty_ledger_reason_e reason,
    const loyalty_event_t *ev, loyalty_mcopy_t *ref, const char **id,
    uint8_t *id_len)
{
    int  rc;

    rc = loyalty_apply_member_load(ap, who->referrer, who->m.referrer_len,
                                   ref);
    if (rc == MDB_NOTFOUND) {
        return 0;
    }

    if (rc != 0) {
        return rc;
    }

    *id = ref->id;
    *id_len = (uint8_t) ref->id_len;

    rc = loyalty_apply_points(ap, ref, points, reason, ev);

    return rc == 0 ? loyalty_apply_member_save(ap, ref) : rc;
}


/*
 * Level 1 and level 2 points for an event of a referred person; level 2
 * is the level 1 referrer's referrer, unless that is the buyer.
 */
static int
loyalty_referral_points(loyalty_apply_t *ap, loyalty_mcopy_t *buyer,
    const loyalty_event_t *ev, loyalty_event_rec_t *rec,
    loyalty_mcopy_t *l1, loyalty_mcopy_t *l2)
{
    int  rc;

    rc = loyalty_referral_level(ap, buyer, rec->l1_points,
                                LOYALTY_LEDGER_REFERRAL_L1, ev, l1, &rec->r1,
                                &rec->r1_len);

    /* r1_len stays 0 when the level 1 referrer is not in the store */
    if (rc != 0 || rec->r1_len == 0 || l1->m.referrer_len == 0
        || (l1->m.referrer_len == buyer->id_len
            && memcmp(l1->referrer, buyer->id, buyer->id_len) == 0))
    {
        return rc;
    }

    return loyalty_referral_level(ap, l1, rec->l2_points,
                                  LOYALTY_LEDGER_REFERRAL_L2, ev, l2,
                                  &rec->r2, &rec->r2_len);
}


static int
loyalty_apply_order(loyalty_apply_t *ap, const loyalty_event_t *ev,
    loyalty_event_rec_t *rec, loyalty_mcopy_t *l1, loyalty_mcopy_t *l2)
{
    int                       rc, first;
    int64_t                   spend;
    loyalty_mcopy_t           mc, before;
    loyalty_event_hook_out_t  out;

    rc = loyalty_apply_member_load(ap, ev->member, ev->member_len, &mc);
    if (rc == MDB_NOTFOUND) {
        return loyalty_apply_error(ap, "unknown member \"%.*s\"",
                                   (int) ev->member_len, ev->member);
    }

    if (rc != 0) {
        return rc;
    }

    if (mc.m.orders == UINT32_MAX
        || __builtin_add_overflow(mc.m.spend, ev->amount, &spend))
    {
        return loyalty_apply_error(ap, "the orders or spend of \"%.*s\" "
                                   "would overflow", (int) ev->member_len,
                                   ev->member);
    }

    rc = loyalty_apply_refer(ap, &mc, ev);
    if (rc != 0) {
        return rc;
    }

    loyalty_apply_mcopy_dup(&before, &mc);

    first = (mc.m.orders == 0);

    mc.m.orders++;
    mc.m.spend = spend;

    /* events may come out of time order: first is the earliest, last
     * the latest, whatever the order they arrive in */
    if (!(mc.m.flags & LOYALTY_MEMBER_FIRST_ORDER)
        || ev->at < mc.m.first_order_at)
    {
        mc.m.first_order_at = ev->at;
        mc.m.flags |= LOYALTY_MEMBER_FIRST_ORDER;
    }

    if (!(mc.m.flags & LOYALTY_MEMBER_LAST_ORDER)
        || ev->at > mc.m.last_order_at)
    {
        mc.m.last_order_at = ev->at;
        mc.m.flags |= LOYALTY_MEMBER_LAST_ORDER;
    }

    if (mc.m.stage < LOYALTY_STAGE_CUSTOMER) {
        mc.m.stage = LOYALTY_STAGE_CUSTOMER;
    }

    rec->member = ev->member;
    rec->member_len = (uint8_t) ev->member_len;
    rec->amount = ev->amount;

    if (ap->has_rules) {
        loyalty_apply_progress(ap, &mc, ev->items);

        if (ap->rules.spend_per_point) {
            rec->points = ev->amount / ap->rules.spend_per_point;
        }

        if (first) {
            rec->l1_points = ap->rules.referral_points[0];
            rec->l2_points = ap->rules.referral_points[1];
        }
    }

    if (ap->hook) {
        rc = loyalty_apply_ask_hook(ap, &before, ev, first, rec->points, &out);

        if (rc > 0) {
            return rc;
        }

        if (rc == 0) {
            loyalty_apply_hook(ap, &mc, &out, rec, first);
        }
    }

    rc = loyalty_apply_points(ap, &mc, rec->points, LOYALTY_LEDGER_ORDER, ev);

    if (rc == 0) {
        rc = loyalty_apply_member_save(ap, &mc);
    }

    if (rc == 0 && first && mc.m.referrer_len
        && (ap->has_rules || rec->l1_points || rec->l2_points))
    {
        rc = loyalty_referral_points(ap, &mc, ev, rec, l1, l2);
    }

    if (rc == 0) {
        rc = loyalty_apply_count(ap, LOYALTY_STATS_EV_ORDER, rec, rec, ev->at,
                                 ev->amount, first, rec->l1_points,
                                 rec->l2_points);
    }

    if (rc == 0) {
        rc = loyalty_cadence_order(ap->st, ap->txn, ap->cadences, ap->now,
                                   ev, mc.id, mc.id_len, &before.m, &mc.m,
                                   first);
    }

    return rc;
}


/* points of an order taken back when refunded goes from before to after */
static int64_t
loyalty_reversal(int64_t points, int64_t before, int64_t after,
    int64_t amount)
{
    /* rounded down at every step, so that a full refund takes back all */
    return (int64_t) ((__int128) points * after / amount
                      - (__int128) points * before / amount);
}


static int
loyalty_refund_referrer(loyalty_apply_t *ap, const char *id, size_t len,
    int64_t points, const loyalty_event_rec_t *order,
    const loyalty_event_t *ev)
{
    int              rc;
    loyalty_mcopy_t  mc;

    if (len == 0 || points == 0) {
        return 0;
    }

    rc = loyalty_apply_member_load(ap, id, len, &mc);

    /* a referrer deleted since keeps no balance to take back from */
    if (rc == MDB_NOTFOUND) {
        return 0;
    }

    if (rc == 0) {
        rc = loyalty_apply_points(ap, &mc,
                                  -loyalty_reversal(points, order->refunded,
                                                    order->refunded
                                                    + ev->amount,
                                                    order->amount),
                                  LOYALTY_LEDGER_REFUND, ev);
    }

    return rc == 0 ? loyalty_apply_member_save(ap, &mc) : rc;
}


/*
 * rec->member is copied into the caller's member buffer (LOYALTY_ID_MAX
 * bytes): the order it comes from is decoded from a local copy that is
 * gone once this returns, and rec is encoded after
 */
static int
loyalty_apply_refund(loyalty_apply_t *ap, const loyalty_event_t *ev,
    loyalty_event_rec_t *rec, char *member)
{
    int                  rc;
    uint8_t              kbuf[LOYALTY_EVENT_KEY_MAX];
    uint8_t              vbuf[LOYALTY_EVENT_REC_MAX];
    uint8_t              obuf[LOYALTY_EVENT_REC_MAX];
    MDB_val              key, val;
    loyalty_mcopy_t      mc;
    loyalty_event_rec_t  order;

    key.mv_data = kbuf;
    key.mv_size = loyalty_event_key(LOYALTY_EVENT_ORDER, ev->order,
                                    ev->order_len, kbuf);

    rc = mdb_get(ap->txn, ap->st->dbi[LOYALTY_DB_EVENTS], &key, &val);
    if (rc == MDB_NOTFOUND) {
        return loyalty_apply_error(ap, "unknown order \"%.*s\"",
                                   (int) ev->order_len, ev->order);
    }

    if (rc != 0) {
        return rc;
    }

    /* a copy: the writes below may move the page it is on */
    memcpy(vbuf, val.mv_data, val.mv_size < sizeof(vbuf) ? val.mv_size
                                                         : sizeof(vbuf));

    if (val.mv_size > sizeof(vbuf)
        || loyalty_event_rec_decode(vbuf, val.mv_size, &order) != 0
        || order.type != LOYALTY_EVENT_ORDER)
    {
        snprintf(ap->err, ap->errlen, "order \"%.*s\" does not decode",
                 (int) ev->order_len, ev->order);
        return MDB_CORRUPTED;
    }

    if (ev->amount > order.amount - order.refunded) {
        return loyalty_apply_error(ap, "refund of %lld exceeds the %lld "
                                   "left to refund of order \"%.*s\"",
                                   (long long) ev->amount,
                                   (long long) (order.amount
                                                - order.refunded),
                                   (int) ev->order_len, ev->order);
    }

    rc = loyalty_apply_member_load(ap, order.member, order.member_len, &mc);
    if (rc == MDB_NOTFOUND) {
        return loyalty_apply_error(ap, "member \"%.*s\" of order \"%.*s\" "
                                   "is not in the store",
                                   (int) order.member_len, order.member,
                                   (int) ev->order_len, ev->order);
    }

    if (rc != 0) {
        return rc;
    }

    /* spend may have been set lower since, by an import */
    mc.m.spend = mc.m.spend > ev->amount ? mc.m.spend - ev->amount : 0;

    memcpy(member, order.member, order.member_len);
    rec->member = member;
    rec->member_len = order.member_len;
    rec->order = ev->order;
    rec->order_len = (uint8_t) ev->order_len;
    rec->amount = ev->amount;
    rec->points = loyalty_reversal(order.points, order.refunded,
                                   order.refunded + ev->amount,
                                   order.amount);

    rc = loyalty_apply_points(ap, &mc, -rec->points, LOYALTY_LEDGER_REFUND,
                              ev);
    if (rc == 0) {
        rc = loyalty_apply_member_save(ap, &mc);
    }

    if (rc == 0) {
        rc = loyalty_refund_referrer(ap, order.r1, order.r1_len,
                                     order.l1_points, &order, ev);
    }

    if (rc == 0) {
        rc = loyalty_refund_referrer(ap, order.r2, order.r2_len,
                                     order.l2_points, &order, ev);
    }

    /* on the order's day, from what the order added */
    if (rc == 0) {
        rc = loyalty_apply_count(ap, LOYALTY_STATS_EV_REFUND, rec, &order,
                                 order.at, ev->amount, 0,
                                 loyalty_reversal(order.l1_points,
                                                  order.refunded,
                                                  order.refunded + ev->amount,
                                                  order.amount),
                                 loyalty_reversal(order.l2_points,
                                                  order.refunded,
                                                  order.refunded + ev->amount,
                                                  order.amount));
    }

    if (rc != 0) {
        return rc;
    }

    order.refunded += ev->amount;

    val.mv_data = obuf;
    val.mv_size = loyalty_event_rec_encode(&order, obuf);

    return mdb_put(ap->txn, ap->st->dbi[LOYALTY_DB_EVENTS], &key, &val, 0);
}


static int
loyalty_apply_action(loyalty_apply_t *ap, const loyalty_event_t *ev,
    loyalty_event_rec_t *rec, loyalty_mcopy_t *l1, loyalty_mcopy_t *l2)
{
    int                       rc;
    loyalty_mcopy_t           mc, before;
    loyalty_event_hook_out_t  out;

    rc = loyalty_apply_member_load(ap, ev->member, ev->member_len, &mc);
    if (rc == MDB_NOTFOUND) {
        return loyalty_apply_error(ap, "unknown member \"%.*s\"",
                                   (int) ev->member_len, ev->member);
    }

    if (rc != 0) {
        return rc;
    }

    rec->member = ev->member;
    rec->member_len = (uint8_t) ev->member_len;
    rec->action = (uint8_t) ev->action;

    if (ap->has_rules) {
        rec->points = ap->rules.action_points[ev->action];
    }

    if (ap->hook) {
        loyalty_apply_mcopy_dup(&before, &mc);

        rc = loyalty_apply_ask_hook(ap, &before, ev, 0, rec->points, &out);

        if (rc > 0) {
            return rc;
        }

        if (rc == 0) {
            loyalty_apply_hook(ap, &mc, &out, rec, 1);
        }
    }

    rc = loyalty_apply_points(ap, &mc, rec->points, LOYALTY_LEDGER_ACTION, ev);

    if (rc == 0) {
        rc = loyalty_apply_member_save(ap, &mc);
    }

    /* the referrers' share of an action is the hook's to give */
    if (rc == 0 && mc.m.referrer_len && (rec->l1_points || rec->l2_points)) {
        rc = loyalty_referral_points(ap, &mc, ev, rec, l1, l2);
    }

    if (rc == 0) {
        rc = loyalty_apply_count(ap, LOYALTY_STATS_EV_ACTION, rec, rec,
                                 ev->at, 0, 0, rec->l1_points,
                                 rec->l2_points);
    }

    return rc;
}


/* the conflict of a field given one value where another was stored */
static int
loyalty_apply_clash(loyalty_apply_t *ap, const loyalty_event_t *ev,
    const char *field, json_t *stored, json_t *given)
{
    char  *s, *g;

    ap->conflict = json_pack("{s:s,s:o,s:o}", "field", field,
                             "stored", stored, "given", given);
    if (ap->conflict == NULL) {
        return ENOMEM;
    }

    s = json_dumps(json_object_get(ap->conflict, "stored"),
                   JSON_ENCODE_ANY);
    g = json_dumps(json_object_get(ap->conflict, "given"), JSON_ENCODE_ANY);

    (void) loyalty_apply_error(ap, "%s \"%.*s\" was applied with %s %s, "
                               "not %s", ev->type == LOYALTY_EVENT_ORDER
                               ? "order_id"
                               : ev->type == LOYALTY_EVENT_REFUND
                               ? "refund_id" : "id",
                               (int) ev->id_len, ev->id, field,
                               s ? s : "?", g ? g : "?");
    free(s);
    free(g);

    return LOYALTY_APPLY_CONFLICT;
}


/*
 * An event whose id was applied before: a duplicate when it says what
 * the stored one said (member, amount, order, kind), else a conflict.
 */
static int
loyalty_apply_conflict(loyalty_apply_t *ap, const loyalty_event_t *ev,
    const MDB_val *val)
{
    loyalty_event_rec_t  rec;

    if (loyalty_event_rec_decode(val->mv_data, val->mv_size, &rec) != 0
        || rec.type != ev->type)
    {
        snprintf(ap->err, ap->errlen, "event \"%.*s\" does not decode",
                 (int) ev->id_len, ev->id);
        return MDB_CORRUPTED;
    }

    if (ev->type == LOYALTY_EVENT_REFUND) {
        if (rec.order_len != ev->order_len
            || memcmp(rec.order, ev->order, ev->order_len) != 0)
        {
            return loyalty_apply_clash(ap, ev, "order_id",
                                       json_stringn(rec.order,
                                                    rec.order_len),
                                       json_stringn(ev->order,
                                                    ev->order_len));
        }

    } else if (ev->type == LOYALTY_EVENT_ORDER
               || ev->type == LOYALTY_EVENT_ACTION)
    {
        if (rec.member_len != ev->member_len
            || memcmp(rec.member, ev->member, ev->member_len) != 0)
        {
            return loyalty_apply_clash(ap, ev, "member",
                                       json_stringn(rec.member,
                                                    rec.member_len),
                                       json_stringn(ev->member,
                                                    ev->member_len));
        }
    }

    if ((ev->type == LOYALTY_EVENT_ORDER || ev->type == LOYALTY_EVENT_REFUND)
        && rec.amount != ev->amount)
    {
        return loyalty_apply_clash(ap, ev, "amount",
                                   json_integer(rec.amount),
                                   json_integer(ev->amount));
    }

    if (ev->type == LOYALTY_EVENT_ACTION && rec.action != ev->action
        && rec.action < LOYALTY_ACTION_COUNT)
    {
        return loyalty_apply_clash(ap, ev, "kind",
                                   json_string(loyalty_action_names[
                                                   rec.action]),
                                   json_string(loyalty_action_names[
                                                   ev->action]));
    }

    return 0;
}


int
loyalty_apply_event(loyalty_apply_t *ap, const loyalty_event_t *ev, int *dup)
{
    int                  rc;
    uint8_t              kbuf[LOYALTY_EVENT_KEY_MAX];
    uint8_t              vbuf[LOYALTY_EVENT_REC_MAX];
    MDB_val              key, val;
    char                 member[LOYALTY_ID_MAX];
    loyalty_mcopy_t      l1, l2;
    loyalty_event_rec_t  rec;

    key.mv_data = kbuf;
    key.mv_size = loyalty_event_key(ev->type, ev->id, ev->id_len, kbuf);

    rc = mdb_get(ap->txn, ap->st->dbi[LOYALTY_DB_EVENTS], &key, &val);
    if (rc == 0) {
        *dup = 1;
        return loyalty_apply_conflict(ap, ev, &val);
    }

    if (rc != MDB_NOTFOUND) {
        return rc;
    }

    *dup = 0;

    memset(&rec, 0, sizeof(loyalty_event_rec_t));
    rec.type = (uint8_t) ev->type;
    rec.at = ev->at;
    ap->at = ev->at;

    switch (ev->type) {

    case LOYALTY_EVENT_ORDER:
        rc = loyalty_apply_order(ap, ev, &rec, &l1, &l2);
        break;

    case LOYALTY_EVENT_REFUND:
        rc = loyalty_apply_refund(ap, ev, &rec, member);
        break;

    case LOYALTY_EVENT_ACTION:
        rc = loyalty_apply_action(ap, ev, &rec, &l1, &l2);
        break;

    default:
        rc = loyalty_apply_join(ap, ev, &rec);
        break;
    }

    if (rc != 0) {
        return rc;
    }

    val.mv_data = vbuf;
    val.mv_size = loyalty_event_rec_encode(&rec, vbuf);

    return mdb_put(ap->txn, ap->st->dbi[LOYALTY_DB_EVENTS], &key, &val, 0);
}


int
loyalty_apply_init(loyalty_apply_t *ap, loyalty_store_t *st, MDB_txn *txn,
    const loyalty_event_hook_t *hook, int64_t now, char *err, size_t errlen)
{
    int                rc;
    size_t             i;
    loyalty_tierset_t  ts;

    ap->st = st;
    ap->txn = txn;
    ap->hook = (hook && hook->handler) ? hook : NULL;
    ap->cadences = hook ? hook->cadences : NULL;
    ap->now = now;
    ap->err = err;
    ap->errlen = errlen;
    ap->conflict = NULL;

    rc = loyalty_rules_load(st, txn, &ap->rules);
    if (rc == MDB_CORRUPTED) {
        snprintf(err, errlen, "the stored rules do not validate");
        return rc;
    }

    if (rc != 0 && rc != MDB_NOTFOUND) {
        snprintf(err, errlen, "rules: %s", mdb_strerror(rc));
        return rc;
    }

    ap->has_rules = (rc == 0);

    /* names copied: a write may move the pages they are on */
    rc = loyalty_tierset_load(txn, st->dbi[LOYALTY_DB_TIERS], &ts);
    if (rc != 0) {
        snprintf(err, errlen, "tiers: %s", mdb_strerror(rc));
        return rc;
    }

    for (i = 0; i < ts.n; i++) {
        memcpy(ap->tiers[i].name, ts.tiers[i].name, ts.tiers[i].name_len);
        ap->tiers[i].len = ts.tiers[i].name_len;
        ap->tiers[i].rank = ts.tiers[i].rank;
    }

    ap->ntiers = ts.n;

    return 0;
}
