/*
 * nginx-loyalty: events from the shop as JSON, checked against
 * schema/event.schema.json, and their records in the events database.
 */

#include <stdio.h>
#include <string.h>

#include "loyalty_events.h"
#include "loyalty_json.h"
#include "loyalty_record.h"
#include "loyalty_rules.h"


#define LOYALTY_QTY_MAX         1000000


const char  *loyalty_event_names[LOYALTY_EVENT_COUNT] = {
    "signup", "follow", "order", "refund", "action"
};

/* the first byte of an events key: one id space per kind */
static const char  loyalty_event_kinds[LOYALTY_EVENT_COUNT] = {
    's', 'f', 'o', 'r', 'a'
};


static const loyalty_json_field_t  loyalty_signup_fields[] = {
    { "type",           JSON_STRING,  1 },
    { "member",         JSON_STRING,  1 },
    { "at",             JSON_STRING,  0 },
    { "ref_code",       JSON_STRING,  0 },
    { "referrer",       JSON_STRING,  0 },
    { "ref_at",         JSON_STRING,  0 },
    { NULL, 0, 0 }
};

static const loyalty_json_field_t  loyalty_follow_fields[] = {
    { "type",           JSON_STRING,  1 },
    { "member",         JSON_STRING,  1 },
    { "at",             JSON_STRING,  0 },
    { "ref_code",       JSON_STRING,  0 },
    { "ref_at",         JSON_STRING,  0 },
    { NULL, 0, 0 }
};

static const loyalty_json_field_t  loyalty_order_fields[] = {
    { "type",           JSON_STRING,  1 },
    { "member",         JSON_STRING,  1 },
    { "order_id",       JSON_STRING,  1 },
    { "amount",         JSON_INTEGER, 1 },
    { "at",             JSON_STRING,  1 },
    { "items",          JSON_ARRAY,   0 },
    { "ref_code",       JSON_STRING,  0 },
    { "ref_at",         JSON_STRING,  0 },
    { NULL, 0, 0 }
};

static const loyalty_json_field_t  loyalty_refund_fields[] = {
    { "type",           JSON_STRING,  1 },
    { "refund_id",      JSON_STRING,  1 },
    { "order_id",       JSON_STRING,  1 },
    { "amount",         JSON_INTEGER, 1 },
    { "at",             JSON_STRING,  0 },
    { NULL, 0, 0 }
};

static const loyalty_json_field_t  loyalty_action_fields[] = {
    { "type",           JSON_STRING,  1 },
    { "member",         JSON_STRING,  1 },
    { "kind",           JSON_STRING,  1 },
    { "id",             JSON_STRING,  1 },
    { "at",             JSON_STRING,  1 },
    { NULL, 0, 0 }
};

static const loyalty_json_field_t  loyalty_item_fields[] = {
    { "sku",            JSON_STRING,  1 },
    { "qty",            JSON_INTEGER, 0 },
    { NULL, 0, 0 }
};

static const loyalty_json_field_t  *loyalty_event_fields[LOYALTY_EVENT_COUNT]
    = {
    loyalty_signup_fields, loyalty_follow_fields, loyalty_order_fields,
    loyalty_refund_fields, loyalty_action_fields
};



/* an id of the given kind, for the error messages */
static int
loyalty_event_id(json_t *obj, const char *name, const char **s, size_t *len,
    char *err, size_t errlen)
{
    json_t  *v;

    v = json_object_get(obj, name);
    *s = json_string_value(v);
    *len = json_string_length(v);

    if (!loyalty_valid_id(*s, *len)) {
        snprintf(err, errlen, "\"%s\" must be 1-%d characters of "
                 "[A-Za-z0-9_.-]", name, LOYALTY_ID_MAX);
        return -1;
    }

    return 0;
}


static int
loyalty_event_items(json_t *items, char *err, size_t errlen)
{
    char         why[LOYALTY_ERRLEN];
    size_t       i;
    json_t      *v, *sku;
    json_int_t   qty;

    if (json_array_size(items) > LOYALTY_EVENT_ITEMS_MAX) {
        snprintf(err, errlen, "\"items\" has more than %d entries",
                 LOYALTY_EVENT_ITEMS_MAX);
        return -1;
    }

    json_array_foreach(items, i, v) {
        if (loyalty_json_check(v, loyalty_item_fields, why, sizeof(why))
            || loyalty_json_int(v, "qty", 1, LOYALTY_QTY_MAX, &qty, why,
                                sizeof(why)))
        {
            snprintf(err, errlen, "items[%zu]: %s", i, why);
            return -1;
        }

        sku = json_object_get(v, "sku");

        if (!loyalty_valid_id(json_string_value(sku), json_string_length(sku)))
        {
            snprintf(err, errlen, "items[%zu]: \"sku\" must be 1-%d "
                     "characters of [A-Za-z0-9_.-]", i, LOYALTY_ID_MAX);
            return -1;
        }
    }

    return 0;
}


