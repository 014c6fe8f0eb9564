/*
 * nginx-loyalty: small parsers and encoders shared by the module and the
 * CLI (durations, RFC 3339 times, identifiers, base64url, hex).
 * No nginx headers: the CLI and the unit tests link this directly.
 */

#ifndef _LOYALTY_UTIL_H_INCLUDED_
#define _LOYALTY_UTIL_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>


#define LOYALTY_ID_MAX          64
#define LOYALTY_TIER_MAX        32
#define LOYALTY_KID_MAX         16
#define LOYALTY_RFC3339_LEN     20      /* "YYYY-MM-DDTHH:MM:SSZ" */

#define LOYALTY_ERRLEN          256

/* seconds in a day: times are UTC, and a day has no leap second */
#define LOYALTY_DAY             86400


/* a string of len bytes at data, not NUL-terminated; len 0: none given */
typedef struct {
    const char  *data;
    size_t       len;
} loyalty_str_t;


/*
 * memcpy() for a source that may be absent, NULL with a length of 0 (an
 * optional string not given): memcpy() itself must not be passed NULL,
 * whatever the length.  Returns dst + n, like ngx_cpymem().
 */
static inline void *
loyalty_cpymem(void *dst, const void *src, size_t n)
{
    if (n == 0) {
        return dst;
    }

    return (char *) memcpy(dst, src, n) + n;
}


/*
 * Byte strings in LMDB's key order: bytewise, the shorter first on a
 * common prefix.  < 0, 0 or > 0, as memcmp().
 */
static inline int
loyalty_key_cmp(const void *a, size_t alen, const void *b, size_t blen)
{
    int  rc;

    rc = memcmp(a, b, alen < blen ? alen : blen);

    return rc ? rc : (alen > blen) - (alen < blen);
}


/*
 * Whether n bytes at a and b are equal, in a time that depends on n only
 * (no early exit, no branch on the bytes): for secrets and MACs.  Word by
 * word, several times cheaper than CRYPTO_memcmp() byte by byte.
 */
int loyalty_ct_equal(const void *a, const void *b, size_t n);

/* v in decimal into buf (20 bytes at most, no NUL); returns the length */
size_t loyalty_format_u64(uint64_t v, char *buf);

/* each byte's class in names: 1 for [A-Za-z0-9_-], 2 for ".", else 0 */
extern const uint8_t  loyalty_name_chars[256];

/* 1 to max chars of [A-Za-z0-9_-], and "." if dot: names of every kind */
int loyalty_valid_chars(const char *s, size_t len, size_t max, int dot);
/* 1-64 chars of [A-Za-z0-9_.-]: member ids */
int loyalty_valid_id(const char *s, size_t len);
/* 0 for an id; or -1 with err saying what the field name must be */
int loyalty_check_id(const char *name, const char *s, size_t len, char *err,
    size_t errlen);
/*
 * 1-32 chars of [A-Za-z0-9_.-]: tier names.  "public" is not one: it
 * names the prices of anonymous visitors.
 */
int loyalty_valid_tier_name(const char *s, size_t len);
/* 0 for a tier name; or -1 with err saying what the field name must be */
int loyalty_check_tier_name(const char *name, const char *s, size_t len,
    char *err, size_t errlen);
/* three letters A-Z: an ISO 4217 currency code */
int loyalty_valid_currency(const char *s, size_t len);
/* 1-16 chars of [A-Za-z0-9_-]: key ids */
int loyalty_valid_kid(const char *s, size_t len);

/* the index of s in names[n], or -1: the parse of a name from a list */
int loyalty_name_index(const char *const *names, size_t n, const char *s,
    size_t len);
/*
 * The same for the field what (s NULL: absent), or -1 with err saying
 * "\"what\" must be one of" the names
 */
int loyalty_name_pick(const char *const *names, size_t n, const char *s,
    size_t len, const char *what, char *err, size_t errlen);

/*
 * Durations in nginx's units: "30d", "12h", "1h30m", "90" (seconds).
 * y = 365d, M = 30d, w, d, h, m, s.  Returns -1 on a malformed value.
 */
int64_t loyalty_parse_duration(const char *s, size_t len);

/* seconds of 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z */
#define LOYALTY_TIME_MIN        (-62167219200LL)
#define LOYALTY_TIME_MAX        253402300799LL

/*
 * RFC 3339 date-time to unix seconds; fractions are dropped.  The instant
 * must fall within years 0000-9999 in UTC, so that it can be written back.
 */
