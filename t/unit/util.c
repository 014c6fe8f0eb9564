/*
 * Unit tests of loyalty_util.c: identifiers, durations, RFC 3339 times,
 * birthdays, base64url and hex.
 */

#include <string.h>
#include <time.h>

#include "loyalty_util.h"
#include "tap.h"


#define ID_CHARS   "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz" \
                   "0123456789_-."
#define KID_CHARS  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz" \
                   "0123456789_-"
#define B64_CHARS  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz" \
                   "0123456789-_"

/* 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z */
#define YEAR0      INT64_C(-62167219200)
#define YEAR9999   INT64_C(253402300799)

#define B64_MAX    40


typedef struct {
    const char  *in;
    int64_t      out;           /* -1: rejected */
} duration_case_t;


typedef struct {
    const char  *in;
    int          valid;
    int64_t      out;
} time_case_t;


typedef struct {
    int64_t      t;
    const char  *text;
} format_case_t;


typedef struct {
    const char  *in;
    int          month;         /* 0: rejected */
    int          day;
} birthday_case_t;


typedef struct {
    const char  *raw;
    size_t       len;
    const char  *b64;
} b64_case_t;


static const duration_case_t  durations[] = {
    { "1s", 1 },
    { "30m", 1800 },
    { "12h", 43200 },
    { "30d", 2592000 },
    { "1w", 604800 },
    { "1M", 2592000 },
    { "1y", 31536000 },
    { "1h30m", 5400 },
    { "1d12h", 129600 },
    { "1y1M1w1d1h1m1s", 34822861 },
    { "90", 90 },
    { "0", 0 },
    { "0s", 0 },
    { "007m", 420 },
    /* the largest whole numbers of days and years that fit in int64 */
    { "106751991167300d", INT64_C(9223372036854720000) },
    { "292471208677y", INT64_C(9223372036837872000) },
    { "", -1 },
    { "h", -1 },
    { "m", -1 },
    { "5x", -1 },
    { "-1", -1 },
    { "+1", -1 },
    { "1.5h", -1 },
    { "1 h", -1 },
    { " 1h", -1 },
    { "1h ", -1 },
    { "1hh", -1 },
    { "1H", -1 },
    { "1D", -1 },
    { "1h-30m", -1 },
    { "99999999999999999999d", -1 },
    { "99999999999999999999", -1 },
    { "106751991167301d", -1 },
    { "292471208678y", -1 },
    /* as nginx: units from the largest down, each once, no bare tail */
    { "30m1h", -1 },
    { "1h1h", -1 },
    { "1s1m", -1 },
    { "1h30", -1 },
    { "9223372036854775807", INT64_MAX },
    { "9223372036854775808", -1 },
    { "292471208677y1y", -1 },
};


