/*
 * nginx-loyalty: the rules document, its storage, lifecycle and segments.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loyalty_json.h"
#include "loyalty_rules.h"


#define LOYALTY_DAYS_MAX        36500
/* spend thresholds: 10^18 minor units, beyond any shop */
#define LOYALTY_SPEND_MAX       1000000000000000000LL


const char  *loyalty_lifecycle_names[LOYALTY_LIFECYCLE_COUNT] = {
    "none", "active", "at_risk", "dormant", "lost"
};

const char  *loyalty_action_names[LOYALTY_ACTION_COUNT] = {
    "share", "invite", "group_buy", "assist", "review"
};


static const loyalty_json_field_t  loyalty_rules_fields[] = {
    loyalty_json_field("version",        JSON_INTEGER, 1),
    loyalty_json_field("signup_tier",    JSON_STRING,  1),
    loyalty_json_field("member",         JSON_OBJECT,  1),
    loyalty_json_field("partner",        JSON_OBJECT,  1),
    loyalty_json_field("upgrades",       JSON_ARRAY,   0),
    loyalty_json_field("points",         JSON_OBJECT,  1),
    loyalty_json_field("lifecycle",      JSON_OBJECT,  1),
    loyalty_json_field("rfm",            JSON_OBJECT,  1),
    loyalty_json_field("segments",       JSON_ARRAY,   1),
    loyalty_json_field("description",    JSON_STRING,  0),
    LOYALTY_JSON_END
};

/* an order's item, a rules stage's sku: {"sku", "qty"} */
static const loyalty_json_field_t  loyalty_sku_fields[] = {
    loyalty_json_field("sku",            JSON_STRING,  1),
    loyalty_json_int_field("qty", 0, 1, LOYALTY_QTY_MAX, loyalty_rules_sku_t,
                           qty),
    LOYALTY_JSON_END
};

/* an integer field of loyalty_rules_t, read with its range */
#define loyalty_rules_int_field(name, required, min, max, member)            \
    loyalty_json_int_field(name, required, min, max, loyalty_rules_t, member)

static const loyalty_json_field_t  loyalty_rules_stage_fields[] = {
    loyalty_json_int_field("spend", 0, 0, LOYALTY_SPEND_MAX,
                           loyalty_rules_stage_t, spend),
    loyalty_json_field("skus",           JSON_ARRAY,   0),
    loyalty_json_field("tier",           JSON_STRING,  0),
    LOYALTY_JSON_END
};

static const loyalty_json_field_t  loyalty_rules_upgrade_fields[] = {
    loyalty_json_field("tier",           JSON_STRING,  1),
    loyalty_json_int_field("spend", 1, 1, LOYALTY_SPEND_MAX,
                           loyalty_rules_upgrade_t, spend),
    LOYALTY_JSON_END
};

static const loyalty_json_field_t  loyalty_rules_points_fields[] = {
    loyalty_rules_int_field("spend_per_point", 0, 1, LOYALTY_PRICE_MAX,
                            spend_per_point),
    loyalty_json_field("actions",        JSON_OBJECT,  0),
    loyalty_json_field("referral",       JSON_OBJECT,  0),
    LOYALTY_JSON_END
};

/* in the order of loyalty_action_names */
static const loyalty_json_field_t  loyalty_rules_actions_fields[] = {
    loyalty_rules_int_field("share", 0, 0, LOYALTY_POINTS_MAX,
                            action_points[LOYALTY_ACTION_SHARE]),
    loyalty_rules_int_field("invite", 0, 0, LOYALTY_POINTS_MAX,
                            action_points[LOYALTY_ACTION_INVITE]),
    loyalty_rules_int_field("group_buy", 0, 0, LOYALTY_POINTS_MAX,
                            action_points[LOYALTY_ACTION_GROUP_BUY]),
    loyalty_rules_int_field("assist", 0, 0, LOYALTY_POINTS_MAX,
                            action_points[LOYALTY_ACTION_ASSIST]),
    loyalty_rules_int_field("review", 0, 0, LOYALTY_POINTS_MAX,
                            action_points[LOYALTY_ACTION_REVIEW]),
    LOYALTY_JSON_END
};