int loyalty_parse_rfc3339(const char *s, size_t len, int64_t *out);
/* unix seconds within the range above to "YYYY-MM-DDTHH:MM:SSZ";
 * buf holds 21 bytes */
void loyalty_format_rfc3339(int64_t t, char *buf);

/*
 * The window of times that admin data may carry (events' "at", members'
 * and codes' times): 2000-01-01T00:00:00Z to 2100-12-31T23:59:59Z.  The
 * store's records can hold years 0000-9999; what comes in is checked
 * against this window, by loyalty_time_in_window() alone.
 */
#define LOYALTY_TIME_FIRST      946684800LL
#define LOYALTY_TIME_LAST       4133980799LL
#define LOYALTY_TIME_FIRST_TEXT "2000-01-01T00:00:00Z"
#define LOYALTY_TIME_LAST_TEXT  "2100-12-31T23:59:59Z"

int loyalty_time_in_window(int64_t t);

/*
 * The day of unix seconds t: days since 1970-01-01 (floor, so that a time
 * before 1970 is in the day it falls in); loyalty_day(t) * LOYALTY_DAY is
 * that day's midnight.
 */
int64_t loyalty_day(int64_t t);

/*
 * The one date parser: "YYYY-MM-DD", a date that exists, or "MM-DD" (then
 * *year is -1), a month and day that exist in some year (02-29 does).
 * 0, or -1 for anything else.
 */
int loyalty_parse_date(const char *s, size_t len, int *year, int *month,
    int *day);

/* days since 1970-01-01 of a proleptic Gregorian date */
int64_t loyalty_days_from_civil(int64_t y, int m, int d);
/* the UTC date of unix seconds t */
void loyalty_civil(int64_t t, int64_t *year, int *month, int *day);
int loyalty_month_days(int y, int m);

/* the number of characters of valid UTF-8 without NUL, or -1 */
long loyalty_utf8_chars(const char *s, size_t len);

/* a month and day that exist in some year (02-29 does) */
int loyalty_valid_birthday(unsigned month, unsigned day);
/* "MM-DD" with a day that exists in some year (02-29 is accepted) */
int loyalty_parse_birthday(const char *s, size_t len, uint8_t *month,
    uint8_t *day);

/* n decimal digits, all of them, n <= 18: 0, or -1 for another byte */
int loyalty_decimal(const char *s, size_t n, int64_t *out);

/* little-endian unsigned integers of n bytes, n <= 8 */
void loyalty_le_put(uint8_t *p, uint64_t v, size_t n);
uint64_t loyalty_le_get(const uint8_t *p, size_t n);

/*
 * The fixed part of a binary record as a table, for the records' encoders
 * and decoders: each field a little-endian integer of width bytes at off
 * in the record, read into or written from the struct member at member,
 * of size bytes (1, 2, 4 or 8; a signed member keeps its bits).  A table
 * ends with a width of 0.
 */
typedef struct {
    uint8_t     off;
    uint8_t     width;
    uint8_t     size;
    uint16_t    member;
} loyalty_le_field_t;

#define loyalty_le_field(off, width, type, member)                            \
    { off, width, sizeof(((type *) 0)->member), offsetof(type, member) }

void loyalty_le_fields_put(uint8_t *buf, const loyalty_le_field_t *f,
    const void *rec);
void loyalty_le_fields_get(const uint8_t *buf, const loyalty_le_field_t *f,
    void *rec);

/* 8-byte big-endian unsigned integers: keys that sort in number order */
void loyalty_be_put(uint8_t *p, uint64_t v);
uint64_t loyalty_be_get(const uint8_t *p);
/* 4 bytes of it: the days in keys, TZif's fields */
void loyalty_be32_put(uint8_t *p, uint32_t v);
uint32_t loyalty_be32_get(const uint8_t *p);

size_t loyalty_base64url_encode(const uint8_t *src, size_t len, char *dst);
/* returns decoded length, or -1 on a character outside the alphabet */
long loyalty_base64url_decode(const char *src, size_t len, uint8_t *dst,
    size_t dstlen);

/* 2 * len lowercase hex digits of src and a NUL into dst */
void loyalty_hex_encode(const uint8_t *src, size_t len, char *dst);
/* returns decoded length, or -1 on odd length or a non-hex character */
long loyalty_hex_decode(const char *src, size_t len, uint8_t *dst,
    size_t dstlen);


#endif /* _LOYALTY_UTIL_H_INCLUDED_ */
