/*
 * Unit tests of the events (loyalty_events, _apply, _batch, _ledger,
 * _referral) and loyalty_admin.c: every effect of
 * every event, batches all or nothing, idempotency, refunds, the ledger
 * and the referrals index, the admin operations, and the speed of
 * 100-event batches.
 */

#define _GNU_SOURCE     /* memmem */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "loyalty_admin.h"
#include "loyalty_batch.h"
#include "loyalty_due.h"
#include "loyalty_ledger.h"
#include "loyalty_referral.h"
#include "loyalty_rules.h"
#include "rules_fixture.h"
#include "store_fixture.h"
#include "tap.h"


static char             tmp[FIXTURE_PATH_MAX];
static loyalty_store_t  st;
static loyalty_batch_t  res;
static char             errors[4096];
static char             last_err[LOYALTY_ERRLEN];

/* a member as read back, strings copied */
static loyalty_member_t  m;
static char              m_tier[LOYALTY_TIER_MAX + 1];
static char              m_ref[LOYALTY_ID_MAX + 1];


/* applies a body in a transaction of its own; commits on success */
static int
apply_hook_max(const char *body, const loyalty_event_hook_t *hook,
    size_t max)
{
    int       rc;
    char     *s;
    MDB_txn  *txn;

    if (mdb_txn_begin(st.env, NULL, 0, &txn) != 0) {
        return -100;
    }

    rc = loyalty_batch_apply(&st, txn, body, strlen(body), max,
                             1800000000, hook, &res, last_err,
                             sizeof(last_err));

    if (rc == 0) {
        mdb_txn_commit(txn);

    } else {
        mdb_txn_abort(txn);
    }

    s = json_dumps(res.errors, JSON_COMPACT);
    snprintf(errors, sizeof(errors), "%s", s ? s : "");
    free(s);
    loyalty_batch_free(&res);

    return rc;
}


static int
apply_max(const char *body, size_t max)
{
    return apply_hook_max(body, NULL, max);
}


static int
apply(const char *body)
{
    return apply_max(body, 1000);
}


/* reads a member back: 0, or -1 when absent */
static int
get(const char *id)
{
    int       rc;
    MDB_txn  *txn;
    MDB_val   key, val;

    mdb_txn_begin(st.env, NULL, MDB_RDONLY, &txn);

    key.mv_data = (void *) id;
    key.mv_size = strlen(id);

    rc = mdb_get(txn, st.dbi[LOYALTY_DB_MEMBERS], &key, &val);
    if (rc == 0 && loyalty_member_decode(val.mv_data, val.mv_size, &m) == 0)
    {
        snprintf(m_tier, sizeof(m_tier), "%.*s", m.tier_len, m.tier);
        snprintf(m_ref, sizeof(m_ref), "%.*s", m.referrer_len, m.referrer);

    } else {
        rc = -1;
    }

    mdb_txn_abort(txn);

    return rc == 0 ? 0 : -1;
}


static const char *
stage(void)
{
    return loyalty_stage_names[m.stage];
}


/* the member's ledger sum equals their points */
static int
balanced(const char *id, size_t *n)
{
    int       rc;
    size_t    count;
    int64_t   sum;
    MDB_txn  *txn;

    if (get(id) != 0) {
        return 0;
    }

    mdb_txn_begin(st.env, NULL, MDB_RDONLY, &txn);
    rc = loyalty_ledger_sum(&st, txn, id, strlen(id), &sum, n ? n : &count);
    mdb_txn_abort(txn);

    if (rc != 0 || sum != m.points) {
        diag("%s: points %lld, ledger %lld (rc %d)", id,
             (long long) m.points, (long long) sum, rc);
        return 0;
    }

    return 1;
}


static size_t
entries(const char *id)
{
    size_t  n;

    n = 0;
    (void) balanced(id, &n);

    return n;
}


/* admin put of one record in a transaction of its own */
static int
put(const char *kind, const char *key, const char *body)
{
    static const char *const  hosts[] = { "mall.example.cn" };
    static const size_t       lens[] = { 15 };

    return fixture_admin_put(&st, kind, key, body, hosts, lens, 1, last_err,
                             sizeof(last_err));
}


/* an admin query as compact JSON, or "NULL" */
static char *
query(const char *what, const char *id, size_t limit)
{
    static char  buf[4096];
    char        *s;
    json_t      *obj;
    MDB_txn     *txn;

    mdb_txn_begin(st.env, NULL, MDB_RDONLY, &txn);

    if (strcmp(what, "ledger") == 0) {
        obj = loyalty_admin_ledger(&st, txn, id, strlen(id), limit);

    } else if (strcmp(what, "referrals") == 0) {
        obj = loyalty_admin_referrals(&st, txn, id, strlen(id));

    } else {
        obj = loyalty_admin_get_member(&st, txn, id, strlen(id));
    }

    mdb_txn_abort(txn);

    s = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    snprintf(buf, sizeof(buf), "%s", s ? s : "NULL");
    free(s);
    json_decref(obj);

    return buf;
}


static void
test_without_rules(void)
{
    is_int(apply("{\"type\":\"signup\",\"member\":\"nr\"}"), 0,
           "no rules: a signup");
    ok(get("nr") == 0, "the member is made");
    is_str(m_tier, "basic", "no rules: the lowest-ranked tier");
    is_str(stage(), "fan", "a fan");
    ok((m.flags & LOYALTY_MEMBER_JOINED) && m.joined_at == 1800000000,
       "joined_at: the batch's time when the event has none");

    is_int(apply("{\"type\":\"order\",\"member\":\"nr\",\"order_id\":\"nr1\","
                 "\"amount\":5000000,\"items\":[{\"sku\":\"nappies-128\","
                 "\"qty\":100}],\"at\":\"2027-01-01T00:00:00Z\"}"), 0,
           "no rules: an order");
    get("nr");
    is_str(stage(), "customer", "no rules: a customer, not a partner");
    is_int(m.spend * 10 + m.orders, 50000001, "spend and orders count");
    is_int(m.points, 0, "no rules: no points");
    is_str(m_tier, "basic", "no rules: no upgrade");
    is_int(entries("nr"), 0, "no ledger entries");

    is_int(apply("{\"type\":\"action\",\"member\":\"nr\",\"kind\":\"share\","
                 "\"id\":\"nra\",\"at\":\"2027-01-01T00:00:00Z\"}"), 0,
           "no rules: an action is recorded");
    is_int(apply("{\"type\":\"action\",\"member\":\"nr\",\"kind\":\"share\","
                 "\"id\":\"nra\",\"at\":\"2027-01-01T00:00:00Z\"}"), 0,
           "and is a duplicate after");
}


