/*
 * Unit tests of loyalty_cadence.c and loyalty_due.c: every trigger, with
 * time travel across days, a month, a year's end and 29 February; leases,
 * re-delivery and acknowledgements; the exactly-once reward; conditions
 * that decline or fail.  Cadences are declared in C here; the Lua side
 * is tested through nginx and loyaltyctl in t/cadence*.t.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loyalty_admin.h"
#include "loyalty_batch.h"
#include "loyalty_cadence.h"
#include "loyalty_due.h"
#include "loyalty_ledger.h"
#include "store_fixture.h"
#include "tap.h"


#define PLANNED  117


/* the store's directory, made by mkdtemp() from this template */
static char                 tmp[FIXTURE_PATH_MAX];
static loyalty_store_t      st;
static loyalty_cadences_t   cads;
static loyalty_event_hook_t hook = { NULL, NULL, &cads };
static int                  cond_answer = 1;
static int                  cond_calls;


static int64_t
at(const char *s)
{
    int64_t  t;

    if (loyalty_parse_rfc3339(s, strlen(s), &t) != 0) {
        fprintf(stderr, "bad time %s\n", s);
        exit(2);
    }

    return t;
}


static int
cond(void *data, loyalty_store_t *s, MDB_txn *txn,
    const loyalty_cadence_ask_t *ask)
{
    cond_calls++;
    return cond_answer;
}


static loyalty_cadence_t *
declare(const char *name, loyalty_trigger_e trigger, loyalty_touch_e touch)
{
    loyalty_cadence_t  *c;

    c = &cads.cadence[cads.n++];
    memset(c, 0, sizeof(loyalty_cadence_t));
    c->name_len = strlen(name);
    memcpy(c->name, name, c->name_len);
    c->trigger = trigger;
    c->touch = touch;
    c->hour = -1;
    c->grace = LOYALTY_CADENCE_GRACE;

    return c;
}


static int
member(const char *id, const char *json)
{
    int       rc;
    char      err[LOYALTY_ERRLEN];
    json_t   *doc;
    MDB_txn  *txn;

    doc = json_loads(json, 0, NULL);
    if (doc == NULL || mdb_txn_begin(st.env, NULL, 0, &txn) != 0) {
        return -100;
    }

    json_object_set_new(doc, "id", json_string(id));
    json_object_set_new(doc, "tier", json_string("basic"));

    if (json_object_get(doc, "stage") == NULL) {
        json_object_set_new(doc, "stage", json_string("customer"));
    }

    rc = loyalty_admin_put(&st, txn, "member", id, strlen(id), doc, NULL,
                           NULL, 0, at("2026-01-01T00:00:00Z"), err,
                           sizeof(err));
    json_decref(doc);

    if (rc == 0) {
        rc = mdb_txn_commit(txn);
    } else {
        fprintf(stderr, "# member %s: %s\n", id, err);
        mdb_txn_abort(txn);
    }

    return rc;
}


static int
apply(const char *body, int64_t now)
{
    int              rc;
    char             err[LOYALTY_ERRLEN];
    MDB_txn         *txn;
    loyalty_batch_t  res;

    if (mdb_txn_begin(st.env, NULL, 0, &txn) != 0) {
        return -100;
    }

    rc = loyalty_batch_apply(&st, txn, body, strlen(body), 1000, now, &hook,
                             &res, err, sizeof(err));
    loyalty_batch_free(&res);

    if (rc == 0) {
        return mdb_txn_commit(txn);
    }

    mdb_txn_abort(txn);
    return rc;
}


static loyalty_sweep_t
sweep(int64_t now)
{
    char             err[LOYALTY_ERRLEN];
    MDB_txn         *txn;
    loyalty_sweep_t  sw;

    memset(&sw, 0, sizeof(loyalty_sweep_t));

    while (!sw.done) {
        if (mdb_txn_begin(st.env, NULL, 0, &txn) != 0
            || loyalty_sweep_step(&st, txn, &cads, now, 3, &sw, err,
                                  sizeof(err))
               != 0
            || mdb_txn_commit(txn) != 0)
        {
            fprintf(stderr, "# sweep: %s\n", err);
            break;
        }
    }

    return sw;
}


