/*
 * nginx-loyalty: libFuzzer harness for loyalty_util.c.  Every input goes
 * through every parser; the invariants are:
 *
 *   - loyalty_parse_duration(): accepts exactly nginx's grammar (units
 *     from the largest down, each once, or bare seconds alone) when the
 *     value fits, and returns the value computed here in 128 bits;
 *   - loyalty_parse_rfc3339(): accepts exactly the RFC 3339 date-times
 *     that fall within years 0000-9999 UTC, at the second timegm() gives;
 *     formatting that and parsing the result gives the same seconds;
 *   - loyalty_format_rfc3339(): any time in years 0000-9999 gives 20
 *     characters of the right shape, which parse back to it;
 *   - loyalty_utf8_chars(): counts what jansson takes for UTF-8, and
 *     refuses NUL and whatever jansson refuses;
 *   - base64url: a decoded value encodes back to the input (one encoding
 *     per value), encoded input decodes back, no byte past dstlen written;
 *   - hex: decoded bytes are those the digits say, none past dstlen;
 *   - birthdays and identifiers: accepted exactly as documented.
 */

#include <string.h>
#include <time.h>
#include <jansson.h>

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


/*
 * The grammar as nginx has it: NUMBER UNIT groups, units from the
 * largest down and each at most once, or one bare NUMBER of seconds.
 * Returns -1 where the value is not one, or does not fit in int64.
 */
static int64_t
fuzz_duration_oracle(const char *s, size_t len)
{
    size_t       i;
    __int128     total, n, unit, last;
    const char  *u;

    static const char     units[] = "yMwdhms";
    static const int64_t  seconds[] = { 365 * 86400, 30 * 86400, 7 * 86400,
                                        86400, 3600, 60, 1 };

    total = 0;
    last = INT64_MAX;
    i = 0;

    if (len == 0) {
        return -1;
    }

    while (i < len) {
        if (!fuzz_digit(s[i])) {
            return -1;
        }

        for (n = 0; i < len && fuzz_digit(s[i]); i++) {
            n = n * 10 + (s[i] - '0');
            if (n > INT64_MAX) {
                return -1;
            }
        }

        if (i == len) {
            if (total != 0 || last != INT64_MAX) {
                return -1;
            }
            return (int64_t) n;
        }

        u = (s[i] != '\0') ? strchr(units, s[i]) : NULL;
        if (u == NULL) {
            return -1;
        }
        i++;

        unit = seconds[u - units];
        if (unit >= last) {
            return -1;
        }
        last = unit;

        total += n * unit;
        if (total > INT64_MAX) {
            return -1;
        }
    }

    return (int64_t) total;
}


static void
fuzz_duration(const char *s, size_t len)
{
    FUZZ_CHECK(loyalty_parse_duration(s, len)
               == fuzz_duration_oracle(s, len));
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


/*
 * Formatting takes times in years 0000-9999 only: each formats to the
 * shape, and parses back to the same second.
 */
static void
fuzz_format(int64_t t)
{
    char     buf[LOYALTY_RFC3339_LEN + 1 + 8];
    int64_t  again;

    FUZZ_CHECK(t >= FUZZ_YEAR0 && t <= FUZZ_YEAR9999);

    memset(buf, 0x5a, sizeof(buf));
    loyalty_format_rfc3339(t, buf);
    fuzz_check_shape(buf);
    FUZZ_CHECK(buf[LOYALTY_RFC3339_LEN + 1] == 0x5a);

    FUZZ_CHECK(loyalty_parse_rfc3339(buf, LOYALTY_RFC3339_LEN, &again) == 0);
    FUZZ_CHECK(again == t);
}


static int
fuzz_fixed(const char *s, size_t n, int *out)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        if (!fuzz_digit(s[i])) {
            return -1;
        }
    }

    *out = fuzz_num(s, n);
    return 0;
}


/*
 * RFC 3339 as the header describes it, to the second through glibc's
 * timegm(), which folds a leap second into the next as POSIX time does.
 * Returns -1 where the text is not one, or not within 0000-9999 UTC.
 */