static const loyalty_json_field_t  loyalty_rules_referral_fields[] = {
    loyalty_rules_int_field("level1", 0, 0, LOYALTY_POINTS_MAX,
                            referral_points[0]),
    loyalty_rules_int_field("level2", 0, 0, LOYALTY_POINTS_MAX,
                            referral_points[1]),
    LOYALTY_JSON_END
};

static const loyalty_json_field_t  loyalty_rules_lifecycle_fields[] = {
    loyalty_rules_int_field("at_risk", 1, 1, LOYALTY_DAYS_MAX, at_risk),
    loyalty_rules_int_field("dormant", 1, 1, LOYALTY_DAYS_MAX, dormant),
    loyalty_rules_int_field("lost", 1, 1, LOYALTY_DAYS_MAX, lost),
    LOYALTY_JSON_END
};

static const loyalty_json_field_t  loyalty_rules_rfm_fields[] = {
    loyalty_json_field("recency",        JSON_ARRAY,   1),
    loyalty_json_field("frequency",      JSON_ARRAY,   1),
    loyalty_json_field("monetary",       JSON_ARRAY,   1),
    LOYALTY_JSON_END
};

/* a segment's least scores as read; an absent one is 0 */
typedef struct {
    int64_t  r;
    int64_t  f;
    int64_t  m;
} loyalty_rules_scores_t;

static const loyalty_json_field_t  loyalty_rules_segment_fields[] = {
    loyalty_json_field("name",           JSON_STRING,  1),
    loyalty_json_int_field("r", 0, 1, 5, loyalty_rules_scores_t, r),
    loyalty_json_int_field("f", 0, 1, 5, loyalty_rules_scores_t, f),
    loyalty_json_int_field("m", 0, 1, 5, loyalty_rules_scores_t, m),
    LOYALTY_JSON_END
};


int
loyalty_action_parse(const char *s, size_t len)
{
    return loyalty_name_index(loyalty_action_names, LOYALTY_ACTION_COUNT, s,
                              len);
}


/*
 * Checks a nested object and reads its integers into out
 * (loyalty_json_check_read), naming where it is in the error.
 */
static int
loyalty_rules_read(json_t *obj, const char *where,
    const loyalty_json_field_t *fields, void *out, char *err, size_t errlen)
{
    char  why[LOYALTY_ERRLEN];

    if (loyalty_json_check_read(obj, fields, out, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "%s: %s", where, why);
        return -1;
    }

    return 0;
}


static int
loyalty_rules_tier(json_t *v, const char *where, char *tier, uint8_t *len,
    char *err, size_t errlen)
{
    const char  *s;
    size_t       n;

    s = json_string_value(v);
    n = json_string_length(v);

    if (!loyalty_valid_tier_name(s, n)) {
        snprintf(err, errlen, "%s must be a tier name: 1-%d characters of "
                 "[A-Za-z0-9_.-], not \"public\"", where, LOYALTY_TIER_MAX);
        return -1;
    }

    memcpy(tier, s, n);
    *len = (uint8_t) n;

    return 0;
}


/*
 * Whether the name s (len bytes) is that of one of the n entries of an
 * array: name0 and len0 point to the first entry's name and length, and
 * stride bytes separate the entries.
 */
static int
loyalty_rules_named_before(const char *name0, const uint8_t *len0,
    size_t stride, size_t n, const char *s, size_t len)
{
    size_t  j;

    for (j = 0; j < n; j++) {
        if (len0[j * stride] == len
            && memcmp(name0 + j * stride, s, len) == 0)
        {
            return 1;
        }
    }

    return 0;
}


int
loyalty_sku_from_json(json_t *v, loyalty_rules_sku_t *item, char *err,
    size_t errlen)
{
    size_t       len;
    const char  *sku;

    if (loyalty_json_check_read(v, loyalty_sku_fields, item, err, errlen)
        || loyalty_json_id(v, "sku", &sku, &len, err, errlen))
    {
        return -1;
    }

    if (json_object_get(v, "qty") == NULL) {
        item->qty = 1;
    }

    memcpy(item->sku, sku, len);
    item->len = (uint8_t) len;

    return 0;
}