/* the touch's record: 0, or -1 when it has none */
static int
touch(const char *id, loyalty_touch_t *t, uint8_t *buf)
{
    int       rc;
    MDB_txn  *txn;
    MDB_val   key, val;

    mdb_txn_begin(st.env, NULL, MDB_RDONLY, &txn);
    key.mv_data = (void *) id;
    key.mv_size = strlen(id);
    rc = mdb_get(txn, st.dbi[LOYALTY_DB_TOUCHES], &key, &val);

    if (rc == 0) {
        memcpy(buf, val.mv_data, val.mv_size);
        rc = loyalty_touch_decode(buf, val.mv_size, t);
    }

    mdb_txn_abort(txn);

    return rc == 0 ? 0 : -1;
}


static int
has_touch(const char *id)
{
    uint8_t          buf[LOYALTY_TOUCH_REC_MAX];
    loyalty_touch_t  t;

    return touch(id, &t, buf) == 0;
}


static int64_t
due_at(const char *id)
{
    uint8_t          buf[LOYALTY_TOUCH_REC_MAX];
    loyalty_touch_t  t;

    return touch(id, &t, buf) == 0 ? t.due_at : -1;
}


static int64_t
points(const char *id)
{
    int64_t           p;
    MDB_txn          *txn;
    MDB_val           key, val;
    loyalty_member_t  m;

    mdb_txn_begin(st.env, NULL, MDB_RDONLY, &txn);
    key.mv_data = (void *) id;
    key.mv_size = strlen(id);
    p = -1;

    if (mdb_get(txn, st.dbi[LOYALTY_DB_MEMBERS], &key, &val) == 0
        && loyalty_member_decode(val.mv_data, val.mv_size, &m) == 0)
    {
        p = m.points;
    }

    mdb_txn_abort(txn);

    return p;
}


static int64_t
ledger_sum(const char *id)
{
    size_t    n;
    int64_t   sum;
    MDB_txn  *txn;

    mdb_txn_begin(st.env, NULL, MDB_RDONLY, &txn);
    sum = -1;
    (void) loyalty_ledger_sum(&st, txn, id, strlen(id), &sum, &n);
    mdb_txn_abort(txn);

    return sum;
}


/* claims as GET .../due does; the answer's ids, space-separated */
static size_t
claim(int64_t now, int64_t until, size_t limit, unsigned kinds,
    char *ids, size_t idlen)
{
    size_t           i, n;
    json_t          *list, *e;
    MDB_txn         *txn;
    loyalty_claim_t  c;

    c.now = now;
    c.until = until;
    c.lease = 600;
    c.limit = limit;
    c.touches = kinds;

    list = json_array();
    mdb_txn_begin(st.env, NULL, 0, &txn);

    if (loyalty_due_claim(&st, txn, &c, list) != 0) {
        mdb_txn_abort(txn);
        json_decref(list);
        return (size_t) -1;
    }

    mdb_txn_commit(txn);

    ids[0] = '\0';
    n = json_array_size(list);

    json_array_foreach(list, i, e) {
        snprintf(ids + strlen(ids), idlen - strlen(ids), "%s%s",
                 i ? " " : "",
                 json_string_value(json_object_get(e, "id")));
    }

    json_decref(list);

    return n;
}


static int
ack(const char *id, loyalty_outcome_e outcome, const char *by, int64_t now)
{
    int       rc;
    MDB_txn  *txn;

    mdb_txn_begin(st.env, NULL, 0, &txn);
    rc = loyalty_due_ack(&st, txn, id, strlen(id), outcome, by,
                         by ? strlen(by) : 0, now);
    mdb_txn_commit(txn);

    return rc;
}