/* "type": one of loyalty_event_names */
static int
loyalty_event_type(json_t *obj, loyalty_event_t *ev, char *err,
    size_t errlen)
{
    int      i;
    json_t  *v;

    v = json_object_get(obj, "type");

    for (i = 0; json_is_string(v) && i < LOYALTY_EVENT_COUNT; i++) {
        if (strcmp(json_string_value(v), loyalty_event_names[i]) == 0
            && strlen(loyalty_event_names[i]) == json_string_length(v))
        {
            ev->type = (loyalty_event_e) i;
            return 0;
        }
    }

    snprintf(err, errlen, "\"type\" must be one of signup, follow, "
             "order, refund, action");

    return -1;
}


static int
loyalty_event_order(json_t *obj, loyalty_event_t *ev, char *err,
    size_t errlen)
{
    json_int_t  amount;

    if (loyalty_event_id(obj, "order_id", &ev->id, &ev->id_len, err, errlen)
        || loyalty_json_int(obj, "amount", 0, LOYALTY_AMOUNT_MAX, &amount,
                            err, errlen)
        || loyalty_event_items(json_object_get(obj, "items"), err, errlen))
    {
        return -1;
    }

    ev->amount = amount;
    ev->items = json_object_get(obj, "items");

    return 0;
}


static int
loyalty_event_refund(json_t *obj, loyalty_event_t *ev, char *err,
    size_t errlen)
{
    json_int_t  amount;

    if (loyalty_event_id(obj, "refund_id", &ev->id, &ev->id_len, err,
                         errlen)
        || loyalty_event_id(obj, "order_id", &ev->order, &ev->order_len,
                            err, errlen)
        || loyalty_json_int(obj, "amount", 1, LOYALTY_AMOUNT_MAX, &amount,
                            err, errlen))
    {
        return -1;
    }

    ev->amount = amount;

    return 0;
}


static int
loyalty_event_action(json_t *obj, loyalty_event_t *ev, char *err,
    size_t errlen)
{
    json_t  *v;

    if (loyalty_event_id(obj, "id", &ev->id, &ev->id_len, err, errlen)) {
        return -1;
    }

    v = json_object_get(obj, "kind");
    ev->action = loyalty_action_parse(json_string_value(v),
                                      json_string_length(v));
    if (ev->action < 0) {
        snprintf(err, errlen, "\"kind\" must be one of share, invite, "
                 "group_buy, assist, review");
        return -1;
    }

    return 0;
}


/* a signup or a follow: a person signs up, or follows, once */
static int
loyalty_event_join(json_t *obj, loyalty_event_t *ev, char *err,
    size_t errlen)
{
    ev->id = ev->member;
    ev->id_len = ev->member_len;

    if (json_object_get(obj, "referrer") == NULL) {
        return 0;
    }

    if (loyalty_event_id(obj, "referrer", &ev->referrer, &ev->referrer_len,
                         err, errlen))
    {
        return -1;
    }

    if (ev->referrer_len == ev->member_len
        && memcmp(ev->referrer, ev->member, ev->member_len) == 0)
    {
        snprintf(err, errlen, "a member cannot be their own referrer");
        return -1;
    }

    return 0;
}


/* "ref_code", normalized; it excludes "referrer" */
static int
loyalty_event_ref_code(json_t *obj, loyalty_event_t *ev, char *err,
    size_t errlen)
{
    long     n;
    json_t  *v;

    v = json_object_get(obj, "ref_code");
    if (v == NULL) {
        return 0;
    }

    if (json_object_get(obj, "referrer")) {
        snprintf(err, errlen, "\"ref_code\" and \"referrer\" exclude "
                 "each other");
        return -1;
    }

    n = loyalty_code_normalize(json_string_value(v), json_string_length(v),
                               ev->code);
    if (n < 0) {
        snprintf(err, errlen, "\"ref_code\" must be %d-%d characters of "
                 "[A-Za-z0-9_-]", LOYALTY_CODE_MIN, LOYALTY_CODE_MAX);
        return -1;
    }

    ev->code_len = (size_t) n;

    return 0;
}


/* "ref_at": when the person clicked the share link, for the stats */
static int
loyalty_event_ref_at(json_t *obj, loyalty_event_t *ev, char *err,
    size_t errlen)
{
    unsigned  flags;

    flags = 0;

    if (loyalty_json_time(obj, "ref_at", 1, &flags, &ev->ref_at, err, errlen)
        != 0)
    {
        return -1;
    }

    if (flags && ev->code_len == 0 && ev->referrer == NULL) {
        snprintf(err, errlen, "\"ref_at\" needs \"ref_code\" or "
                 "\"referrer\"");
        return -1;
    }

    return 0;
}