/* the i-th of the skus of the stage data (loyalty_json_each) */
static int
loyalty_rules_sku(json_t *v, size_t i, void *data, char *err, size_t errlen)
{
    loyalty_rules_sku_t    *sku;
    loyalty_rules_stage_t  *s = data;

    sku = &s->skus[i];

    if (loyalty_sku_from_json(v, sku, err, errlen) != 0) {
        return -1;
    }

    if (loyalty_rules_named_before(s->skus[0].sku, &s->skus[0].len,
                                   sizeof(s->skus[0]), i, sku->sku, sku->len))
    {
        snprintf(err, errlen, "sku \"%.*s\" is listed twice", (int) sku->len,
                 sku->sku);
        return -1;
    }

    return 0;
}


static int
loyalty_rules_stage(json_t *obj, const char *where, loyalty_rules_stage_t *s,
    char *err, size_t errlen)
{
    char     at[64];
    size_t   n;
    json_t  *skus, *v;

    if (loyalty_rules_read(obj, where, loyalty_rules_stage_fields, s, err,
                           errlen))
    {
        return -1;
    }

    if (json_object_get(obj, "spend") && s->spend == 0) {
        snprintf(err, errlen, "%s: \"spend\" must be at least 1; leave it "
                 "out for no threshold", where);
        return -1;
    }

    v = json_object_get(obj, "tier");
    if (v) {
        snprintf(at, sizeof(at), "%s: \"tier\"", where);
        if (loyalty_rules_tier(v, at, s->tier, &s->tier_len, err, errlen)) {
            return -1;
        }
    }

    skus = json_object_get(obj, "skus");
    n = json_array_size(skus);

    if (n > LOYALTY_RULES_SKUS) {
        snprintf(err, errlen, "%s: \"skus\" has more than %d entries", where,
                 LOYALTY_RULES_SKUS);
        return -1;
    }

    snprintf(at, sizeof(at), "%s.skus", where);

    if (loyalty_json_each(skus, at, loyalty_rules_sku, s, err, errlen) != 0) {
        return -1;
    }

    s->nskus = n;

    return 0;
}


/* the i-th of the upgrades of the rules data (loyalty_json_each) */
static int
loyalty_rules_upgrade(json_t *v, size_t i, void *data, char *err,
    size_t errlen)
{
    loyalty_rules_t          *r = data;
    loyalty_rules_upgrade_t  *u;

    u = &r->upgrades[i];

    if (loyalty_json_check_read(v, loyalty_rules_upgrade_fields, u, err,
                                errlen)
        || loyalty_rules_tier(json_object_get(v, "tier"), "\"tier\"",
                              u->tier, &u->len, err, errlen))
    {
        return -1;
    }

    /* ascending, so that the last one reached is the one that counts */
    if (i > 0 && u->spend <= u[-1].spend) {
        snprintf(err, errlen, "\"spend\" must be above the spend of the "
                 "entry before it");
        return -1;
    }

    if (loyalty_rules_named_before(r->upgrades[0].tier, &r->upgrades[0].len,
                                   sizeof(r->upgrades[0]), i, u->tier,
                                   u->len))
    {
        snprintf(err, errlen, "tier \"%.*s\" is listed twice", (int) u->len,
                 u->tier);
        return -1;
    }

    return 0;
}


static int
loyalty_rules_points(json_t *obj, loyalty_rules_t *r, char *err,
    size_t errlen)
{
    json_t  *v;

    if (loyalty_rules_read(obj, "points", loyalty_rules_points_fields, r, err,
                           errlen))
    {
        return -1;
    }

    v = json_object_get(obj, "actions");
    if (v && loyalty_rules_read(v, "points.actions",
                                loyalty_rules_actions_fields, r, err, errlen))
    {
        return -1;
    }

    v = json_object_get(obj, "referral");
    if (v && loyalty_rules_read(v, "points.referral",
                                loyalty_rules_referral_fields, r, err, errlen))
    {
        return -1;
    }

    return 0;
}