static void
test_journey(void)
{
    int  rc;

    /* bob referred alice, who shares ALICE-1 */
    is_int(put("member", "bob", "{\"tier\":\"basic\",\"stage\":\"member\","
               "\"points\":1000}"), 0, "put bob, with 1000 points");
    is_int(entries("bob"), 1, "bob's points are an adjust entry");
    ok(balanced("bob", NULL), "bob: balance == ledger");
    is_int(put("member", "alice", "{\"id\":\"alice\",\"tier\":\"basic\","
               "\"stage\":\"member\",\"referrer\":\"bob\"}"), 0, "put alice");
    is_int(put("code", "alice-1", "{\"member\":\"alice\"}"), 0,
           "put code ALICE-1");
    is_str(query("referrals", "bob", 0), "{\"member\":\"bob\","
           "\"level1\":[{\"id\":\"alice\",\"stage\":\"member\"}],"
           "\"level2\":[]}", "bob's downline: alice");

    rc = put("rules", NULL, fixture_rules_doc);
    if (!is_int(rc, 0, "put rules")) {
        diag("%s", last_err);
    }

    /* the visitor clicks ALICE-1 and signs up */
    is_int(apply("{\"type\":\"signup\",\"member\":\"carol\","
                 "\"at\":\"2027-02-01T10:00:00+08:00\","
                 "\"ref_code\":\"alice-1\"}"), 0, "carol signs up by code");
    get("carol");
    is_str(stage(), "fan", "carol: fan");
    is_str(m_ref, "alice", "carol's referrer: alice, by the code");
    is_str(m_tier, "basic", "carol: the signup tier");
    is_int(res.applied, 1, "applied 1");

    is_str(query("referrals", "bob", 0), "{\"member\":\"bob\","
           "\"level1\":[{\"id\":\"alice\",\"stage\":\"member\"}],"
           "\"level2\":[{\"id\":\"carol\",\"stage\":\"fan\","
           "\"via\":\"alice\"}]}", "bob's downline: carol at level 2");

    /* a 128 pack */
    is_int(apply("[{\"type\":\"order\",\"member\":\"carol\","
                 "\"order_id\":\"o1\",\"amount\":12800,"
                 "\"items\":[{\"sku\":\"nappies-128\",\"qty\":1}],"
                 "\"at\":\"2027-02-01T11:00:00Z\"}]"), 0,
           "carol buys a 128 pack");
    get("carol");
    is_str(stage(), "member", "carol: member by the membership SKU");
    is_str(m_tier, "vip", "carol: the member stage's tier");
    is_int(m.points, 128, "carol: 128 points, one a yuan");
    is_int(m.orders, 1, "one order");
    ok(balanced("carol", NULL), "carol: balance == ledger");
    get("alice");
    is_int(m.points, 500, "alice: level-1 points");
    ok(balanced("alice", NULL), "alice: balance == ledger");
    get("bob");
    is_int(m.points, 1200, "bob: level-2 points on top of his 1000");
    ok(balanced("bob", NULL), "bob: balance == ledger");

    /* 100 packs, in two lines */
    is_int(apply("{\"type\":\"order\",\"member\":\"carol\","
                 "\"order_id\":\"o2\",\"amount\":1280000,"
                 "\"items\":[{\"sku\":\"nappies-128\",\"qty\":60},"
                 "{\"sku\":\"gift\"},{\"sku\":\"nappies-128\",\"qty\":40}],"
                 "\"at\":\"2027-02-02T11:00:00Z\"}"), 0,
           "carol buys 100 packs (and an unknown SKU)");
    get("carol");
    is_str(stage(), "partner", "carol: partner");
    is_str(m_tier, "partner", "carol: the partner tier outranks ka");
    is_int(m.points, 128 + 12800, "carol: points for both orders");
    get("alice");
    is_int(m.points, 500, "alice: no more referral points after the first");

    is_str(query("ledger", "alice", 0), "{\"member\":\"alice\","
           "\"balance\":500,\"entries\":[{\"delta\":500,"
           "\"reason\":\"referral_l1\",\"event\":\"o1\","
           "\"at\":\"2027-02-01T11:00:00Z\"}]}", "alice's ledger");
    is_str(query("ledger", "carol", 1), "{\"member\":\"carol\","
           "\"balance\":12928,\"entries\":[{\"delta\":12800,"
           "\"reason\":\"order\",\"event\":\"o2\","
           "\"at\":\"2027-02-02T11:00:00Z\"}]}",
           "carol's ledger, limit 1: the newest");
    is_str(query("ledger", "nobody", 0), "NULL", "no ledger for no member");

    /* retried: nothing changes */
    is_int(apply("{\"type\":\"signup\",\"member\":\"carol\","
                 "\"ref_code\":\"alice-1\"}\n"
                 "{\"type\":\"order\",\"member\":\"carol\","
                 "\"order_id\":\"o1\",\"amount\":12800,"
                 "\"at\":\"2027-02-01T11:00:00Z\"}\n"), 0, "a retry");
    is_int(res.duplicates * 10 + res.applied, 20, "two duplicates");
    get("carol");
    is_int(m.orders * 100000 + m.points, 212928, "carol unchanged");

    /* stages and tiers only go forward */
    is_int(apply("{\"type\":\"order\",\"member\":\"carol\","
                 "\"order_id\":\"o3\",\"amount\":100,"
                 "\"at\":\"2027-02-03T11:00:00Z\"}"), 0, "a small order");
    get("carol");
    is_str(stage(), "partner", "still a partner");
    is_str(m_tier, "partner", "still the partner tier");

    is_int(apply("{\"type\":\"follow\",\"member\":\"carol\"}"), 0,
           "a follow of a partner");
    get("carol");
    is_str(stage(), "partner", "a follow does not move a partner back");
}


/*
 * the refund's record names the order's member: it was copied from a
 * buffer gone by the time the record was written (ASan: a
 * stack-use-after-scope on every refund)
 */
static void
refund_member(const char *refund, const char *member)
{
    char                 id[LOYALTY_ID_MAX + 1];
    uint8_t              kbuf[LOYALTY_EVENT_KEY_MAX];
    MDB_txn             *txn;
    MDB_val              key, val;
    loyalty_event_rec_t  e;

    id[0] = '\0';
    key.mv_data = kbuf;
    key.mv_size = loyalty_event_key(LOYALTY_EVENT_REFUND, refund,
                                    strlen(refund), kbuf);

    if (mdb_txn_begin(st.env, NULL, MDB_RDONLY, &txn) == 0) {
        if (mdb_get(txn, st.dbi[LOYALTY_DB_EVENTS], &key, &val) == 0
            && loyalty_event_rec_decode(val.mv_data, val.mv_size, &e) == 0)
        {
            snprintf(id, sizeof(id), "%.*s", (int) e.member_len, e.member);
        }

        mdb_txn_abort(txn);
    }

    is_str(id, member, "the refund's record names the order's member");
}


