/*
 * nginx-loyalty: touches of reward cadences and the queue of those due:
 * the records, scheduling, rewards, claims.  Acknowledgements are
 * loyalty_due_ack.c's, statistics loyalty_due_stats.c's.
 */

#include <errno.h>
#include <string.h>

#include "loyalty_due.h"
#include "loyalty_ledger.h"
#include "loyalty_member.h"
#include "loyalty_walk.h"


const char  *loyalty_touch_names[LOYALTY_TOUCH_KINDS] = {
    "call", "message", "letter", "visit", "gift"
};

const char  *loyalty_outcome_names[LOYALTY_OUTCOMES] = {
    "pending", "done", "skipped", "failed"
};

const char  *loyalty_trigger_names[LOYALTY_TRIGGERS] = {
    "order", "first_order", "referral_converted", "spend_crossed",
    "birthday", "inactive", "yearly_top", "calendar"
};


/* the due queue's value: version, touch, flags, 5 reserved, lease */
typedef struct {
    uint8_t     touch;
    uint8_t     flags;
    int64_t     lease_until;    /* 0: not leased */
} loyalty_due_t;


/* the touch record's fixed part after its version (schema/lmdb-layout.md) */
static const loyalty_le_field_t  loyalty_touch_fields[] = {
    loyalty_le_field(1, 1, loyalty_touch_t, state),
    loyalty_le_field(2, 1, loyalty_touch_t, touch),
    loyalty_le_field(3, 1, loyalty_touch_t, trigger),
    loyalty_le_field(4, 1, loyalty_touch_t, flags),
    loyalty_le_field(5, 1, loyalty_touch_t, by_len),
    loyalty_le_field(6, 2, loyalty_touch_t, note_len),
    loyalty_le_field(8, 8, loyalty_touch_t, due_at),
    loyalty_le_field(16, 8, loyalty_touch_t, scheduled_at),
    loyalty_le_field(24, 8, loyalty_touch_t, acked_at),
    loyalty_le_field(32, 8, loyalty_touch_t, reward),
    loyalty_le_field(40, 4, loyalty_touch_t, claims),
    { 0, 0, 0, 0 }
};


size_t
loyalty_touch_encode(const loyalty_touch_t *t, uint8_t *buf)
{
    memset(buf, 0, LOYALTY_TOUCH_FIXED);

    buf[0] = LOYALTY_TOUCH_VERSION;
    loyalty_le_fields_put(buf, loyalty_touch_fields, t);

    loyalty_cpymem(buf + LOYALTY_TOUCH_FIXED, t->by, t->by_len);
    loyalty_cpymem(buf + LOYALTY_TOUCH_FIXED + t->by_len, t->note,
                   t->note_len);

    return LOYALTY_TOUCH_FIXED + t->by_len + t->note_len;
}


int
loyalty_touch_decode(const uint8_t *buf, size_t len, loyalty_touch_t *t)
{
    if (len < LOYALTY_TOUCH_FIXED
        || buf[0] != LOYALTY_TOUCH_VERSION
        || buf[1] >= LOYALTY_OUTCOMES
        || buf[2] >= LOYALTY_TOUCH_KINDS
        || buf[3] >= LOYALTY_TRIGGERS
        || (buf[4] & ~LOYALTY_TOUCH_REWARDED)
        || buf[5] > LOYALTY_ID_MAX
        || loyalty_le_get(buf + 44, 4) != 0)
    {
        return -1;
    }

    loyalty_le_fields_get(buf, loyalty_touch_fields, t);

    if (t->note_len > LOYALTY_NOTE_MAX
        || len != (size_t) LOYALTY_TOUCH_FIXED + t->by_len + t->note_len
        || (t->state == LOYALTY_OUTCOME_PENDING) != (t->acked_at == 0)
        || t->reward < 0)
    {
        return -1;
    }

    t->by = (const char *) buf + LOYALTY_TOUCH_FIXED;
    t->note = t->by + t->by_len;

    return 0;
}


LOYALTY_STORE_REC(loyalty_touch_rec, LOYALTY_DB_TOUCHES, LOYALTY_TOUCH_REC_MAX,
                  loyalty_touch_t, loyalty_touch_decode, loyalty_touch_encode);


