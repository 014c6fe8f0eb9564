/*
 * Unit tests of loyalty_rules.c: the rules document's checks, its storage
 * in meta, lifecycle, RFM scores and segments.
 */

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loyalty_rules.h"
#include "rules_fixture.h"
#include "store_fixture.h"
#include "tap.h"


#define DAY  LOYALTY_DAY


static char  tmp[FIXTURE_PATH_MAX];


static json_t *
base(void)
{
    json_t        *doc, *more;
    json_error_t   jerr;

    /* the fixture's document, with a review's points and more segments */
    doc = json_loads(fixture_rules_doc, 0, &jerr);
    more = json_loads("[{\"name\":\"B1\",\"r\":4,\"f\":3},"
                      "{\"name\":\"C1\",\"m\":2},{\"name\":\"D-3_x\"}]",
                      0, &jerr);
    if (doc == NULL || more == NULL) {
        diag("base document: %s", jerr.text);
        exit(1);
    }

    json_object_set_new(json_object_get(json_object_get(doc, "points"),
                                        "actions"),
                        "review", json_integer(10));
    json_array_extend(json_object_get(doc, "segments"), more);
    json_decref(more);

    return doc;
}


/*
 * The base document with the value at a dotted path ("member.skus.0.qty")
 * replaced by value (JSON text), or removed when value is NULL.
 */
static json_t *
with(const char *path, const char *value)
{
    char          buf[128], *p, *dot;
    json_t       *doc, *parent, *v;
    json_error_t  jerr;

    doc = base();
    snprintf(buf, sizeof(buf), "%s", path);

    parent = doc;
    p = buf;

    while ((dot = strchr(p, '.')) != NULL) {
        *dot = '\0';
        parent = json_is_array(parent) ? json_array_get(parent, atoi(p))
                                       : json_object_get(parent, p);
        p = dot + 1;
    }

    if (value == NULL) {
        json_object_del(parent, p);
        return doc;
    }

    v = json_loads(value, JSON_DECODE_ANY, &jerr);
    if (v == NULL) {
        diag("value %s: %s", value, jerr.text);
        exit(1);
    }

    if (json_is_array(parent) && (size_t) atoi(p) == json_array_size(parent))
    {
        json_array_append_new(parent, v);

    } else if (json_is_array(parent)) {
        json_array_set_new(parent, atoi(p), v);

    } else {
        json_object_set_new(parent, p, v);
    }

    return doc;
}


static void
rejects(const char *path, const char *value, const char *why)
{
    int              rc;
    char             err[LOYALTY_ERRLEN];
    json_t          *doc;
    loyalty_rules_t  r;

    doc = with(path, value);
    err[0] = '\0';
    rc = loyalty_rules_from_json(doc, &r, err, sizeof(err));
    json_decref(doc);

    if (is_int(rc, -1, "%s = %s is rejected", path, value ? value : "absent"))
    {
        has_str(err, why, "%s = %s: the error says why", path,
                value ? value : "absent");

    } else {
        ok(0, "%s = %s: no error", path, value ? value : "absent");
    }
}


static void
accepts(const char *path, const char *value, loyalty_rules_t *r)
{
    int      rc;
    char     err[LOYALTY_ERRLEN];
    json_t  *doc;

    doc = with(path, value);
    rc = loyalty_rules_from_json(doc, r, err, sizeof(err));
    json_decref(doc);

    if (!is_int(rc, 0, "%s = %s is accepted", path,
                value ? value : "absent"))
    {
        diag("%s", err);
    }
}


static loyalty_member_t
member(int64_t last, uint32_t orders, int64_t spend)
{
    loyalty_member_t  m;

    memset(&m, 0, sizeof(m));
    m.orders = orders;
    m.spend = spend;

    if (last != INT64_MIN) {
        m.flags = LOYALTY_MEMBER_LAST_ORDER;
        m.last_order_at = last;
    }

    return m;
}


static const char *
segment(const loyalty_rules_t *r, const loyalty_member_t *m, int64_t now)
{
    static char  buf[LOYALTY_SEGMENT_MAX + 1];
    size_t       len;
    const char  *name;

    if (loyalty_segment(r, m, now, &name, &len) != 0) {
        return NULL;
    }

    memcpy(buf, name, len);
    buf[len] = '\0';

    return buf;
}