static void
test_dates(void)
{
    loyalty_cadence_date_t  d;

    ok(loyalty_cadence_date_parse("12-25", 5, &d) == 0 && d.year == 0
       && d.month == 12 && d.day == 25, "date: MM-DD");
    ok(loyalty_cadence_date_parse("02-29", 5, &d) == 0, "date: 02-29");
    ok(loyalty_cadence_date_parse("2027-03-15", 10, &d) == 0
       && d.year == 2027 && d.month == 3, "date: YYYY-MM-DD");
    ok(loyalty_cadence_date_parse("2027-02-29", 10, &d) != 0,
       "date: 2027-02-29 does not exist");
    ok(loyalty_cadence_date_parse("13-01", 5, &d) != 0, "date: month 13");
    ok(loyalty_cadence_date_parse("1-1", 3, &d) != 0, "date: short");
    ok(loyalty_cadence_date_parse("12/25", 5, &d) != 0, "date: slash");
}


static void
test_ids(void)
{
    char         id[LOYALTY_TOUCH_ID_MAX];
    size_t       len, clen, mlen, plen;
    const char  *m, *p;

    len = loyalty_touch_id("call", 4, "wang", 4, "o-1", 3, id);
    is_mem(id, "call:wang:o-1", len, "touch id");
    ok(loyalty_touch_id_split(id, len, &clen, &m, &mlen, &p, &plen) == 0
       && clen == 4 && mlen == 4 && plen == 3, "touch id splits");
    ok(loyalty_touch_id_split("call:wang", 9, &clen, &m, &mlen, &p, &plen)
       != 0, "an id without a period");
    ok(loyalty_touch_id_split("call::2026", 10, &clen, &m, &mlen, &p, &plen)
       != 0, "an id without a member");
    ok(loyalty_touch_id_split("c all:w:1", 9, &clen, &m, &mlen, &p, &plen)
       != 0, "an id with a space");
    ok(loyalty_touch_id_split("a:b:c:d", 7, &clen, &m, &mlen, &p, &plen)
       != 0, "an id with a fourth part");
}


