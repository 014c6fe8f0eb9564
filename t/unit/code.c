/*
 * Unit tests of loyalty_code.c: share codes, short-link targets, the code
 * and clicks records and the clicks keys (schema/lmdb-layout.md).
 */

#include <stdlib.h>
#include <string.h>

#include "loyalty_code.h"
#include "tap.h"


#define CODE32      "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123-_"
#define ID64        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz" \
                    "0123456789_-"
#define CAMPAIGN64  "abcdefghijklmnopqrstuvwxyz.ABCDEFGHIJKLMNOPQRSTUVWXYZ" \
                    "0123456789-"
#define LABEL63     "abcdefghijklmnopqrstuvwxyz-0123456789-ABCDEFGHIJKLMNOPQ" \
                    "RSTUVWXY"

#define MINTS       10000

/* 9999-12-31: the last day a clicks key can name */
#define DAY_MAX     2932896


typedef struct {
    const char  *in;
    size_t       len;           /* 0: strlen(in) */
    const char  *out;           /* NULL: rejected */
} normalize_case_t;


typedef struct {
    const char        *in;
    size_t             len;     /* 0: strlen(in) */
    loyalty_target_e   type;
    const char        *host;    /* for a URL */
} target_case_t;


typedef struct {
    size_t       offset;
    uint8_t      value;
    int          rc;
    const char  *what;
} patch_case_t;


/*
 * Member "alice", campaign "spring-24", target
 * "https://shop.example.com/sale?x=1", created 1700000000, expiring
 * 1735689600 (2025-01-01), at most 500 clicks.
 */
static const uint8_t  golden_code[] = {
    0x01,                                           /* version */
    0x06,                                           /* flags */
    0x05,                                           /* member length */
    0x09,                                           /* campaign length */
    0x21, 0x00,                                     /* target length */
    0x00, 0x00,                                     /* reserved */
    0x00, 0xf1, 0x53, 0x65, 0x00, 0x00, 0x00, 0x00, /* created_at */
    0x80, 0x85, 0x74, 0x67, 0x00, 0x00, 0x00, 0x00, /* expires_at */
    0xf4, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* max_clicks */
    'a', 'l', 'i', 'c', 'e',
    's', 'p', 'r', 'i', 'n', 'g', '-', '2', '4',
    'h', 't', 't', 'p', 's', ':', '/', '/', 's', 'h', 'o', 'p', '.',
    'e', 'x', 'a', 'm', 'p', 'l', 'e', '.', 'c', 'o', 'm', '/', 's',
    'a', 'l', 'e', '?', 'x', '=', '1'
};


/* total 1, unique 2, bot 3, self 4, rejected 5, attributed 2^56 + ... */
static const uint8_t  golden_clicks[] = {
    0x01,                                           /* version */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,       /* reserved */
    0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* total */
    0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* unique */
    0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* bot */
    0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* self */
    0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* rejected */
    0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01  /* attributed */
};

static const uint64_t  golden_counts[LOYALTY_CLICK_COUNTERS] = {
    1, 2, 3, 4, 5, UINT64_C(0x0102030405060708)
};


/* "CODE10" on 2023-11-14, day 19675 */
static const uint8_t  golden_key[] = {
    'C', 'O', 'D', 'E', '1', '0', 0x00, 0x00, 0x00, 0x4c, 0xdb
};


static const normalize_case_t  normalizations[] = {
    { "abc", 0, "ABC" },
    { "ABC", 0, "ABC" },
    { "aBc-_9", 0, "ABC-_9" },
    { "---", 0, "---" },
    { "zz9", 0, "ZZ9" },
    { "xyzXYZ", 0, "XYZXYZ" },
    { "ab", 0, NULL },
    { "a", 0, NULL },
    { "", 0, NULL },
    { "abcdefghijklmnopqrstuvwxyz0123-_", 0, CODE32 },
    { "abcdefghijklmnopqrstuvwxyz0123-_x", 0, NULL },
    { "ab c", 0, NULL },
    { " abc", 0, NULL },
    { "abc ", 0, NULL },
    { "abc!", 0, NULL },
    { "ab.c", 0, NULL },
    { "ab/c", 0, NULL },
    { "ab+c", 0, NULL },
    { "ab%20c", 0, NULL },
    { "ab\tc", 0, NULL },
    { "abc\n", 0, NULL },
    { "ab\0c", 4, NULL },
    { "abc\0", 4, NULL },
    { "\0abc", 4, NULL },
    { "caf\xc3\xa9", 0, NULL },
    { "\xef\xbc\xa1\xef\xbc\xa2\xef\xbc\xa3", 0, NULL },
};


