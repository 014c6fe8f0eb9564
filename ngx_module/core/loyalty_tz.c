/*
 * nginx-loyalty core: a small reader of the system's tzdata, TZif
 * version 2 or later (RFC 8536), for the shop's time zone.
 *
 * Our own, and not localtime_r() with TZ set: nginx's workers and
 * loyaltyctl share one process-wide TZ with everything else in them (the
 * error log's times, OpenSSL), and a shop's zone is configuration, not
 * the environment.  The file is read once, at configuration: the 64-bit
 * transitions and their offsets, and the footer's POSIX TZ string for
 * the times after the last transition.  An offset is then a binary
 * search, with no system call.  Leap seconds are not counted ("right/"
 * zones are refused by their leap records being skipped: their times are
 * not Unix times).
 */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "loyalty_tz.h"
#include "loyalty_util.h"


#define LOYALTY_TZ_FILE_MAX  (1024 * 1024)
#define LOYALTY_TZ_HEADER    44


static int loyalty_tz_name_ok(const char *name);
static int loyalty_tz_read(const char *path, uint8_t **data, size_t *len);
static int loyalty_tz_parse(loyalty_tz_t *tz, const uint8_t *p, size_t len,
    const char **why);
static void loyalty_tz_counts(const uint8_t *p, size_t n[6]);
static int loyalty_tz_data(loyalty_tz_t *tz, const uint8_t *p,
    const uint8_t *end, const size_t n[6], const char **why);
static int loyalty_tz_footer(loyalty_tz_t *tz, const char *s, size_t len);
static const char *loyalty_tz_abbr(const char *s, const char *end);
static const char *loyalty_tz_offset_parse(const char *s, const char *end,
    int32_t *secs);
static const char *loyalty_tz_rule_parse(const char *s, const char *end,
    loyalty_tz_rule_t *r);
static int64_t loyalty_tz_rule_day(const loyalty_tz_rule_t *r, int64_t y);
static int32_t loyalty_tz_rule_offset(const loyalty_tz_t *tz, int64_t t);


int
loyalty_tz_load(loyalty_tz_t *tz, const char *dir, const char *name,
    char *err, size_t errlen)
{
    int          rc;
    char         path[512];
    size_t       len;
    uint8_t     *data;
    const char  *why;

    memset(tz, 0, sizeof(loyalty_tz_t));
    data = NULL;
    len = 0;

    if (!loyalty_tz_name_ok(name)) {
        snprintf(err, errlen, "invalid time zone \"%.80s\": an IANA name "
                 "such as Asia/Shanghai or America/New_York", name);
        return -1;
    }

    snprintf(path, sizeof(path), "%s/%s", dir ? dir : LOYALTY_TZ_DIR, name);

    rc = loyalty_tz_read(path, &data, &len);
    if (rc != 0) {
        snprintf(err, errlen, "unknown time zone \"%s\": %s \"%s\" (the "
                 "system's tzdata)", name,
                 rc == ENOENT ? "no file" : strerror(rc), path);
        return -1;
    }

    why = NULL;
    rc = loyalty_tz_parse(tz, data, len, &why);
    free(data);

    if (rc != 0) {
        snprintf(err, errlen, "time zone \"%s\": \"%s\" %s", name, path,
                 why);
        return -1;
    }

    memcpy(tz->name, name, strlen(name) + 1);

    return 0;
}


/* parts of [A-Za-z0-9_+-], joined by "/", none "." or "..": no escape */
static int
loyalty_tz_name_ok(const char *name)
{
    size_t       len, part;
    const char  *p;

    len = strlen(name);

    if (len == 0 || len > LOYALTY_TZ_NAME_MAX) {
        return 0;
    }

    part = 0;

    for (p = name; ; p++) {
        if (*p == '/' || *p == '\0') {
            if (part == 0 || (part <= 2 && p[-1] == '.')) {
                return 0;
            }

            if (*p == '\0') {
                return 1;
            }

            part = 0;
            continue;
        }

        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z')
              || (*p >= '0' && *p <= '9') || *p == '_' || *p == '+'
              || *p == '-' || *p == '.'))
        {
            return 0;
        }

        part++;
    }
}