static const time_case_t  times[] = {
    { "1970-01-01T00:00:00Z", 1, 0 },
    { "2000-02-29T00:00:00Z", 1, 951782400 },
    { "2000-03-01T00:00:00Z", 1, 951868800 },
    { "2100-01-01T00:00:00Z", 1, INT64_C(4102444800) },
    { "1969-12-31T23:59:59Z", 1, -1 },
    { "2023-11-14T22:13:20Z", 1, 1700000000 },
    { "2024-02-29T12:00:00+08:00", 1, 1709179200 },
    { "2024-01-01T00:00:00-05:30", 1, 1704087000 },
    { "2024-01-01T05:30:00+05:30", 1, 1704067200 },
    { "2024-01-01T00:00:00+00:00", 1, 1704067200 },
    { "2024-01-01T00:00:00-00:00", 1, 1704067200 },
    { "2024-01-01T00:00:00.999999Z", 1, 1704067200 },
    { "2024-01-01T00:00:00.5+01:00", 1, 1704063600 },
    { "2024-01-01t00:00:00z", 1, 1704067200 },
    { "2024-01-01T23:59:59+23:59", 1, 1704067259 },
    /* a leap second is folded into the next second */
    { "2016-12-31T23:59:60Z", 1, 1483228800 },
    { "0000-01-01T00:00:00Z", 1, YEAR0 },
    { "9999-12-31T23:59:59Z", 1, YEAR9999 },
    { "1900-03-01T00:00:00Z", 1, INT64_C(-2203891200) },
    { "2024-00-01T00:00:00Z", 0, 0 },
    { "2024-13-01T00:00:00Z", 0, 0 },
    { "2024-01-00T00:00:00Z", 0, 0 },
    { "2024-01-32T00:00:00Z", 0, 0 },
    { "2024-04-31T00:00:00Z", 0, 0 },
    { "2024-01-01T24:00:00Z", 0, 0 },
    { "2024-01-01T00:60:00Z", 0, 0 },
    { "2024-01-01T00:00:61Z", 0, 0 },
    { "2023-02-29T00:00:00Z", 0, 0 },
    { "1900-02-29T00:00:00Z", 0, 0 },
    { "2024-01-01T00:00:00", 0, 0 },
    { "2024-01-01T00:00:00.5", 0, 0 },
    { "2024-01-01T00:00:00.Z", 0, 0 },
    { "2024-01-01T00:00:00Zx", 0, 0 },
    { "2024-01-01T00:00:00ZZ", 0, 0 },
    { "2024-01-01T00:00:00+08:00x", 0, 0 },
    { "2024-01-01T00:00:00+08:0", 0, 0 },
    { "2024-01-01T00:00:00+0800", 0, 0 },
    { "2024-01-01T00:00:00+24:00", 0, 0 },
    { "2024-01-01T00:00:00+08:60", 0, 0 },
    { "2024-01-01T00:00:00 +08:00", 0, 0 },
    { "2024-01-01 00:00:00Z", 0, 0 },
    { " 2024-01-01T00:00:00Z", 0, 0 },
    { "2024-1-01T00:00:00Z", 0, 0 },
    { "2024-01-01T0:00:00Z", 0, 0 },
    { "2024-01-01T00:00Z", 0, 0 },
    { "2024/01/01T00:00:00Z", 0, 0 },
    { "2024-01-01T00-00-00Z", 0, 0 },
    { "-024-01-01T00:00:00Z", 0, 0 },
    { "", 0, 0 },
    /* the instant must be writable back in UTC, years 0000-9999 */
    { "0000-01-01T00:00:00Z", 1, LOYALTY_TIME_MIN },
    { "9999-12-31T23:59:59Z", 1, LOYALTY_TIME_MAX },
    { "0000-01-01T00:00:00+01:00", 0, 0 },
    { "9999-12-31T23:59:59-01:00", 0, 0 },
};


typedef struct {
    const char  *in;
    long         chars;
} utf8_case_t;


static const utf8_case_t  utf8s[] = {
    { "", 0 },
    { "Gold", 4 },
    { "\xe9\x87\x91\xe5\x8d\xa1", 2 },            /* two CJK characters */
    { "\xf0\x9f\x8e\x81 gift", 6 },                /* U+1F381 */
    { "\xff\xfe", -1 },
    { "\xc0\xaf", -1 },                          /* overlong "/" */
    { "\xe0\x80\xaf", -1 },                      /* overlong "/" */
    { "\xed\xa0\x80", -1 },                      /* a surrogate */
    { "\xf4\x90\x80\x80", -1 },                  /* past U+10FFFF */
    { "\xe9\x87", -1 },                          /* truncated */
    { "a\x80", -1 },                             /* stray continuation */
};


static void
test_utf8(void)
{
    size_t  i;

    for (i = 0; i < nelts(utf8s); i++) {
        is_int(loyalty_utf8_chars(utf8s[i].in, strlen(utf8s[i].in)),
               utf8s[i].chars, "utf8 case %zu", i);
    }

    is_int(loyalty_utf8_chars("a\0b", 3), -1, "utf8: NUL refused");
}


