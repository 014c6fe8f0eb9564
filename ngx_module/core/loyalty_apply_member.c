/*
 * nginx-loyalty: the apply engine's steps about one member: the record
 * copied out of the map and saved, points with their ledger entry, the
 * referrer, the tier of a new member, stages and tiers earned, and the
 * hook's say.
 */

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "loyalty_apply.h"
#include "loyalty_member.h"
#include "loyalty_referral.h"


int
loyalty_apply_error(loyalty_apply_t *ap, const char *fmt, ...)
{
    va_list  args;

    va_start(args, fmt);
    vsnprintf(ap->err, ap->errlen, fmt, args);
    va_end(args);

    return -1;
}


/* 0, MDB_NOTFOUND, MDB_CORRUPTED for a record that does not decode */
int
loyalty_apply_member_load(loyalty_apply_t *ap, const char *id,
    size_t len, loyalty_mcopy_t *mc)
{
    int  rc;

    rc = loyalty_member_get(ap->txn, ap->st, id, len, &mc->m);

    if (rc == MDB_CORRUPTED) {
        snprintf(ap->err, ap->errlen, "member \"%.*s\" does not decode",
                 (int) len, id);
    }

    if (rc != 0) {
        return rc;
    }

    memcpy(mc->id, id, len);
    mc->id_len = len;
    loyalty_cpymem(mc->tier, mc->m.tier, mc->m.tier_len);
    loyalty_cpymem(mc->referrer, mc->m.referrer, mc->m.referrer_len);
    mc->m.tier = mc->tier;
    mc->m.referrer = mc->referrer;
    mc->stored = mc->m.stage;

    return 0;
}


int
loyalty_apply_member_save(loyalty_apply_t *ap, loyalty_mcopy_t *mc)
{
    int      rc;
    uint8_t  buf[LOYALTY_MEMBER_MAX];

    rc = loyalty_store_put_rec(ap->txn, ap->st, &loyalty_member_rec, mc->id,
                               mc->id_len, &mc->m, buf);

    /* for the workers' member caches: see loyalty_changes_seal() */
    if (rc == 0) {
        rc = loyalty_changes_note(ap->st, ap->txn, mc->id, mc->id_len);
    }

    /* the moves between stages per day */
    if (rc == 0) {
        rc = loyalty_stats_move(ap->st, ap->txn, &ap->stats, mc->stored,
                                mc->m.stage, ap->at);
        mc->stored = mc->m.stage;
    }

    return rc;
}


void
loyalty_apply_mcopy_dup(loyalty_mcopy_t *dst, const loyalty_mcopy_t *src)
{
    *dst = *src;
    dst->m.tier = dst->tier;
    dst->m.referrer = dst->referrer;
}


/* the tier's rank; INT32_MIN - 1 for a tier the store lacks */
static int64_t
loyalty_tier_rank(loyalty_apply_t *ap, const char *name, size_t len)
{
    size_t  i;

    for (i = 0; i < ap->ntiers; i++) {
        if (ap->tiers[i].len == len && memcmp(ap->tiers[i].name, name, len)
                                       == 0)
        {
            return ap->tiers[i].rank;
        }
    }

    return (int64_t) INT32_MIN - 1;
}


/* adds delta to the member's points, with its ledger entry */
int
loyalty_apply_points(loyalty_apply_t *ap, loyalty_mcopy_t *mc,
    int64_t delta, loyalty_ledger_reason_e reason, const loyalty_event_t *ev)
{
    int64_t                 points;
    loyalty_ledger_entry_t  e;

    if (delta == 0) {
        return 0;
    }

    if (__builtin_add_overflow(mc->m.points, delta, &points)
        || points < -LOYALTY_POINTS_MAX || points > LOYALTY_POINTS_MAX)
    {
        return loyalty_apply_error(ap, "the points of \"%.*s\" would "
                                   "leave -%lld..%lld", (int) mc->id_len,
                                   mc->id, LOYALTY_POINTS_MAX,
                                   LOYALTY_POINTS_MAX);
    }

    mc->m.points = points;

    e.reason = (uint8_t) reason;
    e.delta = delta;
    e.at = ev->at;
    e.event = ev->id;
    e.event_len = (uint8_t) ev->id_len;

    return loyalty_ledger_append(ap->st, ap->txn, mc->id, mc->id_len, &e);
}


