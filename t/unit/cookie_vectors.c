/*
 * The member cookie's test vectors, docs/member-cookie-vectors.json.
 *
 *     build/unit/cookie_vectors.t --write   prints them, made by the
 *                                           core's own signing code
 *     build/unit/cookie_vectors.t           checks, from the repository
 *                                           root, that the file is what
 *                                           the code prints and that each
 *                                           vector holds against
 *                                           loyalty_sign.c
 *
 * so that the specification (docs/member-cookie.md), the vectors the
 * snippets are tested with and the module cannot drift apart.
 */

#define VECTORS     "docs/member-cookie-vectors.json"
#define VEC_NAME    "cookie_vectors"
#define VEC_NKEYS   4

#include "vectors.h"


/* a fourth key, of 64 bytes */
#define K64HEX      "6326befaf2d447a4068b3cb50cd3999e" \
                    "f77618a1ecef9c30f07ab60355b48d5d" \
                    "1affcaae560d16fca7cfdf929521c1d1" \
                    "7b82d7042c99b1a4eb56f3449b4b456a"
/* the same secret as a shop may well write it */
#define K128HEX_UC  "0159E4A8ABEE86C6A7C6C97A223B67BE" \
                    "1D066BE6B9E9CA528D6377FD75077A27" \
                    "A2ACC13C61E6AE5CDD390180D649421D" \
                    "EEFCFC594E528582CEFA93984A00A377" \
                    "143813F19723711ECA73145DFA8221D3" \
                    "7F84B28ADCDDED84B3CCE8A8B6E18F95" \
                    "19AB0304E20692C30239CD38F51C303E" \
                    "1225ED0C55C7026DDFD8CB3FABFA54E9"


typedef struct {
    const char  *name;
    const char  *member;
    const char  *kid;
    int64_t      now;
    int64_t      ttl;
} vec_valid_t;


typedef struct {
    const char  *name;
    const char  *member;
    size_t       member_len;
    int64_t      now;
    int64_t      ttl;
} vec_unsignable_t;


typedef struct {
    const char  *name;
    const char  *text;
} vec_keys_file_t;


/* in the keys file's order: the first signs */
static const vec_key_t  vec_keys[VEC_NKEYS] = {
    { "k1", K1HEX },
    { "k0", K0HEX },
    { "k64", K64HEX },
    { KID16, K128HEX },
};

/* comments, a blank line, a tab, CRLF and upper-case hex, as nginx reads */
static const char  vec_keys_file[] =
    "# nginx-loyalty keys: KID SECRET_HEX, the first key signs\n"
    "k1 " K1HEX "\n"
    "# the previous key: its cookies still verify\n"
    "k0 " K0HEX "\n"
    "\n"
    "k64\t" K64HEX "\r\n"
    KID16 " " K128HEX_UC "\n";


static const vec_valid_t  vec_valid[] = {
    { "alice for an hour, signed with k1: the known answer of "
      "t/00-harness.t", "alice", "k1", T - HOUR, HOUR },
    { "the same signed with k0, the second key: every key verifies",
      "alice", "k0", T - HOUR, HOUR },
    { "30 days; an id with each punctuation an id may hold",
      "bob.b-1_x", "k1", T, 30 * DAY },
    { "an id of one character, for one second", "a", "k1", T, 1 },
    { "an id of digits with leading zeros is text, kept as is",
      "007", "k0", T, DAY },
    { "a secret of 64 bytes, one SHA-256 block", "m-64", "k64", T, HOUR },
    { "a secret of 128 bytes, which HMAC hashes first; a key id of 16 "
      "characters", "carol", KID16, T, HOUR },
    { "expiry 10: times are plain decimals, whatever their size",
      "alice", "k1", 1, 9 },
    { "the longest cookie, 138 bytes: id of 64, expiry of 12 digits, "
      "key id of 16", ID64, KID16, T, LOYALTY_EXPIRES_MAX - T },
};


