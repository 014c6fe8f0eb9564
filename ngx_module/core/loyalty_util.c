/*
 * nginx-loyalty: small parsers and encoders shared by the module and the
 * CLI.
 */

#include <stdio.h>
#include <string.h>

#include "loyalty_util.h"


/* 1: [A-Za-z0-9_-], 2: "." */
const uint8_t  loyalty_name_chars[256] = {
    ['-'] = 1, ['.'] = 2, ['_'] = 1,
    ['0'] = 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    ['A'] = 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
            1, 1, 1, 1, 1, 1,
    ['a'] = 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
            1, 1, 1, 1, 1, 1
};


int
loyalty_valid_chars(const char *s, size_t len, size_t max, int dot)
{
    size_t  i;

    if (len == 0 || len > max) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (!(loyalty_name_chars[(unsigned char) s[i]] & (dot ? 3 : 1))) {
            return 0;
        }
    }

    return 1;
}


/* 16 bytes at a time where the compiler has vectors for it */
typedef uint64_t  loyalty_u64x2_t __attribute__((vector_size(16)));


int
loyalty_ct_equal(const void *a, const void *b, size_t n)
{
    size_t            i;
    uint64_t          x, y, d;
    const uint8_t    *p, *q;
    loyalty_u64x2_t   vx, vy, vd;

    p = a;
    q = b;
    vd = (loyalty_u64x2_t) { 0, 0 };

    for (i = 0; i + 16 <= n; i += 16) {
        memcpy(&vx, p + i, 16);
        memcpy(&vy, q + i, 16);
        vd |= vx ^ vy;
    }

    d = vd[0] | vd[1];

    if (i + 8 <= n) {
        memcpy(&x, p + i, 8);
        memcpy(&y, q + i, 8);
        d |= x ^ y;
        i += 8;
    }

    if (i < n && n >= 8) {
        /* the last, partial word: the last 8 bytes, overlapping */
        memcpy(&x, p + n - 8, 8);
        memcpy(&y, q + n - 8, 8);
        d |= x ^ y;

    } else {
        for ( /* void */ ; i < n; i++) {
            d |= (uint64_t) (p[i] ^ q[i]);
        }
    }

    /* 1 when d is 0, without a branch on d */
    return (int) (((d | (0 - d)) >> 63) ^ 1);
}


/*
 * Two digits a division, written in place from the end: a number on
 * every price and cookie written.
 */
size_t
loyalty_format_u64(uint64_t v, char *buf)
{
    static const char  digits[] =
        "0001020304050607080910111213141516171819"
        "2021222324252627282930313233343536373839"
        "4041424344454647484950515253545556575859"
        "6061626364656667686970717273747576777879"
        "8081828384858687888990919293949596979899";

    char      *t;
    size_t     n;
    uint64_t   i, p;

    /* 20 digits at most: 10^19 is the last power of 10 below 2^64 */
    for (n = 1, p = 10; n < 20 && v >= p; n++, p *= 10) {
        /* void */
    }

    t = buf + n;

    while (v >= 100) {
        i = (v % 100) * 2;
        v /= 100;
        t -= 2;
        t[0] = digits[i];
        t[1] = digits[i + 1];
    }

    if (v >= 10) {
        t[-2] = digits[v * 2];
        t[-1] = digits[v * 2 + 1];

    } else {
        t[-1] = (char) ('0' + v);
    }

    return n;
}


int
loyalty_valid_id(const char *s, size_t len)
{
    return loyalty_valid_chars(s, len, LOYALTY_ID_MAX, 1);
}


/* what a field of [A-Za-z0-9_.-] must be, said in err when not valid */
static int
loyalty_check_chars(int valid, const char *name, int max, const char *also,
    char *err, size_t errlen)
{
    if (valid) {
        return 0;
    }

    snprintf(err, errlen, "\"%s\" must be 1-%d characters of "
             "[A-Za-z0-9_.-]%s", name, max, also);

    return -1;
}


int
loyalty_check_id(const char *name, const char *s, size_t len, char *err,
    size_t errlen)
{
    return loyalty_check_chars(loyalty_valid_id(s, len), name,
                               LOYALTY_ID_MAX, "", err, errlen);
}


int
loyalty_valid_tier_name(const char *s, size_t len)
{
    return loyalty_valid_chars(s, len, LOYALTY_TIER_MAX, 1)
           && !(len == 6 && memcmp(s, "public", 6) == 0);
}


