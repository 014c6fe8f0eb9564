/*
 * nginx-loyalty: records to and from JSON (jansson).
 */

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "loyalty_json.h"


const loyalty_json_field_t  loyalty_member_fields[] = {
    loyalty_json_field("id",             JSON_STRING,  1),
    loyalty_json_field("tier",           JSON_STRING,  1),
    loyalty_json_field("stage",          JSON_STRING,  1),
    loyalty_json_field("referrer",       JSON_STRING,  0),
    loyalty_json_field("joined_at",      JSON_STRING,  0),
    loyalty_json_field("first_order_at", JSON_STRING,  0),
    loyalty_json_field("last_order_at",  JSON_STRING,  0),
    loyalty_json_int_field("orders", 0, 0, UINT32_MAX, loyalty_member_t,
                           orders),
    loyalty_json_int_field("spend", 0, 0, INT64_MAX, loyalty_member_t,
                           spend),
    loyalty_json_int_field("points", 0, -LOYALTY_POINTS_MAX,
                           LOYALTY_POINTS_MAX, loyalty_member_t, points),
    loyalty_json_field("birthday",       JSON_STRING,  0),
    loyalty_json_field("blocked",        JSON_TRUE,    0),
    LOYALTY_JSON_END
};


static const loyalty_json_field_t  loyalty_tier_fields[] = {
    loyalty_json_field("name",           JSON_STRING,  1),
    loyalty_json_int_field("rank", 1, INT32_MIN, INT32_MAX, loyalty_tier_t,
                           rank),
    loyalty_json_int_field("discount_bp", 0, 0, 10000, loyalty_tier_t,
                           discount_bp),
    loyalty_json_field("label",          JSON_STRING,  0),
    LOYALTY_JSON_END
};


static const loyalty_json_field_t  loyalty_price_fields[] = {
    loyalty_json_field("sku",            JSON_STRING,  1),
    loyalty_json_int_field("retail", 1, 0, LOYALTY_PRICE_MAX,
                           loyalty_price_t, retail),
    loyalty_json_field("tiers",          JSON_OBJECT,  0),
    loyalty_json_field("currency",       JSON_STRING,  0),
    LOYALTY_JSON_END
};


static const loyalty_json_field_t  loyalty_code_fields[] = {
    loyalty_json_field("code",           JSON_STRING,  1),
    loyalty_json_field("member",         JSON_STRING,  1),
    loyalty_json_field("campaign",       JSON_STRING,  0),
    loyalty_json_field("target",         JSON_STRING,  0),
    loyalty_json_field("created_at",     JSON_STRING,  0),
    loyalty_json_field("expires_at",     JSON_STRING,  0),
    loyalty_json_int_field("max_clicks", 0, 1, INT64_MAX, loyalty_code_t,
                           max_clicks),
    loyalty_json_field("revoked",        JSON_TRUE,    0),
    loyalty_json_field("vanity",         JSON_TRUE,    0),
    LOYALTY_JSON_END
};


static const char *
loyalty_json_type_name(int type)
{
    switch (type) {
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    default:
        return "a boolean";
    }
}


/* a double holds every integer up to here exactly */
#define LOYALTY_JSON_EXACT  9007199254740992.0


/*
 * JSON Schema counts 1.0 as an integer, and so do we; a fraction, or a
 * number too large for a double to hold exactly, is not one.
 */
int
loyalty_json_is_integer(json_t *v, json_int_t *out)
{
    double  d;

    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return 1;
    }

    if (!json_is_real(v)) {
        return 0;
    }

    d = json_real_value(v);

    if (d != floor(d) || fabs(d) > LOYALTY_JSON_EXACT) {
        return 0;
    }

    *out = (json_int_t) d;
    return 1;
}


int
loyalty_json_check(json_t *obj, const loyalty_json_field_t *fields,
    char *err, size_t errlen)
{
    const char                  *key;
    json_t                      *v;
    int                          type;
    json_int_t                   n;
    const loyalty_json_field_t  *f;

    if (!json_is_object(obj)) {
        snprintf(err, errlen, "expected a JSON object");
        return -1;
    }

    json_object_foreach(obj, key, v) {
        for (f = fields; f->name; f++) {
            if (strcmp(f->name, key) == 0) {
                break;
            }
        }

        if (f->name == NULL) {
            snprintf(err, errlen, "unknown field \"%.64s\"", key);
            return -1;
        }

        type = json_typeof(v);
        if (type == JSON_FALSE) {
            type = JSON_TRUE;

        } else if (type == JSON_REAL && loyalty_json_is_integer(v, &n)) {
            type = JSON_INTEGER;
        }

        if (type != f->type) {
            snprintf(err, errlen, "\"%s\" must be %s", f->name,
                     loyalty_json_type_name(f->type));
            return -1;
        }
    }

    for (f = fields; f->name; f++) {
        if (f->required && json_object_get(obj, f->name) == NULL) {
            snprintf(err, errlen, "\"%s\" is required", f->name);
            return -1;
        }
    }

    return 0;
}