static const vec_unsignable_t  vec_unsignable[] = {
    { "an empty id", "", 0, T, HOUR },
    { "an id of 65 characters", ID64 "x", 65, T, HOUR },
    { "an id with the separator", "a~b", 3, T, HOUR },
    { "an id with a space", "a b", 3, T, HOUR },
    { "an id with a slash", "a/b", 3, T, HOUR },
    { "an id with an at sign (an email address is no member id)",
      "alice@example.com", 17, T, HOUR },
    { "an id that is not ASCII", "zo\xc3\xab", 4, T, HOUR },
    { "an id with a newline", "alice\n", 6, T, HOUR },
    { "an expiry of 13 digits", "alice", 5, T,
      LOYALTY_EXPIRES_MAX - T + 1 },
    { "an expiry before 1970", "alice", 5, 0, -1 },
};


static const vec_keys_file_t  vec_bad_keys_files[] = {
    { "a secret of 31 bytes", "k1 " K1HEX "\nk0 " K0HEX "\nk2 "
      "00112233445566778899aabbccddeeff00112233445566778899aabbccddee\n" },
    { "a secret of 129 bytes", "k1 " K128HEX "00\n" },
    { "an odd number of hex digits", "k1 " K1HEX "0\n" },
    { "a character that is not hex", "k1 "
      "5ddf6f585beb20501799d3b7b6370cac263cda66dc4a6ff968c1a9c5006a615g\n" },
    { "a 0x prefix", "k1 0x" K1HEX "\n" },
    { "a key id with a dot", "k.1 " K1HEX "\n" },
    { "a key id of 17 characters", KID16 "x " K1HEX "\n" },
    { "a key id that is not ASCII", "k\xc3\xab " K1HEX "\n" },
    { "a key id twice", "k1 " K1HEX "\nk0 " K0HEX "\nk1 " K0HEX "\n" },
    { "no secret", "k1\n" },
    { "a third field", "k1 " K1HEX " extra\n" },
    { "a comment after a key", "k1 " K1HEX " # current\n" },
    { "a carriage return before a key id", "\rk1 " K1HEX "\n" },
    { "no key at all", "# keys\n\n" },
    { "an empty file", "" },
};


static size_t
sign(const char *kid, const char *member, int64_t expires, char *out)
{
    long  n;

    n = loyalty_member_cookie_sign(key_ring(kid), member, strlen(member),
                                   expires, out);
    if (n < 0) {
        fail("cannot sign");
    }

    return (size_t) n;
}


static void
add_invalid(json_t *arr, const char *name, const char *reason, int64_t now,
    const char *cookie, size_t len)
{
    json_array_append_new(arr, json_pack("{s:s, s:s%, s:I, s:s}",
                                         "name", name, "cookie", cookie,
                                         len, "now", (json_int_t) now,
                                         "reason", reason));
}


static json_t *
make_valid(void)
{
    char     buf[BUFLEN], input[BUFLEN], hex[2 * LOYALTY_MAC_LEN + 1];
    size_t   i, n;
    int64_t  exp;
    json_t  *arr;

    arr = json_array();

    for (i = 0; i < nelts(vec_valid); i++) {
        exp = vec_valid[i].now + vec_valid[i].ttl;
        n = sign(vec_valid[i].kid, vec_valid[i].member, exp, buf);

        /* what the MAC is over, and the MAC itself, to debug with */
        snprintf(input, sizeof(input), "member~%s~%lld~%s",
                 vec_valid[i].member, (long long) exp, vec_valid[i].kid);
        mac_hex(vec_valid[i].kid, input, hex);

        json_array_append_new(arr,
            json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:s, s:s%}",
                      "name", vec_valid[i].name,
                      "member", vec_valid[i].member,
                      "kid", vec_valid[i].kid,
                      "now", (json_int_t) vec_valid[i].now,
                      "ttl", (json_int_t) vec_valid[i].ttl,
                      "expires", (json_int_t) exp,
                      "mac_input", input, "mac_hex", hex,
                      "cookie", buf, n));
    }

    return arr;
}