int
loyalty_check_tier_name(const char *name, const char *s, size_t len,
    char *err, size_t errlen)
{
    return loyalty_check_chars(loyalty_valid_tier_name(s, len), name,
                               LOYALTY_TIER_MAX, ", and not \"public\"", err,
                               errlen);
}


int
loyalty_valid_currency(const char *s, size_t len)
{
    return len == 3 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A'
           && s[1] <= 'Z' && s[2] >= 'A' && s[2] <= 'Z';
}


void
loyalty_le_put(uint8_t *p, uint64_t v, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        p[i] = (uint8_t) (v >> (8 * i));
    }
}


uint64_t
loyalty_le_get(const uint8_t *p, size_t n)
{
    size_t    i;
    uint64_t  v;

    v = 0;

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__

    /* the host's order: the bytes as they are */
    (void) i;

    if (n <= sizeof(v)) {
        memcpy(&v, p, n);
        return v;
    }

#endif

    for (i = 0; i < n; i++) {
        v |= (uint64_t) p[i] << (8 * i);
    }

    return v;
}


void
loyalty_le_fields_put(uint8_t *buf, const loyalty_le_field_t *f,
    const void *rec)
{
    uint8_t        u8;
    uint16_t       u16;
    uint32_t       u32;
    uint64_t       v;
    const uint8_t *m;

    for ( /* void */ ; f->width; f++) {
        m = (const uint8_t *) rec + f->member;

        switch (f->size) {
        case 1:
            memcpy(&u8, m, 1);
            v = u8;
            break;
        case 2:
            memcpy(&u16, m, 2);
            v = u16;
            break;
        case 4:
            memcpy(&u32, m, 4);
            v = u32;
            break;
        default:
            memcpy(&v, m, 8);
            break;
        }

        loyalty_le_put(buf + f->off, v, f->width);
    }
}


void
loyalty_le_fields_get(const uint8_t *buf, const loyalty_le_field_t *f,
    void *rec)
{
    uint8_t   u8, *m;
    uint16_t  u16;
    uint32_t  u32;
    uint64_t  v;

    for ( /* void */ ; f->width; f++) {
        m = (uint8_t *) rec + f->member;
        v = loyalty_le_get(buf + f->off, f->width);

        switch (f->size) {
        case 1:
            u8 = (uint8_t) v;
            memcpy(m, &u8, 1);
            break;
        case 2:
            u16 = (uint16_t) v;
            memcpy(m, &u16, 2);
            break;
        case 4:
            u32 = (uint32_t) v;
            memcpy(m, &u32, 4);
            break;
        default:
            memcpy(m, &v, 8);
            break;
        }
    }
}


void
loyalty_be_put(uint8_t *p, uint64_t v)
{
    int  i;

    for (i = 7; i >= 0; i--) {
        p[i] = (uint8_t) v;
        v >>= 8;
    }
}


uint64_t
loyalty_be_get(const uint8_t *p)
{
    int       i;
    uint64_t  v;

    v = 0;
    for (i = 0; i < 8; i++) {
        v = v << 8 | p[i];
    }

    return v;
}


void
loyalty_be32_put(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t) (v >> 24);
    p[1] = (uint8_t) (v >> 16);
    p[2] = (uint8_t) (v >> 8);
    p[3] = (uint8_t) v;
}


uint32_t
loyalty_be32_get(const uint8_t *p)
{
    return ((uint32_t) p[0] << 24) | ((uint32_t) p[1] << 16)
           | ((uint32_t) p[2] << 8) | p[3];
}


int
loyalty_valid_kid(const char *s, size_t len)
{
    return loyalty_valid_chars(s, len, LOYALTY_KID_MAX, 0);
}


int
loyalty_name_index(const char *const *names, size_t n, const char *s,
    size_t len)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        if (strlen(names[i]) == len && memcmp(names[i], s, len) == 0) {
            return (int) i;
        }
    }

    return -1;
}


int
loyalty_name_pick(const char *const *names, size_t n, const char *s,
    size_t len, const char *what, char *err, size_t errlen)
{
    int     k;
    size_t  i, at;

    k = s ? loyalty_name_index(names, n, s, len) : -1;
    if (k >= 0) {
        return k;
    }

    at = (size_t) snprintf(err, errlen, "\"%s\" must be one of", what);

    for (i = 0; i < n && at < errlen; i++) {
        at += (size_t) snprintf(err + at, errlen - at, "%s %s",
                                i ? "," : "", names[i]);
    }

    return -1;
}


