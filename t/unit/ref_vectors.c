/*
 * The attribution cookie's test vectors,
 * docs/attribution-cookie-vectors.json.
 *
 *     build/unit/ref_vectors.t --write   prints them, made by the core's
 *                                        own signing code
 *     build/unit/ref_vectors.t           checks, from the repository
 *                                        root, that the file is what the
 *                                        code prints and that each vector
 *                                        holds against loyalty_sign.c
 *
 * so that the specification (docs/attribution-cookie.md) and the module
 * cannot drift apart.  The module signs and reads this cookie itself: the
 * vectors are for whoever writes another verifier, and they pin the
 * format down.
 */

#define VECTORS     "docs/attribution-cookie-vectors.json"
#define VEC_NAME    "ref_vectors"
#define VEC_NKEYS   3

#include "vectors.h"


#define CODE32      "ABCDEFGHJKMNPQRSTUVWXYZ23456789_"

/* loyalty_ref_window's default */
#define WINDOW      (30 * DAY)


typedef struct {
    const char  *name;
    const char  *code;
    const char  *referrer;
    const char  *kid;
    int64_t      at;
    int64_t      now;
    int64_t      window;
} vec_valid_t;


typedef struct {
    const char  *name;
    const char  *code;
    size_t       code_len;
    const char  *referrer;
    size_t       referrer_len;
    int64_t      at;
} vec_unsignable_t;


/* in the keys file's order: the first signs */
static const vec_key_t  vec_keys[VEC_NKEYS] = {
    { "k1", K1HEX },
    { "k0", K0HEX },
    { KID16, K128HEX },
};

static const char  vec_keys_file[] =
    "# nginx-loyalty keys: KID SECRET_HEX, the first key signs\n"
    "k1 " K1HEX "\n"
    "k0 " K0HEX "\n"
    KID16 " " K128HEX "\n";


static const vec_valid_t  vec_valid[] = {
    { "a minted code of alice's, clicked an hour ago, signed with k1",
      "K7D3MQ2XHP", "alice", "k1", T, T + HOUR, WINDOW },
    { "the same signed with k0, the second key: every key verifies",
      "K7D3MQ2XHP", "alice", "k0", T, T + HOUR, WINDOW },
    { "a vanity code, on the window's last second", "SPRING24", "lin.fan",
      "k1", T, T + WINDOW - 1, WINDOW },
    { "a code of three characters, on the click's own second", "LIN",
      "bob.b-1_x", "k1", T, T, WINDOW },
    { "a code with \"-\" and \"_\", clicked five minutes ahead of the "
      "verifier's clock", "SPRING_24-B", "carol", "k1", T + 300, T,
      WINDOW },
    { "a referrer id of digits (a phone number, which the cookie does not "
      "carry)", "Q7ZK4MPX2R", "13800138000", "k1", T, T + DAY, WINDOW },
    { "click time 7: times are plain decimals, whatever their size",
      "K7D3MQ2XHP", "alice", "k1", 7, 10, WINDOW },
    { "a window of one day", "K7D3MQ2XHP", "alice", "k1", T, T + DAY - 1,
      DAY },
    { "the longest cookie, 106 bytes: a code of 32, a time of 12 digits, a "
      "key id of 16, a secret of 128 bytes; a referrer of 64 characters, "
      "which changes nothing in the length", CODE32, ID64, KID16,
      LOYALTY_EXPIRES_MAX, LOYALTY_EXPIRES_MAX, WINDOW },
};


static const vec_unsignable_t  vec_unsignable[] = {
    { "an empty code", "", 0, "alice", 5, T },
    { "a code of two characters", "AB", 2, "alice", 5, T },
    { "a code of 33 characters", CODE32 "X", 33, "alice", 5, T },
    { "a code with the separator", "AB~CD", 5, "alice", 5, T },
    { "a code with a dot", "SPRING.24", 9, "alice", 5, T },
    { "a code that is not ASCII", "CAF\xc3\x89", 5, "alice", 5, T },
    { "an empty referrer", "K7D3MQ2XHP", 10, "", 0, T },
    { "a referrer of 65 characters", "K7D3MQ2XHP", 10, ID64 "x", 65, T },
    { "a referrer with an at sign (an email address is no member id)",
      "K7D3MQ2XHP", 10, "alice@example.com", 17, T },
    { "a referrer with the separator", "K7D3MQ2XHP", 10, "a~b", 3, T },
    { "a click time before 1970", "K7D3MQ2XHP", 10, "alice", 5, -1 },
    { "a click time of 13 digits", "K7D3MQ2XHP", 10, "alice", 5,
      LOYALTY_EXPIRES_MAX + 1 },
};