static int
fuzz_rfc3339_oracle(const char *s, size_t len, int64_t *out)
{
    int        y, mo, d, h, mi, sec, oh, om, leap;
    size_t     i;
    int64_t    t;
    struct tm  tm;

    static const int  days[] = { 31, 28, 31, 30, 31, 30,
                                 31, 31, 30, 31, 30, 31 };

    if (len < 20
        || fuzz_fixed(s, 4, &y) || s[4] != '-'
        || fuzz_fixed(s + 5, 2, &mo) || s[7] != '-'
        || fuzz_fixed(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't')
        || fuzz_fixed(s + 11, 2, &h) || s[13] != ':'
        || fuzz_fixed(s + 14, 2, &mi) || s[16] != ':'
        || fuzz_fixed(s + 17, 2, &sec))
    {
        return -1;
    }

    leap = (y % 4 == 0 && (y % 100 != 0 || y % 400 == 0));

    if (mo < 1 || mo > 12 || d < 1
        || d > days[mo - 1] + (mo == 2 && leap)
        || h > 23 || mi > 59 || sec > 60)
    {
        return -1;
    }

    i = 19;

    if (s[i] == '.') {
        if (i + 1 == len || !fuzz_digit(s[i + 1])) {
            return -1;
        }
        for (i++; i < len && fuzz_digit(s[i]); i++) { /* void */ }
    }

    if (i + 1 == len && (s[i] == 'Z' || s[i] == 'z')) {
        oh = 0;
        om = 0;

    } else if (i + 6 == len && (s[i] == '+' || s[i] == '-')
               && fuzz_fixed(s + i + 1, 2, &oh) == 0 && s[i + 3] == ':'
               && fuzz_fixed(s + i + 4, 2, &om) == 0
               && oh <= 23 && om <= 59)
    {
        if (s[i] == '-') {
            oh = -oh;
            om = -om;
        }

    } else {
        return -1;
    }

    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;

    t = (int64_t) timegm(&tm) - (oh * 3600 + om * 60);

    if (t < FUZZ_YEAR0 || t > FUZZ_YEAR9999) {
        return -1;
    }

    *out = t;
    return 0;
}


static void
fuzz_rfc3339(const char *s, size_t len)
{
    int      rc, want_rc;
    int64_t  t, want;

    t = 0;
    want = 0;

    rc = loyalty_parse_rfc3339(s, len, &t);
    want_rc = fuzz_rfc3339_oracle(s, len, &want);

    FUZZ_CHECK(rc == want_rc);

    if (rc != 0) {
        return;
    }

    FUZZ_CHECK(t == want);

    /* within 0000-9999, so the time can be written back */
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
    int      m, d, want;
    char     buf[8];
    uint8_t  month, day;

    static const int  days[] = { 31, 29, 31, 30, 31, 30,
                                 31, 31, 30, 31, 30, 31 };

    want = len == 5 && fuzz_fixed(s, 2, &m) == 0 && s[2] == '-'
           && fuzz_fixed(s + 3, 2, &d) == 0
           && m >= 1 && m <= 12 && d >= 1 && d <= days[m - 1];

    if (loyalty_parse_birthday(s, len, &month, &day) != 0) {
        FUZZ_CHECK(!want);
        return;
    }

    FUZZ_CHECK(want);
    FUZZ_CHECK(month == m && day == d);

    snprintf(buf, sizeof(buf), "%02u-%02u", month, day);
    FUZZ_CHECK(memcmp(buf, s, 5) == 0);
}


/* jansson's idea of UTF-8; NUL is refused on top */
static void
fuzz_utf8(const char *s, size_t len)
{
    long     n, want;
    size_t   i;
    json_t  *str;

    n = loyalty_utf8_chars(s, len);

    str = json_stringn(s, len);
    want = -1;

    if (str != NULL && memchr(s, '\0', len) == NULL) {
        want = 0;
        for (i = 0; i < len; i++) {
            want += ((s[i] & 0xc0) != 0x80);
        }
    }

    json_decref(str);

    FUZZ_CHECK(n == want);
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
    fuzz_utf8(s, size);

    FUZZ_CHECK(loyalty_valid_id(s, size)
               == fuzz_id_chars(s, size, LOYALTY_ID_MAX, 1));
    /* "public" names anonymous visitors' prices, never a tier */
    FUZZ_CHECK(loyalty_valid_tier_name(s, size)
               == (fuzz_id_chars(s, size, LOYALTY_TIER_MAX, 1)
                   && !(size == 6 && memcmp(s, "public", 6) == 0)));
    FUZZ_CHECK(loyalty_valid_kid(s, size)
               == fuzz_id_chars(s, size, LOYALTY_KID_MAX, 0));

    /* a time in years 0000-9999 from the first bytes */
    if (size >= 8) {
        u = 0;
        for (i = 0; i < 8; i++) {
            u = u << 8 | data[i];
        }

        t = FUZZ_YEAR0
            + (int64_t) (u % (uint64_t) (FUZZ_YEAR9999 - FUZZ_YEAR0 + 1));

        fuzz_format(t);
    }

    free(s);

    return 0;
}