static void
test_parse(void)
{
    loyalty_rules_t  r;

    accepts("version", "1", &r);

    is_int(r.member.spend, 50000, "member.spend");
    is_int(r.member.nskus, 1, "member: one sku");
    is_int(r.member.skus[0].qty, 1, "member: qty defaults to 1");
    is_mem(r.member.skus[0].sku, "nappies-128", 11, "member: the sku");
    is_int(r.member.tier_len, 3, "member.tier");
    is_int(r.partner.spend, 0, "partner: no spend threshold");
    is_int(r.partner.skus[0].qty, 100, "partner: 100 packs");
    is_int(r.nupgrades, 2, "two upgrades");
    is_int(r.upgrades[1].spend, 500000, "upgrades in order");
    is_mem(r.signup_tier, "basic", 5, "signup_tier");
    is_int(r.spend_per_point, 100, "spend_per_point");
    is_int(r.action_points[LOYALTY_ACTION_GROUP_BUY], 30,
           "points for a group buy");
    is_int(r.referral_points[0], 500, "level 1");
    is_int(r.referral_points[1], 200, "level 2");
    is_int(r.at_risk, 60 * DAY, "at_risk in seconds");
    is_int(r.lost, 365 * DAY, "lost in seconds");
    is_int(r.monetary[3], 1000000, "monetary breakpoints");
    is_int(r.nsegments, 4, "four segments");
    is_int(r.segments[1].m, 1, "an absent minimum is 1");

    accepts("points.actions", NULL, &r);
    is_int(r.action_points[LOYALTY_ACTION_SHARE], 0,
           "no actions: no points");
    accepts("points", "{}", &r);
    is_int(r.spend_per_point, 0, "no spend_per_point: no points for spend");
    accepts("upgrades", NULL, &r);
    is_int(r.nupgrades, 0, "upgrades are optional");
    accepts("segments", "[]", &r);
    accepts("member", "{}", &r);
    accepts("version", "1.0", &r);
    accepts("description", "\"\\u5c0f\"", &r);
    accepts("rfm.recency", "[0,1,2,36500]", &r);
    accepts("segments.0.name", "\"abcdefghijklmnop\"", &r);

    rejects("version", "2", "\"version\" must be 1");
    rejects("version", NULL, "\"version\" is required");
    rejects("colour", "1", "unknown field \"colour\"");
    rejects("signup_tier", "\"public\"", "signup_tier\" must be a tier");
    rejects("signup_tier", "\"a b\"", "must be a tier name");
    rejects("signup_tier", NULL, "\"signup_tier\" is required");
    rejects("member", NULL, "\"member\" is required");
    rejects("member", "[]", "\"member\" must be an object");
    rejects("member.spend", "0", "at least 1");
    rejects("member.spend", "-5", "member: \"spend\" must be between");
    rejects("member.spend", "\"5\"", "member: \"spend\" must be an integer");
    rejects("member.colour", "1", "member: unknown field");
    rejects("member.tier", "\"\"", "member: \"tier\" must be a tier");
    rejects("member.skus.0.qty", "0", "member.skus[0]: \"qty\" must be");
    rejects("member.skus.0.qty", "1000001", "member.skus[0]: \"qty\"");
    rejects("member.skus.0.sku", "\"a/b\"", "member.skus[0]: \"sku\"");
    rejects("member.skus.0", "\"x\"", "member.skus[0]: expected a JSON");
    rejects("member.skus.1", "{\"sku\":\"nappies-128\"}", "listed twice");
    rejects("member.skus", "[{\"sku\":\"1\"},{\"sku\":\"2\"},{\"sku\":\"3\"},"
            "{\"sku\":\"4\"},{\"sku\":\"5\"},{\"sku\":\"6\"},{\"sku\":\"7\"},"
            "{\"sku\":\"8\"},{\"sku\":\"9\"},{\"sku\":\"10\"},{\"sku\":\"11\"},"
            "{\"sku\":\"12\"},{\"sku\":\"13\"},{\"sku\":\"14\"},{\"sku\":\"15\"},"
            "{\"sku\":\"16\"},{\"sku\":\"17\"}]", "more than 16");
    rejects("partner.skus.0.qty", "1.5", "\"qty\" must be an integer");
    rejects("upgrades.1.spend", "100000", "must be above");
    rejects("upgrades.1.spend", "99999", "must be above");
    rejects("upgrades.1.tier", "\"vip\"", "listed twice");
    rejects("upgrades.0", "{\"tier\":\"vip\"}", "\"spend\" is required");
    rejects("upgrades.0.spend", "0", "upgrades[0]: \"spend\" must be");
    rejects("points.spend_per_point", "0", "points: \"spend_per_point\"");
    rejects("points.actions.share", "-1", "points.actions: \"share\"");
    rejects("points.actions.like", "1", "points.actions: unknown field");
    rejects("points.actions.share", "1000000000001", "points.actions");
    rejects("points.referral.level3", "1", "points.referral: unknown field");
    rejects("points.referral.level1", "true", "\"level1\" must be an integer");
    rejects("lifecycle.at_risk", "120", "at_risk < dormant < lost");
    rejects("lifecycle.lost", "120", "at_risk < dormant < lost");
    rejects("lifecycle.at_risk", "0", "lifecycle: \"at_risk\" must be");
    rejects("lifecycle.lost", NULL, "lifecycle: \"lost\" is required");
    rejects("rfm.recency", "[30,60,90]", "4 breakpoints");
    rejects("rfm.recency", "[30,60,90,180,365]", "4 breakpoints");
    rejects("rfm.recency", "[30,60,60,180]", "strictly ascending");
    rejects("rfm.recency", "[-1,60,90,180]", "\"recency\"[0] must be");
    rejects("rfm.frequency", "[0,4,8,16]", "\"frequency\"[0] must be");
    rejects("rfm.monetary", "[1,2,3,\"4\"]", "\"monetary\"[3] must be");
    rejects("rfm.monetary", "[1,2,3.5,4]", "\"monetary\"[2] must be");
    rejects("rfm.monetary", NULL, "\"monetary\" is required");
    rejects("segments.0.name", "\"A.1\"", "segments[0]: \"name\" must be");
    rejects("segments.0.name", "\"abcdefghijklmnopq\"", "\"name\" must be");
    rejects("segments.0.name", "\"\"", "\"name\" must be");
    rejects("segments.1.name", "\"A1\"", "defined twice");
    rejects("segments.0.r", "6", "segments[0]: \"r\" must be between 1");
    rejects("segments.0.f", "0", "segments[0]: \"f\" must be between 1");
    rejects("segments.0", "{\"r\":1}", "\"name\" is required");
    rejects("segments", "{}", "\"segments\" must be an array");
}