int64_t
loyalty_parse_duration(const char *s, size_t len)
{
    int64_t      total, n, unit, last;
    size_t       i;
    int          digits;
    const char  *u;

    static const char     units[] = "yMwdhms";
    static const int64_t  seconds[] = { 365 * LOYALTY_DAY, 30 * LOYALTY_DAY,
                                        7 * LOYALTY_DAY, LOYALTY_DAY, 3600,
                                        60, 1 };

    if (len == 0) {
        return -1;
    }

    total = 0;
    last = INT64_MAX;
    i = 0;

    while (i < len) {
        n = 0;
        digits = 0;

        while (i < len && s[i] >= '0' && s[i] <= '9') {
            if (n > (INT64_MAX - (s[i] - '0')) / 10) {
                return -1;
            }
            n = n * 10 + (s[i++] - '0');
            digits++;
        }

        if (digits == 0) {
            return -1;
        }

        if (i == len) {
            /* a bare number is seconds, but only on its own */
            if (last != INT64_MAX) {
                return -1;
            }
            unit = 1;

        } else {
            u = memchr(units, s[i++], sizeof(units) - 1);
            if (u == NULL) {
                return -1;
            }
            unit = seconds[u - units];
        }

        /* as nginx: units from the largest down, each at most once */
        if (unit >= last) {
            return -1;
        }
        last = unit;

        if (n > (INT64_MAX - total) / unit) {
            return -1;
        }

        total += n * unit;
    }

    return total;
}


int
loyalty_decimal(const char *s, size_t n, int64_t *out)
{
    size_t   i;
    int64_t  v;

    v = 0;

    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }
        v = v * 10 + (s[i] - '0');
    }

    *out = v;
    return 0;
}


/* the few digits of a date or a time */
static int
loyalty_digits(const char *s, size_t n, int *out)
{
    int64_t  v;

    if (loyalty_decimal(s, n, &v) != 0) {
        return -1;
    }

    *out = (int) v;
    return 0;
}


static int
loyalty_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}


int
loyalty_month_days(int y, int m)
{
    static const int  days[] = { 31, 28, 31, 30, 31, 30,
                                 31, 31, 30, 31, 30, 31 };

    return (m == 2 && loyalty_leap(y)) ? 29 : days[m - 1];
}


int64_t
loyalty_days_from_civil(int64_t y, int m, int d)
{
    int64_t  era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

    return era * 146097 + doe - 719468;
}


int64_t
loyalty_day(int64_t t)
{
    int64_t  day;

    day = t / LOYALTY_DAY;

    /* C division truncates: before 1970 a day starts one earlier */
    if (t % LOYALTY_DAY < 0) {
        day--;
    }

    return day;
}


int
loyalty_parse_date(const char *s, size_t len, int *year, int *month,
    int *day)
{
    int  y, m, d;

    if (len == 5) {
        y = -1;

        if (loyalty_digits(s, 2, &m) || s[2] != '-'
            || loyalty_digits(s + 3, 2, &d)
            || !loyalty_valid_birthday((unsigned) m, (unsigned) d))
        {
            return -1;
        }

    } else if (len == 10) {
        if (loyalty_digits(s, 4, &y) || s[4] != '-'
            || loyalty_digits(s + 5, 2, &m) || s[7] != '-'
            || loyalty_digits(s + 8, 2, &d)
            || m < 1 || m > 12 || d < 1 || d > loyalty_month_days(y, m))
        {
            return -1;
        }

    } else {
        return -1;
    }

    *year = y;
    *month = m;
    *day = d;

    return 0;
}