static void
test_refunds(void)
{
    get("carol");
    is_int(m.spend, 12800 + 1280000 + 100, "carol's spend");

    /* o1: 12800 paid, 128 points, 500 and 200 to the referrers */
    is_int(apply("{\"type\":\"refund\",\"refund_id\":\"r1\","
                 "\"order_id\":\"o1\",\"amount\":4000}"), 0,
           "a partial refund");
    refund_member("r1", "carol");
    get("carol");
    is_int(m.spend, 12800 + 1280000 + 100 - 4000, "spend less the refund");
    is_int(m.points, 12929 - 40, "floor(128 * 4000 / 12800) = 40 back");
    is_str(stage(), "partner", "stage stays");
    get("alice");
    is_int(m.points, 500 - 156, "alice: floor(500 * 4000 / 12800) = 156");
    get("bob");
    is_int(m.points, 1200 - 62, "bob: floor(200 * 4000 / 12800) = 62");

    is_int(apply("{\"type\":\"refund\",\"refund_id\":\"r2\","
                 "\"order_id\":\"o1\",\"amount\":8801}"), -1,
           "more than is left");
    has_str(errors, "refund of 8801 exceeds the 8800 left to refund of "
            "order \\\"o1\\\"", "says how much is left");

    is_int(apply("{\"type\":\"refund\",\"refund_id\":\"r2\","
                 "\"order_id\":\"o1\",\"amount\":8800}"), 0,
           "the rest");
    get("carol");
    is_int(m.points, 12801, "the whole order's points are back");
    get("alice");
    is_int(m.points, 0, "alice: all 500 taken back");
    ok(balanced("alice", NULL), "alice balanced");
    get("bob");
    is_int(m.points, 1000, "bob: all 200 taken back");
    ok(balanced("bob", NULL), "bob balanced");
    ok(balanced("carol", NULL), "carol balanced");

    is_int(apply("{\"type\":\"refund\",\"refund_id\":\"r3\","
                 "\"order_id\":\"o1\",\"amount\":1}"), -1,
           "a refund of a fully refunded order");
    is_int(apply("{\"type\":\"refund\",\"refund_id\":\"r2\","
                 "\"order_id\":\"o1\",\"amount\":8800}"), 0,
           "a retried refund");
    is_int(res.duplicates, 1, "is a duplicate");
    is_int(apply("{\"type\":\"refund\",\"refund_id\":\"r4\","
                 "\"order_id\":\"nope\",\"amount\":1}"), -1,
           "a refund of an unknown order");
    has_str(errors, "unknown order", "says so");
    is_int(apply("{\"type\":\"refund\",\"refund_id\":\"r4\","
                 "\"order_id\":\"o2\",\"amount\":0}"), -1,
           "a refund of nothing");

    /* an order and its refund in one batch */
    is_int(apply("{\"type\":\"order\",\"member\":\"carol\","
                 "\"order_id\":\"o4\",\"amount\":999,"
                 "\"at\":\"2027-02-04T11:00:00Z\"}\n"
                 "{\"type\":\"refund\",\"refund_id\":\"r5\","
                 "\"order_id\":\"o4\",\"amount\":999}"), 0,
           "an order and its refund in one batch");
    get("carol");
    is_int(m.points, 12801, "9 points given and taken back");
    is_int(m.orders, 4, "the order still counts");
}


static void
test_invalid(void)
{
    const char  *two = "[{\"type\":\"signup\",\"member\":\"y\"},"
                       "{\"type\":\"bad\"}]";
    uint8_t   before[LOYALTY_MEMBER_MAX];
    size_t    before_len;
    MDB_txn  *txn;
    MDB_val   key, val;

    get("carol");
    before_len = loyalty_member_encode(&m, before);

    is_int(apply("{\"type\":\"order\",\"member\":\"carol\","
                 "\"order_id\":\"o5\",\"amount\":100,"
                 "\"at\":\"2027-02-05T11:00:00Z\"}\n"
                 "\n"
                 "{\"type\":\"order\",\"member\":\"ghost\","
                 "\"order_id\":\"o6\",\"amount\":100,"
                 "\"at\":\"2027-02-05T11:00:00Z\"}\n"
                 "not json\n"
                 "{\"type\":\"order\",\"member\":\"carol\","
                 "\"order_id\":\"o7\",\"amount\":\"100\","
                 "\"at\":\"2027-02-05T11:00:00Z\"}\n"
                 "{\"type\":\"action\",\"member\":\"carol\","
                 "\"kind\":\"like\",\"id\":\"x\","
                 "\"at\":\"2027-02-05T11:00:00Z\"}\n"
                 "{\"type\":\"order\",\"member\":\"carol\","
                 "\"order_id\":\"o8\",\"amount\":1,\"at\":\"yesterday\"}\n"
                 "[]\n"
                 "{\"type\":\"signup\",\"member\":\"a b\"}\n"
                 "{\"type\":\"signup\",\"member\":\"x\",\"referrer\":\"x\"}\n"
                 "{\"type\":\"signup\",\"member\":\"x\",\"ref_code\":\"a\"}\n"
                 "{\"type\":\"signup\",\"member\":\"x\","
                 "\"referrer\":\"ghost\"}\n"
                 "{\"type\":\"order\",\"member\":\"carol\",\"order_id\":\"o9\","
                 "\"amount\":1,\"at\":\"2027-02-05T11:00:00Z\","
                 "\"colour\":1}\n"), LOYALTY_BATCH_INVALID,
           "a batch with bad events");
    is_str(errors, "[{\"index\":1,\"error\":\"unknown member \\\"ghost\\\"\"},"
           "{\"index\":2,\"error\":\"bad JSON: '[' or '{' expected near 'not'\"},"
           "{\"index\":3,\"error\":\"\\\"amount\\\" must be an integer\"},"
           "{\"index\":4,\"error\":\"\\\"kind\\\" must be one of share, "
           "invite, group_buy, assist, review\"},"
           "{\"index\":5,\"error\":\"\\\"at\\\" must be an RFC 3339 "
           "date-time\"},"
           "{\"index\":6,\"error\":\"expected a JSON object\"},"
           "{\"index\":7,\"error\":\"\\\"member\\\" must be 1-64 characters "
           "of [A-Za-z0-9_.-]\"},"
           "{\"index\":8,\"error\":\"a member cannot be their own "
           "referrer\"},"
           "{\"index\":9,\"error\":\"\\\"ref_code\\\" must be 3-32 characters"
           " of [A-Za-z0-9_-]\"},"
           "{\"index\":10,\"error\":\"unknown referrer \\\"ghost\\\"\"},"
           "{\"index\":11,\"error\":\"unknown field \\\"colour\\\"\"}]",
           "every bad event, by index, blank lines not counted");
    has_str(last_err, "11 of 12 events are invalid", "err sums it up");

    get("carol");
    ok(loyalty_member_encode(&m, before) == before_len, "carol unchanged");
    ok(get("x") == -1, "no member x");

    /* nothing reaches the caller's transaction, even if it commits */
    mdb_txn_begin(st.env, NULL, 0, &txn);
    is_int(loyalty_batch_apply(&st, txn, two, strlen(two), 10, 0, NULL,
                               &res, last_err, sizeof(last_err)),
           LOYALTY_BATCH_INVALID, "an array with a bad event");
    is_int(res.events * 10 + json_array_size(res.errors), 21,
           "2 events, 1 error");
    loyalty_batch_free(&res);
    mdb_txn_commit(txn);
    ok(get("y") == -1, "the good event of a bad batch is not applied");

    is_int(apply("[{\"type\":\"signup\",\"member\":\"y\"},"), -1,
           "a broken array");
    has_str(errors, "[{\"error\":\"bad JSON:", "an error without an index");

    is_int(apply_max("{\"type\":\"follow\",\"member\":\"y\"}\n\n"
                     "{\"type\":\"follow\",\"member\":\"z\"}\n", 1),
           LOYALTY_BATCH_TOO_MANY, "2 events, at most 1");
    has_str(last_err, "more than 1 events", "err says so");
    is_int(apply_max("[{\"type\":\"follow\",\"member\":\"y\"},"
                     "{\"type\":\"follow\",\"member\":\"z\"}]", 1),
           LOYALTY_BATCH_TOO_MANY, "the same as an array");
    is_int(apply_max("\n {\"type\":\"follow\",\"member\":\"y\"}\n\n", 1), 0,
           "1 event, at most 1");
    ok(get("y") == 0, "y follows");
    is_str(stage(), "fan", "a follow makes a fan");
    is_int(apply(""), 0, "an empty body");
    is_int(apply("  \n[]\n"), 0, "an empty array");

    key.mv_data = "y";
    key.mv_size = 1;
    mdb_txn_begin(st.env, NULL, MDB_RDONLY, &txn);
    ok(mdb_get(txn, st.dbi[LOYALTY_DB_MEMBERS], &key, &val) == 0,
       "y is in the store");
    mdb_txn_abort(txn);
}