static void
test_lifecycle(void)
{
    int64_t           now;
    loyalty_member_t  m;
    loyalty_rules_t   r;

    accepts("version", "1", &r);
    now = 1800000000;

    m = member(INT64_MIN, 0, 0);
    is_int(loyalty_lifecycle(&r, &m, now), LOYALTY_LIFECYCLE_NONE,
           "no order: none");
    is_str(loyalty_lifecycle_names[LOYALTY_LIFECYCLE_NONE], "none",
           "its name");

    m = member(now, 1, 100);
    is_int(loyalty_lifecycle(&r, &m, now), LOYALTY_LIFECYCLE_ACTIVE,
           "ordered now: active");
    m = member(now + DAY, 1, 100);
    is_int(loyalty_lifecycle(&r, &m, now), LOYALTY_LIFECYCLE_ACTIVE,
           "an order in the future: active");
    m = member(now - 60 * DAY + 1, 1, 100);
    is_int(loyalty_lifecycle(&r, &m, now), LOYALTY_LIFECYCLE_ACTIVE,
           "a second short of at_risk: active");
    m = member(now - 60 * DAY, 1, 100);
    is_int(loyalty_lifecycle(&r, &m, now), LOYALTY_LIFECYCLE_AT_RISK,
           "60 days: at_risk");
    m = member(now - 120 * DAY + 1, 1, 100);
    is_int(loyalty_lifecycle(&r, &m, now), LOYALTY_LIFECYCLE_AT_RISK,
           "just short of 120 days: at_risk");
    m = member(now - 120 * DAY, 1, 100);
    is_int(loyalty_lifecycle(&r, &m, now), LOYALTY_LIFECYCLE_DORMANT,
           "120 days: dormant");
    m = member(now - 365 * DAY, 1, 100);
    is_int(loyalty_lifecycle(&r, &m, now), LOYALTY_LIFECYCLE_LOST,
           "365 days: lost");
    m = member(LOYALTY_TIME_MIN, 1, 100);
    is_int(loyalty_lifecycle(&r, &m, now), LOYALTY_LIFECYCLE_LOST,
           "year 0: lost");
    is_str(loyalty_lifecycle_names[LOYALTY_LIFECYCLE_AT_RISK], "at_risk",
           "at_risk's name");
    is_str(loyalty_lifecycle_names[LOYALTY_LIFECYCLE_LOST], "lost",
           "lost's name");
}