/* genuine MACs over what was not signed, or MACs made wrongly */
static void
make_bad_mac(json_t *arr, const char *alice, size_t alen)
{
    char         buf[BUFLEN], fake[BUFLEN];
    size_t       n;
    uint8_t      secret[LOYALTY_SECRET_MAX];
    const char  *mac;

    static const char  k1_text[] = K1HEX;

    mac = alice + alen - LOYALTY_MAC_B64_LEN;

    n = (size_t) sprintf(buf, "mallory~1700000000~k1~%s", mac);
    add_invalid(arr, "alice's MAC under another member id", "bad-mac",
                T - HOUR, buf, n);
    n = (size_t) sprintf(buf, "alice~1700086400~k1~%s", mac);
    add_invalid(arr, "an expiry moved a day on, the MAC kept", "bad-mac",
                T - HOUR, buf, n);
    n = (size_t) sprintf(buf, "Alice~1700000000~k1~%s", mac);
    add_invalid(arr, "the id in another case: ids are case-sensitive",
                "bad-mac", T - HOUR, buf, n);
    n = (size_t) sprintf(buf, "alice~1700000000~k0~%s", mac);
    add_invalid(arr, "relabelled with the other key's id", "bad-mac",
                T - HOUR, buf, n);

    n = (size_t) sprintf(buf, "alice~1700000000~k1~%.*s",
                         LOYALTY_MAC_B64_LEN, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
                         "AAAAAAAAAAAAAAAAAAAAAAAAA");
    add_invalid(arr, "a MAC of zero bytes", "bad-mac", T - HOUR, buf, n);

    n = (size_t) sprintf(buf, "%s", alice);
    buf[n - LOYALTY_MAC_B64_LEN] = buf[n - LOYALTY_MAC_B64_LEN] == 'A'
                                   ? 'B' : 'A';
    add_invalid(arr, "the MAC's first character changed", "bad-mac",
                T - HOUR, buf, n);

    /* signed with k0's secret, labelled k1 */
    strcpy(fake, "alice~1700000000~k1");
    n = seal("k0", "member", fake, strlen(fake), NULL, buf);
    add_invalid(arr, "signed with another secret under the same key id",
                "bad-mac", T - HOUR, buf, n);

    if (loyalty_hex_decode(K1HEX, 64, secret, sizeof(secret)) != 32) {
        fail("hex");
    }

    n = seal_raw(secret, 32, fake, strlen(fake), fake, buf);
    add_invalid(arr, "a MAC without the \"member~\" in front", "bad-mac",
                T - HOUR, buf, n);

    n = seal_raw(k1_text, 64, "member~alice~1700000000~k1", 26, fake, buf);
    add_invalid(arr, "a MAC keyed with the secret's hex text, not its bytes",
                "bad-mac", T - HOUR, buf, n);

    n = seal_raw(secret, 32, "ref~alice~1700000000~k1", 23, fake, buf);
    add_invalid(arr, "a MAC under another domain than \"member\"", "bad-mac",
                T - HOUR, buf, n);
}


/* well-formed and genuinely MACed, but not to be accepted */
static void
make_kid_and_expired(json_t *arr, const char *alice, size_t alen)
{
    char    buf[BUFLEN];
    size_t  n;

    n = seal("k1", "member", "alice~1700000000~k9", 19, NULL, buf);
    add_invalid(arr, "a key id the keys file does not hold (a retired key)",
                "unknown-kid", T - HOUR, buf, n);
    n = seal("k1", "member", "alice~1700000000~K1", 19, NULL, buf);
    add_invalid(arr, "the key id in another case: key ids are "
                "case-sensitive", "unknown-kid", T - HOUR, buf, n);

    add_invalid(arr, "a second after its expiry", "expired", T + 1, alice,
                alen);
    n = sign("k1", "alice", 0, buf);
    add_invalid(arr, "expiry 0, the epoch", "expired", T, buf, n);
    n = sign("k0", "alice", T - 30 * DAY, buf);
    add_invalid(arr, "expired 30 days ago, signed with k0", "expired", T,
                buf, n);
}