static const format_case_t  formats[] = {
    { 0, "1970-01-01T00:00:00Z" },
    { 951782400, "2000-02-29T00:00:00Z" },
    { 951868800, "2000-03-01T00:00:00Z" },
    { INT64_C(4102444800), "2100-01-01T00:00:00Z" },
    { -1, "1969-12-31T23:59:59Z" },
    { -86400, "1969-12-31T00:00:00Z" },
    { INT64_C(-2208988800), "1900-01-01T00:00:00Z" },
    { 1700000000, "2023-11-14T22:13:20Z" },
    { YEAR0, "0000-01-01T00:00:00Z" },
    { YEAR9999, "9999-12-31T23:59:59Z" },
};


static const birthday_case_t  birthdays[] = {
    { "01-01", 1, 1 },
    { "02-29", 2, 29 },
    { "04-30", 4, 30 },
    { "12-31", 12, 31 },
    { "02-30", 0, 0 },
    { "04-31", 0, 0 },
    { "13-01", 0, 0 },
    { "00-10", 0, 0 },
    { "01-00", 0, 0 },
    { "01-32", 0, 0 },
    { "1-01", 0, 0 },
    { "01-1", 0, 0 },
    { "001-01", 0, 0 },
    { "01/01", 0, 0 },
    { "0a-01", 0, 0 },
    { "01-0a", 0, 0 },
    { "", 0, 0 },
};


static const b64_case_t  b64_known[] = {
    { "", 0, "" },
    { "f", 1, "Zg" },
    { "fo", 2, "Zm8" },
    { "foo", 3, "Zm9v" },
    { "foob", 4, "Zm9vYg" },
    { "fooba", 5, "Zm9vYmE" },
    { "foobar", 6, "Zm9vYmFy" },
    /* the two characters where base64url differs from base64 */
    { "\xfb\xff", 2, "-_8" },
    { "\xfb\xef\xbe", 3, "----" },
    { "\xff\xff\xff", 3, "____" },
    { "\0\0\0", 3, "AAAA" },
};


static const char  *b64_bad[] = {
    "Zg==", "Zg=", "Zm9v=", "Z+", "Z/", "Zm9v YmFy", "Zm9v\nYmFy", "Zm.v",
    "A", "AAAAA", "\x80\x80",
    /* non-canonical: the bits after the last byte are not zero */
    "Zh", "Zm9", "AB", "AAB", "Zm9vYh", "Zm9vYmF",
};


static void
test_identifiers(void)
{
    int   c, id, kid, bad_id, bad_tier, bad_kid, pos;
    char  buf[80];

    memset(buf, 'a', sizeof(buf));

    ok(loyalty_valid_id(buf, 64), "id of 64 characters");
    ok(!loyalty_valid_id(buf, 65), "id of 65 characters rejected");
    ok(loyalty_valid_id(buf, 1), "id of 1 character");
    ok(!loyalty_valid_id("", 0), "empty id rejected");
    ok(loyalty_valid_tier_name(buf, 32), "tier name of 32 characters");
    ok(!loyalty_valid_tier_name(buf, 33),
       "tier name of 33 characters rejected");
    ok(!loyalty_valid_tier_name("", 0), "empty tier name rejected");
    ok(loyalty_valid_kid(buf, 16), "kid of 16 characters");
    ok(!loyalty_valid_kid(buf, 17), "kid of 17 characters rejected");
    ok(!loyalty_valid_kid("", 0), "empty kid rejected");

    ok(loyalty_valid_id("a.b", 3) && loyalty_valid_id(".", 1),
       "'.' allowed in ids");
    ok(loyalty_valid_tier_name("gold.plus", 9),
       "'.' allowed in tier names");
    ok(!loyalty_valid_kid("k.1", 3) && !loyalty_valid_kid(".", 1),
       "'.' rejected in kids");
    ok(loyalty_valid_id("abc~", 3) && loyalty_valid_kid("k1~", 2),
       "only len bytes are checked");

    /* every byte value, first, in the middle and last */
    bad_id = 0;
    bad_tier = 0;
    bad_kid = 0;

    for (c = 0; c < 256; c++) {
        id = c != 0 && strchr(ID_CHARS, c) != NULL;
        kid = c != 0 && strchr(KID_CHARS, c) != NULL;

        for (pos = 0; pos < 5; pos += 2) {
            memcpy(buf, "abcde", 5);
            buf[pos] = (char) c;

            if (loyalty_valid_id(buf, 5) != id && bad_id++ < 5) {
                diag("id: byte 0x%02x at %d", c, pos);
            }

            if (loyalty_valid_tier_name(buf, 5) != id && bad_tier++ < 5) {
                diag("tier name: byte 0x%02x at %d", c, pos);
            }

            if (loyalty_valid_kid(buf, 5) != kid && bad_kid++ < 5) {
                diag("kid: byte 0x%02x at %d", c, pos);
            }
        }
    }

    ok(bad_id == 0, "ids: exactly [A-Za-z0-9_.-] accepted, all 256 bytes");
    ok(bad_tier == 0,
       "tier names: exactly [A-Za-z0-9_.-] accepted, all 256 bytes");
    ok(bad_kid == 0, "kids: exactly [A-Za-z0-9_-] accepted, all 256 bytes");
}