/* the due queue's value after its version */
static const loyalty_le_field_t  loyalty_due_fields[] = {
    loyalty_le_field(1, 1, loyalty_due_t, touch),
    loyalty_le_field(2, 1, loyalty_due_t, flags),
    loyalty_le_field(8, 8, loyalty_due_t, lease_until),
    { 0, 0, 0, 0 }
};


static size_t
loyalty_due_encode(const loyalty_due_t *d, uint8_t *buf)
{
    memset(buf, 0, LOYALTY_DUE_REC_LEN);

    buf[0] = LOYALTY_DUE_VERSION;
    loyalty_le_fields_put(buf, loyalty_due_fields, d);

    return LOYALTY_DUE_REC_LEN;
}


static int
loyalty_due_decode(const uint8_t *buf, size_t len, loyalty_due_t *d)
{
    if (len != LOYALTY_DUE_REC_LEN
        || buf[0] != LOYALTY_DUE_VERSION
        || buf[1] >= LOYALTY_TOUCH_KINDS
        || (buf[2] & ~LOYALTY_DUE_REWARD))
    {
        return -1;
    }

    loyalty_le_fields_get(buf, loyalty_due_fields, d);

    return 0;
}


size_t
loyalty_touch_id(const char *cadence, size_t clen, const char *member,
    size_t mlen, const char *period, size_t plen, char *id)
{
    char  *p;

    p = id;
    memcpy(p, cadence, clen);
    p += clen;
    *p++ = ':';
    memcpy(p, member, mlen);
    p += mlen;
    *p++ = ':';
    memcpy(p, period, plen);
    p += plen;

    return (size_t) (p - id);
}


int
loyalty_touch_id_split(const char *id, size_t len, size_t *clen,
    const char **member, size_t *mlen, const char **period, size_t *plen)
{
    const char  *a, *b, *end;

    end = id + len;
    a = memchr(id, ':', len);
    if (a == NULL) {
        return -1;
    }

    b = memchr(a + 1, ':', (size_t) (end - a - 1));
    if (b == NULL) {
        return -1;
    }

    *clen = (size_t) (a - id);
    *member = a + 1;
    *mlen = (size_t) (b - a - 1);
    *period = b + 1;
    *plen = (size_t) (end - b - 1);

    /* a period has a member id's length and characters */
    if (*clen > LOYALTY_CADENCE_NAME_MAX
        || !loyalty_valid_id(id, *clen)
        || !loyalty_valid_id(*member, *mlen)
        || !loyalty_valid_id(*period, *plen))
    {
        return -1;
    }

    return 0;
}


size_t
loyalty_due_key(int64_t due_at, const char *id, size_t len, uint8_t *key)
{
    /* the sign bit flipped: times before 1970 sort first */
    loyalty_be_put(key, (uint64_t) due_at ^ ((uint64_t) 1 << 63));
    memcpy(key + 8, id, len);

    return 8 + len;
}


static int64_t
loyalty_due_key_time(const uint8_t *key)
{
    return (int64_t) (loyalty_be_get(key) ^ ((uint64_t) 1 << 63));
}


int
loyalty_due_exists(loyalty_store_t *st, MDB_txn *txn, const char *id,
    size_t len)
{
    int      rc;
    MDB_val  val;

    rc = loyalty_store_get(txn, st->dbi[LOYALTY_DB_TOUCHES], id, len, &val);

    return rc == 0 ? 1 : (rc == MDB_NOTFOUND ? 0 : rc);
}


int
loyalty_touch_get(loyalty_store_t *st, MDB_txn *txn, const char *id,
    size_t len, uint8_t *buf, loyalty_touch_t *t)
{
    /* a copy: the writes that follow may move the page it is on */
    return loyalty_store_get_rec(txn, st, &loyalty_touch_rec, id, len, buf,
                                 t);
}


int
loyalty_touch_put(loyalty_store_t *st, MDB_txn *txn, const char *id,
    size_t len, const loyalty_touch_t *t)
{
    uint8_t  buf[LOYALTY_TOUCH_REC_MAX];

    return loyalty_store_put_rec(txn, st, &loyalty_touch_rec, id, len, t,
                                 buf);
}


