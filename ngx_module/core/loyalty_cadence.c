/*
 * nginx-loyalty: reward cadences: scheduling by events and by sweeps.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loyalty_cadence.h"
#include "loyalty_member.h"
#include "loyalty_walk.h"


#define LOYALTY_META_TOP            "cadence_top:"


/* a member's spend in a year, for yearly_top */
typedef struct {
    char                id[LOYALTY_ID_MAX];
    size_t              len;
    int64_t             spend;
} loyalty_spender_t;


/*
 * base shifted by the cadence's days, at its hour if it has one: the hour
 * of the shop's clock (cads->tz), on the shop's day, DST included.
 */
static int64_t
loyalty_cadence_at(const loyalty_cadences_t *cads, const loyalty_cadence_t *c,
    int64_t base)
{
    int64_t  t;

    t = base + (int64_t) c->days * LOYALTY_DAY;

    if (c->hour >= 0) {
        t = loyalty_tz_utc(cads->tz, loyalty_tz_day(cads->tz, t) * LOYALTY_DAY
                                     + (int64_t) c->hour * 3600);
    }

    return t;
}


/* the shop's calendar date of t */
static void
loyalty_cadence_civil(const loyalty_cadences_t *cads, int64_t t,
    int64_t *y, int *m, int *d)
{
    loyalty_civil(t + loyalty_tz_offset(cads->tz, t), y, m, d);
}


static size_t
loyalty_format_day(int64_t y, int m, int d, char *buf)
{
    return (size_t) snprintf(buf, 16, "%04d-%02d-%02d", (int) y, m, d);
}


int
loyalty_cadence_date_parse(const char *s, size_t len,
    loyalty_cadence_date_t *d)
{
    int  y, m, day;

    /* "MM-DD" or "YYYY-MM-DD" from 1970 */
    if (loyalty_parse_date(s, len, &y, &m, &day) != 0
        || (y >= 0 && y < 1970))
    {
        return -1;
    }

    d->year = (int16_t) (y < 0 ? 0 : y);
    d->month = (uint8_t) m;
    d->day = (uint8_t) day;

    return 0;
}


int
loyalty_cadence_check(const loyalty_cadence_t *c, char *err, size_t errlen)
{
    int32_t  min;

    min = (c->trigger == LOYALTY_TRIGGER_BIRTHDAY
           || c->trigger == LOYALTY_TRIGGER_CALENDAR)
          ? -LOYALTY_CADENCE_DAYS_MAX : 0;

    if (c->days < min || c->days > LOYALTY_CADENCE_DAYS_MAX) {
        snprintf(err, errlen, "\"days\" must be %d to %d for the trigger "
                 "\"%s\"", (int) min, LOYALTY_CADENCE_DAYS_MAX,
                 loyalty_trigger_names[c->trigger]);
        return -1;
    }

    if (c->trigger == LOYALTY_TRIGGER_INACTIVE && c->days < 1) {
        snprintf(err, errlen, "an \"inactive\" cadence needs \"days\" of "
                 "silence, at least 1");
        return -1;
    }

    if (c->trigger == LOYALTY_TRIGGER_YEARLY_TOP
        && (c->top < 1 || c->top > LOYALTY_CADENCE_TOP_MAX))
    {
        snprintf(err, errlen, "a \"yearly_top\" cadence needs \"top\", "
                 "1 to %d", LOYALTY_CADENCE_TOP_MAX);
        return -1;
    }

    if (c->trigger == LOYALTY_TRIGGER_YEARLY_TOP && c->days > 300) {
        snprintf(err, errlen, "a \"yearly_top\" cadence falls due at most "
                 "300 days into the next year");
        return -1;
    }

    if (c->trigger == LOYALTY_TRIGGER_CALENDAR && c->ndates == 0) {
        snprintf(err, errlen, "a \"calendar\" cadence needs \"dates\"");
        return -1;
    }

    if (c->trigger == LOYALTY_TRIGGER_SPEND_CROSSED && c->threshold < 1) {
        snprintf(err, errlen, "a \"spend_crossed\" cadence needs a "
                 "\"threshold\" of at least 1");
        return -1;
    }

    if (c->hour < -1 || c->hour > 23) {
        snprintf(err, errlen, "\"hour\" must be 0 to 23");
        return -1;
    }

    if (c->grace < 0 || c->grace > 366) {
        snprintf(err, errlen, "\"grace\" must be 0 to 366 days");
        return -1;
    }

    return 0;
}


