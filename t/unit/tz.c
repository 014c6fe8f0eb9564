/*
 * Unit tests of loyalty_tz.c: the system's tzdata read by our own reader,
 * against offsets Python's zoneinfo gives for the same files: a zone
 * without summer time (Asia/Shanghai), DST transitions on both sides of
 * the second (America/New_York), the footer's rule after the last
 * transition (2040, 2045), the southern hemisphere (Australia/Sydney),
 * the shop's day, and names that are refused.
 */

#include <stdio.h>
#include <string.h>

#include "loyalty_tz.h"
#include "tap.h"


typedef struct {
    const char  *zone;
    int64_t      t;
    int32_t      before;        /* the offset at t - 1 */
    int32_t      at;            /* at t */
} tz_case_t;


static const tz_case_t  cases[] = {
    /* Sunday 2026-12-06 16:48 UTC: Monday 00:48 in Beijing */
    { "Asia/Shanghai", 1796575680, 28800, 28800 },
    { "Asia/Shanghai", 1784073600, 28800, 28800 },
    /* New York: 2026-03-08 02:00 EST, 2026-11-01 02:00 EDT */
    { "America/New_York", 1772953200, -18000, -14400 },
    { "America/New_York", 1793512800, -14400, -18000 },
    { "America/New_York", 1768435200, -18000, -18000 },
    { "America/New_York", 1784073600, -14400, -14400 },
    /* after 2037: the footer's rule, M3.2.0 and M11.1.0 */
    { "America/New_York", 2215062000, -18000, -14400 },
    { "America/New_York", 2235621600, -14400, -18000 },
    { "America/New_York", 2368051200, -18000, -18000 },
    { "America/New_York", 2383689600, -14400, -14400 },
    /* before the first transition */
    { "America/New_York", -2208988800, -18000, -18000 },
    /* summer across the new year */
    { "Australia/Sydney", 1768435200, 39600, 39600 },
    { "Australia/Sydney", 1784073600, 36000, 36000 },
    { "Australia/Sydney", 2368051200, 39600, 39600 },
    { "Australia/Sydney", 2383689600, 36000, 36000 },
    { "Europe/London", 1784073600, 3600, 3600 },
    { "UTC", 1796575680, 0, 0 },
};


int
main(void)
{
    char          err[512], name[128];
    size_t        i, n;
    int64_t       sunday, local;
    loyalty_tz_t  tz;

    static const char  *bad[] = {
        "Mars/Olympus", "../../etc/passwd", "Asia/../../etc/passwd", "",
        "/etc/localtime", "Asia", "Asia/", "Asia//Shanghai", "Asia/Sh anghai",
        "posixrules\n", "right/../Asia/Shanghai",
    };

    n = sizeof(cases) / sizeof(cases[0]);
    plan((int) (n * 2 + nelts(bad)) + 8);

    for (i = 0; i < n; i++) {
        if (loyalty_tz_load(&tz, NULL, cases[i].zone, err, sizeof(err))
            != 0)
        {
            ok(0, "%s: %s", cases[i].zone, err);
            ok(0, "%s", cases[i].zone);
            continue;
        }

        snprintf(name, sizeof(name), "%s at %lld - 1", cases[i].zone,
                 (long long) cases[i].t);
        is_int(loyalty_tz_offset(&tz, cases[i].t - 1), cases[i].before,
               "%s", name);
        snprintf(name, sizeof(name), "%s at %lld", cases[i].zone,
                 (long long) cases[i].t);
        is_int(loyalty_tz_offset(&tz, cases[i].t), cases[i].at, "%s", name);
    }

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(name, sizeof(name), "refused: \"%s\"", bad[i]);
        ok(loyalty_tz_load(&tz, NULL, bad[i], err, sizeof(err)) == -1,
           "%s", name);
    }

    ok(loyalty_tz_load(&tz, NULL, "Mars/Olympus", err, sizeof(err)) == -1
       && strstr(err, "unknown time zone \"Mars/Olympus\"") != NULL,
       "an unknown zone says so");

    /* the repro: Sunday 16:48 UTC is Monday in Beijing, Sunday in UTC */
    sunday = 1796575680;
    ok(loyalty_tz_load(&tz, NULL, "Asia/Shanghai", err, sizeof(err)) == 0,
       "Asia/Shanghai loads");
    is_int((int) loyalty_tz_day(NULL, sunday), 20793, "the UTC day");
    is_int((int) loyalty_tz_day(&tz, sunday), 20794,
           "the shop's day: the next one");
    is_int((int) ((loyalty_tz_day(&tz, sunday) + 3) % 7 + 1), 1,
           "a Monday (ISO 1)");

    /* local midnight back to UTC, on a DST day too */
    local = 20794 * INT64_C(86400);
    ok(loyalty_tz_utc(&tz, local) == local - 28800,
       "Beijing's midnight is 16:00 UTC the day before");
    ok(loyalty_tz_load(&tz, NULL, "America/New_York", err, sizeof(err)) == 0,
       "America/New_York loads");
    /* 2026-11-01 12:00 local (EST after the change) is 17:00 UTC */
    local = INT64_C(1793534400) - 18000;
    ok(loyalty_tz_utc(&tz, local) == INT64_C(1793534400),
       "noon on the day summer time ends, EST");

    return done();
}
