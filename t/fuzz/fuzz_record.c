/*
 * nginx-loyalty: libFuzzer harness for the binary store records:
 * loyalty_member_decode(), loyalty_member_peek(), loyalty_tier_decode()
 * and loyalty_price_decode().
 *
 * The input is a record value as LMDB would hand it over.  Invariants:
 *
 *   - whatever decodes re-encodes to exactly the input bytes: every
 *     record has one encoding, so byte comparison of records is sound;
 *   - peek accepts whatever decode accepts and reads the same stage,
 *     flags, points and tier, pointing into the input;
 *   - each price override is found by its tier's name, at its price;
 *   - the decoded lengths and pointers stay within the input;
 *   - a record that decodes is one "loyaltyctl import" could have written:
 *     its export ("loyaltyctl get"), imported again, gives the same bytes.
 *     "loyaltyctl verify" trusts decode, so decode must be this strict.
 *     Only a member can hold what the import now refuses (times outside
 *     2000-2100, points beyond +-10^12): its import must then be refused,
 *     with the message of the first such field.
 */

#include <string.h>
#include <jansson.h>

#include "loyalty_record.h"
#include "loyalty_json.h"
#include "fuzz.h"


/* the export as text, then loaded as "loyaltyctl import" loads a line */
static json_t *
fuzz_export(json_t *obj)
{
    char    *text;
    json_t  *again;

    FUZZ_CHECK(obj != NULL);

    text = json_dumps(obj, JSON_COMPACT);
    FUZZ_CHECK(text != NULL);

    again = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
    if (again == NULL) {
        fprintf(stderr, "export does not load: %s\n", text);
    }

    free(text);
    json_decref(obj);

    return again;
}


/*
 * What the import refuses in a member the store can hold, as its first
 * check does: a time outside the import's window (the store keeps years
 * 0000-9999), then a balance beyond +-10^12 points.  NULL: nothing.
 */
static const char *
fuzz_member_refused(const loyalty_member_t *m, char *buf, size_t size)
{
    size_t  i;
    struct {
        const char     *name;
        uint16_t        flag;
        int64_t         at;
    } times[] = {
        { "joined_at", LOYALTY_MEMBER_JOINED, m->joined_at },
        { "first_order_at", LOYALTY_MEMBER_FIRST_ORDER, m->first_order_at },
        { "last_order_at", LOYALTY_MEMBER_LAST_ORDER, m->last_order_at },
    };

    for (i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
        if ((m->flags & times[i].flag)
            && (times[i].at < LOYALTY_TIME_FIRST
                || times[i].at > LOYALTY_TIME_LAST))
        {
            snprintf(buf, size, "\"%s\" must be between "
                     LOYALTY_TIME_FIRST_TEXT " and " LOYALTY_TIME_LAST_TEXT,
                     times[i].name);
            return buf;
        }
    }

    if (m->points < -LOYALTY_POINTS_MAX || m->points > LOYALTY_POINTS_MAX) {
        snprintf(buf, size, "\"points\" must be between %lld and %lld",
                 -LOYALTY_POINTS_MAX, LOYALTY_POINTS_MAX);
        return buf;
    }

    return NULL;
}


static void
fuzz_member_export(const uint8_t *buf, size_t len, const loyalty_member_t *m)
{
    int               rc;
    char              err[LOYALTY_ERRLEN], why[LOYALTY_ERRLEN];
    size_t            n, id_len, got_len;
    uint8_t           out[LOYALTY_MEMBER_MAX];
    json_t           *obj;
    const char       *id, *got, *refused;
    loyalty_member_t  m2;

    /* the key is not in the value: any id that is not the referrer */
    id = (m->referrer_len == 1 && m->referrer[0] == 'a') ? "b" : "a";
    id_len = 1;

    obj = fuzz_export(loyalty_member_to_json(id, id_len, m));
    FUZZ_CHECK(obj != NULL);

    err[0] = '\0';
    rc = loyalty_member_from_json(obj, &got, &got_len, &m2, err,
                                  sizeof(err));

    refused = fuzz_member_refused(m, why, sizeof(why));

    if (refused != NULL) {
        /* beyond the import's bounds: refused, and for that reason */
        if (rc == 0 || strcmp(err, refused) != 0) {
            fprintf(stderr, "member export outside the import's bounds: "
                    "%s; the import says: %s\n", refused,
                    rc == 0 ? "accepted" : err);
        }
        FUZZ_CHECK(rc != 0);
        FUZZ_CHECK(strcmp(err, refused) == 0);

        json_decref(obj);
        return;
    }

    if (rc != 0) {
        fprintf(stderr, "member export is not accepted: %s\n", err);
    }
    FUZZ_CHECK(rc == 0);

    n = loyalty_member_encode(&m2, out);
    FUZZ_CHECK(n == len && memcmp(out, buf, len) == 0);

    json_decref(obj);
}