/*
 * Gives the member a referrer for life, from a share code or named: not
 * when they have one, and never themselves.  A code that is unknown,
 * revoked, expired at the event's time, or whose owner is gone, refers
 * no one; that is no error, as the shop only passes on what it was given.
 */
int
loyalty_apply_refer(loyalty_apply_t *ap, loyalty_mcopy_t *mc,
    const loyalty_event_t *ev)
{
    int                     rc;
    char                    owner[LOYALTY_ID_MAX], why[LOYALTY_ERRLEN];
    char                    campaign[LOYALTY_CAMPAIGN_MAX];
    size_t                  owner_len;
    loyalty_code_t          c;
    loyalty_mcopy_t         ref;
    loyalty_stats_source_t  src;

    memset(&src, 0, sizeof(loyalty_stats_source_t));

    if (mc->m.referrer_len || (ev->code_len == 0 && ev->referrer == NULL)) {
        return 0;
    }

    if (ev->referrer) {
        owner_len = ev->referrer_len;
        memcpy(owner, ev->referrer, owner_len);

    } else {
        rc = loyalty_code_get(ap->st, ap->txn, ev->code, ev->code_len, &c);
        if (rc == MDB_NOTFOUND || rc == MDB_CORRUPTED) {
            return 0;
        }

        if (rc != 0) {
            return rc;
        }

        if ((c.flags & LOYALTY_CODE_REVOKED)
            || ((c.flags & LOYALTY_CODE_EXPIRES) && c.expires_at < ev->at))
        {
            return 0;
        }

        owner_len = c.member_len;
        memcpy(owner, c.member, owner_len);

        src.code = ev->code;
        src.code_len = ev->code_len;
        src.campaign = campaign;
        src.campaign_len = c.campaign_len;

        if (c.campaign_len) {
            memcpy(campaign, c.campaign, c.campaign_len);
        }
    }

    if (owner_len == mc->id_len && memcmp(owner, mc->id, owner_len) == 0) {
        return 0;
    }

    rc = loyalty_apply_member_load(ap, owner, owner_len, &ref);

    if (rc == MDB_NOTFOUND && ev->referrer) {
        return loyalty_apply_error(ap, "unknown referrer \"%.*s\"",
                                   (int) owner_len, owner);
    }

    if (rc == MDB_NOTFOUND) {
        return 0;
    }

    if (rc != 0) {
        return rc;
    }

    /*
     * people referring each other, in a loop of any length, would earn
     * level 2 on themselves: such a referrer refers no one
     */
    rc = loyalty_referrer_loop(ap->st, ap->txn, mc->id, mc->id_len, owner,
                               owner_len, why, sizeof(why));
    if (rc == -1) {
        return 0;
    }

    if (rc != 0) {
        return rc;
    }

    memcpy(mc->referrer, owner, owner_len);
    mc->m.referrer = mc->referrer;
    mc->m.referrer_len = (uint8_t) owner_len;

    rc = loyalty_referral_put(ap->st, ap->txn, owner, owner_len, mc->id,
                              mc->id_len, ev->at);

    /* what brought them, for the conversion counters */
    if (rc == 0) {
        src.r1 = owner;
        src.r1_len = owner_len;
        src.r2 = ref.m.referrer;
        src.r2_len = ref.m.referrer_len;

        rc = loyalty_stats_attribute(ap->st, ap->txn, mc->id, mc->id_len,
                                     &src, ev->at, ev->ref_at, mc->m.orders,
                                     mc->m.last_order_at);
    }

    return rc;
}