static void
test_durations(void)
{
    size_t  i;

    for (i = 0; i < nelts(durations); i++) {
        is_int(loyalty_parse_duration(durations[i].in,
                                      strlen(durations[i].in)),
               durations[i].out, "duration \"%s\"", durations[i].in);
    }

    is_int(loyalty_parse_duration("30dX", 3), 2592000,
           "duration: only len bytes are parsed");
}


static void
check_time(int64_t t, int *bad)
{
    int        rc;
    char       buf[LOYALTY_RFC3339_LEN + 1], want[80];
    time_t     tt;
    int64_t    got;
    struct tm  tm;

    tt = (time_t) t;

    if (gmtime_r(&tt, &tm) == NULL) {
        diag("gmtime_r(%lld) failed", (long long) t);
        (*bad)++;
        return;
    }

    snprintf(want, sizeof(want), "%04d-%02d-%02dT%02d:%02d:%02dZ",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec);

    loyalty_format_rfc3339(t, buf);
    got = INT64_MIN;
    rc = loyalty_parse_rfc3339(buf, strlen(buf), &got);

    if ((strcmp(buf, want) != 0 || rc != 0 || got != t) && (*bad)++ < 5) {
        diag("%lld: formatted %s, gmtime %s, parsed %lld", (long long) t,
             buf, want, (long long) got);
    }
}