/*
 * Schedules one touch unless it was ever scheduled or the condition says
 * no: 0 or an LMDB error.
 */
static int
loyalty_cadence_put(loyalty_store_t *st, MDB_txn *txn,
    loyalty_cadences_t *cads, const loyalty_cadence_ask_t *ask,
    loyalty_sweep_t *sw)
{
    int                       rc;
    char                      id[LOYALTY_TOUCH_ID_MAX];
    size_t                    len;
    loyalty_touch_t           t;
    const loyalty_cadence_t  *c;

    c = ask->cadence;

    len = loyalty_touch_id(c->name, c->name_len, ask->member,
                           ask->member_len, ask->period, ask->period_len,
                           id);

    rc = loyalty_due_exists(st, txn, id, len);
    if (rc != 0) {
        return rc == 1 ? 0 : rc;
    }

    if (c->cond && cads->cond) {
        rc = cads->cond(cads->data, st, txn, ask);

        if (rc < 0) {
            cads->failed++;
            if (sw) {
                sw->failed++;
            }

            return 0;
        }

        if (rc == 0) {
            if (sw) {
                sw->declined++;
            }

            return 0;
        }
    }

    memset(&t, 0, sizeof(loyalty_touch_t));
    t.touch = (uint8_t) c->touch;
    t.trigger = (uint8_t) c->trigger;
    t.due_at = ask->due_at;
    t.scheduled_at = ask->now;
    t.reward = c->reward;
    t.note = c->note;
    t.note_len = (uint16_t) c->note_len;

    rc = loyalty_due_schedule(st, txn, id, len, &t, ask->now);

    if (rc == 0 && sw) {
        sw->scheduled++;
    }

    return rc == MDB_KEYEXIST ? 0 : rc;
}


int
loyalty_cadence_order(loyalty_store_t *st, MDB_txn *txn,
    loyalty_cadences_t *cads, int64_t now, const loyalty_event_t *ev,
    const char *member, size_t mlen, const loyalty_member_t *before,
    const loyalty_member_t *after, int first)
{
    int                       rc;
    char                      threshold[24];
    size_t                    i;
    uint8_t                   rbuf[LOYALTY_MEMBER_MAX];
    loyalty_member_t          ref;
    loyalty_cadence_ask_t     ask;
    const loyalty_cadence_t  *c;

    if (cads == NULL || (after->flags & LOYALTY_MEMBER_BLOCKED)) {
        return 0;
    }

    for (i = 0; i < cads->n; i++) {
        c = &cads->cadence[i];

        memset(&ask, 0, sizeof(loyalty_cadence_ask_t));
        ask.cadence = c;
        ask.member = member;
        ask.member_len = mlen;
        ask.m = after;
        ask.period = ev->id;
        ask.period_len = ev->id_len;
        ask.due_at = loyalty_cadence_at(cads, c, ev->at);
        ask.now = now;
        ask.ev = ev;

        switch (c->trigger) {

        case LOYALTY_TRIGGER_ORDER:
            if (ev->amount < c->over) {
                continue;
            }

            break;

        case LOYALTY_TRIGGER_FIRST_ORDER:
            if (!first) {
                continue;
            }

            break;

        case LOYALTY_TRIGGER_REFERRAL_CONVERTED:
            if (!first || after->referrer_len == 0) {
                continue;
            }

            ask.other = after->referrer;
            ask.other_len = after->referrer_len;

            if (c->for_member) {
                break;
            }

            rc = loyalty_member_get_copy(txn, st, after->referrer,
                                         after->referrer_len, rbuf, &ref);

            /* a referrer deleted or blocked since is not thanked */
            if (rc == MDB_NOTFOUND
                || (rc == 0 && (ref.flags & LOYALTY_MEMBER_BLOCKED)))
            {
                continue;
            }

            if (rc != 0) {
                return rc;
            }

            ask.member = after->referrer;
            ask.member_len = after->referrer_len;
            ask.m = &ref;
            ask.other = member;
            ask.other_len = mlen;
            ask.period = member;
            ask.period_len = mlen;
            break;

        case LOYALTY_TRIGGER_SPEND_CROSSED:
            if (!(before->spend < c->threshold
                  && after->spend >= c->threshold))
            {
                continue;
            }

            ask.period = threshold;
            ask.period_len = (size_t) snprintf(threshold, sizeof(threshold),
                                               "%lld",
                                               (long long) c->threshold);
            break;

        default:
            continue;
        }

        rc = loyalty_cadence_put(st, txn, cads, &ask, NULL);
        if (rc != 0) {
            return rc;
        }
    }

    return 0;
}