/* prefixes that carry a genuine k1 MAC, but are no member cookie */
static const struct {
    const char  *name;
    const char  *prefix;
    size_t       len;
} vec_malformed_prefixes[] = {
#define P(name, s)  { name, s, sizeof(s) - 1 }
    P("an expiry with a leading zero", "alice~01700000000~k1"),
    P("an expiry of \"00\"", "alice~00~k1"),
    P("an expiry with a plus sign", "alice~+1700000000~k1"),
    P("a negative expiry", "alice~-1~k1"),
    P("an expiry after a space", "alice~ 1700000000~k1"),
    P("an expiry in hex", "alice~0x6553f100~k1"),
    P("an expiry with a fraction", "alice~1700000000.5~k1"),
    P("an expiry in exponent notation", "alice~17e8~k1"),
    P("an expiry of 13 digits", "alice~1000000000000~k1"),
    P("an empty expiry", "alice~~k1"),
    P("an empty id", "~1700000000~k1"),
    P("an id with a space", "alice bob~1700000000~k1"),
    P("an id with a slash", "a/b~1700000000~k1"),
    P("an id that is not ASCII", "zo\xc3\xab~1700000000~k1"),
    P("an id with a NUL byte", "alice\0x~1700000000~k1"),
    P("an id of 65 characters", ID64 "x~1700000000~k1"),
    P("a key id with a dot", "alice~1700000000~k.1"),
    P("a key id of 17 characters", "alice~1700000000~k1aaaaaaaaaaaaaaa"),
    P("an empty key id", "alice~1700000000~"),
    P("three fields: no key id", "alice~1700000000"),
    P("five fields", "x~alice~1700000000~k1"),
#undef P
};


/* values as cookie handling gone wrong delivers them */
static void
make_malformed_values(json_t *arr, const char *alice)
{
    char         buf[BUFLEN];
    size_t       n;
    const char  *p;

    n = 0;
    for (p = alice; *p; p++) {
        n += (size_t) (*p == '~' ? sprintf(buf + n, "%%7E")
                                 : sprintf(buf + n, "%c", *p));
    }
    add_invalid(arr, "percent-encoded separators, as PHP's setcookie() "
                "sends them", "malformed", T - HOUR, buf, n);

    n = (size_t) sprintf(buf, "\"%s\"", alice);
    add_invalid(arr, "a value in double quotes", "malformed", T - HOUR, buf,
                n);
    n = (size_t) sprintf(buf, "%s\n", alice);
    add_invalid(arr, "a newline after the value", "malformed", T - HOUR,
                buf, n);
    n = (size_t) sprintf(buf, " %s", alice);
    add_invalid(arr, "a space before the value", "malformed", T - HOUR, buf,
                n);
    add_invalid(arr, "an empty value", "malformed", T - HOUR, "", 0);
    add_invalid(arr, "separators only", "malformed", T - HOUR, "~~~", 3);
}


/* longer than the longest cookie can be */
static void
make_oversized(json_t *arr, const char *alice, size_t alen)
{
    char    buf[BUFLEN], prefix[BUFLEN];
    size_t  n;

    n = (size_t) sprintf(prefix, "%sx~%lld~%s", ID64,
                         (long long) LOYALTY_EXPIRES_MAX, KID16);
    n = seal(KID16, "member", prefix, n, NULL, buf);
    add_invalid(arr, "139 bytes: the longest cookie with one more character "
                "of id", "oversized", T, buf, n);

    memset(buf, 'a', LOYALTY_COOKIE_MAX + 1 - alen);
    memcpy(buf + LOYALTY_COOKIE_MAX + 1 - alen, alice, alen);
    add_invalid(arr, "147 bytes: a genuine cookie after 105 bytes of junk",
                "oversized", T - HOUR, buf, LOYALTY_COOKIE_MAX + 1);

    memset(buf, 'a', 4096 - alen);
    memcpy(buf + 4096 - alen, alice, alen);
    add_invalid(arr, "4096 bytes: a genuine cookie after junk", "oversized",
                T - HOUR, buf, 4096);
}


