/*
 * Unit tests of the price record and loyalty_price.c: resolution, the
 * half-up rounding, the guard's check and its clamp.
 */

#include <stdio.h>
#include <string.h>

#include "tap.h"
#include "loyalty_price.h"


static loyalty_tierset_t  tiers = {
    {
        { "basic",   5, "", 0, 0, 0 },
        { "vip",     3, "", 0, 1, 500 },
        { "ka",      2, "", 0, 2, 1000 },
        { "partner", 7, "", 0, 3, 4600 },
        { "vip2",    4, "", 0, 1, 600 }
    },
    5
};


static void
make_price(int64_t retail, const loyalty_price_override_t *ov, size_t n,
    uint8_t *buf, size_t *len, loyalty_price_t *p)
{
    loyalty_price_t  in;

    memset(&in, 0, sizeof(in));
    in.retail = retail;
    in.noverrides = (uint8_t) n;

    *len = loyalty_price_encode(&in, ov, buf);

    if (loyalty_price_decode(buf, *len, p) != 0) {
        diag("encoded price does not decode");
    }
}


int
main(void)
{
    int                       clamped;
    char                      err[LOYALTY_ERRLEN];
    size_t                    len, i;
    uint8_t                   buf[LOYALTY_PRICE_REC_MAX
                                  + LOYALTY_PRICE_ENTRY];
    loyalty_price_t           p;
    loyalty_price_override_t  ov[LOYALTY_PRICE_OVERRIDES], got;

    static const loyalty_price_override_t  sofa[] = {
        { "vip", 3, 25800 }, { "vip2", 4, 25800 }, { "ka", 2, 25800 },
        { "partner", 7, 11800 }
    };

    plan(33);

    /* the domain's sofa: 298 retail, 258 for members, 118 for partners */
    make_price(29800, sofa, nelts(sofa), buf, &len, &p);
    is_int(len, 16 + 4 * 48, "record length 16 + 48 N");
    is_int(loyalty_price_override(&p, "ka", 2), 25800, "override found");
    is_int(loyalty_price_override(&p, "gold", 4), -1, "no override: -1");
    loyalty_price_override_at(&p, 3, &got);
    ok(got.tier_len == 7 && memcmp(got.tier, "partner", 7) == 0
       && got.price == 11800, "override_at");
    is_int(loyalty_price_raw(&p, &tiers.tiers[0]), 29800,
           "no override, no discount: retail");
    is_int(loyalty_price_raw(&p, &tiers.tiers[3]), 11800, "partner override");
    ok(loyalty_price_check(&p, &tiers, err, sizeof(err)) == 0,
       "the sofa keeps the guard");

    /* discounts rounded half up: 10 * 0.95 = 9.5 -> 10, 10 * 0.54 = 5.4 */
    make_price(10, NULL, 0, buf, &len, &p);
    is_int(loyalty_price_raw(&p, &tiers.tiers[1]), 10, "9.5 rounds to 10");
    is_int(loyalty_price_raw(&p, &tiers.tiers[2]), 9, "9.0 stays 9");
    is_int(loyalty_price_raw(&p, &tiers.tiers[3]), 5, "5.4 rounds to 5");
    make_price(999, NULL, 0, buf, &len, &p);
    is_int(loyalty_price_raw(&p, &tiers.tiers[1]), 949, "949.05 -> 949");
    is_int(loyalty_price_raw(&p, &tiers.tiers[3]), 539, "539.46 -> 539");
    make_price(LOYALTY_PRICE_MAX, NULL, 0, buf, &len, &p);
    is_int(loyalty_price_raw(&p, &tiers.tiers[3]), 540000000000000LL,
           "the largest retail does not overflow");

    /* the guard's check names the tiers */
    ov[0] = (loyalty_price_override_t) { "vip", 3, 80 };
    ov[1] = (loyalty_price_override_t) { "ka", 2, 85 };
    make_price(100, ov, 2, buf, &len, &p);
    ok(loyalty_price_check(&p, &tiers, err, sizeof(err)) != 0,
       "ka above vip breaks the guard");
    has_str(err, "tier \"ka\" (rank 2) price 85 is above tier \"vip\" "
            "(rank 1) price 80", "and says so");

    ov[0] = (loyalty_price_override_t) { "vip", 3, 101 };
    make_price(100, ov, 1, buf, &len, &p);
    ok(loyalty_price_check(&p, &tiers, err, sizeof(err)) != 0,
       "a tier above retail breaks the guard");
    has_str(err, "tier \"vip\" price 101 is above retail 100", "and says so");

    /* equal ranks do not bound each other */
    ov[0] = (loyalty_price_override_t) { "vip", 3, 90 };
    ov[1] = (loyalty_price_override_t) { "vip2", 4, 95 };
    ov[2] = (loyalty_price_override_t) { "ka", 2, 90 };
    ov[3] = (loyalty_price_override_t) { "partner", 7, 50 };
    make_price(100, ov, 4, buf, &len, &p);
    ok(loyalty_price_check(&p, &tiers, err, sizeof(err)) == 0,
       "tiers of one rank may differ");

    /* the clamp: at most retail and every lower tier's price */
    ov[0] = (loyalty_price_override_t) { "vip", 3, 900 };
    ov[1] = (loyalty_price_override_t) { "ka", 2, 950 };
    ov[2] = (loyalty_price_override_t) { "partner", 7, 1200 };
    make_price(1000, ov, 3, buf, &len, &p);
    is_int(loyalty_price_guard(&p, &tiers, 2, 950, &clamped), 900,
           "ka clamped to vip's price");
    ok(clamped, "and told so");
    is_int(loyalty_price_guard(&p, &tiers, 3, 1200, &clamped), 900,
           "partner clamped below retail and every lower tier");
    is_int(loyalty_price_guard(&p, &tiers, 1, 900, &clamped), 900,
           "vip unchanged");
    ok(!clamped, "and not told so");
    is_int(loyalty_price_guard(&p, &tiers, 0, 1500, &clamped), 1000,
           "the lowest tier is bounded by retail");

    /* decode refuses what is not a canonical record */
    make_price(29800, sofa, nelts(sofa), buf, &len, &p);
    ok(loyalty_price_decode(buf, len - 1, &p) != 0, "short record");
    buf[len] = 0;
    ok(loyalty_price_decode(buf, len + 1, &p) != 0, "long record");
    buf[0] = 2;
    ok(loyalty_price_decode(buf, len, &p) != 0, "version 2");
    buf[0] = 1;
    buf[5] = 1;
    ok(loyalty_price_decode(buf, len, &p) != 0, "reserved byte set");
    buf[5] = 0;
    buf[2] = 'c';
    buf[3] = 'n';
    buf[4] = 'y';
    ok(loyalty_price_decode(buf, len, &p) != 0, "lowercase currency");
    memcpy(buf + 2, "CNY", 3);
    ok(loyalty_price_decode(buf, len, &p) == 0
       && memcmp(p.currency, "CNY", 3) == 0, "currency CNY");
    buf[16 + 48 + 8] = 0;
    ok(loyalty_price_decode(buf, len, &p) != 0, "empty tier name");
    buf[16 + 48 + 8] = 4;

    for (i = 0; i < nelts(sofa); i++) {
        ov[i] = sofa[i];
    }
    ov[1] = sofa[0];
    p.retail = 29800;
    p.noverrides = 2;
    len = loyalty_price_encode(&p, ov, buf);
    ok(loyalty_price_decode(buf, len, &p) != 0, "one tier twice");

    memset(buf, 0, sizeof(buf));
    buf[0] = LOYALTY_PRICE_VERSION;
    buf[1] = LOYALTY_PRICE_OVERRIDES + 1;
    ok(loyalty_price_decode(buf, sizeof(buf), &p) != 0, "17 overrides");

    return done();
}
