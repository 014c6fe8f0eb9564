/*
 * nginx-loyalty: the apply engine, what one event does to the store: the
 * funnel, tiers, referrers, points and the ledger (loyalty_ledger.h), the
 * referrals index (loyalty_referral.h), the cadences an order schedules
 * (loyalty_cadence.h), and the record in the events database that makes
 * a retry a no-op and lets a refund reverse its order.  A hook (the Lua
 * script's) may decide an order's or an action's points, stage and tier.
 *
 * loyalty_apply.c holds the events' effects; loyalty_apply_member.c what
 * they share about one member (points, referrer, stage and tier, the
 * hook).
 */

#ifndef _LOYALTY_APPLY_H_INCLUDED_
#define _LOYALTY_APPLY_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include <lmdb.h>

#include "loyalty_events.h"
#include "loyalty_ledger.h"
#include "loyalty_price.h"
#include "loyalty_record.h"
#include "loyalty_rules.h"
#include "loyalty_stats.h"
#include "loyalty_store.h"


/* loyalty_apply_event(): an id applied before with other data */
#define LOYALTY_APPLY_CONFLICT  (-2)


/*
 * A hook asked for an order or an action before its points are given:
 * the member as it was before the event, and the defaults the rules give.
 */
typedef struct {
    const loyalty_event_t   *ev;
    const char              *member_id;
    size_t                   member_len;
    const loyalty_member_t  *member;
    int32_t                  rank;
    int                      has_rank;
    int                      first;         /* the member's first order */
    int64_t                  points;        /* the rules' default */
    const char              *referrer;      /* NULL: none */
    size_t                   referrer_len;
    const char              *referrer2;
    size_t                   referrer2_len;
} loyalty_event_hook_in_t;


/* what the hook decided; has_* and stage < 0 leave the defaults */
typedef struct {
    int64_t                  points;
    int64_t                  l1_points;
    int64_t                  l2_points;
    unsigned                 has_points:1;
    unsigned                 has_l1:1;
    unsigned                 has_l2:1;
    int                      stage;
    char                     tier[LOYALTY_TIER_MAX];
    size_t                   tier_len;      /* 0: none */
} loyalty_event_hook_out_t;


/*
 * The caller's hook: 0 with out filled, or -1 to keep the defaults.  It
 * may read the store in txn, and must not write to it.
 */
typedef int (*loyalty_event_hook_pt)(void *data, loyalty_store_t *st,
    MDB_txn *txn, const loyalty_event_hook_in_t *in,
    loyalty_event_hook_out_t *out);

/* loyalty_cadence.h: the cadences that events schedule */
typedef struct loyalty_cadences_s  loyalty_cadences_t;

typedef struct {
    loyalty_event_hook_pt    handler;   /* NULL: none */
    void                    *data;
    loyalty_cadences_t      *cadences;  /* NULL: none */
} loyalty_event_hook_t;



/* a member record copied out of the map, so that writes cannot move it */
typedef struct {
    loyalty_member_t    m;
    char                id[LOYALTY_ID_MAX];
    size_t              id_len;
    char                tier[LOYALTY_TIER_MAX];
    char                referrer[LOYALTY_ID_MAX];
    int                 stored;     /* the stage in the store; -1: new */
} loyalty_mcopy_t;


typedef struct {
    char                name[LOYALTY_TIER_MAX];
    size_t              len;
    int32_t             rank;
} loyalty_tier_rank_t;


/* one engine per transaction: the rules and tiers as they were at start */
typedef struct {
    loyalty_store_t    *st;
    MDB_txn            *txn;
    int                 has_rules;
    loyalty_rules_t     rules;
    loyalty_tier_rank_t tiers[LOYALTY_TIERS_MAX];
    size_t              ntiers;
    const loyalty_event_hook_t  *hook;      /* NULL: none */
    loyalty_cadences_t *cadences;           /* NULL: none */
    int64_t             now;
    int64_t             at;             /* the event's, being applied */
    loyalty_stats_acc_t stats;          /* the batch's counters */
    char               *err;
    size_t              errlen;
    json_t             *conflict;       /* {"field","stored","given"} */
} loyalty_apply_t;


/*
 * Loads the rules and tiers of txn into ap, with hook (NULL: none) and
 * now; 0, or an LMDB error (MDB_CORRUPTED for rules that do not
 * validate) with err.
 */
int loyalty_apply_init(loyalty_apply_t *ap, loyalty_store_t *st,
    MDB_txn *txn, const loyalty_event_hook_t *hook, int64_t now, char *err,
    size_t errlen);

/*
 * Applies one checked event in ap->txn: 0 applied, or a duplicate with
 * *dup set; -1 invalid with ap->err; LOYALTY_APPLY_CONFLICT with ap->err
 * and ap->conflict (the caller's to release); or an LMDB error.
 */
int loyalty_apply_event(loyalty_apply_t *ap, const loyalty_event_t *ev,
    int *dup);


/* within the engine (loyalty_apply_member.c) */

/* -1 with the message in ap->err */
int loyalty_apply_error(loyalty_apply_t *ap, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* 0, MDB_NOTFOUND, MDB_CORRUPTED for a record that does not decode */
int loyalty_apply_member_load(loyalty_apply_t *ap, const char *id,
    size_t len, loyalty_mcopy_t *mc);
int loyalty_apply_member_save(loyalty_apply_t *ap, loyalty_mcopy_t *mc);
void loyalty_apply_mcopy_dup(loyalty_mcopy_t *dst,
    const loyalty_mcopy_t *src);
/* adds delta to the member's points, with its ledger entry */
int loyalty_apply_points(loyalty_apply_t *ap, loyalty_mcopy_t *mc,
    int64_t delta, loyalty_ledger_reason_e reason, const loyalty_event_t *ev);
/* gives the member the event's referrer, if it may */
int loyalty_apply_refer(loyalty_apply_t *ap, loyalty_mcopy_t *mc,
    const loyalty_event_t *ev);
/* the tier new members get */
int loyalty_apply_new_tier(loyalty_apply_t *ap, loyalty_mcopy_t *mc);
/* stages by the rules, and the best tier the member has earned */
void loyalty_apply_progress(loyalty_apply_t *ap, loyalty_mcopy_t *mc,
    json_t *items);
/* the hook's say: 0 with out, -1 for the defaults, or an LMDB error */
int loyalty_apply_ask_hook(loyalty_apply_t *ap, const loyalty_mcopy_t *before,
    const loyalty_event_t *ev, int first, int64_t points,
    loyalty_event_hook_out_t *out);
/* the hook's points and upgrades in place of the rules' */
void loyalty_apply_hook(loyalty_apply_t *ap, loyalty_mcopy_t *mc,
    const loyalty_event_hook_out_t *out, loyalty_event_rec_t *rec,
    int referral);


#endif /* _LOYALTY_APPLY_H_INCLUDED_ */