static void
fuzz_tier_export(const uint8_t *buf, size_t len, const loyalty_tier_t *t)
{
    int             rc;
    char            err[LOYALTY_ERRLEN];
    size_t          n, name_len;
    uint8_t         out[LOYALTY_TIER_REC_MAX];
    json_t         *obj;
    const char     *name;
    loyalty_tier_t  t2;

    obj = fuzz_export(loyalty_tier_to_json("t", 1, t));
    FUZZ_CHECK(obj != NULL);

    err[0] = '\0';
    rc = loyalty_tier_from_json(obj, &name, &name_len, &t2, err,
                                sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "tier export is not accepted: %s\n", err);
    }
    FUZZ_CHECK(rc == 0);

    n = loyalty_tier_encode(&t2, out);
    FUZZ_CHECK(n == len && memcmp(out, buf, len) == 0);

    json_decref(obj);
}


static void
fuzz_price_export(const uint8_t *buf, size_t len, const loyalty_price_t *p)
{
    int                       rc;
    char                      err[LOYALTY_ERRLEN];
    size_t                    n, sku_len;
    uint8_t                   out[LOYALTY_PRICE_REC_MAX];
    json_t                   *obj;
    const char               *sku;
    loyalty_price_t           p2;
    loyalty_price_override_t  ov[LOYALTY_PRICE_OVERRIDES];

    obj = fuzz_export(loyalty_price_to_json("s", 1, p));
    FUZZ_CHECK(obj != NULL);

    err[0] = '\0';
    rc = loyalty_price_from_json(obj, &sku, &sku_len, &p2, ov, err,
                                 sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "price export is not accepted: %s\n", err);
    }
    FUZZ_CHECK(rc == 0);

    /* the tier names in ov point into obj */
    n = loyalty_price_encode(&p2, ov, out);
    FUZZ_CHECK(n == len && memcmp(out, buf, len) == 0);

    json_decref(obj);
}


static void
fuzz_member(const uint8_t *buf, size_t len)
{
    int               rc, peeked;
    size_t            n, tier_len;
    uint8_t           stage, out[LOYALTY_MEMBER_MAX];
    int64_t           points;
    uint16_t          flags;
    const char       *tier;
    loyalty_member_t  m;

    tier = NULL;
    tier_len = 0;

    peeked = loyalty_member_peek(buf, len, &stage, &flags, &points, &tier,
                                 &tier_len);
    FUZZ_CHECK(peeked == 0 || peeked == -1);

    if (peeked == 0) {
        FUZZ_CHECK(stage < LOYALTY_STAGE_COUNT);
        FUZZ_CHECK(tier_len >= 1 && tier_len <= LOYALTY_TIER_MAX);
        FUZZ_CHECK(tier == (const char *) buf + LOYALTY_MEMBER_FIXED);
        FUZZ_CHECK(LOYALTY_MEMBER_FIXED + tier_len <= len);
    }

    memset(&m, 0x5a, sizeof(m));

    rc = loyalty_member_decode(buf, len, &m);
    FUZZ_CHECK(rc == 0 || rc == -1);

    if (rc != 0) {
        return;
    }

    /* the request path must never see a record that decode would refuse */
    FUZZ_CHECK(peeked == 0);
    FUZZ_CHECK(m.stage == stage && m.flags == flags && m.points == points);
    FUZZ_CHECK(m.tier == tier && m.tier_len == tier_len);

    FUZZ_CHECK(len == LOYALTY_MEMBER_FIXED + (size_t) m.tier_len
                      + m.referrer_len);
    FUZZ_CHECK(len <= LOYALTY_MEMBER_MAX);
    FUZZ_CHECK((m.flags & ~LOYALTY_MEMBER_FLAGS) == 0);
    FUZZ_CHECK(m.spend >= 0);
    FUZZ_CHECK(loyalty_valid_tier_name(m.tier, m.tier_len));

    if (m.referrer_len) {
        FUZZ_CHECK(m.referrer == m.tier + m.tier_len);
        FUZZ_CHECK(loyalty_valid_id(m.referrer, m.referrer_len));

    } else {
        FUZZ_CHECK(m.referrer == NULL);
    }

    memset(out, 0xa5, sizeof(out));
    n = loyalty_member_encode(&m, out);

    FUZZ_CHECK(n == len);
    FUZZ_CHECK(memcmp(out, buf, len) == 0);

    fuzz_member_export(buf, len, &m);
}


