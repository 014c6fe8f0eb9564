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


const char  *loyalty_event_names[LOYALTY_EVENT_COUNT] = {
    "signup", "follow", "order", "refund", "action"
};

/*
 * What an event of each kind names, in the order it is checked: the
 * first byte of its events key (one id space per kind), the field of its
 * id (NULL: the member's), of the order it refers to, and the least
 * "amount" (-1: none).
 */
typedef struct {
    char          key;
    const char   *id;
    const char   *order;
    json_int_t    amount;
} loyalty_event_kind_t;

static const loyalty_event_kind_t  loyalty_event_kinds[] = {
    [LOYALTY_EVENT_SIGNUP] = { 's', NULL,        NULL,       -1 },
    [LOYALTY_EVENT_FOLLOW] = { 'f', NULL,        NULL,       -1 },
    [LOYALTY_EVENT_ORDER]  = { 'o', "order_id",  NULL,        0 },
    [LOYALTY_EVENT_REFUND] = { 'r', "refund_id", "order_id",  1 },
    [LOYALTY_EVENT_ACTION] = { 'a', "id",        NULL,       -1 }
};


/*
 * The fields of the events (schema/event.schema.json): the kinds that
 * may have each, and those that must; in the order the required ones are
 * checked.
 */
typedef struct {
    const char  *name;
    int          type;
    unsigned     in;
    unsigned     required;
} loyalty_event_field_t;

#define LOYALTY_EV(type)        (1u << LOYALTY_EVENT_##type)
#define LOYALTY_EV_ALL          ((1u << LOYALTY_EVENT_COUNT) - 1)
#define LOYALTY_EV_JOIN         (LOYALTY_EV(SIGNUP) | LOYALTY_EV(FOLLOW))
#define LOYALTY_EV_MEMBER       (LOYALTY_EV_ALL & ~LOYALTY_EV(REFUND))
#define LOYALTY_EV_SALE         (LOYALTY_EV(ORDER) | LOYALTY_EV(REFUND))
#define LOYALTY_EV_REF          (LOYALTY_EV_JOIN | LOYALTY_EV(ORDER))
#define LOYALTY_EV_DATED        (LOYALTY_EV(ORDER) | LOYALTY_EV(ACTION))

static const loyalty_event_field_t  loyalty_event_fields[] = {
    { "type",      JSON_STRING,  LOYALTY_EV_ALL,     LOYALTY_EV_ALL },
    { "member",    JSON_STRING,  LOYALTY_EV_MEMBER,  LOYALTY_EV_MEMBER },
    { "refund_id", JSON_STRING,  LOYALTY_EV(REFUND), LOYALTY_EV(REFUND) },
    { "order_id",  JSON_STRING,  LOYALTY_EV_SALE,    LOYALTY_EV_SALE },
    { "amount",    JSON_INTEGER, LOYALTY_EV_SALE,    LOYALTY_EV_SALE },
    { "kind",      JSON_STRING,  LOYALTY_EV(ACTION), LOYALTY_EV(ACTION) },
    { "id",        JSON_STRING,  LOYALTY_EV(ACTION), LOYALTY_EV(ACTION) },
    { "at",        JSON_STRING,  LOYALTY_EV_ALL,     LOYALTY_EV_DATED },
    { "items",     JSON_ARRAY,   LOYALTY_EV(ORDER),  0 },
    { "ref_code",  JSON_STRING,  LOYALTY_EV_REF,     0 },
    { "referrer",  JSON_STRING,  LOYALTY_EV(SIGNUP), 0 },
    { "ref_at",    JSON_STRING,  LOYALTY_EV_REF,     0 },
    { NULL, 0, 0, 0 }
};

#define LOYALTY_EVENT_FIELDS                                                 \
    (sizeof(loyalty_event_fields) / sizeof(loyalty_event_fields[0]))