int
loyalty_json_read_ints(json_t *obj, const loyalty_json_field_t *fields,
    void *out, char *err, size_t errlen)
{
    uint8_t                     *p;
    json_int_t                   n;
    const loyalty_json_field_t  *f;

    for (f = fields; f->name; f++) {
        if (f->type != JSON_INTEGER || f->max <= f->min) {
            continue;
        }

        if (loyalty_json_int(obj, f->name, f->min, f->max, &n, err, errlen)
            != 0)
        {
            return -1;
        }

        p = (uint8_t *) out + f->off;

        switch (f->size) {

        case 1:
            *p = (uint8_t) n;
            break;

        case 2:
            *(uint16_t *) p = (uint16_t) n;
            break;

        case 4:
            *(uint32_t *) p = (uint32_t) n;
            break;

        default:
            *(int64_t *) p = n;
            break;
        }
    }

    return 0;
}


int
loyalty_json_check_read(json_t *obj, const loyalty_json_field_t *fields,
    void *out, char *err, size_t errlen)
{
    if (loyalty_json_check(obj, fields, err, errlen) != 0) {
        return -1;
    }

    return loyalty_json_read_ints(obj, fields, out, err, errlen);
}


uint32_t
loyalty_json_read(json_t *obj, const loyalty_json_field_t *fields,
    void *out)
{
    json_t                      *v;
    uint8_t                     *p;
    uint32_t                     bit, found;
    loyalty_json_text_t         *text;
    const loyalty_json_field_t  *f;

    if (!json_is_object(obj)) {
        return 0;
    }

    found = 0;

    for (f = fields, bit = 1; f->name; f++, bit <<= 1) {
        v = json_object_get(obj, f->name);

        if (v && f->type != LOYALTY_JSON_ANY
            && (int) json_typeof(v) != f->type)
        {
            v = NULL;
        }

        if (v) {
            found |= bit;
        }

        p = (uint8_t *) out + f->off;

        switch (f->type) {

        case JSON_STRING:
            text = (loyalty_json_text_t *) p;
            text->data = json_string_value(v);
            text->len = json_string_length(v);
            break;

        case JSON_INTEGER:
            *(json_int_t *) p = json_integer_value(v);
            break;

        default:
            *(json_t **) p = v;
            break;
        }
    }

    return found;
}


int
loyalty_json_name(json_t *obj, const char *name, const char *const *names,
    size_t n, int *out, char *err, size_t errlen)
{
    json_t  *v;

    v = json_object_get(obj, name);
    *out = loyalty_name_pick(names, n, json_string_value(v),
                             json_string_length(v), name, err, errlen);

    return *out < 0 ? -1 : 0;
}


int
loyalty_json_string(json_t *obj, const char *name,
    loyalty_json_check_pt check, const char **s, size_t *len, char *err,
    size_t errlen)
{
    json_t  *v;

    v = json_object_get(obj, name);
    *s = json_string_value(v);
    *len = json_string_length(v);

    return check(name, *s, *len, err, errlen);
}


int
loyalty_json_id(json_t *obj, const char *name, const char **s, size_t *len,
    char *err, size_t errlen)
{
    return loyalty_json_string(obj, name, loyalty_check_id, s, len, err,
                               errlen);
}


int
loyalty_json_time(json_t *obj, const char *name, unsigned flag,
    unsigned *flags, int64_t *out, char *err, size_t errlen)
{
    json_t  *v;

    v = json_object_get(obj, name);
    if (v == NULL) {
        *out = 0;
        return 0;
    }

    if (loyalty_parse_rfc3339(json_string_value(v), json_string_length(v),
                              out)
        != 0)
    {
        snprintf(err, errlen, "\"%s\" must be an RFC 3339 date-time", name);
        return -1;
    }

    if (!loyalty_time_in_window(*out)) {
        snprintf(err, errlen, "\"%s\" must be between "
                 LOYALTY_TIME_FIRST_TEXT " and " LOYALTY_TIME_LAST_TEXT,
                 name);
        return -1;
    }

    *flags |= flag;
    return 0;
}


