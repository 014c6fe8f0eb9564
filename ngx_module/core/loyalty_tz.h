/*
 * nginx-loyalty core: the shop's time zone, an IANA name read from the
 * system's tzdata (TZif version 2 or later, RFC 8536), so that days,
 * weekdays and hours are the shop's whatever the server's TZ says.
 */

#ifndef _LOYALTY_TZ_H_INCLUDED_
#define _LOYALTY_TZ_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


#define LOYALTY_TZ_DIR        "/usr/share/zoneinfo"
#define LOYALTY_TZ_NAME_MAX   64
/* transitions kept; a "fat" zone has a few hundred up to 2037 */
#define LOYALTY_TZ_TRANS_MAX  2048
#define LOYALTY_TZ_TYPES_MAX  256


/* a day of a POSIX TZ rule: Jn, n or Mm.w.d, and its time of day */
typedef struct {
    char                kind;        /* 'J', 'n' or 'M' */
    int                 day;         /* Jn, n */
    int                 month;       /* Mm.w.d */
    int                 week;
    int                 wday;
    int32_t             time;        /* seconds after local midnight */
} loyalty_tz_rule_t;


/*
 * A zone: its transitions, and the TZ string of its footer for the times
 * after the last one (a "slim" zone has no transitions after 2007 for New
 * York, only the rule).
 */
typedef struct {
    char                name[LOYALTY_TZ_NAME_MAX + 1];
    size_t              ntrans;
    int64_t             trans[LOYALTY_TZ_TRANS_MAX];
    uint8_t             type[LOYALTY_TZ_TRANS_MAX];
    int32_t             utoff[LOYALTY_TZ_TYPES_MAX];

    unsigned            has_rule:1;
    unsigned            has_dst:1;
    int32_t             std_off;     /* east of UTC, seconds */
    int32_t             dst_off;
    loyalty_tz_rule_t   start;       /* of summer time */
    loyalty_tz_rule_t   end;
} loyalty_tz_t;


/*
 * Loads the zone NAME from dir (NULL: LOYALTY_TZ_DIR): 0, or -1 with err
 * saying why ("unknown time zone", "not TZif version 2 or later", ...).
 * A NAME is letters, digits, "_", "+", "-" and "/" parts, never "..".
 */
int loyalty_tz_load(loyalty_tz_t *tz, const char *dir, const char *name,
    char *err, size_t errlen);

/* seconds east of UTC at t in the zone; 0 for tz NULL (UTC) */
int32_t loyalty_tz_offset(const loyalty_tz_t *tz, int64_t t);

/* the shop's day of t: days since 1970-01-01 of its local date */
int64_t loyalty_tz_day(const loyalty_tz_t *tz, int64_t t);

/*
 * The time t at which the shop's clock reads local (seconds since
 * 1970-01-01 of the local calendar); in an hour that repeats or is
 * skipped, one of its two readings.
 */
int64_t loyalty_tz_utc(const loyalty_tz_t *tz, int64_t local);


#endif /* _LOYALTY_TZ_H_INCLUDED_ */