/* the fields of one kind of event, for loyalty_json_check() */
static void
loyalty_event_kind_fields(loyalty_event_e type, loyalty_json_field_t *out)
{
    unsigned                      bit;
    const loyalty_event_field_t  *f;

    bit = 1u << type;

    for (f = loyalty_event_fields; f->name; f++) {
        if (f->in & bit) {
            *out++ = (loyalty_json_field_t)
                         loyalty_json_field(f->name, f->type,
                                            (f->required & bit) != 0);
        }
    }

    *out = (loyalty_json_field_t) LOYALTY_JSON_END;
}


/* the i-th of an order's items (loyalty_json_each): checked only */
static int
loyalty_event_item(json_t *v, size_t i, void *data, char *err,
    size_t errlen)
{
    loyalty_rules_sku_t  item;

    (void) i;
    (void) data;

    return loyalty_sku_from_json(v, &item, err, errlen);
}


static int
loyalty_event_items(json_t *items, char *err, size_t errlen)
{
    if (json_array_size(items) > LOYALTY_EVENT_ITEMS_MAX) {
        snprintf(err, errlen, "\"items\" has more than %d entries",
                 LOYALTY_EVENT_ITEMS_MAX);
        return -1;
    }

    return loyalty_json_each(items, "items", loyalty_event_item, NULL, err,
                             errlen);
}


/* the ids and the amount the event's kind names (loyalty_event_kinds) */
static int
loyalty_event_ids(json_t *obj, loyalty_event_t *ev, char *err,
    size_t errlen)
{
    json_int_t                   amount;
    const loyalty_event_kind_t  *k;

    k = &loyalty_event_kinds[ev->type];

    if (k->id == NULL) {
        ev->id = ev->member;
        ev->id_len = ev->member_len;

    } else if (loyalty_json_id(obj, k->id, &ev->id, &ev->id_len, err,
                                errlen))
    {
        return -1;
    }

    if (k->order
        && loyalty_json_id(obj, k->order, &ev->order, &ev->order_len, err,
                            errlen))
    {
        return -1;
    }

    if (k->amount >= 0) {
        if (loyalty_json_int(obj, "amount", k->amount, LOYALTY_AMOUNT_MAX,
                             &amount, err, errlen))
        {
            return -1;
        }

        ev->amount = amount;
    }

    return 0;
}


/*
 * Who referred the person: "referrer" (a signup's: a member id, not the
 * member's own) or "ref_code", normalized, which excludes it; and
 * "ref_at", when the person clicked the share link (for the stats), which
 * needs one of them.
 */