/* a regular file, whole: 0, or an errno */
static int
loyalty_tz_read(const char *path, uint8_t **data, size_t *len)
{
    int          fd, rc;
    ssize_t      n;
    size_t       got;
    struct stat  sb;

    fd = open(path, O_RDONLY|O_CLOEXEC);
    if (fd == -1) {
        return errno;
    }

    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)
        || sb.st_size > LOYALTY_TZ_FILE_MAX)
    {
        rc = S_ISDIR(sb.st_mode) ? EISDIR : EINVAL;
        close(fd);
        return rc;
    }

    *data = malloc((size_t) sb.st_size + 1);
    if (*data == NULL) {
        close(fd);
        return ENOMEM;
    }

    for (got = 0; got < (size_t) sb.st_size; got += (size_t) n) {
        n = read(fd, *data + got, (size_t) sb.st_size - got);

        if (n <= 0) {
            rc = n == 0 ? EIO : errno;
            free(*data);
            close(fd);
            return rc;
        }
    }

    close(fd);
    *len = got;

    return 0;
}


/* the version 2 data block and its footer */
static int
loyalty_tz_parse(loyalty_tz_t *tz, const uint8_t *p, size_t len,
    const char **why)
{
    size_t          n[6];
    const uint8_t  *end;

    end = p + len;
    *why = "is not a TZif file";

    if (len < LOYALTY_TZ_HEADER || memcmp(p, "TZif", 4) != 0) {
        return -1;
    }

    if (p[4] < '2') {
        *why = "is not TZif version 2 or later";
        return -1;
    }

    /* the version 1 block, 32-bit times, skipped */
    loyalty_tz_counts(p, n);
    p += LOYALTY_TZ_HEADER;

    if (n[3] * 5 + n[4] * 6 + n[5] + n[2] * 8 + n[1] + n[0]
        > (size_t) (end - p))
    {
        return -1;
    }

    p += n[3] * 5 + n[4] * 6 + n[5] + n[2] * 8 + n[1] + n[0];

    if ((size_t) (end - p) < LOYALTY_TZ_HEADER || memcmp(p, "TZif", 4) != 0)
    {
        return -1;
    }

    loyalty_tz_counts(p, n);
    p += LOYALTY_TZ_HEADER;

    return loyalty_tz_data(tz, p, end, n, why);
}


/* isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt of a header */
static void
loyalty_tz_counts(const uint8_t *p, size_t n[6])
{
    int  i;

    for (i = 0; i < 6; i++) {
        n[i] = loyalty_be32_get(p + 20 + i * 4);
    }
}


/* the 64-bit block: transitions, their types, offsets; then the footer */
static int
loyalty_tz_data(loyalty_tz_t *tz, const uint8_t *p, const uint8_t *end,
    const size_t n[6], const char **why)
{
    size_t          i, timecnt, typecnt;
    const uint8_t  *nl;

    timecnt = n[3];
    typecnt = n[4];

    if (timecnt > LOYALTY_TZ_TRANS_MAX || typecnt == 0
        || typecnt > LOYALTY_TZ_TYPES_MAX
        || timecnt * 9 + typecnt * 6 + n[5] + n[2] * 12 + n[1] + n[0]
           > (size_t) (end - p))
    {
        *why = "has too many transitions, or is cut short";
        return -1;
    }

    if (n[2]) {
        *why = "counts leap seconds (a \"right/\" zone): its times are not "
               "Unix times";
        return -1;
    }

    tz->ntrans = timecnt;

    for (i = 0; i < timecnt; i++) {
        tz->trans[i] = (int64_t) loyalty_be_get(p + i * 8);

        if (i && tz->trans[i] <= tz->trans[i - 1]) {
            *why = "has transitions out of order";
            return -1;
        }

        if (p[timecnt * 8 + i] >= typecnt) {
            *why = "has a transition to an unknown type";
            return -1;
        }

        tz->type[i] = p[timecnt * 8 + i];
    }

    p += timecnt * 9;

    for (i = 0; i < typecnt; i++) {
        tz->utoff[i] = (int32_t) loyalty_be32_get(p + i * 6);

        if (tz->utoff[i] <= -89999 || tz->utoff[i] >= 93600) {
            *why = "has an offset out of range";
            return -1;
        }
    }

    p += typecnt * 6 + n[5] + n[1] + n[0];

    /* the footer: "\nTZ-string\n", empty if none */
    if (p < end && *p == '\n') {
        nl = memchr(p + 1, '\n', (size_t) (end - p - 1));

        if (nl && nl > p + 1
            && loyalty_tz_footer(tz, (const char *) p + 1,
                                 (size_t) (nl - p - 1))
               != 0)
        {
            *why = "has a footer that is not a POSIX TZ string";
            return -1;
        }
    }

    return 0;
}


