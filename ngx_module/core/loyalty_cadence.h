/*
 * nginx-loyalty: reward cadences, the timed touches and rewards an
 * operator declares in the Lua script, and how they are scheduled: by
 * the events that trigger them, in the event's own write transaction,
 * and by sweeps that find those that time triggers (birthdays, a long
 * silence, the year's top spenders, fixed dates).  The touches go to
 * the due queue of loyalty_due.h.
 *
 * Dates are UTC days.  A time trigger is scheduled by the first sweep
 * from a day before its due time (LOYALTY_CADENCE_LEAD) to grace days
 * after it, and never twice for the same member and period.
 */

#ifndef _LOYALTY_CADENCE_H_INCLUDED_
#define _LOYALTY_CADENCE_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>
#include <lmdb.h>

#include "loyalty_due.h"
#include "loyalty_events.h"
#include "loyalty_record.h"
#include "loyalty_store.h"
#include "loyalty_tz.h"


#define LOYALTY_CADENCES_MAX        64
#define LOYALTY_CADENCE_DATES_MAX   32
#define LOYALTY_CADENCE_TOP_MAX     1000
#define LOYALTY_CADENCE_DAYS_MAX    3660
#define LOYALTY_CADENCE_LEAD        LOYALTY_DAY
#define LOYALTY_CADENCE_GRACE       7
#define LOYALTY_SWEEP_CHUNK         1000


typedef struct {
    int16_t             year;           /* 0: every year */
    uint8_t             month;
    uint8_t             day;
} loyalty_cadence_date_t;


typedef struct {
    char                name[LOYALTY_CADENCE_NAME_MAX];
    size_t              name_len;
    loyalty_trigger_e   trigger;
    loyalty_touch_e     touch;
    unsigned            for_member:1;   /* referral_converted: the new
                                           customer, not the referrer */
    int64_t             over;           /* order: amounts from this */
    int64_t             threshold;      /* spend_crossed */
    int32_t             days;           /* a delay, an offset, or for
                                           inactive the silence */
    int32_t             hour;           /* UTC; -1: the event's time, or
                                           midnight */
    int32_t             grace;          /* days a time trigger may be
                                           late */
    uint32_t            top;            /* yearly_top */
    loyalty_cadence_date_t  dates[LOYALTY_CADENCE_DATES_MAX];
    size_t              ndates;
    int64_t             reward;         /* points, 0: none */
    char                note[LOYALTY_NOTE_MAX];
    size_t              note_len;
    int                 cond;           /* the caller's handle of a
                                           condition; 0: none */
} loyalty_cadence_t;


/* what a condition is asked about */
typedef struct {
    const loyalty_cadence_t  *cadence;
    const char               *member;
    size_t                    member_len;
    const loyalty_member_t   *m;
    const char               *period;
    size_t                    period_len;
    int64_t                   due_at;
    int64_t                   now;
    const loyalty_event_t    *ev;       /* the order; NULL in a sweep */
    const char               *other;    /* referral_converted: the other
                                           party */
    size_t                    other_len;
    int64_t                   spend;    /* yearly_top: the year's */
    uint32_t                  rank;     /* yearly_top: from 1 */
} loyalty_cadence_ask_t;


/*
 * A condition: 1 to schedule, 0 not to, -1 when it failed (not
 * scheduled).  It may read the store in txn and must not write to it.
 */
typedef int (*loyalty_cadence_cond_pt)(void *data, loyalty_store_t *st,
    MDB_txn *txn, const loyalty_cadence_ask_t *ask);


/* loyalty_apply.h names it too, for the hook that carries it */
typedef struct loyalty_cadences_s  loyalty_cadences_t;

struct loyalty_cadences_s {
    loyalty_cadence_t        cadence[LOYALTY_CADENCES_MAX];
    size_t                   n;
    loyalty_cadence_cond_pt  cond;
    void                    *data;
    size_t                   failed;    /* conditions that failed */
    const loyalty_tz_t      *tz;        /* the shop's days; NULL: UTC */
};


/* where a sweep is; zero it to start */
typedef struct {
    int                 phase;
    uint8_t             due_after[LOYALTY_DUE_KEY_MAX];
    size_t              due_after_len;
    char                member_after[LOYALTY_ID_MAX];
    size_t              member_after_len;
    size_t              top;            /* the next yearly_top cadence */

    size_t              members;        /* looked at */
    size_t              scheduled;
    size_t              declined;       /* by a condition */
    size_t              failed;         /* conditions that failed */
    size_t              rewards;        /* credited */
    unsigned            done:1;
} loyalty_sweep_t;


/* "MM-DD" or "YYYY-MM-DD": -1 when it is not a date */
int loyalty_cadence_date_parse(const char *s, size_t len,
    loyalty_cadence_date_t *d);

/* checks a declaration as the Lua reader filled it: -1 with err */
int loyalty_cadence_check(const loyalty_cadence_t *c, char *err,
    size_t errlen);

/*
 * Schedules what an order triggers, in the order's transaction: before
 * and after are the member as they were and are; first says it was the
 * member's first order.  0 or an LMDB error.
 */
int loyalty_cadence_order(loyalty_store_t *st, MDB_txn *txn,
    loyalty_cadences_t *cads, int64_t now, const loyalty_event_t *ev,
    const char *member, size_t mlen, const loyalty_member_t *before,
    const loyalty_member_t *after, int first);

/*
 * One step of a sweep at now, in the caller's write transaction: rewards
 * that fell due, then up to chunk members for the time triggers, then
 * each yearly_top cadence whose year is over.  The caller commits and
 * calls again until sw->done.  0 or an LMDB error, err saying where.
 * cads may be NULL: the rewards only.
 */
int loyalty_sweep_step(loyalty_store_t *st, MDB_txn *txn,
    loyalty_cadences_t *cads, int64_t now, size_t chunk,
    loyalty_sweep_t *sw, char *err, size_t errlen);

/*
 * After a step made from before to sw: a step that scheduled or credited
 * something has noted the members it rewarded, and is sealed
 * (loyalty_changes_seal()), so the workers' member caches retire those
 * members only.  One that did neither is left as it is: the seal would
 * make a commit of a step that may have written nothing (an unsealed
 * write retires every entry, which is never wrong).  0 or an LMDB error.
 */
int loyalty_sweep_seal(loyalty_store_t *st, MDB_txn *txn,
    const loyalty_sweep_t *before, const loyalty_sweep_t *sw, char *err,
    size_t errlen);


#endif /* _LOYALTY_CADENCE_H_INCLUDED_ */