/*
 * prefix "~" MAC, the MAC over domain "~" prefix, then "~" bound unless
 * bound is NULL, with kid's secret: genuine MACs over anything
 */
static size_t
sign(const char *kid, const char *code, const char *referrer, int64_t at,
    char *out)
{
    long  n;

    n = loyalty_ref_cookie_sign(key_ring(kid), code, strlen(code), referrer,
                                strlen(referrer), at, out);
    if (n < 0) {
        fail("cannot sign");
    }

    return (size_t) n;
}


/* an old-form cookie: CODE~REFERRER~AT~KID~MAC, MAC over "ref~..." */
static size_t
sign_legacy(const char *kid, const char *code, const char *referrer,
    int64_t at, char *out)
{
    char  prefix[BUFLEN];
    int   n;

    n = snprintf(prefix, sizeof(prefix), "%s~%s~%lld~%s", code, referrer,
                 (long long) at, kid);

    return seal(kid, LOYALTY_DOMAIN_REF, prefix, (size_t) n, NULL, out);
}


static void
add_invalid(json_t *arr, const char *name, const char *reason,
    const char *cookie, size_t len, const char *referrer, int64_t now,
    int64_t window)
{
    json_array_append_new(arr,
        json_pack("{s:s, s:s%, s:s, s:I, s:I, s:s}",
                  "name", name, "cookie", cookie, len,
                  "referrer", referrer, "now", (json_int_t) now,
                  "window", (json_int_t) window, "reason", reason));
}


static json_t *
make_valid(void)
{
    char     buf[BUFLEN], input[BUFLEN], hex[2 * LOYALTY_MAC_LEN + 1];
    size_t   i, n;
    json_t  *arr;

    const vec_valid_t  *v;

    arr = json_array();

    for (i = 0; i < nelts(vec_valid); i++) {
        v = &vec_valid[i];
        n = sign(v->kid, v->code, v->referrer, v->at, buf);

        snprintf(input, sizeof(input), "ref2~%s~%lld~%s~%s", v->code,
                 (long long) v->at, v->kid, v->referrer);
        mac_hex(v->kid, input, hex);

        json_array_append_new(arr,
            json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:s, s:s%}",
                      "name", v->name, "code", v->code,
                      "referrer", v->referrer, "kid", v->kid,
                      "at", (json_int_t) v->at, "now", (json_int_t) v->now,
                      "window", (json_int_t) v->window,
                      "mac_input", input, "mac_hex", hex,
                      "cookie", buf, n));
    }

    return arr;
}


/* the old form, and what the module replaces it with */
static json_t *
make_legacy(void)
{
    char     old[BUFLEN], reissued[BUFLEN], input[BUFLEN];
    char     hex[2 * LOYALTY_MAC_LEN + 1];
    size_t   i, n, k;
    json_t  *arr;

    static const struct {
        const char  *name;
        const char  *code;
        const char  *referrer;
        const char  *kid;
        int64_t      at;
        int64_t      now;
    } legacy[] = {
        { "an old-form cookie signed with k1", "Q7ZK4MPX2R", "lin.fan",
          "k1", T, T + HOUR },
        { "an old-form cookie signed with k0: reissued with k1, the first "
          "key", "K7D3MQ2XHP", "alice", "k0", T, T + 29 * DAY },
        { "the longest old form, 171 bytes", CODE32, ID64, KID16,
          LOYALTY_EXPIRES_MAX, LOYALTY_EXPIRES_MAX },
    };

    arr = json_array();

    for (i = 0; i < nelts(legacy); i++) {
        n = sign_legacy(legacy[i].kid, legacy[i].code, legacy[i].referrer,
                        legacy[i].at, old);
        k = sign("k1", legacy[i].code, legacy[i].referrer, legacy[i].at,
                 reissued);

        snprintf(input, sizeof(input), "ref~%s~%s~%lld~%s", legacy[i].code,
                 legacy[i].referrer, (long long) legacy[i].at,
                 legacy[i].kid);
        mac_hex(legacy[i].kid, input, hex);

        json_array_append_new(arr,
            json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:s, s:s%,"
                      " s:s%}",
                      "name", legacy[i].name, "code", legacy[i].code,
                      "referrer", legacy[i].referrer, "kid", legacy[i].kid,
                      "at", (json_int_t) legacy[i].at,
                      "now", (json_int_t) legacy[i].now,
                      "window", (json_int_t) WINDOW,
                      "mac_input", input, "mac_hex", hex,
                      "cookie", old, n, "reissued", reissued, k));
    }

    return arr;
}