int
loyalty_json_int(json_t *obj, const char *name, json_int_t min,
    json_int_t max, json_int_t *out, char *err, size_t errlen)
{
    json_t  *v;

    v = json_object_get(obj, name);
    if (v == NULL) {
        *out = 0;
        return 0;
    }

    (void) loyalty_json_is_integer(v, out);

    if (*out < min || *out > max) {
        snprintf(err, errlen, "\"%s\" must be between %lld and %lld", name,
                 (long long) min, (long long) max);
        return -1;
    }

    return 0;
}


int
loyalty_json_each(json_t *arr, const char *where, loyalty_json_each_pt each,
    void *data, char *err, size_t errlen)
{
    char     why[LOYALTY_ERRLEN];
    size_t   i;
    json_t  *v;

    json_array_foreach(arr, i, v) {
        if (each(v, i, data, why, sizeof(why)) != 0) {
            snprintf(err, errlen, "%s[%zu]: %s", where, i, why);
            return -1;
        }
    }

    return 0;
}


/* "referrer", if any: a member id, not the member's own */
static int
loyalty_member_referrer_from_json(json_t *obj, const char *id, size_t len,
    loyalty_member_t *m, char *err, size_t errlen)
{
    json_t  *v;

    v = json_object_get(obj, "referrer");
    if (v == NULL) {
        return 0;
    }

    m->referrer = json_string_value(v);
    m->referrer_len = (uint8_t) json_string_length(v);

    if (!loyalty_valid_id(m->referrer, json_string_length(v))) {
        snprintf(err, errlen, "\"referrer\" must be a member id");
        return -1;
    }

    if (m->referrer_len == len && memcmp(m->referrer, id, len) == 0) {
        snprintf(err, errlen, "a member cannot be their own referrer");
        return -1;
    }

    return 0;
}


int
loyalty_member_from_json(json_t *obj, const char **id, size_t *id_len,
    loyalty_member_t *m, char *err, size_t errlen)
{
    int        stage;
    size_t     len;
    json_t    *v;
    unsigned   flags;

    if (loyalty_json_check(obj, loyalty_member_fields, err, errlen) != 0) {
        return -1;
    }

    memset(m, 0, sizeof(loyalty_member_t));

    if (loyalty_json_id(obj, "id", id, id_len, err, errlen) != 0) {
        return -1;
    }

    if (loyalty_json_string(obj, "tier", loyalty_check_tier_name, &m->tier,
                            &len, err, errlen)
        != 0)
    {
        return -1;
    }

    m->tier_len = (uint8_t) len;

    if (loyalty_json_name(obj, "stage", loyalty_stage_names,
                          LOYALTY_STAGE_COUNT, &stage, err, errlen)
        != 0)
    {
        return -1;
    }

    m->stage = (uint8_t) stage;

    if (loyalty_member_referrer_from_json(obj, *id, *id_len, m, err, errlen)
        != 0)
    {
        return -1;
    }

    flags = 0;

    if (loyalty_json_time(obj, "joined_at", LOYALTY_MEMBER_JOINED, &flags,
                          &m->joined_at, err, errlen)
        || loyalty_json_time(obj, "first_order_at",
                             LOYALTY_MEMBER_FIRST_ORDER, &flags,
                             &m->first_order_at, err, errlen)
        || loyalty_json_time(obj, "last_order_at", LOYALTY_MEMBER_LAST_ORDER,
                             &flags, &m->last_order_at, err, errlen))
    {
        return -1;
    }

    m->flags = (uint16_t) flags;

    if (loyalty_json_read_ints(obj, loyalty_member_fields, m, err, errlen)) {
        return -1;
    }

    v = json_object_get(obj, "birthday");
    if (v) {
        if (loyalty_parse_birthday(json_string_value(v),
                                   json_string_length(v), &m->birth_month,
                                   &m->birth_day)
            != 0)
        {
            snprintf(err, errlen, "\"birthday\" must be MM-DD");
            return -1;
        }
        m->flags |= LOYALTY_MEMBER_BIRTHDAY;
    }

    if (json_is_true(json_object_get(obj, "blocked"))) {
        m->flags |= LOYALTY_MEMBER_BLOCKED;
    }

    return 0;
}