static void
test_rfc3339(void)
{
    int      rc, bad;
    char     buf[LOYALTY_RFC3339_LEN + 1];
    size_t   i;
    int64_t  t, got;

    for (i = 0; i < nelts(times); i++) {
        got = INT64_MIN;
        rc = loyalty_parse_rfc3339(times[i].in, strlen(times[i].in), &got);

        if (times[i].valid) {
            if (!ok(rc == 0 && got == times[i].out, "rfc3339 \"%s\"",
                    times[i].in))
            {
                diag("rc %d, got %lld, expected %lld", rc, (long long) got,
                     (long long) times[i].out);
            }

        } else {
            ok(rc == -1, "rfc3339 \"%s\" rejected", times[i].in);
        }
    }

    rc = loyalty_parse_rfc3339("2024-01-01T00:00:00Zjunk", 20, &got);
    ok(rc == 0 && got == 1704067200, "rfc3339: only len bytes are parsed");

    /* the window of admin data: its ends are what the texts say */
    rc = loyalty_parse_rfc3339(LOYALTY_TIME_FIRST_TEXT,
                               LOYALTY_RFC3339_LEN, &got);
    ok(rc == 0 && got == LOYALTY_TIME_FIRST && loyalty_time_in_window(got)
       && !loyalty_time_in_window(got - 1), "the window opens at "
       LOYALTY_TIME_FIRST_TEXT);
    rc = loyalty_parse_rfc3339(LOYALTY_TIME_LAST_TEXT,
                               LOYALTY_RFC3339_LEN, &got);
    ok(rc == 0 && got == LOYALTY_TIME_LAST && loyalty_time_in_window(got)
       && !loyalty_time_in_window(got + 1), "and closes at "
       LOYALTY_TIME_LAST_TEXT);

    for (i = 0; i < nelts(formats); i++) {
        memset(buf, 'x', sizeof(buf));
        loyalty_format_rfc3339(formats[i].t, buf);
        is_str(buf, formats[i].text, "format %lld",
               (long long) formats[i].t);

        rc = loyalty_parse_rfc3339(buf, strlen(buf), &got);
        ok(rc == 0 && got == formats[i].t, "%s parses back to %lld",
           formats[i].text, (long long) formats[i].t);
    }

    /*
     * The C library's gmtime() is an independent oracle for the
     * conversion: sweep years 0 to 9999, then every 7 seconds around the
     * epoch, where the remainders are negative on one side.
     */
    bad = 0;

    for (t = YEAR0; t <= YEAR9999; t += 3155693) {
        check_time(t, &bad);
    }

    for (t = -200000; t <= 200000; t += 7) {
        check_time(t, &bad);
    }

    ok(bad == 0, "format agrees with gmtime and parses back, years 0-9999");
}


static void
test_birthdays(void)
{
    int      rc;
    size_t   i;
    uint8_t  month, day;

    for (i = 0; i < nelts(birthdays); i++) {
        month = 0xff;
        day = 0xff;
        rc = loyalty_parse_birthday(birthdays[i].in, strlen(birthdays[i].in),
                                    &month, &day);

        if (birthdays[i].month) {
            ok(rc == 0 && month == birthdays[i].month
               && day == birthdays[i].day,
               "birthday \"%s\"", birthdays[i].in);

        } else {
            ok(rc == -1 && month == 0xff && day == 0xff,
               "birthday \"%s\" rejected", birthdays[i].in);
        }
    }
}