/* the tier new members get: the rules', else the lowest-ranked one */
int
loyalty_apply_new_tier(loyalty_apply_t *ap, loyalty_mcopy_t *mc)
{
    size_t  i, best;

    if (ap->has_rules) {
        if (loyalty_tier_rank(ap, ap->rules.signup_tier,
                              ap->rules.signup_tier_len)
            < INT32_MIN)
        {
            return loyalty_apply_error(ap, "the rules' signup_tier \"%.*s\" "
                                       "is not in the store",
                                       (int) ap->rules.signup_tier_len,
                                       ap->rules.signup_tier);
        }

        memcpy(mc->tier, ap->rules.signup_tier, ap->rules.signup_tier_len);
        mc->m.tier_len = ap->rules.signup_tier_len;
        return 0;
    }

    if (ap->ntiers == 0) {
        return loyalty_apply_error(ap, "the store has no tier for new "
                                   "members");
    }

    best = 0;
    for (i = 1; i < ap->ntiers; i++) {
        if (ap->tiers[i].rank < ap->tiers[best].rank) {
            best = i;
        }
    }

    memcpy(mc->tier, ap->tiers[best].name, ap->tiers[best].len);
    mc->m.tier_len = (uint8_t) ap->tiers[best].len;

    return 0;
}


/* whether the order, or the spend it brings the member to, reaches s */
static int
loyalty_stage_reached(const loyalty_rules_stage_t *s, json_t *items,
    int64_t spend)
{
    size_t   i, j;
    json_t  *v, *sku;
    int64_t  qty;

    if (s->spend && spend >= s->spend) {
        return 1;
    }

    for (i = 0; i < s->nskus; i++) {
        qty = 0;

        json_array_foreach(items, j, v) {
            sku = json_object_get(v, "sku");

            if (json_string_length(sku) == s->skus[i].len
                && memcmp(json_string_value(sku), s->skus[i].sku,
                          s->skus[i].len)
                   == 0)
            {
                /* checked: present and at least 1, or absent for 1 */
                qty += json_object_get(v, "qty")
                       ? (int64_t) json_number_value(json_object_get(v,
                                                                     "qty"))
                       : 1;
            }
        }

        if (qty >= s->skus[i].qty) {
            return 1;
        }
    }

    return 0;
}


static void
loyalty_tier_candidate(loyalty_apply_t *ap, const char *name, size_t len,
    const char **best, size_t *best_len, int64_t *rank)
{
    int64_t  r;

    r = loyalty_tier_rank(ap, name, len);

    if (r > *rank) {
        *rank = r;
        *best = name;
        *best_len = len;
    }
}


/* stages by the rules, and the best tier the member has earned */
void
loyalty_apply_progress(loyalty_apply_t *ap, loyalty_mcopy_t *mc,
    json_t *items)
{
    size_t                  i, best_len;
    int64_t                 rank;
    const char             *best;
    const loyalty_rules_t  *r;

    r = &ap->rules;

    if (mc->m.stage < LOYALTY_STAGE_PARTNER
        && loyalty_stage_reached(&r->partner, items, mc->m.spend))
    {
        mc->m.stage = LOYALTY_STAGE_PARTNER;

    } else if (mc->m.stage < LOYALTY_STAGE_MEMBER
               && loyalty_stage_reached(&r->member, items, mc->m.spend))
    {
        mc->m.stage = LOYALTY_STAGE_MEMBER;
    }

    best = NULL;
    best_len = 0;
    rank = loyalty_tier_rank(ap, mc->tier, mc->m.tier_len);

    for (i = 0; i < r->nupgrades && r->upgrades[i].spend <= mc->m.spend; i++)
    {
        loyalty_tier_candidate(ap, r->upgrades[i].tier, r->upgrades[i].len,
                               &best, &best_len, &rank);
    }

    if (mc->m.stage >= LOYALTY_STAGE_MEMBER && r->member.tier_len) {
        loyalty_tier_candidate(ap, r->member.tier, r->member.tier_len, &best,
                               &best_len, &rank);
    }

    if (mc->m.stage >= LOYALTY_STAGE_PARTNER && r->partner.tier_len) {
        loyalty_tier_candidate(ap, r->partner.tier, r->partner.tier_len,
                               &best, &best_len, &rank);
    }

    /* only ever up: a candidate must outrank the tier the member has */
    if (best) {
        memcpy(mc->tier, best, best_len);
        mc->m.tier_len = (uint8_t) best_len;
    }
}