static int
loyalty_due_put(loyalty_store_t *st, MDB_txn *txn, int64_t due_at,
    const char *id, size_t len, const loyalty_due_t *d)
{
    uint8_t  kbuf[LOYALTY_DUE_KEY_MAX];
    uint8_t  vbuf[LOYALTY_DUE_REC_LEN];
    MDB_val  key, val;

    key.mv_data = kbuf;
    key.mv_size = loyalty_due_key(due_at, id, len, kbuf);
    val.mv_data = vbuf;
    val.mv_size = loyalty_due_encode(d, vbuf);

    return mdb_put(txn, st->dbi[LOYALTY_DB_DUE], &key, &val, 0);
}


/*
 * A touch's reward into the member's points and ledger (reason cadence,
 * the cadence's name for the event), when the member is still there.
 */
int
loyalty_due_credit(loyalty_store_t *st, MDB_txn *txn, const char *id,
    size_t len, loyalty_touch_t *t)
{
    int                     rc;
    size_t                  clen, mlen, plen;
    uint8_t                 buf[LOYALTY_MEMBER_MAX];
    const char             *member, *period;
    loyalty_member_t        m;
    loyalty_ledger_entry_t  e;

    t->flags |= LOYALTY_TOUCH_REWARDED;

    if (t->reward == 0
        || loyalty_touch_id_split(id, len, &clen, &member, &mlen, &period,
                                  &plen)
           != 0)
    {
        return 0;
    }

    rc = loyalty_member_get_copy(txn, st, member, mlen, buf, &m);

    /* a member deleted since gets nothing */
    if (rc == MDB_NOTFOUND) {
        return 0;
    }

    if (rc != 0) {
        return rc;
    }

    /* a balance kept within the bound of every balance */
    if (__builtin_add_overflow(m.points, t->reward, &m.points)
        || m.points > LOYALTY_POINTS_MAX)
    {
        return 0;
    }

    rc = loyalty_store_put_rec(txn, st, &loyalty_member_rec, member, mlen,
                               &m, buf);
    if (rc != 0) {
        return rc;
    }

    /* for the workers' member caches: see loyalty_changes_seal() */
    rc = loyalty_changes_note(st, txn, member, mlen);
    if (rc != 0) {
        return rc;
    }

    e.reason = LOYALTY_LEDGER_CADENCE;
    e.delta = t->reward;
    e.at = t->due_at;
    e.event = id;
    e.event_len = (uint8_t) clen;

    return loyalty_ledger_append(st, txn, member, mlen, &e);
}


int
loyalty_due_schedule(loyalty_store_t *st, MDB_txn *txn, const char *id,
    size_t len, const loyalty_touch_t *t, int64_t now)
{
    int              rc;
    loyalty_due_t    d;
    loyalty_touch_t  tc;

    rc = loyalty_due_exists(st, txn, id, len);
    if (rc != 0) {
        return rc == 1 ? MDB_KEYEXIST : rc;
    }

    tc = *t;
    tc.state = LOYALTY_OUTCOME_PENDING;
    tc.acked_at = 0;
    tc.claims = 0;
    tc.flags = 0;
    tc.by_len = 0;

    d.touch = tc.touch;
    d.flags = 0;
    d.lease_until = 0;

    if (tc.reward == 0) {
        tc.flags = LOYALTY_TOUCH_REWARDED;

    } else if (tc.due_at <= now) {
        rc = loyalty_due_credit(st, txn, id, len, &tc);
        if (rc != 0) {
            return rc;
        }

    } else {
        d.flags = LOYALTY_DUE_REWARD;
    }

    rc = loyalty_touch_put(st, txn, id, len, &tc);
    if (rc != 0) {
        return rc;
    }

    return loyalty_due_put(st, txn, tc.due_at, id, len, &d);
}


/* the touch's reward, if it still waits: touch record and due entry */
static int
loyalty_due_reward(loyalty_store_t *st, MDB_txn *txn, const char *id,
    size_t len, loyalty_due_t *d, int64_t due_at)
{
    int              rc;
    uint8_t          buf[LOYALTY_TOUCH_REC_MAX];
    loyalty_touch_t  t;

    d->flags &= ~LOYALTY_DUE_REWARD;

    rc = loyalty_touch_get(st, txn, id, len, buf, &t);
    if (rc != 0) {
        return rc;
    }

    if (!(t.flags & LOYALTY_TOUCH_REWARDED)) {
        rc = loyalty_due_credit(st, txn, id, len, &t);
        if (rc == 0) {
            rc = loyalty_touch_put(st, txn, id, len, &t);
        }

        if (rc != 0) {
            return rc;
        }
    }

    return loyalty_due_put(st, txn, due_at, id, len, d);
}