/* genuine MACs over what was not signed, or MACs made wrongly */
static void
make_bad_mac(json_t *arr, const char *good, size_t glen)
{
    char         buf[BUFLEN];
    size_t       n;
    uint8_t      secret[LOYALTY_SECRET_MAX];
    const char  *mac;

    mac = good + glen - LOYALTY_MAC_B64_LEN;

#define BAD(name, s)                                                         \
    n = (size_t) sprintf(buf, s "~%s", mac);                                 \
    add_invalid(arr, name, "bad-mac", buf, n, "alice", T + HOUR, WINDOW)

    BAD("the code changed to another code of the same member, the MAC kept",
        "K7D3MQ2XHQ~1700000000~k1");
    BAD("the code in lower case, the MAC kept: the MAC covers the bytes "
        "sent", "k7d3mq2xhp~1700000000~k1");
    BAD("the click time moved a day on, the MAC kept",
        "K7D3MQ2XHP~1700086400~k1");
    BAD("relabelled with the other key's id", "K7D3MQ2XHP~1700000000~k0");
#undef BAD

    n = (size_t) sprintf(buf, "K7D3MQ2XHP~1700000000~k1~%.*s",
                         LOYALTY_MAC_B64_LEN, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
                         "AAAAAAAAAAAAAAAAAAAAAAAAA");
    add_invalid(arr, "a MAC of zero bytes", "bad-mac", buf, n, "alice",
                T + HOUR, WINDOW);

    n = (size_t) sprintf(buf, "%s", good);
    buf[n - LOYALTY_MAC_B64_LEN] = buf[n - LOYALTY_MAC_B64_LEN] == 'A'
                                   ? 'B' : 'A';
    add_invalid(arr, "the MAC's first character changed", "bad-mac", buf, n,
                "alice", T + HOUR, WINDOW);

    n = seal("k0", "ref2", "K7D3MQ2XHP~1700000000~k1", 24, "alice", buf);
    add_invalid(arr, "signed with another secret under the same key id",
                "bad-mac", buf, n, "alice", T + HOUR, WINDOW);

    if (loyalty_hex_decode(K1HEX, 64, secret, sizeof(secret)) != 32) {
        fail("hex");
    }

#define RAW(name, msg)                                                       \
    n = seal_raw(secret, 32, msg, strlen(msg), "K7D3MQ2XHP~1700000000~k1",   \
                 buf);                                                       \
    add_invalid(arr, name, "bad-mac", buf, n, "alice", T + HOUR, WINDOW)

    RAW("a MAC without the referrer", "ref2~K7D3MQ2XHP~1700000000~k1");
    RAW("a MAC with the referrer but no \"~\" before it",
        "ref2~K7D3MQ2XHP~1700000000~k1alice");
    RAW("a MAC with the referrer where the old form has it",
        "ref2~K7D3MQ2XHP~alice~1700000000~k1");
    RAW("a MAC without the \"ref2~\" in front",
        "K7D3MQ2XHP~1700000000~k1~alice");
    RAW("a MAC under the old form's domain \"ref\"",
        "ref~K7D3MQ2XHP~1700000000~k1~alice");
    RAW("a MAC under the member cookie's domain",
        "member~K7D3MQ2XHP~1700000000~k1~alice");
#undef RAW
}