static void
test_orders(void)
{
    char                ids[4096];
    loyalty_cadence_t  *c;
    int64_t             now;

    now = at("2026-03-01T12:00:00Z");

    c = declare("product_call", LOYALTY_TRIGGER_ORDER, LOYALTY_TOUCH_CALL);
    c->over = 50000;
    c->days = 7;
    c->hour = 10;

    c = declare("first_thanks", LOYALTY_TRIGGER_FIRST_ORDER,
                LOYALTY_TOUCH_MESSAGE);

    c = declare("ref_thanks", LOYALTY_TRIGGER_REFERRAL_CONVERTED,
                LOYALTY_TOUCH_MESSAGE);
    c->reward = 200;

    c = declare("ref_followup", LOYALTY_TRIGGER_REFERRAL_CONVERTED,
                LOYALTY_TOUCH_CALL);
    c->for_member = 1;
    c->days = 7;

    c = declare("spend_10k", LOYALTY_TRIGGER_SPEND_CROSSED,
                LOYALTY_TOUCH_LETTER);
    c->threshold = 1000000;

    is_int(member("ann", "{\"stage\":\"customer\"}"), 0, "member ann");
    is_int(member("bob", "{\"referrer\":\"ann\"}"), 0, "member bob");

    is_int(apply("{\"type\":\"order\",\"member\":\"bob\",\"order_id\":\"o1\","
                 "\"amount\":60000,\"at\":\"2026-03-01T09:30:00Z\"}", now),
           0, "bob's first order");

    ok(has_touch("product_call:bob:o1"), "an order over 500.00: a call");
    is_int(due_at("product_call:bob:o1"), at("2026-03-08T10:00:00Z"),
           "due 7 days on, at 10:00");
    ok(has_touch("first_thanks:bob:o1"), "first order: thanks");
    ok(has_touch("ref_thanks:ann:bob"), "referral converted: the referrer");
    is_int(due_at("ref_thanks:ann:bob"), at("2026-03-01T09:30:00Z"),
           "the referrer's thanks is due the same day");
    ok(has_touch("ref_followup:bob:o1"), "referral converted: the member");
    ok(!has_touch("spend_10k:bob:1000000"), "600.00 crosses no 10,000.00");
    is_int(points("ann"), 200, "the referrer's reward, due now, credited");
    is_int(ledger_sum("ann"), 200, "and in the ledger");

    is_int(apply("{\"type\":\"order\",\"member\":\"bob\",\"order_id\":\"o1\","
                 "\"amount\":60000,\"at\":\"2026-03-01T09:30:00Z\"}", now),
           0, "the same order again");
    is_int(points("ann"), 200, "a retried order rewards nobody twice");

    is_int(apply("{\"type\":\"order\",\"member\":\"bob\",\"order_id\":\"o2\","
                 "\"amount\":1000,\"at\":\"2026-03-02T09:30:00Z\"}", now),
           0, "bob's small second order");
    ok(!has_touch("product_call:bob:o2"), "under 500.00: no call");
    ok(!has_touch("first_thanks:bob:o2"), "a second order is not a first");
    ok(!has_touch("ref_thanks:ann:o2") && !has_touch("ref_followup:bob:o2"),
       "nor a referral's conversion");

    is_int(apply("{\"type\":\"order\",\"member\":\"bob\",\"order_id\":\"o3\","
                 "\"amount\":950000,\"at\":\"2026-03-03T09:30:00Z\"}", now),
           0, "bob passes 10,000.00");
    ok(has_touch("spend_10k:bob:1000000"), "spend crossed: a letter");

    is_int(apply("{\"type\":\"order\",\"member\":\"bob\",\"order_id\":\"o4\","
                 "\"amount\":100,\"at\":\"2026-03-04T09:30:00Z\"}", now),
           0, "and buys again");

    /* claims: the kinds asked for, up to until, oldest first */
    is_int(claim(now, now, 100, 1u << LOYALTY_TOUCH_MESSAGE, ids,
                 sizeof(ids)),
           2, "two messages due by now");
    is_str(ids, "first_thanks:bob:o1 ref_thanks:ann:bob",
           "the messages, oldest first (ties by id)");
    is_int(claim(now, now, 100, 1u << LOYALTY_TOUCH_MESSAGE, ids,
                 sizeof(ids)),
           0, "leased: hidden from the next caller");
    is_int(claim(now + 601, now + 601, 100, 1u << LOYALTY_TOUCH_MESSAGE, ids,
                 sizeof(ids)),
           2, "unacknowledged: back after the lease");

    is_int(ack("ref_thanks:ann:bob", LOYALTY_OUTCOME_DONE, "li", now), 0,
           "ack done");
    is_int(ack("ref_thanks:ann:bob", LOYALTY_OUTCOME_DONE, "li", now),
           LOYALTY_DUE_ALREADY, "ack again: already");
    is_int(ack("ref_thanks:ann:bob", LOYALTY_OUTCOME_FAILED, "li", now),
           LOYALTY_DUE_CONFLICT, "another outcome: conflict");
    is_int(ack("ref_thanks:ann:nobody", LOYALTY_OUTCOME_DONE, NULL, now),
           LOYALTY_DUE_UNKNOWN, "an unknown id");
    is_int(claim(now + 2000, now + 2000, 100, 1u << LOYALTY_TOUCH_MESSAGE,
                 ids, sizeof(ids)),
           1, "an acknowledged touch is not handed out again");

    is_int(claim(now, at("2026-03-10T00:00:00Z"), 1,
                 1u << LOYALTY_TOUCH_CALL, ids, sizeof(ids)),
           1, "limit 1");
    is_str(ids, "ref_followup:bob:o1", "until reaches a week ahead");
}