static void
make_malformed(json_t *arr, const char *alice, size_t alen)
{
    char     buf[BUFLEN], other[BUFLEN];
    size_t   i, n;
    int64_t  exp;

    static const char  b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrs"
                               "tuvwxyz0123456789-_";

    for (i = 0; i < nelts(vec_malformed_prefixes); i++) {
        n = seal("k1", "member", vec_malformed_prefixes[i].prefix,
                 vec_malformed_prefixes[i].len, NULL, buf);
        add_invalid(arr, vec_malformed_prefixes[i].name, "malformed",
                    T - HOUR, buf, n);
    }

    n = (size_t) sprintf(buf, "%s=", alice);
    add_invalid(arr, "a MAC with base64 padding", "malformed", T - HOUR,
                buf, n);

    /* the first of alice's cookies whose MAC has a "-" or a "_" */
    for (exp = T; ; exp++) {
        n = sign("k1", "alice", exp, other);
        if (strpbrk(other + n - LOYALTY_MAC_B64_LEN, "-_") != NULL) {
            break;
        }
    }

    for (i = n - LOYALTY_MAC_B64_LEN; i < n; i++) {
        other[i] = other[i] == '-' ? '+' : other[i] == '_' ? '/' : other[i];
    }

    add_invalid(arr, "a MAC in standard base64, \"+\" and \"/\"",
                "malformed", T - HOUR, other, n);

    /* the last character holds 4 bits of MAC and 2 that must be zero */
    n = (size_t) sprintf(buf, "%s", alice);
    buf[n - 1] = b64[(strchr(b64, buf[n - 1]) - b64) | 1];
    add_invalid(arr, "a MAC whose last character has non-zero spare bits",
                "malformed", T - HOUR, buf, n);

    add_invalid(arr, "a MAC of 42 characters", "malformed", T - HOUR, alice,
                alen - 1);
    n = (size_t) sprintf(buf, "%sA", alice);
    add_invalid(arr, "a MAC of 44 characters", "malformed", T - HOUR, buf, n);

    make_malformed_values(arr, alice);
}


static json_t *
make_unsignable(void)
{
    size_t   i;
    json_t  *arr;

    arr = json_array();

    for (i = 0; i < nelts(vec_unsignable); i++) {
        json_array_append_new(arr,
            json_pack("{s:s, s:s%, s:I, s:I}",
                      "name", vec_unsignable[i].name,
                      "member", vec_unsignable[i].member,
                      vec_unsignable[i].member_len,
                      "now", (json_int_t) vec_unsignable[i].now,
                      "ttl", (json_int_t) vec_unsignable[i].ttl));
    }

    return arr;
}


static json_t *
make_bad_keys_files(void)
{
    char     text[17 * 80], *p;
    size_t   i;
    json_t  *arr;

    arr = json_array();

    for (i = 0; i < nelts(vec_bad_keys_files); i++) {
        json_array_append_new(arr,
            json_pack("{s:s, s:s}", "name", vec_bad_keys_files[i].name,
                      "text", vec_bad_keys_files[i].text));
    }

    p = text;
    for (i = 0; i <= LOYALTY_KEYS_MAX; i++) {
        p += sprintf(p, "k%zu %s\n", i, K1HEX);
    }

    json_array_append_new(arr, json_pack("{s:s, s:s}", "name",
                                         "17 keys, one more than nginx "
                                         "reads", "text", text));
    return arr;
}