/* well-formed and genuinely MACed, but not to be accepted */
static void
make_refused(json_t *arr, const char *good, size_t glen)
{
    char    buf[BUFLEN];
    size_t  n;

    n = seal("k1", "ref2", "K7D3MQ2XHP~1700000000~k9", 24, "alice", buf);
    add_invalid(arr, "a key id the keys file does not hold (a retired key)",
                "unknown-kid", buf, n, "alice", T + HOUR, WINDOW);
    n = seal("k1", "ref2", "K7D3MQ2XHP~1700000000~K1", 24, "alice", buf);
    add_invalid(arr, "the key id in another case: key ids are "
                "case-sensitive", "unknown-kid", buf, n, "alice", T + HOUR,
                WINDOW);

    add_invalid(arr, "the code given to bob since the click: signed for "
                "alice, it is bob's now", "other-referrer", good, glen,
                "bob", T + HOUR, WINDOW);
    n = sign_legacy("k1", "K7D3MQ2XHP", "bob", T, buf);
    add_invalid(arr, "an old-form cookie naming bob, for a code of alice's",
                "other-referrer", buf, n, "alice", T + HOUR, WINDOW);

    add_invalid(arr, "on the window's end: now - at = window", "expired",
                good, glen, "alice", T + WINDOW, WINDOW);
    add_invalid(arr, "a click of 31 days ago", "expired", good, glen,
                "alice", T + 31 * DAY, WINDOW);
    add_invalid(arr, "a click of 8 days ago when the window was shortened "
                "to 7: the window is the verifier's", "expired", good, glen,
                "alice", T + 8 * DAY, 7 * DAY);
    n = sign_legacy("k1", "K7D3MQ2XHP", "alice", T, buf);
    add_invalid(arr, "an old-form cookie past the window", "expired", buf, n,
                "alice", T + WINDOW, WINDOW);

    add_invalid(arr, "a click 301 seconds ahead of the verifier's clock",
                "future", good, glen, "alice", T - 301, WINDOW);
    n = sign("k1", "K7D3MQ2XHP", "alice", LOYALTY_EXPIRES_MAX, buf);
    add_invalid(arr, "a click in the year 33658", "future", buf, n, "alice",
                T, WINDOW);
}


/* prefixes "CODE~AT~KID" that carry a genuine k1 MAC for alice */
static const struct {
    const char  *name;
    const char  *prefix;
    size_t       len;
} vec_malformed_prefixes[] = {
#define P(name, s)  { name, s, sizeof(s) - 1 }
    P("a code of two characters", "AB~1700000000~k1"),
    P("an empty code", "~1700000000~k1"),
    P("a code with a dot", "SPRING.24~1700000000~k1"),
    P("a code with a space", "SPRING 24~1700000000~k1"),
    P("a code that is not ASCII", "CAF\xc3\x89~1700000000~k1"),
    P("a code with a NUL byte", "K7D3\0MQ2XHP~1700000000~k1"),
    P("a code of 33 characters", CODE32 "X~1700000000~k1"),
    P("a click time with a leading zero", "K7D3MQ2XHP~01700000000~k1"),
    P("a click time with a plus sign", "K7D3MQ2XHP~+1700000000~k1"),
    P("a negative click time", "K7D3MQ2XHP~-1~k1"),
    P("a click time in hex", "K7D3MQ2XHP~0x6553f100~k1"),
    P("a click time with a fraction", "K7D3MQ2XHP~1700000000.5~k1"),
    P("a click time of 13 digits", "K7D3MQ2XHP~1000000000000~k1"),
    P("an empty click time", "K7D3MQ2XHP~~k1"),
    P("a key id with a dot", "K7D3MQ2XHP~1700000000~k.1"),
    P("a key id of 17 characters", "K7D3MQ2XHP~1700000000~k1aaaaaaaaaaaaaaa"),
    P("an empty key id", "K7D3MQ2XHP~1700000000~"),
    P("two fields before the MAC: no key id", "K7D3MQ2XHP~1700000000"),
    P("five fields before the MAC", "K7D3MQ2XHP~alice~x~1700000000~k1"),
    P("the old form with a referrer that is no member id",
      "K7D3MQ2XHP~alice@example.com~1700000000~k1"),
    P("the old form with an empty referrer", "K7D3MQ2XHP~~1700000000~k1"),
#undef P
};