static void
fuzz_tier(const uint8_t *buf, size_t len)
{
    int             rc;
    size_t          n;
    uint8_t         out[LOYALTY_TIER_REC_MAX];
    loyalty_tier_t  t;

    memset(&t, 0x5a, sizeof(t));

    rc = loyalty_tier_decode(buf, len, &t);
    FUZZ_CHECK(rc == 0 || rc == -1);

    if (rc != 0) {
        return;
    }

    FUZZ_CHECK(len == LOYALTY_TIER_FIXED + (size_t) t.label_len);
    FUZZ_CHECK(len <= LOYALTY_TIER_REC_MAX);
    FUZZ_CHECK(t.label == (const char *) buf + LOYALTY_TIER_FIXED);
    FUZZ_CHECK(t.discount_bp <= 10000);

    memset(out, 0xa5, sizeof(out));
    n = loyalty_tier_encode(&t, out);

    FUZZ_CHECK(n == len);
    FUZZ_CHECK(memcmp(out, buf, len) == 0);

    fuzz_tier_export(buf, len, &t);
}


static void
fuzz_price(const uint8_t *buf, size_t len)
{
    int                       rc;
    size_t                    i, n;
    uint8_t                   out[LOYALTY_PRICE_REC_MAX];
    loyalty_price_t           p;
    loyalty_price_override_t  ov[LOYALTY_PRICE_OVERRIDES];

    memset(&p, 0x5a, sizeof(p));

    rc = loyalty_price_decode(buf, len, &p);
    FUZZ_CHECK(rc == 0 || rc == -1);

    if (rc != 0) {
        return;
    }

    FUZZ_CHECK(p.noverrides <= LOYALTY_PRICE_OVERRIDES);
    FUZZ_CHECK(len == LOYALTY_PRICE_FIXED
                      + (size_t) p.noverrides * LOYALTY_PRICE_ENTRY);
    FUZZ_CHECK(p.overrides == buf + LOYALTY_PRICE_FIXED);
    FUZZ_CHECK(p.retail >= 0 && p.retail <= LOYALTY_PRICE_MAX);

    for (i = 0; i < p.noverrides; i++) {
        loyalty_price_override_at(&p, i, &ov[i]);

        FUZZ_CHECK((const uint8_t *) ov[i].tier >= buf
                   && (const uint8_t *) ov[i].tier + ov[i].tier_len
                      <= buf + len);
        FUZZ_CHECK(loyalty_valid_tier_name(ov[i].tier, ov[i].tier_len));
        FUZZ_CHECK(ov[i].price >= 0 && ov[i].price <= LOYALTY_PRICE_MAX);

        /* one entry per tier, so the lookup finds this one */
        FUZZ_CHECK(loyalty_price_override(&p, ov[i].tier, ov[i].tier_len)
                   == ov[i].price);
    }

    memset(out, 0xa5, sizeof(out));
    n = loyalty_price_encode(&p, ov, out);

    FUZZ_CHECK(n == len);
    FUZZ_CHECK(memcmp(out, buf, len) == 0);

    fuzz_price_export(buf, len, &p);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /*
     * libFuzzer's buffer is exactly size bytes on the heap, so ASan
     * catches a read past the record's end.  Both decoders see every
     * input: a value from the wrong database must be refused, not crash.
     */
    fuzz_member(data, size);
    fuzz_tier(data, size);
    fuzz_price(data, size);

    return 0;
}