/*
 * Asks the caller's hook about an event of the member as they were before
 * it (before).  0 with out to apply, -1 for the defaults, or an LMDB error.
 */
int
loyalty_apply_ask_hook(loyalty_apply_t *ap, const loyalty_mcopy_t *before,
    const loyalty_event_t *ev, int first, int64_t points,
    loyalty_event_hook_out_t *out)
{
    int                      rc;
    int64_t                  rank;
    loyalty_mcopy_t          ref;
    loyalty_event_hook_in_t  in;

    memset(&in, 0, sizeof(loyalty_event_hook_in_t));
    memset(out, 0, sizeof(loyalty_event_hook_out_t));
    out->stage = -1;

    in.ev = ev;
    in.member_id = before->id;
    in.member_len = before->id_len;
    in.member = &before->m;
    in.first = first;
    in.points = points;

    rank = loyalty_tier_rank(ap, before->tier, before->m.tier_len);
    in.has_rank = (rank >= INT32_MIN);
    in.rank = in.has_rank ? (int32_t) rank : 0;

    if (before->m.referrer_len) {
        in.referrer = before->referrer;
        in.referrer_len = before->m.referrer_len;

        rc = loyalty_apply_member_load(ap, before->referrer,
                                       before->m.referrer_len, &ref);
        if (rc != 0 && rc != MDB_NOTFOUND) {
            return rc;
        }

        if (rc == 0 && ref.m.referrer_len) {
            in.referrer2 = ref.m.referrer;
            in.referrer2_len = ref.m.referrer_len;
        }
    }

    /* ref lives until the hook returns: referrer2 points into it */
    rc = ap->hook->handler(ap->hook->data, ap->st, ap->txn, &in, out);

    return rc == 0 ? 0 : -1;
}


/* a stage and a tier the hook asked for, where they are upgrades */
static void
loyalty_hook_upgrade(loyalty_apply_t *ap, loyalty_mcopy_t *mc,
    const loyalty_event_hook_out_t *out)
{
    if (out->stage > (int) mc->m.stage && out->stage < LOYALTY_STAGE_COUNT)
    {
        mc->m.stage = (uint8_t) out->stage;
    }

    if (out->tier_len
        && loyalty_tier_rank(ap, out->tier, out->tier_len)
           > loyalty_tier_rank(ap, mc->tier, mc->m.tier_len))
    {
        memcpy(mc->tier, out->tier, out->tier_len);
        mc->m.tier_len = (uint8_t) out->tier_len;
    }
}


/* the hook's points and upgrades in place of the rules' */
void
loyalty_apply_hook(loyalty_apply_t *ap, loyalty_mcopy_t *mc,
    const loyalty_event_hook_out_t *out, loyalty_event_rec_t *rec,
    int referral)
{
    loyalty_hook_upgrade(ap, mc, out);

    /* a stage the hook gave brings the rules' tier for it */
    if (out->stage >= 0 && ap->has_rules) {
        loyalty_apply_progress(ap, mc, NULL);
    }

    if (out->has_points) {
        rec->points = out->points;
    }

    if (referral && out->has_l1) {
        rec->l1_points = out->l1_points;
    }

    if (referral && out->has_l2) {
        rec->l2_points = out->l2_points;
    }
}