static void
make_malformed(json_t *arr, const char *good, size_t glen)
{
    char         buf[BUFLEN];
    size_t       i, n;
    const char  *p;

    static const char  b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrs"
                               "tuvwxyz0123456789-_";

    for (i = 0; i < nelts(vec_malformed_prefixes); i++) {
        n = seal("k1", "ref2", vec_malformed_prefixes[i].prefix,
                 vec_malformed_prefixes[i].len, "alice", buf);
        add_invalid(arr, vec_malformed_prefixes[i].name, "malformed", buf, n,
                    "alice", T + HOUR, WINDOW);
    }

    n = (size_t) sprintf(buf, "%s=", good);
    add_invalid(arr, "a MAC with base64 padding", "malformed", buf, n,
                "alice", T + HOUR, WINDOW);

    n = (size_t) sprintf(buf, "%s", good);
    for (i = n - LOYALTY_MAC_B64_LEN; i < n; i++) {
        buf[i] = buf[i] == '-' ? '+' : buf[i] == '_' ? '/' : buf[i];
    }

    if (strcmp(buf, good) == 0) {
        fail("the good cookie's MAC has neither \"-\" nor \"_\"");
    }

    add_invalid(arr, "a MAC in standard base64, \"+\" and \"/\"",
                "malformed", buf, n, "alice", T + HOUR, WINDOW);

    n = (size_t) sprintf(buf, "%s", good);
    buf[n - 1] = b64[(strchr(b64, buf[n - 1]) - b64) | 1];
    add_invalid(arr, "a MAC whose last character has non-zero spare bits",
                "malformed", buf, n, "alice", T + HOUR, WINDOW);

    add_invalid(arr, "a MAC of 42 characters", "malformed", good, glen - 1,
                "alice", T + HOUR, WINDOW);
    n = (size_t) sprintf(buf, "%sA", good);
    add_invalid(arr, "a MAC of 44 characters", "malformed", buf, n, "alice",
                T + HOUR, WINDOW);

    n = 0;
    for (p = good; *p; p++) {
        n += (size_t) (*p == '~' ? sprintf(buf + n, "%%7E")
                                 : sprintf(buf + n, "%c", *p));
    }
    add_invalid(arr, "percent-encoded separators", "malformed", buf, n,
                "alice", T + HOUR, WINDOW);

    n = (size_t) sprintf(buf, "\"%s\"", good);
    add_invalid(arr, "a value in double quotes", "malformed", buf, n,
                "alice", T + HOUR, WINDOW);
    n = (size_t) sprintf(buf, "%s\n", good);
    add_invalid(arr, "a newline after the value", "malformed", buf, n,
                "alice", T + HOUR, WINDOW);
    add_invalid(arr, "an empty value", "malformed", "", 0, "alice",
                T + HOUR, WINDOW);
    add_invalid(arr, "separators only", "malformed", "~~~", 3, "alice",
                T + HOUR, WINDOW);
}


/* longer than the longest cookie of either form */
static void
make_oversized(json_t *arr, const char *good, size_t glen)
{
    char    buf[BUFLEN], prefix[BUFLEN];
    size_t  n;

    n = (size_t) sprintf(prefix, "%s~%sx~%lld~%s", CODE32, ID64,
                         (long long) LOYALTY_EXPIRES_MAX, KID16);
    n = seal(KID16, LOYALTY_DOMAIN_REF, prefix, n, NULL, buf);
    add_invalid(arr, "172 bytes: the longest old form with one more "
                "character of referrer", "oversized", buf, n, ID64,
                LOYALTY_EXPIRES_MAX, WINDOW);

    memset(buf, 'A', LOYALTY_REF_COOKIE_MAX + 1 - glen);
    memcpy(buf + LOYALTY_REF_COOKIE_MAX + 1 - glen, good, glen);
    add_invalid(arr, "172 bytes: a genuine cookie after a long code",
                "oversized", buf, LOYALTY_REF_COOKIE_MAX + 1, "alice",
                T + HOUR, WINDOW);

    memset(buf, 'A', 4096 - glen);
    memcpy(buf + 4096 - glen, good, glen);
    add_invalid(arr, "4096 bytes: a genuine cookie after junk", "oversized",
                buf, 4096, "alice", T + HOUR, WINDOW);
}