static void
test_segments(void)
{
    int64_t           now;
    unsigned          rs, fs, ms;
    loyalty_member_t  m;
    loyalty_rules_t   r;

    accepts("version", "1", &r);
    now = 1800000000;

    /* recency [30,60,90,180] days, frequency [2,4,8,16],
     * monetary [12800,50000,200000,1000000] */
    m = member(now - 30 * DAY - DAY + 1, 16, 1000000);
    loyalty_rfm(&r, &m, now, &rs, &fs, &ms);
    is_int(rs * 100 + fs * 10 + ms, 555, "30 days, 16 orders, 10000.00: 555");
    is_str(segment(&r, &m, now), "A1", "first match: A1");

    m = member(now - 31 * DAY, 15, 999999);
    loyalty_rfm(&r, &m, now, &rs, &fs, &ms);
    is_int(rs * 100 + fs * 10 + ms, 444, "31 days, 15 orders, 9999.99: 444");
    is_str(segment(&r, &m, now), "B1", "444 is B1, not A1");

    m = member(now - 180 * DAY, 1, 12800);
    loyalty_rfm(&r, &m, now, &rs, &fs, &ms);
    is_int(rs * 100 + fs * 10 + ms, 212, "180 days, 1 order, 128.00: 212");
    is_str(segment(&r, &m, now), "C1", "m 2 is C1");

    m = member(now - 181 * DAY, 2, 12799);
    loyalty_rfm(&r, &m, now, &rs, &fs, &ms);
    is_int(rs * 100 + fs * 10 + ms, 121, "181 days, 2 orders, 127.99: 121");
    is_str(segment(&r, &m, now), "D-3_x", "the catch-all");

    m = member(INT64_MIN, 0, 0);
    loyalty_rfm(&r, &m, now, &rs, &fs, &ms);
    is_int(rs * 100 + fs * 10 + ms, 111, "no order: 111");

    m = member(now + 5 * DAY, 4, 50000);
    loyalty_rfm(&r, &m, now, &rs, &fs, &ms);
    is_int(rs * 100 + fs * 10 + ms, 533, "an order in the future: recency 5");

    accepts("segments", "[{\"name\":\"VIP\",\"m\":5}]", &r);
    m = member(now, 1, 100);
    ok(segment(&r, &m, now) == NULL, "no segment matches: -1");
    m = member(now, 1, 1000000);
    is_str(segment(&r, &m, now), "VIP", "only the big spender matches");

    accepts("segments", "[]", &r);
    ok(segment(&r, &m, now) == NULL, "no segments: -1");
}


