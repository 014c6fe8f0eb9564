/*
 * nginx-loyalty: libFuzzer harness for loyalty_util.c.  Every input goes
 * through every parser; the invariants are:
 *
 *   - loyalty_parse_duration(): an accepted value is the sum its units
 *     say, computed here without overflow;
 *   - loyalty_parse_rfc3339(): an accepted time is the one timegm() gives
 *     for the same fields; for years 0000-9999, formatting it and parsing
 *     the result gives the same seconds;
 *   - loyalty_format_rfc3339(): any int64 gives 20 characters of the
 *     right shape, which parse back when the year is 0000-9999;
 *   - base64url: a decoded value encodes back to the input (one encoding
 *     per value), encoded input decodes back, no byte past dstlen written;
 *   - hex: decoded bytes are those the digits say, none past dstlen;
 *   - birthdays and identifiers: accepted exactly as documented.
 */

#include <string.h>
#include <time.h>

#include "loyalty_util.h"
#include "fuzz.h"


/* 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z */
#define FUZZ_YEAR0     INT64_C(-62167219200)
#define FUZZ_YEAR9999  INT64_C(253402300799)


static int
fuzz_digit(char c)
{
    return c >= '0' && c <= '9';
}


static int
fuzz_num(const char *s, size_t n)
{
    int     v;
    size_t  i;

    v = 0;
    for (i = 0; i < n; i++) {
        FUZZ_CHECK(fuzz_digit(s[i]));
        v = v * 10 + (s[i] - '0');
    }

    return v;
}


static void
fuzz_duration(const char *s, size_t len)
{
    size_t    i;
    int64_t   got;
    __int128  total, n, unit;

    got = loyalty_parse_duration(s, len);
    FUZZ_CHECK(got >= -1);

    if (got == -1) {
        return;
    }

    total = 0;
    i = 0;

    while (i < len) {
        n = 0;
        FUZZ_CHECK(fuzz_digit(s[i]));

        while (i < len && fuzz_digit(s[i])) {
            n = n * 10 + (s[i++] - '0');
            FUZZ_CHECK(n <= INT64_MAX);
        }

        unit = 1;

        if (i < len) {
            switch (s[i++]) {
            case 'y': unit = 365 * 86400; break;
            case 'M': unit = 30 * 86400; break;
            case 'w': unit = 7 * 86400; break;
            case 'd': unit = 86400; break;
            case 'h': unit = 3600; break;
            case 'm': unit = 60; break;
            case 's': unit = 1; break;
            default: FUZZ_CHECK(!"unit accepted");
            }
        }

        total += n * unit;
        FUZZ_CHECK(total <= INT64_MAX);
    }

    FUZZ_CHECK(total == got);
}


static void
fuzz_check_shape(const char *buf)
{
    static const char  shape[] = "dddd-dd-ddTdd:dd:ddZ";
    size_t             i;

    FUZZ_CHECK(strlen(buf) == LOYALTY_RFC3339_LEN);

    for (i = 0; i < LOYALTY_RFC3339_LEN; i++) {
        FUZZ_CHECK(shape[i] == 'd' ? fuzz_digit(buf[i]) : buf[i] == shape[i]);
    }
}


/* years 0000-9999 format and parse back to the same second */
static void
fuzz_format(int64_t t)
{
    char     buf[LOYALTY_RFC3339_LEN + 1 + 8];
    int64_t  again;

    memset(buf, 0x5a, sizeof(buf));
    loyalty_format_rfc3339(t, buf);
    fuzz_check_shape(buf);
    FUZZ_CHECK(buf[LOYALTY_RFC3339_LEN + 1] == 0x5a);

    if (t < FUZZ_YEAR0 || t > FUZZ_YEAR9999) {
        return;
    }

    FUZZ_CHECK(loyalty_parse_rfc3339(buf, LOYALTY_RFC3339_LEN, &again) == 0);
    FUZZ_CHECK(again == t);
}


static void
fuzz_rfc3339(const char *s, size_t len)
{
    int        rc, sign, off, y, mo, d;
    size_t     i;
    int64_t    t;
    time_t     want;
    struct tm  tm;

    static const int  days[] = { 31, 28, 31, 30, 31, 30,
                                 31, 31, 30, 31, 30, 31 };

    rc = loyalty_parse_rfc3339(s, len, &t);
    FUZZ_CHECK(rc == 0 || rc == -1);

    if (rc != 0) {
        return;
    }

    /* the fields by position, then glibc's own idea of the time */
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = fuzz_num(s, 4) - 1900;
    tm.tm_mon = fuzz_num(s + 5, 2) - 1;
    tm.tm_mday = fuzz_num(s + 8, 2);
    tm.tm_hour = fuzz_num(s + 11, 2);
    tm.tm_min = fuzz_num(s + 14, 2);
    tm.tm_sec = fuzz_num(s + 17, 2);

    y = fuzz_num(s, 4);
    mo = fuzz_num(s + 5, 2);
    d = fuzz_num(s + 8, 2);

    FUZZ_CHECK(mo >= 1 && mo <= 12 && d >= 1);
    FUZZ_CHECK(d <= days[mo - 1]
               + (mo == 2 && y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)));
    FUZZ_CHECK(tm.tm_hour <= 23 && tm.tm_min <= 59 && tm.tm_sec <= 60);

    i = 19;
    if (s[i] == '.') {
        for (i++; i < len && fuzz_digit(s[i]); i++) { /* void */ }
    }

    FUZZ_CHECK(i < len);

    if (s[i] == 'Z' || s[i] == 'z') {
        FUZZ_CHECK(i + 1 == len);
        off = 0;

    } else {
        FUZZ_CHECK(i + 6 == len && (s[i] == '+' || s[i] == '-'));
        sign = (s[i] == '+') ? 1 : -1;
        off = sign * (fuzz_num(s + i + 1, 2) * 3600
                      + fuzz_num(s + i + 4, 2) * 60);
    }

    /* a leap second is the next second to timegm() too */
    want = timegm(&tm);
    FUZZ_CHECK(t == (int64_t) want - off);

    fuzz_format(t);
}