/* std offset [dst [offset] [,start[/time],end[/time]]] */
static int
loyalty_tz_footer(loyalty_tz_t *tz, const char *s, size_t len)
{
    int32_t      off;
    const char  *end;

    end = s + len;
    off = 0;

    s = loyalty_tz_abbr(s, end);
    s = s ? loyalty_tz_offset_parse(s, end, &off) : NULL;
    if (s == NULL) {
        return -1;
    }

    /* POSIX counts west of UTC */
    tz->std_off = -off;
    tz->has_rule = 1;

    if (s == end) {
        return 0;
    }

    s = loyalty_tz_abbr(s, end);
    if (s == NULL) {
        return -1;
    }

    tz->has_dst = 1;
    tz->dst_off = tz->std_off + 3600;

    if (s < end && *s != ',') {
        s = loyalty_tz_offset_parse(s, end, &off);
        if (s == NULL) {
            return -1;
        }

        tz->dst_off = -off;
    }

    if (s == end || *s != ',') {
        /* no rule: the US rule is POSIX's default; refuse the guess */
        return -1;
    }

    s = loyalty_tz_rule_parse(s + 1, end, &tz->start);
    if (s == NULL || s == end || *s != ',') {
        return -1;
    }

    s = loyalty_tz_rule_parse(s + 1, end, &tz->end);

    return s == end ? 0 : -1;
}