static void
test_store(void)
{
    int              rc;
    char             err[LOYALTY_ERRLEN], *text;
    json_t          *doc, *got;
    MDB_txn         *txn;
    MDB_val          key, val;
    loyalty_store_t  st;
    loyalty_rules_t  r;

    rc = fixture_store_open(tmp, "rules", &st, err, sizeof(err));
    if (!is_int(rc, 0, "a new store")) {
        diag("%s", err);
        exit(1);
    }

    mdb_txn_begin(st.env, NULL, 0, &txn);

    is_int(loyalty_rules_load(&st, txn, &r), MDB_NOTFOUND,
           "a new store has no rules");
    got = loyalty_rules_get(&st, txn, &rc);
    ok(got == NULL && rc == MDB_NOTFOUND, "get: none");

    doc = base();
    is_int(loyalty_rules_put(&st, txn, doc, err, sizeof(err)), -1,
           "put: the tiers are not in the store");
    has_str(err, "signup_tier: unknown tier \"basic\"", "put names the tier");

    key.mv_data = "basic";
    key.mv_size = 5;
    val.mv_data = "\1\0\0\0\0\0\0\0\0\0";
    val.mv_size = 10;
    mdb_put(txn, st.dbi[LOYALTY_DB_TIERS], &key, &val, 0);
    key.mv_data = "vip";
    key.mv_size = 3;
    mdb_put(txn, st.dbi[LOYALTY_DB_TIERS], &key, &val, 0);

    is_int(loyalty_rules_put(&st, txn, doc, err, sizeof(err)), -1,
           "put: member.tier \"vip\" is there, partner's is not");
    has_str(err, "partner.tier: unknown tier \"partner\"", "named");

    key.mv_data = "partner";
    key.mv_size = 7;
    mdb_put(txn, st.dbi[LOYALTY_DB_TIERS], &key, &val, 0);

    is_int(loyalty_rules_put(&st, txn, doc, err, sizeof(err)), -1,
           "put: an upgrade's tier is missing");
    has_str(err, "upgrades[1]: unknown tier \"ka\"", "named");

    key.mv_data = "ka";
    key.mv_size = 2;
    mdb_put(txn, st.dbi[LOYALTY_DB_TIERS], &key, &val, 0);

    rc = loyalty_rules_put(&st, txn, doc, err, sizeof(err));
    if (!is_int(rc, 0, "put: every tier is there")) {
        diag("%s", err);
    }

    memset(&r, 0xff, sizeof(r));
    is_int(loyalty_rules_load(&st, txn, &r), 0, "load");
    is_int(r.referral_points[1], 200, "loaded as put");
    is_int(r.nsegments, 4, "segments loaded");

    key.mv_data = LOYALTY_META_RULES_KEY;
    key.mv_size = sizeof(LOYALTY_META_RULES_KEY) - 1;
    mdb_get(txn, st.dbi[LOYALTY_DB_META], &key, &val);
    text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
    ok(val.mv_size == strlen(text) && memcmp(val.mv_data, text, val.mv_size)
       == 0, "stored as compact JSON with sorted keys");
    ok(memchr(val.mv_data, ' ', val.mv_size) == NULL, "no spaces");
    free(text);

    got = loyalty_rules_get(&st, txn, &rc);
    ok(got && json_equal(got, doc), "get: the document");
    json_decref(got);

    /* a bad document changes nothing */
    json_object_set_new(doc, "version", json_integer(3));
    is_int(loyalty_rules_put(&st, txn, doc, err, sizeof(err)), -1,
           "put: a bad document");
    is_int(loyalty_rules_load(&st, txn, &r), 0, "the old rules stay");
    json_decref(doc);

    val.mv_data = "{\"version\":1}";
    val.mv_size = 13;
    mdb_put(txn, st.dbi[LOYALTY_DB_META], &key, &val, 0);
    is_int(loyalty_rules_load(&st, txn, &r), MDB_CORRUPTED,
           "stored text that does not validate: MDB_CORRUPTED");

    val.mv_data = "{\"version\":";
    val.mv_size = 11;
    mdb_put(txn, st.dbi[LOYALTY_DB_META], &key, &val, 0);
    is_int(loyalty_rules_load(&st, txn, &r), MDB_CORRUPTED,
           "stored text that is not JSON: MDB_CORRUPTED");

    mdb_txn_abort(txn);
    fixture_store_remove(tmp, &st);
}


int
main(void)
{
    plan(185);

    test_parse();
    test_lifecycle();
    test_segments();
    test_store();

    is_int(loyalty_action_parse("group_buy", 9), LOYALTY_ACTION_GROUP_BUY,
           "action group_buy");
    is_int(loyalty_action_parse("group", 5), -1, "no action \"group\"");

    return done();
}