static void
test_referrers(void)
{
    /* a code's owner never refers themselves; a referrer stays for life */
    is_int(apply("{\"type\":\"order\",\"member\":\"alice\","
                 "\"order_id\":\"a1\",\"amount\":100,"
                 "\"at\":\"2027-03-01T00:00:00Z\",\"ref_code\":\"ALICE-1\"}"),
           0, "alice orders with her own code");
    get("alice");
    is_str(m_ref, "bob", "alice keeps bob");

    is_int(put("member", "dave", "{\"tier\":\"basic\",\"stage\":\"fan\"}"), 0,
           "put dave");
    is_int(apply("{\"type\":\"order\",\"member\":\"dave\","
                 "\"order_id\":\"d1\",\"amount\":100,"
                 "\"at\":\"2027-03-01T00:00:00Z\",\"ref_code\":\"ALICE-1\"}"),
           0, "dave's first order, by alice's code");
    get("dave");
    is_str(m_ref, "alice", "dave's referrer: alice");
    get("alice");
    is_int(m.points, 500 + 1, "alice: level 1 (and her own order's point)");

    is_int(put("member", "erin", "{\"tier\":\"basic\",\"stage\":\"fan\"}"), 0,
           "put erin");
    is_int(put("code", "ERIN-1", "{\"code\":\"erin-1\",\"member\":\"erin\"}"),
           0, "put code ERIN-1");
    is_int(apply("{\"type\":\"signup\",\"member\":\"dave\","
                 "\"ref_code\":\"erin-1\"}"), 0, "dave signs up by erin");
    get("dave");
    is_str(m_ref, "alice", "an existing referrer is never replaced");

    is_int(apply("{\"type\":\"follow\",\"member\":\"erin\","
                 "\"ref_code\":\"no-such-code\"}"), 0,
           "an unknown code is no error");
    get("erin");
    is_str(m_ref, "", "and refers no one");

    is_int(put("code", "ERIN-2", "{\"member\":\"erin\",\"revoked\":true}"), 0,
           "a revoked code");
    is_int(put("code", "ERIN-3", "{\"member\":\"erin\","
               "\"expires_at\":\"2027-01-01T00:00:00Z\"}"), 0,
           "an expired code");
    is_int(apply("{\"type\":\"signup\",\"member\":\"fay\","
                 "\"ref_code\":\"erin-2\"}\n"
                 "{\"type\":\"order\",\"member\":\"fay\",\"order_id\":\"f1\","
                 "\"amount\":1,\"at\":\"2027-03-01T00:00:00Z\","
                 "\"ref_code\":\"erin-3\"}"), 0, "fay by dead codes");
    get("fay");
    is_str(m_ref, "", "dead codes refer no one");

    /* two people referring each other */
    is_int(apply("{\"type\":\"signup\",\"member\":\"gus\","
                 "\"referrer\":\"erin\"}\n"
                 "{\"type\":\"order\",\"member\":\"erin\",\"order_id\":\"e1\","
                 "\"amount\":1,\"at\":\"2027-03-01T00:00:00Z\","
                 "\"ref_code\":\"GUS-1\"}"), 0, "gus by erin");
    is_int(put("code", "GUS-1", "{\"member\":\"gus\",\"vanity\":true}"),
           0, "gus's code");
    is_int(apply("{\"type\":\"signup\",\"member\":\"erin\","
                 "\"ref_code\":\"GUS-1\"}"), 0,
           "erin signs up by gus, who erin referred");
    get("erin");
    is_str(m_ref, "", "no loop of two");

    /* the admin side: a changed referrer moves the index entry */
    is_int(put("member", "dave", "{\"tier\":\"basic\",\"stage\":\"customer\","
               "\"referrer\":\"erin\",\"points\":0}"), 0,
           "put dave with erin as referrer");
    is_str(query("referrals", "erin", 0), "{\"member\":\"erin\","
           "\"level1\":[{\"id\":\"dave\",\"stage\":\"customer\"},"
           "{\"id\":\"gus\",\"stage\":\"fan\"}],\"level2\":[]}",
           "erin's downline");
    has_str(query("referrals", "alice", 0), "\"level1\":[{\"id\":\"carol\"",
            "alice's downline: carol");
    ok(strstr(query("referrals", "alice", 0), "dave") == NULL,
       "and dave no longer");
    ok(balanced("dave", NULL), "dave's points set to 0: balanced");
}


static void
test_times_and_progress(void)
{
    is_int(put("member", "hal", "{\"tier\":\"basic\",\"stage\":\"prospect\"}"),
           0, "put hal, a prospect");
    is_int(apply("{\"type\":\"order\",\"member\":\"hal\",\"order_id\":\"h2\","
                 "\"amount\":40000,\"at\":\"2027-04-10T00:00:00Z\"}\n"
                 "{\"type\":\"order\",\"member\":\"hal\",\"order_id\":\"h1\","
                 "\"amount\":9999,\"at\":\"2027-04-01T00:00:00Z\"}"), 0,
           "two orders, out of time order");
    get("hal");
    is_str(query("member", "hal", 0), "{\"id\":\"hal\",\"tier\":\"basic\","
           "\"stage\":\"customer\",\"first_order_at\":\"2027-04-01T00:00:00Z\","
           "\"last_order_at\":\"2027-04-10T00:00:00Z\",\"orders\":2,"
           "\"spend\":49999,\"points\":499,\"blocked\":false}",
           "first is the earliest, last the latest; a customer at 49999");

    is_int(apply("{\"type\":\"order\",\"member\":\"hal\",\"order_id\":\"h3\","
                 "\"amount\":1,\"at\":\"2027-03-01T00:00:00Z\"}"), 0,
           "an older order");
    get("hal");
    is_str(stage(), "member", "member by spend: 50000");
    is_str(m_tier, "vip", "with the member tier");
    ok(m.last_order_at == 1807315200, "last_order_at does not go back");

    is_int(apply("{\"type\":\"order\",\"member\":\"hal\",\"order_id\":\"h4\","
                 "\"amount\":450000,\"at\":\"2027-04-11T00:00:00Z\"}"), 0,
           "spend to 500000");
    get("hal");
    is_str(m_tier, "ka", "upgraded to ka by spend");
    is_int(apply("{\"type\":\"refund\",\"refund_id\":\"h4r\","
                 "\"order_id\":\"h4\",\"amount\":450000}"), 0,
           "refunded in full");
    get("hal");
    is_str(m_tier, "ka", "the tier stays");
    is_str(stage(), "member", "the stage stays");
    is_int(m.spend, 50000, "the spend goes back");

    is_int(apply("{\"type\":\"action\",\"member\":\"hal\",\"kind\":\"assist\","
                 "\"id\":\"act1\",\"at\":\"2027-04-12T00:00:00Z\"}\n"
                 "{\"type\":\"action\",\"member\":\"hal\",\"kind\":\"review\","
                 "\"id\":\"act2\",\"at\":\"2027-04-12T00:00:00Z\"}\n"
                 "{\"type\":\"action\",\"member\":\"hal\",\"kind\":\"share\","
                 "\"id\":\"act1\",\"at\":\"2027-04-12T00:00:00Z\"}\n"
                 "{\"type\":\"action\",\"member\":\"ghost\","
                 "\"kind\":\"share\",\"id\":\"act3\","
                 "\"at\":\"2027-04-12T00:00:00Z\"}"), -1,
           "an action of an unknown member spoils the batch");
    is_int(apply("{\"type\":\"action\",\"member\":\"hal\",\"kind\":\"assist\","
                 "\"id\":\"act1\",\"at\":\"2027-04-12T00:00:00Z\"}\n"
                 "{\"type\":\"action\",\"member\":\"hal\",\"kind\":\"review\","
                 "\"id\":\"act2\",\"at\":\"2027-04-12T00:00:00Z\"}\n"
                 "{\"type\":\"action\",\"member\":\"hal\",\"kind\":\"assist\","
                 "\"id\":\"act1\",\"at\":\"2027-04-12T00:00:00Z\"}"), 0,
           "actions");
    is_int(res.applied * 10 + res.duplicates, 21,
           "an action id seen before is a duplicate");
    get("hal");
    is_int(m.points, 499 + 4500 - 4500 + 50, "assist 50, review none");
    ok(balanced("hal", NULL), "hal balanced");

    /* issue 18: an id reused with other data is a conflict, not a dup */
    is_int(apply("{\"type\":\"action\",\"member\":\"hal\",\"kind\":\"share\","
                 "\"id\":\"act1\",\"at\":\"2027-04-12T00:00:00Z\"}"),
           LOYALTY_BATCH_CONFLICT, "an action id with another kind");
    is_str(errors, "[{\"index\":0,\"error\":\"id \\\"act1\\\" was applied "
           "with kind \\\"assist\\\", not \\\"share\\\"\",\"conflict\":"
           "{\"field\":\"kind\",\"stored\":\"assist\",\"given\":\"share\"}}]",
           "named, with the stored and the given kind");
}