/* one touch as JSON, for GET .../due and loyaltyctl due */
json_t *
loyalty_touch_json(const char *id, size_t len, const loyalty_touch_t *t,
    int64_t lease_until)
{
    char         when[LOYALTY_RFC3339_LEN + 1];
    size_t       clen, mlen, plen;
    json_t      *o;
    const char  *member, *period;

    if (loyalty_touch_id_split(id, len, &clen, &member, &mlen, &period,
                               &plen)
        != 0)
    {
        return NULL;
    }

    o = json_object();
    if (o == NULL) {
        return NULL;
    }

    json_object_set_new(o, "id", json_stringn(id, len));
    json_object_set_new(o, "cadence", json_stringn(id, clen));
    json_object_set_new(o, "member", json_stringn(member, mlen));
    json_object_set_new(o, "period", json_stringn(period, plen));
    json_object_set_new(o, "touch",
                        json_string(loyalty_touch_names[t->touch]));
    json_object_set_new(o, "trigger",
                        json_string(loyalty_trigger_names[t->trigger]));
    loyalty_format_rfc3339(t->due_at, when);
    json_object_set_new(o, "due_at", json_string(when));
    loyalty_format_rfc3339(t->scheduled_at, when);
    json_object_set_new(o, "scheduled_at", json_string(when));
    json_object_set_new(o, "state",
                        json_string(loyalty_outcome_names[t->state]));
    json_object_set_new(o, "claims", json_integer(t->claims));

    if (t->reward) {
        json_object_set_new(o, "reward", json_integer(t->reward));
        json_object_set_new(o, "rewarded",
                            json_boolean(t->flags & LOYALTY_TOUCH_REWARDED));
    }

    if (t->note_len) {
        json_object_set_new(o, "note", json_stringn(t->note, t->note_len));
    }

    if (lease_until) {
        loyalty_format_rfc3339(lease_until, when);
        json_object_set_new(o, "lease_until", json_string(when));
    }

    if (t->acked_at) {
        loyalty_format_rfc3339(t->acked_at, when);
        json_object_set_new(o, "acked_at", json_string(when));
    }

    if (t->by_len) {
        json_object_set_new(o, "by", json_stringn(t->by, t->by_len));
    }

    return o;
}


/*
 * Walks the queue from after (NULL: its start) to until, taking at most
 * limit entries: visit() is called with each entry's id and due record
 * and may write; it returns 0 when it took the entry, LOYALTY_DUE_PASS
 * when it passed it over, or an LMDB error.  n counts the entries taken;
 * after, when given, is left at the last entry visited.
 */
#define LOYALTY_DUE_PASS  1

typedef int (*loyalty_due_visit_pt)(void *data, loyalty_store_t *st,
    MDB_txn *txn, const char *id, size_t len, int64_t due_at,
    loyalty_due_t *d);

typedef struct {
    uint8_t                *after;
    size_t                 *after_len;
    int64_t                 until;
    size_t                  limit;
    size_t                  n;
    loyalty_due_visit_pt    visit;
    void                   *data;
    int                     rc;
} loyalty_due_walk_t;


/* loyalty_walk()'s visitor: one entry of the queue */
static int
loyalty_due_step(loyalty_walk_t *wk)
{
    int                  rc;
    int64_t              due_at;
    MDB_val             *key = &wk->key;
    loyalty_due_t        d;
    loyalty_due_walk_t  *w = wk->data;

    if (key->mv_size <= 8 || key->mv_size > LOYALTY_DUE_KEY_MAX
        || loyalty_due_decode(wk->val.mv_data, wk->val.mv_size, &d) != 0)
    {
        w->rc = MDB_CORRUPTED;
        return LOYALTY_WALK_STOP;
    }

    due_at = loyalty_due_key_time(key->mv_data);
    if (due_at > w->until) {
        return LOYALTY_WALK_STOP;
    }

    rc = w->visit(w->data, wk->st, wk->txn, (char *) key->mv_data + 8,
                  key->mv_size - 8, due_at, &d);

    if (w->after) {
        memcpy(w->after, key->mv_data, key->mv_size);
        *w->after_len = key->mv_size;
    }

    if (rc == LOYALTY_DUE_PASS) {
        return LOYALTY_WALK_WROTE;
    }

    if (rc != 0) {
        w->rc = rc;
        return LOYALTY_WALK_STOP;
    }

    return (++w->n >= w->limit) ? LOYALTY_WALK_STOP : LOYALTY_WALK_WROTE;
}