static json_t *
make_unsignable(void)
{
    size_t   i;
    json_t  *arr;

    arr = json_array();

    for (i = 0; i < nelts(vec_unsignable); i++) {
        json_array_append_new(arr,
            json_pack("{s:s, s:s%, s:s%, s:I}",
                      "name", vec_unsignable[i].name,
                      "code", vec_unsignable[i].code,
                      vec_unsignable[i].code_len,
                      "referrer", vec_unsignable[i].referrer,
                      vec_unsignable[i].referrer_len,
                      "at", (json_int_t) vec_unsignable[i].at));
    }

    return arr;
}


static json_t *
make_vectors(void)
{
    char     good[LOYALTY_REF_COOKIE_MAX + 1];
    size_t   glen;
    json_t  *invalid;

    /* a genuine cookie whose MAC has a "-" or a "_" */
    glen = sign("k1", "K7D3MQ2XHP", "alice", T, good);

    invalid = json_array();
    make_bad_mac(invalid, good, glen);
    make_refused(invalid, good, glen);
    make_malformed(invalid, good, glen);
    make_oversized(invalid, good, glen);

    return json_pack("{s:s, s:s, s:s, s:s, s:{s:i, s:i, s:i, s:i, s:I, s:i,"
                     " s:i, s:i, s:i}, s:s, s:o, s:o, s:o, s:o, s:o}",
        "about", "Test vectors of the nginx-loyalty attribution cookie, "
                 "made by t/unit/ref_vectors.c from the module's own code "
                 "(make vectors); docs/attribution-cookie.md says what "
                 "each field means.",
        "spec", "docs/attribution-cookie.md",
        "format", "CODE~AT~KID~MAC",
        "legacy_format", "CODE~REFERRER~AT~KID~MAC",
        "limits",
            "code_min", 3,
            "code_max", LOYALTY_REF_CODE_MAX,
            "referrer_max", LOYALTY_ID_MAX,
            "kid_max", LOYALTY_KID_MAX,
            "at_max", (json_int_t) LOYALTY_EXPIRES_MAX,
            "cookie_max", LOYALTY_REF_CODE_MAX + 1 + 12 + 1
                          + LOYALTY_KID_MAX + 1 + LOYALTY_MAC_B64_LEN,
            "legacy_cookie_max", LOYALTY_REF_COOKIE_MAX,
            "clock_skew", LOYALTY_REF_CLOCK_SKEW,
            "default_window", WINDOW,
        "keys_file", vec_keys_file,
        "keys", make_keys(),
        "valid", make_valid(),
        "legacy", make_legacy(),
        "invalid", invalid,
        "unsignable", make_unsignable());
}


/* the checks, against the file as checked in */


/* HMAC-SHA256 over mac_input, by OpenSSL's one-shot HMAC, is mac_hex */
static int
mac_agrees(json_t *doc, json_t *v)
{
    char          hex[2 * EVP_MAX_MD_SIZE + 1];
    uint8_t       mac[EVP_MAX_MD_SIZE];
    unsigned int  len;

    return input_hmac(doc, v, mac, &len, hex)
           && strcmp(hex, json_string_value(json_object_get(v, "mac_hex")))
              == 0;
}


#define STR(v, f)  json_string_value(json_object_get(v, f))
#define LEN(v, f)  json_string_length(json_object_get(v, f))
#define INT(v, f)  ((int64_t) json_integer_value(json_object_get(v, f)))