static int
loyalty_rules_lifecycle(json_t *obj, loyalty_rules_t *r, char *err,
    size_t errlen)
{
    if (loyalty_rules_read(obj, "lifecycle", loyalty_rules_lifecycle_fields,
                           r, err, errlen))
    {
        return -1;
    }

    if (!(r->at_risk < r->dormant && r->dormant < r->lost)) {
        snprintf(err, errlen, "lifecycle: at_risk < dormant < lost days "
                 "must hold");
        return -1;
    }

    r->at_risk *= LOYALTY_DAY;
    r->dormant *= LOYALTY_DAY;
    r->lost *= LOYALTY_DAY;

    return 0;
}


static int
loyalty_rules_breaks(json_t *arr, const char *name, json_int_t min,
    json_int_t max, int64_t *out, char *err, size_t errlen)
{
    size_t      i;
    json_int_t  n;

    if (json_array_size(arr) != LOYALTY_RFM_BREAKS) {
        snprintf(err, errlen, "rfm: \"%s\" must hold %d breakpoints", name,
                 LOYALTY_RFM_BREAKS);
        return -1;
    }

    for (i = 0; i < LOYALTY_RFM_BREAKS; i++) {
        if (!loyalty_json_is_integer(json_array_get(arr, i), &n)
            || n < min || n > max)
        {
            snprintf(err, errlen, "rfm: \"%s\"[%zu] must be an integer "
                     "between %lld and %lld", name, i, (long long) min,
                     (long long) max);
            return -1;
        }

        if (i > 0 && n <= out[i - 1]) {
            snprintf(err, errlen, "rfm: \"%s\" must be strictly ascending",
                     name);
            return -1;
        }

        out[i] = n;
    }

    return 0;
}


/* the i-th of the segments of the rules data (loyalty_json_each) */
static int
loyalty_rules_segment(json_t *v, size_t i, void *data, char *err,
    size_t errlen)
{
    size_t                    len;
    json_t                   *name;
    const char               *s;
    loyalty_rules_t          *r = data;
    loyalty_rules_scores_t    score;
    loyalty_rules_segment_t  *seg;

    seg = &r->segments[i];

    if (loyalty_json_check_read(v, loyalty_rules_segment_fields, &score, err,
                                errlen)
        != 0)
    {
        return -1;
    }

    /* an absent minimum is 1: every member reaches it */
    seg->r = (uint8_t) (score.r ? score.r : 1);
    seg->f = (uint8_t) (score.f ? score.f : 1);
    seg->m = (uint8_t) (score.m ? score.m : 1);

    name = json_object_get(v, "name");
    s = json_string_value(name);
    len = json_string_length(name);

    if (!loyalty_valid_kid(s, len)) {
        snprintf(err, errlen, "\"name\" must be 1-%d characters of "
                 "[A-Za-z0-9_-]", LOYALTY_SEGMENT_MAX);
        return -1;
    }

    memcpy(seg->name, s, len);
    seg->len = (uint8_t) len;

    if (loyalty_rules_named_before(r->segments[0].name, &r->segments[0].len,
                                   sizeof(r->segments[0]), i, s, len))
    {
        snprintf(err, errlen, "segment \"%s\" is defined twice", s);
        return -1;
    }

    return 0;
}


/*
 * The list name of the rules document, at most max entries, each read
 * into r by each (loyalty_json_each); *n is its size.
 */
static int
loyalty_rules_list(json_t *doc, const char *name, size_t max,
    loyalty_json_each_pt each, loyalty_rules_t *r, size_t *n, char *err,
    size_t errlen)
{
    json_t  *arr;

    arr = json_object_get(doc, name);

    if (json_array_size(arr) > max) {
        snprintf(err, errlen, "%s: more than %zu entries", name, max);
        return -1;
    }

    if (loyalty_json_each(arr, name, each, r, err, errlen) != 0) {
        return -1;
    }

    *n = json_array_size(arr);

    return 0;
}