static int
loyalty_due_walk(loyalty_store_t *st, MDB_txn *txn, loyalty_due_walk_t *w)
{
    int  rc;

    w->n = 0;
    w->rc = 0;

    if (w->limit == 0) {
        return 0;
    }

    rc = loyalty_walk_after(st, txn, LOYALTY_DB_DUE, w->after,
                            w->after ? *w->after_len : 0, loyalty_due_step, w);

    return rc != 0 ? rc : w->rc;
}


/* data: the count of touches credited */
static int
loyalty_due_reward_one(void *data, loyalty_store_t *st, MDB_txn *txn,
    const char *id, size_t len, int64_t due_at, loyalty_due_t *d)
{
    int      rc;
    size_t  *credited = data;

    if (d->flags & LOYALTY_DUE_REWARD) {
        rc = loyalty_due_reward(st, txn, id, len, d, due_at);
        if (rc != 0) {
            return rc;
        }

        (*credited)++;
    }

    return 0;
}


int
loyalty_due_rewards(loyalty_store_t *st, MDB_txn *txn, int64_t now,
    uint8_t *after, size_t *after_len, size_t max, size_t *n,
    size_t *credited)
{
    int                 rc;
    loyalty_due_walk_t  w = {
        .after = after, .after_len = after_len, .until = now, .limit = max,
        .visit = loyalty_due_reward_one, .data = credited
    };

    *credited = 0;

    rc = loyalty_due_walk(st, txn, &w);

    *n = w.n;

    return rc;
}


/* what GET .../due claims, or loyaltyctl due lists */
typedef struct {
    const loyalty_claim_t  *claim;      /* NULL: list, claiming nothing */
    json_t                 *out;
} loyalty_due_taking_t;


static int
loyalty_due_take_one(void *data, loyalty_store_t *st, MDB_txn *txn,
    const char *id, size_t len, int64_t due_at, loyalty_due_t *d)
{
    int                      rc;
    json_t                  *o;
    uint8_t                  buf[LOYALTY_TOUCH_REC_MAX];
    loyalty_touch_t          t;
    loyalty_due_taking_t    *tk = data;
    const loyalty_claim_t   *c;

    c = tk->claim;

    if (c && (d->lease_until > c->now || !(c->touches & (1u << d->touch))))
    {
        return LOYALTY_DUE_PASS;
    }

    rc = loyalty_touch_get(st, txn, id, len, buf, &t);
    if (rc != 0) {
        return rc;
    }

    if (c) {
        if (!(t.flags & LOYALTY_TOUCH_REWARDED) && due_at <= c->now) {
            rc = loyalty_due_credit(st, txn, id, len, &t);
            if (rc != 0) {
                return rc;
            }

            d->flags &= ~LOYALTY_DUE_REWARD;
        }

        t.claims++;
        d->lease_until = c->now + c->lease;

        rc = loyalty_touch_put(st, txn, id, len, &t);
        if (rc == 0) {
            rc = loyalty_due_put(st, txn, due_at, id, len, d);
        }

        if (rc != 0) {
            return rc;
        }
    }

    o = loyalty_touch_json(id, len, &t, d->lease_until);
    if (o == NULL || json_array_append_new(tk->out, o) != 0) {
        return ENOMEM;
    }

    return 0;
}


static int
loyalty_due_take(loyalty_store_t *st, MDB_txn *txn, const loyalty_claim_t *c,
    int64_t until, size_t limit, json_t *out)
{
    loyalty_due_taking_t  tk = { .claim = c, .out = out };
    loyalty_due_walk_t    w = {
        .until = until, .limit = limit, .visit = loyalty_due_take_one,
        .data = &tk
    };

    return loyalty_due_walk(st, txn, &w);
}


int
loyalty_due_claim(loyalty_store_t *st, MDB_txn *txn,
    const loyalty_claim_t *c, json_t *out)
{
    return loyalty_due_take(st, txn, c, c->until, c->limit, out);
}


int
loyalty_due_list(loyalty_store_t *st, MDB_txn *txn, int64_t until,
    size_t limit, json_t *out)
{
    return loyalty_due_take(st, txn, NULL, until, limit, out);
}