static void
test_admin(void)
{
    MDB_txn  *txn;

    is_int(put("member", "ivy", "{\"id\":\"other\",\"tier\":\"basic\","
               "\"stage\":\"fan\"}"), -1, "a body's id must be the URL's");
    has_str(last_err, "is not the one in the URL", "says so");
    is_int(put("member", "ivy", "{\"tier\":\"gold\",\"stage\":\"fan\"}"), -1,
           "an unknown tier");
    has_str(last_err, "unknown tier \"gold\"", "named");
    is_int(put("member", "a b", "{\"tier\":\"basic\",\"stage\":\"fan\"}"), -1,
           "a bad id in the URL");
    is_int(put("code", "ivy-1", "{\"member\":\"ivy\"}"), -1,
           "a code of an unknown member");
    is_int(put("code", "ivy-1", "{\"code\":\"IVY-2\",\"member\":\"hal\"}"), -1,
           "a code's body must be the URL's");
    is_int(put("code", "Hal-9", "{\"code\":\"hAL-9\",\"member\":\"hal\","
               "\"target\":\"https://evil.example/\"}"), -1,
           "a target off the allowed hosts");
    is_int(put("code", "Hal-9", "{\"code\":\"hAL-9\",\"member\":\"hal\","
               "\"vanity\":true,\"target\":\"https://mall.example.cn/\"}"),
           0,
           "codes compare in any case; an allowed host");
    is_int(put("price", "tea", "{\"retail\":1000,\"tiers\":{\"vip\":900,"
               "\"ka\":950}}"), -1, "a price that breaks the guard");
    has_str(last_err, "privilege guard", "says so");
    is_int(put("price", "tea", "{\"retail\":1000,\"tiers\":{\"vip\":900,"
               "\"ka\":900,\"partner\":800}}"), 0, "a price");
    is_int(put("rules", NULL, "{\"version\":1}"), -1, "bad rules");
    is_int(put("tier", "x", "{}"), -1, "no such kind");

    is_int(put("member", "ivy", "{\"tier\":\"basic\",\"stage\":\"fan\","
               "\"points\":70,\"referrer\":\"hal\"}"), 0, "put ivy");
    is_int(put("member", "ivy", "{\"tier\":\"basic\",\"stage\":\"fan\","
               "\"points\":50,\"referrer\":\"hal\"}"), 0, "ivy's points to 50");
    has_str(query("ledger", "ivy", 0), "\"entries\":[{\"delta\":70,"
            "\"reason\":\"adjust\",\"at\":\"2027-01-15T08:00:00Z\"},"
            "{\"delta\":-20,\"reason\":\"adjust\"", "two adjust entries");

    mdb_txn_begin(st.env, NULL, 0, &txn);
    is_int(loyalty_admin_delete_member(&st, txn, "hal", 3), 0, "delete hal");
    is_int(loyalty_admin_delete_member(&st, txn, "hal", 3), MDB_NOTFOUND,
           "again: not found");
    mdb_txn_commit(txn);

    ok(get("hal") == -1, "hal is gone");
    is_str(query("referrals", "hal", 0), "NULL", "no referrals for hal");
    is_str(query("referrals", "ivy", 0), "{\"member\":\"ivy\",\"level1\":[],"
           "\"level2\":[]}", "ivy's downline");
    ok(strstr(query("referrals", "erin", 0), "hal") == NULL,
       "hal is not in anyone's downline");

    is_int(apply("{\"type\":\"signup\",\"member\":\"hal\"}"), 0,
           "hal signs up again");
    ok(balanced("hal", NULL), "a fresh hal: 0 points, and balanced");
    is_int(m.points, 0, "0 points");
    is_int(entries("hal"), 0, "no old entries: they went with hal");
}


/* random events, in batches; every balance matches its ledger */
static void
test_random(void)
{
    int     i, j, bad;
    char    body[16384], *p, id[16];
    size_t  k, n;

    for (i = 0; i < 20; i++) {
        p = body;

        for (j = 0; j < 50; j++) {
            k = rng_byte() % 12;
            snprintf(id, sizeof(id), "r%zu", k);

            switch (rng_byte() % 5) {
            case 0:
                p += sprintf(p, "{\"type\":\"signup\",\"member\":\"%s\","
                             "\"referrer\":\"r%u\"}\n", id,
                             rng_byte() % 3 == 0 ? 99 : rng_byte() % 12);
                break;
            case 1:
                p += sprintf(p, "{\"type\":\"follow\",\"member\":\"%s\"}\n",
                             id);
                break;
            case 2:
            case 3:
                p += sprintf(p, "{\"type\":\"order\",\"member\":\"%s\","
                             "\"order_id\":\"ro%d-%d\",\"amount\":%u,"
                             "\"at\":\"2027-05-%02uT00:00:00Z\"}\n", id, i,
                             j, rng_byte() * 97, 1 + rng_byte() % 28);
                break;
            default:
                p += sprintf(p, "{\"type\":\"refund\",\"refund_id\":"
                             "\"rr%d-%d\",\"order_id\":\"ro%u-%u\","
                             "\"amount\":%u}\n", i, j,
                             i ? rng_byte() % i : 0, rng_byte() % 50,
                             1 + rng_byte() % 300);
                break;
            }
        }

        /* a bad batch is retried without its bad events, as a shop would */
        while (apply(body) == LOYALTY_BATCH_INVALID) {
            k = (size_t) atoi(strstr(errors, "\"index\":") + 8);

            for (p = body; k; k--) {
                p = strchr(p, '\n') + 1;
            }

            memmove(p, strchr(p, '\n') + 1, strlen(strchr(p, '\n') + 1) + 1);
        }
    }

    bad = 0;
    n = 0;

    for (k = 0; k < 13; k++) {
        snprintf(id, sizeof(id), "r%zu", k);
        if (get(id) == 0 && !balanced(id, NULL)) {
            bad++;
        }
        n += entries(id);
    }

    is_int(bad, 0, "after random batches, every balance is its ledger's sum");
    ok(n > 100, "%zu ledger entries, referrals and refunds among them", n);
    ok(get("r99") == -1, "an unknown referrer was never made");
}


