/*
 * nginx-loyalty: events, their effects, the ledger and the referrals
 * index.
 */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loyalty_cadence.h"
#include "loyalty_events.h"
#include "loyalty_json.h"
#include "loyalty_price.h"
#include "loyalty_rules.h"


#define LOYALTY_QTY_MAX         1000000


const char  *loyalty_event_names[LOYALTY_EVENT_COUNT] = {
    "signup", "follow", "order", "refund", "action"
};

const char  *loyalty_ledger_reasons[LOYALTY_LEDGER_REASONS] = {
    NULL, "order", "refund", "action", "referral_l1", "referral_l2", "adjust",
    "cadence"
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
    { NULL, 0, 0 }
};

static const loyalty_json_field_t  loyalty_follow_fields[] = {
    { "type",           JSON_STRING,  1 },
    { "member",         JSON_STRING,  1 },
    { "at",             JSON_STRING,  0 },
    { "ref_code",       JSON_STRING,  0 },
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


/* a member record copied out of the map, so that writes cannot move it */
typedef struct {
    loyalty_member_t    m;
    char                id[LOYALTY_ID_MAX];
    size_t              id_len;
    char                tier[LOYALTY_TIER_MAX];
    char                referrer[LOYALTY_ID_MAX];
} loyalty_mcopy_t;


typedef struct {
    char                name[LOYALTY_TIER_MAX];
    size_t              len;
    int32_t             rank;
} loyalty_tier_rank_t;


typedef struct {
    loyalty_store_t    *st;
    MDB_txn            *txn;
    int                 has_rules;
    loyalty_rules_t     rules;
    loyalty_tier_rank_t tiers[LOYALTY_TIERS_MAX];
    size_t              ntiers;
    const loyalty_event_hook_t  *hook;
    loyalty_cadences_t *cadences;
    int64_t             now;
    char               *err;
    size_t              errlen;
    json_t             *conflict;       /* {"field","stored","given"} */
} loyalty_apply_t;


/* loyalty_apply(): an id applied before with other data */
#define LOYALTY_APPLY_CONFLICT  (-2)


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


int
loyalty_event_from_json(json_t *obj, int64_t now, loyalty_event_t *ev,
    char *err, size_t errlen)
{
    int          i;
    long         n;
    json_t      *v;
    unsigned     flags;
    json_int_t   amount;

    memset(ev, 0, sizeof(loyalty_event_t));

    if (!json_is_object(obj)) {
        snprintf(err, errlen, "expected a JSON object");
        return -1;
    }

    v = json_object_get(obj, "type");
    if (!json_is_string(v)) {
        snprintf(err, errlen, "\"type\" must be one of signup, follow, "
                 "order, refund, action");
        return -1;
    }

    for (i = 0; i < LOYALTY_EVENT_COUNT; i++) {
        if (strcmp(json_string_value(v), loyalty_event_names[i]) == 0
            && strlen(loyalty_event_names[i]) == json_string_length(v))
        {
            break;
        }
    }

    if (i == LOYALTY_EVENT_COUNT) {
        snprintf(err, errlen, "\"type\" must be one of signup, follow, "
                 "order, refund, action");
        return -1;
    }

    ev->type = (loyalty_event_e) i;

    if (loyalty_json_check(obj, loyalty_event_fields[i], err, errlen) != 0) {
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
        if (loyalty_event_id(obj, "order_id", &ev->id, &ev->id_len, err,
                             errlen)
            || loyalty_json_int(obj, "amount", 0, LOYALTY_AMOUNT_MAX, &amount,
                                err, errlen)
            || loyalty_event_items(json_object_get(obj, "items"), err,
                                   errlen))
        {
            return -1;
        }

        ev->amount = amount;
        ev->items = json_object_get(obj, "items");
        break;

    case LOYALTY_EVENT_REFUND:
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
        break;

    case LOYALTY_EVENT_ACTION:
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
        break;

    default:
        /* a person signs up, or follows, once */
        ev->id = ev->member;
        ev->id_len = ev->member_len;

        v = json_object_get(obj, "referrer");
        if (v) {
            if (loyalty_event_id(obj, "referrer", &ev->referrer,
                                 &ev->referrer_len, err, errlen))
            {
                return -1;
            }

            if (ev->referrer_len == ev->member_len
                && memcmp(ev->referrer, ev->member, ev->member_len) == 0)
            {
                snprintf(err, errlen, "a member cannot be their own "
                         "referrer");
                return -1;
            }
        }
        break;
    }

    v = json_object_get(obj, "ref_code");
    if (v) {
        if (json_object_get(obj, "referrer")) {
            snprintf(err, errlen, "\"ref_code\" and \"referrer\" exclude "
                     "each other");
            return -1;
        }

        n = loyalty_code_normalize(json_string_value(v),
                                   json_string_length(v), ev->code);
        if (n < 0) {
            snprintf(err, errlen, "\"ref_code\" must be %d-%d characters of "
                     "[A-Za-z0-9_-]", LOYALTY_CODE_MIN, LOYALTY_CODE_MAX);
            return -1;
        }

        ev->code_len = (size_t) n;
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


/* records */

size_t
loyalty_ledger_key(const char *id, size_t len, uint64_t seq, uint8_t *key)
{
    memcpy(key, id, len);
    key[len] = '\0';
    loyalty_be_put(key + len + 1, seq);

    return len + 9;
}


size_t
loyalty_ledger_encode(const loyalty_ledger_entry_t *e, uint8_t *buf)
{
    memset(buf, 0, LOYALTY_LEDGER_FIXED);

    buf[0] = LOYALTY_LEDGER_VERSION;
    buf[1] = e->reason;
    buf[2] = e->event_len;
    loyalty_le_put(buf + 8, (uint64_t) e->delta, 8);
    loyalty_le_put(buf + 16, (uint64_t) e->at, 8);
    loyalty_cpymem(buf + LOYALTY_LEDGER_FIXED, e->event, e->event_len);

    return LOYALTY_LEDGER_FIXED + e->event_len;
}


int
loyalty_ledger_decode(const uint8_t *buf, size_t len,
    loyalty_ledger_entry_t *e)
{
    if (len < LOYALTY_LEDGER_FIXED
        || buf[0] != LOYALTY_LEDGER_VERSION
        || buf[1] == 0 || buf[1] >= LOYALTY_LEDGER_REASONS
        || buf[2] > LOYALTY_ID_MAX
        || len != (size_t) LOYALTY_LEDGER_FIXED + buf[2]
        || loyalty_le_get(buf + 3, 5) != 0)
    {
        return -1;
    }

    e->reason = buf[1];
    e->event_len = buf[2];
    e->delta = (int64_t) loyalty_le_get(buf + 8, 8);
    e->at = (int64_t) loyalty_le_get(buf + 16, 8);
    e->event = (const char *) buf + LOYALTY_LEDGER_FIXED;

    if (e->event_len && !loyalty_valid_id(e->event, e->event_len)) {
        return -1;
    }

    return 0;
}


/* the sequence after the member's last entry */
static int
loyalty_ledger_next(loyalty_store_t *st, MDB_txn *txn, const char *id,
    size_t len, uint64_t *seq)
{
    int          rc;
    uint8_t      buf[LOYALTY_LEDGER_KEY_MAX];
    MDB_val      key, val;
    MDB_cursor  *cur;

    rc = mdb_cursor_open(txn, st->dbi[LOYALTY_DB_LEDGER], &cur);
    if (rc != 0) {
        return rc;
    }

    key.mv_data = buf;
    key.mv_size = loyalty_ledger_key(id, len, UINT64_MAX, buf);

    /* the entry before the member's largest possible key */
    rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
    if (rc == 0) {
        rc = mdb_cursor_get(cur, &key, &val, MDB_PREV);

    } else if (rc == MDB_NOTFOUND) {
        rc = mdb_cursor_get(cur, &key, &val, MDB_LAST);
    }

    *seq = 0;

    if (rc == 0 && key.mv_size == len + 9
        && memcmp(key.mv_data, id, len) == 0
        && ((uint8_t *) key.mv_data)[len] == '\0')
    {
        *seq = loyalty_be_get((uint8_t *) key.mv_data + len + 1) + 1;
    }

    mdb_cursor_close(cur);

    return rc == MDB_NOTFOUND ? 0 : rc;
}


int
loyalty_ledger_append(loyalty_store_t *st, MDB_txn *txn, const char *id,
    size_t len, const loyalty_ledger_entry_t *e)
{
    int       rc;
    uint8_t   kbuf[LOYALTY_LEDGER_KEY_MAX], vbuf[LOYALTY_LEDGER_REC_MAX];
    MDB_val   key, val;
    uint64_t  seq;

    rc = loyalty_ledger_next(st, txn, id, len, &seq);
    if (rc != 0) {
        return rc;
    }

    key.mv_data = kbuf;
    key.mv_size = loyalty_ledger_key(id, len, seq, kbuf);
    val.mv_data = vbuf;
    val.mv_size = loyalty_ledger_encode(e, vbuf);

    return mdb_put(txn, st->dbi[LOYALTY_DB_LEDGER], &key, &val,
                   MDB_NOOVERWRITE);
}


int
loyalty_ledger_sum(loyalty_store_t *st, MDB_txn *txn, const char *id,
    size_t len, int64_t *sum, size_t *n)
{
    int                     rc;
    uint8_t                 buf[LOYALTY_LEDGER_KEY_MAX];
    MDB_val                 key, val;
    MDB_cursor             *cur;
    loyalty_ledger_entry_t  e;

    *sum = 0;
    *n = 0;

    rc = mdb_cursor_open(txn, st->dbi[LOYALTY_DB_LEDGER], &cur);
    if (rc != 0) {
        return rc;
    }

    key.mv_data = buf;
    key.mv_size = loyalty_ledger_key(id, len, 0, buf);

    for (rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
         rc == 0;
         rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT))
    {
        if (key.mv_size != len + 9 || memcmp(key.mv_data, id, len) != 0
            || ((uint8_t *) key.mv_data)[len] != '\0')
        {
            break;
        }

        if (loyalty_ledger_decode(val.mv_data, val.mv_size, &e) != 0) {
            rc = MDB_CORRUPTED;
            break;
        }

        if (__builtin_add_overflow(*sum, e.delta, sum)) {
            rc = MDB_CORRUPTED;
            break;
        }

        (*n)++;
    }

    mdb_cursor_close(cur);

    return rc == MDB_NOTFOUND ? 0 : rc;
}


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


size_t
loyalty_referral_key(const char *referrer, size_t rlen, const char *member,
    size_t mlen, uint8_t *key)
{
    memcpy(key, referrer, rlen);
    key[rlen] = '\0';
    memcpy(key + rlen + 1, member, mlen);

    return rlen + 1 + mlen;
}


int
loyalty_referral_put(loyalty_store_t *st, MDB_txn *txn, const char *referrer,
    size_t rlen, const char *member, size_t mlen, int64_t at)
{
    uint8_t  kbuf[LOYALTY_REFERRAL_KEY_MAX], vbuf[LOYALTY_REFERRAL_REC_LEN];
    MDB_val  key, val;

    memset(vbuf, 0, sizeof(vbuf));
    vbuf[0] = LOYALTY_REFERRAL_VERSION;
    loyalty_le_put(vbuf + 8, (uint64_t) at, 8);

    key.mv_data = kbuf;
    key.mv_size = loyalty_referral_key(referrer, rlen, member, mlen, kbuf);
    val.mv_data = vbuf;
    val.mv_size = sizeof(vbuf);

    return mdb_put(txn, st->dbi[LOYALTY_DB_REFERRALS], &key, &val, 0);
}


int
loyalty_referral_delete(loyalty_store_t *st, MDB_txn *txn,
    const char *referrer, size_t rlen, const char *member, size_t mlen)
{
    int      rc;
    uint8_t  kbuf[LOYALTY_REFERRAL_KEY_MAX];
    MDB_val  key;

    key.mv_data = kbuf;
    key.mv_size = loyalty_referral_key(referrer, rlen, member, mlen, kbuf);

    rc = mdb_del(txn, st->dbi[LOYALTY_DB_REFERRALS], &key, NULL);

    return rc == MDB_NOTFOUND ? 0 : rc;
}


int
loyalty_referrer_loop(loyalty_store_t *st, MDB_txn *txn, const char *member,
    size_t mlen, const char *referrer, size_t rlen, char *err,
    size_t errlen)
{
    int               rc;
    char              cur[LOYALTY_ID_MAX];
    size_t            hops, len, n;
    MDB_val           key, val;
    loyalty_member_t  m;

    n = (size_t) snprintf(err, errlen, "referrer \"%.*s\" would make a "
                          "loop: %.*s", (int) rlen, referrer, (int) mlen,
                          member);
    len = rlen;
    memcpy(cur, referrer, len);

    for (hops = 0; /* void */; hops++) {

        /* the path so far, as long as it fits */
        if (n < errlen) {
            n += (size_t) snprintf(err + n, errlen - n, " -> %.*s",
                                   (int) len, cur);
        }

        if (len == mlen && memcmp(cur, member, mlen) == 0) {
            return -1;
        }

        if (hops == LOYALTY_REFERRER_CHAIN_MAX) {
            snprintf(err, errlen, "the referrer chain from \"%.*s\" is "
                     "longer than %d members, or loops",
                     (int) rlen, referrer, LOYALTY_REFERRER_CHAIN_MAX);
            return -1;
        }

        key.mv_data = cur;
        key.mv_size = len;

        rc = mdb_get(txn, st->dbi[LOYALTY_DB_MEMBERS], &key, &val);
        if (rc == MDB_NOTFOUND) {
            break;
        }

        if (rc != 0) {
            return rc;
        }

        if (loyalty_member_decode(val.mv_data, val.mv_size, &m) != 0) {
            snprintf(err, errlen, "member \"%.*s\" does not decode",
                     (int) len, cur);
            return MDB_CORRUPTED;
        }

        if (m.referrer_len == 0) {
            break;
        }

        len = m.referrer_len;
        memcpy(cur, m.referrer, len);
    }

    err[0] = '\0';

    return 0;
}


/* applying */

static int
loyalty_apply_error(loyalty_apply_t *ap, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));


static int
loyalty_apply_error(loyalty_apply_t *ap, const char *fmt, ...)
{
    va_list  args;

    va_start(args, fmt);
    vsnprintf(ap->err, ap->errlen, fmt, args);
    va_end(args);

    return -1;
}


/* 0, MDB_NOTFOUND, MDB_CORRUPTED for a record that does not decode */
static int
loyalty_member_load(loyalty_apply_t *ap, const char *id, size_t len,
    loyalty_mcopy_t *mc)
{
    int      rc;
    MDB_val  key, val;

    key.mv_data = (void *) id;
    key.mv_size = len;

    rc = mdb_get(ap->txn, ap->st->dbi[LOYALTY_DB_MEMBERS], &key, &val);
    if (rc != 0) {
        return rc;
    }

    if (loyalty_member_decode(val.mv_data, val.mv_size, &mc->m) != 0) {
        snprintf(ap->err, ap->errlen, "member \"%.*s\" does not decode",
                 (int) len, id);
        return MDB_CORRUPTED;
    }

    memcpy(mc->id, id, len);
    mc->id_len = len;
    loyalty_cpymem(mc->tier, mc->m.tier, mc->m.tier_len);
    loyalty_cpymem(mc->referrer, mc->m.referrer, mc->m.referrer_len);
    mc->m.tier = mc->tier;
    mc->m.referrer = mc->referrer;

    return 0;
}


static int
loyalty_member_save(loyalty_apply_t *ap, loyalty_mcopy_t *mc)
{
    uint8_t  buf[LOYALTY_MEMBER_MAX];
    MDB_val  key, val;

    key.mv_data = mc->id;
    key.mv_size = mc->id_len;
    val.mv_data = buf;
    val.mv_size = loyalty_member_encode(&mc->m, buf);

    return mdb_put(ap->txn, ap->st->dbi[LOYALTY_DB_MEMBERS], &key, &val, 0);
}


static void
loyalty_mcopy_dup(loyalty_mcopy_t *dst, const loyalty_mcopy_t *src)
{
    *dst = *src;
    dst->m.tier = dst->tier;
    dst->m.referrer = dst->referrer;
}


/* the tier's rank; INT32_MIN - 1 for a tier the store lacks */
static int64_t
loyalty_tier_rank(loyalty_apply_t *ap, const char *name, size_t len)
{
    size_t  i;

    for (i = 0; i < ap->ntiers; i++) {
        if (ap->tiers[i].len == len && memcmp(ap->tiers[i].name, name, len)
                                       == 0)
        {
            return ap->tiers[i].rank;
        }
    }

    return (int64_t) INT32_MIN - 1;
}


/* adds delta to the member's points, with its ledger entry */
static int
loyalty_points(loyalty_apply_t *ap, loyalty_mcopy_t *mc, int64_t delta,
    loyalty_ledger_reason_e reason, const loyalty_event_t *ev)
{
    int64_t                 points;
    loyalty_ledger_entry_t  e;

    if (delta == 0) {
        return 0;
    }

    if (__builtin_add_overflow(mc->m.points, delta, &points)
        || points < -LOYALTY_POINTS_MAX || points > LOYALTY_POINTS_MAX)
    {
        return loyalty_apply_error(ap, "the points of \"%.*s\" would "
                                   "leave -%lld..%lld", (int) mc->id_len,
                                   mc->id, LOYALTY_POINTS_MAX,
                                   LOYALTY_POINTS_MAX);
    }

    mc->m.points = points;

    e.reason = (uint8_t) reason;
    e.delta = delta;
    e.at = ev->at;
    e.event = ev->id;
    e.event_len = (uint8_t) ev->id_len;

    return loyalty_ledger_append(ap->st, ap->txn, mc->id, mc->id_len, &e);
}


/*
 * Gives the member a referrer for life, from a share code or named: not
 * when they have one, and never themselves.  A code that is unknown,
 * revoked, expired at the event's time, or whose owner is gone, refers
 * no one; that is no error, as the shop only passes on what it was given.
 */
static int
loyalty_refer(loyalty_apply_t *ap, loyalty_mcopy_t *mc,
    const loyalty_event_t *ev)
{
    int              rc;
    char             owner[LOYALTY_ID_MAX], why[LOYALTY_ERRLEN];
    size_t           owner_len;
    MDB_val          key, val;
    loyalty_code_t   c;
    loyalty_mcopy_t  ref;

    if (mc->m.referrer_len || (ev->code_len == 0 && ev->referrer == NULL)) {
        return 0;
    }

    if (ev->referrer) {
        owner_len = ev->referrer_len;
        memcpy(owner, ev->referrer, owner_len);

    } else {
        key.mv_data = (void *) ev->code;
        key.mv_size = ev->code_len;

        rc = mdb_get(ap->txn, ap->st->dbi[LOYALTY_DB_CODES], &key, &val);
        if (rc == MDB_NOTFOUND) {
            return 0;
        }

        if (rc != 0) {
            return rc;
        }

        if (loyalty_code_decode(val.mv_data, val.mv_size, &c) != 0
            || (c.flags & LOYALTY_CODE_REVOKED)
            || ((c.flags & LOYALTY_CODE_EXPIRES) && c.expires_at < ev->at))
        {
            return 0;
        }

        owner_len = c.member_len;
        memcpy(owner, c.member, owner_len);
    }

    if (owner_len == mc->id_len && memcmp(owner, mc->id, owner_len) == 0) {
        return 0;
    }

    rc = loyalty_member_load(ap, owner, owner_len, &ref);

    if (rc == MDB_NOTFOUND && ev->referrer) {
        return loyalty_apply_error(ap, "unknown referrer \"%.*s\"",
                                   (int) owner_len, owner);
    }

    if (rc == MDB_NOTFOUND) {
        return 0;
    }

    if (rc != 0) {
        return rc;
    }

    /*
     * people referring each other, in a loop of any length, would earn
     * level 2 on themselves: such a referrer refers no one
     */
    rc = loyalty_referrer_loop(ap->st, ap->txn, mc->id, mc->id_len, owner,
                               owner_len, why, sizeof(why));
    if (rc == -1) {
        return 0;
    }

    if (rc != 0) {
        return rc;
    }

    memcpy(mc->referrer, owner, owner_len);
    mc->m.referrer = mc->referrer;
    mc->m.referrer_len = (uint8_t) owner_len;

    return loyalty_referral_put(ap->st, ap->txn, owner, owner_len, mc->id,
                                mc->id_len, ev->at);
}


/* the tier new members get: the rules', else the lowest-ranked one */
static int
loyalty_new_tier(loyalty_apply_t *ap, loyalty_mcopy_t *mc)
{
    size_t  i, best;

    if (ap->has_rules) {
        if (loyalty_tier_rank(ap, ap->rules.signup_tier,
                              ap->rules.signup_tier_len)
            < INT32_MIN)
        {
            return loyalty_apply_error(ap, "the rules' signup_tier \"%.*s\" "
                                       "is not in the store",
                                       (int) ap->rules.signup_tier_len,
                                       ap->rules.signup_tier);
        }

        memcpy(mc->tier, ap->rules.signup_tier, ap->rules.signup_tier_len);
        mc->m.tier_len = ap->rules.signup_tier_len;
        return 0;
    }

    if (ap->ntiers == 0) {
        return loyalty_apply_error(ap, "the store has no tier for new "
                                   "members");
    }

    best = 0;
    for (i = 1; i < ap->ntiers; i++) {
        if (ap->tiers[i].rank < ap->tiers[best].rank) {
            best = i;
        }
    }

    memcpy(mc->tier, ap->tiers[best].name, ap->tiers[best].len);
    mc->m.tier_len = (uint8_t) ap->tiers[best].len;

    return 0;
}


static int
loyalty_apply_join(loyalty_apply_t *ap, const loyalty_event_t *ev,
    loyalty_event_rec_t *rec)
{
    int              rc;
    loyalty_mcopy_t  mc;

    rc = loyalty_member_load(ap, ev->member, ev->member_len, &mc);

    if (rc == MDB_NOTFOUND) {
        memset(&mc, 0, sizeof(loyalty_mcopy_t));
        memcpy(mc.id, ev->member, ev->member_len);
        mc.id_len = ev->member_len;
        mc.m.tier = mc.tier;
        mc.m.referrer = mc.referrer;

        rc = loyalty_new_tier(ap, &mc);
    }

    if (rc != 0) {
        return rc;
    }

    if (mc.m.stage < LOYALTY_STAGE_FAN) {
        mc.m.stage = LOYALTY_STAGE_FAN;
    }

    if (!(mc.m.flags & LOYALTY_MEMBER_JOINED) || ev->at < mc.m.joined_at) {
        mc.m.joined_at = ev->at;
        mc.m.flags |= LOYALTY_MEMBER_JOINED;
    }

    rc = loyalty_refer(ap, &mc, ev);
    if (rc != 0) {
        return rc;
    }

    rec->member = ev->member;
    rec->member_len = (uint8_t) ev->member_len;

    return loyalty_member_save(ap, &mc);
}


/* whether the order, or the spend it brings the member to, reaches s */
static int
loyalty_stage_reached(const loyalty_rules_stage_t *s, json_t *items,
    int64_t spend)
{
    size_t   i, j;
    json_t  *v, *sku;
    int64_t  qty;

    if (s->spend && spend >= s->spend) {
        return 1;
    }

    for (i = 0; i < s->nskus; i++) {
        qty = 0;

        json_array_foreach(items, j, v) {
            sku = json_object_get(v, "sku");

            if (json_string_length(sku) == s->skus[i].len
                && memcmp(json_string_value(sku), s->skus[i].sku,
                          s->skus[i].len)
                   == 0)
            {
                /* checked: present and at least 1, or absent for 1 */
                qty += json_object_get(v, "qty")
                       ? (int64_t) json_number_value(json_object_get(v,
                                                                     "qty"))
                       : 1;
            }
        }

        if (qty >= s->skus[i].qty) {
            return 1;
        }
    }

    return 0;
}


static void
loyalty_tier_candidate(loyalty_apply_t *ap, const char *name, size_t len,
    const char **best, size_t *best_len, int64_t *rank)
{
    int64_t  r;

    r = loyalty_tier_rank(ap, name, len);

    if (r > *rank) {
        *rank = r;
        *best = name;
        *best_len = len;
    }
}


/* stages by the rules, and the best tier the member has earned */
static void
loyalty_progress(loyalty_apply_t *ap, loyalty_mcopy_t *mc, json_t *items)
{
    size_t                  i, best_len;
    int64_t                 rank;
    const char             *best;
    const loyalty_rules_t  *r;

    r = &ap->rules;

    if (mc->m.stage < LOYALTY_STAGE_PARTNER
        && loyalty_stage_reached(&r->partner, items, mc->m.spend))
    {
        mc->m.stage = LOYALTY_STAGE_PARTNER;

    } else if (mc->m.stage < LOYALTY_STAGE_MEMBER
               && loyalty_stage_reached(&r->member, items, mc->m.spend))
    {
        mc->m.stage = LOYALTY_STAGE_MEMBER;
    }

    best = NULL;
    best_len = 0;
    rank = loyalty_tier_rank(ap, mc->tier, mc->m.tier_len);

    for (i = 0; i < r->nupgrades && r->upgrades[i].spend <= mc->m.spend; i++)
    {
        loyalty_tier_candidate(ap, r->upgrades[i].tier, r->upgrades[i].len,
                               &best, &best_len, &rank);
    }

    if (mc->m.stage >= LOYALTY_STAGE_MEMBER && r->member.tier_len) {
        loyalty_tier_candidate(ap, r->member.tier, r->member.tier_len, &best,
                               &best_len, &rank);
    }

    if (mc->m.stage >= LOYALTY_STAGE_PARTNER && r->partner.tier_len) {
        loyalty_tier_candidate(ap, r->partner.tier, r->partner.tier_len,
                               &best, &best_len, &rank);
    }

    /* only ever up: a candidate must outrank the tier the member has */
    if (best) {
        memcpy(mc->tier, best, best_len);
        mc->m.tier_len = (uint8_t) best_len;
    }
}


/*
 * Asks the caller's hook about an event of the member as they were before
 * it (before).  0 with out to apply, -1 for the defaults, or an LMDB error.
 */
static int
loyalty_ask_hook(loyalty_apply_t *ap, const loyalty_mcopy_t *before,
    const loyalty_event_t *ev, int first, int64_t points,
    loyalty_event_hook_out_t *out)
{
    int                      rc;
    int64_t                  rank;
    loyalty_mcopy_t          ref;
    loyalty_event_hook_in_t  in;

    memset(&in, 0, sizeof(loyalty_event_hook_in_t));
    memset(out, 0, sizeof(loyalty_event_hook_out_t));
    out->stage = -1;

    in.ev = ev;
    in.member_id = before->id;
    in.member_len = before->id_len;
    in.member = &before->m;
    in.first = first;
    in.points = points;

    rank = loyalty_tier_rank(ap, before->tier, before->m.tier_len);
    in.has_rank = (rank >= INT32_MIN);
    in.rank = in.has_rank ? (int32_t) rank : 0;

    if (before->m.referrer_len) {
        in.referrer = before->referrer;
        in.referrer_len = before->m.referrer_len;

        rc = loyalty_member_load(ap, before->referrer,
                                 before->m.referrer_len, &ref);
        if (rc != 0 && rc != MDB_NOTFOUND) {
            return rc;
        }

        if (rc == 0 && ref.m.referrer_len) {
            in.referrer2 = ref.m.referrer;
            in.referrer2_len = ref.m.referrer_len;
        }
    }

    /* ref lives until the hook returns: referrer2 points into it */
    rc = ap->hook->handler(ap->hook->data, ap->st, ap->txn, &in, out);

    return rc == 0 ? 0 : -1;
}


/* a stage and a tier the hook asked for, where they are upgrades */
static void
loyalty_hook_upgrade(loyalty_apply_t *ap, loyalty_mcopy_t *mc,
    const loyalty_event_hook_out_t *out)
{
    if (out->stage > (int) mc->m.stage && out->stage < LOYALTY_STAGE_COUNT)
    {
        mc->m.stage = (uint8_t) out->stage;
    }

    if (out->tier_len
        && loyalty_tier_rank(ap, out->tier, out->tier_len)
           > loyalty_tier_rank(ap, mc->tier, mc->m.tier_len))
    {
        memcpy(mc->tier, out->tier, out->tier_len);
        mc->m.tier_len = (uint8_t) out->tier_len;
    }
}


/* the hook's points and upgrades in place of the rules' */
static void
loyalty_hook_apply(loyalty_apply_t *ap, loyalty_mcopy_t *mc,
    const loyalty_event_hook_out_t *out, loyalty_event_rec_t *rec,
    int referral)
{
    loyalty_hook_upgrade(ap, mc, out);

    /* a stage the hook gave brings the rules' tier for it */
    if (out->stage >= 0 && ap->has_rules) {
        loyalty_progress(ap, mc, NULL);
    }

    if (out->has_points) {
        rec->points = out->points;
    }

    if (referral && out->has_l1) {
        rec->l1_points = out->l1_points;
    }

    if (referral && out->has_l2) {
        rec->l2_points = out->l2_points;
    }
}


/* level 1 and level 2 points for an event of a referred person */
static int
loyalty_referral_points(loyalty_apply_t *ap, loyalty_mcopy_t *buyer,
    const loyalty_event_t *ev, loyalty_event_rec_t *rec,
    loyalty_mcopy_t *l1, loyalty_mcopy_t *l2)
{
    int  rc;

    rc = loyalty_member_load(ap, buyer->referrer, buyer->m.referrer_len, l1);
    if (rc == MDB_NOTFOUND) {
        return 0;
    }

    if (rc != 0) {
        return rc;
    }

    rec->r1 = l1->id;
    rec->r1_len = (uint8_t) l1->id_len;

    rc = loyalty_points(ap, l1, rec->l1_points, LOYALTY_LEDGER_REFERRAL_L1,
                        ev);
    if (rc == 0) {
        rc = loyalty_member_save(ap, l1);
    }

    if (rc != 0 || l1->m.referrer_len == 0
        || (l1->m.referrer_len == buyer->id_len
            && memcmp(l1->referrer, buyer->id, buyer->id_len) == 0))
    {
        return rc;
    }

    rc = loyalty_member_load(ap, l1->referrer, l1->m.referrer_len, l2);
    if (rc == MDB_NOTFOUND) {
        return 0;
    }

    if (rc != 0) {
        return rc;
    }

    rec->r2 = l2->id;
    rec->r2_len = (uint8_t) l2->id_len;

    rc = loyalty_points(ap, l2, rec->l2_points, LOYALTY_LEDGER_REFERRAL_L2,
                        ev);

    return rc == 0 ? loyalty_member_save(ap, l2) : rc;
}


static int
loyalty_apply_order(loyalty_apply_t *ap, const loyalty_event_t *ev,
    loyalty_event_rec_t *rec, loyalty_mcopy_t *l1, loyalty_mcopy_t *l2)
{
    int                       rc, first;
    int64_t                   spend;
    loyalty_mcopy_t           mc, before;
    loyalty_event_hook_out_t  out;

    rc = loyalty_member_load(ap, ev->member, ev->member_len, &mc);
    if (rc == MDB_NOTFOUND) {
        return loyalty_apply_error(ap, "unknown member \"%.*s\"",
                                   (int) ev->member_len, ev->member);
    }

    if (rc != 0) {
        return rc;
    }

    if (mc.m.orders == UINT32_MAX
        || __builtin_add_overflow(mc.m.spend, ev->amount, &spend))
    {
        return loyalty_apply_error(ap, "the orders or spend of \"%.*s\" "
                                   "would overflow", (int) ev->member_len,
                                   ev->member);
    }

    rc = loyalty_refer(ap, &mc, ev);
    if (rc != 0) {
        return rc;
    }

    loyalty_mcopy_dup(&before, &mc);

    first = (mc.m.orders == 0);

    mc.m.orders++;
    mc.m.spend = spend;

    /* events may come out of time order: first is the earliest, last
     * the latest, whatever the order they arrive in */
    if (!(mc.m.flags & LOYALTY_MEMBER_FIRST_ORDER)
        || ev->at < mc.m.first_order_at)
    {
        mc.m.first_order_at = ev->at;
        mc.m.flags |= LOYALTY_MEMBER_FIRST_ORDER;
    }

    if (!(mc.m.flags & LOYALTY_MEMBER_LAST_ORDER)
        || ev->at > mc.m.last_order_at)
    {
        mc.m.last_order_at = ev->at;
        mc.m.flags |= LOYALTY_MEMBER_LAST_ORDER;
    }

    if (mc.m.stage < LOYALTY_STAGE_CUSTOMER) {
        mc.m.stage = LOYALTY_STAGE_CUSTOMER;
    }

    rec->member = ev->member;
    rec->member_len = (uint8_t) ev->member_len;
    rec->amount = ev->amount;

    if (ap->has_rules) {
        loyalty_progress(ap, &mc, ev->items);

        if (ap->rules.spend_per_point) {
            rec->points = ev->amount / ap->rules.spend_per_point;
        }

        if (first) {
            rec->l1_points = ap->rules.referral_points[0];
            rec->l2_points = ap->rules.referral_points[1];
        }
    }

    if (ap->hook) {
        rc = loyalty_ask_hook(ap, &before, ev, first, rec->points, &out);

        if (rc > 0) {
            return rc;
        }

        if (rc == 0) {
            loyalty_hook_apply(ap, &mc, &out, rec, first);
        }
    }

    rc = loyalty_points(ap, &mc, rec->points, LOYALTY_LEDGER_ORDER, ev);

    if (rc == 0) {
        rc = loyalty_member_save(ap, &mc);
    }

    if (rc == 0 && first && mc.m.referrer_len
        && (ap->has_rules || rec->l1_points || rec->l2_points))
    {
        rc = loyalty_referral_points(ap, &mc, ev, rec, l1, l2);
    }

    if (rc == 0) {
        rc = loyalty_cadence_order(ap->st, ap->txn, ap->cadences, ap->now,
                                   ev, mc.id, mc.id_len, &before.m, &mc.m,
                                   first);
    }

    return rc;
}


/* points of an order taken back when refunded goes from before to after */
static int64_t
loyalty_reversal(int64_t points, int64_t before, int64_t after,
    int64_t amount)
{
    /* rounded down at every step, so that a full refund takes back all */
    return (int64_t) ((__int128) points * after / amount
                      - (__int128) points * before / amount);
}


static int
loyalty_refund_referrer(loyalty_apply_t *ap, const char *id, size_t len,
    int64_t points, const loyalty_event_rec_t *order,
    const loyalty_event_t *ev)
{
    int              rc;
    loyalty_mcopy_t  mc;

    if (len == 0 || points == 0) {
        return 0;
    }

    rc = loyalty_member_load(ap, id, len, &mc);

    /* a referrer deleted since keeps no balance to take back from */
    if (rc == MDB_NOTFOUND) {
        return 0;
    }

    if (rc == 0) {
        rc = loyalty_points(ap, &mc,
                            -loyalty_reversal(points, order->refunded,
                                              order->refunded + ev->amount,
                                              order->amount),
                            LOYALTY_LEDGER_REFUND, ev);
    }

    return rc == 0 ? loyalty_member_save(ap, &mc) : rc;
}


/*
 * rec->member is copied into the caller's member buffer (LOYALTY_ID_MAX
 * bytes): the order it comes from is decoded from a local copy that is
 * gone once this returns, and rec is encoded after
 */
static int
loyalty_apply_refund(loyalty_apply_t *ap, const loyalty_event_t *ev,
    loyalty_event_rec_t *rec, char *member)
{
    int                  rc;
    uint8_t              kbuf[LOYALTY_EVENT_KEY_MAX];
    uint8_t              vbuf[LOYALTY_EVENT_REC_MAX];
    uint8_t              obuf[LOYALTY_EVENT_REC_MAX];
    MDB_val              key, val;
    loyalty_mcopy_t      mc;
    loyalty_event_rec_t  order;

    key.mv_data = kbuf;
    key.mv_size = loyalty_event_key(LOYALTY_EVENT_ORDER, ev->order,
                                    ev->order_len, kbuf);

    rc = mdb_get(ap->txn, ap->st->dbi[LOYALTY_DB_EVENTS], &key, &val);
    if (rc == MDB_NOTFOUND) {
        return loyalty_apply_error(ap, "unknown order \"%.*s\"",
                                   (int) ev->order_len, ev->order);
    }

    if (rc != 0) {
        return rc;
    }

    /* a copy: the writes below may move the page it is on */
    memcpy(vbuf, val.mv_data, val.mv_size < sizeof(vbuf) ? val.mv_size
                                                         : sizeof(vbuf));

    if (val.mv_size > sizeof(vbuf)
        || loyalty_event_rec_decode(vbuf, val.mv_size, &order) != 0
        || order.type != LOYALTY_EVENT_ORDER)
    {
        snprintf(ap->err, ap->errlen, "order \"%.*s\" does not decode",
                 (int) ev->order_len, ev->order);
        return MDB_CORRUPTED;
    }

    if (ev->amount > order.amount - order.refunded) {
        return loyalty_apply_error(ap, "refund of %lld exceeds the %lld "
                                   "left to refund of order \"%.*s\"",
                                   (long long) ev->amount,
                                   (long long) (order.amount
                                                - order.refunded),
                                   (int) ev->order_len, ev->order);
    }

    rc = loyalty_member_load(ap, order.member, order.member_len, &mc);
    if (rc == MDB_NOTFOUND) {
        return loyalty_apply_error(ap, "member \"%.*s\" of order \"%.*s\" "
                                   "is not in the store",
                                   (int) order.member_len, order.member,
                                   (int) ev->order_len, ev->order);
    }

    if (rc != 0) {
        return rc;
    }

    /* spend may have been set lower since, by an import */
    mc.m.spend = mc.m.spend > ev->amount ? mc.m.spend - ev->amount : 0;

    memcpy(member, order.member, order.member_len);
    rec->member = member;
    rec->member_len = order.member_len;
    rec->order = ev->order;
    rec->order_len = (uint8_t) ev->order_len;
    rec->amount = ev->amount;
    rec->points = loyalty_reversal(order.points, order.refunded,
                                   order.refunded + ev->amount,
                                   order.amount);

    rc = loyalty_points(ap, &mc, -rec->points, LOYALTY_LEDGER_REFUND, ev);
    if (rc == 0) {
        rc = loyalty_member_save(ap, &mc);
    }

    if (rc == 0) {
        rc = loyalty_refund_referrer(ap, order.r1, order.r1_len,
                                     order.l1_points, &order, ev);
    }

    if (rc == 0) {
        rc = loyalty_refund_referrer(ap, order.r2, order.r2_len,
                                     order.l2_points, &order, ev);
    }

    if (rc != 0) {
        return rc;
    }

    order.refunded += ev->amount;

    val.mv_data = obuf;
    val.mv_size = loyalty_event_rec_encode(&order, obuf);

    return mdb_put(ap->txn, ap->st->dbi[LOYALTY_DB_EVENTS], &key, &val, 0);
}


static int
loyalty_apply_action(loyalty_apply_t *ap, const loyalty_event_t *ev,
    loyalty_event_rec_t *rec, loyalty_mcopy_t *l1, loyalty_mcopy_t *l2)
{
    int                       rc;
    loyalty_mcopy_t           mc, before;
    loyalty_event_hook_out_t  out;

    rc = loyalty_member_load(ap, ev->member, ev->member_len, &mc);
    if (rc == MDB_NOTFOUND) {
        return loyalty_apply_error(ap, "unknown member \"%.*s\"",
                                   (int) ev->member_len, ev->member);
    }

    if (rc != 0) {
        return rc;
    }

    rec->member = ev->member;
    rec->member_len = (uint8_t) ev->member_len;
    rec->action = (uint8_t) ev->action;

    if (ap->has_rules) {
        rec->points = ap->rules.action_points[ev->action];
    }

    if (ap->hook) {
        loyalty_mcopy_dup(&before, &mc);

        rc = loyalty_ask_hook(ap, &before, ev, 0, rec->points, &out);

        if (rc > 0) {
            return rc;
        }

        if (rc == 0) {
            loyalty_hook_apply(ap, &mc, &out, rec, 1);
        }
    }

    rc = loyalty_points(ap, &mc, rec->points, LOYALTY_LEDGER_ACTION, ev);

    if (rc == 0) {
        rc = loyalty_member_save(ap, &mc);
    }

    /* the referrers' share of an action is the hook's to give */
    if (rc == 0 && mc.m.referrer_len && (rec->l1_points || rec->l2_points)) {
        rc = loyalty_referral_points(ap, &mc, ev, rec, l1, l2);
    }

    return rc;
}


/* the conflict of a field given one value where another was stored */
static int
loyalty_apply_clash(loyalty_apply_t *ap, const loyalty_event_t *ev,
    const char *field, json_t *stored, json_t *given)
{
    char  *s, *g;

    ap->conflict = json_pack("{s:s,s:o,s:o}", "field", field,
                             "stored", stored, "given", given);
    if (ap->conflict == NULL) {
        return ENOMEM;
    }

    s = json_dumps(json_object_get(ap->conflict, "stored"),
                   JSON_ENCODE_ANY);
    g = json_dumps(json_object_get(ap->conflict, "given"), JSON_ENCODE_ANY);

    (void) loyalty_apply_error(ap, "%s \"%.*s\" was applied with %s %s, "
                               "not %s", ev->type == LOYALTY_EVENT_ORDER
                               ? "order_id"
                               : ev->type == LOYALTY_EVENT_REFUND
                               ? "refund_id" : "id",
                               (int) ev->id_len, ev->id, field,
                               s ? s : "?", g ? g : "?");
    free(s);
    free(g);

    return LOYALTY_APPLY_CONFLICT;
}


/*
 * An event whose id was applied before: a duplicate when it says what
 * the stored one said (member, amount, order, kind), else a conflict.
 */
static int
loyalty_apply_conflict(loyalty_apply_t *ap, const loyalty_event_t *ev,
    const MDB_val *val)
{
    loyalty_event_rec_t  rec;

    if (loyalty_event_rec_decode(val->mv_data, val->mv_size, &rec) != 0
        || rec.type != ev->type)
    {
        snprintf(ap->err, ap->errlen, "event \"%.*s\" does not decode",
                 (int) ev->id_len, ev->id);
        return MDB_CORRUPTED;
    }

    if (ev->type == LOYALTY_EVENT_REFUND) {
        if (rec.order_len != ev->order_len
            || memcmp(rec.order, ev->order, ev->order_len) != 0)
        {
            return loyalty_apply_clash(ap, ev, "order_id",
                                       json_stringn(rec.order,
                                                    rec.order_len),
                                       json_stringn(ev->order,
                                                    ev->order_len));
        }

    } else if (ev->type == LOYALTY_EVENT_ORDER
               || ev->type == LOYALTY_EVENT_ACTION)
    {
        if (rec.member_len != ev->member_len
            || memcmp(rec.member, ev->member, ev->member_len) != 0)
        {
            return loyalty_apply_clash(ap, ev, "member",
                                       json_stringn(rec.member,
                                                    rec.member_len),
                                       json_stringn(ev->member,
                                                    ev->member_len));
        }
    }

    if ((ev->type == LOYALTY_EVENT_ORDER || ev->type == LOYALTY_EVENT_REFUND)
        && rec.amount != ev->amount)
    {
        return loyalty_apply_clash(ap, ev, "amount",
                                   json_integer(rec.amount),
                                   json_integer(ev->amount));
    }

    if (ev->type == LOYALTY_EVENT_ACTION && rec.action != ev->action
        && rec.action < LOYALTY_ACTION_COUNT)
    {
        return loyalty_apply_clash(ap, ev, "kind",
                                   json_string(loyalty_action_names[
                                                   rec.action]),
                                   json_string(loyalty_action_names[
                                                   ev->action]));
    }

    return 0;
}


/*
 * 0 applied, or *dup for an event seen before; -1 invalid;
 * LOYALTY_APPLY_CONFLICT; LMDB errors
 */
static int
loyalty_apply(loyalty_apply_t *ap, const loyalty_event_t *ev, int *dup)
{
    int                  rc;
    uint8_t              kbuf[LOYALTY_EVENT_KEY_MAX];
    uint8_t              vbuf[LOYALTY_EVENT_REC_MAX];
    MDB_val              key, val;
    char                 member[LOYALTY_ID_MAX];
    loyalty_mcopy_t      l1, l2;
    loyalty_event_rec_t  rec;

    key.mv_data = kbuf;
    key.mv_size = loyalty_event_key(ev->type, ev->id, ev->id_len, kbuf);

    rc = mdb_get(ap->txn, ap->st->dbi[LOYALTY_DB_EVENTS], &key, &val);
    if (rc == 0) {
        *dup = 1;
        return loyalty_apply_conflict(ap, ev, &val);
    }

    if (rc != MDB_NOTFOUND) {
        return rc;
    }

    *dup = 0;

    memset(&rec, 0, sizeof(loyalty_event_rec_t));
    rec.type = (uint8_t) ev->type;
    rec.at = ev->at;

    switch (ev->type) {

    case LOYALTY_EVENT_ORDER:
        rc = loyalty_apply_order(ap, ev, &rec, &l1, &l2);
        break;

    case LOYALTY_EVENT_REFUND:
        rc = loyalty_apply_refund(ap, ev, &rec, member);
        break;

    case LOYALTY_EVENT_ACTION:
        rc = loyalty_apply_action(ap, ev, &rec, &l1, &l2);
        break;

    default:
        rc = loyalty_apply_join(ap, ev, &rec);
        break;
    }

    if (rc != 0) {
        return rc;
    }

    val.mv_data = vbuf;
    val.mv_size = loyalty_event_rec_encode(&rec, vbuf);

    return mdb_put(ap->txn, ap->st->dbi[LOYALTY_DB_EVENTS], &key, &val, 0);
}


static int
loyalty_apply_init(loyalty_apply_t *ap, loyalty_store_t *st, MDB_txn *txn,
    char *err, size_t errlen)
{
    int                rc;
    size_t             i;
    loyalty_tierset_t  ts;

    ap->st = st;
    ap->txn = txn;

    rc = loyalty_rules_load(st, txn, &ap->rules);
    if (rc == MDB_CORRUPTED) {
        snprintf(err, errlen, "the stored rules do not validate");
        return rc;
    }

    if (rc != 0 && rc != MDB_NOTFOUND) {
        snprintf(err, errlen, "rules: %s", mdb_strerror(rc));
        return rc;
    }

    ap->has_rules = (rc == 0);

    /* names copied: a write may move the pages they are on */
    rc = loyalty_tierset_load(txn, st->dbi[LOYALTY_DB_TIERS], &ts);
    if (rc != 0) {
        snprintf(err, errlen, "tiers: %s", mdb_strerror(rc));
        return rc;
    }

    for (i = 0; i < ts.n; i++) {
        memcpy(ap->tiers[i].name, ts.tiers[i].name, ts.tiers[i].name_len);
        ap->tiers[i].len = ts.tiers[i].name_len;
        ap->tiers[i].rank = ts.tiers[i].rank;
    }

    ap->ntiers = ts.n;

    return 0;
}


/* batches */

static int
loyalty_batch_error(loyalty_batch_t *res, long index, const char *error)
{
    json_t  *e;

    e = json_object();
    if (e == NULL) {
        return -1;
    }

    if (index >= 0) {
        json_object_set_new(e, "index", json_integer(index));
    }

    json_object_set_new(e, "error", json_string(error));

    return json_array_append_new(res->errors, e);
}


/* one event of the batch: checks it and, in the nested txn, applies it */
static int
loyalty_batch_event(loyalty_apply_t *ap, loyalty_batch_t *res, json_t *obj,
    size_t index, int64_t now)
{
    int              rc, dup;
    char             why[LOYALTY_ERRLEN + 64];
    loyalty_event_t  ev;

    ap->err = why;
    ap->errlen = sizeof(why);

    if (loyalty_event_from_json(obj, now, &ev, why, sizeof(why)) != 0) {
        loyalty_batch_error(res, (long) index, why);
        return 0;
    }

    ap->conflict = NULL;

    rc = loyalty_apply(ap, &ev, &dup);

    if (rc == -1) {
        loyalty_batch_error(res, (long) index, why);
        return 0;
    }

    if (rc == LOYALTY_APPLY_CONFLICT) {
        if (loyalty_batch_error(res, (long) index, why) == 0) {
            json_object_set_new(json_array_get(res->errors,
                                    json_array_size(res->errors) - 1),
                                "conflict", ap->conflict);
        } else {
            json_decref(ap->conflict);
        }

        ap->conflict = NULL;
        res->conflicts++;
        return 0;
    }

    if (rc != 0) {
        return rc;
    }

    if (dup) {
        res->duplicates++;

    } else {
        res->applied++;
    }

    return 0;
}


static int
loyalty_blank(int c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}


/* the events of a body of JSON Lines, counted: blank lines are none */
static size_t
loyalty_lines_count(const char *p, const char *end)
{
    size_t       n;
    const char  *eol, *q;

    for (n = 0; p < end; p = eol + 1) {
        eol = memchr(p, '\n', (size_t) (end - p));
        if (eol == NULL) {
            eol = end;
        }

        for (q = p; q < eol && loyalty_blank(*q); q++) {
            /* void */
        }

        n += (q < eol);
    }

    return n;
}


int
loyalty_batch_apply(loyalty_store_t *st, MDB_txn *txn, const char *body,
    size_t len, size_t max_events, int64_t now,
    const loyalty_event_hook_t *hook, loyalty_batch_t *res, char *err,
    size_t errlen)
{
    int               rc, array;
    char              why[LOYALTY_ERRLEN];
    size_t            i, index;
    json_t           *doc, *obj;
    MDB_txn          *child;
    const char       *p, *end, *eol, *q;
    json_error_t      jerr;
    loyalty_apply_t  *ap;

    memset(res, 0, sizeof(loyalty_batch_t));
    err[0] = '\0';

    res->errors = json_array();
    if (res->errors == NULL) {
        snprintf(err, errlen, "out of memory");
        return ENOMEM;
    }

    end = body + len;

    for (p = body; p < end && loyalty_blank(*p); p++) {
        /* void */
    }

    array = (p < end && *p == '[');
    doc = NULL;

    if (array) {
        doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
        if (doc == NULL) {
            snprintf(why, sizeof(why), "bad JSON: %s at line %d column %d",
                     jerr.text, jerr.line, jerr.column);
            loyalty_batch_error(res, -1, why);
            snprintf(err, errlen, "%s", why);
            return LOYALTY_BATCH_INVALID;
        }

        res->events = json_array_size(doc);

    } else {
        res->events = loyalty_lines_count(body, end);
    }

    if (res->events > max_events) {
        snprintf(err, errlen, "more than %zu events", max_events);
        json_decref(doc);
        return LOYALTY_BATCH_TOO_MANY;
    }

    ap = malloc(sizeof(loyalty_apply_t));
    if (ap == NULL) {
        snprintf(err, errlen, "out of memory");
        json_decref(doc);
        return ENOMEM;
    }

    /* a nested transaction: a bad batch leaves the caller's untouched */
    rc = mdb_txn_begin(mdb_txn_env(txn), txn, 0, &child);
    if (rc != 0) {
        snprintf(err, errlen, "%s", mdb_strerror(rc));
        goto done;
    }

    rc = loyalty_apply_init(ap, st, child, err, errlen);
    if (rc != 0) {
        mdb_txn_abort(child);
        goto done;
    }

    ap->hook = (hook && hook->handler) ? hook : NULL;
    ap->cadences = hook ? hook->cadences : NULL;
    ap->now = now;

    if (array) {
        json_array_foreach(doc, i, obj) {
            rc = loyalty_batch_event(ap, res, obj, i, now);
            if (rc != 0) {
                break;
            }
        }

    } else {
        index = 0;

        for (p = body; p < end; p = eol + 1) {
            eol = memchr(p, '\n', (size_t) (end - p));
            if (eol == NULL) {
                eol = end;
            }

            for (q = p; q < eol && loyalty_blank(*q); q++) {
                /* void */
            }

            if (q == eol) {
                continue;
            }

            obj = json_loadb(p, (size_t) (eol - p), JSON_REJECT_DUPLICATES,
                             &jerr);
            if (obj == NULL) {
                snprintf(why, sizeof(why), "bad JSON: %s", jerr.text);
                loyalty_batch_error(res, (long) index, why);

            } else {
                rc = loyalty_batch_event(ap, res, obj, index, now);
                json_decref(obj);
            }

            index++;

            if (rc != 0) {
                break;
            }
        }
    }

    if (rc != 0) {
        if (err[0] == '\0') {
            snprintf(err, errlen, "%s", mdb_strerror(rc));
        }
        mdb_txn_abort(child);
        goto done;
    }

    if (json_array_size(res->errors)) {
        mdb_txn_abort(child);
        res->applied = 0;
        res->duplicates = 0;

        if (res->conflicts == json_array_size(res->errors)) {
            snprintf(err, errlen, "%zu of %zu events conflict with events "
                     "applied before", res->conflicts, res->events);
            rc = LOYALTY_BATCH_CONFLICT;
            goto done;
        }

        snprintf(err, errlen, "%zu of %zu events are invalid",
                 json_array_size(res->errors), res->events);
        rc = LOYALTY_BATCH_INVALID;
        goto done;
    }

    rc = mdb_txn_commit(child);
    if (rc != 0) {
        snprintf(err, errlen, "%s", mdb_strerror(rc));
    }

done:

    free(ap);
    json_decref(doc);

    return rc;
}


void
loyalty_batch_free(loyalty_batch_t *res)
{
    json_decref(res->errors);
    res->errors = NULL;
}