int
loyalty_parse_rfc3339(const char *s, size_t len, int64_t *out)
{
    int     y, mo, d, h, mi, sec, oh, om, sign;
    size_t  i;

    /* YYYY-MM-DDTHH:MM:SS then optional fraction, then Z or +hh:mm */
    if (len < 20
        || loyalty_parse_date(s, 10, &y, &mo, &d) != 0
        || (s[10] != 'T' && s[10] != 't')
        || loyalty_digits(s + 11, 2, &h) || s[13] != ':'
        || loyalty_digits(s + 14, 2, &mi) || s[16] != ':'
        || loyalty_digits(s + 17, 2, &sec))
    {
        return -1;
    }

    if (h > 23 || mi > 59 || sec > 60) {
        return -1;
    }

    i = 19;

    if (s[i] == '.') {
        i++;
        if (i == len || s[i] < '0' || s[i] > '9') {
            return -1;
        }
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            i++;
        }
    }

    if (i == len) {
        return -1;
    }

    if ((s[i] == 'Z' || s[i] == 'z') && i + 1 == len) {
        oh = 0;
        om = 0;
        sign = 1;

    } else if ((s[i] == '+' || s[i] == '-') && i + 6 == len
               && loyalty_digits(s + i + 1, 2, &oh) == 0
               && s[i + 3] == ':'
               && loyalty_digits(s + i + 4, 2, &om) == 0
               && oh <= 23 && om <= 59)
    {
        sign = (s[i] == '+') ? 1 : -1;

    } else {
        return -1;
    }

    /* a leap second is folded into the next second, as POSIX time does */
    *out = loyalty_days_from_civil(y, mo, d) * LOYALTY_DAY
           + h * 3600 + mi * 60 + sec
           - sign * (oh * 3600 + om * 60);

    return (*out < LOYALTY_TIME_MIN || *out > LOYALTY_TIME_MAX) ? -1 : 0;
}


int
loyalty_time_in_window(int64_t t)
{
    return t >= LOYALTY_TIME_FIRST && t <= LOYALTY_TIME_LAST;
}


void
loyalty_civil(int64_t t, int64_t *year, int *month, int *day)
{
    int64_t  days, z, era, doe, yoe, y, doy, mp, d, m;

    days = loyalty_day(t);

    z = days + 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    y = yoe + era * 400;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    d = doy - (153 * mp + 2) / 5 + 1;
    m = mp + (mp < 10 ? 3 : -9);

    *year = y + (m <= 2);
    *month = (int) m;
    *day = (int) d;
}


void
loyalty_format_rfc3339(int64_t t, char *buf)
{
    int      m, d;
    int64_t  y, secs;

    secs = t - loyalty_day(t) * LOYALTY_DAY;

    loyalty_civil(t, &y, &m, &d);

    buf[0] = '0' + (char) (y / 1000);
    buf[1] = '0' + (char) (y / 100 % 10);
    buf[2] = '0' + (char) (y / 10 % 10);
    buf[3] = '0' + (char) (y % 10);
    buf[4] = '-';
    buf[5] = '0' + (char) (m / 10);
    buf[6] = '0' + (char) (m % 10);
    buf[7] = '-';
    buf[8] = '0' + (char) (d / 10);
    buf[9] = '0' + (char) (d % 10);
    buf[10] = 'T';
    buf[11] = '0' + (char) (secs / 36000);
    buf[12] = '0' + (char) (secs / 3600 % 10);
    buf[13] = ':';
    buf[14] = '0' + (char) (secs % 3600 / 600);
    buf[15] = '0' + (char) (secs % 3600 / 60 % 10);
    buf[16] = ':';
    buf[17] = '0' + (char) (secs % 60 / 10);
    buf[18] = '0' + (char) (secs % 10);
    buf[19] = 'Z';
    buf[20] = '\0';
}


int
loyalty_valid_birthday(unsigned month, unsigned day)
{
    /* 2000 is a leap year: a birthday on 02-29 is valid */
    return month >= 1 && month <= 12 && day >= 1
           && day <= (unsigned) loyalty_month_days(2000, (int) month);
}


int
loyalty_parse_birthday(const char *s, size_t len, uint8_t *month,
    uint8_t *day)
{
    int  y, m, d;

    if (len != 5 || loyalty_parse_date(s, len, &y, &m, &d) != 0) {
        return -1;
    }

    *month = (uint8_t) m;
    *day = (uint8_t) d;

    return 0;
}


static const char  loyalty_b64url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";


