/*
 * nginx-loyalty: libFuzzer harness for tier prices and the privilege
 * guard: loyalty_price_raw(), loyalty_price_guard(), loyalty_price_check().
 *
 * The input describes a set of tiers and a price record within the
 * bounds the decoders allow (prices 0-10^15, discounts 0-10000 bp), so
 * every value here is one a store can hold:
 *
 *   0       number of tiers, mod 9
 *   1-8     retail, u64 little-endian mod (10^15 + 1)
 *   9-10    a proposed price for the guard, u16 scaled to retail
 *   then per tier, 12 bytes: rank (i8, so that ranks tie), discount
 *   (u16 mod 10001), override flag (bit 0), override price (u64 mod
 *   (10^15 + 1)).  Missing bytes read as zero.
 *
 * Invariants, computed here in 128 bits:
 *   - a tier's price is its override, else retail less its discount
 *     rounded half up; never negative, never above 10^15;
 *   - loyalty_price_check() passes exactly when no tier's price is above
 *     retail or above the price of any tier with a lower rank;
 *   - the guard returns the proposed price capped at retail and at the
 *     price of every lower-ranked tier, and says when it capped;
 *   - a record that passes the check is never clamped at its own prices.
 */

#include <string.h>

#include "loyalty_price.h"
#include "fuzz.h"


#define FUZZ_TIERS  8
#define FUZZ_TIER   12


typedef struct {
    const uint8_t  *data;
    size_t          size;
    size_t          pos;
} fuzz_in_t;


static uint64_t
fuzz_take(fuzz_in_t *in, size_t n)
{
    size_t    i;
    uint64_t  v;

    v = 0;

    for (i = 0; i < n; i++, in->pos++) {
        if (in->pos < in->size) {
            v |= (uint64_t) in->data[in->pos] << (8 * i);
        }
    }

    return v;
}


static __int128
fuzz_raw(const loyalty_price_t *p, const loyalty_tier_ref_t *t,
    const int *has, const int64_t *ovp, size_t i)
{
    if (has[i]) {
        return ovp[i];
    }

    return ((__int128) p->retail * (10000 - t->discount_bp) + 5000) / 10000;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                       has[FUZZ_TIERS], clamped, ok;
    char                      err[LOYALTY_ERRLEN];
    size_t                    i, j, n, nov, len;
    int64_t                   got, ovp[FUZZ_TIERS], proposed;
    uint8_t                   rec[LOYALTY_PRICE_REC_MAX];
    __int128                  raw[FUZZ_TIERS], bound;
    fuzz_in_t                 in;
    loyalty_price_t           p, enc;
    loyalty_tierset_t         ts;
    loyalty_price_override_t  ov[LOYALTY_PRICE_OVERRIDES];

    static const char  *names[FUZZ_TIERS] = {
        "basic", "vip", "ka", "partner", "t4", "t5", "t6", "t7"
    };

    in.data = data;
    in.size = size;
    in.pos = 0;

    n = fuzz_take(&in, 1) % (FUZZ_TIERS + 1);

    memset(&enc, 0, sizeof(enc));
    enc.retail = (int64_t) (fuzz_take(&in, 8)
                            % (uint64_t) (LOYALTY_PRICE_MAX + 1));

    proposed = (int64_t) ((__int128) enc.retail * 2
                          * (int64_t) fuzz_take(&in, 2) / 65535);

    memset(&ts, 0, sizeof(ts));
    nov = 0;

    for (i = 0; i < n; i++) {
        ts.tiers[i].name = names[i];
        ts.tiers[i].name_len = strlen(names[i]);
        ts.tiers[i].label = "";
        ts.tiers[i].rank = (int8_t) fuzz_take(&in, 1);
        ts.tiers[i].discount_bp = (uint16_t) (fuzz_take(&in, 2) % 10001);

        has[i] = (int) (fuzz_take(&in, 1) & 1);
        ovp[i] = (int64_t) (fuzz_take(&in, 8)
                            % (uint64_t) (LOYALTY_PRICE_MAX + 1));

        if (has[i]) {
            ov[nov].tier = names[i];
            ov[nov].tier_len = strlen(names[i]);
            ov[nov].price = ovp[i];
            nov++;
        }
    }

    ts.n = n;
    enc.noverrides = (uint8_t) nov;

    /* through the record, as the module reads it from the store */
    len = loyalty_price_encode(&enc, ov, rec);
    FUZZ_CHECK(loyalty_price_decode(rec, len, &p) == 0);

    for (i = 0; i < n; i++) {
        raw[i] = fuzz_raw(&p, &ts.tiers[i], has, ovp, i);
        FUZZ_CHECK(raw[i] >= 0 && raw[i] <= LOYALTY_PRICE_MAX);

        got = loyalty_price_raw(&p, &ts.tiers[i]);
        FUZZ_CHECK(got == raw[i]);
    }

    ok = 1;
    for (i = 0; i < n; i++) {
        if (raw[i] > p.retail) {
            ok = 0;
        }

        for (j = 0; j < n; j++) {
            if (ts.tiers[j].rank < ts.tiers[i].rank && raw[i] > raw[j]) {
                ok = 0;
            }
        }
    }

    err[0] = '\0';
    FUZZ_CHECK(loyalty_price_check(&p, &ts, err, sizeof(err))
               == (ok ? 0 : -1));
    FUZZ_CHECK(ok || err[0] != '\0');

    for (i = 0; i < n; i++) {
        bound = p.retail;
        for (j = 0; j < n; j++) {
            if (ts.tiers[j].rank < ts.tiers[i].rank && raw[j] < bound) {
                bound = raw[j];
            }
        }

        clamped = -1;
        got = loyalty_price_guard(&p, &ts, i, proposed, &clamped);
        FUZZ_CHECK(clamped == (proposed > bound));
        FUZZ_CHECK(got == (clamped ? bound : proposed));

        clamped = -1;
        got = loyalty_price_guard(&p, &ts, i, (int64_t) raw[i], &clamped);
        FUZZ_CHECK(!ok || (clamped == 0 && got == raw[i]));
    }

    return 0;
}