static void
test_speed(void)
{
    int      i, j;
    char     body[32768], *p;
    double   secs, rate;
    clock_t  t0;

    t0 = clock();

    for (i = 0; i < 100; i++) {
        p = body;

        for (j = 0; j < 100; j++) {
            if (j % 4 == 0) {
                p += sprintf(p, "{\"type\":\"signup\",\"member\":"
                             "\"s%d-%d\",\"ref_code\":\"ALICE-1\"}\n", i, j);

            } else {
                p += sprintf(p, "{\"type\":\"order\",\"member\":"
                             "\"s%d-%d\",\"order_id\":\"so%d-%d\","
                             "\"amount\":12800,\"items\":[{\"sku\":"
                             "\"nappies-128\",\"qty\":1}],"
                             "\"at\":\"2027-06-01T00:00:00Z\"}\n", i,
                             j - j % 4, i, j);
            }
        }

        if (apply(body) != 0) {
            diag("%s", errors);
            break;
        }
    }

    secs = (double) (clock() - t0) / CLOCKS_PER_SEC;
    rate = secs > 0 ? 10000 / secs : 1e9;

    ok(i == 100, "100 batches of 100 events applied");
    ok(rate > 2000, "batches of 100: %.0f events/s of CPU (over 2000)",
       rate);
    get("alice");
    ok(balanced("alice", NULL), "alice: 2500 level-1 credits, balanced");
}


/*
 * A hook in C, as loyalty_event_hook_t: what it answers depends on the
 * event's id, "CODE-tag":
 *
 *   pN      points N
 *   rN.M    referrer points N, referrer2 points M
 *   sN      stage N
 *   tNAME   tier NAME
 *   k       points = the orders of "hpa", read in the caller's txn
 *   x       fills out with points 999, stage partner, tier partner and
 *           returns -1
 *   else    returns 0, out left as given
 */

typedef struct {
    int       calls;
    char      id[LOYALTY_ID_MAX + 1];
    char      member[LOYALTY_ID_MAX + 1];
    char      ref[LOYALTY_ID_MAX + 1];
    char      ref2[LOYALTY_ID_MAX + 1];
    int64_t   points;
    int64_t   member_points;
    uint32_t  member_orders;
    int       member_stage;
    int       first;
    int       type;
    int32_t   rank;
    int       has_rank;
    int       out_clean;        /* out came with nothing set */
} hook_seen_t;


static int
test_hook_handler(void *data, loyalty_store_t *s, MDB_txn *txn,
    const loyalty_event_hook_in_t *in, loyalty_event_hook_out_t *out)
{
    char              *end;
    const char        *id, *dot;
    MDB_val            key, val;
    hook_seen_t       *seen = data;
    loyalty_member_t   pm;

    seen->calls++;
    snprintf(seen->id, sizeof(seen->id), "%.*s", (int) in->ev->id_len,
             in->ev->id);
    snprintf(seen->member, sizeof(seen->member), "%.*s",
             (int) in->member_len, in->member_id);
    snprintf(seen->ref, sizeof(seen->ref), "%.*s",
             in->referrer ? (int) in->referrer_len : 0,
             in->referrer ? in->referrer : "");
    snprintf(seen->ref2, sizeof(seen->ref2), "%.*s",
             in->referrer2 ? (int) in->referrer2_len : 0,
             in->referrer2 ? in->referrer2 : "");
    seen->points = in->points;
    seen->member_points = in->member->points;
    seen->member_orders = in->member->orders;
    seen->member_stage = in->member->stage;
    seen->first = in->first;
    seen->type = in->ev->type;
    seen->rank = in->rank;
    seen->has_rank = in->has_rank;
    seen->out_clean = !out->has_points && !out->has_l1 && !out->has_l2
                      && out->stage < 0 && out->tier_len == 0;

    id = seen->id;

    switch (id[0]) {

    case 'p':
        out->points = strtoll(id + 1, NULL, 10);
        out->has_points = 1;
        break;

    case 'r':
        out->l1_points = strtoll(id + 1, &end, 10);
        out->l2_points = strtoll(end + 1, NULL, 10);
        out->has_l1 = 1;
        out->has_l2 = 1;
        break;

    case 's':
        out->stage = atoi(id + 1);
        break;

    case 't':
        dot = strchr(id, '-');
        out->tier_len = (size_t) (dot - id - 1);
        memcpy(out->tier, id + 1, out->tier_len);
        break;

    case 'k':
        key.mv_data = "hpa";
        key.mv_size = 3;
        if (mdb_get(txn, s->dbi[LOYALTY_DB_MEMBERS], &key, &val) != 0
            || loyalty_member_decode(val.mv_data, val.mv_size, &pm) != 0)
        {
            return -1;
        }
        out->points = pm.orders;
        out->has_points = 1;
        break;

    case 'x':
        out->points = 999;
        out->has_points = 1;
        out->l1_points = 999;
        out->has_l1 = 1;
        out->stage = LOYALTY_STAGE_PARTNER;
        memcpy(out->tier, "partner", 7);
        out->tier_len = 7;
        return -1;
    }

    return 0;
}


static hook_seen_t           seen;
static loyalty_event_hook_t  c_hook = { test_hook_handler, &seen, NULL };


/* as apply(), with a hook */
static int
apply_hooked(const char *body, const loyalty_event_hook_t *hook)
{
    return apply_hook_max(body, hook, 1000);
}


#define HOOK_ACTION(member, kind, id)                                        \
    "{\"type\":\"action\",\"member\":\"" member "\",\"kind\":\"" kind "\","  \
    "\"id\":\"" id "\",\"at\":\"2027-07-01T00:00:00Z\"}\n"

#define HOOK_ORDER(member, id, amount)                                       \
    "{\"type\":\"order\",\"member\":\"" member "\",\"order_id\":\"" id "\"," \
    "\"amount\":" #amount ",\"at\":\"2027-07-01T00:00:00Z\"}\n"


/* the last ledger entry of a member, as the admin API shows it */
static const char *
last_entry(const char *id)
{
    char  *p;

    p = query("ledger", id, 1);
    p = strstr(p, "\"entries\":[");

    return p ? p + 11 : "none";
}