size_t
loyalty_base64url_encode(const uint8_t *src, size_t len, char *dst)
{
    char      *p;
    uint32_t   v;

    p = dst;

    while (len >= 3) {
        v = (uint32_t) src[0] << 16 | (uint32_t) src[1] << 8 | src[2];
        *p++ = loyalty_b64url[v >> 18];
        *p++ = loyalty_b64url[(v >> 12) & 63];
        *p++ = loyalty_b64url[(v >> 6) & 63];
        *p++ = loyalty_b64url[v & 63];
        src += 3;
        len -= 3;
    }

    if (len) {
        v = (uint32_t) src[0] << 16;
        if (len == 2) {
            v |= (uint32_t) src[1] << 8;
        }

        *p++ = loyalty_b64url[v >> 18];
        *p++ = loyalty_b64url[(v >> 12) & 63];
        if (len == 2) {
            *p++ = loyalty_b64url[(v >> 6) & 63];
        }
    }

    return (size_t) (p - dst);
}


/* the value of each base64url character, or 64 for any other byte */
static const uint8_t  loyalty_b64url_values[256] = {
#define X64 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64
    X64, X64,
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 62, 64, 64,
    52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 64, 64, 64, 64, 64, 64,
    64,  0,  1,  2,  3,  4,  5,  6,  7,  8,  9, 10, 11, 12, 13, 14,
    15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 64, 64, 64, 64, 63,
    64, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
    41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 64, 64, 64, 64, 64,
    X64, X64, X64, X64, X64, X64, X64, X64
#undef X64
};


long
loyalty_base64url_decode(const char *src, size_t len, uint8_t *dst,
    size_t dstlen)
{
    size_t    i, n;
    uint32_t  acc, v;
    int       bits;

    if (len % 4 == 1 || len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0) > dstlen) {
        return -1;
    }

    n = 0;
    acc = 0;
    bits = 0;

    for (i = 0; i < len; i++) {
        v = loyalty_b64url_values[(unsigned char) src[i]];
        if (v == 64) {
            return -1;
        }

        acc = (acc << 6) | v;
        bits += 6;

        if (bits >= 8) {
            bits -= 8;
            dst[n++] = (uint8_t) (acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }

    /* leftover bits must be zero, so each value has one encoding */
    if (acc != 0) {
        return -1;
    }

    return (long) n;
}


static int
loyalty_hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    c |= 0x20;

    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }

    return -1;
}


void
loyalty_hex_encode(const uint8_t *src, size_t len, char *dst)
{
    size_t  i;

    static const char  hex[] = "0123456789abcdef";

    for (i = 0; i < len; i++) {
        *dst++ = hex[src[i] >> 4];
        *dst++ = hex[src[i] & 0x0f];
    }

    *dst = '\0';
}


long
loyalty_hex_decode(const char *src, size_t len, uint8_t *dst, size_t dstlen)
{
    size_t  i;
    int     hi, lo;

    if (len % 2 || len / 2 > dstlen) {
        return -1;
    }

    for (i = 0; i < len; i += 2) {
        hi = loyalty_hex_value((unsigned char) src[i]);
        lo = loyalty_hex_value((unsigned char) src[i + 1]);

        if (hi < 0 || lo < 0) {
            return -1;
        }

        dst[i / 2] = (uint8_t) (hi << 4 | lo);
    }

    return (long) (len / 2);
}


long
loyalty_utf8_chars(const char *s, size_t len)
{
    size_t          i, n, k, more;
    uint32_t        cp;
    unsigned char   c;

    static const uint32_t  min[] = { 0, 0x80, 0x800, 0x10000 };

    for (i = 0, n = 0; i < len; n++) {
        c = (unsigned char) s[i++];

        if (c == 0) {
            return -1;
        }

        if (c < 0x80) {
            continue;
        }

        if ((c & 0xe0) == 0xc0) {
            more = 1;
            cp = c & 0x1f;

        } else if ((c & 0xf0) == 0xe0) {
            more = 2;
            cp = c & 0x0f;

        } else if ((c & 0xf8) == 0xf0) {
            more = 3;
            cp = c & 0x07;

        } else {
            return -1;
        }

        if (len - i < more) {
            return -1;
        }

        for (k = 0; k < more; k++) {
            c = (unsigned char) s[i++];
            if ((c & 0xc0) != 0x80) {
                return -1;
            }
            cp = cp << 6 | (c & 0x3f);
        }

        /* overlong forms, surrogates, code points past U+10FFFF */
        if (cp < min[more] || (cp >= 0xd800 && cp <= 0xdfff)
            || cp > 0x10ffff)
        {
            return -1;
        }
    }

    return (long) n;
}