int
loyalty_event_from_json(json_t *obj, int64_t now, loyalty_event_t *ev,
    char *err, size_t errlen)
{
    int       rc;
    unsigned  flags;

    memset(ev, 0, sizeof(loyalty_event_t));

    if (!json_is_object(obj)) {
        snprintf(err, errlen, "expected a JSON object");
        return -1;
    }

    if (loyalty_event_type(obj, ev, err, errlen) != 0
        || loyalty_json_check(obj, loyalty_event_fields[ev->type], err,
                              errlen)
           != 0)
    {
        return -1;
    }

    if (ev->type != LOYALTY_EVENT_REFUND
        && loyalty_event_id(obj, "member", &ev->member, &ev->member_len, err,
                            errlen))
    {
        return -1;
    }

    switch (ev->type) {

    case LOYALTY_EVENT_ORDER:
        rc = loyalty_event_order(obj, ev, err, errlen);
        break;

    case LOYALTY_EVENT_REFUND:
        rc = loyalty_event_refund(obj, ev, err, errlen);
        break;

    case LOYALTY_EVENT_ACTION:
        rc = loyalty_event_action(obj, ev, err, errlen);
        break;

    default:
        rc = loyalty_event_join(obj, ev, err, errlen);
        break;
    }

    if (rc != 0 || loyalty_event_ref_code(obj, ev, err, errlen) != 0
        || loyalty_event_ref_at(obj, ev, err, errlen) != 0)
    {
        return -1;
    }

    flags = 0;

    if (loyalty_json_time(obj, "at", 1, &flags, &ev->at, err, errlen) != 0) {
        return -1;
    }

    if (flags == 0) {
        ev->at = now;
    }

    return 0;
}


/* the events database */

size_t
loyalty_event_key(loyalty_event_e type, const char *id, size_t len,
    uint8_t *key)
{
    key[0] = (uint8_t) loyalty_event_kinds[type];
    memcpy(key + 1, id, len);

    return len + 1;
}


size_t
loyalty_event_rec_encode(const loyalty_event_rec_t *e, uint8_t *buf)
{
    uint8_t  *p;

    memset(buf, 0, LOYALTY_EVENT_FIXED);

    buf[0] = LOYALTY_EVENT_VERSION;
    buf[1] = e->type;
    buf[2] = e->member_len;
    buf[3] = e->order_len;
    buf[4] = e->r1_len;
    buf[5] = e->r2_len;
    buf[6] = e->action;
    loyalty_le_put(buf + 8, (uint64_t) e->at, 8);
    loyalty_le_put(buf + 16, (uint64_t) e->amount, 8);
    loyalty_le_put(buf + 24, (uint64_t) e->points, 8);
    loyalty_le_put(buf + 32, (uint64_t) e->refunded, 8);
    loyalty_le_put(buf + 40, (uint64_t) e->l1_points, 8);
    loyalty_le_put(buf + 48, (uint64_t) e->l2_points, 8);

    p = buf + LOYALTY_EVENT_FIXED;
    loyalty_cpymem(p, e->member, e->member_len);
    p += e->member_len;
    loyalty_cpymem(p, e->order, e->order_len);
    p += e->order_len;
    loyalty_cpymem(p, e->r1, e->r1_len);
    p += e->r1_len;
    loyalty_cpymem(p, e->r2, e->r2_len);
    p += e->r2_len;

    return (size_t) (p - buf);
}


int
loyalty_event_rec_decode(const uint8_t *buf, size_t len,
    loyalty_event_rec_t *e)
{
    const char  *p;

    if (len < LOYALTY_EVENT_FIXED
        || buf[0] != LOYALTY_EVENT_VERSION
        || buf[1] >= LOYALTY_EVENT_COUNT
        || buf[2] == 0 || buf[2] > LOYALTY_ID_MAX
        || buf[3] > LOYALTY_ID_MAX || buf[4] > LOYALTY_ID_MAX
        || buf[5] > LOYALTY_ID_MAX || buf[7] != 0
        || len != (size_t) LOYALTY_EVENT_FIXED + buf[2] + buf[3] + buf[4]
                  + buf[5])
    {
        return -1;
    }

    e->type = buf[1];
    e->member_len = buf[2];
    e->order_len = buf[3];
    e->r1_len = buf[4];
    e->r2_len = buf[5];
    e->action = buf[6];
    e->at = (int64_t) loyalty_le_get(buf + 8, 8);
    e->amount = (int64_t) loyalty_le_get(buf + 16, 8);
    e->points = (int64_t) loyalty_le_get(buf + 24, 8);
    e->refunded = (int64_t) loyalty_le_get(buf + 32, 8);
    e->l1_points = (int64_t) loyalty_le_get(buf + 40, 8);
    e->l2_points = (int64_t) loyalty_le_get(buf + 48, 8);

    p = (const char *) buf + LOYALTY_EVENT_FIXED;
    e->member = p;
    p += e->member_len;
    e->order = p;
    p += e->order_len;
    e->r1 = p;
    p += e->r1_len;
    e->r2 = p;

    return 0;
}