/* is a time trigger's due time within the sweep's reach at now */
static int
loyalty_cadence_window(const loyalty_cadence_t *c, int64_t due, int64_t now)
{
    return due - LOYALTY_CADENCE_LEAD <= now
           && now <= due + (int64_t) c->grace * LOYALTY_DAY;
}


/*
 * The start of a yearly date's day in year y, on the shop's clock: 02-29
 * is 02-28 in other years.
 */
static int64_t
loyalty_cadence_day(const loyalty_cadences_t *cads, int64_t y, int m, int d)
{
    if (d > loyalty_month_days((int) y, m)) {
        d = loyalty_month_days((int) y, m);
    }

    return loyalty_tz_utc(cads->tz,
                          loyalty_days_from_civil(y, m, d) * LOYALTY_DAY);
}


/*
 * A birthday's or a calendar date's touches in the years around year:
 * those whose due time falls in the cadence's window.
 */
static int
loyalty_cadence_date_due(loyalty_store_t *st, MDB_txn *txn,
    loyalty_cadences_t *cads, const loyalty_cadence_date_t *date,
    int64_t year, char *period, loyalty_cadence_ask_t *ask,
    loyalty_sweep_t *sw)
{
    int                       rc;
    int64_t                   y;
    const loyalty_cadence_t  *c;

    c = ask->cadence;

    for (y = year - 1; y <= year + 1; y++) {
        if (date->year && date->year != y) {
            continue;
        }

        ask->due_at = loyalty_cadence_at(cads, c,
                                         loyalty_cadence_day(cads, y,
                                                             date->month,
                                                             date->day));
        if (!loyalty_cadence_window(c, ask->due_at, ask->now)) {
            continue;
        }

        if (c->trigger == LOYALTY_TRIGGER_BIRTHDAY) {
            ask->period_len = (size_t) snprintf(period, 16, "%04d", (int) y);

        } else {
            ask->period_len = loyalty_format_day(y, date->month, date->day,
                                                 period);
        }

        rc = loyalty_cadence_put(st, txn, cads, ask, sw);
        if (rc != 0) {
            return rc;
        }
    }

    return 0;
}


/* the time triggers of one member */
static int
loyalty_cadence_member_due(loyalty_store_t *st, MDB_txn *txn,
    loyalty_cadences_t *cads, int64_t now, const char *id, size_t len,
    const loyalty_member_t *m, loyalty_sweep_t *sw)
{
    int                       rc, mo, d;
    char                      period[16];
    size_t                    i, k;
    int64_t                   year, y, due;
    loyalty_cadence_ask_t     ask;
    const loyalty_cadence_t  *c;
    loyalty_cadence_date_t    date;

    loyalty_cadence_civil(cads, now, &year, &mo, &d);

    memset(&date, 0, sizeof(loyalty_cadence_date_t));
    memset(&ask, 0, sizeof(loyalty_cadence_ask_t));
    ask.member = id;
    ask.member_len = len;
    ask.m = m;
    ask.now = now;
    ask.period = period;

    for (i = 0; i < cads->n; i++) {
        c = &cads->cadence[i];
        ask.cadence = c;

        switch (c->trigger) {

        case LOYALTY_TRIGGER_INACTIVE:
            if (!(m->flags & LOYALTY_MEMBER_LAST_ORDER)) {
                continue;
            }

            due = loyalty_cadence_at(cads, c, m->last_order_at);
            if (due - LOYALTY_CADENCE_LEAD > now) {
                continue;
            }

            /* one touch per silence: the period is the last order's day */
            loyalty_cadence_civil(cads, m->last_order_at, &y, &mo, &d);
            ask.period_len = loyalty_format_day(y, mo, d, period);
            ask.due_at = due;

            rc = loyalty_cadence_put(st, txn, cads, &ask, sw);
            break;

        case LOYALTY_TRIGGER_BIRTHDAY:
            if (!(m->flags & LOYALTY_MEMBER_BIRTHDAY)) {
                continue;
            }

            date.month = m->birth_month;
            date.day = m->birth_day;

            rc = loyalty_cadence_date_due(st, txn, cads, &date, year, period,
                                          &ask, sw);
            break;

        case LOYALTY_TRIGGER_CALENDAR:
            /* each of the cadence's dates (a calendar cadence has one) */
            for (k = 0, rc = 0; rc == 0 && k < c->ndates; k++) {
                rc = loyalty_cadence_date_due(st, txn, cads, &c->dates[k],
                                              year, period, &ask, sw);
            }

            break;

        default:
            continue;
        }

        if (rc != 0) {
            return rc;
        }
    }

    return 0;
}