static void
test_hook(void)
{
    int64_t  hk, hpa, hgp;

    /* hgp referred hpa, who referred hk */
    is_int(put("member", "hgp", "{\"tier\":\"basic\",\"stage\":\"member\"}")
           + put("member", "hpa", "{\"tier\":\"basic\",\"stage\":\"member\","
                 "\"referrer\":\"hgp\",\"orders\":4}")
           + put("member", "hk", "{\"tier\":\"basic\",\"stage\":\"fan\","
                 "\"referrer\":\"hpa\",\"points\":10}")
           + put("member", "hsolo", "{\"tier\":\"basic\",\"stage\":\"fan\"}"),
           0, "hook: put hgp, hpa, hk, hsolo");

    /* an action: the hook's points replace the rules' 5 */
    is_int(apply_hooked(HOOK_ACTION("hk", "share", "p7-a1"), &c_hook), 0,
           "hook: an action");
    is_int(seen.calls, 1, "the hook is asked once");
    is_str(seen.id, "p7-a1", "about the event");
    is_str(seen.member, "hk", "of hk");
    is_int(seen.points, 5, "with the rules' default, share 5");
    is_int(seen.type * 10 + seen.first, LOYALTY_EVENT_ACTION * 10,
           "an action, not a first order");
    is_str(seen.ref, "hpa", "referrer hpa");
    is_str(seen.ref2, "hgp", "referrer2 hgp");
    is_int(seen.member_points * 10 + seen.member_stage,
           10 * 10 + LOYALTY_STAGE_FAN, "the member before: 10 points, fan");
    is_int(seen.has_rank * 10 + seen.rank, 10, "rank 0 (basic)");
    ok(seen.out_clean, "out comes with nothing set");
    get("hk");
    is_int(m.points, 10 + 7, "hk: 7, not the rules' 5");
    has_str(last_entry("hk"), "{\"delta\":7,\"reason\":\"action\","
            "\"event\":\"p7-a1\"", "hk's ledger: 7 for the action");

    /* an action's referrer shares: l1 and l2, the rules' points for hk */
    is_int(apply_hooked(HOOK_ACTION("hk", "group_buy", "r3.2-a2"), &c_hook),
           0, "hook: an action with referrer shares");
    get("hk");
    is_int(m.points, 17 + 30, "hk: the rules' 30 for a group buy");
    has_str(last_entry("hpa"), "{\"delta\":3,\"reason\":\"referral_l1\","
            "\"event\":\"r3.2-a2\"", "hpa: 3 as referral_l1");
    has_str(last_entry("hgp"), "{\"delta\":2,\"reason\":\"referral_l2\","
            "\"event\":\"r3.2-a2\"", "hgp: 2 as referral_l2");

    /* the first order: the hook's referral points replace 500 and 200 */
    get("hpa");
    hpa = m.points;
    get("hgp");
    hgp = m.points;
    is_int(apply_hooked("{\"type\":\"order\",\"member\":\"hk\","
                        "\"order_id\":\"r40.10-o1\",\"amount\":12800,"
                        "\"items\":[{\"sku\":\"nappies-128\"}],"
                        "\"at\":\"2027-07-01T00:00:00Z\"}", &c_hook), 0,
           "hook: hk's first order");
    is_int(seen.first * 1000 + seen.points, 1128,
           "asked about a first order worth 128");
    is_int(seen.member_orders, 0, "the member as before the order");
    get("hk");
    is_int(m.points, 47 + 128, "hk: the rules' 128");
    is_str(stage(), "member", "hk: a member by the SKU");
    is_str(m_tier, "vip", "hk: vip");
    get("hpa");
    is_int(m.points - hpa, 40, "hpa: 40, not 500");
    get("hgp");
    is_int(m.points - hgp, 10, "hgp: 10, not 200");

    /* later orders: referral points are not the hook's to give */
    is_int(apply_hooked(HOOK_ORDER("hk", "r40.10-o2", 100)
                        HOOK_ORDER("hk", "p-5-o3", 100), &c_hook), 0,
           "hook: two more orders");
    is_int(seen.first, 0, "not first orders");
    get("hpa");
    is_int(m.points - hpa, 40, "hpa: nothing more");
    get("hgp");
    is_int(m.points - hgp, 10, "hgp: nothing more");
    get("hk");
    is_int(m.points, 175 + 1 - 5, "hk: 1 by the rules, then -5 by the hook");
    ok(balanced("hk", NULL) && balanced("hpa", NULL) && balanced("hgp", NULL),
       "hook: hk, hpa and hgp balanced");

    /* tiers only up, and only to one the store has */
    get("hk");
    is_str(m_tier, "vip", "hook: hk is vip");
    is_int(apply_hooked(HOOK_ACTION("hk", "share", "tka-a8"), &c_hook), 0,
           "hook: tier ka");
    get("hk");
    is_str(m_tier, "ka", "ka");
    is_int(apply_hooked(HOOK_ACTION("hk", "share", "tvip-a9")
                        HOOK_ACTION("hk", "share", "tgold-a10")
                        HOOK_ACTION("hk", "share", "tbasic-a11"), &c_hook), 0,
           "hook: tiers vip, gold (unknown), basic");
    get("hk");
    is_str(m_tier, "ka", "still ka");

    /* stages only up */
    is_int(apply_hooked(HOOK_ACTION("hk", "share", "s2-a3"), &c_hook), 0,
           "hook: stage customer for a member");
    get("hk");
    is_str(stage(), "member", "stays a member");
    is_int(apply_hooked(HOOK_ACTION("hk", "share", "s4-a4"), &c_hook), 0,
           "hook: stage partner");
    get("hk");
    is_str(stage(), "partner", "a partner");
    is_str(m_tier, "partner", "with the rules' tier for partners");
    is_int(apply_hooked(HOOK_ACTION("hk", "share", "s3-a5")
                        HOOK_ACTION("hk", "share", "s9-a6")
                        HOOK_ACTION("hk", "share", "s-1-a7"), &c_hook), 0,
           "hook: stage member, a stage beyond partner, -1");
    get("hk");
    is_str(stage(), "partner", "still a partner");

    is_int(apply_hooked(HOOK_ACTION("hk", "share", "tpartner-a12"), &c_hook),
           0, "hook: tier partner, which hk has");
    get("hk");
    is_str(m_tier, "partner", "partner");

    /* -1: the defaults, whatever out says */
    is_int(apply_hooked(HOOK_ACTION("hsolo", "share", "x-a13")
                        HOOK_ORDER("hk", "x-o4", 1000), &c_hook), 0,
           "hook: -1 with out filled");
    get("hsolo");
    is_int(m.points, 5, "hsolo: the rules' 5, not 999");
    is_str(stage(), "fan", "still a fan");
    is_str(m_tier, "basic", "still basic");
    has_str(last_entry("hk"), "{\"delta\":10,\"reason\":\"order\","
            "\"event\":\"x-o4\"", "hk: the rules' 10 for the order");

    /* duplicates, and events of other types, are not asked about */
    seen.calls = 0;
    is_int(apply_hooked(HOOK_ACTION("hsolo", "share", "x-a13")
                        "{\"type\":\"signup\",\"member\":\"hnew\","
                        "\"referrer\":\"hk\"}\n"
                        "{\"type\":\"follow\",\"member\":\"hnew\"}\n"
                        "{\"type\":\"refund\",\"refund_id\":\"hr1\","
                        "\"order_id\":\"x-o4\",\"amount\":1000}\n", &c_hook),
           0, "hook: a duplicate, a signup, a follow and a refund");
    is_int(res.duplicates * 10 + res.applied, 13, "one duplicate");
    is_int(seen.calls, 0, "none of them asked about");

    /* the hook reads the caller's transaction: hpa's order in the batch */
    get("hpa");
    hpa = m.orders;
    is_int(apply_hooked(HOOK_ORDER("hpa", "p0-o5", 100)
                        HOOK_ACTION("hsolo", "share", "k-a14"), &c_hook), 0,
           "hook: an order of hpa, then an action asking about hpa");
    get("hsolo");
    is_int(m.points, 5 + hpa + 1, "the hook saw hpa's orders with the new one");

    /* a hook without a handler is no hook */
    {
        loyalty_event_hook_t  none = { NULL, &seen, NULL };

        seen.calls = 0;
        is_int(apply_hooked(HOOK_ACTION("hsolo", "share", "p100-a15"), &none),
               0, "hook: a NULL handler");
        is_int(seen.calls, 0, "is not called");
        get("hsolo");
        hk = m.points;
        is_int(hk, 5 + hpa + 1 + 5, "hsolo: the rules' 5");
    }

    /* a refused batch: the hook was asked, nothing is kept */
    seen.calls = 0;
    is_int(apply_hooked(HOOK_ACTION("hsolo", "share", "p100-a16")
                        HOOK_ACTION("ghost", "share", "p100-a17"), &c_hook),
           LOYALTY_BATCH_INVALID, "hook: a batch with an unknown member");
    get("hsolo");
    is_int(m.points, hk, "hsolo unchanged");

    ok(balanced("hk", NULL) && balanced("hpa", NULL) && balanced("hgp", NULL)
       && balanced("hsolo", NULL), "hook: every balance is its ledger's sum");
}