static void
fuzz_base64url(const char *s, size_t len, const uint8_t *data)
{
    long      n;
    char     *enc;
    size_t    want, elen;
    uint8_t  *dec;

    want = len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0);

    /* exactly the room the value needs: ASan sees any byte beyond it */
    dec = malloc(want ? want : 1);
    FUZZ_CHECK(dec != NULL);

    n = loyalty_base64url_decode(s, len, dec, want);
    FUZZ_CHECK(n >= -1);

    if (n >= 0) {
        FUZZ_CHECK(len % 4 != 1 && (size_t) n == want);

        enc = malloc(len ? len : 1);
        FUZZ_CHECK(enc != NULL);
        elen = loyalty_base64url_encode(dec, (size_t) n, enc);
        FUZZ_CHECK(elen == len && memcmp(enc, s, len) == 0);
        free(enc);

        /* one byte short of room is refused, not overrun */
        if (want > 0) {
            FUZZ_CHECK(loyalty_base64url_decode(s, len, dec, want - 1) == -1);
        }
    }

    free(dec);

    /* the other way: any bytes encode, and decode back */
    elen = (len + 2) / 3 * 4;
    enc = malloc(elen ? elen : 1);
    dec = malloc(len ? len : 1);
    FUZZ_CHECK(enc != NULL && dec != NULL);

    elen = loyalty_base64url_encode(data, len, enc);
    FUZZ_CHECK(elen == len / 3 * 4 + (len % 3 ? len % 3 + 1 : 0));
    FUZZ_CHECK(loyalty_base64url_decode(enc, elen, dec, len) == (long) len);
    FUZZ_CHECK(memcmp(dec, data, len) == 0);

    free(enc);
    free(dec);
}


static int
fuzz_xdigit(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }

    return -1;
}


static void
fuzz_hex(const char *s, size_t len)
{
    int       ok;
    long      n;
    size_t    i;
    uint8_t  *dec;

    ok = (len % 2 == 0);
    for (i = 0; ok && i < len; i++) {
        ok = (fuzz_xdigit(s[i]) >= 0);
    }

    dec = malloc(len / 2 ? len / 2 : 1);
    FUZZ_CHECK(dec != NULL);

    n = loyalty_hex_decode(s, len, dec, len / 2);
    FUZZ_CHECK(n == (ok ? (long) (len / 2) : -1));

    for (i = 0; ok && i < len / 2; i++) {
        FUZZ_CHECK(dec[i] == (fuzz_xdigit(s[2 * i]) << 4
                              | fuzz_xdigit(s[2 * i + 1])));
    }

    if (ok && len > 0) {
        FUZZ_CHECK(loyalty_hex_decode(s, len, dec, len / 2 - 1) == -1);
    }

    free(dec);
}


static void
fuzz_birthday(const char *s, size_t len)
{
    char     buf[8];
    uint8_t  month, day;

    static const int  days[] = { 31, 29, 31, 30, 31, 30,
                                 31, 31, 30, 31, 30, 31 };

    if (loyalty_parse_birthday(s, len, &month, &day) != 0) {
        return;
    }

    FUZZ_CHECK(month >= 1 && month <= 12);
    FUZZ_CHECK(day >= 1 && day <= days[month - 1]);

    snprintf(buf, sizeof(buf), "%02u-%02u", month, day);
    FUZZ_CHECK(len == 5 && memcmp(buf, s, 5) == 0);
}


static int
fuzz_id_chars(const char *s, size_t len, size_t max, int dot)
{
    size_t  i;
    char    c;

    if (len < 1 || len > max) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || fuzz_digit(c) || c == '_' || c == '-' || (dot && c == '.')))
        {
            return 0;
        }
    }

    return 1;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char      *s;
    size_t     i;
    int64_t    t;
    uint64_t   u;

    /* a copy of exactly the input's size, so ASan sees any over-read */
    s = malloc(size ? size : 1);
    FUZZ_CHECK(s != NULL);
    memcpy(s, data, size);

    fuzz_duration(s, size);
    fuzz_rfc3339(s, size);
    fuzz_base64url(s, size, data);
    fuzz_hex(s, size);
    fuzz_birthday(s, size);

    FUZZ_CHECK(loyalty_valid_id(s, size)
               == fuzz_id_chars(s, size, LOYALTY_ID_MAX, 1));
    FUZZ_CHECK(loyalty_valid_tier_name(s, size)
               == fuzz_id_chars(s, size, LOYALTY_TIER_MAX, 1));
    FUZZ_CHECK(loyalty_valid_kid(s, size)
               == fuzz_id_chars(s, size, LOYALTY_KID_MAX, 0));

    /* any 64-bit time formats; the first bytes make one */
    if (size >= 8) {
        u = 0;
        for (i = 0; i < 8; i++) {
            u = u << 8 | data[i];
        }
        t = (int64_t) u;

        fuzz_format(t);

        /* and one in years 0000-9999, where most inputs would miss */
        fuzz_format(FUZZ_YEAR0
                    + (int64_t) (u % (uint64_t) (FUZZ_YEAR9999 - FUZZ_YEAR0
                                                 + 1)));
    }

    free(s);

    return 0;
}