static const target_case_t  targets[] = {
    { "/", 0, LOYALTY_TARGET_PATH, NULL },
    { "/a", 0, LOYALTY_TARGET_PATH, NULL },
    { "/shop/sale?x=1&y=2#top", 0, LOYALTY_TARGET_PATH, NULL },
    { "/@evil.com", 0, LOYALTY_TARGET_PATH, NULL },
    { "/a//b", 0, LOYALTY_TARGET_PATH, NULL },
    { "/%2F%2Fevil.com", 0, LOYALTY_TARGET_PATH, NULL },
    { "//evil.com", 0, LOYALTY_TARGET_INVALID, NULL },
    { "//", 0, LOYALTY_TARGET_INVALID, NULL },
    { "/\\evil.com", 0, LOYALTY_TARGET_INVALID, NULL },
    { "\\\\evil.com", 0, LOYALTY_TARGET_INVALID, NULL },
    { "/a\\b", 0, LOYALTY_TARGET_INVALID, NULL },
    { "http://a.com", 0, LOYALTY_TARGET_URL, "a.com" },
    { "https://a.com", 0, LOYALTY_TARGET_URL, "a.com" },
    { "https://a.com/", 0, LOYALTY_TARGET_URL, "a.com" },
    { "https://a.com?x=1", 0, LOYALTY_TARGET_URL, "a.com" },
    { "https://a.com#x", 0, LOYALTY_TARGET_URL, "a.com" },
    { "https://shop.example.com/a/b?c=//evil.com", 0, LOYALTY_TARGET_URL,
      "shop.example.com" },
    { "HTTPS://Shop.Example.COM/X", 0, LOYALTY_TARGET_URL,
      "Shop.Example.COM" },
    { "HtTp://a.com", 0, LOYALTY_TARGET_URL, "a.com" },
    { "https://a.com/@evil.com", 0, LOYALTY_TARGET_URL, "a.com" },
    { "https://a-b.c-d.com", 0, LOYALTY_TARGET_URL, "a-b.c-d.com" },
    { "https://127.0.0.1:8080/", 0, LOYALTY_TARGET_URL, "127.0.0.1" },
    { "https://localhost", 0, LOYALTY_TARGET_URL, "localhost" },
    { "https://a.com:1/", 0, LOYALTY_TARGET_URL, "a.com" },
    { "https://a.com:443", 0, LOYALTY_TARGET_URL, "a.com" },
    { "https://a.com:8443?x", 0, LOYALTY_TARGET_URL, "a.com" },
    { "https://a.com:65535/", 0, LOYALTY_TARGET_URL, "a.com" },
    { "https://a.com:08080/", 0, LOYALTY_TARGET_URL, "a.com" },
    { "https://a.com:0/", 0, LOYALTY_TARGET_INVALID, NULL },
    { "https://a.com:00000/", 0, LOYALTY_TARGET_INVALID, NULL },
    { "https://a.com:65536/", 0, LOYALTY_TARGET_INVALID, NULL },
    { "https://a.com:99999/", 0, LOYALTY_TARGET_INVALID, NULL },
    { "https://a.com:123456/", 0, LOYALTY_TARGET_INVALID, NULL },
    { "https://a.com:/", 0, LOYALTY_TARGET_INVALID, NULL },
    { "https://a.com:", 0, LOYALTY_TARGET_INVALID, NULL },
    { "https://a.com:8a/", 0, LOYALTY_TARGET_INVALID, NULL },
    { "https://a.com:-1/", 0, LOYALTY_TARGET_INVALID, NULL },
    { "https://a.com:80:80/", 0, LOYALTY_TARGET_INVALID, NULL },
    { "http://a.com@evil.com", 0, LOYALTY_TARGET_INVALID, NULL },
    { "https://evil.com\\@a.com", 0, LOYALTY_TARGET_INVALID, NULL },
    { "https://evil.com\\a.com", 0, LOYALTY_TARGET_INVALID, NULL },
    { "https://user:pass@a.com/", 0, LOYALTY_TARGET_INVALID, NULL },
    { "https://@a.com/", 0, LOYALTY_TARGET_INVALID, NULL },
    { "https://a.com%2f@evil.com", 0, LOYALTY_TARGET_INVALID, NULL },
    { "https://[::1]/", 0, LOYALTY_TARGET_INVALID, NULL },
    { "https://a_b.com/", 0, LOYALTY_TARGET_INVALID, NULL },
    { "https://", 0, LOYALTY_TARGET_INVALID, NULL },
    { "https:///x", 0, LOYALTY_TARGET_INVALID, NULL },
    { "https://?x", 0, LOYALTY_TARGET_INVALID, NULL },
    { "https://:443/", 0, LOYALTY_TARGET_INVALID, NULL },
    { "https://.a.com", 0, LOYALTY_TARGET_INVALID, NULL },
    { "https://a.com.", 0, LOYALTY_TARGET_INVALID, NULL },
    { "https://a..com", 0, LOYALTY_TARGET_INVALID, NULL },
    { "https://-a.com", 0, LOYALTY_TARGET_INVALID, NULL },
    { "https://a-.com", 0, LOYALTY_TARGET_INVALID, NULL },
    { "https://a.-b.com", 0, LOYALTY_TARGET_INVALID, NULL },
    { "https://a.com-", 0, LOYALTY_TARGET_INVALID, NULL },
    { "https:/a.com", 0, LOYALTY_TARGET_INVALID, NULL },
    { "https:a.com", 0, LOYALTY_TARGET_INVALID, NULL },
    { "http//a.com", 0, LOYALTY_TARGET_INVALID, NULL },
    { "httpx://a.com", 0, LOYALTY_TARGET_INVALID, NULL },
    { "ftp://a.com", 0, LOYALTY_TARGET_INVALID, NULL },
    { "javascript:alert(1)", 0, LOYALTY_TARGET_INVALID, NULL },
    { "JaVaScRiPt:alert(1)", 0, LOYALTY_TARGET_INVALID, NULL },
    { "data:text/html,x", 0, LOYALTY_TARGET_INVALID, NULL },
    { "mailto:x@a.com", 0, LOYALTY_TARGET_INVALID, NULL },
    { "a.com", 0, LOYALTY_TARGET_INVALID, NULL },
    { "?x=1", 0, LOYALTY_TARGET_INVALID, NULL },
    { "#x", 0, LOYALTY_TARGET_INVALID, NULL },
    { "", 0, LOYALTY_TARGET_INVALID, NULL },
    { "/a b", 0, LOYALTY_TARGET_INVALID, NULL },
    { " /a", 0, LOYALTY_TARGET_INVALID, NULL },
    { "/a\tb", 0, LOYALTY_TARGET_INVALID, NULL },
    { "/\t/evil.com", 0, LOYALTY_TARGET_INVALID, NULL },
    { "\t//evil.com", 0, LOYALTY_TARGET_INVALID, NULL },
    { "/a\r\n", 0, LOYALTY_TARGET_INVALID, NULL },
    { "/a\nLocation: x", 0, LOYALTY_TARGET_INVALID, NULL },
    { "https://a.com\t.evil.com", 0, LOYALTY_TARGET_INVALID, NULL },
    { "https:// a.com", 0, LOYALTY_TARGET_INVALID, NULL },
    { "https://a.com/caf\xc3\xa9", 0, LOYALTY_TARGET_INVALID, NULL },
    { "https://\xd0\xb0.com/", 0, LOYALTY_TARGET_INVALID, NULL },
    { "/\x7f", 0, LOYALTY_TARGET_INVALID, NULL },
    { "/\x80", 0, LOYALTY_TARGET_INVALID, NULL },
    { "/a\0b", 4, LOYALTY_TARGET_INVALID, NULL },
    { "/\0", 2, LOYALTY_TARGET_INVALID, NULL },
};