/* issue 18: referrer chains, ledger sums, what a delete takes */
static void
test_issue18(void)
{
    int               rc;
    char              id[16], ref[16], why[LOYALTY_ERRLEN];
    size_t            i, n, len;
    uint8_t           buf[LOYALTY_MEMBER_MAX];
    int64_t           sum;
    MDB_txn          *txn;
    MDB_val           key, val;
    loyalty_touch_t   t;
    loyalty_member_t  mm;
    loyalty_ledger_entry_t  e;

    /* a chain ch0 -> ch1 -> ... -> ch10001, written directly */
    mdb_txn_begin(st.env, NULL, 0, &txn);

    for (i = 0; i <= LOYALTY_REFERRER_CHAIN_MAX + 1; i++) {
        memset(&mm, 0, sizeof(mm));
        mm.tier = "basic";
        mm.tier_len = 5;
        snprintf(id, sizeof(id), "ch%zu", i);
        snprintf(ref, sizeof(ref), "ch%zu", i + 1);
        mm.referrer = ref;
        mm.referrer_len = (uint8_t) strlen(ref);
        key.mv_data = id;
        key.mv_size = strlen(id);
        val.mv_data = buf;
        val.mv_size = loyalty_member_encode(&mm, buf);
        mdb_put(txn, st.dbi[LOYALTY_DB_MEMBERS], &key, &val, 0);
    }

    is_int(loyalty_referrer_loop(&st, txn, "x", 1, "ch0", 3, why,
                                 sizeof(why)), -1,
           "a chain past 10000 members is not followed to its end");
    has_str(why, "longer than 10000 members", "says so");
    is_int(loyalty_referrer_loop(&st, txn, "x", 1, "ch3", 3, why,
                                 sizeof(why)), 0,
           "a chain of 9999 to its end, no loop");
    is_int(loyalty_referrer_loop(&st, txn, "ch5000", 6, "ch0", 3, why,
                                 sizeof(why)), -1,
           "a loop 5000 members long");
    has_str(why, "referrer \"ch0\" would make a loop: ch5000 -> ch0 -> ch1",
            "named from its start");

    /* a ledger whose sum overflows is damage, not a wrapped balance */
    e.reason = LOYALTY_LEDGER_ADJUST;
    e.event_len = 0;
    e.event = NULL;
    e.at = 0;
    e.delta = INT64_MAX;
    loyalty_ledger_append(&st, txn, "wrap", 4, &e);
    e.delta = 1;
    loyalty_ledger_append(&st, txn, "wrap", 4, &e);
    is_int(loyalty_ledger_sum(&st, txn, "wrap", 4, &sum, &n), MDB_CORRUPTED,
           "a ledger sum past INT64_MAX");
    mdb_txn_abort(txn);

    /* a loop through events: signups never make one */
    is_int(apply("{\"type\":\"signup\",\"member\":\"lp.a\"}\n"
                 "{\"type\":\"signup\",\"member\":\"lp.b\","
                 "\"referrer\":\"lp.a\"}\n"
                 "{\"type\":\"signup\",\"member\":\"lp.c\","
                 "\"referrer\":\"lp.b\"}\n"
                 "{\"type\":\"follow\",\"member\":\"lp.a\","
                 "\"ref_code\":\"LPC-CODE\"}\n"), 0, "a, b, c");
    is_int(put("code", "LPC-CODE", "{\"member\":\"lp.c\"}"), 0,
           "c's code");
    is_int(apply("{\"type\":\"order\",\"member\":\"lp.a\",\"order_id\":"
                 "\"lp-o1\",\"amount\":100,\"at\":\"2027-01-01T00:00:00Z\","
                 "\"ref_code\":\"lpc-code\"}"), 0,
           "a orders with c's code");
    get("lp.a");
    is_str(m_ref, "", "a -> c -> b -> a would loop: a has no referrer");

    /* a member's touches and due entries go with them */
    memset(&t, 0, sizeof(t));
    t.due_at = 1800000000 + 86400;
    t.scheduled_at = 1800000000;
    t.reward = 5;
    mdb_txn_begin(st.env, NULL, 0, &txn);
    rc = loyalty_due_schedule(&st, txn, "cad.a:lp.b:p1", 13, &t, 1800000000);
    rc |= loyalty_due_schedule(&st, txn, "cad.a:lp.b.x:p1", 15, &t,
                               1800000000);
    rc |= loyalty_due_schedule(&st, txn, "cad:lp.b:p2", 11, &t, 1800000000);
    rc |= loyalty_due_schedule(&st, txn, "zed:lp.b:p3", 11, &t, 1800000000);
    rc |= loyalty_due_schedule(&st, txn, "zed:lp.c:p3", 11, &t, 1800000000);
    is_int(rc, 0, "touches of b, and of others");
    is_int(loyalty_admin_delete_member(&st, txn, "lp.b", 4), 0, "delete b");

    for (i = 0, n = 0; i < 2; i++) {
        MDB_cursor  *cur;

        mdb_cursor_open(txn, st.dbi[i ? LOYALTY_DB_DUE : LOYALTY_DB_TOUCHES],
                        &cur);
        while (mdb_cursor_get(cur, &key, &val, MDB_NEXT) == 0) {
            len = i ? key.mv_size - 8 : key.mv_size;
            if (memmem((char *) key.mv_data + key.mv_size - len, len,
                       ":lp.b:", 6))
            {
                n++;
            }
        }
        mdb_cursor_close(cur);
    }

    is_int(n, 0, "no touch or due entry of b is left");
    is_int(loyalty_due_exists(&st, txn, "cad.a:lp.b.x:p1", 15)
           + loyalty_due_exists(&st, txn, "zed:lp.c:p3", 11), 2,
           "those of others stay");
    mdb_txn_commit(txn);

    get("lp.c");
    is_str(m_ref, "", "c, whom b referred, has no referrer now");
}


int
main(void)
{
    char  err[LOYALTY_ERRLEN];

    plan(252);

    if (fixture_store_open(tmp, "events", &st, err, sizeof(err)) != 0) {
        diag("%s", err);
        return 1;
    }

    fixture_put_tier(&st, "basic", 0);
    fixture_put_tier(&st, "vip", 1);
    fixture_put_tier(&st, "ka", 2);
    fixture_put_tier(&st, "partner", 3);

    test_without_rules();
    test_journey();
    test_refunds();
    test_invalid();
    test_referrers();
    test_times_and_progress();
    test_admin();
    test_random();
    test_speed();
    test_hook();
    test_issue18();

    fixture_store_remove(tmp, &st);

    return done();
}