/* the cookie's MAC, in base64url, from mac_hex */
static int
mac_in_cookie(json_t *v)
{
    char         b64[LOYALTY_MAC_B64_LEN + 1];
    size_t       n;
    uint8_t      mac[LOYALTY_MAC_LEN];
    const char  *cookie;

    cookie = STR(v, "cookie");
    n = strlen(cookie);

    if (loyalty_hex_decode(STR(v, "mac_hex"), 64, mac, sizeof(mac))
        != LOYALTY_MAC_LEN)
    {
        return 0;
    }

    b64[loyalty_base64url_encode(mac, sizeof(mac), b64)] = '\0';

    return n > LOYALTY_MAC_B64_LEN
           && strcmp(cookie + n - LOYALTY_MAC_B64_LEN, b64) == 0;
}


/*
 * v's cookie verifies for v's referrer, in the old form or the new, as
 * v's code and click time, and is in v's window at v's now
 */
static int
verifies(json_t *v, loyalty_keyring_t *kr, int legacy)
{
    int64_t               at;
    const char           *cookie, *code, *referrer;
    loyalty_ref_cookie_t  ref;

    code = STR(v, "code");
    referrer = STR(v, "referrer");
    cookie = STR(v, "cookie");
    at = INT(v, "at");

    return loyalty_ref_cookie_verify(kr, cookie, strlen(cookie), referrer,
                                     strlen(referrer), &ref)
           == 0
           && !ref.legacy == !legacy && ref.code_len == strlen(code)
           && memcmp(ref.code, code, ref.code_len) == 0 && ref.at == at
           && loyalty_ref_cookie_window(at, INT(v, "now"), INT(v, "window"))
              == LOYALTY_COOKIE_VALID;
}


static void
check_valid(json_t *doc, json_t *v, loyalty_keyring_t *kr)
{
    char                  out[LOYALTY_REF_COOKIE_MAX + 1];
    long                  n;
    int64_t               at, window;
    const char           *name, *cookie, *code, *referrer;
    loyalty_keyring_t    *signer;
    loyalty_ref_cookie_t  ref;

    name = STR(v, "name");
    code = STR(v, "code");
    referrer = STR(v, "referrer");
    cookie = STR(v, "cookie");
    at = INT(v, "at");
    window = INT(v, "window");

    signer = signer_of(doc, STR(v, "kid"));
    n = signer ? loyalty_ref_cookie_sign(signer, code, strlen(code),
                                         referrer, strlen(referrer), at, out)
               : -1;
    loyalty_keyring_free(signer);

    ok(n > 0 && strcmp(out, cookie) == 0, "sign: %s", name);

    ok(mac_agrees(doc, v) && mac_in_cookie(v),
       "mac_input and mac_hex make the cookie's MAC: %s", name);

    ok(verifies(v, kr, 0), "verify for the referrer, at now: %s", name);

    ok(loyalty_ref_cookie_verify(kr, cookie, strlen(cookie),
                                 strcmp(referrer, "mallory") ? "mallory"
                                                             : "alice",
                                 strcmp(referrer, "mallory") ? 7 : 5, &ref)
       != 0,
       "refused for another referrer: %s", name);

    ok(loyalty_ref_cookie_window(at, at - LOYALTY_REF_CLOCK_SKEW, window)
       == LOYALTY_COOKIE_VALID
       && loyalty_ref_cookie_window(at, at + window - 1, window)
          == LOYALTY_COOKIE_VALID
       && loyalty_ref_cookie_window(at, at + window, window)
          == LOYALTY_COOKIE_EXPIRED
       && loyalty_ref_cookie_window(at, at - LOYALTY_REF_CLOCK_SKEW - 1,
                                    window)
          == LOYALTY_COOKIE_INVALID,
       "valid from at - %d to at + window - 1 only: %s",
       LOYALTY_REF_CLOCK_SKEW, name);
}