static json_t *
make_vectors(void)
{
    char     alice[LOYALTY_COOKIE_MAX + 1];
    size_t   alen;
    json_t  *invalid;

    alen = sign("k1", "alice", T, alice);

    invalid = json_array();
    make_bad_mac(invalid, alice, alen);
    make_kid_and_expired(invalid, alice, alen);
    make_malformed(invalid, alice, alen);
    make_oversized(invalid, alice, alen);

    return json_pack("{s:s, s:s, s:s, s:{s:i, s:i, s:I, s:i, s:i, s:i, s:i},"
                     " s:s, s:o, s:o, s:o, s:o, s:o}",
        "about", "Test vectors of the nginx-loyalty member cookie, made by "
                 "t/unit/cookie_vectors.c from the module's own code "
                 "(make vectors); docs/member-cookie.md says what each "
                 "field means.",
        "spec", "docs/member-cookie.md",
        "format", "ID~EXPIRES~KID~MAC",
        "limits",
            "id_max", LOYALTY_ID_MAX,
            "kid_max", LOYALTY_KID_MAX,
            "expires_max", (json_int_t) LOYALTY_EXPIRES_MAX,
            "cookie_max", LOYALTY_ID_MAX + 1 + 12 + 1 + LOYALTY_KID_MAX + 1
                          + LOYALTY_MAC_B64_LEN,
            "secret_min", LOYALTY_SECRET_MIN,
            "secret_max", LOYALTY_SECRET_MAX,
            "keys_max", LOYALTY_KEYS_MAX,
        "keys_file", vec_keys_file,
        "keys", make_keys(),
        "valid", make_valid(),
        "invalid", invalid,
        "unsignable", make_unsignable(),
        "bad_keys_files", make_bad_keys_files());
}


/* the checks, against the file as checked in */


/* the keys file reads as the keys listed, in order */
static void
check_keys(json_t *doc, loyalty_keyring_t *kr)
{
    int           good;
    long          n;
    size_t        i;
    json_t       *key;
    uint8_t       secret[LOYALTY_SECRET_MAX], want[EVP_MAX_MD_SIZE];
    uint8_t       got[LOYALTY_MAC_LEN];
    unsigned int  wlen;
    const char   *kid;

    good = kr && kr->nkeys == json_array_size(json_object_get(doc, "keys"));

    json_array_foreach(json_object_get(doc, "keys"), i, key) {
        kid = json_string_value(json_object_get(key, "kid"));
        n = secret_of(doc, kid, secret);

        good = good && n > 0 && i < kr->nkeys
               && kr->keys[i].kid_len == strlen(kid)
               && memcmp(kr->keys[i].kid, kid, strlen(kid)) == 0
               && HMAC(EVP_sha256(), secret, (int) n,
                       (const uint8_t *) "member~x", 8, want, &wlen)
               && loyalty_keyring_mac(kr, &kr->keys[i], "member", "x", 1,
                                      got) == 0
               && memcmp(want, got, LOYALTY_MAC_LEN) == 0;
    }

    ok(good, "keys_file reads as the keys listed, in their order");
}


/* the MAC is HMAC-SHA256 over mac_input, whatever computes it */
static int
mac_agrees(json_t *doc, json_t *v)
{
    char          b64[LOYALTY_MAC_B64_LEN + 1], hex[2 * EVP_MAX_MD_SIZE + 1];
    char          want[BUFLEN];
    uint8_t       mac[EVP_MAX_MD_SIZE];
    unsigned int  len;
    const char   *input;

    input = json_string_value(json_object_get(v, "mac_input"));

    if (strncmp(input, "member~", 7) != 0
        || !input_hmac(doc, v, mac, &len, hex))
    {
        return 0;
    }

    b64[loyalty_base64url_encode(mac, len, b64)] = '\0';
    snprintf(want, sizeof(want), "%s~%s", input + 7, b64);

    return strcmp(hex, json_string_value(json_object_get(v, "mac_hex"))) == 0
           && strcmp(want, json_string_value(json_object_get(v, "cookie")))
              == 0;
}