void
loyalty_json_set_time(json_t *obj, const char *name, int64_t t)
{
    char  buf[LOYALTY_RFC3339_LEN + 1];

    loyalty_format_rfc3339(t, buf);
    json_object_set_new(obj, name, json_string(buf));
}


json_t *
loyalty_member_to_json(const char *id, size_t id_len,
    const loyalty_member_t *m)
{
    char     bday[8];
    json_t  *obj;

    obj = json_object();
    if (obj == NULL) {
        return NULL;
    }

    json_object_set_new(obj, "id", json_stringn(id, id_len));
    json_object_set_new(obj, "tier", json_stringn(m->tier, m->tier_len));
    json_object_set_new(obj, "stage",
                        json_string(loyalty_stage_names[m->stage]));

    if (m->referrer_len) {
        json_object_set_new(obj, "referrer",
                            json_stringn(m->referrer, m->referrer_len));
    }

    if (m->flags & LOYALTY_MEMBER_JOINED) {
        loyalty_json_set_time(obj, "joined_at", m->joined_at);
    }

    if (m->flags & LOYALTY_MEMBER_FIRST_ORDER) {
        loyalty_json_set_time(obj, "first_order_at", m->first_order_at);
    }

    if (m->flags & LOYALTY_MEMBER_LAST_ORDER) {
        loyalty_json_set_time(obj, "last_order_at", m->last_order_at);
    }

    json_object_set_new(obj, "orders", json_integer(m->orders));
    json_object_set_new(obj, "spend", json_integer(m->spend));
    json_object_set_new(obj, "points", json_integer(m->points));

    if (m->flags & LOYALTY_MEMBER_BIRTHDAY) {
        snprintf(bday, sizeof(bday), "%02u-%02u", m->birth_month,
                 m->birth_day);
        json_object_set_new(obj, "birthday", json_string(bday));
    }

    json_object_set_new(obj, "blocked",
                        json_boolean(m->flags & LOYALTY_MEMBER_BLOCKED));

    return obj;
}


int
loyalty_tier_from_json(json_t *obj, const char **name, size_t *name_len,
    loyalty_tier_t *t, char *err, size_t errlen)
{
    json_t      *v;
    json_int_t   n;
    const char  *label;

    if (loyalty_json_check(obj, loyalty_tier_fields, err, errlen) != 0) {
        return -1;
    }

    memset(t, 0, sizeof(loyalty_tier_t));

    if (loyalty_json_string(obj, "name", loyalty_check_tier_name, name,
                            name_len, err, errlen)
        != 0)
    {
        return -1;
    }

    if (loyalty_json_read_ints(obj, loyalty_tier_fields, t, err, errlen)) {
        return -1;
    }

    v = json_object_get(obj, "label");
    if (v) {
        label = json_string_value(v);

        n = loyalty_utf8_chars(label, json_string_length(v));

        if (n < 0 || n > LOYALTY_LABEL_CHARS) {
            snprintf(err, errlen, "\"label\" must be at most %d characters",
                     LOYALTY_LABEL_CHARS);
            return -1;
        }

        t->label = label;
        t->label_len = (uint16_t) json_string_length(v);

    } else {
        t->label = "";
    }

    return 0;
}


json_t *
loyalty_tier_to_json(const char *name, size_t name_len,
    const loyalty_tier_t *t)
{
    json_t  *obj;

    obj = json_object();
    if (obj == NULL) {
        return NULL;
    }

    json_object_set_new(obj, "name", json_stringn(name, name_len));
    json_object_set_new(obj, "rank", json_integer(t->rank));
    json_object_set_new(obj, "discount_bp", json_integer(t->discount_bp));
    json_object_set_new(obj, "label", json_stringn(t->label, t->label_len));

    return obj;
}