static void
test_base64url(void)
{
    int      bad, want_ok;
    long     n;
    char     enc[B64_MAX * 2], alt[B64_MAX * 2];
    size_t   i, len, elen, k;
    uint8_t  raw[B64_MAX], dec[B64_MAX + 4], dec2[B64_MAX + 4];

    for (i = 0; i < nelts(b64_known); i++) {
        elen = loyalty_base64url_encode((const uint8_t *) b64_known[i].raw,
                                        b64_known[i].len, enc);
        enc[elen] = '\0';
        is_str(enc, b64_known[i].b64, "base64url encode of %zu bytes, "
               "case %zu", b64_known[i].len, i);

        n = loyalty_base64url_decode(b64_known[i].b64,
                                     strlen(b64_known[i].b64), dec,
                                     sizeof(dec));
        ok(n == (long) b64_known[i].len
           && memcmp(dec, b64_known[i].raw, b64_known[i].len) == 0,
           "base64url decode \"%s\"", b64_known[i].b64);
    }

    for (len = 0; len <= B64_MAX; len++) {
        for (i = 0; i < len; i++) {
            raw[i] = rng_byte();
        }

        elen = loyalty_base64url_encode(raw, len, enc);
        enc[elen] = '\0';
        n = loyalty_base64url_decode(enc, elen, dec, len);

        ok(elen == len / 3 * 4 + (len % 3 ? len % 3 + 1 : 0)
           && strspn(enc, B64_CHARS) >= elen
           && n == (long) len && memcmp(dec, raw, len) == 0,
           "base64url round trip, %zu random bytes", len);
    }

    for (i = 0; i < nelts(b64_bad); i++) {
        is_int(loyalty_base64url_decode(b64_bad[i], strlen(b64_bad[i]), dec,
                                        sizeof(dec)),
               -1, "base64url decode rejects \"%s\"", b64_bad[i]);
    }

    /*
     * Of the 64 possible last characters of an encoding of 3k+1 (3k+2)
     * bytes, only those whose low 4 (2) bits are zero decode, so that a
     * value has exactly one encoding.
     */
    bad = 0;

    for (len = 1; len <= B64_MAX; len++) {
        if (len % 3 == 0) {
            continue;
        }

        for (i = 0; i < len; i++) {
            raw[i] = rng_byte();
        }

        elen = loyalty_base64url_encode(raw, len, enc);
        memcpy(alt, enc, elen);

        for (k = 0; k < 64; k++) {
            alt[elen - 1] = B64_CHARS[k];
            want_ok = (len % 3 == 1) ? (k & 15) == 0 : (k & 3) == 0;

            n = loyalty_base64url_decode(alt, elen, dec2, sizeof(dec2));

            if ((n >= 0) != want_ok
                || (n >= 0 && (n != (long) len
                               || memcmp(dec2, raw, len - 1) != 0)))
            {
                if (bad++ < 5) {
                    diag("%zu bytes, last character '%c': %ld", len,
                         B64_CHARS[k], n);
                }
            }
        }
    }

    ok(bad == 0, "base64url decode accepts only zero trailing bits");

    is_int(loyalty_base64url_decode("Zm9v", 4, dec, 2), -1,
           "base64url decode: 3 bytes do not fit in 2");
    is_int(loyalty_base64url_decode("Zm9vYmE", 7, dec, 4), -1,
           "base64url decode: 5 bytes do not fit in 4");
    is_int(loyalty_base64url_decode("Zm9vYmE", 7, dec, 5), 5,
           "base64url decode: 5 bytes fit in 5");
    is_int(loyalty_base64url_decode("Zm9v!!!", 4, dec, sizeof(dec)), 3,
           "base64url decode: only len bytes are read");
}


static void
test_hex(void)
{
    int      c, bad;
    long     n;
    char     hex[513], enc[513], in[3];
    size_t   i;
    uint8_t  all[256], dec[256];

    n = loyalty_hex_decode("00ff7F80", 8, dec, sizeof(dec));
    ok(n == 4 && memcmp(dec, "\x00\xff\x7f\x80", 4) == 0,
       "hex decode \"00ff7F80\"");
    is_int(loyalty_hex_decode("", 0, dec, 0), 0, "hex decode \"\"");

    for (i = 0; i < 256; i++) {
        all[i] = (uint8_t) i;
        snprintf(hex + 2 * i, 3, "%02x", (unsigned) i);
    }

    n = loyalty_hex_decode(hex, 512, dec, sizeof(dec));
    ok(n == 256 && memcmp(dec, all, 256) == 0,
       "hex decode of every byte, lower case");

    loyalty_hex_encode(all, 256, enc);
    ok(strcmp(enc, hex) == 0, "hex encode of every byte, lower case");

    for (i = 0; i < 256; i++) {
        snprintf(hex + 2 * i, 3, "%02X", (unsigned) i);
    }

    n = loyalty_hex_decode(hex, 512, dec, sizeof(dec));
    ok(n == 256 && memcmp(dec, all, 256) == 0,
       "hex decode of every byte, upper case");

    is_int(loyalty_hex_decode("abc", 3, dec, sizeof(dec)), -1,
           "hex decode rejects odd length \"abc\"");
    is_int(loyalty_hex_decode("0", 1, dec, sizeof(dec)), -1,
           "hex decode rejects odd length \"0\"");

    bad = 0;

    for (c = 0; c < 256; c++) {
        if (c != 0 && strchr("0123456789abcdefABCDEF", c)) {
            continue;
        }

        in[0] = '0';
        in[1] = (char) c;

        if (loyalty_hex_decode(in, 2, dec, sizeof(dec)) != -1
            && bad++ < 5)
        {
            diag("accepted 0x%02x as the low digit", c);
        }

        in[0] = (char) c;
        in[1] = '0';

        if (loyalty_hex_decode(in, 2, dec, sizeof(dec)) != -1
            && bad++ < 5)
        {
            diag("accepted 0x%02x as the high digit", c);
        }
    }

    ok(bad == 0, "hex decode rejects every non-hex byte, either digit");

    is_int(loyalty_hex_decode("001122", 6, dec, 2), -1,
           "hex decode: 3 bytes do not fit in 2");
    is_int(loyalty_hex_decode("001122", 6, dec, 3), 3,
           "hex decode: 3 bytes fit in 3");
}