static int
loyalty_cadence_has_time(const loyalty_cadences_t *cads)
{
    size_t  i;

    for (i = 0; i < cads->n; i++) {
        switch (cads->cadence[i].trigger) {
        case LOYALTY_TRIGGER_BIRTHDAY:
        case LOYALTY_TRIGGER_INACTIVE:
        case LOYALTY_TRIGGER_CALENDAR:
            return 1;
        default:
            break;
        }
    }

    return 0;
}


/* what a sweep of the members walks with */
typedef struct {
    loyalty_cadences_t  *cads;
    int64_t              now;
    size_t               chunk;
    size_t               n;
    loyalty_sweep_t     *sw;
    char                *err;
    size_t               errlen;
    int                  rc;        /* what stopped the walk, if it failed */
} loyalty_sweeping_t;


static int
loyalty_sweep_member(loyalty_walk_t *w)
{
    int                  rc, wrote;
    size_t               before;
    uint8_t              vbuf[LOYALTY_MEMBER_MAX];
    MDB_val             *key = &w->key, *val = &w->val;
    loyalty_sweep_t     *sw;
    loyalty_member_t     m;
    loyalty_sweeping_t  *s = w->data;

    sw = s->sw;

    if (key->mv_size > LOYALTY_ID_MAX || val->mv_size > sizeof(vbuf)) {
        s->rc = MDB_CORRUPTED;
        return LOYALTY_WALK_STOP;
    }

    memcpy(vbuf, val->mv_data, val->mv_size);

    if (loyalty_member_decode(vbuf, val->mv_size, &m) != 0) {
        snprintf(s->err, s->errlen, "member \"%.*s\" does not decode",
                 (int) key->mv_size, (char *) key->mv_data);
        s->rc = MDB_CORRUPTED;
        return LOYALTY_WALK_STOP;
    }

    memcpy(sw->member_after, key->mv_data, key->mv_size);
    sw->member_after_len = key->mv_size;
    sw->members++;
    s->n++;

    wrote = 0;

    if (!(m.flags & LOYALTY_MEMBER_BLOCKED)) {
        before = sw->scheduled;

        rc = loyalty_cadence_member_due(w->st, w->txn, s->cads, s->now,
                                        key->mv_data, key->mv_size, &m, sw);
        if (rc != 0) {
            s->rc = rc;
            return LOYALTY_WALK_STOP;
        }

        wrote = (sw->scheduled != before);
    }

    if (s->n == s->chunk) {
        return LOYALTY_WALK_STOP;
    }

    return wrote ? LOYALTY_WALK_WROTE : LOYALTY_WALK_NEXT;
}


/* up to chunk members after sw->member_after; the next phase at the end */
static int
loyalty_sweep_members(loyalty_store_t *st, MDB_txn *txn,
    loyalty_cadences_t *cads, int64_t now, size_t chunk,
    loyalty_sweep_t *sw, char *err, size_t errlen)
{
    int                 rc;
    loyalty_sweeping_t  s;

    if (chunk == 0) {
        return 0;
    }

    s.cads = cads;
    s.now = now;
    s.chunk = chunk;
    s.n = 0;
    s.sw = sw;
    s.err = err;
    s.errlen = errlen;
    s.rc = 0;

    rc = loyalty_walk_after(st, txn, LOYALTY_DB_MEMBERS, sw->member_after,
                            sw->member_after_len, loyalty_sweep_member, &s);
    if (rc == 0) {
        rc = s.rc;
    }

    if (rc == 0 && s.n < chunk) {
        sw->phase++;
    }

    return rc;
}