/* past a zone's abbreviation, <+08> or letters: NULL if unterminated */
static const char *
loyalty_tz_abbr(const char *s, const char *end)
{
    if (s < end && *s == '<') {
        s = memchr(s, '>', (size_t) (end - s));
        return s ? s + 1 : NULL;
    }

    while (s < end && ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z')))
    {
        s++;
    }

    return s;
}


/* [+-]hh[:mm[:ss]] in seconds */
static const char *
loyalty_tz_offset_parse(const char *s, const char *end, int32_t *secs)
{
    int      sign, part, n;
    int32_t  v;

    sign = 1;

    if (s < end && (*s == '+' || *s == '-')) {
        sign = (*s == '-') ? -1 : 1;
        s++;
    }

    v = 0;

    for (part = 0; part < 3; part++) {
        if (part && (s == end || *s != ':')) {
            break;
        }

        if (part) {
            s++;
        }

        if (s == end || *s < '0' || *s > '9') {
            return NULL;
        }

        for (n = 0; s < end && *s >= '0' && *s <= '9' && n < 1000; s++) {
            n = n * 10 + (*s - '0');
        }

        if (n > (part ? 59 : 167)) {
            return NULL;
        }

        v += n * (part == 0 ? 3600 : part == 1 ? 60 : 1);
    }

    *secs = sign * v;

    return s;
}


/* Jn, n or Mm.w.d, then [/time] */
static const char *
loyalty_tz_rule_parse(const char *s, const char *end, loyalty_tz_rule_t *r)
{
    int  *f[3], i, n;

    memset(r, 0, sizeof(loyalty_tz_rule_t));
    r->time = 7200;

    if (s < end && (*s == 'J' || *s == 'M')) {
        r->kind = *s++;

    } else {
        r->kind = 'n';
    }

    f[0] = r->kind == 'M' ? &r->month : &r->day;
    f[1] = &r->week;
    f[2] = &r->wday;

    for (i = 0; i < (r->kind == 'M' ? 3 : 1); i++) {
        if (i && (s == end || *s++ != '.')) {
            return NULL;
        }

        if (s == end || *s < '0' || *s > '9') {
            return NULL;
        }

        for (n = 0; s < end && *s >= '0' && *s <= '9' && n < 1000; s++) {
            n = n * 10 + (*s - '0');
        }

        *f[i] = n;
    }

    if ((r->kind == 'M' && (r->month < 1 || r->month > 12 || r->week < 1
                            || r->week > 5 || r->wday > 6))
        || (r->kind == 'J' && (r->day < 1 || r->day > 365))
        || (r->kind == 'n' && r->day > 365))
    {
        return NULL;
    }

    if (s < end && *s == '/') {
        s = loyalty_tz_offset_parse(s + 1, end, &r->time);
    }

    return s;
}


int32_t
loyalty_tz_offset(const loyalty_tz_t *tz, int64_t t)
{
    size_t  lo, hi, mid;

    if (tz == NULL) {
        return 0;
    }

    if (tz->ntrans == 0 || t >= tz->trans[tz->ntrans - 1]) {
        if (tz->has_rule) {
            return loyalty_tz_rule_offset(tz, t);
        }

        return tz->utoff[tz->ntrans ? tz->type[tz->ntrans - 1] : 0];
    }

    /* before the first transition: the first type (RFC 8536, 3.2) */
    if (t < tz->trans[0]) {
        return tz->utoff[0];
    }

    /* the last transition at or before t */
    lo = 0;
    hi = tz->ntrans - 1;

    while (lo < hi) {
        mid = lo + (hi - lo + 1) / 2;

        if (tz->trans[mid] <= t) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }

    return tz->utoff[tz->type[lo]];
}


/* the footer's rule at t */
static int32_t
loyalty_tz_rule_offset(const loyalty_tz_t *tz, int64_t t)
{
    int      m, d;
    int64_t  y, start, end;

    if (!tz->has_dst) {
        return tz->std_off;
    }

    loyalty_civil(t + tz->std_off, &y, &m, &d);

    /* the rule's times are local: standard time to start, summer to end */
    start = loyalty_tz_rule_day(&tz->start, y) * LOYALTY_DAY + tz->start.time
            - tz->std_off;
    end = loyalty_tz_rule_day(&tz->end, y) * LOYALTY_DAY + tz->end.time
          - tz->dst_off;

    if (start < end) {
        return (t >= start && t < end) ? tz->dst_off : tz->std_off;
    }

    /* the southern hemisphere: summer spans the new year */
    return (t >= end && t < start) ? tz->std_off : tz->dst_off;
}


/* the day (since 1970-01-01) a rule names in year y */
static int64_t
loyalty_tz_rule_day(const loyalty_tz_rule_t *r, int64_t y)
{
    int      last, wd;
    int64_t  first, day;

    if (r->kind == 'J') {
        /* 1..365, February 29 never counted */
        day = loyalty_days_from_civil(y, 1, 1) + r->day - 1;

        if (r->day >= 60 && loyalty_month_days((int) y, 2) == 29) {
            day++;
        }

        return day;
    }

    if (r->kind == 'n') {
        return loyalty_days_from_civil(y, 1, 1) + r->day;
    }

    /* the w-th weekday d of month m, w = 5 the last; 1970-01-01: Thu */
    first = loyalty_days_from_civil(y, r->month, 1);
    wd = (int) (((first + 4) % 7 + 7) % 7);
    day = first + (r->wday - wd + 7) % 7 + (int64_t) (r->week - 1) * 7;
    last = loyalty_month_days((int) y, r->month);

    while (day >= first + last) {
        day -= 7;
    }

    return day;
}


int64_t
loyalty_tz_day(const loyalty_tz_t *tz, int64_t t)
{
    return loyalty_day(t + loyalty_tz_offset(tz, t));
}


int64_t
loyalty_tz_utc(const loyalty_tz_t *tz, int64_t local)
{
    int32_t  o1, o2;

    /* the offset an hour either side decides, then it is checked */
    o1 = loyalty_tz_offset(tz, local - loyalty_tz_offset(tz, local));
    o2 = loyalty_tz_offset(tz, local - o1);

    return local - (o1 > o2 ? o1 : o2);
}