/* single-byte changes to golden_code and what decode must make of them */
static const patch_case_t  code_patches[] = {
    { 0, 0x00, -1, "version 0" },
    { 0, 0x02, -1, "version 2" },
    { 1, 0x07, 0, "flags: revoked as well" },
    { 1, 0x0e, 0, "flag 0x08, vanity" },
    { 1, 0x16, -1, "flag 0x10" },
    { 1, 0x86, -1, "flag 0x80" },
    { 1, 0x04, -1, "expires_at without its flag" },
    { 1, 0x02, -1, "max_clicks without its flag" },
    { 2, 0x04, -1, "member length one short" },
    { 2, 0x06, -1, "member length one more" },
    { 2, 0x00, -1, "member length 0" },
    { 3, 0x08, -1, "campaign length one short" },
    { 3, 0x0a, -1, "campaign length one more" },
    { 4, 0x20, -1, "target length one short" },
    { 4, 0x22, -1, "target length one more" },
    { 5, 0x01, -1, "target length + 256" },
    { 6, 0x01, -1, "reserved byte 6" },
    { 7, 0x80, -1, "reserved byte 7" },
    { 15, 0x80, -1, "created_at negative beyond year 0" },
    { 15, 0x01, -1, "created_at beyond year 9999" },
    { 23, 0x80, -1, "expires_at negative beyond year 0" },
    { 23, 0x01, -1, "expires_at beyond year 9999" },
    { 31, 0x80, -1, "negative max_clicks" },
    { 31, 0x7f, 0, "max_clicks near INT64_MAX" },
    { 32, '.', 0, "'.' in the member id" },
    { 32, '@', -1, "'@' in the member id" },
    { 33, 0x00, -1, "NUL in the member id" },
    { 34, ' ', -1, "' ' in the member id" },
    { 37, '.', 0, "'.' in the campaign" },
    { 37, '/', -1, "'/' in the campaign" },
    { 38, 0x00, -1, "NUL in the campaign" },
    { 46, 'H', 0, "upper-case scheme in the target" },
    { 46, 'x', -1, "target scheme \"xttps\"" },
    { 47, ' ', -1, "' ' in the target" },
    { 56, '@', -1, "'@' in the target's host" },
    { 58, '_', -1, "'_' in the target's host" },
    { 71, '\\', -1, "'\\' in the target's path" },
    { 70, 0x7f, -1, "DEL in the target" },
    { 77, 0x00, -1, "NUL in the target" },
    { 77, '#', 0, "'#' in the target's query" },
};


static void
code_golden_struct(loyalty_code_t *c)
{
    memset(c, 0, sizeof(*c));

    c->flags = LOYALTY_CODE_EXPIRES | LOYALTY_CODE_MAX_CLICKS;
    c->member_len = 5;
    c->member = "alice";
    c->campaign_len = 9;
    c->campaign = "spring-24";
    c->target_len = 33;
    c->target = "https://shop.example.com/sale?x=1";
    c->created_at = 1700000000;
    c->expires_at = 1735689600;
    c->max_clicks = 500;
}