int
loyalty_rules_from_json(json_t *doc, loyalty_rules_t *r, char *err,
    size_t errlen)
{
    json_t      *v;
    json_int_t   version;

    memset(r, 0, sizeof(loyalty_rules_t));

    if (loyalty_json_check(doc, loyalty_rules_fields, err, errlen) != 0) {
        return -1;
    }

    (void) loyalty_json_is_integer(json_object_get(doc, "version"),
                                   &version);

    if (version != LOYALTY_RULES_VERSION) {
        snprintf(err, errlen, "\"version\" must be %d",
                 LOYALTY_RULES_VERSION);
        return -1;
    }

    if (loyalty_rules_tier(json_object_get(doc, "signup_tier"),
                           "\"signup_tier\"", r->signup_tier,
                           &r->signup_tier_len, err, errlen)
        || loyalty_rules_stage(json_object_get(doc, "member"), "member",
                               &r->member, err, errlen)
        || loyalty_rules_stage(json_object_get(doc, "partner"), "partner",
                               &r->partner, err, errlen)
        || loyalty_rules_list(doc, "upgrades", LOYALTY_RULES_UPGRADES,
                              loyalty_rules_upgrade, r, &r->nupgrades, err,
                              errlen)
        || loyalty_rules_points(json_object_get(doc, "points"), r, err,
                                errlen)
        || loyalty_rules_lifecycle(json_object_get(doc, "lifecycle"), r, err,
                                   errlen))
    {
        return -1;
    }

    v = json_object_get(doc, "rfm");

    if (loyalty_rules_read(v, "rfm", loyalty_rules_rfm_fields, NULL, err,
                           errlen)
        || loyalty_rules_breaks(json_object_get(v, "recency"), "recency", 0,
                                LOYALTY_DAYS_MAX, r->recency, err, errlen)
        || loyalty_rules_breaks(json_object_get(v, "frequency"), "frequency",
                                1, UINT32_MAX, r->frequency, err, errlen)
        || loyalty_rules_breaks(json_object_get(v, "monetary"), "monetary",
                                1, LOYALTY_SPEND_MAX, r->monetary, err,
                                errlen))
    {
        return -1;
    }

    return loyalty_rules_list(doc, "segments", LOYALTY_RULES_SEGMENTS,
                              loyalty_rules_segment, r, &r->nsegments, err,
                              errlen);
}


int
loyalty_rules_load(loyalty_store_t *st, MDB_txn *txn, loyalty_rules_t *r)
{
    int           rc;
    char          err[LOYALTY_ERRLEN];
    json_t       *doc;
    MDB_val       val;
    json_error_t  jerr;

    rc = loyalty_store_meta_get(st, txn, LOYALTY_META_RULES_KEY, &val);
    if (rc != 0) {
        return rc;
    }

    if (val.mv_size > LOYALTY_RULES_TEXT_MAX) {
        return MDB_CORRUPTED;
    }

    doc = json_loadb(val.mv_data, val.mv_size, JSON_REJECT_DUPLICATES, &jerr);
    if (doc == NULL) {
        return MDB_CORRUPTED;
    }

    rc = loyalty_rules_from_json(doc, r, err, sizeof(err));
    json_decref(doc);

    return rc == 0 ? 0 : MDB_CORRUPTED;
}


json_t *
loyalty_rules_get(loyalty_store_t *st, MDB_txn *txn, int *rc)
{
    json_t        *doc;
    MDB_val        val;
    json_error_t   jerr;

    *rc = loyalty_store_meta_get(st, txn, LOYALTY_META_RULES_KEY, &val);
    if (*rc != 0) {
        return NULL;
    }

    doc = json_loadb(val.mv_data, val.mv_size, JSON_REJECT_DUPLICATES, &jerr);
    if (doc == NULL) {
        *rc = MDB_CORRUPTED;
    }

    return doc;
}


static int
loyalty_rules_tier_exists(MDB_txn *txn, MDB_dbi dbi, const char *tier,
    size_t len, const char *where, char *err, size_t errlen)
{
    int      rc;
    MDB_val  val;

    rc = loyalty_store_get(txn, dbi, tier, len, &val);
    if (rc == MDB_NOTFOUND) {
        snprintf(err, errlen, "%s: unknown tier \"%.*s\"", where, (int) len,
                 tier);
        return -1;
    }

    return rc;
}