static int
loyalty_event_referral(json_t *obj, loyalty_event_t *ev, char *err,
    size_t errlen)
{
    long      n;
    json_t   *v;
    unsigned  flags;

    if (json_object_get(obj, "referrer")) {
        if (loyalty_json_id(obj, "referrer", &ev->referrer,
                             &ev->referrer_len, err, errlen))
        {
            return -1;
        }

        if (ev->referrer_len == ev->member_len
            && memcmp(ev->referrer, ev->member, ev->member_len) == 0)
        {
            snprintf(err, errlen, "a member cannot be their own referrer");
            return -1;
        }
    }

    v = json_object_get(obj, "ref_code");

    if (v) {
        if (ev->referrer) {
            snprintf(err, errlen, "\"ref_code\" and \"referrer\" exclude "
                     "each other");
            return -1;
        }

        n = loyalty_code_normalize(json_string_value(v),
                                   json_string_length(v), ev->code);
        if (n < 0) {
            snprintf(err, errlen, "\"ref_code\" must be %d-%d characters "
                     "of [A-Za-z0-9_-]", LOYALTY_CODE_MIN, LOYALTY_CODE_MAX);
            return -1;
        }

        ev->code_len = (size_t) n;
    }

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
    int                   rc;
    unsigned              flags;
    loyalty_json_field_t  fields[LOYALTY_EVENT_FIELDS];

    memset(ev, 0, sizeof(loyalty_event_t));

    if (!json_is_object(obj)) {
        snprintf(err, errlen, "expected a JSON object");
        return -1;
    }

    /* "type" first: it says which fields the event may have */
    if (loyalty_json_name(obj, "type", loyalty_event_names,
                          LOYALTY_EVENT_COUNT, &rc, err, errlen)
        != 0)
    {
        return -1;
    }

    ev->type = (loyalty_event_e) rc;

    loyalty_event_kind_fields(ev->type, fields);

    if (loyalty_json_check(obj, fields, err, errlen) != 0) {
        return -1;
    }

    if (ev->type != LOYALTY_EVENT_REFUND
        && loyalty_json_id(obj, "member", &ev->member, &ev->member_len, err,
                            errlen))
    {
        return -1;
    }

    if (loyalty_event_ids(obj, ev, err, errlen) != 0) {
        return -1;
    }

    switch (ev->type) {

    case LOYALTY_EVENT_ORDER:
        ev->items = json_object_get(obj, "items");
        rc = loyalty_event_items(ev->items, err, errlen);
        break;

    case LOYALTY_EVENT_ACTION:
        rc = loyalty_json_name(obj, "kind", loyalty_action_names,
                               LOYALTY_ACTION_COUNT, &ev->action, err,
                               errlen);
        break;

    default:
        rc = 0;
        break;
    }

    if (rc != 0 || loyalty_event_referral(obj, ev, err, errlen) != 0) {
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
    key[0] = (uint8_t) loyalty_event_kinds[type].key;
    memcpy(key + 1, id, len);

    return len + 1;
}


/* the record's fixed part after its version (schema/lmdb-layout.md) */
static const loyalty_le_field_t  loyalty_event_rec_fields[] = {
    loyalty_le_field(1, 1, loyalty_event_rec_t, type),
    loyalty_le_field(2, 1, loyalty_event_rec_t, member_len),
    loyalty_le_field(3, 1, loyalty_event_rec_t, order_len),
    loyalty_le_field(4, 1, loyalty_event_rec_t, r1_len),
    loyalty_le_field(5, 1, loyalty_event_rec_t, r2_len),
    loyalty_le_field(6, 1, loyalty_event_rec_t, action),
    loyalty_le_field(8, 8, loyalty_event_rec_t, at),
    loyalty_le_field(16, 8, loyalty_event_rec_t, amount),
    loyalty_le_field(24, 8, loyalty_event_rec_t, points),
    loyalty_le_field(32, 8, loyalty_event_rec_t, refunded),
    loyalty_le_field(40, 8, loyalty_event_rec_t, l1_points),
    loyalty_le_field(48, 8, loyalty_event_rec_t, l2_points),
    { 0, 0, 0, 0 }
};


size_t
loyalty_event_rec_encode(const loyalty_event_rec_t *e, uint8_t *buf)
{
    uint8_t  *p;

    memset(buf, 0, LOYALTY_EVENT_FIXED);

    buf[0] = LOYALTY_EVENT_VERSION;
    loyalty_le_fields_put(buf, loyalty_event_rec_fields, e);

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

    loyalty_le_fields_get(buf, loyalty_event_rec_fields, e);

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


/* bit i set: the i-th name of the event (member, r1, r2) is id */
static unsigned
loyalty_event_rec_naming(const loyalty_event_rec_t *e, const char *id,
    size_t len)
{
    unsigned     i, bits;
    const char  *name[3];
    size_t       n[3];

    name[0] = e->member;
    n[0] = e->member_len;
    name[1] = e->r1;
    n[1] = e->r1_len;
    name[2] = e->r2;
    n[2] = e->r2_len;

    bits = 0;

    for (i = 0; i < 3; i++) {
        if (n[i] == len && memcmp(name[i], id, len) == 0) {
            bits |= 1u << i;
        }
    }

    return bits;
}


int
loyalty_event_rec_names(const loyalty_event_rec_t *e, const char *id,
    size_t len)
{
    return loyalty_event_rec_naming(e, id, len) != 0;
}


int
loyalty_event_rec_rename(loyalty_event_rec_t *e, const char *id,
    size_t len, const char *to, uint8_t to_len)
{
    unsigned  bits;

    bits = loyalty_event_rec_naming(e, id, len);

    if (bits & 1) {
        e->member = to;
        e->member_len = to_len;
    }

    if (bits & 2) {
        e->r1 = to;
        e->r1_len = to_len;
    }

    if (bits & 4) {
        e->r2 = to;
        e->r2_len = to_len;
    }

    return bits != 0;
}