static int
loyalty_spender_by_id(const void *a, const void *b)
{
    const loyalty_spender_t  *x = a, *y = b;
    int                       c;

    c = memcmp(x->id, y->id, x->len < y->len ? x->len : y->len);

    return c ? c : (x->len > y->len) - (x->len < y->len);
}


static int
loyalty_spender_by_spend(const void *a, const void *b)
{
    const loyalty_spender_t  *x = a, *y = b;

    if (x->spend != y->spend) {
        return x->spend < y->spend ? 1 : -1;
    }

    return loyalty_spender_by_id(a, b);
}


/* the orders of a year, gathered by loyalty_year_order() */
typedef struct {
    int64_t              from;
    int64_t              to;
    loyalty_spender_t   *sp;
    size_t               cap;
    size_t               k;
} loyalty_year_orders_t;


/* loyalty_walk()'s visitor: one order event */
static int
loyalty_year_order(loyalty_walk_t *w)
{
    loyalty_spender_t      *p;
    loyalty_event_rec_t     e;
    loyalty_year_orders_t  *yo = w->data;

    if (loyalty_event_rec_decode(w->val.mv_data, w->val.mv_size, &e) != 0) {
        return MDB_CORRUPTED;
    }

    if (e.at < yo->from || e.at >= yo->to || e.amount == e.refunded) {
        return LOYALTY_WALK_NEXT;
    }

    if (yo->k == yo->cap) {
        yo->cap = yo->cap ? yo->cap * 2 : 1024;
        p = realloc(yo->sp, yo->cap * sizeof(loyalty_spender_t));

        if (p == NULL) {
            return ENOMEM;
        }

        yo->sp = p;
    }

    p = &yo->sp[yo->k++];
    memcpy(p->id, e.member, e.member_len);
    p->len = e.member_len;
    p->spend = e.amount - e.refunded;

    return LOYALTY_WALK_NEXT;
}


/*
 * Every member's spend in year y, less refunds, largest first; merged in
 * place.  *n is how many members had one.
 */
static int
loyalty_year_spenders(loyalty_store_t *st, MDB_txn *txn,
    const loyalty_cadences_t *cads, int64_t y, loyalty_spender_t **out,
    size_t *n)
{
    int                     rc;
    size_t                  i, k;
    loyalty_spender_t      *sp, *p;
    loyalty_year_orders_t   yo;

    /* the shop's year */
    yo.from = loyalty_cadence_day(cads, y, 1, 1);
    yo.to = loyalty_cadence_day(cads, y + 1, 1, 1);
    yo.sp = NULL;
    yo.cap = 0;
    yo.k = 0;

    *out = NULL;
    *n = 0;

    rc = loyalty_walk(st, txn, LOYALTY_DB_EVENTS, "o", 1, 1,
                      loyalty_year_order, &yo);

    sp = yo.sp;
    k = yo.k;

    if (rc != 0) {
        free(sp);
        return rc;
    }

    if (k) {
        qsort(sp, k, sizeof(loyalty_spender_t), loyalty_spender_by_id);

        for (i = 1, *n = 1; i < k; i++) {
            p = &sp[*n - 1];

            if (loyalty_spender_by_id(p, &sp[i]) == 0) {
                p->spend += sp[i].spend;
            } else {
                sp[(*n)++] = sp[i];
            }
        }

        qsort(sp, *n, sizeof(loyalty_spender_t), loyalty_spender_by_spend);
    }

    *out = sp;

    return 0;
}