static void
check_legacy(json_t *doc, json_t *v, loyalty_keyring_t *kr)
{
    char                  out[LOYALTY_REF_COOKIE_MAX + 1];
    long                  n;
    int64_t               at;
    const char           *name, *code, *referrer, *reissued;
    loyalty_ref_cookie_t  ref;

    name = STR(v, "name");
    code = STR(v, "code");
    referrer = STR(v, "referrer");
    reissued = STR(v, "reissued");
    at = INT(v, "at");

    ok(mac_agrees(doc, v) && mac_in_cookie(v)
       && strncmp(STR(v, "mac_input"), "ref~", 4) == 0,
       "mac_input and mac_hex make the cookie's MAC: %s", name);

    ok(verifies(v, kr, 1),
       "verify the old form for the referrer it names: %s", name);

    /* what the module sends instead: the same code and time, first key */
    n = loyalty_ref_cookie_sign(kr, code, strlen(code), referrer,
                                strlen(referrer), at, out);

    ok(n > 0 && strcmp(out, reissued) == 0
       && loyalty_ref_cookie_verify(kr, reissued, strlen(reissued), referrer,
                                    strlen(referrer), &ref)
          == 0
       && !ref.legacy && ref.at == at,
       "reissued in the new form with the first key: %s", name);
}


static void
check_invalid(json_t *v, loyalty_keyring_t *kr)
{
    int                      genuine;
    const char              *reason, *referrer;
    loyalty_ref_cookie_t     ref;
    loyalty_cookie_status_e  want, got;

    reason = STR(v, "reason");
    referrer = STR(v, "referrer");

    genuine = loyalty_ref_cookie_verify(kr, STR(v, "cookie"),
                                        LEN(v, "cookie"), referrer,
                                        strlen(referrer), &ref)
              == 0;

    if (strcmp(reason, "expired") == 0 || strcmp(reason, "future") == 0) {
        want = reason[0] == 'e' ? LOYALTY_COOKIE_EXPIRED
                                : LOYALTY_COOKIE_INVALID;
        got = genuine ? loyalty_ref_cookie_window(ref.at, INT(v, "now"),
                                                  INT(v, "window"))
                      : LOYALTY_COOKIE_VALID;

        ok(genuine && got == want,
           "genuine, refused by the window (%s): %s", reason,
           STR(v, "name"));
        return;
    }

    ok(!genuine, "refused (%s): %s", reason, STR(v, "name"));
}


static void
check_unsignable(json_t *v, loyalty_keyring_t *kr)
{
    char  out[LOYALTY_REF_COOKIE_MAX + 1];

    is_int(loyalty_ref_cookie_sign(kr, STR(v, "code"), LEN(v, "code"),
                                   STR(v, "referrer"), LEN(v, "referrer"),
                                   INT(v, "at"), out),
           -1, "not signed: %s", STR(v, "name"));
}


static int
check(json_t *generated)
{
    size_t              i;
    json_t             *doc, *v, *kf;
    loyalty_keyring_t  *kr;

    doc = vec_load();
    if (doc == NULL) {
        return done();
    }

    plan(2 + 5 * (int) json_array_size(json_object_get(doc, "valid"))
         + 3 * (int) json_array_size(json_object_get(doc, "legacy"))
         + (int) json_array_size(json_object_get(doc, "invalid"))
         + (int) json_array_size(json_object_get(doc, "unsignable")));

    check_file(generated);

    kf = json_object_get(doc, "keys_file");
    kr = ring_of(json_string_value(kf), json_string_length(kf));
    ok(kr != NULL && kr->nkeys == json_array_size(json_object_get(doc,
                                                                  "keys")),
       "keys_file reads as the keys listed");

    if (kr == NULL) {
        json_decref(doc);
        return done();
    }

    json_array_foreach(json_object_get(doc, "valid"), i, v) {
        check_valid(doc, v, kr);
    }

    json_array_foreach(json_object_get(doc, "legacy"), i, v) {
        check_legacy(doc, v, kr);
    }

    json_array_foreach(json_object_get(doc, "invalid"), i, v) {
        check_invalid(v, kr);
    }

    json_array_foreach(json_object_get(doc, "unsignable"), i, v) {
        check_unsignable(v, kr);
    }

    loyalty_keyring_free(kr);
    json_decref(doc);

    return done();
}


int
main(int argc, char **argv)
{
    return vec_main(argc, argv, make_vectors, check);
}