int
loyalty_rules_put(loyalty_store_t *st, MDB_txn *txn, json_t *doc,
    char *err, size_t errlen)
{
    int               rc;
    char             *text;
    char              at[32];
    size_t            i;
    MDB_dbi           tiers;
    loyalty_rules_t  *r, rules;

    r = &rules;

    if (loyalty_rules_from_json(doc, r, err, errlen) != 0) {
        return -1;
    }

    tiers = st->dbi[LOYALTY_DB_TIERS];

    rc = loyalty_rules_tier_exists(txn, tiers, r->signup_tier,
                                   r->signup_tier_len, "signup_tier", err,
                                   errlen);

    if (rc == 0 && r->member.tier_len) {
        rc = loyalty_rules_tier_exists(txn, tiers, r->member.tier,
                                       r->member.tier_len, "member.tier",
                                       err, errlen);
    }

    if (rc == 0 && r->partner.tier_len) {
        rc = loyalty_rules_tier_exists(txn, tiers, r->partner.tier,
                                       r->partner.tier_len, "partner.tier",
                                       err, errlen);
    }

    for (i = 0; rc == 0 && i < r->nupgrades; i++) {
        snprintf(at, sizeof(at), "upgrades[%zu]", i);
        rc = loyalty_rules_tier_exists(txn, tiers, r->upgrades[i].tier,
                                       r->upgrades[i].len, at, err, errlen);
    }

    if (rc != 0) {
        return rc;
    }

    /* sorted keys: the same rules are the same bytes */
    text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
    if (text == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }

    if (strlen(text) > LOYALTY_RULES_TEXT_MAX) {
        snprintf(err, errlen, "the document is longer than %d bytes",
                 LOYALTY_RULES_TEXT_MAX);
        free(text);
        return -1;
    }

    rc = loyalty_store_meta_put(st, txn, LOYALTY_META_RULES_KEY, text,
                                strlen(text));
    free(text);

    return rc;
}


loyalty_lifecycle_e
loyalty_lifecycle(const loyalty_rules_t *r, const loyalty_member_t *m,
    int64_t now)
{
    int64_t  idle;

    if (!(m->flags & LOYALTY_MEMBER_LAST_ORDER)) {
        return LOYALTY_LIFECYCLE_NONE;
    }

    idle = now - m->last_order_at;

    if (idle < r->at_risk) {
        return LOYALTY_LIFECYCLE_ACTIVE;
    }

    if (idle < r->dormant) {
        return LOYALTY_LIFECYCLE_AT_RISK;
    }

    if (idle < r->lost) {
        return LOYALTY_LIFECYCLE_DORMANT;
    }

    return LOYALTY_LIFECYCLE_LOST;
}


/* 1 below the first breakpoint, 5 from the last one on */
static unsigned
loyalty_rfm_up(const int64_t *breaks, int64_t v)
{
    unsigned  i;

    for (i = LOYALTY_RFM_BREAKS; i > 0; i--) {
        if (v >= breaks[i - 1]) {
            return i + 1;
        }
    }

    return 1;
}


void
loyalty_rfm(const loyalty_rules_t *r, const loyalty_member_t *m,
    int64_t now, unsigned *rs, unsigned *fs, unsigned *ms)
{
    unsigned  i;
    int64_t   days;

    /* recency: the fewer days since the last order, the higher */
    *rs = 1;

    if (m->flags & LOYALTY_MEMBER_LAST_ORDER) {
        days = now > m->last_order_at
               ? (now - m->last_order_at) / LOYALTY_DAY : 0;

        for (i = 0; i < LOYALTY_RFM_BREAKS; i++) {
            if (days <= r->recency[i]) {
                *rs = 5 - i;
                break;
            }
        }
    }

    *fs = loyalty_rfm_up(r->frequency, m->orders);
    *ms = loyalty_rfm_up(r->monetary, m->spend);
}


int
loyalty_segment(const loyalty_rules_t *r, const loyalty_member_t *m,
    int64_t now, const char **name, size_t *len)
{
    size_t                          i;
    unsigned                        rs, fs, ms;
    const loyalty_rules_segment_t  *seg;

    loyalty_rfm(r, m, now, &rs, &fs, &ms);

    for (i = 0; i < r->nsegments; i++) {
        seg = &r->segments[i];

        if (rs >= seg->r && fs >= seg->f && ms >= seg->m) {
            *name = seg->name;
            *len = seg->len;
            return 0;
        }
    }

    return -1;
}