/* the top spenders of the year that a yearly_top cadence is due for */
static int
loyalty_sweep_top(loyalty_store_t *st, MDB_txn *txn,
    loyalty_cadences_t *cads, const loyalty_cadence_t *c, int64_t now,
    loyalty_sweep_t *sw)
{
    int                     rc, mo, d;
    char                    mkey[64], period[8];
    size_t                  i, n, rank;
    int64_t                 year, y, due;
    uint8_t                 mbuf[LOYALTY_MEMBER_MAX];
    MDB_val                 val;
    loyalty_member_t        m;
    loyalty_spender_t      *sp;
    loyalty_cadence_ask_t   ask;

    loyalty_cadence_civil(cads, now, &year, &mo, &d);

    for (y = year - 2; y < year; y++) {
        due = loyalty_cadence_at(cads, c, loyalty_cadence_day(cads, y + 1, 1,
                                                              1));

        if (!loyalty_cadence_window(c, due, now)) {
            continue;
        }

        /* once a year is done it is marked, not counted again */
        snprintf(mkey, sizeof(mkey), "%s%.*s:%04d", LOYALTY_META_TOP,
                 (int) c->name_len, c->name, (int) y);

        rc = loyalty_store_meta_get(st, txn, mkey, &val);
        if (rc == 0) {
            continue;
        }

        if (rc != MDB_NOTFOUND) {
            return rc;
        }

        rc = loyalty_year_spenders(st, txn, cads, y, &sp, &n);
        if (rc != 0) {
            return rc;
        }

        memset(&ask, 0, sizeof(loyalty_cadence_ask_t));
        ask.cadence = c;
        ask.now = now;
        ask.due_at = due;
        ask.period = period;
        ask.period_len = (size_t) snprintf(period, sizeof(period), "%04d",
                                           (int) y);

        for (i = 0, rank = 0; i < n && rank < c->top; i++) {
            rc = loyalty_member_get_copy(txn, st, sp[i].id, sp[i].len,
                                         mbuf, &m);

            /* the year's top are members still here and not blocked */
            if (rc == MDB_NOTFOUND
                || (rc == 0 && (m.flags & LOYALTY_MEMBER_BLOCKED)))
            {
                continue;
            }

            if (rc != 0) {
                break;
            }

            ask.member = sp[i].id;
            ask.member_len = sp[i].len;
            ask.m = &m;
            ask.spend = sp[i].spend;
            ask.rank = (uint32_t) ++rank;

            rc = loyalty_cadence_put(st, txn, cads, &ask, sw);
            if (rc != 0) {
                break;
            }
        }

        free(sp);

        if (rc != 0) {
            return rc;
        }

        rc = loyalty_store_meta_put_int(st, txn, mkey, 8, (uint64_t) now);
        if (rc != 0) {
            return rc;
        }
    }

    return 0;
}


int
loyalty_sweep_step(loyalty_store_t *st, MDB_txn *txn,
    loyalty_cadences_t *cads, int64_t now, size_t chunk,
    loyalty_sweep_t *sw, char *err, size_t errlen)
{
    int                       rc;
    size_t                    n, credited;
    const loyalty_cadence_t  *c;

    if (sw->phase == 0) {
        rc = loyalty_due_rewards(st, txn, now, sw->due_after,
                                 &sw->due_after_len, chunk, &n, &credited);
        if (rc != 0) {
            snprintf(err, errlen, "crediting rewards: %s", mdb_strerror(rc));
            return rc;
        }

        sw->rewards += credited;

        if (n == chunk) {
            return 0;
        }

        sw->phase = (cads && loyalty_cadence_has_time(cads)) ? 1 : 2;
    }

    if (sw->phase == 1) {
        rc = loyalty_sweep_members(st, txn, cads, now, chunk, sw, err,
                                   errlen);
        if (rc != 0) {
            if (rc != MDB_CORRUPTED) {
                snprintf(err, errlen, "sweeping members: %s",
                         mdb_strerror(rc));
            }

            return rc;
        }

        return 0;
    }

    /* one yearly_top cadence a step: each reads a year of orders */
    while (cads && sw->top < cads->n) {
        c = &cads->cadence[sw->top++];

        if (c->trigger != LOYALTY_TRIGGER_YEARLY_TOP) {
            continue;
        }

        rc = loyalty_sweep_top(st, txn, cads, c, now, sw);
        if (rc != 0) {
            snprintf(err, errlen, "the top spenders for \"%.*s\": %s",
                     (int) c->name_len, c->name, mdb_strerror(rc));
            return rc;
        }

        return 0;
    }

    sw->done = 1;

    return 0;
}


int
loyalty_sweep_seal(loyalty_store_t *st, MDB_txn *txn,
    const loyalty_sweep_t *before, const loyalty_sweep_t *sw, char *err,
    size_t errlen)
{
    int  rc;

    if (sw->scheduled == before->scheduled
        && sw->rewards == before->rewards)
    {
        return 0;
    }

    rc = loyalty_changes_seal(st, txn);
    if (rc != 0) {
        snprintf(err, errlen, "sealing the step's changes: %s",
                 mdb_strerror(rc));
    }

    return rc;
}