static void
test_rewards(void)
{
    uint8_t             buf[LOYALTY_TOUCH_REC_MAX];
    char                ids[4096];
    loyalty_touch_t     t;
    loyalty_sweep_t     sw;
    loyalty_cadence_t  *c;

    c = declare("later_bonus", LOYALTY_TRIGGER_ORDER, LOYALTY_TOUCH_GIFT);
    c->days = 30;
    c->reward = 50;

    is_int(member("cat", "{}"), 0, "member cat");
    is_int(apply("{\"type\":\"order\",\"member\":\"cat\",\"order_id\":\"c1\","
                 "\"amount\":100,\"at\":\"2026-04-01T00:00:00Z\"}",
                 at("2026-04-01T00:00:00Z")),
           0, "cat orders");
    is_int(points("cat"), 0, "a reward 30 days on: not yet");

    sw = sweep(at("2026-04-30T23:59:59Z"));
    is_int(points("cat"), 0, "a sweep before it falls due credits nothing");
    sw = sweep(at("2026-05-01T00:00:00Z"));
    is_int(sw.rewards, 1, "the sweep when it falls due credits it");
    is_int(points("cat"), 50, "50 points");
    sw = sweep(at("2026-05-02T00:00:00Z"));
    is_int(points("cat"), 50, "a second sweep: exactly once");
    is_int(claim(at("2026-05-03T00:00:00Z"), at("2026-05-03T00:00:00Z"), 10,
                 1u << LOYALTY_TOUCH_GIFT, ids, sizeof(ids)),
           1, "claimed after");
    is_int(points("cat"), 50, "a claim after the sweep credits nothing");
    is_int(ledger_sum("cat"), 50, "the ledger agrees");
    ok(touch("later_bonus:cat:c1", &t, buf) == 0
       && (t.flags & LOYALTY_TOUCH_REWARDED), "marked rewarded");

    is_int(apply("{\"type\":\"order\",\"member\":\"cat\",\"order_id\":\"c2\","
                 "\"amount\":100,\"at\":\"2026-04-02T00:00:00Z\"}",
                 at("2026-04-02T00:00:00Z")),
           0, "cat orders again");
    is_int(claim(at("2026-05-02T12:00:00Z"), at("2026-05-02T12:00:00Z"), 10,
                 1u << LOYALTY_TOUCH_GIFT, ids, sizeof(ids)),
           1, "claimed first, with no sweep in between");
    is_int(points("cat"), 100, "the claim credits it");
    sw = sweep(at("2026-05-03T00:00:00Z"));
    is_int(points("cat"), 100, "and the sweep after does not");

    is_int(apply("{\"type\":\"order\",\"member\":\"cat\",\"order_id\":\"c3\","
                 "\"amount\":100,\"at\":\"2026-04-03T00:00:00Z\"}",
                 at("2026-04-03T00:00:00Z")),
           0, "a third order");
    is_int(ack("later_bonus:cat:c3", LOYALTY_OUTCOME_SKIPPED, "li",
               at("2026-04-04T00:00:00Z")),
           0, "acknowledged before it fell due");
    is_int(points("cat"), 150, "the reward comes with the acknowledgement");
    sw = sweep(at("2026-06-01T00:00:00Z"));
    is_int(points("cat"), 150, "once");
    is_int(ledger_sum("cat"), 150, "the ledger agrees");
    cads.n--;
}