#define CT_MAX  40

static void
test_ct_equal(void)
{
    size_t   n, i, bit, missed;
    uint8_t  a[CT_MAX], b[CT_MAX];

    for (n = 0; n <= CT_MAX; n++) {
        for (i = 0; i < n; i++) {
            a[i] = b[i] = (uint8_t) (i * 37 + 11);
        }

        ok(loyalty_ct_equal(a, b, n), "ct_equal: %zu equal bytes", n);

        /* every bit of every byte, each word and the tail */
        missed = 0;

        for (i = 0; i < n; i++) {
            for (bit = 0; bit < 8; bit++) {
                b[i] ^= (uint8_t) (1u << bit);
                missed += (size_t) loyalty_ct_equal(a, b, n);
                missed += (size_t) loyalty_ct_equal(b, a, n);
                b[i] ^= (uint8_t) (1u << bit);
            }
        }

        ok(missed == 0, "ct_equal: %zu bytes, every flipped bit seen", n);
    }
}


static void
test_format_u64(void)
{
    char  buf[21];

    static const struct {
        uint64_t     v;
        const char  *s;
    } cases[] = {
        { 0, "0" }, { 7, "7" }, { 9, "9" }, { 10, "10" }, { 99, "99" },
        { 100, "100" }, { 101, "101" }, { 1000, "1000" }, { 9909, "9909" },
        { 12345, "12345" }, { 1800000000, "1800000000" },
        { 253402300799ULL, "253402300799" },
        { 9999999999999999999ULL, "9999999999999999999" },
        { 10000000000000000000ULL, "10000000000000000000" },
        { 18446744073709551615ULL, "18446744073709551615" },
    };

    size_t  i, n;

    for (i = 0; i < nelts(cases); i++) {
        n = loyalty_format_u64(cases[i].v, buf);
        buf[n] = '\0';
        is_str(buf, cases[i].s, "format_u64: %s", cases[i].s);
    }
}


static void
test_big_endian(void)
{
    uint8_t  b[8];

    loyalty_be32_put(b, 0x01020304);
    ok(memcmp(b, "\x01\x02\x03\x04", 4) == 0
       && loyalty_be32_get(b) == 0x01020304, "be32 put and get");

    loyalty_be32_put(b, (uint32_t) -1);
    ok(loyalty_be32_get(b) == 0xffffffff, "be32 of -1: its 32 bits");

    loyalty_be_put(b, 0x0102030405060708ULL);
    ok(loyalty_be32_get(b) == 0x01020304
       && loyalty_be32_get(b + 4) == 0x05060708,
       "be32 halves of a be64, high first");
}


int
main(void)
{
    plan(17 + nelts(durations) + 1 + nelts(times) + 1 + 2 * nelts(formats)
         + 1 + nelts(birthdays) + 2 * nelts(b64_known) + B64_MAX + 1
         + nelts(b64_bad) + 5 + 10 + nelts(utf8s) + 1 + 2 + 2 * (CT_MAX + 1)
         + 15 + 3);

    test_utf8();

    test_identifiers();
    test_durations();
    test_rfc3339();
    test_birthdays();
    test_base64url();
    test_hex();
    test_ct_equal();
    test_format_u64();
    test_big_endian();

    return done();
}
