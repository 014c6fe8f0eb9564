/*
 * nginx-loyalty: libFuzzer harness for the JSON import and export of
 * records: loyalty_member_from_json(), loyalty_tier_from_json(),
 * loyalty_price_from_json() and their _to_json() counterparts.
 *
 * The input is one line of a JSON Lines import, loaded as
 * "loyaltyctl import" loads it.  Invariants, for a line that is accepted:
 *
 *   - the record it encodes to decodes;
 *   - exporting that record ("loyaltyctl get"), as text, and importing
 *     the export again gives the same key and exactly the same record
 *     bytes: an export is a faithful backup;
 *   - a rejected line comes with a message; no line is two kinds.
 */

#include <string.h>
#include <jansson.h>

#include "loyalty_json.h"
#include "fuzz.h"


/* to_json, then through text and back, as an export and re-import does */
static json_t *
fuzz_reload(json_t *obj)
{
    char          *text;
    json_t        *again;
    json_error_t   jerr;

    FUZZ_CHECK(obj != NULL);

    text = json_dumps(obj, JSON_COMPACT);
    FUZZ_CHECK(text != NULL);

    again = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    if (again == NULL) {
        fprintf(stderr, "export does not load: %s: %s\n", jerr.text, text);
    }
    FUZZ_CHECK(again != NULL);

    free(text);
    json_decref(obj);

    return again;
}


static int
fuzz_member(json_t *obj)
{
    int               rc;
    char              err[LOYALTY_ERRLEN];
    size_t            id_len, id2_len, n, n2;
    uint8_t           buf[LOYALTY_MEMBER_MAX], buf2[LOYALTY_MEMBER_MAX];
    json_t           *out;
    const char       *id, *id2;
    loyalty_member_t  m, d, m2;

    err[0] = '\0';

    rc = loyalty_member_from_json(obj, &id, &id_len, &m, err, sizeof(err));
    if (rc != 0) {
        FUZZ_CHECK(rc == -1 && err[0] != '\0');
        return 0;
    }

    FUZZ_CHECK(loyalty_valid_id(id, id_len));

    n = loyalty_member_encode(&m, buf);
    FUZZ_CHECK(n <= LOYALTY_MEMBER_MAX);
    FUZZ_CHECK(loyalty_member_decode(buf, n, &d) == 0);

    out = fuzz_reload(loyalty_member_to_json(id, id_len, &d));

    err[0] = '\0';
    rc = loyalty_member_from_json(out, &id2, &id2_len, &m2, err,
                                  sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "export is not accepted: %s\n", err);
    }
    FUZZ_CHECK(rc == 0);

    FUZZ_CHECK(id2_len == id_len && memcmp(id2, id, id_len) == 0);

    n2 = loyalty_member_encode(&m2, buf2);
    FUZZ_CHECK(n2 == n);
    FUZZ_CHECK(memcmp(buf2, buf, n) == 0);

    json_decref(out);

    return 1;
}


static int
fuzz_tier(json_t *obj)
{
    int             rc;
    char            err[LOYALTY_ERRLEN];
    size_t          name_len, name2_len, n, n2;
    uint8_t         buf[LOYALTY_TIER_REC_MAX], buf2[LOYALTY_TIER_REC_MAX];
    json_t         *out;
    const char     *name, *name2;
    loyalty_tier_t  t, d, t2;

    err[0] = '\0';

    rc = loyalty_tier_from_json(obj, &name, &name_len, &t, err, sizeof(err));
    if (rc != 0) {
        FUZZ_CHECK(rc == -1 && err[0] != '\0');
        return 0;
    }

    FUZZ_CHECK(loyalty_valid_tier_name(name, name_len));

    n = loyalty_tier_encode(&t, buf);
    FUZZ_CHECK(n <= LOYALTY_TIER_REC_MAX);
    FUZZ_CHECK(loyalty_tier_decode(buf, n, &d) == 0);

    out = fuzz_reload(loyalty_tier_to_json(name, name_len, &d));

    err[0] = '\0';
    rc = loyalty_tier_from_json(out, &name2, &name2_len, &t2, err,
                                sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "export is not accepted: %s\n", err);
    }
    FUZZ_CHECK(rc == 0);

    FUZZ_CHECK(name2_len == name_len && memcmp(name2, name, name_len) == 0);

    n2 = loyalty_tier_encode(&t2, buf2);
    FUZZ_CHECK(n2 == n);
    FUZZ_CHECK(memcmp(buf2, buf, n) == 0);

    json_decref(out);

    return 1;
}


static int
fuzz_price(json_t *obj)
{
    int                       rc;
    char                      err[LOYALTY_ERRLEN];
    size_t                    sku_len, sku2_len, n, n2;
    uint8_t                   buf[LOYALTY_PRICE_REC_MAX];
    uint8_t                   buf2[LOYALTY_PRICE_REC_MAX];
    json_t                   *out;
    const char               *sku, *sku2;
    loyalty_price_t           p, d, p2;
    loyalty_price_override_t  ov[LOYALTY_PRICE_OVERRIDES];
    loyalty_price_override_t  ov2[LOYALTY_PRICE_OVERRIDES];

    err[0] = '\0';

    rc = loyalty_price_from_json(obj, &sku, &sku_len, &p, ov, err,
                                 sizeof(err));
    if (rc != 0) {
        FUZZ_CHECK(rc == -1 && err[0] != '\0');
        return 0;
    }

    FUZZ_CHECK(loyalty_valid_id(sku, sku_len));
    FUZZ_CHECK(p.noverrides <= LOYALTY_PRICE_OVERRIDES);

    n = loyalty_price_encode(&p, ov, buf);
    FUZZ_CHECK(n <= LOYALTY_PRICE_REC_MAX);
    FUZZ_CHECK(loyalty_price_decode(buf, n, &d) == 0);

    out = fuzz_reload(loyalty_price_to_json(sku, sku_len, &d));

    err[0] = '\0';
    rc = loyalty_price_from_json(out, &sku2, &sku2_len, &p2, ov2, err,
                                 sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "export is not accepted: %s\n", err);
    }
    FUZZ_CHECK(rc == 0);

    FUZZ_CHECK(sku2_len == sku_len && memcmp(sku2, sku, sku_len) == 0);

    n2 = loyalty_price_encode(&p2, ov2, buf2);
    FUZZ_CHECK(n2 == n);
    FUZZ_CHECK(memcmp(buf2, buf, n) == 0);

    json_decref(out);

    return 1;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int            member, tier, price;
    json_t        *obj;
    json_error_t   jerr;

    /* the flags "loyaltyctl import" loads each line with */
    obj = json_loadb((const char *) data, size, JSON_REJECT_DUPLICATES,
                     &jerr);
    if (obj == NULL) {
        return 0;
    }

    /* every line goes to all: a tier line must not pass as a member */
    member = fuzz_member(obj);
    tier = fuzz_tier(obj);
    price = fuzz_price(obj);

    FUZZ_CHECK(member + tier + price <= 1);

    json_decref(obj);

    return 0;
}