static void
test_sweep(void)
{
    loyalty_sweep_t     sw;
    loyalty_cadence_t  *c;
    size_t              keep;

    keep = cads.n;

    c = declare("bday", LOYALTY_TRIGGER_BIRTHDAY, LOYALTY_TOUCH_MESSAGE);
    c->hour = 9;
    c = declare("bday_gift", LOYALTY_TRIGGER_BIRTHDAY, LOYALTY_TOUCH_GIFT);
    c->days = -7;
    c = declare("miss_you", LOYALTY_TRIGGER_INACTIVE, LOYALTY_TOUCH_MESSAGE);
    c->days = 90;
    c = declare("xmas", LOYALTY_TRIGGER_CALENDAR, LOYALTY_TOUCH_MESSAGE);
    c->dates[0].month = 12;
    c->dates[0].day = 25;
    c->dates[1].year = 2027;
    c->dates[1].month = 1;
    c->dates[1].day = 1;
    c->ndates = 2;

    is_int(member("leap", "{\"birthday\":\"02-29\"}"), 0, "born 29 Feb");
    is_int(member("jan", "{\"birthday\":\"01-03\"}"), 0, "born 3 Jan");
    is_int(member("quiet", "{\"last_order_at\":\"2026-01-10T15:00:00Z\"}"),
           0, "last ordered 10 Jan");
    is_int(member("gone", "{\"birthday\":\"03-01\",\"blocked\":true}"), 0,
           "a blocked member");

    sw = sweep(at("2026-02-26T00:00:00Z"));
    ok(!has_touch("bday:leap:2026"), "26 Feb: too early for 28 Feb");
    sw = sweep(at("2026-02-27T09:00:00Z"));
    ok(has_touch("bday:leap:2026"), "a day ahead: scheduled");
    is_int(due_at("bday:leap:2026"), at("2026-02-28T09:00:00Z"),
           "29 Feb is 28 Feb in 2026, at 09:00");
    is_int(sw.scheduled, 1, "the sweep scheduled one");
    sw = sweep(at("2026-02-28T10:00:00Z"));
    is_int(sw.scheduled, 0, "the next sweep schedules nothing twice");
    ok(sw.members >= 4, "it looked at every member");

    ok(!has_touch("bday:gone:2026"), "no touch for a blocked member");

    sw = sweep(at("2026-04-09T00:00:00Z"));
    ok(!has_touch("miss_you:quiet:2026-01-10"),
       "89 days less a day: not yet");
    sw = sweep(at("2026-04-09T15:00:00Z"));
    ok(has_touch("miss_you:quiet:2026-01-10"),
       "a day before 90 days: scheduled");
    is_int(due_at("miss_you:quiet:2026-01-10"), at("2026-04-10T15:00:00Z"),
           "due 90 days after the last order");

    /* the year's end: a gift due 7 days before 3 January */
    sw = sweep(at("2026-12-24T12:00:00Z"));
    ok(!has_touch("bday_gift:jan:2027"), "24 Dec: not yet");
    ok(has_touch("xmas:jan:2026-12-25"), "24 Dec: Christmas, a day ahead");
    sw = sweep(at("2026-12-26T00:00:00Z"));
    ok(has_touch("bday_gift:jan:2027"), "26 Dec: next year's gift");
    is_int(due_at("bday_gift:jan:2027"), at("2026-12-27T00:00:00Z"),
           "due 27 Dec, counted in the birthday's year");
    sw = sweep(at("2026-12-31T12:00:00Z"));
    ok(has_touch("xmas:jan:2027-01-01"), "a dated day, a day ahead");
    sw = sweep(at("2027-01-11T00:00:00Z"));
    ok(!has_touch("bday:jan:2027"), "past the 7 days' grace: not scheduled");
    sw = sweep(at("2027-12-31T00:00:00Z"));
    ok(!has_touch("xmas:jan:2028-01-01"), "a dated day comes once");

    sw = sweep(at("2028-02-28T09:00:00Z"));
    is_int(due_at("bday:leap:2028"), at("2028-02-29T09:00:00Z"),
           "in a leap year on 29 Feb");
    ok(!has_touch("bday:gone:2028"), "still none for the blocked member");

    /* a condition declines, or fails */
    c = declare("eve", LOYALTY_TRIGGER_CALENDAR, LOYALTY_TOUCH_MESSAGE);
    c->dates[0].month = 12;
    c->dates[0].day = 31;
    c->ndates = 1;
    c->cond = 1;

    cond_answer = 0;
    cond_calls = 0;
    sw = sweep(at("2031-12-30T12:00:00Z"));
    ok(cond_calls >= 4 && sw.declined == (size_t) cond_calls,
       "the condition was asked, and declined");
    ok(!has_touch("eve:leap:2031-12-31"), "nothing scheduled");
    cond_answer = -1;
    sw = sweep(at("2031-12-30T12:00:00Z"));
    ok(sw.failed >= 4 && !has_touch("eve:leap:2031-12-31"),
       "a failing condition: counted, not scheduled");
    cond_answer = 1;
    sw = sweep(at("2031-12-30T12:00:00Z"));
    ok(has_touch("eve:leap:2031-12-31"), "then it says yes");

    cads.n = keep;
}