static void
check_valid(json_t *doc, json_t *v, loyalty_keyring_t *kr)
{
    char                     out[LOYALTY_COOKIE_MAX + 1];
    long                     n;
    size_t                   id_len, len;
    int64_t                  now, exp, got_exp;
    const char              *name, *member, *cookie, *id;
    loyalty_keyring_t       *signer;
    loyalty_cookie_status_e  rc, at_exp, after;

    name = json_string_value(json_object_get(v, "name"));
    member = json_string_value(json_object_get(v, "member"));
    cookie = json_string_value(json_object_get(v, "cookie"));
    now = json_integer_value(json_object_get(v, "now"));
    exp = json_integer_value(json_object_get(v, "expires"));
    len = strlen(cookie);

    signer = signer_of(doc, json_string_value(json_object_get(v, "kid")));
    n = signer ? loyalty_member_cookie_sign(signer, member, strlen(member),
                                            exp, out)
               : -1;
    loyalty_keyring_free(signer);

    ok(n > 0 && strcmp(out, cookie) == 0
       && exp == now + json_integer_value(json_object_get(v, "ttl")),
       "sign: %s", name);

    ok(mac_agrees(doc, v), "mac_input and mac_hex make the cookie: %s",
       name);

    id = NULL;
    id_len = 0;
    rc = loyalty_member_cookie_verify(kr, cookie, len, now, &id, &id_len,
                                      &got_exp);
    ok(rc == LOYALTY_COOKIE_VALID && id_len == strlen(member)
       && memcmp(id, member, id_len) == 0 && got_exp == exp,
       "verify: %s", name);

    at_exp = loyalty_member_cookie_verify(kr, cookie, len, exp, &id,
                                          &id_len, &got_exp);
    after = loyalty_member_cookie_verify(kr, cookie, len, exp + 1, &id,
                                         &id_len, &got_exp);
    ok(at_exp == LOYALTY_COOKIE_VALID && after == LOYALTY_COOKIE_EXPIRED,
       "valid at its expiry, expired a second later: %s", name);
}


static void
check_invalid(json_t *v, loyalty_keyring_t *kr)
{
    size_t                   id_len;
    int64_t                  exp;
    json_t                  *cookie;
    const char              *id, *reason;
    loyalty_cookie_status_e  want;

    cookie = json_object_get(v, "cookie");
    reason = json_string_value(json_object_get(v, "reason"));
    want = strcmp(reason, "expired") == 0 ? LOYALTY_COOKIE_EXPIRED
                                          : LOYALTY_COOKIE_INVALID;

    is_int(loyalty_member_cookie_verify(kr, json_string_value(cookie),
                                        json_string_length(cookie),
                                        json_integer_value(
                                            json_object_get(v, "now")),
                                        &id, &id_len, &exp),
           want, "refused (%s): %s", reason,
           json_string_value(json_object_get(v, "name")));
}


static void
check_unsignable(json_t *v, loyalty_keyring_t *kr)
{
    char     out[LOYALTY_COOKIE_MAX + 1];
    json_t  *member;

    member = json_object_get(v, "member");

    is_int(loyalty_member_cookie_sign(kr, json_string_value(member),
                                      json_string_length(member),
                                      json_integer_value(
                                          json_object_get(v, "now"))
                                      + json_integer_value(
                                          json_object_get(v, "ttl")),
                                      out),
           -1, "not signed: %s",
           json_string_value(json_object_get(v, "name")));
}


static void
check_bad_keys_file(json_t *v)
{
    char                err[LOYALTY_ERRLEN];
    json_t             *text;
    loyalty_keyring_t  *kr;

    text = json_object_get(v, "text");
    kr = loyalty_keyring_parse(json_string_value(text),
                               json_string_length(text), err, sizeof(err));

    ok(kr == NULL, "keys file refused: %s",
       json_string_value(json_object_get(v, "name")));
    loyalty_keyring_free(kr);
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

    plan(2 + 4 * (int) json_array_size(json_object_get(doc, "valid"))
         + (int) json_array_size(json_object_get(doc, "invalid"))
         + (int) json_array_size(json_object_get(doc, "unsignable"))
         + (int) json_array_size(json_object_get(doc, "bad_keys_files")));

    check_file(generated);

    kf = json_object_get(doc, "keys_file");
    kr = ring_of(json_string_value(kf), json_string_length(kf));
    check_keys(doc, kr);

    json_array_foreach(json_object_get(doc, "valid"), i, v) {
        check_valid(doc, v, kr);
    }

    json_array_foreach(json_object_get(doc, "invalid"), i, v) {
        check_invalid(v, kr);
    }

    json_array_foreach(json_object_get(doc, "unsignable"), i, v) {
        check_unsignable(v, kr);
    }

    json_array_foreach(json_object_get(doc, "bad_keys_files"), i, v) {
        check_bad_keys_file(v);
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