static int
code_eq(const loyalty_code_t *got, const loyalty_code_t *want)
{
    int  bad;

    bad = 0;

#define code_field(f)                                                        \
    if (got->f != want->f) {                                                 \
        diag("%s: got %lld, expected %lld", #f, (long long) got->f,         \
             (long long) want->f);                                          \
        bad++;                                                               \
    }

    code_field(flags);
    code_field(member_len);
    code_field(campaign_len);
    code_field(target_len);
    code_field(created_at);
    code_field(expires_at);
    code_field(max_clicks);

#undef code_field

#define code_bytes(f, n)                                                     \
    if (got->n == want->n && want->n                                         \
        && memcmp(got->f, want->f, want->n) != 0)                            \
    {                                                                        \
        diag("%s: got \"%.*s\"", #f, (int) got->n, got->f);                  \
        bad++;                                                               \
    }                                                                        \
    if (got->n == 0 && got->f != NULL) {                                     \
        diag("%s: not NULL when empty", #f);                                 \
        bad++;                                                               \
    }

    code_bytes(member, member_len);
    code_bytes(campaign, campaign_len);
    code_bytes(target, target_len);

#undef code_bytes

    return bad == 0;
}


/* encodes c and says whether the record decodes (rc) as expected */
static int
code_decodes(const loyalty_code_t *c, int want)
{
    int             rc;
    size_t          n;
    uint8_t         buf[LOYALTY_CODE_REC_MAX + 2048];
    loyalty_code_t  d;

    n = loyalty_code_encode(c, buf);
    rc = loyalty_code_decode(buf, n, &d);

    if (rc != want) {
        diag("decode returned %d, expected %d", rc, want);
        return 0;
    }

    return rc != 0 || code_eq(&d, c);
}


static void
test_code_record(void)
{
    int             rc, bad, same;
    char            member[LOYALTY_ID_MAX + 1];
    char            campaign[LOYALTY_CAMPAIGN_MAX + 1];
    char            target[LOYALTY_TARGET_MAX + 1];
    size_t          i, n, len;
    uint8_t         buf[LOYALTY_CODE_REC_MAX + 1], again[LOYALTY_CODE_REC_MAX];
    loyalty_code_t  c, d;

    code_golden_struct(&c);

    memset(buf, 0xa5, sizeof(buf));
    n = loyalty_code_encode(&c, buf);
    is_int(n, sizeof(golden_code), "code record: length");
    is_mem(buf, golden_code, sizeof(golden_code), "code record: bytes");
    is_int(buf[n], 0xa5, "code record: nothing written past its end");

    memset(&d, 0x5a, sizeof(d));
    rc = loyalty_code_decode(golden_code, sizeof(golden_code), &d);
    ok(rc == 0 && code_eq(&d, &c), "code record decodes");
    ok(d.member == (const char *) golden_code + 32
       && d.campaign == (const char *) golden_code + 37
       && d.target == (const char *) golden_code + 46,
       "code record: member, campaign and target point into the record");

    for (i = 0; i < nelts(code_patches); i++) {
        memcpy(buf, golden_code, sizeof(golden_code));
        buf[code_patches[i].offset] = code_patches[i].value;

        rc = loyalty_code_decode(buf, sizeof(golden_code), &d);
        same = 1;

        if (rc == 0) {
            n = loyalty_code_encode(&d, again);
            same = n == sizeof(golden_code) && memcmp(again, buf, n) == 0;
        }

        if (!ok(rc == code_patches[i].rc && same, "code record, %s",
                code_patches[i].what))
        {
            diag("    decode returned %d%s", rc,
                 same ? "" : ", and does not encode back the same");
        }
    }

    /* every other length of the golden record's bytes */
    bad = 0;
    memcpy(buf, golden_code, sizeof(golden_code));
    buf[sizeof(golden_code)] = '1';

    for (len = 0; len <= sizeof(golden_code) + 1; len++) {
        if (len != sizeof(golden_code)
            && loyalty_code_decode(buf, len, &d) != -1)
        {
            diag("decoded at length %zu", len);
            bad++;
        }
    }

    ok(bad == 0, "code record: every other length refused");

    /* no campaign, no target: the pointers are NULL */
    memset(&c, 0, sizeof(c));
    c.member = "m";
    c.member_len = 1;
    n = loyalty_code_encode(&c, buf);
    is_int(n, LOYALTY_CODE_FIXED + 1, "code record: the smallest");
    rc = loyalty_code_decode(buf, n, &d);
    ok(rc == 0 && d.campaign == NULL && d.target == NULL && d.flags == 0
       && d.member == (const char *) buf + 32,
       "code record: no campaign, no target");

    code_golden_struct(&c);
    c.flags |= LOYALTY_CODE_REVOKED;
    ok(code_decodes(&c, 0), "code record: revoked");

    c.max_clicks = 1;
    ok(code_decodes(&c, 0), "code record: max_clicks 1");
    c.max_clicks = 0;
    ok(code_decodes(&c, -1), "code record: max_clicks 0 refused");
    c.max_clicks = -1;
    ok(code_decodes(&c, -1), "code record: max_clicks -1 refused");
    c.max_clicks = INT64_MIN;
    ok(code_decodes(&c, -1), "code record: max_clicks INT64_MIN refused");
    c.max_clicks = INT64_MAX;
    ok(code_decodes(&c, 0), "code record: max_clicks INT64_MAX");

    c.flags = 0;
    c.expires_at = 0;
    c.max_clicks = 0;
    ok(code_decodes(&c, 0), "code record: no flags");
    c.expires_at = 1;
    ok(code_decodes(&c, -1), "code record: expires_at 1 without its flag");
    c.expires_at = 0;
    c.max_clicks = 1;
    ok(code_decodes(&c, -1), "code record: max_clicks 1 without its flag");

    code_golden_struct(&c);
    c.created_at = LOYALTY_TIME_MIN;
    c.expires_at = LOYALTY_TIME_MAX;
    ok(code_decodes(&c, 0), "code record: times at years 0 and 9999");
    c.created_at = LOYALTY_TIME_MIN - 1;
    ok(code_decodes(&c, -1), "code record: created_at before year 0");
    c.created_at = 0;
    c.expires_at = LOYALTY_TIME_MAX + 1;
    ok(code_decodes(&c, -1), "code record: expires_at after year 9999");
    c.expires_at = 0;
    ok(code_decodes(&c, 0), "code record: expires_at 0 with its flag");

    code_golden_struct(&c);
    memcpy(member, ID64, 64);
    c.member = member;
    c.member_len = 64;
    ok(code_decodes(&c, 0), "code record: member id of 64 characters");
    member[64] = 'x';
    c.member_len = 65;
    ok(code_decodes(&c, -1), "code record: member id of 65 refused");

    code_golden_struct(&c);
    memcpy(campaign, CAMPAIGN64, 64);
    c.campaign = campaign;
    c.campaign_len = 64;
    ok(code_decodes(&c, 0), "code record: campaign of 64 characters");
    campaign[64] = 'x';
    c.campaign_len = 65;
    ok(code_decodes(&c, -1), "code record: campaign of 65 refused");

    code_golden_struct(&c);
    target[0] = '/';
    memset(target + 1, 'a', LOYALTY_TARGET_MAX);
    c.target = target;
    c.target_len = LOYALTY_TARGET_MAX;
    ok(code_decodes(&c, 0), "code record: target of 1024 bytes");
    c.target_len = LOYALTY_TARGET_MAX + 1;
    ok(code_decodes(&c, -1), "code record: target of 1025 refused");
    c.target = "//evil.com";
    c.target_len = 10;
    ok(code_decodes(&c, -1), "code record: target \"//evil.com\" refused");
    c.target = "javascript:alert(1)";
    c.target_len = 19;
    ok(code_decodes(&c, -1), "code record: javascript: target refused");
    c.target = "/";
    c.target_len = 1;
    ok(code_decodes(&c, 0), "code record: target \"/\"");
}


/* random records that decode: each decodes, and encodes back the same */
static void
test_code_round_trips(void)
{
    int             bad;
    char            member[LOYALTY_ID_MAX], campaign[LOYALTY_CAMPAIGN_MAX];
    size_t          i, k, n, m;
    uint8_t         buf[LOYALTY_CODE_REC_MAX], again[LOYALTY_CODE_REC_MAX];
    uint64_t        r;
    loyalty_code_t  c, d;

    static const char  chars[] = ID64 ".";
    static const char  *tgts[] = {
        "", "/", "/p/1?utm_source=share", "https://a.com",
        "http://shop.example.com:8080/x#y", "HTTPS://B.EXAMPLE/?q"
    };

    bad = 0;

    for (i = 0; i < 2000; i++) {
        memset(&c, 0, sizeof(c));

        c.flags = rng_byte() & LOYALTY_CODE_FLAGS;
        c.member_len = 1 + rng_byte() % LOYALTY_ID_MAX;
        c.campaign_len = rng_byte() % (LOYALTY_CAMPAIGN_MAX + 1);

        for (k = 0; k < c.member_len; k++) {
            member[k] = chars[rng_byte() % (sizeof(chars) - 1)];
        }

        for (k = 0; k < c.campaign_len; k++) {
            campaign[k] = chars[rng_byte() % (sizeof(chars) - 1)];
        }

        c.member = member;
        c.campaign = c.campaign_len ? campaign : NULL;

        m = rng_byte() % nelts(tgts);
        c.target_len = (uint16_t) strlen(tgts[m]);
        c.target = c.target_len ? tgts[m] : NULL;

        for (k = 0, r = 0; k < 8; k++) {
            r = r << 8 | rng_byte();
        }

        c.created_at = (int64_t) (r % 300000000000) - 60000000000;

        if (c.flags & LOYALTY_CODE_EXPIRES) {
            c.expires_at = c.created_at + (int64_t) (r % 1000000);
        }

        if (c.flags & LOYALTY_CODE_MAX_CLICKS) {
            c.max_clicks = 1 + (int64_t) (r % 100000);
        }

        n = loyalty_code_encode(&c, buf);

        if (n != (size_t) LOYALTY_CODE_FIXED + c.member_len + c.campaign_len
                 + c.target_len
            || loyalty_code_decode(buf, n, &d) != 0
            || !code_eq(&d, &c)
            || loyalty_code_encode(&d, again) != n
            || memcmp(again, buf, n) != 0)
        {
            if (bad++ < 5) {
                diag("round trip %zu failed", i);
            }
        }
    }

    ok(bad == 0, "2000 random code records: decode, encode back the same");
}


static void
test_normalize(void)
{
    int     bad;
    long    n;
    char    out[64], in[LOYALTY_CODE_MAX + 1];
    char   *big;
    size_t  i, len;
    int     c;

    for (i = 0; i < nelts(normalizations); i++) {
        len = normalizations[i].len ? normalizations[i].len
                                    : strlen(normalizations[i].in);
        memset(out, 'x', sizeof(out));
        n = loyalty_code_normalize(normalizations[i].in, len, out);

        if (normalizations[i].out) {
            ok(n == (long) strlen(normalizations[i].out)
               && memcmp(out, normalizations[i].out, (size_t) n) == 0
               && out[n] == 'x',
               "normalize \"%s\" to \"%s\"", normalizations[i].in,
               normalizations[i].out);

        } else {
            ok(n == -1 && out[LOYALTY_CODE_MAX] == 'x',
               "normalize refuses \"%s\" (%zu bytes)", normalizations[i].in,
               len);
        }
    }

    /* every byte value in the third place of a code */
    bad = 0;

    for (c = 0; c < 256; c++) {
        in[0] = 'a';
        in[1] = 'B';
        in[2] = (char) c;

        n = loyalty_code_normalize(in, 3, out);

        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
            || (c >= '0' && c <= '9') || c == '-' || c == '_')
        {
            if (n != 3 || out[0] != 'A' || out[1] != 'B'
                || out[2] != ((c >= 'a' && c <= 'z') ? c - 32 : c))
            {
                diag("byte 0x%02x: %ld", (unsigned) c, n);
                bad++;
            }

        } else if (n != -1) {
            diag("byte 0x%02x accepted", (unsigned) c);
            bad++;
        }
    }

    ok(bad == 0, "normalize: every byte value, upper-cased or refused");

    /* 10 KB of code characters: refused, and nothing written past 32 */
    big = malloc(10240);
    memset(big, 'a', 10240);
    memset(out, 'x', sizeof(out));
    n = loyalty_code_normalize(big, 10240, out);
    ok(n == -1 && out[LOYALTY_CODE_MAX] == 'x', "normalize refuses 10 KB");
    n = loyalty_code_normalize(big, LOYALTY_CODE_MAX, out);
    ok(n == LOYALTY_CODE_MAX && out[0] == 'A' && out[31] == 'A'
       && out[LOYALTY_CODE_MAX] == 'x',
       "normalize: 32 of them, and no more written");
    free(big);
}


static int
cmp_code(const void *a, const void *b)
{
    return memcmp(a, b, LOYALTY_CODE_MINT_LEN);
}


static void
test_mint(void)
{
    int     bad, rc, c;
    char   *all, *p, buf[LOYALTY_CODE_MAX];
    size_t  i, k, seen[256], first, rest;

    static const char  alphabet[] = LOYALTY_CODE_ALPHABET;

    is_int(strlen(alphabet), 31, "the alphabet has 31 characters");

    /* no 0/O, 1/I/L: a code read aloud or copied by hand stays itself */
    ok(strpbrk(alphabet, "01ILO") == NULL, "no look-alike characters");

    all = malloc(MINTS * (LOYALTY_CODE_MINT_LEN + 1));
    memset(seen, 0, sizeof(seen));
    bad = 0;

    for (i = 0; i < MINTS; i++) {
        p = all + i * (LOYALTY_CODE_MINT_LEN + 1);
        p[LOYALTY_CODE_MINT_LEN] = '!';

        rc = loyalty_code_mint(p);

        if (rc != 0 || p[LOYALTY_CODE_MINT_LEN] != '!') {
            bad++;
            continue;
        }

        for (k = 0; k < LOYALTY_CODE_MINT_LEN; k++) {
            if (memchr(alphabet, p[k], sizeof(alphabet) - 1) == NULL) {
                bad++;
            }
            seen[(unsigned char) p[k]]++;
        }
    }

    ok(bad == 0, "%d mints: 10 characters of the alphabet each", MINTS);

    bad = 0;

    for (k = 0; k < sizeof(alphabet) - 1; k++) {
        if (seen[(unsigned char) alphabet[k]] == 0) {
            diag("'%c' never minted", alphabet[k]);
            bad++;
        }
    }

    ok(bad == 0, "every character of the alphabet minted");

    /*
     * A byte taken modulo 31 would favour the first 8 characters by 1/8;
     * over 100000 characters that is 25 standard deviations away.
     */
    first = 0;
    rest = 0;

    for (k = 0; k < sizeof(alphabet) - 1; k++) {
        c = (unsigned char) alphabet[k];
        if (k < 8) {
            first += seen[c];
        } else {
            rest += seen[c];
        }
    }

    ok(first * 23 * 100 < rest * 8 * 105,
       "no bias: the first 8 characters drawn %zu times, the other 23 %zu",
       first, rest);

    qsort(all, MINTS, LOYALTY_CODE_MINT_LEN + 1, cmp_code);
    bad = 0;

    for (i = 1; i < MINTS; i++) {
        if (cmp_code(all + (i - 1) * (LOYALTY_CODE_MINT_LEN + 1),
                     all + i * (LOYALTY_CODE_MINT_LEN + 1))
            == 0)
        {
            bad++;
        }
    }

    ok(bad == 0, "%d mints all distinct", MINTS);

    /* a minted code is already normalized */
    p = all;
    ok(loyalty_code_normalize(p, LOYALTY_CODE_MINT_LEN, buf) == 10
       && cmp_code(p, buf) == 0,
       "a minted code normalizes to itself");

    free(all);
}


static void
test_campaign(void)
{
    ok(loyalty_valid_campaign("spring-24", 9), "campaign \"spring-24\"");
    ok(loyalty_valid_campaign("a", 1), "campaign \"a\"");
    ok(loyalty_valid_campaign("Q1.launch_2", 11), "campaign \"Q1.launch_2\"");
    ok(loyalty_valid_campaign(CAMPAIGN64, 64), "campaign of 64 characters");
    ok(!loyalty_valid_campaign(CAMPAIGN64 "x", 65),
       "campaign of 65 refused");
    ok(!loyalty_valid_campaign("", 0), "empty campaign refused");
    ok(!loyalty_valid_campaign("a b", 3), "campaign \"a b\" refused");
    ok(!loyalty_valid_campaign("a/b", 3), "campaign \"a/b\" refused");
    ok(!loyalty_valid_campaign("a\0b", 3), "campaign with NUL refused");
    ok(!loyalty_valid_campaign("caf\xc3\xa9", 5), "campaign UTF-8 refused");
}


/* a host name of len bytes: labels of 63 bytes and a shorter last one */
static void
host_of(char *host, size_t len)
{
    size_t  i;

    for (i = 0; i < len; i++) {
        host[i] = (i % 64 == 63) ? '.' : (char) ('a' + i % 26);
    }

    host[len] = '\0';
}


static int
target_agrees(const char *s, size_t len, loyalty_target_e type,
    const char *host)
{
    size_t            host_len;
    const char       *got;
    loyalty_target_e  t;

    got = (const char *) 1;
    host_len = 99;

    t = loyalty_target_check(s, len, &got, &host_len);

    if (t != type) {
        diag("type %d, expected %d", (int) t, (int) type);
        return 0;
    }

    if (host == NULL) {
        if (got != NULL || host_len != 0) {
            diag("a host given for a non-URL");
            return 0;
        }
        return 1;
    }

    if (got < s || got + host_len > s + len || host_len != strlen(host)
        || memcmp(got, host, host_len) != 0)
    {
        diag("host \"%.*s\", expected \"%s\"", (int) host_len,
             got ? got : "", host);
        return 0;
    }

    return 1;
}


static void
test_targets(void)
{
    char    buf[LOYALTY_TARGET_MAX + 2], host[LOYALTY_HOST_MAX + 2];
    size_t  i, len;

    for (i = 0; i < nelts(targets); i++) {
        len = targets[i].len ? targets[i].len : strlen(targets[i].in);

        ok(target_agrees(targets[i].in, len, targets[i].type, targets[i].host),
           "target \"%s\": %s", targets[i].in,
           targets[i].type == LOYALTY_TARGET_PATH ? "path"
           : targets[i].type == LOYALTY_TARGET_URL ? "URL" : "invalid");
    }

    buf[0] = '/';
    memset(buf + 1, 'a', sizeof(buf) - 1);
    ok(target_agrees(buf, LOYALTY_TARGET_MAX, LOYALTY_TARGET_PATH, NULL),
       "target: a path of 1024 bytes");
    ok(target_agrees(buf, LOYALTY_TARGET_MAX + 1, LOYALTY_TARGET_INVALID,
                     NULL),
       "target: a path of 1025 bytes refused");

    memcpy(buf, "https://a.com/", 14);
    ok(target_agrees(buf, LOYALTY_TARGET_MAX, LOYALTY_TARGET_URL, "a.com"),
       "target: a URL of 1024 bytes");
    ok(target_agrees(buf, LOYALTY_TARGET_MAX + 1, LOYALTY_TARGET_INVALID,
                     NULL),
       "target: a URL of 1025 bytes refused");

    /* labels of 63, hosts of 253 bytes */
    len = (size_t) sprintf(buf, "https://%s.com/", LABEL63);
    ok(target_agrees(buf, len, LOYALTY_TARGET_URL, LABEL63 ".com"),
       "target: a label of 63 bytes");
    len = (size_t) sprintf(buf, "https://%sz.com/", LABEL63);
    ok(target_agrees(buf, len, LOYALTY_TARGET_INVALID, NULL),
       "target: a label of 64 bytes refused");

    host_of(host, 253);
    len = (size_t) sprintf(buf, "https://%s:443/x", host);
    ok(target_agrees(buf, len, LOYALTY_TARGET_URL, host),
       "target: a host of 253 bytes");
    host_of(host, 254);
    len = (size_t) sprintf(buf, "https://%s:443/x", host);
    ok(target_agrees(buf, len, LOYALTY_TARGET_INVALID, NULL),
       "target: a host of 254 bytes refused");
}


static void
test_hosts(void)
{
    static const char   *hosts[] = { "shop.example.com", "Example.ORG",
                                     "a.b" };
    static const size_t  lens[] = { 16, 11, 3 };

#define allowed(h)                                                           \
    loyalty_host_allowed(h, strlen(h), hosts, lens, nelts(hosts))

    ok(allowed("shop.example.com"), "host allowed: exact");
    ok(allowed("SHOP.Example.Com"), "host allowed: other case");
    ok(allowed("example.org"), "host allowed: listed in other case");
    ok(allowed("a.b"), "host allowed: the last in the list");
    ok(!allowed("shop.example.co"), "host refused: a prefix");
    ok(!allowed("shop.example.comm"), "host refused: longer");
    ok(!allowed("example.com"), "host refused: the parent domain");
    ok(!allowed("evil.shop.example.com"), "host refused: a subdomain");
    ok(!allowed("shop.example.com.evil.com"), "host refused: a suffix");
    ok(!allowed(""), "host refused: empty");
    ok(!allowed("shop-example.com"), "host refused: '-' for '.'");

#undef allowed

    ok(!loyalty_host_allowed("a.b", 3, hosts, lens, 0),
       "host refused: an empty list");
    ok(!loyalty_host_allowed("a.bc", 3 + 1, hosts, lens, nelts(hosts)),
       "host refused: only host_len bytes count");
    ok(loyalty_host_allowed("a.bc", 3, hosts, lens, nelts(hosts)),
       "host allowed: only host_len bytes count");
}


static void
test_days(void)
{
    int      bad;
    int64_t  t, d;

    is_int(loyalty_day(0), 0, "day of 0");
    is_int(loyalty_day(86399), 0, "day of 86399");
    is_int(loyalty_day(86400), 1, "day of 86400");
    is_int(loyalty_day(-1), -1, "day of -1");
    is_int(loyalty_day(-86399), -1, "day of -86399");
    is_int(loyalty_day(-86400), -1, "day of -86400");
    is_int(loyalty_day(-86401), -2, "day of -86401");
    is_int(loyalty_day(1700000000), 19675, "day of 1700000000");
    is_int(loyalty_day(1699920000), 19675, "day of 2023-11-14T00:00:00Z");
    is_int(loyalty_day(1699919999), 19674, "day of 2023-11-13T23:59:59Z");
    is_int(loyalty_day(LOYALTY_TIME_MAX), DAY_MAX, "day of 9999-12-31");
    is_int(loyalty_day(LOYALTY_TIME_MIN), -719528, "day of 0000-01-01");
    is_int(loyalty_day(INT64_MAX), INT64_C(106751991167300),
           "day of INT64_MAX");
    is_int(loyalty_day(INT64_MIN), INT64_C(-106751991167301),
           "day of INT64_MIN");

    bad = 0;

    for (t = -300000; t <= 300000; t += 13) {
        d = loyalty_day(t);
        if (!(d * 86400 <= t && t < (d + 1) * 86400)) {
            if (bad++ < 5) {
                diag("day of %lld: %lld", (long long) t, (long long) d);
            }
        }
    }

    ok(bad == 0, "day: midnight <= t < next midnight, around 1970");
}


static void
test_clicks_keys(void)
{
    int          bad, rc;
    size_t       i, n, prev_n, code_len;
    int64_t      day;
    uint8_t      key[LOYALTY_CLICKS_KEY_MAX + 8], prev[LOYALTY_CLICKS_KEY_MAX];
    const char  *code;

    static const int64_t  days[] = {
        0, 1, 255, 256, 257, 19675, 19676, 65535, 65536, 1048575, 1048576,
        DAY_MAX - 1, DAY_MAX
    };

    n = loyalty_clicks_key("CODE10", 6, 19675, key);
    is_int(n, sizeof(golden_key), "clicks key: length");
    is_mem(key, golden_key, sizeof(golden_key), "clicks key: bytes");

    rc = loyalty_clicks_key_parse(golden_key, sizeof(golden_key), &code,
                                  &code_len, &day);
    ok(rc == 0 && code == (const char *) golden_key && code_len == 6
       && day == 19675, "clicks key parses");

    n = loyalty_clicks_key("ABC", 3, 0, key);
    ok(n == 8 && memcmp(key, "ABC\0\0\0\0\0", 8) == 0,
       "clicks key: \"ABC\" on day 0");
    n = loyalty_clicks_key("ABC", 3, DAY_MAX, key);
    ok(n == 8 && memcmp(key, "ABC\0\0\x2c\xc0\xa0", 8) == 0,
       "clicks key: \"ABC\" on 9999-12-31");
    n = loyalty_clicks_key(CODE32, 32, 7, key);
    ok(n == 37 && memcmp(key, CODE32 "\0\0\0\0\7", 37) == 0,
       "clicks key: a code of 32");

    is_int(loyalty_clicks_key("ABC", 3, DAY_MAX + 1, key), 0,
           "clicks key: no day after 9999-12-31");
    is_int(loyalty_clicks_key("ABC", 3, -1, key), 0,
           "clicks key: no day before 1970");
    is_int(loyalty_clicks_key("ABC", 3, INT64_MAX, key), 0,
           "clicks key: no day INT64_MAX");
    is_int(loyalty_clicks_key("abc", 3, 0, key), 0,
           "clicks key: a code not normalized");
    is_int(loyalty_clicks_key("AB", 2, 0, key), 0,
           "clicks key: a code of 2");
    is_int(loyalty_clicks_key(CODE32 "A", 33, 0, key), 0,
           "clicks key: a code of 33");
    is_int(loyalty_clicks_key("A\0C", 3, 0, key), 0,
           "clicks key: a code with a NUL");

    /* a code's days in order, byte for byte, and each parses back */
    bad = 0;
    prev_n = 0;

    for (i = 0; i < nelts(days); i++) {
        n = loyalty_clicks_key("ZZ9", 3, days[i], key);

        if (i > 0 && !(n == prev_n && memcmp(prev, key, n) < 0))
        {
            diag("day %lld sorts before day %lld", (long long) days[i],
                 (long long) days[i - 1]);
            bad++;
        }

        if (loyalty_clicks_key_parse(key, n, &code, &code_len, &day) != 0
            || code != (const char *) key || code_len != 3
            || day != days[i])
        {
            diag("day %lld does not parse back", (long long) days[i]);
            bad++;
        }

        memcpy(prev, key, n);
        prev_n = n;
    }

    ok(bad == 0, "clicks keys of one code sort by day and parse back");

    bad = 0;

    for (day = 0; day <= DAY_MAX; day += 997) {
        n = loyalty_clicks_key("ZZ9", 3, day, key);
        if (day > 0 && memcmp(prev, key, n) >= 0) {
            bad++;
        }
        memcpy(prev, key, n);
    }

    ok(bad == 0, "clicks keys sort by day, every 997th day");

    /* "ABC"'s keys, of every day, before any of "ABC-" or "ABCD" */
    n = loyalty_clicks_key("ABC", 3, DAY_MAX, prev);
    loyalty_clicks_key("ABC-", 4, 0, key);
    ok(memcmp(prev, key, n) < 0, "clicks keys: \"ABC\" before \"ABC-\"");
    loyalty_clicks_key("ABB", 3, DAY_MAX, prev);
    loyalty_clicks_key("ABC", 3, 0, key);
    ok(memcmp(prev, key, n) < 0, "clicks keys: \"ABB\" before \"ABC\"");

#define refused(k, len, what)                                                \
    is_int(loyalty_clicks_key_parse((const uint8_t *) k, len, &code,         \
                                    &code_len, &day),                        \
           -1, "clicks key refused: %s", what)

    refused("ABC\0\0\0\0", 7, "one byte short");
    refused("", 0, "empty");
    refused("AB\0\0\0\0\0", 7, "a code of 2");
    refused(CODE32 "A\0\0\0\0\0", 38, "a code of 33");
    refused("ABCD\0\0\0\0", 8, "no NUL");
    refused("ABCX\0\0\0\0", 8, "'X' for the NUL");
    refused("abc\0\0\0\0\0", 8, "a code in lower case");
    refused("A C\0\0\0\0\0", 8, "a space in the code");
    refused("A\0C\0\0\0\0\0", 8, "a NUL in the code");
    refused("ABC\0\0\x2c\xc0\xa1", 8, "the day after 9999-12-31");
    refused("ABC\0\xff\xff\xff\xff", 8, "day 2^32 - 1");
    refused("ABC\0\x80\0\0\0", 8, "day 2^31");

#undef refused
}


static void
test_clicks_record(void)
{
    int       bad;
    size_t    i, k;
    uint8_t   buf[LOYALTY_CLICKS_REC_LEN + 1];
    uint64_t  counts[LOYALTY_CLICK_COUNTERS], got[LOYALTY_CLICK_COUNTERS];

    static const char  *names[] = {
        "total", "unique", "bot", "self", "rejected", "attributed"
    };

    is_int(sizeof(golden_clicks), LOYALTY_CLICKS_REC_LEN,
           "clicks record: 56 bytes");

    memset(buf, 0xa5, sizeof(buf));
    loyalty_clicks_encode(golden_counts, buf);
    is_mem(buf, golden_clicks, sizeof(golden_clicks), "clicks record: bytes");
    is_int(buf[LOYALTY_CLICKS_REC_LEN], 0xa5,
           "clicks record: nothing written past its end");

    memset(got, 0x5a, sizeof(got));
    ok(loyalty_clicks_decode(golden_clicks, sizeof(golden_clicks), got) == 0
       && memcmp(got, golden_counts, sizeof(got)) == 0,
       "clicks record decodes");

    is_int(loyalty_clicks_decode(golden_clicks, 55, got), -1,
           "clicks record of 55 bytes refused");
    memcpy(buf, golden_clicks, sizeof(golden_clicks));
    is_int(loyalty_clicks_decode(buf, 57, got), -1,
           "clicks record of 57 bytes refused");
    is_int(loyalty_clicks_decode(buf, 0, got), -1,
           "clicks record of 0 bytes refused");

    buf[0] = 0;
    is_int(loyalty_clicks_decode(buf, 56, got), -1,
           "clicks record of version 0 refused");
    buf[0] = 2;
    is_int(loyalty_clicks_decode(buf, 56, got), -1,
           "clicks record of version 2 refused");

    for (i = 1; i < 8; i++) {
        memcpy(buf, golden_clicks, sizeof(golden_clicks));
        buf[i] = (uint8_t) (1 << i);
        is_int(loyalty_clicks_decode(buf, 56, got), -1,
               "clicks record: reserved byte %zu refused", i);
    }

    bad = 0;

    for (i = 0; i < 500; i++) {
        for (k = 0; k < LOYALTY_CLICK_COUNTERS; k++) {
            counts[k] = (uint64_t) rng_byte() << (rng_byte() % 57)
                        | rng_byte();
        }

        loyalty_clicks_encode(counts, buf);

        if (loyalty_clicks_decode(buf, LOYALTY_CLICKS_REC_LEN, got) != 0
            || memcmp(got, counts, sizeof(got)) != 0)
        {
            bad++;
        }
    }

    ok(bad == 0, "500 random clicks records round trip");

    bad = 0;

    for (i = 0; i < LOYALTY_CLICK_COUNTERS; i++) {
        if (strcmp(loyalty_click_counter_names[i], names[i]) != 0) {
            bad++;
        }
    }

    ok(bad == 0 && nelts(names) == LOYALTY_CLICK_COUNTERS,
       "counter names in record order");
}


typedef struct {
    const char  *code;
    int          strong;
} strength_t;


static const strength_t  strengths[] = {
    { "Q7Z", 0 },                   /* issue 18: 46,656 walked in 6 s */
    { "ABCDE", 0 },
    { "12345678", 0 },              /* 10^8 < 2^28 */
    { "123456789", 1 },
    { "ABCDEF", 1 },                /* 26^6 > 2^28 */
    { "AAAAAA", 0 },                /* fewer than 4 different */
    { "ABABAB", 0 },
    { "ABCABC", 0 },
    { "ABCDAB", 1 },
    { "---___", 0 },
    { "-_-_-_-_-_-_-_-_-_-_-_-_-_-_", 0 },
    { "A1B2C3", 1 },
    { "LIN-FAN", 1 },
    { "ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ", 0 },
};


static void
test_strength(void)
{
    size_t  i;
    char    code[LOYALTY_CODE_MINT_LEN];

    for (i = 0; i < nelts(strengths); i++) {
        ok(loyalty_code_strong(strengths[i].code, strlen(strengths[i].code))
           == strengths[i].strong,
           "%s is %s", strengths[i].code,
           strengths[i].strong ? "strong" : "weak");
    }

    ok(loyalty_code_mint(code) == 0
       && loyalty_code_strong(code, LOYALTY_CODE_MINT_LEN),
       "a minted code is strong");
}


int
main(void)
{
    plan(3 + 2 + nelts(code_patches) + 1 + 2 + 6 + 3 + 4 + 4 + 5 + 1
         + nelts(normalizations) + 3
         + 2 + 4 + 1
         + 10
         + nelts(targets) + 4 + 4
         + 14
         + 15
         + 3 + 3 + 7 + 2 + 2 + 12
         + 1 + 3 + 3 + 2 + 7 + 2
         + nelts(strengths) + 1);

    test_code_record();
    test_code_round_trips();
    test_normalize();
    test_mint();
    test_strength();
    test_campaign();
    test_targets();
    test_hosts();
    test_days();
    test_clicks_keys();
    test_clicks_record();

    return done();
}