static void
test_top(void)
{
    char                ids[256];
    loyalty_sweep_t     sw;
    loyalty_cadence_t  *c;
    size_t              keep;

    keep = cads.n;
    c = declare("top_visit", LOYALTY_TRIGGER_YEARLY_TOP, LOYALTY_TOUCH_VISIT);
    c->top = 2;
    c->days = 7;

    is_int(member("big", "{}"), 0, "member big");
    is_int(member("mid", "{}"), 0, "member mid");
    is_int(member("refunded", "{}"), 0, "member refunded");

    is_int(apply("[{\"type\":\"order\",\"member\":\"big\",\"order_id\":\"t1\","
                 "\"amount\":9000000,\"at\":\"2029-06-01T00:00:00Z\"},"
                 "{\"type\":\"order\",\"member\":\"mid\",\"order_id\":\"t2\","
                 "\"amount\":5000000,\"at\":\"2029-07-01T00:00:00Z\"},"
                 "{\"type\":\"order\",\"member\":\"mid\",\"order_id\":\"t3\","
                 "\"amount\":3000000,\"at\":\"2029-12-31T23:59:59Z\"},"
                 "{\"type\":\"order\",\"member\":\"refunded\","
                 "\"order_id\":\"t4\",\"amount\":20000000,"
                 "\"at\":\"2029-08-01T00:00:00Z\"},"
                 "{\"type\":\"refund\","
                 "\"order_id\":\"t4\",\"refund_id\":\"r4\","
                 "\"amount\":19000000,\"at\":\"2029-08-02T00:00:00Z\"},"
                 "{\"type\":\"order\",\"member\":\"big\",\"order_id\":\"t5\","
                 "\"amount\":90000000,\"at\":\"2030-01-01T00:00:00Z\"}]",
                 at("2030-01-02T00:00:00Z")),
           0, "a year of orders, a refund, one next year");

    sw = sweep(at("2030-01-06T23:00:00Z"));
    is_int(sw.scheduled, 0, "more than a day ahead of 8 Jan: nothing");
    sw = sweep(at("2030-01-07T00:00:00Z"));
    ok(has_touch("top_visit:big:2029") && has_touch("top_visit:mid:2029"),
       "the two top spenders of 2029, a day ahead of 8 Jan");
    ok(!has_touch("top_visit:refunded:2029"), "refunds count against spend");
    is_int(sw.scheduled, 2, "two visits");
    is_int(due_at("top_visit:big:2029"), at("2030-01-08T00:00:00Z"),
           "due 7 days into the new year");
    sw = sweep(at("2030-01-07T12:00:00Z"));
    is_int(sw.scheduled, 0, "the year is counted once");

    is_int(claim(at("2030-01-08T00:00:00Z"), at("2030-01-08T00:00:00Z"), 10,
                 1u << LOYALTY_TOUCH_VISIT, ids, sizeof(ids)),
           2, "both visits handed out");
    is_int(ack("top_visit:big:2029", LOYALTY_OUTCOME_DONE, "zhao",
               at("2030-01-09T00:00:00Z")), 0, "zhao visited");
    is_int(ack("top_visit:mid:2029", LOYALTY_OUTCOME_FAILED, "zhao",
               at("2030-01-09T00:00:00Z")), 0, "and could not visit mid");

    cads.n = keep;
}