int
loyalty_price_from_json(json_t *obj, const char **sku, size_t *sku_len,
    loyalty_price_t *p, loyalty_price_override_t *ov, char *err,
    size_t errlen)
{
    size_t       i;
    json_t      *v, *tiers;
    json_int_t   n;
    const char  *tier, *cur;

    if (loyalty_json_check(obj, loyalty_price_fields, err, errlen) != 0) {
        return -1;
    }

    memset(p, 0, sizeof(loyalty_price_t));

    if (loyalty_json_id(obj, "sku", sku, sku_len, err, errlen) != 0) {
        return -1;
    }

    if (loyalty_json_read_ints(obj, loyalty_price_fields, p, err, errlen)) {
        return -1;
    }

    v = json_object_get(obj, "currency");
    if (v) {
        cur = json_string_value(v);

        if (!loyalty_valid_currency(cur, json_string_length(v))) {
            snprintf(err, errlen, "\"currency\" must be an ISO 4217 code "
                     "such as CNY");
            return -1;
        }

        memcpy(p->currency, cur, 3);
    }

    tiers = json_object_get(obj, "tiers");
    if (tiers == NULL) {
        return 0;
    }

    if (json_object_size(tiers) > LOYALTY_PRICE_OVERRIDES) {
        snprintf(err, errlen, "\"tiers\" has more than %d entries",
                 LOYALTY_PRICE_OVERRIDES);
        return -1;
    }

    i = 0;

    json_object_foreach(tiers, tier, v) {
        if (!loyalty_valid_tier_name(tier, strlen(tier))) {
            snprintf(err, errlen, "\"tiers\": \"%.64s\" is not a tier name",
                     tier);
            return -1;
        }

        if (!loyalty_json_is_integer(v, &n) || n < 0
            || n > LOYALTY_PRICE_MAX)
        {
            snprintf(err, errlen, "\"tiers\": the price for \"%s\" must be "
                     "an integer between 0 and %lld", tier,
                     (long long) LOYALTY_PRICE_MAX);
            return -1;
        }

        ov[i].tier = tier;
        ov[i].tier_len = strlen(tier);
        ov[i].price = n;
        i++;
    }

    p->noverrides = (uint8_t) i;

    return 0;
}


json_t *
loyalty_price_to_json(const char *sku, size_t sku_len,
    const loyalty_price_t *p)
{
    size_t                    i;
    json_t                   *obj, *tiers;
    loyalty_price_override_t  ov;

    obj = json_object();
    if (obj == NULL) {
        return NULL;
    }

    json_object_set_new(obj, "sku", json_stringn(sku, sku_len));
    json_object_set_new(obj, "retail", json_integer(p->retail));

    if (p->noverrides) {
        tiers = json_object();
        for (i = 0; i < p->noverrides; i++) {
            loyalty_price_override_at(p, i, &ov);
            json_object_setn_new(tiers, ov.tier, ov.tier_len,
                                 json_integer(ov.price));
        }
        json_object_set_new(obj, "tiers", tiers);
    }

    if (p->currency[0]) {
        json_object_set_new(obj, "currency", json_stringn(p->currency, 3));
    }

    return obj;
}


/* "target", if any: a path, or a URL to one of the nhosts hosts */
static int
loyalty_code_target_from_json(json_t *obj, const char *const *hosts,
    const size_t *host_lens, size_t nhosts, loyalty_code_t *c, char *err,
    size_t errlen)
{
    size_t       len, host_len;
    json_t      *v;
    const char  *s, *host;

    v = json_object_get(obj, "target");
    if (v == NULL) {
        return 0;
    }

    s = json_string_value(v);
    len = json_string_length(v);

    switch (loyalty_target_check(s, len, &host, &host_len)) {

    case LOYALTY_TARGET_INVALID:
        snprintf(err, errlen, "\"target\" must be a path on this site "
                 "(\"/...\") or an http or https URL with a host name "
                 "and no user information, at most %d printable ASCII "
                 "characters", LOYALTY_TARGET_MAX);
        return -1;

    case LOYALTY_TARGET_URL:
        /* a share link must not become an open redirect */
        if (!loyalty_host_allowed(host, host_len, hosts, host_lens, nhosts)) {
            snprintf(err, errlen, "target host \"%.*s\" is not in "
                     "--hosts", (int) host_len, host);
            return -1;
        }
        break;

    default:
        break;
    }

    c->target = s;
    c->target_len = (uint16_t) len;

    return 0;
}