static void
test_stats(void)
{
    char     *s;
    json_t   *doc;
    MDB_txn  *txn;

    mdb_txn_begin(st.env, NULL, MDB_RDONLY, &txn);
    is_int(loyalty_due_stats(&st, txn, at("2030-01-01T00:00:00Z"), &doc), 0,
           "stats since 2030");
    mdb_txn_abort(txn);

    s = json_dumps(json_object_get(json_object_get(doc, "cadences"),
                                   "top_visit"),
                   JSON_COMPACT|JSON_SORT_KEYS);
    is_str(s, "{\"done\":1,\"failed\":1,\"pending\":0,\"points\":0,"
              "\"scheduled\":2,\"skipped\":0}", "per cadence");
    free(s);
    s = json_dumps(json_object_get(doc, "staff"), JSON_COMPACT|JSON_SORT_KEYS);
    is_str(s, "{\"zhao\":{\"done\":1,\"failed\":1,\"skipped\":0}}",
           "per member of staff, of those due since");
    free(s);
    ok(json_object_get(json_object_get(doc, "cadences"), "first_thanks")
       == NULL, "touches due before since are not counted");
    json_decref(doc);

    mdb_txn_begin(st.env, NULL, MDB_RDONLY, &txn);
    is_int(loyalty_due_stats(&st, txn, LOYALTY_TIME_MIN, &doc), 0,
           "stats of all time");
    mdb_txn_abort(txn);

    is_int(json_integer_value(json_object_get(json_object_get(
               json_object_get(doc, "cadences"), "later_bonus"), "points")),
           150, "points rewarded by a cadence");
    is_int(json_integer_value(json_object_get(json_object_get(
               json_object_get(doc, "staff"), "li"), "skipped")),
           1, "li skipped one");
    json_decref(doc);
}


/*
 * The shop's days (loyalty_timezone): a birthday in Beijing starts at
 * 16:00 UTC the day before, and an hour is the shop's hour on both sides
 * of a DST change in New York.
 */
static void
test_sweep_tz(void)
{
    char                err[LOYALTY_ERRLEN];
    size_t              keep;
    loyalty_sweep_t     sw;
    loyalty_cadence_t  *c;
    static loyalty_tz_t  shanghai, new_york;

    keep = cads.n;

    ok(loyalty_tz_load(&shanghai, NULL, "Asia/Shanghai", err, sizeof(err))
       == 0 && loyalty_tz_load(&new_york, NULL, "America/New_York", err,
                               sizeof(err)) == 0,
       "zones loaded");

    c = declare("bday_sh", LOYALTY_TRIGGER_BIRTHDAY, LOYALTY_TOUCH_MESSAGE);
    c->hour = 9;
    c->grace = 0;
    is_int(member("bj", "{\"birthday\":\"12-07\"}"), 0, "born 7 Dec");

    /* Sunday 16:48 UTC: Monday 7 Dec 00:48 in Beijing */
    cads.tz = &shanghai;
    sw = sweep(at("2026-12-06T16:48:00Z"));
    is_int(due_at("bday_sh:bj:2026"), at("2026-12-07T09:00:00+08:00"),
           "the birthday at 09:00 in Beijing, 01:00 UTC");
    cads.tz = NULL;

    c = declare("fall", LOYALTY_TRIGGER_CALENDAR, LOYALTY_TOUCH_MESSAGE);
    c->hour = 12;
    c->dates[0].year = 2026;
    c->dates[0].month = 11;
    c->dates[0].day = 1;
    c->dates[1].year = 2026;
    c->dates[1].month = 3;
    c->dates[1].day = 8;
    c->ndates = 2;

    cads.tz = &new_york;
    sw = sweep(at("2026-03-07T20:00:00Z"));
    is_int(due_at("fall:bj:2026-03-08"), at("2026-03-08T12:00:00-04:00"),
           "noon in New York the day summer time starts: EDT");
    sw = sweep(at("2026-10-31T20:00:00Z"));
    is_int(due_at("fall:bj:2026-11-01"), at("2026-11-01T12:00:00-05:00"),
           "noon in New York the day it ends: EST");
    cads.tz = NULL;

    (void) sw;
    cads.n = keep;
}


int
main(void)
{
    char  err[LOYALTY_ERRLEN];

    plan(PLANNED);

    if (fixture_store_open(tmp, "cadence", &st, err, sizeof(err)) != 0) {
        fprintf(stderr, "cannot create a store: %s\n", err);
        return 1;
    }

    fixture_put_tier(&st, "basic", 0);
    cads.cond = cond;

    test_dates();
    test_ids();
    test_orders();
    test_rewards();
    test_sweep();
    test_sweep_tz();
    test_top();
    test_stats();

    fixture_store_remove(tmp, &st);

    return done();
}