int
loyalty_code_from_json(json_t *obj, const char *const *hosts,
    const size_t *host_lens, size_t nhosts, int64_t now, char *code,
    size_t *code_len, loyalty_code_t *c, char *err, size_t errlen)
{
    long       n;
    size_t     len;
    json_t    *v;
    unsigned   flags;

    if (loyalty_json_check(obj, loyalty_code_fields, err, errlen) != 0) {
        return -1;
    }

    memset(c, 0, sizeof(loyalty_code_t));

    v = json_object_get(obj, "code");
    n = loyalty_code_normalize(json_string_value(v), json_string_length(v),
                               code);
    if (n < 0) {
        snprintf(err, errlen, "\"code\" must be %d-%d characters of "
                 "[A-Za-z0-9_-]", LOYALTY_CODE_MIN, LOYALTY_CODE_MAX);
        return -1;
    }
    *code_len = (size_t) n;

    if (loyalty_json_id(obj, "member", &c->member, &len, err, errlen) != 0) {
        return -1;
    }

    c->member_len = (uint8_t) len;

    v = json_object_get(obj, "campaign");
    if (v) {
        c->campaign = json_string_value(v);
        c->campaign_len = (uint8_t) json_string_length(v);

        if (!loyalty_valid_campaign(c->campaign, json_string_length(v))) {
            snprintf(err, errlen, "\"campaign\" must be 1-%d characters of "
                     "[A-Za-z0-9_.-]", LOYALTY_CAMPAIGN_MAX);
            return -1;
        }
    }

    if (loyalty_code_target_from_json(obj, hosts, host_lens, nhosts, c, err,
                                      errlen)
        != 0)
    {
        return -1;
    }

    flags = 0;

    /* every code has a created_at: it takes no flag */
    if (loyalty_json_time(obj, "created_at", 0, &flags, &c->created_at, err,
                          errlen)
        || loyalty_json_time(obj, "expires_at", LOYALTY_CODE_EXPIRES, &flags,
                             &c->expires_at, err, errlen))
    {
        return -1;
    }

    if (json_object_get(obj, "created_at") == NULL) {
        c->created_at = now;
    }

    if (loyalty_json_read_ints(obj, loyalty_code_fields, c, err, errlen)) {
        return -1;
    }

    if (json_object_get(obj, "max_clicks")) {
        flags |= LOYALTY_CODE_MAX_CLICKS;
    }

    if (json_is_true(json_object_get(obj, "revoked"))) {
        flags |= LOYALTY_CODE_REVOKED;
    }

    if (json_is_true(json_object_get(obj, "vanity"))) {
        flags |= LOYALTY_CODE_VANITY;
    }

    c->flags = (uint8_t) flags;

    return 0;
}


json_t *
loyalty_code_to_json(const char *code, size_t code_len,
    const loyalty_code_t *c)
{
    json_t  *obj;

    obj = json_object();
    if (obj == NULL) {
        return NULL;
    }

    json_object_set_new(obj, "code", json_stringn(code, code_len));
    json_object_set_new(obj, "member",
                        json_stringn(c->member, c->member_len));

    if (c->campaign_len) {
        json_object_set_new(obj, "campaign",
                            json_stringn(c->campaign, c->campaign_len));
    }

    if (c->target_len) {
        json_object_set_new(obj, "target",
                            json_stringn(c->target, c->target_len));
    }

    loyalty_json_set_time(obj, "created_at", c->created_at);

    if (c->flags & LOYALTY_CODE_EXPIRES) {
        loyalty_json_set_time(obj, "expires_at", c->expires_at);
    }

    if (c->flags & LOYALTY_CODE_MAX_CLICKS) {
        json_object_set_new(obj, "max_clicks", json_integer(c->max_clicks));
    }

    json_object_set_new(obj, "revoked",
                        json_boolean(c->flags & LOYALTY_CODE_REVOKED));

    if (c->flags & LOYALTY_CODE_VANITY) {
        json_object_set_new(obj, "vanity", json_true());
    }

    return obj;
}


json_t *
loyalty_clicks_to_json(const char *code, size_t code_len, int64_t day,
    const uint64_t *counts)
{
    int      i;
    char     buf[LOYALTY_RFC3339_LEN + 1];
    json_t  *obj;

    obj = json_object();
    if (obj == NULL) {
        return NULL;
    }

    loyalty_format_rfc3339(day * LOYALTY_DAY, buf);

    json_object_set_new(obj, "code", json_stringn(code, code_len));
    json_object_set_new(obj, "day", json_stringn(buf, 10));

    for (i = 0; i < LOYALTY_CLICK_COUNTERS; i++) {
        json_object_set_new(obj, loyalty_click_counter_names[i],
                            json_integer((json_int_t) counts[i]));
    }

    return obj;
}
